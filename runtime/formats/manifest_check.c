/* manifest_check.c — the sizes an artifact's manifest states, recomputed from its
 * config and schema (lj_manifest_check_sizes). Every weight's shape (embedding and
 * lm_head [vocab, dim], norms [dim], each linear [out, in] and bias [out] of its
 * module), the number of weights, every LoRA site's in and out (the slot sizes), and
 * the attention row the scratch must hold are derived here and compared; the KV
 * cache is sized by the runtime from the config alone. The scratch sizes proper
 * come from the IR planner: the library states them (lj_scratch_per_token,
 * lj_scratch_fixed) and serving/artifact.c compares them before loading it.
 * A manifest that disagrees is E_FORMAT naming the field and both values. */
#include <stdio.h>
#include <string.h>

#include "formats.h"

/* E_FORMAT: field (with its index) is got, the config and schema make it want. */
static lorajit_status differs(const char *path, const char *field, int i, const char *what, int64_t got, int64_t want,
                              lj_err *err) {
    return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"%s[%d].%s\" is %lld; the config and schema make it %lld "
                   "(the manifest was forged or is corrupt)", path, field, i, what, (long long)got, (long long)want);
}

/* The shape weight w must have under c: a module's linear or bias, else a norm
 * [dim] or a table [vocab, dim]. */
static void weight_shape(const lj_config *c, const lj_arch *arch, const lj_weight_desc *w, int64_t *rows,
                         int64_t *cols) {
    char mod[320];
    size_t n = strlen(w->name);
    int layer, m;
    bool bias = n > 5 && !strcmp(w->name + n - 5, ".bias"), weight = n > 7 && !strcmp(w->name + n - 7, ".weight");
    size_t stem = n - (bias ? 5 : weight ? 7 : 0);
    if ((bias || weight) && stem < sizeof mod) {
        memcpy(mod, w->name, stem);
        mod[stem] = '\0';
        if (lj_arch_path_parse(arch, mod, &layer, &m) && layer < c->n_layers) {
            int64_t in, out;
            lj_arch_linear_shape(c, m, &in, &out);
            *rows = out, *cols = bias ? 0 : in;
            return;
        }
    }
    /* Qwen3's per-head norms (LJ_BLOCK_QK_NORM): [head_dim] */
    if ((arch->block & LJ_BLOCK_QK_NORM) && n > 23 && (!strcmp(w->name + n - 23, "self_attn.q_norm.weight") ||
                                                       !strcmp(w->name + n - 23, "self_attn.k_norm.weight"))) {
        *rows = c->head_size, *cols = 0;
        return;
    }
    *rows = w->cols ? c->vocab_size : c->dim, *cols = w->cols ? c->dim : 0;
}

lorajit_status lj_manifest_check_sizes(const lj_layout *L, const char *path, lj_err *err) {
    const lj_config *c = &L->cfg;
    const lj_arch *arch = lj_arch_get(c->arch);
    if (arch->frontend != LJ_FE_LLAMA)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: sizes of model_type \"%s\" cannot be checked", path,
                       arch->model_type);
    int64_t biases = 0;
    for (int m = 0; m < arch->n_modules; m++) biases += (c->bias_mask >> m) & 1;
    int64_t norms = 2 + ((arch->block & LJ_BLOCK_QK_NORM) ? 2 : 0); /* per layer */
    int64_t want = 2 + c->n_layers * (norms + arch->n_modules + biases) + (c->tie_embeddings ? 0 : 1);
    if (L->n_weights != want)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"weights\" lists %d tensors; the config makes it %lld "
                       "(the manifest was forged or is corrupt)", path, L->n_weights, (long long)want);
    for (int i = 0; i < L->n_weights; i++) {
        int64_t rows, cols;
        weight_shape(c, arch, &L->weights[i], &rows, &cols);
        if (L->weights[i].rows != rows) return differs(path, "weights", i, "shape[0]", L->weights[i].rows, rows, err);
        if (L->weights[i].cols != cols) return differs(path, "weights", i, "shape[1]", L->weights[i].cols, cols, err);
    }
    for (int i = 0; i < L->n_sites; i++) {
        int64_t in, out;
        lj_arch_linear_shape(c, L->sites[i].module, &in, &out);
        if (L->sites[i].in != in) return differs(path, "lora_sites", i, "in", L->sites[i].in, in, err);
        if (L->sites[i].out != out) return differs(path, "lora_sites", i, "out", L->sites[i].out, out, err);
    }
    if (L->scratch_fixed < L->schema.seq_len) /* one attention row [seq_len] at least */
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"scratch_floats.fixed\" is %lld; an attention row of "
                       "max_seq_len needs %lld", path, (long long)L->scratch_fixed, (long long)L->schema.seq_len);
    return LORAJIT_OK;
}
