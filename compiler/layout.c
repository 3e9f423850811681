/* layout.c — a planned IR graph -> the runtime's lj_layout.
 *
 * Inputs: a planned graph, the config and schema it was built from.
 * Output: an lj_layout the runtime owns: the weights by weight id (tensor name,
 * shape and the dtype the code reads), the LoRA sites by site id (layer, module,
 * in = K, out = N, HF module path), copies of cfg and schema, and the plan's
 * scratch sizes. Strings and arrays are malloc'd so that lj_layout_free() can free them. */
#include <string.h>

#include "compiler.h"

lorajit_status fe_layout(const ir_graph *g, const lj_config *cfg, const lj_schema *schema,
                         lj_layout **out, lj_err *err) {
    *out = NULL;
    IR_ASSERT(g->status == LORAJIT_OK && g->n_nodes > 0 && g->nodes[0]->buf != IR_BUF_NONE);
    lj_layout *L = lj_layout_new();
    if (!L) goto nomem;
    L->cfg = *cfg;
    L->schema = *schema;
    L->scratch_per_token = g->scratch_per_token;
    L->scratch_fixed = g->scratch_fixed;
    if (g->n_weights > 0) {
        L->weights = lj_calloc((size_t)g->n_weights, sizeof *L->weights);
        if (!L->weights) goto nomem;
        L->n_weights = g->n_weights; /* names NULL until set: lj_layout_free copes */
    }
    if (g->n_sites > 0) {
        L->sites = lj_calloc((size_t)g->n_sites, sizeof *L->sites);
        if (!L->sites) goto nomem;
        L->n_sites = g->n_sites;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->op == IR_OP_WEIGHT) {
            lj_weight_desc *w = &L->weights[n->weight_id];
            w->name = lj_strdup(n->tensor);
            if (!w->name) goto nomem;
            w->rows = n->shape[0];                     /* [rows, cols] or [rows] */
            w->cols = n->ndim == 2 ? n->shape[1] : 0;
            w->dtype = cg_lj_dtype(n->dtype);
        } else if (n->op == IR_OP_LORA) {
            lj_site_desc *s = &L->sites[n->site];
            s->layer = n->layer;
            s->module = n->module;
            s->in = n->in[1]->shape[1];                /* x [T, K] */
            s->out = n->shape[1];                      /* y [T, N] */
        }
    }
    if (lj_layout_site_paths(L, err)) { /* HF module paths, from the architecture table */
        lj_layout_free(L);
        return err->status;
    }
    *out = L;
    return LORAJIT_OK;
nomem:
    lj_layout_free(L);
    return lj_fail(err, LORAJIT_E_NOMEM, "out of memory building the layout");
}
