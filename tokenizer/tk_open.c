/* tk_open.c — lorajit_tokenizer_open and the tokenizer's facts: reads
 * tokenizer.json (model, added_tokens, the four component chains) and the folder's
 * tokenizer_config.json, generation_config.json and special_tokens_map.json (BOS,
 * EOS), builds the id -> text table, and keeps each thread's last message per
 * tokenizer (the tokenizer itself is read-only after open). Added tokens follow
 * huggingface/tokenizers tokenizers/src/tokenizer/added_vocabulary.rs and
 * serialization.rs (ids from the file; a text of the model's vocab keeps its id). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tokenizer.h"

/* Each thread's last message on up to TK_TLS tokenizers (lorajit_tokenizer_errmsg
 * is per thread, so that threads sharing one tokenizer never see each other's).
 * Thread-local, so not shared state; tk_serial (atomic) tells a tokenizer from a
 * freed one at the same address. */
#define TK_TLS 8
typedef struct tls_msg {
    const lorajit_tokenizer *t;
    uint64_t serial;
    char msg[1024];
} tls_msg;
static _Thread_local tls_msg tk_tls[TK_TLS];
static _Thread_local unsigned tk_tls_next;
static atomic_uint_fast64_t tk_serial;

static tls_msg *tls_slot(const lorajit_tokenizer *t, bool make) {
    for (int i = 0; i < TK_TLS; i++)
        if (tk_tls[i].t == t && tk_tls[i].serial == t->serial) return &tk_tls[i];
    if (!make) return NULL;
    tls_msg *m = &tk_tls[tk_tls_next++ % TK_TLS];
    m->t = t;
    m->serial = t->serial;
    return m;
}
lorajit_status tk_fail(const lorajit_tokenizer *t, lorajit_status s, const char *fmt, ...) {
    tls_msg *m = tls_slot(t, true);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->msg, sizeof m->msg, fmt, ap);
    va_end(ap);
    return s;
}
void tk_ok(const lorajit_tokenizer *t) {
    tls_msg *m = tls_slot(t, false);
    if (m) m->msg[0] = '\0';
}

/* ---- added tokens ---- */
static int added_cmp(const void *a, const void *b) {
    const tk_added *x = a, *y = b;
    unsigned char cx = (unsigned char)x->text[0], cy = (unsigned char)y->text[0];
    if (cx != cy) return cx < cy ? -1 : 1;
    return x->len != y->len ? (x->len > y->len ? -1 : 1) : 0;
}
static lorajit_status read_added(lorajit_tokenizer *t, const lj_json_at *at, const cJSON *root) {
    const cJSON *list = NULL, *e;
    lorajit_status st = lj_json_array(at, root, "added_tokens", LJ_JSON_OPTIONAL, &list);
    if (st || !list) return st;
    int n = cJSON_GetArraySize(list), i = 0;
    t->added = lj_calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added || !tk_map_init(&t->added_map, (uint32_t)n))
        return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    cJSON_ArrayForEach(e, list) {
        char pre[64];
        snprintf(pre, sizeof pre, "added_tokens[%d].", i++);
        lj_json_at a = {at->path, pre, at->err};
        tk_added *x = &t->added[t->n_added];
        const char *content;
        int64_t id;
        if ((st = lj_json_int(&a, e, "id", LJ_JSON_REQUIRED, 0, TK_MAX_VOCAB - 1, &id)) ||
            (st = lj_json_string(&a, e, "content", LJ_JSON_REQUIRED, &content)) ||
            (st = lj_json_bool(&a, e, "special", LJ_JSON_OPTIONAL, &x->special)) ||
            (st = lj_json_bool(&a, e, "lstrip", LJ_JSON_OPTIONAL, &x->lstrip)) ||
            (st = lj_json_bool(&a, e, "rstrip", LJ_JSON_OPTIONAL, &x->rstrip)) ||
            (st = lj_json_bool(&a, e, "normalized", LJ_JSON_OPTIONAL, &x->normalized)) ||
            (st = lj_json_bool(&a, e, "single_word", LJ_JSON_OPTIONAL, &x->single_word)))
            return st;
        x->len = strlen(content);
        if (!x->len || tk_utf8_invalid_at(content, x->len) != x->len)
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%scontent\" must be non-empty UTF-8", at->path, pre);
        int32_t model_id = tk_map_get(&t->bpe.vocab, content, x->len);
        if (model_id >= 0 && model_id != id)
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%sid\" is %lld but model.vocab gives \"%.64s\" "
                           "id %d", at->path, pre, (long long)id, content, model_id);
        x->id = (int32_t)id;
        if (!(x->text = lj_strdup(content))) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
        long r = tk_map_put(&t->added_map, content, x->len, (int32_t)id);
        if (r < 0) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
        t->n_added++;
        if (r > 0)
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%scontent\": \"%.64s\" is added twice", at->path,
                           pre, content);
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, added_cmp);
    for (i = 0; i < t->n_added; i++) t->added_first[(unsigned char)t->added[i].text[0]] = 1;
    return LORAJIT_OK;
}

/* The id -> text table over the model's vocab and the added tokens. */
static lorajit_status build_ids(lorajit_tokenizer *t, const char *path, lj_err *err) {
    const tk_map *v = &t->bpe.vocab;
    int32_t max = -1;
    for (uint32_t e = 0; e < v->cap; e++)
        if (v->slot[e].tag && v->slot[e].val > max) max = v->slot[e].val;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max) max = t->added[i].id;
    t->vocab_size = max + 1;
    t->id_text = lj_calloc((size_t)t->vocab_size + 1, sizeof *t->id_text);
    t->id_len = lj_calloc((size_t)t->vocab_size + 1, sizeof *t->id_len);
    t->id_special = lj_calloc((size_t)t->vocab_size + 1, 1);
    if (!t->id_text || !t->id_len || !t->id_special) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    for (uint32_t e = 0; e < v->cap; e++) {
        if (!v->slot[e].tag) continue;
        int32_t id = v->slot[e].val;
        t->id_text[id] = v->keys.p + v->slot[e].off;
        t->id_len[id] = v->slot[e].len;
    }
    for (int i = 0; i < t->n_added; i++) {
        tk_added *x = &t->added[i];
        if (t->id_text[x->id] && (t->id_len[x->id] != x->len || memcmp(t->id_text[x->id], x->text, x->len)))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"added_tokens\": id %d is \"%.64s\" there and "
                           "\"%.64s\" in model.vocab", path, x->id, x->text, t->id_text[x->id]);
        t->id_text[x->id] = x->text;
        t->id_len[x->id] = (uint32_t)x->len;
        t->id_special[x->id] = x->special;
    }
    for (int k = 0; k < t->post.n; k++)
        for (int j = 0; j < t->post.step[k].tmpl_n; j++)
            if (t->post.step[k].tmpl[j] >= t->vocab_size)
                return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"post_processor\": special token id %d is outside "
                               "the vocabulary (%d)", path, t->post.step[k].tmpl[j], t->vocab_size);
    return LORAJIT_OK;
}

/* The tree of text with model.vocab and model.merges (sc) emptied: cut out ("{}",
 * "[]") for speed; when that fails, parsed again blanked with spaces (same length),
 * so that a message's byte offsets are the file's. sc NULL: the whole text. */
static lorajit_status parse_tree(const char *text, size_t len, const tk_model_scan *sc, const char *path,
                                 cJSON **root, lj_err *err) {
    if (!sc) return lj_json_parse_max(text, len, path, 0, TK_MAX_JSON_VALUES, root, err);
    const size_t *r[2] = {sc->vocab, sc->merges};
    if (r[0][0] > r[1][0]) r[0] = sc->merges, r[1] = sc->vocab;
    char *copy = lj_malloc(len + 4 - (r[0][1] - r[0][0]) - (r[1][1] - r[1][0]));
    if (!copy) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    size_t n = 0, from = 0;
    for (int k = 0; k < 2; k++) { /* keep each value's brackets, drop what is inside */
        memcpy(copy + n, text + from, r[k][0] + 1 - from);
        n += r[k][0] + 1 - from;
        from = r[k][1] - 1;
    }
    memcpy(copy + n, text + from, len - from);
    n += len - from;
    lorajit_status st = lj_json_parse_max(copy, n, path, 0, TK_MAX_JSON_VALUES, root, err);
    free(copy);
    if (st && st != LORAJIT_E_NOMEM) {
        if (!(copy = lj_malloc(len + 1))) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
        memcpy(copy, text, len);
        for (int k = 0; k < 2; k++) memset(copy + r[k][0] + 1, ' ', r[k][1] - r[k][0] - 2);
        st = lj_json_parse_max(copy, len, path, 0, TK_MAX_JSON_VALUES, root, err);
        free(copy);
    }
    return st;
}

/* Fills t from the tree of the file (vocab and merges from the text at sc; NULL:
 * the file was not scanned, and tk_bpe_read says so). */
static lorajit_status read_parts(lorajit_tokenizer *t, const char *text, size_t len, const tk_model_scan *sc,
                                 const char *path, lj_err *err) {
    cJSON *root = NULL;
    lorajit_status st = parse_tree(text, len, sc, path, &root, err);
    if (st) return st;
    lj_json_at at = {path, "", err};
    const cJSON *model;
    const char *type = NULL;
    if (!cJSON_IsObject(root)) {
        st = lj_fail(err, LORAJIT_E_FORMAT, "%s: the top level is not a JSON object", path);
    } else if (!(st = lj_json_object(&at, root, "model", LJ_JSON_REQUIRED, &model))) {
        lj_json_at m = {path, "model.", err};
        if (!(st = lj_json_string(&m, model, "type", LJ_JSON_OPTIONAL, &type)) && type && strcmp(type, "BPE") != 0)
            st = lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"model.type\": model \"%.32s\" is not implemented "
                         "by lorajit (BPE only)", path, type);
        if (!st && !type && !cJSON_GetObjectItemCaseSensitive(model, "merges"))
            st = lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field \"model\" has no type and no merges: not a BPE model",
                         path);
        if (!st) st = tk_bpe_read(&at, model, text, sc, &t->bpe);
    }
    if (!st) st = read_added(t, &at, root);
    if (!st) st = tk_chain_read(&at, root, "normalizer", &t->normalizer);
    if (!st) st = tk_chain_read(&at, root, "pre_tokenizer", &t->pretok);
    if (!st) st = tk_chain_read(&at, root, "post_processor", &t->post);
    if (!st) st = tk_chain_read(&at, root, "decoder", &t->decoder);
    if (!st) st = build_ids(t, path, err);
    cJSON_Delete(root);
    return st;
}

/* Frees what read_parts filled and empties those fields. */
static void clear_parts(lorajit_tokenizer *t) {
    tk_bpe_free(&t->bpe);
    tk_chain_free(&t->normalizer);
    tk_chain_free(&t->pretok);
    tk_chain_free(&t->post);
    tk_chain_free(&t->decoder);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].text);
    free(t->added);
    tk_map_free(&t->added_map);
    free(t->id_text);
    free(t->id_len);
    free(t->id_special);
    t->added = NULL, t->n_added = 0, t->id_text = NULL, t->id_len = NULL, t->id_special = NULL, t->vocab_size = 0;
    memset(t->added_first, 0, sizeof t->added_first);
}

lorajit_status tk_read_json(lorajit_tokenizer *t, const char *text, size_t len, const char *path, lj_err *err) {
    /* model.vocab and model.merges are read from the text (tk_scan.c), the rest from a
     * tree. A failure with either of them not strict JSON is reported as the whole
     * file's parse reports it (the first bad byte), as when the scan fails. */
    tk_model_scan sc;
    bool scanned = tk_scan_model(text, len, &sc) && text[sc.vocab[0]] == '{' && text[sc.merges[0]] == '[';
    lorajit_status st = scanned ? read_parts(t, text, len, &sc, path, err) : LORAJIT_OK;
    if (!scanned || (st && st != LORAJIT_E_NOMEM && !tk_scan_valid(text, &sc))) {
        clear_parts(t);
        st = read_parts(t, text, len, NULL, path, err);
    }
    return st;
}

/* ---- public ---- */
lorajit_status lorajit_tokenizer_open(lorajit_tokenizer **out, const char *path) {
    lorajit_tokenizer *t = lj_calloc(1, sizeof *t);
    *out = t;
    if (!t) return LORAJIT_E_NOMEM;
    t->serial = atomic_fetch_add(&tk_serial, 1) + 1;
    t->bos_id = -1;
    tk_bytelevel_init(t);
    lj_err err = {0};
    lorajit_status st = LORAJIT_OK;
    char file[4096], dir[4096];
    struct stat sb;
    if (!path) {
        st = lj_fail(&err, LORAJIT_E_ARG, "lorajit_tokenizer_open: path is NULL");
    } else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        st = lj_path_join(file, sizeof file, path, "tokenizer.json", &err);
    } else {
        snprintf(file, sizeof file, "%s", path);
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (strlen(path) >= sizeof file) st = lj_fail(&err, LORAJIT_E_ARG, "path %.64s... is too long", path);
    }
    const char *text = NULL;
    size_t len = 0;
    bool mapped = false;
    if (!st) st = tk_text_read(file, TK_MAX_FILE, &text, &len, &mapped, &err);
    if (!st) st = tk_read_json(t, text, len, file, &err);
    if (text) tk_text_free(text, len, mapped);
    if (!st) st = tk_read_extras(t, dir, &err);
    snprintf(t->open_msg, sizeof t->open_msg, "%s", st ? err.msg : "");
    t->ready = st == LORAJIT_OK;
    return st;
}

void lorajit_tokenizer_free(lorajit_tokenizer *t) {
    if (!t) return;
    clear_parts(t);
    free(t->chat_template);
    for (int i = 0; i < TK_N_SPECIAL; i++) free(t->special_text[i]);
    tls_msg *m = tls_slot(t, false);
    if (m) m->t = NULL;
    free(t);
}

const char *lorajit_tokenizer_errmsg(const lorajit_tokenizer *t) {
    if (!t) return "no tokenizer (out of memory)";
    tls_msg *m = tls_slot(t, false);
    return m ? m->msg : t->open_msg;
}

void lorajit_free(void *p) { free(p); }
