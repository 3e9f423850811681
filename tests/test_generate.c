/* test_generate.c — KV-cache generation through the public API.
 * (a) decode == forward: prefill k tokens, then lorajit_decode one row at a time and
 *     in a batch of 3 sequences at different positions; every position's logits equal
 *     lorajit_forward of the full sequence (1e-4 abs + 1e-4 rel), base / one / two weighted.
 * (b) a mixed batch (4 sequences, 4 adapter sets, one without any) equals each run alone.
 * (c) greedy lorajit_generate equals golden/expected/generate.json (torch, full recompute)
 *     token for token, one request at a time and all of a model's cases in one batch.
 * (d) hotswap / load / delete between steps leave a sequence that does not use them as is.
 * Sampling and errors: test_sampling.c. Recipe: add a state to STATES or a suite call in
 * main(). Run from tests/ (argv[1], the build dir, is not needed). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"

#define TINY_MODEL "conformance/models/llama-tiny"
#define TINY_ADAPTERS "conformance/adapters/llama-tiny"
#define ATOL 1e-4
#define RTOL 1e-4
#define MAXV 256 /* largest vocabulary of the test models */

/* Opens model_dir with schema (JSON text or NULL) and the generation options. */
static lorajit_engine *open_engine(const char *model_dir, const char *schema, int max_batch) {
    char path[64] = "";
    lorajit_options o = {.max_batch = max_batch};
    if (schema) {
        strcpy(path, "/tmp/lorajit_gen_schema_XXXXXX.json");
        int fd = mkstemps(path, 5);
        CHECK(fd >= 0 && write(fd, schema, strlen(schema)) == (ssize_t)strlen(schema), "schema file");
        if (fd >= 0) close(fd);
        o.schema_path = path;
    }
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, model_dir, &o);
    CHECK(s == LORAJIT_OK, "open %s: %s", model_dir, lorajit_errmsg(e));
    if (path[0]) remove(path);
    if (s != LORAJIT_OK) { lorajit_engine_free(e); return NULL; }
    return e;
}

static void check_one_compile(lorajit_engine *e, const char *what) {
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK && st.compiles == 1, "%s: compiles %lld, want 1", what,
          (long long)st.compiles);
}

static void load(lorajit_engine *e, const char *name, const char *root, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, dir);
    CHECK(lorajit_load_adapter(e, name, path) == LORAJIT_OK, "load %s: %s", path, lorajit_errmsg(e));
}

/* ---- (a) decode == forward ---- */

/* An adapter state: up to two names with weights (n = 0: the base model). */
typedef struct state {
    const char *label;
    int n;
    const char *names[2];
    float w[2];
} state;

/* Largest |got - want| / (ATOL + RTOL |want|) over n values. */
static double ratio(const float *got, const float *want, long n) {
    return check_close_ratio(got, want, n, ATOL, RTOL, NULL);
}

#define T_SEQ 20 /* tokens of the test sequence */

/* Checks one state on e (max_batch >= 3): path 1 follows the engine's set, prefill 7
 * then decode one row per call (a forward in between must not disturb it); path 2
 * gives three sequences that set as their own and decodes them together from
 * positions 3, 8 and 12. */
static void decode_vs_forward(lorajit_engine *e, const char *model, const state *s) {
    int vocab = lorajit_vocab_size(e);
    int32_t tok[T_SEQ], junk[9];
    float *full = malloc(sizeof(float) * T_SEQ * vocab), *got = malloc(sizeof(float) * T_SEQ * vocab);
    float *junk_logits = malloc(sizeof(float) * 9 * vocab);
    for (int i = 0; i < T_SEQ; i++) tok[i] = (i * 37 + 11 + s->n * 5) % vocab;
    for (int i = 0; i < 9; i++) junk[i] = (i * 53 + 3) % vocab;
    CHECK(lorajit_set_adapter(e, s->names, s->w, s->n) == LORAJIT_OK, "set: %s", lorajit_errmsg(e));
    CHECK(lorajit_forward(e, tok, T_SEQ, full) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    /* path 1 */
    const int k = 7;
    double worst1 = 0;
    CHECK(lorajit_seq_follow_engine(e, 0) == LORAJIT_OK && lorajit_seq_reset(e, 0) == LORAJIT_OK, "seq 0");
    CHECK(lorajit_seq_prefill(e, 0, tok, k, got) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    for (int t = k; t < T_SEQ; t++) {
        int seq = 0;
        if (t == 12) /* a stateless forward between steps uses its own cache */
            CHECK(lorajit_forward(e, junk, 9, junk_logits) == LORAJIT_OK, "forward junk");
        CHECK(lorajit_decode(e, &seq, &tok[t], 1, got + (size_t)t * vocab) == LORAJIT_OK, "decode: %s",
              lorajit_errmsg(e));
    }
    worst1 = ratio(got, full, (long)T_SEQ * vocab);
    CHECK(worst1 <= 1 && lorajit_seq_pos(e, 0) == T_SEQ, "%s %s: prefill+decode vs forward: %.3g x tolerance, "
          "pos %d", model, s->label, worst1, lorajit_seq_pos(e, 0));
    /* path 2 */
    static const int start[3] = {3, 8, 12};
    double worst2 = 0;
    float rows[3 * MAXV];
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK, "set none");
    for (int q = 0; q < 3; q++) {
        CHECK(lorajit_seq_set_adapter(e, q, s->names, s->w, s->n) == LORAJIT_OK, "seq_set: %s", lorajit_errmsg(e));
        CHECK(lorajit_seq_reset(e, q) == LORAJIT_OK, "reset");
        CHECK(lorajit_seq_prefill(e, q, tok, start[q], NULL) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    }
    for (;;) {
        int seqs[3], n = 0;
        int32_t next[3];
        for (int q = 0; q < 3; q++)
            if (lorajit_seq_pos(e, q) < T_SEQ) {
                seqs[n] = q;
                next[n++] = tok[lorajit_seq_pos(e, q)];
            }
        if (n == 0) break;
        int pos[3];
        for (int r = 0; r < n; r++) pos[r] = lorajit_seq_pos(e, seqs[r]);
        lorajit_status st = lorajit_decode(e, seqs, next, n, rows);
        CHECK(st == LORAJIT_OK, "batched decode: %s", lorajit_errmsg(e));
        if (st != LORAJIT_OK) break;
        for (int r = 0; r < n; r++) {
            double q = ratio(rows + (size_t)r * vocab, full + (size_t)pos[r] * vocab, vocab);
            if (q > worst2) worst2 = q;
        }
    }
    CHECK(worst2 <= 1, "%s %s: batch of 3 at positions 3/8/12 vs forward: %.3g x tolerance", model, s->label,
          worst2);
    printf("  %-10s %-8s prefill+decode %.3f, batch of 3 %.3f (x tolerance 1e-4 + 1e-4 rel)\n", model, s->label,
           worst1, worst2);
    for (int q = 0; q < 3; q++) lorajit_seq_follow_engine(e, q);
    free(full);
    free(got);
    free(junk_logits);
}

/* One engine of model_dir: adapters a1 and a2 (loaded from dir2; it may be a1's). */
static void suite_a(const char *model, const char *model_dir, const char *schema, const char *root,
                    const char *a1, const char *a2, const char *dir2) {
    lorajit_engine *e = open_engine(model_dir, schema, 3);
    if (!e) return;
    CHECK(lorajit_vocab_size(e) <= MAXV, "vocab");
    load(e, a1, root, a1);
    load(e, a2, root, dir2);
    state states[3] = {{"base", 0, {NULL}, {0}}, {"single", 1, {a1}, {1}}, {"multi", 2, {a1, a2}, {0.5f, -1.25f}}};
    for (int i = 0; i < 3; i++) decode_vs_forward(e, model, &states[i]);
    check_one_compile(e, model);
    lorajit_engine_free(e);
}

/* ---- (b) mixed batch == each alone ---- */

#define B_STEPS 8

/* Runs sequences seqs[0..n) (prefill prompt_len[q] tokens, then B_STEPS steps) with
 * all of them in one batch, rows in the given order; logits out [4][B_STEPS+1][vocab]. */
static void mixed_run(lorajit_engine *e, const int *seqs, int n, float *out) {
    int vocab = lorajit_vocab_size(e);
    int32_t prompt[16], next[4];
    float *rows = malloc(sizeof(float) * 4 * vocab);
    for (int r = 0; r < n; r++) {
        int q = seqs[r];
        for (int i = 0; i < 3 + 2 * q; i++) prompt[i] = (i * 29 + q * 71 + 5) % vocab;
        float *all = malloc(sizeof(float) * 16 * vocab);
        CHECK(lorajit_seq_reset(e, q) == LORAJIT_OK && lorajit_seq_prefill(e, q, prompt, 3 + 2 * q, all) == LORAJIT_OK,
              "prefill %d: %s", q, lorajit_errmsg(e));
        memcpy(out + (size_t)q * (B_STEPS + 1) * vocab, all + (size_t)(2 + 2 * q) * vocab, sizeof(float) * vocab);
        free(all);
    }
    for (int step = 0; step < B_STEPS; step++) {
        for (int r = 0; r < n; r++) next[r] = (step * 13 + seqs[r] * 7 + 1) % vocab;
        CHECK(lorajit_decode(e, seqs, next, n, rows) == LORAJIT_OK, "decode: %s", lorajit_errmsg(e));
        for (int r = 0; r < n; r++)
            memcpy(out + ((size_t)seqs[r] * (B_STEPS + 1) + step + 1) * vocab, rows + (size_t)r * vocab,
                   sizeof(float) * vocab);
    }
    free(rows);
}

static void suite_b(void) {
    lorajit_engine *e = open_engine(TINY_MODEL, NULL, 4);
    if (!e) return;
    int vocab = lorajit_vocab_size(e);
    load(e, "a_qv", TINY_ADAPTERS, "a_qv");
    load(e, "a_all", TINY_ADAPTERS, "a_all");
    load(e, "a_mlp", TINY_ADAPTERS, "a_mlp");
    const char *qv[] = {"a_qv"}, *all[] = {"a_all"}, *multi[] = {"a_qv", "a_mlp"};
    const float w[] = {1.0f, -0.75f};
    CHECK(lorajit_seq_set_adapter(e, 0, qv, NULL, 1) == LORAJIT_OK, "seq 0: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_set_adapter(e, 1, all, NULL, 1) == LORAJIT_OK, "seq 1: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_set_adapter(e, 2, NULL, NULL, 0) == LORAJIT_OK, "seq 2: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_set_adapter(e, 3, multi, w, 2) == LORAJIT_OK, "seq 3: %s", lorajit_errmsg(e));
    CHECK(lorajit_set_adapter(e, all, NULL, 1) == LORAJIT_OK, "engine set"); /* must not matter */
    size_t per = (size_t)4 * (B_STEPS + 1) * vocab;
    float *together = malloc(sizeof(float) * per), *reversed = malloc(sizeof(float) * per);
    float *alone = malloc(sizeof(float) * per);
    static const int order[4] = {0, 1, 2, 3}, back[4] = {3, 1, 0, 2};
    mixed_run(e, order, 4, together);
    mixed_run(e, back, 4, reversed);
    for (int q = 0; q < 4; q++) mixed_run(e, &q, 1, alone);
    double worst = 0, worst_rev = 0;
    long differ = 0;
    for (size_t i = 0; i < per; i++) {
        double d = fabs((double)together[i] - alone[i]), r = fabs((double)together[i] - reversed[i]);
        if (d > worst) worst = d;
        if (r > worst_rev) worst_rev = r;
        differ += together[i] != alone[i];
    }
    CHECK(worst <= 1e-5, "mixed batch vs alone: max |diff| %.3g > 1e-5", worst);
    CHECK(worst_rev <= 1e-5, "mixed batch in another row order: max |diff| %.3g > 1e-5", worst_rev);
    /* and the four sequences really differ from each other */
    for (int q = 1; q < 4; q++)
        CHECK(memcmp(alone, alone + (size_t)q * (B_STEPS + 1) * vocab, sizeof(float) * vocab * (B_STEPS + 1)),
              "sequence %d gave sequence 0's logits", q);
    printf("  mixed batch (a_qv | a_all | none | a_qv+a_mlp*-0.75) vs alone: max |diff| %.3g, %s "
           "(%ld of %zu floats differ); other row order: max |diff| %.3g\n", worst,
           differ ? "not bitwise" : "bitwise equal", differ, per, worst_rev);
    check_one_compile(e, "mixed batch");
    free(together);
    free(reversed);
    free(alone);
    lorajit_engine_free(e);
}

/* ---- (c) greedy generation == torch reference ---- */

/* "NAME[:W],..." of a golden state (its active set), "" for none or disabled. */
static void state_spec(const cJSON *state, char *out, size_t cap) {
    out[0] = '\0';
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "disabled"))) return;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(state, "weights"), *it;
    int i = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(state, "active")) {
        const cJSON *wi = cJSON_GetArrayItem(w, i++);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s:%.9g", len ? "," : "", it->valuestring,
                 cJSON_IsNumber(wi) ? wi->valuedouble : 1.0);
    }
}

/* Loads a golden state's adapters into e (names already there are kept) and applies its
 * hotswaps and deletes; the active set is left to the caller. */
static void state_load(lorajit_engine *e, const char *model, const cJSON *state) {
    char root[256], path[512];
    snprintf(root, sizeof root, "golden/adapters/%s", model);
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(state, "dirs"), *it;
    const char *keys[2] = {"loaded", "deleted"};
    for (int l = 0; l < 2; l++)
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(state, keys[l])) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(dirs, it->valuestring);
            const char *names[64];
            int n = lorajit_list_adapters(e, names, 64), have = 0;
            for (int i = 0; i < n; i++) have |= !strcmp(names[i], it->valuestring);
            if (!have) load(e, it->valuestring, root, cJSON_IsString(d) ? d->valuestring : it->valuestring);
        }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(state, "hotswap")) {
        snprintf(path, sizeof path, "%s/%s", root, cJSON_GetArrayItem(it, 1)->valuestring);
        const char *name = cJSON_GetArrayItem(it, 0)->valuestring;
        CHECK(lorajit_hotswap_adapter(e, name, path) == LORAJIT_OK, "hotswap %s: %s", name, lorajit_errmsg(e));
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(state, "deleted"))
        CHECK(lorajit_delete_adapter(e, it->valuestring) == LORAJIT_OK, "delete: %s", lorajit_errmsg(e));
}

typedef struct gen_case {
    const char *name, *model;
    const cJSON *state;
    int32_t prompt[64], want[64];
    int n_prompt, max_new;
} gen_case;

static int first_diff(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

static void check_tokens(const gen_case *c, const lorajit_request *r, const char *how) {
    int same = r->n_out == c->max_new && !memcmp(r->out, c->want, sizeof(int32_t) * c->max_new);
    CHECK(same, "%s (%s): %d tokens, first difference at %d", c->name, how, r->n_out,
          first_diff(r->out, r->n_out, c->want, c->max_new));
}

/* Records what on_token reports. */
typedef struct token_log {
    int n;
    int req[256];
    int32_t tok[256];
} token_log;

static void on_token(void *user, int request, int32_t token) {
    token_log *l = user;
    if (l->n < 256) {
        l->req[l->n] = request;
        l->tok[l->n++] = token;
    }
}

/* Sets reqs[0].stop once request 0 has had `after` tokens; counts its tokens after that. */
typedef struct stopper {
    lorajit_request *reqs;
    int after, seen, calls_after_stop;
} stopper;

static void stop_request0(void *user, int request, int32_t token) {
    stopper *s = user;
    if (request != 0) return;
    if (s->reqs[0].stop) s->calls_after_stop++;
    if (++s->seen == s->after) s->reqs[0].stop = 1;
}

/* Cases i..n of model (same schema) on one engine: each alone following the engine's
 * set, each alone with its own adapter spec, then all of them in one batch. */
static void gen_model(gen_case *cases, int n, const char *schema) {
    char model_dir[256], spec[8][4096];
    snprintf(model_dir, sizeof model_dir, "golden/models/%s", cases[0].model);
    lorajit_engine *e = open_engine(model_dir, schema, 8);
    if (!e) return;
    int32_t out[8][64];
    lorajit_request req[8];
    for (int i = 0; i < n; i++) {
        gen_case *c = &cases[i];
        state_load(e, c->model, c->state);
        state_spec(c->state, spec[i], sizeof spec[i]);
        req[i] = (lorajit_request){c->prompt, c->n_prompt, spec[i], c->max_new, out[i], 0, 0};
    }
    for (int i = 0; i < n; i++) { /* alone, following the engine's active set */
        const gen_case *c = &cases[i];
        const char *names[8];
        float w[8];
        int k = 0;
        char buf[4096];
        memcpy(buf, spec[i], sizeof buf);
        for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) {
            char *colon = strchr(p, ':');
            *colon = '\0';
            names[k] = p;
            w[k++] = strtof(colon + 1, NULL);
        }
        CHECK(lorajit_set_adapter(e, names, w, k) == LORAJIT_OK, "%s: set: %s", c->name, lorajit_errmsg(e));
        lorajit_request r = req[i];
        r.adapter = NULL;
        CHECK(lorajit_generate(e, &r, 1, NULL, NULL, NULL) == LORAJIT_OK, "%s: generate: %s", c->name,
              lorajit_errmsg(e));
        check_tokens(c, &r, "alone, engine's set");
    }
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK, "set none");
    for (int i = 0; i < n; i++) { /* alone, own set */
        lorajit_request r = req[i];
        CHECK(lorajit_generate(e, &r, 1, NULL, NULL, NULL) == LORAJIT_OK, "%s: generate: %s", cases[i].name,
              lorajit_errmsg(e));
        check_tokens(&cases[i], &r, "alone, own set");
    }
    token_log log = {0};
    lorajit_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1, .eos_id = -1};
    CHECK(lorajit_generate(e, req, n, &greedy, on_token, &log) == LORAJIT_OK, "batch generate: %s",
          lorajit_errmsg(e));
    int pos[8] = {0}, ok = 1;
    for (int i = 0; i < n; i++) check_tokens(&cases[i], &req[i], "one batch, own sets");
    for (int k = 0; k < log.n; k++) ok &= log.req[k] < n && req[log.req[k]].out[pos[log.req[k]]++] == log.tok[k];
    for (int i = 0; i < n; i++) ok &= pos[i] == req[i].n_out;
    CHECK(ok, "on_token reported %d calls that do not match the outputs", log.n);
    /* reqs[0].stop set by on_token after its 3rd token: request 0 ends there with the
     * prefix of its ids, the others are unchanged */
    stopper st = {.reqs = req, .after = 3};
    for (int i = 0; i < n; i++) req[i].stop = 0;
    CHECK(lorajit_generate(e, req, n, &greedy, stop_request0, &st) == LORAJIT_OK, "stop: %s", lorajit_errmsg(e));
    int want0 = cases[0].max_new < 3 ? cases[0].max_new : 3;
    CHECK(req[0].n_out == want0 && !memcmp(req[0].out, cases[0].want, sizeof(int32_t) * want0),
          "stop after 3: request 0 gave %d tokens, want the first %d of its ids", req[0].n_out, want0);
    CHECK(st.calls_after_stop == 0, "on_token called %d times for request 0 after it set stop", st.calls_after_stop);
    for (int i = 1; i < n; i++) check_tokens(&cases[i], &req[i], "one batch, request 0 stopped");
    printf("  generate %-5s %d cases: alone (engine set), alone (own set), one batch of %d: checked\n",
           cases[0].model, n, n);
    check_one_compile(e, cases[0].model);
    lorajit_engine_free(e);
}

static void suite_c(void) {
    char *text = check_read_file("golden/expected/generate.json", NULL);
    CHECK(text != NULL, "golden/expected/generate.json is missing");
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL, "generate.json is not valid JSON");
    if (!root) return;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    int n = cJSON_GetArraySize(cases), done = 0;
    gen_case *gc = calloc(n ? n : 1, sizeof *gc);
    char **schema = calloc(n ? n : 1, sizeof *schema);
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i), *it;
        gc[i].name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "case"));
        gc[i].model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "model"));
        gc[i].state = cJSON_GetObjectItemCaseSensitive(c, "state");
        gc[i].max_new = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "max_new"));
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(c, "prompt")) gc[i].prompt[gc[i].n_prompt++] = it->valueint;
        int k = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(c, "tokens")) gc[i].want[k++] = it->valueint;
        CHECK(k == gc[i].max_new && gc[i].model, "%s: %d tokens for max_new %d", gc[i].name, k, gc[i].max_new);
        schema[i] = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "schema"));
    }
    /* group consecutive cases of one model (same schema) on one engine */
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && j - i < 8 && !strcmp(gc[j].model, gc[i].model) && !strcmp(schema[j], schema[i])) j++;
        gen_model(gc + i, j - i, schema[i]);
        done += j - i;
        i = j;
    }
    CHECK(done == n && n >= 4, "generate.json: %d cases run of %d", done, n);
    for (int i = 0; i < n; i++) free(schema[i]);
    free(schema);
    free(gc);
    cJSON_Delete(root);
}

/* ---- (d) changes to other adapters between steps ---- */

#define D_STEPS 8
#define D_SWAP 4 /* the disturbance comes before this step */

/* Seq 0 follows the engine (a_qv active), seq 1 uses "swap" (a_all) as its own set;
 * greedy feed for D_STEPS steps. disturb: before step D_SWAP load and delete an
 * extra adapter and hotswap "swap" to a_mlp. logits out [2][D_STEPS][vocab]. */
static void d_run(lorajit_engine *e, int disturb, int32_t toks[2][D_STEPS], float *out) {
    int vocab = lorajit_vocab_size(e), seqs[2] = {0, 1};
    int32_t prompt[6] = {175, 196, 25, 246, 67, 211}, next[2];
    float *rows = malloc(sizeof(float) * 2 * vocab), *last = malloc(sizeof(float) * 6 * vocab);
    for (int q = 0; q < 2; q++) {
        CHECK(lorajit_seq_reset(e, q) == LORAJIT_OK, "reset");
        CHECK(lorajit_seq_prefill(e, q, prompt + q, 5, last) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
        next[q] = (int32_t)(q * 3 + 1);
    }
    for (int step = 0; step < D_STEPS; step++) {
        if (disturb && step == D_SWAP) {
            load(e, "extra", TINY_ADAPTERS, "a_mlp");
            CHECK(lorajit_hotswap_adapter(e, "swap", TINY_ADAPTERS "/a_mlp") == LORAJIT_OK, "hotswap: %s",
                  lorajit_errmsg(e));
            CHECK(lorajit_delete_adapter(e, "extra") == LORAJIT_OK, "delete: %s", lorajit_errmsg(e));
        }
        CHECK(lorajit_decode(e, seqs, next, 2, rows) == LORAJIT_OK, "decode: %s", lorajit_errmsg(e));
        for (int q = 0; q < 2; q++) {
            const float *row = rows + (size_t)q * vocab;
            memcpy(out + ((size_t)q * D_STEPS + step) * vocab, row, sizeof(float) * vocab);
            int best = 0;
            for (int v = 1; v < vocab; v++)
                if (row[v] > row[best]) best = v;
            toks[q][step] = next[q] = best;
        }
    }
    free(rows);
    free(last);
}

static void suite_d(void) {
    lorajit_engine *e = open_engine(TINY_MODEL, NULL, 2);
    if (!e) return;
    int vocab = lorajit_vocab_size(e);
    load(e, "a_qv", TINY_ADAPTERS, "a_qv");
    load(e, "swap", TINY_ADAPTERS, "a_all");
    const char *qv[] = {"a_qv"}, *swap[] = {"swap"};
    CHECK(lorajit_set_adapter(e, qv, NULL, 1) == LORAJIT_OK, "set a_qv");
    CHECK(lorajit_seq_set_adapter(e, 1, swap, NULL, 1) == LORAJIT_OK, "seq 1: %s", lorajit_errmsg(e));
    int32_t t0[2][D_STEPS], t1[2][D_STEPS];
    size_t per = (size_t)D_STEPS * vocab;
    float *quiet = malloc(sizeof(float) * 2 * per), *busy = malloc(sizeof(float) * 2 * per);
    d_run(e, 0, t0, quiet);
    d_run(e, 1, t1, busy);
    CHECK(!memcmp(t0[0], t1[0], sizeof t0[0]), "seq 0's tokens changed when another adapter was hotswapped");
    int bitwise = !memcmp(quiet, busy, sizeof(float) * per);
    CHECK(ratio(busy, quiet, (long)per) <= 1, "seq 0's logits changed when another adapter was hotswapped");
    CHECK(!memcmp(quiet + per, busy + per, sizeof(float) * D_SWAP * vocab), "seq 1 changed before the hotswap");
    double d = 0;
    for (int v = 0; v < vocab; v++) {
        double x = fabs((double)quiet[per + (size_t)D_SWAP * vocab + v] - busy[per + (size_t)D_SWAP * vocab + v]);
        if (x > d) d = x;
    }
    CHECK(d > 1e-3, "seq 1 (uses the hotswapped adapter) did not change at the next step: max |diff| %.3g", d);
    printf("  hotswap between steps: seq 0 (not using it) tokens equal, logits %s; seq 1 (using it) changes "
           "at the next step by up to %.3g\n", bitwise ? "bitwise equal" : "within tolerance", d);
    check_one_compile(e, "hotswap between steps");
    free(quiet);
    free(busy);
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    check_enter_tests_dir();
    printf("(a) decode == forward\n");
    suite_a("llama-tiny", TINY_MODEL, NULL, TINY_ADAPTERS, "a_qv", "a_mlp", "a_mlp");
    suite_a("gqa", "golden/models/gqa", "{\"max_rank\": 16, \"max_adapters\": 4}", "golden/adapters/gqa",
            "r8_qv", "r4_all", "r4_all");
    suite_a("f16", "golden/models/f16", "{\"max_rank\": 8, \"max_adapters\": 2}", "golden/adapters/f16",
            "all", "all_again", "all");
    suite_a("bf16", "golden/models/bf16", "{\"max_rank\": 32, \"max_adapters\": 2}", "golden/adapters/bf16",
            "qkvo", "qv32", "qv32");
    suite_a("bias", "golden/models/bias", "{\"max_rank\": 8, \"max_adapters\": 2}", "golden/adapters/bias",
            "all", "all_again", "all");
    /* the families (issue 13): 20 tokens cross Mistral's and Phi-3's window of 8 */
    static const char *const families[] = {"qwen2", "qwen3", "mistral", "phi3", "gemma"};
    for (int f = 0; f < 5; f++) {
        char dir[64], ad[64];
        snprintf(dir, sizeof dir, "golden/models/%s", families[f]);
        snprintf(ad, sizeof ad, "golden/adapters/%s", families[f]);
        suite_a(families[f], dir, "{\"max_rank\": 16, \"max_adapters\": 4}", ad, "r8_qv", "r4_all", "r4_all");
    }
    printf("(b) mixed batch\n");
    suite_b();
    printf("(c) greedy generation vs torch\n");
    suite_c();
    printf("(d) hotswap between steps\n");
    suite_d();
    return check_summary("test_generate");
}
