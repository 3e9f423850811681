/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader.
 *
 * Input: the bytes of a .safetensors file. Runs st_open_buffer (header length,
 * JSON header, dtypes, shapes, data_offsets, overlaps), then on an accepted file
 * checks its promises (names sorted and distinct, every range inside the data
 * section and of the shape's byte size, st_find finds each tensor) and converts
 * every F32 / F16 / BF16 tensor with st_to_f32 (other dtypes must be refused). */
#include <string.h>

#include "fuzz.h"
#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file *f = NULL;
    lj_err err = {0};
    lorajit_status st = st_open_buffer(data, size, "fuzz.safetensors", &f, &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK(f == NULL);
        FUZZ_CHECK_REFUSAL(st, err);
        return 0;
    }
    FUZZ_CHECK(f && f->n_tensors >= 0 && f->data_start >= 8 && f->data_start <= size);
    uint64_t data_size = size - f->data_start;
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        FUZZ_CHECK(i == 0 || strcmp(f->tensors[i - 1].name, t->name) < 0);
        FUZZ_CHECK(st_find(f, t->name) == t);
        FUZZ_CHECK(t->begin <= t->end && t->end <= data_size);
        FUZZ_CHECK((const uint8_t *)t->data == data + f->data_start + t->begin);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= 8 && t->dtype < ST_DTYPE_COUNT);
        uint64_t count = 1;
        for (int k = 0; k < t->ndim; k++) {
            FUZZ_CHECK(t->shape[k] >= 0);
            count *= (uint64_t)t->shape[k]; /* cannot overflow: the parse checked */
        }
        FUZZ_CHECK(count * st_dtype_size(t->dtype) == t->end - t->begin);
        float *dst = malloc(count ? count * sizeof(float) : 1);
        FUZZ_CHECK(dst != NULL);
        lj_err cerr = {0};
        lorajit_status cs = st_to_f32(f, t, dst, &cerr);
        bool floaty = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        FUZZ_CHECK(floaty ? cs == LORAJIT_OK : cs == LORAJIT_E_UNSUPPORTED && cerr.msg[0]);
        free(dst);
    }
    FUZZ_CHECK(st_find(f, "\x01 not a tensor name") == NULL);
    st_close(f);
    return 0;
}
