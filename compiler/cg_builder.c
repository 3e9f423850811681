/* cg_builder.c — small helpers over the LLVM C API used by every codegen file:
 * counted loops, typed loads and stores (16-bit weights widened to f32), allocas,
 * intrinsics, and internal "kernel" functions found or created by name (one per op
 * and shape, so code size and compile time grow with the number of distinct shapes,
 * not layers).
 * Input: a cg with its module; output: IR in that module. */
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "compiler.h"

void cg_init(cg *c, LLVMContextRef llctx, LLVMModuleRef mod) {
    memset(c, 0, sizeof *c);
    c->llctx = llctx;
    c->mod = mod;
    c->b = LLVMCreateBuilderInContext(llctx);
    c->i32 = LLVMInt32TypeInContext(llctx);
    c->i64 = LLVMInt64TypeInContext(llctx);
    c->f32 = LLVMFloatTypeInContext(llctx);
    c->ptr = LLVMPointerTypeInContext(llctx, 0);
    c->voidt = LLVMVoidTypeInContext(llctx);
    /* void sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
     *            const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) */
    LLVMTypeRef gemm[14] = {c->i32, c->i32, c->i32, c->i32, c->i32, c->i32, c->f32,
                            c->ptr, c->i32, c->ptr, c->i32, c->f32, c->ptr, c->i32};
    c->sgemm_ty = LLVMFunctionType(c->voidt, gemm, 14, 0);
    /* void sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
     *            const float *x, int incx, float beta, float *y, int incy) */
    LLVMTypeRef gemv[12] = {c->i32, c->i32, c->i32, c->i32, c->f32, c->ptr,
                            c->i32, c->ptr, c->i32, c->f32, c->ptr, c->i32};
    c->sgemv_ty = LLVMFunctionType(c->voidt, gemv, 12, 0);
    /* void parallel(void *pool, void (*fn)(void *, int64_t, int64_t), void *arg, int64_t n) */
    LLVMTypeRef par[4] = {c->ptr, c->ptr, c->ptr, c->i64};
    c->parallel_ty = LLVMFunctionType(c->voidt, par, 4, 0);
    /* the arguments of a matmul task: {x, W, n, y, out, in} */
    LLVMTypeRef mm[6] = {c->ptr, c->ptr, c->i64, c->ptr, c->i64, c->i64};
    c->mm_args_ty = LLVMStructTypeInContext(llctx, mm, 6, 0);
}

void cg_fini(cg *c) {
    if (c->b) LLVMDisposeBuilder(c->b);
    c->b = NULL;
}

LLVMValueRef cg_i64(cg *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(cg *c, int32_t v) { return LLVMConstInt(c->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_f32(cg *c, float v) { return LLVMConstReal(c->f32, v); }

LLVMValueRef cg_for(cg *c, cg_loop *l, LLVMValueRef begin, LLVMValueRef end, const char *name) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    l->header = LLVMAppendBasicBlockInContext(c->llctx, c->fn, name);
    l->body = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "exit");
    LLVMBuildBr(c->b, l->header);
    LLVMPositionBuilderAtEnd(c->b, l->header);
    l->iv = LLVMBuildPhi(c->b, c->i64, name);
    LLVMAddIncoming(l->iv, &begin, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(c->b, LLVMIntSLT, l->iv, end, "more");
    LLVMBuildCondBr(c->b, more, l->body, l->exit);
    LLVMPositionBuilderAtEnd(c->b, l->body);
    return l->iv;
}

void cg_end(cg *c, cg_loop *l) { cg_end_no_unroll(c, l, false); }

void cg_end_no_unroll(cg *c, cg_loop *l, bool no_unroll) {
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, cg_i64(c, 1), "next");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMValueRef br = LLVMBuildBr(c->b, l->header);
    if (no_unroll) { /* !llvm.loop !{self, !{"llvm.loop.unroll.disable"}, !{"llvm.loop.interleave.count", 4}} */
        LLVMMetadataRef self = LLVMTemporaryMDNode(c->llctx, NULL, 0);
        LLVMMetadataRef name = LLVMMDStringInContext2(c->llctx, "llvm.loop.unroll.disable", 24);
        LLVMMetadataRef il[2] = {LLVMMDStringInContext2(c->llctx, "llvm.loop.interleave.count", 26),
                                 LLVMValueAsMetadata(cg_i32(c, 4))};
        LLVMMetadataRef ops[3] = {self, LLVMMDNodeInContext2(c->llctx, &name, 1), LLVMMDNodeInContext2(c->llctx, il, 2)};
        LLVMMetadataRef loop = LLVMMDNodeInContext2(c->llctx, ops, 3);
        LLVMMetadataReplaceAllUsesWith(self, loop); /* also disposes the temporary */
        LLVMSetMetadata(br, LLVMGetMDKindIDInContext(c->llctx, "llvm.loop", 9),
                        LLVMMetadataAsValue(c->llctx, loop));
    }
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

LLVMValueRef cg_gep(cg *c, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef idx) {
    return LLVMBuildInBoundsGEP2(c->b, elem, base, &idx, 1, "");
}

LLVMValueRef cg_ldf(cg *c, LLVMValueRef base, LLVMValueRef idx) {
    return LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, base, idx), "");
}

void cg_stf(cg *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
    LLVMBuildStore(c->b, v, cg_gep(c, c->f32, base, idx));
}

LLVMValueRef cg_ld_at(cg *c, LLVMTypeRef ty, LLVMValueRef base, int64_t byte_off) {
    LLVMTypeRef i8 = LLVMInt8TypeInContext(c->llctx);
    LLVMValueRef p = cg_gep(c, i8, base, cg_i64(c, byte_off));
    return LLVMBuildLoad2(c->b, ty, p, "");
}

LLVMValueRef cg_var(cg *c, LLVMTypeRef ty, const char *name) {
    LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
    LLVMValueRef first = LLVMGetFirstInstruction(c->entry);
    if (first)
        LLVMPositionBuilderBefore(c->b, first);
    else
        LLVMPositionBuilderAtEnd(c->b, c->entry);
    LLVMValueRef v = LLVMBuildAlloca(c->b, ty, name);
    LLVMPositionBuilderAtEnd(c->b, here);
    return v;
}

LLVMValueRef cg_fast(LLVMValueRef inst) {
    LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return inst;
}

LLVMValueRef cg_intrinsic(cg *c, const char *name, LLVMValueRef *args, int n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef over[1] = {c->f32};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, over, 1);
    LLVMTypeRef ty = LLVMIntrinsicGetType(c->llctx, id, over, 1);
    return LLVMBuildCall2(c->b, ty, fn, args, (unsigned)n, "");
}

LLVMValueRef cg_log2_pow2(cg *c, LLVMValueRef x) {
    unsigned id = LLVMLookupIntrinsicID("llvm.cttz", 9);
    LLVMTypeRef over[1] = {c->i64};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, over, 1);
    LLVMValueRef args[2] = {x, LLVMConstInt(LLVMInt1TypeInContext(c->llctx), 0, 0)};
    return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->llctx, id, over, 1), fn, args, 2, "");
}

bool cg_kernel_begin(cg *c, const char *name, const char *sig, LLVMValueRef *fn) {
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (f) {
        *fn = f;
        return false;
    }
    LLVMTypeRef params[16];
    unsigned n = (unsigned)strlen(sig);
    IR_ASSERT(n <= 16);
    for (unsigned i = 0; i < n; i++) params[i] = sig[i] == 'i' ? c->i64 : c->ptr;
    f = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, params, n, 0));
    LLVMSetLinkage(f, LLVMInternalLinkage);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(c->llctx, noinline, 0));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(c->llctx, nounwind, 0));
    for (unsigned i = 0; i < n; i++)
        if (sig[i] == 'p')
            LLVMAddAttributeAtIndex(f, i + 1, LLVMCreateEnumAttribute(c->llctx, noalias, 0));
    c->saved_fn = c->fn;
    c->saved_entry = c->entry;
    c->saved_block = LLVMGetInsertBlock(c->b);
    c->fn = f;
    c->entry = LLVMAppendBasicBlockInContext(c->llctx, f, "entry");
    LLVMPositionBuilderAtEnd(c->b, c->entry);
    *fn = f;
    return true;
}

void cg_kernel_end(cg *c) {
    LLVMBuildRetVoid(c->b);
    c->fn = c->saved_fn;
    c->entry = c->saved_entry;
    if (c->saved_block) LLVMPositionBuilderAtEnd(c->b, c->saved_block);
    c->saved_fn = NULL;
    c->saved_entry = c->saved_block = NULL;
}

/* An i32 constant of ty: i32, or <N x i32> with every lane v. */
static LLVMValueRef i32_like(cg *c, LLVMTypeRef ty, int32_t v) {
    if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return cg_i32(c, v);
    unsigned n = LLVMGetVectorSize(ty);
    LLVMValueRef lanes[64];
    LJ_ASSERT(n <= 64);
    for (unsigned i = 0; i < n; i++) lanes[i] = cg_i32(c, v);
    return LLVMConstVector(lanes, n);
}

/* (compiler.h) The same integer ops on a lane or on every lane of a vector. */
LLVMValueRef cg_widen16(cg *c, ir_dtype kind, LLVMValueRef h) {
    LLVMTypeRef ity = LLVMTypeOf(h);
    bool vec = LLVMGetTypeKind(ity) == LLVMVectorTypeKind;
    LLVMTypeRef fty = vec ? LLVMVectorType(c->f32, LLVMGetVectorSize(ity)) : c->f32;
    if (kind == IR_BF16) return LLVMBuildBitCast(c->b, LLVMBuildShl(c->b, h, i32_like(c, ity, 16), ""), fty, "");
    LLVMValueRef mag = LLVMBuildShl(c->b, LLVMBuildAnd(c->b, h, i32_like(c, ity, 0x7fff), ""), i32_like(c, ity, 13), "");
    LLVMValueRef scale = LLVMBuildBitCast(c->b, i32_like(c, ity, 0x77800000), fty, ""); /* 2^112 */
    LLVMValueRef f = LLVMBuildFMul(c->b, LLVMBuildBitCast(c->b, mag, fty, ""), scale, "");
    LLVMValueRef bits = LLVMBuildBitCast(c->b, f, ity, "");
    LLVMValueRef infnan = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildAnd(c->b, h, i32_like(c, ity, 0x7c00), ""),
                                        i32_like(c, ity, 0x7c00), "");
    bits = LLVMBuildOr(c->b, bits, LLVMBuildSelect(c->b, infnan, i32_like(c, ity, 0x7f800000), i32_like(c, ity, 0), ""),
                       "");
    LLVMValueRef sign = LLVMBuildShl(c->b, LLVMBuildAnd(c->b, h, i32_like(c, ity, 0x8000), ""), i32_like(c, ity, 16), "");
    return LLVMBuildBitCast(c->b, LLVMBuildOr(c->b, bits, sign, ""), fty, "");
}

/* Element idx of a weight of dtype kind (IR_F32, IR_F16, IR_BF16), widened to f32 by
 * cg_widen16. */
LLVMValueRef cg_ld_weight(cg *c, ir_dtype kind, LLVMValueRef base, LLVMValueRef idx) {
    if (kind == IR_F32) return cg_ldf(c, base, idx);
    LLVMTypeRef i16 = LLVMInt16TypeInContext(c->llctx);
    return cg_widen16(c, kind, LLVMBuildZExt(c->b, LLVMBuildLoad2(c->b, i16, cg_gep(c, i16, base, idx), ""), c->i32, ""));
}

/* v (f32) rounded to nearest even into kind's 16 bits (IR_F16 or IR_BF16), as an i16 at
 * the builder. Integer ops and one strict f32 add (no F16C, no AVX512-BF16, no libcall),
 * so any x86-64 runs it and JIT and AOT code give the same bits. BF16 is gen_util.c's
 * f32_to_bf16 (NaN kept quiet); F16 is Giesen's float_to_half_fast3_rtne: overflow to
 * Inf, NaN to 0x7e00, subnormals rounded by adding 0.5f (exact RNE in the FPU). */
LLVMValueRef cg_narrow16(cg *c, ir_dtype kind, LLVMValueRef v) {
    LLVMTypeRef i16 = LLVMInt16TypeInContext(c->llctx);
    LLVMValueRef x = LLVMBuildBitCast(c->b, v, c->i32, "");
    if (kind == IR_BF16) {
        LLVMValueRef nan = LLVMBuildICmp(c->b, LLVMIntUGT, LLVMBuildAnd(c->b, x, cg_i32(c, 0x7fffffff), ""),
                                         cg_i32(c, 0x7f800000), "");
        LLVMValueRef odd = LLVMBuildAnd(c->b, LLVMBuildLShr(c->b, x, cg_i32(c, 16), ""), cg_i32(c, 1), "");
        LLVMValueRef r = LLVMBuildAdd(c->b, LLVMBuildAdd(c->b, x, cg_i32(c, 0x7fff), ""), odd, "");
        LLVMValueRef q = LLVMBuildOr(c->b, LLVMBuildLShr(c->b, x, cg_i32(c, 16), ""), cg_i32(c, 0x40), "");
        r = LLVMBuildSelect(c->b, nan, q, LLVMBuildLShr(c->b, r, cg_i32(c, 16), ""), "");
        return LLVMBuildTrunc(c->b, r, i16, "");
    }
    LLVMValueRef sign = LLVMBuildAnd(c->b, x, cg_i32(c, (int32_t)0x80000000u), "");
    LLVMValueRef a = LLVMBuildXor(c->b, x, sign, ""); /* |v| as bits */
    /* |v| >= 65536: Inf, or a quiet NaN */
    LLVMValueRef big = LLVMBuildICmp(c->b, LLVMIntUGE, a, cg_i32(c, (127 + 16) << 23), "");
    LLVMValueRef nan = LLVMBuildICmp(c->b, LLVMIntUGT, a, cg_i32(c, 0x7f800000), "");
    LLVMValueRef special = LLVMBuildSelect(c->b, nan, cg_i32(c, 0x7e00), cg_i32(c, 0x7c00), "");
    /* |v| < 2^-14: an f16 subnormal or zero; adding 0.5f lines its 10 bits up at the bottom */
    LLVMValueRef tiny = LLVMBuildICmp(c->b, LLVMIntULT, a, cg_i32(c, 113 << 23), "");
    LLVMValueRef af = LLVMBuildBitCast(c->b, a, c->f32, "");
    LLVMValueRef sub = LLVMBuildSub(c->b, LLVMBuildBitCast(c->b, LLVMBuildFAdd(c->b, af, cg_f32(c, 0.5f), ""), c->i32, ""),
                                    cg_i32(c, 126 << 23), "");
    /* normal: rebias the exponent, round half to even on the 13 bits dropped */
    LLVMValueRef odd = LLVMBuildAnd(c->b, LLVMBuildLShr(c->b, a, cg_i32(c, 13), ""), cg_i32(c, 1), "");
    LLVMValueRef nrm = LLVMBuildAdd(c->b, a, cg_i32(c, (int32_t)((uint32_t)(15 - 127) << 23) + 0xfff), "");
    nrm = LLVMBuildLShr(c->b, LLVMBuildAdd(c->b, nrm, odd, ""), cg_i32(c, 13), "");
    LLVMValueRef r = LLVMBuildSelect(c->b, big, special, LLVMBuildSelect(c->b, tiny, sub, nrm, ""), "");
    r = LLVMBuildOr(c->b, r, LLVMBuildLShr(c->b, sign, cg_i32(c, 16), ""), "");
    return LLVMBuildTrunc(c->b, r, i16, "");
}
