/* arch.h — the architecture table's types (runtime/formats/arch.c), included by
 * formats.h in the middle (an entry holds an lj_config of defaults; config.c reads
 * through it). One entry per Hugging Face model_type lorajit builds: its LoRA-able
 * modules and what each linear computes, bias fields, variants of the LLaMA block,
 * refused fields, defaults. */
#ifndef LORAJIT_ARCH_H
#define LORAJIT_ARCH_H

#include <stddef.h>
#include <stdint.h>

/* ---- arch.c: the architecture table (model_type -> modules, biases, defaults, front end) ----
 * A module id indexes an entry's modules[]; lj_schema.target_mask, lj_config.bias_mask
 * and lj_site_desc.module all use it. A module's Hugging Face path is
 * layers_path "." layer "." path, e.g. "model.layers.3.self_attn.q_proj". */
typedef enum lj_frontend { LJ_FE_LLAMA, LJ_FE_COUNT } lj_frontend; /* compiler/'s builders */
/* The module ids of the LLaMA block: the llama entry's modules[], in this order, and
 * those of any entry built by LJ_FE_LLAMA. */
typedef enum lj_module {
    LJ_MOD_Q, LJ_MOD_K, LJ_MOD_V, LJ_MOD_O, LJ_MOD_GATE, LJ_MOD_UP, LJ_MOD_DOWN,
    LJ_MOD_COUNT
} lj_module;
/* What a module's linear computes, which gives its shape (lj_arch_linear_shape): the
 * LLaMA block's seven (in LJ_MOD_* order) and Phi-3's fused two (modeling_phi3.py). */
typedef enum lj_linear {
    LJ_LIN_Q, LJ_LIN_K, LJ_LIN_V, LJ_LIN_O, LJ_LIN_GATE, LJ_LIN_UP, LJ_LIN_DOWN,
    LJ_LIN_QKV,     /* qkv_proj: [(n_heads + 2 n_kv_heads) head_size, dim], q then k then v */
    LJ_LIN_GATE_UP, /* gate_up_proj: [2 hidden_dim, dim], gate then up */
    LJ_LIN_COUNT
} lj_linear;
typedef struct lj_arch_module {
    const char *name;     /* "q_proj": what target_modules, schemas and manifests say */
    const char *path;     /* "self_attn.q_proj": Hugging Face submodule path inside a layer */
    const char *parent;   /* "self_attn" or "mlp" */
    lj_linear linear;     /* what it computes */
} lj_arch_module;
typedef struct lj_arch_bias {
    const char *field;    /* a config.json boolean, e.g. "attention_bias" (default false) */
    unsigned mask;        /* the modules it gives a bias */
} lj_arch_bias;
typedef struct lj_arch {
    const char *model_type;        /* config.json "model_type" */
    lj_frontend frontend;          /* the compiler/ builder of its forward pass */
    const char *layers_path;       /* "model.layers": where layer N's modules hang */
    int n_modules;                 /* at most 32 (masks are unsigned) */
    const lj_arch_module *modules; /* [n_modules], by module id */
    int n_biases;
    const lj_arch_bias *biases;    /* [n_biases] config booleans, read into bias_mask */
    unsigned bias_fixed;           /* modules that always carry a bias */
    unsigned peft_default_targets; /* PEFT's target_modules for this model_type when null */
    const char *const *outside;    /* NULL-terminated paths outside the layers (no LoRA served) */
    const char *hidden_act;        /* the activation its front end builds (ACT2FN name): "silu",
                                      or "gelu_pytorch_tanh" (GeGLU, Gemma) */
    const char *act_field;         /* a second config field naming it, read instead of hidden_act
                                      by the modeling file (Gemma: "hidden_activation"); NULL: none */
    const char *act_ignored;       /* a hidden_act value accepted because that file ignores it
                                      (Gemma: "gelu"); NULL: none */
    unsigned block;                /* LJ_BLOCK_* variants of the LLaMA block it builds */
    const char *const *refused;    /* NULL-terminated config booleans lorajit refuses when true
                                      (Qwen2's use_sliding_window); NULL: none */
    const char *const *unit_fields; /* NULL-terminated config numbers supported only at 1.0 (absent
                                      or null: 1.0; Phi-3's partial_rotary_factor); NULL: none */
    lj_config defaults;            /* seq_len, rms_eps, rope_theta, tie_embeddings */
} lj_arch;
/* Variants of the LLaMA block (lj_arch.block), each from a family's modeling file. */
#define LJ_BLOCK_SLIDING_WINDOW 1u /* Mistral: config sliding_window masks attention */
#define LJ_BLOCK_QK_NORM 2u        /* Qwen3: RMSNorm per head on q and k before RoPE */
#define LJ_BLOCK_GEMMA 4u          /* Gemma: RMSNorm weights as 1 + w, embeddings x sqrt(dim) */
#define LJ_ARCH_DEFAULT 0 /* a config.json without model_type: llama */
int lj_arch_count(void);
/* Borrowed; static, valid for the whole process. id must be in 0..lj_arch_count()-1. */
const lj_arch *lj_arch_get(int id);
/* The id of model_type (NULL: LJ_ARCH_DEFAULT), -1 when the table lacks it. */
int lj_arch_find(const char *model_type);
void lj_arch_list(char *out, size_t cap);           /* "\"llama\"", comma-separated, for messages */
unsigned lj_arch_all_modules(const lj_arch *a);     /* a mask of every module of a */
const char *lj_arch_module_name(const lj_arch *a, int m); /* static text; "?" outside a's ids */
int lj_arch_module_find(const lj_arch *a, const char *name); /* -1 when a has no module name */
/* The names of mask's modules, comma-separated, into out[cap]. */
void lj_arch_module_names(const lj_arch *a, unsigned mask, char *out, size_t cap);
/* "model.layers.<layer>.<path>" of module m into out[cap] (out may be NULL when cap is
 * 0); returns its length, as snprintf. */
int lj_arch_module_path(const lj_arch *a, int layer, int m, char *out, size_t cap);
/* The inverse: true and (*layer, *module) when path is exactly a module path of a
 * (the layer index in canonical decimal). path is borrowed for the call. */
bool lj_arch_path_parse(const lj_arch *a, const char *path, int *layer, int *module);
const char *lj_arch_layers_pattern(const lj_arch *a); /* PEFT's layers_pattern: "layers" */
/* in (K) and out (N) of module m of c's architecture under config c: the one
 * statement of those shapes (the front end asserts its own against it; the
 * artifact's manifest is checked with it); 0, 0 for an id outside the entry. */
void lj_arch_linear_shape(const lj_config *c, int m, int64_t *in, int64_t *out);
/* The module id of a that computes linear, -1 when a has none (Phi-3 has no q_proj). */
int lj_arch_linear_module(const lj_arch *a, lj_linear linear);

#endif /* LORAJIT_ARCH_H */
