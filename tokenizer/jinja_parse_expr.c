/* jinja_parse_expr.c — expressions: tokens -> AST, recursive descent with jinja2's grammar.
 *
 * Input: jj_lex's tokens at the parser's position. Output: expression nodes.
 * Precedence follows jinja2's parser: conditional, or, and, not, comparisons
 * (chained), + -, ~, * / // %, **, unary; filters (|f), tests (is t) and calls bind
 * to the unary operand, postfix . [] () to the primary. Also the token helpers the
 * statement parser (jinja_parse.c) shares. */
#include <stdio.h>
#include <string.h>

#include "jinja.h"


const jj_token *jj_p_cur(jj_parser *p) { return &p->t[p->i < p->n ? p->i : p->n - 1]; }
int jj_p_is_op(jj_parser *p, const char *op) {
    const jj_token *t = jj_p_cur(p);
    return t->kind == JJ_T_OP && t->len == strlen(op) && memcmp(t->s, op, t->len) == 0;
}
int jj_p_is_name(jj_parser *p, const char *name) {
    const jj_token *t = jj_p_cur(p);
    return t->kind == JJ_T_NAME && t->len == strlen(name) && memcmp(t->s, name, t->len) == 0;
}
int jj_p_accept_op(jj_parser *p, const char *op) { return jj_p_is_op(p, op) ? (p->i++, 1) : 0; }
int jj_p_accept_name(jj_parser *p, const char *name) { return jj_p_is_name(p, name) ? (p->i++, 1) : 0; }

int jj_p_fail(jj_parser *p, const char *fmt, const char *what) {
    p->st->line = jj_p_cur(p)->line;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, what);
    return jj_fail(p->st, LORAJIT_E_FORMAT, "syntax error: %s", msg);
}
const char *jj_p_tok_text(jj_parser *p) {
    static const char *const kinds[] = {"text", "'{{'", "'}}'", "'{%'", "'%}'", "name", "string", "integer",
                                        "float", "operator", "end of template"};
    const jj_token *t = jj_p_cur(p);
    if (t->kind == JJ_T_NAME || t->kind == JJ_T_OP) {
        char *s = jj_alloc(p->st, t->len + 3);
        if (s) snprintf(s, t->len + 3, "'%.*s'", (int)t->len, t->s);
        return s ? s : "?";
    }
    return kinds[t->kind];
}
int jj_p_expect_op(jj_parser *p, const char *op) {
    if (jj_p_accept_op(p, op)) return 0;
    char msg[64];
    snprintf(msg, sizeof msg, "expected '%s', got %%s", op);
    return jj_p_fail(p, msg, jj_p_tok_text(p));
}
int jj_p_expect_end(jj_parser *p) {
    if (jj_p_cur(p)->kind == JJ_T_BLOCK_END) { p->i++; return 0; }
    return jj_p_fail(p, "expected end of statement block, got %s", jj_p_tok_text(p));
}

jj_node *jj_p_node(jj_parser *p, jj_node_kind kind) {
    jj_node *n = jj_alloc(p->st, sizeof *n);
    if (n) { n->kind = kind; n->line = jj_p_cur(p)->line; }
    return n;
}
const char *jj_p_name_str(jj_parser *p, const jj_token *t) {
    char *s = jj_alloc(p->st, t->len + 1);
    if (s) memcpy(s, t->s, t->len);
    return s;
}

int jj_p_vec_push(jj_parser *p, jj_vec *v, jj_node *n, const char *kw) {
    if (!n) return -1;
    if (v->n < 64) { v->items[v->n] = n; v->kw[v->n++] = kw; return 0; }
    if (v->n - 64 == v->cap) {
        int cap = v->cap ? v->cap * 2 : 64;
        jj_node **m = jj_alloc(p->st, sizeof *m * (size_t)cap);
        const char **k = jj_alloc(p->st, sizeof *k * (size_t)cap);
        if (!m || !k) return -1;
        if (v->cap) { memcpy(m, v->more, sizeof *m * (size_t)v->cap); memcpy(k, v->more_kw, sizeof *k * (size_t)v->cap); }
        v->more = m; v->more_kw = k; v->cap = cap;
    }
    v->more[v->n - 64] = n;
    v->more_kw[v->n++ - 64] = kw;
    return 0;
}
/* Moves v into n->kids (and n->kw_names when any keyword is set). */
int jj_p_vec_into(jj_parser *p, jj_vec *v, jj_node *n) {
    n->n_kids = v->n;
    n->kids = jj_alloc(p->st, sizeof *n->kids * (size_t)(v->n ? v->n : 1));
    n->kw_names = jj_alloc(p->st, sizeof *n->kw_names * (size_t)(v->n ? v->n : 1));
    if (!n->kids || !n->kw_names) return -1;
    for (int i = 0; i < v->n; i++) {
        n->kids[i] = i < 64 ? v->items[i] : v->more[i - 64];
        n->kw_names[i] = i < 64 ? v->kw[i] : v->more_kw[i - 64];
    }
    return 0;
}

static jj_node *parse_or(jj_parser *p);
static jj_node *parse_unary(jj_parser *p, int with_filter);
static jj_node *parse_primary(jj_parser *p);
static jj_node *parse_postfix(jj_parser *p, jj_node *n);

static jj_node *binary(jj_parser *p, jj_node_kind kind, int op, jj_node *a, jj_node *b) {
    if (!a || !b) return NULL;
    jj_node *n = jj_p_node(p, kind);
    if (n) { n->op = op; n->a = a; n->b = b; }
    return n;
}

/* Operator codes: the first two characters of the operator ('/'+'/' for //). */
#define OP2(a, b) ((a) << 8 | (b))

/* expr, expr, ... -> a tuple when there is a comma (outputs, set values, for iterables). */
jj_node *jj_parse_tuple(jj_parser *p, int with_cond) {
    jj_node *first = with_cond ? jj_parse_expr(p) : parse_or(p);
    if (!first || !jj_p_is_op(p, ",")) return first;
    jj_vec v = {0};
    jj_p_vec_push(p, &v, first, NULL);
    while (jj_p_accept_op(p, ",")) {
        if (jj_p_cur(p)->kind == JJ_T_BLOCK_END || jj_p_cur(p)->kind == JJ_T_VAR_END || jj_p_is_op(p, ")") || jj_p_is_name(p, "if")) break;
        if (jj_p_vec_push(p, &v, with_cond ? jj_parse_expr(p) : parse_or(p), NULL)) return NULL;
    }
    jj_node *n = jj_p_node(p, JJ_N_TUPLE);
    return n && !jj_p_vec_into(p, &v, n) ? n : NULL;
}

jj_node *jj_parse_expr(jj_parser *p) {
    if (++p->depth > JJ_MAX_DEPTH) {
        p->st->line = jj_p_cur(p)->line;
        jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "expressions nested deeper than %d", JJ_MAX_DEPTH);
        return NULL;
    }
    jj_node *n = parse_or(p);
    while (n && jj_p_accept_name(p, "if")) {
        jj_node *c = jj_p_node(p, JJ_N_COND);
        if (!c) return NULL;
        c->a = n;
        if (!(c->b = parse_or(p))) return NULL;
        if (jj_p_accept_name(p, "else") && !(c->c = jj_parse_expr(p))) return NULL;
        n = c;
    }
    p->depth--;
    return n;
}

static jj_node *parse_compare(jj_parser *p);
static jj_node *parse_not(jj_parser *p) {
    if (jj_p_accept_name(p, "not")) {
        jj_node *n = jj_p_node(p, JJ_N_NOT);
        if (n && !(n->a = parse_not(p))) return NULL;
        return n;
    }
    return parse_compare(p);
}
static jj_node *parse_and(jj_parser *p) {
    jj_node *n = parse_not(p);
    while (n && jj_p_accept_name(p, "and")) n = binary(p, JJ_N_AND, 0, n, parse_not(p));
    return n;
}
static jj_node *parse_or(jj_parser *p) {
    jj_node *n = parse_and(p);
    while (n && jj_p_accept_name(p, "or")) n = binary(p, JJ_N_OR, 0, n, parse_and(p));
    return n;
}

static jj_node *parse_math1(jj_parser *p);
/* a < b < c is (a < b) and (b < c), as Python chains comparisons. */
static jj_node *parse_compare(jj_parser *p) {
    jj_node *left = parse_math1(p), *result = NULL;
    for (;;) {
        if (!left) return NULL;
        int op;
        if (jj_p_is_op(p, "==") || jj_p_is_op(p, "!=") || jj_p_is_op(p, "<") || jj_p_is_op(p, ">") || jj_p_is_op(p, "<=") || jj_p_is_op(p, ">=")) {
            const jj_token *t = jj_p_cur(p);
            op = (t->len > 1 ? OP2(t->s[0], t->s[1]) : t->s[0]);
            p->i++;
        } else if (jj_p_accept_name(p, "in")) op = OP2('i', 'n');
        else if (jj_p_is_name(p, "not") && p->i + 1 < p->n && p->t[p->i + 1].kind == JJ_T_NAME &&
                 p->t[p->i + 1].len == 2 && memcmp(p->t[p->i + 1].s, "in", 2) == 0) {
            p->i += 2;
            op = OP2('n', 'i');
        } else break;
        jj_node *right = parse_math1(p);
        jj_node *cmp = binary(p, JJ_N_COMPARE, op, left, right);
        result = result ? binary(p, JJ_N_AND, 0, result, cmp) : cmp;
        if (!result) return NULL;
        left = right;
    }
    return result ? result : left;
}

static jj_node *parse_concat(jj_parser *p);
static jj_node *parse_math1(jj_parser *p) {
    jj_node *n = parse_concat(p);
    while (n && (jj_p_is_op(p, "+") || jj_p_is_op(p, "-"))) {
        int op = jj_p_cur(p)->s[0];
        p->i++;
        n = binary(p, JJ_N_BINARY, op, n, parse_concat(p));
    }
    return n;
}
static jj_node *parse_math2(jj_parser *p);
static jj_node *parse_concat(jj_parser *p) {
    jj_node *n = parse_math2(p);
    while (n && jj_p_accept_op(p, "~")) n = binary(p, JJ_N_BINARY, '~', n, parse_math2(p));
    return n;
}
static jj_node *parse_pow(jj_parser *p);
static jj_node *parse_math2(jj_parser *p) {
    jj_node *n = parse_pow(p);
    while (n && (jj_p_is_op(p, "*") || jj_p_is_op(p, "/") || jj_p_is_op(p, "//") || jj_p_is_op(p, "%"))) {
        const jj_token *t = jj_p_cur(p);
        int op = (t->len > 1 ? OP2(t->s[0], t->s[1]) : t->s[0]);
        p->i++;
        n = binary(p, JJ_N_BINARY, op, n, parse_pow(p));
    }
    return n;
}
static jj_node *parse_pow(jj_parser *p) {
    jj_node *n = parse_unary(p, 1);
    while (n && jj_p_accept_op(p, "**")) n = binary(p, JJ_N_BINARY, OP2('*', '*'), n, parse_unary(p, 1));
    return n;
}

/* (args) of a call, filter or test: positional and name=value. */
static int parse_args(jj_parser *p, jj_node *n) {
    jj_vec v = {0};
    if (jj_p_expect_op(p, "(")) return -1;
    while (!jj_p_is_op(p, ")")) {
        if (v.n && jj_p_expect_op(p, ",")) return -1;
        if (jj_p_is_op(p, ")")) break;
        if (jj_p_is_op(p, "*") || jj_p_is_op(p, "**")) {
            p->st->line = jj_p_cur(p)->line;
            return jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "*args and **kwargs in calls are not supported");
        }
        const char *kw = NULL;
        if (jj_p_cur(p)->kind == JJ_T_NAME && p->i + 1 < p->n && p->t[p->i + 1].kind == JJ_T_OP &&
            p->t[p->i + 1].len == 1 && p->t[p->i + 1].s[0] == '=') {
            kw = jj_p_name_str(p, jj_p_cur(p));
            p->i += 2;
        }
        if (jj_p_vec_push(p, &v, jj_parse_expr(p), kw)) return -1;
    }
    p->i++;
    return jj_p_vec_into(p, &v, n);
}

/* name(.name)* of a filter or test. */
/* f(args) at "(": a JJ_N_CALL node of callee f, or NULL (failed). */
static jj_node *parse_call(jj_parser *p, jj_node *f) {
    jj_node *c = jj_p_node(p, JJ_N_CALL);
    if (!c) return NULL;
    c->a = f;
    return parse_args(p, c) ? NULL : c;
}

static const char *dotted_name(jj_parser *p) {
    if (jj_p_cur(p)->kind != JJ_T_NAME) { jj_p_fail(p, "expected a filter or test name, got %s", jj_p_tok_text(p)); return NULL; }
    const jj_token *t = jj_p_cur(p);
    p->i++;
    size_t len = t->len;
    while (jj_p_is_op(p, ".") && p->i + 1 < p->n && p->t[p->i + 1].kind == JJ_T_NAME) {
        len = (size_t)(p->t[p->i + 1].s + p->t[p->i + 1].len - t->s);
        p->i += 2;
    }
    char *s = jj_alloc(p->st, len + 1);
    if (s) memcpy(s, t->s, len);
    return s;
}

static jj_node *parse_filter_expr(jj_parser *p, jj_node *n) {
    while (n) {
        if (jj_p_accept_op(p, "|")) {
            jj_node *f = jj_p_node(p, JJ_N_FILTER);
            if (!f || !(f->name = dotted_name(p))) return NULL;
            if (!jj_filter_known(f->name)) {
                p->st->line = f->line;
                jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "filter '%s' is not supported", f->name);
                return NULL;
            }
            f->a = n;
            if (jj_p_is_op(p, "(") && parse_args(p, f)) return NULL;
            n = f;
        } else if (jj_p_accept_name(p, "is")) {
            jj_node *t = jj_p_node(p, JJ_N_TEST);
            if (!t) return NULL;
            t->op = jj_p_accept_name(p, "not");
            if (!(t->name = dotted_name(p))) return NULL;
            if (!jj_test_known(t->name)) {
                p->st->line = t->line;
                jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "test '%s' is not supported", t->name);
                return NULL;
            }
            t->a = n;
            const jj_token *c = jj_p_cur(p);
            if (jj_p_is_op(p, "(")) {
                if (parse_args(p, t)) return NULL;
            } else if ((c->kind == JJ_T_NAME || c->kind == JJ_T_STRING || c->kind == JJ_T_INT || c->kind == JJ_T_FLOAT ||
                        jj_p_is_op(p, "[") || jj_p_is_op(p, "{")) &&
                       !jj_p_is_name(p, "else") && !jj_p_is_name(p, "or") && !jj_p_is_name(p, "and")) {
                jj_vec v = {0};
                if (jj_p_is_name(p, "is")) { jj_p_fail(p, "%s", "you cannot chain multiple tests with is"); return NULL; }
                if (jj_p_vec_push(p, &v, parse_postfix(p, parse_primary(p)), NULL) || jj_p_vec_into(p, &v, t)) return NULL;
            }
            n = t;
        } else if (jj_p_is_op(p, "(")) {
            if (!(n = parse_call(p, n))) return NULL;
        } else break;
    }
    return n;
}

static jj_node *parse_unary(jj_parser *p, int with_filter) {
    jj_node *n;
    if (++p->depth > JJ_MAX_DEPTH) {
        p->st->line = jj_p_cur(p)->line;
        jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "expressions nested deeper than %d", JJ_MAX_DEPTH);
        return NULL;
    }
    if (jj_p_is_op(p, "-") || jj_p_is_op(p, "+")) {
        n = jj_p_node(p, JJ_N_UNARY);
        if (!n) return NULL;
        n->op = jj_p_cur(p)->s[0];
        p->i++;
        if (!(n->a = parse_unary(p, 0))) return NULL;
    } else n = parse_primary(p);
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

/* x.name, x.0, x[expr], x[a:b:c], x(args). */
static jj_node *parse_postfix(jj_parser *p, jj_node *n) {
    while (n) {
        if (jj_p_accept_op(p, ".")) {
            const jj_token *t = jj_p_cur(p);
            if (t->kind == JJ_T_NAME) {
                jj_node *a = jj_p_node(p, JJ_N_ATTR);
                if (!a) return NULL;
                a->a = n;
                a->name = jj_p_name_str(p, t);
                p->i++;
                n = a;
            } else if (t->kind == JJ_T_INT) {
                jj_node *k = jj_p_node(p, JJ_N_LITERAL), *it = jj_p_node(p, JJ_N_ITEM);
                if (!k || !it) return NULL;
                k->lit = jj_int(t->i);
                p->i++;
                it->a = n;
                it->b = k;
                n = it;
            } else { jj_p_fail(p, "expected a name after '.', got %s", jj_p_tok_text(p)); return NULL; }
        } else if (jj_p_accept_op(p, "[")) {
            jj_node *parts[3] = {NULL, NULL, NULL};
            int k = 0, slice = 0;
            for (;;) {
                if (!jj_p_is_op(p, ":") && !jj_p_is_op(p, "]") && !(parts[k] = jj_parse_expr(p))) return NULL;
                if (k < 2 && jj_p_accept_op(p, ":")) { slice = 1; k++; continue; }
                break;
            }
            if (jj_p_expect_op(p, "]")) return NULL;
            jj_node *s = jj_p_node(p, slice ? JJ_N_SLICE : JJ_N_ITEM);
            if (!s) return NULL;
            if (!slice && !parts[0]) { jj_p_fail(p, "%s", "expected an expression in []"); return NULL; }
            s->a = n;
            if (slice) { s->kids = jj_alloc(p->st, sizeof(jj_node *) * 3); if (!s->kids) return NULL; memcpy(s->kids, parts, sizeof parts); }
            else s->b = parts[0];
            n = s;
        } else if (jj_p_is_op(p, "(")) {
            if (!(n = parse_call(p, n))) return NULL;
        } else break;
    }
    return n;
}

static jj_node *parse_primary(jj_parser *p) {
    const jj_token *t = jj_p_cur(p);
    jj_node *n = jj_p_node(p, JJ_N_LITERAL);
    if (!n) return NULL;
    if (t->kind == JJ_T_NAME) {
        p->i++;
#define NAMED(w) (t->len == sizeof w - 1 && memcmp(t->s, w, t->len) == 0)
        if (NAMED("true") || NAMED("True")) n->lit = jj_bool(1);
        else if (NAMED("false") || NAMED("False")) n->lit = jj_bool(0);
        else if (NAMED("none") || NAMED("None")) n->lit = jj_none();
        else { n->kind = JJ_N_NAME; n->name = jj_p_name_str(p, t); }
#undef NAMED
        return n;
    }
    if (t->kind == JJ_T_STRING) { /* adjacent strings concatenate */
        size_t len = 0, j = p->i;
        for (; j < p->n && p->t[j].kind == JJ_T_STRING; j++) len += p->t[j].len;
        char *s = jj_alloc(p->st, len + 1);
        if (!s) return NULL;
        for (len = 0; p->i < j; p->i++) { memcpy(s + len, p->t[p->i].s, p->t[p->i].len); len += p->t[p->i].len; }
        n->lit = jj_str(s, len);
        return n;
    }
    if (t->kind == JJ_T_INT) { p->i++; n->lit = jj_int(t->i); return n; }
    if (t->kind == JJ_T_FLOAT) { p->i++; n->lit = jj_float(t->f); return n; }
    if (jj_p_accept_op(p, "(")) {
        if (jj_p_accept_op(p, ")")) { n->kind = JJ_N_TUPLE; return n; }
        jj_node *e = jj_parse_tuple(p, 1);
        if (!e || jj_p_expect_op(p, ")")) return NULL;
        return e;
    }
    if (jj_p_accept_op(p, "[") || jj_p_accept_op(p, "{")) {
        int dict = p->t[p->i - 1].s[0] == '{';
        jj_vec v = {0};
        n->kind = dict ? JJ_N_DICT : JJ_N_LIST;
        while (!jj_p_accept_op(p, dict ? "}" : "]")) {
            if (v.n && jj_p_expect_op(p, ",")) return NULL;
            if (jj_p_accept_op(p, dict ? "}" : "]")) break;
            if (jj_p_vec_push(p, &v, jj_parse_expr(p), NULL)) return NULL;
            if (dict && (jj_p_expect_op(p, ":") || jj_p_vec_push(p, &v, jj_parse_expr(p), NULL))) return NULL;
        }
        return jj_p_vec_into(p, &v, n) ? NULL : n;
    }
    jj_p_fail(p, "unexpected %s", jj_p_tok_text(p));
    return NULL;
}

