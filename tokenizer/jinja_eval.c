/* jinja_eval.c — the evaluator: AST -> output text, with jinja2's semantics.
 *
 * Input: jj_parse's body and a root scope holding the render's variables. Output:
 * text appended to the state's buffer. Scopes follow jinja2: a for loop's body gets
 * a fresh scope each iteration (sets inside do not leak; namespaces carry state), a
 * macro runs in a scope under the template's top level, if blocks share their
 * scope. Every evaluation counts a step (JJ_MAX_STEPS); macro calls nest at most
 * JJ_MAX_DEPTH deep. Arithmetic is Python's (int/float, // and % floor, / true). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "jinja.h"

struct jj_frame { jj_frame *parent; int n, cap; const char **names; jj_value *vals; };

enum { FN_RANGE, FN_NAMESPACE, FN_RAISE, FN_STRFTIME, FN_DICT };
static const char *const FUNCS[] = {"range", "namespace", "raise_exception", "strftime_now", "dict", NULL};
static const char *const UNSUPPORTED_FUNCS[] = {"cycler", "joiner", "lipsum", "caller", "varargs", "kwargs", NULL};

jj_frame *jj_frame_push(jj_state *st, jj_frame *parent) {
    jj_frame *f = jj_alloc(st, sizeof *f);
    if (f) f->parent = parent;
    return f;
}

int jj_frame_set(jj_state *st, jj_frame *f, const char *name, jj_value v) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) { f->vals[i] = v; return 0; }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 8;
        const char **names = jj_alloc(st, sizeof *names * (size_t)cap);
        jj_value *vals = jj_alloc(st, sizeof *vals * (size_t)cap);
        if (!names || !vals) return -1;
        if (f->n) { memcpy(names, f->names, sizeof *names * (size_t)f->n); memcpy(vals, f->vals, sizeof *vals * (size_t)f->n); }
        f->names = names; f->vals = vals; f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
    return 0;
}

static int lookup(jj_state *st, const char *name, jj_value *out) {
    for (jj_frame *f = st->frame; f; f = f->parent)
        for (int i = f->n - 1; i >= 0; i--)
            if (strcmp(f->names[i], name) == 0) { *out = f->vals[i]; return 0; }
    for (int i = 0; FUNCS[i]; i++)
        if (strcmp(FUNCS[i], name) == 0) { *out = (jj_value){.kind = JJ_FUNC, .len = (size_t)i}; return 0; }
    for (int i = 0; UNSUPPORTED_FUNCS[i]; i++)
        if (strcmp(UNSUPPORTED_FUNCS[i], name) == 0)
            return jj_fail(st, LORAJIT_E_UNSUPPORTED, "function '%s' is not supported", name);
    *out = jj_undef(name);
    return 0;
}

static int eval(jj_state *st, const jj_node *n, jj_value *out);
static int exec_block(jj_state *st, const jj_node *body);

static int undefined_error(jj_state *st, jj_value v) {
    return jj_fail(st, LORAJIT_E_ARG, v.u.s && strchr(v.u.s, '\'') ? "%s" : "'%s' is undefined", v.u.s ? v.u.s : "");
}

static int int_overflow(jj_state *st) {
    return jj_fail(st, LORAJIT_E_UNSUPPORTED, "integer arithmetic over 64 bits is not supported");
}

/* a * n for a str or list (Python repetition; n <= 0 gives empty). */
static int repeat(jj_state *st, jj_value a, int64_t n, jj_value *out) {
    if (n < 0) n = 0;
    size_t unit = a.kind == JJ_STR ? a.len : a.u.list->n * sizeof(jj_value);
    if (unit && (uint64_t)n > JJ_MAX_ARENA / unit) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "memory cap reached");
    if (a.kind == JJ_STR) {
        char *s = jj_alloc(st, a.len * (size_t)n + 1);
        if (!s) return -1;
        for (int64_t i = 0; i < n; i++) memcpy(s + a.len * (size_t)i, a.u.s, a.len);
        *out = jj_str(s, a.len * (size_t)n);
        return 0;
    }
    size_t m = a.u.list->n;
    *out = jj_list_new(st, m * (size_t)n);
    if (st->failed) return -1;
    out->u.list->tuple = a.u.list->tuple;
    for (int64_t i = 0; i < n; i++) memcpy(out->u.list->items + m * (size_t)i, a.u.list->items, sizeof(jj_value) * m);
    return 0;
}

static int binary(jj_state *st, int op, jj_value a, jj_value b, jj_value *out) {
    if (op == '~') {
        jj_value sa, sb;
        if (jj_to_str(st, a, &sa) || jj_to_str(st, b, &sb)) return -1;
        char *s = jj_alloc(st, sa.len + sb.len + 1);
        if (!s) return -1;
        memcpy(s, sa.u.s, sa.len);
        memcpy(s + sa.len, sb.u.s, sb.len);
        *out = jj_str(s, sa.len + sb.len);
        return 0;
    }
    if (a.kind == JJ_UNDEF) return undefined_error(st, a);
    if (b.kind == JJ_UNDEF) return undefined_error(st, b);
    if (jj_is_number(a) && jj_is_number(b)) {
        int ints = a.kind != JJ_FLOAT && b.kind != JJ_FLOAT;
        int64_t x = a.u.i, y = b.u.i, r;
        double fx = jj_as_double(a), fy = jj_as_double(b);
        switch (op) {
        case '+': if (!ints) { *out = jj_float(fx + fy); return 0; }
            if (__builtin_add_overflow(x, y, &r)) return int_overflow(st);
            *out = jj_int(r); return 0;
        case '-': if (!ints) { *out = jj_float(fx - fy); return 0; }
            if (__builtin_sub_overflow(x, y, &r)) return int_overflow(st);
            *out = jj_int(r); return 0;
        case '*': if (!ints) { *out = jj_float(fx * fy); return 0; }
            if (__builtin_mul_overflow(x, y, &r)) return int_overflow(st);
            *out = jj_int(r); return 0;
        case '/':
            if (fy == 0) return jj_fail(st, LORAJIT_E_ARG, "division by zero");
            *out = jj_float(fx / fy); return 0;
        case ('/' << 8 | '/'): case '%':
            if (ints ? y == 0 : fy == 0) return jj_fail(st, LORAJIT_E_ARG, "integer division or modulo by zero");
            if (ints) {
                if (x == INT64_MIN && y == -1) return int_overflow(st);
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) { q--; m += y; }
                *out = jj_int(op == '%' ? m : q);
            } else {
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                *out = jj_float(op == '%' ? m : floor(fx / fy));
            }
            return 0;
        case ('*' << 8 | '*'):
            if (ints && y >= 0) {
                int64_t acc = 1;
                if (x == 0 || x == 1) acc = y == 0 ? 1 : x;
                else if (x == -1) acc = y % 2 ? -1 : 1;
                else
                    for (int64_t i = 0; i < y; i++) /* |x| >= 2: overflows within 63 steps */
                        if (__builtin_mul_overflow(acc, x, &acc)) return int_overflow(st);
                *out = jj_int(acc);
                return 0;
            }
            *out = jj_float(pow(fx, fy));
            return 0;
        }
    }
    if (op == '+' && a.kind == JJ_STR && b.kind == JJ_STR) {
        if (a.markup != b.markup && jj_escape_html(st, a.markup ? b : a, a.markup ? &b : &a)) return -1;
        if (binary(st, '~', a, b, out)) return -1;
        out->markup = a.markup | b.markup;
        return 0;
    }
    if (op == '+' && (a.markup || b.markup) && (a.kind == JJ_STR || b.kind == JJ_STR)) { /* Markup + 1 */
        jj_value other = a.markup ? b : a, esc;
        if (jj_escape_html(st, other, &esc)) return -1;
        return binary(st, '+', a.markup ? a : esc, a.markup ? esc : b, out);
    }
    if (op == '+' && a.kind == JJ_LIST && b.kind == JJ_LIST && a.u.list->tuple == b.u.list->tuple) {
        *out = jj_list_new(st, a.u.list->n + b.u.list->n);
        if (st->failed) return -1;
        out->u.list->tuple = a.u.list->tuple;
        memcpy(out->u.list->items, a.u.list->items, sizeof(jj_value) * a.u.list->n);
        memcpy(out->u.list->items + a.u.list->n, b.u.list->items, sizeof(jj_value) * b.u.list->n);
        return 0;
    }
    if (op == '*' && (a.kind == JJ_STR || a.kind == JJ_LIST) && (b.kind == JJ_INT || b.kind == JJ_BOOL))
        return repeat(st, a, b.u.i, out);
    if (op == '*' && (b.kind == JJ_STR || b.kind == JJ_LIST) && (a.kind == JJ_INT || a.kind == JJ_BOOL))
        return repeat(st, b, a.u.i, out);
    if (op == '%' && a.kind == JJ_STR) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "the string %% operator is not supported");
    char o[3] = {(char)(op > 255 ? op >> 8 : op), (char)(op > 255 ? op & 255 : 0), 0};
    return jj_fail(st, LORAJIT_E_ARG, "unsupported operand type(s) for %s: '%s' and '%s'", o, jj_type_name(a),
                   jj_type_name(b));
}

static int compare(jj_state *st, int op, jj_value a, jj_value b, int *r) {
    int lt;
    switch (op) {
    case ('=' << 8 | '='): *r = jj_equal(a, b); return 0;
    case ('!' << 8 | '='): *r = !jj_equal(a, b); return 0;
    case '<': return jj_less(st, a, b, r);
    case '>': return jj_less(st, b, a, r);
    case ('<' << 8 | '='): if (jj_less(st, b, a, &lt)) return -1; *r = !lt; return 0;
    case ('>' << 8 | '='): if (jj_less(st, a, b, &lt)) return -1; *r = !lt; return 0;
    case ('i' << 8 | 'n'): case ('n' << 8 | 'i'):
        if (b.kind == JJ_STR) {
            if (a.kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "'in <string>' requires string as left operand, not %s", jj_type_name(a));
            *r = 0;
            for (size_t i = 0; !*r && i + a.len <= b.len; i++) *r = memcmp(b.u.s + i, a.u.s, a.len) == 0;
        } else if (b.kind == JJ_DICT) *r = jj_dict_get(b.u.dict, a) != NULL;
        else {
            const jj_list *l;
            if (jj_iterate(st, b, &l)) return -1;
            *r = 0;
            for (size_t i = 0; !*r && i < l->n; i++) *r = jj_equal(l->items[i], a);
        }
        if (op == ('n' << 8 | 'i')) *r = !*r;
        return 0;
    }
    return jj_fail(st, LORAJIT_E_UNSUPPORTED, "comparison operator %d is not supported", op);
}

/* Python slicing of a list or str (indices in code points). */
static int slice(jj_state *st, jj_value v, const jj_value *idx, jj_value *out) {
    if (v.kind == JJ_UNDEF) return undefined_error(st, v);
    if (v.kind != JJ_LIST && v.kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "'%s' object is not subscriptable", jj_type_name(v));
    int64_t b[3];
    for (int k = 0; k < 3; k++) {
        if (idx[k].kind != JJ_NONE && idx[k].kind != JJ_INT && idx[k].kind != JJ_BOOL)
            return jj_fail(st, LORAJIT_E_ARG, "slice indices must be integers or None");
        b[k] = idx[k].u.i;
    }
    int64_t step = idx[2].kind == JJ_NONE ? 1 : b[2];
    if (step == 0) return jj_fail(st, LORAJIT_E_ARG, "slice step cannot be zero");
    int64_t n = v.kind == JJ_LIST ? (int64_t)v.u.list->n : (int64_t)jj_utf8_count(v.u.s, v.len);
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? n : n - 1, se[2];
    for (int k = 0; k < 2; k++) {
        if (idx[k].kind == JJ_NONE) { se[k] = k == 0 ? (step > 0 ? lo : hi) : (step > 0 ? hi : lo); continue; }
        int64_t x = b[k] < 0 ? b[k] + n : b[k];
        se[k] = x < lo ? lo : x > hi ? hi : x;
    }
    int64_t count = step > 0 ? (se[1] > se[0] ? (se[1] - se[0] + step - 1) / step : 0)
                             : (se[0] > se[1] ? (se[0] - se[1] - step - 1) / -step : 0);
    if (v.kind == JJ_LIST) {
        *out = jj_list_new(st, (size_t)count);
        if (st->failed) return -1;
        out->u.list->tuple = v.u.list->tuple;
        for (int64_t i = 0; i < count; i++) out->u.list->items[i] = v.u.list->items[se[0] + i * step];
        return 0;
    }
    const jj_list *chars;
    if (step == 1) { /* a substring */
        size_t a = jj_utf8_offset(v.u.s, v.len, (size_t)se[0]), z = jj_utf8_offset(v.u.s, v.len, (size_t)(se[0] + count));
        *out = jj_str(v.u.s + a, z - a);
        return 0;
    }
    if (jj_iterate(st, v, &chars)) return -1;
    jj_capture save;
    jj_capture_begin(st, &save);
    for (int64_t i = 0; i < count && !st->failed; i++) jj_emit_str(st, chars->items[se[0] + i * step]);
    return jj_capture_end(st, &save, out);
}

/* Evaluates n's kids into args (kw names alongside). */
static int eval_args(jj_state *st, const jj_node *n, jj_value **args) {
    *args = jj_alloc(st, sizeof **args * (size_t)(n->n_kids ? n->n_kids : 1));
    if (!*args) return -1;
    for (int i = 0; i < n->n_kids; i++)
        if (eval(st, n->kids[i], &(*args)[i])) return -1;
    return 0;
}

static int call_macro(jj_state *st, const jj_node *m, const jj_value *args, const char **kw, int n_args, jj_value *out) {
    if (st->depth >= JJ_MAX_DEPTH) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "macro calls nested deeper than %d", JJ_MAX_DEPTH);
    jj_frame *f = jj_frame_push(st, st->root);
    if (!f) return -1;
    int pos = 0;
    for (int i = 0; i < n_args; i++) {
        if (kw && kw[i]) {
            int k = 0;
            while (k < m->n_kids && strcmp(m->kids[k]->name, kw[i])) k++;
            if (k == m->n_kids) return jj_fail(st, LORAJIT_E_ARG, "macro '%s' takes no keyword argument '%s'", m->name, kw[i]);
            if (jj_frame_set(st, f, m->kids[k]->name, args[i])) return -1;
        } else {
            if (pos >= m->n_kids) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "macro '%s': extra positional arguments (varargs) are not supported", m->name);
            if (jj_frame_set(st, f, m->kids[pos++]->name, args[i])) return -1;
        }
    }
    jj_frame *saved = st->frame;
    for (int k = 0; k < m->n_kids; k++) {
        jj_value v;
        int bound = 0;
        for (int i = 0; i < f->n; i++) bound |= strcmp(f->names[i], m->kids[k]->name) == 0;
        if (bound) continue;
        st->frame = f;
        if (m->kids[k]->a ? eval(st, m->kids[k]->a, &v) : (v = jj_undef(m->kids[k]->name), 0)) { st->frame = saved; return -1; }
        st->frame = saved;
        if (jj_frame_set(st, f, m->kids[k]->name, v)) return -1;
    }
    jj_capture save;
    jj_capture_begin(st, &save);
    st->frame = f;
    st->depth++;
    exec_block(st, m->body);
    st->depth--;
    st->frame = saved;
    return jj_capture_end(st, &save, out);
}

static int call_func(jj_state *st, int id, const jj_value *args, const char **kw, int n_args, jj_value *out) {
    if (id == FN_NAMESPACE || id == FN_DICT) {
        *out = jj_dict_new(st, (size_t)n_args);
        if (st->failed) return -1;
        for (int i = 0; i < n_args; i++) {
            if (kw && kw[i]) { if (jj_dict_set(st, out->u.dict, jj_str(kw[i], strlen(kw[i])), args[i])) return -1; continue; }
            if (args[i].kind != JJ_DICT || i > 0) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "%s() takes keyword arguments or one dict", FUNCS[id]);
            for (size_t k = 0; k < args[i].u.dict->n; k++)
                if (jj_dict_set(st, out->u.dict, args[i].u.dict->keys[k], args[i].u.dict->vals[k])) return -1;
        }
        if (id == FN_NAMESPACE) out->kind = JJ_NS;
        return 0;
    }
    for (int i = 0; i < n_args; i++)
        if (kw && kw[i]) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "%s() with keyword arguments is not supported", FUNCS[id]);
    if (id == FN_RAISE) {
        jj_value msg = jj_str("", 0);
        if (n_args && jj_to_str(st, args[0], &msg)) return -1;
        return jj_fail(st, LORAJIT_E_ARG, "%.*s", (int)(msg.len > 700 ? 700 : msg.len), msg.u.s);
    }
    if (id == FN_STRFTIME) {
        if (n_args != 1 || args[0].kind != JJ_STR) return jj_fail(st, LORAJIT_E_ARG, "strftime_now() takes one format string");
        char fmt[256], buf[512];
        snprintf(fmt, sizeof fmt, "%.*s", (int)(args[0].len > 255 ? 255 : args[0].len), args[0].u.s);
        time_t now = time(NULL);
        struct tm tm;
        size_t n = strftime(buf, sizeof buf, fmt, localtime_r(&now, &tm));
        *out = jj_str_copy(st, buf, n);
        return st->failed ? -1 : 0;
    }
    /* range */
    int64_t a = 0, b, step = 1;
    for (int i = 0; i < n_args; i++)
        if (args[i].kind != JJ_INT && args[i].kind != JJ_BOOL) return jj_fail(st, LORAJIT_E_ARG, "range() arguments must be integers");
    if (n_args == 1) b = args[0].u.i;
    else if (n_args == 2 || n_args == 3) { a = args[0].u.i; b = args[1].u.i; if (n_args == 3) step = args[2].u.i; }
    else return jj_fail(st, LORAJIT_E_ARG, "range expected 1 to 3 arguments, got %d", n_args);
    if (step == 0) return jj_fail(st, LORAJIT_E_ARG, "range() arg 3 must not be zero");
    double count = step > 0 ? ceil(((double)b - (double)a) / (double)step) : ceil(((double)a - (double)b) / (double)-step);
    if (count < 0) count = 0;
    if (count > 100000) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "range() of more than 100000 items (the sandbox's limit)");
    *out = jj_list_new(st, (size_t)count);
    if (st->failed) return -1;
    for (size_t i = 0; i < (size_t)count; i++) out->u.list->items[i] = jj_int(a + (int64_t)i * step);
    out->u.list->view = "<range";
    return 0;
}

static int call_method(jj_state *st, const jj_method *m, const jj_value *args, int n_args, jj_value *out) {
    if (m->self.kind == JJ_STR) {
        if (jj_str_method(st, m->self, m->name, args, n_args, out)) return -1;
        if (m->self.markup && out->kind == JJ_STR) out->markup = 1;
        return 0;
    }
    const jj_dict *d = m->self.u.dict; /* dict methods: items keys values get */
    if (strcmp(m->name, "get") == 0) {
        if (n_args < 1 || n_args > 2) return jj_fail(st, LORAJIT_E_ARG, "get expected 1 or 2 arguments, got %d", n_args);
        jj_value *v = jj_dict_get(d, args[0]);
        *out = v ? *v : n_args == 2 ? args[1] : jj_none();
        return 0;
    }
    if (n_args) return jj_fail(st, LORAJIT_E_ARG, "%s() takes no arguments", m->name);
    if (jj_filter(st, m->name[0] == 'i' ? "items" : m->name[0] == 'k' ? "list" : "__values", m->self, NULL, NULL, 0, out))
        return -1;
    out->u.list->view = m->name[0] == 'i' ? "dict_items" : m->name[0] == 'k' ? "dict_keys" : "dict_values";
    return 0;
}

static int call(jj_state *st, const jj_node *n, jj_value *out) {
    jj_value f, *args;
    if (eval(st, n->a, &f) || eval_args(st, n, &args)) return -1;
    switch (f.kind) {
    case JJ_FUNC: return call_func(st, (int)f.len, args, n->kw_names, n->n_kids, out);
    case JJ_MACRO: return call_macro(st, f.u.macro, args, n->kw_names, n->n_kids, out);
    case JJ_METHOD:
        for (int i = 0; i < n->n_kids; i++)
            if (n->kw_names[i]) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "keyword arguments to %s() are not supported", f.u.method->name);
        return call_method(st, f.u.method, args, n->n_kids, out);
    case JJ_UNDEF: return undefined_error(st, f);
    case JJ_NONE: case JJ_BOOL: case JJ_INT: case JJ_FLOAT: case JJ_STR: case JJ_LIST: case JJ_DICT: case JJ_NS: case JJ_LOOP:
        break;
    }
    return jj_fail(st, LORAJIT_E_ARG, "'%s' object is not callable", jj_type_name(f));
}

static int eval(jj_state *st, const jj_node *n, jj_value *out) {
    if (st->failed) return -1;
    if (++st->steps > JJ_MAX_STEPS) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "evaluation step cap (%ld) reached", JJ_MAX_STEPS);
    st->line = n->line;
    jj_value a, b, *args;
    int r;
    switch (n->kind) {
    case JJ_N_LITERAL: *out = n->lit; return 0;
    case JJ_N_NAME: return lookup(st, n->name, out);
    case JJ_N_LIST: case JJ_N_TUPLE:
        *out = jj_list_new(st, (size_t)n->n_kids);
        if (st->failed) return -1;
        out->u.list->tuple = n->kind == JJ_N_TUPLE;
        for (int i = 0; i < n->n_kids; i++)
            if (eval(st, n->kids[i], &out->u.list->items[i])) return -1;
        return 0;
    case JJ_N_DICT:
        *out = jj_dict_new(st, (size_t)n->n_kids / 2);
        for (int i = 0; !st->failed && i + 1 < n->n_kids; i += 2)
            if (eval(st, n->kids[i], &a) || eval(st, n->kids[i + 1], &b) || jj_dict_set(st, out->u.dict, a, b)) return -1;
        return st->failed ? -1 : 0;
    case JJ_N_ATTR:
        if (eval(st, n->a, &a)) return -1;
        st->line = n->line;
        return jj_getattr(st, a, n->name, strlen(n->name), out);
    case JJ_N_ITEM:
        if (eval(st, n->a, &a) || eval(st, n->b, &b)) return -1;
        return jj_getitem(st, a, b, out);
    case JJ_N_SLICE: {
        jj_value idx[3];
        if (eval(st, n->a, &a)) return -1;
        for (int k = 0; k < 3; k++)
            if (n->kids[k] ? eval(st, n->kids[k], &idx[k]) : (idx[k] = jj_none(), 0)) return -1;
        return slice(st, a, idx, out);
    }
    case JJ_N_CALL: return call(st, n, out);
    case JJ_N_FILTER:
        if (eval(st, n->a, &a) || eval_args(st, n, &args)) return -1;
        st->line = n->line;
        if (jj_filter(st, n->name, a, args, n->kw_names, n->n_kids, out)) return -1;
        if (a.markup && out->kind == JJ_STR && strcmp(n->name, "tojson") != 0 && strcmp(n->name, "join") != 0)
            out->markup = 1; /* Markup's methods (upper, replace, ...) return Markup */
        return 0;
    case JJ_N_TEST:
        if (eval(st, n->a, &a) || eval_args(st, n, &args)) return -1;
        st->line = n->line;
        if (jj_test(st, n->name, a, args, n->n_kids, &r)) return -1;
        *out = jj_bool(n->op ? !r : r);
        return 0;
    case JJ_N_UNARY:
        if (eval(st, n->a, &a)) return -1;
        if (a.kind == JJ_UNDEF) return undefined_error(st, a);
        if (!jj_is_number(a)) return jj_fail(st, LORAJIT_E_ARG, "bad operand type for unary %c: '%s'", n->op, jj_type_name(a));
        if (n->op == '+') *out = a.kind == JJ_BOOL ? jj_int(a.u.i) : a;
        else if (a.kind == JJ_FLOAT) *out = jj_float(-a.u.f);
        else if (a.u.i == INT64_MIN) return int_overflow(st);
        else *out = jj_int(-a.u.i);
        return 0;
    case JJ_N_BINARY:
        if (eval(st, n->a, &a) || eval(st, n->b, &b)) return -1;
        st->line = n->line;
        return binary(st, n->op, a, b, out);
    case JJ_N_COMPARE:
        if (eval(st, n->a, &a) || eval(st, n->b, &b)) return -1;
        st->line = n->line;
        if (compare(st, n->op, a, b, &r)) return -1;
        *out = jj_bool(r);
        return 0;
    case JJ_N_AND: case JJ_N_OR:
        if (eval(st, n->a, &a)) return -1;
        if (jj_truthy(a) == (n->kind == JJ_N_OR)) { *out = a; return 0; }
        return eval(st, n->b, out);
    case JJ_N_NOT:
        if (eval(st, n->a, &a)) return -1;
        *out = jj_bool(!jj_truthy(a));
        return 0;
    case JJ_N_COND:
        if (eval(st, n->b, &b)) return -1;
        if (jj_truthy(b)) return eval(st, n->a, out);
        if (n->c) return eval(st, n->c, out);
        *out = jj_undef("the inline if-expression had no else");
        return 0;
    case JJ_N_TEXT: case JJ_N_OUTPUT: case JJ_N_IF: case JJ_N_FOR: case JJ_N_SET: case JJ_N_SET_BLOCK:
    case JJ_N_MACRO: case JJ_N_BREAK: case JJ_N_CONTINUE: case JJ_N_BLOCK:
        break;
    }
    return jj_fail(st, LORAJIT_E_UNSUPPORTED, "statement node %d used as an expression", (int)n->kind);
}

/* Binds a for/set target: a name, or names unpacked from a sequence of the same length. */
static int assign(jj_state *st, jj_frame *f, const jj_node *target, jj_value v) {
    if (target->kind == JJ_N_NAME) return jj_frame_set(st, f, target->name, v);
    if (target->kind == JJ_N_ATTR) { /* {% set ns.attr = v %} */
        jj_value ns;
        if (lookup(st, target->a->name, &ns)) return -1;
        if (ns.kind != JJ_NS) return jj_fail(st, LORAJIT_E_ARG, "cannot assign attribute on non-namespace object");
        return jj_dict_set(st, ns.u.dict, jj_str(target->name, strlen(target->name)), v);
    }
    const jj_list *l;
    if (jj_iterate(st, v, &l)) return -1;
    if (l->n != (size_t)target->n_kids)
        return jj_fail(st, LORAJIT_E_ARG, "cannot unpack %zu values into %d names", l->n, target->n_kids);
    for (int i = 0; i < target->n_kids; i++)
        if (assign(st, f, target->kids[i], l->items[i])) return -1;
    return 0;
}

static int exec_for(jj_state *st, const jj_node *n) {
    jj_value seq;
    const jj_list *all;
    if (eval(st, n->b, &seq) || jj_iterate(st, seq, &all)) return -1;
    const jj_list *items = all;
    jj_frame *saved = st->frame;
    if (n->c) { /* for x in y if cond: the loop sees only the items that pass */
        jj_value kept = jj_list_new(st, all->n);
        if (st->failed) return -1;
        kept.u.list->n = 0;
        jj_frame *f = jj_frame_push(st, saved);
        for (size_t i = 0; f && i < all->n; i++) {
            jj_value c;
            f->n = 0;
            st->frame = f;
            if (assign(st, st->frame, n->a, all->items[i]) || eval(st, n->c, &c)) { st->frame = saved; return -1; }
            st->frame = saved;
            if (jj_truthy(c)) kept.u.list->items[kept.u.list->n++] = all->items[i];
        }
        if (st->failed) return -1;
        items = kept.u.list;
    }
    if (items->n == 0) return n->else_body ? exec_block(st, n->else_body) : 0;
    jj_loop *loop = jj_alloc(st, sizeof *loop);
    if (!loop) return -1;
    loop->items = items;
    jj_frame *f = jj_frame_push(st, saved); /* one scope, emptied for each iteration */
    for (size_t i = 0; f && i < items->n; i++) {
        if (++st->steps > JJ_MAX_STEPS) { st->frame = saved; return jj_fail(st, LORAJIT_E_UNSUPPORTED, "evaluation step cap (%ld) reached", JJ_MAX_STEPS); }
        loop->index0 = i;
        f->n = 0;
        st->frame = f;
        if (assign(st, st->frame, n->a, items->items[i]) ||
            jj_frame_set(st, st->frame, "loop", (jj_value){.kind = JJ_LOOP, .u.loop = loop})) { st->frame = saved; return -1; }
        int rc = exec_block(st, n->body);
        st->frame = saved;
        if (rc) return -1;
        int ctl = st->loop_ctl;
        st->loop_ctl = JJ_CTL_NONE;
        if (ctl == JJ_CTL_BREAK) break;
    }
    return st->failed ? -1 : 0;
}

static int exec_stmt(jj_state *st, const jj_node *n) {
    if (++st->steps > JJ_MAX_STEPS) return jj_fail(st, LORAJIT_E_UNSUPPORTED, "evaluation step cap (%ld) reached", JJ_MAX_STEPS);
    st->line = n->line;
    jj_value v;
    switch (n->kind) {
    case JJ_N_TEXT: return jj_emit(st, n->lit.u.s, n->lit.len);
    case JJ_N_OUTPUT: return eval(st, n->a, &v) || jj_emit_str(st, v) ? -1 : 0;
    case JJ_N_IF:
        if (eval(st, n->a, &v)) return -1;
        if (jj_truthy(v)) return exec_block(st, n->body);
        return n->else_body ? exec_stmt(st, n->else_body) : 0;
    case JJ_N_FOR: return exec_for(st, n);
    case JJ_N_SET: return eval(st, n->b, &v) || assign(st, st->frame, n->a, v) ? -1 : 0;
    case JJ_N_SET_BLOCK: {
        jj_capture save;
        jj_capture_begin(st, &save);
        exec_block(st, n->body);
        if (jj_capture_end(st, &save, &v)) return -1;
        return assign(st, st->frame, n->a, v);
    }
    case JJ_N_MACRO: return jj_frame_set(st, st->frame, n->name, (jj_value){.kind = JJ_MACRO, .u.macro = n});
    case JJ_N_BREAK: st->loop_ctl = JJ_CTL_BREAK; return 0;
    case JJ_N_CONTINUE: st->loop_ctl = JJ_CTL_CONTINUE; return 0;
    case JJ_N_BLOCK: return exec_block(st, n);
    case JJ_N_LITERAL: case JJ_N_NAME: case JJ_N_LIST: case JJ_N_TUPLE: case JJ_N_DICT: case JJ_N_ATTR: case JJ_N_ITEM:
    case JJ_N_SLICE: case JJ_N_CALL: case JJ_N_FILTER: case JJ_N_TEST: case JJ_N_UNARY: case JJ_N_BINARY:
    case JJ_N_COMPARE: case JJ_N_AND: case JJ_N_OR: case JJ_N_NOT: case JJ_N_COND:
        break;
    }
    return jj_fail(st, LORAJIT_E_UNSUPPORTED, "expression node %d used as a statement", (int)n->kind);
}

/* Runs a body's statements until one fails or a break/continue is pending. */
static int exec_block(jj_state *st, const jj_node *body) {
    for (int i = 0; i < body->n_kids; i++) {
        if (exec_stmt(st, body->kids[i])) return -1;
        if (st->loop_ctl != JJ_CTL_NONE) break;
    }
    return st->failed ? -1 : 0;
}

int jj_eval_template(jj_state *st, const jj_node *body) {
    st->frame = st->root;
    return exec_block(st, body);
}
