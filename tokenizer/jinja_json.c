/* jinja_json.c — JSON in and out: the render's variables from cJSON, and tojson.
 *
 * jj_from_json turns a cJSON tree into values (a number with an integral value
 * becomes an int, as Python's json gives for "1"; cJSON keeps no trace of "1.0").
 * jj_tojson writes json.dumps(v, ensure_ascii, indent, separators, sort_keys)
 * exactly as Python does: ", " / ": " (or "," / ": " with an indent), floats as
 * repr, NaN/Infinity, keys converted to strings, \uXXXX escapes (surrogate pairs
 * with ensure_ascii). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jinja.h"

int jj_from_json(jj_state *st, const cJSON *j, jj_value *out) {
    if (++st->depth > JJ_MAX_DEPTH) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "variables nested deeper than %d", JJ_MAX_DEPTH);
    int n = 0;
    if (cJSON_IsNull(j)) *out = jj_none();
    else if (cJSON_IsBool(j)) *out = jj_bool(cJSON_IsTrue(j));
    else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        *out = d == floor(d) && fabs(d) < 9007199254740992.0 ? jj_int((int64_t)d) : jj_float(d);
    } else if (cJSON_IsString(j)) *out = jj_str(j->valuestring, strlen(j->valuestring));
    else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        for (const cJSON *c = j->child; c; c = c->next) n++;
        *out = cJSON_IsArray(j) ? jj_list_new(st, (size_t)n) : jj_dict_new(st, (size_t)n);
        int i = 0;
        for (const cJSON *c = j->child; c && !st->failed; c = c->next, i++) {
            jj_value v;
            if (jj_from_json(st, c, &v)) return -1;
            if (cJSON_IsArray(j)) out->u.list->items[i] = v;
            else jj_dict_set(st, out->u.dict, jj_str(c->string ? c->string : "", c->string ? strlen(c->string) : 0), v);
        }
    } else *out = jj_none();
    st->depth--;
    return st->failed ? -1 : 0;
}

typedef struct json_opts { int ascii, sort; const char *indent, *item_sep, *key_sep; } json_opts;

static int emit_json_str(jj_state *st, const char *s, size_t n, int ascii) {
    if (jj_emit(st, "\"", 1)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[16];
        const char *r = NULL;
        if (c == '"') r = "\\\"";
        else if (c == '\\') r = "\\\\";
        else if (c == '\n') r = "\\n";
        else if (c == '\r') r = "\\r";
        else if (c == '\t') r = "\\t";
        else if (c == '\b') r = "\\b";
        else if (c == '\f') r = "\\f";
        else if (c < 0x20 || (ascii && c == 0x7f)) { snprintf(esc, sizeof esc, "\\u%04x", c); r = esc; }
        else if (ascii && c >= 0x80) { /* one code point as \uXXXX (a pair above U+FFFF) */
            int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (i + (size_t)len > n) len = 1;
            uint32_t cp = len == 1 ? c : c & (0x3f >> (len - 1));
            for (int k = 1; k < len; k++) cp = cp << 6 | ((unsigned char)s[i + k] & 0x3f);
            i += (size_t)len - 1;
            if (cp >= 0x10000) snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
            else snprintf(esc, sizeof esc, "\\u%04x", cp);
            r = esc;
        }
        if (r ? jj_emit(st, r, strlen(r)) : jj_emit(st, s + i, 1)) return -1;
    }
    return jj_emit(st, "\"", 1);
}

static int newline_indent(jj_state *st, const json_opts *o, int level) {
    if (jj_emit(st, "\n", 1)) return -1;
    for (int i = 0; i < level; i++)
        if (jj_emit(st, o->indent, strlen(o->indent))) return -1;
    return 0;
}

/* The key of a dict entry as json.dumps converts it. */
static int key_text(jj_state *st, jj_value k, jj_value *out) {
    if (k.kind == JJ_STR) { *out = k; return 0; }
    if (k.kind == JJ_NONE) { *out = jj_str("null", 4); return 0; }
    if (k.kind == JJ_BOOL) { *out = k.u.i ? jj_str("true", 4) : jj_str("false", 5); return 0; }
    if (k.kind == JJ_INT || k.kind == JJ_FLOAT) return jj_to_str(st, k, out);
    return jj_fail(st, LORAJIT_E_ARG, "keys must be str, int, float, bool or None, not %s", jj_type_name(k));
}

static int emit_json(jj_state *st, jj_value v, const json_opts *o, int level) {
    char num[48];
    if (++st->steps > JJ_MAX_STEPS) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "evaluation step cap (%ld) reached", JJ_MAX_STEPS);
    if (level > JJ_MAX_DEPTH) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "tojson of a value nested deeper than %d", JJ_MAX_DEPTH);
    switch (v.kind) {
    case JJ_NONE: return jj_emit(st, "null", 4);
    case JJ_BOOL: return v.u.i ? jj_emit(st, "true", 4) : jj_emit(st, "false", 5);
    case JJ_INT: return jj_emit_str(st, v);
    case JJ_FLOAT:
        if (isnan(v.u.f)) return jj_emit(st, "NaN", 3);
        if (isinf(v.u.f)) return v.u.f > 0 ? jj_emit(st, "Infinity", 8) : jj_emit(st, "-Infinity", 9);
        return jj_emit(st, num, (size_t)jj_float_repr(v.u.f, num));
    case JJ_STR: return emit_json_str(st, v.u.s, v.len, o->ascii);
    case JJ_LIST: case JJ_DICT: {
        int dict = v.kind == JJ_DICT;
        size_t n = dict ? v.u.dict->n : v.u.list->n;
        if (n == 0) return jj_emit(st, dict ? "{}" : "[]", 2);
        size_t *order = jj_alloc(st, sizeof *order * n);
        jj_value *keys = dict ? jj_alloc(st, sizeof *keys * n) : NULL;
        if (!order || (dict && !keys)) return -1;
        for (size_t i = 0; i < n; i++) {
            order[i] = i;
            if (dict && key_text(st, v.u.dict->keys[i], &keys[i])) return -1;
        }
        for (size_t i = 1; dict && o->sort && i < n; i++) /* insertion sort of the keys (stable) */
            for (size_t j = i; j > 0; j--) {
                int lt;
                if (jj_less(st, keys[order[j]], keys[order[j - 1]], &lt)) return -1;
                if (!lt) break;
                size_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
            }
        if (jj_emit(st, dict ? "{" : "[", 1)) return -1;
        for (size_t i = 0; i < n; i++) {
            if (i && jj_emit(st, o->item_sep, strlen(o->item_sep))) return -1;
            if (o->indent && newline_indent(st, o, level + 1)) return -1;
            if (dict) {
                if (emit_json_str(st, keys[order[i]].u.s, keys[order[i]].len, o->ascii) ||
                    jj_emit(st, o->key_sep, strlen(o->key_sep)) || emit_json(st, v.u.dict->vals[order[i]], o, level + 1))
                    return -1;
            } else if (emit_json(st, v.u.list->items[i], o, level + 1)) return -1;
        }
        if (o->indent && newline_indent(st, o, level)) return -1;
        return jj_emit(st, dict ? "}" : "]", 1);
    }
    case JJ_UNDEF: case JJ_NS: case JJ_LOOP: case JJ_FUNC: case JJ_METHOD: case JJ_MACRO:
        break;
    }
    return jj_fail(st, LORAJIT_E_ARG, "Object of type %s is not JSON serializable", jj_type_name(v));
}

int jj_tojson(jj_state *st, jj_value v, int ensure_ascii, const char *indent, const char *item_sep,
              const char *key_sep, int sort_keys, jj_value *out) {
    json_opts o = {ensure_ascii, sort_keys, indent, item_sep ? item_sep : indent ? "," : ", ", key_sep ? key_sep : ": "};
    jj_capture save;
    jj_capture_begin(st, &save);
    emit_json(st, v, &o, 0);
    return jj_capture_end(st, &save, out);
}
