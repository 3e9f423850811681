/* fuzz_elf.c — libFuzzer harness for lj_elf_symbols, the reader of an artifact
 * library's exported symbols (runtime/formats/elf.c), which reads a file before it
 * is loaded and so must survive any bytes.
 *
 * Input: the bytes of a would-be shared library; the harness asks for the entry
 * points and every constant an artifact exports (lj_library_consts_read). Accepted: each constant was copied
 * (ASan reports a read outside the input); refused: with a message. */
#include <string.h>

#include "fuzz.h"
#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1); /* exactly size bytes, so ASan sees any overread */
    if (!copy) return 0;
    memcpy(copy, data, size);
    lj_library_consts k;
    lj_err err = {0};
    lorajit_status st = lj_library_consts_read(copy, size, "liblorajit_model.so", &k, &err);
    if (st != LORAJIT_OK) FUZZ_CHECK_REFUSAL(st, err);
    free(copy);
    return 0;
}
