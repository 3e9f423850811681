/* peft.h — PEFT adapter folders (runtime/formats/peft.c), included by formats.h at its
 * end (an image points into an st_file and is checked against an lj_layout; a config
 * matches module paths with lj_regex and names from lj_arch). */
#ifndef LORAJIT_PEFT_H
#define LORAJIT_PEFT_H

#include <stdbool.h>
#include <stddef.h>

/* ---- peft.c: PEFT adapter folders, validated into an image before any write ---- */
typedef struct peft_site_w {
    int site;            /* layout site id */
    int rank;            /* r of this module (rank_pattern applied) */
    float scale;         /* alpha/r or alpha/sqrt(r) (alpha_pattern, use_rslora applied) */
    const float *a;      /* [rank, in]: borrowed from the mapping (F32) or into owned;
                            NULL in an image read with peft_adapter_read_mapped */
    const float *b;      /* [out, rank]; NULL as a */
    const void *a_raw;   /* [rank, in] of a_dtype: what a slot write converts (always set) */
    const void *b_raw;   /* [out, rank] of b_dtype */
    const char *a_name, *b_name; /* the tensors' names, borrowed from file (messages) */
    st_dtype a_dtype, b_dtype; /* F32, F16 or BF16 (F32 when a / b are set) */
} peft_site_w;
typedef struct peft_adapter {
    int n;               /* sites this adapter covers */
    peft_site_w *w;      /* [n], ordered by site id */
    size_t bytes;        /* f32 bytes of all A and B */
    st_file *file;       /* the open adapter_model.safetensors (owned) */
    float *owned;        /* [f32 values of the non-borrowed A/B] conversions, owned; NULL if none */
    bool unchecked;      /* read_mapped: NaN / Inf not tested yet; the slot write tests as it converts */
} peft_adapter;
/* A module selector of adapter_config.json (target_modules, exclude_modules): a
 * list of names, each matched as a dotted suffix of the module path
 * ("model.layers.3.self_attn.q_proj"), or one regex matched against the whole path. */
typedef struct peft_match {
    lj_regex *re;        /* owned, compiled "^(PATTERN)$" (REG_EXTENDED); NULL for a list */
    int n;
    char **names;        /* [n] owned suffixes */
} peft_match;
/* One rank_pattern / alpha_pattern entry: applies where "^(.*\.)?(KEY)$" matches. */
typedef struct peft_pattern {
    char *key;           /* owned, as written in the JSON */
    lj_regex *re;        /* owned */
    double value;
} peft_pattern;
/* Parsed adapter_config.json (PEFT's LoraConfig, the fields that change results). */
typedef struct peft_config {
    int r;
    double alpha;
    bool use_rslora;
    peft_match targets;  /* target_modules (null: PEFT's default for the arch, LLaMA's q_proj, v_proj) */
    peft_match excludes; /* exclude_modules (null: none) */
    int n_rank_pattern;
    peft_pattern *rank_pattern;   /* [n_rank_pattern], first match wins */
    int n_alpha_pattern;
    peft_pattern *alpha_pattern;  /* [n_alpha_pattern] */
    int n_layers;        /* layers_to_transform: 0 = every layer */
    int *layers;         /* [n_layers] owned */
} peft_config;
/* Parses adapter_config.json text for a model of arch (borrowed); refuses, naming
 * the field: peft_type other than LORA, use_dora, bias other than "none",
 * modules_to_save, fan_in_fan_out, lora_bias, layers_pattern other than arch's
 * ("layers"), layer_replication, target_modules naming anything but arch's modules,
 * missing r / lora_alpha. Caller owns *cfg's contents; free with peft_config_free(). */
lorajit_status peft_config_parse(const char *text, size_t len, const char *path, const lj_arch *arch,
                                 peft_config *cfg, lj_err *err);
void peft_config_free(peft_config *cfg); /* NULL-safe, frees contents only */
/* Reads dir/adapter_config.json and dir/adapter_model.safetensors and checks every
 * tensor against L: names, targeted modules inside the schema, rank <= r_max,
 * shapes [r, in] / [out, r], none missing, none extra. Writes nothing shared.
 * Caller owns *out; free with peft_adapter_free(). */
lorajit_status peft_adapter_read(const char *dir, const lj_layout *L, peft_adapter **out,
                                 lj_err *err);
/* As peft_adapter_read, with every check but one and no conversion: a and b stay
 * NULL, a_raw and b_raw point into the mapping, and lj_slots_write converts straight
 * into the slot, testing for NaN / Inf as it goes (unchecked is set: one pass over
 * the bytes, not a scan and then a copy). Caller owns *out; free with
 * peft_adapter_free(). */
lorajit_status peft_adapter_read_mapped(const char *dir, const lj_layout *L, peft_adapter **out,
                                        lj_err *err);
void peft_adapter_free(peft_adapter *ad); /* NULL does nothing */
/* Copies every A and B of ad into one owned buffer and closes its file, so the image
 * no longer depends on adapter_model.safetensors (for keeping it in host memory).
 * L is the layout ad was read against. An unchecked image is tested on the way (a
 * NaN / Inf fails naming it). On failure ad is unchanged. */
lorajit_status peft_adapter_detach(peft_adapter *ad, const lj_layout *L, lj_err *err);

#endif /* LORAJIT_PEFT_H */
