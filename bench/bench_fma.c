/* bench_fma.c — the FMA peak: multiply-adds per second that T threads reach running
 * independent chains of vector FMAs as wide as the compiled kernels' (16 lanes where
 * the host has AVX-512, as codegen gives it zmm kernels; else 8 with AVX2 + FMA; else
 * 4, multiply then add; other architectures: scalar multiply-adds). Section 4 divides a decode step's multiply-adds by it: the
 * compute side of the step's bound, beside the bytes side (read bandwidth). */
#include <pthread.h>
#include <string.h>

#include "bench.h"

enum { FMA_ITERS = 1 << 19, FMA_MAX_THREADS = 64 };

/* 16 chains a = a * x + y, n rounds (x < 1: the values stay finite and normal). */
#define FMA_BODY(V, SET1, FMA, ADD, LANES)                                                                \
    V a0 = SET1(0.f), a1 = SET1(1.f), a2 = SET1(2.f), a3 = SET1(3.f), a4 = SET1(4.f), a5 = SET1(5.f);    \
    V a6 = SET1(6.f), a7 = SET1(7.f), a8 = SET1(8.f), a9 = SET1(9.f), a10 = SET1(10.f), a11 = SET1(11.f); \
    V a12 = SET1(12.f), a13 = SET1(13.f), a14 = SET1(14.f), a15 = SET1(15.f);                             \
    V x = SET1(0.999f), y = SET1(1e-3f);                                                                  \
    for (long i = 0; i < n; i++) {                                                                        \
        a0 = FMA(a0, x, y), a1 = FMA(a1, x, y), a2 = FMA(a2, x, y), a3 = FMA(a3, x, y);                   \
        a4 = FMA(a4, x, y), a5 = FMA(a5, x, y), a6 = FMA(a6, x, y), a7 = FMA(a7, x, y);                   \
        a8 = FMA(a8, x, y), a9 = FMA(a9, x, y), a10 = FMA(a10, x, y), a11 = FMA(a11, x, y);               \
        a12 = FMA(a12, x, y), a13 = FMA(a13, x, y), a14 = FMA(a14, x, y), a15 = FMA(a15, x, y);           \
    }                                                                                                     \
    V s = ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),                          \
              ADD(ADD(ADD(a8, a9), ADD(a10, a11)), ADD(ADD(a12, a13), ADD(a14, a15))));                   \
    float lanes[LANES];                                                                                   \
    memcpy(lanes, &s, sizeof lanes);                                                                      \
    return lanes[0];

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static float chains16(long n) {
    FMA_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16)
}
__attribute__((target("avx2,fma"))) static float chains8(long n) {
    FMA_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8)
}
#define MULADD4(a, x, y) _mm_add_ps(_mm_mul_ps(a, x), y)
static float chains4(long n) { FMA_BODY(__m128, _mm_set1_ps, MULADD4, _mm_add_ps, 4) }
static int host_lanes(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 4;
}
#else
#define SET1F(v) (v)
#define MULADD1(a, x, y) ((a) * (x) + (y))
#define ADD1(a, b) ((a) + (b))
static float chains1(long n) { FMA_BODY(float, SET1F, MULADD1, ADD1, 1) }
static float chains16(long n) { return chains1(n); }
static float chains8(long n) { return chains1(n); }
static float chains4(long n) { return chains1(n); }
static int host_lanes(void) { return 1; }
#endif

typedef struct fma_thread {
    bench_fma *f;
    float sink;
} fma_thread;

static void *fma_part(void *p) {
    fma_thread *t = p;
    long n = FMA_ITERS;
    t->sink = t->f->lanes == 16 ? chains16(n) : t->f->lanes == 8 ? chains8(n) : chains4(n); /* 1: chains4 is scalar */
    return NULL;
}

void bench_fma_init(bench_fma *f, int threads) {
    f->threads = threads < 1 ? 1 : threads > FMA_MAX_THREADS ? FMA_MAX_THREADS : threads;
    f->lanes = host_lanes();
    f->macs = (double)f->threads * FMA_ITERS * 16 * f->lanes;
}

void bench_fma_once(void *p) {
    bench_fma *f = p;
    pthread_t tid[FMA_MAX_THREADS];
    fma_thread t[FMA_MAX_THREADS];
    for (int i = 0; i < f->threads; i++) t[i] = (fma_thread){f, 0};
    for (int i = 1; i < f->threads; i++)
        if (pthread_create(&tid[i], NULL, fma_part, &t[i]) != 0) bench_die("pthread_create failed");
    fma_part(&t[0]);
    for (int i = 1; i < f->threads; i++) pthread_join(tid[i], NULL);
    for (int i = 0; i < f->threads; i++) f->sink += t[i].sink;
}
