/* test_aot.c — ahead-of-time artifacts against the JIT, and their refusals.
 *
 * (a) The conformance tiny model compiled to an artifact for this CPU, opened with
 *     lorajit_engine_open_artifact, gives the JIT engine's logits bit for bit: base,
 *     one adapter, two with weights, disabled, after a hotswap, and decode steps.
 * (b) An x86-64-v2 artifact agrees with the JIT within a float tolerance.
 * (c) Refusals, each naming the cause: an edited manifest, another model's config,
 *     another model's weights, a CPU feature this host lacks, a replaced library,
 *     options that disagree with the compiled schema, an unknown target CPU.
 * (e) The families (golden/models/qwen2, qwen3, mistral, phi3, gemma): artifact == JIT bit
 *     for bit, base, weighted pair, disabled, and decode steps past the sliding window.
 * (f) A BF16 model's artifact carries rows_exact (lj_rows_exact) as the JIT's code does,
 *     so its steps run as lj_decode passes too: a mixed step (a 20-token chunk beside a
 *     decode row) gives the JIT engine's logits bit for bit.
 * (d) Prints artifact size, compile-to-artifact time, open-to-ready time vs the JIT.
 * Artifacts go under argv[1] (the build dir)/aot-test; run from tests/. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"
#include "engine.h"
#include "serving.h"

#define TINY "conformance/models/llama-tiny"
#define ADAPTERS "conformance/adapters/llama-tiny"
#define OTHER "golden/models/gqa" /* intermediate_size 128, vocab 128: another model */
#define N_PROMPT 7

static const int32_t prompt[N_PROMPT] = {175, 196, 25, 246, 67, 211, 151};
static const lorajit_options opts = {.max_rank = 8, .max_adapters = 4, .max_batch = 2, .max_seq_len = 64};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- files ---- */

/* dst/name = src/name (copied; extra bytes appended when extra > 0). */
static int copy_file(const char *src_dir, const char *dst_dir, const char *name, int extra) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", src_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, name);
    long n;
    char *data = check_read_file(src, &n);
    if (!data) return -1;
    char *more = realloc(data, n + extra + 1);
    if (!more) { free(data); return -1; }
    memset(more + n, 0x5a, extra);
    int rc = check_write_file(dst, more, n + extra);
    free(more);
    return rc;
}

/* Sum of the sizes of the regular files in dir. */
static long dir_bytes(const char *dir) {
    DIR *d = opendir(dir);
    long total = 0;
    for (struct dirent *ent; d && (ent = readdir(d));) {
        char p[4096];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", dir, ent->d_name) >= (int)sizeof p) continue;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
    }
    if (d) closedir(d);
    return total;
}

/* A copy of the artifact in src named dst, every file as is. */
static int copy_artifact(const char *src, const char *dst) {
    mkdir(dst, 0777);
    const char *files[] = {"manifest.json", "liblorajit_model.so", "model.ir"};
    for (int i = 0; i < 3; i++)
        if (copy_file(src, dst, files[i], 0)) return -1;
    return 0;
}

/* ---- engines side by side ---- */

typedef struct pair {
    lorajit_engine *jit, *aot;
    int vocab;
    float *a, *b; /* [N_PROMPT, vocab] */
    const int32_t *tokens; /* [N_PROMPT]; NULL: prompt */
} pair;

/* Runs the same call on both engines; both must succeed. */
#define BOTH(p, call_jit, call_aot, what)                                                        \
    do {                                                                                         \
        lorajit_status s1_ = (call_jit), s2_ = (call_aot);                                       \
        CHECK(s1_ == LORAJIT_OK && s2_ == LORAJIT_OK, "%s: jit %s / aot %s", what,               \
              lorajit_errmsg((p)->jit), lorajit_errmsg((p)->aot));                               \
    } while (0)

/* Forward on both; exact: bit for bit, else within 1e-4 relative. */
static void compare_forward(pair *p, const char *state, int exact) {
    size_t n = (size_t)N_PROMPT * p->vocab;
    const int32_t *toks = p->tokens ? p->tokens : prompt;
    BOTH(p, lorajit_forward(p->jit, toks, N_PROMPT, p->a), lorajit_forward(p->aot, toks, N_PROMPT, p->b), state);
    if (exact) {
        CHECK(memcmp(p->a, p->b, n * sizeof(float)) == 0, "state %s: AOT logits differ from the JIT's", state);
    } else {
        long worst;
        double r = check_close_ratio(p->b, p->a, (long)n, 1e-4, 1e-4, &worst);
        CHECK(r <= 1, "state %s: AOT logit %ld is %g, JIT %g", state, worst, p->b[worst], p->a[worst]);
    }
}

/* Decode steps of two sequences with different adapters on both engines. */
static void compare_decode(pair *p, int exact) {
    const char *qv[] = {"qv"}, *all[] = {"all"};
    for (int k = 0; k < 2; k++) {
        lorajit_engine *e = k ? p->aot : p->jit;
        CHECK(lorajit_seq_reset(e, 0) == LORAJIT_OK && lorajit_seq_reset(e, 1) == LORAJIT_OK, "reset");
        CHECK(lorajit_seq_set_adapter(e, 0, qv, NULL, 1) == LORAJIT_OK, "seq adapter: %s", lorajit_errmsg(e));
        CHECK(lorajit_seq_set_adapter(e, 1, all, NULL, 1) == LORAJIT_OK, "seq adapter: %s", lorajit_errmsg(e));
        CHECK(lorajit_seq_prefill(e, 0, prompt, 4, NULL) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
        CHECK(lorajit_seq_prefill(e, 1, prompt + 2, 5, NULL) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    }
    int seqs[2] = {0, 1};
    for (int step = 0; step < 3; step++) {
        int32_t tok[2] = {prompt[step], prompt[6 - step]};
        BOTH(p, lorajit_decode(p->jit, seqs, tok, 2, p->a), lorajit_decode(p->aot, seqs, tok, 2, p->b), "decode");
        size_t n = 2 * (size_t)p->vocab;
        if (exact) {
            CHECK(memcmp(p->a, p->b, n * sizeof(float)) == 0, "decode step %d: AOT logits differ", step);
        } else {
            long worst;
            CHECK(check_close_ratio(p->b, p->a, (long)n, 1e-4, 1e-4, &worst) <= 1, "decode step %d differs", step);
        }
    }
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 2; s++) lorajit_seq_follow_engine(k ? p->aot : p->jit, s);
}

/* Every adapter state of (a), on an artifact engine against the JIT engine. */
static void compare_states(pair *p, int exact) {
    p->vocab = lorajit_vocab_size(p->jit);
    CHECK(p->vocab == lorajit_vocab_size(p->aot), "vocab sizes differ");
    p->a = malloc(sizeof(float) * N_PROMPT * p->vocab);
    p->b = malloc(sizeof(float) * N_PROMPT * p->vocab);
    compare_forward(p, "base", exact);
    BOTH(p, lorajit_load_adapter(p->jit, "qv", ADAPTERS "/a_qv"), lorajit_load_adapter(p->aot, "qv", ADAPTERS "/a_qv"),
         "load qv");
    BOTH(p, lorajit_load_adapter(p->jit, "all", ADAPTERS "/a_all"),
         lorajit_load_adapter(p->aot, "all", ADAPTERS "/a_all"), "load all");
    const char *one[] = {"qv"}, *two[] = {"qv", "all"};
    float w[] = {1.0f, 0.5f};
    BOTH(p, lorajit_set_adapter(p->jit, one, NULL, 1), lorajit_set_adapter(p->aot, one, NULL, 1), "set qv");
    compare_forward(p, "a_qv", exact);
    BOTH(p, lorajit_set_adapter(p->jit, two, w, 2), lorajit_set_adapter(p->aot, two, w, 2), "set qv+all");
    compare_forward(p, "a_qv:1 + a_all:0.5", exact);
    BOTH(p, lorajit_disable_adapters(p->jit), lorajit_disable_adapters(p->aot), "disable");
    compare_forward(p, "disabled", exact);
    BOTH(p, lorajit_enable_adapters(p->jit), lorajit_enable_adapters(p->aot), "enable");
    BOTH(p, lorajit_hotswap_adapter(p->jit, "qv", ADAPTERS "/a_mlp"),
         lorajit_hotswap_adapter(p->aot, "qv", ADAPTERS "/a_mlp"), "hotswap");
    compare_forward(p, "qv <- a_mlp, + a_all:0.5", exact);
    BOTH(p, lorajit_hotswap_adapter(p->jit, "qv", ADAPTERS "/a_qv"),
         lorajit_hotswap_adapter(p->aot, "qv", ADAPTERS "/a_qv"), "hotswap back");
    compare_decode(p, exact);
    free(p->a);
    free(p->b);
}

/* (e) One family's golden model as an artifact against the JIT, bit for bit. */
static void compare_family(const char *family, const char *root) {
    char model[128], ad[128], art[2300], a1[160], a2[160], msg[1024];
    snprintf(model, sizeof model, "golden/models/%s", family);
    snprintf(ad, sizeof ad, "golden/adapters/%s", family);
    snprintf(art, sizeof art, "%s/%s", root, family);
    snprintf(a1, sizeof a1, "%s/r8_qv", ad);
    snprintf(a2, sizeof a2, "%s/r4_all", ad);
    lorajit_options o = {.max_rank = 16, .max_adapters = 4, .max_batch = 2, .max_seq_len = 64};
    pair p = {0};
    lorajit_status s = lorajit_compile_artifact(model, &o, "native", art, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "%s: compile artifact: %s", family, msg);
    if (s) return;
    CHECK(lorajit_engine_open(&p.jit, model, &o) == LORAJIT_OK, "%s: JIT open: %s", family, lorajit_errmsg(p.jit));
    CHECK(lorajit_engine_open_artifact(&p.aot, art, model, NULL) == LORAJIT_OK, "%s: artifact open: %s", family,
          lorajit_errmsg(p.aot));
    if (p.jit && p.aot && lorajit_vocab_size(p.jit) > 0) {
        p.vocab = lorajit_vocab_size(p.jit);
        int32_t toks[N_PROMPT];
        for (int i = 0; i < N_PROMPT; i++) toks[i] = prompt[i] % p.vocab;
        p.tokens = toks;
        p.a = malloc(sizeof(float) * 2 * N_PROMPT * p.vocab);
        p.b = malloc(sizeof(float) * 2 * N_PROMPT * p.vocab);
        compare_forward(&p, family, 1);
        BOTH(&p, lorajit_load_adapter(p.jit, "qv", a1), lorajit_load_adapter(p.aot, "qv", a1), "load qv");
        BOTH(&p, lorajit_load_adapter(p.jit, "all", a2), lorajit_load_adapter(p.aot, "all", a2), "load all");
        const char *two[] = {"qv", "all"};
        float w[] = {0.5f, -1.25f};
        BOTH(&p, lorajit_set_adapter(p.jit, two, w, 2), lorajit_set_adapter(p.aot, two, w, 2), "set two");
        compare_forward(&p, "qv:0.5 + all:-1.25", 1);
        BOTH(&p, lorajit_disable_adapters(p.jit), lorajit_disable_adapters(p.aot), "disable");
        compare_forward(&p, "disabled", 1);
        BOTH(&p, lorajit_enable_adapters(p.jit), lorajit_enable_adapters(p.aot), "enable");
        /* decode past the window: prefill 7, then 5 steps of two sequences (its own adapters) */
        for (int step = 0; step < 2; step++) {
            const char *qv[] = {"qv"}, *all[] = {"all"};
            for (int k = 0; k < 2; k++) {
                lorajit_engine *e = k ? p.aot : p.jit;
                if (step == 0) {
                    CHECK(lorajit_seq_reset(e, 0) == LORAJIT_OK && lorajit_seq_reset(e, 1) == LORAJIT_OK, "reset");
                    CHECK(lorajit_seq_set_adapter(e, 0, qv, NULL, 1) == LORAJIT_OK &&
                              lorajit_seq_set_adapter(e, 1, all, NULL, 1) == LORAJIT_OK, "seq adapters");
                    CHECK(lorajit_seq_prefill(e, 0, toks, N_PROMPT, NULL) == LORAJIT_OK &&
                              lorajit_seq_prefill(e, 1, toks, N_PROMPT, NULL) == LORAJIT_OK, "prefill: %s",
                          lorajit_errmsg(e));
                }
            }
            int seqs[2] = {0, 1};
            for (int t = 0; t < 3; t++) {
                int32_t tok[2] = {toks[t], toks[6 - t]};
                BOTH(&p, lorajit_decode(p.jit, seqs, tok, 2, p.a), lorajit_decode(p.aot, seqs, tok, 2, p.b), "decode");
                CHECK(memcmp(p.a, p.b, 2 * sizeof(float) * p.vocab) == 0, "%s: decode at %d: AOT differs", family,
                      lorajit_seq_pos(p.jit, 0));
            }
        }
        free(p.a);
        free(p.b);
    }
    lorajit_engine_free(p.jit);
    lorajit_engine_free(p.aot);
}

/* ---- refusals ---- */

/* Opens dir with model; it must fail with status want and a message holding each of words. */
static void expect_refusal(const char *what, const char *dir, const char *model, const lorajit_options *o,
                           lorajit_status want, const char *w1, const char *w2) {
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open_artifact(&e, dir, model, o);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lorajit_errmsg(e));
    CHECK(s == want, "%s: status %s, want %s (%s)", what, lorajit_status_str(s), lorajit_status_str(want), msg);
    CHECK(strstr(msg, w1) && (!w2 || strstr(msg, w2)), "%s: message lacks '%s'/'%s': %s", what, w1, w2 ? w2 : "", msg);
    float logits[256];
    CHECK(lorajit_forward(e, prompt, 1, logits) != LORAJIT_OK, "%s: forward on a failed engine", what);
    printf("  refused (%s): %s\n", what, msg);
    lorajit_engine_free(e);
}

/* A copy of the artifact whose manifest has one byte of a shape changed. */
static void test_edited_manifest(const char *art, const char *root) {
    char dir[2200], path[2400];
    snprintf(dir, sizeof dir, "%s/edited", root);
    CHECK(copy_artifact(art, dir) == 0, "copy artifact");
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    long n;
    char *text = check_read_file(path, &n);
    char *shape = text ? strstr(text, "\"shape\"") : NULL;
    char *digit = shape ? strpbrk(shape, "123456789") : NULL;
    CHECK(digit != NULL, "no shape in the manifest");
    if (!digit) { free(text); return; }
    *digit = *digit == '9' ? '8' : *digit + 1;
    CHECK(check_write_file(path, text, n) == 0, "write %s", path);
    free(text);
    expect_refusal("edited manifest", dir, TINY, NULL, LORAJIT_E_FORMAT, "manifest_sha256", "edited");
}

/* Forges a manifest that passes the hash but requires a feature this CPU lacks. */
static void test_missing_feature(const char *art, const char *root) {
    static const char *candidates[] = {"avx512f", "avx512vp2intersect", "xop", "fma4", "sse4a", "avx512fp16",
                                       "amx-tile", "avxvnni", "avx512bf16", "avx2"};
    const char *lacking = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !lacking; i++)
        if (lj_cpu_has(candidates[i]) == 0) lacking = candidates[i];
    if (!lacking) {
        printf("  (skipped the missing-feature check: this CPU has every candidate feature)\n");
        return;
    }
    char dir[2200], path[2400];
    snprintf(dir, sizeof dir, "%s/feature", root);
    CHECK(copy_artifact(art, dir) == 0, "copy artifact");
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = check_read_file(path, NULL);
    cJSON *root_json = text ? cJSON_Parse(text) : NULL;
    cJSON *target = cJSON_GetObjectItemCaseSensitive(root_json, "target");
    cJSON *features = cJSON_GetObjectItemCaseSensitive(target, "features");
    CHECK(cJSON_IsString(features), "manifest has no target.features");
    if (cJSON_IsString(features)) {
        char forged[8192];
        snprintf(forged, sizeof forged, "%s,+%s", features->valuestring, lacking);
        cJSON_SetValuestring(features, forged);
        lj_err err = {0};
        CHECK(lj_manifest_seal(root_json, &err) == LORAJIT_OK, "seal: %s", err.msg);
        char *out = cJSON_Print(root_json);
        CHECK(out && check_write_file(path, out, (long)strlen(out)) == 0, "write forged manifest");
        cJSON_free(out);
        expect_refusal("CPU lacks a feature", dir, TINY, NULL, LORAJIT_E_UNSUPPORTED, "lacks", lacking);
    }
    cJSON_Delete(root_json);
    free(text);
}

static void test_refusals(const char *art, const char *root) {
    char dir[2200], model[2200], path[2400];
    test_edited_manifest(art, root);
    test_missing_feature(art, root);
    /* another model's config: the field is named */
    expect_refusal("another model", art, OTHER, NULL, LORAJIT_E_SHAPE, "intermediate_size", "another model");
    /* this model's config with another model's weights: the tensor is named */
    snprintf(model, sizeof model, "%s/mixed-model", root);
    mkdir(model, 0777);
    CHECK(copy_file(TINY, model, "config.json", 0) == 0 && copy_file(OTHER, model, "model.safetensors", 0) == 0,
          "make mixed model");
    expect_refusal("another model's weights", art, model, NULL, LORAJIT_E_SHAPE, "model.embed_tokens.weight",
                   "expected shape");
    /* a library that is not the one the manifest was made with */
    snprintf(dir, sizeof dir, "%s/library", root);
    CHECK(copy_artifact(art, dir) == 0 && copy_file(art, dir, "liblorajit_model.so", 1) == 0, "copy artifact");
    expect_refusal("replaced library", dir, TINY, NULL, LORAJIT_E_FORMAT, "library_sha256", NULL);
    /* options that disagree with the compiled schema */
    lorajit_options o = opts;
    o.max_rank = 16;
    expect_refusal("other max_rank", art, TINY, &o, LORAJIT_E_ARG, "max_rank", "16");
    o = opts;
    o.targets = "q_proj,v_proj";
    expect_refusal("other targets", art, TINY, &o, LORAJIT_E_ARG, "target modules", NULL);
    /* no artifact at all */
    snprintf(dir, sizeof dir, "%s/nothing-here", root);
    expect_refusal("no artifact", dir, TINY, NULL, LORAJIT_E_IO, "manifest.json", NULL);
    /* an unknown target CPU: refused, and no manifest is left behind */
    char msg[1024];
    snprintf(dir, sizeof dir, "%s/badcpu", root);
    lorajit_status s = lorajit_compile_artifact(TINY, &opts, "pentium9", dir, msg, sizeof msg);
    CHECK(s == LORAJIT_E_ARG && strstr(msg, "pentium9"), "bad cpu: %s (%s)", lorajit_status_str(s), msg);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    CHECK(access(path, F_OK) != 0, "a failed compile left %s", path);
    /* a failed compile into an earlier artifact's folder removes its manifest */
    snprintf(dir, sizeof dir, "%s/library", root);
    s = lorajit_compile_artifact(TINY, &opts, "pentium9", dir, msg, sizeof msg);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    CHECK(s != LORAJIT_OK && access(path, F_OK) != 0, "a failed compile left %s", path);
}

/* ---- main ---- */

/* (f) rows_exact through an artifact of the golden BF16 model (vocabulary 96). */
static void test_rows_exact(const char *root) {
    enum { N = 20, VB = 96 };
    char art[2200], msg[1024];
    snprintf(art, sizeof art, "%s/bf16", root);
    const char *model = "golden/models/bf16";
    lorajit_options o = {.max_rank = 8, .max_adapters = 2, .max_batch = 2, .max_tokens = 16, .max_seq_len = 64};
    lorajit_status s = lorajit_compile_artifact(model, &o, "native", art, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "bf16 artifact: %s", msg);
    if (s) return;
    lorajit_engine *e[2] = {NULL, NULL}; /* JIT, artifact */
    CHECK(lorajit_engine_open(&e[0], model, &o) == LORAJIT_OK && lorajit_engine_open_artifact(&e[1], art, model, NULL) ==
          LORAJIT_OK, "bf16 open: %s / %s", lorajit_errmsg(e[0]), lorajit_errmsg(e[1]));
    static float chunk[2][N * VB], row[2][VB];
    int32_t tok[N], pre[4] = {3, 14, 15, 92}, next = 65;
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 41 + 7) % VB);
    for (int k = 0; k < 2 && e[0] && e[1]; k++) {
        CHECK(e[k]->code.rows_exact, "%s: the code does not say rows_exact", k ? "artifact" : "JIT");
        lorajit_seq *a = NULL, *b = NULL;
        CHECK(lorajit_seq_open(e[k], &a) == 0 && lorajit_seq_open(e[k], &b) == 0, "open sequences");
        lorajit_step_row first = {b, pre, 4, NULL, 0};
        lorajit_step_row mix[2] = {{a, tok, N, chunk[k], 1}, {b, &next, 1, row[k], 0}};
        CHECK(lorajit_step(e[k], &first, 1) == 0 && lorajit_step(e[k], mix, 2) == 0, "steps: %s", lorajit_errmsg(e[k]));
        lorajit_seq_close(a);
        lorajit_seq_close(b);
    }
    CHECK(!memcmp(chunk[0], chunk[1], sizeof chunk[0]) && !memcmp(row[0], row[1], sizeof row[0]),
          "bf16: the artifact's mixed step differs from the JIT's");
    lorajit_engine_free(e[0]);
    lorajit_engine_free(e[1]);
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : ".";
    char root[2048], art[2100], art_v2[2100], msg[1024];
    snprintf(root, sizeof root, "%s/aot-test", build);
    snprintf(art, sizeof art, "%s/native", root);
    snprintf(art_v2, sizeof art_v2, "%s/x86-64-v2", root);
    mkdir(root, 0777);

    double t0 = now_ms();
    lorajit_status s = lorajit_compile_artifact(TINY, &opts, "native", art, msg, sizeof msg);
    double compile_ms = now_ms() - t0;
    CHECK(s == LORAJIT_OK, "compile artifact: %s", msg);
    if (s) return check_summary("test_aot");

    pair p = {0};
    t0 = now_ms();
    s = lorajit_engine_open(&p.jit, TINY, &opts);
    double jit_ms = now_ms() - t0;
    CHECK(s == LORAJIT_OK, "JIT open: %s", lorajit_errmsg(p.jit));
    t0 = now_ms();
    s = lorajit_engine_open_artifact(&p.aot, art, TINY, NULL);
    double open_ms = now_ms() - t0;
    CHECK(s == LORAJIT_OK, "artifact open: %s", lorajit_errmsg(p.aot));
    if (p.jit && p.aot && !s) {
        lorajit_stats st;
        lorajit_get_stats(p.aot, &st);
        CHECK(st.compiles == 0, "artifact engine compiles = %lld", (long long)st.compiles);
        char *ir_jit = NULL, *ir_aot = NULL;
        size_t n1, n2;
        FILE *f1 = open_memstream(&ir_jit, &n1), *f2 = open_memstream(&ir_aot, &n2);
        CHECK(lorajit_engine_print_ir(p.jit, f1) == LORAJIT_OK && lorajit_engine_print_ir(p.aot, f2) == LORAJIT_OK,
              "print_ir");
        fclose(f1);
        fclose(f2);
        CHECK(n1 == n2 && n1 > 0 && memcmp(ir_jit, ir_aot, n1) == 0, "the artifact's IR differs from the JIT's");
        free(ir_jit);
        free(ir_aot);
        compare_states(&p, 1);
    }
    lorajit_engine_free(p.aot);

    /* (b) an older x86-64 level: other code, same results within float rounding */
    p.aot = NULL;
    s = lorajit_compile_artifact(TINY, &opts, "x86-64-v2", art_v2, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "compile x86-64-v2 artifact: %s", msg);
    if (!s) {
        s = lorajit_engine_open_artifact(&p.aot, art_v2, TINY, &opts);
        CHECK(s == LORAJIT_OK, "open x86-64-v2 artifact: %s", lorajit_errmsg(p.aot));
        lorajit_engine_free(p.jit);
        p.jit = NULL;
        CHECK(lorajit_engine_open(&p.jit, TINY, &opts) == LORAJIT_OK, "JIT open");
        if (!s) compare_states(&p, 0);
    }
    lorajit_engine_free(p.aot);
    lorajit_engine_free(p.jit);

    test_refusals(art, root);
    static const char *const families[] = {"qwen2", "qwen3", "mistral", "phi3", "gemma"};
    for (int f = 0; f < 5; f++) compare_family(families[f], root);
    test_rows_exact(root);

    lorajit_engine *e = NULL; /* (d) the time to be ready to serve, measured alone */
    t0 = now_ms();
    s = lorajit_engine_open_artifact(&e, art, TINY, NULL);
    double open2_ms = now_ms() - t0;
    lorajit_engine_free(e);
    printf("aot: llama-tiny artifact %ld bytes (%s); compile to artifact %.1f ms; open artifact %.2f ms "
           "(again %.2f ms) vs JIT engine open %.1f ms\n", dir_bytes(art), art, compile_ms, open_ms, open2_ms, jit_ms);
    return check_summary("test_aot");
}
