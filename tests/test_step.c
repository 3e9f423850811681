/* test_step.c — sequence handles and lorajit_step (issue 14), through the public API
 * on the conformance tiny model and its three PEFT adapters:
 *  (a) chunked prefill: a 40-token prompt in chunks of 1..39 tokens through
 *      lorajit_step gives the logits of one step of the whole prompt, bit for bit (and
 *      lorajit_seq_prefill's sgemm path within 1e-4);
 *  (b) a mixed step (a prefill chunk + two decode rows, three adapter sets) equals
 *      lorajit_seq_prefill + lorajit_decode on other sequences bit for bit; a bad row
 *      fails the step and advances no sequence; handles hold their sequences (the int
 *      API and lorajit_generate leave them alone; E_FULL when all are held);
 *  (c) 12 decode rows in one step (two lj_decode passes) equal each row stepped alone;
 *  (d) (a) again on the golden BF16 model with an adapter: 16-bit weights make its code
 *      rows_exact (step.c: chunks in one call, LoRA on the row loop for every row); it
 *      must be bit for bit;
 *  (e) on that model a step runs as rows of lj_decode passes (step.c run_passes): a
 *      40-token chunk with every row's logits and another sequence's decode row, in
 *      passes of max_tokens = 16 rows, equal each stepped alone bit for bit, and the
 *      chunk is within 1e-4 of lorajit_seq_prefill (lj_forward's attention over the
 *      chunk: the rows' causal attention and KV writes are right).
 * Usage: test_step BUILD_DIR; run from tests/. */
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"
#include "sched_fixture.h"

/* ---- (a) chunking ---- */
/* Steps tok[0..n) on a fresh handle with adapters names/w[n_ad]: whole into one [n,
 * vocab], then in chunks of each of sizes[n_sizes] into got [n, vocab]. Returns how
 * many sizes gave logits other than the whole prompt's (each one CHECKed). */
static int chunkings_differ(lorajit_engine *e, const char *const *names, const float *w, int n_ad,
                            const int32_t *tok, int n, int vocab, const int *sizes, int n_sizes, float *one,
                            float *got) {
    lorajit_seq *s = NULL;
    CHECK(lorajit_seq_open(e, &s) == LORAJIT_OK && lorajit_seq_set_adapters(s, names, w, n_ad) == LORAJIT_OK, "open: %s",
          lorajit_errmsg(e));
    lorajit_step_row r = {s, tok, n, one, 1};
    CHECK(lorajit_step(e, &r, 1) == LORAJIT_OK && lorajit_seq_length(s) == n, "whole prompt: %s", lorajit_errmsg(e));
    int bad = 0;
    for (int k = 0; k < n_sizes; k++) {
        lorajit_seq_close(s);
        CHECK(lorajit_seq_open(e, &s) == LORAJIT_OK && lorajit_seq_set_adapters(s, names, w, n_ad) == LORAJIT_OK,
              "reopen");
        for (int off = 0; off < n; off += sizes[k]) {
            int m = n - off < sizes[k] ? n - off : sizes[k];
            lorajit_step_row q = {s, tok + off, m, got + (size_t)off * vocab, 1};
            CHECK(lorajit_step(e, &q, 1) == LORAJIT_OK, "chunk: %s", lorajit_errmsg(e));
        }
        bool same = !memcmp(one, got, sizeof *one * (size_t)n * vocab);
        bad += !same;
        CHECK(same, "chunks of %d: logits differ from one step of %d tokens", sizes[k], n);
    }
    lorajit_seq_close(s);
    return bad;
}

static void test_chunking(void) {
    lorajit_engine *e = open_engine(4, 2);
    if (!e) return;
    load3(e);
    enum { N = 40 };
    int32_t tok[N];
    fill(tok, N, 1);
    static float one[N * V], got[N * V], last[V];
    const char *names[2] = {"a_qv", "a_mlp"};
    const float w[2] = {1.0f, -0.75f};
    static const int sizes[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 39};
    int bad = chunkings_differ(e, names, w, 2, tok, N, V, sizes, (int)(sizeof sizes / sizeof *sizes), one, got);
    /* the last row alone (all_logits 0) */
    lorajit_seq *s = NULL;
    CHECK(lorajit_seq_open(e, &s) == LORAJIT_OK && lorajit_seq_set_adapters(s, names, w, 2) == LORAJIT_OK, "reopen");
    lorajit_step_row q = {s, tok, N, last, 0};
    CHECK(lorajit_step(e, &q, 1) == LORAJIT_OK && !memcmp(last, one + (size_t)(N - 1) * V, sizeof last),
          "last-row logits differ from the last row of all logits");
    /* against lorajit_seq_prefill of the whole prompt (sgemm past 8 rows): close, not bitwise */
    int n = lorajit_seq_number(s) == 0 ? 1 : 0;
    CHECK(lorajit_seq_set_adapter(e, n, names, w, 2) == LORAJIT_OK && lorajit_seq_prefill(e, n, tok, N, got) == 0,
          "seq_prefill: %s", lorajit_errmsg(e));
    double worst = check_close_ratio(got, one, (long)N * V, 1e-4, 1e-4, NULL);
    CHECK(worst <= 1, "step vs seq_prefill of 40 tokens: %.3g x tolerance", worst);
    printf("  chunked prefill: %zu chunk sizes (1..39) == one step, bit for bit (%d differ); vs sgemm prefill "
           "%.3g x tolerance 1e-4\n", sizeof sizes / sizeof *sizes, bad, worst);
    lorajit_seq_close(s);
    lorajit_engine_free(e);
}

/* ---- (b) mixed step ---- */
static void test_mixed_step(void) {
    lorajit_engine *e = open_engine(4, 6);
    if (!e) return;
    load3(e);
    const char *qv[] = {"a_qv"}, *all[] = {"a_all"};
    int32_t pa[10], pb[6], pc[4], ta = 77, tc = 5;
    fill(pa, 10, 2), fill(pb, 6, 3), fill(pc, 4, 4);
    lorajit_seq *h[3];
    for (int i = 0; i < 3; i++) CHECK(lorajit_seq_open(e, &h[i]) == LORAJIT_OK, "open %d", i);
    CHECK(lorajit_seq_number(h[0]) == 0 && lorajit_seq_number(h[2]) == 2, "handles take the lowest sequences");
    CHECK(lorajit_seq_reset(e, 1) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "in use"), "int API on a held sequence");
    CHECK(lorajit_seq_set_adapters(h[0], qv, NULL, 1) == 0 && lorajit_seq_set_adapters(h[1], all, NULL, 1) == 0, "set");
    /* the same on sequences 3, 4, 5 through the int API */
    CHECK(lorajit_seq_set_adapter(e, 3, qv, NULL, 1) == 0 && lorajit_seq_set_adapter(e, 4, all, NULL, 1) == 0 &&
              lorajit_seq_set_adapter(e, 5, NULL, NULL, 0) == 0, "int set");
    lorajit_step_row pre[2] = {{h[0], pa, 10, NULL, 0}, {h[2], pc, 4, NULL, 0}};
    CHECK(lorajit_step(e, pre, 2) == LORAJIT_OK, "prefill rows: %s", lorajit_errmsg(e));
    /* the int side: 10 tokens in pieces of <= 8 (the row loop), as the step runs them */
    CHECK(!lorajit_seq_prefill(e, 3, pa, 8, NULL) && !lorajit_seq_prefill(e, 3, pa + 8, 2, NULL) &&
              !lorajit_seq_prefill(e, 5, pc, 4, NULL), "int prefill: %s", lorajit_errmsg(e));
    static float got_b[6 * V], got_a[V], got_c[V], want_b[6 * V], want_ac[2 * V];
    lorajit_step_row mix[3] = {{h[1], pb, 6, got_b, 1}, {h[0], &ta, 1, got_a, 0}, {h[2], &tc, 1, got_c, 0}};
    CHECK(lorajit_step(e, mix, 3) == LORAJIT_OK, "mixed step: %s", lorajit_errmsg(e));
    int seqs[2] = {3, 5};
    int32_t toks[2] = {ta, tc};
    CHECK(!lorajit_seq_prefill(e, 4, pb, 6, want_b) && !lorajit_decode(e, seqs, toks, 2, want_ac), "int: %s",
          lorajit_errmsg(e));
    CHECK(!memcmp(got_b, want_b, sizeof got_b), "mixed step: the prefill chunk differs from lorajit_seq_prefill");
    CHECK(!memcmp(got_a, want_ac, sizeof got_a) && !memcmp(got_c, want_ac + V, sizeof got_c),
          "mixed step: decode rows differ from lorajit_decode");
    CHECK(memcmp(got_a, got_c, sizeof got_a), "rows a and c should differ (different adapters)");
    CHECK(lorajit_seq_length(h[0]) == 11 && lorajit_seq_length(h[1]) == 6 && lorajit_seq_length(h[2]) == 5, "positions");
    /* all or nothing */
    int32_t bad_tok = V + 3;
    lorajit_step_row bad[2] = {{h[1], pb, 3, NULL, 0}, {h[0], &bad_tok, 1, NULL, 0}};
    CHECK(lorajit_step(e, bad, 2) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "vocabulary") &&
              lorajit_seq_length(h[1]) == 6 && lorajit_seq_length(h[0]) == 11, "a bad token fails the step, nothing advances");
    static int32_t long_p[128];
    lorajit_step_row full[2] = {{h[2], &tc, 1, NULL, 0}, {h[1], long_p, 125, NULL, 0}};
    CHECK(lorajit_step(e, full, 2) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "KV cache full") &&
              lorajit_seq_length(h[2]) == 5, "no room fails the step: %s", lorajit_errmsg(e));
    lorajit_step_row twice[2] = {{h[2], &tc, 1, NULL, 0}, {h[2], &tc, 1, NULL, 0}};
    CHECK(lorajit_step(e, twice, 2) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "rows 0 and 1"), "a handle twice");
    lorajit_seq *extra, *rest[3];
    for (int i = 0; i < 3; i++) CHECK(lorajit_seq_open(e, &rest[i]) == LORAJIT_OK, "open sequence %d", 3 + i);
    CHECK(lorajit_seq_open(e, &extra) == LORAJIT_E_FULL && !extra && strstr(lorajit_errmsg(e), "every sequence"),
          "open with every sequence held: E_FULL");
    lorajit_request g = {.prompt = pa, .n_prompt = 2, .adapter = "", .max_new = 1, .out = &ta};
    CHECK(lorajit_generate(e, &g, 1, NULL, NULL, NULL) == LORAJIT_E_ARG, "generate finds no free sequence");
    for (int i = 0; i < 3; i++) lorajit_seq_close(rest[i]);
    lorajit_seq_close(h[1]);
    CHECK(lorajit_seq_open(e, &extra) == LORAJIT_OK && lorajit_seq_number(extra) == 1 && lorajit_seq_length(extra) == 0,
          "a closed sequence is free and empty again");
    lorajit_seq_close(extra);
    lorajit_seq_close(h[0]);
    lorajit_seq_close(h[2]);
    lorajit_seq_close(NULL);
    printf("  mixed step (chunk + 2 decode rows, 3 adapter sets) == seq_prefill + decode, bit for bit\n");
    lorajit_engine_free(e);
}

/* 12 decode rows in one step (two lj_decode passes) == each row stepped alone. */
static void test_wide_decode(void) {
    enum { W = 12 };
    lorajit_engine *e = open_engine(4, W);
    if (!e) return;
    load3(e);
    static const char *const sets[3] = {"a_qv", "a_all", "a_mlp"};
    lorajit_seq *h[W];
    int32_t p[W][5], next[W];
    static float together[W][V], one[V];
    lorajit_step_row rows[W];
    for (int i = 0; i < W; i++) {
        fill(p[i], 5, 20 + i);
        next[i] = (int32_t)(i * 11 % V);
        CHECK(lorajit_seq_open(e, &h[i]) == 0 && (i % 4 == 3 || lorajit_seq_set_adapters(h[i], &sets[i % 4], NULL, 1) == 0),
              "open %d", i);
        lorajit_step_row pre = {h[i], p[i], 5, NULL, 0};
        CHECK(lorajit_step(e, &pre, 1) == 0, "prefill %d", i);
        rows[i] = (lorajit_step_row){h[i], &next[i], 1, together[i], 0};
    }
    CHECK(lorajit_step(e, rows, W) == 0, "12 decode rows: %s", lorajit_errmsg(e));
    int same = 0;
    for (int i = 0; i < W; i++) {
        lorajit_seq_close(h[i]);
        CHECK(lorajit_seq_open(e, &h[i]) == 0 && (i % 4 == 3 || lorajit_seq_set_adapters(h[i], &sets[i % 4], NULL, 1) == 0),
              "reopen");
        lorajit_step_row pre = {h[i], p[i], 5, NULL, 0}, dec = {h[i], &next[i], 1, one, 0};
        CHECK(lorajit_step(e, &pre, 1) == 0 && lorajit_step(e, &dec, 1) == 0, "alone %d", i);
        same += !memcmp(one, together[i], sizeof one);
    }
    CHECK(same == W, "12 decode rows in one step: %d of %d rows equal the row stepped alone", same, W);
    printf("  12 decode rows in one step (two passes of <= 8) == each alone, bit for bit: %d of %d\n", same, W);
    for (int i = 0; i < W; i++) lorajit_seq_close(h[i]);
    lorajit_engine_free(e);
}

/* ---- (d) chunking on a BF16 model ---- */
/* The golden BF16 model (vocabulary 96) with options o and its adapter "qkvo"; NULL
 * (CHECKed) when either fails. */
static lorajit_engine *open_bf16(const lorajit_options *o) {
    lorajit_engine *e = NULL;
    bool ok = lorajit_engine_open(&e, "golden/models/bf16", o) == LORAJIT_OK &&
              lorajit_load_adapter(e, "qkvo", "golden/adapters/bf16/qkvo") == LORAJIT_OK;
    CHECK(ok, "bf16: %s", lorajit_errmsg(e));
    if (!ok) lorajit_engine_free(e);
    return ok ? e : NULL;
}

static void test_chunking_bf16(void) {
    enum { N = 40, VB = 96 };
    lorajit_engine *e = open_bf16(&(lorajit_options){.max_adapters = 2, .max_rank = 8, .max_batch = 2, .max_seq_len = 128});
    if (!e) return;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 5) % VB);
    static float one[N * VB], got[N * VB];
    const char *names[1] = {"qkvo"};
    const float w[1] = {1.0f};
    static const int sizes[] = {1, 3, 8, 9, 16, 39};
    int bad = chunkings_differ(e, names, w, 1, tok, N, VB, sizes, (int)(sizeof sizes / sizeof *sizes), one, got);
    CHECK(bad == 0, "bf16: %d of %zu chunk sizes give logits other than one step's", bad, sizeof sizes / sizeof *sizes);
    printf("  bf16 chunked prefill: %zu chunk sizes == one step, bit for bit (%d differ)\n", sizeof sizes / sizeof *sizes,
           bad);
    lorajit_engine_free(e);
}

/* ---- (e) a mixed step in lj_decode passes on the BF16 model ---- */
static void test_passes_bf16(void) {
    enum { N = 40, P = 6, VB = 96 };
    lorajit_engine *e = open_bf16(&(lorajit_options){.max_adapters = 2, .max_rank = 8, .max_batch = 3, .max_tokens = 16,
                                                     .max_seq_len = 128});
    if (!e) return;
    int32_t tok[N], pb[P], tb = 17;
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 5) % VB);
    for (int i = 0; i < P; i++) pb[i] = (int32_t)((i * 29 + 3) % VB);
    static float got_a[N * VB], got_b[VB], want_a[N * VB], want_b[VB], ref[N * VB];
    const char *names[1] = {"qkvo"};
    for (int round = 0; round < 2; round++) { /* 0: together in one step; 1: each alone */
        lorajit_seq *a = NULL, *b = NULL;
        CHECK(lorajit_seq_open(e, &a) == 0 && lorajit_seq_open(e, &b) == 0 && lorajit_seq_set_adapters(a, names, NULL, 1) == 0,
              "open: %s", lorajit_errmsg(e));
        lorajit_step_row pre = {b, pb, P, NULL, 0};
        CHECK(lorajit_step(e, &pre, 1) == 0, "prefill b: %s", lorajit_errmsg(e));
        lorajit_step_row rows[2] = {{a, tok, N, round ? want_a : got_a, 1}, {b, &tb, 1, round ? want_b : got_b, 0}};
        if (round == 0)
            CHECK(lorajit_step(e, rows, 2) == 0, "mixed step: %s", lorajit_errmsg(e));
        else
            CHECK(lorajit_step(e, &rows[0], 1) == 0 && lorajit_step(e, &rows[1], 1) == 0, "alone: %s", lorajit_errmsg(e));
        CHECK(lorajit_seq_length(a) == N && lorajit_seq_length(b) == P + 1, "positions after the step: %d, %d",
              lorajit_seq_length(a), lorajit_seq_length(b));
        lorajit_seq_close(a);
        lorajit_seq_close(b);
    }
    CHECK(!memcmp(got_a, want_a, sizeof got_a), "the chunk's logits in a mixed step differ from the chunk alone");
    CHECK(!memcmp(got_b, want_b, sizeof got_b), "the decode row in a mixed step differs from the row alone");
    CHECK(lorajit_seq_set_adapter(e, 0, names, NULL, 1) == 0 && lorajit_seq_prefill(e, 0, tok, N, ref) == 0,
          "seq_prefill: %s", lorajit_errmsg(e));
    double worst = check_close_ratio(got_a, ref, (long)N * VB, 1e-4, 1e-4, NULL);
    CHECK(worst <= 1, "step passes vs lorajit_seq_prefill of 40 tokens: %.3g x tolerance", worst);
    printf("  bf16 mixed step in passes of 16 rows == each alone, bit for bit; vs seq_prefill %.3g x tolerance 1e-4\n",
           worst);
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    check_enter_tests_dir();
    test_chunking();
    test_chunking_bf16();
    test_passes_bf16();
    test_mixed_step();
    test_wide_decode();
    return check_summary("test_step");
}
