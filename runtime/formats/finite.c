/* finite.c — finding NaN and Inf in f32 arrays.
 *
 * Input: n floats: an adapter's A/B values at load (peft.c), the logits a forward,
 * prefill or decode step produced (serving/). Output: the index of the first value
 * that is NaN or +-Inf (n when there is none) and a word for it; the same for
 * F16 / BF16 bits in a mapped adapter file (lj_nonfinite_find16). The scan tests
 * the exponent bits of a block of values with integer ands, adds and ors, which
 * the compiler vectorises, and looks for the index only inside a block that has one. */
#include <string.h>

#include "formats.h"

#define FINITE_BLOCK 64 /* values per vectorised test */

LJ_SIMD_CLONES size_t lj_nonfinite_find(const float *x, size_t n) {
    size_t i = 0;
    for (; i + FINITE_BLOCK <= n; i += FINITE_BLOCK) { /* vectorised: and, add, or */
        uint32_t bad = 0;
        for (size_t k = 0; k < FINITE_BLOCK; k++) {
            uint32_t bits;
            memcpy(&bits, x + i + k, sizeof bits); /* x may be unaligned */
            bad |= lj_nonfinite_bit(bits);
        }
        if (bad) break;
    }
    for (; i < n; i++) { /* the block that has one, or the tail */
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        if (lj_nonfinite_bit(bits)) return i;
    }
    return n;
}

/* Index of the first F16 / BF16 value of p[0..n) (2-byte, maybe unaligned) whose
 * exponent bits are all ones (NaN, +-Inf), n if none; exp_mask 0x7c00 (F16) or
 * 0x7f80 (BF16). Blocks of 64 are tested with ands and ors (vectorised). */
LJ_SIMD_CLONES size_t lj_nonfinite_find16(const void *src, size_t n, uint16_t exp_mask) {
    const unsigned char *p = src;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint16_t hit = 0;
        for (size_t k = 0; k < 64; k++) {
            uint16_t h;
            memcpy(&h, p + 2 * (i + k), 2);
            hit |= (uint16_t)((h & exp_mask) == exp_mask);
        }
        if (hit) break;
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        if ((h & exp_mask) == exp_mask) return i;
    }
    return n;
}

size_t lj_nonfinite_find_dtype(st_dtype dt, const void *raw, size_t n) {
    switch (dt) {
    case ST_F16: return lj_nonfinite_find16(raw, n, 0x7c00u);
    case ST_BF16: return lj_nonfinite_find16(raw, n, 0x7f80u);
    default: return lj_nonfinite_find(raw, n); /* F32; reads unaligned */
    }
}

const char *lj_nonfinite_word(float v) {
    if (v != v) return "NaN";
    if (v > 0) return "+Inf";
    return v < 0 ? "-Inf" : "a finite value";
}

lorajit_status lj_nonfinite_fail(lj_err *err, const char *path, const char *tensor, float v, size_t k, size_t cols) {
    return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor '%s' holds %s at element %zu (row %zu, column %zu); adapter "
                   "weights must be finite", path, tensor, lj_nonfinite_word(v), k, k / cols, k % cols);
}
