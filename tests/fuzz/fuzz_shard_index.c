/* fuzz_shard_index.c — libFuzzer harness for model.safetensors.index.json.
 *
 * Input: the bytes of a sharded model's index. lj_shard_index_parse must accept
 * only a non-empty weight_map of plain file names (no '/', '\\', ".."), each
 * tensor listed for one shard, and return them distinct and sorted, at most
 * 10000; a refusal carries a message. */
#include <string.h>

#include "fuzz.h"
#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char **shards = NULL;
    int n = -1;
    lj_err err = {0};
    lorajit_status st = lj_shard_index_parse((const char *)data, size, "model.safetensors.index.json",
                                             &shards, &n, &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK(shards == NULL);
        FUZZ_CHECK_REFUSAL(st, err);
        return 0;
    }
    FUZZ_CHECK(shards && n >= 1 && n <= 10000);
    for (int i = 0; i < n; i++) {
        const char *s = shards[i];
        FUZZ_CHECK(s[0] && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, ".."));
        FUZZ_CHECK(i == 0 || strcmp(shards[i - 1], s) < 0);
    }
    lj_shard_names_free(shards, n);
    return 0;
}
