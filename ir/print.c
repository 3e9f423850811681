/* print.c — the stable text form of a graph (golden tests diff it).
 *
 * Inputs: a graph, planned or not. Output: text on a FILE:
 *   # lorajit ir: 70 nodes, 21 weights, 14 sites, r_max 64, seq_len 128
 *   # plan: scratch_per_token 672 (lora_t at 608), scratch_fixed 16512 (wconv 16384)  (when planned)
 *   %6 = matmul(%4, %5)    [T, 64]  f32  layers.0.self_attn.q_proj  layer=0  buf=scratch+128T uses=1 last=%7
 * Columns: value and op with input ids, shape and dtype, name (a weight's name is
 * its tensor), layer=N when the node is in a layer, the op's attributes, then the
 * plan (buffer, uses, last consumer).
 * Floats print with %g; nothing depends on pointers, so the text is reproducible. */
#include <string.h>

#include "ir.h"

/* "  layer=0 site=3 module=0": the layer, then the op's attributes; one case per op */
static void print_attrs(const ir_node *n, FILE *f) {
    char a[128] = "";
    switch (n->op) {
    case IR_OP_WEIGHT:
        snprintf(a, sizeof a, " w=%d", n->weight_id);
        break;
    case IR_OP_EMBED:
        if (n->scale) snprintf(a, sizeof a, " scale=%g", (double)n->scale);
        break;
    case IR_OP_RMSNORM:
        if (n->head_size > 0)
            snprintf(a, sizeof a, " eps=%g heads=%d head_size=%d", (double)n->eps, n->n_heads, n->head_size);
        else
            snprintf(a, sizeof a, " eps=%g", (double)n->eps);
        if (n->w_offset) snprintf(a + strlen(a), sizeof a - strlen(a), " w_offset=%g", (double)n->w_offset);
        break;
    case IR_OP_SLICE:
        snprintf(a, sizeof a, " col0=%lld", (long long)n->col0);
        break;
    case IR_OP_LORA:
        snprintf(a, sizeof a, " site=%d module=%d", n->site, n->module);
        break;
    case IR_OP_ROPE:
        snprintf(a, sizeof a, " heads=%d head_size=%d theta=%g", n->n_heads, n->head_size,
                 (double)n->rope_theta);
        break;
    case IR_OP_ATTENTION:
        snprintf(a, sizeof a, " heads=%d kv_heads=%d head_size=%d%s", n->n_heads, n->n_kv_heads,
                 n->head_size, n->window ? " window=" : "");
        if (n->window) snprintf(a + strlen(a), sizeof a - strlen(a), "%d", n->window);
        break;
    case IR_OP_INPUT: case IR_OP_MATMUL: case IR_OP_BIAS_ADD: case IR_OP_SILU_MUL:
    case IR_OP_ADD: case IR_OP_GELU_MUL: case IR_OP_OUTPUT: case IR_OP_COUNT:
        break;
    }
    if (n->layer >= 0)
        fprintf(f, "  layer=%d%s", n->layer, a);
    else if (a[0])
        fprintf(f, " %s", a);
}

/* the plan of one node, e.g. "  buf=scratch+128T uses=1 last=%13" */
static void print_buf(const ir_node *n, FILE *f) {
    switch (n->buf) {
    case IR_BUF_NONE:
        return;
    case IR_BUF_INPUT:
        fprintf(f, "  buf=input");
        break;
    case IR_BUF_WEIGHT:
        fprintf(f, "  buf=weight");
        break;
    case IR_BUF_SCRATCH:
        fprintf(f, "  buf=scratch+%lldT", (long long)n->buf_off);
        break;
    case IR_BUF_OUTPUT:
        fprintf(f, "  buf=output");
        break;
    case IR_BUF_INPLACE:
        fprintf(f, "  buf=inplace:scratch+%lldT", (long long)n->buf_off);
        break;
    }
    fprintf(f, " uses=%d", n->n_uses);
    if (n->last_use >= 0) fprintf(f, " last=%%%d", n->last_use);
}

void ir_print(const ir_graph *g, FILE *f) {
    fprintf(f, "# lorajit ir: %d nodes, %d weights, %d sites, r_max %d, seq_len %lld\n",
            g->n_nodes, g->n_weights, g->n_sites, g->r_max, (long long)g->seq_len);
    if (g->kv_dtype != IR_F32) fprintf(f, "# kv_dtype %s\n", ir_dtype_name(g->kv_dtype)); /* f32: as before */
    if (g->lora_dtype != IR_F32) fprintf(f, "# lora_dtype %s\n", ir_dtype_name(g->lora_dtype));
    if (g->n_nodes > 0 && g->nodes[0]->buf != IR_BUF_NONE)
        fprintf(f, "# plan: scratch_per_token %lld (lora_t at %lld), scratch_fixed %lld (wconv %lld)\n",
                (long long)g->scratch_per_token, (long long)g->lora_t_off,
                (long long)g->scratch_fixed, (long long)g->wconv_floats);
    if (g->status != LORAJIT_OK) fprintf(f, "# error: %s\n", g->msg);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        char lhs[96], shape[48];
        int k = snprintf(lhs, sizeof lhs, "%%%d = %s(", n->id, ir_op_name(n->op));
        for (int j = 0; j < n->n_in && k > 0 && (size_t)k < sizeof lhs; j++)
            k += snprintf(lhs + k, sizeof lhs - (size_t)k, "%s%%%d", j ? ", " : "", n->in[j]->id);
        if (k > 0 && (size_t)k < sizeof lhs) snprintf(lhs + k, sizeof lhs - (size_t)k, ")");
        ir_shape_str(n, shape, sizeof shape);
        fprintf(f, "%-26s %-10s %s  %s", lhs, shape, ir_dtype_name(n->dtype), n->name);
        print_attrs(n, f);
        print_buf(n, f);
        fputc('\n', f);
    }
}
