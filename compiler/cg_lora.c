/* cg_lora.c — the LoRA term y += sum_a w_a s_a (x A_a^T) B_a^T over the slot buffers
 * (runtime/ctx.h lj_lora_site), at each slot's true rank so zero padding costs
 * nothing. A and B hold the schema's lora_dtype: f32, or 16 bits widened to f32 as
 * they are read (exact), with every sum in f32.
 *   lora_<r>[_<dtype>]       one active set for all n rows: plain loops up to
 *                            small_rows rows, BLAS above (prefill);
 *   lora_rows_<r>[_<dtype>]  a decode pass: each row its own active set (BGMV), rows
 *                            shared among ctx's threads.
 * Input: a cg with its module; output: the kernels, found or created by name. */
#include <stddef.h>
#include <stdio.h>

#include "compiler.h"

static LLVMValueRef param(cg *c, unsigned i) { return LLVMGetParam(c->fn, i); }
static LLVMValueRef mul(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(c->b, a, b, ""); }
static LLVMValueRef fptr(cg *c, LLVMValueRef base, LLVMValueRef idx) { return cg_gep(c, c->f32, base, idx); }

/* The element type of a slot buffer of dtype kind: f32, or i16 for 16 bits. */
static LLVMTypeRef slot_elem(cg *c, ir_dtype kind) {
    return kind == IR_F32 ? c->f32 : LLVMInt16TypeInContext(c->llctx);
}

static void kernel_name(char *buf, size_t size, const char *what, int r_max, ir_dtype kind) {
    if (kind == IR_F32) snprintf(buf, size, "%s_%d", what, r_max); /* the names before lora_dtype */
    else snprintf(buf, size, "%s_%d_%s", what, r_max, ir_dtype_name(kind));
}

/* The LoRA term of up to small_rows rows as plain loops on the calling thread:
 * t[m, r] = x[m] . A[r] (r < rank), then y[m, o] += (scale * t[m, r]) * B[r, o] for
 * each r in order, a pass over y's row per rank row of B (B rank-major [r_max, out]:
 * contiguous in o, so the pass vectorises with no horizontal sums). A decode step is
 * a few thousand of these tiny products; OpenBLAS would wake its threads for each,
 * and they would fight the pool's for the cores. */
static void emit_lora_small(cg *c, ir_dtype kind, LLVMValueRef x, LLVMValueRef A, LLVMValueRef t, LLVMValueRef B,
                            LLVMValueRef y, LLVMValueRef n, LLVMValueRef rank, LLVMValueRef scale, LLVMValueRef in,
                            LLVMValueRef out, int r_max) {
    LLVMValueRef acc = cg_var(c, c->f32, "acc");
    cg_loop m, r, o;
    LLVMValueRef im = cg_for(c, &m, cg_i64(c, 0), n, "m");
    LLVMValueRef xm = fptr(c, x, mul(c, im, in)), tm = fptr(c, t, mul(c, im, cg_i64(c, r_max)));
    LLVMValueRef ym = fptr(c, y, mul(c, im, out));
    LLVMValueRef ir = cg_for(c, &r, cg_i64(c, 0), rank, "r");
    LLVMValueRef arow = mul(c, ir, in);
    cg_emit_dots(c, kind, xm, A, &arow, 1, in, true, &acc);
    cg_stf(c, tm, ir, LLVMBuildLoad2(c->b, c->f32, acc, ""));
    cg_end(c, &r);
    LLVMValueRef jr = cg_for(c, &r, cg_i64(c, 0), rank, "rb");
    LLVMValueRef s = LLVMBuildFMul(c->b, scale, cg_ldf(c, tm, jr), "");
    LLVMValueRef brow = mul(c, jr, out);
    LLVMValueRef io = cg_for(c, &o, cg_i64(c, 0), out, "o");
    LLVMValueRef bv = cg_ld_weight(c, kind, B, LLVMBuildNSWAdd(c->b, brow, io, ""));
    cg_stf(c, ym, io, LLVMBuildFAdd(c->b, cg_ldf(c, ym, io), LLVMBuildFMul(c->b, s, bv, ""), ""));
    cg_end(c, &o);
    cg_end(c, &r);
    cg_end(c, &m);
}

/* dst[0..n) = src[0..n) widened to f32 (16-bit src): a slot's rank rows of A or B,
 * contiguous both. */
static void emit_widen(cg *c, ir_dtype kind, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef n) {
    cg_loop i;
    LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), n, "wi");
    cg_stf(c, dst, ii, cg_ld_weight(c, kind, src, ii));
    cg_end(c, &i);
}

/* (cg.h) for each active adapter a with rank r = site->rank[slot_a] > 0:
 *   t[n, r] = x A^T (A = slot's [r, in] rows), y += w_a s_a t B (B = slot's [r, out] rows:
 *   PEFT's lora_B transposed, rank-major). */
LLVMValueRef cg_kernel_lora(cg *c, int r_max, ir_dtype kind) {
    char name[80];
    kernel_name(name, sizeof name, "lora", r_max, kind);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "qqiqqpqqiiiq", &fn)) return fn;
    LLVMValueRef y = param(c, 0), x = param(c, 1), n = param(c, 2), site = param(c, 3);
    LLVMValueRef in = param(c, 9), out = param(c, 10), wide = param(c, 11);
    LLVMValueRef active = param(c, 4), t = param(c, 5), sgemm = param(c, 6), sgemv = param(c, 7);
    LLVMValueRef n_act = LLVMBuildSExt(c->b, cg_ld_at(c, c->i32, active, offsetof(lj_active, n)), c->i64, "");
    LLVMValueRef a_base = cg_ld_at(c, c->ptr, site, offsetof(lj_lora_site, a));
    LLVMValueRef b_base = cg_ld_at(c, c->ptr, site, offsetof(lj_lora_site, b));
    LLVMValueRef ranks = cg_ld_at(c, c->ptr, site, offsetof(lj_lora_site, rank));
    LLVMValueRef scales = cg_ld_at(c, c->ptr, site, offsetof(lj_lora_site, scale));
    LLVMTypeRef elem = slot_elem(c, kind), i8 = LLVMInt8TypeInContext(c->llctx);
    cg_loop a;
    LLVMValueRef ia = cg_for(c, &a, cg_i64(c, 0), n_act, "a");
    LLVMValueRef slot_p = cg_gep(c, i8, active, LLVMBuildNSWAdd(c->b, cg_i64(c, offsetof(lj_active, slot)),
                                                                mul(c, ia, cg_i64(c, 4)), ""));
    LLVMValueRef wt_p = cg_gep(c, i8, active, LLVMBuildNSWAdd(c->b, cg_i64(c, offsetof(lj_active, weight)),
                                                              mul(c, ia, cg_i64(c, 4)), ""));
    LLVMValueRef slot = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->i32, slot_p, "slot"), c->i64, "");
    LLVMValueRef w = LLVMBuildLoad2(c->b, c->f32, wt_p, "w");
    LLVMValueRef rank32 = LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, ranks, slot), "rank");
    LLVMBasicBlockRef apply = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "apply");
    LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "skip");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, rank32, cg_i32(c, 0), ""), apply, skip);
    LLVMPositionBuilderAtEnd(c->b, apply);
    LLVMValueRef rank = LLVMBuildSExt(c->b, rank32, c->i64, "");
    LLVMValueRef scale = LLVMBuildFMul(c->b, cg_ldf(c, scales, slot), w, "");
    LLVMValueRef A = cg_gep(c, elem, a_base, mul(c, slot, mul(c, cg_i64(c, r_max), in)));
    LLVMValueRef B = cg_gep(c, elem, b_base, mul(c, slot, mul(c, cg_i64(c, r_max), out)));
    LLVMBasicBlockRef loops = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "lora_loops");
    LLVMBasicBlockRef blas = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "lora_blas");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, n, param(c, 8), ""), loops, blas);
    LLVMPositionBuilderAtEnd(c->b, loops);
    emit_lora_small(c, kind, x, A, t, B, y, n, rank, scale, in, out, r_max);
    LLVMBuildBr(c->b, skip);
    LLVMPositionBuilderAtEnd(c->b, blas);
    if (kind != IR_F32) { /* BLAS reads f32: A's and B's rank rows, widened, same strides */
        LLVMValueRef wa = wide, wb = fptr(c, wide, mul(c, cg_i64(c, r_max), in));
        emit_widen(c, kind, wa, A, mul(c, rank, in));
        emit_widen(c, kind, wb, B, mul(c, rank, out));
        A = wa, B = wb;
    }
    LLVMValueRef K = LLVMBuildTrunc(c->b, in, c->i32, ""), N = LLVMBuildTrunc(c->b, out, c->i32, "");
    LLVMValueRef R = cg_i32(c, r_max);
    /* t = x A^T: [n, rank], row stride r_max */
    cg_emit_gemm(c, sgemm, sgemv, true, n, x, K, A, K, t, R, rank32, K, cg_f32(c, 1.0f), cg_f32(c, 0.0f));
    /* y += scale * t B: B [rank, out] */
    cg_emit_gemm(c, sgemm, sgemv, false, n, t, R, B, N, y, N, N, rank32, scale, cg_f32(c, 1.0f));
    LLVMBuildBr(c->b, skip);
    LLVMPositionBuilderAtEnd(c->b, skip);
    cg_end(c, &a);
    cg_kernel_end(c);
    return fn;
}

/* The task lora_rows_task_<r_max>[_<dtype>](args {y, x, site, row_active, t, in, out},
 * u0, u1): rows u0..u1 of a decode pass, each through lora_<r_max> as one row with its
 * own active set and its own t row (scratch [n, r_max]), in the row loop (small_rows
 * 1: BLAS is never called from a pool thread, and wide is never read). */
static LLVMValueRef lora_rows_task(cg *c, int r_max, ir_dtype kind, LLVMTypeRef args_ty) {
    char name[80];
    kernel_name(name, sizeof name, "lora_rows_task", r_max, kind);
    LLVMValueRef fn, k = cg_kernel_lora(c, r_max, kind);
    if (!cg_kernel_begin(c, name, "pii", &fn)) return fn;
    LLVMValueRef f[7];
    LLVMTypeRef ty[7] = {c->ptr, c->ptr, c->ptr, c->ptr, c->ptr, c->i64, c->i64};
    for (unsigned i = 0; i < 7; i++)
        f[i] = LLVMBuildLoad2(c->b, ty[i], LLVMBuildStructGEP2(c->b, args_ty, param(c, 0), i, ""), "");
    LLVMValueRef in = f[5], out = f[6];
    cg_loop r;
    LLVMValueRef row = cg_for(c, &r, param(c, 1), param(c, 2), "row");
    LLVMValueRef act = LLVMBuildLoad2(c->b, c->ptr, cg_gep(c, c->ptr, f[3], row), "row_active");
    LLVMValueRef null = LLVMConstNull(c->ptr);
    LLVMValueRef a[12] = {fptr(c, f[0], mul(c, row, out)), fptr(c, f[1], mul(c, row, in)), cg_i64(c, 1), f[2], act,
                          fptr(c, f[4], mul(c, row, cg_i64(c, r_max))), null, null, cg_i64(c, 1), in, out, null};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(k), k, a, 12, "");
    cg_end(c, &r);
    cg_kernel_end(c);
    return fn;
}

/* (cg.h) Each row by one thread, so the result does not depend on the split: with
 * distinct adapters a pass reads every row's A and B, and one thread alone does not
 * reach the machine's read bandwidth (machine-facts: 16 GB/s on 1 thread, 20-32 on 2). */
LLVMValueRef cg_kernel_lora_rows(cg *c, int r_max, ir_dtype kind) {
    char name[80];
    kernel_name(name, sizeof name, "lora_rows", r_max, kind);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (fn) return fn;
    LLVMTypeRef fields[7] = {c->ptr, c->ptr, c->ptr, c->ptr, c->ptr, c->i64, c->i64};
    LLVMTypeRef args_ty = LLVMStructTypeInContext(c->llctx, fields, 7, 0);
    LLVMValueRef task = lora_rows_task(c, r_max, kind, args_ty);
    cg_kernel_begin(c, name, "qqiqqqiipq", &fn);
    LLVMValueRef args = cg_var(c, args_ty, "lora_rows_args");
    static const unsigned from[7] = {0, 1, 3, 4, 5, 6, 7}; /* y, x, site, row_active, t, in, out */
    for (unsigned i = 0; i < 7; i++)
        LLVMBuildStore(c->b, param(c, from[i]), LLVMBuildStructGEP2(c->b, args_ty, args, i, ""));
    LLVMValueRef n = param(c, 2), share = LLVMBuildICmp(c->b, LLVMIntSGE, n, cg_i64(c, 2), "");
    cg_call_task(c, task, args, n, share, param(c, 8), param(c, 9));
    cg_kernel_end(c);
    return fn;
}
