/* fuzz_peft_config.c — libFuzzer harness for adapter_config.json (peft_config_parse).
 *
 * Input: the bytes of a PEFT adapter_config.json, including the regular
 * expressions it may hold (target_modules, exclude_modules, rank_pattern,
 * alpha_pattern keys). An accepted config must have r >= 1, compiled selectors
 * and patterns, and layers >= 0; it is freed twice (the second free must be a
 * no-op on the zeroed struct). A refusal must carry a message. */
#include "fuzz.h"
#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    peft_config c;
    lj_err err = {0};
    lorajit_status st = peft_config_parse((const char *)data, size, "adapter_config.json", lj_arch_get(0), &c,
                                          &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK_REFUSAL(st, err);
        return 0;
    }
    FUZZ_CHECK(c.r >= 1);
    FUZZ_CHECK(c.targets.re != NULL || c.targets.n > 0);
    for (int i = 0; i < c.targets.n; i++) FUZZ_CHECK(c.targets.names[i] != NULL);
    for (int i = 0; i < c.n_rank_pattern; i++)
        FUZZ_CHECK(c.rank_pattern[i].re && c.rank_pattern[i].key && c.rank_pattern[i].value >= 1);
    for (int i = 0; i < c.n_alpha_pattern; i++)
        FUZZ_CHECK(c.alpha_pattern[i].re && c.alpha_pattern[i].key);
    for (int i = 0; i < c.n_layers; i++) FUZZ_CHECK(c.layers[i] >= 0);
    peft_config_free(&c);
    peft_config_free(&c);
    return 0;
}
