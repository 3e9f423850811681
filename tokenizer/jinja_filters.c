/* jinja_filters.c — jinja2's filters and tests that chat templates use.
 *
 * Input: the value, the evaluated arguments (keyword names alongside). Output: the
 * result value. Arguments bind to each filter's jinja2 signature (positional, then
 * by name). tojson is transformers' (json.dumps, ensure_ascii=False). A filter or
 * test not listed here is refused by name when the template is parsed
 * (jj_filter_known / jj_test_known), before anything renders. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static const char FILTERS[] = " abs capitalize count d default e escape first float forceescape int items join"
                              " last length list lower map reject rejectattr replace reverse safe select"
                              " selectattr string title tojson trim upper ";
static const char TESTS[] = " defined undefined none string number integer float mapping iterable sequence"
                            " callable boolean true false equalto eq == ne != lt < gt > le <= ge >= in odd even"
                            " divisibleby sameas lower upper ";

static int in_words(const char *words, const char *name) {
    size_t len = strlen(name);
    for (const char *p = strstr(words, name); p; p = strstr(p + 1, name))
        if (p[-1] == ' ' && p[len] == ' ') return 1;
    return 0;
}
int jj_filter_known(const char *name) { return name[0] && !strchr(name, ' ') && in_words(FILTERS, name); }
int jj_test_known(const char *name) { return name[0] && !strchr(name, ' ') && in_words(TESTS, name); }

/* Binds args to params (NULL-terminated names, in signature order) into slot[];
 * a slot not given keeps kind JJ_UNDEF with u.s NULL. */
static int bind(jj_state *st, const char *what, const char *const *params, const jj_value *args, const char **kw,
                int n_args, jj_value *slot) {
    int n_params = 0, pos = 0;
    while (params[n_params]) slot[n_params++] = (jj_value){.kind = JJ_UNDEF};
    for (int i = 0; i < n_args; i++) {
        int k = -1;
        if (kw && kw[i]) {
            for (k = 0; k < n_params && strcmp(params[k], kw[i]); k++) {}
            if (k == n_params) return jj_fail(st, LORAJIT_E_ARG, "%s got an unexpected keyword argument '%s'", what, kw[i]);
        } else if ((k = pos++) >= n_params) return jj_fail(st, LORAJIT_E_ARG, "%s got too many arguments", what);
        slot[k] = args[i];
    }
    return 0;
}
static int given(jj_value v) { return !(v.kind == JJ_UNDEF && v.u.s == NULL); }

/* jinja2's attribute getter: "a.b.0" walks getitem with each part (digits as ints). */
static int get_path(jj_state *st, jj_value obj, jj_value path, jj_value *out) {
    if (path.kind == JJ_INT) return jj_getitem(st, obj, path, out);
    if (path.kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "attribute must be a string or an integer");
    const char *p = path.u.s, *end = p + path.len;
    *out = obj;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        jj_value key = jj_str(p, (size_t)(dot - p));
        int digits = dot > p;
        for (const char *q = p; q < dot; q++) digits &= *q >= '0' && *q <= '9';
        if (digits && dot - p < 18) key = jj_int(strtoll(p, NULL, 10));
        if (jj_getitem(st, *out, key, out)) return -1;
        p = dot + 1;
    }
    return 0;
}

int jj_escape_html(jj_state *st, jj_value v, jj_value *out) {
    jj_value s;
    if (jj_to_str(st, v, &s)) return -1;
    jj_capture save;
    jj_capture_begin(st, &save);
    for (size_t i = 0, from = 0; i <= s.len && !st->failed; i++) {
        const char *r = i == s.len ? "" : s.u.s[i] == '&' ? "&amp;" : s.u.s[i] == '<' ? "&lt;" : s.u.s[i] == '>' ? "&gt;"
                        : s.u.s[i] == '"' ? "&#34;" : s.u.s[i] == '\'' ? "&#39;" : NULL;
        if (!r) continue;
        jj_emit(st, s.u.s + from, i - from);
        jj_emit(st, r, strlen(r));
        from = i + 1;
    }
    return jj_capture_end(st, &save, out);
}

/* int(v) / float(v) as jinja2's int and float filters (default on failure). */
static int to_number(jj_state *st, jj_value v, int want_int, jj_value dflt, jj_value *out) {
    if (v.kind == JJ_BOOL || v.kind == JJ_INT) { *out = want_int ? jj_int(v.u.i) : jj_float((double)v.u.i); return 0; }
    if (v.kind == JJ_FLOAT) {
        if (!want_int) { *out = v; return 0; }
        if (isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) { *out = jj_int((int64_t)v.u.f); return 0; }
    } else if (v.kind == JJ_STR && v.len < 64) {
        char buf[64], *end;
        jj_value t;
        jj_str_strip(st, v, NULL, 3, &t);
        size_t n = 0;
        for (size_t i = 0; i < t.len; i++)
            if (t.u.s[i] != '_' || (i > 0 && i + 1 < t.len)) buf[n++] = t.u.s[i];
        buf[n] = '\0';
        if (n) {
            long long i = strtoll(buf, &end, 10);
            if (!*end && (buf[0] != '+' || n > 1)) { *out = want_int ? jj_int(i) : jj_float((double)i); return 0; }
            double f = strtod(buf, &end);
            if (!*end && !strchr(buf, 'x') && !strchr(buf, 'X') && (!want_int || (isfinite(f) && fabs(f) < 9.2e18))) {
                *out = want_int ? jj_int((int64_t)f) : jj_float(f);
                return 0;
            }
        }
    }
    *out = given(dflt) ? dflt : want_int ? jj_int(0) : jj_float(0.0);
    return 0;
}

/* select/reject/selectattr/rejectattr: keep items whose (attribute's) test result is want. */
static int select_items(jj_state *st, jj_value v, const jj_value *args, int n_args, int by_attr, int want,
                        jj_value *out) {
    const jj_list *l;
    if (jj_iterate(st, v, &l)) return -1;
    if (by_attr && n_args < 1) return jj_fail(st, LORAJIT_E_ARG, "selectattr/rejectattr need an attribute");
    const jj_value *test = n_args > by_attr ? &args[by_attr] : NULL;
    if (test && test->kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "the test name must be a string");
    char name[64] = "";
    if (test) {
        snprintf(name, sizeof name, "%.*s", (int)(test->len > 63 ? 63 : test->len), test->u.s);
        if (!jj_test_known(name)) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "test '%s' is not supported", name);
    }
    *out = jj_list_new(st, l->n);
    if (st->failed) return -1;
    out->u.list->n = 0;
    for (size_t i = 0; i < l->n; i++) {
        jj_value x = l->items[i];
        int r;
        if (by_attr && get_path(st, x, args[0], &x)) return -1;
        if (test) { if (jj_test(st, name, x, args + by_attr + 1, n_args - by_attr - 1, &r)) return -1; }
        else r = jj_truthy(x);
        if (r == want) out->u.list->items[out->u.list->n++] = l->items[i];
    }
    return 0;
}

static int map_items(jj_state *st, jj_value v, const jj_value *args, const char **kw, int n_args, jj_value *out) {
    static const char *const params[] = {"attribute", "default", NULL};
    const jj_list *l;
    if (jj_iterate(st, v, &l)) return -1;
    *out = jj_list_new(st, l->n);
    if (st->failed) return -1;
    if (n_args >= 1 && kw && kw[0]) { /* map(attribute=..., default=...) */
        jj_value p[2];
        if (bind(st, "map()", params, args, kw, n_args, p)) return -1;
        for (size_t i = 0; i < l->n; i++) {
            if (get_path(st, l->items[i], p[0], &out->u.list->items[i])) return -1;
            if (out->u.list->items[i].kind == JJ_UNDEF && given(p[1])) out->u.list->items[i] = p[1];
        }
        return 0;
    }
    if (n_args < 1 || args[0].kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "map() needs a filter name or attribute=");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(args[0].len > 63 ? 63 : args[0].len), args[0].u.s);
    if (!jj_filter_known(name)) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "filter '%s' is not supported", name);
    for (size_t i = 0; i < l->n; i++)
        if (jj_filter(st, name, l->items[i], args + 1, kw ? kw + 1 : NULL, n_args - 1, &out->u.list->items[i])) return -1;
    return 0;
}

static int length(jj_state *st, jj_value v, jj_value *out) {
    switch (v.kind) {
    case JJ_UNDEF: *out = jj_int(0); return 0;
    case JJ_STR: *out = jj_int((int64_t)jj_utf8_count(v.u.s, v.len)); return 0;
    case JJ_LIST: *out = jj_int((int64_t)v.u.list->n); return 0;
    case JJ_DICT: *out = jj_int((int64_t)v.u.dict->n); return 0;
    case JJ_NONE: case JJ_BOOL: case JJ_INT: case JJ_FLOAT: case JJ_NS: case JJ_LOOP: case JJ_FUNC: case JJ_METHOD:
    case JJ_MACRO:
        break;
    }
    return jj_fail(st, LORAJIT_E_ARG, "object of type '%s' has no len()", jj_type_name(v));
}

int jj_filter(jj_state *st, const char *name, jj_value v, const jj_value *args, const char **kw, int n_args,
              jj_value *out) {
#define IS(x) (strcmp(name, x) == 0)
#define BIND(...)                                                              \
    static const char *const params[] = {__VA_ARGS__, NULL};                   \
    jj_value p[sizeof params / sizeof params[0]];                              \
    if (bind(st, name, params, args, kw, n_args, p)) return -1
    const jj_list *l;
    if (IS("default") || IS("d")) {
        BIND("default_value", "boolean");
        int use = v.kind == JJ_UNDEF || (given(p[1]) && jj_truthy(p[1]) && !jj_truthy(v));
        *out = use ? (given(p[0]) ? p[0] : jj_str("", 0)) : v;
        return 0;
    }
    if (IS("length") || IS("count")) return length(st, v, out);
    if (IS("tojson")) {
        BIND("ensure_ascii", "indent", "separators", "sort_keys");
        char ind[64] = "", *indent = NULL;
        if (given(p[1]) && p[1].kind != JJ_NONE) {
            indent = ind;
            if (p[1].kind == JJ_INT) { int64_t k = p[1].u.i < 0 ? 0 : p[1].u.i > 32 ? 32 : p[1].u.i; memset(ind, ' ', (size_t)k); ind[k] = 0; }
            else if (p[1].kind == JJ_STR && p[1].len < sizeof ind) { memcpy(ind, p[1].u.s, p[1].len); ind[p[1].len] = 0; }
            else return jj_fail(st, LORAJIT_E_UNSUPPORTED, "tojson indent must be an int (at most 32) or a short string");
        }
        char seps[2][16] = {"", ""};
        if (given(p[2]) && p[2].kind != JJ_NONE) {
            if (p[2].kind != JJ_LIST || p[2].u.list->n != 2) return jj_fail(st, LORAJIT_E_ARG, "tojson separators must be a pair of strings");
            for (int k = 0; k < 2; k++) {
                jj_value sep = p[2].u.list->items[k];
                if (sep.kind != JJ_STR || sep.len >= sizeof seps[k]) return jj_fail(st, LORAJIT_E_ARG, "tojson separators must be short strings");
                memcpy(seps[k], sep.u.s, sep.len);
            }
        }
        int custom = given(p[2]) && p[2].kind != JJ_NONE;
        return jj_tojson(st, v, given(p[0]) && jj_truthy(p[0]), indent, custom ? seps[0] : NULL, custom ? seps[1] : NULL,
                         given(p[3]) && jj_truthy(p[3]), out);
    }
    if (IS("upper") || IS("lower") || IS("title") || IS("capitalize")) {
        if (n_args) return jj_fail(st, LORAJIT_E_ARG, "%s takes no arguments", name);
        jj_value s;
        return jj_to_str(st, v, &s) || jj_str_case(st, s, name[0], out) ? -1 : 0;
    }
    if (IS("trim")) {
        BIND("chars");
        jj_value s;
        return jj_to_str(st, v, &s) || jj_str_strip(st, s, given(p[0]) ? &p[0] : NULL, 3, out) ? -1 : 0;
    }
    if (IS("string")) return jj_to_str(st, v, out);
    if (IS("safe") || ((IS("e") || IS("escape")) && v.markup)) {
        if (jj_to_str(st, v, out)) return -1;
        out->markup = 1;
        return 0;
    }
    if (IS("e") || IS("escape") || IS("forceescape")) {
        if (jj_escape_html(st, v, out)) return -1;
        out->markup = 1;
        return 0;
    }
    if (IS("replace")) {
        BIND("old", "new", "count");
        jj_value s;
        if (!given(p[0]) || !given(p[1])) return jj_fail(st, LORAJIT_E_ARG, "replace needs old and new");
        if (given(p[2]) && p[2].kind != JJ_INT && p[2].kind != JJ_NONE) return jj_fail(st, LORAJIT_E_ARG, "replace count must be an int");
        return jj_to_str(st, v, &s) ||
               jj_str_replace(st, s, p[0], p[1], given(p[2]) && p[2].kind == JJ_INT ? p[2].u.i : -1, out) ? -1 : 0;
    }
    if (IS("join")) {
        BIND("d", "attribute");
        if (jj_iterate(st, v, &l)) return -1;
        jj_value items = {.kind = JJ_LIST, .u.list = (jj_list *)l};
        if (given(p[1])) {
            items = jj_list_new(st, l->n);
            for (size_t i = 0; !st->failed && i < l->n; i++)
                if (get_path(st, l->items[i], p[1], &items.u.list->items[i])) return -1;
            if (st->failed) return -1;
        }
        jj_value sep = given(p[0]) ? p[0] : jj_str("", 0);
        if (sep.kind != JJ_STR && jj_to_str(st, sep, &sep)) return -1;
        return jj_str_join(st, items, sep, out);
    }
    if (IS("first") || IS("last")) {
        if (jj_iterate(st, v, &l)) return -1;
        *out = l->n ? l->items[IS("first") ? 0 : l->n - 1] : jj_undef(IS("first") ? "No first item, sequence was empty." : "No last item, sequence was empty.");
        return 0;
    }
    if (IS("list") || IS("reverse") || IS("__values")) {
        if (v.kind == JJ_STR && IS("reverse")) {
            if (jj_iterate(st, v, &l)) return -1;
            jj_capture save;
            jj_capture_begin(st, &save);
            for (size_t i = l->n; i-- > 0 && !st->failed;) jj_emit_str(st, l->items[i]);
            return jj_capture_end(st, &save, out);
        }
        if (IS("__values")) {
            *out = jj_list_new(st, v.u.dict->n);
            if (!st->failed) memcpy(out->u.list->items, v.u.dict->vals, sizeof(jj_value) * v.u.dict->n);
            return st->failed ? -1 : 0;
        }
        if (jj_iterate(st, v, &l)) return -1;
        *out = jj_list_new(st, l->n);
        if (st->failed) return -1;
        for (size_t i = 0; i < l->n; i++) out->u.list->items[i] = l->items[IS("reverse") ? l->n - 1 - i : i];
        return 0;
    }
    if (IS("items")) {
        if (v.kind == JJ_UNDEF) { *out = jj_list_new(st, 0); return st->failed ? -1 : 0; }
        if (v.kind != JJ_DICT) return jj_fail(st, LORAJIT_E_ARG, "can only get item pairs from a mapping");
        *out = jj_list_new(st, v.u.dict->n);
        for (size_t i = 0; !st->failed && i < v.u.dict->n; i++) {
            jj_value pair = jj_list_new(st, 2);
            if (st->failed) return -1;
            pair.u.list->tuple = 1;
            pair.u.list->items[0] = v.u.dict->keys[i];
            pair.u.list->items[1] = v.u.dict->vals[i];
            out->u.list->items[i] = pair;
        }
        if (!st->failed) out->u.list->view = "<generator"; /* jinja2's items filter yields */
        return st->failed ? -1 : 0;
    }
    if (IS("int") || IS("float")) {
        BIND("default", "base");
        if (given(p[1]) && !(p[1].kind == JJ_INT && p[1].u.i == 10)) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "int filter with a base other than 10");
        return to_number(st, v, IS("int"), p[0], out);
    }
    if (IS("abs")) {
        if (v.kind == JJ_FLOAT) *out = jj_float(fabs(v.u.f));
        else if ((v.kind == JJ_INT || v.kind == JJ_BOOL) && v.u.i != INT64_MIN) *out = jj_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else return jj_fail(st, LORAJIT_E_ARG, "bad operand type for abs(): '%s'", jj_type_name(v));
        return 0;
    }
    if (IS("select") || IS("reject")) return select_items(st, v, args, n_args, 0, IS("select"), out);
    if (IS("selectattr") || IS("rejectattr")) return select_items(st, v, args, n_args, 1, IS("selectattr"), out);
    if (IS("map")) return map_items(st, v, args, kw, n_args, out);
    return jj_fail(st, LORAJIT_E_UNSUPPORTED, "filter '%s' is not supported", name);
#undef BIND
#undef IS
}

int jj_test(jj_state *st, const char *name, jj_value v, const jj_value *args, int n_args, int *r) {
#define IS(x) (strcmp(name, x) == 0)
    int want = IS("defined") || IS("undefined") || IS("none") || IS("string") || IS("number") || IS("integer") ||
               IS("float") || IS("mapping") || IS("iterable") || IS("sequence") || IS("callable") || IS("boolean") ||
               IS("true") || IS("false") || IS("odd") || IS("even") || IS("lower") || IS("upper") ? 0 : 1;
    if (n_args != want) return jj_fail(st, LORAJIT_E_ARG, "test '%s' takes %d argument%s", name, want, want ? "" : "s");
    jj_kind k = v.kind;
    if (IS("defined")) *r = k != JJ_UNDEF;
    else if (IS("undefined")) *r = k == JJ_UNDEF;
    else if (IS("none")) *r = k == JJ_NONE;
    else if (IS("string")) *r = k == JJ_STR;
    else if (IS("number")) *r = k == JJ_INT || k == JJ_FLOAT || k == JJ_BOOL;
    else if (IS("integer")) *r = k == JJ_INT;
    else if (IS("float")) *r = k == JJ_FLOAT;
    else if (IS("mapping")) *r = k == JJ_DICT;
    else if (IS("iterable")) *r = k == JJ_STR || k == JJ_LIST || k == JJ_DICT || k == JJ_UNDEF;
    else if (IS("sequence")) *r = k == JJ_STR || k == JJ_LIST || k == JJ_DICT || k == JJ_UNDEF;
    else if (IS("callable")) *r = k == JJ_FUNC || k == JJ_METHOD || k == JJ_MACRO;
    else if (IS("boolean")) *r = k == JJ_BOOL;
    else if (IS("true") || IS("false")) *r = k == JJ_BOOL && v.u.i == IS("true");
    else if (IS("odd") || IS("even") || IS("divisibleby")) {
        if ((k != JJ_INT && k != JJ_BOOL) || (want && args[0].kind != JJ_INT && args[0].kind != JJ_BOOL))
            return jj_fail(st, LORAJIT_E_UNSUPPORTED, "test '%s' on a non-integer", name);
        if (want && args[0].u.i == 0) return jj_fail(st, LORAJIT_E_ARG, "integer division or modulo by zero");
        int64_t m = want ? args[0].u.i : 2;
        *r = (v.u.i % m == 0) == !IS("odd");
    } else if (IS("lower") || IS("upper")) {
        jj_value s, c;
        if (k != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "test '%s' needs a string", name);
        if (jj_str_case(st, v, IS("lower") ? 'u' : 'l', &s) || jj_str_case(st, v, name[0], &c)) return -1;
        *r = jj_equal(v, c) && !jj_equal(v, s); /* has a cased character, none of the other case */
    } else if (IS("equalto") || IS("eq") || IS("==")) *r = jj_equal(v, args[0]);
    else if (IS("ne") || IS("!=")) *r = !jj_equal(v, args[0]);
    else if (IS("sameas")) *r = v.kind == args[0].kind && (k == JJ_NONE || k == JJ_UNDEF || (k == JJ_BOOL && v.u.i == args[0].u.i));
    else if (IS("lt") || IS("<")) return jj_less(st, v, args[0], r);
    else if (IS("gt") || IS(">")) return jj_less(st, args[0], v, r);
    else if (IS("le") || IS("<=") || IS("ge") || IS(">=")) {
        if (name[0] == 'l' || name[0] == '<' ? jj_less(st, args[0], v, r) : jj_less(st, v, args[0], r)) return -1;
        *r = !*r;
    } else if (IS("in")) {
        const jj_list *l;
        if (args[0].kind == JJ_STR) {
            if (k != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "'in <string>' requires string as left operand");
            *r = 0;
            for (size_t i = 0; !*r && i + v.len <= args[0].len; i++) *r = memcmp(args[0].u.s + i, v.u.s, v.len) == 0;
        } else if (args[0].kind == JJ_DICT) *r = jj_dict_get(args[0].u.dict, v) != NULL;
        else {
            if (jj_iterate(st, args[0], &l)) return -1;
            *r = 0;
            for (size_t i = 0; !*r && i < l->n; i++) *r = jj_equal(l->items[i], v);
        }
    } else return jj_fail(st, LORAJIT_E_UNSUPPORTED, "test '%s' is not supported", name);
    return 0;
#undef IS
}
