/* tk_encode.c — text -> ids, the pipeline of huggingface/tokenizers
 * tokenizers/src/tokenizer/mod.rs (encode_single_sequence): added tokens matched in
 * the raw text (added_vocabulary.rs: leftmost-longest, single_word, lstrip,
 * rstrip; normalized ones matched again after normalising), normalizers
 * (normalizers/{unicode,prepend,replace}.rs), pre-tokenizers
 * (pre_tokenizers/{split,byte_level,metaspace}.rs and normalizer.rs's split
 * behaviours), the BPE model per word, then the post-processor's template
 * (processors/template.rs). One call's scratch is its own: t is only read. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer.h"

typedef struct piece {
    size_t off, len; /* in the list's text */
    bool origin;     /* starts at byte 0 of the original text (Metaspace "first") */
} piece;
typedef struct plist {
    tk_buf pieces; /* piece[] */
    tk_buf text;
} plist;
typedef struct work {
    plist a, b;    /* pre-tokenizer ping-pong */
    tk_buf norm;   /* a normalised segment */
    tk_buf tmp;
    plist bl;      /* ByteLevel's pieces before their bytes are mapped */
    void *md[TK_MAX_STEPS + 1];
    bool fail;     /* the regex engine gave up */
} work;

static void plist_add(plist *l, const char *s, size_t n, bool origin) {
    if (!n) return; /* HF drops empty pieces */
    piece p = {l->text.n, n, origin};
    tk_buf_add(&l->text, s, n);
    tk_buf_add(&l->pieces, &p, sizeof p);
}
static void plist_clear(plist *l) { l->pieces.n = l->text.n = 0; }

/* ---- Unicode classes (Rust's char::is_whitespace = White_Space; regex \w) ---- */
static bool is_space_cp(int32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
static bool is_word_cp(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_ND) || k == UTF8PROC_CATEGORY_NL ||
           k == UTF8PROC_CATEGORY_PC || c == 0x200C || c == 0x200D;
}
static int32_t cp_at(const char *s, size_t n, size_t i) {
    utf8proc_int32_t c = -1;
    utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
    return c;
}
static int32_t cp_before(const char *s, size_t i, size_t *start) {
    size_t k = i;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80) k--;
    if (k > 0) k--;
    *start = k;
    return cp_at(s, i, k);
}

/* ---- added tokens (added_vocabulary.rs find_matches) ---- */
typedef struct seg {
    int32_t id; /* -1: text */
    size_t s, e;
} seg;
/* Splits s[0..n) on the added tokens whose normalized flag equals normalized. */
static void split_added(const lorajit_tokenizer *t, const char *s, size_t n, bool normalized, tk_buf *segs) {
    size_t start_offset = 0;
    for (size_t i = 0; i < n;) {
        const tk_added *hit = NULL;
        if (t->added_first[(unsigned char)s[i]]) {
            for (int k = 0; k < t->n_added; k++) { /* sorted by first byte, longest first */
                const tk_added *a = &t->added[k];
                if ((unsigned char)a->text[0] != (unsigned char)s[i] || a->normalized != normalized) continue;
                if (a->len <= n - i && memcmp(s + i, a->text, a->len) == 0) { hit = a; break; }
            }
        }
        if (!hit) { i++; continue; }
        size_t start = i, stop = i + hit->len, k;
        i = stop;
        if (hit->single_word) {
            bool ws = start == 0 || !is_word_cp(cp_before(s, start, &k));
            bool we = stop == n || !is_word_cp(cp_at(s, n, stop));
            if (!ws || !we) continue;
        }
        if (hit->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                int32_t c = cp_before(s, ns, &k);
                if (!is_space_cp(c)) break;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (hit->rstrip)
            while (stop < n && is_space_cp(cp_at(s, n, stop))) stop += (size_t)tk_utf8_len((unsigned char)s[stop]);
        if (start_offset < start) tk_buf_add(segs, &(seg){-1, start_offset, start}, sizeof(seg));
        tk_buf_add(segs, &(seg){hit->id, start, stop}, sizeof(seg));
        start_offset = stop;
        i = stop;
    }
    if (start_offset < n) tk_buf_add(segs, &(seg){-1, start_offset, n}, sizeof(seg));
}

/* ---- normalizers ---- */
/* Normalises s[0..n) into w->norm. */
static void normalize(const lorajit_tokenizer *t, work *w, const char *s, size_t n) {
    tk_buf *cur = &w->norm, *nxt = &w->tmp;
    cur->n = 0;
    tk_buf_add(cur, s, n);
    for (int i = 0; i < t->normalizer.n; i++) {
        const tk_step *st = &t->normalizer.step[i];
        nxt->n = 0;
        if (st->kind == TK_PREPEND) {
            if (!cur->n) continue;
            tk_buf_add(nxt, st->text, st->text_len);
            tk_buf_add(nxt, cur->p, cur->n);
        } else if (st->kind == TK_REPLACE) {
            if (!tk_pattern_replace(&st->pat, cur->p, cur->n, st->text, st->text_len, nxt)) w->fail = !nxt->oom;
        } else {
            size_t j = 0;
            while (j < cur->n && (unsigned char)cur->p[j] < 0x80) j++;
            if (j == cur->n) continue; /* ASCII: every normal form is the identity */
            int opt = UTF8PROC_STABLE | (st->kind == TK_NFC || st->kind == TK_NFKC ? UTF8PROC_COMPOSE
                                                                                  : UTF8PROC_DECOMPOSE) |
                      (st->kind == TK_NFKC || st->kind == TK_NFKD ? UTF8PROC_COMPAT : 0);
            utf8proc_uint8_t *r = NULL;
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)cur->p, (utf8proc_ssize_t)cur->n, &r,
                                              (utf8proc_option_t)opt);
            if (m < 0) { nxt->oom = true; continue; }
            tk_buf_add(nxt, r, (size_t)m);
            free(r);
        }
        tk_buf t2 = *cur;
        *cur = *nxt;
        *nxt = t2;
    }
    if (cur != &w->norm) { /* keep the result in w->norm */
        tk_buf t2 = w->norm;
        w->norm = *cur;
        *cur = t2;
    }
}

/* ---- pre-tokenizers ---- */
/* Splits s[0..n) by st's pattern with st's behaviour into out (normalizer.rs
 * split: ranges of matches and gaps, merged per behaviour, empty ones dropped). */
static void split_piece(const tk_step *st, void *md, const char *s, size_t n, bool origin, plist *out, bool *fail) {
    size_t prev = 0, ms, me, from = 0, rs[2], re[2];
    bool rm[2], more = true, pend = false, prev_match = false;
    size_t pend_s = 0, pend_e = 0;
#define EMIT(a, b) (plist_add(out, s + (a), (b) - (a), origin && (a) == 0))
    while (more) {
        int r = from <= n ? tk_pattern_find(&st->pat, s, n, from, md, &ms, &me) : 0, nr = 0;
        if (r < 0) { *fail = true; return; }
        if (r > 0) {
            if (ms > prev) { rs[nr] = prev; re[nr] = ms; rm[nr++] = false; }
            rs[nr] = ms; re[nr] = me; rm[nr++] = true;
            prev = me;
            from = me > ms ? me : me + (me < n ? (size_t)tk_utf8_len((unsigned char)s[me]) : 1);
        } else {
            if (prev < n) { rs[nr] = prev; re[nr] = n; rm[nr++] = false; }
            more = false;
        }
        for (int k = 0; k < nr; k++) {
            bool m = st->invert ? !rm[k] : rm[k];
            switch (st->behavior) {
            case TK_ISOLATED: EMIT(rs[k], re[k]); break;
            case TK_REMOVED: if (!m) EMIT(rs[k], re[k]); break;
            case TK_MERGED_PREV: /* a match after a non-match joins the piece before it */
                if (m && !prev_match && pend) { pend_e = re[k]; break; }
                if (pend) EMIT(pend_s, pend_e);
                pend = true; pend_s = rs[k]; pend_e = re[k];
                break;
            case TK_MERGED_NEXT: /* a match joins the non-match after it (pend: a match waiting) */
                if (pend && !m) { EMIT(pend_s, re[k]); pend = false; break; }
                if (pend) EMIT(pend_s, pend_e);
                pend = m; pend_s = rs[k]; pend_e = re[k];
                if (!m) EMIT(rs[k], re[k]);
                break;
            case TK_CONTIGUOUS:
                if (pend && m == prev_match) { pend_e = re[k]; break; }
                if (pend) EMIT(pend_s, pend_e);
                pend = true; pend_s = rs[k]; pend_e = re[k];
                break;
            }
            prev_match = m;
        }
    }
    if (pend) EMIT(pend_s, pend_e);
#undef EMIT
}

/* ByteLevel of one piece: a space in front (add_prefix_space), the GPT-2 regex
 * split (use_regex), then every byte as its character. */
static void bytelevel_piece(const lorajit_tokenizer *t, const tk_step *st, work *w, void *md, const char *s, size_t n,
                            bool origin, plist *out) {
    plist *bl = &w->bl;
    plist_clear(bl);
    if (st->prefix_space && s[0] != ' ') {
        w->tmp.n = 0;
        tk_buf_addc(&w->tmp, ' ');
        tk_buf_add(&w->tmp, s, n);
        s = w->tmp.p;
        n = w->tmp.n;
    }
    if (st->use_regex) {
        tk_step split = {.kind = TK_SPLIT, .pat = st->pat, .behavior = TK_ISOLATED};
        split_piece(&split, md, s, n, origin, bl, &w->fail);
    } else {
        plist_add(bl, s, n, origin);
    }
    const piece *q = (const piece *)bl->pieces.p;
    size_t nq = bl->pieces.n / sizeof *q;
    for (size_t k = 0; k < nq; k++) {
        piece p = {out->text.n, 0, q[k].origin};
        for (size_t j = 0; j < q[k].len; j++) {
            unsigned char b = (unsigned char)bl->text.p[q[k].off + j];
            tk_buf_add(&out->text, t->bl_chr[b], t->bl_len[b]);
        }
        p.len = out->text.n - p.off;
        tk_buf_add(&out->pieces, &p, sizeof p);
    }
}

/* Metaspace (metaspace.rs): spaces become the replacement, which is prepended per
 * prepend_scheme, then (split) each replacement starts a new piece. */
static void metaspace_piece(const tk_step *st, const char *s, size_t n, bool origin, plist *out) {
    tk_buf *b = &out->text;
    size_t start = b->n;
    bool has = n >= st->text_len && memcmp(s, st->text, st->text_len) == 0;
    if (s[0] != ' ' && !has &&
        (st->prepend_scheme == TK_PREPEND_ALWAYS || (st->prepend_scheme == TK_PREPEND_FIRST && origin)))
        tk_buf_add(b, st->text, st->text_len);
    for (size_t j = 0; j < n; j++) {
        if (s[j] == ' ') tk_buf_add(b, st->text, st->text_len);
        else tk_buf_addc(b, s[j]);
    }
    size_t end = b->n, ps = start;
    if (st->split)
        for (size_t j = start; j < end; j += (size_t)tk_utf8_len((unsigned char)b->p[j]))
            if (j > ps && end - j >= st->text_len && memcmp(b->p + j, st->text, st->text_len) == 0) {
                tk_buf_add(&out->pieces, &(piece){ps, j - ps, origin && ps == start}, sizeof(piece));
                ps = j;
            }
    if (end > ps) tk_buf_add(&out->pieces, &(piece){ps, end - ps, origin && ps == start}, sizeof(piece));
}

/* ---- the pipeline ---- */
/* Normalised text (w->norm) -> pre-tokens -> ids appended to out. */
static void encode_text(const lorajit_tokenizer *t, work *w, const char *s, size_t n, bool origin, tk_buf *out) {
    plist *cur = &w->a, *nxt = &w->b;
    plist_clear(cur);
    plist_add(cur, s, n, origin);
    for (int i = 0; i < t->pretok.n && !w->fail; i++) {
        const tk_step *st = &t->pretok.step[i];
        if (st->pat.re && !w->md[i] && !(w->md[i] = tk_match_new(&st->pat))) { w->fail = true; return; }
        plist_clear(nxt);
        const piece *p = (const piece *)cur->pieces.p;
        size_t np = cur->pieces.n / sizeof *p;
        for (size_t k = 0; k < np && !w->fail; k++) {
            const char *ps = cur->text.p + p[k].off;
            if (st->kind == TK_SPLIT) split_piece(st, w->md[i], ps, p[k].len, p[k].origin, nxt, &w->fail);
            else if (st->kind == TK_BYTELEVEL) bytelevel_piece(t, st, w, w->md[i], ps, p[k].len, p[k].origin, nxt);
            else metaspace_piece(st, ps, p[k].len, p[k].origin, nxt);
        }
        plist *x = cur;
        cur = nxt;
        nxt = x;
    }
    const piece *p = (const piece *)cur->pieces.p;
    size_t np = cur->pieces.n / sizeof *p;
    for (size_t k = 0; k < np; k++)
        if (!tk_bpe_word(&t->bpe, cur->text.p + p[k].off, p[k].len, out)) out->oom = true;
    if (cur->text.oom || cur->pieces.oom || nxt->text.oom || nxt->pieces.oom) out->oom = true;
}

/* Whether some added token has normalized set to flag. */
static bool any_added(const lorajit_tokenizer *t, bool normalized) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized) return true;
    return false;
}

bool tk_encode(const lorajit_tokenizer *t, const char *text, size_t len, bool add_special, tk_buf *out) {
    work w = {0};
    tk_buf segs = {0}, segs2 = {0}, ids = {0};
    if (any_added(t, false)) split_added(t, text, len, false, &segs);
    else if (len) tk_buf_add(&segs, &(seg){-1, 0, len}, sizeof(seg));
    bool norm_added = any_added(t, true);
    const seg *sg = (const seg *)segs.p;
    size_t nseg = segs.n / sizeof *sg;
    for (size_t i = 0; i < nseg && !w.fail; i++) {
        if (sg[i].id >= 0) { tk_buf_add(&ids, &sg[i].id, sizeof(int32_t)); continue; }
        normalize(t, &w, text + sg[i].s, sg[i].e - sg[i].s);
        if (w.norm.oom || w.fail) break;
        if (!norm_added) {
            encode_text(t, &w, w.norm.p, w.norm.n, sg[i].s == 0, &ids);
            continue;
        }
        segs2.n = 0;
        split_added(t, w.norm.p, w.norm.n, true, &segs2);
        const seg *s2 = (const seg *)segs2.p;
        for (size_t k = 0; k < segs2.n / sizeof *s2; k++) {
            if (s2[k].id >= 0) tk_buf_add(&ids, &s2[k].id, sizeof(int32_t));
            else encode_text(t, &w, w.norm.p + s2[k].s, s2[k].e - s2[k].s, sg[i].s == 0 && s2[k].s == 0, &ids);
        }
    }
    bool ok = !w.fail && !w.norm.oom && !ids.oom && !segs.oom && !segs2.oom;
    /* post-processor: each template wraps what the steps before it made */
    for (int i = 0; i < t->post.n && ok && add_special; i++) {
        const tk_step *st = &t->post.step[i];
        if (st->kind != TK_TEMPLATE) continue;
        tk_buf wrapped = {0};
        for (int k = 0; k < st->tmpl_n; k++)
            if (st->tmpl[k] < 0) tk_buf_add(&wrapped, ids.p ? ids.p : "", ids.n);
            else tk_buf_add(&wrapped, &st->tmpl[k], sizeof(int32_t));
        tk_buf_free(&ids);
        ids = wrapped;
        ok = !ids.oom;
    }
    if (ok) tk_buf_add(out, ids.p ? ids.p : "", ids.n);
    for (int i = 0; i <= TK_MAX_STEPS; i++) tk_match_free(w.md[i]);
    tk_buf_free(&w.a.pieces); tk_buf_free(&w.a.text);
    tk_buf_free(&w.b.pieces); tk_buf_free(&w.b.text);
    tk_buf_free(&w.bl.pieces); tk_buf_free(&w.bl.text);
    tk_buf_free(&w.norm); tk_buf_free(&w.tmp);
    tk_buf_free(&segs); tk_buf_free(&segs2); tk_buf_free(&ids);
    return ok && !out->oom;
}

lorajit_status lorajit_tokenizer_encode(const lorajit_tokenizer *t, const char *text, size_t len, int add_special,
                                        int32_t **ids, int *n) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !ids || !n || (!text && len)) return t ? tk_fail(t, LORAJIT_E_ARG, "encode: NULL argument") : LORAJIT_E_ARG;
    if (!t->ready) return tk_fail(t, LORAJIT_E_ARG, "encode: the tokenizer failed to open: %s", t->open_msg);
    size_t bad = tk_utf8_invalid_at(text, len);
    if (bad < len)
        return tk_fail(t, LORAJIT_E_ARG, "encode: the text is not valid UTF-8 at byte %zu (0x%02X)", bad,
                       (unsigned char)text[bad]);
    if (len > (size_t)INT32_MAX / 2) return tk_fail(t, LORAJIT_E_ARG, "encode: text of %zu bytes is over 1 GiB", len);
    tk_buf out = {0};
    if (!tk_encode(t, text, len, add_special != 0, &out)) {
        bool oom = out.oom;
        tk_buf_free(&out);
        return oom ? tk_fail(t, LORAJIT_E_NOMEM, "encode: out of memory")
                   : tk_fail(t, LORAJIT_E_UNSUPPORTED, "encode: out of memory or the regex engine's limits (PCRE2) "
                             "on a text of %zu bytes", len);
    }
    *n = (int)(out.n / sizeof(int32_t));
    *ids = (int32_t *)tk_buf_take(&out);
    if (!*ids) return tk_fail(t, LORAJIT_E_NOMEM, "encode: out of memory");
    tk_ok(t);
    return LORAJIT_OK;
}
