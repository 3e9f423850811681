/* test_ir_graph.c — the IR alone: op tables, builder shape errors, the verifier on
 * hand-broken graphs, layer parsing, and the buffer plan (brute-force overlap check
 * over every pair of scratch buffers whose lifetimes overlap, region reuse, sizes).
 * To add a case: build a graph with the ir_* builders, then CHECK what it records. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ir.h"

static void test_op_tables(void) {
    for (int op = 0; op < IR_OP_COUNT; op++) {
        const char *name = ir_op_name((ir_op)op);
        CHECK(name && *name, "op %d has no name", op);
        CHECK(ir_op_arity((ir_op)op) >= 0 && ir_op_arity((ir_op)op) <= 3, "op %s arity", name);
        for (int o = 0; o < op; o++)
            CHECK(strcmp(name, ir_op_name((ir_op)o)) != 0, "ops %d and %d share name %s", o, op, name);
    }
    CHECK(strcmp(ir_op_name(IR_OP_MATMUL), "matmul") == 0, "matmul name");
    CHECK(ir_op_arity(IR_OP_ATTENTION) == 3 && ir_op_arity(IR_OP_ROPE) == 1, "arity");
    CHECK(ir_op_inplace(IR_OP_LORA) && ir_op_inplace(IR_OP_BIAS_ADD) && !ir_op_inplace(IR_OP_ADD),
          "inplace flags");
}

static void test_shape_errors(void) {
    ir_graph_free(NULL);
    ir_graph *g = ir_graph_new(4, 32);
    ir_node *tok = ir_input(g, "tokens");
    ir_node *emb = ir_weight(g, "model.embed_tokens.weight", -1, 16, 8);
    ir_node *x = ir_embed(g, emb, tok, "embed_tokens");
    CHECK(g->status == LORAJIT_OK, "clean so far: %s", g->msg);
    ir_node *w = ir_weight(g, "model.layers.1.self_attn.q_proj.weight", 1, 4, 6);
    ir_node *m = ir_matmul(g, x, w, "layers.1.self_attn.q_proj");
    CHECK(m && m->layer == 1 && w->layer == 1, "layer from name / argument");
    CHECK(g->status == LORAJIT_E_SHAPE, "mismatched matmul status %d", g->status);
    CHECK(strstr(g->msg, "node 'layers.1.self_attn.q_proj' (matmul)"), "names the node: %s", g->msg);
    CHECK(strstr(g->msg, "'embed_tokens' [T, 8]"), "names x and its shape: %s", g->msg);
    CHECK(strstr(g->msg, "'model.layers.1.self_attn.q_proj.weight' [4, 6]"), "names W: %s", g->msg);
    char first[sizeof g->msg];
    memcpy(first, g->msg, sizeof first);
    ir_rope(g, x, 3, 3, 10000.f, "layers.1.self_attn.q_rope"); /* odd head_size: a second error */
    CHECK(strcmp(first, g->msg) == 0, "first error kept: %s", g->msg);
    CHECK(ir_verify(g) == LORAJIT_E_SHAPE, "verify returns the recorded error");
    ir_graph_free(g);

    g = ir_graph_new(4, 32);
    x = ir_embed(g, ir_weight(g, "e", -1, 16, 8), ir_input(g, "tokens"), "embed_tokens");
    ir_rope(g, x, 2, 3, 10000.f, "layers.0.self_attn.q_rope");
    CHECK(g->status == LORAJIT_E_SHAPE && strstr(g->msg, "head_size even"), "rope: %s", g->msg);
    ir_graph_free(g);

    g = ir_graph_new(4, 32);
    x = ir_embed(g, ir_weight(g, "e", -1, 16, 8), ir_input(g, "tokens"), "embed_tokens");
    ir_node *q = ir_matmul(g, x, ir_weight(g, "wq", 0, 8, 8), "layers.0.self_attn.q_proj");
    ir_node *k = ir_matmul(g, x, ir_weight(g, "wk", 0, 6, 8), "layers.0.self_attn.k_proj");
    ir_attention(g, q, k, k, 4, 3, 2, 0, "layers.0.self_attn"); /* 4 % 3 != 0 */
    CHECK(g->status == LORAJIT_E_SHAPE && strstr(g->msg, "n_kv_heads 3"), "gqa: %s", g->msg);
    ir_graph_free(g);

    g = ir_graph_new(4, 32);
    CHECK(ir_input(g, "layers.12.x")->layer == 12, "layers.12.");
    CHECK(ir_input(g, "layers.7")->layer == 7, "layers.7");
    CHECK(ir_input(g, "layers.x.y")->layer == -1, "layers.x");
    CHECK(ir_input(g, "layers.3b.y")->layer == -1, "layers.3b");
    CHECK(ir_input(g, "norm")->layer == -1, "norm");
    CHECK(ir_input(g, "model.layers.3.x")->layer == -1, "model.layers is a tensor, not a node name");
    ir_graph_free(g);
}

/* A two-block-ish graph (dim 8, kv_dim 4, hidden_dim 12, vocab 16, r_max 4, seq_len 32)
 * whose plan was worked out by hand (see test_plan). */
static ir_graph *small_graph(void) {
    ir_graph *g = ir_graph_new(4, 32);
    ir_node *tok = ir_input(g, "tokens");                                            /* %0 */
    ir_node *emb = ir_weight(g, "emb", -1, 16, 8);                                   /* %1 */
    ir_node *x = ir_embed(g, emb, tok, "embed_tokens");                              /* %2 */
    ir_node *xb = ir_rmsnorm(g, x, ir_weight(g, "n0", 0, 8, 0), 1e-5f,
                             "layers.0.input_layernorm");                            /* %4 */
    ir_node *q = ir_matmul(g, xb, ir_weight(g, "wq", 0, 8, 8), "layers.0.self_attn.q_proj"); /* %6 */
    q = ir_lora(g, q, xb, 0, "layers.0.self_attn.q_proj.lora");                      /* %7 */
    ir_node *k = ir_matmul(g, xb, ir_weight(g, "wk", 0, 4, 8), "layers.0.self_attn.k_proj"); /* %9 */
    ir_node *v = ir_matmul(g, xb, ir_weight(g, "wv", 0, 4, 8), "layers.0.self_attn.v_proj"); /* %11 */
    q = ir_rope(g, q, 2, 4, 10000.f, "layers.0.self_attn.q_rope");                  /* %12 */
    k = ir_rope(g, k, 1, 4, 10000.f, "layers.0.self_attn.k_rope");                  /* %13 */
    ir_node *att = ir_attention(g, q, k, v, 2, 1, 4, 0, "layers.0.self_attn");         /* %14 */
    ir_node *o = ir_matmul(g, att, ir_weight(g, "wo", 0, 8, 8), "layers.0.self_attn.o_proj"); /* %16 */
    ir_node *x2 = ir_add(g, x, o, "layers.0.attn_residual");                         /* %17 */
    ir_node *gate = ir_matmul(g, x2, ir_weight(g, "wg", 0, 12, 8), "layers.0.mlp.gate_proj"); /* %19 */
    ir_node *up = ir_matmul(g, x2, ir_weight(g, "wu", 0, 12, 8), "layers.0.mlp.up_proj"); /* %21 */
    ir_node *h = ir_silu_mul(g, gate, up, "layers.0.mlp.act_fn");                    /* %22 */
    ir_node *d = ir_matmul(g, h, ir_weight(g, "wd", 0, 8, 12), "layers.0.mlp.down_proj"); /* %24 */
    d = ir_lora(g, d, h, 6, "layers.0.mlp.down_proj.lora");                          /* %25 */
    ir_node *x3 = ir_add(g, x2, d, "layers.0.mlp_residual");                         /* %26 */
    ir_node *xf = ir_rmsnorm(g, x3, ir_weight(g, "nf", -1, 8, 0), 1e-5f, "norm");    /* %28 */
    ir_node *logits = ir_matmul(g, xf, ir_weight(g, "lm", -1, 16, 8), "lm_head");   /* %30 */
    ir_output(g, logits, "logits");                                                  /* %31 */
    return g;
}

static ir_node *find(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    return NULL;
}

static void test_verify(void) {
    ir_graph *g = small_graph();
    CHECK(g->status == LORAJIT_OK && ir_verify(g) == LORAJIT_OK, "small graph verifies: %s", g->msg);
    CHECK(g->n_nodes == 32 && g->n_weights == 11 && g->n_sites == 2, "counts %d %d %d", g->n_nodes,
          g->n_weights, g->n_sites);
    ir_graph_free(g);

    /* an in-place input read twice: rope(q) and a later add(q, ...) both use q */
    g = small_graph();
    ir_node *q = find(g, "layers.0.self_attn.q_proj.lora");
    ir_add(g, q, q, "layers.0.bad_reader");
    CHECK(g->status == LORAJIT_OK, "builders do not count uses");
    CHECK(ir_verify(g) != LORAJIT_OK, "verify catches the second reader");
    CHECK(strstr(g->msg, "'layers.0.self_attn.q_rope' (rope)") &&
          strstr(g->msg, "'layers.0.self_attn.q_proj.lora'") && strstr(g->msg, "3 consumers"),
          "message: %s", g->msg);
    ir_graph_free(g);

    /* a hand-edited shape */
    g = small_graph();
    find(g, "layers.0.self_attn.o_proj")->shape[1] = 9;
    CHECK(ir_verify(g) == LORAJIT_E_SHAPE && strstr(g->msg, "layers.0.self_attn.o_proj"), "%s", g->msg);
    ir_graph_free(g);

    /* duplicate weight id, duplicate site id, input from the future, two outputs, none */
    g = small_graph();
    find(g, "wk")->weight_id = find(g, "wq")->weight_id;
    CHECK(ir_verify(g) != LORAJIT_OK && strstr(g->msg, "'wk'"), "%s", g->msg);
    ir_graph_free(g);
    g = small_graph();
    find(g, "layers.0.mlp.down_proj.lora")->site = 0;
    CHECK(ir_verify(g) != LORAJIT_OK && strstr(g->msg, "down_proj.lora"), "%s", g->msg);
    ir_graph_free(g);
    g = small_graph();
    find(g, "layers.0.attn_residual")->in[1] = find(g, "layers.0.mlp_residual");
    CHECK(ir_verify(g) != LORAJIT_OK && strstr(g->msg, "not an earlier node"), "%s", g->msg);
    ir_graph_free(g);
    g = small_graph();
    ir_output(g, find(g, "lm_head"), "logits2");
    CHECK(ir_verify(g) != LORAJIT_OK && strstr(g->msg, "second output"), "%s", g->msg);
    ir_graph_free(g);
    g = small_graph();
    g->nodes[31]->op = IR_OP_ADD; g->nodes[31]->n_in = 2; g->nodes[31]->in[1] = g->nodes[30];
    CHECK(ir_verify(g) != LORAJIT_OK && strstr(g->msg, "no output"), "%s", g->msg);
    ir_graph_free(g);
}

/* chain root of node i (follow in[0] through in-place ops) */
static int root_of(const ir_graph *g, int i) {
    while (ir_op_inplace(g->nodes[i]->op)) i = g->nodes[i]->in[0]->id;
    return i;
}

static void test_plan(void) {
    ir_graph *g = small_graph();
    CHECK(ir_verify(g) == LORAJIT_OK && ir_plan(g) == LORAJIT_OK, "plan: %s", g->msg);
    int nn = g->n_nodes;

    /* lifetimes recomputed here, independent of ir_plan: end of each chain root */
    int *end = calloc((size_t)nn, sizeof *end);
    for (int i = 0; i < nn; i++) end[i] = i;
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        int r = root_of(g, i);
        if (end[r] < i) end[r] = i;
        for (int j = 0; j < n->n_in; j++) {
            int rr = root_of(g, n->in[j]->id);
            if (end[rr] < i) end[rr] = i;
        }
    }
    int64_t sum_cols = 0;
    for (int a = 0; a < nn; a++) {
        const ir_node *na = g->nodes[a];
        CHECK(na->buf != IR_BUF_NONE, "node %s planned", na->name);
        if (na->buf != IR_BUF_SCRATCH) continue;
        sum_cols += na->shape[1];
        CHECK(na->buf_off >= 0 && na->buf_off + na->shape[1] <= g->lora_t_off,
              "%s inside the activation part", na->name);
        for (int b = a + 1; b < nn; b++) {
            const ir_node *nb = g->nodes[b];
            if (nb->buf != IR_BUF_SCRATCH || b > end[a]) continue; /* lifetimes [a, end a], [b, end b] */
            bool apart = na->buf_off + na->shape[1] <= nb->buf_off ||
                         nb->buf_off + nb->shape[1] <= na->buf_off;
            CHECK(apart, "%s [%lld+%lld] and %s [%lld+%lld] overlap while both live", na->name,
                  (long long)na->buf_off, (long long)na->shape[1], nb->name,
                  (long long)nb->buf_off, (long long)nb->shape[1]);
        }
    }
    for (int i = 0; i < nn; i++) {
        const ir_node *n = g->nodes[i];
        if (n->buf == IR_BUF_INPLACE)
            CHECK(n->buf_off == g->nodes[root_of(g, i)]->buf_off, "%s shares its root", n->name);
    }
    /* worked by hand: x 0, xb 8, q 16, k 24, v 28, att 8, o 16, x2 8, gate 16, up 28,
     * h 40, d 0, x3 16, xf 0; 52 floats per token, then lora_t [4]; fixed: att [32]
     * (no 16-bit weights: no wconv) */
    CHECK(g->scratch_per_token == 56 && g->lora_t_off == 52 && g->wconv_floats == 0 && g->scratch_fixed == 32,
          "sizes %lld %lld %lld", (long long)g->scratch_per_token, (long long)g->lora_t_off,
          (long long)g->scratch_fixed);
    CHECK(sum_cols > g->lora_t_off, "regions reused: %lld of %lld", (long long)g->lora_t_off,
          (long long)sum_cols);
    CHECK(find(g, "layers.0.self_attn")->buf_off == 8 && find(g, "layers.0.attn_residual")->buf_off == 8,
          "att and x2 reuse xb's region");
    CHECK(find(g, "layers.0.mlp.act_fn")->buf_off == 40, "h may not take gate's or up's region");
    CHECK(find(g, "lm_head")->buf == IR_BUF_OUTPUT && find(g, "logits")->buf == IR_BUF_OUTPUT,
          "logits go to the caller");
    CHECK(find(g, "tokens")->buf == IR_BUF_INPUT && find(g, "wq")->buf == IR_BUF_WEIGHT, "external");
    CHECK(find(g, "layers.0.self_attn.q_rope")->buf == IR_BUF_INPLACE, "rope in place");
    CHECK(find(g, "layers.0.input_layernorm")->n_uses == 4 &&
          find(g, "layers.0.input_layernorm")->last_use == 11, "uses of xb");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ir_print(g, f);
    fclose(f);
    CHECK(strstr(text, "# plan: scratch_per_token 56 (lora_t at 52), scratch_fixed 32 (wconv 0)"), "%s", text);
    CHECK(strstr(text, "%14 = attention(%12, %13, %11)"), "%s", text);
    CHECK(strstr(text, "buf=inplace:scratch+16T"), "%s", text);
    free(text);
    free(end);
    ir_graph_free(g);

    /* no sites: no lora_t region */
    g = ir_graph_new(4, 8);
    ir_node *x = ir_embed(g, ir_weight(g, "e", -1, 16, 8), ir_input(g, "tokens"), "embed_tokens");
    ir_node *lm = ir_weight(g, "lm", -1, 16, 8);
    ir_set_weight_dtype(g, lm, IR_BF16); /* a 16-bit matrix: the plan adds its wconv block */
    ir_output(g, ir_matmul(g, x, lm, "lm_head"), "logits");
    CHECK(ir_verify(g) == LORAJIT_OK && ir_plan(g) == LORAJIT_OK, "%s", g->msg);
    CHECK(g->scratch_per_token == 8 && g->lora_t_off == -1 && g->wconv_floats == 16 * 8 &&
              g->scratch_fixed == 8 + 16 * 8, "no sites, bf16 lm_head");
    ir_set_weight_dtype(g, ir_weight(g, "norm", -1, 8, 0), IR_F16);
    CHECK(g->status == LORAJIT_E_COMPILE && strstr(g->msg, "'norm' cannot hold f16"), "1-D f16 refused: %s",
          g->msg);
    ir_graph_free(g);
}

int main(int argc, char **argv) {
    test_op_tables();
    test_shape_errors();
    test_verify();
    test_plan();
    return check_summary("test_ir_graph");
}
