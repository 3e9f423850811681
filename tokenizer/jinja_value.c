/* jinja_value.c — values of the chat-template engine and their Python behaviour.
 *
 * The arena every value of one render lives in (freed at once when the render ends),
 * constructors, ordered dicts, truthiness, == and <, str() and repr() as Python
 * prints them (1.0, None, True, ['a', 1]), jinja2's sandboxed getattr/getitem and
 * what a for loop iterates. Output goes to the state's buffer, capped. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

struct jj_chunk { jj_chunk *next; size_t used, cap; _Alignas(16) unsigned char data[]; };

int jj_fail(jj_state *st, lorajit_status s, const char *fmt, ...) {
    if (st->failed) return -1;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) /* one printable line, whatever the template's text held */
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    lj_fail(st->err, s, "chat template: %s (line %d)", msg, st->line);
    st->failed = (int)s;
    return -1;
}

void *jj_alloc(jj_state *st, size_t n) {
    n = (n + 15) & ~(size_t)15;
    jj_chunk *c = st->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (st->arena_used + cap > JJ_MAX_ARENA) {
            jj_fail(st, LORAJIT_E_UNSUPPORTED, "memory cap of %u MiB reached", JJ_MAX_ARENA >> 20);
            return NULL;
        }
        c = malloc(sizeof *c + cap);
        if (!c) { jj_fail(st, LORAJIT_E_NOMEM, "out of memory"); return NULL; }
        c->cap = cap;
        c->used = 0;
        c->next = st->chunks;
        st->chunks = c;
        st->arena_used += cap;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void jj_arena_free(jj_state *st) {
    for (jj_chunk *c = st->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    st->chunks = NULL;
    st->arena_used = 0;
}

jj_value jj_undef(const char *what) { return (jj_value){.kind = JJ_UNDEF, .u.s = what}; }
jj_value jj_none(void) { return (jj_value){.kind = JJ_NONE}; }
jj_value jj_bool(int b) { return (jj_value){.kind = JJ_BOOL, .u.i = b != 0}; }
jj_value jj_int(int64_t i) { return (jj_value){.kind = JJ_INT, .u.i = i}; }
jj_value jj_float(double f) { return (jj_value){.kind = JJ_FLOAT, .u.f = f}; }
jj_value jj_str(const char *s, size_t len) { return (jj_value){.kind = JJ_STR, .len = len, .u.s = s}; }

jj_value jj_str_copy(jj_state *st, const char *s, size_t len) {
    char *p = jj_alloc(st, len + 1);
    if (!p) return jj_undef("");
    memcpy(p, s, len);
    return jj_str(p, len);
}

jj_value jj_list_new(jj_state *st, size_t n) {
    jj_list *l = jj_alloc(st, sizeof *l);
    jj_value *items = jj_alloc(st, sizeof *items * (n ? n : 1));
    if (!l || !items) return jj_undef("");
    l->n = n;
    l->items = items;
    return (jj_value){.kind = JJ_LIST, .u.list = l};
}

jj_value jj_dict_new(jj_state *st, size_t cap) {
    jj_dict *d = jj_alloc(st, sizeof *d);
    if (!d) return jj_undef("");
    d->cap = cap ? cap : 4;
    d->keys = jj_alloc(st, sizeof *d->keys * d->cap);
    d->vals = jj_alloc(st, sizeof *d->vals * d->cap);
    if (!d->keys || !d->vals) return jj_undef("");
    return (jj_value){.kind = JJ_DICT, .u.dict = d};
}

jj_value *jj_dict_get(const jj_dict *d, jj_value key) {
    for (size_t i = 0; i < d->n; i++)
        if (jj_equal(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

int jj_dict_set(jj_state *st, jj_dict *d, jj_value key, jj_value val) {
    jj_value *old = jj_dict_get(d, key);
    if (old) { *old = val; return 0; }
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        jj_value *k = jj_alloc(st, sizeof *k * cap), *v = jj_alloc(st, sizeof *v * cap);
        if (!k || !v) return -1;
        memcpy(k, d->keys, sizeof *k * d->n);
        memcpy(v, d->vals, sizeof *v * d->n);
        d->keys = k;
        d->vals = v;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n++] = val;
    return 0;
}

int jj_truthy(jj_value v) {
    switch (v.kind) {
    case JJ_UNDEF: case JJ_NONE: return 0;
    case JJ_BOOL: case JJ_INT: return v.u.i != 0;
    case JJ_FLOAT: return v.u.f != 0.0;
    case JJ_STR: return v.len > 0;
    case JJ_LIST: return v.u.list->n > 0;
    case JJ_DICT: return v.u.dict->n > 0;
    case JJ_NS: case JJ_LOOP: case JJ_FUNC: case JJ_METHOD: case JJ_MACRO: return 1;
    }
    return 1;
}

int jj_is_number(jj_value v) { return v.kind == JJ_BOOL || v.kind == JJ_INT || v.kind == JJ_FLOAT; }
double jj_as_double(jj_value v) { return v.kind == JJ_FLOAT ? v.u.f : (double)v.u.i; }

int jj_equal(jj_value a, jj_value b) {
    if (jj_is_number(a) && jj_is_number(b)) {
        if (a.kind != JJ_FLOAT && b.kind != JJ_FLOAT) return a.u.i == b.u.i;
        return jj_as_double(a) == jj_as_double(b);
    }
    if (a.kind != b.kind) return 0;
    switch (a.kind) {
    case JJ_UNDEF: case JJ_NONE: return 1;
    case JJ_STR: return a.len == b.len && memcmp(a.u.s, b.u.s, a.len) == 0;
    case JJ_LIST:
        if (a.u.list->n != b.u.list->n || a.u.list->tuple != b.u.list->tuple) return 0;
        for (size_t i = 0; i < a.u.list->n; i++)
            if (!jj_equal(a.u.list->items[i], b.u.list->items[i])) return 0;
        return 1;
    case JJ_DICT:
        if (a.u.dict->n != b.u.dict->n) return 0;
        for (size_t i = 0; i < a.u.dict->n; i++) {
            jj_value *o = jj_dict_get(b.u.dict, a.u.dict->keys[i]);
            if (!o || !jj_equal(a.u.dict->vals[i], *o)) return 0;
        }
        return 1;
    case JJ_NS: return a.u.dict == b.u.dict;
    case JJ_LOOP: return a.u.loop == b.u.loop;
    case JJ_MACRO: return a.u.macro == b.u.macro;
    case JJ_FUNC: return a.len == b.len;
    case JJ_METHOD: return a.u.method == b.u.method;
    case JJ_BOOL: case JJ_INT: case JJ_FLOAT: return 0; /* handled above */
    }
    return 0;
}

int jj_less(jj_state *st, jj_value a, jj_value b, int *lt) {
    if (jj_is_number(a) && jj_is_number(b)) {
        if (a.kind != JJ_FLOAT && b.kind != JJ_FLOAT) *lt = a.u.i < b.u.i;
        else *lt = jj_as_double(a) < jj_as_double(b);
        return 0;
    }
    if (a.kind == JJ_STR && b.kind == JJ_STR) { /* UTF-8 byte order is code point order */
        size_t n = a.len < b.len ? a.len : b.len;
        int c = memcmp(a.u.s, b.u.s, n);
        *lt = c < 0 || (c == 0 && a.len < b.len);
        return 0;
    }
    if (a.kind == JJ_LIST && b.kind == JJ_LIST) {
        size_t n = a.u.list->n < b.u.list->n ? a.u.list->n : b.u.list->n;
        for (size_t i = 0; i < n; i++) {
            if (jj_equal(a.u.list->items[i], b.u.list->items[i])) continue;
            return jj_less(st, a.u.list->items[i], b.u.list->items[i], lt);
        }
        *lt = a.u.list->n < b.u.list->n;
        return 0;
    }
    if (a.kind == JJ_UNDEF || b.kind == JJ_UNDEF)
        return jj_fail(st, LORAJIT_E_ARG, "'%s' is undefined", a.kind == JJ_UNDEF ? a.u.s : b.u.s);
    return jj_fail(st, LORAJIT_E_ARG, "'<' not supported between instances of '%s' and '%s'",
                   jj_type_name(a), jj_type_name(b));
}

const char *jj_type_name(jj_value v) {
    switch (v.kind) {
    case JJ_UNDEF: return "Undefined";
    case JJ_NONE: return "NoneType";
    case JJ_BOOL: return "bool";
    case JJ_INT: return "int";
    case JJ_FLOAT: return "float";
    case JJ_STR: return "str";
    case JJ_LIST: return v.u.list->tuple ? "tuple" : "list";
    case JJ_DICT: return "dict";
    case JJ_NS: return "Namespace";
    case JJ_LOOP: return "LoopContext";
    case JJ_FUNC: case JJ_METHOD: return "function";
    case JJ_MACRO: return "Macro";
    }
    return "object";
}

int jj_emit(jj_state *st, const char *s, size_t n) {
    if (st->failed) return -1;
    if (st->buf_len + n > JJ_MAX_OUTPUT)
        return jj_fail(st, LORAJIT_E_UNSUPPORTED, "output cap of %u MiB reached", JJ_MAX_OUTPUT >> 20);
    if (st->buf_len + n + 1 > st->buf_cap) {
        size_t cap = st->buf_cap ? st->buf_cap : 256;
        while (cap < st->buf_len + n + 1) cap *= 2;
        char *p = realloc(st->buf, cap);
        if (!p) return jj_fail(st, LORAJIT_E_NOMEM, "out of memory");
        st->buf = p;
        st->buf_cap = cap;
    }
    memcpy(st->buf + st->buf_len, s, n);
    st->buf_len += n;
    st->buf[st->buf_len] = '\0';
    return 0;
}

int jj_float_repr(double f, char *buf) {
    if (isnan(f)) return sprintf(buf, "nan");
    if (isinf(f)) return sprintf(buf, f < 0 ? "-inf" : "inf");
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) { /* shortest digits that read back to f */
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e: [-]d[.ddd]e[+-]XX -> digits and decimal exponent */
    char digits[24];
    int nd = 0, neg = e[0] == '-';
    const char *p = e + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(p + 1);
    int n = 0;
    if (neg) buf[n++] = '-';
    if (exp10 >= 16 || exp10 < -4) {
        buf[n++] = digits[0];
        if (nd > 1) { buf[n++] = '.'; memcpy(buf + n, digits + 1, nd - 1); n += nd - 1; }
        n += sprintf(buf + n, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        n += sprintf(buf + n, "0.");
        for (int i = 0; i < -exp10 - 1; i++) buf[n++] = '0';
        memcpy(buf + n, digits, nd);
        n += nd;
    } else {
        for (int i = 0; i <= exp10; i++) buf[n++] = i < nd ? digits[i] : '0';
        buf[n++] = '.';
        if (nd > exp10 + 1) { memcpy(buf + n, digits + exp10 + 1, nd - exp10 - 1); n += nd - exp10 - 1; }
        else buf[n++] = '0';
    }
    buf[n] = '\0';
    return n;
}

/* Python's repr of a str: quotes chosen as Python does, escapes for what is not printable. */
static int emit_str_repr(jj_state *st, const char *s, size_t n) {
    int dq = memchr(s, '\'', n) && !memchr(s, '"', n);
    char q = dq ? '"' : '\'';
    if (jj_emit(st, &q, 1)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[12];
        const char *r = NULL;
        if (c == '\\') r = "\\\\";
        else if (c == (unsigned char)q) r = dq ? "\\\"" : "\\'";
        else if (c == '\n') r = "\\n";
        else if (c == '\r') r = "\\r";
        else if (c == '\t') r = "\\t";
        else if (c < 0x20 || c == 0x7f) { snprintf(esc, sizeof esc, "\\x%02x", c); r = esc; }
        else if (c == 0xc2 && i + 1 < n && ((unsigned char)s[i + 1] < 0xa1 || (unsigned char)s[i + 1] == 0xad)) {
            snprintf(esc, sizeof esc, "\\x%02x", (unsigned char)s[i + 1]); /* C1, NBSP, SHY */
            r = esc;
            i++;
        }
        if (r ? jj_emit(st, r, strlen(r)) : jj_emit(st, (const char *)&s[i], 1)) return -1;
    }
    return jj_emit(st, &q, 1);
}

static int emit_value(jj_state *st, jj_value v, int repr) {
    char num[48];
    switch (v.kind) {
    case JJ_UNDEF: return 0;
    case JJ_NONE: return jj_emit(st, "None", 4);
    case JJ_BOOL: return v.u.i ? jj_emit(st, "True", 4) : jj_emit(st, "False", 5);
    case JJ_INT: return jj_emit(st, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)v.u.i));
    case JJ_FLOAT: return jj_emit(st, num, (size_t)jj_float_repr(v.u.f, num));
    case JJ_STR: return repr ? emit_str_repr(st, v.u.s, v.len) : jj_emit(st, v.u.s, v.len);
    case JJ_LIST: {
        const jj_list *l = v.u.list;
        if (l->view && l->view[0] == '<') /* a range or generator: Python prints its address or bounds */
            return jj_fail(st, LORAJIT_E_UNSUPPORTED, "printing a %s object is not supported", l->view + 1);
        if (l->view && (jj_emit(st, l->view, strlen(l->view)) || jj_emit(st, "(", 1))) return -1;
        if (jj_emit(st, l->tuple ? "(" : "[", 1)) return -1;
        for (size_t i = 0; i < l->n; i++)
            if ((i && jj_emit(st, ", ", 2)) || emit_value(st, l->items[i], 1)) return -1;
        if (l->tuple && l->n == 1 && jj_emit(st, ",", 1)) return -1;
        if (jj_emit(st, l->tuple ? ")" : "]", 1)) return -1;
        return l->view ? jj_emit(st, ")", 1) : 0;
    }
    case JJ_NS: case JJ_DICT: {
        const jj_dict *d = v.u.dict;
        if (v.kind == JJ_NS && jj_emit(st, "<Namespace ", 11)) return -1;
        if (jj_emit(st, "{", 1)) return -1;
        for (size_t i = 0; i < d->n; i++)
            if ((i && jj_emit(st, ", ", 2)) || emit_value(st, d->keys[i], 1) || jj_emit(st, ": ", 2) ||
                emit_value(st, d->vals[i], 1))
                return -1;
        return jj_emit(st, v.kind == JJ_NS ? "}>" : "}", v.kind == JJ_NS ? 2 : 1);
    }
    case JJ_LOOP: case JJ_FUNC: case JJ_METHOD: case JJ_MACRO:
        return jj_fail(st, LORAJIT_E_UNSUPPORTED, "printing a %s object is not supported", jj_type_name(v));
    }
    return 0;
}

int jj_emit_str(jj_state *st, jj_value v) { return emit_value(st, v, 0); }

void jj_capture_begin(jj_state *st, jj_capture *save) {
    save->buf = st->buf;
    save->len = st->buf_len;
    save->cap = st->buf_cap;
    st->buf = NULL;
    st->buf_len = st->buf_cap = 0;
}

int jj_capture_end(jj_state *st, jj_capture *save, jj_value *out) {
    int rc = st->failed ? -1 : 0;
    if (rc == 0) {
        *out = jj_str_copy(st, st->buf ? st->buf : "", st->buf_len);
        rc = st->failed ? -1 : 0;
    }
    free(st->buf);
    st->buf = save->buf;
    st->buf_len = save->len;
    st->buf_cap = save->cap;
    return rc;
}

int jj_to_str(jj_state *st, jj_value v, jj_value *out) {
    if (v.kind == JJ_STR) { *out = v; return 0; }
    jj_capture save;
    jj_capture_begin(st, &save);
    emit_value(st, v, 0);
    return jj_capture_end(st, &save, out);
}

size_t jj_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

size_t jj_utf8_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    for (; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && k-- == 0) return i;
    return n;
}

static const char STR_METHODS[] =
    " capitalize casefold center count encode endswith expandtabs find format format_map index isalnum isalpha"
    " isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle isupper join ljust"
    " lower lstrip maketrans partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit"
    " rstrip split splitlines startswith strip swapcase title translate upper zfill ";

int jj_str_has_method(const char *name, size_t len) {
    char key[40];
    if (len + 3 > sizeof key || memchr(name, ' ', len)) return 0;
    key[0] = ' ';
    memcpy(key + 1, name, len);
    key[len + 1] = ' ';
    key[len + 2] = '\0';
    return strstr(STR_METHODS, key) != NULL;
}

/* Python method names of dict, list and str: a name among them that is not
 * implemented is refused rather than read as undefined. */
static int in_names(const char *names, const char *name, size_t len) {
    for (const char *p = names; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && memcmp(p, name, len) == 0) return 1;
        p += n + (p[n] == ' ');
    }
    return 0;
}
static const char DICT_METHODS[] = "clear copy fromkeys get items keys pop popitem setdefault update values";
static const char DICT_DONE[] = "get items keys values";
static const char LIST_METHODS[] = "append clear copy count extend index insert pop remove reverse sort";

static jj_value method(jj_state *st, jj_value self, const char *name, size_t len) {
    jj_method *m = jj_alloc(st, sizeof *m);
    char *nm = jj_alloc(st, len + 1);
    if (!m || !nm) return jj_undef("");
    memcpy(nm, name, len);
    m->self = self;
    m->name = nm;
    return (jj_value){.kind = JJ_METHOD, .u.method = m};
}

int jj_getattr(jj_state *st, jj_value obj, const char *name, size_t len, jj_value *out) {
    char what[96];
    switch (obj.kind) {
    case JJ_UNDEF:
        return jj_fail(st, LORAJIT_E_ARG, "'%s' is undefined", obj.u.s);
    case JJ_DICT:
        if (in_names(DICT_METHODS, name, len)) {
            if (!in_names(DICT_DONE, name, len))
                return jj_fail(st, LORAJIT_E_UNSUPPORTED, "dict method '%.*s' is not supported", (int)len, name);
            *out = method(st, obj, name, len);
            return st->failed ? -1 : 0;
        }
        __attribute__((fallthrough)); /* the key */
    case JJ_NS: {
        jj_value *v = jj_dict_get(obj.u.dict, jj_str(name, len));
        if (v) { *out = *v; return 0; }
        break;
    }
    case JJ_STR:
        if (jj_str_has_method(name, len)) {
            *out = method(st, obj, name, len);
            return st->failed ? -1 : 0;
        }
        break;
    case JJ_LIST:
        if (in_names(LIST_METHODS, name, len))
            return jj_fail(st, LORAJIT_E_UNSUPPORTED, "list method '%.*s' is not supported", (int)len, name);
        break;
    case JJ_LOOP: {
        const jj_loop *l = obj.u.loop;
        size_t n = l->items->n, i = l->index0;
#define IS(s) (len == sizeof s - 1 && memcmp(name, s, len) == 0)
        if (IS("index")) *out = jj_int((int64_t)i + 1);
        else if (IS("index0")) *out = jj_int((int64_t)i);
        else if (IS("revindex")) *out = jj_int((int64_t)(n - i));
        else if (IS("revindex0")) *out = jj_int((int64_t)(n - i - 1));
        else if (IS("first")) *out = jj_bool(i == 0);
        else if (IS("last")) *out = jj_bool(i + 1 == n);
        else if (IS("length")) *out = jj_int((int64_t)n);
        else if (IS("depth")) *out = jj_int(l->depth0 + 1);
        else if (IS("depth0")) *out = jj_int(l->depth0);
        else if (IS("previtem")) *out = i > 0 ? l->items->items[i - 1] : jj_undef("there is no previous item");
        else if (IS("nextitem")) *out = i + 1 < n ? l->items->items[i + 1] : jj_undef("there is no next item");
        else return jj_fail(st, LORAJIT_E_UNSUPPORTED, "loop.%.*s is not supported", (int)len, name);
#undef IS
        return 0;
    }
    case JJ_NONE: case JJ_BOOL: case JJ_INT: case JJ_FLOAT: case JJ_FUNC: case JJ_METHOD: case JJ_MACRO:
        break;
    }
    snprintf(what, sizeof what, "'%s object' has no attribute '%.*s'", jj_type_name(obj), len > 40 ? 40 : (int)len,
             name);
    char *w = jj_alloc(st, strlen(what) + 1);
    if (!w) return -1;
    strcpy(w, what);
    *out = jj_undef(w);
    return 0;
}

int jj_getitem(jj_state *st, jj_value obj, jj_value key, jj_value *out) {
    if (obj.kind == JJ_UNDEF) return jj_fail(st, LORAJIT_E_ARG, "'%s' is undefined", obj.u.s);
    if (obj.kind == JJ_DICT) {
        jj_value *v = jj_dict_get(obj.u.dict, key);
        if (v) { *out = *v; return 0; }
    } else if ((obj.kind == JJ_LIST || obj.kind == JJ_STR) && (key.kind == JJ_INT || key.kind == JJ_BOOL)) {
        int64_t n = obj.kind == JJ_LIST ? (int64_t)obj.u.list->n : (int64_t)jj_utf8_count(obj.u.s, obj.len);
        int64_t i = key.u.i < 0 ? key.u.i + n : key.u.i;
        if (i >= 0 && i < n) {
            if (obj.kind == JJ_LIST) { *out = obj.u.list->items[i]; return 0; }
            size_t a = jj_utf8_offset(obj.u.s, obj.len, (size_t)i), b = jj_utf8_offset(obj.u.s, obj.len, (size_t)i + 1);
            *out = jj_str(obj.u.s + a, b - a);
            return 0;
        }
    }
    if (key.kind == JJ_STR && obj.kind != JJ_DICT) return jj_getattr(st, obj, key.u.s, key.len, out);
    if (key.kind == JJ_STR && (in_names(DICT_METHODS, key.u.s, key.len)))
        return jj_getattr(st, obj, key.u.s, key.len, out);
    *out = jj_undef("no such item");
    return 0;
}

int jj_iterate(jj_state *st, jj_value v, const jj_list **out) {
    static const jj_list empty;
    jj_value l;
    switch (v.kind) {
    case JJ_UNDEF: *out = &empty; return 0;
    case JJ_LIST: *out = v.u.list; return 0;
    case JJ_DICT:
        l = jj_list_new(st, v.u.dict->n);
        if (st->failed) return -1;
        memcpy(l.u.list->items, v.u.dict->keys, sizeof(jj_value) * v.u.dict->n);
        *out = l.u.list;
        return 0;
    case JJ_STR: {
        size_t n = jj_utf8_count(v.u.s, v.len);
        l = jj_list_new(st, n);
        if (st->failed) return -1;
        for (size_t i = 0, a = 0; i < n; i++) {
            size_t b = jj_utf8_offset(v.u.s + a, v.len - a, 1) + a;
            l.u.list->items[i] = jj_str(v.u.s + a, b - a);
            a = b;
        }
        *out = l.u.list;
        return 0;
    }
    case JJ_NONE: case JJ_BOOL: case JJ_INT: case JJ_FLOAT: case JJ_NS: case JJ_LOOP: case JJ_FUNC:
    case JJ_METHOD: case JJ_MACRO:
        break;
    }
    return jj_fail(st, LORAJIT_E_ARG, "'%s' object is not iterable", jj_type_name(v));
}
