/* jinja_parse.c — statements: tokens -> the template's AST.
 *
 * Input: jj_lex's tokens. Output: the template body (JJ_N_BLOCK of statements).
 * Statements: if/elif/else, for (else, `if` filter, tuple targets), set (names,
 * namespace attributes, tuples, {% set x %}...{% endset %}), macro, break/continue
 * (loopcontrols) and generation (transformers' AssistantTracker: its body). Tags
 * jinja2 knows that are not implemented are refused by name (E_UNSUPPORTED); other
 * names are syntax errors (E_FORMAT), each with its line. */
#include <string.h>

#include "jinja.h"

static jj_node *parse_body(jj_parser *p, const char *const *ends);

static const char *const UNSUPPORTED_TAGS[] = {"call", "filter", "include", "import", "from", "extends", "block",
                                               "with", "autoescape", "raw", "do", "trans", "pluralize", "debug",
                                               NULL};

static int in_list(const jj_token *t, const char *const *names) {
    for (int i = 0; names && names[i]; i++)
        if (t->kind == JJ_T_NAME && strlen(names[i]) == t->len && memcmp(names[i], t->s, t->len) == 0) return 1;
    return 0;
}

static int expect_name(jj_parser *p, const char *name) {
    if (jj_p_accept_name(p, name)) return 0;
    char fmt[80];
    snprintf(fmt, sizeof fmt, "expected '%s', got %%s", name);
    return jj_p_fail(p, fmt, jj_p_tok_text(p));
}

/* A target of for/set: name, name.attr (set only), or names separated by commas. */
static jj_node *parse_target(jj_parser *p, int allow_attr) {
    jj_vec v = {0};
    int paren = jj_p_accept_op(p, "(");
    do {
        const jj_token *t = jj_p_cur(p);
        if (t->kind != JJ_T_NAME) { jj_p_fail(p, "expected a name to assign to, got %s", jj_p_tok_text(p)); return NULL; }
        jj_node *n = jj_p_node(p, JJ_N_NAME);
        if (!n) return NULL;
        n->name = jj_p_name_str(p, t);
        p->i++;
        if (allow_attr && jj_p_accept_op(p, ".")) {
            const jj_token *a = jj_p_cur(p);
            if (a->kind != JJ_T_NAME) { jj_p_fail(p, "expected an attribute name, got %s", jj_p_tok_text(p)); return NULL; }
            jj_node *attr = jj_p_node(p, JJ_N_ATTR);
            if (!attr) return NULL;
            attr->a = n;
            attr->name = jj_p_name_str(p, a);
            p->i++;
            return attr;
        }
        if (jj_p_vec_push(p, &v, n, NULL)) return NULL;
    } while (jj_p_accept_op(p, ","));
    if (paren && jj_p_expect_op(p, ")")) return NULL;
    if (v.n == 1 && !paren) return v.items[0];
    jj_node *tup = jj_p_node(p, JJ_N_TUPLE);
    return tup && !jj_p_vec_into(p, &v, tup) ? tup : NULL;
}

static jj_node *parse_if(jj_parser *p) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    jj_node *n = jj_p_node(p, JJ_N_IF);
    if (!n || !(n->a = jj_parse_tuple(p, 1)) || jj_p_expect_end(p) || !(n->body = parse_body(p, ends))) return NULL;
    if (jj_p_accept_name(p, "elif")) {
        if (!(n->else_body = parse_if(p))) return NULL;
        return n; /* the nested if consumed endif */
    }
    if (jj_p_accept_name(p, "else") && (jj_p_expect_end(p) || !(n->else_body = parse_body(p, endif)))) return NULL;
    if (expect_name(p, "endif") || jj_p_expect_end(p)) return NULL;
    return n;
}

static jj_node *parse_for(jj_parser *p) {
    static const char *const ends[] = {"else", "endfor", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    jj_node *n = jj_p_node(p, JJ_N_FOR);
    if (!n || !(n->a = parse_target(p, 0)) || expect_name(p, "in") || !(n->b = jj_parse_tuple(p, 0))) return NULL;
    if (jj_p_accept_name(p, "if") && !(n->c = jj_parse_expr(p))) return NULL;
    if (jj_p_is_name(p, "recursive")) {
        p->st->line = jj_p_cur(p)->line;
        jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "recursive for loops are not supported");
        return NULL;
    }
    if (jj_p_expect_end(p)) return NULL;
    p->loops++;
    n->body = parse_body(p, ends);
    p->loops--;
    if (!n->body) return NULL;
    if (jj_p_accept_name(p, "else") && (jj_p_expect_end(p) || !(n->else_body = parse_body(p, endfor)))) return NULL;
    if (expect_name(p, "endfor") || jj_p_expect_end(p)) return NULL;
    return n;
}

static jj_node *parse_set(jj_parser *p) {
    static const char *const endset[] = {"endset", NULL};
    jj_node *n = jj_p_node(p, JJ_N_SET);
    if (!n || !(n->a = parse_target(p, 1))) return NULL;
    if (jj_p_accept_op(p, "=")) {
        if (!(n->b = jj_parse_tuple(p, 1)) || jj_p_expect_end(p)) return NULL;
        return n;
    }
    if (jj_p_is_op(p, "|")) {
        p->st->line = jj_p_cur(p)->line;
        jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "filtered set blocks are not supported");
        return NULL;
    }
    if (n->a->kind != JJ_N_NAME) { jj_p_fail(p, "%s", "a set block assigns one name"); return NULL; }
    n->kind = JJ_N_SET_BLOCK;
    int loops = p->loops;
    p->loops = 0;
    if (jj_p_expect_end(p) || !(n->body = parse_body(p, endset))) return NULL;
    p->loops = loops;
    if (expect_name(p, "endset") || jj_p_expect_end(p)) return NULL;
    return n;
}

/* {% macro name(a, b=default) %}: parameter names in kids[i]->name, defaults in kids[i]->a. */
static jj_node *parse_macro(jj_parser *p) {
    static const char *const ends[] = {"endmacro", NULL};
    jj_node *n = jj_p_node(p, JJ_N_MACRO);
    if (!n) return NULL;
    if (jj_p_cur(p)->kind != JJ_T_NAME) { jj_p_fail(p, "expected a macro name, got %s", jj_p_tok_text(p)); return NULL; }
    n->name = jj_p_name_str(p, jj_p_cur(p));
    p->i++;
    jj_vec v = {0};
    if (jj_p_expect_op(p, "(")) return NULL;
    while (!jj_p_accept_op(p, ")")) {
        if (v.n && jj_p_expect_op(p, ",")) return NULL;
        if (jj_p_accept_op(p, ")")) break;
        if (jj_p_cur(p)->kind != JJ_T_NAME) { jj_p_fail(p, "expected a parameter name, got %s", jj_p_tok_text(p)); return NULL; }
        jj_node *param = jj_p_node(p, JJ_N_NAME);
        if (!param) return NULL;
        param->name = jj_p_name_str(p, jj_p_cur(p));
        p->i++;
        if (jj_p_accept_op(p, "=") && !(param->a = jj_parse_expr(p))) return NULL;
        if (jj_p_vec_push(p, &v, param, NULL)) return NULL;
    }
    if (jj_p_vec_into(p, &v, n) || jj_p_expect_end(p)) return NULL;
    int loops = p->loops;
    p->loops = 0;
    if (!(n->body = parse_body(p, ends))) return NULL;
    p->loops = loops;
    if (expect_name(p, "endmacro") || jj_p_expect_end(p)) return NULL;
    return n;
}

/* One {% ... %} statement; the parser is past the tag name's BLOCK_BEGIN. */
static jj_node *parse_statement(jj_parser *p) {
    static const char *const endgen[] = {"endgeneration", NULL};
    const jj_token *t = jj_p_cur(p);
    if (t->kind != JJ_T_NAME) { jj_p_fail(p, "expected a tag name, got %s", jj_p_tok_text(p)); return NULL; }
    p->st->line = t->line;
    if (jj_p_accept_name(p, "if")) return parse_if(p);
    if (jj_p_accept_name(p, "for")) return parse_for(p);
    if (jj_p_accept_name(p, "set")) return parse_set(p);
    if (jj_p_accept_name(p, "macro")) return parse_macro(p);
    if (jj_p_is_name(p, "break") || jj_p_is_name(p, "continue")) {
        jj_node *n = jj_p_node(p, jj_p_is_name(p, "break") ? JJ_N_BREAK : JJ_N_CONTINUE);
        if (!p->loops) { jj_p_fail(p, "%s outside of a loop", jj_p_tok_text(p)); return NULL; }
        p->i++;
        return n && !jj_p_expect_end(p) ? n : NULL;
    }
    if (jj_p_accept_name(p, "generation")) {
        jj_node *body;
        if (jj_p_expect_end(p) || !(body = parse_body(p, endgen))) return NULL;
        if (expect_name(p, "endgeneration") || jj_p_expect_end(p)) return NULL;
        return body;
    }
    if (in_list(t, UNSUPPORTED_TAGS)) {
        jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "tag '%.*s' is not supported", (int)t->len, t->s);
        return NULL;
    }
    char what[80];
    snprintf(what, sizeof what, "%.*s", t->len > 60 ? 60 : (int)t->len, t->s);
    jj_p_fail(p, "unknown tag '%s'", what);
    return NULL;
}

/* Statements until EOF (ends NULL) or a {% tag %} named in ends, left at that name. */
static jj_node *parse_body(jj_parser *p, const char *const *ends) {
    jj_node *body = jj_p_node(p, JJ_N_BLOCK);
    jj_vec v = {0};
    if (!body) return NULL;
    if (++p->depth > JJ_MAX_DEPTH) {
        p->st->line = jj_p_cur(p)->line;
        jj_fail(p->st, LORAJIT_E_UNSUPPORTED, "blocks nested deeper than %d", JJ_MAX_DEPTH);
        return NULL;
    }
    for (;;) {
        const jj_token *t = jj_p_cur(p);
        jj_node *n = NULL;
        if (t->kind == JJ_T_EOF) {
            if (!ends) break;
            p->st->line = t->line;
            int last = 0;
            while (ends[last + 1]) last++;
            jj_fail(p->st, LORAJIT_E_FORMAT, "syntax error: unexpected end of template, expected '%s'", ends[last]);
            return NULL;
        }
        if (t->kind == JJ_T_TEXT) {
            n = jj_p_node(p, JJ_N_TEXT);
            if (n) n->lit = jj_str(t->s, t->len);
            p->i++;
        } else if (t->kind == JJ_T_VAR_BEGIN) {
            p->i++;
            n = jj_p_node(p, JJ_N_OUTPUT);
            if (!n || !(n->a = jj_parse_tuple(p, 1))) return NULL;
            if (jj_p_cur(p)->kind != JJ_T_VAR_END) { jj_p_fail(p, "expected '}}', got %s", jj_p_tok_text(p)); return NULL; }
            p->i++;
        } else if (t->kind == JJ_T_BLOCK_BEGIN) {
            p->i++;
            if (in_list(jj_p_cur(p), ends)) break;
            n = parse_statement(p);
        } else {
            jj_p_fail(p, "unexpected %s", jj_p_tok_text(p));
            return NULL;
        }
        if (jj_p_vec_push(p, &v, n, NULL)) return NULL;
    }
    p->depth--;
    return jj_p_vec_into(p, &v, body) ? NULL : body;
}

int jj_parse(jj_state *st, const jj_token *toks, size_t n_toks, jj_node **out) {
    jj_parser p = {.st = st, .t = toks, .n = n_toks};
    *out = parse_body(&p, NULL);
    return *out ? 0 : -1;
}
