/* config.c — reads a Hugging Face config.json of a model in the architecture table.
 *
 * Input: the JSON text (user-supplied, so hostile until checked). Output: an
 * lj_config with llama2.c's dimension words, the architecture (arch.c) and its
 * defaults filled in. Every refusal names the file and the field: a model_type not
 * in the table, a rope_scaling rope.c refuses, another hidden_act, missing / non-integer /
 * non-positive / absurd sizes (the LJ_CONFIG_MAX_* bounds of formats.h, each
 * justified there), head counts that do not divide. The caps keep a hostile file
 * from making later stages allocate terabytes or compile for hours. The fields are
 * LJ_CONFIG_FIELDS, read through json.c's readers; the manifest uses the same list. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

/* Per-kind readers of the LJ_CONFIG_FIELDS expansion below. */
static lorajit_status read_INT(const lj_json_at *at, const cJSON *j, const char *key, unsigned need,
                               int64_t max, int64_t *out) {
    return lj_json_int(at, j, key, need | LJ_JSON_LIMIT, 1, max, out);
}
static lorajit_status read_INT0(const lj_json_at *at, const cJSON *j, const char *key, unsigned need,
                                int64_t max, int64_t *out) {
    return lj_json_int(at, j, key, need | LJ_JSON_LIMIT, 0, max, out);
}
static lorajit_status read_FLOAT(const lj_json_at *at, const cJSON *j, const char *key, unsigned need,
                                 int64_t max, float *out) {
    (void)max;
    return lj_json_float(at, j, key, need | LJ_JSON_POSITIVE, out);
}
static lorajit_status read_BOOL(const lj_json_at *at, const cJSON *j, const char *key, unsigned need,
                                int64_t max, bool *out) {
    (void)max;
    return lj_json_bool(at, j, key, need, out);
}

lorajit_status lj_config_fields_read(const lj_json_at *at, const cJSON *obj, bool all_required,
                                     lj_config *c) {
    lorajit_status s;
    unsigned all = all_required ? LJ_JSON_REQUIRED : 0;
#define READ_FIELD(hf, member, kind, need, def, max) \
    if ((s = read_##kind(at, obj, #hf, LJ_JSON_##need | all, max, &c->member))) return s;
    LJ_CONFIG_FIELDS(READ_FIELD)
#undef READ_FIELD
    return LORAJIT_OK;
}

/* model_type's entry in the architecture table (absent: llama) into *arch. */
static lorajit_status find_architecture(const lj_json_at *at, const cJSON *j, int *arch) {
    const char *type = NULL;
    lorajit_status s = lj_json_string(at, j, "model_type", LJ_JSON_OPTIONAL, &type);
    if (s) return s;
    *arch = lj_arch_find(type);
    if (*arch < 0) {
        char supported[256];
        lj_arch_list(supported, sizeof supported);
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"model_type\" is \"%s\"; supported model types: %s", at->path,
                       type, supported);
    }
    return LORAJIT_OK;
}

/* The fields that say which variants of the architecture a uses: the activation,
 * named by hidden_act or (Gemma, modeling_gemma.py GemmaMLP.__init__) by
 * hidden_activation, which the modeling file reads instead (absent or null: a's). */
static lorajit_status check_variants(const lj_json_at *at, const cJSON *j, const lj_arch *a) {
    const char *act = NULL, *act2 = NULL;
    lorajit_status s = lj_json_string(at, j, "hidden_act", LJ_JSON_OPTIONAL, &act);
    if (!s && a->act_field) s = lj_json_string(at, j, a->act_field, LJ_JSON_OPTIONAL, &act2);
    if (s) return s;
    if (act && strcmp(act, a->hidden_act) != 0 && !(a->act_ignored && !strcmp(act, a->act_ignored)))
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"hidden_act\" is \"%s\"; %s supports only \"%s\"%s%s%s",
                       at->path, act, a->model_type, a->hidden_act, a->act_ignored ? " (or \"" : "",
                       a->act_ignored ? a->act_ignored : "", a->act_ignored ? "\", which it ignores)" : "");
    if (act2 && strcmp(act2, a->hidden_act) != 0)
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" is \"%s\"; %s supports only \"%s\"",
                       at->path, a->act_field, act2, a->model_type, a->hidden_act);
    return LORAJIT_OK;
}

/* The architecture's bias booleans (absent or null: false) into c->bias_mask. */
static lorajit_status read_biases(const lj_json_at *at, const cJSON *j, const lj_arch *a, lj_config *c) {
    c->bias_mask = a->bias_fixed;
    for (int i = 0; i < a->n_biases; i++) {
        bool on = false;
        lorajit_status s = lj_json_bool(at, j, a->biases[i].field, LJ_JSON_OPTIONAL, &on);
        if (s) return s;
        if (on) c->bias_mask |= a->biases[i].mask;
    }
    return LORAJIT_OK;
}

/* The family fields (LJ_CONFIG_FAMILY_FIELDS) as a's block uses them, the booleans a
 * refuses when true and the numbers it supports only at 1.0. c holds the fields as read. */
static lorajit_status check_family(const lj_json_at *at, const cJSON *j, const lj_arch *a, lj_config *c) {
    for (const char *const *f = a->refused; f && *f; f++) {
        bool on = false;
        lorajit_status s = lj_json_bool(at, j, *f, LJ_JSON_OPTIONAL, &on);
        if (s) return s;
        if (on)
            return lj_fail(at->err, LORAJIT_E_UNSUPPORTED,
                           "%s: field \"%s\" is true; %s with it is unsupported (it must be false)",
                           at->path, *f, a->model_type);
    }
    for (const char *const *f = a->unit_fields; f && *f; f++) {
        double v = 1.0;
        lorajit_status s = lj_json_number(at, j, *f, LJ_JSON_OPTIONAL, &v);
        if (s) return s;
        if (v != 1.0)
            return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" is %g; %s with it other than 1.0 "
                           "is unsupported", at->path, *f, v, a->model_type);
    }
    /* MistralConfig: sliding_window defaults to 4096 when absent, None (null) is no window */
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "sliding_window");
    if (!(a->block & LJ_BLOCK_SLIDING_WINDOW) || (w && cJSON_IsNull(w))) c->sliding_window = 0;
    return LORAJIT_OK;
}

/* Fills c from the JSON object j; c starts with its architecture's defaults. */
static lorajit_status read_fields(const cJSON *j, const char *path, lj_config *c, lj_err *err) {
    lorajit_status s;
    lj_json_at at = {path, "", err};
    const lj_arch *a = lj_arch_get(c->arch);
    if ((s = check_variants(&at, j, a))) return s;
    if ((s = lj_config_fields_read(&at, j, false, c))) return s;
    if ((s = check_family(&at, j, a, c))) return s;
    if ((s = read_biases(&at, j, a, c))) return s;
    if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;

    if (c->n_heads % c->n_kv_heads != 0)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: field \"num_attention_heads\" (%lld) is not a multiple of "
                       "\"num_key_value_heads\" (%lld)",
                       path, (long long)c->n_heads, (long long)c->n_kv_heads);
    if (c->head_size == 0) {
        if (c->dim % c->n_heads != 0)
            return lj_fail(err, LORAJIT_E_FORMAT,
                           "%s: field \"hidden_size\" (%lld) is not a multiple of "
                           "\"num_attention_heads\" (%lld) and \"head_dim\" is not given",
                           path, (long long)c->dim, (long long)c->n_heads);
        c->head_size = c->dim / c->n_heads;
        if (c->head_size > LJ_CONFIG_MAX_HEAD_DIM)
            return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                           "%s: field \"head_dim\" (\"hidden_size\" / \"num_attention_heads\") is %lld, "
                           "over the limit %lld", path, (long long)c->head_size, (long long)LJ_CONFIG_MAX_HEAD_DIM);
    }
    if (c->n_heads * c->head_size > LJ_CONFIG_MAX_HIDDEN)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: fields \"num_attention_heads\" x \"head_dim\" = %lld, over the limit %lld",
                       path, (long long)(c->n_heads * c->head_size), (long long)LJ_CONFIG_MAX_HIDDEN);
    if (c->head_size % 2 != 0)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"head_dim\" is %lld; RoPE needs an even head size", path,
                       (long long)c->head_size);
    return lj_rope_read(&at, j, c); /* rope_scaling: rope.c, once the sizes are final */
}

/* Reads j (borrowed) into *cfg, which is written only on success. */
static lorajit_status config_from_json(const cJSON *j, const char *path, lj_config *cfg, lj_err *err) {
    int arch = 0;
    lj_config c = {0};
    lorajit_status s = find_architecture(&(lj_json_at){path, "", err}, j, &arch);
    if (!s) {
        c = lj_arch_get(arch)->defaults;
        c.arch = arch;
        s = read_fields(j, path, &c, err);
    }
    if (s) return s;
    *cfg = c;
    return LORAJIT_OK;
}

lorajit_status lj_config_parse(const char *text, size_t len, const char *path, lj_config *cfg,
                               lj_err *err) {
    cJSON *j = NULL;
    lorajit_status s = lj_json_parse_object(text, len, path, &j, err);
    if (!s) s = config_from_json(j, path, cfg, err);
    cJSON_Delete(j);
    return s;
}

lorajit_status lj_config_read(const char *path, lj_config *cfg, lj_err *err) {
    cJSON *j = NULL;
    lorajit_status s = lj_json_read(path, LJ_JSON_MAX_BYTES, &j, err);
    if (!s) s = config_from_json(j, path, cfg, err);
    cJSON_Delete(j);
    return s;
}
