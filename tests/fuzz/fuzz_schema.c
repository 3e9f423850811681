/* fuzz_schema.c — libFuzzer harness for the adapter schema.
 *
 * Input: bytes used twice: as schema JSON for lj_schema_parse (starting from the
 * defaults), and, cut at the first NUL, as lorajit_options.targets (a comma list)
 * for lj_schema_resolve against a fixed model config. Accepted results must be in
 * range (max_rank 1..1024, max_adapters 1..64, only the seven module bits); a
 * refusal must carry a message and leave the schema as it was. */
#include <string.h>

#include "fuzz.h"
#include "formats.h"

static bool same_schema(const lj_schema *a, const lj_schema *b) {
    return a->r_max == b->r_max && a->target_mask == b->target_mask && a->n_slots == b->n_slots &&
           a->max_tokens == b->max_tokens && a->seq_len == b->seq_len && a->max_batch == b->max_batch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const lj_schema defaults = {.r_max = 64, .target_mask = 0x7f, .n_slots = 8, .max_tokens = 64,
                                .seq_len = 64, .max_batch = 4};
    lj_schema s = defaults;
    lj_err err = {0};
    lorajit_status st = lj_schema_parse((const char *)data, size, "schema.json", lj_arch_get(0), &s, &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK_REFUSAL(st, err);
        FUZZ_CHECK(same_schema(&s, &defaults));
    } else {
        FUZZ_CHECK(s.r_max >= 1 && s.r_max <= 1024 && s.n_slots >= 1 && s.n_slots <= 64);
        FUZZ_CHECK((s.target_mask & ~0x7fu) == 0 && s.max_tokens >= 1);
    }

    char *targets = malloc(size + 1);
    FUZZ_CHECK(targets != NULL);
    memcpy(targets, data, size);
    targets[size] = '\0';
    const lj_config cfg = {.dim = 64, .hidden_dim = 128, .n_layers = 2, .n_heads = 4,
                           .n_kv_heads = 2, .head_size = 16, .vocab_size = 256, .seq_len = 64,
                           .rms_eps = 1e-6f, .rope_theta = 10000.0f};
    const lorajit_options opts = {.targets = targets};
    lj_schema r = defaults;
    lj_err rerr = {0};
    st = lj_schema_resolve(&opts, &cfg, &r, &rerr);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK_REFUSAL(st, rerr);
        FUZZ_CHECK(same_schema(&r, &defaults));
    } else {
        FUZZ_CHECK((r.target_mask & ~0x7fu) == 0 && r.r_max == 64 && r.n_slots == 8);
    }
    free(targets);
    return 0;
}
