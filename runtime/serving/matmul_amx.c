/* matmul_amx.c — the BF16 matmul on Intel's AMX tiles (ctx.h lj_matmul16_fn):
 * y[n, out] = x[n, in] W[out, in]^T with W in BF16 as it lies in memory.
 *
 * TDPBF16PS multiplies a 16 x 32 BF16 tile by a 32 x 16 one into 16 x 16 f32 sums
 * (exact products, f32 accumulation). The A tile is read straight from W: 16 of its
 * rows, 32 elements (64 bytes) each, one tile load with W's row stride; so W is never
 * widened or copied. The B tile wants its 32 x 16 operand in pairs along K ("VNNI":
 * row i holds, for each of 16 columns, elements 2i and 2i + 1), which is x
 * transposed: the calling thread packs x into that layout once per call, split as
 * the generated native kernel splits it (hi = bf16(x), lo = bf16(x - hi): x kept to
 * about 2^-17), so C = W x^T is [16 rows of W, 16 rows of x] and is stored
 * transposed into y. Units of 32 rows of W are shared among the pool's threads; a
 * unit runs as two 16-row tiles of W against two 16-row blocks of x at a time (4
 * accumulator tiles, 2 of W, 2 of x). Every element of y sums the same products in the same order (K
 * blocks ascending, hi before lo) whatever n, the blocks beside it or the threads, so
 * a row's bits do not depend on the rows computed with it (decode == prefill).
 *
 * Use needs the CPU (CPUID: AMX-TILE, AMX-BF16, AVX512-BF16 for the packing) and the
 * kernel's leave (Linux: arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, once per
 * process): lj_amx_ready() asks both, once. LORAJIT_NO_AMX=1 says no (to test or
 * time the other kernels on an AMX host). Built only for x86-64 with GCC or Clang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serving.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))

enum { TILE_BYTES = 1024, KB = 32 /* K per tile */, MB = 16 /* rows of x per tile */ };

/* The tile configuration (palette 1): tiles 0..3 accumulate, 4..5 hold W, 6..7 x;
 * every tile 16 rows of 64 bytes. */
typedef struct __attribute__((packed, aligned(64))) tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* One call's operands, shared by its tasks. xs: [n_mb][n_kb][2 parts] tiles. */
typedef struct amx_args {
    const uint16_t *xs, *w;
    float *y;
    int64_t n, out, in, n_mb, n_kb;
} amx_args;

/* 1 when CPUID shows AMX-TILE, AMX-BF16, AVX512F/BW and AVX512-BF16, and XCR0 has
 * the AVX-512 and AMX states on. */
static int cpu_has_amx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1, f = (b >> 16) & 1, bw = (b >> 30) & 1, osx = 0;
    unsigned a1, b1, c1, d1;
    int avx_bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1);
    if (__get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1)) { /* OSXSAVE: XGETBV may run */
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        uint64_t xcr0 = ((uint64_t)hi << 32) | lo;
        osx = (xcr0 & 0xe6) == 0xe6 && (xcr0 & (3u << 17)) == (3u << 17); /* SSE, AVX, opmask, ZMM; XTILE */
    }
    return tile && bf16 && f && bw && avx_bf16 && osx;
}

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    const char *no = getenv("LORAJIT_NO_AMX");
    if (no && *no && strcmp(no, "0")) return;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    amx_ok = cpu_has_amx() && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

bool lj_amx_ready(void) {
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

/* Packs rows [0, n) of x [n, in] (rows past n: zero) into xs as B tiles: for row
 * block mb, K block kb and part p (0 hi, 1 lo), the tile at ((mb * n_kb + kb) * 2 + p)
 * holds dword [i][j] = the part's BF16 pair (x[16 mb + j][32 kb + 2i], ...[+ 1]). */
AMX_TARGET static void pack_x(const float *x, uint16_t *xs, int64_t n, int64_t in, int64_t n_mb, int64_t n_kb) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(16)); /* dword i goes to row i of the tile */
    if (n < n_mb * MB) /* the last block's rows past n: zero (its tiles whole, then the rows that exist) */
        memset(xs + (n_mb - 1) * n_kb * TILE_BYTES, 0, (size_t)n_kb * 2 * TILE_BYTES);
    for (int64_t m = 0; m < n; m++) {
        int64_t mb = m / MB, j = m % MB;
        for (int64_t kb = 0; kb < n_kb; kb++) {
            uint32_t *hi_tile = (uint32_t *)(xs + ((mb * n_kb + kb) * 2) * (TILE_BYTES / 2));
            uint32_t *lo_tile = hi_tile + TILE_BYTES / 4;
            const float *src = x + m * in + kb * KB;
            __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16);
            __m512i hi = (__m512i)_mm512_cvtne2ps_pbh(v1, v0); /* lane l = bf16(src[l]) */
            /* the hi parts widened back: the low and high halves' 16-bit lanes << 16 */
            __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hi)), 16));
            __m512 h1 = _mm512_castsi512_ps(
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hi, 1)), 16));
            __m512i lo = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(v1, h1), _mm512_sub_ps(v0, h0));
            _mm512_i32scatter_epi32(hi_tile + j, idx, hi, 4);
            _mm512_i32scatter_epi32(lo_tile + j, idx, lo, 4);
        }
    }
}

/* Stores accumulator tile t (rows: 16 rows of W from o0; columns: 16 rows of x from
 * m0) into y, rows of x past n and rows of W past out left out. */
#define STORE_C(t, o0, m0)                                                                           \
    do {                                                                                             \
        _tile_stored(t, c, 64);                                                                      \
        for (int64_t j = 0; j < MB && (m0) + j < a->n; j++)                                          \
            for (int i = 0; i < 16; i++) a->y[((m0) + j) * a->out + (o0) + i] = c[i * 16 + j];        \
    } while (0)

/* Unit u (rows o0 = 32 u .. + 32 of W; the last may have 16: o1 == o0, computed twice,
 * stored once) against the 16-row block mb of x and, when there is one, mb + 1, into y.
 * Each accumulator sums its products in the same order (K blocks ascending, hi before
 * lo) whether or not the second block of x is there. Tiles configured by the caller;
 * c: [256] floats of room. */
AMX_TARGET static inline void unit_blocks(const amx_args *a, int64_t u, int64_t mb, float *c) {
    size_t ldw = (size_t)a->in * 2;
    int64_t o0 = u * 32, o1 = o0 + 16 < a->out ? o0 + 16 : o0;
    bool two = mb + 1 < a->n_mb;
    const uint16_t *w0 = a->w + o0 * a->in, *w1 = a->w + o1 * a->in;
    const uint16_t *x0 = a->xs + mb * a->n_kb * TILE_BYTES, *x1 = x0 + a->n_kb * TILE_BYTES;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t kb = 0; kb < a->n_kb; kb++) {
        _tile_loadd(4, w0 + kb * KB, ldw);
        _tile_loadd(5, w1 + kb * KB, ldw);
        for (int p = 0; p < 2; p++) { /* hi, then lo */
            _tile_loadd(6, x0 + (kb * 2 + p) * (TILE_BYTES / 2), 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(2, 5, 6);
            if (two) {
                _tile_loadd(7, x1 + (kb * 2 + p) * (TILE_BYTES / 2), 64);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(3, 5, 7);
            }
        }
    }
    STORE_C(0, o0, mb * MB);
    if (two) STORE_C(1, o0, (mb + 1) * MB);
    if (o1 != o0) {
        STORE_C(2, o1, mb * MB);
        if (two) STORE_C(3, o1, (mb + 1) * MB);
    }
}

/* lj_task_fn: units [u0, u1) of 32 rows of W (the last may have 16) against every
 * row of x, two 16-row blocks of x at a time (unit_blocks). Units go in groups whose
 * rows of W fit in about 1 MiB, and each pair of blocks of x runs against the whole
 * group before the next: W comes from memory once and then from L2, and x is read
 * once per group rather than once per unit. */
AMX_TARGET static void amx_task(void *arg, int64_t u0, int64_t u1) {
    const amx_args *a = arg;
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    float c[256] __attribute__((aligned(64)));
    int64_t group = (1 << 20) / (64 * a->in); /* units: 32 rows of in BF16 each */
    if (group < 1) group = 1;
    for (int64_t g0 = u0; g0 < u1; g0 += group) {
        int64_t g1 = g0 + group < u1 ? g0 + group : u1;
        for (int64_t mb = 0; mb < a->n_mb; mb += 2)
            for (int64_t u = g0; u < g1; u++) unit_blocks(a, u, mb, c);
    }
    _tile_release();
}

int lj_matmul_bf16_amx(const float *x, void *xs, int64_t xs_rows, const uint16_t *w, int64_t n, float *y,
                       int64_t out, int64_t in, lj_parallel_fn parallel, void *pool) {
    if (out % 16 || in % KB || xs_rows < MB || n < 1) return 0;
    int64_t chunk = xs_rows / MB * MB; /* rows of x per packing: whole tiles within xs */
    for (int64_t m0 = 0; m0 < n; m0 += chunk) {
        int64_t rows = n - m0 < chunk ? n - m0 : chunk;
        amx_args a = {.xs = xs, .w = w, .y = y + m0 * out, .n = rows, .out = out, .in = in,
                      .n_mb = (rows + MB - 1) / MB, .n_kb = in / KB};
        pack_x(x + m0 * in, xs, rows, in, a.n_mb, a.n_kb);
        parallel(pool, amx_task, &a, (out + 31) / 32);
    }
    return 1;
}

#else /* no AMX on this architecture or compiler */

bool lj_amx_ready(void) { return false; }

int lj_matmul_bf16_amx(const float *x, void *xs, int64_t xs_rows, const uint16_t *w, int64_t n, float *y,
                       int64_t out, int64_t in, lj_parallel_fn parallel, void *pool) {
    (void)x, (void)xs, (void)xs_rows, (void)w, (void)n, (void)y, (void)out, (void)in, (void)parallel, (void)pool;
    return 0;
}

#endif
