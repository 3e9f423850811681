/* cg_kernels.c — the generated kernels: one internal LLVM function per op and
 * shape (RMSNorm, RoPE, SiLU*mul, adds, embedding lookup; attention lives in
 * cg_attention.c), plus the call sequences for the BLAS-backed matmul and LoRA
 * terms. Loops are plain counted loops; reductions allow reassociation so that O3
 * vectorises them for whatever vector width the host has. Numerics follow
 * transformers' LLaMA in fp32.
 * Input: shapes and attributes; output: the kernel function in c->mod. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "compiler.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

static LLVMValueRef param(cg *c, unsigned i) { return LLVMGetParam(c->fn, i); }
static LLVMValueRef mul(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(c->b, a, b, ""); }
static LLVMValueRef add(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(c->b, a, b, ""); }
static LLVMValueRef f_mul(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(c->b, a, b, ""); }
static LLVMValueRef f_add(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(c->b, a, b, ""); }
static LLVMValueRef ldv(cg *c, LLVMValueRef var) { return LLVMBuildLoad2(c->b, c->f32, var, ""); }
static void stv(cg *c, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(c->b, v, var); }
static LLVMValueRef fptr(cg *c, LLVMValueRef base, LLVMValueRef idx) { return cg_gep(c, c->f32, base, idx); }
static LLVMValueRef trunc32(cg *c, LLVMValueRef v) { return LLVMBuildTrunc(c->b, v, c->i32, ""); }

static void memcpy_floats(cg *c, LLVMValueRef dst, LLVMValueRef src, int64_t n) {
    LLVMBuildMemCpy(c->b, dst, 4, src, 4, cg_i64(c, n * 4));
}

/* (table [vocab, dim] of kind, tokens [n] i32, n, out [n, dim]):
 * out[t] = table[tokens[t]] widened to f32, times scale when scale != 0 (Gemma:
 * modeling_gemma.py GemmaModel.forward, inputs_embeds * normalizer, sqrt(dim) as f32) */
LLVMValueRef cg_kernel_embed(cg *c, int64_t dim, ir_dtype kind, float scale) {
    char name[80];
    uint32_t scale_bits;
    memcpy(&scale_bits, &scale, 4);
    snprintf(name, sizeof name, "embed_%lld_%s", (long long)dim, ir_dtype_name(kind));
    if (scale != 0) snprintf(name + strlen(name), sizeof name - strlen(name), "_x%08x", scale_bits);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "ppip", &fn)) return fn;
    cg_loop t, i;
    LLVMValueRef it = cg_for(c, &t, cg_i64(c, 0), param(c, 2), "t");
    LLVMValueRef tok = LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, param(c, 1), it), "tok");
    LLVMValueRef row = mul(c, LLVMBuildSExt(c->b, tok, c->i64, ""), cg_i64(c, dim));
    LLVMValueRef dst = fptr(c, param(c, 3), mul(c, it, cg_i64(c, dim)));
    if (kind == IR_F32 && scale == 0) {
        memcpy_floats(c, dst, fptr(c, param(c, 0), row), dim);
    } else {
        LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, dim), "i");
        LLVMValueRef v = cg_ld_weight(c, kind, param(c, 0), add(c, row, ii));
        cg_stf(c, dst, ii, scale != 0 ? f_mul(c, v, cg_f32(c, scale)) : v);
        cg_end(c, &i);
    }
    cg_end(c, &t);
    cg_kernel_end(c);
    return fn;
}

/* (x [n, d], w [d], n, out [n, d]): out = (w + w_offset) * (x / sqrt(mean(x^2) + eps));
 * w_offset 0 is LLaMA's LlamaRMSNorm, 1 Gemma's (modeling_gemma.py GemmaRMSNorm.forward:
 * _norm(x.float()) * (1.0 + weight.float())) */
LLVMValueRef cg_kernel_rmsnorm(cg *c, int64_t d, float eps, float w_offset) {
    char name[64];
    uint32_t eps_bits;
    memcpy(&eps_bits, &eps, 4);
    snprintf(name, sizeof name, "rmsnorm_%lld_%08x%s", (long long)d, eps_bits, w_offset != 0 ? "_plus1" : "");
    LJ_ASSERT(w_offset == 0 || w_offset == 1); /* ir_check_node */
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "ppip", &fn)) return fn;
    LLVMValueRef ss = cg_var(c, c->f32, "ss");
    cg_loop t, i, j;
    LLVMValueRef it = cg_for(c, &t, cg_i64(c, 0), param(c, 2), "t");
    LLVMValueRef x = fptr(c, param(c, 0), mul(c, it, cg_i64(c, d)));
    LLVMValueRef out = fptr(c, param(c, 3), mul(c, it, cg_i64(c, d)));
    stv(c, ss, cg_f32(c, 0));
    LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, d), "i");
    LLVMValueRef v = cg_ldf(c, x, ii);
    stv(c, ss, cg_fast(f_add(c, ldv(c, ss), cg_fast(f_mul(c, v, v)))));
    cg_end(c, &i);
    LLVMValueRef ms = LLVMBuildFDiv(c->b, ldv(c, ss), cg_f32(c, (float)d), "");
    LLVMValueRef arg = f_add(c, ms, cg_f32(c, eps));
    LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1.0f), cg_intrinsic(c, "llvm.sqrt", &arg, 1), "inv");
    LLVMValueRef jj = cg_for(c, &j, cg_i64(c, 0), cg_i64(c, d), "j");
    LLVMValueRef w = cg_ldf(c, param(c, 1), jj);
    if (w_offset != 0) w = f_add(c, cg_f32(c, 1.0f), w);
    cg_stf(c, out, jj, f_mul(c, w, f_mul(c, cg_ldf(c, x, jj), inv)));
    cg_end(c, &j);
    cg_end(c, &t);
    cg_kernel_end(c);
    return fn;
}

/* (y [n, cols], b [cols], n): y[t] += b */
LLVMValueRef cg_kernel_bias_add(cg *c, int64_t cols) {
    char name[64];
    snprintf(name, sizeof name, "bias_add_%lld", (long long)cols);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "ppi", &fn)) return fn;
    cg_loop t, i;
    LLVMValueRef it = cg_for(c, &t, cg_i64(c, 0), param(c, 2), "t");
    LLVMValueRef y = fptr(c, param(c, 0), mul(c, it, cg_i64(c, cols)));
    LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, cols), "i");
    cg_stf(c, y, ii, f_add(c, cg_ldf(c, y, ii), cg_ldf(c, param(c, 1), ii)));
    cg_end(c, &i);
    cg_end(c, &t);
    cg_kernel_end(c);
    return fn;
}

/* (x [n, n_heads * hs], n, pos0, table), in place, HF rotate_half convention, as
 * transformers' LlamaRotaryEmbedding.forward + apply_rotary_pos_emb:
 *   angle = (pos0 + t) * inv_freq[i], cos = cos(angle) * scale, sin = sin(angle) * scale
 *   x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin   (x1 = x[i], x2 = x[i + hs/2])
 * table = inv_freq[hs/2] then scale (attention_scaling), read at run time from ctx.rope:
 * nothing about the RoPE type or theta is compiled in (runtime/formats/rope.c). */
LLVMValueRef cg_kernel_rope(cg *c, int n_heads, int head_size) {
    char name[80];
    snprintf(name, sizeof name, "rope_%d_%d", n_heads, head_size);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "piip", &fn)) return fn;
    int64_t half = head_size / 2, cols = (int64_t)n_heads * head_size;
    cg_loop t, i, h;
    LLVMValueRef table = param(c, 3), scale = cg_ldf(c, table, cg_i64(c, half));
    LLVMValueRef it = cg_for(c, &t, cg_i64(c, 0), param(c, 1), "t");
    LLVMValueRef pos = LLVMBuildSIToFP(c->b, add(c, param(c, 2), it), c->f32, "pos");
    LLVMValueRef row = fptr(c, param(c, 0), mul(c, it, cg_i64(c, cols)));
    LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), cg_i64(c, half), "i");
    LLVMValueRef ang = f_mul(c, pos, cg_ldf(c, table, ii));
    LLVMValueRef cs = f_mul(c, cg_intrinsic(c, "llvm.cos", &ang, 1), scale);
    LLVMValueRef sn = f_mul(c, cg_intrinsic(c, "llvm.sin", &ang, 1), scale);
    LLVMValueRef ih = cg_for(c, &h, cg_i64(c, 0), cg_i64(c, n_heads), "h");
    LLVMValueRef i1 = add(c, mul(c, ih, cg_i64(c, head_size)), ii);
    LLVMValueRef i2 = add(c, i1, cg_i64(c, half));
    LLVMValueRef x1 = cg_ldf(c, row, i1), x2 = cg_ldf(c, row, i2);
    cg_stf(c, row, i1, LLVMBuildFSub(c->b, f_mul(c, x1, cs), f_mul(c, x2, sn), ""));
    cg_stf(c, row, i2, f_add(c, f_mul(c, x2, cs), f_mul(c, x1, sn)));
    cg_end(c, &h);
    cg_end(c, &i);
    cg_end(c, &t);
    cg_kernel_end(c);
    return fn;
}

/* The elementwise kernels: what each computes of a (gate) and b (up). */
typedef enum elem_op { ELEM_SILU_MUL, ELEM_GELU_MUL, ELEM_ADD } elem_op;

/* gelu_pytorch_tanh(a): 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))), as torch's
 * GeluType::Tanh; tanh(u) = 1 - 2 / (exp(2u) + 1), which saturates to +-1 without a
 * libm call beyond exp. */
static LLVMValueRef gelu_tanh(cg *c, LLVMValueRef a) {
    LLVMValueRef cube = f_mul(c, f_mul(c, a, a), a);
    LLVMValueRef inner = f_mul(c, cg_f32(c, 0.7978845608028654f), f_add(c, a, f_mul(c, cg_f32(c, 0.044715f), cube)));
    LLVMValueRef e = f_mul(c, cg_f32(c, 2.0f), inner);
    e = cg_intrinsic(c, "llvm.exp", &e, 1);
    LLVMValueRef th = LLVMBuildFSub(c->b, cg_f32(c, 1.0f),
                                    LLVMBuildFDiv(c->b, cg_f32(c, 2.0f), f_add(c, e, cg_f32(c, 1.0f)), ""), "tanh");
    return f_mul(c, f_mul(c, cg_f32(c, 0.5f), a), f_add(c, cg_f32(c, 1.0f), th));
}

/* Elementwise over n * cols: silu(gate) * up, gelu_tanh(gate) * up, or a + b. */
static LLVMValueRef elementwise(cg *c, const char *op, int64_t cols, elem_op kind) {
    char name[64];
    snprintf(name, sizeof name, "%s_%lld", op, (long long)cols);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "ppip", &fn)) return fn;
    cg_loop i;
    LLVMValueRef total = mul(c, param(c, 2), cg_i64(c, cols));
    LLVMValueRef ii = cg_for(c, &i, cg_i64(c, 0), total, "i");
    LLVMValueRef a = cg_ldf(c, param(c, 0), ii), b = cg_ldf(c, param(c, 1), ii), r = NULL;
    switch (kind) {
    case ELEM_SILU_MUL: {
        LLVMValueRef neg = LLVMBuildFNeg(c->b, a, "");
        LLVMValueRef den = f_add(c, cg_f32(c, 1.0f), cg_intrinsic(c, "llvm.exp", &neg, 1));
        r = f_mul(c, LLVMBuildFDiv(c->b, a, den, "silu"), b);
        break;
    }
    case ELEM_GELU_MUL: r = f_mul(c, gelu_tanh(c, a), b); break;
    case ELEM_ADD: r = f_add(c, a, b); break;
    }
    cg_stf(c, param(c, 3), ii, r);
    cg_end(c, &i);
    cg_kernel_end(c);
    return fn;
}

LLVMValueRef cg_kernel_silu_mul(cg *c, int64_t cols) { return elementwise(c, "silu_mul", cols, ELEM_SILU_MUL); }
LLVMValueRef cg_kernel_gelu_mul(cg *c, int64_t cols) { return elementwise(c, "gelu_mul", cols, ELEM_GELU_MUL); }
LLVMValueRef cg_kernel_add(cg *c, int64_t cols) { return elementwise(c, "add", cols, ELEM_ADD); }

/* (x [n, in_cols], n, out [n, cols]): out[t] = x[t, col0 : col0 + cols] (Phi-3's fused
 * qkv_proj / gate_up_proj outputs split as modeling_phi3.py Phi3Attention.forward
 * and Phi3MLP.forward do) */
LLVMValueRef cg_kernel_slice(cg *c, int64_t in_cols, int64_t col0, int64_t cols) {
    char name[96];
    snprintf(name, sizeof name, "slice_%lld_%lld_%lld", (long long)in_cols, (long long)col0, (long long)cols);
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "pip", &fn)) return fn;
    cg_loop t;
    LLVMValueRef it = cg_for(c, &t, cg_i64(c, 0), param(c, 1), "t");
    LLVMValueRef src = fptr(c, param(c, 0), add(c, mul(c, it, cg_i64(c, in_cols)), cg_i64(c, col0)));
    memcpy_floats(c, fptr(c, param(c, 2), mul(c, it, cg_i64(c, cols))), src, cols);
    cg_end(c, &t);
    cg_kernel_end(c);
    return fn;
}

/* (compiler.h) n == 1 takes cblas_sgemv (decode is bound by reading W; sgemm packs first). */
void cg_emit_gemm(cg *c, LLVMValueRef sgemm, LLVMValueRef sgemv, bool w_rows_out, LLVMValueRef n, LLVMValueRef x,
                  LLVMValueRef ldx, LLVMValueRef w, LLVMValueRef ldw, LLVMValueRef y, LLVMValueRef ldy, LLVMValueRef N,
                  LLVMValueRef K, LLVMValueRef alpha, LLVMValueRef beta) {
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "gemv");
    LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "gemm");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, n, cg_i64(c, 1), ""), one, many);
    LLVMPositionBuilderAtEnd(c->b, one);
    /* y = alpha W x: W [N, K] as it lies; W [K, N] transposed */
    LLVMValueRef gv[12] = {cg_i32(c, CBLAS_ROW_MAJOR), cg_i32(c, w_rows_out ? CBLAS_NO_TRANS : CBLAS_TRANS),
                           w_rows_out ? N : K, w_rows_out ? K : N, alpha, w, ldw, x, cg_i32(c, 1), beta, y,
                           cg_i32(c, 1)};
    LLVMBuildCall2(c->b, c->sgemv_ty, sgemv, gv, 12, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, many);
    LLVMValueRef gm[14] = {cg_i32(c, CBLAS_ROW_MAJOR), cg_i32(c, CBLAS_NO_TRANS),
                           cg_i32(c, w_rows_out ? CBLAS_TRANS : CBLAS_NO_TRANS), trunc32(c, n), N, K, alpha, x, ldx,
                           w, ldw, beta, y, ldy};
    LLVMBuildCall2(c->b, c->sgemm_ty, sgemm, gm, 14, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* acc[r] = x[0..len) . w[wrow[r] ..) for r < nr, W of dtype kind: one pass over x
 * shared by the nr rows (the accumulators start at 0). no_unroll keeps a long dot
 * from being unrolled into one chain of FMAs (cg_end_no_unroll). */
void cg_emit_dots(cg *c, ir_dtype kind, LLVMValueRef x, LLVMValueRef w, const LLVMValueRef *wrow, int nr,
                  LLVMValueRef len, bool no_unroll, const LLVMValueRef *acc) {
    cg_loop k;
    for (int r = 0; r < nr; r++) stv(c, acc[r], cg_f32(c, 0));
    LLVMValueRef ik = cg_for(c, &k, cg_i64(c, 0), len, "k");
    LLVMValueRef xv = cg_ldf(c, x, ik);
    for (int r = 0; r < nr; r++) {
        LLVMValueRef wv = cg_ld_weight(c, kind, w, add(c, wrow[r], ik));
        stv(c, acc[r], cg_fast(f_add(c, ldv(c, acc[r]), cg_fast(f_mul(c, xv, wv)))));
    }
    cg_end_no_unroll(c, &k, no_unroll);
}

/* y[n, out] = x[n, in] W^T for a few rows (a decode batch), W of dtype kind, over
 * units u0..u1 of rb rows of W (the last unit also takes the out % rb rows left).
 * rb rows of W at a time are dotted with each row of x, so W is read from memory
 * once for all rows of x, where cblas_sgemm would pack it first and run at a
 * fraction of the read bandwidth. rb = 4 shares every load of x among four rows
 * (batches); rb = 1 reads W as one sequential stream (one row of x: measured 1.4x
 * faster than four interleaved rows, which the hardware prefetcher follows badly).
 * The dot products are kept from unrolling completely (cg_end_no_unroll). */
static void emit_rows(cg *c, ir_dtype kind, int rb, bool ragged, LLVMValueRef x, LLVMValueRef w, LLVMValueRef n,
                      LLVMValueRef y, LLVMValueRef out, LLVMValueRef in, LLVMValueRef u0, LLVMValueRef u1) {
    enum { RB_MAX = 4 };
    LLVMValueRef full = LLVMBuildSDiv(c->b, out, cg_i64(c, rb), "full");
    LLVMValueRef acc[RB_MAX];
    for (int r = 0; r < rb; r++) acc[r] = cg_var(c, c->f32, "acc");
    cg_loop o, m;
    /* blocks u0 .. min(u1, full) of rb rows of W */
    LLVMValueRef hi = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, u1, full, ""), u1, full, "hi");
    LLVMValueRef ib = cg_for(c, &o, u0, hi, "ob");
    LLVMValueRef o0 = mul(c, ib, cg_i64(c, rb));
    LLVMValueRef wrow[RB_MAX]; /* element offsets of the block's rows */
    for (int r = 0; r < rb; r++) wrow[r] = mul(c, add(c, o0, cg_i64(c, r)), in);
    LLVMValueRef im = cg_for(c, &m, cg_i64(c, 0), n, "m");
    LLVMValueRef xrow = fptr(c, x, mul(c, im, in));
    cg_emit_dots(c, kind, xrow, w, wrow, rb, in, true, acc);
    LLVMValueRef yrow = mul(c, im, out);
    for (int r = 0; r < rb; r++) cg_stf(c, y, add(c, yrow, add(c, o0, cg_i64(c, r))), ldv(c, acc[r]));
    cg_end(c, &m);
    cg_end(c, &o);
    if (rb == 1 || !ragged) return;
    /* the last out % rb rows, with the last unit (none when rb divides out: then u1 <= full) */
    LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "tail");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "tail_done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, u1, full, ""), tail, after);
    LLVMPositionBuilderAtEnd(c->b, tail);
    LLVMValueRef io = cg_for(c, &o, mul(c, full, cg_i64(c, rb)), out, "o");
    LLVMValueRef w1 = mul(c, io, in);
    im = cg_for(c, &m, cg_i64(c, 0), n, "m");
    cg_emit_dots(c, kind, fptr(c, x, mul(c, im, in)), w, &w1, 1, in, true, acc);
    cg_stf(c, y, add(c, mul(c, im, out), io), ldv(c, acc[0]));
    cg_end(c, &m);
    cg_end(c, &o);
    LLVMBuildBr(c->b, after);
    LLVMPositionBuilderAtEnd(c->b, after);
}

/* Units of rb rows in W [out, in] (the last may be short). */
static LLVMValueRef units_of(cg *c, LLVMValueRef out, int rb) {
    return LLVMBuildSDiv(c->b, add(c, out, cg_i64(c, rb - 1)), cg_i64(c, rb), "units");
}

/* The task (ctx.h lj_task_fn) mmtask_<kind>_<rb>[_ragged](args {x, W, n, y, out, in}, u0, u1):
 * emit_rows over units u0..u1, for any shape whose out is a multiple of rb, or any at all
 * when ragged. Built before the matmul kernel that calls it. */
static LLVMValueRef matmul_task(cg *c, ir_dtype kind, int rb, bool ragged) {
    char name[80];
    snprintf(name, sizeof name, "mmtask_%s_%d%s", ir_dtype_name(kind), rb, ragged ? "_ragged" : "");
    LLVMValueRef fn;
    if (!cg_kernel_begin(c, name, "pii", &fn)) return fn;
    LLVMValueRef args = param(c, 0), f[6];
    LLVMTypeRef ty[6] = {c->ptr, c->ptr, c->i64, c->ptr, c->i64, c->i64};
    for (unsigned i = 0; i < 6; i++)
        f[i] = LLVMBuildLoad2(c->b, ty[i], LLVMBuildStructGEP2(c->b, c->mm_args_ty, args, i, ""), "");
    emit_rows(c, kind, rb, ragged, f[0], f[1], f[2], f[3], f[4], f[5], param(c, 1), param(c, 2));
    cg_kernel_end(c);
    return fn;
}

/* (compiler.h) */
void cg_call_task(cg *c, LLVMValueRef task, LLVMValueRef args, LLVMValueRef units, LLVMValueRef share,
                  LLVMValueRef parallel, LLVMValueRef pool) {
    LLVMBasicBlockRef par = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "parallel");
    LLVMBasicBlockRef direct = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "direct");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "task_done");
    LLVMBuildCondBr(c->b, share, par, direct);
    LLVMPositionBuilderAtEnd(c->b, par);
    LLVMValueRef a[4] = {pool, task, args, units};
    LLVMBuildCall2(c->b, c->parallel_ty, parallel, a, 4, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, direct);
    LLVMValueRef d[3] = {args, cg_i64(c, 0), units};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(task), task, d, 3, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* Calls task over all its units: through ctx's parallel (params 8, 9) when W is
 * big enough to share among threads, else directly. */
static void call_task(cg *c, LLVMValueRef task, int rb, LLVMValueRef out, LLVMValueRef in) {
    enum { PARALLEL_MIN = 1 << 16 }; /* elements of W: below, a thread's share is not worth a wake-up */
    LLVMValueRef args = cg_var(c, c->mm_args_ty, "mm_args");
    LLVMValueRef v[6] = {param(c, 0), param(c, 1), param(c, 2), param(c, 3), out, in};
    for (unsigned i = 0; i < 6; i++) LLVMBuildStore(c->b, v[i], LLVMBuildStructGEP2(c->b, c->mm_args_ty, args, i, ""));
    LLVMValueRef share = LLVMBuildICmp(c->b, LLVMIntSGE, mul(c, out, in), cg_i64(c, PARALLEL_MIN), "");
    cg_call_task(c, task, args, units_of(c, out, rb), share, param(c, 8), param(c, 9));
}

/* The matmul for one weight dtype. F16/BF16 (no BLAS reads them): task16, the 16-bit
 * kernels of cg_matmul16.c on ctx's threads, for every n, one row included (a row's
 * bits do not depend on the rows beside it, and each load of W is shared among up to
 * four rows of x). F32: up to small_rows rows the generated row loop, split among
 * ctx's threads (rb 1 for one row, 4 for more); above, sgemm (sgemv for one row when
 * small_rows is 0). */
static void matmul_body(cg *c, ir_dtype kind, LLVMValueRef task1, LLVMValueRef task4, LLVMValueRef task16) {
    LLVMValueRef n = param(c, 2), out = param(c, 10), in = param(c, 11);
    if (kind != IR_F32) {
        cg_matmul16_call(c, task16, kind, out, in, param(c, 0), param(c, 1), n, param(c, 3), param(c, 7),
                         param(c, 8), param(c, 9), param(c, 12));
        return;
    }
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "one_row");
    LLVMBasicBlockRef rows = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "few_rows");
    LLVMBasicBlockRef small = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "small");
    LLVMBasicBlockRef big = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "big");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "mm_done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, n, param(c, 6), ""), small, big);
    LLVMPositionBuilderAtEnd(c->b, small);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, n, cg_i64(c, 1), ""), one, rows);
    LLVMPositionBuilderAtEnd(c->b, one);
    call_task(c, task1, 1, out, in);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, rows);
    call_task(c, task4, 4, out, in);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, big);
    LLVMValueRef K = trunc32(c, in), N = trunc32(c, out);
    cg_emit_gemm(c, param(c, 4), param(c, 5), true, n, param(c, 0), K, param(c, 1), K, param(c, 3), N, N, K,
                cg_f32(c, 1.0f), cg_f32(c, 0.0f));
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* (x [n, in], W [out, in] of kind, n, y [n, out], sgemm, sgemv, small_rows,
 *  wconv [ir_wconv_rows(out, in), in], parallel, pool, out, in, matmul_bf16_amx): y = x W^T.
 * The shape is a run-time argument, so the projections of a model share one kernel
 * per dtype (compile time grows with dtypes, not shapes); a shape with out not a
 * multiple of 4 or in not of CG_MM16_KSTEP gets the _ragged one, which also handles
 * the rows and K elements left past the blocks. */
LLVMValueRef cg_kernel_matmul(cg *c, int64_t out, int64_t in, ir_dtype kind) {
    bool ragged = out % 4 != 0 || in % CG_MM16_KSTEP != 0;
    char name[64];
    snprintf(name, sizeof name, "matmul_%s%s", ir_dtype_name(kind), ragged ? "_ragged" : "");
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (fn) return fn;
    bool rows = kind == IR_F32; /* the row loop's tasks, where matmul_body calls them */
    LLVMValueRef task1 = rows ? matmul_task(c, kind, 1, ragged) : NULL;
    LLVMValueRef task4 = rows ? matmul_task(c, kind, 4, ragged) : NULL;
    LLVMValueRef task16 = kind == IR_F32 ? NULL : cg_matmul16_task(c, kind, ragged);
    cg_kernel_begin(c, name, "ppipqqipqqiip", &fn);
    matmul_body(c, kind, task1, task4, task16);
    cg_kernel_end(c);
    return fn;
}
