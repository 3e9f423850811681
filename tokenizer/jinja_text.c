/* jinja_text.c — UTF-8 text as Python's str sees it (code points), and str methods.
 *
 * Inputs are arena strings (UTF-8); outputs new arena strings. Case mapping uses the
 * C.UTF-8 locale's simple mappings (plus 'ß' -> 'SS' as Python's upper does);
 * whitespace is Python's str.isspace set. */
#include <locale.h>
#include <string.h>
#include <wctype.h>

#include "jinja.h"

/* Decodes the code point at s[*i] (invalid bytes stand for themselves) and advances. */
static uint32_t utf8_next(const char *s, size_t n, size_t *i) {
    unsigned char c = (unsigned char)s[*i];
    int len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (*i + (size_t)len > n) len = 1;
    uint32_t cp = len == 1 ? c : c & (0x3f >> (len - 1));
    for (int k = 1; k < len; k++) cp = cp << 6 | ((unsigned char)s[*i + k] & 0x3f);
    *i += (size_t)len;
    return cp;
}

static size_t utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

int jj_str_case(jj_state *st, jj_value s, int mode, jj_value *out) {
    char *o = jj_alloc(st, s.len * 2 + 1); /* 'ß' -> 'SS' at most doubles */
    if (!o) return -1;
    locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    size_t n = 0;
    int word_start = 1, first = 1;
    for (size_t i = 0; i < s.len;) {
        uint32_t c = utf8_next(s.u.s, s.len, &i);
        int up;
        if (mode == 'u') up = 1;
        else if (mode == 'l') up = 0;
        else if (mode == 'c') up = first;
        else up = word_start; /* jinja2's title: a word starts after whitespace or -([{< */
        first = 0;
        if (mode == 't') word_start = is_space(c) || (c < 0x80 && strchr("-([{<", (int)c));
        if (up && c == 0xdf) { o[n++] = 'S'; o[n++] = 'S'; continue; }
        uint32_t m = c;
        if (c < 0x80) m = up ? (uint32_t)(c >= 'a' && c <= 'z' ? c - 32 : c) : (uint32_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        else if (loc) m = (uint32_t)(up ? towupper_l((wint_t)c, loc) : towlower_l((wint_t)c, loc));
        n += utf8_put(m, o + n);
    }
    if (loc) freelocale(loc);
    *out = jj_str(o, n);
    return 0;
}

/* Whether code point c is in chars (NULL: whitespace). */
static int in_set(uint32_t c, const jj_value *chars) {
    if (!chars) return is_space(c);
    for (size_t i = 0; i < chars->len;)
        if (utf8_next(chars->u.s, chars->len, &i) == c) return 1;
    return 0;
}

int jj_str_strip(jj_state *st, jj_value s, const jj_value *chars, int which, jj_value *out) {
    if (chars && chars->kind == JJ_NONE) chars = NULL;
    if (chars && chars->kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "strip arg must be None or str");
    size_t a = 0, b = s.len;
    if (which & 1)
        while (a < b) {
            size_t i = a;
            if (!in_set(utf8_next(s.u.s, b, &i), chars)) break;
            a = i;
        }
    if (which & 2)
        while (b > a) {
            size_t j = b - 1;
            while (j > a && ((unsigned char)s.u.s[j] & 0xc0) == 0x80) j--;
            size_t i = j;
            if (!in_set(utf8_next(s.u.s, b, &i), chars)) break;
            b = j;
        }
    *out = jj_str(s.u.s + a, b - a);
    return 0;
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

int jj_str_replace(jj_state *st, jj_value s, jj_value old, jj_value new_, int64_t count, jj_value *out) {
    if (old.kind != JJ_STR || new_.kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "replace() arguments must be str");
    if (old.len == 0 && count != 0) { /* Python inserts new_ between characters */
        size_t n = jj_utf8_count(s.u.s, s.len);
        size_t times = count < 0 || (uint64_t)count > n + 1 ? n + 1 : (size_t)count;
        if (times && new_.len > (JJ_MAX_ARENA - s.len) / times) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "memory cap reached");
        char *o = jj_alloc(st, s.len + times * new_.len + 1);
        if (!o) return -1;
        size_t w = 0, i = 0;
        for (size_t k = 0; k <= n; k++) {
            if (k < times) { memcpy(o + w, new_.u.s, new_.len); w += new_.len; }
            if (k < n) {
                size_t j = i;
                utf8_next(s.u.s, s.len, &j);
                memcpy(o + w, s.u.s + i, j - i);
                w += j - i;
                i = j;
            }
        }
        *out = jj_str(o, w);
        return 0;
    }
    size_t hits = 0;
    for (const char *p = s.u.s, *q; (count < 0 || (int64_t)hits < count) &&
                                    (q = find_bytes(p, (size_t)(s.u.s + s.len - p), old.u.s, old.len));
         p = q + old.len)
        hits++;
    if (hits == 0) { *out = s; return 0; }
    if (new_.len > old.len && (new_.len - old.len) > (JJ_MAX_ARENA - s.len) / hits)
        return jj_fail(st, LORAJIT_E_UNSUPPORTED, "memory cap reached");
    char *o = jj_alloc(st, s.len + hits * new_.len + 1);
    if (!o) return -1;
    size_t w = 0;
    const char *p = s.u.s;
    for (size_t k = 0; k < hits; k++) {
        const char *q = find_bytes(p, (size_t)(s.u.s + s.len - p), old.u.s, old.len);
        memcpy(o + w, p, (size_t)(q - p));
        w += (size_t)(q - p);
        memcpy(o + w, new_.u.s, new_.len);
        w += new_.len;
        p = q + old.len;
    }
    memcpy(o + w, p, (size_t)(s.u.s + s.len - p));
    w += (size_t)(s.u.s + s.len - p);
    *out = jj_str(o, w);
    return 0;
}

int jj_str_join(jj_state *st, jj_value items, jj_value sep, jj_value *out) {
    const jj_list *l;
    if (jj_iterate(st, items, &l)) return -1;
    jj_capture save;
    jj_capture_begin(st, &save);
    for (size_t i = 0; i < l->n && !st->failed; i++) {
        if (i) jj_emit(st, sep.u.s, sep.len);
        jj_emit_str(st, l->items[i]);
    }
    return jj_capture_end(st, &save, out);
}

/* s.split(sep, maxsplit) (sep NULL: runs of whitespace). */
static int str_split(jj_state *st, jj_value s, const jj_value *sep, int64_t maxsplit, jj_value *out) {
    if (sep && sep->kind == JJ_NONE) sep = NULL;
    if (sep && (sep->kind != JJ_STR || sep->len == 0)) return jj_fail(st, LORAJIT_E_ARG, "split(): empty or non-str separator");
    size_t cap = 8, n = 0;
    jj_value *parts = jj_alloc(st, sizeof *parts * cap);
    size_t i = 0;
    while (parts) {
        size_t a, b;
        if (!sep) { /* skip whitespace, take a word */
            while (i < s.len) { size_t j = i; if (!is_space(utf8_next(s.u.s, s.len, &j))) break; i = j; }
            if (i >= s.len) break;
            a = i;
            if (maxsplit >= 0 && (int64_t)n >= maxsplit) { /* the rest, right-stripped */
                jj_value rest;
                jj_str_strip(st, jj_str(s.u.s + a, s.len - a), NULL, 2, &rest);
                b = a + rest.len;
                i = s.len;
            } else {
                while (i < s.len) { size_t j = i; if (is_space(utf8_next(s.u.s, s.len, &j))) break; i = j; }
                b = i;
            }
        } else {
            const char *q = maxsplit >= 0 && (int64_t)n >= maxsplit
                                ? NULL : find_bytes(s.u.s + i, s.len - i, sep->u.s, sep->len);
            a = i;
            b = q ? (size_t)(q - s.u.s) : s.len;
            i = q ? b + sep->len : s.len + 1;
        }
        if (n == cap) {
            jj_value *more = jj_alloc(st, sizeof *more * cap * 2);
            if (!more) return -1;
            memcpy(more, parts, sizeof *parts * n);
            parts = more;
            cap *= 2;
        }
        parts[n++] = jj_str(s.u.s + a, b - a);
        if (sep && i > s.len) break;
    }
    if (!parts) return -1;
    jj_value l = jj_list_new(st, n);
    if (st->failed) return -1;
    memcpy(l.u.list->items, parts, sizeof *parts * n);
    *out = l;
    return 0;
}

/* prefix/suffix test with a str or a tuple/list of str. */
static int affix(jj_state *st, jj_value s, jj_value p, int end, int *hit) {
    if (p.kind == JJ_LIST) {
        *hit = 0;
        for (size_t i = 0; i < p.u.list->n && !*hit; i++)
            if (affix(st, s, p.u.list->items[i], end, hit)) return -1;
        return 0;
    }
    if (p.kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "%swith arg must be str or a tuple of str", end ? "ends" : "starts");
    *hit = p.len <= s.len && memcmp(s.u.s + (end ? s.len - p.len : 0), p.u.s, p.len) == 0;
    return 0;
}

int jj_str_method(jj_state *st, jj_value s, const char *name, const jj_value *args, int n_args, jj_value *out) {
#define IS(x) (strcmp(name, x) == 0)
#define NARGS(lo, hi) \
    if (n_args < (lo) || n_args > (hi)) return jj_fail(st, LORAJIT_E_ARG, "str.%s() takes %d to %d arguments", name, lo, hi)
    int hit;
    if (IS("strip") || IS("lstrip") || IS("rstrip")) {
        NARGS(0, 1);
        return jj_str_strip(st, s, n_args ? &args[0] : NULL, name[0] == 'l' ? 1 : name[0] == 'r' ? 2 : 3, out);
    }
    if (IS("upper") || IS("lower") || IS("capitalize")) { NARGS(0, 0); return jj_str_case(st, s, name[0], out); }
    if (IS("startswith") || IS("endswith")) {
        NARGS(1, 1);
        if (affix(st, s, args[0], name[0] == 'e', &hit)) return -1;
        *out = jj_bool(hit);
        return 0;
    }
    if (IS("split")) {
        NARGS(0, 2);
        if (n_args == 2 && args[1].kind != JJ_INT) return jj_fail(st, LORAJIT_E_ARG, "split(): maxsplit must be int");
        return str_split(st, s, n_args ? &args[0] : NULL, n_args == 2 ? args[1].u.i : -1, out);
    }
    if (IS("replace")) {
        NARGS(2, 3);
        if (n_args == 3 && args[2].kind != JJ_INT) return jj_fail(st, LORAJIT_E_ARG, "replace(): count must be int");
        return jj_str_replace(st, s, args[0], args[1], n_args == 3 ? args[2].u.i : -1, out);
    }
    if (IS("find") || IS("rfind") || IS("count")) {
        NARGS(1, 1);
        if (args[0].kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "str.%s() arg must be str", name);
        const char *first = find_bytes(s.u.s, s.len, args[0].u.s, args[0].len), *last = first;
        int64_t hits = 0;
        if (args[0].len == 0) hits = (int64_t)jj_utf8_count(s.u.s, s.len) + 1;
        else
            for (const char *q = first; q; q = find_bytes(q + args[0].len, (size_t)(s.u.s + s.len - q) - args[0].len,
                                                          args[0].u.s, args[0].len)) {
                hits++;
                last = q;
            }
        if (IS("count")) *out = jj_int(hits);
        else if (!first) *out = jj_int(-1);
        else if (IS("rfind") && args[0].len == 0) *out = jj_int((int64_t)jj_utf8_count(s.u.s, s.len));
        else {
            const char *at = IS("find") ? first : last;
            *out = jj_int((int64_t)jj_utf8_count(s.u.s, (size_t)(at - s.u.s)));
        }
        return 0;
    }
    if (IS("removeprefix") || IS("removesuffix")) {
        NARGS(1, 1);
        int end = name[6] == 's';
        if (args[0].kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "str.%s() arg must be str", name);
        if (affix(st, s, args[0], end, &hit)) return -1;
        *out = hit ? jj_str(s.u.s + (end ? 0 : args[0].len), s.len - args[0].len) : s;
        return 0;
    }
    if (IS("join")) {
        NARGS(1, 1);
        return jj_str_join(st, args[0], s, out);
    }
    if (IS("title")) { /* Python's str.title: after any non-letter */
        NARGS(0, 0);
        jj_value t;
        if (jj_str_case(st, s, 'l', &t)) return -1;
        char *o = (char *)t.u.s;
        for (size_t i = 0, prev_alpha = 0; i < t.len; i++) {
            int alpha = (o[i] >= 'a' && o[i] <= 'z') || (o[i] >= 'A' && o[i] <= 'Z') || ((unsigned char)o[i] >= 0x80);
            if (alpha && !prev_alpha && o[i] >= 'a' && o[i] <= 'z') o[i] = (char)(o[i] - 32);
            prev_alpha = (size_t)alpha;
        }
        *out = t;
        return 0;
    }
    return jj_fail(st, LORAJIT_E_UNSUPPORTED, "string method '%s' is not supported", name);
#undef NARGS
#undef IS
}
