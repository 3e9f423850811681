/* slots.c — LoRA slot buffers: per layout site, n_phys physical slots of A and B.
 *
 * Site buffers: A [n_phys, r_max, in], B [n_phys, r_max, out] (rank-major: PEFT's
 * lora_B [out, r] transposed as it is written, so a rank-r write is contiguous), plus
 * rank [n_phys] and scale [n_phys]; compiled code reads them through lj_ctx.sites.
 * A and B hold the schema's lora_dtype: f32, or 16 bits, each value rounded to
 * nearest even from its f32 value (so a 16-bit file's values are kept exactly).
 * Invariant: every element of a slot beyond its rank is zero. dirty[site, slot]
 * is the rank last written there, so a write or clear zeroes only the rows
 * between the new rank and that mark: a swap costs O(adapter bytes), never
 * O(model). Writing fails only for an image read with peft_adapter_read_mapped
 * (unchecked), whose values are tested for NaN / Inf as they are converted. A
 * large write splits its sites across the engine's pool (lj_slots_use_pool). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "serving.h"

static void site_free(lj_lora_site *s) {
    free(s->a);
    free(s->b);
    free(s->rank);
    free(s->scale);
}

static void scratch_free(lj_slot_scratch *k) {
    free(k->stage);
    free(k->wide);
    free(k->wide16);
}

/* Allocates k's buffers at s's sizes; false (k freed) when out of memory. */
static bool scratch_new(const lj_slots *s, lj_slot_scratch *k) {
    k->stage = lj_malloc(ST_STAGE_BYTES);
    k->wide = s->wide_n ? lj_malloc(s->wide_n * sizeof(float)) : NULL;
    k->wide16 = s->wide16_n ? lj_malloc(s->wide16_n * sizeof(uint16_t)) : NULL;
    if (k->stage && (!s->wide_n || k->wide) && (!s->wide16_n || k->wide16)) return true;
    scratch_free(k);
    *k = (lj_slot_scratch){0};
    return false;
}

lorajit_status lj_slots_new(const lj_layout *L, lj_slots **out, lj_err *err) {
    lj_slots *s = NULL;
    lorajit_status st = LORAJIT_OK;
    if (!L || !out) return lj_fail(err, LORAJIT_E_ARG, "lj_slots_new: NULL argument");
    int n_phys = L->schema.n_slots + 1, r_max = L->schema.r_max;
    if (L->schema.n_slots < 1 || n_phys > LJ_MAX_SLOTS || r_max < 1)
        return lj_fail(err, LORAJIT_E_ARG, "schema: max_adapters %d must be 1..%d and max_rank %d "
                       "positive", L->schema.n_slots, LJ_MAX_SLOTS - 1, r_max);
    s = lj_calloc(1, sizeof *s);
    if (!s) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating LoRA slots");
    s->n_sites = L->n_sites, s->n_phys = n_phys, s->r_max = r_max, s->dtype = L->schema.lora_dtype;
    size_t esz = s->dtype == LJ_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t), wide = 0, wide16 = 0;
    s->n_scratch = 1;
    s->sites = lj_calloc((size_t)L->n_sites + 1, sizeof *s->sites);
    s->dirty = lj_calloc((size_t)L->n_sites * (size_t)n_phys + 1, sizeof *s->dirty);
    s->in = lj_calloc((size_t)L->n_sites + 1, sizeof *s->in);
    s->out = lj_calloc((size_t)L->n_sites + 1, sizeof *s->out);
    for (int i = 0; i < L->n_sites; i++) {
        size_t big = (size_t)(L->sites[i].in > L->sites[i].out ? L->sites[i].in : L->sites[i].out);
        if (L->sites[i].in > (1 << 24) || L->sites[i].out > (1 << 24)) continue; /* refused below */
        if (wide < big * (size_t)r_max) wide = big * (size_t)r_max;
        if (s->dtype != LJ_DTYPE_F32 && wide16 < (size_t)L->sites[i].out * (size_t)r_max)
            wide16 = (size_t)L->sites[i].out * (size_t)r_max;
    }
    s->wide_n = wide, s->wide16_n = wide16;
    s->scratch = lj_calloc(1, sizeof *s->scratch);
    s->scratch_held = lj_calloc(1, sizeof *s->scratch_held);
    if (!s->sites || !s->dirty || !s->in || !s->out || !s->scratch || !s->scratch_held ||
        !scratch_new(s, &s->scratch[0])) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating LoRA slots");
        goto fail;
    }
    for (int i = 0; i < L->n_sites; i++) {
        const lj_site_desc *sd = &L->sites[i];
        lj_lora_site *site = &s->sites[i];
        if (sd->in < 1 || sd->out < 1 || sd->in > (1 << 24) || sd->out > (1 << 24)) {
            st = lj_fail(err, LORAJIT_E_SHAPE, "layout site %d (layer %d %s): in %lld, out %lld out "
                         "of range", i, sd->layer, lj_arch_module_name(lj_arch_get(L->cfg.arch), sd->module), (long long)sd->in,
                         (long long)sd->out);
            goto fail;
        }
        s->in[i] = sd->in, s->out[i] = sd->out;
        size_t per_slot_a = (size_t)r_max * (size_t)sd->in, per_slot_b = (size_t)r_max * (size_t)sd->out;
        site->a = lj_calloc((size_t)n_phys * per_slot_a, esz);
        site->b = lj_calloc((size_t)n_phys * per_slot_b, esz);
        site->rank = lj_calloc((size_t)n_phys, sizeof(int32_t));
        site->scale = lj_calloc((size_t)n_phys, sizeof(float));
        if (!site->a || !site->b || !site->rank || !site->scale) {
            st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating LoRA slots of layer %d %s "
                         "(%zu bytes)", sd->layer, lj_arch_module_name(lj_arch_get(L->cfg.arch), sd->module),
                         (size_t)n_phys * (per_slot_a + per_slot_b) * esz);
            goto fail;
        }
    }
    *out = s;
    return LORAJIT_OK;
fail:
    lj_slots_free(s);
    return st;
}

void lj_slots_free(lj_slots *s) {
    if (!s) return;
    for (int i = 0; s->sites && i < s->n_sites; i++) site_free(&s->sites[i]);
    free(s->sites);
    free(s->dirty);
    free(s->in);
    free(s->out);
    for (int k = 0; s->scratch && k < s->n_scratch; k++) scratch_free(&s->scratch[k]);
    free(s->scratch);
    free((void *)s->scratch_held);
    free(s);
}

/* How site_write gets an adapter's values: converted from memory, tested or not,
 * or (an unchecked image whose file is open) read by pread and tested. */
typedef struct source {
    const peft_adapter *ad;
    bool check;           /* test for NaN / Inf on the way (ad->unchecked) */
} source;

/* n values of dtype d at raw into dst, as f32, or as d itself when keep (16-bit
 * values going into slots of their own dtype: copied, not widened and narrowed):
 * *bad = the index of the first NaN / Inf when src checks, n when none (or not
 * checked); its value is in dst. */
static lorajit_status fetch(const source *src, void *stage, st_dtype d, bool keep, const void *raw, size_t n,
                            void *dst, size_t *bad, lj_err *err) {
    *bad = n;
    if (n == 0) return LORAJIT_OK;
    if (src->check && src->ad->file && src->ad->file->fd >= 0)
        return st_read_finite(src->ad->file, raw, d, keep, n, dst, stage, bad, err);
    if (keep) { /* a 16-bit image in memory: copied, then tested */
        memcpy(dst, raw, n * st_dtype_size(d));
        if (src->check) *bad = lj_nonfinite_find_dtype(d, dst, n);
    } else if (src->check) {
        *bad = st_convert_f32_finite(d, raw, n, dst);
    } else {
        st_convert_f32(d, raw, n, dst);
    }
    return LORAJIT_OK;
}

/* The BF16 bits of the f32 with bits u, rounded to nearest even (u finite). */
static inline uint16_t bf16_bits(uint32_t u) { return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); }

/* v rounded to nearest even in 16-bit dtype (F16 or BF16) as its bits; v finite. */
static uint16_t narrow16(int dtype, float v) {
    if (dtype == LJ_DTYPE_F16) {
        _Float16 h = (_Float16)v; /* IEEE conversion: round to nearest even */
        uint16_t bits;
        memcpy(&bits, &h, sizeof bits);
        return bits;
    }
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return bf16_bits(u);
}

/* GCC / Clang generic vectors: lowered to whatever the target has (SSE2 at the
 * x86-64 baseline), no CPU feature assumed. -O2's cost model leaves the scalar loop
 * of a 32 -> 16-bit narrowing unvectorised (measured: 42 % of an f32 adapter's load
 * into BF16 slots). */
typedef uint32_t narrow_u32x8 __attribute__((vector_size(32)));
typedef uint16_t narrow_u16x8 __attribute__((vector_size(16)));

/* d[0..n) = BF16 bits of s[0..n) (finite), rounded to nearest even; nonzero when one
 * rounded to +-Inf (0x7f80 and above carry into bit 15 when 0x80 is added). */
LJ_SIMD_CLONES static uint32_t narrow_bf16(const float *s, uint16_t *d, size_t n) {
    narrow_u32x8 hitv = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        narrow_u32x8 u;
        memcpy(&u, s + j, sizeof u);
        narrow_u32x8 h = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16; /* bf16_bits, eight at once */
        hitv |= ((h & 0x7fffu) + 0x80u) & 0x8000u;
        narrow_u16x8 h16 = __builtin_convertvector(h, narrow_u16x8);
        memcpy(d + j, &h16, sizeof h16);
    }
    uint32_t hit = 0;
    for (int k = 0; k < 8; k++) hit |= hitv[k];
    for (; j < n; j++) {
        uint32_t u;
        memcpy(&u, s + j, sizeof u);
        uint16_t h = bf16_bits(u);
        hit |= (uint32_t)((h & 0x7fff) + 0x80) & 0x8000u;
        d[j] = h;
    }
    return hit;
}

/* dst[0..n) = src[0..n) in 16-bit dtype. Returns the index of the first value that
 * rounds to +-Inf (F16 past 65504, BF16 within half an ulp of FLT_MAX), n when none:
 * one rounding pass (vectorised for BF16), searched only when it met one. */
static size_t narrow(int dtype, const float *src, size_t n, uint16_t *dst) {
    uint16_t inf = dtype == LJ_DTYPE_F16 ? 0x7c00 : 0x7f80;
    uint32_t hit = 0;
    if (dtype == LJ_DTYPE_BF16) {
        hit = narrow_bf16(src, dst, n);
    } else {
        for (size_t j = 0; j < n; j++) {
            uint16_t h = narrow16(dtype, src[j]);
            hit |= (uint32_t)((h & 0x7fff) == inf);
            dst[j] = h;
        }
    }
    for (size_t j = 0; hit && j < n; j++)
        if ((dst[j] & 0x7fff) == inf) return j;
    return n;
}

/* The refusal of a value (finite in f32) past the 16-bit slots' range. */
static lorajit_status range_fail(lj_err *err, const char *path, const char *tensor, float v, size_t k, size_t cols,
                                 int dtype) {
    return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor '%s' element [%zu, %zu] is %g, past the range of the LoRA "
                   "slots' %s (lora_dtype); use lora_dtype \"f32\"", path, tensor, k / cols, k % cols, (double)v,
                   lj_kv_dtype_name(dtype));
}

/* dst[j * out + o] = src[o * r + j] for o < out, j < r: B [out, r] into rank-major
 * rows, 4-byte (f32) or 2-byte (16-bit) values. Tiles of 8 x 8 are transposed in
 * registers (generic vectors: three rounds of shuffles, the AVX2 clone's unpacks and
 * permutes; named variables, not arrays, so nothing is spilled: 0.090 against 0.142 ms
 * for a 2816 x 64 B in cache) and stored as 8 contiguous values of a row of dst. The
 * loop runs along out inside a band of 8 rank rows, so dst is written as 8 sequential
 * streams (out-inner before: each tile's 8 stores went 8 rows apart in dst, rows whose
 * addresses a multiple of 4 KiB apart share an L1 set; 1024 x 64 in cache 48 -> 32 us,
 * all-seven rank-64 hotswap 15.5 -> 13.2 ms). Ranks' last r % 8 columns go by tiles of
 * 8 rows x 4 (rank 4, 12: no longer value by value), what is left value by value. */
#define TR_LD(v, p) memcpy(&(v), (p), sizeof(v))
#define TR_ST(p, v)                                                                                        \
    do {                                                                                                   \
        __typeof__(v) tr_v_ = (v);                                                                         \
        memcpy((p), &tr_v_, sizeof tr_v_);                                                                 \
    } while (0)
#define TR_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13)    /* pairs from each 4-lane half */
#define TR_HI(a, b) __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define TR_LO2(a, b) __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13)   /* pairs of pairs */
#define TR_HI2(a, b) __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#define TR_LO4(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)   /* low halves */
#define TR_HI4(a, b) __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15) /* high halves */
#define TR_Q01(a, b) __builtin_shufflevector(a, b, 0, 4, 8, 12, 1, 5, 9, 13) /* columns 0, 1 of 4 rows of 4 */
#define TR_Q23(a, b) __builtin_shufflevector(a, b, 2, 6, 10, 14, 3, 7, 11, 15)
#define DEFINE_TRANSPOSE(name, T)                                                                          \
    typedef T name##_v __attribute__((vector_size(8 * sizeof(T))));                                        \
    LJ_SIMD_CLONES static void name(T *restrict dst, const T *restrict src, size_t out, size_t r) {       \
        size_t o8 = out / 8 * 8, r8 = r / 8 * 8, r4 = r / 4 * 4;                                           \
        for (size_t j = 0; j < r8; j += 8)                                                                 \
            for (size_t o = 0; o < o8; o += 8) {                                                           \
                const T *s = src + o * r + j;                                                              \
                name##_v x0, x1, x2, x3, x4, x5, x6, x7; /* rows o..o+7, columns j..j+7 */                \
                TR_LD(x0, s), TR_LD(x1, s + r), TR_LD(x2, s + 2 * r), TR_LD(x3, s + 3 * r);                \
                TR_LD(x4, s + 4 * r), TR_LD(x5, s + 5 * r), TR_LD(x6, s + 6 * r), TR_LD(x7, s + 7 * r);    \
                name##_v t0 = TR_LO(x0, x1), t1 = TR_HI(x0, x1), t2 = TR_LO(x2, x3), t3 = TR_HI(x2, x3);   \
                name##_v t4 = TR_LO(x4, x5), t5 = TR_HI(x4, x5), t6 = TR_LO(x6, x7), t7 = TR_HI(x6, x7);   \
                /* u0..u3: columns (0, 4), (1, 5), (2, 6), (3, 7) of rows 0-3; u4..u7 of rows 4-7 */       \
                name##_v u0 = TR_LO2(t0, t2), u1 = TR_HI2(t0, t2), u2 = TR_LO2(t1, t3), u3 = TR_HI2(t1, t3); \
                name##_v u4 = TR_LO2(t4, t6), u5 = TR_HI2(t4, t6), u6 = TR_LO2(t5, t7), u7 = TR_HI2(t5, t7); \
                T *d = dst + j * out + o;                                                                  \
                TR_ST(d, TR_LO4(u0, u4));                                                                  \
                TR_ST(d + out, TR_LO4(u1, u5));                                                            \
                TR_ST(d + 2 * out, TR_LO4(u2, u6));                                                        \
                TR_ST(d + 3 * out, TR_LO4(u3, u7));                                                        \
                TR_ST(d + 4 * out, TR_HI4(u0, u4));                                                        \
                TR_ST(d + 5 * out, TR_HI4(u1, u5));                                                        \
                TR_ST(d + 6 * out, TR_HI4(u2, u6));                                                        \
                TR_ST(d + 7 * out, TR_HI4(u3, u7));                                                        \
            }                                                                                              \
        for (size_t j = r8; j < r4; j += 4)                                                                \
            for (size_t o = 0; o < o8; o += 8) {                                                           \
                const T *s = src + o * r + j;                                                              \
                T q[8 * 4]; /* rows o..o+7, columns j..j+3: two rows a vector */                          \
                for (int k = 0; k < 8; k++) memcpy(q + 4 * k, s + (size_t)k * r, 4 * sizeof(T));          \
                name##_v v01, v23, v45, v67;                                                               \
                TR_LD(v01, q), TR_LD(v23, q + 8), TR_LD(v45, q + 16), TR_LD(v67, q + 24);                  \
                /* t0, t1: columns (0, 1), (2, 3) of rows 0-3; t2, t3 of rows 4-7 */                      \
                name##_v t0 = TR_Q01(v01, v23), t1 = TR_Q23(v01, v23);                                     \
                name##_v t2 = TR_Q01(v45, v67), t3 = TR_Q23(v45, v67);                                     \
                T *d = dst + j * out + o;                                                                  \
                TR_ST(d, TR_LO4(t0, t2));                                                                  \
                TR_ST(d + out, TR_HI4(t0, t2));                                                            \
                TR_ST(d + 2 * out, TR_LO4(t1, t3));                                                        \
                TR_ST(d + 3 * out, TR_HI4(t1, t3));                                                        \
            }                                                                                              \
        for (size_t j = 0; j < r; j++) /* the edges: columns past r4, rows past o8 */                      \
            for (size_t o = j < r4 ? o8 : 0; o < out; o++) dst[j * out + o] = src[o * r + j];             \
    }
DEFINE_TRANSPOSE(transpose32, uint32_t)
DEFINE_TRANSPOSE(transpose16, uint16_t)

/* Writes rank-r data (A [r, in] of a_dtype, B [out, r] of b_dtype, converted to the
 * slots' dtype on the way: f32 directly, 16 bits of the slots' own dtype copied, other
 * values through k->wide and rounded; B read whole into k->wide, then transposed into
 * the slot's rank-major rows; w NULL with r = 0) into one slot of one site and zeroes
 * the rows an earlier, larger write left between r and the dirty mark. When src
 * checks, a NaN / Inf fails naming the file, the tensor and the element (and a failed
 * read fails); so does, always, a value past 16-bit slots' range. The slot is then
 * left rank 0 with the dirty mark covering what was written (the slot is unowned:
 * nothing reads it, the next write zeroes it). */
static lorajit_status site_write(lj_slots *s, const lj_slot_scratch *k, int site, int slot, int64_t in,
                                 int64_t out, int r, const peft_site_w *w, const source *src, lj_err *err) {
    lj_lora_site *ls = &s->sites[site];
    int32_t *dirty = &s->dirty[(size_t)site * (size_t)s->n_phys + (size_t)slot];
    int r_max = s->r_max, old = *dirty;
    bool wide = s->dtype != LJ_DTYPE_F32;
    st_dtype slot_st = lj_dtype_st(s->dtype);
    bool keep_a = wide && r > 0 && w->a_dtype == slot_st, keep_b = wide && r > 0 && w->b_dtype == slot_st;
    size_t esz = wide ? sizeof(uint16_t) : sizeof(float);
    unsigned char *da = (unsigned char *)ls->a + (size_t)slot * (size_t)r_max * (size_t)in * esz;  /* [r_max, in] */
    unsigned char *db = (unsigned char *)ls->b + (size_t)slot * (size_t)r_max * (size_t)out * esz; /* [r_max, out] */
    /* where fetch puts the values: A straight into its slot rows (f32, or kept 16 bits),
       else k->wide to be rounded; B as it lies in the file, [out, r], into k->wide (f32 or
       kept 16 bits), to be rounded into wide16 (16-bit slots, other dtypes) and transposed */
    void *fa = wide && !keep_a ? (void *)k->wide : da, *fb = k->wide;
    size_t na = (size_t)r * (size_t)in, nb = (size_t)out * (size_t)r, bad_a = na, bad_b = nb, big_a = na, big_b = nb;
    LJ_ASSERT(r >= 0 && r <= r_max && old >= 0 && old <= r_max);
    *dirty = old > r ? old : r; /* until the write is complete */
    lorajit_status st = LORAJIT_OK;
    if (r > 0) st = fetch(src, k->stage, w->a_dtype, keep_a, w->a_raw, na, fa, &bad_a, err);
    if (!st && bad_a == na && r > 0 && wide && !keep_a)
        big_a = narrow(s->dtype, fa, na, (uint16_t *)da);
    const void *bt = NULL; /* B [out, r] in the slots' dtype, to be transposed into the slot */
    if (!st && bad_a == na && big_a == na && r > 0) {
        if (!src->check && w->b_dtype == slot_st && (uintptr_t)w->b_raw % esz == 0) {
            bt = w->b_raw; /* in memory, tested already (a host copy): transposed straight in */
        } else if (!(st = fetch(src, k->stage, w->b_dtype, keep_b, w->b_raw, nb, fb, &bad_b, err)) && bad_b == nb) {
            bool round = wide && !keep_b;
            if (round) big_b = narrow(s->dtype, fb, nb, k->wide16);
            bt = !round ? fb : big_b == nb ? k->wide16 : NULL;
        }
    }
    if (bt && wide) transpose16((uint16_t *)db, bt, (size_t)out, (size_t)r);
    else if (bt) transpose32((uint32_t *)db, bt, (size_t)out, (size_t)r);
    if (st || bad_a < na || bad_b < nb || big_a < na || big_b < nb) {
        ls->rank[slot] = 0, ls->scale[slot] = 0.0f;
        if (st) return st;
        const char *path = src->ad && src->ad->file ? src->ad->file->path : "adapter";
        size_t ka = bad_a < na ? bad_a : big_a, kb = bad_b < nb ? bad_b : big_b; /* in file order, both */
        float va = 0, vb = 0; /* the value named, as f32, from where fetch put it */
        st_dtype ta = keep_a ? slot_st : ST_F32, tb = keep_b ? slot_st : ST_F32;
        if (ka < na) st_convert_f32(ta, (unsigned char *)fa + ka * st_dtype_size(ta), 1, &va);
        else st_convert_f32(tb, (unsigned char *)fb + kb * st_dtype_size(tb), 1, &vb);
        if (bad_a < na) return lj_nonfinite_fail(err, path, w->a_name, va, bad_a, (size_t)in);
        if (big_a < na) return range_fail(err, path, w->a_name, va, big_a, (size_t)in, s->dtype);
        if (bad_b < nb) return lj_nonfinite_fail(err, path, w->b_name, vb, bad_b, (size_t)r);
        return range_fail(err, path, w->b_name, vb, big_b, (size_t)r, s->dtype);
    }
    if (old > r) { /* rows r..old of A and of B, left by a larger write */
        memset(da + na * esz, 0, (size_t)(old - r) * (size_t)in * esz);
        memset(db + nb * esz, 0, (size_t)(old - r) * (size_t)out * esz);
    }
    ls->rank[slot] = r;
    ls->scale[slot] = r > 0 ? w->scale : 0.0f;
    *dirty = r;
    return LORAJIT_OK;
}

/* One write of an adapter into a slot, its sites cut among threads (write_sites). */
typedef struct write_job {
    lj_slots *s;
    int slot;
    const peft_adapter *ad;
    source src;
    _Atomic int bad_site;  /* the lowest site whose write failed (n_sites: none) */
    pthread_mutex_t mu;    /* guards st and err */
    lorajit_status st;     /* bad_site's status */
    lj_err *err;           /* bad_site's message */
} write_job;

/* The index in ad->w (ordered by site id: peft_adapter_read sorts it) of site's
 * weights, -1 when ad does not cover it. */
static int find_site(const peft_adapter *ad, int site) {
    int lo = 0, hi = ad->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ad->w[mid].site < site) lo = mid + 1;
        else hi = mid;
    }
    return lo < ad->n && ad->w[lo].site == site ? lo : -1;
}

/* lj_task_fn: writes sites [lo, hi) of the job in a scratch of its own (at most
 * n_scratch run at once: the pool's threads), stopping at its first failure or once
 * a lower site failed; the lowest failure is the job's, the one a write site by site
 * would have stopped at. */
static void write_sites(void *arg, int64_t lo, int64_t hi) {
    write_job *j = arg;
    lj_slots *s = j->s;
    int k = 0;
    while (atomic_flag_test_and_set_explicit(&s->scratch_held[k], memory_order_acquire)) k = (k + 1) % s->n_scratch;
    for (int site = (int)lo; site < hi && site < atomic_load_explicit(&j->bad_site, memory_order_relaxed); site++) {
        int i = find_site(j->ad, site);
        const peft_site_w *w = i >= 0 ? &j->ad->w[i] : NULL;
        lj_err err;
        lorajit_status st = site_write(s, &s->scratch[k], site, j->slot, s->in[site], s->out[site], w ? w->rank : 0,
                                       w, &j->src, &err);
        if (!st) continue;
        pthread_mutex_lock(&j->mu);
        if (site < atomic_load(&j->bad_site)) {
            atomic_store(&j->bad_site, site);
            j->st = st;
            if (j->err) *j->err = err;
        }
        pthread_mutex_unlock(&j->mu);
        break;
    }
    atomic_flag_clear_explicit(&s->scratch_held[k], memory_order_release);
}

/* A write of LJ_SLOTS_SPLIT_BYTES or more runs on the pool, its sites split among
 * the threads (a site is one thread's: the slot's bits do not depend on the split);
 * a smaller one, or one that finds the pool busy with a compiled call (a swap while
 * serving: the step keeps the pool, the swap runs on its own thread), on the caller.
 * Measured (`lorajit bench --only-swaps`, 2 threads, alternated with the build
 * before): a rank-64 all-seven hotswap of 38.5 MiB 19.7-21.3 -> 6.9-7.4 ms, a BF16
 * rank-16 adapter into f32 slots 17.1-19.7 -> 8.3 ms, into BF16 slots 7.5-7.9 ->
 * 4.5-5.5 ms. */
lorajit_status lj_slots_write(lj_slots *s, int slot, const peft_adapter *ad, lj_err *err) {
    LJ_ASSERT(s && ad && slot >= 0 && slot < s->n_phys);
    write_job j = {.s = s, .slot = slot, .ad = ad, .src = {.ad = ad, .check = ad->unchecked}, .err = err};
    atomic_init(&j.bad_site, s->n_sites);
    pthread_mutex_init(&j.mu, NULL);
    if (s->n_scratch > 1 && ad->bytes >= LJ_SLOTS_SPLIT_BYTES) lj_pool_run(s->pool, write_sites, &j, s->n_sites);
    else write_sites(&j, 0, s->n_sites);
    pthread_mutex_destroy(&j.mu);
    return j.st;
}

lorajit_status lj_slots_use_pool(lj_slots *s, lj_pool *pool, lj_err *err) {
    int n = lj_pool_threads(pool);
    if (n <= s->n_scratch) return LORAJIT_OK;
    lj_slot_scratch *k = lj_calloc((size_t)n, sizeof *k);
    atomic_flag *held = lj_calloc((size_t)n, sizeof *held);
    bool ok = k && held;
    for (int i = 1; ok && i < n; i++) ok = scratch_new(s, &k[i]);
    if (!ok) {
        for (int i = 1; k && i < n; i++) scratch_free(&k[i]);
        free(k);
        free((void *)held);
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory: a LoRA write scratch for each of %d threads", n);
    }
    k[0] = s->scratch[0];
    for (int i = 0; i < n; i++) atomic_flag_clear(&held[i]);
    free(s->scratch);
    free((void *)s->scratch_held);
    s->scratch = k, s->scratch_held = held, s->n_scratch = n, s->pool = pool;
    return LORAJIT_OK;
}

/* Whether a tensor of dtype d may hold a value past the range of 16-bit slots of
 * dtype: F16 slots from any other dtype, BF16 slots from F32 or F64. */
static bool may_pass_range(int dtype, st_dtype d) {
    if (dtype == LJ_DTYPE_F16) return d != ST_F16;
    return dtype == LJ_DTYPE_BF16 && (d == ST_F32 || d == ST_F64);
}

lorajit_status lj_slots_check(const lj_slots *s, const peft_adapter *ad, lj_err *err) {
    const char *path = ad->file ? ad->file->path : "adapter";
    for (int j = 0; j < ad->n; j++) {
        const peft_site_w *w = &ad->w[j];
        for (int b = 0; b < 2; b++) {
            size_t cols = (size_t)(b ? w->rank : s->in[w->site]);
            size_t n = (size_t)w->rank * (size_t)(b ? s->out[w->site] : s->in[w->site]);
            st_dtype dt = b ? w->b_dtype : w->a_dtype;
            const unsigned char *raw = b ? w->b_raw : w->a_raw;
            size_t k = ad->unchecked ? lj_nonfinite_find_dtype(dt, raw, n) : n;
            float v;
            if (k < n) {
                st_convert_f32(dt, raw + k * st_dtype_size(dt), 1, &v);
                return lj_nonfinite_fail(err, path, b ? w->b_name : w->a_name, v, k, cols);
            }
            for (k = 0; may_pass_range(s->dtype, dt) && k < n; k++) {
                st_convert_f32(dt, raw + k * st_dtype_size(dt), 1, &v);
                if (isfinite(v) && (narrow16(s->dtype, v) & 0x7fff) == (s->dtype == LJ_DTYPE_F16 ? 0x7c00 : 0x7f80))
                    return range_fail(err, path, b ? w->b_name : w->a_name, v, k, cols, s->dtype);
            }
        }
    }
    return LORAJIT_OK;
}

void lj_slots_clear(lj_slots *s, int slot) {
    LJ_ASSERT(s && slot >= 0 && slot < s->n_phys);
    for (int i = 0; i < s->n_sites; i++)
        site_write(s, &s->scratch[0], i, slot, s->in[i], s->out[i], 0, NULL, &(source){0}, NULL); /* rank 0: cannot fail */
}
