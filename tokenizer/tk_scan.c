/* tk_scan.c — a JSON scanner for the two big fields of tokenizer.json, model.vocab
 * and model.merges (Qwen3: 151k entries each), read straight from the text instead
 * of through a cJSON tree. tk_scan_model finds them in one pass: every other value
 * is checked strictly, those two only bracket-matched and counted (their readers in
 * tk_model.c check every byte of them; tk_scan_valid checks them strictly when a
 * read fails, so that bad JSON is reported as such). The rest of the file still goes
 * through lj_json_parse_max with those two values cut out. Strings are unescaped as
 * JSON says (\uXXXX with surrogate pairs; \u0000 and lone surrogates refused). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define TK_SCAN_DEPTH 256

/* Byte classes: JSON white space; what skip_counted stops at outside a string. */
enum { C_WS = 1, C_QUOTE = 2, C_OPEN = 4, C_CLOSE = 8, C_COMMA = 16 };
static const unsigned char byte_class[256] = {
    [' '] = C_WS, ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS, ['"'] = C_QUOTE,
    ['['] = C_OPEN, ['{'] = C_OPEN, [']'] = C_CLOSE, ['}'] = C_CLOSE, [','] = C_COMMA,
};

size_t tk_scan_ws(const char *s, size_t n, size_t i) {
    while (i < n && byte_class[(unsigned char)s[i]] == C_WS) i++;
    return i;
}
#define ws tk_scan_ws

int tk_scan_next(const char *s, size_t n, size_t *i, char close) {
    size_t k = ws(s, n, *i);
    if (k < n && s[k] == ',') { *i = ws(s, n, k + 1); return 1; }
    *i = k + 1;
    return k < n && s[k] == close ? 0 : -1;
}
static int hex4(const char *s) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The string at s[*i] == '"': unescaped into out (when not NULL); *i past it. */
bool tk_scan_string(const char *s, size_t n, size_t *i, tk_buf *out) {
    size_t k = *i + 1;
    if (out) out->n = 0;
    for (;;) {
        size_t start = k;
        while (k < n && s[k] != '"' && s[k] != '\\' && (unsigned char)s[k] >= 0x20) k++;
        if (out) tk_buf_add(out, s + start, k - start);
        if (k >= n || (unsigned char)s[k] < 0x20) return false;
        if (s[k] == '"') break;
        if (k + 1 >= n) return false;
        char e = s[k + 1], c = 0;
        k += 2;
        switch (e) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            int u = k + 4 <= n ? hex4(s + k) : -1;
            k += 4;
            if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF)) return false; /* \u0000, a lone low surrogate */
            if (u >= 0xD800 && u <= 0xDBFF) {
                int lo = k + 6 <= n && s[k] == '\\' && s[k + 1] == 'u' ? hex4(s + k + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return false;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
            char b[4];
            int l = u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 4;
            if (l == 1) b[0] = (char)u;
            else if (l == 2) { b[0] = (char)(0xC0 | u >> 6); b[1] = (char)(0x80 | (u & 0x3F)); }
            else if (l == 3) { b[0] = (char)(0xE0 | u >> 12); b[1] = (char)(0x80 | (u >> 6 & 0x3F)); b[2] = (char)(0x80 | (u & 0x3F)); }
            else { b[0] = (char)(0xF0 | u >> 18); b[1] = (char)(0x80 | (u >> 12 & 0x3F));
                   b[2] = (char)(0x80 | (u >> 6 & 0x3F)); b[3] = (char)(0x80 | (u & 0x3F)); }
            if (out) tk_buf_add(out, b, (size_t)l);
            continue;
        }
        default: return false;
        }
        if (out) tk_buf_addc(out, c);
    }
    *i = k + 1;
    return !out || !out->oom;
}

/* A JSON number at s[*i] (strict grammar): its value; *i past it. */
bool tk_scan_number(const char *s, size_t n, size_t *i, double *v) {
    size_t k = *i, start = k;
    if (k < n && s[k] == '-') k++;
    if (k < n && s[k] == '0') k++;
    else if (k < n && s[k] >= '1' && s[k] <= '9') while (k < n && s[k] >= '0' && s[k] <= '9') k++;
    else return false;
    if (k < n && s[k] == '.') {
        if (++k >= n || s[k] < '0' || s[k] > '9') return false;
        while (k < n && s[k] >= '0' && s[k] <= '9') k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        if (k >= n || s[k] < '0' || s[k] > '9') return false;
        while (k < n && s[k] >= '0' && s[k] <= '9') k++;
    }
    if (k - start <= 9 && s[start] != '-') { /* digits only (no '.', 'e'): exact as an integer */
        int32_t x = 0;
        size_t d = start;
        while (d < k && s[d] >= '0' && s[d] <= '9') x = x * 10 + (s[d++] - '0');
        if (d == k) { *v = x; *i = k; return true; }
    }
    char buf[64];
    if (k - start >= sizeof buf) { *v = 1e300; *i = k; return true; } /* out of any id range */
    memcpy(buf, s + start, k - start);
    buf[k - start] = '\0';
    *v = strtod(buf, NULL);
    *i = k;
    return true;
}

/* Skips the value at s[*i]. */
static bool skip_value(const char *s, size_t n, size_t *i, int depth) {
    size_t k = ws(s, n, *i);
    if (k >= n || depth > TK_SCAN_DEPTH) return false;
    char c = s[k];
    if (c == '"') { *i = k; return tk_scan_string(s, n, i, NULL); }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        k = ws(s, n, k + 1);
        if (k < n && s[k] == close) { *i = k + 1; return true; }
        for (;;) {
            if (c == '{') {
                if (k >= n || s[k] != '"' || !tk_scan_string(s, n, &k, NULL)) return false;
                k = ws(s, n, k);
                if (k >= n || s[k] != ':') return false;
                k++;
            }
            if (!skip_value(s, n, &k, depth + 1)) return false;
            k = ws(s, n, k);
            if (k < n && s[k] == ',') { k = ws(s, n, k + 1); continue; }
            if (k < n && s[k] == close) { *i = k + 1; return true; }
            return false;
        }
    }
    double v;
    for (const char *lit = "true\0false\0null\0"; *lit; lit += strlen(lit) + 1)
        if (n - k >= strlen(lit) && memcmp(s + k, lit, strlen(lit)) == 0) { *i = k + strlen(lit); return true; }
    *i = k;
    return tk_scan_number(s, n, i, &v);
}

/* Skips the object or array at s[*i] by matching brackets outside strings (escapes
 * stepped over; nothing else checked); *count gets its top-level commas + 1. */
static bool skip_counted(const char *s, size_t n, size_t *i, uint32_t *count) {
    uint32_t c = 1;
    int depth = 0;
    for (size_t k = *i; k < n; k++) {
        int cl;
        while ((cl = byte_class[(unsigned char)s[k]] & ~C_WS) == 0)
            if (++k >= n) return false;
        if (cl == C_QUOTE) {
            for (k++; k < n && s[k] != '"'; k++)
                if (s[k] == '\\') k++;
            if (k >= n) return false;
        } else if (cl == C_OPEN) {
            depth++;
        } else if (cl == C_CLOSE) {
            if (--depth == 0) {
                *i = k + 1;
                *count = c;
                return true;
            }
        } else if (depth == 1 && c < UINT32_MAX) { /* a comma */
            c++;
        }
    }
    return false;
}

/* Walks the object at s[*i] (*i moves past it). At level 0 (the top) the value of
 * "model" is walked as level 1, where the values of "vocab" and "merges" are skipped
 * with skip_counted and recorded in sc (the last of a repeated key wins); every other
 * value is checked by skip_value. */
static bool walk_object(const char *s, size_t n, size_t *i, int level, tk_model_scan *sc, tk_buf *key) {
    size_t k = ws(s, n, *i);
    if (k >= n || s[k] != '{') return false;
    k = ws(s, n, k + 1);
    if (k < n && s[k] == '}') { *i = k + 1; return true; }
    for (;;) {
        if (k >= n || s[k] != '"' || !tk_scan_string(s, n, &k, key)) return false;
        k = ws(s, n, k);
        if (k >= n || s[k] != ':') return false;
        k = ws(s, n, k + 1);
        size_t start = k;
        bool is_model = level == 0 && key->n == 5 && memcmp(key->p, "model", 5) == 0;
        int big = level == 1 && key->n == 5 && memcmp(key->p, "vocab", 5) == 0    ? 0
                  : level == 1 && key->n == 6 && memcmp(key->p, "merges", 6) == 0 ? 1
                                                                                   : -1;
        if (is_model && k < n && s[k] == '{') {
            if (!walk_object(s, n, &k, 1, sc, key)) return false;
            sc->model = true;
        } else if (big >= 0 && k < n && (s[k] == '{' || s[k] == '[')) {
            uint32_t c;
            if (!skip_counted(s, n, &k, &c)) return false;
            size_t *r = big ? sc->merges : sc->vocab;
            r[0] = start, r[1] = k;
            *(big ? &sc->n_merges : &sc->n_vocab) = c;
        } else if (!skip_value(s, n, &k, level + 1)) {
            return false;
        } else if (big >= 0) {
            size_t *r = big ? sc->merges : sc->vocab;
            r[0] = start, r[1] = k;
        }
        k = ws(s, n, k);
        if (k < n && s[k] == ',') { k = ws(s, n, k + 1); continue; }
        if (k >= n || s[k] != '}') return false;
        *i = k + 1;
        return true;
    }
}

bool tk_scan_model(const char *s, size_t n, tk_model_scan *sc) {
    memset(sc, 0, sizeof *sc);
    tk_buf key = {0};
    size_t i = 0;
    bool ok = walk_object(s, n, &i, 0, sc, &key) && !key.oom && ws(s, n, i) == n;
    tk_buf_free(&key);
    return ok && sc->model && sc->vocab[1] && sc->merges[1];
}

bool tk_scan_valid(const char *s, const tk_model_scan *sc) {
    for (int k = 0; k < 2; k++) {
        const size_t *r = k ? sc->merges : sc->vocab;
        size_t i = r[0];
        if (!skip_value(s, r[1], &i, 1) || i != r[1]) return false;
    }
    return true;
}
