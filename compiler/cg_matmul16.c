/* cg_matmul16.c — matmuls over 16-bit weights (BF16, F16) for any number of rows,
 * y[n, out] = x[n, in] W[out, in]^T, without widening a whole matrix: split over ctx's
 * pool by units of MM16_UNIT rows of W (columns of y). One of two kernels per shape,
 * chosen at compile time from the target (cg_matmul16_target):
 *  - native (BF16 W, AVX512-BF16, on a CPU where it pays: see cg_matmul16_target): the
 *    calling thread splits x into two BF16 parts, hi = bf16(x) and lo = bf16(x - hi),
 *    into the wconv scratch; vdpbf16ps dots both with W as it lies in memory (exact
 *    products, f32 accumulation; x kept to ~2^-17); LORAJIT_BF16_ROUND_X=1 keeps hi
 *    only: twice the speed, x rounded to ~2^-9;
 *  - FMA (F16, and BF16 elsewhere): x as it is (f32), W widened to f32 (exact), FMA
 *    micro-kernel. Past MM16_DIRECT_ROWS (16) rows each thread first widens a tile of W
 *    [MM16_UNIT, kc] into an f32 buffer on its stack ("packed", reused by every row of
 *    x); up to it ("direct": decode batches, short chunks) the micro-kernel widens W's
 *    vectors in registers as it loads them. Both do the same operations on the same
 *    values in the same order, so a row's bits do not depend on n.
 * Both kernels block MR rows of x by NR rows of W in registers, K in blocks of kc, and
 * compute each (row of x, row of W) pair the same way whatever the rows beside it. */
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

enum {
    MM16_UNIT = 16, /* rows of W per parallel unit (and per packed tile) */
    MM16_NR = 4,    /* rows of W per register block */
    MM16_MB = 64,   /* rows of x per cache block */
    MM16_KC = 1024, /* K per block: a packed tile is MM16_UNIT * kc floats (64 KiB) */
    /* FMA kernel: up to this many rows of x, W is widened in registers (a tile above).
       6 TinyLlama-width BF16 layers, 2 threads, alternated: 12-token prefill 70-94 ms
       against 102-132 with the tile above 8 rows, a 16-row decode step 90-110 against
       128-158; 24 to 128 rows within the noise of either way (+-10 %). */
    MM16_DIRECT_ROWS = 16,
};

/* The generator's state for one kernel: the shape, the mode and, while a block is
 * emitted, its run-time values. */
typedef struct mm16 {
    cg *c;
    ir_dtype kind;
    bool native;        /* vdpbf16ps over hi/lo parts of x; else FMA over W widened to f32 */
    bool direct;        /* FMA, while a block is emitted: W's vectors widened as loaded, not a tile */
    bool k_tail;        /* in may leave elements past the vector steps (not a multiple of CG_MM16_KSTEP) */
    int x_parts;        /* native: 2 (hi and lo), or 1 (hi only: LORAJIT_BF16_ROUND_X=1) */
    int vl, step, mr, nr; /* f32 lanes; K per vector step; rows of x and of W per register block */
    LLVMValueRef in, out, kc; /* the shape, read at run time; K per block: min(in rounded up to step, MM16_KC) */
    LLVMTypeRef acc_ty; /* <vl x float> */
    LLVMTypeRef vec_ty; /* what one step loads: native <32 x bfloat>, packed <vl x float> */
    LLVMValueRef x, xs, w, y, n; /* x [n, in] f32, xs [n, 2 in] bf16 (native), W, y [n, out] */
    LLVMValueRef k0, klen, nsteps, first; /* the K block: start, length, vector steps, k0 == 0 */
    LLVMValueRef o0, pack;              /* packed: the tile's first row of W, its [UNIT, kc] f32 */
    LLVMValueRef acc[4 * MM16_NR], tail[4 * MM16_NR]; /* allocas, mr * nr <= 4 * MM16_NR of them */
} mm16;

static bool has_feature(const char *features, const char *name) {
    size_t n = strlen(name);
    for (const char *p = features; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n + 1 && p[0] == '+' && !strncmp(p + 1, name, n)) return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

/* An environment variable set to something other than "" or "0". */
static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* vdpbf16ps where the target has it and it is the faster kernel: with AMX (whose
 * hi/lo packing it shares, for the shapes AMX does not take), on AMD Zen (a 128-token
 * TinyLlama prefill 1643 ms against the FMA kernel's 1892 at 1 thread, level at 2:
 * docs/bench/bench.txt), or when LORAJIT_NATIVE_BF16=1 or LORAJIT_BF16_ROUND_X=1 asks.
 * Not on Intel cores without AMX: on a Sapphire Rapids whose AMX is not exposed, the
 * two-part vdpbf16ps prefill of 128 tokens took 1307 ms against the FMA kernel's 666 (1
 * thread) and 1219 against 469-646 (2 threads), 6 layers, and its decode steps were
 * 1.14-1.3x (batch 1) and 1.6-1.8x (batch 8) slower (README, 16-bit prefill). */
void cg_matmul16_target(cg *c, const char *cpu, const char *features) {
    c->vec_floats = has_feature(features, "avx512f") ? 16 : 8;
    c->bf16_round_x = env_on("LORAJIT_BF16_ROUND_X");
    bool amx_target = has_feature(features, "amx-bf16") && has_feature(features, "amx-tile");
    bool pays = amx_target || (cpu && !strncmp(cpu, "znver", 5)) || env_on("LORAJIT_NATIVE_BF16") || c->bf16_round_x;
    c->bf16_dot = !env_on("LORAJIT_NO_NATIVE_BF16") && c->vec_floats == 16 && has_feature(features, "avx512bf16") &&
                  pays;
    c->f16c = has_feature(features, "f16c");
    c->amx = c->bf16_dot && !c->bf16_round_x && !env_on("LORAJIT_NO_AMX") && amx_target;
}

/* Whether matmuls over W of kind take vdpbf16ps (BF16, c->bf16_dot). */
static bool native_for(const cg *c, ir_dtype kind) { return kind == IR_BF16 && c->bf16_dot; }

static LLVMValueRef mul(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(c->b, a, b, ""); }
static LLVMValueRef add(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(c->b, a, b, ""); }
static LLVMValueRef min64(cg *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}
static LLVMValueRef intrinsic(cg *c, const char *name, LLVMTypeRef *over, int n_over, LLVMValueRef *args, int n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, over, (size_t)n_over);
    return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->llctx, id, over, (size_t)n_over), fn, args, (unsigned)n, "");
}
static LLVMValueRef load_vec(cg *c, LLVMTypeRef ty, LLVMValueRef p, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, ty, p, "");
    LLVMSetAlignment(v, align);
    return v;
}

/* One element of W widened to f32: F16 through fpext (vcvtph2ps) when the target has
 * F16C, else cg_ld_weight's integer widening (no libcall on any x86-64). */
static LLVMValueRef widen(mm16 *s, LLVMValueRef idx) {
    cg *c = s->c;
    if (s->kind == IR_F16 && c->f16c) {
        LLVMTypeRef half = LLVMHalfTypeInContext(c->llctx);
        LLVMValueRef h = LLVMBuildLoad2(c->b, half, cg_gep(c, half, s->w, idx), "");
        return LLVMBuildFPExt(c->b, h, c->f32, "");
    }
    return cg_ld_weight(c, s->kind, s->w, idx);
}

/* W's vl elements at idx widened to <vl x float>: the values widen() gives one by one
 * (fpext is exact; cg_widen16 is the same integer ops on every lane). */
static LLVMValueRef widen_vec(mm16 *s, LLVMValueRef idx) {
    cg *c = s->c;
    unsigned vl = (unsigned)s->vl;
    if (s->kind == IR_F16 && c->f16c) {
        LLVMTypeRef half = LLVMHalfTypeInContext(c->llctx);
        LLVMValueRef h = load_vec(c, LLVMVectorType(half, vl), cg_gep(c, half, s->w, idx), 2);
        return LLVMBuildFPExt(c->b, h, s->acc_ty, "");
    }
    LLVMTypeRef i16 = LLVMInt16TypeInContext(c->llctx);
    LLVMValueRef h = load_vec(c, LLVMVectorType(i16, vl), cg_gep(c, i16, s->w, idx), 2);
    return cg_widen16(c, s->kind, LLVMBuildZExt(c->b, h, LLVMVectorType(c->i32, vl), ""));
}

/* The sum of v's lanes by a fixed tree (halves added, without fast-math flags), so a
 * row of y gets the same bits whatever register block computed it: a row does not
 * depend on how many rows of x are beside it (decode batches, prompt chunks). */
static LLVMValueRef reduce_lanes(mm16 *s, LLVMValueRef v) {
    cg *c = s->c;
    for (int w = s->vl / 2; w >= 1; w /= 2) {
        LLVMValueRef lo[16], hi[16];
        for (int i = 0; i < w; i++) lo[i] = cg_i32(c, i), hi[i] = cg_i32(c, w + i);
        LLVMValueRef u = LLVMGetUndef(LLVMTypeOf(v));
        LLVMValueRef a = LLVMBuildShuffleVector(c->b, v, u, LLVMConstVector(lo, (unsigned)w), "");
        LLVMValueRef b = LLVMBuildShuffleVector(c->b, v, u, LLVMConstVector(hi, (unsigned)w), "");
        v = LLVMBuildFAdd(c->b, a, b, "");
    }
    return LLVMBuildExtractElement(c->b, v, cg_i32(c, 0), "");
}

/* Asks for W's rows o+nr .. o+2nr at K offset koff (the register block after this
 * one), so that reading them from memory overlaps this block's dot products: the
 * first pass of rows of x over a block of W would otherwise wait for memory and the
 * others only compute. A prefetch never faults, so rows past W's end are harmless
 * (plain GEP, not inbounds). Native and direct: the packed kernel reads its tile. */
static void prefetch_next(mm16 *s, int nr, LLVMValueRef o, LLVMValueRef koff) {
    cg *c = s->c;
    LLVMTypeRef bf = LLVMBFloatTypeInContext(c->llctx);
    for (int j = 0; j < nr; j++) {
        LLVMValueRef row = add(c, o, cg_i64(c, nr + j));
        LLVMValueRef idx = add(c, mul(c, row, s->in), koff);
        LLVMValueRef a[4] = {LLVMBuildGEP2(c->b, bf, s->w, &idx, 1, ""), cg_i32(c, 0), cg_i32(c, 3), cg_i32(c, 1)};
        intrinsic(c, "llvm.prefetch", &c->ptr, 1, a, 4);
    }
}

/* y[m .. m+mr, o .. o+nr] (+)= x[m .. m+mr, k0 .. k0+klen) . W[o .. o+nr, same)^T:
 * mr * nr vector accumulators over the K block's vector steps, reduced, then the
 * block's last klen % step elements as scalars; the first K block stores, the
 * others add. Each (row of x, row of W) pair is computed the same way whatever
 * mr and nr are (reduce_lanes). */
static void emit_micro(mm16 *s, int mr, int nr, LLVMValueRef m, LLVMValueRef o) {
    cg *c = s->c;
    LLVMTypeRef bf = LLVMBFloatTypeInContext(c->llctx);
    LLVMValueRef zero = LLVMConstNull(s->acc_ty);
    for (int i = 0; i < mr * nr; i++) LLVMBuildStore(c->b, zero, s->acc[i]);
    cg_loop k;
    LLVMValueRef ks = cg_for(c, &k, cg_i64(c, 0), s->nsteps, "kstep");
    LLVMValueRef koff = add(c, s->k0, mul(c, ks, cg_i64(c, s->step)));
    LLVMValueRef wv[MM16_NR];
    if (s->native || s->direct) prefetch_next(s, nr, o, koff);
    for (int j = 0; j < nr; j++) {
        LLVMValueRef oj = add(c, o, cg_i64(c, j));
        if (s->native) {
            wv[j] = load_vec(c, s->vec_ty, cg_gep(c, bf, s->w, add(c, mul(c, oj, s->in), koff)), 2);
        } else if (s->direct) {
            wv[j] = widen_vec(s, add(c, mul(c, oj, s->in), koff));
        } else {
            LLVMValueRef row = mul(c, LLVMBuildNSWSub(c->b, oj, s->o0, ""), s->kc);
            LLVMValueRef idx = add(c, row, mul(c, ks, cg_i64(c, s->step)));
            wv[j] = load_vec(c, s->vec_ty, cg_gep(c, c->f32, s->pack, idx), 4);
        }
    }
    for (int i = 0; i < mr; i++) {
        LLVMValueRef mi = add(c, m, cg_i64(c, i)), xv[2] = {NULL, NULL};
        if (s->native) { /* row mi of xs: hi [in], then lo [in] */
            LLVMValueRef hi = add(c, mul(c, mul(c, mi, cg_i64(c, 2)), s->in), koff);
            xv[0] = load_vec(c, s->vec_ty, cg_gep(c, bf, s->xs, hi), 2);
            if (s->x_parts == 2)
                xv[1] = load_vec(c, s->vec_ty, cg_gep(c, bf, s->xs, add(c, hi, s->in)), 2);
        } else {
            xv[0] = load_vec(c, s->acc_ty, cg_gep(c, c->f32, s->x, add(c, mul(c, mi, s->in), koff)), 4);
        }
        for (int j = 0; j < nr; j++) {
            LLVMValueRef acc = LLVMBuildLoad2(c->b, s->acc_ty, s->acc[i * nr + j], "");
            if (s->native) {
                LLVMValueRef a0[3] = {acc, xv[0], wv[j]};
                acc = intrinsic(c, "llvm.x86.avx512bf16.dpbf16ps.512", NULL, 0, a0, 3);
                LLVMValueRef a1[3] = {acc, xv[1], wv[j]};
                if (s->x_parts == 2) acc = intrinsic(c, "llvm.x86.avx512bf16.dpbf16ps.512", NULL, 0, a1, 3);
            } else {
                LLVMValueRef a[3] = {xv[0], wv[j], acc}; /* fused where the target has FMA: no libcall */
                acc = intrinsic(c, "llvm.fmuladd", &s->acc_ty, 1, a, 3);
            }
            LLVMBuildStore(c->b, acc, s->acc[i * nr + j]);
        }
    }
    cg_end_no_unroll(c, &k, true);
    LLVMValueRef sum[4 * MM16_NR];
    for (int i = 0; i < mr * nr; i++) sum[i] = reduce_lanes(s, LLVMBuildLoad2(c->b, s->acc_ty, s->acc[i], ""));
    if (s->k_tail) { /* the last block's elements past its vector steps (no iterations in others) */
        for (int i = 0; i < mr * nr; i++) LLVMBuildStore(c->b, sum[i], s->tail[i]);
        cg_loop t;
        LLVMValueRef kt = cg_for(c, &t, add(c, s->k0, mul(c, s->nsteps, cg_i64(c, s->step))),
                                 add(c, s->k0, s->klen), "ktail");
        for (int i = 0; i < mr; i++) {
            LLVMValueRef xval = cg_ldf(c, s->x, add(c, mul(c, add(c, m, cg_i64(c, i)), s->in), kt));
            for (int j = 0; j < nr; j++) {
                LLVMValueRef wval = widen(s, add(c, mul(c, add(c, o, cg_i64(c, j)), s->in), kt));
                LLVMValueRef p = LLVMBuildFMul(c->b, xval, wval, "");
                LLVMValueRef v = LLVMBuildLoad2(c->b, c->f32, s->tail[i * nr + j], "");
                LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, v, p, ""), s->tail[i * nr + j]);
            }
        }
        cg_end_no_unroll(c, &t, true);
        for (int i = 0; i < mr * nr; i++) sum[i] = LLVMBuildLoad2(c->b, c->f32, s->tail[i], "");
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            LLVMValueRef idx = add(c, mul(c, add(c, m, cg_i64(c, i)), s->out), add(c, o, cg_i64(c, j)));
            LLVMValueRef old = cg_ldf(c, s->y, idx);
            LLVMValueRef v = LLVMBuildSelect(c->b, s->first, sum[i * nr + j],
                                             LLVMBuildFAdd(c->b, old, sum[i * nr + j], ""), "");
            cg_stf(c, s->y, idx, v);
        }
}

/* Rows m_lo .. m_hi of x against rows o0 .. o0+olen of W (olen <= MM16_UNIT): register
 * blocks of mr x NR, then the rows of x left in blocks of mr/2, mr/4 .. 1 rows (x NR),
 * then the rows of W left the same way (x 1). */
static void emit_block(mm16 *s, LLVMValueRef o0, LLVMValueRef olen, LLVMValueRef m_lo, LLVMValueRef m_hi) {
    cg *c = s->c;
    LLVMValueRef ogroups = LLVMBuildSDiv(c->b, olen, cg_i64(c, s->nr), "");
    LLVMValueRef o_mid = add(c, o0, mul(c, ogroups, cg_i64(c, s->nr)));
    for (int pass = 0; pass < 2; pass++) { /* 0: groups of NR rows of W; 1: the rows left, one at a time */
        int nr = pass == 0 ? s->nr : 1;
        cg_loop og, mg;
        LLVMValueRef io = pass == 0 ? cg_for(c, &og, cg_i64(c, 0), ogroups, "og")
                                    : cg_for(c, &og, o_mid, add(c, o0, olen), "ot");
        LLVMValueRef o = pass == 0 ? add(c, o0, mul(c, io, cg_i64(c, s->nr))) : io;
        LLVMValueRef m = m_lo;
        for (int b = s->mr; b >= 1; b /= 2) { /* b < mr: at most one block each */
            LLVMValueRef blocks = LLVMBuildSDiv(c->b, LLVMBuildNSWSub(c->b, m_hi, m, ""), cg_i64(c, b), "");
            LLVMValueRef im = cg_for(c, &mg, cg_i64(c, 0), blocks, "mg");
            emit_micro(s, b, nr, add(c, m, mul(c, im, cg_i64(c, b))), o);
            cg_end(c, &mg);
            m = add(c, m, mul(c, blocks, cg_i64(c, b)));
        }
        cg_end(c, &og);
    }
}

/* pack [r, k] = W[o0 + r, k0 + k] widened, r < olen, k < klen */
static void emit_pack(mm16 *s, LLVMValueRef olen) {
    cg *c = s->c;
    cg_loop r, k;
    LLVMValueRef ir = cg_for(c, &r, cg_i64(c, 0), olen, "pr");
    LLVMValueRef src = add(c, mul(c, add(c, s->o0, ir), s->in), s->k0);
    LLVMValueRef dst = mul(c, ir, s->kc);
    LLVMValueRef ik = cg_for(c, &k, cg_i64(c, 0), s->klen, "pk");
    cg_stf(c, s->pack, add(c, dst, ik), widen(s, add(c, src, ik)));
    cg_end(c, &k);
    cg_end(c, &r);
}

/* The argument block of a task: {x, xs, W, n, y, out, in}. */
static LLVMTypeRef args_type(cg *c) {
    LLVMTypeRef f[7] = {c->ptr, c->ptr, c->ptr, c->i64, c->ptr, c->i64, c->i64};
    return LLVMStructTypeInContext(c->llctx, f, 7, 0);
}

/* Sets s's K block from its index ik: k0, klen, the vector steps and whether it is the first. */
static void k_block(mm16 *s, LLVMValueRef ik) {
    cg *c = s->c;
    s->k0 = mul(c, ik, s->kc);
    s->klen = min64(c, s->kc, LLVMBuildNSWSub(c->b, s->in, s->k0, ""));
    s->nsteps = LLVMBuildSDiv(c->b, s->klen, cg_i64(c, s->step), "");
    s->first = LLVMBuildICmp(c->b, LLVMIntEQ, ik, cg_i64(c, 0), "first");
}

static void mm16_init(mm16 *s, cg *c, ir_dtype kind, bool k_tail) {
    memset(s, 0, sizeof *s);
    s->c = c, s->kind = kind, s->k_tail = k_tail;
    s->native = native_for(c, kind);
    s->x_parts = c->bf16_round_x ? 1 : 2;
    s->vl = c->vec_floats;
    s->step = s->native ? 32 : s->vl;
    s->acc_ty = LLVMVectorType(c->f32, (unsigned)s->vl);
    s->vec_ty = s->native ? LLVMVectorType(LLVMBFloatTypeInContext(c->llctx), 32) : s->acc_ty;
}

/* Begins the task function name (ctx.h lj_task_fn: args {x, xs, W, n, y, out, in},
 * u0, u1) and sets s's shape and pointers from its argument block, and the
 * accumulators (and, packed, the tile) its micro-kernels use. */
static void task_begin(mm16 *s, const char *name, LLVMValueRef *fn) {
    cg *c = s->c;
    cg_kernel_begin(c, name, "pii", fn);
    LLVMTypeRef aty = args_type(c), fty[7] = {c->ptr, c->ptr, c->ptr, c->i64, c->ptr, c->i64, c->i64};
    LLVMValueRef f[7];
    for (unsigned i = 0; i < 7; i++)
        f[i] = LLVMBuildLoad2(c->b, fty[i], LLVMBuildStructGEP2(c->b, aty, LLVMGetParam(*fn, 0), i, ""), "");
    s->x = f[0], s->xs = f[1], s->w = f[2], s->n = f[3], s->y = f[4], s->out = f[5], s->in = f[6];
    LLVMValueRef step = cg_i64(c, s->step);
    LLVMValueRef in_steps = mul(c, LLVMBuildSDiv(c->b, add(c, s->in, cg_i64(c, s->step - 1)), step, ""), step);
    s->kc = min64(c, in_steps, cg_i64(c, MM16_KC));
    /* register blocks: 4 x 4 (16 zmm accumulators) or 2 x 4 (8 ymm); the direct mode on
       zmm 8 x 2, each W vector widened once for 8 rows of x, not twice (6 TinyLlama-width
       BF16 layers, 2 threads, two engines alternated: batch-8 steps 59.4 / 60.2 ms against
       63.6 / 63.5; batch 1 level; the same bits, as each pair's order is unchanged) */
    s->mr = s->vl == 16 ? 4 : 2, s->nr = MM16_NR;
    if (s->direct && s->vl == 16) s->mr = 8, s->nr = 2;
    for (int i = 0; i < s->mr * s->nr; i++) {
        s->acc[i] = cg_var(c, s->acc_ty, "acc");
        s->tail[i] = cg_var(c, c->f32, "sum");
    }
    s->pack = NULL;
    if (!s->native && !s->direct) {
        s->pack = cg_var(c, LLVMArrayType2(c->f32, (uint64_t)MM16_UNIT * MM16_KC), "tile");
        LLVMSetAlignment(s->pack, 64);
    }
}

/* K blocks of s->kc elements in the shape's in. */
static LLVMValueRef k_blocks(mm16 *s) {
    cg *c = s->c;
    return LLVMBuildSDiv(c->b, add(c, s->in, LLVMBuildNSWSub(c->b, s->kc, cg_i64(c, 1), "")), s->kc, "");
}

/* The task (ctx.h lj_task_fn) mm16task_<kind>_<mode>[_ktail](args {x, xs, W, n, y, out, in}, u0, u1):
 * rows u0 * MM16_UNIT .. u1 * MM16_UNIT of W (columns of y), every row of x; any shape
 * whose in is a multiple of CG_MM16_KSTEP, or any at all with k_tail. The FMA kernel's
 * direct mode (n <= MM16_DIRECT_ROWS) is a function of its own, <name>_direct, that the
 * task calls: the two halves are the largest functions of a module, and a compile in
 * parts (jit_parts.c) can give them to two threads. */
LLVMValueRef cg_matmul16_task(cg *c, ir_dtype kind, bool k_tail) {
    mm16 s;
    mm16_init(&s, c, kind, k_tail);
    char name[96], dname[112];
    snprintf(name, sizeof name, "mm16task_%s_%s%s", ir_dtype_name(kind),
             !s.native ? "packed" : s.x_parts == 2 ? "dpbf16" : "dpbf16x1", k_tail ? "_ktail" : "");
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name), dfn;
    if (fn) return fn;
    cg_loop kb, mb, ob;
    if (s.native) { /* a block of x stays in L2 for all the thread's rows of W */
        task_begin(&s, name, &fn);
        k_block(&s, cg_for(c, &kb, cg_i64(c, 0), k_blocks(&s), "kb"));
        LLVMValueRef n_mb = LLVMBuildSDiv(c->b, add(c, s.n, cg_i64(c, MM16_MB - 1)), cg_i64(c, MM16_MB), "");
        LLVMValueRef im = cg_for(c, &mb, cg_i64(c, 0), n_mb, "mb");
        LLVMValueRef m_lo = mul(c, im, cg_i64(c, MM16_MB));
        LLVMValueRef m_hi = min64(c, s.n, add(c, m_lo, cg_i64(c, MM16_MB)));
        LLVMValueRef io = cg_for(c, &ob, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), "ob");
        LLVMValueRef o0 = mul(c, io, cg_i64(c, MM16_UNIT));
        emit_block(&s, o0, min64(c, cg_i64(c, MM16_UNIT), LLVMBuildNSWSub(c->b, s.out, o0, "")), m_lo, m_hi);
        cg_end(c, &ob);
        cg_end(c, &mb);
        cg_end(c, &kb);
        cg_kernel_end(c);
        return fn;
    }
    /* direct: each unit of W read once, all its K blocks in turn, for every row of x */
    snprintf(dname, sizeof dname, "%s_direct", name);
    s.direct = true;
    task_begin(&s, dname, &dfn);
    LLVMValueRef io = cg_for(c, &ob, LLVMGetParam(dfn, 1), LLVMGetParam(dfn, 2), "ob");
    s.o0 = mul(c, io, cg_i64(c, MM16_UNIT));
    LLVMValueRef olen = min64(c, cg_i64(c, MM16_UNIT), LLVMBuildNSWSub(c->b, s.out, s.o0, ""));
    k_block(&s, cg_for(c, &kb, cg_i64(c, 0), k_blocks(&s), "kb"));
    emit_block(&s, s.o0, olen, cg_i64(c, 0), s.n);
    cg_end(c, &kb);
    cg_end(c, &ob);
    cg_kernel_end(c);
    /* the task: up to MM16_DIRECT_ROWS rows the direct function, else a tile of W is
       widened once for all rows of x (packed) */
    s.direct = false;
    task_begin(&s, name, &fn);
    LLVMBasicBlockRef direct = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "direct");
    LLVMBasicBlockRef packed = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "packed");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, s.n, cg_i64(c, MM16_DIRECT_ROWS), ""), direct, packed);
    LLVMPositionBuilderAtEnd(c->b, direct);
    LLVMValueRef a[3] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(dfn), dfn, a, 3, "");
    LLVMBuildRetVoid(c->b);
    LLVMPositionBuilderAtEnd(c->b, packed);
    k_block(&s, cg_for(c, &kb, cg_i64(c, 0), k_blocks(&s), "kb"));
    io = cg_for(c, &ob, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), "ob");
    s.o0 = mul(c, io, cg_i64(c, MM16_UNIT));
    olen = min64(c, cg_i64(c, MM16_UNIT), LLVMBuildNSWSub(c->b, s.out, s.o0, ""));
    emit_pack(&s, olen);
    LLVMValueRef n_mb = LLVMBuildSDiv(c->b, add(c, s.n, cg_i64(c, MM16_MB - 1)), cg_i64(c, MM16_MB), "");
    LLVMValueRef im = cg_for(c, &mb, cg_i64(c, 0), n_mb, "mb");
    LLVMValueRef m_lo = mul(c, im, cg_i64(c, MM16_MB));
    emit_block(&s, s.o0, olen, m_lo, min64(c, s.n, add(c, m_lo, cg_i64(c, MM16_MB))));
    cg_end(c, &mb);
    cg_end(c, &ob);
    cg_end(c, &kb);
    cg_kernel_end(c);
    return fn;
}

/* xs[m, 0 .. in) = bf16(x[m]) (hi), xs[m, in .. 2 in) = bf16(x[m] - hi) (lo), both
 * rounded to nearest even, for m < rows and the first in / 32 * 32 columns (what the
 * vector steps read; the rest is done in f32 from x). */
static void emit_split(cg *c, LLVMValueRef x, LLVMValueRef rows, LLVMValueRef xs, LLVMValueRef in) {
    LLVMTypeRef v16 = LLVMVectorType(c->f32, 16), bf = LLVMBFloatTypeInContext(c->llctx);
    LLVMTypeRef b16 = LLVMVectorType(bf, 16);
    cg_loop m, k;
    LLVMValueRef im = cg_for(c, &m, cg_i64(c, 0), rows, "sm");
    LLVMValueRef src = mul(c, im, in), dst = mul(c, mul(c, im, cg_i64(c, 2)), in);
    LLVMValueRef vecs = mul(c, LLVMBuildSDiv(c->b, in, cg_i64(c, 32), ""), cg_i64(c, 2)); /* of 16 floats */
    LLVMValueRef ik = cg_for(c, &k, cg_i64(c, 0), vecs, "sk");
    LLVMValueRef off = mul(c, ik, cg_i64(c, 16));
    LLVMValueRef v = load_vec(c, v16, cg_gep(c, c->f32, x, add(c, src, off)), 4);
    LLVMValueRef hi = LLVMBuildFPTrunc(c->b, v, b16, "hi");
    LLVMValueRef lo = LLVMBuildFPTrunc(c->b, LLVMBuildFSub(c->b, v, LLVMBuildFPExt(c->b, hi, v16, ""), ""), b16, "lo");
    LLVMValueRef at = add(c, dst, off);
    LLVMSetAlignment(LLVMBuildStore(c->b, hi, cg_gep(c, bf, xs, at)), 2);
    if (!c->bf16_round_x) LLVMSetAlignment(LLVMBuildStore(c->b, lo, cg_gep(c, bf, xs, add(c, at, in))), 2);
    cg_end(c, &k);
    cg_end(c, &m);
}

void cg_matmul16_call(cg *c, LLVMValueRef task, ir_dtype kind, LLVMValueRef out, LLVMValueRef in, LLVMValueRef x,
                      LLVMValueRef w, LLVMValueRef n, LLVMValueRef y, LLVMValueRef wconv, LLVMValueRef parallel,
                      LLVMValueRef pool, LLVMValueRef amx) {
    bool native = native_for(c, kind);
    LLVMValueRef chunk = cg_i64(c, 1 << 30); /* rows of x per split into wconv: ir_wconv_rows(out, in) */
    if (native) {
        chunk = min64(c, LLVMBuildSDiv(c->b, cg_i64(c, IR_WCONV_FLOATS), in, ""), out);
        LLVMValueRef none = LLVMBuildICmp(c->b, LLVMIntSLT, chunk, cg_i64(c, 1), "");
        chunk = LLVMBuildSelect(c->b, none, cg_i64(c, 1), chunk, "");
    }
    LLVMBasicBlockRef done = NULL;
    if (native && c->amx) { /* ctx->matmul_bf16_amx, where the runtime set it and it takes the shape */
        LLVMBasicBlockRef try_amx = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "amx");
        LLVMBasicBlockRef gen = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "mm16");
        done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "mm16_done");
        LLVMBuildCondBr(c->b, LLVMBuildIsNotNull(c->b, amx, ""), try_amx, gen);
        LLVMPositionBuilderAtEnd(c->b, try_amx);
        LLVMTypeRef p[10] = {c->ptr, c->ptr, c->i64, c->ptr, c->i64, c->ptr, c->i64, c->i64, c->ptr, c->ptr};
        LLVMValueRef a[10] = {x, wconv, chunk, w, n, y, out, in, parallel, pool};
        LLVMValueRef took = LLVMBuildCall2(c->b, LLVMFunctionType(c->i32, p, 10, 0), amx, a, 10, "");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, took, cg_i32(c, 0), ""), done, gen);
        LLVMPositionBuilderAtEnd(c->b, gen);
    }
    LLVMTypeRef aty = args_type(c);
    LLVMValueRef args = cg_var(c, aty, "mm16_args");
    cg_loop ch;
    LLVMValueRef n_ch = LLVMBuildSDiv(c->b, add(c, n, LLVMBuildNSWSub(c->b, chunk, cg_i64(c, 1), "")), chunk, "");
    LLVMValueRef ic = cg_for(c, &ch, cg_i64(c, 0), n_ch, "chunk");
    LLVMValueRef m0 = mul(c, ic, chunk);
    LLVMValueRef rows = min64(c, chunk, LLVMBuildNSWSub(c->b, n, m0, ""));
    LLVMValueRef xc = cg_gep(c, c->f32, x, mul(c, m0, in));
    if (native) emit_split(c, xc, rows, wconv, in);
    LLVMValueRef v[7] = {xc, wconv, w, rows, cg_gep(c, c->f32, y, mul(c, m0, out)), out, in};
    for (unsigned i = 0; i < 7; i++) LLVMBuildStore(c->b, v[i], LLVMBuildStructGEP2(c->b, aty, args, i, ""));
    LLVMValueRef units = LLVMBuildSDiv(c->b, add(c, out, cg_i64(c, MM16_UNIT - 1)), cg_i64(c, MM16_UNIT), "");
    LLVMValueRef a[4] = {pool, task, args, units};
    LLVMBuildCall2(c->b, c->parallel_ty, parallel, a, 4, "");
    cg_end(c, &ch);
    if (done) {
        LLVMBuildBr(c->b, done);
        LLVMPositionBuilderAtEnd(c->b, done);
    }
}
