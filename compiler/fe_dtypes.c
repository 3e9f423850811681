/* fe_dtypes.c — the front end's second step: which weight matrices stay 16-bit.
 *
 * Input: a graph from fe_build (every weight f32) and the model folder.
 * Output: each weight matrix whose tensor the folder's safetensors hold as F16 or
 * BF16 gets that dtype, so the code reads it as stored (half the bytes of f32, the
 * kernels widen as they load); 1-D weights (norms, biases) stay f32 (the runtime
 * widens them at load). Every weight is checked against the files' headers here
 * (lj_weights_probe: present, shape, dtype), so a config asking for more than the
 * files hold fails before any code is made. A folder without weight files leaves
 * everything f32: that code takes weights of any dtype, widened at load. */
#include <stdlib.h>

#include "compiler.h"

int32_t cg_lj_dtype(ir_dtype d) {
    return d == IR_F16 ? LJ_DTYPE_F16 : d == IR_BF16 ? LJ_DTYPE_BF16 : LJ_DTYPE_F32;
}

ir_dtype ir_dtype_of(int32_t lj_dtype) {
    return lj_dtype == LJ_DTYPE_F16 ? IR_F16 : lj_dtype == LJ_DTYPE_BF16 ? IR_BF16 : IR_F32;
}

lorajit_status fe_weight_dtypes(ir_graph *g, const char *model_dir, lj_err *err) {
    int n = 0;
    ir_node **nodes = calloc((size_t)g->n_weights + 1, sizeof *nodes);
    lj_weight_desc *want = calloc((size_t)g->n_weights + 1, sizeof *want);
    lorajit_status st = LORAJIT_OK;
    if (!nodes || !want) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory reading weight dtypes");
        goto done;
    }
    for (int i = 0; i < g->n_nodes && n <= g->n_weights; i++) {
        ir_node *w = g->nodes[i];
        if (w->op != IR_OP_WEIGHT) continue;
        nodes[n] = w;
        want[n++] = (lj_weight_desc){.name = (char *)w->tensor, .rows = w->shape[0],
                                     .cols = w->ndim == 2 ? w->shape[1] : 0};
    }
    /* Every weight checked against the headers (present, shape, dtype) before any code. */
    if ((st = lj_weights_probe(model_dir, want, n, err))) goto done;
    for (int i = 0; i < n; i++)
        if (nodes[i]->ndim == 2)
            ir_set_weight_dtype(g, nodes[i], ir_dtype_of(want[i].dtype));
    if (g->status) st = lj_fail(err, g->status, "%s", g->msg);
done:
    free(nodes);
    free(want);
    return st;
}
