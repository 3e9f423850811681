/* tk_model.c — the BPE model: reads "model" of tokenizer.json (vocab, merges,
 * unk_token, fuse_unk, byte_fallback, ignore_merges) and splits one pre-token into
 * ids. Follows huggingface/tokenizers tokenizers/src/models/bpe/model.rs
 * (merge_word, tokenize) and word.rs (merge_all: a heap of (rank, position), the
 * lowest rank first, the leftmost on ties; stale entries skipped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tokenizer.h"

void tk_bpe_free(tk_bpe *bpe) {
    tk_map_free(&bpe->vocab);
    tk_pairs_free(&bpe->merges);
}

/* One merge "a b" or ["a", "b"] at index i: the two ids and the merged id. */
static lorajit_status read_merge(const lj_json_at *at, const tk_bpe *bpe, const cJSON *m, int i, int32_t ids[3],
                                 tk_buf *tmp) {
    const char *a, *b;
    size_t la, lb;
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges[%d]\" must be two tokens "
                           "separated by one space", at->path, i);
        a = m->valuestring;
        la = (size_t)(sp - a);
        b = sp + 1;
        lb = strlen(b);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next)) {
        a = m->child->valuestring;
        la = strlen(a);
        b = m->child->next->valuestring;
        lb = strlen(b);
    } else {
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges[%d]\" must be \"a b\" or [\"a\", \"b\"]",
                       at->path, i);
    }
    ids[0] = tk_map_get(&bpe->vocab, a, la);
    ids[1] = tk_map_get(&bpe->vocab, b, lb);
    tmp->n = 0;
    tk_buf_add(tmp, a, la);
    tk_buf_add(tmp, b, lb);
    if (tmp->oom) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    ids[2] = tk_map_get(&bpe->vocab, tmp->p, tmp->n);
    const char *missing = ids[0] < 0 ? a : ids[1] < 0 ? b : ids[2] < 0 ? tmp->p : NULL;
    if (missing)
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges[%d]\" references token \"%.64s\", "
                       "which is not in model.vocab", at->path, i, missing);
    return LORAJIT_OK;
}

lorajit_status tk_bpe_read(const lj_json_at *at, const cJSON *model, tk_bpe *bpe) {
    memset(bpe, 0, sizeof *bpe);
    bpe->unk_id = -1;
    lj_json_at m = {at->path, "model.", at->err};
    const cJSON *vocab, *merges;
    const char *unk = NULL, *s = NULL;
    lorajit_status st;
    if ((st = lj_json_object(&m, model, "vocab", LJ_JSON_REQUIRED, &vocab)) ||
        (st = lj_json_array(&m, model, "merges", LJ_JSON_REQUIRED, &merges)) ||
        (st = lj_json_string(&m, model, "unk_token", LJ_JSON_OPTIONAL, &unk)) ||
        (st = lj_json_bool(&m, model, "fuse_unk", LJ_JSON_OPTIONAL, &bpe->fuse_unk)) ||
        (st = lj_json_bool(&m, model, "byte_fallback", LJ_JSON_OPTIONAL, &bpe->byte_fallback)) ||
        (st = lj_json_bool(&m, model, "ignore_merges", LJ_JSON_OPTIONAL, &bpe->ignore_merges)))
        return st;
    const char *refused[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++)
        if ((st = lj_json_string(&m, model, refused[k], LJ_JSON_OPTIONAL, &s))) return st;
        else if (s && *s)
            return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"model.%s\" (\"%.32s\") is not implemented",
                           at->path, refused[k], s);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"model.dropout\": BPE dropout (random "
                       "tokenisation) is not implemented", at->path);
    int nv = cJSON_GetArraySize(vocab), nm = cJSON_GetArraySize(merges);
    if (nv > TK_MAX_VOCAB)
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"model.vocab\" holds %d tokens, over the limit %d",
                       at->path, nv, TK_MAX_VOCAB);
    if (!tk_map_init(&bpe->vocab, (uint32_t)nv) || !tk_pairs_init(&bpe->merges, (uint32_t)nm))
        return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory reading model.vocab", at->path);
    uint8_t *used = calloc((size_t)TK_MAX_VOCAB / 8, 1);
    if (!used) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    const cJSON *v;
    st = LORAJIT_OK;
    cJSON_ArrayForEach(v, vocab) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < TK_MAX_VOCAB) ||
            v->valuedouble != (double)(int32_t)v->valuedouble) { /* range first: the cast needs it */
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab.%.64s\" must be an integer id in "
                         "0..%d", at->path, v->string, TK_MAX_VOCAB - 1);
            break;
        }
        int32_t id = (int32_t)v->valuedouble;
        if (used[id / 8] & (1u << (id % 8))) {
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab.%.64s\": id %d is given to two tokens",
                         at->path, v->string, id);
            break;
        }
        used[id / 8] |= (uint8_t)(1u << (id % 8));
        long r = tk_map_put(&bpe->vocab, v->string, strlen(v->string), id);
        if (r != 0) {
            st = r < 0 ? lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory reading model.vocab", at->path)
                       : lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab\": token \"%.64s\" appears twice",
                                 at->path, v->string);
            break;
        }
    }
    free(used);
    if (st) return st;
    tk_buf tmp = {0};
    int i = 0;
    cJSON_ArrayForEach(v, merges) {
        int32_t ids[3] = {-1, -1, -1};
        if ((st = read_merge(at, bpe, v, i, ids, &tmp))) break;
        tk_pairs_put(&bpe->merges, ids[0], ids[1], i, ids[2]);
        i++;
    }
    tk_buf_free(&tmp);
    if (st) return st;
    if (unk && (bpe->unk_id = tk_map_get(&bpe->vocab, unk, strlen(unk))) < 0)
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.unk_token\" (\"%.64s\") is not in model.vocab",
                       at->path, unk);
    for (int b = 0; b < 256; b++) {
        char code[8];
        snprintf(code, sizeof code, "<0x%02X>", b);
        bpe->byte_id[b] = tk_map_get(&bpe->vocab, code, 6);
    }
    for (int b = 0; b < 128; b++) {
        char c = (char)b;
        bpe->char_id[b] = tk_map_get(&bpe->vocab, &c, 1);
    }
    return LORAJIT_OK;
}

/* ---- one word ---- */
typedef struct sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    int32_t len;        /* 0: merged away */
} sym;
typedef struct cand {
    int32_t rank, pos, id;
} cand;
static bool cand_less(cand a, cand b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }
static void heap_push(cand *h, int *n, cand c) {
    int i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}
static cand heap_pop(cand *h, int *n) {
    cand top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}
static void add_sym(sym *s, int *n, int32_t id, int32_t len) {
    s[*n] = (sym){id, *n - 1, -1, len};
    if (*n) s[*n - 1].next = *n;
    (*n)++;
}

bool tk_bpe_word(const tk_bpe *bpe, const char *w, size_t n, tk_buf *out) {
    if (!n) return true;
    int32_t whole = bpe->ignore_merges ? tk_map_get(&bpe->vocab, w, n) : -1;
    if (whole >= 0) {
        tk_buf_add(out, &whole, sizeof whole);
        return !out->oom;
    }
    sym stack_s[64];
    cand stack_h[128];
    size_t cap = n + 1; /* at most one symbol per byte */
    sym *s = cap <= 64 ? stack_s : malloc(cap * sizeof *s);
    cand *h = cap <= 64 ? stack_h : malloc(2 * cap * sizeof *h);
    if (!s || !h) goto oom;
    int ns = 0;
    int32_t unk_len = 0; /* a pending unk of unk_len bytes */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)w[i];
        size_t l = (size_t)tk_utf8_len(c);
        if (l > n - i) l = n - i;
        int32_t id = c < 128 ? bpe->char_id[c] : tk_map_get(&bpe->vocab, w + i, l);
        if (id >= 0) {
            if (unk_len) { add_sym(s, &ns, bpe->unk_id, unk_len); unk_len = 0; }
            add_sym(s, &ns, id, (int32_t)l);
        } else {
            bool all = bpe->byte_fallback;
            for (size_t k = 0; k < l && all; k++) all = bpe->byte_id[(unsigned char)w[i + k]] >= 0;
            if (all) {
                for (size_t k = 0; k < l; k++) add_sym(s, &ns, bpe->byte_id[(unsigned char)w[i + k]], 1);
            } else if (bpe->unk_id >= 0) {
                if (unk_len && !bpe->fuse_unk) { add_sym(s, &ns, bpe->unk_id, unk_len); unk_len = 0; }
                unk_len += (int32_t)l;
            }
        }
        i += l;
    }
    if (unk_len) add_sym(s, &ns, bpe->unk_id, unk_len);
    int nh = 0;
    for (int i = 0; i + 1 < ns; i++) {
        int32_t id, r = tk_pairs_get(&bpe->merges, s[i].id, s[i + 1].id, &id);
        if (r >= 0) heap_push(h, &nh, (cand){r, i, id});
    }
    while (nh) {
        cand c = heap_pop(h, &nh);
        sym *a = &s[c.pos];
        if (!a->len || a->next < 0) continue;
        sym *b = &s[a->next];
        int32_t id, r = tk_pairs_get(&bpe->merges, a->id, b->id, &id);
        if (r != c.rank || id != c.id) continue;
        a->id = c.id;
        a->len += b->len;
        a->next = b->next;
        b->len = 0;
        if (a->next >= 0) s[a->next].prev = c.pos;
        if (a->prev >= 0 && (r = tk_pairs_get(&bpe->merges, s[a->prev].id, a->id, &id)) >= 0)
            heap_push(h, &nh, (cand){r, a->prev, id});
        if (a->next >= 0 && (r = tk_pairs_get(&bpe->merges, a->id, s[a->next].id, &id)) >= 0)
            heap_push(h, &nh, (cand){r, c.pos, id});
    }
    for (int i = 0; i >= 0 && i < ns; i = s[i].next) tk_buf_add(out, &s[i].id, sizeof s[i].id);
    if (s != stack_s) free(s);
    if (h != stack_h) free(h);
    return !out->oom;
oom:
    if (s != stack_s) free(s);
    if (h != stack_h) free(h);
    return false;
}
