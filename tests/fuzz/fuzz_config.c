/* fuzz_config.c — libFuzzer harness for config.json (lj_config_parse).
 *
 * Input: the bytes of a Hugging Face config.json. An accepted config must hold
 * what the front end relies on: every size within its LJ_CONFIG_MAX_* bound (so
 * that no hostile file makes later stages allocate terabytes), heads that divide, an even head
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
    FUZZ_CHECK(c.dim >= 1 && c.dim <= LJ_CONFIG_MAX_HIDDEN && c.hidden_dim >= 1 &&
               c.hidden_dim <= LJ_CONFIG_MAX_INTERMEDIATE);
    FUZZ_CHECK(c.n_layers >= 1 && c.n_layers <= LJ_CONFIG_MAX_LAYERS);
    FUZZ_CHECK(c.vocab_size >= 1 && c.vocab_size <= LJ_CONFIG_MAX_VOCAB);
    FUZZ_CHECK(c.n_heads >= 1 && c.n_heads <= LJ_CONFIG_MAX_HEADS && c.n_kv_heads >= 1 &&
               c.n_heads % c.n_kv_heads == 0);
    FUZZ_CHECK(c.head_size >= 2 && c.head_size % 2 == 0 && c.head_size <= LJ_CONFIG_MAX_HEAD_DIM &&
               c.n_heads * c.head_size <= LJ_CONFIG_MAX_HIDDEN);
    FUZZ_CHECK(c.seq_len >= 1 && c.seq_len <= LJ_CONFIG_MAX_POSITIONS);
    FUZZ_CHECK(isfinite(c.rms_eps) && c.rms_eps > 0 && isfinite(c.rope_theta) && c.rope_theta > 0);
    return 0;
}
