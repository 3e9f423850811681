/* test_lora16.c — LoRA slots in 16 bits (issue 14: options.lora_dtype "bf16" / "f16").
 * (1) Exact: adapters whose values are exact in BF16 and F16 (rt_adapters_fixture's
 *     tval), one in an F32 file and one in a BF16 file, give through 16-bit slots the
 *     f32 slots' logits bit for bit: lorajit_forward past 8 rows (the BLAS path: A and B
 *     widened into scratch, then the same sgemm calls), chunked prefill and whole-prompt
 *     steps (the row loop), and decode steps of three sequences each with its own
 *     adapters (one with two, weighted; the rows shared among the pool's threads).
 * (2) Rounding: the conformance adapter a_all (f32 values from PEFT's init) through
 *     16-bit slots moves the logits, by less than TOL_K * u * (the adapter's effect), and
 *     bf16 (u = 2^-8) by more than f16 (u = 2^-11): the rounding happens, to the format
 *     asked for.
 * (2b) Round to nearest even, bit for bit: an F32 file whose values are not exact in
 *     BF16 (low 16 bits varied, ties every fifth value) through bf16 slots gives the
 *     logits of an F32 file holding those values rounded by this test (nearest of the
 *     two neighbouring BF16 values in double, ties to the even one) through f32 slots;
 *     and 3.4e38 (rounds to Inf in BF16) is refused by bf16 slots naming its element.
 * (3) Range: a value past f16's range (1e5 in an F32 file) is refused by f16 slots naming
 *     the file's tensor and element, and the engine is as it was (the loaded adapter
 *     still gives its logits); bf16 slots take it. (test_lora_dtype: the option and schema
 *     refusals, the manifest and artifacts.)
 * Run from tests/ with the build dir as argv[1] (adapters are written under it). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorajit.h"
#include "lorajit_serving.h"
#include "rt_adapters_fixture.h"

#define MODEL "conformance/models/llama-tiny"
#define SEQ 64
#define N_PRE 24 /* past the 8 rows of the row loop: the BLAS path */
#define N_DEC 6
#define N_SEQ 3

static const char *const dtypes[3] = {NULL, "bf16", "f16"}; /* NULL: the default, f32 */

static lorajit_engine *open_lora(const char *dtype) {
    lorajit_options o = {.max_rank = R_MAX, .max_adapters = 4, .max_batch = N_SEQ + 1, .max_seq_len = SEQ,
                         .max_tokens = SEQ, .lora_dtype = dtype};
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, MODEL, &o);
    CHECK(s == LORAJIT_OK, "open (lora_dtype %s): %s", dtype ? dtype : "NULL",
          e ? lorajit_errmsg(e) : lorajit_status_str(s));
    if (s == LORAJIT_OK) return e;
    lorajit_engine_free(e);
    return NULL;
}

static int32_t tok(int i, int vocab) { return (int32_t)((i * 37 + 11) % vocab); }

/* An adapter on every module of both layers at rank r, values tval(), in a file of dtype. */
static const char *exact_adapter(const char *name, int r, int dtype) {
    adapter_spec sp = {0};
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < LJ_MOD_COUNT; m++) spec_lora(&sp, l, m, r);
    return write_adapter(name, config_json(r, 2.0 * r, "\"all-linear\"", NULL), &sp, dtype);
}

/* Every logit of: a prefill of N_PRE tokens into sequence 0 with adapter "x"; a step of
 * the whole prompt (row loop) on sequence 1 with "y"; N_DEC decode steps of sequences
 * 0, 1, 2 together ("x"; "y"; "x" 0.5 + "y" -1.5), sequence 2 prefilled with one token;
 * then lorajit_forward of the N_PRE tokens with "x" 0.5 + "y" -1.5 set on the engine.
 * out: [N_PRE + N_PRE + N_SEQ * N_DEC + N_PRE, vocab]. */
static void run_exact(lorajit_engine *e, float *out) {
    int vocab = lorajit_vocab_size(e);
    int32_t p[N_PRE + N_DEC];
    for (int i = 0; i < N_PRE + N_DEC; i++) p[i] = tok(i, vocab);
    const char *x[1] = {"x"}, *y[1] = {"y"}, *xy[2] = {"x", "y"};
    const float wxy[2] = {0.5f, -1.5f};
    lorajit_seq *s[N_SEQ] = {0};
    for (int i = 0; i < N_SEQ; i++) CHECK(lorajit_seq_open(e, &s[i]) == LORAJIT_OK, "seq_open: %s", lorajit_errmsg(e));
    if (!s[N_SEQ - 1]) return;
    CHECK(lorajit_seq_set_adapters(s[0], x, NULL, 1) == LORAJIT_OK && lorajit_seq_set_adapters(s[1], y, NULL, 1) ==
              LORAJIT_OK && lorajit_seq_set_adapters(s[2], xy, wxy, 2) == LORAJIT_OK, "set_adapters: %s",
          lorajit_errmsg(e));
    lorajit_step_row pre = {s[0], p, N_PRE, out, 0};
    CHECK(lorajit_step(e, &pre, 1) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    lorajit_step_row whole = {s[1], p, N_PRE, out + (size_t)N_PRE * vocab, 1};
    CHECK(lorajit_step(e, &whole, 1) == LORAJIT_OK, "whole-prompt step: %s", lorajit_errmsg(e));
    float one[4096];
    lorajit_step_row first = {s[2], p, 1, vocab <= 4096 ? one : NULL, 0};
    CHECK(vocab <= 4096 && lorajit_step(e, &first, 1) == LORAJIT_OK, "prefill 1: %s", lorajit_errmsg(e));
    float *dec = out + (size_t)2 * N_PRE * vocab;
    for (int k = 0; k < N_DEC; k++) {
        lorajit_step_row rows[N_SEQ];
        for (int i = 0; i < N_SEQ; i++)
            rows[i] = (lorajit_step_row){s[i], p + N_PRE + k, 1, dec + (size_t)(k * N_SEQ + i) * vocab, 0};
        CHECK(lorajit_step(e, rows, N_SEQ) == LORAJIT_OK, "decode step %d: %s", k, lorajit_errmsg(e));
    }
    for (int i = 0; i < N_SEQ; i++) lorajit_seq_close(s[i]);
    CHECK(lorajit_set_adapter(e, xy, wxy, 2) == LORAJIT_OK, "set_adapter: %s", lorajit_errmsg(e));
    CHECK(lorajit_forward(e, p, N_PRE, dec + (size_t)N_DEC * N_SEQ * vocab) == LORAJIT_OK, "forward: %s",
          lorajit_errmsg(e));
}

static size_t n_exact(int vocab) { return (size_t)(3 * N_PRE + N_SEQ * N_DEC) * vocab; }

/* (1) */
static void test_exact(void) {
    const char *dx = exact_adapter("lora16_x", 8, DT_F32);
    char x_dir[512];
    snprintf(x_dir, sizeof x_dir, "%s", dx);
    const char *y_dir = exact_adapter("lora16_y", 16, DT_BF16);
    float *ref = NULL;
    for (int d = 0; d < 3; d++) {
        lorajit_engine *e = open_lora(dtypes[d]);
        if (!e) continue;
        CHECK(lorajit_load_adapter(e, "x", x_dir) == LORAJIT_OK && lorajit_load_adapter(e, "y", y_dir) == LORAJIT_OK,
              "load: %s", lorajit_errmsg(e));
        size_t n = n_exact(lorajit_vocab_size(e));
        float *out = calloc(n, sizeof *out);
        run_exact(e, out);
        if (d == 0) {
            ref = out;
        } else {
            size_t k = 0;
            while (k < n && memcmp(&out[k], &ref[k], sizeof(float)) == 0) k++;
            CHECK(k == n, "lora_dtype %s: logit %zu of %zu differs from f32 slots (%.9g vs %.9g)", dtypes[d], k, n,
                  k < n ? out[k] : 0.0, k < n ? ref[k] : 0.0);
            printf("  exact adapters, lora_dtype %-4s: %zu logits (steps, 3-row decode, BLAS forward) "
                   "equal f32 slots' bit for bit\n", dtypes[d], n);
            free(out);
        }
        lorajit_engine_free(e);
    }
    free(ref);
}

/* Logits of N_PRE tokens through the set adapters (NULL: the base model). */
static void run_forward(lorajit_engine *e, const char *adapter, float *out) {
    int vocab = lorajit_vocab_size(e);
    int32_t p[N_PRE];
    for (int i = 0; i < N_PRE; i++) p[i] = tok(i * 3 + 1, vocab);
    const char *names[1] = {adapter};
    CHECK(lorajit_set_adapter(e, names, NULL, adapter ? 1 : 0) == LORAJIT_OK, "set_adapter: %s", lorajit_errmsg(e));
    CHECK(lorajit_forward(e, p, N_PRE, out) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* TOL_K: every A and B element is off by at most u relative, so each LoRA term
 * s (x A^T) B^T by at most about 2u of the sum of its terms' magnitudes, which for
 * PEFT-initialised random A, B (no cancellation to speak of at rank 8) is a few times
 * the term itself; the layers after carry that on with a gain of a few (2 layers).
 * 2 * 4 * 4 = 32. Not a proof; the test prints the measured value. */
#define TOL_K 32.0

/* (2) */
static void test_rounding(void) {
    float *out[3] = {0}, *base = NULL;
    size_t n = 0;
    for (int d = 0; d < 3; d++) {
        lorajit_engine *e = open_lora(dtypes[d]);
        if (!e) return;
        n = (size_t)N_PRE * lorajit_vocab_size(e);
        out[d] = malloc(n * sizeof(float));
        CHECK(lorajit_load_adapter(e, "a", CONF "a_all") == LORAJIT_OK, "load a_all: %s", lorajit_errmsg(e));
        run_forward(e, "a", out[d]);
        if (d == 0) run_forward(e, NULL, base = malloc(n * sizeof(float)));
        lorajit_engine_free(e);
    }
    double effect = max_diff(out[0], base, n), dev_bf = max_diff(out[1], out[0], n), dev_h = max_diff(out[2], out[0], n);
    printf("  a_all: adapter effect %.3g; deviation from f32 slots: bf16 %.3g (%.2f u), f16 %.3g (%.2f u)\n", effect,
           dev_bf, dev_bf / (0x1p-8 * effect), dev_h, dev_h / (0x1p-11 * effect));
    CHECK(effect > 0, "a_all changes nothing");
    CHECK(dev_bf > 0 && dev_h > 0, "16-bit slots give f32's bits for f32 values: no rounding happened");
    CHECK(dev_bf <= TOL_K * 0x1p-8 * effect, "bf16 slots: deviation %.3g over %.3g", dev_bf, TOL_K * 0x1p-8 * effect);
    CHECK(dev_h <= TOL_K * 0x1p-11 * effect, "f16 slots: deviation %.3g over %.3g", dev_h, TOL_K * 0x1p-11 * effect);
    CHECK(dev_bf > 2 * dev_h, "bf16's deviation %.3g is not over twice f16's %.3g (the formats mixed up?)", dev_bf,
          dev_h);
    for (int d = 0; d < 3; d++) free(out[d]);
    free(base);
}

/* The F32 file of dir's data section: its values through fn(k, bits) in place. */
static void patch_f32(const char *dir, uint32_t (*fn)(size_t k, uint32_t bits)) {
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    unsigned char len8[8];
    uint64_t hl = 0;
    CHECK(f && fread(len8, 1, 8, f) == 8, "read %s", path);
    if (!f) return;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)len8[i] << (8 * i);
    CHECK(fseek(f, 0, SEEK_END) == 0, "seek %s", path);
    size_t n = ((size_t)ftell(f) - 8 - (size_t)hl) / 4;
    uint32_t *v = malloc(n * 4 + 4);
    CHECK(fseek(f, (long)(8 + hl), SEEK_SET) == 0 && fread(v, 4, n, f) == n, "read data of %s", path);
    for (size_t k = 0; k < n; k++) v[k] = fn(k, v[k]);
    CHECK(fseek(f, (long)(8 + hl), SEEK_SET) == 0 && fwrite(v, 4, n, f) == n, "write data of %s", path);
    fclose(f);
    free(v);
}

static float from_bits(uint32_t u) {
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* tval's bf16-exact value with its last BF16 bit (bit 16) varied and its low 16 bits
 * filled: every fifth a tie (0x8000), half of those with bit 16 set (a tie rounds up). */
static uint32_t inexact(size_t k, uint32_t u) {
    uint32_t odd = (uint32_t)((k / 5 + k / 7) & 1u) << 16;
    return (u & 0xfffe0000u) | odd | (k % 5 == 0 ? 0x8000u : (uint32_t)((k * 0x9e37u + 1) & 0xffffu));
}

/* inexact(k, u) rounded to BF16 (as f32 bits), found apart from the library's bit trick:
 * of the two BF16 values around it, the nearer in double; a tie to the even one. */
static uint32_t rounded(size_t k, uint32_t u) {
    uint32_t x = inexact(k, u), lo = x & 0xffff0000u, hi = lo + 0x10000u; /* |hi| > |x| > |lo| */
    double dx = from_bits(x), dlo = from_bits(lo), dhi = from_bits(hi);
    double elo = fabs(dx - dlo), ehi = fabs(dhi - dx);
    if (elo != ehi) return elo < ehi ? lo : hi;
    return (lo & 0x10000u) ? hi : lo;
}

/* Element 13 of the first tensor (A of layer 0's first module: in a vectorised block) to 3.4e38. */
static uint32_t huge13(size_t k, uint32_t u) {
    float big = 3.4e38f;
    uint32_t b;
    memcpy(&b, &big, 4);
    return k == 13 ? b : u;
}

/* Element 0 to 1e5 (past f16's range). */
static uint32_t big0(size_t k, uint32_t u) {
    float big = 1e5f;
    uint32_t b;
    memcpy(&b, &big, 4);
    return k == 0 ? b : u;
}

/* (3) An F32 adapter whose first value is 1e5. */
static const char *big_adapter(void) {
    const char *dir = exact_adapter("lora16_big", 4, DT_F32);
    patch_f32(dir, big0);
    return dir;
}

static void test_range(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", big_adapter());
    lorajit_engine *e = open_lora("f16");
    if (!e) return;
    size_t n = (size_t)N_PRE * lorajit_vocab_size(e);
    float *before = malloc(n * sizeof(float)), *after = malloc(n * sizeof(float));
    CHECK(lorajit_load_adapter(e, "a", CONF "a_all") == LORAJIT_OK, "load a_all: %s", lorajit_errmsg(e));
    run_forward(e, "a", before);
    lorajit_status s = lorajit_load_adapter(e, "big", dir);
    const char *msg = lorajit_errmsg(e);
    CHECK(s == LORAJIT_E_FORMAT && strstr(msg, "lora_A") && strstr(msg, "[0, 0]") && strstr(msg, "f16") &&
              strstr(msg, "lora_dtype"), "f16 slots take 1e5: %s / %s", lorajit_status_str(s), msg);
    printf("  f16 slots refuse 1e5: %s\n", msg);
    run_forward(e, "a", after);
    CHECK(memcmp(before, after, n * sizeof(float)) == 0, "a failed load changed a_all's logits");
    const char *names[1] = {"big"};
    CHECK(lorajit_set_adapter(e, names, NULL, 1) != LORAJIT_OK, "the refused adapter is resident");
    lorajit_engine_free(e);
    e = open_lora("bf16");
    if (e) CHECK(lorajit_load_adapter(e, "big", dir) == LORAJIT_OK, "bf16 slots: %s", lorajit_errmsg(e));
    lorajit_engine_free(e);
    free(before);
    free(after);
}

/* (2b) */
static void test_round_bf16(void) {
    char p_dir[512], r_dir[512], h_dir[512];
    snprintf(p_dir, sizeof p_dir, "%s", exact_adapter("lora16_inexact", 8, DT_F32));
    patch_f32(p_dir, inexact);
    snprintf(r_dir, sizeof r_dir, "%s", exact_adapter("lora16_rounded", 8, DT_F32));
    patch_f32(r_dir, rounded);
    snprintf(h_dir, sizeof h_dir, "%s", exact_adapter("lora16_huge", 8, DT_F32));
    patch_f32(h_dir, huge13);
    lorajit_engine *e16 = open_lora("bf16"), *e32 = open_lora(NULL);
    if (e16 && e32) {
        size_t n = (size_t)N_PRE * lorajit_vocab_size(e16);
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        CHECK(lorajit_load_adapter(e16, "p", p_dir) == LORAJIT_OK, "bf16 slots, inexact: %s", lorajit_errmsg(e16));
        CHECK(lorajit_load_adapter(e32, "r", r_dir) == LORAJIT_OK, "f32 slots, rounded: %s", lorajit_errmsg(e32));
        run_forward(e16, "p", a);
        run_forward(e32, "r", b);
        CHECK(memcmp(a, b, n * sizeof(float)) == 0, "bf16 slots do not round an F32 file to nearest even");
        lorajit_status s = lorajit_load_adapter(e16, "h", h_dir);
        const char *msg = lorajit_errmsg(e16);
        CHECK(s == LORAJIT_E_FORMAT && strstr(msg, "lora_A") && strstr(msg, "[0, 13]") && strstr(msg, "bf16"),
              "bf16 slots take 3.4e38: %s / %s", lorajit_status_str(s), msg);
        run_forward(e16, "p", b);
        CHECK(memcmp(a, b, n * sizeof(float)) == 0, "a refused load changed another adapter's logits");
        free(a), free(b);
    }
    lorajit_engine_free(e16);
    lorajit_engine_free(e32);
}

int main(int argc, char **argv) {
    fixture_tmp_setup(argc, argv, "lora16_tmp");
    test_exact();
    test_rounding();
    test_round_bf16();
    test_range();
    return check_summary("lora16");
}
