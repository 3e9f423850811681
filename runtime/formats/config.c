/* config.c — reads a Hugging Face config.json of a model in the architecture table.
 *
 * Input: the JSON text (user-supplied, so hostile until checked). Output: an
 * lj_config with llama2.c's dimension words, the architecture (arch.c) and its
 * defaults filled in. Every refusal names the file and the field: a model_type not
 * in the table, rope_scaling, another hidden_act, missing / non-integer /
 * non-positive / absurd sizes, and
 * head counts that do not divide. Sizes are capped so that a hostile file cannot
 * make later stages allocate terabytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

#define CFG_MAX_DIM (INT64_C(1) << 20)    /* any width, head count or context length */
#define CFG_MAX_LAYERS INT64_C(4096)
#define CFG_MAX_VOCAB (INT64_C(1) << 24)

/* Reads the integer field key of j into *out. required: missing (or null) is an
 * error, else *out keeps its default. The value must be an integer in 1..max. */
static lorajit_status get_size(const cJSON *j, const char *key, bool required, int64_t max,
                               const char *path, int64_t *out, lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" is missing", path, key);
        return LORAJIT_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || !isfinite(v->valuedouble))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be an integer", path, key);
    double d = v->valuedouble;
    if (d < 1)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" is %.0f; it must be positive", path,
                       key, d);
    if (d > (double)max)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" is %.0f, over the limit %lld",
                       path, key, d, (long long)max);
    *out = (int64_t)d;
    return LORAJIT_OK;
}

/* Reads the positive number field key of j into *out (absent: default stays). */
static lorajit_status get_positive(const cJSON *j, const char *key, const char *path, float *out,
                                   lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return LORAJIT_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble) ||
        !isfinite((float)v->valuedouble) || (float)v->valuedouble == 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be a positive number", path, key);
    *out = (float)v->valuedouble;
    return LORAJIT_OK;
}

/* Reads the boolean field key of j into *out (absent or null: default stays). */
static lorajit_status get_bool(const cJSON *j, const char *key, const char *path, bool *out,
                               lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) return LORAJIT_OK;
    if (!cJSON_IsBool(v))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return LORAJIT_OK;
}

/* model_type's entry in the architecture table (absent: llama) into *arch. */
static lorajit_status find_architecture(const cJSON *j, const char *path, int *arch, lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (v && !cJSON_IsString(v))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"model_type\" must be a string", path);
    *arch = lj_arch_find(v ? v->valuestring : NULL);
    if (*arch < 0) {
        char supported[256];
        lj_arch_list(supported, sizeof supported);
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"model_type\" is \"%s\"; supported model types: %s", path,
                       v->valuestring, supported);
    }
    return LORAJIT_OK;
}

/* The fields that say which variants of the architecture a uses. */
static lorajit_status check_variants(const cJSON *j, const lj_arch *a, const char *path, lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (v && !cJSON_IsNull(v))
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"rope_scaling\" is set; RoPE scaling is unsupported (it must be null)",
                       path);
    v = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (v && !cJSON_IsString(v))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"hidden_act\" must be a string", path);
    if (v && strcmp(v->valuestring, a->hidden_act) != 0)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"hidden_act\" is \"%s\"; only \"%s\" is supported", path,
                       v->valuestring, a->hidden_act);
    return LORAJIT_OK;
}

/* The architecture's bias booleans (absent: false) into c->bias_mask. */
static lorajit_status read_biases(const cJSON *j, const lj_arch *a, const char *path, lj_config *c,
                                  lj_err *err) {
    c->bias_mask = a->bias_fixed;
    for (int i = 0; i < a->n_biases; i++) {
        bool on = false;
        lorajit_status s = get_bool(j, a->biases[i].field, path, &on, err);
        if (s) return s;
        if (on) c->bias_mask |= a->biases[i].mask;
    }
    return LORAJIT_OK;
}

/* Fills c from the JSON object j; c starts with its architecture's defaults. */
static lorajit_status read_fields(const cJSON *j, const char *path, lj_config *c, lj_err *err) {
    lorajit_status s;
    const lj_arch *a = lj_arch_get(c->arch);
    if ((s = check_variants(j, a, path, err))) return s;
    if ((s = get_size(j, "hidden_size", true, CFG_MAX_DIM, path, &c->dim, err))) return s;
    if ((s = get_size(j, "intermediate_size", true, CFG_MAX_DIM, path, &c->hidden_dim, err))) return s;
    if ((s = get_size(j, "num_hidden_layers", true, CFG_MAX_LAYERS, path, &c->n_layers, err))) return s;
    if ((s = get_size(j, "num_attention_heads", true, CFG_MAX_DIM, path, &c->n_heads, err))) return s;
    if ((s = get_size(j, "vocab_size", true, CFG_MAX_VOCAB, path, &c->vocab_size, err))) return s;
    c->n_kv_heads = c->n_heads;
    if ((s = get_size(j, "num_key_value_heads", false, CFG_MAX_DIM, path, &c->n_kv_heads, err))) return s;
    c->head_size = 0;
    if ((s = get_size(j, "head_dim", false, CFG_MAX_DIM, path, &c->head_size, err))) return s;
    if ((s = get_size(j, "max_position_embeddings", false, CFG_MAX_DIM, path, &c->seq_len, err))) return s;
    if ((s = get_positive(j, "rms_norm_eps", path, &c->rms_eps, err))) return s;
    if ((s = get_positive(j, "rope_theta", path, &c->rope_theta, err))) return s;
    if ((s = get_bool(j, "tie_word_embeddings", path, &c->tie_embeddings, err))) return s;
    if ((s = read_biases(j, a, path, c, err))) return s;

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
    }
    if (c->n_heads * c->head_size > CFG_MAX_DIM)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: fields \"num_attention_heads\" x \"head_dim\" = %lld, over the limit %lld",
                       path, (long long)(c->n_heads * c->head_size), (long long)CFG_MAX_DIM);
    if (c->head_size % 2 != 0)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: field \"head_dim\" is %lld; RoPE needs an even head size", path,
                       (long long)c->head_size);
    return LORAJIT_OK;
}

lorajit_status lj_config_parse(const char *text, size_t len, const char *path, lj_config *cfg,
                               lj_err *err) {
    cJSON *j = NULL;
    lorajit_status s = lj_json_parse(text, len, path, 0, &j, err);
    if (s) return s;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: the top level is not a JSON object", path);
    }
    int arch = 0;
    lj_config c = {0};
    if (!(s = find_architecture(j, path, &arch, err))) {
        c = lj_arch_get(arch)->defaults;
        c.arch = arch;
        s = read_fields(j, path, &c, err);
    }
    cJSON_Delete(j);
    if (s) return s;
    *cfg = c;
    return LORAJIT_OK;
}

lorajit_status lj_config_read(const char *path, lj_config *cfg, lj_err *err) {
    char *text;
    size_t len;
    lorajit_status s = lj_read_file(path, &text, &len, err);
    if (s) return s;
    s = lj_config_parse(text, len, path, cfg, err);
    free(text);
    return s;
}
