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

/* The two readers below take entries in batches of TK_BATCH: parse them all and
 * prefetch their hash slots, then insert or look them up in order, so the table's
 * cache misses overlap instead of coming one after another. A parse error is held
 * until the entries before it are in, so that messages come in the file's order. */
enum { TK_BATCH = 16 };

/* model.vocab from text[r[0]..r[1]): {"token": id, ...}. */
static lorajit_status read_vocab(const lj_json_at *at, const char *s, const size_t r[2], tk_bpe *bpe, uint8_t *used) {
    size_t n = r[1], i = tk_scan_ws(s, n, r[0] + 1), bad_at = 0;
    tk_buf key[TK_BATCH] = {{0}};
    int32_t id[TK_BATCH];
    uint64_t h[TK_BATCH];
    lorajit_status st = LORAJIT_OK;
    int more = !(i < n && s[i] == '}'), bad = 0; /* bad: 1 string, 2 ':', 3 id, 4 what follows */
    while (more == 1 && !bad && !st) {
        int nb = 0;
        while (nb < TK_BATCH && more == 1) {
            tk_buf *k = &key[nb];
            double v = -1;
            if (i >= n || s[i] != '"' || !tk_scan_string(s, n, &i, k)) { bad = 1, bad_at = i; break; }
            i = tk_scan_ws(s, n, i);
            if (i >= n || s[i] != ':') { bad = 2, bad_at = i; break; }
            i = tk_scan_ws(s, n, i + 1);
            if (!tk_scan_number(s, n, &i, &v) || !(v >= 0 && v < TK_MAX_VOCAB) || v != (double)(int32_t)v) {
                bad = 3;
                break;
            }
            id[nb] = (int32_t)v;
            h[nb] = tk_map_hash(k->p, k->n);
            tk_map_prefetch(&bpe->vocab, h[nb++]);
            if ((more = tk_scan_next(s, n, &i, '}')) < 0) bad = 4, bad_at = i - 1;
        }
        for (int j = 0; j < nb && !st; j++) {
            if (used[id[j] / 8] & (1u << (id[j] % 8))) {
                st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab.%.64s\": id %d is given to two "
                             "tokens", at->path, key[j].p, id[j]);
                break;
            }
            used[id[j] / 8] |= (uint8_t)(1u << (id[j] % 8));
            long put = tk_map_put_hashed(&bpe->vocab, key[j].p, key[j].n, id[j], h[j]);
            if (put != 0)
                st = put < 0 ? lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory reading model.vocab", at->path)
                             : lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab\": key \"%.64s\" appears "
                                       "twice", at->path, key[j].p);
        }
        if (st || !bad) continue;
        if (bad == 1)
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab\": bad token string at byte %zu",
                         at->path, bad_at);
        else if (bad == 2)
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab\": ':' expected at byte %zu", at->path,
                         bad_at);
        else if (bad == 3)
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab.%.64s\" must be an integer id in "
                         "0..%d", at->path, key[nb].p, TK_MAX_VOCAB - 1);
        else
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.vocab\": bad JSON at byte %zu", at->path,
                         bad_at);
    }
    for (int j = 0; j < TK_BATCH; j++) tk_buf_free(&key[j]);
    return st;
}

/* One merge of a batch: the two tokens concatenated in ab, a = ab[0..la). */
typedef struct merge_item {
    tk_buf ab;
    size_t la;
    int idx;            /* its rank */
    uint64_t h[3];      /* hashes of a, b, ab */
    int32_t ids[3];
} merge_item;

/* Parses the merge at s[*i] ("a b" or ["a", "b"]) into m; 0, or 1 when the string
 * is not two tokens separated by one space, 2 for any other shape. */
static int parse_merge(const char *s, size_t n, size_t *i, merge_item *m, tk_buf *b) {
    if (*i < n && s[*i] == '"' && tk_scan_string(s, n, i, &m->ab)) {
        const char *sp = memchr(m->ab.p, ' ', m->ab.n);
        if (!sp || memchr(sp + 1, ' ', m->ab.n - (size_t)(sp + 1 - m->ab.p))) return 1;
        m->la = (size_t)(sp - m->ab.p);
        memmove(m->ab.p + m->la, sp + 1, m->ab.n - m->la - 1);
        m->ab.p[--m->ab.n] = '\0';
        return 0;
    }
    if (*i >= n || s[*i] != '[') return 2;
    *i = tk_scan_ws(s, n, *i + 1);
    if (*i < n && s[*i] == '"' && tk_scan_string(s, n, i, &m->ab) && tk_scan_next(s, n, i, ']') == 1 &&
        *i < n && s[*i] == '"' && tk_scan_string(s, n, i, b) && tk_scan_next(s, n, i, ']') == 0) {
        m->la = m->ab.n;
        tk_buf_add(&m->ab, b->p, b->n);
        return 0;
    }
    return 2;
}

/* model.merges from text[r[0]..r[1]): ["a b", ...] or [["a", "b"], ...]. Every
 * token and each concatenation must be in the vocab. */
static lorajit_status read_merges(const lj_json_at *at, const char *s, const size_t r[2], tk_bpe *bpe) {
    size_t n = r[1], i = tk_scan_ws(s, n, r[0] + 1), bad_at = 0;
    merge_item m[TK_BATCH];
    tk_buf b = {0};
    memset(m, 0, sizeof m);
    lorajit_status st = LORAJIT_OK;
    int more = !(i < n && s[i] == ']'), bad = 0, idx = 0; /* bad: parse_merge's 1, 2; 3 what follows */
    while (more == 1 && !bad && !st) {
        int nb = 0;
        while (nb < TK_BATCH && more == 1) {
            merge_item *x = &m[nb];
            if ((bad = parse_merge(s, n, &i, x, &b))) break;
            if (x->ab.oom) {
                st = lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
                break;
            }
            size_t lb = x->ab.n - x->la;
            x->h[0] = tk_map_hash(x->ab.p, x->la);
            x->h[1] = tk_map_hash(x->ab.p + x->la, lb);
            x->h[2] = tk_map_hash(x->ab.p, x->ab.n);
            for (int k = 0; k < 3; k++) tk_map_prefetch(&bpe->vocab, x->h[k]);
            x->idx = idx++;
            nb++;
            if ((more = tk_scan_next(s, n, &i, ']')) < 0) bad = 3, bad_at = i - 1;
        }
        for (int j = 0; j < nb && !st; j++) {
            merge_item *x = &m[j];
            const char *tok[3] = {x->ab.p, x->ab.p + x->la, x->ab.p};
            size_t len[3] = {x->la, x->ab.n - x->la, x->ab.n};
            for (int k = 0; k < 3 && !st; k++)
                if ((x->ids[k] = tk_map_get_hashed(&bpe->vocab, tok[k], len[k], x->h[k])) < 0)
                    st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges[%d]\" references token "
                                 "\"%.*s\", which is not in model.vocab", at->path, x->idx,
                                 len[k] < 64 ? (int)len[k] : 64, tok[k]);
            if (!st) tk_pairs_prefetch(&bpe->merges, x->ids[0], x->ids[1]);
        }
        for (int j = 0; j < nb && !st; j++) tk_pairs_put(&bpe->merges, m[j].ids[0], m[j].ids[1], m[j].idx, m[j].ids[2]);
        if (st || !bad) continue;
        if (bad == 1)
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges[%d]\" must be two tokens separated by "
                         "one space", at->path, idx);
        else if (bad == 2)
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges[%d]\" must be \"a b\" or [\"a\", "
                         "\"b\"]", at->path, idx);
        else
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"model.merges\": bad JSON at byte %zu", at->path,
                         bad_at);
    }
    for (int j = 0; j < TK_BATCH; j++) tk_buf_free(&m[j].ab);
    tk_buf_free(&b);
    return st;
}

lorajit_status tk_bpe_read(const lj_json_at *at, const cJSON *model, const char *text, const tk_model_scan *sc,
                           tk_bpe *bpe) {
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
    if (!text || !sc)
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: fields \"model.vocab\" and \"model.merges\" could not "
                       "be scanned (malformed JSON around them, or nested over 256 deep)", at->path);
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
    uint32_t nv = sc->n_vocab, nm = sc->n_merges;
    if (nv > TK_MAX_VOCAB)
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"model.vocab\" holds over %d tokens, over the limit",
                       at->path, TK_MAX_VOCAB);
    /* the keys take at most the bytes of their JSON text: one arena, sized once */
    if (!tk_map_init(&bpe->vocab, nv) || !tk_pairs_init(&bpe->merges, nm) ||
        !tk_buf_reserve(&bpe->vocab.keys, sc->vocab[1] - sc->vocab[0] + 1))
        return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory reading model.vocab", at->path);
    uint8_t *used = calloc((size_t)TK_MAX_VOCAB / 8, 1);
    if (!used) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    st = read_vocab(at, text, sc->vocab, bpe, used);
    free(used);
    if (st || (st = read_merges(at, text, sc->merges, bpe))) return st;
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
