/* graph.c — the graph's arena, the graph itself, the op tables and every builder.
 *
 * Inputs: builder calls from a front end (names, shapes, attributes).
 * Outputs: an ir_graph whose nodes, names and strings live in one chunked arena
 * and are freed all at once by ir_graph_free(). Builders append a node, set its
 * shape from its inputs and check it with ir_check_node() (verify.c, the same
 * rules ir_verify applies); they compute nothing. The first error is recorded on
 * the graph (status + message naming the node and its inputs).
 * A node's layer is parsed from its name ("layers.N." prefix); ir_weight takes it
 * explicitly. This file is the only place in ir/ that calls free(). */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ir.h"

/* ---- op tables (from ops.h) ---- */

static const char *const op_names[] = {
#define IR_OP(name, n_in, inplace) #name,
#include "ops.h"
#undef IR_OP
};
static const int op_arity[] = {
#define IR_OP(name, n_in, inplace) n_in,
#include "ops.h"
#undef IR_OP
};
static const bool op_inplace[] = {
#define IR_OP(name, n_in, inplace) inplace,
#include "ops.h"
#undef IR_OP
};
/* lower-case spellings for printing, e.g. "matmul"; must follow ops.h's order
 * (ir_op_name asserts it against op_names) */
static const char *const op_lower[] = {
    "input", "weight", "embed", "rmsnorm", "matmul", "bias_add", "lora",
    "rope", "attention", "silu_mul", "add", "slice", "gelu_mul", "output",
};
static_assert(sizeof op_names / sizeof op_names[0] == IR_OP_COUNT, "op name table");
static_assert(sizeof op_arity / sizeof op_arity[0] == IR_OP_COUNT, "op arity table");
static_assert(sizeof op_inplace / sizeof op_inplace[0] == IR_OP_COUNT, "op inplace table");
static_assert(sizeof op_lower / sizeof op_lower[0] == IR_OP_COUNT, "op lower-case name table");

const char *ir_op_name(ir_op op) {
    IR_ASSERT((unsigned)op < IR_OP_COUNT);
    IR_ASSERT(strcasecmp(op_lower[op], op_names[op]) == 0); /* op_lower follows ops.h */
    return op_lower[op];
}

int ir_op_arity(ir_op op) {
    IR_ASSERT((unsigned)op < IR_OP_COUNT);
    return op_arity[op];
}

bool ir_op_inplace(ir_op op) {
    IR_ASSERT((unsigned)op < IR_OP_COUNT);
    return op_inplace[op];
}

void ir_abort(const char *file, int line, const char *what) {
    fprintf(stderr, "%s:%d: lorajit internal error: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

/* ---- arena: chunked bump allocator ---- */

#define ARENA_CHUNK (64 * 1024) /* bytes of a regular chunk; bigger requests get their own */
#define ARENA_ALIGN 16

typedef struct arena_chunk arena_chunk;
struct arena_chunk {
    arena_chunk *next;
    size_t size, used;                       /* bytes of data[] */
    _Alignas(ARENA_ALIGN) unsigned char data[]; /* [size] */
};

struct ir_arena {
    arena_chunk *head; /* chunk being filled; older chunks follow ->next */
    ir_node sink;      /* returned by builders when memory runs out (never in g->nodes) */
};

/* Zeroed arena memory. Borrowed; valid until ir_graph_free(). NULL when out of memory. */
static void *arena_alloc(ir_arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (n == 0) n = ARENA_ALIGN;
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        if (a->head && size > ARENA_CHUNK) {
            /* a big one-off: keep filling the current chunk afterwards */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void *ir_alloc(ir_graph *g, size_t n) {
    return arena_alloc(g->arena, n);
}

const char *ir_strdup(ir_graph *g, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(g->arena, n);
    if (!p) return NULL;
    memcpy(p, s, n);
    return p;
}

/* ---- graph ---- */

ir_graph *ir_graph_new(int r_max, int64_t seq_len) {
    ir_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->arena = calloc(1, sizeof *g->arena);
    g->cap_nodes = 256;
    g->nodes = malloc(sizeof *g->nodes * (size_t)g->cap_nodes);
    if (!g->arena || !g->nodes) {
        ir_graph_free(g);
        return NULL;
    }
    g->arena->sink.name = "(out of memory)";
    g->arena->sink.id = -1;
    g->arena->sink.layer = -1;
    g->r_max = r_max;
    g->seq_len = seq_len;
    g->lora_t_off = -1;
    g->status = LORAJIT_OK;
    return g;
}

void ir_graph_free(ir_graph *g) {
    if (!g) return;
    if (g->arena) {
        arena_chunk *c = g->arena->head;
        while (c) {
            arena_chunk *next = c->next;
            free(c);
            c = next;
        }
        free(g->arena);
    }
    free(g->nodes);
    free(g);
}

void ir_error(ir_graph *g, const ir_node *n, lorajit_status s, const char *fmt, ...) {
    IR_ASSERT(s != LORAJIT_OK);
    if (g->status != LORAJIT_OK) return; /* keep the first error */
    g->status = s;
    int k;
    if (n)
        k = snprintf(g->msg, sizeof g->msg, "node '%s' (%s): ", n->name ? n->name : "?",
                     (unsigned)n->op < IR_OP_COUNT ? op_lower[n->op] : "?");
    else
        k = snprintf(g->msg, sizeof g->msg, "graph: ");
    if (k < 0 || (size_t)k >= sizeof g->msg) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->msg + k, sizeof g->msg - (size_t)k, fmt, ap);
    va_end(ap);
}

const char *ir_shape_str(const ir_node *n, char *buf, size_t cap) {
    char d[2][24];
    for (int i = 0; i < 2; i++) {
        if (n->shape[i] == IR_T)
            snprintf(d[i], sizeof d[i], "T");
        else
            snprintf(d[i], sizeof d[i], "%lld", (long long)n->shape[i]);
    }
    if (n->ndim == 1)
        snprintf(buf, cap, "[%s]", d[0]);
    else
        snprintf(buf, cap, "[%s, %s]", d[0], d[1]);
    return buf;
}

/* Layer index from a name that starts "layers.N." (or is "layers.N"); -1 otherwise. */
static int layer_from_name(const char *s) {
    if (strncmp(s, "layers.", 7) != 0) return -1;
    s += 7;
    if (*s < '0' || *s > '9') return -1;
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > 1000000) return -1;
    }
    return (*s == '.' || *s == '\0') ? (int)v : -1;
}

/* Appends a node of op named name (NULL: the op's name). On out-of-memory records
 * LORAJIT_E_NOMEM and returns the graph's sink node. Borrowed; valid until ir_graph_free(). */
static ir_node *node_new(ir_graph *g, ir_op op, const char *name) {
    if (!name) name = op_lower[op];
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes * 2;
        ir_node **nodes = realloc(g->nodes, sizeof *nodes * (size_t)cap);
        if (!nodes) goto nomem;
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    ir_node *n = arena_alloc(g->arena, sizeof *n);
    const char *copy = n ? ir_strdup(g, name) : NULL;
    if (!copy) goto nomem;
    n->op = op;
    n->id = g->n_nodes;
    n->n_in = op_arity[op];
    n->dtype = IR_F32;
    n->ndim = 2;
    n->shape[0] = IR_T;
    n->name = copy;
    n->layer = layer_from_name(copy);
    n->weight_id = -1;
    n->site = -1;
    n->module = -1;
    n->buf = IR_BUF_NONE;
    n->buf_off = -1;
    n->last_use = -1;
    g->nodes[g->n_nodes++] = n;
    return n;
nomem:
    ir_error(g, NULL, LORAJIT_E_NOMEM, "out of memory adding '%s'", name);
    return &g->arena->sink;
}

/* An activation [T, cols] named name with inputs a, b, c (NULL past the arity). */
static ir_node *act_new(ir_graph *g, ir_op op, const char *name, int64_t cols, ir_node *a,
                        ir_node *b, ir_node *c) {
    ir_node *n = node_new(g, op, name);
    n->in[0] = a;
    n->in[1] = b;
    n->in[2] = c;
    n->shape[1] = cols;
    return n;
}

/* cols / rows of an input, 0 when it is missing or not 2-D (ir_check_node reports it) */
static int64_t cols_of(const ir_node *x) {
    return x && x->ndim == 2 ? x->shape[1] : 0;
}
static int64_t rows_of(const ir_node *x) {
    return x && x->ndim == 2 ? x->shape[0] : 0;
}

/* ---- builders: one per op, in ops.h order ---- */

ir_node *ir_input(ir_graph *g, const char *name) {
    ir_node *n = node_new(g, IR_OP_INPUT, name);
    n->dtype = IR_I32;
    n->ndim = 1;
    n->shape[0] = IR_T;
    n->shape[1] = 0;
    ir_check_node(g, n);
    return n;
}

ir_node *ir_weight(ir_graph *g, const char *tensor, int layer, int64_t rows, int64_t cols) {
    ir_node *n = node_new(g, IR_OP_WEIGHT, tensor);
    n->tensor = n->name; /* the node is named by its tensor */
    n->layer = layer;
    n->ndim = cols ? 2 : 1;
    n->shape[0] = rows;
    n->shape[1] = cols;
    n->weight_id = g->n_weights++;
    ir_check_node(g, n);
    return n;
}

void ir_set_weight_dtype(ir_graph *g, ir_node *w, ir_dtype dtype) {
    if (!w || g->status != LORAJIT_OK) return;
    if (w->op != IR_OP_WEIGHT || dtype == IR_I32 || (dtype != IR_F32 && w->ndim != 2)) {
        ir_error(g, w, LORAJIT_E_COMPILE, "'%s' cannot hold %s (f16 and bf16 are for weight matrices)",
                 w->name, ir_dtype_name(dtype));
        return;
    }
    w->dtype = dtype;
}

const char *ir_dtype_name(ir_dtype d) {
    switch (d) {
    case IR_F32: return "f32";
    case IR_I32: return "i32";
    case IR_F16: return "f16";
    case IR_BF16: return "bf16";
    }
    return "?";
}

/* table [vocab, dim], tokens [T] -> [T, dim]; scale 0: the rows as stored */
ir_node *ir_embed_scaled(ir_graph *g, ir_node *table, ir_node *tokens, float scale, const char *name) {
    ir_node *n = act_new(g, IR_OP_EMBED, name, cols_of(table), table, tokens, NULL);
    n->scale = scale;
    ir_check_node(g, n);
    return n;
}

ir_node *ir_embed(ir_graph *g, ir_node *table, ir_node *tokens, const char *name) {
    return ir_embed_scaled(g, table, tokens, 0.0f, name);
}

/* x [T, d], w [d] -> [T, d]; the weight taken as w + w_offset (Gemma: 1) */
ir_node *ir_rmsnorm_offset(ir_graph *g, ir_node *x, ir_node *w, float eps, float w_offset, const char *name) {
    ir_node *n = act_new(g, IR_OP_RMSNORM, name, cols_of(x), x, w, NULL);
    n->eps = eps;
    n->w_offset = w_offset;
    ir_check_node(g, n);
    return n;
}

ir_node *ir_rmsnorm(ir_graph *g, ir_node *x, ir_node *w, float eps, const char *name) {
    return ir_rmsnorm_offset(g, x, w, eps, 0.0f, name);
}

/* x [T, n_heads * head_size], w [head_size] -> same shape, each head normalised alone */
ir_node *ir_head_rmsnorm(ir_graph *g, ir_node *x, ir_node *w, int n_heads, int head_size, float eps,
                         const char *name) {
    ir_node *n = act_new(g, IR_OP_RMSNORM, name, cols_of(x), x, w, NULL);
    n->eps = eps;
    n->n_heads = n_heads;
    n->head_size = head_size;
    ir_check_node(g, n);
    return n;
}

/* x [T, K], W [N, K] -> [T, N] */
ir_node *ir_matmul(ir_graph *g, ir_node *x, ir_node *w, const char *name) {
    ir_node *n = act_new(g, IR_OP_MATMUL, name, rows_of(w), x, w, NULL);
    ir_check_node(g, n);
    return n;
}

/* y [T, N], b [N] -> [T, N], in place */
ir_node *ir_bias_add(ir_graph *g, ir_node *y, ir_node *b, const char *name) {
    ir_node *n = act_new(g, IR_OP_BIAS_ADD, name, cols_of(y), y, b, NULL);
    ir_check_node(g, n);
    return n;
}

/* y [T, N], x [T, K] -> [T, N], in place; takes the next site id */
ir_node *ir_lora(ir_graph *g, ir_node *y, ir_node *x, int module, const char *name) {
    ir_node *n = act_new(g, IR_OP_LORA, name, cols_of(y), y, x, NULL);
    n->module = module;
    n->site = g->n_sites++;
    ir_check_node(g, n);
    return n;
}

/* x [T, n_heads * head_size] -> same, in place */
ir_node *ir_rope(ir_graph *g, ir_node *x, int n_heads, int head_size, float theta,
                 const char *name) {
    ir_node *n = act_new(g, IR_OP_ROPE, name, cols_of(x), x, NULL, NULL);
    n->n_heads = n_heads;
    n->head_size = head_size;
    n->rope_theta = theta;
    ir_check_node(g, n);
    return n;
}

/* q [T, n_heads * head_size], k, v [T, n_kv_heads * head_size] -> [T, n_heads * head_size] */
ir_node *ir_attention(ir_graph *g, ir_node *q, ir_node *k, ir_node *v, int n_heads,
                      int n_kv_heads, int head_size, int window, const char *name) {
    ir_node *n = act_new(g, IR_OP_ATTENTION, name, cols_of(q), q, k, v);
    n->window = window;
    n->n_heads = n_heads;
    n->n_kv_heads = n_kv_heads;
    n->head_size = head_size;
    ir_check_node(g, n);
    return n;
}

/* gate, up [T, hidden_dim] -> [T, hidden_dim] */
ir_node *ir_silu_mul(ir_graph *g, ir_node *gate, ir_node *up, const char *name) {
    ir_node *n = act_new(g, IR_OP_SILU_MUL, name, cols_of(gate), gate, up, NULL);
    ir_check_node(g, n);
    return n;
}

/* a, b [T, dim] -> [T, dim] */
ir_node *ir_add(ir_graph *g, ir_node *a, ir_node *b, const char *name) {
    ir_node *n = act_new(g, IR_OP_ADD, name, cols_of(a), a, b, NULL);
    ir_check_node(g, n);
    return n;
}

/* x [T, N] -> x[:, col0 : col0 + cols] as [T, cols] */
ir_node *ir_slice(ir_graph *g, ir_node *x, int64_t col0, int64_t cols, const char *name) {
    ir_node *n = act_new(g, IR_OP_SLICE, name, cols, x, NULL, NULL);
    n->col0 = col0;
    ir_check_node(g, n);
    return n;
}

/* gate, up [T, hidden_dim] -> gelu_tanh(gate) * up, [T, hidden_dim] */
ir_node *ir_gelu_mul(ir_graph *g, ir_node *gate, ir_node *up, const char *name) {
    ir_node *n = act_new(g, IR_OP_GELU_MUL, name, cols_of(gate), gate, up, NULL);
    ir_check_node(g, n);
    return n;
}

/* logits [T, vocab] -> marks them as the call's output */
ir_node *ir_output(ir_graph *g, ir_node *logits, const char *name) {
    ir_node *n = act_new(g, IR_OP_OUTPUT, name, cols_of(logits), logits, NULL, NULL);
    ir_check_node(g, n);
    return n;
}
