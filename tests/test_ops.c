/* test_ops.c — one test per IR op: JIT-compiled code against a plain C loop.
 *
 * Recipe for a new op: add its line to ir/ops.h, then a case in op_test() below
 * (the switch has no default, so the build fails until you do) and a test_* that
 * builds  tokens -> embed -> <your op> -> matmul -> output  and a reference.
 * Every graph is compiled through the real pipeline (ir_verify, ir_plan, then
 * pipeline_code_build: codegen, default<O3>, LLJIT) and run at T = 1 (the sgemv
 * path), T = 5 (the generated small-batch matmul) and T = 12 (sgemm); with F32,
 * F16 and BF16 weights (16-bit: the generated loop up to 8 rows, widened blocks
 * for sgemm above). Tolerance: |got - want| <= 1e-4 + 1e-4 |want|. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compiler.h"
#include "serving.h"

enum { V = 11, D = 16, VOUT = 7, R_MAX = 8, SEQ = 16, NH = 4, NKV = 2, HS = 4, KVD = NKV * HS,
       KV_BLOCK = 4 /* positions per KV cache block (ctx.h): the split runs cross blocks */ };

/* A tiny deterministic generator of test data. */
static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f - 0.5f);
}
static float *randv(unsigned *s, int n, float scale) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) p[i] = frand(s) * scale;
    return p;
}

/* Test state: the graph, weights by id, and the LoRA site for LORA tests. */
typedef struct optest {
    ir_graph *g;
    const void *w[8]; /* by weight id */
    int n_w;
    lj_lora_site site;
    lj_active active;
    bool serial;      /* run without the thread pool */
} optest;

static lj_pool *pool3; /* three threads: uneven splits of the row loops */

static ir_node *weight_of(optest *t, const void *data, ir_dtype dtype, const char *name, int64_t rows,
                          int64_t cols) {
    t->w[t->n_w++] = data;
    ir_node *w = ir_weight(t->g, name, -1, rows, cols);
    ir_set_weight_dtype(t->g, w, dtype);
    return w;
}
static ir_node *weight(optest *t, float *data, const char *name, int64_t rows, int64_t cols) {
    return weight_of(t, data, IR_F32, name, rows, cols);
}

/* Compiles t->g and runs it over tokens at pos0 (twice when split: [0, n/2) then
 * [n/2, n), to exercise the KV cache), writing logits [n, VOUT]. */
static bool run(optest *t, const int32_t *tokens, int n, bool split, float *logits) {
    lj_err err = {0};
    ir_graph *g = t->g;
    if (ir_verify(g) || ir_plan(g) || ir_verify(g)) {
        CHECK(0, "graph rejected: %s", g->msg);
        return false;
    }
    pipeline_code code;
    if (pipeline_code_build(g, &(pipeline_target){0}, &code, &err) != LORAJIT_OK) { /* JIT for this host */
        CHECK(0, "codegen/jit: %s", err.msg);
        return false;
    }
    lj_forward_fn fwd = code.forward;
    size_t scratch_n = (size_t)(g->scratch_per_token * SEQ + g->scratch_fixed);
    float *scratch = calloc(scratch_n, sizeof(float));
    float *kc = calloc(SEQ * KVD, sizeof(float)), *vc = calloc(SEQ * KVD, sizeof(float));
    int32_t table[SEQ / KV_BLOCK]; /* the paged cache (one layer): blocks of KV_BLOCK in reverse order */
    for (int b = 0; b < SEQ / KV_BLOCK; b++) table[b] = SEQ / KV_BLOCK - 1 - b;
    float rope[HS / 2 + 1]; /* the runtime's table for theta 10000 (what the rope op's reference uses) */
    for (int i = 0; i < HS / 2; i++) rope[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HS);
    rope[HS / 2] = 1.0f;
    lj_ctx ctx = {.weights = t->w, .sites = &t->site, .active = &t->active, .scratch = scratch,
                  .key_cache = kc, .value_cache = vc, .sgemm = (lj_sgemm_fn)cblas_sgemm,
                  .sgemv = (lj_sgemv_fn)cblas_sgemv, .small_rows = 8, .parallel = lj_pool_run,
                  .pool = t->serial ? NULL : pool3, .rope = rope, .block_table = table,
                  .block_size = KV_BLOCK};
    if (split && n > 1) {
        int h = n / 2;
        fwd(&ctx, tokens, h, 0, logits);
        fwd(&ctx, tokens + h, n - h, h, logits + (size_t)h * VOUT);
    } else {
        fwd(&ctx, tokens, n, 0, logits);
    }
    free(scratch);
    free(kc);
    free(vc);
    pipeline_code_free(&code);
    return true;
}

/* ---- naive references ---- */
static void ref_matmul(const float *x, const float *w, int n, int out, int in, float *y) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += (double)x[t * in + i] * w[o * in + i];
            y[t * out + o] = (float)s;
        }
}
static void ref_embed(const float *table, const int32_t *tok, int n, float *x) {
    for (int t = 0; t < n; t++) memcpy(x + t * D, table + tok[t] * D, D * sizeof(float));
}

/* The shared frame: tokens -> embed -> middle(x) -> matmul(out_w) -> output. */
typedef struct frame {
    unsigned seed;
    float *table, *out_w;
} frame;

static ir_node *frame_begin(optest *t, frame *f) {
    f->seed = 12345;
    f->table = randv(&f->seed, V * D, 2.0f);
    f->out_w = randv(&f->seed, VOUT * D, 1.0f);
    ir_node *tok = ir_input(t->g, "tokens");
    ir_node *table = weight(t, f->table, "embed", V, D);
    return ir_embed(t->g, table, tok, "embed");
}
static void frame_end(optest *t, frame *f, ir_node *y) {
    ir_node *w = weight(t, f->out_w, "lm_head", VOUT, y->shape[1]);
    ir_output(t->g, ir_matmul(t->g, y, w, "lm_head"), "logits");
}

enum { MAXT = 12 }; /* T = 1: sgemv; 5: the generated small-batch matmul; 12: sgemm */
static const int32_t TOKENS[MAXT] = {3, 0, 10, 3, 7, 1, 9, 2, 2, 8, 5, 4};

/* Runs the graph at n tokens and compares with the reference middle output y [n, D]. */
static void compare(const char *what, optest *t, frame *f, const float *y_ref, int n, bool split) {
    float *got = calloc((size_t)n * VOUT, sizeof(float)), *want = calloc((size_t)n * VOUT, sizeof(float));
    if (run(t, TOKENS, n, split, got)) {
        ref_matmul(y_ref, f->out_w, n, VOUT, D, want);
        long worst;
        double r = check_close_ratio(got, want, (long)n * VOUT, 1e-4, 1e-4, &worst);
        CHECK(r <= 1.0, "%s n=%d: worst element %ld got %g want %g", what, n, worst, got[worst], want[worst]);
    }
    free(got);
    free(want);
}

static void test_chain(int n) { /* INPUT, WEIGHT, EMBED, MATMUL, OUTPUT */
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    frame_end(&t, &f, x);
    float y[MAXT * D];
    ref_embed(f.table, TOKENS, n, y);
    compare("chain", &t, &f, y, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w);
}

/* Gemma's scaled embedding (scale = sqrt(D) as f32): rows times scale */
static void test_embed_scaled(int n) {
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    f.seed = 12345;
    f.table = randv(&f.seed, V * D, 2.0f);
    f.out_w = randv(&f.seed, VOUT * D, 1.0f);
    ir_node *tok = ir_input(t.g, "tokens");
    float scale = sqrtf((float)D);
    frame_end(&t, &f, ir_embed_scaled(t.g, weight(&t, f.table, "embed", V, D), tok, scale, "embed"));
    float y[MAXT * D];
    ref_embed(f.table, TOKENS, n, y);
    for (int i = 0; i < n * D; i++) y[i] *= scale;
    compare("embed scaled", &t, &f, y, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w);
}

/* per_head: NH heads of HS each normalised alone with w [HS] (Qwen3's q_norm);
 * w_offset 1: the weight taken as 1 + w (Gemma's GemmaRMSNorm) */
static void test_rmsnorm(int n, bool per_head, float w_offset) {
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    int d = per_head ? HS : D;
    float *w = randv(&f.seed, d, 1.0f);
    ir_node *wn = weight(&t, w, "norm", d, 0);
    frame_end(&t, &f, per_head ? ir_head_rmsnorm(t.g, x, wn, NH, HS, 1e-5f, "norm")
                               : ir_rmsnorm_offset(t.g, x, wn, 1e-5f, w_offset, "norm"));
    float xs[MAXT * D], y[MAXT * D];
    ref_embed(f.table, TOKENS, n, xs);
    for (int r = 0; r < n * (D / d); r++) {
        double ss = 0;
        for (int i = 0; i < d; i++) ss += (double)xs[r * d + i] * xs[r * d + i];
        double inv = 1.0 / sqrt(ss / d + 1e-5);
        for (int i = 0; i < d; i++) y[r * d + i] = (float)((w[i] + w_offset) * xs[r * d + i] * inv);
    }
    compare(per_head ? "rmsnorm per head" : "rmsnorm", &t, &f, y, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w), free(w);
}

static void test_bias_add(int n) {
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    float *w1 = randv(&f.seed, D * D, 1.0f), *b = randv(&f.seed, D, 1.0f);
    ir_node *y = ir_matmul(t.g, x, weight(&t, w1, "w1", D, D), "proj");
    frame_end(&t, &f, ir_bias_add(t.g, y, weight(&t, b, "b", D, 0), "proj.bias"));
    float xs[MAXT * D], ys[MAXT * D];
    ref_embed(f.table, TOKENS, n, xs);
    ref_matmul(xs, w1, n, D, D, ys);
    for (int i = 0; i < n * D; i++) ys[i] += b[i % D];
    compare("bias_add", &t, &f, ys, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w), free(w1), free(b);
}

static void test_lora(int n) {
    enum { SLOTS = 3 };
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    float *w1 = randv(&f.seed, D * D, 1.0f);
    float *a = randv(&f.seed, SLOTS * R_MAX * D, 1.0f), *bb = randv(&f.seed, SLOTS * R_MAX * D, 1.0f);
    int32_t rank[SLOTS] = {3, 8, 5};
    float scale[SLOTS] = {2.0f, 0.25f, 0.5f};
    t.site = (lj_lora_site){.a = a, .b = bb, .rank = rank, .scale = scale};
    t.active = (lj_active){.n = 2, .slot = {0, 2}, .weight = {1.0f, -0.5f}};
    ir_node *y = ir_matmul(t.g, x, weight(&t, w1, "w1", D, D), "layers.0.self_attn.q_proj");
    frame_end(&t, &f, ir_lora(t.g, y, x, 0, "layers.0.self_attn.q_proj.lora"));
    float xs[MAXT * D], ys[MAXT * D];
    ref_embed(f.table, TOKENS, n, xs);
    ref_matmul(xs, w1, n, D, D, ys);
    for (int k = 0; k < t.active.n; k++) {
        int s = t.active.slot[k], r = rank[s];
        double sc = (double)scale[s] * t.active.weight[k];
        for (int row = 0; row < n; row++)
            for (int o = 0; o < D; o++) {
                double acc = 0;
                for (int j = 0; j < r; j++) {
                    double ax = 0;
                    for (int i = 0; i < D; i++) ax += (double)a[(s * R_MAX + j) * D + i] * xs[row * D + i];
                    acc += bb[(s * R_MAX + j) * D + o] * ax; /* B rank-major: [slot, r_max, out] */
                }
                ys[row * D + o] += (float)(sc * acc);
            }
    }
    compare("lora", &t, &f, ys, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w), free(w1), free(a), free(bb);
}

static void test_rope(int n) {
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    frame_end(&t, &f, ir_rope(t.g, x, NH, HS, 10000.0f, "rope"));
    float ys[MAXT * D];
    ref_embed(f.table, TOKENS, n, ys);
    for (int p = 0; p < n; p++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < HS / 2; i++) {
                double ang = p / pow(10000.0, 2.0 * i / HS);
                float *r = ys + p * D + h * HS;
                double x1 = r[i], x2 = r[i + HS / 2];
                r[i] = (float)(x1 * cos(ang) - x2 * sin(ang));
                r[i + HS / 2] = (float)(x2 * cos(ang) + x1 * sin(ang));
            }
    compare("rope", &t, &f, ys, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w);
}

/* window > 0: Mistral's sliding window, query p sees keys j with p - j < window */
static void test_attention(int n, bool split, int window) {
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    float *wq = randv(&f.seed, D * D, 1.0f), *wk = randv(&f.seed, KVD * D, 1.0f), *wv = randv(&f.seed, KVD * D, 1.0f);
    ir_node *q = ir_matmul(t.g, x, weight(&t, wq, "wq", D, D), "layers.0.q");
    ir_node *k = ir_matmul(t.g, x, weight(&t, wk, "wk", KVD, D), "layers.0.k");
    ir_node *v = ir_matmul(t.g, x, weight(&t, wv, "wv", KVD, D), "layers.0.v");
    frame_end(&t, &f, ir_attention(t.g, q, k, v, NH, NKV, HS, window, "layers.0.attention"));
    float xs[MAXT * D], qs[MAXT * D], ks[MAXT * KVD], vs[MAXT * KVD], ys[MAXT * D];
    ref_embed(f.table, TOKENS, n, xs);
    ref_matmul(xs, wq, n, D, D, qs);
    ref_matmul(xs, wk, n, KVD, D, ks);
    ref_matmul(xs, wv, n, KVD, D, vs);
    for (int p = 0; p < n; p++)
        for (int h = 0; h < NH; h++) {
            int kvh = h / (NH / NKV);
            double sc[MAXT], mx = -1e30, sum = 0;
            int j0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            for (int j = j0; j <= p; j++) {
                double s = 0;
                for (int i = 0; i < HS; i++) s += (double)qs[p * D + h * HS + i] * ks[j * KVD + kvh * HS + i];
                sc[j] = s / sqrt((double)HS);
                if (sc[j] > mx) mx = sc[j];
            }
            for (int j = j0; j <= p; j++) sum += (sc[j] = exp(sc[j] - mx));
            for (int i = 0; i < HS; i++) {
                double o = 0;
                for (int j = j0; j <= p; j++) o += sc[j] / sum * vs[j * KVD + kvh * HS + i];
                ys[p * D + h * HS + i] = (float)o;
            }
        }
    compare(window ? (split ? "attention window 3 (two calls, KV cache)" : "attention window 3")
                   : (split ? "attention (two calls, KV cache)" : "attention"), &t, &f, ys, n, split);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w), free(wq), free(wk), free(wv);
}

static void test_two_input(int n, ir_op op) { /* SILU_MUL, GELU_MUL or ADD */
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    float *w2 = randv(&f.seed, D * D, 1.0f);
    ir_node *u = ir_matmul(t.g, x, weight(&t, w2, "w2", D, D), "up");
    frame_end(&t, &f, op == IR_OP_SILU_MUL ? ir_silu_mul(t.g, x, u, "silu_mul")
                      : op == IR_OP_GELU_MUL ? ir_gelu_mul(t.g, x, u, "gelu_mul") : ir_add(t.g, x, u, "add"));
    float xs[MAXT * D], us[MAXT * D], ys[MAXT * D];
    ref_embed(f.table, TOKENS, n, xs);
    ref_matmul(xs, w2, n, D, D, us);
    for (int i = 0; i < n * D; i++) {
        double a = xs[i]; /* gelu_tanh: torch's GeluType::Tanh */
        double gelu = 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
        ys[i] = op == IR_OP_SILU_MUL ? (float)(a / (1.0 + exp(-a)) * us[i])
                : op == IR_OP_GELU_MUL ? (float)(gelu * us[i]) : xs[i] + us[i];
    }
    compare(ir_op_name(op), &t, &f, ys, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w), free(w2);
}

/* SLICE: columns 5..5+D of a [T, 2D] matmul (an unaligned start, as Phi-3's k in qkv) */
static void test_slice(int n) {
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    frame f;
    ir_node *x = frame_begin(&t, &f);
    float *w2 = randv(&f.seed, 2 * D * D, 1.0f);
    ir_node *u = ir_matmul(t.g, x, weight(&t, w2, "w2", 2 * D, D), "qkv");
    frame_end(&t, &f, ir_slice(t.g, u, 5, D, "k"));
    float xs[MAXT * D], us[MAXT * 2 * D], ys[MAXT * D];
    ref_embed(f.table, TOKENS, n, xs);
    ref_matmul(xs, w2, n, 2 * D, D, us);
    for (int r = 0; r < n; r++) memcpy(ys + r * D, us + r * 2 * D + 5, D * sizeof(float));
    compare("slice", &t, &f, ys, n, false);
    ir_graph_free(t.g);
    free(f.table), free(f.out_w), free(w2);
}

/* 16-bit weights: bits -> value from the formats' definitions (an independent
 * reference for the kernels' widening). */
static float f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)((h & 0x8000) ? -v : v);
}
static float bf16_value(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* n random 16-bit values of dtype kind into bits, their f32 values into vals.
 * F16 spans subnormals (exponent 0) to |x| < 4; BF16 is the top half of x in [-1, 1). */
static void rand16(unsigned *s, ir_dtype kind, int n, uint16_t *bits, float *vals) {
    for (int i = 0; i < n; i++) {
        if (kind == IR_F16) {
            *s = *s * 1664525u + 1013904223u;
            unsigned r = *s >> 8;
            bits[i] = (uint16_t)((r & 0x8000) | ((r % 18) << 10) | ((r >> 5) & 1023));
            vals[i] = f16_value(bits[i]);
        } else {
            float x = frand(s) * 2.0f;
            uint32_t u;
            memcpy(&u, &x, 4);
            bits[i] = (uint16_t)(u >> 16);
            vals[i] = bf16_value(bits[i]);
        }
    }
}

/* embed (table of kind) -> matmul (W [BIG, D] of kind) -> lm_head (f32). BIG rows
 * make the 16-bit prefill path widen W in more than one block, the last one
 * partial, and the row loops run on the pool (BIG % 4 != 0: a short last unit);
 * the same graph run without the pool must give the same bits. */
static void test_matmul_big(ir_dtype kind, int n) {
    enum { BIG = IR_WCONV_FLOATS / D + 1001 };
    optest t = {.g = ir_graph_new(R_MAX, SEQ)};
    unsigned seed = 777u + (unsigned)kind;
    uint16_t *tb = malloc(sizeof(uint16_t) * V * D), *wb = malloc(sizeof(uint16_t) * (size_t)BIG * D);
    float *tv = malloc(sizeof(float) * V * D), *wv = malloc(sizeof(float) * (size_t)BIG * D);
    const void *table = tb, *wmat = wb;
    if (kind == IR_F32) {
        for (int i = 0; i < V * D; i++) tv[i] = frand(&seed);
        for (int i = 0; i < BIG * D; i++) wv[i] = frand(&seed);
        table = tv, wmat = wv;
    } else {
        rand16(&seed, kind, V * D, tb, tv);
        rand16(&seed, kind, BIG * D, wb, wv);
    }
    float *out_w = randv(&seed, VOUT * BIG, 0.05f);
    ir_node *tok = ir_input(t.g, "tokens");
    ir_node *x = ir_embed(t.g, weight_of(&t, table, kind, "embed", V, D), tok, "embed");
    ir_node *y = ir_matmul(t.g, x, weight_of(&t, wmat, kind, "w_big", BIG, D), "big");
    ir_output(t.g, ir_matmul(t.g, y, weight(&t, out_w, "lm_head", VOUT, BIG), "lm_head"), "logits");
    CHECK(ir_wconv_rows(BIG, D) < BIG && BIG % ir_wconv_rows(BIG, D) != 0, "two blocks, the last partial");
    float xs[MAXT * D], *ys = malloc(sizeof(float) * (size_t)n * BIG);
    for (int i = 0; i < n; i++) memcpy(xs + i * D, tv + TOKENS[i] * D, D * sizeof(float));
    ref_matmul(xs, wv, n, BIG, D, ys);
    float *got = calloc((size_t)n * VOUT, sizeof(float)), *want = calloc((size_t)n * VOUT, sizeof(float));
    float *serial = calloc((size_t)n * VOUT, sizeof(float));
    if (run(&t, TOKENS, n, false, got)) {
        ref_matmul(ys, out_w, n, VOUT, BIG, want);
        long worst;
        double r = check_close_ratio(got, want, (long)n * VOUT, 1e-4, 1e-4, &worst);
        CHECK(r <= 1.0, "matmul %s n=%d: worst element %ld got %g want %g", ir_dtype_name(kind), n, worst,
              got[worst], want[worst]);
        t.serial = true;
        if (run(&t, TOKENS, n, false, serial))
            CHECK(memcmp(got, serial, sizeof(float) * (size_t)n * VOUT) == 0,
                  "matmul %s n=%d: 3 threads and 1 differ", ir_dtype_name(kind), n);
    }
    ir_graph_free(t.g);
    free(tb), free(wb), free(tv), free(wv), free(out_w), free(ys), free(got), free(want), free(serial);
}

/* Runs the test that covers op; returns false if there is none. */
static bool op_test(ir_op op, int n) {
    switch (op) {
    case IR_OP_INPUT:
    case IR_OP_WEIGHT:
    case IR_OP_EMBED:
    case IR_OP_MATMUL:
    case IR_OP_OUTPUT:
        test_chain(n);
        test_matmul_big(IR_F32, n);
        test_matmul_big(IR_F16, n);
        test_matmul_big(IR_BF16, n);
        test_embed_scaled(n);
        return true;
    case IR_OP_RMSNORM: test_rmsnorm(n, false, 0); test_rmsnorm(n, true, 0); test_rmsnorm(n, false, 1); return true;
    case IR_OP_BIAS_ADD: test_bias_add(n); return true;
    case IR_OP_LORA: test_lora(n); return true;
    case IR_OP_ROPE: test_rope(n); return true;
    case IR_OP_ATTENTION:
        for (int window = 0; window <= 3; window += 3) test_attention(n, false, window), test_attention(n, true, window);
        return true;
    case IR_OP_SILU_MUL:
    case IR_OP_GELU_MUL:
    case IR_OP_ADD: test_two_input(n, op); return true;
    case IR_OP_SLICE: test_slice(n); return true;
    case IR_OP_COUNT: break;
    }
    return false;
}

int main(void) {
    int covered = 0;
    lj_err err = {0};
    CHECK(lj_pool_new(3, &pool3, &err) == LORAJIT_OK, "pool: %s", err.msg);
    for (int op = 0; op < IR_OP_COUNT; op++) {
        bool ok = op_test((ir_op)op, 1) && op_test((ir_op)op, 5) && op_test((ir_op)op, MAXT);
        CHECK(ok, "op %s has no test", ir_op_name((ir_op)op));
        covered += ok;
    }
    CHECK(covered == IR_OP_COUNT, "%d of %d ops tested", covered, IR_OP_COUNT);
    lj_pool_free(pool3);
    return check_summary("test_ops");
}
