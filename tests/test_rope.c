/* test_rope.c — RoPE scaling end to end on tests/golden/rope (make_rope_fixtures.py):
 * for each type (default, linear, dynamic, yarn, longrope, llama3) a small GQA model
 * whose original max positions are 16 runs 40 tokens:
 *  - one forward of 40 tokens matches the reference's full forward (2e-4 + 2e-4|x|);
 *  - prefill 8 + decode one token a step to 40 matches the reference's generate()
 *    (each step's table for seq_len = position + 1, cached keys keep their rotation);
 *    two sequences at different lengths decode in one batch (per-row tables);
 *  - for the types whose table does not depend on the length, decode == full forward
 *    at every position;
 *  - the engine compiled once (stats.compiles 1) although dynamic / longrope ran past
 *    the original max positions and changed tables between calls;
 *  - an artifact (AOT) gives the JIT's logits bit for bit, forward and decode. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"

#define ROPE_DIR "golden/rope"
enum { T = 40, MAXV = 64 };

static int tokens[T], prefill, vocab = MAXV;

static float *load_bin(const char *name) {
    char path[256];
    snprintf(path, sizeof path, ROPE_DIR "/expected/%s", name);
    long n = 0;
    float *d = (float *)check_read_file(path, &n);
    CHECK(d && n == (long)sizeof(float) * T * vocab, "%s: %ld bytes", path, n);
    return d;
}

/* max |got - want| over rows [r0, r1); CHECK each against the tolerance. */
static double compare(const char *what, const char *type, const float *got, const float *want, int r0, int r1) {
    long worst = -1;
    long n = (long)(r1 - r0) * vocab;
    double ratio = check_close_ratio(got + (long)r0 * vocab, want + (long)r0 * vocab, n, 2e-4, 2e-4, &worst);
    CHECK(ratio <= 1, "%s %s: over tolerance x%.2f at row %ld col %ld", type, what, ratio,
          r0 + worst / vocab, worst % vocab);
    double m = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[r0 * vocab + i] - (double)want[r0 * vocab + i]);
        if (d > m) m = d;
    }
    return m;
}

static lorajit_options opts(void) {
    return (lorajit_options){.max_rank = 4, .targets = "q_proj,v_proj", .max_adapters = 1, .max_tokens = 48,
                             .max_batch = 2, .max_seq_len = 48};
}

/* full [T, vocab]: one forward. gen [T, vocab]: prefill then decode one token a step
 * on sequence 0, sequence 1 starting later and decoding in the same batch (its rows
 * in gen1). */
static void run_engine(lorajit_engine *e, float *full, float *gen, float *gen1) {
    int32_t tk[T];
    for (int i = 0; i < T; i++) tk[i] = tokens[i];
    CHECK(lorajit_forward(e, tk, T, full) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    for (int s = 0; s < 2; s++) CHECK(lorajit_seq_reset(e, s) == LORAJIT_OK, "reset");
    CHECK(lorajit_seq_prefill(e, 0, tk, prefill, gen) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    const int lag = 10; /* sequence 1 starts when sequence 0 is at prefill + lag (past 16) */
    int pos[2] = {prefill, -1}; /* -1: sequence 1 not started */
    float out[2 * MAXV];
    for (;;) {
        if (pos[1] < 0 && pos[0] >= prefill + lag) {
            CHECK(lorajit_seq_prefill(e, 1, tk, prefill, gen1) == LORAJIT_OK, "prefill 1: %s", lorajit_errmsg(e));
            pos[1] = prefill;
        }
        int seqs[2], n = 0;
        int32_t in[2];
        for (int s = 0; s < 2; s++)
            if (pos[s] >= 0 && pos[s] < T) seqs[n] = s, in[n++] = tk[pos[s]];
        if (n == 0) break;
        if (lorajit_decode(e, seqs, in, n, out) != LORAJIT_OK) {
            CHECK(0, "decode: %s", lorajit_errmsg(e));
            return;
        }
        for (int r = 0; r < n; r++) {
            int s = seqs[r];
            memcpy((s == 0 ? gen : gen1) + (long)pos[s] * vocab, out + r * vocab, sizeof(float) * vocab);
            pos[s]++;
        }
    }
}

static void test_type(const cJSON *c, bool aot) {
    const char *type = cJSON_GetObjectItem(c, "type")->valuestring;
    char model[256], art[256];
    snprintf(model, sizeof model, ROPE_DIR "/%s", cJSON_GetObjectItem(c, "model")->valuestring);
    float *want_full = load_bin(cJSON_GetObjectItem(c, "full")->valuestring);
    float *want_gen = load_bin(cJSON_GetObjectItem(c, "gen")->valuestring);
    size_t sz = sizeof(float) * T * vocab;
    float *full = calloc(1, sz), *gen = calloc(1, sz), *gen1 = calloc(1, sz);
    lorajit_options o = opts();
    lorajit_engine *e = NULL;
    if (lorajit_engine_open(&e, model, &o) != LORAJIT_OK) {
        CHECK(0, "%s: open: %s", type, lorajit_errmsg(e));
        goto out;
    }
    run_engine(e, full, gen, gen1);
    double ef = compare("full forward", type, full, want_full, 0, T);
    double eg = compare("generate (seq 0)", type, gen, want_gen, 0, T);
    double eg1 = compare("generate (seq 1, batched)", type, gen1, want_gen, 0, T);
    bool varies = !strcmp(type, "dynamic") || !strcmp(type, "longrope");
    double dd = 0;
    if (!varies) dd = compare("decode vs full forward", type, gen, full, 0, T);
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK && st.compiles == 1, "%s: compiles %lld", type,
          (long long)st.compiles);
    printf("rope %-9s max|err| full %.2e  generate %.2e  batched %.2e%s%.2e\n", type, ef, eg, eg1,
           varies ? "  (decode != full by design) " : "  decode-vs-full ", dd);
    if (aot) {
        char msg[1024] = "";
        snprintf(art, sizeof art, "/tmp/lorajit_rope_art_%d_%s", (int)getpid(), type);
        CHECK(lorajit_compile_artifact(model, &o, NULL, art, msg, sizeof msg) == LORAJIT_OK, "%s: compile: %s",
              type, msg);
        lorajit_engine *a = NULL;
        if (lorajit_engine_open_artifact(&a, art, model, &o) != LORAJIT_OK) {
            CHECK(0, "%s: open artifact: %s", type, lorajit_errmsg(a));
        } else {
            float *af = calloc(1, sz), *ag = calloc(1, sz), *ag1 = calloc(1, sz);
            run_engine(a, af, ag, ag1);
            CHECK(!memcmp(af, full, sz) && !memcmp(ag, gen, sz) && !memcmp(ag1, gen1, sz),
                  "%s: AOT differs from the JIT", type);
            free(af), free(ag), free(ag1);
        }
        lorajit_engine_free(a);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", art);
        CHECK(system(cmd) == 0, "rm %s", art);
    }
out:
    lorajit_engine_free(e);
    free(full), free(gen), free(gen1), free(want_full), free(want_gen);
}

/* A dynamic model compiled once runs past its max_position_embeddings (16) and back:
 * forward lengths 8, 40, 12, 33, 40 give the same logits each time a length recurs. */
static void test_dynamic_no_recompile(void) {
    lorajit_options o = opts();
    lorajit_engine *e = NULL;
    int64_t before = lorajit_compiles_total();
    CHECK(lorajit_engine_open(&e, ROPE_DIR "/models/dynamic", &o) == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    int32_t tk[T];
    for (int i = 0; i < T; i++) tk[i] = tokens[i];
    static float a[T * MAXV], b[T * MAXV], x[T * MAXV];
    int lens[] = {8, 40, 12, 33, 40};
    for (int k = 0; k < 5; k++) {
        CHECK(lorajit_forward(e, tk, lens[k], k == 4 ? b : k == 1 ? a : x) == LORAJIT_OK, "forward %d: %s",
              lens[k], lorajit_errmsg(e));
    }
    CHECK(!memcmp(a, b, sizeof a), "the 40-token forward changed after shorter ones");
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK && st.compiles == 1, "compiles %lld", (long long)st.compiles);
    CHECK(lorajit_compiles_total() == before + 1, "compiles_total %lld", (long long)(lorajit_compiles_total() - before));
    lorajit_engine_free(e);
    /* default RoPE keeps the old cap: max_seq_len past max_position_embeddings (64) is refused */
    o.max_seq_len = 65;
    CHECK(lorajit_engine_open(&e, ROPE_DIR "/models/default", &o) != LORAJIT_OK &&
              strstr(lorajit_errmsg(e), "max_position_embeddings"), "default: %s", lorajit_errmsg(e));
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    char *text = check_read_file(ROPE_DIR "/expected/index.json", NULL);
    cJSON *idx = text ? cJSON_Parse(text) : NULL;
    CHECK(idx, "index.json");
    if (!idx) return check_summary("rope");
    const cJSON *tk = cJSON_GetObjectItem(idx, "tokens");
    for (int i = 0; i < T; i++) tokens[i] = cJSON_GetArrayItem(tk, i)->valueint;
    prefill = cJSON_GetObjectItem(idx, "prefill")->valueint;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(idx, "cases")) {
        const char *type = cJSON_GetObjectItem(c, "type")->valuestring;
        bool aot = !strcmp(type, "dynamic") || !strcmp(type, "yarn") || !strcmp(type, "longrope") ||
                   !strcmp(type, "llama3");
        test_type(c, aot);
    }
    test_dynamic_no_recompile();
    cJSON_Delete(idx);
    free(text);
    return check_summary("rope");
}
