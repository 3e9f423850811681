/* manifest.c — an artifact's manifest.json: written by the compiler, read here.
 *
 * It records what the compiled library expects: the model config (Hugging Face
 * field names), the adapter schema, every weight (name, shape, the dtype the code
 * reads: F32, or F16/BF16 for a matrix kept 16-bit), every LoRA site, the scratch sizes, the target (triple, CPU,
 * features), the ABI version of ctx.h, SHA-256 digests of the IR text and the
 * library file and the FNV-1a 64 code identity. "manifest_sha256" digests the
 * manifest itself (its compact JSON without that field), so an edited manifest is
 * refused; the library pins the layout (lj_layout_digest), so a re-sealed one too.
 * Reading validates every field and rebuilds the lj_layout the runtime binds.
 * Module names and paths come from the architecture table (arch.c). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

#define MANIFEST_FORMAT "lorajit-artifact"
#define SEAL_KEY "manifest_sha256"
#define MANIFEST_MAX_WEIGHTS (1 << 20)
#define MANIFEST_MAX_SIZE (INT64_C(1) << 40)

/* ---- the config fields, by their Hugging Face names ---- */

enum { KIND_INT = 'i', KIND_INT0 = 'i', KIND_FLOAT = 'f', KIND_BOOL = 'b' };
static const struct {
    const char *key;
    size_t off;
    char kind; /* 'i' int64_t, 'f' float, 'b' bool */
} config_fields[] = {
#define CONFIG_FIELD(hf, member, kind, need, def, max) {#hf, offsetof(lj_config, member), KIND_##kind},
    LJ_CONFIG_FIELDS(CONFIG_FIELD)
#undef CONFIG_FIELD
};
enum { N_CONFIG_FIELDS = sizeof config_fields / sizeof config_fields[0] };

/* Field k of c as a double (exact for every value a config can hold). */
static double config_get(const lj_config *c, int k) {
    const char *p = (const char *)c + config_fields[k].off;
    switch (config_fields[k].kind) {
    case 'i': return (double)*(const int64_t *)p;
    case 'f': return (double)*(const float *)p;
    default: return *(const bool *)p ? 1.0 : 0.0;
    }
}

/* The architecture's bias boolean i as c holds it (in c->bias_mask). */
static bool config_bias(const lj_config *c, int i) {
    return (c->bias_mask & lj_arch_get(c->arch)->biases[i].mask) != 0;
}

/* E_SHAPE naming model_path, field key, the model's value ms and the artifact's as. */
static lorajit_status config_differs(const char *model_path, const char *key, const char *ms, const char *as,
                                     const char *artifact_dir, lj_err *err) {
    return lj_fail(err, LORAJIT_E_SHAPE, "%s: field \"%s\" is %s, but the artifact %s was compiled "
                   "for %s (these are the weights of another model)", model_path, key, ms, artifact_dir, as);
}

lorajit_status lj_config_compare(const lj_config *artifact, const lj_config *model, const char *model_path,
                                 const char *artifact_dir, lj_err *err) {
    const lj_arch *arch = lj_arch_get(artifact->arch);
    if (artifact->arch != model->arch)
        return config_differs(model_path, "model_type", lj_arch_get(model->arch)->model_type, arch->model_type,
                              artifact_dir, err);
    for (int k = 0; k < N_CONFIG_FIELDS; k++) {
        double a = config_get(artifact, k), m = config_get(model, k);
        if (a == m) continue;
        char as[64], ms[64];
        if (config_fields[k].kind == 'b') {
            snprintf(as, sizeof as, "%s", a ? "true" : "false");
            snprintf(ms, sizeof ms, "%s", m ? "true" : "false");
        } else {
            snprintf(as, sizeof as, "%.9g", a);
            snprintf(ms, sizeof ms, "%.9g", m);
        }
        return config_differs(model_path, config_fields[k].key, ms, as, artifact_dir, err);
    }
    for (int i = 0; i < arch->n_biases; i++)
        if (config_bias(artifact, i) != config_bias(model, i))
            return config_differs(model_path, arch->biases[i].field, config_bias(model, i) ? "true" : "false",
                                  config_bias(artifact, i) ? "true" : "false", artifact_dir, err);
    if (!lj_rope_same(&artifact->rope, &model->rope)) /* rope.c: every field as given */
        return config_differs(model_path, "rope_scaling", lj_rope_type_name(model->rope.type),
                              lj_rope_type_name(artifact->rope.type), artifact_dir, err);
    return LORAJIT_OK;
}

/* ---- writing ---- */

/* Adds a 16-digit hex hash under key; false when out of memory. */
static bool add_hash(cJSON *o, const char *key, uint64_t h) {
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, h);
    return cJSON_AddStringToObject(o, key, hex) != NULL;
}

/* Adds a SHA-256 (hex) under key, 64 zeros when hex is empty (none computed: it
 * matches no file); false when out of memory. */
static bool add_digest(cJSON *o, const char *key, const char *hex) {
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    return cJSON_AddStringToObject(o, key, hex[0] ? hex : zeros) != NULL;
}

/* [a] or [a, b]; NULL when out of memory. */
static cJSON *shape_json(int64_t rows, int64_t cols) {
    double v[2] = {(double)rows, (double)cols};
    return cJSON_CreateDoubleArray(v, cols ? 2 : 1);
}

static bool add_config(cJSON *root, const lj_config *c) {
    cJSON *o = cJSON_AddObjectToObject(root, "config");
    if (!o) return false;
    for (int k = 0; k < N_CONFIG_FIELDS; k++) {
        double v = config_get(c, k);
        cJSON *item = config_fields[k].kind == 'b' ? cJSON_CreateBool(v != 0) : cJSON_CreateNumber(v);
        if (!item || !cJSON_AddItemToObject(o, config_fields[k].key, item)) {
            cJSON_Delete(item);
            return false;
        }
    }
    const lj_arch *arch = lj_arch_get(c->arch);
    for (int i = 0; i < arch->n_biases; i++)
        if (!cJSON_AddBoolToObject(o, arch->biases[i].field, config_bias(c, i))) return false;
    if (!lj_rope_write(o, &c->rope)) return false; /* as config.json says it; null for default */
    return cJSON_AddStringToObject(o, "model_type", arch->model_type) != NULL;
}

/* A dtype field of the schema o, written only when 16-bit, so that an f32 artifact's
 * manifest (and layout digest) is what it was before the field existed. */
static bool add_dtype(cJSON *o, const char *key, int dtype) {
    return dtype == LJ_DTYPE_F32 || cJSON_AddStringToObject(o, key, lj_kv_dtype_name(dtype));
}

static bool add_schema(cJSON *root, const lj_schema *s, const lj_arch *arch) {
    cJSON *o = cJSON_AddObjectToObject(root, "schema");
    if (!o) return false;
    cJSON *mods = cJSON_AddArrayToObject(o, "target_modules");
    if (!mods) return false;
    for (int m = 0; m < arch->n_modules; m++) {
        if (!(s->target_mask & (1u << m))) continue;
        cJSON *name = cJSON_CreateString(lj_arch_module_name(arch, m));
        if (!name || !cJSON_AddItemToArray(mods, name)) {
            cJSON_Delete(name);
            return false;
        }
    }
    return cJSON_AddNumberToObject(o, "max_rank", s->r_max) && cJSON_AddNumberToObject(o, "max_adapters", s->n_slots) &&
           cJSON_AddNumberToObject(o, "max_tokens", (double)s->max_tokens) &&
           cJSON_AddNumberToObject(o, "max_seq_len", (double)s->seq_len) &&
           cJSON_AddNumberToObject(o, "max_batch", s->max_batch) && add_dtype(o, "kv_dtype", s->kv_dtype) &&
           add_dtype(o, "lora_dtype", s->lora_dtype);
}

static bool add_tensors(cJSON *root, const lj_layout *L) {
    cJSON *ws = cJSON_AddArrayToObject(root, "weights");
    if (!ws) return false;
    for (int i = 0; i < L->n_weights; i++) {
        cJSON *w = cJSON_CreateObject();
        if (!w || !cJSON_AddItemToArray(ws, w)) {
            cJSON_Delete(w);
            return false;
        }
        cJSON *shape = shape_json(L->weights[i].rows, L->weights[i].cols);
        if (!cJSON_AddStringToObject(w, "name", L->weights[i].name) || !shape ||
            !cJSON_AddItemToObject(w, "shape", shape)) {
            cJSON_Delete(shape);
            return false;
        }
        if (!cJSON_AddStringToObject(w, "dtype", st_dtype_name(lj_dtype_st(L->weights[i].dtype)))) return false; /* what the code reads */
    }
    cJSON *ss = cJSON_AddArrayToObject(root, "lora_sites");
    if (!ss) return false;
    for (int i = 0; i < L->n_sites; i++) {
        const lj_site_desc *d = &L->sites[i];
        cJSON *s = cJSON_CreateObject();
        if (!s || !cJSON_AddItemToArray(ss, s)) {
            cJSON_Delete(s);
            return false;
        }
        if (!cJSON_AddNumberToObject(s, "layer", d->layer) ||
            !cJSON_AddStringToObject(s, "module", lj_arch_module_name(lj_arch_get(L->cfg.arch), d->module)) ||
            !cJSON_AddNumberToObject(s, "in", (double)d->in) || !cJSON_AddNumberToObject(s, "out", (double)d->out))
            return false;
    }
    cJSON *sc = cJSON_AddObjectToObject(root, "scratch_floats");
    return sc && cJSON_AddNumberToObject(sc, "per_token", (double)L->scratch_per_token) &&
           cJSON_AddNumberToObject(sc, "fixed", (double)L->scratch_fixed);
}

/* The layout's sections: config, schema, weights, lora_sites, scratch_floats. */
static bool add_layout(cJSON *root, const lj_layout *L) {
    return add_config(root, &L->cfg) && add_schema(root, &L->schema, lj_arch_get(L->cfg.arch)) && add_tensors(root, L);
}

lorajit_status lj_layout_digest(const lj_layout *L, uint8_t out[LJ_SHA256_BYTES], lj_err *err) {
    cJSON *root = cJSON_CreateObject();
    char *text = root && add_layout(root, L) ? cJSON_PrintUnformatted(root) : NULL;
    bool ok = text && lj_sha256(text, strlen(text), out);
    cJSON_free(text);
    cJSON_Delete(root);
    return ok ? LORAJIT_OK : lj_fail(err, LORAJIT_E_NOMEM, "layout digest: out of memory");
}

/* The whole manifest minus its seal; NULL when out of memory. */
static cJSON *manifest_json(const lj_manifest *m) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON *t, *eps;
    const char *entries[2] = {LJ_FORWARD_SYMBOL, LJ_DECODE_SYMBOL};
    bool ok = cJSON_AddStringToObject(root, "format", MANIFEST_FORMAT) &&
              cJSON_AddNumberToObject(root, "abi_version", m->abi_version) &&
              cJSON_AddStringToObject(root, "library", LJ_ARTIFACT_LIBRARY) &&
              (eps = cJSON_CreateStringArray(entries, 2)) != NULL && cJSON_AddItemToObject(root, "entry_points", eps) &&
              (t = cJSON_AddObjectToObject(root, "target")) != NULL &&
              cJSON_AddStringToObject(t, "triple", m->triple) && cJSON_AddStringToObject(t, "cpu", m->cpu) &&
              cJSON_AddStringToObject(t, "features", m->features ? m->features : "") &&
              add_layout(root, m->L) &&
              add_digest(root, "ir_sha256", m->ir_sha256) && add_hash(root, "code_hash", m->code_hash) &&
              add_digest(root, "library_sha256", m->library_sha256);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The SHA-256 (hex) of root's compact text, root without its seal. */
static lorajit_status seal_of(cJSON *root, char out[LJ_SHA256_HEX], const char *path, lj_err *err) {
    char *text = cJSON_PrintUnformatted(root);
    bool ok = text && lj_sha256_hex(text, strlen(text), out);
    cJSON_free(text);
    return ok ? LORAJIT_OK : lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
}

lorajit_status lj_manifest_seal(struct cJSON *root, lj_err *err) {
    cJSON_DeleteItemFromObjectCaseSensitive(root, SEAL_KEY);
    char hex[LJ_SHA256_HEX];
    lorajit_status s = seal_of(root, hex, "manifest", err);
    if (!s && !cJSON_AddStringToObject(root, SEAL_KEY, hex)) s = lj_fail(err, LORAJIT_E_NOMEM, "manifest: out of memory");
    return s;
}

lorajit_status lj_manifest_write(const char *dir, const lj_manifest *m, lj_err *err) {
    char path[4096];
    lorajit_status s = lj_path_join(path, sizeof path, dir, LJ_ARTIFACT_MANIFEST, err);
    if (s) return s;
    cJSON *root = manifest_json(m);
    if (!root) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    char *text = NULL;
    if (!(s = lj_manifest_seal(root, err)) && !(text = cJSON_Print(root)))
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    cJSON_Delete(root);
    if (s) return s;
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (line) memcpy(line, text, n), line[n] = '\n', line[n + 1] = '\0';
    cJSON_free(text);
    if (!line) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    s = lj_file_replace(dir, LJ_ARTIFACT_MANIFEST, line, n + 1, err); /* never through a link */
    free(line);
    return s;
}

/* ---- reading ---- */

typedef lj_json_at where; /* the manifest path and the section ("config.", "weights[3].") */

static lorajit_status get_hash(const cJSON *o, const char *key, const where *w, uint64_t *out) {
    const char *hex = "";
    lorajit_status s = lj_json_string(w, o, key, LJ_JSON_REQUIRED, &hex);
    if (s) return s;
    char *end;
    unsigned long long h = strtoull(hex, &end, 16);
    if (strlen(hex) != 16 || *end)
        return lj_fail(w->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" is \"%s\"; expected 16 hex digits", w->path,
                       w->prefix, key, hex);
    *out = h;
    return LORAJIT_OK;
}

/* A SHA-256 field: 64 lowercase hex digits, into out. */
static lorajit_status get_digest(const cJSON *o, const char *key, const where *w, char out[LJ_SHA256_HEX]) {
    const char *hex = "";
    lorajit_status s = lj_json_string(w, o, key, LJ_JSON_REQUIRED, &hex);
    if (s) return s;
    if (strlen(hex) != LJ_SHA256_HEX - 1 || strspn(hex, "0123456789abcdef") != LJ_SHA256_HEX - 1)
        return lj_fail(w->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" is not a SHA-256 (64 lowercase hex digits)",
                       w->path, w->prefix, key);
    memcpy(out, hex, LJ_SHA256_HEX);
    return LORAJIT_OK;
}

/* config.model_type (absent, as in manifests before it: llama) into c->arch. */
static lorajit_status read_arch(const cJSON *o, const where *w, lj_config *c) {
    const char *type = NULL;
    lorajit_status s = lj_json_string(w, o, "model_type", LJ_JSON_OPTIONAL, &type);
    if (s) return s;
    if ((c->arch = lj_arch_find(type)) < 0) {
        char supported[256];
        lj_arch_list(supported, sizeof supported);
        return lj_fail(w->err, LORAJIT_E_UNSUPPORTED, "%s: field \"config.model_type\" is \"%s\"; supported "
                       "model types: %s", w->path, type, supported);
    }
    return LORAJIT_OK;
}

/* The config section: the architecture, LJ_CONFIG_FIELDS (every one required) and
 * the architecture's bias booleans (required) into *c. */
static lorajit_status read_config(const cJSON *o, const where *w, lj_config *c) {
    lorajit_status s = read_arch(o, w, c);
    if (s) return s;
    s = lj_config_fields_read(w, o, true, c);
    const lj_arch *arch = lj_arch_get(c->arch);
    c->bias_mask = arch->bias_fixed;
    for (int i = 0; !s && i < arch->n_biases; i++) {
        bool on = false;
        if (!(s = lj_json_bool(w, o, arch->biases[i].field, LJ_JSON_REQUIRED, &on)) && on)
            c->bias_mask |= arch->biases[i].mask;
    }
    if (!s && !cJSON_GetObjectItemCaseSensitive(o, "rope_scaling"))
        return lj_fail(w->err, LORAJIT_E_FORMAT, "%s: field \"config.rope_scaling\" is missing", w->path);
    if (!s && c->head_size % 2 == 0) s = lj_rope_read(w, o, c); /* rope.c, as from config.json */
    return s;
}

static lorajit_status read_schema(const cJSON *o, const lj_config *cfg, const where *w, lj_schema *sc) {
    int64_t r, slots, tokens, seq, batch;
    lorajit_status s;
    const unsigned REQ = LJ_JSON_REQUIRED;
    if ((s = lj_json_int(w, o, "max_rank", REQ, 1, 1024, &r)) ||
        (s = lj_json_int(w, o, "max_adapters", REQ, 1, LJ_MAX_SLOTS - 1, &slots)) ||
        (s = lj_json_int(w, o, "max_seq_len", REQ, 1, lj_schema_max_positions(cfg), &seq)) ||
        (s = lj_json_int(w, o, "max_tokens", REQ, 1, seq, &tokens)) ||
        (s = lj_json_int(w, o, "max_batch", REQ, 1, LJ_MAX_SLOTS - 1, &batch)))
        return s;
    const char **mods;
    int n_mods;
    if ((s = lj_json_strings(w, o, "target_modules", REQ, &mods, &n_mods))) return s;
    unsigned mask = 0;
    for (int i = 0; i < n_mods && !s; i++) {
        int id = lj_arch_module_find(lj_arch_get(cfg->arch), mods[i]);
        if (id < 0)
            s = lj_fail(w->err, LORAJIT_E_FORMAT, "%s: field \"schema.target_modules\" holds an unknown module",
                        w->path);
        else mask |= 1u << id;
    }
    free(mods);
    if (s) return s;
    /* absent: f32, what every artifact before the field holds */
    int kv_dtype = LJ_DTYPE_F32, lora_dtype = LJ_DTYPE_F32;
    if ((s = lj_json_dtype(w, o, "kv_dtype", &kv_dtype)) || (s = lj_json_dtype(w, o, "lora_dtype", &lora_dtype)))
        return s;
    *sc = (lj_schema){.r_max = (int)r, .target_mask = mask, .n_slots = (int)slots, .max_tokens = tokens,
                      .seq_len = seq, .max_batch = (int)batch, .kv_block_size = LJ_KV_BLOCK_DEFAULT,
                      .kv_dtype = kv_dtype, .lora_dtype = lora_dtype};
    return LORAJIT_OK; /* the KV cache fields are the opener's (lj_schema_kv) */
}

static lorajit_status read_weights(const cJSON *arr, const where *top, lj_layout *L) {
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > MANIFEST_MAX_WEIGHTS)
        return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: field \"weights\" lists %d tensors", top->path, n);
    if (!(L->weights = lj_calloc((size_t)n, sizeof *L->weights)))
        return lj_fail(top->err, LORAJIT_E_NOMEM, "%s: out of memory", top->path);
    L->n_weights = n;
    for (int i = 0; i < n; i++) {
        char section[48];
        snprintf(section, sizeof section, "weights[%d].", i);
        where w = {top->path, section, top->err};
        const cJSON *o = cJSON_GetArrayItem(arr, i), *shape = NULL;
        const char *name = "", *dtype = "";
        lorajit_status s = LORAJIT_OK;
        if (!cJSON_IsObject(o))
            return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: %s is not an object", top->path, section);
        if ((s = lj_json_string(&w, o, "name", LJ_JSON_REQUIRED, &name)) ||
            (s = lj_json_string(&w, o, "dtype", LJ_JSON_REQUIRED, &dtype)) ||
            (s = lj_json_array(&w, o, "shape", LJ_JSON_REQUIRED, &shape)))
            return s;
        int nd = cJSON_GetArraySize(shape);
        int64_t dims[2] = {0, 0};
        for (int k = 0; k < nd && k < 2; k++) {
            char dim[64];
            snprintf(dim, sizeof dim, "%sshape[%d]", section, k);
            where wd = {top->path, dim, top->err};
            if ((s = lj_json_int(&wd, cJSON_GetArrayItem(shape, k), NULL, LJ_JSON_REQUIRED, 1, MANIFEST_MAX_SIZE,
                                 &dims[k])))
                return s;
        }
        int dt = -1;
        for (int k = LJ_DTYPE_F32; k <= LJ_DTYPE_BF16; k++)
            if (!strcmp(dtype, st_dtype_name(lj_dtype_st(k)))) dt = k;
        if (nd < 1 || nd > 2 || !name[0] || dt < 0 || (dt != LJ_DTYPE_F32 && nd != 2))
            return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: %s tensor \"%s\": want a name, dtype \"F32\" (or "
                           "\"F16\" / \"BF16\" for a matrix) and a shape of 1 or 2 positive sizes", top->path,
                           section, name);
        if (!(L->weights[i].name = lj_strdup(name))) return lj_fail(top->err, LORAJIT_E_NOMEM, "out of memory");
        L->weights[i].rows = dims[0];
        L->weights[i].cols = dims[1];
        L->weights[i].dtype = dt;
    }
    return LORAJIT_OK;
}

/* Weight id of the nn.Linear of (layer, module), or -1. */
static int linear_weight(const lj_layout *L, int layer, int module) {
    char name[320];
    int n = lj_arch_module_path(lj_arch_get(L->cfg.arch), layer, module, name, sizeof name);
    if (n < 0 || (size_t)n + sizeof ".weight" > sizeof name) return -1;
    memcpy(name + n, ".weight", sizeof ".weight");
    for (int i = 0; i < L->n_weights; i++)
        if (strcmp(L->weights[i].name, name) == 0) return i;
    return -1;
}

/* Sites: one per (layer, targeted module) in that order, each the shape of its linear. */
static lorajit_status read_sites(const cJSON *arr, const where *top, lj_layout *L) {
    const lj_schema *sc = &L->schema;
    int n = cJSON_GetArraySize(arr), per_layer = __builtin_popcount(sc->target_mask);
    if ((int64_t)n != L->cfg.n_layers * per_layer)
        return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: field \"lora_sites\" lists %d sites; the schema needs %lld",
                       top->path, n, (long long)(L->cfg.n_layers * per_layer));
    if (n > 0 && !(L->sites = lj_calloc((size_t)n, sizeof *L->sites)))
        return lj_fail(top->err, LORAJIT_E_NOMEM, "%s: out of memory", top->path);
    L->n_sites = n;
    for (int i = 0; i < n; i++) {
        char section[48];
        snprintf(section, sizeof section, "lora_sites[%d].", i);
        where w = {top->path, section, top->err};
        const cJSON *o = cJSON_GetArrayItem(arr, i);
        int64_t layer, in, out;
        const char *module = "";
        lorajit_status s;
        if (!cJSON_IsObject(o))
            return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: %s is not an object", top->path, section);
        const unsigned REQ = LJ_JSON_REQUIRED;
        if ((s = lj_json_int(&w, o, "layer", REQ, 0, L->cfg.n_layers - 1, &layer)) ||
            (s = lj_json_string(&w, o, "module", REQ, &module)) ||
            (s = lj_json_int(&w, o, "in", REQ, 1, MANIFEST_MAX_SIZE, &in)) ||
            (s = lj_json_int(&w, o, "out", REQ, 1, MANIFEST_MAX_SIZE, &out)))
            return s;
        const lj_arch *arch = lj_arch_get(L->cfg.arch);
        int mod = lj_arch_module_find(arch, module), k = 0, want_mod = -1;
        for (int m = 0; m < arch->n_modules; m++) /* the (i % per_layer)-th targeted module */
            if (sc->target_mask & (1u << m) && k++ == i % per_layer) want_mod = m;
        int wid = mod >= 0 ? linear_weight(L, (int)layer, mod) : -1;
        if (layer != i / per_layer || mod != want_mod || wid < 0 || L->weights[wid].rows != out ||
            L->weights[wid].cols != in)
            return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: %s (layer %lld, %s, in %lld, out %lld) does not match "
                           "the schema and weights", top->path, section, (long long)layer, module, (long long)in,
                           (long long)out);
        L->sites[i] = (lj_site_desc){.layer = (int)layer, .module = mod, .in = in, .out = out};
    }
    return lj_layout_site_paths(L, top->err);
}

/* Checks the seal against the rest of root. */
static lorajit_status check_seal(cJSON *root, const char *path, lj_err *err) {
    cJSON *h = cJSON_DetachItemFromObjectCaseSensitive(root, SEAL_KEY);
    char want[LJ_SHA256_HEX];
    lorajit_status s = cJSON_IsString(h) ? seal_of(root, want, path, err)
                                         : lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"" SEAL_KEY "\" is missing "
                                                   "(an artifact of an older lorajit? compile it again)", path);
    if (!s && strcmp(want, h->valuestring) != 0)
        s = lj_fail(err, LORAJIT_E_FORMAT, "%s: the content does not match its \"" SEAL_KEY "\": the manifest "
                    "was edited or is corrupt (compile the artifact again)", path);
    cJSON_Delete(h);
    return s;
}

/* Copies string field key of o into out[cap]. */
static lorajit_status get_str_into(const cJSON *o, const char *key, const where *w, char *out, size_t cap) {
    const char *v = "";
    lorajit_status s = lj_json_string(w, o, key, LJ_JSON_REQUIRED, &v);
    if (s) return s;
    if (strlen(v) >= cap)
        return lj_fail(w->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" is too long", w->path, w->prefix, key);
    strcpy(out, v);
    return LORAJIT_OK;
}

static lorajit_status read_all(cJSON *root, const char *path, lj_manifest *m, lj_err *err) {
    where top = {path, "", err}, cw = {path, "config.", err}, sw = {path, "schema.", err},
          tw = {path, "target.", err}, xw = {path, "scratch_floats.", err};
    const char *format = "", *library = "", *features = "";
    int64_t abi;
    lorajit_status s = LORAJIT_OK;
    if ((s = lj_json_string(&top, root, "format", LJ_JSON_REQUIRED, &format))) return s;
    if (strcmp(format, MANIFEST_FORMAT) != 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"format\" is \"%s\", not \"" MANIFEST_FORMAT "\"", path,
                       format);
    if ((s = check_seal(root, path, err))) return s;
    if ((s = lj_json_int(&top, root, "abi_version", LJ_JSON_REQUIRED, 0, INT32_MAX, &abi))) return s;
    if (abi != LJ_ABI_VERSION)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: the artifact has ABI version %lld; this runtime reads "
                       "version %d (compile the artifact again with this lorajit)", path, (long long)abi, LJ_ABI_VERSION);
    m->abi_version = (int)abi;
    if ((s = lj_json_string(&top, root, "library", LJ_JSON_REQUIRED, &library))) return s;
    if (strcmp(library, LJ_ARTIFACT_LIBRARY) != 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"library\" is \"%s\", not \"" LJ_ARTIFACT_LIBRARY "\"",
                       path, library);
    const cJSON *cfg = NULL, *sc = NULL, *tgt = NULL, *scr = NULL, *ws = NULL, *sites = NULL;
    const unsigned REQ = LJ_JSON_REQUIRED;
    if ((s = lj_json_object(&top, root, "config", REQ, &cfg)) || (s = lj_json_object(&top, root, "schema", REQ, &sc)) ||
        (s = lj_json_object(&top, root, "target", REQ, &tgt)) ||
        (s = lj_json_object(&top, root, "scratch_floats", REQ, &scr)) ||
        (s = lj_json_array(&top, root, "weights", REQ, &ws)) || (s = lj_json_array(&top, root, "lora_sites", REQ, &sites)))
        return s;
    if ((s = get_str_into(tgt, "triple", &tw, m->triple, sizeof m->triple)) ||
        (s = get_str_into(tgt, "cpu", &tw, m->cpu, sizeof m->cpu)) ||
        (s = lj_json_string(&tw, tgt, "features", REQ, &features)))
        return s;
    if (!(m->features = lj_strdup(features))) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    if ((s = get_digest(root, "ir_sha256", &top, m->ir_sha256)) || (s = get_hash(root, "code_hash", &top, &m->code_hash)) ||
        (s = get_digest(root, "library_sha256", &top, m->library_sha256)))
        return s;
    lj_layout *L = m->L = lj_layout_new();
    if (!L) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    if ((s = read_config(cfg, &cw, &L->cfg)) || (s = read_schema(sc, &L->cfg, &sw, &L->schema)) ||
        (s = lj_json_int(&xw, scr, "per_token", REQ, 0, MANIFEST_MAX_SIZE, &L->scratch_per_token)) ||
        (s = lj_json_int(&xw, scr, "fixed", REQ, 0, MANIFEST_MAX_SIZE, &L->scratch_fixed)) ||
        (s = read_weights(ws, &top, L)) || (s = read_sites(sites, &top, L)))
        return s;
    return LORAJIT_OK;
}

/* Reads root into *m after a parse that gave s; deletes root (owned here) and
 * clears *m on failure. */
static lorajit_status manifest_from(cJSON *root, lorajit_status s, const char *path, lj_manifest *m, lj_err *err) {
    if (!s) s = read_all(root, path, m, err);
    cJSON_Delete(root);
    if (s) lj_manifest_clear(m);
    return s;
}

lorajit_status lj_manifest_parse(const char *text, size_t len, const char *path, lj_manifest *m, lj_err *err) {
    memset(m, 0, sizeof *m);
    cJSON *root = NULL;
    lorajit_status s = lj_json_parse_object(text, len, path, &root, err);
    return manifest_from(root, s, path, m, err);
}

lorajit_status lj_manifest_read(const char *dir, lj_manifest *m, lj_err *err) {
    memset(m, 0, sizeof *m);
    char path[4096];
    cJSON *root = NULL;
    lorajit_status s = lj_path_join(path, sizeof path, dir, LJ_ARTIFACT_MANIFEST, err);
    if (!s) s = lj_json_read(path, LJ_JSON_MAX_MANIFEST, &root, err);
    return manifest_from(root, s, path, m, err);
}

void lj_manifest_clear(lj_manifest *m) {
    if (!m) return;
    lj_layout_free(m->L);
    free(m->features);
    memset(m, 0, sizeof *m);
}
