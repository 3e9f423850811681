/* layout.c — the lj_layout handle: what the compiled code expects.
 *
 * compiler/ fills it (weights by id: tensor name and shape; LoRA sites by id:
 * layer, module, in, out, HF module path; scratch sizes) and the runtime owns it
 * afterwards. This file allocates, frees, names sites from the architecture table
 * and looks them up. */
#include <stdio.h>
#include <stdlib.h>

#include "formats.h"

/* Caller owns the result (all fields zero, arrays NULL); free with lj_layout_free().
 * NULL when out of memory. */
lj_layout *lj_layout_new(void) {
    return lj_calloc(1, sizeof(lj_layout));
}

void lj_layout_free(lj_layout *L) {
    if (!L) return;
    if (L->weights)
        for (int i = 0; i < L->n_weights; i++) free(L->weights[i].name);
    free(L->weights);
    if (L->sites)
        for (int i = 0; i < L->n_sites; i++) free(L->sites[i].path);
    free(L->sites);
    free(L);
}

int lj_layout_site(const lj_layout *L, int layer, int module) {
    for (int i = 0; i < L->n_sites; i++)
        if (L->sites[i].layer == layer && L->sites[i].module == module) return i;
    return -1;
}

lorajit_status lj_layout_site_paths(lj_layout *L, lj_err *err) {
    const lj_arch *a = lj_arch_get(L->cfg.arch);
    for (int i = 0; i < L->n_sites; i++) {
        lj_site_desc *sd = &L->sites[i];
        int n = lj_arch_module_path(a, sd->layer, sd->module, NULL, 0);
        char *p = lj_malloc((size_t)n + 1);
        if (!p) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory naming LoRA site %d", i);
        lj_arch_module_path(a, sd->layer, sd->module, p, (size_t)n + 1);
        free(sd->path);
        sd->path = p;
    }
    return LORAJIT_OK;
}
