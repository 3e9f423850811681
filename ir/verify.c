/* verify.c — the IR's rules, in one place.
 *
 * ir_check_node() holds the per-op rules (arity, dtypes, shapes, attributes) and is
 * called by every builder as it appends a node and again by ir_verify(). ir_verify()
 * adds the whole-graph rules: node ids, inputs defined before use, in-place inputs
 * with exactly one consumer, exactly one OUTPUT fed by a MATMUL, weight ids and
 * site ids numbered 0..n-1 once each.
 * Inputs: a graph. Outputs: LORAJIT_OK, or the first error recorded on the graph
 * (LORAJIT_E_SHAPE for shape rules, LORAJIT_E_COMPILE for a malformed graph). */
#include <math.h>
#include <stdarg.h>

#include "ir.h"

/* "[T, 64]" in a compound literal that lives until the end of the enclosing block */
#define SHAPE(n) ir_shape_str((n), (char[48]){0}, 48)


/* Records a shape error on node n and returns it. */
__attribute__((format(printf, 3, 4)))
static lorajit_status bad(ir_graph *g, const ir_node *n, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ir_error(g, n, LORAJIT_E_SHAPE, "%s", msg);
    return LORAJIT_E_SHAPE;
}

/* an activation [T, cols] f32 */
static bool is_act(const ir_node *x) {
    return x->dtype == IR_F32 && x->ndim == 2 && x->shape[0] == IR_T && x->shape[1] > 0;
}
/* a weight vector [rows] f32 */
static bool is_vec(const ir_node *x) {
    return x->dtype == IR_F32 && x->ndim == 1 && x->shape[0] > 0;
}
/* a weight matrix [rows, cols] f32, f16 or bf16 */
static bool is_mat(const ir_node *x) {
    return (x->dtype == IR_F32 || x->dtype == IR_F16 || x->dtype == IR_BF16) && x->ndim == 2 &&
           x->shape[0] > 0 && x->shape[1] > 0;
}

static lorajit_status need_act(ir_graph *g, const ir_node *n, const char *role, const ir_node *x) {
    if (is_act(x)) return LORAJIT_OK;
    return bad(g, n, "%s '%s' is %s %s, expected an activation [T, cols] f32", role, x->name,
               SHAPE(x), ir_dtype_name(x->dtype));
}

/* the node's own shape must be [T, cols] f32 */
static lorajit_status need_out(ir_graph *g, const ir_node *n, int64_t cols) {
    if (n->dtype == IR_F32 && n->ndim == 2 && n->shape[0] == IR_T && n->shape[1] == cols)
        return LORAJIT_OK;
    return bad(g, n, "result is %s %s, expected [T, %lld] f32", SHAPE(n), ir_dtype_name(n->dtype),
               (long long)cols);
}

#define TRY(x) do { lorajit_status s_ = (x); if (s_ != LORAJIT_OK) return s_; } while (0)

lorajit_status ir_check_node(ir_graph *g, const ir_node *n) {
    if ((unsigned)n->op >= IR_OP_COUNT) {
        ir_error(g, n, LORAJIT_E_COMPILE, "unknown op %d", (int)n->op);
        return LORAJIT_E_COMPILE;
    }
    if (n->n_in != ir_op_arity(n->op)) {
        ir_error(g, n, LORAJIT_E_COMPILE, "has %d inputs, the op takes %d", n->n_in,
                 ir_op_arity(n->op));
        return LORAJIT_E_COMPILE;
    }
    for (int j = 0; j < n->n_in; j++) {
        if (!n->in[j]) {
            ir_error(g, n, LORAJIT_E_COMPILE, "input %d is missing", j);
            return LORAJIT_E_COMPILE;
        }
    }
    const ir_node *a = n->in[0], *b = n->in[1], *c = n->in[2];
    switch (n->op) {
    case IR_OP_INPUT:
        if (n->dtype != IR_I32 || n->ndim != 1 || n->shape[0] != IR_T)
            return bad(g, n, "tokens are %s %s, expected [T] i32", SHAPE(n), ir_dtype_name(n->dtype));
        return LORAJIT_OK;
    case IR_OP_WEIGHT:
        if (!n->tensor || n->weight_id < 0) {
            ir_error(g, n, LORAJIT_E_COMPILE, "weight without tensor name or id");
            return LORAJIT_E_COMPILE;
        }
        if (!is_vec(n) && !is_mat(n))
            return bad(g, n, "tensor '%s' is %s %s, expected [rows] f32 or [rows, cols] f32, f16 or "
                       "bf16 with positive sizes", n->tensor, SHAPE(n), ir_dtype_name(n->dtype));
        return LORAJIT_OK;
    case IR_OP_EMBED: /* table [vocab, dim], tokens [T] -> [T, dim] */
        if (!is_mat(a))
            return bad(g, n, "table '%s' is %s, expected a [vocab, dim] weight", a->name, SHAPE(a));
        if (b->dtype != IR_I32 || b->ndim != 1 || b->shape[0] != IR_T)
            return bad(g, n, "tokens '%s' are %s %s, expected [T] i32", b->name, SHAPE(b),
                       ir_dtype_name(b->dtype));
        if (!(n->scale >= 0 && n->scale < INFINITY))
            return bad(g, n, "scale %g must be 0 (none) or positive and finite", (double)n->scale);
        return need_out(g, n, a->shape[1]);
    case IR_OP_RMSNORM: /* x [T, d], w [d] -> [T, d]; per head: x [T, n_heads * hs], w [hs] */
        TRY(need_act(g, n, "x", a));
        if (n->head_size > 0) {
            if (n->n_heads <= 0 || a->shape[1] != (int64_t)n->n_heads * n->head_size ||
                !is_vec(b) || b->shape[0] != n->head_size)
                return bad(g, n, "x '%s' %s and weight '%s' %s are not [T, %d * %d] and [%d]", a->name,
                           SHAPE(a), b->name, SHAPE(b), n->n_heads, n->head_size, n->head_size);
        } else if (!is_vec(b) || b->shape[0] != a->shape[1])
            return bad(g, n, "x '%s' %s and weight '%s' %s disagree on d", a->name, SHAPE(a),
                       b->name, SHAPE(b));
        if (!(n->eps > 0))
            return bad(g, n, "eps %g must be positive", (double)n->eps);
        if (!(n->w_offset == 0 || n->w_offset == 1))
            return bad(g, n, "weight offset %g must be 0 or 1 (Gemma)", (double)n->w_offset);
        return need_out(g, n, a->shape[1]);
    case IR_OP_MATMUL: /* x [T, K], W [N, K] -> [T, N] */
        TRY(need_act(g, n, "x", a));
        if (!is_mat(b) || b->shape[1] != a->shape[1])
            return bad(g, n, "x '%s' %s and W '%s' %s disagree on K (x [T, K], W [N, K])",
                       a->name, SHAPE(a), b->name, SHAPE(b));
        return need_out(g, n, b->shape[0]);
    case IR_OP_BIAS_ADD: /* y [T, N], b [N] -> [T, N] */
        TRY(need_act(g, n, "y", a));
        if (!is_vec(b) || b->shape[0] != a->shape[1])
            return bad(g, n, "y '%s' %s and bias '%s' %s disagree on N", a->name, SHAPE(a),
                       b->name, SHAPE(b));
        return need_out(g, n, a->shape[1]);
    case IR_OP_LORA: /* y [T, N], x [T, K] -> [T, N] */
        TRY(need_act(g, n, "y", a));
        TRY(need_act(g, n, "x", b));
        if (n->site < 0 || n->module < 0) {
            ir_error(g, n, LORAJIT_E_COMPILE, "site %d / module %d not set", n->site, n->module);
            return LORAJIT_E_COMPILE;
        }
        return need_out(g, n, a->shape[1]);
    case IR_OP_ROPE: /* x [T, n_heads * head_size] -> same */
        TRY(need_act(g, n, "x", a));
        if (n->n_heads <= 0 || n->head_size <= 0 || n->head_size % 2 != 0)
            return bad(g, n, "n_heads %d and head_size %d must be positive, head_size even",
                       n->n_heads, n->head_size);
        if (a->shape[1] != (int64_t)n->n_heads * n->head_size)
            return bad(g, n, "x '%s' %s is not [T, n_heads * head_size] = [T, %d * %d]", a->name,
                       SHAPE(a), n->n_heads, n->head_size);
        if (!(n->rope_theta > 0))
            return bad(g, n, "rope theta %g must be positive", (double)n->rope_theta);
        return need_out(g, n, a->shape[1]);
    case IR_OP_ATTENTION: /* q [T, n_heads * hs], k, v [T, n_kv_heads * hs] -> [T, n_heads * hs] */
        TRY(need_act(g, n, "q", a));
        TRY(need_act(g, n, "k", b));
        TRY(need_act(g, n, "v", c));
        if (n->n_heads <= 0 || n->n_kv_heads <= 0 || n->head_size <= 0 ||
            n->n_heads % n->n_kv_heads != 0)
            return bad(g, n, "n_heads %d must be a positive multiple of n_kv_heads %d, "
                       "head_size %d positive", n->n_heads, n->n_kv_heads, n->head_size);
        if (n->window < 0)
            return bad(g, n, "sliding window %d must be 0 (none) or positive", n->window);
        if (a->shape[1] != (int64_t)n->n_heads * n->head_size)
            return bad(g, n, "q '%s' %s is not [T, n_heads * head_size] = [T, %d * %d]", a->name,
                       SHAPE(a), n->n_heads, n->head_size);
        if (b->shape[1] != (int64_t)n->n_kv_heads * n->head_size ||
            c->shape[1] != b->shape[1])
            return bad(g, n, "k '%s' %s and v '%s' %s are not both [T, kv_dim] = [T, %d * %d]",
                       b->name, SHAPE(b), c->name, SHAPE(c), n->n_kv_heads, n->head_size);
        return need_out(g, n, a->shape[1]);
    case IR_OP_SILU_MUL: /* gate, up [T, hidden_dim] -> [T, hidden_dim] */
    case IR_OP_GELU_MUL:
        TRY(need_act(g, n, "gate", a));
        TRY(need_act(g, n, "up", b));
        if (a->shape[1] != b->shape[1])
            return bad(g, n, "gate '%s' %s and up '%s' %s differ", a->name, SHAPE(a), b->name,
                       SHAPE(b));
        return need_out(g, n, a->shape[1]);
    case IR_OP_ADD: /* a, b [T, dim] -> [T, dim] */
        TRY(need_act(g, n, "a", a));
        TRY(need_act(g, n, "b", b));
        if (a->shape[1] != b->shape[1])
            return bad(g, n, "a '%s' %s and b '%s' %s differ", a->name, SHAPE(a), b->name,
                       SHAPE(b));
        return need_out(g, n, a->shape[1]);
    case IR_OP_SLICE: /* x [T, N] -> x[:, col0 : col0 + cols] */
        TRY(need_act(g, n, "x", a));
        if (n->col0 < 0 || n->shape[1] <= 0 || n->col0 > a->shape[1] - n->shape[1])
            return bad(g, n, "columns %lld..%lld are not inside x '%s' %s", (long long)n->col0,
                       (long long)(n->col0 + n->shape[1]), a->name, SHAPE(a));
        return need_out(g, n, n->shape[1]);
    case IR_OP_OUTPUT: /* logits [T, vocab] */
        TRY(need_act(g, n, "logits", a));
        return need_out(g, n, a->shape[1]);
    case IR_OP_COUNT: /* not an op; rejected above */
        break;
    }
    ir_error(g, n, LORAJIT_E_COMPILE, "unknown op %d", (int)n->op);
    return LORAJIT_E_COMPILE;
}

/* Records a malformed-graph error on node n (NULL: the graph) and returns it. */
#define BROKEN(n, ...) \
    (ir_error(g, (n), LORAJIT_E_COMPILE, __VA_ARGS__), g->status)

lorajit_status ir_verify(ir_graph *g) {
    if (g->status != LORAJIT_OK) return g->status;
    int nn = g->n_nodes;
    /* per node: consumers (edges); per weight / site id: times seen */
    int *consumers = ir_alloc(g, sizeof(int) * (size_t)(nn + 1));
    int *seen_w = ir_alloc(g, sizeof(int) * (size_t)(g->n_weights + 1));
    int *seen_s = ir_alloc(g, sizeof(int) * (size_t)(g->n_sites + 1));
    if (!consumers || !seen_w || !seen_s) {
        ir_error(g, NULL, LORAJIT_E_NOMEM, "out of memory verifying");
        return g->status;
    }
    const ir_node *output = NULL;
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        if (!n) return BROKEN(NULL, "node %d is missing", i);
        if (n->id != i) return BROKEN(n, "is at index %d but has id %d", i, n->id);
        if (ir_check_node(g, n) != LORAJIT_OK) return g->status;
        for (int j = 0; j < n->n_in; j++) {
            const ir_node *x = n->in[j];
            if (x->id < 0 || x->id >= i || g->nodes[x->id] != x)
                return BROKEN(n, "input %d '%s' (id %d) is not an earlier node of this graph", j,
                              x->name, x->id);
            consumers[x->id]++;
        }
        switch (n->op) {
        case IR_OP_WEIGHT:
            if (n->weight_id >= g->n_weights || seen_w[n->weight_id]++)
                return BROKEN(n, "weight id %d is out of range 0..%d or taken twice", n->weight_id,
                              g->n_weights - 1);
            break;
        case IR_OP_LORA:
            if (n->site >= g->n_sites || seen_s[n->site]++)
                return BROKEN(n, "site id %d is out of range 0..%d or taken twice", n->site,
                              g->n_sites - 1);
            break;
        case IR_OP_OUTPUT:
            if (output)
                return BROKEN(n, "is a second output (the first is '%s')", output->name);
            if (n->in[0]->op != IR_OP_MATMUL)
                return BROKEN(n, "input '%s' is a %s, expected a matmul", n->in[0]->name,
                              ir_op_name(n->in[0]->op));
            output = n;
            break;
        case IR_OP_INPUT: case IR_OP_EMBED: case IR_OP_RMSNORM: case IR_OP_MATMUL:
        case IR_OP_BIAS_ADD: case IR_OP_ROPE: case IR_OP_ATTENTION: case IR_OP_SILU_MUL:
        case IR_OP_ADD: case IR_OP_SLICE: case IR_OP_GELU_MUL: case IR_OP_COUNT:
            break;
        }
    }
    /* in-place ops overwrite input 0, so nothing else may read it */
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        if (ir_op_inplace(n->op) && consumers[n->in[0]->id] != 1)
            return BROKEN(n, "writes into '%s' in place, which has %d consumers (must be 1)",
                          n->in[0]->name, consumers[n->in[0]->id]);
    }
    if (!output) return BROKEN(NULL, "no output node");
    if (g->seq_len <= 0) return BROKEN(NULL, "seq_len %lld must be positive", (long long)g->seq_len);
    if (g->n_sites > 0 && g->r_max <= 0)
        return BROKEN(NULL, "r_max %d must be positive when there are LoRA sites", g->r_max);
    for (int w = 0; w < g->n_weights; w++)
        if (!seen_w[w]) return BROKEN(NULL, "weight id %d has no node", w);
    for (int s = 0; s < g->n_sites; s++)
        if (!seen_s[s]) return BROKEN(NULL, "site id %d has no node", s);
    return LORAJIT_OK;
}
