/* test_families.c — the model families of issue 13 (qwen2, qwen3, mistral, phi3, gemma)
 * end to end.
 *
 * (a) Against the torch reference (tests/make_fixtures.py, golden/expected): the
 *     20-token cases of each family (base, r8_qv, r4_all, rslora, two adapters
 *     weighted 0.5 / -1.25) within 2e-4 + 2e-4 |x|; prints the max abs error.
 * (b) Disabled adapters give the base logits bit for bit.
 * (c) Mistral's and Phi-3's window: with sliding_window null the first 8 rows are bit
 *     for bit those of window 8 and later rows differ (applied, and only past 8).
 * (d) Refusals through the API, each naming its cause: qwen2 use_sliding_window,
 *     qwen3 without q_norm tensors (the tensor named), phi3 partial_rotary_factor 0.5,
 *     gemma hidden_activation gelu, a phi3 adapter targeting q_proj (the module and
 *     phi3's module list named), gemma2 (model_type named).
 * (e) The printed IR (`lorajit inspect`) names the architecture entry and the
 *     config.json keys lorajit ignores or does not know.
 * decode == forward and AOT == JIT for the families are in test_generate / test_aot.
 * Run from tests/ with the build dir as argv[1] (temporary models go there). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"

#define ATOL 2e-4
#define RTOL 2e-4

static const char *const families[] = {"qwen2", "qwen3", "mistral", "phi3", "gemma"};
enum { N_FAMILIES = sizeof families / sizeof families[0] };
static const char *const states[] = {"base", "r8_qv", "r4_all", "rslora", "multi_weighted"};

/* The index entry of case name (borrowed from index). */
static const cJSON *find_case(const cJSON *index, const char *name) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(index, "cases")) {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "case"));
        if (n && !strcmp(n, name)) return c;
    }
    return NULL;
}

static lorajit_engine *open_family(const char *dir) {
    lorajit_options o = {.max_rank = 16, .max_adapters = 4, .max_batch = 2, .max_seq_len = 64};
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, dir, &o);
    CHECK(s == LORAJIT_OK, "open %s: %s", dir, e ? lorajit_errmsg(e) : lorajit_status_str(s));
    if (s) {
        lorajit_engine_free(e);
        return NULL;
    }
    return e;
}

/* (a) and (b) for one family. */
static void test_family(const char *f, const cJSON *index) {
    char dir[128], ad[160], name[96];
    snprintf(dir, sizeof dir, "golden/models/%s", f);
    lorajit_engine *e = open_family(dir);
    if (!e) return;
    static const char *const adapters[] = {"r8_qv", "r4_all", "rslora"};
    for (int i = 0; i < 3; i++) {
        snprintf(ad, sizeof ad, "golden/adapters/%s/%s", f, adapters[i]);
        CHECK(lorajit_load_adapter(e, adapters[i], ad) == LORAJIT_OK, "%s: load %s: %s", f, ad, lorajit_errmsg(e));
    }
    int vocab = lorajit_vocab_size(e);
    float *got = malloc(sizeof(float) * 20 * vocab), *base = malloc(sizeof(float) * 20 * vocab);
    int32_t tokens[20] = {0};
    double worst_abs = 0, worst_ratio = 0;
    for (int s = 0; s < 5; s++) {
        snprintf(name, sizeof name, "%s__%s__s20", f, states[s]);
        const cJSON *c = find_case(index, name);
        CHECK(c != NULL, "golden case %s is missing", name);
        if (!c) continue;
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens");
        CHECK(cJSON_GetArraySize(toks) == 20, "%s: 20 tokens", name);
        for (int i = 0; i < 20; i++) tokens[i] = (int32_t)cJSON_GetArrayItem(toks, i)->valuedouble;
        if (s == 4) {
            const char *two[] = {"r8_qv", "r4_all"};
            float w[] = {0.5f, -1.25f};
            CHECK(lorajit_set_adapter(e, two, w, 2) == LORAJIT_OK, "%s: set: %s", f, lorajit_errmsg(e));
        } else {
            const char *one[] = {states[s]};
            CHECK(lorajit_set_adapter(e, one, NULL, s ? 1 : 0) == LORAJIT_OK, "%s: set: %s", f, lorajit_errmsg(e));
        }
        CHECK(lorajit_forward(e, tokens, 20, got) == LORAJIT_OK, "%s: forward: %s", name, lorajit_errmsg(e));
        if (s == 0) memcpy(base, got, sizeof(float) * 20 * vocab);
        char path[160];
        snprintf(path, sizeof path, "golden/expected/%s.bin", name);
        long len = 0;
        float *want = (float *)check_read_file(path, &len);
        CHECK(want && len == (long)sizeof(float) * 20 * vocab, "%s: %ld bytes", path, len);
        if (!want || len != (long)sizeof(float) * 20 * vocab) {
            free(want);
            continue;
        }
        long at;
        double r = check_close_ratio(got, want, 20L * vocab, ATOL, RTOL, &at);
        CHECK(r <= 1, "%s: %.3g x tolerance at [%ld, %ld]: got %.7g want %.7g", name, r, at / vocab, at % vocab,
              got[at], want[at]);
        for (long i = 0; i < 20L * vocab; i++) worst_abs = fmax(worst_abs, fabs((double)got[i] - want[i]));
        worst_ratio = fmax(worst_ratio, r);
        free(want);
    }
    /* (b) the weighted pair is still active: disabling gives the base bit for bit */
    CHECK(lorajit_disable_adapters(e) == LORAJIT_OK, "disable");
    CHECK(lorajit_forward(e, tokens, 20, got) == LORAJIT_OK, "forward disabled");
    CHECK(memcmp(got, base, sizeof(float) * 20 * vocab) == 0, "%s: disabled differs from the base", f);
    printf("  %-8s 20 tokens, 5 states: max abs error vs torch %.3g (%.3f x tolerance); disabled == base\n", f,
           worst_abs, worst_ratio);
    free(got);
    free(base);
    lorajit_engine_free(e);
}

/* A copy of golden model src in root/dst with config.json's text edited: the first
 * `from` replaced by `to` (from must be present). Returns 0 on success. */
static int edited_model(const char *root, const char *src, const char *dst, const char *from, const char *to,
                        char *out, size_t cap) {
    char path[1024], sp[256];
    snprintf(out, cap, "%s/%s", root, dst);
    mkdir(out, 0777);
    snprintf(sp, sizeof sp, "golden/models/%s/model.safetensors", src);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    check_copy_file(sp, path);
    snprintf(sp, sizeof sp, "golden/models/%s/config.json", src);
    long n = 0;
    char *text = check_read_file(sp, &n);
    char *hit = text ? strstr(text, from) : NULL;
    CHECK(hit != NULL, "%s lacks %s", sp, from);
    if (!hit) {
        free(text);
        return -1;
    }
    size_t head = (size_t)(hit - text), fl = strlen(from), tl = strlen(to);
    char *edited = malloc((size_t)n + tl + 1);
    memcpy(edited, text, head);
    memcpy(edited + head, to, tl);
    memcpy(edited + head + tl, hit + fl, (size_t)n - head - fl);
    snprintf(path, sizeof path, "%s/config.json", out);
    int rc = check_write_file(path, edited, (long)(n - (long)fl + (long)tl));
    free(edited);
    free(text);
    return rc;
}

/* (c) family's window 8 (Mistral, Phi-3) against no window, 20 tokens. */
static void test_window(const char *root, const char *family) {
    char nowin[1024], sub[64], dir[64];
    snprintf(sub, sizeof sub, "%s_nowindow", family);
    snprintf(dir, sizeof dir, "golden/models/%s", family);
    if (edited_model(root, family, sub, "\"sliding_window\": 8", "\"sliding_window\": null", nowin, sizeof nowin))
        return;
    lorajit_engine *a = open_family(dir), *b = open_family(nowin);
    if (a && b) {
        int vocab = lorajit_vocab_size(a);
        float *la = malloc(sizeof(float) * 20 * vocab), *lb = malloc(sizeof(float) * 20 * vocab);
        int32_t tok[20];
        for (int i = 0; i < 20; i++) tok[i] = (i * 37 + 5) % vocab;
        CHECK(lorajit_forward(a, tok, 20, la) == LORAJIT_OK && lorajit_forward(b, tok, 20, lb) == LORAJIT_OK,
              "forward");
        CHECK(memcmp(la, lb, sizeof(float) * 8 * vocab) == 0, "%s: rows 0..7 differ with and without the window",
              family);
        int differ = 0;
        for (int t = 8; t < 20; t++)
            differ += memcmp(la + (size_t)t * vocab, lb + (size_t)t * vocab, sizeof(float) * vocab) != 0;
        CHECK(differ == 12, "%s: only %d of rows 8..19 differ with the window", family, differ);
        free(la);
        free(lb);
    }
    lorajit_engine_free(a);
    lorajit_engine_free(b);
}

/* Opening dir must fail with status want and a message holding n1 and n2. */
static void expect_refused(const char *dir, lorajit_status want, const char *n1, const char *n2) {
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, dir, NULL);
    const char *msg = e ? lorajit_errmsg(e) : "";
    CHECK(s == want && strstr(msg, n1) && (!n2 || strstr(msg, n2)), "%s: status %d (want %d): %s", dir, s, want,
          msg);
    lorajit_engine_free(e);
}

/* (d) */
static void test_refusals(const char *root) {
    char dir[1024];
    if (!edited_model(root, "qwen2", "qwen2_swa", "\"use_sliding_window\": false", "\"use_sliding_window\": true",
                      dir, sizeof dir))
        expect_refused(dir, LORAJIT_E_UNSUPPORTED, "use_sliding_window", "qwen2");
    /* LLaMA weights (no q_norm) under a qwen3 config: the missing tensor is named */
    if (!edited_model(root, "gqa", "qwen3_no_qnorm", "\"model_type\": \"llama\"",
                      "\"model_type\": \"qwen3\"", dir, sizeof dir))
        expect_refused(dir, LORAJIT_E_NOT_FOUND, "model.layers.0.self_attn.q_norm.weight", NULL);
    /* Phi3RotaryEmbedding rotates the whole head only (partial_rotary_factor 1.0) */
    if (!edited_model(root, "phi3", "phi3_partial", "\"sliding_window\": 8,",
                      "\"sliding_window\": 8, \"partial_rotary_factor\": 0.5,", dir, sizeof dir))
        expect_refused(dir, LORAJIT_E_UNSUPPORTED, "partial_rotary_factor", "phi3");
    if (!edited_model(root, "gemma", "gemma_gelu", "\"hidden_activation\": \"gelu_pytorch_tanh\"",
                      "\"hidden_activation\": \"gelu\"", dir, sizeof dir))
        expect_refused(dir, LORAJIT_E_UNSUPPORTED, "hidden_activation", "gelu_pytorch_tanh");
    if (!edited_model(root, "gqa", "refused_gemma2", "\"model_type\": \"llama\"", "\"model_type\": \"gemma2\"", dir,
                      sizeof dir))
        expect_refused(dir, LORAJIT_E_UNSUPPORTED, "gemma2", "supported model types");
}

/* (d) A Phi-3 adapter naming q_proj (a LLaMA module; Phi-3's q is in qkv_proj) is refused
 * naming the module and phi3's modules, and what was served does not change. */
static void test_phi3_adapter(const char *root) {
    char ad[1100], path[1200];
    snprintf(ad, sizeof ad, "%s/phi3_q_proj", root);
    mkdir(ad, 0777);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", ad);
    check_copy_file("golden/adapters/phi3/r8_qv/adapter_model.safetensors", path);
    long n = 0;
    char *text = check_read_file("golden/adapters/phi3/r8_qv/adapter_config.json", &n);
    char *hit = text ? strstr(text, "\"qkv_proj\"") : NULL;
    CHECK(hit != NULL, "r8_qv targets qkv_proj");
    if (!hit) {
        free(text);
        return;
    }
    memcpy(hit, "\"q_proj\"  ", 10); /* the same length: "qkv_proj" -> "q_proj" and two spaces */
    snprintf(path, sizeof path, "%s/adapter_config.json", ad);
    check_write_file(path, text, n);
    free(text);
    lorajit_engine *e = open_family("golden/models/phi3");
    if (!e) return;
    lorajit_status s = lorajit_load_adapter(e, "q", ad);
    const char *msg = lorajit_errmsg(e);
    CHECK(s == LORAJIT_E_UNSUPPORTED && strstr(msg, "\"q_proj\"") && strstr(msg, "phi3") &&
              strstr(msg, "qkv_proj, o_proj, gate_up_proj, down_proj"), "phi3 q_proj adapter: %d %s", s, msg);
    lorajit_engine_free(e);
    /* a schema naming q_proj for a phi3 model, the same */
    lorajit_options o = {.targets = "qkv_proj,q_proj"};
    e = NULL;
    s = lorajit_engine_open(&e, "golden/models/phi3", &o);
    msg = e ? lorajit_errmsg(e) : "";
    CHECK(s != LORAJIT_OK && strstr(msg, "q_proj") && strstr(msg, "qkv_proj, o_proj, gate_up_proj, down_proj"),
          "phi3 schema q_proj: %d %s", s, msg);
    lorajit_engine_free(e);
}

/* The printed IR of the model in dir (`lorajit inspect`); NULL when it does not open.
 * Caller owns the result; free with free(). */
static char *printed_ir(const char *dir) {
    lorajit_engine *e = open_family(dir);
    if (!e) return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f && lorajit_engine_print_ir(e, f) == LORAJIT_OK, "print_ir: %s", lorajit_errmsg(e));
    if (f) fclose(f);
    lorajit_engine_free(e);
    return text;
}

/* (e) */
static void test_inspect(const char *root) {
    char dir[1024];
    if (edited_model(root, "qwen3", "qwen3_extra_key", "\"use_cache\": true", "\"use_cache\": true, \"foo_bar\": 1",
                     dir, sizeof dir))
        return;
    char *text = printed_ir(dir);
    CHECK(text && strstr(text, "# architecture: qwen3 (LLaMA block, q_norm/k_norm per head)"), "arch line: %.200s",
          text ? text : "");
    CHECK(text && strstr(text, "ignored architectures") && strstr(text, "max_window_layers") &&
              strstr(text, "unknown foo_bar"), "config keys line: %.400s", text ? text : "");
    CHECK(text && strstr(text, "self_attn.q_norm.weight") && strstr(text, "heads=4 head_size=24"),
          "q_norm nodes in the IR");
    free(text);
}

/* (e) phi3 and gemma name their blocks in the printed IR. */
static void test_inspect_block(const char *family, const char *arch_line, const char *node) {
    char dir[64];
    snprintf(dir, sizeof dir, "golden/models/%s", family);
    char *text = printed_ir(dir);
    CHECK(text && strstr(text, arch_line) && strstr(text, node), "%s IR lacks '%s' or '%s'", family, arch_line, node);
    free(text);
}

int main(int argc, char **argv) {
    char root[1024];
    snprintf(root, sizeof root, "%s/tmp_families", argc > 1 ? argv[1] : ".");
    mkdir(root, 0777);
    check_enter_tests_dir();
    char *text = check_read_file("golden/expected/index.json", NULL);
    cJSON *index = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(index != NULL, "golden/expected/index.json");
    printf("(a, b) the families against torch; disabled == base\n");
    for (int f = 0; index && f < N_FAMILIES; f++) test_family(families[f], index);
    cJSON_Delete(index);
    test_window(root, "mistral");
    test_window(root, "phi3");
    test_refusals(root);
    test_phi3_adapter(root);
    test_inspect(root);
    test_inspect_block("phi3", "# architecture: phi3 (LLaMA block, sliding window, fused qkv_proj/gate_up_proj)",
                       "slice(%7)             [T, 32]    f32  layers.0.self_attn.k  layer=0 col0=64");
    test_inspect_block("gemma", "norms 1 + w, embeddings x sqrt(hidden_size)), hidden_act gelu_pytorch_tanh",
                       "embed_tokens  scale=8");
    return check_summary("test_families");
}
