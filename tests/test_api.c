/* test_api.c — the public API end to end: reference logits and error behaviour.
 *
 * (a) conformance/expected/index.json and (b) golden/expected/index.json go through
 * one driver (run_suite): one engine per (model, schema), compiled once, each case's
 * adapter state applied through the API, forward, compare with the reference .bin at
 * |got - want| <= atol + rtol * |want|; between cases every adapter is deleted.
 * (c) errors: messages name the path / adapter / position, failed loads leave the
 * served logits byte-identical, NULL arguments fail, lorajit_engine_free(NULL) is a
 * no-op. Run from tests/ (argv[1], the build dir, is not needed). */
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

/* ---- small file helpers ---- */

/* True when msg holds the decimal number v not glued to other digits. */
static int mentions_number(const char *msg, long v) {
    char num[32];
    snprintf(num, sizeof num, "%ld", v);
    size_t len = strlen(num);
    for (const char *p = strstr(msg, num); p; p = strstr(p + 1, num)) {
        int before = p > msg && p[-1] >= '0' && p[-1] <= '9';
        int after = p[len] >= '0' && p[len] <= '9';
        if (!before && !after) return 1;
    }
    return 0;
}

/* ---- the shared driver: apply a case's adapter state, forward, compare ---- */

/* Deletes every resident adapter and re-enables; the engine then serves the base model. */
static int reset_engine(lorajit_engine *e) {
    const char *borrowed[64];
    char names[64][256];
    int n = lorajit_list_adapters(e, borrowed, 64);
    if (n < 0 || n > 64) return -1;
    for (int i = 0; i < n; i++) snprintf(names[i], sizeof names[i], "%s", borrowed[i]);
    for (int i = 0; i < n; i++)
        if (lorajit_delete_adapter(e, names[i]) != LORAJIT_OK) return -1;
    if (lorajit_set_adapter(e, NULL, NULL, 0) != LORAJIT_OK) return -1;
    if (lorajit_enable_adapters(e) != LORAJIT_OK) return -1;
    return lorajit_list_adapters(e, borrowed, 64) == 0 ? 0 : -1;
}

/* Folder of adapter `name` of a case: state.dirs[name] when given, else name. */
static void adapter_path(char *out, size_t cap, const char *root, const char *model,
                         const cJSON *dirs, const char *name) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(dirs, name);
    const char *dir = cJSON_IsString(d) ? d->valuestring : name;
    snprintf(out, cap, "%s/adapters/%s/%s", root, model, dir);
}

/* Applies a case's "state" to a reset engine: load loaded + deleted, hotswap, delete,
 * set active (with weights), disable. Returns 0, or -1 with why filled in. */
static int apply_state(lorajit_engine *e, const char *root, const char *model, const cJSON *state,
                       char *why, size_t whylen) {
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(state, "dirs");
    const cJSON *lists[2] = {cJSON_GetObjectItemCaseSensitive(state, "loaded"),
                             cJSON_GetObjectItemCaseSensitive(state, "deleted")};
    char path[1024];
    const cJSON *it;
    for (int l = 0; l < 2; l++) {
        cJSON_ArrayForEach(it, lists[l]) {
            adapter_path(path, sizeof path, root, model, dirs, it->valuestring);
            if (lorajit_load_adapter(e, it->valuestring, path) != LORAJIT_OK) {
                snprintf(why, whylen, "load %s from %s: %s", it->valuestring, path, lorajit_errmsg(e));
                return -1;
            }
        }
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(state, "hotswap")) {
        const cJSON *name = cJSON_GetArrayItem(it, 0), *dir = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsString(name) || !cJSON_IsString(dir)) {
            snprintf(why, whylen, "bad hotswap entry (want [name, dirname])");
            return -1;
        }
        snprintf(path, sizeof path, "%s/adapters/%s/%s", root, model, dir->valuestring);
        if (lorajit_hotswap_adapter(e, name->valuestring, path) != LORAJIT_OK) {
            snprintf(why, whylen, "hotswap %s from %s: %s", name->valuestring, path, lorajit_errmsg(e));
            return -1;
        }
    }
    cJSON_ArrayForEach(it, lists[1]) {
        if (lorajit_delete_adapter(e, it->valuestring) != LORAJIT_OK) {
            snprintf(why, whylen, "delete %s: %s", it->valuestring, lorajit_errmsg(e));
            return -1;
        }
    }
    const char *names[64];
    float weights[64];
    int n = 0;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(state, "weights");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(state, "active")) {
        if (n == 64) { snprintf(why, whylen, "more than 64 active adapters"); return -1; }
        const cJSON *wi = cJSON_GetArrayItem(w, n);
        weights[n] = cJSON_IsNumber(wi) ? (float)wi->valuedouble : 1.0f;
        names[n++] = it->valuestring;
    }
    if (lorajit_set_adapter(e, names, weights, n) != LORAJIT_OK) {
        snprintf(why, whylen, "set_adapter: %s", lorajit_errmsg(e));
        return -1;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "disabled")) &&
        lorajit_disable_adapters(e) != LORAJIT_OK) {
        snprintf(why, whylen, "disable: %s", lorajit_errmsg(e));
        return -1;
    }
    return 0;
}

/* Runs one case on e; returns 1 when it passed. */
static int run_case(lorajit_engine *e, const char *root, const cJSON *c, double atol, double rtol) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "case"));
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "model"));
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "file"));
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens");
    if (!name) name = file ? file : "?";
    int n = cJSON_GetArraySize(toks), vocab = lorajit_vocab_size(e), ok = 0;
    char why[2048], path[1024];
    CHECK(reset_engine(e) == 0, "%s: cannot reset the engine: %s", name, lorajit_errmsg(e));
    if (apply_state(e, root, model, cJSON_GetObjectItemCaseSensitive(c, "state"), why, sizeof why)) {
        CHECK(0, "%s: %s", name, why);
        return 0;
    }
    snprintf(path, sizeof path, "%s/expected/%s", root, file ? file : "");
    long len = 0;
    float *want = (float *)check_read_file(path, &len);
    int32_t *tokens = malloc(sizeof *tokens * (n ? n : 1));
    float *got = malloc(sizeof *got * (size_t)(n ? n : 1) * (vocab > 0 ? vocab : 1));
    CHECK(want != NULL, "%s: cannot read %s", name, path);
    if (!want || !tokens || !got) goto done;
    CHECK(len == (long)sizeof(float) * n * vocab, "%s: %s has %ld bytes, want %d x %d floats", name,
          path, len, n, vocab);
    if (len != (long)sizeof(float) * n * vocab) goto done;
    for (int i = 0; i < n; i++) tokens[i] = (int32_t)cJSON_GetArrayItem(toks, i)->valuedouble;
    lorajit_status s = lorajit_forward(e, tokens, n, got);
    CHECK(s == LORAJIT_OK, "%s: forward: %s", name, lorajit_errmsg(e));
    if (s != LORAJIT_OK) goto done;
    long worst;
    double r = check_close_ratio(got, want, (long)n * vocab, atol, rtol, &worst);
    CHECK(r <= 1.0, "%s: error %.3g x tolerance at [%ld, %ld]: got %.7g want %.7g", name, r,
          worst / vocab, worst % vocab, got[worst], want[worst]);
    ok = r <= 1.0;
done:
    free(want);
    free(tokens);
    free(got);
    return ok;
}

/* Writes schema as a temporary JSON file into path (cap >= 64). */
static int write_schema(const cJSON *schema, char *path) {
    strcpy(path, "/tmp/lorajit_schema_XXXXXX.json");
    int fd = mkstemps(path, 5);
    if (fd < 0) return -1;
    close(fd);
    char *text = cJSON_PrintUnformatted(schema);
    int rc = text ? check_write_file(path, text, (long)strlen(text)) : -1;
    free(text);
    return rc;
}

/* The driver for (a) and (b): every case of root/expected/index.json, one engine per
 * (model, schema), each compiled exactly once. */
static void run_suite(const char *root) {
    char path[1024];
    snprintf(path, sizeof path, "%s/expected/index.json", root);
    char *text = check_read_file(path, NULL);
    CHECK(text != NULL, "%s is missing", path);
    if (!text) return;
    cJSON *index = cJSON_Parse(text);
    free(text);
    CHECK(index != NULL, "%s is not valid JSON", path);
    if (!index) return;
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(index, "tolerance");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(tol, "atol"), *rt = cJSON_GetObjectItemCaseSensitive(tol, "rtol");
    double atol = cJSON_IsNumber(at) ? at->valuedouble : 2e-4, rtol = cJSON_IsNumber(rt) ? rt->valuedouble : 2e-4;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(index, "cases");
    int n = cJSON_GetArraySize(cases), passed = 0, engines = 0;
    CHECK(n > 0, "%s lists no cases", path);
    char **keys = calloc(n ? n : 1, sizeof *keys);
    char *done = calloc(n ? n : 1, 1);
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        char *schema = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "schema"));
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "model"));
        size_t len = strlen(model ? model : "") + strlen(schema ? schema : "") + 2;
        keys[i] = malloc(len);
        snprintf(keys[i], len, "%s|%s", model ? model : "", schema ? schema : "");
        free(schema);
    }
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "model"));
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(c, "schema");
        char model_dir[1024], schema_path[64] = "";
        lorajit_options opts = {0};
        snprintf(model_dir, sizeof model_dir, "%s/models/%s", root, model ? model : "");
        if (schema) {
            CHECK(write_schema(schema, schema_path) == 0, "cannot write a schema file for %s", keys[i]);
            opts.schema_path = schema_path;
        }
        lorajit_engine *e = NULL;
        lorajit_status s = lorajit_engine_open(&e, model_dir, schema ? &opts : NULL);
        CHECK(s == LORAJIT_OK, "open %s (schema %s): %s", model_dir, keys[i],
              e ? lorajit_errmsg(e) : lorajit_status_str(s));
        engines++;
        int ran = 0;
        for (int j = i; j < n; j++) {
            if (done[j] || strcmp(keys[i], keys[j])) continue;
            done[j] = 1;
            if (s == LORAJIT_OK) {
                passed += run_case(e, root, cJSON_GetArrayItem(cases, j), atol, rtol);
                ran++;
            } else {
                CHECK(0, "case %d skipped: the engine did not open", j);
            }
        }
        if (s == LORAJIT_OK) {
            lorajit_stats st;
            CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK, "get_stats: %s", lorajit_errmsg(e));
            CHECK(st.compiles == 1, "%s: %lld compiles over %d cases, want 1", keys[i],
                  (long long)st.compiles, ran);
            CHECK(st.forwards >= ran, "%s: stats.forwards %lld < %d cases", keys[i], (long long)st.forwards, ran);
        }
        lorajit_engine_free(e);
        if (schema_path[0]) remove(schema_path);
    }
    printf("%s: %d/%d cases pass on %d engine(s), one compile each\n", root, passed, n, engines);
    for (int i = 0; i < n; i++) free(keys[i]);
    free(keys);
    free(done);
    cJSON_Delete(index);
}

/* ---- (c) errors through the API ---- */

static void test_null_args(lorajit_engine *e) {
    const char *name = "a_qv";
    float w = 1, logits[256 * 2];
    int32_t tok[2] = {1, 2};
    lorajit_stats st;
    const char *names[4];
    lorajit_engine_free(NULL); /* a no-op */
    CHECK(lorajit_engine_open(NULL, TINY_MODEL, NULL) != LORAJIT_OK, "open(NULL out)");
    lorajit_engine *bad = NULL;
    CHECK(lorajit_engine_open(&bad, NULL, NULL) != LORAJIT_OK, "open(NULL dir)");
    lorajit_engine_free(bad);
    CHECK(lorajit_errmsg(NULL) != NULL, "errmsg(NULL) must not be NULL");
    CHECK(lorajit_engine_print_ir(NULL, stdout) != LORAJIT_OK, "print_ir(NULL)");
    CHECK(lorajit_engine_print_ir(e, NULL) != LORAJIT_OK, "print_ir(e, NULL)");
    CHECK(lorajit_vocab_size(NULL) <= 0, "vocab_size(NULL)");
    CHECK(lorajit_max_tokens(NULL) <= 0, "max_tokens(NULL)");
    CHECK(lorajit_load_adapter(NULL, name, TINY_ADAPTERS "/a_qv") != LORAJIT_OK, "load(NULL)");
    CHECK(lorajit_load_adapter(e, NULL, TINY_ADAPTERS "/a_qv") != LORAJIT_OK, "load(e, NULL name)");
    CHECK(lorajit_load_adapter(e, "x", NULL) != LORAJIT_OK, "load(e, name, NULL dir)");
    CHECK(lorajit_hotswap_adapter(NULL, name, TINY_ADAPTERS "/a_qv") != LORAJIT_OK, "hotswap(NULL)");
    CHECK(lorajit_hotswap_adapter(e, NULL, TINY_ADAPTERS "/a_qv") != LORAJIT_OK, "hotswap(e, NULL)");
    CHECK(lorajit_hotswap_adapter(e, name, NULL) != LORAJIT_OK, "hotswap(e, name, NULL)");
    CHECK(lorajit_delete_adapter(NULL, name) != LORAJIT_OK, "delete(NULL)");
    CHECK(lorajit_delete_adapter(e, NULL) != LORAJIT_OK, "delete(e, NULL)");
    CHECK(lorajit_set_adapter(NULL, &name, &w, 1) != LORAJIT_OK, "set(NULL)");
    CHECK(lorajit_set_adapter(e, NULL, &w, 1) != LORAJIT_OK, "set(e, NULL names, n=1)");
    CHECK(lorajit_set_adapter(e, &name, &w, -1) != LORAJIT_OK, "set(e, n=-1)");
    const char *null_name = NULL;
    CHECK(lorajit_set_adapter(e, &null_name, NULL, 1) != LORAJIT_OK, "set(e, {NULL})");
    CHECK(lorajit_enable_adapters(NULL) != LORAJIT_OK, "enable(NULL)");
    CHECK(lorajit_disable_adapters(NULL) != LORAJIT_OK, "disable(NULL)");
    CHECK(lorajit_forward(NULL, tok, 2, logits) != LORAJIT_OK, "forward(NULL)");
    CHECK(lorajit_forward(e, NULL, 2, logits) != LORAJIT_OK, "forward(e, NULL tokens)");
    CHECK(lorajit_forward(e, tok, 2, NULL) != LORAJIT_OK, "forward(e, tokens, NULL logits)");
    CHECK(lorajit_forward(e, tok, -1, logits) != LORAJIT_OK, "forward(e, n=-1)");
    CHECK(lorajit_get_stats(NULL, &st) != LORAJIT_OK, "get_stats(NULL)");
    CHECK(lorajit_get_stats(e, NULL) != LORAJIT_OK, "get_stats(e, NULL)");
    CHECK(lorajit_list_adapters(NULL, names, 4) <= 0, "list_adapters(NULL)");
    for (int s = 0; s <= LORAJIT_STATUS_COUNT; s++) {
        const char *t = lorajit_status_str((lorajit_status)s);
        CHECK(t != NULL && (s == LORAJIT_STATUS_COUNT || t[0]), "status_str(%d)", s);
    }
    CHECK(lorajit_status_str((lorajit_status)-1) != NULL, "status_str(-1)");
}

/* Makes a temporary adapter folder holding a_qv's config and a damaged weights file
 * (truncated, or config garbled). Returns 0 and the folder in dir (cap >= 64). */
static int make_broken_adapter(char *dir, int garble_config) {
    strcpy(dir, "/tmp/lorajit_bad_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char path[256];
    long n_cfg, n_st;
    char *cfg = check_read_file(TINY_ADAPTERS "/a_qv/adapter_config.json", &n_cfg);
    char *st = check_read_file(TINY_ADAPTERS "/a_qv/adapter_model.safetensors", &n_st);
    int rc = -1;
    if (!cfg || !st) goto done;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    static const char garbled[] = "{\"r\": 8, \"lora_alpha\": ";
    if (garble_config ? check_write_file(path, garbled, sizeof garbled - 1) : check_write_file(path, cfg, n_cfg)) goto done;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    rc = check_write_file(path, st, garble_config ? n_st : n_st / 2);
done:
    free(cfg);
    free(st);
    return rc;
}

static void remove_adapter_dir(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    remove(path);
    rmdir(dir);
}

static void test_errors(void) {
    lorajit_engine *e = NULL;
    const char *missing = "conformance/models/no-such-model";
    lorajit_status s = lorajit_engine_open(&e, missing, NULL);
    CHECK(s != LORAJIT_OK, "open of a missing dir succeeded");
    CHECK(e != NULL && strstr(lorajit_errmsg(e), missing), "open error must name %s: '%s'",
          missing, e ? lorajit_errmsg(e) : "(no handle)");
    lorajit_engine_free(e);

    e = NULL;
    s = lorajit_engine_open(&e, TINY_MODEL, NULL);
    CHECK(s == LORAJIT_OK, "open %s: %s", TINY_MODEL, e ? lorajit_errmsg(e) : "(no handle)");
    if (s != LORAJIT_OK) { lorajit_engine_free(e); return; }
    int vocab = lorajit_vocab_size(e), max_tokens = lorajit_max_tokens(e);
    CHECK(vocab == 256, "vocab_size %d, want 256", vocab);
    CHECK(max_tokens >= 33, "max_tokens %d, want >= 33 (config says 128)", max_tokens);
    if (vocab != 256 || max_tokens < 33) { lorajit_engine_free(e); return; }
    test_null_args(e);

    /* Names in messages. */
    const char *missing_adapter = TINY_ADAPTERS "/no_such_adapter";
    s = lorajit_load_adapter(e, "ghost", missing_adapter);
    CHECK(s != LORAJIT_OK && strstr(lorajit_errmsg(e), missing_adapter),
          "load of a missing dir: status %d, message '%s' must name the path", s, lorajit_errmsg(e));
    CHECK(lorajit_load_adapter(e, "a_qv", TINY_ADAPTERS "/a_qv") == LORAJIT_OK, "load a_qv: %s", lorajit_errmsg(e));
    CHECK(lorajit_load_adapter(e, "a_mlp", TINY_ADAPTERS "/a_mlp") == LORAJIT_OK, "load a_mlp: %s", lorajit_errmsg(e));
    s = lorajit_load_adapter(e, "a_qv", TINY_ADAPTERS "/a_all");
    CHECK(s == LORAJIT_E_EXISTS && strstr(lorajit_errmsg(e), "a_qv"), "second load of a_qv: %s / '%s'",
          lorajit_status_str(s), lorajit_errmsg(e));
    const char *unknown[] = {"a_qv", "nobody_here"};
    s = lorajit_set_adapter(e, unknown, NULL, 2);
    CHECK(s == LORAJIT_E_NOT_FOUND && strstr(lorajit_errmsg(e), "nobody_here"),
          "set of an unknown name: %s / '%s'", lorajit_status_str(s), lorajit_errmsg(e));
    s = lorajit_hotswap_adapter(e, "nobody_here", TINY_ADAPTERS "/a_qv");
    CHECK(s == LORAJIT_E_NOT_FOUND && strstr(lorajit_errmsg(e), "nobody_here"),
          "hotswap of an unknown name: %s / '%s'", lorajit_status_str(s), lorajit_errmsg(e));
    s = lorajit_delete_adapter(e, "nobody_here");
    CHECK(s == LORAJIT_E_NOT_FOUND && strstr(lorajit_errmsg(e), "nobody_here"),
          "delete of an unknown name: %s / '%s'", lorajit_status_str(s), lorajit_errmsg(e));

    const char *act[] = {"a_qv", "a_mlp"};
    const float wts[] = {1.0f, 0.5f};
    CHECK(lorajit_set_adapter(e, act, wts, 2) == LORAJIT_OK, "set a_qv,a_mlp: %s", lorajit_errmsg(e));
    int32_t *tokens = calloc(max_tokens + 1, sizeof *tokens);
    float *before = malloc(sizeof(float) * 7 * vocab), *after = malloc(sizeof(float) * 7 * vocab);
    float *big = malloc(sizeof(float) * (size_t)(max_tokens + 1) * vocab);
    for (int i = 0; i <= max_tokens; i++) tokens[i] = (i * 37 + 11) % vocab;
    s = lorajit_forward(e, tokens, 7, before);
    CHECK(s == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    CHECK(!strcmp(lorajit_errmsg(e), ""), "errmsg after a successful call is '%s', want \"\"", lorajit_errmsg(e));

    /* Forward arguments. */
    int32_t saved = tokens[4];
    tokens[4] = vocab + 1;
    s = lorajit_forward(e, tokens, 7, after);
    CHECK(s != LORAJIT_OK && mentions_number(lorajit_errmsg(e), 4),
          "token >= vocab at position 4: %s / '%s' must name the position", lorajit_status_str(s), lorajit_errmsg(e));
    tokens[4] = -3;
    s = lorajit_forward(e, tokens, 7, after);
    CHECK(s != LORAJIT_OK && mentions_number(lorajit_errmsg(e), 4),
          "negative token at position 4: %s / '%s'", lorajit_status_str(s), lorajit_errmsg(e));
    tokens[4] = saved;
    CHECK(lorajit_forward(e, tokens, 0, after) != LORAJIT_OK, "forward of 0 tokens succeeded");
    CHECK(lorajit_forward(e, tokens, max_tokens + 1, big) != LORAJIT_OK, "forward of max_tokens+1 succeeded");
    CHECK(lorajit_forward(e, tokens, max_tokens, big) == LORAJIT_OK, "forward of max_tokens: %s", lorajit_errmsg(e));

    /* Failed loads and hotswaps change nothing that is served. */
    char trunc_dir[64], garbled_dir[64];
    int have_trunc = make_broken_adapter(trunc_dir, 0) == 0;
    int have_garbled = make_broken_adapter(garbled_dir, 1) == 0;
    CHECK(have_trunc && have_garbled, "cannot write the broken adapters under /tmp");
    if (have_trunc) {
        s = lorajit_load_adapter(e, "broken", trunc_dir);
        CHECK(s != LORAJIT_OK && strstr(lorajit_errmsg(e), "adapter_model.safetensors"),
              "truncated safetensors: %s / '%s' must name the file", lorajit_status_str(s), lorajit_errmsg(e));
        s = lorajit_hotswap_adapter(e, "a_qv", trunc_dir);
        CHECK(s != LORAJIT_OK, "hotswap from a truncated adapter succeeded");
    }
    if (have_garbled) {
        s = lorajit_load_adapter(e, "broken", garbled_dir);
        CHECK(s != LORAJIT_OK && strstr(lorajit_errmsg(e), "adapter_config.json"),
              "garbled config: %s / '%s' must name the file", lorajit_status_str(s), lorajit_errmsg(e));
        s = lorajit_hotswap_adapter(e, "a_mlp", garbled_dir);
        CHECK(s != LORAJIT_OK, "hotswap from a garbled adapter succeeded");
    }
    s = lorajit_load_adapter(e, "ghost", missing_adapter);
    CHECK(s != LORAJIT_OK, "load of a missing dir succeeded");
    s = lorajit_hotswap_adapter(e, "a_qv", missing_adapter);
    CHECK(s != LORAJIT_OK && strstr(lorajit_errmsg(e), missing_adapter), "hotswap from a missing dir: '%s'",
          lorajit_errmsg(e));
    const char *listed[8];
    CHECK(lorajit_list_adapters(e, listed, 8) == 2, "after failed loads %d adapters, want 2",
          lorajit_list_adapters(e, listed, 8));
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    CHECK(st.active == 2 && st.adapters == 2 && st.enabled == 1, "stats after failed loads: active %lld adapters %lld enabled %d",
          (long long)st.active, (long long)st.adapters, st.enabled);
    s = lorajit_forward(e, tokens, 7, after);
    CHECK(s == LORAJIT_OK && !memcmp(before, after, sizeof(float) * 7 * vocab),
          "logits changed after failed loads/hotswaps (forward: %s)", lorajit_errmsg(e));
    CHECK(st.compiles == 1, "compiles %lld, want 1", (long long)st.compiles);
    if (have_trunc) remove_adapter_dir(trunc_dir);
    if (have_garbled) remove_adapter_dir(garbled_dir);
    free(tokens);
    free(before);
    free(after);
    free(big);
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    check_enter_tests_dir();
    run_suite("conformance");
    run_suite("golden");
    test_errors();
    return check_summary("test_api");
}
