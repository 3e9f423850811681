/* plan.c — buffer planning: where every node's data lives.
 *
 * Inputs: a verified graph. Outputs: per node n_uses, last_use, buf and buf_off;
 * per graph scratch_per_token, lora_t_off, wconv_floats and scratch_fixed.
 * An in-place op shares the buffer of its chain's root (follow in[0] through
 * in-place ops); the root's region stays live until the last consumer of any node
 * in the chain has run. Other activations get scratch regions measured in floats
 * per token (a node's cols), first fit among regions that are free at that node,
 * so a node never gets a region that one of its own inputs still uses. */
#include "ir.h"

/* a scratch region [off, off + size) floats per token, live until node `end` has run */
typedef struct live_region {
    int64_t off, size;
    int end;
} live_region;

/* Drops regions whose chain ended before node i, then places size floats per token
 * at the lowest offset that fits between the live ones (kept sorted by offset).
 * Returns the offset; *n_live and live[] are updated. */
static int64_t first_fit(live_region *live, int *n_live, int i, int end, int64_t size) {
    int k = 0;
    for (int j = 0; j < *n_live; j++)
        if (live[j].end >= i) live[k++] = live[j];
    int64_t off = 0;
    int pos = k;
    for (int j = 0; j < k; j++) {
        if (live[j].off - off >= size) {
            pos = j;
            break;
        }
        off = live[j].off + live[j].size;
    }
    for (int j = k; j > pos; j--) live[j] = live[j - 1];
    live[pos] = (live_region){off, size, end};
    *n_live = k + 1;
    return off;
}

lorajit_status ir_plan(ir_graph *g) {
    if (g->status != LORAJIT_OK) return g->status;
    int nn = g->n_nodes;
    int *root = ir_alloc(g, sizeof(int) * (size_t)(nn + 1)); /* [n_nodes] chain root of each node */
    int *end = ir_alloc(g, sizeof(int) * (size_t)(nn + 1));  /* [n_nodes] for roots: last node needing the buffer */
    live_region *live = ir_alloc(g, sizeof(live_region) * (size_t)(nn + 1));
    if (!root || !end || !live) {
        ir_error(g, NULL, LORAJIT_E_NOMEM, "out of memory planning buffers");
        return g->status;
    }

    /* uses and last uses (nodes are in execution order) */
    const ir_node *logits = NULL;
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        n->n_uses = 0;
        n->last_use = -1;
        n->buf = IR_BUF_NONE;
        n->buf_off = -1;
        for (int j = 0; j < n->n_in; j++) {
            n->in[j]->n_uses++;
            n->in[j]->last_use = i;
        }
        if (n->op == IR_OP_OUTPUT) logits = n->in[0];
    }
    IR_ASSERT(logits); /* ir_verify guarantees one OUTPUT */

    /* in-place chains (last_use is final here): a root's buffer lives until its
     * chain's last member or the last use of any member */
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        root[i] = ir_op_inplace(n->op) ? root[n->in[0]->id] : i;
        end[i] = i;
        int r = root[i];
        if (end[r] < i) end[r] = i;
        if (end[r] < n->last_use) end[r] = n->last_use;
    }
    /* buffers, in execution order */
    int n_live = 0;
    int64_t total = 0; /* floats per token */
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        if (n->op == IR_OP_INPUT) {
            n->buf = IR_BUF_INPUT;
        } else if (n->op == IR_OP_WEIGHT) {
            n->buf = IR_BUF_WEIGHT;
        } else if (n->op == IR_OP_OUTPUT || n == logits) {
            n->buf = IR_BUF_OUTPUT;
        } else if (ir_op_inplace(n->op)) {
            const ir_node *r = g->nodes[root[i]];
            IR_ASSERT(r->buf == IR_BUF_SCRATCH); /* verify: chains start at activations */
            n->buf = IR_BUF_INPLACE;
            n->buf_off = r->buf_off;
        } else {
            n->buf = IR_BUF_SCRATCH;
            n->buf_off = first_fit(live, &n_live, i, end[i], n->shape[1]);
            if (total < n->buf_off + n->shape[1]) total = n->buf_off + n->shape[1];
        }
    }

    /* LoRA intermediate t [T, r_max] after the activations; then, fixed: one attention
     * row and the block where matmuls over 16-bit weights split rows of x */
    g->lora_t_off = g->n_sites > 0 ? total : -1;
    g->scratch_per_token = total + (g->n_sites > 0 ? g->r_max : 0);
    g->wconv_floats = 0;
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        if (n->op != IR_OP_MATMUL || n->in[1]->dtype == IR_F32) continue;
        int64_t out = n->shape[1], in = n->in[0]->shape[1];
        int64_t need = ir_wconv_rows(out, in) * in;
        if (g->wconv_floats < need) g->wconv_floats = need;
    }
    for (int i = 0; i < nn && g->lora_dtype != IR_F32; i++) { /* 16-bit slots widened for BLAS (cg_lora.c) */
        const ir_node *n = g->nodes[i];
        int64_t need = n->op == IR_OP_LORA ? (int64_t)g->r_max * (n->in[1]->shape[1] + n->shape[1]) : 0;
        if (g->wconv_floats < need) g->wconv_floats = need;
    }
    g->scratch_fixed = g->seq_len + g->wconv_floats;
    return LORAJIT_OK;
}
