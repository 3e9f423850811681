/* config_keys.c — the config.json keys an architecture reads, and those it knowingly
 * ignores (issue 13), so that `lorajit inspect` can name what a model's config says
 * that lorajit does not act on.
 *
 * Input: config.json (re-read; the config reader is config.c) and the architecture
 * entry. Output: two comma-separated lists, the keys present that lorajit knowingly
 * ignores (they do not change the forward pass) and those it does not know. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "formats.h"

/* Read by config.c for every architecture (besides LJ_CONFIG_FIELDS and the entry's
 * bias and refused fields). */
static const char *const read_keys[] = {"model_type", "hidden_act", "rope_scaling",
                                        "original_max_position_embeddings", /* longrope (rope.c) */
                                        NULL};

/* Present in published configs, no effect on the logits lorajit computes. */
static const char *const ignored_keys[] = {
    "architectures", "torch_dtype", "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id",
    "initializer_range", "use_cache", "attention_dropout", "pretraining_tp", "_name_or_path", "dtype",
    "max_window_layers", /* Qwen2/3: only with use_sliding_window, refused */
    "layer_types",       /* Qwen2/3 (transformers >= 4.53): all full attention unless use_sliding_window */
    "embd_pdrop", "resid_pdrop", /* Phi-3: dropout, training only */
    "attention_bias",            /* Phi-3's configs carry it; modeling_phi3.py builds no bias (read where an
                                    entry lists it as a bias field: llama, qwen3, gemma) */
    NULL};

static bool listed(const char *const *list, const char *key) {
    for (; list && *list; list++)
        if (!strcmp(*list, key)) return true;
    return false;
}

static bool read_by(const lj_arch *a, const char *key) {
#define FIELD_NAME(hf, member, kind, need, def, max) #hf,
    static const char *const fields[] = {LJ_CONFIG_FIELDS(FIELD_NAME) NULL};
#undef FIELD_NAME
    if (listed(read_keys, key) || listed(fields, key) || listed(a->refused, key) || listed(a->unit_fields, key) ||
        (a->act_field && !strcmp(a->act_field, key)))
        return true;
    for (int i = 0; i < a->n_biases; i++)
        if (!strcmp(a->biases[i].field, key)) return true;
    return false;
}

static void append(char *out, size_t cap, const char *key) {
    size_t n = strlen(out);
    if (n < cap) snprintf(out + n, cap - n, "%s%s", n ? ", " : "", key);
}

lorajit_status lj_config_unread_keys(const char *path, const lj_arch *a, char *ignored, char *unknown, size_t cap,
                                     lj_err *err) {
    cJSON *j = NULL;
    ignored[0] = unknown[0] = '\0';
    lorajit_status s = lj_json_read(path, LJ_JSON_MAX_BYTES, &j, err);
    if (s) return s;
    const cJSON *item;
    cJSON_ArrayForEach(item, j) {
        if (!item->string || read_by(a, item->string)) continue;
        append(listed(ignored_keys, item->string) ? ignored : unknown, cap, item->string);
    }
    cJSON_Delete(j);
    return LORAJIT_OK;
}
