/* fuzz_elf.c — libFuzzer harness for lj_elf_symbols, the reader of an artifact
 * library's exported symbols (runtime/formats/elf.c), which reads a file before it
 * is loaded and so must survive any bytes.
 *
 * Input: the bytes of a would-be shared library; the harness asks for the entry
 * points and every constant an artifact exports. Accepted: each constant was copied
 * (ASan reports a read outside the input); refused: with a message. */
#include <string.h>

#include "fuzz.h"
#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t abi = 0;
    uint64_t hash = 0;
    int64_t per_token = 0, fixed = 0;
    uint8_t digest[LJ_SHA256_BYTES];
    lj_elf_sym syms[] = {{LJ_FORWARD_SYMBOL, 0, NULL}, {LJ_DECODE_SYMBOL, 0, NULL},
                         {LJ_ABI_SYMBOL, sizeof abi, &abi}, {LJ_CODE_HASH_SYMBOL, sizeof hash, &hash},
                         {LJ_SCRATCH_PER_TOKEN_SYMBOL, sizeof per_token, &per_token},
                         {LJ_SCRATCH_FIXED_SYMBOL, sizeof fixed, &fixed},
                         {LJ_LAYOUT_DIGEST_SYMBOL, sizeof digest, digest}};
    char *copy = malloc(size ? size : 1); /* exactly size bytes, so ASan sees any overread */
    if (!copy) return 0;
    memcpy(copy, data, size);
    lj_err err = {0};
    lorajit_status st = lj_elf_symbols(copy, size, "liblorajit_model.so", syms, sizeof syms / sizeof syms[0], &err);
    if (st != LORAJIT_OK) FUZZ_CHECK_REFUSAL(st, err);
    free(copy);
    return 0;
}
