/* codegen.c — lowers a planned IR graph to the two entry points of ctx.h:
 *   lj_forward: n tokens of one sequence at positions pos0.. (prefill, full forward)
 *   lj_decode:  n rows, row i one token of sequence seq[i] at pos[i] with adapters active[i]
 * Both walk the same graph; they differ only in RoPE, attention and LoRA, which
 * in lj_decode run per row (own position, own KV cache, own slots: a gathered
 * batched LoRA) while every matmul runs once over all rows. Each node becomes a
 * call of its op's kernel (cg_kernels.c, cg_attention.c) on pointers taken from ctx
 * at run time, so new adapter data or a new active set never needs new code; the
 * KV cache is paged, read through ctx's block tables (no cache stride compiled in).
 * Layers that repeat layer 0's (or 1's) nodes with ids advancing by a constant stride
 * and the same scratch are emitted once, in a loop over layers (find_layer_loop), so
 * code size and compile time do not grow with n_layers; anything else stays
 * straight-line (LORAJIT_UNROLL_LAYERS=1 forces that, to compare).
 * Input: a verified, planned graph; output: the functions in the given module. */
#include <stddef.h>
#include <stdlib.h>

#include "compiler.h"

/* Values of the entry point's parameters and ctx fields, loaded once at entry. */
typedef struct fwd {
    bool decode;                      /* lj_decode: per-row pos, seq, active */
    LLVMValueRef tokens, n, logits;
    LLVMValueRef pos0;                /* lj_forward: i64 */
    LLVMValueRef pos, row_active;     /* lj_decode: i64 [n], ptr [n] (seq [n] is not read) */
    int64_t n_layers;                 /* layers with attention: the pools' second dimension */
    LLVMValueRef weights, sites, active, scratch, key_cache, value_cache, sgemm, sgemv,
        small_rows, parallel, pool, rope, rope_stride, amx;
    LLVMValueRef block_table, block_table_stride, block_size; /* the paged KV cache (ctx.h) */
    LLVMValueRef block_shift;         /* log2(block_size) */
    LLVMValueRef lrel;                /* inside the layer loop: i64 layer - first looped layer; else NULL */
    int64_t weight_stride, site_stride; /* ids advance by these per layer inside the loop */
} fwd;

/* &base[row * cols] */
static LLVMValueRef row_ptr(cg *c, LLVMValueRef base, LLVMValueRef row, int64_t cols) {
    return cg_gep(c, c->f32, base, LLVMBuildNSWMul(c->b, row, cg_i64(c, cols), ""));
}

/* Loads element row of an array of elem (pos, seq or active pointers). */
static LLVMValueRef row_elem(cg *c, LLVMTypeRef elem, LLVMValueRef arr, LLVMValueRef row) {
    return LLVMBuildLoad2(c->b, elem, cg_gep(c, elem, arr, row), "");
}

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
    case IR_BUF_WEIGHT:
        if (f->lrel) { /* weights[weight_id + lrel * weight_stride] */
            LLVMValueRef id = LLVMBuildNSWAdd(c->b, cg_i64(c, nd->weight_id),
                                              LLVMBuildNSWMul(c->b, f->lrel, cg_i64(c, f->weight_stride), ""), "");
            return row_elem(c, c->ptr, f->weights, id);
        }
        return cg_ld_at(c, c->ptr, f->weights, (int64_t)nd->weight_id * 8);
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
        call(c, cg_kernel_embed(c, nd->shape[1], nd->in[0]->dtype, nd->scale), a, 4);
        return true;
    }
    case IR_OP_RMSNORM: {
        /* per head (Qwen3's q_norm, k_norm): n * n_heads rows of head_size */
        LLVMValueRef rows = nd->head_size ? LLVMBuildNSWMul(c->b, f->n, cg_i64(c, nd->n_heads), "") : f->n;
        LLVMValueRef a[4] = {in0, in1, rows, out};
        call(c, cg_kernel_rmsnorm(c, nd->head_size ? nd->head_size : nd->shape[1], nd->eps, nd->w_offset), a, 4);
        return true;
    }
    case IR_OP_MATMUL: {
        LLVMValueRef wconv = cg_gep(c, c->f32, scratch_at(c, f, g->scratch_per_token), cg_i64(c, g->seq_len));
        LLVMValueRef a[13] = {in0, in1, f->n, out, f->sgemm, f->sgemv, f->small_rows, wconv, f->parallel, f->pool,
                              cg_i64(c, nd->shape[1]), cg_i64(c, nd->in[0]->shape[1]), f->amx};
        call(c, cg_kernel_matmul(c, nd->shape[1], nd->in[0]->shape[1], nd->in[1]->dtype), a, 13);
        return true;
    }
    case IR_OP_BIAS_ADD: {
        LLVMValueRef a[3] = {out, in1, f->n};
        call(c, cg_kernel_bias_add(c, nd->shape[1]), a, 3);
        return true;
    }
    case IR_OP_LORA: {
        LLVMValueRef site_id = cg_i64(c, nd->site);
        if (f->lrel)
            site_id = LLVMBuildNSWAdd(c->b, site_id, LLVMBuildNSWMul(c->b, f->lrel, cg_i64(c, f->site_stride), ""), "");
        LLVMValueRef site = cg_gep(c, LLVMInt8TypeInContext(c->llctx), f->sites,
                                   LLVMBuildNSWMul(c->b, site_id, cg_i64(c, (int64_t)sizeof(lj_lora_site)), ""));
        int64_t in = nd->in[1]->shape[1], cols = nd->shape[1];
        LLVMValueRef t = scratch_at(c, f, g->lora_t_off);
        if (!f->decode) { /* wide: the wconv block, free once the matmul before is done (ir_plan sizes it) */
            LLVMValueRef wide = cg_gep(c, c->f32, scratch_at(c, f, g->scratch_per_token), cg_i64(c, g->seq_len));
            LLVMValueRef a[12] = {out, in1, f->n, site, f->active, t, f->sgemm, f->sgemv, f->small_rows,
                                  cg_i64(c, in), cg_i64(c, cols), wide};
            call(c, cg_kernel_lora(c, g->r_max, g->lora_dtype), a, 12);
            return true;
        }
        /* each row gathers its own slots (BGMV), rows on ctx's threads */
        LLVMValueRef a[10] = {out, in1, f->n, site, f->row_active, t, cg_i64(c, in), cg_i64(c, cols), f->parallel,
                              f->pool};
        call(c, cg_kernel_lora_rows(c, g->r_max, g->lora_dtype), a, 10);
        return true;
    }
    case IR_OP_ROPE: {
        /* theta and the scaling type are not compiled in: the tables come through ctx.rope */
        LLVMValueRef k = cg_kernel_rope(c, nd->n_heads, nd->head_size);
        if (!f->decode) {
            LLVMValueRef a[4] = {out, f->n, f->pos0, f->rope};
            call(c, k, a, 4);
            return true;
        }
        cg_loop r; /* row i: its own position and its own sequence's table */
        LLVMValueRef row = cg_for(c, &r, cg_i64(c, 0), f->n, "row");
        LLVMValueRef table = cg_gep(c, c->f32, f->rope, LLVMBuildNSWMul(c->b, row, f->rope_stride, ""));
        LLVMValueRef a[4] = {row_ptr(c, out, row, nd->shape[1]), cg_i64(c, 1), row_elem(c, c->i64, f->pos, row),
                             table};
        call(c, k, a, 4);
        cg_end(c, &r);
        return true;
    }
    case IR_OP_ATTENTION: {
        /* the pools [n_blocks, n_layers, block_size, kv_dim] at this layer; a block spans
           n_layers * block_size * kv_dim elements of g->kv_dtype (block_size read at run time) */
        int64_t kv_dim = (int64_t)nd->n_kv_heads * nd->head_size;
        LLVMValueRef per_layer = LLVMBuildNSWMul(c->b, f->block_size, cg_i64(c, kv_dim), "");
        LLVMValueRef layer = cg_i64(c, nd->layer);
        if (f->lrel) layer = LLVMBuildNSWAdd(c->b, layer, f->lrel, "");
        LLVMValueRef layer_off = LLVMBuildNSWMul(c->b, per_layer, layer, "");
        LLVMValueRef block_stride = LLVMBuildNSWMul(c->b, per_layer, cg_i64(c, f->n_layers), "");
        LLVMValueRef kc = cg_gep(c, cg_kv_elem(c, g->kv_dtype), f->key_cache, layer_off);
        LLVMValueRef vc = cg_gep(c, cg_kv_elem(c, g->kv_dtype), f->value_cache, layer_off);
        LLVMValueRef att = scratch_at(c, f, g->scratch_per_token); /* fixed part: [seq_len] */
        LLVMValueRef k = cg_kernel_attention(c, nd->n_heads, nd->n_kv_heads, nd->head_size, nd->window, g->kv_dtype);
        if (!f->decode) {
            LLVMValueRef a[12] = {in0, in1, vals[nd->in[2]->id], f->n, f->pos0, kc, vc, f->block_table,
                                  f->block_shift, block_stride, att, out};
            call(c, k, a, 12);
            return true;
        }
        cg_loop r; /* each row: its own block table, its own position */
        LLVMValueRef row = cg_for(c, &r, cg_i64(c, 0), f->n, "row");
        LLVMValueRef table = cg_gep(c, c->i32, f->block_table, LLVMBuildNSWMul(c->b, row, f->block_table_stride, ""));
        int64_t qd = nd->shape[1];
        LLVMValueRef a[12] = {row_ptr(c, in0, row, qd), row_ptr(c, in1, row, kv_dim),
                              row_ptr(c, vals[nd->in[2]->id], row, kv_dim), cg_i64(c, 1),
                              row_elem(c, c->i64, f->pos, row), kc, vc, table, f->block_shift, block_stride,
                              att, row_ptr(c, out, row, qd)};
        call(c, k, a, 12);
        cg_end(c, &r);
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
    case IR_OP_SLICE: {
        LLVMValueRef a[3] = {in0, f->n, out};
        call(c, cg_kernel_slice(c, nd->in[0]->shape[1], nd->col0, nd->shape[1]), a, 3);
        return true;
    }
    case IR_OP_GELU_MUL: {
        LLVMValueRef a[4] = {in0, in1, f->n, out};
        call(c, cg_kernel_gelu_mul(c, nd->shape[1]), a, 4);
        return true;
    }
    case IR_OP_COUNT:
        break;
    }
    return false;
}

/* Layers with attention (the KV pools' n_layers). */
static int64_t attention_layers(const ir_graph *g) {
    int64_t n_layers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = g->nodes[i];
        if (nd->op == IR_OP_ATTENTION && nd->layer + 1 > n_layers) n_layers = nd->layer + 1;
    }
    return n_layers;
}

/* The repeated layer body: nodes [start, start + period) are layer `first`'s, and
 * each later layer l < n_layers repeats them at start + (l - first) * period with
 * weight ids and site ids advanced by a constant stride, the same scratch offsets,
 * attention at layer l, and inputs that are either the same node or the node one
 * period on with the same buffer. Such layers are emitted once, inside a loop. */
typedef struct layer_loop {
    int start, period, first, n_layers; /* looped layers first .. n_layers - 1 */
    int64_t weight_stride, site_stride;
} layer_loop;

/* Whether node b (period copies after a) is a's repeat; ws, ss: strides, -1 unknown yet. */
static bool node_repeats(const ir_graph *g, const layer_loop *L, const ir_node *a, const ir_node *b, int copies,
                         int64_t *ws, int64_t *ss) {
    if (a->op != b->op || a->n_in != b->n_in || a->dtype != b->dtype || a->ndim != b->ndim ||
        a->shape[0] != b->shape[0] || a->shape[1] != b->shape[1] || a->buf != b->buf || a->buf_off != b->buf_off ||
        a->eps != b->eps || a->w_offset != b->w_offset || a->scale != b->scale || a->col0 != b->col0 ||
        a->n_heads != b->n_heads || a->n_kv_heads != b->n_kv_heads || a->head_size != b->head_size ||
        a->window != b->window || a->rope_theta != b->rope_theta)
        return false;
    if ((a->layer < 0) != (b->layer < 0) || (a->layer >= 0 && b->layer != a->layer + copies)) return false;
    if (a->op == IR_OP_WEIGHT) {
        int64_t d = b->weight_id - a->weight_id;
        if (*ws < 0 && copies == 1) *ws = d;
        if (*ws < 0 || d != *ws * copies) return false;
    }
    if (a->op == IR_OP_LORA) {
        int64_t d = b->site - a->site;
        if (*ss < 0 && copies == 1) *ss = d;
        if (*ss < 0 || d != *ss * copies) return false;
    }
    int end = L->start + L->period;
    for (int j = 0; j < a->n_in; j++) {
        const ir_node *x = a->in[j], *y = b->in[j];
        if (x->id >= L->start && x->id < end) {
            if (y->id != x->id + copies * L->period) return false;
        } else if (x != y) {
            /* an input before the body: the same node, or its repeat with the same scratch buffer */
            if (y->op != x->op || (x->buf != IR_BUF_SCRATCH && x->buf != IR_BUF_INPLACE) || y->buf != x->buf ||
                y->buf_off != x->buf_off || y->shape[1] != x->shape[1])
                return false;
        }
    }
    return true;
}

/* Finds the loop over layers: the body of layer 0 (or 1, whose scratch may differ
 * from layer 0's), repeated by every later layer. false: emit straight-line. */
static bool find_layer_loop(const ir_graph *g, layer_loop *L) {
    int n_layers = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->layer + 1 > n_layers) n_layers = g->nodes[i]->layer + 1;
    int p0 = -1, p1 = -1; /* first nodes of layers 0 and 1: the period */
    for (int i = 0; i < g->n_nodes; i++) {
        if (p0 < 0 && g->nodes[i]->layer == 0) p0 = i;
        if (p1 < 0 && g->nodes[i]->layer == 1) p1 = i;
    }
    if (p0 < 0 || p1 <= p0) return false;
    for (int first = 0; first < 2 && first < n_layers; first++) {
        int s0 = p0 + first * (p1 - p0);
        if (g->nodes[s0]->layer != first) continue;
        *L = (layer_loop){.start = s0, .period = p1 - p0, .first = first, .n_layers = n_layers};
        if (s0 + (int64_t)(n_layers - first) * L->period > g->n_nodes) continue;
        int64_t ws = -1, ss = -1;
        bool ok = true;
        for (int copies = 1; ok && copies < n_layers - first; copies++)
            for (int i = 0; ok && i < L->period; i++)
                ok = node_repeats(g, L, g->nodes[s0 + i], g->nodes[s0 + i + copies * L->period], copies, &ws, &ss);
        /* nodes after the loop may only read its last layer through scratch (checked in node_repeats' terms) */
        int end = s0 + (n_layers - first) * L->period;
        for (int i = end; ok && i < g->n_nodes; i++)
            for (int j = 0; j < g->nodes[i]->n_in; j++) {
                const ir_node *x = g->nodes[i]->in[j];
                if (x->id >= s0 && x->id < end && x->buf != IR_BUF_SCRATCH && x->buf != IR_BUF_INPLACE) ok = false;
            }
        if (!ok) continue;
        L->weight_stride = ws < 0 ? 0 : ws;
        L->site_stride = ss < 0 ? 0 : ss;
        return true;
    }
    return false;
}

/* The scratch pointer of a looped node, rebuilt after the loop (the body's values do
 * not dominate the exit). */
static LLVMValueRef scratch_ptr(cg *c, const fwd *f, const ir_graph *g, const ir_node *nd) {
    while (nd->buf == IR_BUF_INPLACE) nd = g->nodes[nd->in[0]->id];
    return scratch_at(c, f, nd->buf_off);
}

/* Builds one entry point (lj_forward or lj_decode) over g. */
static lorajit_status build_entry(cg *c, const ir_graph *g, bool decode, lj_err *err) {
    LLVMTypeRef fwd_params[5] = {c->ptr, c->ptr, c->i64, c->i64, c->ptr};
    LLVMTypeRef dec_params[7] = {c->ptr, c->ptr, c->i64, c->ptr, c->ptr, c->ptr, c->ptr};
    LLVMTypeRef ty = decode ? LLVMFunctionType(c->i32, dec_params, 7, 0) : LLVMFunctionType(c->i32, fwd_params, 5, 0);
    LLVMValueRef fn = LLVMAddFunction(c->mod, decode ? LJ_DECODE_SYMBOL : LJ_FORWARD_SYMBOL, ty);
    c->fn = fn;
    c->entry = LLVMAppendBasicBlockInContext(c->llctx, fn, "entry");
    LLVMPositionBuilderAtEnd(c->b, c->entry);

    LLVMValueRef ctx = LLVMGetParam(fn, 0);
    fwd f = {
        .decode = decode, .tokens = LLVMGetParam(fn, 1), .n = LLVMGetParam(fn, 2),
        .logits = LLVMGetParam(fn, decode ? 6 : 4), .n_layers = attention_layers(g),
        .weights = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, weights)),
        .sites = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, sites)),
        .active = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, active)),
        .scratch = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, scratch)),
        .key_cache = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, key_cache)),
        .value_cache = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, value_cache)),
        .sgemm = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, sgemm)),
        .sgemv = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, sgemv)),
        .small_rows = cg_ld_at(c, c->i64, ctx, offsetof(lj_ctx, small_rows)),
        .parallel = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, parallel)),
        .pool = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, pool)),
        .rope = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, rope)),
        .rope_stride = cg_ld_at(c, c->i64, ctx, offsetof(lj_ctx, rope_stride)),
        .block_table = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, block_table)),
        .block_table_stride = cg_ld_at(c, c->i64, ctx, offsetof(lj_ctx, block_table_stride)),
        .block_size = cg_ld_at(c, c->i64, ctx, offsetof(lj_ctx, block_size)),
        .amx = cg_ld_at(c, c->ptr, ctx, offsetof(lj_ctx, matmul_bf16_amx)),
    };
    f.block_shift = cg_log2_pow2(c, f.block_size);
    if (decode) {
        f.pos = LLVMGetParam(fn, 3);
        f.row_active = LLVMGetParam(fn, 5);
    } else {
        f.pos0 = LLVMGetParam(fn, 3);
    }
    LLVMValueRef *vals = calloc((size_t)g->n_nodes, sizeof *vals);
    if (!vals) return lj_fail(err, LORAJIT_E_NOMEM, "codegen: out of memory");
    lorajit_status st = LORAJIT_OK;
    layer_loop L;
    bool looped = !getenv("LORAJIT_UNROLL_LAYERS") && find_layer_loop(g, &L);
    int loop_end = looped ? L.start + (L.n_layers - L.first) * L.period : -1;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const ir_node *nd = g->nodes[i];
        if (looped && i == L.start) { /* layers first .. n_layers - 1: one body, in a loop */
            cg_loop lp;
            f.lrel = cg_for(c, &lp, cg_i64(c, 0), cg_i64(c, L.n_layers - L.first), "layer");
            f.weight_stride = L.weight_stride;
            f.site_stride = L.site_stride;
            for (int k = L.start; k < L.start + L.period && !st; k++)
                if (!emit_node(c, g, &f, g->nodes[k], vals))
                    st = lj_fail(err, LORAJIT_E_COMPILE, "codegen: node '%s' (%s) has no planned buffer",
                                 g->nodes[k]->name ? g->nodes[k]->name : "?", ir_op_name(g->nodes[k]->op));
            cg_end_no_unroll(c, &lp, true);
            f.lrel = NULL;
            for (int k = L.start; k < loop_end && !st; k++) {
                const ir_node *m = g->nodes[k];
                vals[k] = m->buf == IR_BUF_SCRATCH || m->buf == IR_BUF_INPLACE ? scratch_ptr(c, &f, g, m) : NULL;
            }
            i = loop_end - 1;
            continue;
        }
        if (!emit_node(c, g, &f, nd, vals))
            st = lj_fail(err, LORAJIT_E_COMPILE, "codegen: node '%s' (%s) has no planned buffer",
                         nd->name ? nd->name : "?", ir_op_name(nd->op));
    }
    if (!st) LLVMBuildRet(c->b, cg_i32(c, 0));
    free(vals);
    return st;
}

lorajit_status cg_module_build(const ir_graph *g, LLVMContextRef llctx, LLVMModuleRef mod, const char *cpu,
                               const char *features, cg_matmuls *matmuls, lj_err *err) {
    cg c;
    cg_init(&c, llctx, mod);
    cg_matmul16_target(&c, cpu, features);
    *matmuls = (cg_matmuls){.rows_exact = true, .bf16_dot = c.bf16_dot, .amx = c.amx};
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == IR_OP_MATMUL && g->nodes[i]->in[1]->dtype == IR_F32) matmuls->rows_exact = false;
    lorajit_status st = build_entry(&c, g, false, err);
    if (!st) st = build_entry(&c, g, true, err);
    cg_fini(&c);
    return st;
}
