/* rope.c — config.json's "rope_scaling": reading and checking it (following
 * transformers' rope_config_validation, a warning there is a refusal here), writing
 * it back for an artifact's manifest, and the frequency tables the runtime hands the
 * compiled code through lj_ctx.rope (each type's block names the transformers
 * function it follows, modeling_rope_utils.py). Input: a parsed config object whose
 * sizes are final. Output: lj_config.rope; tables of inv_freq[head_size / 2] + scale. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

static const struct {
    const char *name;
    int type;
} rope_names[] = {
    {"default", LJ_ROPE_DEFAULT}, {"linear", LJ_ROPE_LINEAR}, {"dynamic", LJ_ROPE_DYNAMIC},
    {"yarn", LJ_ROPE_YARN},       {"longrope", LJ_ROPE_LONGROPE}, {"su", LJ_ROPE_LONGROPE},
    {"llama3", LJ_ROPE_LLAMA3},
};
enum { N_ROPE_NAMES = sizeof rope_names / sizeof rope_names[0] };

const char *lj_rope_type_name(int type) {
    for (int i = 0; i < N_ROPE_NAMES; i++)
        if (rope_names[i].type == type) return rope_names[i].name;
    return "?";
}

static bool present(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v);
}

/* An optional number into *out, recording bit in r->has when present. */
static lorajit_status opt_number(const lj_json_at *at, const cJSON *o, const char *key, unsigned bit,
                                 lj_rope *r, double *out) {
    if (!present(o, key)) return LORAJIT_OK;
    r->has |= bit;
    return lj_json_number(at, o, key, LJ_JSON_REQUIRED, out);
}

/* factor: a number >= 1 (rope_config_validation: "must be a float >= 1"). */
static lorajit_status read_factor(const lj_json_at *at, const cJSON *o, bool required, lj_rope *r) {
    if (!required && !present(o, "factor")) return LORAJIT_OK;
    lorajit_status s = lj_json_number(at, o, "factor", LJ_JSON_REQUIRED, &r->factor);
    if (s) return s;
    r->has |= LJ_ROPE_HAS_FACTOR;
    if (!(r->factor >= 1.0))
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%sfactor\" is %g; it must be a number >= 1",
                       at->path, at->prefix, r->factor);
    return LORAJIT_OK;
}

static lorajit_status read_orig(const lj_json_at *at, const cJSON *o, bool required, lj_rope *r) {
    if (!required && !present(o, "original_max_position_embeddings")) return LORAJIT_OK;
    r->has |= LJ_ROPE_HAS_ORIG;
    return lj_json_int(at, o, "original_max_position_embeddings", LJ_JSON_REQUIRED | LJ_JSON_LIMIT, 1,
                       LJ_CONFIG_MAX_POSITIONS, &r->original_max);
}

/* A list of exactly n numbers (longrope's short_factor / long_factor). */
static lorajit_status read_factors(const lj_json_at *at, const cJSON *o, const char *key, int n, float *out) {
    const cJSON *a = NULL;
    lorajit_status s = lj_json_array(at, o, key, LJ_JSON_REQUIRED, &a);
    if (s) return s;
    if (cJSON_GetArraySize(a) != n)
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" has %d numbers; it must have %d "
                       "(head_dim / 2)", at->path, at->prefix, key, cJSON_GetArraySize(a), n);
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(v->valuedouble > 0) ||
            !isfinite((float)v->valuedouble))
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s%s[%d]\" must be a positive number",
                           at->path, at->prefix, key, i);
        out[i] = (float)v->valuedouble;
    }
    return LORAJIT_OK;
}

static lorajit_status bad_field(const lj_json_at *at, const char *key, const char *why) {
    return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" %s", at->path, at->prefix, key, why);
}

/* The fields of each type, as transformers' _validate_*_parameters check them. */
static lorajit_status read_type_fields(const lj_json_at *at, const cJSON *o, const lj_config *c, lj_rope *r) {
    lorajit_status s = LORAJIT_OK;
    switch ((lj_rope_type)r->type) {
    case LJ_ROPE_DEFAULT:
        return LORAJIT_OK;
    case LJ_ROPE_LINEAR: /* _validate_linear_scaling_rope_parameters */
        return read_factor(at, o, true, r);
    case LJ_ROPE_DYNAMIC: /* _validate_dynamic_scaling_rope_parameters (original max: optional, unused) */
        if ((s = read_factor(at, o, true, r))) return s;
        return read_orig(at, o, false, r);
    case LJ_ROPE_YARN: /* _validate_yarn_parameters */
        if ((s = read_factor(at, o, true, r)) || (s = read_orig(at, o, false, r)) ||
            (s = opt_number(at, o, "attention_factor", LJ_ROPE_HAS_ATTN, r, &r->attention_factor)) ||
            (s = opt_number(at, o, "beta_fast", LJ_ROPE_HAS_BETA_FAST, r, &r->beta_fast)) ||
            (s = opt_number(at, o, "beta_slow", LJ_ROPE_HAS_BETA_SLOW, r, &r->beta_slow)) ||
            (s = opt_number(at, o, "mscale", LJ_ROPE_HAS_MSCALE, r, &r->mscale)) ||
            (s = opt_number(at, o, "mscale_all_dim", LJ_ROPE_HAS_MSCALE_ALL, r, &r->mscale_all_dim)))
            return s;
        if (present(o, "truncate")) {
            r->has |= LJ_ROPE_HAS_TRUNCATE;
            if ((s = lj_json_bool(at, o, "truncate", LJ_JSON_REQUIRED, &r->truncate))) return s;
        }
        if ((r->has & LJ_ROPE_HAS_ATTN) && !(r->attention_factor > 0))
            return bad_field(at, "attention_factor", "must be a number greater than 0");
        double fast = (r->has & LJ_ROPE_HAS_BETA_FAST) && r->beta_fast ? r->beta_fast : 32;
        double slow = (r->has & LJ_ROPE_HAS_BETA_SLOW) && r->beta_slow ? r->beta_slow : 1;
        if (!(fast >= slow) || !(slow > 0))
            return bad_field(at, "beta_fast", "must be greater than beta_slow (defaults 32 and 1), both positive");
        return LORAJIT_OK;
    case LJ_ROPE_LONGROPE: /* _validate_longrope_parameters */
        r->n_factors = (int)(c->head_size / 2);
        if ((s = read_factors(at, o, "short_factor", r->n_factors, r->short_factor)) ||
            (s = read_factors(at, o, "long_factor", r->n_factors, r->long_factor)) ||
            (s = read_factor(at, o, false, r)) || (s = read_orig(at, o, false, r)) ||
            (s = opt_number(at, o, "attention_factor", LJ_ROPE_HAS_ATTN, r, &r->attention_factor)))
            return s;
        if ((r->has & LJ_ROPE_HAS_ATTN) && !(r->attention_factor > 0))
            return bad_field(at, "attention_factor", "must be a number greater than 0");
        if (!(r->has & (LJ_ROPE_HAS_TOP_ORIG | LJ_ROPE_HAS_FACTOR)))
            return bad_field(at, "factor", "is missing (longrope needs it, or a top-level "
                             "original_max_position_embeddings)");
        return LORAJIT_OK;
    case LJ_ROPE_LLAMA3: /* _validate_llama3_parameters */
        if ((s = read_factor(at, o, true, r)) || (s = read_orig(at, o, true, r)) ||
            (s = lj_json_number(at, o, "low_freq_factor", LJ_JSON_REQUIRED | LJ_JSON_POSITIVE, &r->low_freq_factor)) ||
            (s = lj_json_number(at, o, "high_freq_factor", LJ_JSON_REQUIRED | LJ_JSON_POSITIVE, &r->high_freq_factor)))
            return s;
        if (!(r->high_freq_factor > r->low_freq_factor))
            return bad_field(at, "high_freq_factor", "must be greater than low_freq_factor");
        if (r->original_max >= c->seq_len)
            return bad_field(at, "original_max_position_embeddings", "must be less than max_position_embeddings");
        return LORAJIT_OK;
    case LJ_ROPE_COUNT:
        break;
    }
    return LORAJIT_OK;
}

lorajit_status lj_rope_read(const lj_json_at *top, const cJSON *obj, lj_config *cfg) {
    lj_rope r;
    memset(&r, 0, sizeof r);
    r.truncate = true;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, "rope_scaling");
    if (!o || cJSON_IsNull(o)) {
        cfg->rope = r;
        return LORAJIT_OK;
    }
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%srope_scaling.", top->prefix ? top->prefix : "");
    lj_json_at at = {top->path, prefix, top->err};
    if (!cJSON_IsObject(o))
        return lj_fail(top->err, LORAJIT_E_FORMAT, "%s: field \"%srope_scaling\" must be an object or null",
                       top->path, top->prefix ? top->prefix : "");
    const char *key = present(o, "rope_type") ? "rope_type" : "type", *name = NULL;
    lorajit_status s = lj_json_string(&at, o, key, LJ_JSON_OPTIONAL, &name);
    if (s) return s;
    if (!name) return bad_field(&at, "rope_type", "is missing (or the legacy \"type\")");
    r.type = -1;
    for (int i = 0; i < N_ROPE_NAMES; i++)
        if (strcmp(name, rope_names[i].name) == 0) r.type = rope_names[i].type;
    if (r.type < 0)
        return lj_fail(at.err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s%s\" is \"%s\"; supported RoPE types: "
                       "default, linear, dynamic, yarn, longrope (su), llama3", at.path, prefix, key, name);
    if (r.type == LJ_ROPE_LONGROPE && present(obj, "original_max_position_embeddings")) {
        r.has |= LJ_ROPE_HAS_TOP_ORIG;
        if ((s = lj_json_int(top, obj, "original_max_position_embeddings", LJ_JSON_REQUIRED | LJ_JSON_LIMIT, 1,
                             LJ_CONFIG_MAX_POSITIONS, &r.top_original_max)))
            return s;
    }
    if ((s = read_type_fields(&at, o, cfg, &r))) return s;
    cfg->rope = r;
    return LORAJIT_OK;
}

bool lj_rope_write(cJSON *obj, const lj_rope *r) {
    if (r->type == LJ_ROPE_DEFAULT) return cJSON_AddNullToObject(obj, "rope_scaling") != NULL;
    cJSON *o = cJSON_AddObjectToObject(obj, "rope_scaling");
    if (!o || !cJSON_AddStringToObject(o, "rope_type", lj_rope_type_name(r->type))) return false;
    bool ok = true;
    if (r->has & LJ_ROPE_HAS_FACTOR) ok = ok && cJSON_AddNumberToObject(o, "factor", r->factor);
    if (r->type == LJ_ROPE_LLAMA3)
        ok = ok && cJSON_AddNumberToObject(o, "low_freq_factor", r->low_freq_factor) &&
             cJSON_AddNumberToObject(o, "high_freq_factor", r->high_freq_factor);
    if (r->has & LJ_ROPE_HAS_ORIG)
        ok = ok && cJSON_AddNumberToObject(o, "original_max_position_embeddings", (double)r->original_max);
    if (r->has & LJ_ROPE_HAS_ATTN) ok = ok && cJSON_AddNumberToObject(o, "attention_factor", r->attention_factor);
    if (r->has & LJ_ROPE_HAS_BETA_FAST) ok = ok && cJSON_AddNumberToObject(o, "beta_fast", r->beta_fast);
    if (r->has & LJ_ROPE_HAS_BETA_SLOW) ok = ok && cJSON_AddNumberToObject(o, "beta_slow", r->beta_slow);
    if (r->has & LJ_ROPE_HAS_MSCALE) ok = ok && cJSON_AddNumberToObject(o, "mscale", r->mscale);
    if (r->has & LJ_ROPE_HAS_MSCALE_ALL) ok = ok && cJSON_AddNumberToObject(o, "mscale_all_dim", r->mscale_all_dim);
    if (r->has & LJ_ROPE_HAS_TRUNCATE) ok = ok && cJSON_AddBoolToObject(o, "truncate", r->truncate);
    if (r->type == LJ_ROPE_LONGROPE) {
        cJSON *s = cJSON_AddArrayToObject(o, "short_factor"), *l = cJSON_AddArrayToObject(o, "long_factor");
        ok = ok && s && l;
        for (int i = 0; ok && i < r->n_factors; i++)
            ok = cJSON_AddItemToArray(s, cJSON_CreateNumber(r->short_factor[i])) &&
                 cJSON_AddItemToArray(l, cJSON_CreateNumber(r->long_factor[i]));
    }
    if (r->has & LJ_ROPE_HAS_TOP_ORIG)
        ok = ok && cJSON_AddNumberToObject(obj, "original_max_position_embeddings", (double)r->top_original_max);
    return ok;
}

bool lj_rope_same(const lj_rope *a, const lj_rope *b) {
    if (a->type != b->type || a->has != b->has || a->n_factors != b->n_factors) return false;
    if (a->factor != b->factor || a->low_freq_factor != b->low_freq_factor ||
        a->high_freq_factor != b->high_freq_factor || a->original_max != b->original_max ||
        a->top_original_max != b->top_original_max || a->attention_factor != b->attention_factor ||
        a->beta_fast != b->beta_fast || a->beta_slow != b->beta_slow || a->mscale != b->mscale ||
        a->mscale_all_dim != b->mscale_all_dim || a->truncate != b->truncate)
        return false;
    size_t n = (size_t)a->n_factors * sizeof(float);
    return memcmp(a->short_factor, b->short_factor, n) == 0 && memcmp(a->long_factor, b->long_factor, n) == 0;
}

bool lj_rope_varies(const lj_config *cfg) {
    return cfg->rope.type == LJ_ROPE_DYNAMIC || cfg->rope.type == LJ_ROPE_LONGROPE;
}

bool lj_rope_extends(const lj_config *cfg) { return cfg->rope.type != LJ_ROPE_DEFAULT; }

int64_t lj_rope_row_floats(const lj_config *cfg) { return cfg->head_size / 2 + 1; }

/* 1 / base^(2i / dim) in float32, as torch computes
 * 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)). */
static float base_inv_freq(double base, int64_t i, int64_t dim) {
    return 1.0f / powf((float)base, (float)(2 * i) / (float)dim);
}

/* yarn's get_mscale (inside _compute_yarn_parameters). */
static double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

/* _compute_yarn_parameters (transformers >= 4.48: original_max_position_embeddings in
 * rope_scaling makes factor = max_position_embeddings / original, as DeepSeek-V3 needs). */
static float yarn_table(const lj_config *c, float *inv) {
    const lj_rope *r = &c->rope;
    int64_t dim = c->head_size, half = dim / 2;
    double base = c->rope_theta, factor = r->factor, orig = (double)c->seq_len;
    if (r->has & LJ_ROPE_HAS_ORIG) {
        orig = (double)r->original_max;
        factor = (double)c->seq_len / orig;
    }
    double attn;
    if (r->has & LJ_ROPE_HAS_ATTN) attn = r->attention_factor;
    else if ((r->has & LJ_ROPE_HAS_MSCALE) && r->mscale && (r->has & LJ_ROPE_HAS_MSCALE_ALL) && r->mscale_all_dim)
        attn = yarn_mscale(factor, r->mscale) / yarn_mscale(factor, r->mscale_all_dim);
    else attn = yarn_mscale(factor, 1.0);
    double fast = (r->has & LJ_ROPE_HAS_BETA_FAST) && r->beta_fast ? r->beta_fast : 32;
    double slow = (r->has & LJ_ROPE_HAS_BETA_SLOW) && r->beta_slow ? r->beta_slow : 1;
    /* find_correction_dim / find_correction_range */
    double low = (double)dim * log(orig / (fast * 2 * M_PI)) / (2 * log(base));
    double high = (double)dim * log(orig / (slow * 2 * M_PI)) / (2 * log(base));
    if (r->truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > (double)(dim - 1)) high = (double)(dim - 1);
    if (low == high) high += 0.001; /* linear_ramp_factor: prevent singularity */
    for (int64_t i = 0; i < half; i++) {
        float ramp = (float)(((double)i - low) / (high - low));
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        float extra = 1.0f - ramp; /* inv_freq_extrapolation_factor */
        float pos_freq = powf((float)base, (float)(2 * i) / (float)dim);
        float inv_extra = 1.0f / pos_freq, inv_inter = 1.0f / ((float)factor * pos_freq);
        inv[i] = inv_inter * (1.0f - extra) + inv_extra * extra;
    }
    return (float)attn;
}

/* _compute_llama3_parameters */
static void llama3_table(const lj_config *c, float *inv) {
    const lj_rope *r = &c->rope;
    double factor = r->factor, lo = r->low_freq_factor, hi = r->high_freq_factor, old = (double)r->original_max;
    double low_wavelen = old / lo, high_wavelen = old / hi;
    for (int64_t i = 0; i < c->head_size / 2; i++) {
        float f = base_inv_freq(c->rope_theta, i, c->head_size);
        float wavelen = (float)(2 * M_PI) / f;
        float scaled = wavelen > low_wavelen ? (float)(f / factor) : f; /* inv_freq_llama */
        double smooth = (old / wavelen - lo) / (hi - lo);
        bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        inv[i] = medium ? (float)((1 - smooth) * scaled / factor + smooth * scaled) : scaled;
    }
}

void lj_rope_table(const lj_config *c, int64_t seq_len, float *row) {
    const lj_rope *r = &c->rope;
    int64_t dim = c->head_size, half = dim / 2;
    float scale = 1.0f;
    switch ((lj_rope_type)r->type) {
    case LJ_ROPE_DEFAULT: /* _compute_default_rope_parameters */
        for (int64_t i = 0; i < half; i++) row[i] = base_inv_freq(c->rope_theta, i, dim);
        break;
    case LJ_ROPE_LINEAR: /* _compute_linear_scaling_rope_parameters: inv_freq /= factor */
        for (int64_t i = 0; i < half; i++) row[i] = base_inv_freq(c->rope_theta, i, dim) / (float)r->factor;
        break;
    case LJ_ROPE_DYNAMIC: { /* _compute_dynamic_ntk_parameters, seq_len from dynamic_rope_update */
        double mpe = (double)c->seq_len, s = seq_len > c->seq_len ? (double)seq_len : mpe;
        double base = c->rope_theta * pow(r->factor * s / mpe - (r->factor - 1), (double)dim / (double)(dim - 2));
        for (int64_t i = 0; i < half; i++) row[i] = base_inv_freq(base, i, dim);
        break;
    }
    case LJ_ROPE_YARN:
        scale = yarn_table(c, row);
        break;
    case LJ_ROPE_LONGROPE: { /* _compute_longrope_parameters + dynamic_rope_update's longrope branch */
        double orig = (double)c->seq_len, factor = r->factor;
        if (r->has & LJ_ROPE_HAS_TOP_ORIG) {
            orig = (double)r->top_original_max;
            factor = (double)c->seq_len / orig;
        }
        double attn = r->has & LJ_ROPE_HAS_ATTN ? r->attention_factor
                      : factor <= 1.0 ? 1.0 : sqrt(1 + log(factor) / log(orig));
        const float *ext = (double)seq_len > orig ? r->long_factor : r->short_factor;
        for (int64_t i = 0; i < half; i++)
            row[i] = 1.0f / (ext[i] * powf((float)c->rope_theta, (float)(2 * i) / (float)dim));
        scale = (float)attn;
        break;
    }
    case LJ_ROPE_LLAMA3:
        llama3_table(c, row);
        break;
    case LJ_ROPE_COUNT:
        break;
    }
    row[half] = scale;
}
