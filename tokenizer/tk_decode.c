/* tk_decode.c — ids -> text: the decoder chain of huggingface/tokenizers
 * (tokenizer/mod.rs decode: skipped specials filtered first; decoders/
 * {byte_fallback,fuse,strip,sequence}.rs, normalizers/replace.rs as a decoder,
 * pre_tokenizers/{byte_level,metaspace}.rs decode_chain; no decoder: tokens joined
 * by spaces) and the streaming detokenizer. Decoding runs over chunks of a
 * sequence with a small carried state; a chunk is "safe" when no later id can
 * change its text (no byte-fallback run or UTF-8 character left open), so the
 * streamed pieces concatenate to exactly the whole decode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

typedef struct tlist {
    tk_buf off; /* size_t pairs (offset, length) into text */
    tk_buf text;
} tlist;
static void tl_add(tlist *l, const char *s, size_t n) {
    size_t e[2] = {l->text.n, n};
    tk_buf_add(&l->text, s, n);
    tk_buf_add(&l->off, e, sizeof e);
}
static size_t tl_n(const tlist *l) { return l->off.n / (2 * sizeof(size_t)); }
static const char *tl_s(const tlist *l, size_t i, size_t *n) {
    const size_t *e = (const size_t *)l->off.p + 2 * i;
    *n = e[1];
    return l->text.p + e[0];
}
static void tl_clear(tlist *l) { l->off.n = l->text.n = 0; }
static void tl_free(tlist *l) { tk_buf_free(&l->off); tk_buf_free(&l->text); }

void tk_dstate_init(const lorajit_tokenizer *t, tk_dstate *st) {
    st->first_token = true;
    for (int i = 0; i < t->decoder.n; i++) st->strip_left[i] = t->decoder.step[i].strip_start;
}

/* "<0xNN>": the byte, else -1 (decoders/byte_fallback.rs). */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* One decoder step from in to out; *safe cleared when the chunk's end is open. */
static void run_step(const lorajit_tokenizer *t, int si, const tlist *in, tlist *out, tk_dstate *st, bool *fused,
                     bool *safe) {
    const tk_step *d = &t->decoder.step[si];
    size_t n = tl_n(in), len;
    tk_buf bytes = {0};
    for (size_t i = 0; i < n; i++) {
        const char *s = tl_s(in, i, &len);
        switch (d->kind) {
        case TK_REPLACE: {
            tk_buf r = {0};
            if (!tk_pattern_replace(&d->pat, s, len, d->text, d->text_len, &r)) out->text.oom = true;
            tl_add(out, r.p ? r.p : "", r.n);
            tk_buf_free(&r);
            break;
        }
        case TK_BYTEFALLBACK: {
            int b = byte_token(s, len);
            if (b >= 0) {
                char c = (char)b;
                tk_buf_add(&bytes, &c, 1);
                if (i + 1 < n) break;
                *safe = false; /* the run may go on with the next id */
            }
            if (bytes.n) {
                if (tk_utf8_invalid_at(bytes.p, bytes.n) == bytes.n) tl_add(out, bytes.p, bytes.n);
                else
                    for (size_t k = 0; k < bytes.n; k++) tl_add(out, "\xEF\xBF\xBD", 3);
                bytes.n = 0;
            }
            if (b < 0) tl_add(out, s, len);
            break;
        }
        case TK_FUSE:
        case TK_BYTELEVEL:
            if (d->kind == TK_FUSE) {
                tk_buf_add(&bytes, s, len);
            } else { /* every character back to its byte, or the token's own bytes if one is not a byte char */
                size_t start = bytes.n, j = 0;
                while (j < len) {
                    int l = tk_utf8_len((unsigned char)s[j]);
                    int32_t cp = l == 1 ? (unsigned char)s[j] : l == 2 && j + 1 < len ?
                                 ((s[j] & 0x1F) << 6) | (s[j + 1] & 0x3F) : 512;
                    if (cp >= 512 || t->bl_byte[cp] < 0) break;
                    tk_buf_addc(&bytes, (char)t->bl_byte[cp]);
                    j += (size_t)l;
                }
                if (j < len) {
                    bytes.n = start;
                    tk_buf_add(&bytes, s, len);
                }
            }
            if (i + 1 == n) {
                if (d->kind == TK_FUSE) {
                    tl_add(out, bytes.p, bytes.n);
                } else {
                    tk_buf r = {0};
                    if (tk_utf8_pending(bytes.p, bytes.n)) *safe = false;
                    tk_utf8_lossy(&r, bytes.p, bytes.n);
                    tl_add(out, r.p ? r.p : "", r.n);
                    tk_buf_free(&r);
                }
                *fused = true;
            }
            break;
        case TK_STRIP: {
            size_t a = 0, z = len, c = d->text_len;
            int left = *fused ? st->strip_left[si] : d->strip_start;
            while (left > 0 && z - a >= c && memcmp(s + a, d->text, c) == 0) { a += c; left--; }
            if (*fused) st->strip_left[si] = (a < len) ? 0 : left;
            for (int k = 0; k < d->strip_stop && z - a >= c && memcmp(s + z - c, d->text, c) == 0; k++) z -= c;
            if (*fused && d->strip_stop) *safe = false; /* the end of the whole text is not known yet */
            tl_add(out, s + a, z - a);
            break;
        }
        case TK_METASPACE: {
            bool first = *fused || (i == 0 && st->first_token);
            tk_buf r = {0};
            for (size_t j = 0; j < len; j++) {
                if (len - j >= d->text_len && memcmp(s + j, d->text, d->text_len) == 0) {
                    if (!(first && d->prepend_scheme != TK_PREPEND_NEVER)) tk_buf_addc(&r, ' ');
                    j += d->text_len - 1;
                } else {
                    tk_buf_addc(&r, s[j]);
                }
            }
            tl_add(out, r.p ? r.p : "", r.n);
            tk_buf_free(&r);
            break;
        }
        default:
            tl_add(out, s, len);
            break;
        }
    }
    if (bytes.oom) out->text.oom = true;
    tk_buf_free(&bytes);
}

bool tk_decode_chunk(const lorajit_tokenizer *t, const int32_t *ids, int n, bool skip_special, tk_dstate *st,
                     bool commit, tk_buf *out, bool *safe) {
    tlist a = {0}, b = {0}, *cur = &a, *nxt = &b;
    tk_dstate s = *st;
    bool fused = false, any = false;
    *safe = true;
    for (int i = 0; i < n; i++) {
        if (skip_special && t->id_special[ids[i]]) continue;
        tl_add(cur, t->id_text[ids[i]], t->id_len[ids[i]]);
        any = true;
    }
    if (!t->decoder.present) {
        size_t len;
        for (size_t i = 0; i < tl_n(cur); i++) {
            if (i > 0 || !s.first_token) tk_buf_addc(out, ' ');
            const char *p = tl_s(cur, i, &len);
            tk_buf_add(out, p, len);
        }
    } else {
        for (int si = 0; si < t->decoder.n; si++) {
            tl_clear(nxt);
            run_step(t, si, cur, nxt, &s, &fused, safe);
            tlist *x = cur;
            cur = nxt;
            nxt = x;
        }
        size_t len;
        for (size_t i = 0; i < tl_n(cur); i++) {
            const char *p = tl_s(cur, i, &len);
            tk_buf_add(out, p, len);
        }
    }
    bool ok = !a.text.oom && !a.off.oom && !b.text.oom && !b.off.oom && !out->oom;
    tl_free(&a);
    tl_free(&b);
    if (any) s.first_token = false;
    if (commit) *st = s;
    return ok;
}

/* Checks ids[0..n) are in the vocabulary; the first that is not, else -1. */
static int bad_id(const lorajit_tokenizer *t, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size || !t->id_text[ids[i]]) return i;
    return -1;
}

lorajit_status lorajit_tokenizer_decode(const lorajit_tokenizer *t, const int32_t *ids, int n, int skip_special,
                                        char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!t || !text || n < 0 || (!ids && n)) return t ? tk_fail(t, LORAJIT_E_ARG, "decode: bad argument") : LORAJIT_E_ARG;
    if (!t->ready) return tk_fail(t, LORAJIT_E_ARG, "decode: the tokenizer failed to open: %s", t->open_msg);
    int k = bad_id(t, ids, n);
    if (k >= 0)
        return tk_fail(t, LORAJIT_E_ARG, "decode: id %d (at %d) is outside the vocabulary (%d tokens)", ids[k], k,
                       t->vocab_size);
    tk_buf out = {0};
    tk_dstate st;
    bool safe;
    tk_dstate_init(t, &st);
    if (!tk_decode_chunk(t, ids, n, skip_special != 0, &st, true, &out, &safe)) {
        tk_buf_free(&out);
        return tk_fail(t, LORAJIT_E_NOMEM, "decode: out of memory");
    }
    size_t l = out.n;
    *text = tk_buf_take(&out);
    if (!*text) return tk_fail(t, LORAJIT_E_NOMEM, "decode: out of memory");
    if (len) *len = l;
    tk_ok(t);
    return LORAJIT_OK;
}

/* ---- streaming ---- */
struct lorajit_detokenizer {
    const lorajit_tokenizer *t;
    bool skip;
    tk_buf pending; /* int32 ids not yet safe to emit */
    tk_buf out;     /* the last returned text */
    tk_dstate st;
    char msg[256];
};

lorajit_status lorajit_detokenizer_open(lorajit_detokenizer **out, const lorajit_tokenizer *t, int skip_special) {
    if (!out) return LORAJIT_E_ARG;
    lorajit_detokenizer *d = calloc(1, sizeof *d);
    *out = d;
    if (!d) return LORAJIT_E_NOMEM;
    if (!t || !t->ready) {
        snprintf(d->msg, sizeof d->msg, "detokenizer: %s", t ? "the tokenizer failed to open" : "tokenizer is NULL");
        return LORAJIT_E_ARG;
    }
    d->t = t;
    d->skip = skip_special != 0;
    tk_dstate_init(t, &d->st);
    return LORAJIT_OK;
}

/* Decodes the pending ids; all: emit them whatever their end (flush). */
static lorajit_status emit(lorajit_detokenizer *d, bool all, const char **text, size_t *len) {
    d->out.n = 0;
    tk_buf_add(&d->out, "", 0);
    bool safe;
    tk_dstate s = d->st;
    int n = (int)(d->pending.n / sizeof(int32_t));
    if (n && !tk_decode_chunk(d->t, (const int32_t *)d->pending.p, n, d->skip, &s, true, &d->out, &safe)) {
        snprintf(d->msg, sizeof d->msg, "detokenizer: out of memory");
        d->out.n = 0;
        return LORAJIT_E_NOMEM;
    }
    if (n && (safe || all)) {
        d->st = s;
        d->pending.n = 0;
    } else {
        d->out.n = 0;
    }
    if (all) tk_dstate_init(d->t, &d->st);
    if (d->out.p) d->out.p[d->out.n] = '\0';
    *text = d->out.p ? d->out.p : "";
    if (len) *len = d->out.n;
    d->msg[0] = '\0';
    return LORAJIT_OK;
}

lorajit_status lorajit_detokenizer_push(lorajit_detokenizer *d, int32_t id, const char **text, size_t *len) {
    if (!d || !text) return LORAJIT_E_ARG;
    *text = "";
    if (len) *len = 0;
    if (!d->t) return LORAJIT_E_ARG;
    if (bad_id(d->t, &id, 1) >= 0) {
        snprintf(d->msg, sizeof d->msg, "detokenizer: id %d is outside the vocabulary (%d tokens)", id,
                 d->t->vocab_size);
        return LORAJIT_E_ARG;
    }
    if (d->skip && d->t->id_special[id]) { d->msg[0] = '\0'; return LORAJIT_OK; }
    tk_buf_add(&d->pending, &id, sizeof id);
    if (d->pending.oom) {
        snprintf(d->msg, sizeof d->msg, "detokenizer: out of memory");
        d->pending.oom = false;
        d->pending.n -= d->pending.n % sizeof id;
        return LORAJIT_E_NOMEM;
    }
    return emit(d, false, text, len);
}

lorajit_status lorajit_detokenizer_flush(lorajit_detokenizer *d, const char **text, size_t *len) {
    if (!d || !text) return LORAJIT_E_ARG;
    *text = "";
    if (len) *len = 0;
    if (!d->t) return LORAJIT_E_ARG;
    return emit(d, true, text, len);
}

const char *lorajit_detokenizer_errmsg(const lorajit_detokenizer *d) { return d ? d->msg : "no detokenizer"; }

void lorajit_detokenizer_free(lorajit_detokenizer *d) {
    if (!d) return;
    tk_buf_free(&d->pending);
    tk_buf_free(&d->out);
    free(d);
}
