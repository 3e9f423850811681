/* json.c — the one JSON reading layer of runtime/formats/.
 *
 * Input: JSON texts from the user's folders (config.json, the schema, adapter_config.json,
 * the shard index, an artifact's manifest), hostile until checked. Output: a cJSON object
 * (read under a size cap, at most LJ_JSON_MAX_VALUES values, parsed strictly, no key twice
 * in one object and no \u0000 escape -- Python's json would read those otherwise -- its
 * root an object) and typed field values (integer in a range, finite number, bool, string,
 * string list, object, list). Every refusal names the file and the field path, never the
 * text; absent and null read alike: an error when the field is required, else the output
 * keeps its default. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

/* ---- what Python's json would read differently ---- */

/* Byte offset of the first \u0000 escape in text that cJSON parsed (valid JSON has
 * backslashes inside strings only), or len if none. cJSON ends a string there,
 * Python keeps the rest: "lora_alpha\u0000x" is lora_alpha to one, another key to
 * the other. */
static size_t nul_escape_at(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    while ((p = memchr(p, '\\', (size_t)(end - p))) && end - p >= 2) {
        if (p[1] == 'u' && end - p >= 6 && memcmp(p + 2, "0000", 4) == 0) return (size_t)(p - text);
        p += 2; /* past the escaped character, which may be a second backslash */
    }
    return len;
}

static int member_cmp(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

#define LJ_KEY_PATH 256 /* bytes of a key path in a message ("rank_pattern.q_proj", "a[3].b") */

/* Where key_twice is in the tree: a node's place in its parent (key, or index in an
 * array), up to the root (up NULL). The path is written out only for a duplicate:
 * building it at every node cost a snprintf per tensor of a safetensors header. */
typedef struct key_at {
    const struct key_at *up;
    const char *key; /* NULL: an array element */
    int index;
} key_at;

/* The path of at into buf[LJ_KEY_PATH] ("" at the root); returns its length. */
static size_t key_path(const key_at *at, char *buf) {
    if (!at->up) return (size_t)(buf[0] = '\0');
    size_t len = key_path(at->up, buf);
    int k = at->key ? snprintf(buf + len, LJ_KEY_PATH - len, "%s%s", len ? "." : "", at->key)
                    : snprintf(buf + len, LJ_KEY_PATH - len, "[%d]", at->index);
    len += k > 0 ? (size_t)k : 0;
    return len < LJ_KEY_PATH ? len : LJ_KEY_PATH - 1;
}

/* Finds a key that appears twice in one object of the tree j (at: j's place) and
 * writes the key's path to dup[LJ_KEY_PATH]. 1: found, 0: none, -1: out of memory.
 * The depth is bounded by cJSON's nesting limit (CJSON_NESTING_LIMIT). */
static int key_twice(const cJSON *j, const key_at *at, char *dup) {
    int n = 0, found = 0, i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) n++;
    bool obj = cJSON_IsObject(j);
    if (obj && n > 1) { /* sorted, so that a header of a million tensors stays n log n */
        const cJSON *few[8], **m = n <= 8 ? few : lj_malloc((size_t)n * sizeof *m); /* a tensor's entry: no malloc */
        if (!m) return -1;
        cJSON_ArrayForEach(c, j) m[i++] = c;
        qsort(m, (size_t)n, sizeof *m, member_cmp);
        for (i = 1; i < n && !found; i++)
            if (strcmp(m[i - 1]->string, m[i]->string) == 0) {
                size_t len = key_path(at, dup);
                snprintf(dup + len, LJ_KEY_PATH - len, "%s%s", len ? "." : "", m[i]->string);
                found = 1;
            }
        if (m != few) free(m);
    }
    i = 0;
    cJSON_ArrayForEach(c, j) {
        if (found) break;
        if (c->child) {
            key_at below = {at, obj ? c->string : NULL, i};
            found = key_twice(c, &below, dup);
        }
        i++;
    }
    return found;
}

/* Refuses a parsed text j that Python's json (and so PEFT and transformers) would
 * read otherwise: a \u0000 escape, or a key twice in one object (Python keeps the
 * last value; lorajit refuses rather than guess which one was meant). */
static lorajit_status python_agrees(const char *text, size_t len, const cJSON *j, const char *path,
                                    size_t base, lj_err *err) {
    const char *where = base ? " in the JSON header" : "";
    size_t nul = nul_escape_at(text, len);
    if (nul < len)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: a string%s holds \\u0000 at byte %zu, which lorajit "
                       "would cut and Python's json would keep; refused", path, where, base + nul);
    char dup[LJ_KEY_PATH];
    key_at root = {NULL, NULL, 0};
    int r = key_twice(j, &root, dup);
    if (r < 0) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory checking JSON keys", path);
    if (r > 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: key \"%s\" appears twice%s; lorajit refuses duplicate "
                       "keys (Python's json, so PEFT and transformers, would keep the last value, other "
                       "readers the first): keep one", path, dup, where);
    return LORAJIT_OK;
}

/* ---- text -> tree ---- */

/* An upper bound on the values text would parse into (each is a cJSON node of
 * ~64 bytes plus its key): containers + elements, counted as openers + commas
 * outside strings (+1). Invalid text may count wrong; the parse refuses it anyway. */
static size_t values_in(const char *text, size_t len) {
    size_t n = 1;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == '[' || c == '{') {
            n++;
        }
    }
    return n;
}

/* Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse(const char *text, size_t len, const char *path, size_t base,
                             struct cJSON **root, lj_err *err) {
    return lj_json_parse_max(text, len, path, base, LJ_JSON_MAX_VALUES, root, err);
}

/* Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse_max(const char *text, size_t len, const char *path, size_t base, long max_values,
                                 struct cJSON **root, lj_err *err) {
    *root = NULL;
    /* The tree takes up to ~100 bytes per value: bound it before building it. */
    if (values_in(text, len) > (size_t)max_values)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: the JSON %s holds more than %ld values, over the limit",
                       path, base ? "header" : "text", max_values);
    /* cJSON wants a terminated string; copying also keeps it from reading past
     * text[len] (text may be a slice of an mmap). The NUL is passed inside the
     * length so that require_null_terminated refuses trailing garbage only. */
    char *copy = lj_malloc(len + 1);
    if (!copy) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory parsing JSON", path);
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (!j) {
        size_t off = (end && end >= copy && end <= copy + len) ? (size_t)(end - copy) : 0;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (copy[i] == '\n') { line++; col = 1; } else { col++; }
        }
        free(copy);
        if (base == 0)
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: invalid JSON at byte %zu (line %zu, column %zu)",
                           path, off, line, col);
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: invalid JSON header at byte %zu", path, base + off);
    }
    free(copy);
    lorajit_status s = python_agrees(text, len, j, path, base, err);
    if (s) {
        cJSON_Delete(j);
        return s;
    }
    *root = j;
    return LORAJIT_OK;
}

/* Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse_object(const char *text, size_t len, const char *path, struct cJSON **root,
                                    lj_err *err) {
    lorajit_status s = lj_json_parse(text, len, path, 0, root, err);
    if (s) return s;
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: the top level is not a JSON object", path);
    }
    return LORAJIT_OK;
}

/* Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_read(const char *path, size_t max_bytes, struct cJSON **root, lj_err *err) {
    char *text;
    size_t len;
    *root = NULL;
    lorajit_status s = lj_read_file_max(path, max_bytes, &text, &len, err);
    if (s) return s;
    s = lj_json_parse_object(text, len, path, root, err);
    free(text);
    return s;
}

/* ---- typed fields ---- */

/* The value a reader looks at (NULL: absent or null) and its name for messages. */
typedef struct jfield {
    const cJSON *v;
    char name[256]; /* at->prefix + key, cut to fit */
} jfield;

/* Finds the field; absent (or null) is an error when required, else f->v is NULL
 * and the caller leaves its output as it was. */
static lorajit_status field_at(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                               jfield *f) {
    f->v = key ? cJSON_GetObjectItemCaseSensitive(obj, key) : obj;
    const char *k = key ? key : (obj && obj->string ? obj->string : "");
    snprintf(f->name, sizeof f->name, "%s%s", at->prefix ? at->prefix : "", k);
    if (f->v && cJSON_IsNull(f->v)) f->v = NULL;
    if (!f->v && (flags & LJ_JSON_REQUIRED))
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s\" is missing", at->path, f->name);
    return LORAJIT_OK;
}

static lorajit_status wrong_type(const lj_json_at *at, const jfield *f, const char *want) {
    return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s\" must be %s", at->path, f->name, want);
}

lorajit_status lj_json_int(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                           int64_t lo, int64_t hi, int64_t *out) {
    jfield f;
    lorajit_status s = field_at(at, obj, key, flags, &f);
    if (s || !f.v) return s;
    double d = f.v->valuedouble;
    if (!cJSON_IsNumber(f.v) || !isfinite(d) || d != floor(d)) return wrong_type(at, &f, "an integer");
    if (d > (double)hi && (flags & LJ_JSON_LIMIT))
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%s\" is %.0f, over the limit %lld",
                       at->path, f.name, d, (long long)hi);
    if (d < (double)lo || d > (double)hi)
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s\" is %.0f; it must be in %lld..%lld",
                       at->path, f.name, d, (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return LORAJIT_OK;
}

/* A finite number (positive with LJ_JSON_POSITIVE; also as a float when single). */
static lorajit_status number_of(const lj_json_at *at, const jfield *f, unsigned flags, bool single,
                                double *out) {
    bool positive = flags & LJ_JSON_POSITIVE;
    double d = f->v->valuedouble;
    bool ok = cJSON_IsNumber(f->v) && isfinite(d) && (!positive || d > 0);
    if (ok && single) ok = isfinite((float)d) && (!positive || (float)d > 0);
    if (!ok) return wrong_type(at, f, positive ? "a positive number" : "a finite number");
    *out = d;
    return LORAJIT_OK;
}

lorajit_status lj_json_number(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                              double *out) {
    jfield f;
    lorajit_status s = field_at(at, obj, key, flags, &f);
    if (s || !f.v) return s;
    return number_of(at, &f, flags, false, out);
}

lorajit_status lj_json_float(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                             float *out) {
    jfield f;
    double d;
    lorajit_status s = field_at(at, obj, key, flags, &f);
    if (s || !f.v || (s = number_of(at, &f, flags, true, &d))) return s;
    *out = (float)d;
    return LORAJIT_OK;
}

/* A value of the type is() accepts (want names it); *v borrowed from obj's tree,
 * left as it was when the field is absent and optional. */
static lorajit_status typed(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                            cJSON_bool (*is)(const cJSON *), const char *want, const cJSON **v) {
    jfield f;
    lorajit_status s = field_at(at, obj, key, flags, &f);
    if (s || !f.v) return s;
    if (!is(f.v)) return wrong_type(at, &f, want);
    *v = f.v;
    return LORAJIT_OK;
}

lorajit_status lj_json_bool(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                            bool *out) {
    const cJSON *v = NULL;
    lorajit_status s = typed(at, obj, key, flags, cJSON_IsBool, "true or false", &v);
    if (v) *out = cJSON_IsTrue(v);
    return s;
}

/* Borrowed; *out valid until obj's tree is deleted. */
lorajit_status lj_json_string(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                              const char **out) {
    const cJSON *v = NULL;
    lorajit_status s = typed(at, obj, key, flags, cJSON_IsString, "a string", &v);
    if (v) *out = v->valuestring;
    return s;
}

/* Caller owns *out (the array; free with free()); its strings are borrowed from
 * obj's tree. Absent and optional: *out stays NULL and *n 0. */
lorajit_status lj_json_strings(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                               const char ***out, int *n) {
    *out = NULL;
    *n = 0;
    jfield f;
    lorajit_status s = field_at(at, obj, key, flags, &f);
    if (s || !f.v) return s;
    if (!cJSON_IsArray(f.v)) return wrong_type(at, &f, "a list of strings");
    int count = cJSON_GetArraySize(f.v), i = 0;
    const char **names = lj_calloc((size_t)count + 1, sizeof *names);
    if (!names) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, f.v) {
        if (!cJSON_IsString(e)) {
            free(names);
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%s\": element %d is not a string",
                           at->path, f.name, i);
        }
        names[i++] = e->valuestring;
    }
    *out = names;
    *n = count;
    return LORAJIT_OK;
}

/* Borrowed; *out valid until obj's tree is deleted. */
lorajit_status lj_json_object(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                              const cJSON **out) {
    return typed(at, obj, key, flags, cJSON_IsObject, "an object", out);
}

/* Borrowed; *out valid until obj's tree is deleted. */
lorajit_status lj_json_array(const lj_json_at *at, const cJSON *obj, const char *key, unsigned flags,
                             const cJSON **out) {
    return typed(at, obj, key, flags, cJSON_IsArray, "a list", out);
}
