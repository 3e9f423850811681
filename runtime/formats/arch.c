/* arch.c — the architecture table: what lorajit knows of each Hugging Face model_type.
 *
 * One entry per supported model_type: its LoRA-able modules (short name, submodule
 * path inside a layer, parent), the config.json booleans that give modules a bias,
 * the config defaults that differ per architecture, PEFT's default target_modules
 * and the front end that builds it. Module ids index an entry's modules[]. Adding an
 * architecture is one entry here plus the blocks its front end needs.
 * Static tables, no state. */
#include <stdio.h>
#include <string.h>

#include "formats.h"

/* The LLaMA block, in LJ_MOD_* order. */
static const lj_arch_module llama_modules[] = {
    [LJ_MOD_Q] = {"q_proj", "self_attn.q_proj", "self_attn", LJ_LIN_Q},
    [LJ_MOD_K] = {"k_proj", "self_attn.k_proj", "self_attn", LJ_LIN_K},
    [LJ_MOD_V] = {"v_proj", "self_attn.v_proj", "self_attn", LJ_LIN_V},
    [LJ_MOD_O] = {"o_proj", "self_attn.o_proj", "self_attn", LJ_LIN_O},
    [LJ_MOD_GATE] = {"gate_proj", "mlp.gate_proj", "mlp", LJ_LIN_GATE},
    [LJ_MOD_UP] = {"up_proj", "mlp.up_proj", "mlp", LJ_LIN_UP},
    [LJ_MOD_DOWN] = {"down_proj", "mlp.down_proj", "mlp", LJ_LIN_DOWN},
};
_Static_assert(sizeof llama_modules / sizeof llama_modules[0] == LJ_MOD_COUNT, "llama modules");

/* Phi-3's block (modeling_phi3.py Phi3Attention.__init__, Phi3MLP.__init__): the
 * LoRA-able linears as PEFT targets them, q,k,v and gate,up each one fused linear. */
static const lj_arch_module phi3_modules[] = {
    {"qkv_proj", "self_attn.qkv_proj", "self_attn", LJ_LIN_QKV},
    {"o_proj", "self_attn.o_proj", "self_attn", LJ_LIN_O},
    {"gate_up_proj", "mlp.gate_up_proj", "mlp", LJ_LIN_GATE_UP},
    {"down_proj", "mlp.down_proj", "mlp", LJ_LIN_DOWN},
};

#define BIT(m) (1u << (m))
static const lj_arch_bias llama_biases[] = {
    {"attention_bias", BIT(LJ_MOD_Q) | BIT(LJ_MOD_K) | BIT(LJ_MOD_V) | BIT(LJ_MOD_O)},
    {"mlp_bias", BIT(LJ_MOD_GATE) | BIT(LJ_MOD_UP) | BIT(LJ_MOD_DOWN)},
};

/* Modules outside the layers that a target_modules regex must not select. */
static const char *const llama_outside[] = {"lm_head", "model.embed_tokens", "model.norm", NULL};

/* ---- the families of issue 13: each one entry over the LLaMA block ----
 * Defaults are the families' configuration_<family>.py ones (transformers). */
static const char *const qwen_refused[] = {"use_sliding_window", NULL};
static const char *const phi3_unit_fields[] = {"partial_rotary_factor", NULL};
#define ARCH_QWEN2_DEFAULTS LJ_CONFIG_DEFAULTS .seq_len = 32768
#define ARCH_FAMILIES                                                                           \
    { /* modeling_qwen2.py Qwen2Attention: q,k,v biased (always), o not */                    \
        .model_type = "qwen2", .frontend = LJ_FE_LLAMA, .layers_path = "model.layers",      \
        .n_modules = LJ_MOD_COUNT, .modules = llama_modules,                                 \
        .bias_fixed = BIT(LJ_MOD_Q) | BIT(LJ_MOD_K) | BIT(LJ_MOD_V),                          \
        .peft_default_targets = BIT(LJ_MOD_Q) | BIT(LJ_MOD_V), .outside = llama_outside,      \
        .hidden_act = "silu", .refused = qwen_refused,                                        \
        .defaults = {ARCH_QWEN2_DEFAULTS},                                                    \
    },                                                                                          \
    { /* modeling_qwen3.py Qwen3Attention: q_norm / k_norm per head, attention_bias */        \
        .model_type = "qwen3", .frontend = LJ_FE_LLAMA, .layers_path = "model.layers",      \
        .n_modules = LJ_MOD_COUNT, .modules = llama_modules,                                 \
        .n_biases = 1, .biases = llama_biases, /* attention_bias: q,k,v,o */                  \
        .peft_default_targets = BIT(LJ_MOD_Q) | BIT(LJ_MOD_V), .outside = llama_outside,      \
        .hidden_act = "silu", .block = LJ_BLOCK_QK_NORM, .refused = qwen_refused,             \
        .defaults = {ARCH_QWEN2_DEFAULTS, .head_size = 128},                                  \
    },                                                                                          \
    { /* modeling_mistral.py: the LLaMA block, no biases, sliding-window attention */         \
        .model_type = "mistral", .frontend = LJ_FE_LLAMA, .layers_path = "model.layers",    \
        .n_modules = LJ_MOD_COUNT, .modules = llama_modules,                                 \
        .peft_default_targets = BIT(LJ_MOD_Q) | BIT(LJ_MOD_V), .outside = llama_outside,      \
        .hidden_act = "silu", .block = LJ_BLOCK_SLIDING_WINDOW,                               \
        .defaults = {LJ_CONFIG_DEFAULTS .seq_len = 131072, .sliding_window = 4096},           \
    },                                                                                          \
    { /* modeling_phi3.py: fused qkv_proj / gate_up_proj, no biases, sliding window when set */ \
        .model_type = "phi3", .frontend = LJ_FE_LLAMA, .layers_path = "model.layers",       \
        .n_modules = 4, .modules = phi3_modules,                                              \
        .peft_default_targets = 0xf, /* PEFT: qkv_proj, o_proj, gate_up_proj, down_proj */    \
        .outside = llama_outside, .hidden_act = "silu", .block = LJ_BLOCK_SLIDING_WINDOW,     \
        .unit_fields = phi3_unit_fields,                                                      \
        .defaults = {LJ_CONFIG_DEFAULTS .seq_len = 4096, .rms_eps = 1e-5f},                   \
    },                                                                                          \
    { /* modeling_gemma.py: GemmaRMSNorm (1 + w), GemmaMLP (gelu_pytorch_tanh), scaled       \
         embeddings, tied lm_head, head_dim 256 by default, attention_bias on q,k,v,o */      \
        .model_type = "gemma", .frontend = LJ_FE_LLAMA, .layers_path = "model.layers",      \
        .n_modules = LJ_MOD_COUNT, .modules = llama_modules,                                 \
        .n_biases = 1, .biases = llama_biases, /* attention_bias: q,k,v,o */                  \
        .peft_default_targets = BIT(LJ_MOD_Q) | BIT(LJ_MOD_V), .outside = llama_outside,      \
        .hidden_act = "gelu_pytorch_tanh", .act_field = "hidden_activation",                  \
        .act_ignored = "gelu", .block = LJ_BLOCK_GEMMA,                                       \
        .defaults = {LJ_CONFIG_DEFAULTS .seq_len = 8192, .head_size = 256,                    \
                     .tie_embeddings = true},                                                 \
    },

/* A family's defaults are the generic ones with a few designated initialisers after
 * them: overriding an earlier initialiser is the point here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const lj_arch arch_table[] = {
    {
        .model_type = "llama",
        .frontend = LJ_FE_LLAMA,
        .layers_path = "model.layers",
        .n_modules = LJ_MOD_COUNT,
        .modules = llama_modules,
        .n_biases = 2,
        .biases = llama_biases,
        .bias_fixed = 0,
        .peft_default_targets = BIT(LJ_MOD_Q) | BIT(LJ_MOD_V),
        .outside = llama_outside,
        .hidden_act = "silu",
        .defaults = {LJ_CONFIG_DEFAULTS}, /* LLaMA's are the generic ones */
    },
    ARCH_FAMILIES
};
#pragma GCC diagnostic pop
enum { N_ARCH = sizeof arch_table / sizeof arch_table[0] };

int lj_arch_count(void) { return N_ARCH; }

/* Borrowed; static, valid for the whole process. */
const lj_arch *lj_arch_get(int id) {
    LJ_ASSERT(id >= 0 && id < N_ARCH);
    return &arch_table[id];
}

int lj_arch_find(const char *model_type) {
    if (!model_type) return LJ_ARCH_DEFAULT;
    for (int i = 0; i < N_ARCH; i++)
        if (strcmp(model_type, arch_table[i].model_type) == 0) return i;
    return -1;
}

void lj_arch_list(char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < N_ARCH && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s\"%s\"", i ? ", " : "", arch_table[i].model_type);
}

unsigned lj_arch_all_modules(const lj_arch *a) {
    return a->n_modules >= 32 ? ~0u : (1u << a->n_modules) - 1;
}

/* Static text; "?" for an id outside 0..n_modules-1. */
const char *lj_arch_module_name(const lj_arch *a, int m) {
    return m >= 0 && m < a->n_modules ? a->modules[m].name : "?";
}

int lj_arch_module_find(const lj_arch *a, const char *name) {
    if (!name) return -1;
    for (int m = 0; m < a->n_modules; m++)
        if (strcmp(name, a->modules[m].name) == 0) return m;
    return -1;
}

void lj_arch_module_names(const lj_arch *a, unsigned mask, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (int m = 0; m < a->n_modules && n < cap; m++)
        if (mask & (1u << m)) n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", a->modules[m].name);
}

int lj_arch_module_path(const lj_arch *a, int layer, int m, char *out, size_t cap) {
    LJ_ASSERT(m >= 0 && m < a->n_modules);
    return snprintf(out, cap, "%s.%d.%s", a->layers_path, layer, a->modules[m].path);
}

bool lj_arch_path_parse(const lj_arch *a, const char *path, int *layer, int *module) {
    size_t lp = strlen(a->layers_path);
    if (strncmp(path, a->layers_path, lp) != 0 || path[lp] != '.') return false;
    const char *p = path + lp + 1;
    long v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++) v = v * 10 + (*p - '0');
    if (digits == 0 || (digits > 1 && p[-digits] == '0') || *p++ != '.') return false;
    for (int m = 0; m < a->n_modules; m++)
        if (strcmp(p, a->modules[m].path) == 0) {
            *layer = (int)v, *module = m;
            return true;
        }
    return false;
}

const char *lj_arch_layers_pattern(const lj_arch *a) {
    const char *dot = strrchr(a->layers_path, '.');
    return dot ? dot + 1 : a->layers_path;
}

void lj_arch_linear_shape(const lj_config *c, int m, int64_t *in, int64_t *out) {
    int64_t q = c->n_heads * c->head_size, kv = c->n_kv_heads * c->head_size;
    const lj_arch *a = lj_arch_get(c->arch);
    *in = *out = 0;
    if (m < 0 || m >= a->n_modules) return;
    switch (a->modules[m].linear) {
    case LJ_LIN_Q: *in = c->dim, *out = q; return;
    case LJ_LIN_K:
    case LJ_LIN_V: *in = c->dim, *out = kv; return;
    case LJ_LIN_O: *in = q, *out = c->dim; return;
    case LJ_LIN_GATE:
    case LJ_LIN_UP: *in = c->dim, *out = c->hidden_dim; return;
    case LJ_LIN_DOWN: *in = c->hidden_dim, *out = c->dim; return;
    case LJ_LIN_QKV: *in = c->dim, *out = q + 2 * kv; return;
    case LJ_LIN_GATE_UP: *in = c->dim, *out = 2 * c->hidden_dim; return;
    case LJ_LIN_COUNT: break;
    }
}

int lj_arch_linear_module(const lj_arch *a, lj_linear linear) {
    for (int m = 0; m < a->n_modules; m++)
        if (a->modules[m].linear == linear) return m;
    return -1;
}
