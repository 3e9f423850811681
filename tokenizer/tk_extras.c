/* tk_extras.c — the tokenizer's facts (vocabulary size, token ids, BOS, EOS) and
 * where they come from besides tokenizer.json, the folder's other files, each optional: tokenizer_config.json
 * (bos_token, eos_token: a string or {"content": ...}), special_tokens_map.json
 * (the same, when tokenizer_config.json does not name them) and
 * generation_config.json (eos_token_id: a number or a list, which wins for EOS;
 * bos_token_id when no BOS token is named). Output: t->bos_id, t->eos_ids. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tokenizer.h"

/* Reads dir/name when it exists (*root NULL when it does not). */
static lorajit_status read_opt(const char *dir, const char *name, char *path, size_t cap, cJSON **root, lj_err *err) {
    *root = NULL;
    lorajit_status st = lj_path_join(path, cap, dir, name, err);
    struct stat sb;
    if (st || stat(path, &sb) != 0) return st;
    return lj_json_read(path, LJ_JSON_MAX_BYTES, root, err);
}

/* A token named by field key of root (a string or an object with "content"): its
 * id, -1 when absent or null, -2 (refused, err set) when it is not in the vocabulary. */
static int32_t token_field(const lorajit_tokenizer *t, const char *path, const cJSON *root, const char *key,
                           lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!v || cJSON_IsNull(v)) return -1;
    if (!cJSON_IsString(v)) {
        lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be a string or {\"content\": string}", path, key);
        return -2;
    }
    int32_t id = lorajit_tokenizer_token_id(t, v->valuestring);
    if (id < 0)
        lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" names \"%.64s\", which is not in tokenizer.json's vocabulary",
                path, key, v->valuestring);
    return id < 0 ? -2 : id;
}

/* generation_config.json's id field: a number or a list; ids written to out[0..*n). */
static lorajit_status id_field(const lorajit_tokenizer *t, const char *path, const cJSON *root, const char *key,
                               int32_t *out, int *n, lj_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key), *e;
    *n = 0;
    if (!v || cJSON_IsNull(v)) return LORAJIT_OK;
    if (cJSON_IsNumber(v) || cJSON_IsArray(v)) {
        const cJSON *first = cJSON_IsNumber(v) ? v : v->child;
        for (e = first; e; e = cJSON_IsNumber(v) ? NULL : e->next) {
            if (*n >= TK_MAX_EOS)
                return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" lists more than %d ids, over the limit",
                               path, key, TK_MAX_EOS);
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= t->vocab_size ||
                e->valuedouble != (double)(int32_t)e->valuedouble)
                return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must hold token ids below %d", path, key,
                               t->vocab_size);
            out[(*n)++] = (int32_t)e->valuedouble;
        }
        return LORAJIT_OK;
    }
    return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be a token id or a list of them", path, key);
}

lorajit_status tk_read_extras(lorajit_tokenizer *t, const char *dir, lj_err *err) {
    char path[4096];
    cJSON *cfg = NULL, *map = NULL, *gen = NULL;
    int32_t bos = -1, eos = -1, gen_bos[TK_MAX_EOS];
    int n_gen_bos = 0;
    lorajit_status st = read_opt(dir, "tokenizer_config.json", path, sizeof path, &cfg, err);
    if (!st && cfg) {
        if ((bos = token_field(t, path, cfg, "bos_token", err)) == -2 ||
            (eos = token_field(t, path, cfg, "eos_token", err)) == -2)
            st = err->status;
    }
    if (!st) st = read_opt(dir, "special_tokens_map.json", path, sizeof path, &map, err);
    if (!st && map) {
        int32_t b = -1, e = -1;
        if ((b = token_field(t, path, map, "bos_token", err)) == -2 ||
            (e = token_field(t, path, map, "eos_token", err)) == -2)
            st = err->status;
        if (bos < 0) bos = b;
        if (eos < 0) eos = e;
    }
    if (!st) st = read_opt(dir, "generation_config.json", path, sizeof path, &gen, err);
    if (!st && gen) {
        st = id_field(t, path, gen, "eos_token_id", t->eos_ids, &t->n_eos, err);
        if (!st) st = id_field(t, path, gen, "bos_token_id", gen_bos, &n_gen_bos, err);
        if (!st && bos < 0 && n_gen_bos == 1) bos = gen_bos[0];
    }
    if (!st && t->n_eos == 0 && eos >= 0) t->eos_ids[t->n_eos++] = eos;
    t->bos_id = bos;
    cJSON_Delete(cfg);
    cJSON_Delete(map);
    cJSON_Delete(gen);
    return st;
}

/* ---- the facts (lorajit.h) ---- */
int lorajit_tokenizer_vocab_size(const lorajit_tokenizer *t) { return t ? t->vocab_size : 0; }

int32_t lorajit_tokenizer_token_id(const lorajit_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    size_t n = strlen(token);
    int32_t id = tk_map_get(&t->added_map, token, n);
    return id >= 0 ? id : tk_map_get(&t->bpe.vocab, token, n);
}

int32_t lorajit_tokenizer_bos_id(const lorajit_tokenizer *t) { return t ? t->bos_id : -1; }

int lorajit_tokenizer_eos_ids(const lorajit_tokenizer *t, const int32_t **ids) {
    if (ids) *ids = t ? t->eos_ids : NULL;
    return t ? t->n_eos : 0;
}
