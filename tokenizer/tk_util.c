/* tk_util.c — the tokenizer's small tools: the file's text (mapped), growable byte buffers, the string->id
 * and pair->merge hash maps (open addressing, built once, then read-only), UTF-8
 * checks and Rust's from_utf8_lossy, ByteLevel's byte tables, and patterns (a literal or a PCRE2 regex,
 * UTF + UCP, JIT-compiled when PCRE2 has a JIT). */
#define _GNU_SOURCE /* memmem */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "tokenizer.h"

/* ---- buffers ---- */
bool tk_buf_reserve(tk_buf *b, size_t cap) {
    if (b->oom) return false;
    if (cap <= b->cap) return true;
    char *p = realloc(b->p, cap);
    if (!p) return !(b->oom = true);
    b->p = p;
    b->cap = cap;
    return true;
}
void tk_buf_add(tk_buf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        if (!tk_buf_reserve(b, cap)) return;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
void tk_buf_addc(tk_buf *b, char c) {
    if (b->n + 2 <= b->cap && !b->oom) {
        b->p[b->n++] = c;
        b->p[b->n] = '\0';
    } else {
        tk_buf_add(b, &c, 1);
    }
}
void tk_buf_free(tk_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
/* Caller owns the result; free with free(). */
char *tk_buf_take(tk_buf *b) {
    if (!b->p) tk_buf_add(b, "", 0);
    char *p = b->oom ? NULL : b->p;
    if (b->oom) free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

/* ---- the file's text ---- */
#ifndef MAP_POPULATE
#define MAP_POPULATE 0 /* not Linux: pages come in on first touch */
#endif
lorajit_status tk_text_read(const char *path, size_t max, const char **text, size_t *len, bool *mapped,
                            lj_err *err) {
    int fd;
    size_t size;
    *text = NULL, *len = 0, *mapped = false;
    lorajit_status st = lj_open_regular(path, &fd, &size, err);
    if (st) return st;
    void *map = size > max || size == 0 ? MAP_FAILED : mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (size > max) {
        st = lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: file of %zu bytes is over the limit of %zu bytes", path, size,
                     max);
    } else if (map != MAP_FAILED) {
        *text = map, *len = size, *mapped = true;
    } else {
        char *buf;
        if (!(st = lj_read_fd(fd, size, path, &buf, len, err))) *text = buf;
    }
    close(fd);
    return st;
}
void tk_text_free(const char *text, size_t len, bool mapped) {
    if (mapped) munmap((void *)text, len);
    else free((void *)text);
}

/* ---- big tables ---- */
#define TK_HUGE ((size_t)2 << 20)
void *tk_big_alloc(size_t bytes) {
    if (bytes < TK_HUGE) return calloc(1, bytes);
    size_t need = (bytes + TK_HUGE - 1) & ~(TK_HUGE - 1), total = need + TK_HUGE;
    char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)base + TK_HUGE - 1) & ~(uintptr_t)(TK_HUGE - 1));
    if (p > base) munmap(base, (size_t)(p - base));                 /* keep [p, p + need) */
    if (base + total > p + need) munmap(p + need, (size_t)(base + total - (p + need)));
#ifdef MADV_HUGEPAGE
    madvise(p, need, MADV_HUGEPAGE); /* a hint; without it the pages are 4 KiB ones */
#endif
    return p;
}
void tk_big_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < TK_HUGE) free(p);
    else munmap(p, (bytes + TK_HUGE - 1) & ~(TK_HUGE - 1));
}

/* ---- hashing ---- */
uint64_t tk_map_hash(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, s + i, n - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}
static uint32_t cap_for(uint32_t n) {
    uint32_t c = 16;
    while (c < n + n / 2 + 2) c *= 2; /* load at most 2/3: short linear probes, small tables */
    return c;
}

bool tk_map_init(tk_map *m, uint32_t max_n) {
    memset(m, 0, sizeof *m);
    m->cap = cap_for(max_n);
    m->max_n = max_n;
    m->slot = tk_big_alloc(m->cap * sizeof *m->slot);
    return m->slot != NULL;
}
void tk_map_free(tk_map *m) {
    tk_big_free(m->slot, m->cap * sizeof *m->slot);
    tk_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}
/* The slot of key (its entry, or the empty slot where it would go). */
static uint32_t map_find(const tk_map *m, const char *key, size_t len, uint64_t h) {
    uint32_t mask = m->cap - 1, i = (uint32_t)h & mask, tag = (uint32_t)(h >> 32) | 1;
    for (; m->slot[i].tag; i = (i + 1) & mask) {
        const tk_entry *e = &m->slot[i];
        if (e->tag == tag && e->len == len && memcmp(m->keys.p + e->off, key, len) == 0) break;
    }
    return i;
}
void tk_map_prefetch(const tk_map *m, uint64_t h) {
    if (m->cap) __builtin_prefetch(&m->slot[(uint32_t)h & (m->cap - 1)]);
}
long tk_map_put_hashed(tk_map *m, const char *key, size_t len, int32_t val, uint64_t h) {
    uint32_t i = map_find(m, key, len, h);
    if (m->slot[i].tag) return (long)i + 1;
    if (m->n >= m->max_n || len > UINT32_MAX || m->keys.n + len + 1 > UINT32_MAX) return -1;
    uint32_t off = (uint32_t)m->keys.n;
    tk_buf_add(&m->keys, key, len);
    tk_buf_addc(&m->keys, '\0'); /* each key NUL terminated in the arena */
    if (m->keys.oom) return -1;
    m->slot[i] = (tk_entry){(uint32_t)(h >> 32) | 1, off, (uint32_t)len, val};
    m->n++;
    return 0;
}
long tk_map_put(tk_map *m, const char *key, size_t len, int32_t val) {
    return tk_map_put_hashed(m, key, len, val, tk_map_hash(key, len));
}
int32_t tk_map_get_hashed(const tk_map *m, const char *key, size_t len, uint64_t h) {
    if (!m->cap) return -1;
    uint32_t i = map_find(m, key, len, h);
    return m->slot[i].tag ? m->slot[i].val : -1;
}
int32_t tk_map_get(const tk_map *m, const char *key, size_t len) {
    return tk_map_get_hashed(m, key, len, tk_map_hash(key, len));
}

static uint32_t hash_pair(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}
bool tk_pairs_init(tk_pairs *p, uint32_t max_n) {
    p->cap = cap_for(max_n);
    p->slot = tk_big_alloc(p->cap * sizeof *p->slot);
    return p->slot != NULL;
}
void tk_pairs_free(tk_pairs *p) {
    tk_big_free(p->slot, p->cap * sizeof *p->slot);
    memset(p, 0, sizeof *p);
}
void tk_pairs_prefetch(const tk_pairs *p, int32_t a, int32_t b) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    if (p->cap) __builtin_prefetch(&p->slot[hash_pair(k) & (p->cap - 1)], 1);
}
void tk_pairs_put(tk_pairs *p, int32_t a, int32_t b, int32_t rank, int32_t id) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    uint32_t mask = p->cap - 1, i = hash_pair(k) & mask;
    while (p->slot[i].key && p->slot[i].key != k) i = (i + 1) & mask;
    p->slot[i] = (tk_pair){k, rank, id};
}
int32_t tk_pairs_get(const tk_pairs *p, int32_t a, int32_t b, int32_t *id) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    uint32_t mask = p->cap - 1, i = hash_pair(k) & mask;
    for (; p->slot[i].key; i = (i + 1) & mask)
        if (p->slot[i].key == k) {
            *id = p->slot[i].id;
            return p->slot[i].rank;
        }
    return -1;
}

/* ---- UTF-8 ---- */
/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid; *need (when the
 * bytes are a valid but cut prefix) the full length. */
static int utf8_seq(const unsigned char *s, size_t n, int *need) {
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;
    *need = 0;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n) { *need = len; return 0; }
        unsigned char x = s[k];
        if (x < (k == 1 ? lo : 0x80) || x > (k == 1 ? hi : 0xBF)) return -k; /* invalid after k bytes */
    }
    return len;
}
size_t tk_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) { i++; continue; }
        int need, l = utf8_seq(u + i, n - i, &need);
        if (l <= 0) return i;
        i += (size_t)l;
    }
    return n;
}
int tk_utf8_len(unsigned char c) {
    return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
}
void tk_utf8_lossy(tk_buf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = 0;
    while (i < n) {
        if (u[i] < 0x80) { i++; continue; }
        int need, l = utf8_seq(u + i, n - i, &need);
        if (l > 0) { i += (size_t)l; continue; }
        tk_buf_add(out, s + start, i - start);
        tk_buf_add(out, "\xEF\xBF\xBD", 3);
        /* the maximal subpart: the lead plus the continuation bytes that were valid */
        i += l < 0 ? (size_t)(-l) : need ? n - i : 1;
        start = i;
    }
    tk_buf_add(out, s + start, n - start);
}
size_t tk_utf8_pending(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        int need;
        if (u[n - k] < 0x80) return 0;
        if (u[n - k] >= 0xC0) return utf8_seq(u + n - k, k, &need) == 0 && need ? k : 0;
    }
    return 0;
}

/* ---- patterns ---- */
/* Rust's regex and Oniguruma give \s the Unicode White_Space property; PCRE2's UCP
 * \s adds U+180E. \s and \S are rewritten to the White_Space list. */
#define TK_WS "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static char *rewrite_spaces(const char *re, size_t n) {
    tk_buf b = {0};
    int depth = 0; /* inside [...] */
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\' && i + 1 < n) {
            char c = re[i + 1];
            if (c == 's') tk_buf_add(&b, depth ? TK_WS : "[" TK_WS "]", strlen(depth ? TK_WS : "[" TK_WS "]"));
            else if (c == 'S' && !depth) tk_buf_add(&b, "[^" TK_WS "]", strlen("[^" TK_WS "]"));
            else tk_buf_add(&b, re + i, 2);
            i++;
            continue;
        }
        if (re[i] == '[' && !depth) {
            depth = 1;
            tk_buf_addc(&b, '[');
            if (i + 1 < n && re[i + 1] == '^') tk_buf_addc(&b, re[++i]);
            if (i + 1 < n && re[i + 1] == ']') tk_buf_addc(&b, re[++i]); /* a literal ] first */
            continue;
        }
        if (re[i] == ']' && depth) depth = 0;
        tk_buf_addc(&b, re[i]);
    }
    return tk_buf_take(&b);
}

lorajit_status tk_pattern_read(const lj_json_at *at, const cJSON *obj, const char *what, tk_pattern *p) {
    memset(p, 0, sizeof *p);
    const char *pre = at->prefix ? at->prefix : "";
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "String");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, "Regex");
    if (cJSON_IsString(s)) {
        p->lit_len = strlen(s->valuestring);
        p->lit = lj_strdup(s->valuestring);
        if (!p->lit) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
        if (!p->lit_len)
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s%s.String\" is empty", at->path, pre, what);
        return LORAJIT_OK;
    }
    if (!cJSON_IsString(r))
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s%s\" must be {\"String\": ...} or {\"Regex\": ...}",
                       at->path, pre, what);
    char *src = rewrite_spaces(r->valuestring, strlen(r->valuestring));
    if (!src) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    free(src);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s%s.Regex\": PCRE2 cannot compile it: %s",
                       at->path, pre, what, (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter when no JIT */
    p->re = re;
    return LORAJIT_OK;
}
void tk_pattern_free(tk_pattern *p) {
    free(p->lit);
    pcre2_code_free((pcre2_code *)p->re);
    memset(p, 0, sizeof *p);
}
/* Caller owns the result; free with tk_match_free(). */
void *tk_match_new(const tk_pattern *p) {
    return p->re ? pcre2_match_data_create_from_pattern((pcre2_code *)p->re, NULL) : NULL;
}
void tk_match_free(void *md) { pcre2_match_data_free((pcre2_match_data *)md); }

int tk_pattern_find(const tk_pattern *p, const char *s, size_t n, size_t from, void *md, size_t *ms, size_t *me) {
    if (p->lit) {
        if (from > n || n - from < p->lit_len) return 0;
        const char *f = memmem(s + from, n - from, p->lit, p->lit_len);
        if (!f) return 0;
        *ms = (size_t)(f - s);
        *me = *ms + p->lit_len;
        return 1;
    }
    int rc = pcre2_match((pcre2_code *)p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

bool tk_pattern_replace(const tk_pattern *p, const char *s, size_t n, const char *rep, size_t rep_len, tk_buf *out) {
    void *md = tk_match_new(p);
    if (p->re && !md) return false;
    size_t pos = 0, from = 0, ms, me;
    int r = 0;
    while (from <= n && (r = tk_pattern_find(p, s, n, from, md, &ms, &me)) > 0) {
        tk_buf_add(out, s + pos, ms - pos);
        tk_buf_add(out, rep, rep_len);
        pos = me;
        if (me == ms) { /* an empty match: step over one character */
            if (me >= n) break;
            size_t l = (size_t)tk_utf8_len((unsigned char)s[me]);
            tk_buf_add(out, s + me, l);
            pos = from = me + l;
        } else {
            from = me;
        }
    }
    tk_buf_add(out, s + pos, n > pos ? n - pos : 0);
    tk_match_free(md);
    return !out->oom && r >= 0;
}

/* ---- ByteLevel's byte <-> character tables ---- */
void tk_bytelevel_init(lorajit_tokenizer *t) {
    int n = 0;
    memset(t->bl_byte, 0xff, sizeof t->bl_byte);
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = keep ? b : 256 + n++;
        t->bl_len[b] = (uint8_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)t->bl_chr[b]);
        t->bl_byte[cp] = (int16_t)b;
    }
}
