/* fuzz_config.c — libFuzzer harness for config.json (lj_config_parse).
 *
 * Input: the bytes of a Hugging Face config.json. An accepted config must hold
 * what the front end relies on: every size in range (capped so that no hostile
 * file makes later stages allocate terabytes), heads that divide, an even head
 * size, positive finite eps and theta. A refusal must carry a message. */
#include <math.h>

#include "fuzz.h"
#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lj_config c;
    lj_err err = {0};
    lorajit_status st = lj_config_parse((const char *)data, size, "config.json", &c, &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK_REFUSAL(st, err);
        return 0;
    }
    const int64_t max_dim = INT64_C(1) << 20;
    FUZZ_CHECK(c.dim >= 1 && c.dim <= max_dim && c.hidden_dim >= 1 && c.hidden_dim <= max_dim);
    FUZZ_CHECK(c.n_layers >= 1 && c.n_layers <= 4096);
    FUZZ_CHECK(c.vocab_size >= 1 && c.vocab_size <= (INT64_C(1) << 24));
    FUZZ_CHECK(c.n_heads >= 1 && c.n_kv_heads >= 1 && c.n_heads % c.n_kv_heads == 0);
    FUZZ_CHECK(c.head_size >= 2 && c.head_size % 2 == 0 && c.n_heads * c.head_size <= max_dim);
    FUZZ_CHECK(c.seq_len >= 1 && c.seq_len <= max_dim);
    FUZZ_CHECK(isfinite(c.rms_eps) && c.rms_eps > 0 && isfinite(c.rope_theta) && c.rope_theta > 0);
    return 0;
}
