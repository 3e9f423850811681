/* peft.c — PEFT LoRA adapter folders: adapter_config.json + adapter_model.safetensors.
 *
 * peft_config_parse reads the LoraConfig fields that change results (r, lora_alpha,
 * use_rslora, target_modules, exclude_modules, rank_pattern, alpha_pattern,
 * layers_to_transform) and refuses, naming the field, what lorajit cannot serve or an
 * absurd alpha. Module paths and names come from the architecture table (arch.c).
 * peft_adapter_read resolves the targeted (layer, module) pairs, checks every tensor
 * of the file against the layout and returns an image whose A/B (every value checked
 * finite) point into the mapping (aligned F32) or into one owned f32 buffer. Nothing
 * shared is written here: the registry commits an image with lj_slots_write (slots.c). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats.h"

#define PEFT_CONFIG_FILE "adapter_config.json"
#define PEFT_WEIGHTS_FILE "adapter_model.safetensors"
#define PEFT_TENSOR_PREFIX "base_model.model." /* PEFT's wrapper before a module path */

/* ---- small JSON helpers ---- */

static bool json_is_empty(const cJSON *j) {
    return !j || cJSON_IsNull(j) || ((cJSON_IsArray(j) || cJSON_IsObject(j)) && !j->child);
}

#define PEFT_MAX_PATTERNS 4096      /* entries of rank_pattern / alpha_pattern */
#define PEFT_PATTERN_TEXT_MAX 65536 /* characters of all the keys of one of them */
/* Bound on |lora_alpha| and every alpha_pattern value, hence on every scale (alpha/r
 * and alpha/sqrt(r) with r >= 1). PEFT takes any float, but the scale multiplies the
 * adapter's output in f32 before it is added to the base output: past 2^24 (f32's
 * significand) an adapter output of order 1 leaves no bit of a base output of order 1,
 * so the result is no longer base + low-rank change, and 1e39 is Inf in f32 (every
 * logit became 0). Real adapters use alpha 1..1024 (scales 0.01..64). */
#define PEFT_MAX_ALPHA 16777216.0

/* field (prefix + key) holds alpha: refused past PEFT_MAX_ALPHA, naming the field. */
static lorajit_status alpha_check(const lj_json_at *at, const char *key, double alpha) {
    if (fabs(alpha) <= PEFT_MAX_ALPHA) return LORAJIT_OK;
    return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s%s\" is %g; |alpha| must be at most "
                   "2^24 = %.0f (the scale alpha/r multiplies the adapter's output in f32)", at->path,
                   at->prefix ? at->prefix : "", key, alpha, PEFT_MAX_ALPHA);
}

/* ---- module selectors and patterns ---- */

/* path == name, or path ends with "." + name (PEFT's key.endswith(f".{target}")). */
static bool suffix_match(const char *path, const char *name) {
    size_t lp = strlen(path), ln = strlen(name);
    if (ln == 0 || ln > lp || strcmp(path + lp - ln, name) != 0) return false;
    return ln == lp || path[lp - ln - 1] == '.';
}

static bool match_path(const peft_match *m, const char *path) {
    if (m->re) return lj_regex_match(m->re, path);
    for (int i = 0; i < m->n; i++)
        if (suffix_match(path, m->names[i])) return true;
    return false;
}

static void match_free(peft_match *m) {
    lj_regex_free(m->re);
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    memset(m, 0, sizeof *m);
}

static lorajit_status match_set_names(peft_match *m, const char *const *names, int n,
                                      const char *path, lj_err *err) {
    m->names = lj_calloc((size_t)n + 1, sizeof *m->names);
    if (!m->names) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    for (; m->n < n; m->n++) {
        m->names[m->n] = lj_strdup(names[m->n]);
        if (!m->names[m->n]) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    }
    return LORAJIT_OK;
}

/* target_modules / exclude_modules: null, a regex string, or a list of names. On
 * failure *m may hold part of the result; the caller frees it. */
static lorajit_status match_parse(const lj_json_at *at, const cJSON *root, const char *field,
                                  peft_match *m) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (cJSON_IsString(j)) return lj_regex_compile("", j->valuestring, at->path, field, &m->re, at->err);
    if (!cJSON_IsArray(j))
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be a string or a list of strings",
                       at->path, field);
    const char **names;
    int n;
    lorajit_status st = lj_json_strings(at, root, field, LJ_JSON_REQUIRED, &names, &n);
    if (st) return st;
    st = match_set_names(m, names, n, at->path, at->err);
    free(names);
    return st;
}

/* The names of arch's modules in mask, as a selector list. */
static lorajit_status match_set_mask(peft_match *m, const lj_arch *arch, unsigned mask, const char *path,
                                     lj_err *err) {
    const char *names[32];
    int n = 0;
    for (int k = 0; k < arch->n_modules; k++)
        if (mask & (1u << k)) names[n++] = arch->modules[k].name;
    return match_set_names(m, names, n, path, err);
}

/* target_modules: every name must end in one of arch's modules; a regex must not
 * select a module outside the layers (lm_head, embed_tokens: LoRA there is not served). */
static lorajit_status targets_parse(const lj_json_at *at, const cJSON *root, const lj_arch *arch, peft_match *m) {
    const char *path = at->path;
    lj_err *err = at->err;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (!j || cJSON_IsNull(j)) return match_set_mask(m, arch, arch->peft_default_targets, path, err);
    if (cJSON_IsString(j) && strcmp(j->valuestring, "all-linear") == 0)
        return match_set_mask(m, arch, lj_arch_all_modules(arch), path, err);
    lorajit_status st = match_parse(at, root, "target_modules", m);
    if (st) return st;
    char names[256];
    lj_arch_module_names(arch, lj_arch_all_modules(arch), names, sizeof names);
    if (m->re) {
        for (const char *const *o = arch->outside; *o; o++)
            if (lj_regex_match(m->re, *o))
                return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                               "%s: field \"target_modules\" selects \"%s\"; lorajit serves LoRA on "
                               "the modules of a %s layer only (%s)", path, *o, arch->model_type, names);
        return LORAJIT_OK;
    }
    if (m->n == 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"target_modules\" is empty", path);
    for (int i = 0; i < m->n; i++) {
        const char *dot = strrchr(m->names[i], '.');
        const char *last = dot ? dot + 1 : m->names[i];
        if (lj_arch_module_find(arch, last) < 0)
            return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                           "%s: field \"target_modules\" names \"%s\", which is not a module of a %s "
                           "layer (%s)", path, m->names[i], arch->model_type, names);
    }
    return LORAJIT_OK;
}

/* rank_pattern / alpha_pattern: {KEY: number}. */
static lorajit_status patterns_parse(const lj_json_at *top, const cJSON *root, const char *field,
                                     bool is_rank, peft_pattern **out, int *n_out) {
    const char *path = top->path;
    lj_err *err = top->err;
    const cJSON *j = NULL, *it;
    lorajit_status st = lj_json_object(top, root, field, LJ_JSON_OPTIONAL, &j);
    if (st || !j) return st;
    int n = cJSON_GetArraySize(j);
    size_t text = 0;
    cJSON_ArrayForEach(it, j) text += strlen(it->string);
    if (n > PEFT_MAX_PATTERNS || text > PEFT_PATTERN_TEXT_MAX)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" has %d keys of %zu characters in "
                       "all; at most %d keys and %d characters", path, field, n, text,
                       PEFT_MAX_PATTERNS, PEFT_PATTERN_TEXT_MAX);
    peft_pattern *p = lj_calloc((size_t)n + 1, sizeof *p);
    if (!p) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    *out = p;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", field);
    lj_json_at at = {path, prefix, err};
    cJSON_ArrayForEach(it, j) {
        int64_t rank = 0;
        if (is_rank ? (st = lj_json_int(&at, it, NULL, LJ_JSON_REQUIRED, 1, 1 << 20, &rank))
                    : (st = lj_json_number(&at, it, NULL, LJ_JSON_REQUIRED, &p[*n_out].value)) ||
                      (st = alpha_check(&at, it->string, p[*n_out].value)))
            return st;
        if (is_rank) p[*n_out].value = (double)rank;
        p[*n_out].key = lj_strdup(it->string);
        if (!p[*n_out].key) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
        (*n_out)++;
        st = lj_regex_compile("(.*\\.)?", it->string, path, field, &p[*n_out - 1].re, err);
        if (st) return st;
    }
    return LORAJIT_OK;
}

/* First entry whose key matches path. Borrowed; valid until peft_config_free(). */
static const peft_pattern *pattern_find(const peft_pattern *p, int n, const char *path) {
    for (int i = 0; i < n; i++)
        if (lj_regex_match(p[i].re, path)) return &p[i];
    return NULL;
}

/* layers_to_transform: null, an int or a list of ints (an empty list means all). */
static lorajit_status layers_parse(const lj_json_at *top, const cJSON *root, peft_config *c) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "layers_to_transform");
    if (json_is_empty(j)) return LORAJIT_OK;
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 1;
    c->layers = lj_calloc((size_t)n, sizeof *c->layers);
    if (!c->layers) return lj_fail(top->err, LORAJIT_E_NOMEM, "%s: out of memory", top->path);
    const cJSON *it = cJSON_IsArray(j) ? j->child : j;
    for (; it && c->n_layers < n; it = it->next) {
        char name[64];
        int64_t layer = 0;
        snprintf(name, sizeof name, cJSON_IsArray(j) ? "layers_to_transform[%d]" : "layers_to_transform",
                 c->n_layers);
        lj_json_at at = {top->path, name, top->err};
        lorajit_status st = lj_json_int(&at, it, NULL, LJ_JSON_REQUIRED, 0, 1 << 30, &layer);
        if (st) return st;
        c->layers[c->n_layers++] = (int)layer;
    }
    return LORAJIT_OK;
}

/* Fields whose non-default values change what PEFT computes and lorajit cannot serve. */
static lorajit_status refusals(const lj_json_at *at, const cJSON *root, const lj_arch *arch) {
    static const struct { const char *field, *what; } flags[] = {
        {"use_dora", "DoRA adapters are not supported"},
        {"fan_in_fan_out", "transposed (Conv1D-style) weights are not supported"},
        {"lora_bias", "LoRA biases are not supported"},
        {"use_qalora", "QA-LoRA is not supported"},
    };
    static const char *const must_be_empty[] = {"modules_to_save", "layer_replication",
                                                "trainable_token_indices", "target_parameters",
                                                "alora_invocation_tokens"};
    const char *path = at->path;
    lj_err *err = at->err;
    lorajit_status st;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        bool on = false;
        if ((st = lj_json_bool(at, root, flags[i].field, LJ_JSON_OPTIONAL, &on))) return st;
        if (on)
            return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" is true: %s", path,
                           flags[i].field, flags[i].what);
    }
    for (size_t i = 0; i < sizeof must_be_empty / sizeof must_be_empty[0]; i++)
        if (!json_is_empty(cJSON_GetObjectItemCaseSensitive(root, must_be_empty[i])))
            return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                           "%s: field \"%s\" is set; lorajit serves plain LoRA only (it must be "
                           "null or empty)", path, must_be_empty[i]);
    const char *bias = "none";
    if ((st = lj_json_string(at, root, "bias", LJ_JSON_OPTIONAL, &bias))) return st;
    if (strcmp(bias, "none") != 0)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"bias\" is \"%s\"; only \"none\" is supported",
                       path, bias);
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "layers_pattern");
    if (cJSON_IsArray(lp) && cJSON_GetArraySize(lp) == 1) lp = lp->child;
    const char *layers = lj_arch_layers_pattern(arch);
    if (!json_is_empty(lp) && !(cJSON_IsString(lp) && !strcmp(lp->valuestring, layers)))
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"layers_pattern\" must be null, \"%s\" or [\"%s\"] for a "
                       "%s model", path, layers, layers, arch->model_type);
    return LORAJIT_OK;
}

/* Reads the adapter_config.json object root (borrowed) into *cfg, which is
 * written only on success; on failure nothing is left to free. */
static lorajit_status config_from_json(const cJSON *root, const char *path, const lj_arch *arch,
                                       peft_config *cfg, lj_err *err) {
    peft_config c = {0};
    lj_json_at at = {path, "", err};
    const char *type = NULL;
    int64_t r = 0;
    lorajit_status st = lj_json_string(&at, root, "peft_type", LJ_JSON_REQUIRED, &type);
    if (st) goto fail;
    if (strcmp(type, "LORA") != 0) {
        st = lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"peft_type\" is \"%s\"; only \"LORA\" "
                     "adapters are supported", path, type);
        goto fail;
    }
    if ((st = refusals(&at, root, arch))) goto fail;
    if ((st = lj_json_int(&at, root, "r", LJ_JSON_REQUIRED, 1, 1 << 20, &r))) goto fail;
    c.r = (int)r;
    if ((st = lj_json_number(&at, root, "lora_alpha", LJ_JSON_REQUIRED, &c.alpha)) ||
        (st = alpha_check(&at, "lora_alpha", c.alpha)))
        goto fail;
    if ((st = lj_json_bool(&at, root, "use_rslora", LJ_JSON_OPTIONAL, &c.use_rslora))) goto fail;
    if ((st = targets_parse(&at, root, arch, &c.targets))) goto fail;
    if (!json_is_empty(cJSON_GetObjectItemCaseSensitive(root, "exclude_modules")) &&
        (st = match_parse(&at, root, "exclude_modules", &c.excludes)))
        goto fail;
    if ((st = patterns_parse(&at, root, "rank_pattern", true, &c.rank_pattern, &c.n_rank_pattern)))
        goto fail;
    if ((st = patterns_parse(&at, root, "alpha_pattern", false, &c.alpha_pattern, &c.n_alpha_pattern)))
        goto fail;
    if ((st = layers_parse(&at, root, &c))) goto fail;
    if (c.targets.re && c.n_layers > 0) { /* PEFT's LoraConfig raises the same */
        st = lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"layers_to_transform\" cannot be used when "
                     "\"target_modules\" is a regex string", path);
        goto fail;
    }
    *cfg = c;
    return LORAJIT_OK;
fail:
    peft_config_free(&c);
    return st;
}

lorajit_status peft_config_parse(const char *text, size_t len, const char *path, const lj_arch *arch,
                                 peft_config *cfg, lj_err *err) {
    cJSON *root = NULL;
    lorajit_status st = lj_json_parse_object(text, len, path, &root, err);
    if (!st) st = config_from_json(root, path, arch, cfg, err);
    cJSON_Delete(root);
    return st;
}

void peft_config_free(peft_config *cfg) {
    if (!cfg) return;
    match_free(&cfg->targets);
    match_free(&cfg->excludes);
    for (int i = 0; i < cfg->n_rank_pattern; i++) {
        free(cfg->rank_pattern[i].key);
        lj_regex_free(cfg->rank_pattern[i].re);
    }
    for (int i = 0; i < cfg->n_alpha_pattern; i++) {
        free(cfg->alpha_pattern[i].key);
        lj_regex_free(cfg->alpha_pattern[i].re);
    }
    free(cfg->rank_pattern);
    free(cfg->alpha_pattern);
    free(cfg->layers);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- the adapter image ---- */

/* What the config asks of one (layer, module) of the model. */
typedef struct peft_target {
    bool on;
    int site;
    int rank;
    float scale;
    const st_tensor *a, *b; /* found in the file */
} peft_target;

/* Parses PEFT_TENSOR_PREFIX "<module path of arch>.lora_{A,B}.weight". */
static bool tensor_name_parse(const lj_arch *arch, const char *name, int *layer, int *module, bool *is_b) {
    static const char tail_a[] = ".lora_A.weight", tail_b[] = ".lora_B.weight";
    size_t lp = strlen(PEFT_TENSOR_PREFIX), ln = strlen(name), lt = sizeof tail_a - 1;
    char path[256];
    if (ln <= lp + lt || ln - lp - lt >= sizeof path || strncmp(name, PEFT_TENSOR_PREFIX, lp) != 0) return false;
    const char *tail = name + ln - lt;
    if (strcmp(tail, tail_a) != 0 && strcmp(tail, tail_b) != 0) return false;
    memcpy(path, name + lp, ln - lp - lt);
    path[ln - lp - lt] = '\0';
    *is_b = strcmp(tail, tail_b) == 0;
    return lj_arch_path_parse(arch, path, layer, module);
}

static lorajit_status must_exist(const char *path, lj_err *err) {
    struct stat sb;
    if (stat(path, &sb) == 0) return LORAJIT_OK;
    if (errno == ENOENT)
        return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: no such file (a PEFT adapter folder holds "
                       PEFT_CONFIG_FILE " and " PEFT_WEIGHTS_FILE ")", path);
    return lj_fail(err, LORAJIT_E_IO, "%s: %s", path, strerror(errno));
}

/* Which pairs the config targets, with rank, scale and layout site of each. */
static lorajit_status targets_resolve(const peft_config *c, const lj_layout *L, const char *path,
                                      peft_target *tg, int *n_on, lj_err *err) {
    int n_layers = (int)L->cfg.n_layers;
    const lj_arch *arch = lj_arch_get(L->cfg.arch);
    int n_mod = arch->n_modules;
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] >= n_layers)
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"layers_to_transform\" names layer %d; "
                           "the model has %d layers", path, c->layers[i], n_layers);
    for (int l = 0; l < n_layers; l++) {
        bool layer_on = c->n_layers == 0;
        for (int i = 0; i < c->n_layers; i++) layer_on |= c->layers[i] == l;
        for (int m = 0; m < n_mod; m++) {
            char mp[256];
            lj_arch_module_path(arch, l, m, mp, sizeof mp);
            peft_target *t = &tg[l * n_mod + m];
            if (!layer_on || !match_path(&c->targets, mp) || match_path(&c->excludes, mp)) continue;
            t->on = true;
            t->site = lj_layout_site(L, l, m);
            if (t->site < 0) {
                char have[256];
                lj_arch_module_names(arch, L->schema.target_mask, have, sizeof have);
                return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: adapter targets %s but the "
                               "engine's schema lacks %s (schema target_modules: %s)", path, mp,
                               lj_arch_module_name(arch, m), have);
            }
            const peft_pattern *rp = pattern_find(c->rank_pattern, c->n_rank_pattern, mp);
            const peft_pattern *ap = pattern_find(c->alpha_pattern, c->n_alpha_pattern, mp);
            t->rank = rp ? (int)rp->value : c->r;
            double alpha = ap ? ap->value : c->alpha;
            if (t->rank > L->schema.r_max)
                return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: %s has rank %d%s, above the "
                               "schema's max_rank %d", path, mp, t->rank,
                               rp ? " (rank_pattern)" : "", L->schema.r_max);
            t->scale = (float)(c->use_rslora ? alpha / sqrt((double)t->rank) : alpha / t->rank);
            (*n_on)++;
        }
    }
    if (*n_on == 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"target_modules\" (with "
                       "layers_to_transform / exclude_modules) selects no module of the model", path);
    return LORAJIT_OK;
}

/* Binds every file tensor to a target, then checks each target has A and B of the
 * right shape and a convertible dtype. */
static lorajit_status tensors_check(const st_file *f, const lj_layout *L, peft_target *tg,
                                    lj_err *err) {
    int n_layers = (int)L->cfg.n_layers;
    const lj_arch *arch = lj_arch_get(L->cfg.arch);
    int n_mod = arch->n_modules;
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        int layer, m;
        bool is_b;
        if (!tensor_name_parse(arch, t->name, &layer, &m, &is_b))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: unexpected tensor '%s' (not a lora_A/lora_B "
                           "weight of a %s module)", f->path, t->name, arch->model_type);
        if (layer >= n_layers || !tg[layer * n_mod + m].on)
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: unexpected tensor '%s' (%s)", f->path,
                           t->name, layer >= n_layers ? "layer out of range of the model"
                           : "its module is not targeted by " PEFT_CONFIG_FILE);
        *(is_b ? &tg[layer * n_mod + m].b : &tg[layer * n_mod + m].a) = t;
    }
    for (int l = 0; l < n_layers; l++)
        for (int m = 0; m < n_mod; m++) {
            peft_target *t = &tg[l * n_mod + m];
            if (!t->on) continue;
            const lj_site_desc *sd = &L->sites[t->site];
            for (int b = 0; b < 2; b++) {
                const st_tensor *x = b ? t->b : t->a;
                int64_t rows = b ? sd->out : t->rank, cols = b ? t->rank : sd->in;
                bool shape_ok = x && x->ndim == 2 && x->shape[0] == rows && x->shape[1] == cols;
                if (shape_ok && (x->dtype == ST_F32 || x->dtype == ST_F16 || x->dtype == ST_BF16)) continue;
                char name[320]; /* for the message only */
                snprintf(name, sizeof name, PEFT_TENSOR_PREFIX "%s.lora_%c.weight", sd->path,
                         b ? 'B' : 'A');
                if (!x)
                    return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: tensor '%s' is missing", f->path,
                                   name);
                if (!shape_ok) {
                    char have[160] = "[";
                    for (int d = 0; d < x->ndim; d++)
                        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld",
                                 d ? ", " : "", (long long)x->shape[d]);
                    return lj_fail(err, LORAJIT_E_SHAPE, "%s: tensor '%s' has shape %s], expected "
                                   "[%lld, %lld] (rank %d, %s)", f->path, name, have,
                                   (long long)rows, (long long)cols, t->rank,
                                   b ? "[out, rank]" : "[rank, in]");
                }
                return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: tensor '%s' has dtype %s; "
                               "F32, F16 or BF16 expected", f->path, name, st_dtype_name(x->dtype));
            }
        }
    return LORAJIT_OK;
}

static bool borrowable(const st_tensor *t) {
    return t->dtype == ST_F32 && ((uintptr_t)t->data % sizeof(float)) == 0;
}

static int site_cmp(const void *x, const void *y) {
    const peft_site_w *a = x, *b = y;
    return (a->site > b->site) - (a->site < b->site);
}

/* Fills ad->w from the targets: borrowed F32 pointers, else conversions into one
 * buffer, every value tested for NaN / Inf; convert false: raw pointers into the
 * mapping only, tested by the slot write (ad->unchecked). */
static lorajit_status image_build(const peft_target *tg, int n_tg, int n_on, const lj_layout *L,
                                  bool convert, peft_adapter *ad, lj_err *err) {
    size_t owned_floats = 0;
    ad->w = lj_calloc((size_t)n_on, sizeof *ad->w);
    if (!ad->w) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", ad->file->path);
    for (int i = 0; i < n_tg; i++) {
        if (!tg[i].on) continue;
        const lj_site_desc *sd = &L->sites[tg[i].site];
        size_t na = (size_t)tg[i].rank * (size_t)sd->in, nb = (size_t)sd->out * (size_t)tg[i].rank;
        if (convert) owned_floats += (borrowable(tg[i].a) ? 0 : na) + (borrowable(tg[i].b) ? 0 : nb);
        ad->bytes += (na + nb) * sizeof(float);
    }
    if (owned_floats && !(ad->owned = lj_malloc(owned_floats * sizeof(float))))
        return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory converting %zu values to f32",
                       ad->file->path, owned_floats);
    float *next = ad->owned;
    for (int i = 0; i < n_tg; i++) {
        if (!tg[i].on) continue;
        peft_site_w *w = &ad->w[ad->n++];
        const lj_site_desc *sd = &L->sites[tg[i].site];
        w->site = tg[i].site, w->rank = tg[i].rank, w->scale = tg[i].scale;
        for (int b = 0; b < 2; b++) {
            const st_tensor *x = b ? tg[i].b : tg[i].a;
            const void *raw = x->data;
            st_dtype dt = x->dtype;
            size_t cols = (size_t)(b ? tg[i].rank : sd->in), n = (size_t)tg[i].rank * (size_t)(b ? sd->out : sd->in);
            size_t k = n; /* a NaN would make every logit NaN */
            if (convert && !borrowable(x)) { /* the image holds f32: converted into owned, tested */
                k = st_convert_f32_finite(dt, raw, n, next);
                raw = next, dt = ST_F32, next += n;
            } else if (convert) {
                k = lj_nonfinite_find(raw, n);
            }
            if (k < n) return lj_nonfinite_fail(err, ad->file->path, x->name, ((const float *)raw)[k], k, cols);
            *(b ? &w->b_raw : &w->a_raw) = raw;
            *(b ? &w->b_name : &w->a_name) = x->name;
            *(b ? &w->b_dtype : &w->a_dtype) = dt;
            if (convert) *(b ? &w->b : &w->a) = raw;
        }
    }
    qsort(ad->w, (size_t)ad->n, sizeof *ad->w, site_cmp);
    ad->unchecked = !convert;
    return LORAJIT_OK;
}

static lorajit_status adapter_read(const char *dir, const lj_layout *L, bool convert, peft_adapter **out,
                                   lj_err *err) {
    char cfg_path[4096], st_path[4096];
    cJSON *root = NULL;
    peft_config c = {0};
    peft_target *tg = NULL;
    peft_adapter *ad = NULL;
    int n_tg = 0, n_on = 0;
    lorajit_status st;
    if (!dir || !L || !out) return lj_fail(err, LORAJIT_E_ARG, "peft_adapter_read: NULL argument");
    if ((st = lj_path_join(cfg_path, sizeof cfg_path, dir, PEFT_CONFIG_FILE, err))) goto fail;
    if ((st = lj_path_join(st_path, sizeof st_path, dir, PEFT_WEIGHTS_FILE, err))) goto fail;
    if ((st = must_exist(cfg_path, err))) goto fail;
    if ((st = lj_json_read(cfg_path, LJ_JSON_MAX_BYTES, &root, err))) goto fail;
    if ((st = config_from_json(root, cfg_path, lj_arch_get(L->cfg.arch), &c, err))) goto fail;
    n_tg = (int)L->cfg.n_layers * lj_arch_get(L->cfg.arch)->n_modules;
    tg = lj_calloc((size_t)n_tg + 1, sizeof *tg);
    ad = lj_calloc(1, sizeof *ad);
    if (!tg || !ad) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if ((st = targets_resolve(&c, L, cfg_path, tg, &n_on, err))) goto fail;
    if ((st = must_exist(st_path, err))) goto fail;
    if ((st = (convert ? st_open_whole : st_open_pread)(st_path, &ad->file, err))) goto fail;
    if ((st = tensors_check(ad->file, L, tg, err))) goto fail;
    if ((st = image_build(tg, n_tg, n_on, L, convert, ad, err))) goto fail;
    cJSON_Delete(root);
    free(tg);
    peft_config_free(&c);
    *out = ad;
    return LORAJIT_OK;
fail:
    cJSON_Delete(root);
    free(tg);
    peft_config_free(&c);
    peft_adapter_free(ad);
    return st;
}

lorajit_status peft_adapter_read(const char *dir, const lj_layout *L, peft_adapter **out, lj_err *err) {
    return adapter_read(dir, L, true, out, err);
}

lorajit_status peft_adapter_read_mapped(const char *dir, const lj_layout *L, peft_adapter **out,
                                        lj_err *err) {
    return adapter_read(dir, L, false, out, err);
}

void peft_adapter_free(peft_adapter *ad) {
    if (!ad) return;
    free(ad->w);
    free(ad->owned);
    st_close(ad->file);
    free(ad);
}

lorajit_status peft_adapter_detach(peft_adapter *ad, const lj_layout *L, lj_err *err) {
    if (!ad->file) return LORAJIT_OK;
    float *all = lj_malloc(ad->bytes ? ad->bytes : 1), *next = all;
    if (!all) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory copying %zu bytes", ad->file->path, ad->bytes);
    for (int pass = 0; pass < 2; pass++, next = all) /* 0: convert, test (failure: ad unchanged); 1: point at it */
        for (int i = 0; i < ad->n; i++) {
            peft_site_w *w = &ad->w[i];
            size_t in = (size_t)L->sites[w->site].in, na = (size_t)w->rank * in;
            size_t nb = (size_t)L->sites[w->site].out * (size_t)w->rank, ka = na, kb = nb;
            if (pass == 0 && !ad->unchecked) /* tested when it was read: a copy */
                st_convert_f32(w->a_dtype, w->a_raw, na, next), st_convert_f32(w->b_dtype, w->b_raw, nb, next + na);
            else if (pass == 0 && (ka = st_convert_f32_finite(w->a_dtype, w->a_raw, na, next)) == na)
                kb = st_convert_f32_finite(w->b_dtype, w->b_raw, nb, next + na); /* a mapped image has no a / b */
            if (ka < na || kb < nb) { /* only in an unchecked image */
                bool in_a = ka < na;
                lorajit_status st = lj_nonfinite_fail(err, ad->file->path, in_a ? w->a_name : w->b_name,
                                                      in_a ? next[ka] : next[na + kb], in_a ? ka : kb,
                                                      in_a ? in : (size_t)w->rank);
                free(all);
                return st;
            }
            if (pass == 1) {
                w->a = w->a_raw = next;
                w->b = w->b_raw = next + na;
                w->a_dtype = w->b_dtype = ST_F32;
            }
            next += na + nb;
        }
    free(ad->owned);
    ad->owned = all;
    st_close(ad->file);
    ad->file = NULL;
    ad->unchecked = false;
    return LORAJIT_OK;
}
