/* layout.c — the lj_layout handle: what the compiled code expects.
 *
 * compiler/ fills it (weights by id: tensor name and shape; LoRA sites by id:
 * layer, module, in, out; scratch sizes) and the runtime owns it afterwards.
 * This file only allocates, frees and looks up sites. */
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
    free(L->sites);
    free(L);
}

int lj_layout_site(const lj_layout *L, int layer, int module) {
    for (int i = 0; i < L->n_sites; i++)
        if (L->sites[i].layer == layer && L->sites[i].module == module) return i;
    return -1;
}
