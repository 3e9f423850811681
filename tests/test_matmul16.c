/* test_matmul16.c — the 16-bit matmul (BF16 and F16 weights) against a plain loop, for
 * every row count 1..200 (cg_matmul16.c takes them all: the FMA kernel widens W in
 * registers up to 16 rows and into a tile above) and
 * shapes whose K and N are not multiples of the vector width, more than one K block
 * (K > 1024) included. Each shape is compiled for this host as it is, with
 * LORAJIT_NO_NATIVE_BF16=1 (the FMA kernel) and, on a host with AVX512-BF16, with
 * LORAJIT_NATIVE_BF16=1 (vdpbf16ps), skipping a mode that gives the host's code again;
 * each is run on a pool of 2 threads
 * (3 on 2 busy cores took 15x longer) and without a pool, which must agree bit for bit,
 * and a row's result must not depend on the rows beside it: the same bits for every n
 * (decode batches and prompt chunks rely on it; the code must say rows_exact).
 * The reference widens W by its own decoding of the bit patterns and sums in double.
 * BF16 is also compiled with LORAJIT_BF16_ROUND_X=1 (x rounded to BF16 once), and both
 * for the x86-64-v3 (AVX2, F16C, FMA) and x86-64 (SSE2) levels (packed, 8 lanes).
 * Bound: |got - want| <= tol * sum_k |x_k w_k|, tol 2e-5 on the native and AMX kernels (x is
 * kept as two BF16 parts, ~2^-17 relative), 4e-3 with x rounded once (2^-9 relative:
 * 2e-3, plus the sums) and 2e-6 otherwise (exact products, f32 sums).
 * Recipe: add a shape to SHAPES. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compiler.h"
#include "serving.h"

enum { MAXN = 200 }; /* rows of x: every count 1..MAXN is run */
/* as compiled and run: plain (with ctx->matmul_bf16_amx where this host may use AMX),
 * LORAJIT_NO_NATIVE_BF16=1, LORAJIT_NATIVE_BF16=1, LORAJIT_BF16_ROUND_X=1, plain
 * without matmul_bf16_amx */
enum { MODE_HOST, MODE_PACKED, MODE_NATIVE, MODE_ROUND_X, MODE_NO_AMX };
static const char *const MODE_ENV[] = {NULL, "LORAJIT_NO_NATIVE_BF16", "LORAJIT_NATIVE_BF16", "LORAJIT_BF16_ROUND_X",
                                       NULL};

static const struct { int in, out; } SHAPES[] = {
    {16, 7}, {40, 33}, {96, 64}, {200, 130}, {1100, 37},
    {64, 48}, {1088, 80}, {4096, 32}, /* AMX's shapes (out % 16, in % 32 == 0): an odd 16-row block of W,
                                          34 K blocks, x packed in two goes (wconv holds 128 rows) */
};

static uint32_t rng = 2463534242u;
static float frand(void) { /* xorshift32 in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return (float)((rng >> 8) / 8388608.0 - 1.0);
}

/* The reference's own decoding of a 16-bit pattern. */
static double bf16_value(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}
static double f16_value(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}
/* f32 -> 16-bit pattern by truncation (any pattern of the format will do as data). */
static uint16_t to16(float f, ir_dtype kind) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if (kind == IR_BF16) return (uint16_t)(b >> 16);
    int e = (int)((b >> 23) & 255) - 127 + 15;
    uint16_t s = (uint16_t)((b >> 16) & 0x8000);
    if (e <= 0) return s; /* tiny: zero */
    return (uint16_t)(s | (e << 10) | ((b >> 13) & 1023));
}

typedef struct result {
    double worst;  /* largest |got - want| / (tol sum |x w|) */
    bool native;   /* the code used vdpbf16ps */
    bool amx;      /* ... or AMX tiles (lj_matmul_bf16_amx) */
    bool has_bf16; /* the target has AVX512-BF16 */
} result;

/* Compiles embed(x table) -> matmul(W of kind) -> output, runs it for n = 1..MAXN on
 * pool and serially, and compares with the reference at tol. */
static result run_shape(int in, int out, ir_dtype kind, int mode, const char *cpu, lj_pool *pool) {
    result res = {0, false, false, false};
    if (MODE_ENV[mode]) setenv(MODE_ENV[mode], "1", 1);
    ir_graph *g = ir_graph_new(8, MAXN);
    ir_node *tok = ir_input(g, "tokens");
    ir_node *table = ir_weight(g, "embed", -1, MAXN, in);
    ir_node *w = ir_weight(g, "w", -1, out, in);
    ir_set_weight_dtype(g, w, kind);
    ir_output(g, ir_matmul(g, ir_embed(g, table, tok, "embed"), w, "mm"), "logits");
    lj_err err = {0};
    pipeline_code code = {0};
    bool ok = !ir_verify(g) && !ir_plan(g) && !ir_verify(g) &&
              pipeline_code_build(g, &(pipeline_target){.cpu = cpu}, &code, &err) == LORAJIT_OK;
    if (MODE_ENV[mode]) unsetenv(MODE_ENV[mode]);
    CHECK(ok, "compile %dx%d %s: %s %s", out, in, ir_dtype_name(kind), g->msg, err.msg);
    if (!ok) {
        ir_graph_free(g);
        return res;
    }
    res.has_bf16 = strstr(code.features, "+avx512bf16") != NULL;
    res.native = kind == IR_BF16 && code.matmuls.bf16_dot;
    res.amx = res.native && code.matmuls.amx && mode != MODE_NO_AMX && lj_amx_ready() && out % 16 == 0 &&
              in % 32 == 0;
    CHECK(code.matmuls.rows_exact, "%s %dx%d: the code does not say rows_exact", ir_dtype_name(kind), out, in);
    CHECK(mode != MODE_PACKED || !res.native, "LORAJIT_NO_NATIVE_BF16=1 left vdpbf16ps on");
    CHECK(mode != MODE_NATIVE || res.native || kind != IR_BF16 || !res.has_bf16,
          "LORAJIT_NATIVE_BF16=1 did not give vdpbf16ps on a target with AVX512-BF16");
    float *x = malloc(sizeof(float) * MAXN * in);
    uint16_t *w16 = malloc(2u * (size_t)out * in);
    double *wd = malloc(sizeof(double) * (size_t)out * in);
    for (int i = 0; i < MAXN * in; i++) x[i] = frand() * (i % 7 == 0 ? 8.0f : 1.0f);
    for (int i = 0; i < out * in; i++) {
        w16[i] = to16(frand() * (i % 5 == 0 ? 0.01f : 0.5f), kind);
        wd[i] = kind == IR_BF16 ? bf16_value(w16[i]) : f16_value(w16[i]);
    }
    int32_t tokens[MAXN];
    for (int i = 0; i < MAXN; i++) tokens[i] = i;
    size_t scratch_n = (size_t)(g->scratch_per_token * MAXN + g->scratch_fixed);
    float *scratch = calloc(scratch_n, sizeof(float));
    float *got = malloc(sizeof(float) * MAXN * out), *serial = malloc(sizeof(float) * MAXN * out);
    const void *weights[2] = {x, w16};
    lj_ctx ctx = {.weights = weights, .scratch = scratch, .sgemm = (lj_sgemm_fn)cblas_sgemm,
                  .sgemv = (lj_sgemv_fn)cblas_sgemv, .small_rows = LJ_SMALL_ROWS, .parallel = lj_pool_run,
                  .matmul_bf16_amx = mode != MODE_NO_AMX && lj_amx_ready() ? lj_matmul_bf16_amx : NULL};
    double tol = !res.native ? 2e-6 : mode == MODE_ROUND_X ? 4e-3 : 2e-5;
    double *want = malloc(sizeof(double) * MAXN * out), *mag = malloc(sizeof(double) * MAXN * out);
    for (int m = 0; m < MAXN; m++) /* row m's result does not depend on n */
        for (int o = 0; o < out; o++) {
            double sum = 0, abs_sum = 0;
            for (int k = 0; k < in; k++) {
                double p = x[m * in + k] * wd[(size_t)o * in + k];
                sum += p, abs_sum += fabs(p);
            }
            want[m * out + o] = sum, mag[m * out + o] = abs_sum;
        }
    /* the rows at the largest n: every n must give the same bits */
    float *ref_big = malloc(sizeof(float) * MAXN * out);
    ctx.pool = pool;
    code.forward(&ctx, tokens, MAXN, 0, ref_big);
    long mismatched = 0, row_dependent = 0;
    for (int n = 1; n <= MAXN; n++) {
        ctx.pool = pool;
        code.forward(&ctx, tokens, n, 0, got);
        ctx.pool = NULL;
        code.forward(&ctx, tokens, n, 0, serial);
        if (memcmp(got, serial, sizeof(float) * (size_t)n * out)) mismatched++;
        if (memcmp(got, ref_big, sizeof(float) * (size_t)n * out)) row_dependent++;
        for (int i = 0; i < n * out; i++) {
            double q = fabs(got[i] - want[i]) / (tol * mag[i] + 1e-30);
            if (!(q <= res.worst)) res.worst = q; /* NaN too */
        }
    }
    const char *path = res.amx ? "amx" : res.native ? "vdpbf16ps" : "fma";
    CHECK(res.worst <= 1, "%s %dx%d (%s): worst error %.3g x bound", ir_dtype_name(kind), out, in, path, res.worst);
    CHECK(mismatched == 0, "%s %dx%d: %ld row counts differ between the pool and one thread", ir_dtype_name(kind),
          out, in, mismatched);
    CHECK(row_dependent == 0, "%s %dx%d (%s): at %ld row counts a row differs from the same row at another count",
          ir_dtype_name(kind), out, in, path, row_dependent);
    free(ref_big);
    free(x), free(w16), free(wd), free(want), free(mag), free(scratch), free(got), free(serial);
    pipeline_code_free(&code);
    ir_graph_free(g);
    return res;
}

int main(void) {
    lj_pool *pool = NULL;
    lj_err err = {0};
    CHECK(lj_pool_new(2, &pool, &err) == LORAJIT_OK, "pool: %s", err.msg);
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int kind = 0; kind < 2; kind++) {
            ir_dtype k = kind ? IR_F16 : IR_BF16;
            result host = {0};
            for (int mode = MODE_HOST; mode <= MODE_NO_AMX; mode++) {
                /* modes that would compile the host's code again */
                if (k == IR_F16 && mode != MODE_HOST) continue; /* F16 takes the FMA kernel in every mode */
                if (mode == MODE_PACKED && !host.native) continue;
                if ((mode == MODE_NATIVE || mode == MODE_ROUND_X) && !host.has_bf16) continue; /* FMA again */
                if (mode == MODE_NATIVE && host.native) continue;
                if (mode == MODE_NO_AMX && (!host.amx || !lj_amx_ready())) continue;
                result r = run_shape(SHAPES[s].in, SHAPES[s].out, k, mode, NULL, pool);
                if (mode == MODE_HOST) host = r;
                printf("  %-4s W [%4d, %4d] %-9s rows 1..%d: worst %.3f x bound\n", ir_dtype_name(k), SHAPES[s].out,
                       SHAPES[s].in, !r.native ? "fma" : r.amx ? "amx" : mode == MODE_ROUND_X ? "dpbf16 x1" : "dpbf16",
                       MAXN, r.worst);
            }
        }
    /* older x86-64 levels (JIT, run on this host): AVX2 + F16C + FMA, and SSE2 only */
    static const char *const levels[2] = {"x86-64-v3", "x86-64"};
    for (int l = 0; l < 2; l++)
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
            for (int kind = 0; kind < 2; kind++) {
                ir_dtype k = kind ? IR_F16 : IR_BF16;
                result r = run_shape(SHAPES[s].in, SHAPES[s].out, k, MODE_HOST, levels[l], pool);
                printf("  %-4s W [%4d, %4d] %-9s rows 1..%d, %s: worst %.3f x bound\n", ir_dtype_name(k),
                       SHAPES[s].out, SHAPES[s].in, "fma", MAXN, levels[l], r.worst);
            }
    lj_pool_free(pool);
    return check_summary("matmul16");
}
