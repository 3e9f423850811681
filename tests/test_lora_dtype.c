/* test_lora_dtype.c — options.lora_dtype plumbed as kv_dtype is (issue 14: the LoRA
 * slots in 16 bits; the numbers, rounding and range are test_lora16's).
 * (1) The schema: "lora_dtype" in a schema file is read, and options.lora_dtype
 *     overrides it; a bad value in either is refused naming the field and the value (a
 *     schema file's also naming the file), an unknown key's message lists lora_dtype,
 *     and a failed parse leaves the schema as it was.
 * (2) The manifest: a layout with bf16 slots (and f16 K/V) goes through manifest.json
 *     and back; an f32 one writes no "lora_dtype" key (its manifest and layout digest as
 *     before the field existed); a bad value is refused naming "schema.lora_dtype".
 * (3) The artifact: compiled with bf16 slots (from a schema file), it records
 *     "lora_dtype", gives the JIT's logits bit for bit with an adapter set (the JIT's
 *     differ from f32 slots': the dtype reached the code), and refuses to open with
 *     another lora_dtype, from options or a schema file, naming the field and the
 *     compiled dtype; a manifest re-sealed without it, or with "f16", is refused by the
 *     layout digest.
 * Run from tests/ with the build dir as argv[1] (schema files and the artifact go there). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"
#include "serving.h" /* formats.h: lj_schema_*, lj_manifest_* */
#include "manifest_forge.h"

#define MODEL "conformance/models/llama-tiny"
#define ADAPTER "conformance/adapters/llama-tiny/a_qv" /* q_proj and v_proj, rank <= 16 */
#define SEQ 32
#define N_TOK 7

static char build[1024];

/* Writes text to build/name; path [cap] gets that path, also returned. */
static const char *write_build_file(const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", build, name);
    CHECK(check_write_file(path, text, (long)strlen(text)) == 0, "cannot write %s", path);
    return path;
}

/* got is want, and msg holds each needle that is not NULL. */
static void expect(int line, lorajit_status got, const char *msg, lorajit_status want, const char *n1,
                   const char *n2) {
    CHECK(got == want && (!n1 || strstr(msg, n1)) && (!n2 || strstr(msg, n2)),
          "line %d: status %s (want %s), message \"%s\" (want \"%s\", \"%s\")", line, lorajit_status_str(got),
          lorajit_status_str(want), msg, n1 ? n1 : "", n2 ? n2 : "");
}

/* ---- (1) the schema ---- */
static void test_schema(void) {
    lj_err err = {0};
    lj_config cfg;
    CHECK(lj_config_read(MODEL "/config.json", &cfg, &err) == LORAJIT_OK, "%s", err.msg);
    const lj_arch *arch = lj_arch_get(cfg.arch);
    lj_schema s;
    CHECK(lj_schema_resolve(NULL, &cfg, &s, &err) == LORAJIT_OK && s.lora_dtype == LJ_DTYPE_F32,
          "default lora_dtype %d (%s)", s.lora_dtype, err.msg);
    char path[1200], bad_path[1200];
    lorajit_options o = {.schema_path = write_build_file("lora_dtype_schema.json", "{\"lora_dtype\": \"bf16\"}", path,
                                                         sizeof path)};
    CHECK(lj_schema_resolve(&o, &cfg, &s, &err) == LORAJIT_OK && s.lora_dtype == LJ_DTYPE_BF16 &&
              s.kv_dtype == LJ_DTYPE_F32, "schema lora_dtype bf16: %d (%s)", s.lora_dtype, err.msg);
    o.lora_dtype = "f16";
    CHECK(lj_schema_resolve(&o, &cfg, &s, &err) == LORAJIT_OK && s.lora_dtype == LJ_DTYPE_F16,
          "options.lora_dtype f16 over the schema's bf16: %d (%s)", s.lora_dtype, err.msg);
    static const char *const bad_options[2] = {"fp8", "BF16"}; /* names are lower case, as the schema's words */
    for (int i = 0; i < 2; i++) {
        o.lora_dtype = bad_options[i];
        expect(__LINE__, lj_schema_resolve(&o, &cfg, &s, &err), err.msg, LORAJIT_E_ARG, "options.lora_dtype",
               bad_options[i]);
    }
    static const struct {
        int line;
        const char *json, *n1, *n2;
    } bad[] = {
        {__LINE__, "{\"lora_dtype\": \"int8\"}", "field \"lora_dtype\"", "\"int8\""},
        {__LINE__, "{\"max_rank\": 8, \"lora_dtype\": 16}", "field \"lora_dtype\"", "not a string"},
        {__LINE__, "{\"lora_dtype\": null}", "field \"lora_dtype\"", "not a string"},
        {__LINE__, "{\"lora_dtypes\": \"bf16\"}", "unknown key \"lora_dtypes\"", "kv_dtype, lora_dtype)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lj_schema t = s, before = s;
        lorajit_status st = lj_schema_parse(bad[i].json, strlen(bad[i].json), "bad.json", arch, &t, &err);
        expect(bad[i].line, st, err.msg, LORAJIT_E_FORMAT, bad[i].n1, bad[i].n2);
        CHECK(strncmp(err.msg, "bad.json: ", 10) == 0, "line %d: the file is not named: %s", bad[i].line, err.msg);
        CHECK(memcmp(&t, &before, sizeof t) == 0, "line %d: the schema changed on failure", bad[i].line);
    }
    /* through the public API: the engine does not open, and says why */
    lorajit_options p = {.max_rank = 16, .lora_dtype = "fp8"};
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, MODEL, &p);
    expect(__LINE__, st, e ? lorajit_errmsg(e) : "", LORAJIT_E_ARG, "options.lora_dtype", "\"fp8\"");
    lorajit_engine_free(e);
    p = (lorajit_options){.max_rank = 16, .schema_path = write_build_file("lora_dtype_bad.json", "{\"lora_dtype\": "
                                                                          "\"fp8\"}", bad_path, sizeof bad_path)};
    e = NULL;
    st = lorajit_engine_open(&e, MODEL, &p);
    expect(__LINE__, st, e ? lorajit_errmsg(e) : "", LORAJIT_E_FORMAT, "lora_dtype_bad.json", "\"lora_dtype\"");
    lorajit_engine_free(e);
}

/* ---- (2) the manifest ---- */
/* Sets (or with NULL removes) the manifest's schema.lora_dtype; "16": the number 16. */
static void set_lora_dtype(cJSON *j, const char *dtype) {
    cJSON *schema = cJSON_GetObjectItemCaseSensitive(j, "schema");
    cJSON_DeleteItemFromObjectCaseSensitive(schema, "lora_dtype");
    if (dtype && strcmp(dtype, "16") == 0) cJSON_AddNumberToObject(schema, "lora_dtype", 16);
    else if (dtype) cJSON_AddStringToObject(schema, "lora_dtype", dtype);
}

/* Parses text with schema.lora_dtype set to dtype and re-sealed. */
static lorajit_status reparse(const char *text, const char *dtype, lj_manifest *m, lj_err *err) {
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL, "parse the written manifest");
    if (!root) return LORAJIT_E_FORMAT;
    set_lora_dtype(root, dtype);
    CHECK(lj_manifest_seal(root, err) == LORAJIT_OK, "seal: %s", err->msg);
    char *forged = cJSON_PrintUnformatted(root);
    lorajit_status s = lj_manifest_parse(forged, strlen(forged), "forged.json", m, err);
    cJSON_free(forged);
    cJSON_Delete(root);
    return s;
}

static void test_manifest(void) {
    lj_err err = {0};
    lj_layout *L = lj_layout_new();
    CHECK(L && lj_config_read(MODEL "/config.json", &L->cfg, &err) == LORAJIT_OK, "%s", err.msg);
    if (!L) return;
    L->schema = (lj_schema){.r_max = 4, .n_slots = 2, .max_tokens = 1, .seq_len = 1, .max_batch = 1};
    L->n_weights = 1;
    L->weights = calloc(1, sizeof *L->weights);
    L->weights[0] = (lj_weight_desc){.name = strdup("model.norm.weight"), .rows = 8, .dtype = LJ_DTYPE_F32};
    lj_manifest m = {.abi_version = LJ_ABI_VERSION, .L = L, .triple = "x86_64-pc-linux-gnu", .cpu = "x86-64",
                     .features = "+sse2"};
    char dir[1100], path[1200];
    snprintf(dir, sizeof dir, "%s/lora_dtype_manifest", build);
    mkdir(dir, 0755); /* or there already */
    snprintf(path, sizeof path, "%s/%s", dir, LJ_ARTIFACT_MANIFEST);
    uint8_t digest[2][LJ_SHA256_BYTES];
    for (int k = 0; k < 2; k++) { /* k = 0: f32 slots and K/V, 1: bf16 slots and f16 K/V */
        L->schema.lora_dtype = k ? LJ_DTYPE_BF16 : LJ_DTYPE_F32;
        L->schema.kv_dtype = k ? LJ_DTYPE_F16 : LJ_DTYPE_F32;
        CHECK(lj_layout_digest(L, digest[k], &err) == LORAJIT_OK, "digest: %s", err.msg);
        CHECK(lj_manifest_write(dir, &m, &err) == LORAJIT_OK, "write: %s", err.msg);
        char *text = check_read_file(path, NULL);
        CHECK(text && (strstr(text, "\"lora_dtype\"") != NULL) == k && (strstr(text, "\"bf16\"") != NULL) == k,
              "an %s manifest %s \"lora_dtype\"", k ? "bf16" : "f32", k ? "lacks" : "holds");
        lj_manifest back;
        CHECK(lj_manifest_read(dir, &back, &err) == LORAJIT_OK && back.L->schema.lora_dtype == L->schema.lora_dtype &&
                  back.L->schema.kv_dtype == L->schema.kv_dtype, "read back lora_dtype %d kv_dtype %d: %s",
              back.L ? back.L->schema.lora_dtype : -1, back.L ? back.L->schema.kv_dtype : -1, err.msg);
        lj_manifest_clear(&back);
        if (k == 1 && text) {
            static const char *const lies[3] = {"fp8", "16", "F16"};
            for (int i = 0; i < 3; i++) {
                expect(__LINE__, reparse(text, lies[i], &back, &err), err.msg, LORAJIT_E_FORMAT,
                       "forged.json: field \"schema.lora_dtype\"", strcmp(lies[i], "16") ? lies[i] : "not a string");
                CHECK(back.L == NULL, "manifest output on failure");
            }
            CHECK(reparse(text, NULL, &back, &err) == LORAJIT_OK && back.L->schema.lora_dtype == LJ_DTYPE_F32,
                  "a manifest without lora_dtype reads as f32: %s", err.msg);
            lj_manifest_clear(&back);
        }
        free(text);
    }
    CHECK(memcmp(digest[0], digest[1], LJ_SHA256_BYTES) != 0, "the layout digest does not pin lora_dtype");
    lj_layout_free(L);
}

/* ---- (3) the artifact ---- */
/* Writes (3)'s schema file with lora_dtype dtype; path [1200] gets its path, also returned. */
static const char *schema3(const char *dtype, char *path) {
    char text[256], name[64];
    snprintf(text, sizeof text, "{\"max_rank\": 16, \"target_modules\": [\"q_proj\", \"v_proj\"], "
             "\"max_adapters\": 2, \"max_tokens\": %d, \"lora_dtype\": \"%s\"}", SEQ, dtype);
    snprintf(name, sizeof name, "lora_dtype_schema_%s.json", dtype);
    return write_build_file(name, text, path, 1200);
}

/* Logits [N_TOK, vocab] of a fixed prompt with ADAPTER loaded and set; false (a CHECK)
 * when e is NULL or a call fails. */
static bool adapter_logits(lorajit_engine *e, float *out) {
    if (!e) return false;
    int32_t p[N_TOK] = {175, 196, 25, 246, 67, 211, 151};
    const char *name[1] = {"qv"};
    bool ok = lorajit_load_adapter(e, "qv", ADAPTER) == LORAJIT_OK && lorajit_set_adapter(e, name, NULL, 1) ==
              LORAJIT_OK && lorajit_forward(e, p, N_TOK, out) == LORAJIT_OK;
    CHECK(ok, "adapter logits: %s", lorajit_errmsg(e));
    return ok;
}

/* Opens art with o (NULL: none); want: OK, or the status of a refusal whose message
 * names lora_dtype and the compiled "bf16". */
static void open_art(const char *art, const lorajit_options *o, lorajit_status want, const char *what) {
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open_artifact(&e, art, MODEL, o);
    const char *msg = e ? lorajit_errmsg(e) : lorajit_status_str(s);
    if (want == LORAJIT_OK) CHECK(s == LORAJIT_OK, "artifact opened %s: %s", what, msg);
    else expect(__LINE__, s, msg, want, "lora_dtype", "\"bf16\"");
    if (s != LORAJIT_OK) printf("  bf16-slot artifact opened %s: refused: %s\n", what, msg);
    lorajit_engine_free(e);
}

static void test_artifact(void) {
    char art[1100], forged[1200], msg[1024], path[1200], bf16[1200], f16[1200];
    snprintf(art, sizeof art, "%s/lora_dtype_artifact", build);
    lorajit_options o = {.schema_path = schema3("bf16", bf16), .max_batch = 1, .max_seq_len = SEQ};
    lorajit_status s = lorajit_compile_artifact(MODEL, &o, "native", art, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "compile artifact: %s", msg);
    if (s != LORAJIT_OK) return;
    snprintf(path, sizeof path, "%s/%s", art, LJ_ARTIFACT_MANIFEST);
    char *manifest = check_read_file(path, NULL);
    CHECK(manifest && strstr(manifest, "\"lora_dtype\"") && strstr(manifest, "\"bf16\""), "%s records lora_dtype",
          path);
    free(manifest);
    lorajit_engine *jit = NULL, *aot = NULL, *f32 = NULL;
    CHECK(lorajit_engine_open(&jit, MODEL, &o) == LORAJIT_OK, "JIT: %s", jit ? lorajit_errmsg(jit) : "");
    CHECK(lorajit_engine_open_artifact(&aot, art, MODEL, NULL) == LORAJIT_OK, "AOT: %s",
          aot ? lorajit_errmsg(aot) : "");
    lorajit_options plain = {.targets = "q_proj,v_proj", .max_rank = 16, .max_adapters = 2, .max_batch = 1,
                             .max_seq_len = SEQ, .max_tokens = SEQ};
    CHECK(lorajit_engine_open(&f32, MODEL, &plain) == LORAJIT_OK, "f32 slots: %s", f32 ? lorajit_errmsg(f32) : "");
    size_t n = (size_t)N_TOK * (jit ? lorajit_vocab_size(jit) : 1);
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
    if (adapter_logits(jit, a) && adapter_logits(aot, b) && adapter_logits(f32, c)) {
        CHECK(memcmp(a, b, n * sizeof(float)) == 0, "the bf16-slot artifact's logits differ from the JIT's");
        CHECK(memcmp(a, c, n * sizeof(float)) != 0, "bf16 slots (schema file) give f32 slots' logits bit for bit");
    }
    free(a), free(b), free(c);
    lorajit_engine_free(jit), lorajit_engine_free(aot), lorajit_engine_free(f32);

    open_art(art, NULL, LORAJIT_OK, "without options");
    lorajit_options q = {.lora_dtype = "bf16"};
    open_art(art, &q, LORAJIT_OK, "with options.lora_dtype bf16");
    static const char *const other[2] = {"f32", "f16"};
    char what[96];
    for (int i = 0; i < 2; i++) {
        q.lora_dtype = other[i];
        snprintf(what, sizeof what, "with options.lora_dtype %s", other[i]);
        open_art(art, &q, LORAJIT_E_ARG, what);
    }
    q = (lorajit_options){.schema_path = schema3("f16", f16), .max_batch = 1, .max_seq_len = SEQ};
    open_art(art, &q, LORAJIT_E_ARG, "with a schema file of lora_dtype f16");
    q.schema_path = bf16;
    open_art(art, &q, LORAJIT_OK, "with its own schema file");
    q.lora_dtype = "f32";
    open_art(art, &q, LORAJIT_E_ARG, "with its own schema file and options.lora_dtype f32");
    /* the bf16 code with a manifest claiming bf16 (the control: the forging alone is no
       reason to refuse), f32 (no key) or f16 */
    snprintf(forged, sizeof forged, "%s_forged", art);
    static const char *const lies[3] = {"bf16", NULL, "f16"};
    for (int i = 0; i < 3; i++) {
        char cmd[3700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", forged, art, forged);
        CHECK(system(cmd) == 0, "%s", cmd);
        forge(forged, set_lora_dtype, lies[i]);
        snprintf(what, sizeof what, "re-sealed as lora_dtype %s", lies[i] ? lies[i] : "(absent)");
        lorajit_engine *e = NULL;
        s = lorajit_engine_open_artifact(&e, forged, MODEL, NULL);
        if (i == 0) CHECK(s == LORAJIT_OK, "artifact %s: %s", what, e ? lorajit_errmsg(e) : "");
        else CHECK(s != LORAJIT_OK && e && strstr(lorajit_errmsg(e), "lj_layout_sha256"), "artifact %s: %s", what,
                   e ? lorajit_errmsg(e) : lorajit_status_str(s));
        if (i > 0) printf("  bf16-slot artifact %s: refused by the layout digest\n", what);
        lorajit_engine_free(e);
    }
}

int main(int argc, char **argv) {
    check_enter_tests_dir();
    snprintf(build, sizeof build, "%s", argc > 1 ? argv[1] : "../build");
    test_schema();
    test_manifest();
    test_artifact();
    return check_summary("lora_dtype");
}
