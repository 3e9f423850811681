/* codegen.c — lowers a planned IR graph to one LLVM function:
 *   int lj_forward(const lj_ctx *ctx, const int32_t *tokens, int64_t n, int64_t pos0, float *logits)
 * Each node becomes a call of its op's kernel (cg_kernels.c) on pointers taken
 * from ctx at run time (weights, slots, active set, scratch, KV cache, BLAS), so
 * new adapter data or a new active set never needs new code.
 * Input: a verified, planned graph; output: the function in the given module. */
#include <stddef.h>
#include <stdlib.h>

#include "compiler.h"

/* Values of lj_forward's parameters and ctx fields, loaded once at entry. */
typedef struct fwd {
    LLVMValueRef tokens, n, pos0, logits;
    LLVMValueRef weights, sites, active, scratch, key_cache, value_cache, sgemm, sgemv;
} fwd;

static LLVMValueRef call(cg *c, LLVMValueRef fn, LLVMValueRef *args, unsigned n) {
    return LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, n, "");
}

/* scratch + off * n floats */
static LLVMValueRef scratch_at(cg *c, const fwd *f, int64_t off_per_token) {
    LLVMValueRef idx = LLVMBuildNSWMul(c->b, f->n, cg_i64(c, off_per_token), "");
    return cg_gep(c, c->f32, f->scratch, idx);
}

/* The data pointer of node nd; vals holds those of earlier nodes. */
static LLVMValueRef node_ptr(cg *c, const fwd *f, const ir_node *nd, LLVMValueRef *vals) {
    switch (nd->buf) {
    case IR_BUF_INPUT: return f->tokens;
    case IR_BUF_WEIGHT: return cg_ld_at(c, c->ptr, f->weights, (int64_t)nd->weight_id * 8);
    case IR_BUF_SCRATCH: return scratch_at(c, f, nd->buf_off);
    case IR_BUF_OUTPUT: return f->logits;
    case IR_BUF_INPLACE: return vals[nd->in[0]->id];
    case IR_BUF_NONE: break;
    }
    return NULL;
}

/* Emits the call for one node. Returns false for a node the plan left unplaced. */
static bool emit_node(cg *c, const ir_graph *g, const fwd *f, const ir_node *nd, LLVMValueRef *vals) {
    LLVMValueRef out = node_ptr(c, f, nd, vals);
    if (!out) return false;
    vals[nd->id] = out;
    LLVMValueRef in0 = nd->n_in > 0 ? vals[nd->in[0]->id] : NULL;
    LLVMValueRef in1 = nd->n_in > 1 ? vals[nd->in[1]->id] : NULL;
    switch (nd->op) {
    case IR_OP_INPUT:
    case IR_OP_WEIGHT:
    case IR_OP_OUTPUT:
        return true;
    case IR_OP_EMBED: {
        LLVMValueRef a[4] = {in0, in1, f->n, out};
        call(c, cg_kernel_embed(c, nd->shape[1]), a, 4);
        return true;
    }
    case IR_OP_RMSNORM: {
        LLVMValueRef a[4] = {in0, in1, f->n, out};
        call(c, cg_kernel_rmsnorm(c, nd->shape[1], nd->eps), a, 4);
        return true;
    }
    case IR_OP_MATMUL: {
        LLVMValueRef a[6] = {in0, in1, f->n, out, f->sgemm, f->sgemv};
        call(c, cg_kernel_matmul(c, nd->shape[1], nd->in[0]->shape[1]), a, 6);
        return true;
    }
    case IR_OP_BIAS_ADD: {
        LLVMValueRef a[3] = {out, in1, f->n};
        call(c, cg_kernel_bias_add(c, nd->shape[1]), a, 3);
        return true;
    }
    case IR_OP_LORA: {
        LLVMValueRef site = cg_gep(c, LLVMInt8TypeInContext(c->llctx), f->sites,
                                   cg_i64(c, (int64_t)nd->site * (int64_t)sizeof(lj_lora_site)));
        LLVMValueRef a[8] = {out, in1, f->n, site, f->active, scratch_at(c, f, g->lora_t_off),
                             f->sgemm, f->sgemv};
        call(c, cg_kernel_lora(c, nd->in[1]->shape[1], nd->shape[1], g->r_max), a, 8);
        return true;
    }
    case IR_OP_ROPE: {
        LLVMValueRef a[3] = {out, f->n, f->pos0};
        call(c, cg_kernel_rope(c, nd->n_heads, nd->head_size, nd->rope_theta), a, 3);
        return true;
    }
    case IR_OP_ATTENTION: {
        int64_t kv_dim = (int64_t)nd->n_kv_heads * nd->head_size;
        int64_t layer_off = (int64_t)nd->layer * g->seq_len * kv_dim;
        LLVMValueRef kc = cg_gep(c, c->f32, f->key_cache, cg_i64(c, layer_off));
        LLVMValueRef vc = cg_gep(c, c->f32, f->value_cache, cg_i64(c, layer_off));
        LLVMValueRef att = scratch_at(c, f, g->scratch_per_token); /* fixed part: [seq_len] */
        LLVMValueRef a[9] = {in0, in1, vals[nd->in[2]->id], f->n, f->pos0, kc, vc, att, out};
        call(c, cg_kernel_attention(c, nd->n_heads, nd->n_kv_heads, nd->head_size), a, 9);
        return true;
    }
    case IR_OP_SILU_MUL: {
        LLVMValueRef a[4] = {in0, in1, f->n, out};
        call(c, cg_kernel_silu_mul(c, nd->shape[1]), a, 4);
        return true;
    }
    case IR_OP_ADD: {
        LLVMValueRef a[4] = {in0, in1, f->n, out};
        call(c, cg_kernel_add(c, nd->shape[1]), a, 4);
        return true;
    }
    case IR_OP_COUNT:
        break;
    }
    return false;
}

lorajit_status cg_module_build(const ir_graph *g, LLVMContextRef llctx, LLVMModuleRef mod, lj_err *err) {
    cg c;
    cg_init(&c, llctx, mod);
    LLVMTypeRef params[5] = {c.ptr, c.ptr, c.i64, c.i64, c.ptr};
    LLVMValueRef fn = LLVMAddFunction(mod, LJ_FORWARD_SYMBOL, LLVMFunctionType(c.i32, params, 5, 0));
    c.fn = fn;
    c.entry = LLVMAppendBasicBlockInContext(llctx, fn, "entry");
    LLVMPositionBuilderAtEnd(c.b, c.entry);

    LLVMValueRef ctx = LLVMGetParam(fn, 0);
    fwd f = {
        .tokens = LLVMGetParam(fn, 1), .n = LLVMGetParam(fn, 2), .pos0 = LLVMGetParam(fn, 3),
        .logits = LLVMGetParam(fn, 4),
        .weights = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, weights)),
        .sites = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, sites)),
        .active = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, active)),
        .scratch = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, scratch)),
        .key_cache = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, key_cache)),
        .value_cache = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, value_cache)),
        .sgemm = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, sgemm)),
        .sgemv = cg_ld_at(&c, c.ptr, ctx, offsetof(lj_ctx, sgemv)),
    };
    LLVMValueRef *vals = calloc((size_t)g->n_nodes, sizeof *vals);
    if (!vals) {
        cg_fini(&c);
        return lj_fail(err, LORAJIT_E_NOMEM, "codegen: out of memory");
    }
    lorajit_status st = LORAJIT_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = g->nodes[i];
        if (!emit_node(&c, g, &f, nd, vals)) {
            st = lj_fail(err, LORAJIT_E_COMPILE, "codegen: node '%s' (%s) has no planned buffer",
                         nd->name ? nd->name : "?", ir_op_name(nd->op));
            break;
        }
    }
    if (st == LORAJIT_OK) LLVMBuildRet(c.b, cg_i32(&c, 0));
    free(vals);
    cg_fini(&c);
    return st;
}
