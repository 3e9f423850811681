/* jinja_lex.c — template text -> tokens, as jinja2's lexer with transformers' settings.
 *
 * Input: the template source. Output: TEXT tokens (whitespace control '-' and '+',
 * trim_blocks and lstrip_blocks already applied; comments dropped) and, for each
 * {{ }} and {% %} tag, a BEGIN token, the expression tokens and an END token.
 * Newlines are normalised to '\n' and one trailing newline is dropped
 * (keep_trailing_newline=False), as jinja2 does before lexing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

typedef struct lexer {
    jj_state *st;
    const char *s;
    size_t n, pos;
    int line;
    jj_token *toks;
    size_t n_toks, cap;
} lexer;

static jj_token *push(lexer *lx, jj_tok_kind kind, const char *s, size_t len) {
    if (lx->n_toks == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jj_token *t = jj_alloc(lx->st, sizeof *t * cap);
        if (!t) return NULL;
        if (lx->n_toks) memcpy(t, lx->toks, sizeof *t * lx->n_toks);
        lx->toks = t;
        lx->cap = cap;
    }
    jj_token *t = &lx->toks[lx->n_toks++];
    *t = (jj_token){.kind = kind, .line = lx->line, .s = s, .len = len};
    return t;
}

static int syntax(lexer *lx, const char *what) {
    lx->st->line = lx->line;
    return jj_fail(lx->st, LORAJIT_E_FORMAT, "syntax error: %s", what);
}

static void count_lines(lexer *lx, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) lx->line += lx->s[i] == '\n';
}

/* Skips whitespace after a '-' end tag (Python's \s*). Returns whether a newline ended it. */
static int skip_space(lexer *lx) {
    jj_value rest, stripped;
    rest = jj_str(lx->s + lx->pos, lx->n - lx->pos);
    jj_str_strip(lx->st, rest, NULL, 1, &stripped);
    size_t to = (size_t)(stripped.u.s - lx->s);
    int nl = to > lx->pos && lx->s[to - 1] == '\n';
    count_lines(lx, lx->pos, to);
    lx->pos = to;
    return nl;
}

static int hexval(const char *p, int n, uint32_t *cp) {
    *cp = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *cp = *cp << 4 | (uint32_t)d;
    }
    return 0;
}

/* A string literal's body with Python's unicode-escape rules (unknown escapes kept). */
static int lex_string(lexer *lx, char q) {
    size_t start = ++lx->pos;
    while (lx->pos < lx->n && lx->s[lx->pos] != q) lx->pos += lx->s[lx->pos] == '\\' ? 2 : 1;
    if (lx->pos >= lx->n) return syntax(lx, "unterminated string");
    size_t len = lx->pos - start;
    const char *s = lx->s + start;
    char *o = jj_alloc(lx->st, len + 1);
    jj_token *t = push(lx, JJ_T_STRING, o, 0);
    if (!o || !t) return -1;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 >= len) { o[w++] = s[i]; continue; }
        char c = s[++i];
        static const char from[] = "\\'\"abfnrtv", to[] = "\\'\"\a\b\f\n\r\t\v";
        const char *simple = c ? strchr(from, c) : NULL;
        if (simple || c == '\n') { /* a backslash-newline continues the line */
            if (simple) o[w++] = to[simple - from];
            continue;
        }
        uint32_t cp;
        int nd = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (nd) {
            if (i + (size_t)nd >= len) return syntax(lx, "truncated \\x, \\u or \\U escape");
            if (hexval(s + i + 1, nd, &cp) || cp > 0x10ffff) return syntax(lx, "bad \\x, \\u or \\U escape");
            i += (size_t)nd;
        } else if (c >= '0' && c <= '7') {
            cp = 0;
            int k = 0;
            for (; k < 3 && i < len && s[i] >= '0' && s[i] <= '7'; k++, i++) cp = cp * 8 + (uint32_t)(s[i] - '0');
            i--;
        } else if (c == 'N') {
            return jj_fail(lx->st, LORAJIT_E_UNSUPPORTED, "the \\N{...} string escape is not supported");
        } else {
            o[w++] = '\\';
            o[w++] = c;
            continue;
        }
        if (cp < 0x80) o[w++] = (char)cp;
        else if (cp < 0x800) { o[w++] = (char)(0xc0 | cp >> 6); o[w++] = (char)(0x80 | (cp & 0x3f)); }
        else if (cp < 0x10000) {
            o[w++] = (char)(0xe0 | cp >> 12); o[w++] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[w++] = (char)(0x80 | (cp & 0x3f));
        } else {
            o[w++] = (char)(0xf0 | cp >> 18); o[w++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            o[w++] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[w++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    t->len = w;
    count_lines(lx, start, lx->pos);
    lx->pos++;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name(char c, int first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && is_digit(c));
}

static int lex_number(lexer *lx) {
    char buf[64];
    size_t w = 0, i = lx->pos;
    int is_float = 0;
    while (i < lx->n && (is_digit(lx->s[i]) || (lx->s[i] == '_' && i + 1 < lx->n && is_digit(lx->s[i + 1])))) {
        if (lx->s[i] != '_' && w < sizeof buf - 1) buf[w++] = lx->s[i];
        i++;
    }
    if (i + 1 < lx->n && lx->s[i] == '.' && is_digit(lx->s[i + 1])) {
        is_float = 1;
        buf[w < sizeof buf - 1 ? w++ : w] = '.';
        for (i++; i < lx->n && (is_digit(lx->s[i]) || lx->s[i] == '_'); i++)
            if (lx->s[i] != '_' && w < sizeof buf - 1) buf[w++] = lx->s[i];
    }
    if (i < lx->n && (lx->s[i] == 'e' || lx->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < lx->n && (lx->s[j] == '+' || lx->s[j] == '-')) j++;
        if (j < lx->n && is_digit(lx->s[j])) {
            is_float = 1;
            for (; i < j; i++) if (w < sizeof buf - 1) buf[w++] = lx->s[i];
            for (; i < lx->n && is_digit(lx->s[i]); i++) if (w < sizeof buf - 1) buf[w++] = lx->s[i];
        }
    }
    buf[w] = '\0';
    if (w >= sizeof buf - 1) return jj_fail(lx->st, LORAJIT_E_UNSUPPORTED, "number literal too long");
    jj_token *t = push(lx, is_float ? JJ_T_FLOAT : JJ_T_INT, lx->s + lx->pos, i - lx->pos);
    if (!t) return -1;
    if (is_float) t->f = strtod(buf, NULL);
    else {
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (w > 18 && (w > 19 || v > (unsigned long long)INT64_MAX))
            return jj_fail(lx->st, LORAJIT_E_UNSUPPORTED, "integer literal %s is over 64 bits", buf);
        t->i = (int64_t)v;
    }
    lx->pos = i;
    return 0;
}

static const char *const OPS[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(",
                                  ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};

/* The tokens of one tag up to its end ("}}" or "%}", with '-' or '+'); block: 1 for {% %}. */
static int lex_tag(lexer *lx, int block, int *line_starting) {
    int depth = 0;
    for (;;) {
        while (lx->pos < lx->n && strchr(" \t\n\r\f\v", lx->s[lx->pos]) && lx->s[lx->pos]) {
            lx->line += lx->s[lx->pos] == '\n';
            lx->pos++;
        }
        if (lx->pos >= lx->n) return syntax(lx, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
        const char *p = lx->s + lx->pos, *end = block ? "%}" : "}}";
        size_t rest = lx->n - lx->pos;
        int mod = (p[0] == '-' || (block && p[0] == '+')) && rest >= 3 && memcmp(p + 1, end, 2) == 0;
        if (depth == 0 && (mod || (rest >= 2 && memcmp(p, end, 2) == 0))) {
            if (!push(lx, block ? JJ_T_BLOCK_END : JJ_T_VAR_END, p, 2)) return -1;
            lx->pos += mod ? 3 : 2;
            *line_starting = 0;
            if (mod && p[0] == '-') *line_starting = skip_space(lx);
            else if (block && !mod && lx->pos < lx->n && lx->s[lx->pos] == '\n') { /* trim_blocks */
                lx->pos++;
                lx->line++;
                *line_starting = 1;
            }
            return 0;
        }
        char c = p[0];
        if (c == '\'' || c == '"') { if (lex_string(lx, c)) return -1; continue; }
        if (is_digit(c)) { if (lex_number(lx)) return -1; continue; }
        if (is_name(c, 1)) {
            size_t i = lx->pos;
            while (i < lx->n && is_name(lx->s[i], 0)) i++;
            if (!push(lx, JJ_T_NAME, p, i - lx->pos)) return -1;
            lx->pos = i;
            continue;
        }
        size_t k = 0;
        for (; k < sizeof OPS / sizeof OPS[0]; k++)
            if (strlen(OPS[k]) <= rest && memcmp(p, OPS[k], strlen(OPS[k])) == 0) break;
        if (k == sizeof OPS / sizeof OPS[0]) {
            char what[48];
            snprintf(what, sizeof what, "unexpected char '%c'", c >= 0x20 && c < 0x7f ? c : '?');
            return syntax(lx, what);
        }
        if (strchr("([{", c)) depth++;
        if (strchr(")]}", c) && depth > 0) depth--;
        if (!push(lx, JJ_T_OP, p, strlen(OPS[k]))) return -1;
        lx->pos += strlen(OPS[k]);
    }
}

int jj_lex(jj_state *st, const char *src, size_t len, jj_token **toks, size_t *n_toks) {
    char *s = jj_alloc(st, len + 1); /* newlines normalised */
    if (!s) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') { s[n++] = '\n'; if (i + 1 < len && src[i + 1] == '\n') i++; }
        else s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    lexer lx = {.st = st, .s = s, .n = n, .line = 1};
    int line_starting = 1;
    while (lx.pos <= n) {
        const char *t = NULL;
        for (const char *p = s + lx.pos; (p = memchr(p, '{', (size_t)(s + n - p))) && p + 1 < s + n; p++)
            if (p[1] == '{' || p[1] == '%' || p[1] == '#') { t = p; break; }
        size_t tpos = t ? (size_t)(t - s) : n, tlen = tpos - lx.pos;
        char kind = t ? t[1] : 0, mod = t && tpos + 2 < n ? t[2] : 0;
        const char *text = s + lx.pos;
        if (mod == '-') { /* {%- {{- {#-: strip all whitespace before */
            jj_value v;
            jj_str_strip(st, jj_str(text, tlen), NULL, 2, &v);
            tlen = v.len;
        } else if (t && kind != '{' && mod != '+') { /* lstrip_blocks */
            size_t l = tlen;
            while (l > 0 && text[l - 1] != '\n') l--;
            if (l > 0 || line_starting) {
                size_t k = l;
                while (k < tlen && strchr(" \t\f\v\r", text[k])) k++;
                if (k == tlen) tlen = l;
            }
        }
        if (tlen && !push(&lx, JJ_T_TEXT, text, tlen)) return -1;
        count_lines(&lx, lx.pos, tpos);
        if (!t) break;
        lx.pos = tpos + 2 + (mod == '-' || mod == '+');
        line_starting = 0;
        if (kind == '#') {
            const char *e = NULL;
            for (const char *p = s + lx.pos; (p = memchr(p, '#', (size_t)(s + n - p))) && p + 1 < s + n; p++)
                if (p[1] == '}') { e = p; break; }
            if (!e) return syntax(&lx, "missing end of comment tag");
            size_t epos = (size_t)(e - s);
            count_lines(&lx, lx.pos, epos);
            lx.pos = epos + 2;
            if (epos > 0 && s[epos - 1] == '-' && epos - 1 >= tpos + 2) line_starting = skip_space(&lx);
            else if (lx.pos < n && s[lx.pos] == '\n') { lx.pos++; lx.line++; line_starting = 1; }
            continue;
        }
        if (!push(&lx, kind == '%' ? JJ_T_BLOCK_BEGIN : JJ_T_VAR_BEGIN, t, 2)) return -1;
        if (lex_tag(&lx, kind == '%', &line_starting)) return -1;
        if (kind == '%' && lx.n_toks >= 2 && lx.toks[lx.n_toks - 2].kind == JJ_T_NAME &&
            lx.toks[lx.n_toks - 2].len == 3 && memcmp(lx.toks[lx.n_toks - 2].s, "raw", 3) == 0 &&
            lx.toks[lx.n_toks - 3].kind == JJ_T_BLOCK_BEGIN)
            return jj_fail(st, LORAJIT_E_UNSUPPORTED, "tag 'raw' is not supported");
    }
    if (!push(&lx, JJ_T_EOF, s + n, 0)) return -1;
    *toks = lx.toks;
    *n_toks = lx.n_toks;
    return 0;
}
