/* frontend_llama.c — config + schema -> the LLaMA forward pass as IR, with the
 * variants of the families in the architecture table (Qwen2/3, Mistral, Phi-3, Gemma).
 *
 * Inputs: a parsed config.json (lj_config) and the adapter schema (lj_schema).
 * Output: an unverified ir_graph that mirrors llama2.c's forward() as straight-line
 * builder calls, with Hugging Face tensor names ("model.layers.L.self_attn.q_proj.weight",
 * the linears' from the architecture table) and a LORA node after every linear whose
 * module is in schema->target_mask.
 * Weight ids follow creation order; site ids follow (layer, the entry's module order).
 * Node names are HF-style ("layers.0.self_attn.q_proj", "...q_proj.lora", "norm",
 * "lm_head", "logits"); the builders take a node's layer from its "layers.N." prefix. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "compiler.h"

/* snprintf into buf and return it (names are copied by the builders at once) */
__attribute__((format(printf, 3, 4)))
static const char *fmt(char *buf, size_t cap, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return buf;
}

/* One linear of a block, the entry's module computing kind: y [T, out] = x [T, in] @ W^T
 * (W [out, in]) [+ b [out]] [+ LoRA slot of (layer, module)]; the table's module path
 * names the weight ("model.layers.0.self_attn.q_proj.weight") and the node
 * ("layers.0.self_attn.q_proj"). */
static ir_node *linear(ir_graph *g, const lj_config *cfg, const lj_schema *schema, ir_node *x,
                       int layer, lj_linear kind, int64_t out, int64_t in) {
    const lj_arch *arch = lj_arch_get(cfg->arch);
    int module = lj_arch_linear_module(arch, kind);
    LJ_ASSERT(module >= 0); /* the block below asks only for the entry's linears */
    int64_t want_in, want_out;
    lj_arch_linear_shape(cfg, module, &want_in, &want_out);
    LJ_ASSERT(in == want_in && out == want_out); /* the block below and arch.c agree */
    char path[128], name[128], tensor[160];
    lj_arch_module_path(arch, layer, module, path, sizeof path);
    fmt(name, sizeof name, "layers.%d.%s", layer, arch->modules[module].path);
    ir_node *w = ir_weight(g, fmt(tensor, sizeof tensor, "%s.weight", path), layer, out, in);
    ir_node *y = ir_matmul(g, x, w, name);
    if (cfg->bias_mask & (1u << module)) {
        ir_node *b = ir_weight(g, fmt(tensor, sizeof tensor, "%s.bias", path), layer, out, 0);
        y = ir_bias_add(g, y, b, fmt(tensor, sizeof tensor, "%s.bias", name));
    }
    if (schema->target_mask & (1u << module))
        y = ir_lora(g, y, x, module, fmt(tensor, sizeof tensor, "%s.lora", name));
    return y;
}

/* A size of cfg that the builders take as int; names the config.json field. */
static lorajit_status int_field(int64_t v, const char *field, int *out, lj_err *err) {
    if (v <= 0 || v > INT_MAX / 4)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "config.json: %s = %lld is out of range", field,
                       (long long)v);
    *out = (int)v;
    return LORAJIT_OK;
}

ir_graph *fe_llama_build(const lj_config *cfg, const lj_schema *schema, lj_err *err) {
    int n_layers = 0, n_heads = 0, n_kv_heads = 0, head_size = 0;
    if (int_field(cfg->n_layers, "num_hidden_layers", &n_layers, err) ||
        int_field(cfg->n_heads, "num_attention_heads", &n_heads, err) ||
        int_field(cfg->n_kv_heads, "num_key_value_heads", &n_kv_heads, err) ||
        int_field(cfg->head_size, "head_dim", &head_size, err))
        return NULL;
    int64_t dim = cfg->dim, hidden_dim = cfg->hidden_dim, vocab_size = cfg->vocab_size;
    int64_t q_dim = (int64_t)n_heads * head_size;   /* n_heads * head_size */
    int64_t kv_dim = (int64_t)n_kv_heads * head_size;
    float eps = cfg->rms_eps, theta = cfg->rope_theta;
    const lj_arch *arch = lj_arch_get(cfg->arch);
    /* the family variants of the block (arch.c's LJ_BLOCK_* and modules) */
    bool fused_qkv = lj_arch_linear_module(arch, LJ_LIN_QKV) >= 0;         /* Phi-3 */
    bool fused_gate_up = lj_arch_linear_module(arch, LJ_LIN_GATE_UP) >= 0; /* Phi-3 */
    bool gemma = arch->block & LJ_BLOCK_GEMMA;
    bool gelu = !strcmp(arch->hidden_act, "gelu_pytorch_tanh");            /* Gemma's GeGLU */
    /* Gemma (modeling_gemma.py GemmaRMSNorm.forward): every norm weight is used as 1 + w */
    float w_offset = gemma ? 1.0f : 0.0f;
    int window = 0;
    if ((arch->block & LJ_BLOCK_SLIDING_WINDOW) && cfg->sliding_window > 0 &&
        int_field(cfg->sliding_window, "sliding_window", &window, err))
        return NULL;

    ir_graph *g = ir_graph_new(schema->r_max, schema->seq_len);
    if (!g) {
        lj_fail(err, LORAJIT_E_NOMEM, "out of memory creating the IR graph");
        return NULL;
    }
    g->kv_dtype = ir_dtype_of(schema->kv_dtype);
    g->lora_dtype = ir_dtype_of(schema->lora_dtype);
    char name[128], tensor[160];

    ir_node *tokens = ir_input(g, "tokens");                                  /* [T] */
    ir_node *embed = ir_weight(g, "model.embed_tokens.weight", -1, vocab_size, dim);
    /* Gemma (modeling_gemma.py GemmaModel.forward): inputs_embeds * normalizer, the
     * normalizer torch.tensor(hidden_size**0.5, dtype=float32) */
    float embed_scale = gemma ? (float)sqrt((double)dim) : 0.0f;
    ir_node *x = ir_embed_scaled(g, embed, tokens, embed_scale, "embed_tokens"); /* [T, dim] */

    for (int l = 0; l < n_layers; l++) {
        /* attention rmsnorm */
        ir_node *w = ir_weight(g, fmt(tensor, sizeof tensor,
                                      "model.layers.%d.input_layernorm.weight", l), l, dim, 0);
        ir_node *xb = ir_rmsnorm_offset(g, x, w, eps, w_offset,
                                        fmt(name, sizeof name, "layers.%d.input_layernorm", l));

        /* qkv matmuls for this position */
        ir_node *q, *k, *v;
        if (fused_qkv) {
            /* Phi-3 (modeling_phi3.py Phi3Attention.forward): qkv = qkv_proj(x), then
             * q = qkv[..., :q_dim], k = the next kv_dim columns, v = the last kv_dim */
            ir_node *qkv = linear(g, cfg, schema, xb, l, LJ_LIN_QKV, q_dim + 2 * kv_dim, dim);
            q = ir_slice(g, qkv, 0, q_dim, fmt(name, sizeof name, "layers.%d.self_attn.q", l));
            k = ir_slice(g, qkv, q_dim, kv_dim, fmt(name, sizeof name, "layers.%d.self_attn.k", l));
            v = ir_slice(g, qkv, q_dim + kv_dim, kv_dim, fmt(name, sizeof name, "layers.%d.self_attn.v", l));
        } else {
            q = linear(g, cfg, schema, xb, l, LJ_LIN_Q, q_dim, dim);     /* [T, q_dim] */
            k = linear(g, cfg, schema, xb, l, LJ_LIN_K, kv_dim, dim);    /* [T, kv_dim] */
            v = linear(g, cfg, schema, xb, l, LJ_LIN_V, kv_dim, dim);    /* [T, kv_dim] */
        }

        /* Qwen3 (modeling_qwen3.py, Qwen3Attention.forward): q_norm / k_norm, an RMSNorm
         * of each head over head_dim, after the projection and before RoPE */
        if (arch->block & LJ_BLOCK_QK_NORM) {
            w = ir_weight(g, fmt(tensor, sizeof tensor, "model.layers.%d.self_attn.q_norm.weight", l), l,
                          head_size, 0);
            q = ir_head_rmsnorm(g, q, w, n_heads, head_size, eps,
                                fmt(name, sizeof name, "layers.%d.self_attn.q_norm", l));
            w = ir_weight(g, fmt(tensor, sizeof tensor, "model.layers.%d.self_attn.k_norm.weight", l), l,
                          head_size, 0);
            k = ir_head_rmsnorm(g, k, w, n_kv_heads, head_size, eps,
                                fmt(name, sizeof name, "layers.%d.self_attn.k_norm", l));
        }

        /* RoPE relative positional encoding */
        q = ir_rope(g, q, n_heads, head_size, theta,
                    fmt(name, sizeof name, "layers.%d.self_attn.q_rope", l));
        k = ir_rope(g, k, n_kv_heads, head_size, theta,
                    fmt(name, sizeof name, "layers.%d.self_attn.k_rope", l));

        /* multihead attention over the KV cache (Mistral: within the sliding window,
         * modeling_mistral.py MistralModel.forward's create_sliding_window_causal_mask),
         * then the output projection */
        ir_node *att = ir_attention(g, q, k, v, n_heads, n_kv_heads, head_size, window,
                                    fmt(name, sizeof name, "layers.%d.self_attn", l));
        ir_node *o = linear(g, cfg, schema, att, l, LJ_LIN_O, dim, q_dim);    /* [T, dim] */

        /* residual connection back into x */
        x = ir_add(g, x, o, fmt(name, sizeof name, "layers.%d.attn_residual", l));

        /* ffn rmsnorm */
        w = ir_weight(g, fmt(tensor, sizeof tensor,
                             "model.layers.%d.post_attention_layernorm.weight", l), l, dim, 0);
        xb = ir_rmsnorm_offset(g, x, w, eps, w_offset,
                               fmt(name, sizeof name, "layers.%d.post_attention_layernorm", l));

        /* w2(silu(w1(x)) * w3(x)) */
        ir_node *gate, *up;
        if (fused_gate_up) {
            /* Phi-3 (modeling_phi3.py Phi3MLP.forward): gate, up = gate_up_proj(x).chunk(2, dim=-1) */
            ir_node *gu = linear(g, cfg, schema, xb, l, LJ_LIN_GATE_UP, 2 * hidden_dim, dim); /* [T, 2 hidden_dim] */
            gate = ir_slice(g, gu, 0, hidden_dim, fmt(name, sizeof name, "layers.%d.mlp.gate", l));
            up = ir_slice(g, gu, hidden_dim, hidden_dim, fmt(name, sizeof name, "layers.%d.mlp.up", l));
        } else {
            gate = linear(g, cfg, schema, xb, l, LJ_LIN_GATE, hidden_dim, dim); /* [T, hidden_dim] */
            up = linear(g, cfg, schema, xb, l, LJ_LIN_UP, hidden_dim, dim);     /* [T, hidden_dim] */
        }
        /* Gemma (modeling_gemma.py GemmaMLP.forward): gelu_pytorch_tanh(gate) * up */
        ir_node *h = gelu ? ir_gelu_mul(g, gate, up, fmt(name, sizeof name, "layers.%d.mlp.act_fn", l))
                          : ir_silu_mul(g, gate, up, fmt(name, sizeof name, "layers.%d.mlp.act_fn", l));
        ir_node *d = linear(g, cfg, schema, h, l, LJ_LIN_DOWN, dim, hidden_dim);     /* [T, dim] */

        /* residual connection */
        x = ir_add(g, x, d, fmt(name, sizeof name, "layers.%d.mlp_residual", l));
    }

    /* final rmsnorm, classifier into logits */
    ir_node *w = ir_weight(g, "model.norm.weight", -1, dim, 0);
    x = ir_rmsnorm_offset(g, x, w, eps, w_offset, "norm");
    ir_node *cls = cfg->tie_embeddings ? embed
                                       : ir_weight(g, "lm_head.weight", -1, vocab_size, dim);
    ir_node *logits = ir_matmul(g, x, cls, "lm_head");                       /* [T, vocab_size] */
    ir_output(g, logits, "logits");

    if (g->status != LORAJIT_OK) {
        lj_fail(err, g->status, "%s", g->msg);
        ir_graph_free(g);
        return NULL;
    }
    return g;
}
