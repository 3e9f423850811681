/* schema.c — the adapter schema: how big, where and of what element type the LoRA slots are.
 * Inputs: defaults, then an optional schema JSON file ({"max_rank", "target_modules",
 * "max_adapters", "max_tokens", the KV cache's keys, "lora_dtype"}), then the non-zero
 * fields of lorajit_options, checked against the model's config. Output: an lj_schema
 * (r_max, target_mask, n_slots, max_tokens, kv_dtype, lora_dtype) that fixes the compiled
 * code's shapes and element types. Unknown keys, module names and dtypes are refused by
 * name. "none" (as target_modules or options.targets) compiles no LoRA sites at all. The
 * KV cache (seq_len) and max_tokens default to min(max_position_embeddings, 4096); its
 * element type (kv_dtype) is compiled in, its block size and byte budget (kv_block_size,
 * kv_cache_mb) are run-time choices. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

#define SCHEMA_MAX_RANK 1024
#define SCHEMA_MAX_SLOTS 64
/* The default KV cache length (and tokens per call) when max_position_embeddings
 * is longer: the cache is sized to what a user is likely to need, never blindly to
 * the context the model was trained for (a 1M-token config would reserve ~34 GB).
 * Raise it with options.max_seq_len / --max-seq-len, up to max_position_embeddings, or
 * past it (to LJ_CONFIG_MAX_POSITIONS) when rope_scaling extends the context, as
 * transformers allows (lj_schema_max_positions). */
#define SCHEMA_DEFAULT_SEQ_LEN 4096

/* "target_modules": a list of arch's module names, the string "all-linear", or the
 * string "none" (no LoRA sites: the model compiled without slots). An empty list
 * is refused as a likely mistake; "none" says it on purpose. */
static lorajit_status get_targets(const lj_json_at *at, const cJSON *v, const lj_arch *arch, unsigned *mask) {
    const char *path = at->path;
    lj_err *err = at->err;
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "all-linear") == 0) {
            *mask = lj_arch_all_modules(arch);
            return LORAJIT_OK;
        }
        if (strcmp(v->valuestring, "none") == 0) {
            *mask = 0;
            return LORAJIT_OK;
        }
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: field \"target_modules\" is \"%s\"; expected a list of module names, "
                       "\"all-linear\" or \"none\"",
                       path, v->valuestring);
    }
    if (!cJSON_IsArray(v))
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: field \"target_modules\" must be a list of module names, \"all-linear\" "
                       "or \"none\"",
                       path);
    const char **names;
    int n;
    lorajit_status st = lj_json_strings(at, v, NULL, LJ_JSON_REQUIRED, &names, &n);
    if (st) return st;
    unsigned m = 0;
    for (int i = 0; i < n; i++) {
        int id = lj_arch_module_find(arch, names[i]);
        if (id < 0) {
            char expected[256];
            lj_arch_module_names(arch, lj_arch_all_modules(arch), expected, sizeof expected);
            st = lj_fail(err, LORAJIT_E_FORMAT,
                         "%s: field \"target_modules\": unknown module \"%s\" (expected one of %s)",
                         path, names[i], expected);
            break;
        }
        m |= 1u << id;
    }
    free(names);
    if (st) return st;
    if (m == 0)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: field \"target_modules\" is empty (write \"none\" for no LoRA sites)",
                       path);
    *mask = m;
    return LORAJIT_OK;
}

/* Reads the schema object j (borrowed) into *s, starting from what *s holds;
 * *s is written only when every key is valid. */
static lorajit_status schema_from_json(const cJSON *j, const char *path, const lj_arch *arch, lj_schema *s,
                                       lj_err *err) {
    lj_schema t = *s;
    lj_json_at at = {path, "", err};
    const cJSON *v;
    cJSON_ArrayForEach(v, j) {
        int64_t x = 0;
        const char *key = v->string;
        lorajit_status st = LORAJIT_OK;
        if (strcmp(key, "max_rank") == 0) {
            if (!(st = lj_json_int(&at, v, NULL, LJ_JSON_REQUIRED, 1, SCHEMA_MAX_RANK, &x))) t.r_max = (int)x;
        } else if (strcmp(key, "max_adapters") == 0) {
            if (!(st = lj_json_int(&at, v, NULL, LJ_JSON_REQUIRED, 1, SCHEMA_MAX_SLOTS, &x))) t.n_slots = (int)x;
        } else if (strcmp(key, "max_tokens") == 0) {
            if (!(st = lj_json_int(&at, v, NULL, LJ_JSON_REQUIRED, 1, INT64_C(1) << 40, &x))) t.max_tokens = x;
        } else if (strcmp(key, "target_modules") == 0) {
            st = get_targets(&at, v, arch, &t.target_mask);
        } else if (strcmp(key, "kv_block_size") == 0) {
            if (!(st = lj_json_int(&at, v, NULL, LJ_JSON_REQUIRED, 1, LJ_KV_BLOCK_MAX, &x))) {
                if (x & (x - 1))
                    st = lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"kv_block_size\" is %lld; it must be a "
                                 "power of two", path, (long long)x);
                t.kv_block_size = (int)x;
            }
        } else if (strcmp(key, "kv_cache_mb") == 0) {
            if (!(st = lj_json_int(&at, v, NULL, LJ_JSON_REQUIRED, 0, INT32_MAX, &x))) t.kv_cache_mb = (int)x;
        } else if (strcmp(key, "kv_dtype") == 0) {
            st = lj_json_dtype(&at, j, key, &t.kv_dtype);
        } else if (strcmp(key, "lora_dtype") == 0) {
            st = lj_json_dtype(&at, j, key, &t.lora_dtype);
        } else {
            st = lj_fail(err, LORAJIT_E_FORMAT,
                         "%s: unknown key \"%s\" (expected max_rank, target_modules, "
                         "max_adapters, max_tokens, kv_block_size, kv_cache_mb, kv_dtype, lora_dtype)",
                         path, key);
        }
        if (st) return st;
    }
    *s = t;
    return LORAJIT_OK;
}

lorajit_status lj_schema_parse(const char *text, size_t len, const char *path, const lj_arch *arch, lj_schema *s,
                               lj_err *err) {
    cJSON *j = NULL;
    lorajit_status st = lj_json_parse_object(text, len, path, &j, err);
    if (!st) st = schema_from_json(j, path, arch, s, err);
    cJSON_Delete(j);
    return st;
}

/* opts->targets: a comma list of module names (spaces allowed), "all-linear", or
 * "none" alone (no LoRA sites). */
static lorajit_status parse_target_list(const char *list, const lj_arch *arch, unsigned *mask,
                                        lj_err *err) {
    unsigned m = 0;
    bool none = false;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        const char *q = p;
        while (*q && *q != ',') q++;
        const char *e = q;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
        char name[32];
        size_t n = (size_t)(e - p);
        if (n == 0)
            return lj_fail(err, LORAJIT_E_ARG, "options.targets \"%s\": empty module name", list);
        if (n >= sizeof name)
            return lj_fail(err, LORAJIT_E_ARG, "options.targets \"%s\": unknown module \"%.*s\"",
                           list, (int)n, p);
        memcpy(name, p, n);
        name[n] = '\0';
        int id = lj_arch_module_find(arch, name);
        if (strcmp(name, "none") == 0) {
            none = true;
        } else if (strcmp(name, "all-linear") == 0) {
            m |= lj_arch_all_modules(arch);
        } else if (id < 0) {
            char names[256];
            lj_arch_module_names(arch, lj_arch_all_modules(arch), names, sizeof names);
            return lj_fail(err, LORAJIT_E_ARG,
                           "options.targets \"%s\": unknown module \"%s\" (expected %s, all-linear "
                           "or none)", list, name, names);
        } else {
            m |= 1u << id;
        }
        if (!*q) break;
        p = q + 1;
    }
    if (none && m != 0)
        return lj_fail(err, LORAJIT_E_ARG,
                       "options.targets \"%s\": \"none\" cannot be combined with module names",
                       list);
    *mask = m;
    return LORAJIT_OK;
}

lorajit_status lj_schema_kv(const lorajit_options *opts, lj_schema *s, lj_err *err) {
    if (!opts) return LORAJIT_OK;
    int bs = opts->kv_block_size;
    if (bs && (bs < 1 || bs > LJ_KV_BLOCK_MAX || (bs & (bs - 1))))
        return lj_fail(err, LORAJIT_E_ARG, "options.kv_block_size is %d; it must be a power of two in 1..%d",
                       bs, LJ_KV_BLOCK_MAX);
    if (opts->kv_cache_mb < 0)
        return lj_fail(err, LORAJIT_E_ARG, "options.kv_cache_mb is %d; it must be >= 0 (0: room for every "
                       "sequence's max_seq_len positions)", opts->kv_cache_mb);
    if (bs) s->kv_block_size = bs;
    if (opts->kv_cache_mb) s->kv_cache_mb = opts->kv_cache_mb;
    return LORAJIT_OK;
}

int lj_kv_dtype_parse(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "f32") == 0) return LJ_DTYPE_F32;
    if (strcmp(name, "f16") == 0) return LJ_DTYPE_F16;
    if (strcmp(name, "bf16") == 0) return LJ_DTYPE_BF16;
    return -1;
}

lorajit_status lj_json_dtype(const lj_json_at *at, const cJSON *obj, const char *key, int *dtype) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return LORAJIT_OK;
    bool text = cJSON_IsString(v);
    int d = text ? lj_kv_dtype_parse(v->valuestring) : -1;
    if (d < 0)
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" is %s%s%s; expected \"f32\", \"f16\" or "
                       "\"bf16\"", at->path, at->prefix ? at->prefix : "", key, text ? "\"" : "",
                       text ? v->valuestring : "not a string", text ? "\"" : "");
    *dtype = d;
    return LORAJIT_OK;
}

lorajit_status lj_dtype_option(const char *field, const char *value, int *dtype, lj_err *err) {
    if (!value) return LORAJIT_OK;
    int d = lj_kv_dtype_parse(value);
    if (d < 0)
        return lj_fail(err, LORAJIT_E_ARG, "options.%s is \"%s\"; expected \"f32\", \"f16\" or \"bf16\"", field,
                       value);
    *dtype = d;
    return LORAJIT_OK;
}

const char *lj_kv_dtype_name(int dtype) {
    return dtype == LJ_DTYPE_F16 ? "f16" : dtype == LJ_DTYPE_BF16 ? "bf16" : "f32";
}

int lj_kv_dtype_bytes(int dtype) { return dtype == LJ_DTYPE_F32 ? 4 : 2; }

int64_t lj_schema_max_positions(const lj_config *cfg) {
    return lj_rope_extends(cfg) ? LJ_CONFIG_MAX_POSITIONS : cfg->seq_len;
}

lorajit_status lj_schema_resolve(const lorajit_options *opts, const lj_config *cfg, lj_schema *s,
                                 lj_err *err) {
    const lj_arch *arch = lj_arch_get(cfg->arch);
    int64_t max_pos = lj_schema_max_positions(cfg);
    const char *pos_what = lj_rope_extends(cfg) ? "rope_scaling extends max_position_embeddings"
                                                : "max_position_embeddings";
    int64_t seq = cfg->seq_len < SCHEMA_DEFAULT_SEQ_LEN ? cfg->seq_len : SCHEMA_DEFAULT_SEQ_LEN;
    lj_schema t = {
        .r_max = 64, .target_mask = lj_arch_all_modules(arch), .n_slots = 8, .max_tokens = seq,
        .seq_len = seq, .max_batch = 4, .kv_block_size = LJ_KV_BLOCK_DEFAULT,
    };
    lorajit_status st;
    if (opts && opts->schema_path) {
        cJSON *j = NULL;
        st = lj_json_read(opts->schema_path, LJ_JSON_MAX_BYTES, &j, err);
        if (!st) st = schema_from_json(j, opts->schema_path, arch, &t, err);
        cJSON_Delete(j);
        if (st) return st;
        if (t.max_tokens > max_pos)
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"max_tokens\" is %lld, over %s %lld",
                           opts->schema_path, (long long)t.max_tokens, pos_what, (long long)max_pos);
    }
    if (opts && opts->max_rank) {
        if (opts->max_rank < 1 || opts->max_rank > SCHEMA_MAX_RANK)
            return lj_fail(err, LORAJIT_E_ARG, "options.max_rank is %d; it must be in 1..%d",
                           opts->max_rank, SCHEMA_MAX_RANK);
        t.r_max = opts->max_rank;
    }
    if (opts && opts->max_adapters) {
        if (opts->max_adapters < 1 || opts->max_adapters > SCHEMA_MAX_SLOTS)
            return lj_fail(err, LORAJIT_E_ARG, "options.max_adapters is %d; it must be in 1..%d",
                           opts->max_adapters, SCHEMA_MAX_SLOTS);
        t.n_slots = opts->max_adapters;
    }
    if (opts && opts->max_tokens) {
        if (opts->max_tokens < 1 || opts->max_tokens > max_pos)
            return lj_fail(err, LORAJIT_E_ARG, "options.max_tokens is %d; it must be in 1..%lld (%s)",
                           opts->max_tokens, (long long)max_pos, pos_what);
        t.max_tokens = opts->max_tokens;
    }
    if (opts && opts->targets && (st = parse_target_list(opts->targets, arch, &t.target_mask, err)))
        return st;
    if (t.max_tokens > t.seq_len) t.seq_len = t.max_tokens; /* asked for more tokens a call: a cache to hold them */
    if (opts && opts->max_seq_len) {
        if (opts->max_seq_len < 1 || opts->max_seq_len > max_pos)
            return lj_fail(err, LORAJIT_E_ARG, "options.max_seq_len is %d; it must be in 1..%lld (%s)",
                           opts->max_seq_len, (long long)max_pos, pos_what);
        t.seq_len = opts->max_seq_len;
        if (t.max_tokens > t.seq_len) {
            if (opts->max_tokens)
                return lj_fail(err, LORAJIT_E_ARG, "options.max_tokens %d is over options.max_seq_len %d",
                               opts->max_tokens, opts->max_seq_len);
            t.max_tokens = t.seq_len;
        }
    }
    if (opts && opts->max_batch) {
        if (opts->max_batch < 1 || opts->max_batch > SCHEMA_MAX_SLOTS)
            return lj_fail(err, LORAJIT_E_ARG, "options.max_batch is %d; it must be in 1..%d",
                           opts->max_batch, SCHEMA_MAX_SLOTS);
        t.max_batch = opts->max_batch;
    }
    if (opts && ((st = lj_dtype_option("kv_dtype", opts->kv_dtype, &t.kv_dtype, err)) ||
                 (st = lj_dtype_option("lora_dtype", opts->lora_dtype, &t.lora_dtype, err))))
        return st;
    if ((st = lj_schema_kv(opts, &t, err))) return st;
    /* Whatever the source, the result must hold (a bug if it does not). */
    LJ_ASSERT(t.r_max >= 1 && t.r_max <= SCHEMA_MAX_RANK);
    LJ_ASSERT(t.n_slots >= 1 && t.n_slots <= SCHEMA_MAX_SLOTS);
    LJ_ASSERT(t.max_tokens >= 1 && t.max_tokens <= t.seq_len && t.seq_len <= max_pos);
    LJ_ASSERT((t.target_mask & ~lj_arch_all_modules(arch)) == 0); /* 0: no LoRA sites ("none") */
    *s = t;
    return LORAJIT_OK;
}
