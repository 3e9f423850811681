/* cg_attention.c — the generated attention kernel: causal softmax attention with
 * grouped-query heads over the paged KV cache (ctx.h: a block pool read through
 * the sequence's block table, so no cache stride is compiled in). Numerics follow
 * transformers' LLaMA in fp32: paging changes only the addressing (any block size
 * gives the same bits). A 16-bit cache (kv_dtype f16 / bf16) rounds K and V as they
 * are written and widens them exactly as they are read; every sum stays f32.
 * Input: the head shapes, the sliding window, the KV dtype; output: the kernel in c->mod. */
#include <math.h>
#include <stdio.h>

#include "compiler.h"

/* &cache[position j] of one layer: cache + table[j >> shift] * block_stride +
 * (j & mask) * kv_dim, cache already offset to the layer (codegen.c). */
typedef struct paged {
    LLVMValueRef table, shift, mask, block_stride; /* block_stride in elements */
    int64_t kv_dim;
    LLVMTypeRef elem;                              /* f32, or i16 for a 16-bit cache */
} paged;

static LLVMValueRef paged_at(cg *c, const paged *p, LLVMValueRef cache, LLVMValueRef j) {
    LLVMValueRef slot = LLVMBuildAShr(c->b, j, p->shift, "");
    LLVMValueRef blk = LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, p->table, slot), "block");
    LLVMValueRef off = LLVMBuildNSWMul(c->b, LLVMBuildSExt(c->b, blk, c->i64, ""), p->block_stride, "");
    LLVMValueRef in = LLVMBuildNSWMul(c->b, LLVMBuildAnd(c->b, j, p->mask, ""), cg_i64(c, p->kv_dim), "");
    return cg_gep(c, p->elem, cache, LLVMBuildNSWAdd(c->b, off, in, ""));
}

LLVMTypeRef cg_kv_elem(cg *c, ir_dtype kv) { return kv == IR_F32 ? c->f32 : LLVMInt16TypeInContext(c->llctx); }

/* cache[idx] widened to f32, exactly: F16 through fpext (vcvtph2ps) when the target has
 * F16C, else cg_ld_weight's integer widening (any x86-64; the same value either way). */
static LLVMValueRef load_kv(cg *c, ir_dtype kv, LLVMValueRef cache, LLVMValueRef idx) {
    if (kv != IR_F16 || !c->f16c) return cg_ld_weight(c, kv, cache, idx);
    LLVMTypeRef half = LLVMHalfTypeInContext(c->llctx);
    return LLVMBuildFPExt(c->b, LLVMBuildLoad2(c->b, half, cg_gep(c, half, cache, idx), ""), c->f32, "");
}

/* dst[0..kv_dim) = src[0..kv_dim) (f32) stored as kv: a copy, or each value rounded to 16 bits. */
static void store_row(cg *c, ir_dtype kv, LLVMValueRef dst, LLVMValueRef src, int64_t kv_dim) {
    if (kv == IR_F32) {
        LLVMBuildMemCpy(c->b, dst, 4, src, 4, cg_i64(c, kv_dim * 4));
        return;
    }
    LLVMTypeRef i16 = cg_kv_elem(c, kv);
    cg_loop e;
    LLVMValueRef ie = cg_for(c, &e, cg_i64(c, 0), cg_i64(c, kv_dim), "e");
    LLVMBuildStore(c->b, cg_narrow16(c, kv, cg_ldf(c, src, ie)), cg_gep(c, i16, dst, ie));
    cg_end(c, &e);
}

static LLVMValueRef ldv(cg *c, LLVMValueRef var) { return LLVMBuildLoad2(c->b, c->f32, var, ""); }
static void stv(cg *c, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(c->b, v, var); }
static LLVMValueRef at(cg *c, LLVMValueRef base, LLVMValueRef idx) { return cg_gep(c, c->f32, base, idx); }
static LLVMValueRef imul(cg *c, LLVMValueRef a, int64_t b) { return LLVMBuildNSWMul(c->b, a, cg_i64(c, b), ""); }
static LLVMValueRef iadd(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(c->b, a, b, ""); }

/* Causal softmax attention with grouped-query heads and a paged KV cache.
 * (q [n, n_heads*hs], k [n, kv_dim], v [n, kv_dim], n, pos0,
 *  key_cache, value_cache (the pools at this layer, elements of kv), table [blocks] i32,
 *  shift (log2 block_size), block_stride (elements between blocks: n_layers * block_size
 *  * kv_dim), att [seq_len], out [n, n_heads*hs])
 * Positions pos0..pos0+n-1 of the caches get k and v; query t sees positions 0..pos0+t, or
 * with a sliding window (window > 0) those j with pos0+t - j < window, as transformers'
 * masking_utils.sliding_window_overlay (kv_idx > q_idx - sliding_window) that
 * modeling_mistral.py's create_sliding_window_causal_mask uses. */
LLVMValueRef cg_kernel_attention(cg *c, int n_heads, int n_kv_heads, int head_size, int window, ir_dtype kv) {
    char name[80];
    const char *kvs = kv == IR_F32 ? "" : kv == IR_F16 ? "_kvf16" : "_kvbf16";
    if (window > 0)
        snprintf(name, sizeof name, "attention_%d_%d_%d_w%d%s", n_heads, n_kv_heads, head_size, window, kvs);
    else
        snprintf(name, sizeof name, "attention_%d_%d_%d%s", n_heads, n_kv_heads, head_size, kvs);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "pppiipppiipp", &fn)) return fn;
    int64_t kv_dim = (int64_t)n_kv_heads * head_size, qdim = (int64_t)n_heads * head_size;
    int64_t group = n_heads / n_kv_heads;
    LLVMValueRef q = LLVMGetParam(fn, 0), k = LLVMGetParam(fn, 1), v = LLVMGetParam(fn, 2);
    LLVMValueRef n = LLVMGetParam(fn, 3), pos0 = LLVMGetParam(fn, 4);
    LLVMValueRef kc = LLVMGetParam(fn, 5), vc = LLVMGetParam(fn, 6), att = LLVMGetParam(fn, 10),
                 out = LLVMGetParam(fn, 11);
    paged p = {.table = LLVMGetParam(fn, 7), .shift = LLVMGetParam(fn, 8), .block_stride = LLVMGetParam(fn, 9),
               .kv_dim = kv_dim, .elem = cg_kv_elem(c, kv)};
    p.mask = LLVMBuildSub(c->b, LLVMBuildShl(c->b, cg_i64(c, 1), p.shift, ""), cg_i64(c, 1), "mask");
    LLVMValueRef mx = cg_var(c, c->f32, "max"), sum = cg_var(c, c->f32, "sum"), dot = cg_var(c, c->f32, "dot");
    cg_loop t, h, j, i;

    /* key_cache[pos0 + t] = k[t]; value_cache[pos0 + t] = v[t] */
    LLVMValueRef it = cg_for(c, &t, cg_i64(c, 0), n, "t");
    LLVMValueRef jt = iadd(c, pos0, it), src = imul(c, it, kv_dim);
    store_row(c, kv, paged_at(c, &p, kc, jt), at(c, k, src), kv_dim);
    store_row(c, kv, paged_at(c, &p, vc, jt), at(c, v, src), kv_dim);
    cg_end(c, &t);

    it = cg_for(c, &t, cg_i64(c, 0), n, "t");
    LLVMValueRef npos = iadd(c, iadd(c, pos0, it), cg_i64(c, 1)); /* query t sees positions j0..npos-1 */
    LLVMValueRef j0 = cg_i64(c, 0);
    if (window > 0) {
        LLVMValueRef lo = LLVMBuildNSWSub(c->b, npos, cg_i64(c, window), "");
        j0 = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, lo, j0, ""), lo, j0, "j0");
    }
    LLVMValueRef ih = cg_for(c, &h, cg_i64(c, 0), cg_i64(c, n_heads), "h");
    LLVMValueRef kvoff = imul(c, LLVMBuildSDiv(c->b, ih, cg_i64(c, group), ""), head_size);
    LLVMValueRef qh = at(c, q, iadd(c, imul(c, it, qdim), imul(c, ih, head_size)));
    LLVMValueRef oh = at(c, out, iadd(c, imul(c, it, qdim), imul(c, ih, head_size)));
    /* att[j] = q . k_j / sqrt(hs); max */
    stv(c, mx, cg_f32(c, -INFINITY));
    LLVMValueRef ij = cg_for(c, &j, j0, npos, "j");
    LLVMValueRef kj = cg_gep(c, p.elem, paged_at(c, &p, kc, ij), kvoff);
    stv(c, dot, cg_f32(c, 0));
    LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, head_size), "i");
    LLVMValueRef prod = cg_fast(LLVMBuildFMul(c->b, cg_ldf(c, qh, ii), load_kv(c, kv, kj, ii), ""));
    stv(c, dot, cg_fast(LLVMBuildFAdd(c->b, ldv(c, dot), prod, "")));
    cg_end(c, &i);
    LLVMValueRef s = LLVMBuildFMul(c->b, ldv(c, dot), cg_f32(c, 1.0f / sqrtf((float)head_size)), "");
    cg_stf(c, att, ij, s);
    LLVMValueRef mm[2] = {ldv(c, mx), s};
    stv(c, mx, cg_intrinsic(c, "llvm.maxnum", mm, 2));
    cg_end(c, &j);
    /* softmax */
    stv(c, sum, cg_f32(c, 0));
    ij = cg_for(c, &j, j0, npos, "j");
    LLVMValueRef ex = LLVMBuildFSub(c->b, cg_ldf(c, att, ij), ldv(c, mx), "");
    ex = cg_intrinsic(c, "llvm.exp", &ex, 1);
    cg_stf(c, att, ij, ex);
    stv(c, sum, cg_fast(LLVMBuildFAdd(c->b, ldv(c, sum), ex, "")));
    cg_end(c, &j);
    LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1.0f), ldv(c, sum), "");
    /* out_h = sum_j p_j v_j */
    ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, head_size), "i");
    cg_stf(c, oh, ii, cg_f32(c, 0));
    cg_end(c, &i);
    ij = cg_for(c, &j, j0, npos, "j");
    LLVMValueRef pj = LLVMBuildFMul(c->b, cg_ldf(c, att, ij), inv, "");
    LLVMValueRef vj = cg_gep(c, p.elem, paged_at(c, &p, vc, ij), kvoff);
    ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, head_size), "i");
    LLVMValueRef acc = LLVMBuildFMul(c->b, pj, load_kv(c, kv, vj, ii), "");
    cg_stf(c, oh, ii, LLVMBuildFAdd(c->b, cg_ldf(c, oh, ii), acc, ""));
    cg_end(c, &i);
    cg_end(c, &j);
    cg_end(c, &h);
    cg_end(c, &t);
    cg_kernel_end(c);
    return fn;
}
