/* test_rt_json.c — the JSON reading layer (runtime/formats/json.c) and the config
 * field list LJ_CONFIG_FIELDS that the config reader, the manifest writer and
 * lj_config_compare expand.
 * Recipe for a reader case: parse a small object, call the reader with an lj_json_at
 * naming a file and a prefix, then want(line, status, &err, WANT, "needle", ...):
 * the status must match and the message must hold every needle (file, field path,
 * what is wrong). The config round trip iterates LJ_CONFIG_FIELDS itself, so a field
 * added there is covered without touching this file. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "formats.h"

static char tmp_root[1024];

static void want(int line, lorajit_status got, const lj_err *err, lorajit_status status, const char *n1,
                 const char *n2, const char *n3) {
    CHECK(got == status && err->status == status, "line %d: status %d (%s), want %d; msg: %s", line, got,
          lorajit_status_str(got), status, err->msg);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        CHECK(!needles[i] || strstr(err->msg, needles[i]), "line %d: message lacks \"%s\": %s", line, needles[i],
              err->msg);
}

static cJSON *parse(const char *text) {
    cJSON *j = cJSON_Parse(text);
    if (!j) { fprintf(stderr, "test JSON does not parse: %s\n", text); exit(2); }
    return j;
}

static int rm_entry(const char *p, const struct stat *s, int flag, struct FTW *ftw) { return remove(p); }

/* ---- the typed field readers ---- */
static void test_readers(void) {
    lj_err err = {0};
    lj_json_at at = {"adapter_config.json", "rank_pattern.", &err};
    const unsigned REQ = LJ_JSON_REQUIRED, OPT = LJ_JSON_OPTIONAL;
    cJSON *j = parse("{\"q_proj\": 8, \"half\": 2.5, \"zero\": 0, \"big\": 5000, \"str\": \"x\", \"nul\": null,"
                     " \"neg\": -1, \"huge\": 1e300, \"tiny\": 1e-50, \"t\": true, \"list\": [\"a\", \"b\"],"
                     " \"mixed\": [\"a\", 3], \"obj\": {\"k\": 1}}");
    int64_t i = -7;
    CHECK(lj_json_int(&at, j, "q_proj", REQ, 1, 64, &i) == LORAJIT_OK && i == 8, "int: %s", err.msg);
    i = -7;
    want(__LINE__, lj_json_int(&at, j, "half", REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "adapter_config.json: ",
         "field \"rank_pattern.half\" must be an integer", NULL);
    want(__LINE__, lj_json_int(&at, j, "str", REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "\"rank_pattern.str\" must be an integer", NULL);
    want(__LINE__, lj_json_int(&at, j, "zero", REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "\"rank_pattern.zero\" is 0", "1..64");
    want(__LINE__, lj_json_int(&at, j, "big", REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "\"rank_pattern.big\"",
         "is 5000", "1..64");
    want(__LINE__, lj_json_int(&at, j, "big", REQ | LJ_JSON_LIMIT, 1, 64, &i), &err, LORAJIT_E_UNSUPPORTED,
         "\"rank_pattern.big\"", "over the limit 64", NULL);
    want(__LINE__, lj_json_int(&at, j, "absent", REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.absent\" is missing", NULL);
    want(__LINE__, lj_json_int(&at, j, "nul", REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.nul\" is missing", NULL);
    CHECK(i == -7, "a refused int was written: %lld", (long long)i);
    CHECK(lj_json_int(&at, j, "absent", OPT, 1, 64, &i) == LORAJIT_OK && i == -7, "optional absent int");
    CHECK(lj_json_int(&at, j, "nul", OPT, 1, 64, &i) == LORAJIT_OK && i == -7, "optional null int");

    double d = -3;
    CHECK(lj_json_number(&at, j, "half", REQ, &d) == LORAJIT_OK && d == 2.5, "number: %s", err.msg);
    want(__LINE__, lj_json_number(&at, j, "str", REQ, &d), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.str\" must be a finite number", NULL);
    want(__LINE__, lj_json_number(&at, j, "neg", REQ | LJ_JSON_POSITIVE, &d), &err, LORAJIT_E_FORMAT,
         "\"rank_pattern.neg\" must be a positive number", NULL, NULL);
    want(__LINE__, lj_json_number(&at, j, "zero", REQ | LJ_JSON_POSITIVE, &d), &err, LORAJIT_E_FORMAT,
         "\"rank_pattern.zero\" must be a positive number", NULL, NULL);
    CHECK(d == 2.5 && lj_json_number(&at, j, "nul", OPT, &d) == LORAJIT_OK && d == 2.5, "optional null number");
    float f = 7;
    CHECK(lj_json_float(&at, j, "half", REQ | LJ_JSON_POSITIVE, &f) == LORAJIT_OK && f == 2.5f, "float");
    want(__LINE__, lj_json_float(&at, j, "huge", REQ, &f), &err, LORAJIT_E_FORMAT, "\"rank_pattern.huge\"",
         "finite number", NULL);
    want(__LINE__, lj_json_float(&at, j, "tiny", REQ | LJ_JSON_POSITIVE, &f), &err, LORAJIT_E_FORMAT,
         "\"rank_pattern.tiny\"", "positive number", NULL);
    CHECK(f == 2.5f && lj_json_float(&at, j, "absent", OPT, &f) == LORAJIT_OK && f == 2.5f, "float kept");

    bool b = false;
    CHECK(lj_json_bool(&at, j, "t", REQ, &b) == LORAJIT_OK && b, "bool");
    want(__LINE__, lj_json_bool(&at, j, "q_proj", OPT, &b), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.q_proj\" must be true or false", NULL);
    b = false;
    CHECK(lj_json_bool(&at, j, "nul", OPT, &b) == LORAJIT_OK && !b, "optional null bool keeps false");

    const char *s = "default";
    CHECK(lj_json_string(&at, j, "str", REQ, &s) == LORAJIT_OK && !strcmp(s, "x"), "string");
    want(__LINE__, lj_json_string(&at, j, "t", REQ, &s), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.t\" must be a string", NULL);
    s = "default";
    CHECK(lj_json_string(&at, j, "absent", OPT, &s) == LORAJIT_OK && !strcmp(s, "default"), "string kept");

    const char **names = (const char **)1;
    int n = -1;
    CHECK(lj_json_strings(&at, j, "list", REQ, &names, &n) == LORAJIT_OK && n == 2 && !strcmp(names[0], "a") &&
              !strcmp(names[1], "b"),
          "strings: %s", err.msg);
    free(names);
    want(__LINE__, lj_json_strings(&at, j, "mixed", REQ, &names, &n), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.mixed\"", "element 1 is not a string");
    CHECK(names == NULL && n == 0, "strings output on failure");
    want(__LINE__, lj_json_strings(&at, j, "str", REQ, &names, &n), &err, LORAJIT_E_FORMAT,
         "\"rank_pattern.str\" must be a list of strings", NULL, NULL);
    CHECK(lj_json_strings(&at, j, "absent", OPT, &names, &n) == LORAJIT_OK && !names && !n, "strings absent");

    const cJSON *o = NULL;
    CHECK(lj_json_object(&at, j, "obj", REQ, &o) == LORAJIT_OK && cJSON_IsObject(o), "object");
    want(__LINE__, lj_json_object(&at, j, "list", REQ, &o), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.list\" must be an object", NULL);
    CHECK(lj_json_array(&at, j, "list", REQ, &o) == LORAJIT_OK && cJSON_IsArray(o), "array");
    want(__LINE__, lj_json_array(&at, j, "obj", REQ, &o), &err, LORAJIT_E_FORMAT, "\"rank_pattern.obj\" must be a list",
         NULL, NULL);

    /* key NULL: the value itself, named by prefix + its member name (as when iterating). */
    const cJSON *member = cJSON_GetObjectItemCaseSensitive(j, "str");
    want(__LINE__, lj_json_int(&at, member, NULL, REQ, 1, 64, &i), &err, LORAJIT_E_FORMAT, "adapter_config.json",
         "field \"rank_pattern.str\" must be an integer", NULL);
    lj_json_at top = {"config.json", NULL, &err};
    want(__LINE__, lj_json_int(&top, j, "absent", REQ, 1, 2, &i), &err, LORAJIT_E_FORMAT,
         "config.json: field \"absent\" is missing", NULL, NULL);
    cJSON_Delete(j);
}

/* ---- the preamble: read (capped), parse, check the root ---- */
static void test_preamble(void) {
    lj_err err = {0};
    char p[1200];
    cJSON *root = (cJSON *)1;
    snprintf(p, sizeof p, "%s/missing.json", tmp_root);
    want(__LINE__, lj_json_read(p, 100, &root, &err), &err, LORAJIT_E_IO, "missing.json", NULL, NULL);
    CHECK(root == NULL, "root on failure");
    snprintf(p, sizeof p, "%s/obj.json", tmp_root);
    CHECK(check_write_file(p, "{\"a\": [1, 2]}", 13) == 0, "write %s", p);
    want(__LINE__, lj_json_read(p, 12, &root, &err), &err, LORAJIT_E_UNSUPPORTED, "obj.json", "over the limit", NULL);
    CHECK(lj_json_read(p, 13, &root, &err) == LORAJIT_OK && cJSON_IsObject(root), "read: %s", err.msg);
    cJSON_Delete(root);
    snprintf(p, sizeof p, "%s/list.json", tmp_root);
    CHECK(check_write_file(p, "[1, 2]", 6) == 0, "write %s", p);
    want(__LINE__, lj_json_read(p, LJ_JSON_MAX_BYTES, &root, &err), &err, LORAJIT_E_FORMAT, "list.json",
         "not a JSON object", NULL);
    CHECK(root == NULL, "root of a list");
    const char *bad = "{\"a\": 1,\n \"b\" 2}";
    want(__LINE__, lj_json_parse_object(bad, strlen(bad), "bad.json", &root, &err), &err, LORAJIT_E_FORMAT,
         "bad.json: invalid JSON at byte 14", "line 2", NULL);
    CHECK(root == NULL, "root of bad JSON");

    /* The layer's names reach the users' messages: a pattern value in adapter_config.json. */
    const char *pc = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"alpha_pattern\": {\"q_proj\": \"x\"}}";
    peft_config c;
    want(__LINE__, peft_config_parse(pc, strlen(pc), "adapter_config.json", lj_arch_get(LJ_ARCH_DEFAULT), &c, &err), &err, LORAJIT_E_FORMAT,
         "adapter_config.json: field \"alpha_pattern.q_proj\" must be a finite number", NULL, NULL);
}

/* ---- LJ_CONFIG_FIELDS: config.json -> config -> manifest -> config ---- */
enum { K_INT, K_FLOAT, K_BOOL, K_INT0 = K_INT };
#define KIND_OF(hf, member, kind, need, def, max) K_##kind,
static const int field_kind[] = {LJ_CONFIG_FIELDS(KIND_OF)};
#undef KIND_OF
#define NAME_OF(hf, member, kind, need, def, max) #hf,
static const char *const field_name[] = {LJ_CONFIG_FIELDS(NAME_OF)};
#undef NAME_OF
enum { N_FIELDS = sizeof field_name / sizeof field_name[0] };

/* Field k of c as a double (through the X-macro, not the readers' own tables). */
static double get_field(const lj_config *c, int k) {
    int i = 0;
#define GET(hf, member, kind, need, def, max) if (i++ == k) return (double)c->member;
    LJ_CONFIG_FIELDS(GET)
#undef GET
    return NAN;
}

/* Sets field k of c to v (a bool field: v != 0). */
static void set_field(lj_config *c, int k, double v) {
    int i = 0;
#define SET(hf, member, kind, need, def, max) if (i++ == k) c->member = (__typeof__(c->member))v;
    LJ_CONFIG_FIELDS(SET)
#undef SET
}

/* A value for field k of another config, different from `from` and within the field's bounds. */
static double other_value(int k, double from) {
    if (field_kind[k] == K_BOOL) return from == 0;
    if (field_kind[k] == K_FLOAT) return from * 2;
    return from > 1 ? from - 1 : from + 1;
}

static void test_config_fields(void) {
    lj_err err = {0};
    lj_config tiny;
    CHECK(lj_config_read("conformance/models/llama-tiny/config.json", &tiny, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(N_FIELDS >= 11, "LJ_CONFIG_FIELDS lists %d fields", (int)N_FIELDS);

    /* config.json written from the X-macro (every bool true) reads back field by field. */
    lj_config want_cfg = tiny;
    char text[4096];
    size_t at = (size_t)snprintf(text, sizeof text, "{\"model_type\": \"llama\"");
    for (int k = 0; k < N_FIELDS; k++) {
        if (field_kind[k] == K_BOOL) set_field(&want_cfg, k, 1);
        double v = get_field(&want_cfg, k);
        if (field_kind[k] == K_BOOL) at += (size_t)snprintf(text + at, sizeof text - at, ", \"%s\": true", field_name[k]);
        else at += (size_t)snprintf(text + at, sizeof text - at, ", \"%s\": %.9g", field_name[k], v);
    }
    snprintf(text + at, sizeof text - at, "}");
    lj_config cfg;
    CHECK(lj_config_parse(text, strlen(text), "fields.json", &cfg, &err) == LORAJIT_OK, "%s: %s", text, err.msg);
    for (int k = 0; k < N_FIELDS; k++)
        CHECK(get_field(&cfg, k) == get_field(&want_cfg, k), "config.json field %s: %g, want %g", field_name[k],
              get_field(&cfg, k), get_field(&want_cfg, k));
    CHECK(lj_config_compare(&want_cfg, &cfg, "fields.json", "art", &err) == LORAJIT_OK, "%s", err.msg);

    /* Every field set apart from its neighbours, through manifest write and read. */
    lj_layout *L = lj_layout_new();
    for (int k = 0; k < N_FIELDS; k++)
        set_field(&L->cfg, k, field_kind[k] == K_INT ? 2 + k : field_kind[k] == K_FLOAT ? 0.25 * (k + 1) : 1);
    L->schema = (lj_schema){.r_max = 4, .target_mask = 0, .n_slots = 2, .max_tokens = 1, .seq_len = 1, .max_batch = 1};
    L->n_weights = 1;
    L->weights = calloc(1, sizeof *L->weights);
    L->weights[0] = (lj_weight_desc){.name = strdup("model.norm.weight"), .rows = 8, .cols = 0, .dtype = LJ_DTYPE_F32};
    lj_manifest m = {.abi_version = LJ_ABI_VERSION, .L = L, .triple = "x86_64-pc-linux-gnu", .cpu = "x86-64",
                     .features = "+sse2"};
    CHECK(lj_manifest_write(tmp_root, &m, &err) == LORAJIT_OK, "write: %s", err.msg);
    lj_manifest back;
    CHECK(lj_manifest_read(tmp_root, &back, &err) == LORAJIT_OK, "read: %s", err.msg);
    if (back.L) {
        for (int k = 0; k < N_FIELDS; k++)
            CHECK(get_field(&back.L->cfg, k) == get_field(&L->cfg, k), "manifest field %s: %g, want %g",
                  field_name[k], get_field(&back.L->cfg, k), get_field(&L->cfg, k));
        CHECK(lj_config_compare(&back.L->cfg, &L->cfg, "model", "art", &err) == LORAJIT_OK, "%s", err.msg);
        /* The comparer names each field that differs, with both values. */
        for (int k = 0; k < N_FIELDS; k++) {
            lj_config other = L->cfg;
            set_field(&other, k, other_value(k, get_field(&L->cfg, k)));
            char quoted[96];
            snprintf(quoted, sizeof quoted, "field \"%s\" is ", field_name[k]);
            want(__LINE__, lj_config_compare(&back.L->cfg, &other, "model/config.json", "art", &err), &err,
                 LORAJIT_E_SHAPE, "model/config.json", quoted, "another model");
        }
    }
    lj_manifest_clear(&back);

    /* The manifest reader requires every field, naming it under "config.". */
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", tmp_root, LJ_ARTIFACT_MANIFEST);
    char *written = check_read_file(path, NULL);
    for (int k = 0; written && k < N_FIELDS; k++) {
        cJSON *root = parse(written);
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "config"), field_name[k]);
        CHECK(lj_manifest_seal(root, &err) == LORAJIT_OK, "seal: %s", err.msg);
        char *t = cJSON_PrintUnformatted(root), needle[96];
        snprintf(needle, sizeof needle, "field \"config.%s\" is missing", field_name[k]);
        want(__LINE__, lj_manifest_parse(t, strlen(t), "m.json", &back, &err), &err, LORAJIT_E_FORMAT, "m.json", needle,
             NULL);
        CHECK(back.L == NULL, "manifest output on failure");
        cJSON_free(t);
        cJSON_Delete(root);
    }
    CHECK(written != NULL, "cannot read %s", path);
    free(written);
    lj_layout_free(L);
}

/* ---- duplicate keys: refused, the key's whole path named ---- */
static void test_duplicates(void) {
    static const struct {
        const char *text, *path; /* path NULL: no duplicate */
    } cases[] = {
        /* few keys: sorted on the stack; nine: sorted in a malloc'd array */
        {"{\"a\": [{\"x\": 1}, {\"b\": 1, \"y\": 2, \"b\": 3}]}", "\"a[1].b\""},
        {"{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k3\":8}", "\"k3\""},
        {"{\"o\": {\"p\": {\"q\": [0, [1, {\"r\": 1, \"r\": 2}]]}}}", "\"o.p.q[1][1].r\""},
        {"{\"a\": {\"b\": 1}, \"c\": {\"b\": 1}, \"d\": [{\"b\": 1}, {\"b\": 2}]}", NULL}, /* same key, other objects */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lj_err err = {0};
        cJSON *j = NULL;
        lorajit_status s = lj_json_parse(cases[i].text, strlen(cases[i].text), "dup.json", 0, &j, &err);
        if (cases[i].path)
            want(__LINE__, s, &err, LORAJIT_E_FORMAT, "dup.json", cases[i].path, "appears twice");
        else
            CHECK(s == LORAJIT_OK && j, "case %zu: refused: %s", i, err.msg);
        cJSON_Delete(j);
    }
}

int main(int argc, char **argv) {
    snprintf(tmp_root, sizeof tmp_root, "%s/tmp_rt_json", argc > 1 ? argv[1] : ".");
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(tmp_root, 0755) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", tmp_root, strerror(errno));
        return 2;
    }
    test_readers();
    test_preamble();
    test_config_fields();
    test_duplicates();
    return check_summary("rt_json");
}
