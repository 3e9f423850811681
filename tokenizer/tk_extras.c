/* tk_extras.c — the tokenizer's facts (vocabulary size, token ids, BOS, EOS) and
 * where they come from besides tokenizer.json, the folder's other files, each optional: tokenizer_config.json
 * (bos_token, eos_token, unk_token, pad_token: a string or {"content": ...}; chat_template),
 * special_tokens_map.json (the same tokens, when tokenizer_config.json does not name them),
 * chat_template.jinja (wins over tokenizer_config.json's chat_template, as in transformers'
 * tokenization_utils_base.py) and generation_config.json (eos_token_id: a number or a list,
 * which wins for EOS; bos_token_id when no BOS token is named).
 * Output: t->bos_id, t->eos_ids, t->special_text, t->chat_template. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "jinja.h"
#include "tokenizer.h"

const char *const tk_special_names[TK_N_SPECIAL] = {"bos_token", "eos_token", "unk_token", "pad_token"};

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

/* The text of the special tokens root (from path) names, for those not yet known. */
static lorajit_status special_texts(lorajit_tokenizer *t, const char *path, const cJSON *root, lj_err *err) {
    for (int i = 0; i < TK_N_SPECIAL; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, tk_special_names[i]);
        if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (t->special_text[i] || !v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsString(v))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be a string or {\"content\": string}", path,
                           tk_special_names[i]);
        if (!(t->special_text[i] = strdup(v->valuestring))) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory");
    }
    return LORAJIT_OK;
}

/* Keeps text[0..len) as the chat template, read from `from`. */
static lorajit_status keep_template(lorajit_tokenizer *t, const char *text, size_t len, const char *from, lj_err *err) {
    if (!(t->chat_template = lj_malloc(len + 1))) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", from);
    memcpy(t->chat_template, text, len);
    t->chat_template[len] = 0;
    t->chat_template_len = len;
    snprintf(t->chat_template_from, sizeof t->chat_template_from, "%s", from);
    return LORAJIT_OK;
}

/* The chat template: dir/chat_template.jinja when it exists, else tokenizer_config.json's
 * "chat_template" (cfg at path, may be NULL): a string, or a list of {"name", "template"}
 * of which the one named "default" is taken (none named so: no template, as transformers
 * then asks for a name). */
static lorajit_status read_template(lorajit_tokenizer *t, const char *dir, const char *path, const cJSON *cfg,
                                    lj_err *err) {
    char file[4096];
    struct stat sb;
    lorajit_status st = lj_path_join(file, sizeof file, dir, "chat_template.jinja", err);
    if (!st && stat(file, &sb) == 0) {
        char *text = NULL;
        size_t len = 0;
        st = lj_read_file_max(file, JJ_MAX_SOURCE, &text, &len, err);
        if (!st) st = keep_template(t, text, len, file, err);
        free(text);
        return st;
    }
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "chat_template") : NULL;
    if (st || !v || cJSON_IsNull(v)) return st;
    if (cJSON_IsString(v)) return keep_template(t, v->valuestring, strlen(v->valuestring), path, err);
    if (!cJSON_IsArray(v))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"chat_template\" must be a string or a list of {\"name\", \"template\"}", path);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (!cJSON_IsString(name) || !cJSON_IsString(tmpl))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: \"chat_template\"[%d] must be {\"name\": string, \"template\": string}",
                           path, i);
        if (strcmp(name->valuestring, "default") == 0 && !t->chat_template)
            st = keep_template(t, tmpl->valuestring, strlen(tmpl->valuestring), path, err);
    }
    return st;
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
        if (!st) st = special_texts(t, path, cfg, err);
    }
    if (!st) st = read_template(t, dir, path, cfg, err);
    if (!st) st = read_opt(dir, "special_tokens_map.json", path, sizeof path, &map, err);
    if (!st && map) {
        int32_t b = -1, e = -1;
        if ((b = token_field(t, path, map, "bos_token", err)) == -2 ||
            (e = token_field(t, path, map, "eos_token", err)) == -2)
            st = err->status;
        if (!st) st = special_texts(t, path, map, err);
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
