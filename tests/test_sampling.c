/* test_sampling.c — sampling and the errors of the generation API.
 * (1) sample.c alone: argmax ties, repetition penalty once per id, top-k and top-p keep
 *     exactly the set they should (20000 draws, frequencies within 0.02), seeded streams.
 * (2) through lorajit_generate: same seed same tokens, another seed other tokens, a
 *     request's tokens do not depend on its batch; top_k 1, temperature 0 and a tiny
 *     top_p all equal greedy; a repetition penalty changes a repeated run; eos stops early.
 * (3) errors: KV cache full (message, nothing changed), bad sequences / tokens / rows,
 *     an adapter deleted under a sequence, bad sampling and requests; disable applies to
 *     sequences' own sets; stats; compiles == 1. Recipe: add a check to the part it fits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lorajit.h"
#include "serving.h"

#define TINY_MODEL "conformance/models/llama-tiny"
#define TINY_ADAPTERS "conformance/adapters/llama-tiny"
#define NEW 12

/* ---- (1) sample.c ---- */

/* Draws n tokens from logits under s; counts[vocab] gets how often each came. */
static void draw(const float *logits, int vocab, const lorajit_sampling *s, int n, int *counts) {
    lj_sample_work *w = lj_sample_work_new(vocab);
    float row[16];
    lj_rng rng;
    lj_rng_seed(&rng, 1234, 0);
    memset(counts, 0, sizeof(int) * vocab);
    for (int i = 0; i < n; i++) {
        memcpy(row, logits, sizeof(float) * vocab);
        counts[lj_sample(row, s, NULL, 0, &rng, w)]++;
    }
    lj_sample_work_free(w);
}

static void test_sample_unit(void) {
    const float tie[5] = {1, 3, -2, 3, 0};
    CHECK(lj_argmax(tie, 5) == 1, "argmax tie must go to the lowest id");
    const float nan_first[3] = {NAN, 1, 2};
    CHECK(lj_argmax(nan_first, 3) == 2, "argmax must skip NaN");

    lorajit_sampling s = {.temperature = 0, .top_p = 1, .repetition_penalty = 2, .eos_id = -1};
    CHECK(lj_sampling_check(&s, NULL) == LORAJIT_OK, "a valid setting was refused");
    lj_sample_work *w = lj_sample_work_new(3);
    lj_rng rng;
    lj_rng_seed(&rng, 1, 0);
    float pen[3] = {2, -1, 1.5f};
    const int32_t hist[4] = {0, 1, 0, 0};
    CHECK(lj_sample(pen, &s, hist, 4, &rng, w) == 2, "penalised greedy: want id 2");
    CHECK(pen[0] == 1 && pen[1] == -2 && pen[2] == 1.5f, "penalty once per id: %g %g %g", pen[0], pen[1], pen[2]);
    CHECK(!w->seen[0] && !w->seen[1] && !w->seen[2], "seen marks must be cleared");
    lj_sample_work_free(w);

    const int n = 20000;
    int counts[5];
    const float logits[5] = {0, 1, 2, 3, -1};
    lorajit_sampling k2 = {.temperature = 1, .top_k = 2, .top_p = 1, .repetition_penalty = 1, .eos_id = -1};
    draw(logits, 5, &k2, n, counts);
    double want3 = exp(1.0) / (1 + exp(1.0));
    CHECK(counts[0] + counts[1] + counts[4] == 0, "top_k 2 drew outside the best two");
    CHECK(fabs(counts[3] / (double)n - want3) < 0.02, "top_k 2: id 3 drawn %.3f, want %.3f", counts[3] / (double)n, want3);
    /* probabilities 0.5, 0.3, 0.2: top_p 0.7 keeps {0, 1}, renormalised to 0.625 / 0.375 */
    const float three[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    lorajit_sampling p7 = {.temperature = 1, .top_p = 0.7f, .repetition_penalty = 1, .eos_id = -1};
    draw(three, 3, &p7, n, counts);
    CHECK(counts[2] == 0, "top_p 0.7 drew the 0.2 token %d times", counts[2]);
    CHECK(fabs(counts[0] / (double)n - 0.625) < 0.02, "top_p 0.7: id 0 drawn %.3f, want 0.625", counts[0] / (double)n);
    lorajit_sampling t1 = {.temperature = 1, .top_p = 1, .repetition_penalty = 1, .eos_id = -1};
    draw(three, 3, &t1, n, counts);
    CHECK(fabs(counts[2] / (double)n - 0.2) < 0.02, "temperature 1: id 2 drawn %.3f, want 0.2", counts[2] / (double)n);
    lorajit_sampling t2 = t1;
    t2.temperature = 2; /* p ~ sqrt(p): 0.7071, 0.5477, 0.4472 normalised */
    draw(three, 3, &t2, n, counts);
    double want0 = sqrt(0.5) / (sqrt(0.5) + sqrt(0.3) + sqrt(0.2));
    CHECK(fabs(counts[0] / (double)n - want0) < 0.02, "temperature 2: id 0 drawn %.3f, want %.3f", counts[0] / (double)n, want0);

    lj_rng a, b, c;
    lj_rng_seed(&a, 7, 0);
    lj_rng_seed(&b, 7, 0);
    lj_rng_seed(&c, 7, 1);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = lj_rng_next(&a), y = lj_rng_next(&b), z = lj_rng_next(&c);
        same &= x == y;
        differ += x != z;
        double u = lj_rng_uniform(&a);
        lj_rng_uniform(&b);
        CHECK(u >= 0 && u < 1, "uniform %g outside [0, 1)", u);
    }
    CHECK(same && differ == 100, "seeded streams: same seed must repeat, another stream must differ");
    lorajit_sampling bad[] = {{.temperature = -1, .top_p = 1, .repetition_penalty = 1},
                              {.temperature = NAN, .top_p = 1, .repetition_penalty = 1},
                              {.top_k = -1, .top_p = 1, .repetition_penalty = 1},
                              {.top_p = 0, .repetition_penalty = 1},
                              {.top_p = 1.5f, .repetition_penalty = 1},
                              {.top_p = 1, .repetition_penalty = 0},
                              {.top_p = 1, .repetition_penalty = 1, .eos_id = -2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lj_err err;
        lj_err_clear(&err);
        CHECK(lj_sampling_check(&bad[i], &err) == LORAJIT_E_ARG && strstr(err.msg, "sampling: "),
              "bad setting %zu accepted (%s)", i, err.msg);
    }
    CHECK(lj_sampling_check(NULL, NULL) != LORAJIT_OK, "NULL setting accepted");
    lj_sample_work_free(NULL);
}

/* ---- (2) through the API ---- */

static const int32_t prompt[5] = {175, 196, 25, 246, 67};

/* Generates NEW tokens (fewer on eos) from prompt p with sampling s (NULL: greedy). */
static int gen(lorajit_engine *e, const int32_t *p, const char *adapter, const lorajit_sampling *s, int32_t *out) {
    lorajit_request r = {p, 5, adapter, NEW, out, 0, 0};
    lorajit_status st = lorajit_generate(e, &r, 1, s, NULL, NULL);
    CHECK(st == LORAJIT_OK, "generate: %s", lorajit_errmsg(e));
    return st == LORAJIT_OK ? r.n_out : -1;
}

static void test_sampling_api(lorajit_engine *e) {
    int32_t greedy[NEW], got[NEW], other[NEW];
    CHECK(gen(e, prompt, "a_qv", NULL, greedy) == NEW, "greedy run");
    lorajit_sampling s = {.temperature = 0, .top_k = 5, .top_p = 0.5f, .repetition_penalty = 1, .seed = 9, .eos_id = -1};
    CHECK(gen(e, prompt, "a_qv", &s, got) == NEW && !memcmp(got, greedy, sizeof got), "temperature 0 != greedy");
    s = (lorajit_sampling){.temperature = 1, .top_k = 1, .top_p = 1, .repetition_penalty = 1, .seed = 9, .eos_id = -1};
    CHECK(gen(e, prompt, "a_qv", &s, got) == NEW && !memcmp(got, greedy, sizeof got), "top_k 1 != greedy");
    s = (lorajit_sampling){.temperature = 1.5f, .top_p = 1e-6f, .repetition_penalty = 1, .seed = 9, .eos_id = -1};
    CHECK(gen(e, prompt, "a_qv", &s, got) == NEW && !memcmp(got, greedy, sizeof got), "top_p 1e-6 != greedy");

    s = (lorajit_sampling){.temperature = 1, .top_p = 1, .repetition_penalty = 1, .seed = 42, .eos_id = -1};
    gen(e, prompt, "a_qv", &s, got);
    gen(e, prompt, "a_qv", &s, other);
    CHECK(!memcmp(got, other, sizeof got), "seed 42 twice gave different tokens");
    CHECK(memcmp(got, greedy, sizeof got), "temperature 1 gave the greedy tokens");
    s.seed = 43;
    gen(e, prompt, "a_qv", &s, other);
    CHECK(memcmp(got, other, sizeof got), "seeds 42 and 43 gave the same %d tokens", NEW);
    /* request 0's stream does not depend on the batch it is in */
    int32_t b0[NEW], b1[NEW];
    lorajit_request two[2] = {{prompt, 5, "a_qv", NEW, b0, 0, 0}, {prompt + 1, 4, "", NEW, b1, 0, 0}};
    s.seed = 42;
    CHECK(lorajit_generate(e, two, 2, &s, NULL, NULL) == LORAJIT_OK, "batch: %s", lorajit_errmsg(e));
    CHECK(!memcmp(b0, got, sizeof got), "request 0 sampled differently inside a batch of 2");

    /* repetition penalty: a prompt whose greedy run repeats a token */
    int32_t p[5], base[NEW], pen[NEW];
    int found = 0, vocab = lorajit_vocab_size(e);
    for (int k = 0; k < 40 && !found; k++) {
        for (int i = 0; i < 5; i++) p[i] = (k * 41 + i * 17 + 3) % vocab;
        gen(e, p, "", NULL, base);
        for (int i = 1; i < NEW; i++) found |= base[i] == base[i - 1];
    }
    CHECK(found, "no prompt with a repeated greedy token in 40 tries");
    s = (lorajit_sampling){.temperature = 0, .top_p = 1, .repetition_penalty = 1.5f, .eos_id = -1};
    gen(e, p, "", &s, pen);
    CHECK(memcmp(base, pen, sizeof base), "repetition penalty 1.5 left a repeated greedy run unchanged");
    int runs_base = 0, runs_pen = 0;
    for (int i = 1; i < NEW; i++) {
        runs_base += base[i] == base[i - 1];
        runs_pen += pen[i] == pen[i - 1];
    }
    CHECK(runs_pen < runs_base, "penalty: %d repeats, without it %d", runs_pen, runs_base);

    /* eos: the first greedy token not seen before position 3 stops the run there */
    int stop = 3;
    while (stop < NEW - 1) {
        int seen = 0;
        for (int i = 0; i < stop; i++) seen |= greedy[i] == greedy[stop];
        if (!seen) break;
        stop++;
    }
    s = (lorajit_sampling){.temperature = 0, .top_p = 1, .repetition_penalty = 1, .eos_id = greedy[stop]};
    int n = gen(e, prompt, "a_qv", &s, got);
    CHECK(n == stop + 1 && got[stop] == greedy[stop] && !memcmp(got, greedy, sizeof(int32_t) * n),
          "eos %d: %d tokens, want %d ending in eos", (int)greedy[stop], n, stop + 1);
    printf("  sampling: greedy equivalences, seeds, batch-independent streams, penalty (%d -> %d repeats), "
           "eos after %d tokens: checked\n", runs_base, runs_pen, stop + 1);
}

/* ---- (3) errors ---- */

static void expect(lorajit_engine *e, lorajit_status got, lorajit_status want, const char *needle, const char *what) {
    CHECK(got == want && strstr(lorajit_errmsg(e), needle), "%s: %s / '%s', want %s naming '%s'", what,
          lorajit_status_str(got), lorajit_errmsg(e), lorajit_status_str(want), needle);
}

static void test_errors(lorajit_engine *e) {
    int vocab = lorajit_vocab_size(e);
    int32_t tok[32], out[32];
    float *logits = malloc(sizeof(float) * 32 * vocab);
    for (int i = 0; i < 32; i++) tok[i] = (i * 7 + 1) % vocab;
    for (int q = 0; q < 4; q++) CHECK(lorajit_seq_reset(e, q) == LORAJIT_OK, "reset");
    /* KV cache full (max_seq_len 32) */
    CHECK(lorajit_seq_prefill(e, 2, tok, 20, NULL) == LORAJIT_OK, "prefill 20: %s", lorajit_errmsg(e));
    expect(e, lorajit_seq_prefill(e, 2, tok, 13, logits), LORAJIT_E_ARG,
           "KV cache full: sequence 2 holds 20 of 32 positions, 13 more asked", "prefill past the cache");
    CHECK(lorajit_seq_pos(e, 2) == 20, "a failed prefill moved the position to %d", lorajit_seq_pos(e, 2));
    CHECK(lorajit_seq_prefill(e, 2, tok, 12, NULL) == LORAJIT_OK, "prefill to the end: %s", lorajit_errmsg(e));
    int seqs[3] = {0, 2, 1};
    expect(e, lorajit_decode(e, seqs, tok, 2, logits), LORAJIT_E_ARG, "KV cache full: sequence 2 holds 32 of 32",
           "decode of a full sequence");
    CHECK(lorajit_seq_pos(e, 0) == 0 && lorajit_seq_pos(e, 2) == 32, "a failed decode moved a position");
    lorajit_request r = {tok, 20, NULL, 14, out, 0, 0};
    expect(e, lorajit_generate(e, &r, 1, NULL, NULL, NULL), LORAJIT_E_ARG, "KV cache full", "generate past the cache");
    CHECK(lorajit_seq_pos(e, 2) == 32, "a failed generate reset sequence 2");
    r.max_new = 13;
    CHECK(lorajit_generate(e, &r, 1, NULL, NULL, NULL) == LORAJIT_OK && r.n_out == 13, "generate to the end: %s",
          lorajit_errmsg(e));
    CHECK(lorajit_seq_pos(e, 0) == 32 && lorajit_seq_reset(e, 0) == LORAJIT_OK, "generate's sequence 0 at %d",
          lorajit_seq_pos(e, 0));
    /* bad sequences, rows, tokens */
    int bad_seq[2] = {4, -1}, dup[3] = {1, 3, 1};
    expect(e, lorajit_decode(e, bad_seq, tok, 1, logits), LORAJIT_E_ARG, "sequence 4 is out of range", "seq 4");
    expect(e, lorajit_decode(e, bad_seq + 1, tok, 1, logits), LORAJIT_E_ARG, "sequence -1", "seq -1");
    expect(e, lorajit_decode(e, dup, tok, 3, logits), LORAJIT_E_ARG, "sequence 1 is in rows 0 and 2", "duplicate");
    expect(e, lorajit_decode(e, seqs, tok, 5, logits), LORAJIT_E_ARG, "max_batch", "5 rows");
    expect(e, lorajit_decode(e, seqs, tok, 0, logits), LORAJIT_E_ARG, "rows", "0 rows");
    int32_t bad_tok[2] = {3, (int32_t)vocab};
    expect(e, lorajit_decode(e, seqs, bad_tok, 2, logits), LORAJIT_E_ARG, "row 1", "token >= vocab");
    expect(e, lorajit_seq_prefill(e, 1, bad_tok, 2, NULL), LORAJIT_E_ARG, "position 1", "prefill token >= vocab");
    expect(e, lorajit_seq_prefill(e, 9, tok, 2, NULL), LORAJIT_E_ARG, "sequence 9", "prefill seq 9");
    expect(e, lorajit_seq_prefill(e, 1, tok, 0, NULL), LORAJIT_E_ARG, "n = 0", "prefill 0 tokens");
    CHECK(lorajit_seq_pos(e, 0) == 0 && lorajit_seq_pos(e, 1) == 0 && lorajit_seq_pos(e, 4) == -1, "positions");
    /* an adapter deleted under a sequence */
    CHECK(lorajit_load_adapter(e, "tmp", TINY_ADAPTERS "/a_mlp") == LORAJIT_OK, "load tmp");
    const char *tmp[] = {"tmp"}, *ghost[] = {"ghost"};
    CHECK(lorajit_seq_set_adapter(e, 1, tmp, NULL, 1) == LORAJIT_OK, "seq 1 uses tmp");
    expect(e, lorajit_seq_set_adapter(e, 3, ghost, NULL, 1), LORAJIT_E_NOT_FOUND, "ghost", "seq_set unknown");
    CHECK(lorajit_delete_adapter(e, "tmp") == LORAJIT_OK, "delete tmp");
    int two[2] = {0, 1};
    expect(e, lorajit_decode(e, two, tok, 2, logits), LORAJIT_E_NOT_FOUND, "sequence 1 uses adapter 'tmp'",
           "decode after delete");
    CHECK(lorajit_seq_pos(e, 0) == 0 && lorajit_seq_pos(e, 1) == 0, "a failed decode moved a position");
    CHECK(lorajit_seq_follow_engine(e, 1) == LORAJIT_OK, "follow");
    /* bad generate arguments change nothing */
    CHECK(lorajit_seq_prefill(e, 0, tok, 3, NULL) == LORAJIT_OK, "prefill seq 0");
    lorajit_sampling bad = {.temperature = 1, .top_p = 0, .repetition_penalty = 1, .eos_id = -1};
    lorajit_request rq = {tok, 3, "a_qv", NEW, out, 0, 0};
    expect(e, lorajit_generate(e, &rq, 1, &bad, NULL, NULL), LORAJIT_E_ARG, "top_p", "top_p 0");
    bad = (lorajit_sampling){.top_p = 1, .repetition_penalty = 1, .eos_id = vocab};
    expect(e, lorajit_generate(e, &rq, 1, &bad, NULL, NULL), LORAJIT_E_ARG, "eos_id", "eos >= vocab");
    expect(e, lorajit_generate(e, &rq, 0, NULL, NULL, NULL), LORAJIT_E_ARG, "requests", "0 requests");
    expect(e, lorajit_generate(e, NULL, 1, NULL, NULL, NULL), LORAJIT_E_ARG, "requests", "NULL requests");
    lorajit_request five[5] = {rq, rq, rq, rq, rq};
    expect(e, lorajit_generate(e, five, 5, NULL, NULL, NULL), LORAJIT_E_ARG, "max_batch", "5 requests");
    static const char *const specs[] = {"a_qv:x", "nobody", "a_qv,,a_mlp", "a_qv,a_qv"};
    for (int i = 0; i < 4; i++) {
        lorajit_request two_rq[2] = {rq, rq};
        two_rq[1].adapter = specs[i];
        lorajit_status st = lorajit_generate(e, two_rq, 2, NULL, NULL, NULL);
        CHECK(st != LORAJIT_OK && strstr(lorajit_errmsg(e), "request 1"), "adapter \"%s\": %s / '%s'", specs[i],
              lorajit_status_str(st), lorajit_errmsg(e));
    }
    rq.out = NULL;
    expect(e, lorajit_generate(e, &rq, 1, NULL, NULL, NULL), LORAJIT_E_ARG, "out NULL", "out NULL");
    CHECK(lorajit_seq_pos(e, 0) == 3, "failed generates changed sequence 0 (pos %d)", lorajit_seq_pos(e, 0));
    /* NULL handles */
    CHECK(lorajit_seq_set_adapter(NULL, 0, NULL, NULL, 0) != LORAJIT_OK && lorajit_seq_follow_engine(NULL, 0) != LORAJIT_OK &&
          lorajit_seq_reset(NULL, 0) != LORAJIT_OK && lorajit_seq_pos(NULL, 0) == -1 &&
          lorajit_seq_prefill(NULL, 0, tok, 1, NULL) != LORAJIT_OK && lorajit_decode(NULL, seqs, tok, 1, logits) != LORAJIT_OK &&
          lorajit_generate(NULL, &rq, 1, NULL, NULL, NULL) != LORAJIT_OK, "NULL engine accepted");
    CHECK(lorajit_seq_prefill(e, 0, NULL, 1, NULL) != LORAJIT_OK && lorajit_decode(e, NULL, tok, 1, logits) != LORAJIT_OK &&
          lorajit_decode(e, seqs, tok, 1, NULL) != LORAJIT_OK, "NULL arguments accepted");
    free(logits);
}

/* A sequence's own set gives way to disable (PEFT: disable_adapters wins over adapter_names). */
static void test_disable(lorajit_engine *e) {
    int vocab = lorajit_vocab_size(e);
    float *own = malloc(sizeof(float) * 5 * vocab), *base = malloc(sizeof(float) * 5 * vocab);
    const char *qv[] = {"a_qv"};
    CHECK(lorajit_seq_set_adapter(e, 0, qv, NULL, 1) == LORAJIT_OK && lorajit_seq_set_adapter(e, 1, NULL, NULL, 0) == LORAJIT_OK,
          "own sets: %s", lorajit_errmsg(e));
    for (int pass = 0; pass < 2; pass++) {
        CHECK((pass ? lorajit_enable_adapters(e) : lorajit_disable_adapters(e)) == LORAJIT_OK, "enable/disable");
        CHECK(lorajit_seq_reset(e, 0) == LORAJIT_OK && lorajit_seq_reset(e, 1) == LORAJIT_OK, "reset");
        CHECK(lorajit_seq_prefill(e, 0, prompt, 5, own) == LORAJIT_OK && lorajit_seq_prefill(e, 1, prompt, 5, base) == LORAJIT_OK,
              "prefill: %s", lorajit_errmsg(e));
        int same = !memcmp(own, base, sizeof(float) * 5 * vocab);
        CHECK(pass ? !same : same, "%s: a_qv's sequence %s the base one", pass ? "enabled" : "disabled",
              same ? "equals" : "differs from");
    }
    free(own);
    free(base);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    check_enter_tests_dir();
    test_sample_unit();
    lorajit_engine *e = NULL;
    lorajit_options o = {.max_batch = 4, .max_seq_len = 32};
    lorajit_status st = lorajit_engine_open(&e, TINY_MODEL, &o);
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    if (st == LORAJIT_OK) {
        CHECK(lorajit_load_adapter(e, "a_qv", TINY_ADAPTERS "/a_qv") == LORAJIT_OK, "load a_qv");
        CHECK(lorajit_load_adapter(e, "a_mlp", TINY_ADAPTERS "/a_mlp") == LORAJIT_OK, "load a_mlp");
        test_sampling_api(e);
        test_errors(e);
        test_disable(e);
        lorajit_stats stats;
        CHECK(lorajit_get_stats(e, &stats) == LORAJIT_OK, "stats");
        CHECK(stats.compiles == 1, "compiles %lld after generating, want 1", (long long)stats.compiles);
        CHECK(stats.prefill_tokens > 0 && stats.decode_tokens > 0 && stats.prefill_ms > 0 && stats.decode_ms > 0,
              "stats: prefill %lld tokens %.3f ms, decode %lld tokens %.3f ms", (long long)stats.prefill_tokens,
              stats.prefill_ms, (long long)stats.decode_tokens, stats.decode_ms);
        printf("  stats: compiles %lld, prefill %lld tokens, decode %lld tokens, failed calls %lld\n",
               (long long)stats.compiles, (long long)stats.prefill_tokens, (long long)stats.decode_tokens,
               (long long)stats.failed_calls);
    }
    lorajit_engine_free(e);
    return check_summary("test_sampling");
}
