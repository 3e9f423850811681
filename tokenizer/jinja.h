/* jinja.h — the chat-template engine: a Jinja subset interpreter (internal, prefix jj_).
 *
 * A pipeline of small passes, one per file (chibicc's shape):
 *   jinja_lex.c     template text -> tokens (whitespace control, trim/lstrip_blocks)
 *   jinja_parse.c   tokens -> AST (jj_node): statements; jinja_parse_expr.c: expressions
 *   jinja_value.c   values: arena, str()/repr(), truthiness, compare, attribute access
 *   jinja_json.c    cJSON -> values, tojson (json.dumps as transformers calls it)
 *   jinja_text.c    Unicode text helpers and Python str methods
 *   jinja_filters.c filters and tests
 *   jinja_eval.c    statements and expressions -> output
 *   jinja_render.c  jj_render: the entry point that runs the passes in order
 * The settings are transformers' (src/transformers/utils/chat_template_utils.py,
 * _compile_jinja_template): ImmutableSandboxedEnvironment(trim_blocks=True,
 * lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols]), tojson = json.dumps
 * (ensure_ascii=False), raise_exception and strftime_now globals. */
#ifndef LORAJIT_JINJA_H
#define LORAJIT_JINJA_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/formats/formats.h" /* lj_err, lj_fail, lorajit_status */

struct cJSON;

/* Caps that keep a hostile template bounded. */
#define JJ_MAX_OUTPUT (16u << 20)   /* bytes of rendered text */
#define JJ_MAX_ARENA (256u << 20)   /* bytes of values made while rendering */
#define JJ_MAX_STEPS 20000000L      /* expression and statement evaluations */
#define JJ_MAX_DEPTH 200            /* nesting of parsed expressions/blocks and of macro calls */
#define JJ_MAX_SOURCE (4u << 20)    /* bytes of template text */

/* ---- jinja_render.c ---- */
/* Renders Jinja template src (len bytes) with the variables of ctx (a cJSON object) as
 * jinja2 would with transformers' apply_chat_template settings. Caller owns *out; free
 * with free(); NUL terminated, *out_len bytes. On failure *out is NULL and err says why:
 * LORAJIT_E_UNSUPPORTED (a construct not implemented, named), LORAJIT_E_ARG
 * (raise_exception's message, or a runtime error jinja2 would also raise),
 * LORAJIT_E_FORMAT (syntax error), each with the template line. ctx is borrowed. */
lorajit_status jj_render(const char *src, size_t len, const struct cJSON *ctx, char **out, size_t *out_len,
                         lj_err *err);

/* ---- the arena and the state of one render (jinja_value.c) ---- */
typedef struct jj_chunk jj_chunk;
typedef struct jj_state {
    lj_err *err;
    jj_chunk *chunks;
    size_t arena_used;
    int line;                  /* line of the node being evaluated, for messages */
    long steps;
    int depth;
    char *buf;                 /* output being written (malloc'd; swapped for macro bodies) */
    size_t buf_len, buf_cap;
    struct jj_frame *frame;    /* innermost scope */
    struct jj_frame *root;     /* the template's top-level scope */
    int loop_ctl;              /* JJ_CTL_* after break/continue until the loop sees it */
    int failed;                /* the lorajit_status of the first failure, 0 while none */
} jj_state;
enum { JJ_CTL_NONE, JJ_CTL_BREAK, JJ_CTL_CONTINUE };

/* Records the first failure as "chat template: <msg> (line N)" (control characters
 * blanked) with status s, and returns -1. */
int jj_fail(jj_state *st, lorajit_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* n bytes from the render's arena (zeroed), NULL (and a failure recorded) over the cap.
 * Borrowed; valid until jj_arena_free. */
void *jj_alloc(jj_state *st, size_t n);
/* Frees every chunk of the arena. */
void jj_arena_free(jj_state *st);

/* ---- values (jinja_value.c) ---- */
typedef enum jj_kind {
    JJ_UNDEF, JJ_NONE, JJ_BOOL, JJ_INT, JJ_FLOAT, JJ_STR, JJ_LIST, JJ_DICT, JJ_NS,
    JJ_LOOP, JJ_FUNC, JJ_METHOD, JJ_MACRO
} jj_kind;
typedef struct jj_value {
    jj_kind kind;
    int markup;                /* JJ_STR from |safe or |escape (markupsafe's Markup): `+` escapes the other side */
    size_t len;                /* JJ_STR: bytes; JJ_FUNC: builtin id */
    union {
        int64_t i;             /* JJ_BOOL, JJ_INT */
        double f;
        const char *s;         /* JJ_STR (UTF-8, not NUL terminated); JJ_UNDEF: what is missing */
        struct jj_list *list;
        struct jj_dict *dict;  /* JJ_DICT, JJ_NS */
        struct jj_loop *loop;
        struct jj_method *method;
        const struct jj_node *macro;
    } u;
} jj_value;
typedef struct jj_list { size_t n; jj_value *items; int tuple; const char *view; /* "dict_items" ..., "<range"/"<generator" (not printable), or NULL */ } jj_list;
typedef struct jj_dict { size_t n, cap; jj_value *keys, *vals; } jj_dict;
typedef struct jj_loop {
    const jj_list *items; size_t index0; int depth0; /* depth0: 0 (loops are never recursive here) */
} jj_loop;
typedef struct jj_method { jj_value self; const char *name; } jj_method;

jj_value jj_undef(const char *what);
jj_value jj_none(void);
jj_value jj_bool(int b);
jj_value jj_int(int64_t i);
jj_value jj_float(double f);
jj_value jj_str(const char *s, size_t len);
/* A string copied into the arena (out of memory: recorded, kind JJ_UNDEF). */
jj_value jj_str_copy(jj_state *st, const char *s, size_t len);
jj_value jj_list_new(jj_state *st, size_t n);
jj_value jj_dict_new(jj_state *st, size_t cap);
/* Sets d[key] = val (replacing an equal key); -1 when out of memory. */
int jj_dict_set(jj_state *st, jj_dict *d, jj_value key, jj_value val);
/* d[key] or NULL. Borrowed. */
jj_value *jj_dict_get(const jj_dict *d, jj_value key);
int jj_truthy(jj_value v);
int jj_is_number(jj_value v);
double jj_as_double(jj_value v);
/* Python ==. */
int jj_equal(jj_value a, jj_value b);
/* Python <: *lt; -1 (failure recorded) when the types do not order. */
int jj_less(jj_state *st, jj_value a, jj_value b, int *lt);
/* Appends Python str(v) (repr for items of lists/dicts) to the state's output buffer;
 * jj_emit appends n bytes. -1 past the output cap. */
int jj_emit_str(jj_state *st, jj_value v);
int jj_emit(jj_state *st, const char *s, size_t n);
/* Python str(v) as a new string value. */
int jj_to_str(jj_state *st, jj_value v, jj_value *out);
/* Python repr of a float, into buf (at least 32 bytes); returns the length. */
int jj_float_repr(double f, char *buf);
/* Number of code points of s[0..n). */
size_t jj_utf8_count(const char *s, size_t n);
/* Byte offset of code point k (k <= count). */
size_t jj_utf8_offset(const char *s, size_t n, size_t k);
/* Whether name is a method Python's str has (implemented or not). */
int jj_str_has_method(const char *name, size_t len);
/* Name of v's Python type, for messages. */
const char *jj_type_name(jj_value v);
/* jinja2's getattr / getitem (sandboxed): *out is the attribute, a bound method, or
 * undefined; -1 on an error (unsupported method, attribute of undefined). */
int jj_getattr(jj_state *st, jj_value obj, const char *name, size_t name_len, jj_value *out);
int jj_getitem(jj_state *st, jj_value obj, jj_value key, jj_value *out);
/* The items a for loop over v visits (dict: keys; string: characters; undefined:
 * none). -1 when v is not iterable. */
int jj_iterate(jj_state *st, jj_value v, const jj_list **out);
/* Temporarily redirects output into a fresh buffer: begin saves, end returns what was
 * written as an arena string and restores. */
typedef struct jj_capture { char *buf; size_t len, cap; } jj_capture;
void jj_capture_begin(jj_state *st, jj_capture *save);
int jj_capture_end(jj_state *st, jj_capture *save, jj_value *out);

/* ---- jinja_json.c ---- */
/* The value of a cJSON item (integral numbers become ints). */
int jj_from_json(jj_state *st, const struct cJSON *j, jj_value *out);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson.
 * indent: NULL for none; item_sep/key_sep: NULL for the defaults. */
int jj_tojson(jj_state *st, jj_value v, int ensure_ascii, const char *indent, const char *item_sep,
              const char *key_sep, int sort_keys, jj_value *out);

/* ---- jinja_text.c: UTF-8 and Python str methods ---- */
/* Python str.upper/lower/strip and jinja2's title/capitalize, as new strings. mode: 'u', 'l', 't', 'c'. */
int jj_str_case(jj_state *st, jj_value s, int mode, jj_value *out);
/* which: 3 both, 1 left, 2 right; chars NULL means whitespace. */
int jj_str_strip(jj_state *st, jj_value s, const jj_value *chars, int which, jj_value *out);
/* Calls the str method name on s. -1 on failure (unknown method refused by name). */
int jj_str_method(jj_state *st, jj_value s, const char *name, const jj_value *args, int n_args, jj_value *out);
/* sep.join(str(x) for x in items) (sep a string). */
int jj_str_join(jj_state *st, jj_value items, jj_value sep, jj_value *out);
/* s.replace(old, new[, count]). */
int jj_str_replace(jj_state *st, jj_value s, jj_value old, jj_value new_, int64_t count, jj_value *out);

/* ---- the AST (jinja_parse.c) ---- */
typedef enum jj_node_kind {
    /* statements */
    JJ_N_TEXT, JJ_N_OUTPUT, JJ_N_IF, JJ_N_FOR, JJ_N_SET, JJ_N_SET_BLOCK, JJ_N_MACRO, JJ_N_BREAK,
    JJ_N_CONTINUE, JJ_N_BLOCK,
    /* expressions */
    JJ_N_LITERAL, JJ_N_NAME, JJ_N_LIST, JJ_N_TUPLE, JJ_N_DICT, JJ_N_ATTR, JJ_N_ITEM, JJ_N_SLICE,
    JJ_N_CALL, JJ_N_FILTER, JJ_N_TEST, JJ_N_UNARY, JJ_N_BINARY, JJ_N_COMPARE, JJ_N_AND, JJ_N_OR,
    JJ_N_NOT, JJ_N_COND
} jj_node_kind;
typedef struct jj_node jj_node;
struct jj_node {
    jj_node_kind kind;
    int line;
    int op;                 /* JJ_N_BINARY/COMPARE/UNARY: the operator token; TEST: 1 when negated */
    const char *name;       /* NAME, ATTR, FILTER, TEST, MACRO, SET target; NUL terminated */
    jj_value lit;           /* LITERAL; TEXT as a string */
    jj_node *a, *b, *c;     /* operands; IF: cond, then, else; FOR: target list, iter, cond */
    jj_node **kids;         /* LIST/TUPLE/DICT items (DICT: k, v pairs), CALL/FILTER args, BLOCK body */
    int n_kids;
    const char **kw_names;  /* CALL/FILTER/TEST/MACRO: keyword argument names (NULL = positional) */
    jj_node *body, *else_body;
};

/* ---- jinja_lex.c ---- */
typedef enum jj_tok_kind {
    JJ_T_TEXT, JJ_T_VAR_BEGIN, JJ_T_VAR_END, JJ_T_BLOCK_BEGIN, JJ_T_BLOCK_END, JJ_T_NAME,
    JJ_T_STRING, JJ_T_INT, JJ_T_FLOAT, JJ_T_OP, JJ_T_EOF
} jj_tok_kind;
typedef struct jj_token {
    jj_tok_kind kind;
    int line;
    const char *s;          /* TEXT, NAME, STRING (unescaped, arena), OP text */
    size_t len;
    int64_t i;
    double f;
} jj_token;
/* Splits src into tokens (arena). Text tokens already have whitespace control,
 * trim_blocks and lstrip_blocks applied; comments are dropped. -1 on a syntax error. */
int jj_lex(jj_state *st, const char *src, size_t len, jj_token **toks, size_t *n_toks);

/* ---- jinja_parse.c: statements ---- */
/* Parses tokens into the template's body (JJ_N_BLOCK). -1 on a syntax error (E_FORMAT)
 * or a construct not implemented (E_UNSUPPORTED). Nodes live in the arena. */
int jj_parse(jj_state *st, const jj_token *toks, size_t n_toks, jj_node **out);

/* ---- jinja_parse_expr.c: expressions, and the token helpers both parsers use ---- */
typedef struct jj_parser {
    jj_state *st;
    const jj_token *t;
    size_t n, i;
    int depth, loops;
} jj_parser;
/* A growable list of node pointers with keyword names (arena), moved into a node. */
typedef struct jj_vec { jj_node *items[64]; const char *kw[64]; jj_node **more; const char **more_kw; int n, cap; } jj_vec;
jj_node *jj_parse_expr(jj_parser *p);
/* expr, expr, ... (a tuple when there is a comma); with_cond: items may be `a if b else c`. */
jj_node *jj_parse_tuple(jj_parser *p, int with_cond);
/* The current token (EOF past the end). Borrowed. */
const jj_token *jj_p_cur(jj_parser *p);
int jj_p_is_op(jj_parser *p, const char *op);
int jj_p_is_name(jj_parser *p, const char *name);
int jj_p_accept_op(jj_parser *p, const char *op);
int jj_p_accept_name(jj_parser *p, const char *name);
int jj_p_expect_op(jj_parser *p, const char *op);
int jj_p_expect_end(jj_parser *p);
/* A syntax error (E_FORMAT) at the current token: fmt has one %s for what. */
int jj_p_fail(jj_parser *p, const char *fmt, const char *what);
/* The current token as a message shows it. Borrowed (arena). */
const char *jj_p_tok_text(jj_parser *p);
/* A new node at the current line; the token's text as a NUL-terminated arena string. */
jj_node *jj_p_node(jj_parser *p, jj_node_kind kind);
const char *jj_p_name_str(jj_parser *p, const jj_token *t);
int jj_p_vec_push(jj_parser *p, jj_vec *v, jj_node *n, const char *kw);
int jj_p_vec_into(jj_parser *p, jj_vec *v, jj_node *n);

/* ---- jinja_filters.c ---- */
/* Applies filter name to v with args (kw_names[i] NULL: positional). */
int jj_filter(jj_state *st, const char *name, jj_value v, const jj_value *args, const char **kw_names,
              int n_args, jj_value *out);
/* str(v) with & < > " ' as HTML entities (markupsafe's escape), as a new string. */
int jj_escape_html(jj_state *st, jj_value v, jj_value *out);
/* Whether a filter / test of that name is implemented (the parser refuses others). */
int jj_filter_known(const char *name);
int jj_test_known(const char *name);
/* Runs test name on v; *result 0/1. */
int jj_test(jj_state *st, const char *name, jj_value v, const jj_value *args, int n_args, int *result);

/* ---- jinja_eval.c ---- */
/* Renders body into the state's buffer with the variables of root already set. */
int jj_eval_template(jj_state *st, const jj_node *body);
/* Scopes: a frame is a list of names bound in one scope. */
typedef struct jj_frame jj_frame;
jj_frame *jj_frame_push(jj_state *st, jj_frame *parent);
int jj_frame_set(jj_state *st, jj_frame *f, const char *name, jj_value v);

#endif /* LORAJIT_JINJA_H */
