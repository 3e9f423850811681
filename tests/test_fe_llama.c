/* test_fe_llama.c — the LLaMA front end: counts, tied embeddings, biases, a q,v-only
 * schema, the layout, the phi3 and gemma variants, and the printed IR of llama-tiny
 * against tests/golden/llama-tiny.ir.
 * After an intended change to the graph or the printer, regenerate the golden with
 *   LORAJIT_UPDATE_GOLDEN=1 ./build/test_fe_llama build   (from tests/)
 * and review the diff of golden/llama-tiny.ir in the commit. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compiler.h"

#define CONFIG "conformance/models/llama-tiny/config.json"
#define GOLDEN "golden/llama-tiny.ir"

static ir_node *find(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    return NULL;
}

static int count_op(const ir_graph *g, ir_op op) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) k += g->nodes[i]->op == op;
    return k;
}

/* Builds, verifies and plans; NULL (with a failed CHECK) on any error. */
static ir_graph *build(const lj_config *cfg, const lj_schema *s, const char *what) {
    lj_err err = {0};
    ir_graph *g = fe_build(cfg, s, &err); /* dispatches on cfg->arch: llama */
    CHECK(g, "%s: build failed: %s", what, err.msg);
    if (!g) return NULL;
    CHECK(ir_verify(g) == LORAJIT_OK, "%s: verify: %s", what, g->msg);
    CHECK(ir_plan(g) == LORAJIT_OK, "%s: plan: %s", what, g->msg);
    CHECK(ir_verify(g) == LORAJIT_OK, "%s: verify after plan: %s", what, g->msg);
    return g;
}

/* Compares text with the golden file (or rewrites it when LORAJIT_UPDATE_GOLDEN=1),
 * printing the first differing line. */
static void check_golden(const char *text, const char *path) {
    const char *upd = getenv("LORAJIT_UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        FILE *f = fopen(path, "wb");
        CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
        printf("rewrote %s\n", path);
        return;
    }
    char *want = check_read_file(path, NULL);
    CHECK(want, "cannot read %s (create it with LORAJIT_UPDATE_GOLDEN=1)", path);
    if (!want) return;
    const char *a = text, *b = want;
    int line = 1;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) {
            CHECK(0, "%s:%d differs (LORAJIT_UPDATE_GOLDEN=1 to accept)\n  got:  %.*s\n  want: %.*s",
                  path, line, (int)la, a, (int)lb, b);
            break;
        }
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
        line++;
    }
    free(want);
}

/* The variants of phi3 (fused qkv_proj / gate_up_proj, sites on them) and gemma
 * (1 + w norms, scaled embedding, GeGLU) on llama-tiny's sizes. */
static void test_phi3_gemma(void) {
    lj_err err = {0};
    lj_config cfg;
    lj_schema schema;
    lorajit_options none = {0};
    const char *phi3 = "{\"model_type\":\"phi3\",\"hidden_size\":64,\"intermediate_size\":96,"
                       "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                       "\"vocab_size\":100,\"max_position_embeddings\":64}";
    CHECK(lj_config_parse(phi3, strlen(phi3), "phi3.json", &cfg, &err) == 0 &&
              lj_schema_resolve(&none, &cfg, &schema, &err) == 0, "phi3: %s", err.msg);
    if (check_fail_count) return;
    ir_graph *g = build(&cfg, &schema, "phi3");
    if (!g) return;
    ir_node *qkv = find(g, "layers.1.self_attn.qkv_proj.lora"), *v = find(g, "layers.1.self_attn.v");
    ir_node *up = find(g, "layers.0.mlp.up");
    CHECK(g->n_sites == 2 * 4 && qkv && qkv->site == 4 && qkv->module == 0 && qkv->shape[1] == 128, "qkv site");
    CHECK(v && v->op == IR_OP_SLICE && v->in[0] == qkv && v->col0 == 96 && v->shape[1] == 32, "v = qkv[:, 96:128]");
    CHECK(up && up->op == IR_OP_SLICE && up->col0 == 96 && up->shape[1] == 96 && count_op(g, IR_OP_SLICE) == 10,
          "up = gate_up[:, 96:192]");
    CHECK(count_op(g, IR_OP_WEIGHT) == 2 + 2 * 6 + 1 && !find(g, "layers.0.self_attn.q_proj"), "phi3 weights");
    ir_graph_free(g);
    const char *gemma = "{\"model_type\":\"gemma\",\"hidden_size\":64,\"intermediate_size\":96,"
                        "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"head_dim\":32,\"vocab_size\":100}";
    CHECK(lj_config_parse(gemma, strlen(gemma), "gemma.json", &cfg, &err) == 0 &&
              lj_schema_resolve(&none, &cfg, &schema, &err) == 0, "gemma: %s", err.msg);
    if (check_fail_count) return;
    g = build(&cfg, &schema, "gemma");
    if (!g) return;
    ir_node *emb = find(g, "embed_tokens"), *norm = find(g, "norm"), *lm = find(g, "lm_head");
    CHECK(emb && emb->scale == 8.0f && norm && norm->w_offset == 1.0f && count_op(g, IR_OP_GELU_MUL) == 1 &&
              count_op(g, IR_OP_SILU_MUL) == 0, "gemma block");
    CHECK(lm && !strcmp(lm->in[1]->tensor, "model.embed_tokens.weight") && find(g, "layers.0.self_attn.q_proj") &&
              find(g, "layers.0.self_attn.q_proj")->shape[1] == 128, "gemma tied, head_dim 32");
    ir_graph_free(g);
}

int main(int argc, char **argv) {
    lj_err err = {0};
    lj_config cfg;
    lj_schema schema;
    lorajit_options none = {0};
    CHECK(lj_config_read(CONFIG, &cfg, &err) == LORAJIT_OK, "config: %s", err.msg);
    CHECK(lj_schema_resolve(&none, &cfg, &schema, &err) == LORAJIT_OK, "schema: %s", err.msg);
    CHECK(schema.r_max == 64 && schema.target_mask == 0x7f && schema.n_slots == 8, "default schema");
    if (check_fail_count) return check_summary("test_fe_llama");

    /* llama-tiny, default schema: counts, the golden text */
    ir_graph *g = build(&cfg, &schema, "llama-tiny");
    if (!g) return check_summary("test_fe_llama");
    CHECK(g->n_sites == 2 * 7 && count_op(g, IR_OP_LORA) == 14, "sites %d", g->n_sites);
    CHECK(g->n_weights == 1 + 2 * 9 + 1 + 1 && count_op(g, IR_OP_WEIGHT) == 21, "weights %d",
          g->n_weights);
    ir_node *lm = find(g, "lm_head");
    CHECK(lm && lm->in[1]->tensor && strcmp(lm->in[1]->tensor, "lm_head.weight") == 0, "untied lm_head");
    ir_node *att = find(g, "layers.1.self_attn");
    CHECK(att && att->layer == 1 && att->n_heads == 4 && att->n_kv_heads == 2 && att->head_size == 16,
          "attention of layer 1");
    ir_node *q = find(g, "layers.0.self_attn.q_proj.lora");
    CHECK(q && q->site == 0 && q->module == LJ_MOD_Q, "site 0 is layer 0 q_proj");
    ir_node *d = find(g, "layers.1.mlp.down_proj.lora");
    CHECK(d && d->site == 13 && d->module == LJ_MOD_DOWN && d->in[1]->shape[1] == 160, "site 13");
    /* fixed: att [seq_len 128]; f32 weights need no wconv */
    CHECK(g->wconv_floats == 0 && g->scratch_fixed == 128 && g->lora_t_off >= 0 &&
          g->scratch_per_token == g->lora_t_off + 64, "plan sizes");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ir_print(g, f);
    fclose(f);
    check_golden(text, GOLDEN);
    free(text);

    /* layout: weights by id, sites by id, scratch sizes */
    lj_layout *L = NULL;
    CHECK(fe_layout(g, &cfg, &schema, &L, &err) == LORAJIT_OK, "layout: %s", err.msg);
    if (L) {
        CHECK(L->n_weights == 21 && L->n_sites == 14, "layout counts");
        CHECK(strcmp(L->weights[0].name, "model.embed_tokens.weight") == 0 &&
              L->weights[0].rows == 256 && L->weights[0].cols == 64, "weight 0");
        CHECK(strcmp(L->weights[1].name, "model.layers.0.input_layernorm.weight") == 0 &&
              L->weights[1].rows == 64 && L->weights[1].cols == 0, "weight 1");
        CHECK(strcmp(L->weights[20].name, "lm_head.weight") == 0, "weight 20");
        int s = lj_layout_site(L, 1, LJ_MOD_K);
        CHECK(s == 7 + 1 && L->sites[s].in == 64 && L->sites[s].out == 32, "site (1, k_proj)");
        s = lj_layout_site(L, 0, LJ_MOD_DOWN);
        CHECK(s == 6 && L->sites[s].in == 160 && L->sites[s].out == 64, "site (0, down_proj)");
        CHECK(L->sites[s].path && strcmp(L->sites[s].path, "model.layers.0.mlp.down_proj") == 0,
              "site 6 path %s", L->sites[s].path ? L->sites[s].path : "(null)");
        s = lj_layout_site(L, 1, LJ_MOD_Q);
        CHECK(L->sites[s].path && strcmp(L->sites[s].path, "model.layers.1.self_attn.q_proj") == 0,
              "site (1, q_proj) path %s", L->sites[s].path ? L->sites[s].path : "(null)");
        /* every site's path names its linear: path + ".weight" is a weight of shape [out, in] */
        for (int i = 0; i < L->n_sites; i++) {
            char w[160];
            int found = 0;
            snprintf(w, sizeof w, "%s.weight", L->sites[i].path ? L->sites[i].path : "?");
            for (int k = 0; k < L->n_weights; k++)
                found |= strcmp(L->weights[k].name, w) == 0 && L->weights[k].rows == L->sites[i].out &&
                         L->weights[k].cols == L->sites[i].in;
            CHECK(found, "site %d: no weight %s of shape [out, in]", i, w);
        }
        CHECK(L->scratch_per_token == g->scratch_per_token && L->scratch_fixed == g->scratch_fixed, "sizes");
        CHECK(L->cfg.dim == 64 && L->schema.r_max == 64, "cfg and schema copied");
    }
    lj_layout_free(L);
    /* every allocation of fe_layout failing in turn: E_NOMEM, *out NULL, no leak (ASan) */
    for (long k = 1; k < 100; k++) {
        lj_alloc_fail_after(k);
        L = (lj_layout *)&err; /* must be overwritten */
        lorajit_status st = fe_layout(g, &cfg, &schema, &L, &err);
        lj_alloc_fail_after(0);
        if (st == LORAJIT_OK) {
            CHECK(k > 21, "succeeded after %ld allocations", k);
            lj_layout_free(L);
            break;
        }
        CHECK(st == LORAJIT_E_NOMEM && L == NULL, "allocation %ld failing: %d", k, st);
    }
    ir_graph_free(g);

    /* tied embeddings: one weight node serves embed_tokens and lm_head */
    lj_config tied = cfg;
    tied.tie_embeddings = true;
    g = build(&tied, &schema, "tied");
    if (g) {
        CHECK(g->n_weights == 20, "tied weights %d", g->n_weights);
        ir_node *e = find(g, "embed_tokens");
        lm = find(g, "lm_head");
        CHECK(e && lm && e->in[0] == lm->in[1], "lm_head reuses the embedding weight node");
        ir_graph_free(g);
    }

    /* biases: q,k,v,o (+ 4 per layer) and gate,up,down (+ 3 per layer) */
    lj_config biased = cfg;
    biased.bias_mask = 1u << LJ_MOD_Q | 1u << LJ_MOD_K | 1u << LJ_MOD_V | 1u << LJ_MOD_O; /* attention_bias */
    g = build(&biased, &schema, "attention_bias");
    if (g) {
        CHECK(g->n_weights == 21 + 2 * 4 && count_op(g, IR_OP_BIAS_ADD) == 8, "attention biases");
        ir_node *b = find(g, "layers.0.self_attn.k_proj.bias");
        CHECK(b && b->op == IR_OP_BIAS_ADD && b->in[1]->shape[0] == 32 &&
              strcmp(b->in[1]->tensor, "model.layers.0.self_attn.k_proj.bias") == 0, "k bias");
        ir_node *l = find(g, "layers.0.self_attn.k_proj.lora");
        CHECK(l && l->in[0] == b, "lora after bias");
        ir_graph_free(g);
    }
    biased.bias_mask |= 1u << LJ_MOD_GATE | 1u << LJ_MOD_UP | 1u << LJ_MOD_DOWN; /* mlp_bias */
    g = build(&biased, &schema, "mlp_bias");
    if (g) {
        CHECK(g->n_weights == 21 + 2 * 7 && count_op(g, IR_OP_BIAS_ADD) == 14, "all biases");
        ir_graph_free(g);
    }

    /* the mask is per module: mlp_bias alone, then k_proj alone */
    lj_config some = cfg;
    some.bias_mask = 1u << LJ_MOD_GATE | 1u << LJ_MOD_UP | 1u << LJ_MOD_DOWN;
    g = build(&some, &schema, "mlp_bias only");
    if (g) {
        CHECK(g->n_weights == 21 + 2 * 3 && count_op(g, IR_OP_BIAS_ADD) == 6, "mlp biases");
        CHECK(find(g, "layers.1.mlp.up_proj.bias") && !find(g, "layers.1.self_attn.q_proj.bias"),
              "biases on gate,up,down only");
        ir_graph_free(g);
    }
    some.bias_mask = 1u << LJ_MOD_K;
    g = build(&some, &schema, "k_proj bias only");
    if (g) {
        CHECK(count_op(g, IR_OP_BIAS_ADD) == 2 && find(g, "layers.1.self_attn.k_proj.bias") &&
              !find(g, "layers.1.self_attn.v_proj.bias"), "bias on k_proj only");
        ir_graph_free(g);
    }

    /* a q,v-only schema: 4 sites, in (layer, module) order */
    lj_schema qv = schema;
    qv.target_mask = (1u << LJ_MOD_Q) | (1u << LJ_MOD_V);
    g = build(&cfg, &qv, "q,v");
    if (g) {
        CHECK(g->n_sites == 4, "q,v sites %d", g->n_sites);
        ir_node *v1 = find(g, "layers.1.self_attn.v_proj.lora");
        CHECK(v1 && v1->site == 3 && v1->module == LJ_MOD_V, "site 3 is layer 1 v_proj");
        CHECK(!find(g, "layers.0.mlp.up_proj.lora"), "no up_proj slot");
        ir_graph_free(g);
    }

    /* no targets: no lora_t region */
    lj_schema none_t = schema;
    none_t.target_mask = 0;
    g = build(&cfg, &none_t, "no targets");
    if (g) {
        CHECK(g->n_sites == 0 && g->lora_t_off == -1, "no sites");
        ir_graph_free(g);
    }

    /* a config the builders refuse: an odd head_size fails at the first rope */
    lj_config odd = cfg;
    odd.head_size = 15;
    lj_err_clear(&err);
    g = fe_build(&odd, &schema, &err);
    CHECK(!g && err.status == LORAJIT_E_SHAPE && strstr(err.msg, "layers.0.self_attn.q_rope"),
          "odd head_size: %s", err.msg);
    ir_graph_free(g);
    lj_config bad_heads = cfg;
    bad_heads.n_heads = 0;
    lj_err_clear(&err);
    g = fe_build(&bad_heads, &schema, &err);
    CHECK(!g && err.status != LORAJIT_OK && strstr(err.msg, "num_attention_heads"), "%s", err.msg);
    test_phi3_gemma();
    return check_summary("test_fe_llama");
}
