/* ir.h — lorajit's graph IR: one plain graph struct, ops from ops.h, an arena.
 *
 * Conventions (stated once, used everywhere):
 *  - Row-major, PyTorch/safetensors order: a weight is [out, in] (nn.Linear).
 *  - Activations are [T, cols]: T (IR_T in shape[0]) is the token count of the call,
 *    known only at run time. Everything else is known at compile time.
 *  - Dimension words: dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_size,
 *    kv_dim, seq_len, vocab_size, r_max, n_slots.
 *  - Nodes are appended in execution order (a node's inputs come before it).
 *
 * Ownership: ir_graph_new() returns a graph the caller owns (free with
 * ir_graph_free()); nodes, names and strings live in the graph's arena and are
 * freed all at once. ir/ depends on nothing but the public header's status codes.
 */
#ifndef LORAJIT_IR_H
#define LORAJIT_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lorajit.h"

#define IR_ASSERT(x) \
    ((x) ? (void)0 : ir_abort(__FILE__, __LINE__, #x))
void ir_abort(const char *file, int line, const char *what); /* bug in lorajit: print, abort */

typedef enum ir_op {
#define IR_OP(name, n_in, inplace) IR_OP_##name,
#include "ops.h"
#undef IR_OP
    IR_OP_COUNT
} ir_op;

/* Element types. Activations are f32, tokens i32; a weight matrix (matmul W, embed
 * table) may be f16 or bf16: the kernels widen it to f32 as they load it. */
typedef enum ir_dtype { IR_F32, IR_I32, IR_F16, IR_BF16 } ir_dtype;

#define IR_T (-1) /* shape[0] of an activation: tokens of the call */

/* Where a node's data lives, decided by ir_plan(). */
typedef enum ir_buf {
    IR_BUF_NONE,    /* not planned yet */
    IR_BUF_INPUT,   /* the call's tokens */
    IR_BUF_WEIGHT,  /* ctx->weights[weight_id] */
    IR_BUF_SCRATCH, /* ctx->scratch + buf_off * T (buf_off in floats per token) */
    IR_BUF_OUTPUT,  /* the caller's logits buffer */
    IR_BUF_INPLACE  /* same buffer as input 0 */
} ir_buf;

typedef struct ir_node ir_node;
struct ir_node {
    ir_op op;
    int id;              /* index in graph->nodes */
    ir_node *in[3];      /* inputs, n_in of them (ops.h arity) */
    int n_in;
    ir_dtype dtype;
    int ndim;            /* 1 or 2 */
    int64_t shape[2];    /* [rows, cols] or [rows]; shape[0] may be IR_T */
    const char *name;    /* HF-style path, e.g. "layers.3.self_attn.q_proj.lora"; arena-owned;
                            a WEIGHT is named by its tensor */
    int layer;           /* transformer layer index, -1 outside the layers: parsed by the
                            builders from a name that starts "layers.N." (ir_weight: its
                            layer argument) */

    /* attributes (which ones apply depends on op) */
    int weight_id;       /* WEIGHT: index into ctx->weights and the layout's weight list */
    const char *tensor;  /* WEIGHT: safetensors tensor name, e.g. "model.norm.weight" */
    float eps;           /* RMSNORM (head_size > 0: each of n_heads heads of x normalised
                            alone with w [head_size], Qwen3's q_norm / k_norm) */
    float w_offset;      /* RMSNORM: the weight is taken as w + w_offset (Gemma: 1; else 0) */
    float scale;         /* EMBED: rows multiplied by it (Gemma: sqrt(dim)); 0: as stored */
    int64_t col0;        /* SLICE: first column of x taken */
    int site;            /* LORA: index into ctx->sites */
    int module;          /* LORA: target module id (runtime's lj_module), opaque to ir/ */
    int n_heads, n_kv_heads, head_size; /* ROPE (n_heads = heads in x), ATTENTION */
    float rope_theta;    /* ROPE */
    int window;          /* ATTENTION: query i sees keys j with i - j < window; 0: all j <= i */

    /* plan (filled by ir_plan) */
    ir_buf buf;
    int64_t buf_off;     /* IR_BUF_SCRATCH: offset in floats per token (IR_BUF_INPLACE: the
                            chain root's, for reference); -1 elsewhere */
    int n_uses;          /* consumers of this node */
    int last_use;        /* id of the last consumer, -1 if none */
};

typedef struct ir_arena ir_arena;

typedef struct ir_graph {
    ir_arena *arena;
    ir_node **nodes;       /* [n_nodes], execution order; array is malloc'd, nodes in arena */
    int n_nodes, cap_nodes;
    int n_weights;         /* WEIGHT nodes, ids 0..n_weights-1 */
    int n_sites;           /* LORA nodes, sites 0..n_sites-1 */
    int r_max;             /* LoRA slot rank */
    int64_t seq_len;       /* max positions (KV cache length) */
    ir_dtype kv_dtype;     /* the KV cache's element type: IR_F32 (ir_graph_new's), IR_F16 or
                              IR_BF16 (set by the front end from the schema's kv_dtype) */
    ir_dtype lora_dtype;   /* the LoRA slots' A and B element type: IR_F32 (ir_graph_new's),
                              IR_F16 or IR_BF16 (the schema's lora_dtype) */
    /* plan totals (filled by ir_plan) */
    int64_t scratch_per_token; /* floats of scratch per token of the call */
    int64_t lora_t_off;        /* LoRA intermediate t [T, r_max] at scratch + lora_t_off * T;
                                  -1 when there are no sites */
    int64_t scratch_fixed;     /* floats independent of T, at scratch + scratch_per_token * T:
                                  one attention row [seq_len], then wconv_floats */
    int64_t wconv_floats;      /* where a prefill matmul over 16-bit weights puts rows of x split
                                  into BF16 parts (compiler/cg_matmul16.c; 2 BF16 = 1 float per
                                  element): max over 16-bit matmuls of ir_wconv_rows(out, in) * in */
    lorajit_status status; /* first error recorded by a builder, LORAJIT_OK if none */
    char msg[512];         /* its message, naming the node(s) */
} ir_graph;

/* ---- graph.c: arena, graph, builders ----
 * Builders append a node, check shapes and record the first error on the graph
 * (status + msg naming the inputs); after an error they return a node anyway so
 * that a front end can keep calling them and check g->status once at the end.
 * Out of memory records LORAJIT_E_NOMEM and returns a sink node that is not in
 * the graph. A node's layer comes from its name: "layers.N.<rest>" gives N. */
ir_graph *ir_graph_new(int r_max, int64_t seq_len); /* Caller owns the result; free with ir_graph_free(). NULL when out of memory. */
void ir_graph_free(ir_graph *g);                     /* NULL does nothing */
const char *ir_strdup(ir_graph *g, const char *s);   /* copy into the arena; borrowed, valid until ir_graph_free; NULL when out of memory */
void *ir_alloc(ir_graph *g, size_t n);               /* n zeroed bytes in the arena (passes' scratch arrays); borrowed, valid until ir_graph_free; NULL when out of memory */
/* Writes "[T, 64]" / "[64]" for n's shape into buf (cap bytes). Borrowed; returns buf. */
const char *ir_shape_str(const ir_node *n, char *buf, size_t cap);
const char *ir_op_name(ir_op op);                    /* static text, e.g. "matmul" */
int ir_op_arity(ir_op op);
bool ir_op_inplace(ir_op op);
/* Formatted error naming node n; keeps the first error only. */
void ir_error(ir_graph *g, const ir_node *n, lorajit_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

ir_node *ir_input(ir_graph *g, const char *name);                                   /* [T] i32 */
ir_node *ir_weight(ir_graph *g, const char *tensor, int layer, int64_t rows, int64_t cols); /* cols 0: 1-D, f32 */
/* Sets the element type of weight w: f32, or f16 / bf16 for a matrix only (else
 * an error on g). */
void ir_set_weight_dtype(ir_graph *g, ir_node *w, ir_dtype dtype);
const char *ir_dtype_name(ir_dtype d); /* "f32", "i32", "f16", "bf16" */
ir_node *ir_embed(ir_graph *g, ir_node *table, ir_node *tokens, const char *name);
/* ir_embed with the rows multiplied by scale (Gemma's sqrt(dim)); 0: as stored */
ir_node *ir_embed_scaled(ir_graph *g, ir_node *table, ir_node *tokens, float scale, const char *name);
ir_node *ir_rmsnorm(ir_graph *g, ir_node *x, ir_node *w, float eps, const char *name);
/* ir_rmsnorm with the weight taken as w + w_offset (Gemma's 1 + w) */
ir_node *ir_rmsnorm_offset(ir_graph *g, ir_node *x, ir_node *w, float eps, float w_offset, const char *name);
ir_node *ir_matmul(ir_graph *g, ir_node *x, ir_node *w, const char *name);
ir_node *ir_bias_add(ir_graph *g, ir_node *y, ir_node *b, const char *name);
ir_node *ir_lora(ir_graph *g, ir_node *y, ir_node *x, int module, const char *name); /* assigns the next site */
/* RMSNorm of each head: x [T, n_heads * head_size], w [head_size] -> [T, n_heads * head_size] */
ir_node *ir_head_rmsnorm(ir_graph *g, ir_node *x, ir_node *w, int n_heads, int head_size, float eps,
                         const char *name);
ir_node *ir_rope(ir_graph *g, ir_node *x, int n_heads, int head_size, float theta, const char *name);
/* window 0: causal; > 0: sliding window (Mistral) */
ir_node *ir_attention(ir_graph *g, ir_node *q, ir_node *k, ir_node *v, int n_heads, int n_kv_heads,
                      int head_size, int window, const char *name);
ir_node *ir_silu_mul(ir_graph *g, ir_node *gate, ir_node *up, const char *name);
ir_node *ir_add(ir_graph *g, ir_node *a, ir_node *b, const char *name);
/* x [T, N] -> x[:, col0 : col0 + cols], [T, cols] (a copy) */
ir_node *ir_slice(ir_graph *g, ir_node *x, int64_t col0, int64_t cols, const char *name);
/* gate, up [T, h] -> gelu_tanh(gate) * up, [T, h] */
ir_node *ir_gelu_mul(ir_graph *g, ir_node *gate, ir_node *up, const char *name);
ir_node *ir_output(ir_graph *g, ir_node *logits, const char *name);

/* ---- verify.c ----
 * ir_check_node: the per-op rules (arity, dtypes, shapes, attributes) of one node
 * against its inputs; every builder calls it, and so does ir_verify. Records a
 * LORAJIT_E_SHAPE (or E_COMPILE for a malformed node) naming n and its inputs.
 * ir_verify: every node, plus ids, inputs before use, in-place inputs with one
 * consumer, one OUTPUT fed by a MATMUL, weight and site numbering. Returns
 * LORAJIT_OK or records the first error on g (and returns g->status if set). */
lorajit_status ir_check_node(ir_graph *g, const ir_node *n);
lorajit_status ir_verify(ir_graph *g);

/* ---- print.c ----
 * Writes a stable text form of g (one line per node, with the plan when done). */
void ir_print(const ir_graph *g, FILE *f);

/* ---- plan.c ----
 * Requires a verified graph. Counts uses, then assigns every node a buffer:
 * weights and input are external, in-place ops share input 0's buffer, OUTPUT's
 * input goes to the caller's logits, other activations get scratch offsets
 * (floats per token) reused once their last consumer has run. Fills
 * g->scratch_per_token, g->lora_t_off (a [T, r_max] region for the LoRA
 * intermediate, when there are sites), g->wconv_floats and g->scratch_fixed (one
 * attention row of seq_len floats, then the wconv block, after the per-token part). */
lorajit_status ir_plan(ir_graph *g);

/* Rows of x [n, in] that a matmul over a 16-bit weight [out, in] splits into BF16 parts
 * at a time: as many as fit in IR_WCONV_FLOATS (at least one, at most out). */
#define IR_WCONV_FLOATS (512 * 1024)
static inline int64_t ir_wconv_rows(int64_t out, int64_t in) {
    int64_t r = IR_WCONV_FLOATS / in;
    return r < 1 ? 1 : r > out ? out : r;
}

#endif /* LORAJIT_IR_H */
