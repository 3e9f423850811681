/* compiler.h — internal header of compiler/: every non-static function, under its
 * file's banner. compiler/ builds on ir/ and on runtime's readers (config, schema,
 * layout) and glues the pipeline (pipeline.c, two halves): model folder -> front end
 * -> ir_verify -> ir_plan -> layout; then codegen -> optimise -> JIT, or -> object.
 * compiler/engine.c uses them for lorajit_engine_open (-> lj_engine_start) and
 * lorajit_compile_artifact (-> shared library -> manifest). */
#ifndef LORAJIT_COMPILER_H
#define LORAJIT_COMPILER_H

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "ir.h"
#include "code.h"

typedef struct jit_session jit_session; /* jit.c */

/* ---- pipeline.c: the one compile entry, in two halves ---- */
/* What the first half produces. Every pointer owned; free with pipeline_ir_free(). */
typedef struct pipeline_ir {
    ir_graph *g;       /* verified and planned */
    lj_layout *L;      /* what the code will expect: weights, sites, scratch */
    char *ir_text;     /* g printed (malloc'd) */
    double frontend_ms; /* config + schema + front end + weight dtypes */
    double plan_ms;     /* ir_verify + ir_plan + ir_verify + layout */
} pipeline_ir;
/* Half 1: model_dir/config.json + opts (NULL: defaults) -> verified, planned IR and
 * its layout. Reads the weights' safetensors headers when present, never their data,
 * and refuses before any code is made a config the files do not hold (the first
 * missing tensor and how many, a wrong shape or dtype). Caller owns *out; free with pipeline_ir_free(). On failure *out
 * is empty and err names the file, field or node. */
lorajit_status pipeline_ir_build(const char *model_dir, const lorajit_options *opts, pipeline_ir *out,
                                 lj_err *err);
void pipeline_ir_free(pipeline_ir *p); /* empties *p; an empty one does nothing */
double pipeline_now_ms(void);          /* the monotonic clock the stage times use, ms */

/* What codegen chose for the matmuls (cg_module_build). */
typedef struct cg_matmuls {
    bool rows_exact; /* every matmul takes cg_matmul16.c's kernels (16-bit W), whose rows do not
                        depend on the rows beside them: lj_code's rows_exact */
    bool bf16_dot;   /* BF16 matmuls take vdpbf16ps (cg_matmul16_target), else FMAs */
    bool amx;        /* ... and first offer themselves to ctx->matmul_bf16_amx */
} cg_matmuls;

/* Where the second half's code goes. */
typedef struct pipeline_target {
    const char *cpu;        /* NULL or "native": this host; else an x86-64 level (cg_target_machine) */
    const char *object_dir; /* NULL: JIT in this process; else write object_dir/model.o (an artifact) */
    const lj_layout *layout; /* an artifact: the layout its library pins (aot_emit_object); borrowed */
} pipeline_target;
/* What the second half produces. Every pointer owned; free with pipeline_code_free(). */
typedef struct pipeline_code {
    jit_session *jit;            /* JIT: owns the machine code; NULL for an object */
    lj_forward_fn forward;       /* JIT: entry points, valid while jit lives */
    lj_decode_fn decode;
    int64_t compiles;            /* machine-code generations this half ran (1) */
    uint64_t code_hash;          /* object: FNV-1a 64 of the optimised module's text */
    char *triple, *cpu, *features; /* the target machine's (malloc'd) */
    lj_compile_times times;      /* codegen, optimize, jit (JIT or object emission) */
    cg_matmuls matmuls;          /* what the matmuls took: rows_exact is lj_code's */
} pipeline_code;
/* Half 2: a verified, planned graph (borrowed) -> machine code for t: target machine,
 * codegen, default<O3>, then the LLJIT session or dir/model.o. Caller owns *out; free
 * with pipeline_code_free(). On failure *out is empty. */
lorajit_status pipeline_code_build(const ir_graph *g, const pipeline_target *t, pipeline_code *out,
                                   lj_err *err);
void pipeline_code_free(pipeline_code *c); /* empties *c; an empty one does nothing */

/* ---- frontend.c: config + schema -> IR, through the architecture table ----
 * Calls the builder of cfg's architecture (lj_arch_get(cfg->arch)->frontend).
 * Caller owns the result; free with ir_graph_free(). On failure returns NULL and
 * err names the config field or node. */
ir_graph *fe_build(const lj_config *cfg, const lj_schema *schema, lj_err *err);

/* ---- frontend_llama.c: the LLaMA block (LJ_FE_LLAMA) ----
 * Builds the whole LLaMA forward pass (llama2.c's forward(), HF tensor names from
 * the architecture table) with a LORA node after every linear whose module is in
 * schema->target_mask and a bias where cfg->bias_mask says. Weight ids follow
 * creation order; site ids follow (layer, q,k,v,o,gate,up,down).
 * Caller owns the result; free with ir_graph_free(). On failure returns NULL and
 * err names the config field or node. */
ir_graph *fe_llama_build(const lj_config *cfg, const lj_schema *schema, lj_err *err);

/* ---- fe_dtypes.c: which weight matrices the code reads as F16 / BF16 ----
 * Checks every weight of g against model_dir's safetensors headers (present, shape,
 * dtype: lj_weights_probe) and sets each 2-D weight's dtype to what they hold (F16,
 * BF16, else f32); no weight files: all f32. Errors name the file and tensor. */
lorajit_status fe_weight_dtypes(ir_graph *g, const char *model_dir, lj_err *err);
int32_t cg_lj_dtype(ir_dtype d); /* IR_F16 -> LJ_DTYPE_F16, IR_BF16 -> LJ_DTYPE_BF16, else F32 */
ir_dtype ir_dtype_of(int32_t lj_dtype); /* its inverse: LJ_DTYPE_F16 -> IR_F16, BF16 -> IR_BF16, else F32 */

/* ---- layout.c: IR -> the runtime's lj_layout ----
 * Requires a planned graph. Lists weights (by weight id: tensor name, shape) and
 * LoRA sites (layer, module, in, out, HF module path from the architecture table),
 * copies cfg and schema and the scratch sizes.
 * Caller owns *out; free with lj_layout_free(). */
lorajit_status fe_layout(const ir_graph *g, const lj_config *cfg, const lj_schema *schema,
                         lj_layout **out, lj_err *err);

/* ---- cg_builder.c: LLVM building helpers shared by the codegen files ---- */
/* State of one module being generated. Borrowed LLVM objects: the context and
 * module belong to whoever called cg_module_build. */
typedef struct cg {
    LLVMContextRef llctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i32, i64, f32, ptr, voidt;
    LLVMTypeRef sgemm_ty, sgemv_ty;  /* cblas_sgemm / cblas_sgemv signatures (ctx.h) */
    LLVMTypeRef parallel_ty;         /* ctx.h lj_parallel_fn */
    LLVMTypeRef mm_args_ty;          /* {x, W, n, y, out, in}: what a matmul task reads */
    LLVMValueRef fn;                 /* function being built */
    LLVMBasicBlockRef entry;         /* its entry block (allocas go here) */
    bool bf16_dot;                   /* target has AVX512-BF16 (vdpbf16ps), not forced off (cg_matmul16.c) */
    bool bf16_round_x;               /* vdpbf16ps on x rounded to BF16 once (LORAJIT_BF16_ROUND_X=1) */
    bool f16c;                       /* target has F16C (vcvtph2ps) */
    bool amx;                        /* bf16_dot and the target has AMX-BF16: BF16 matmuls first offer
                                        themselves to ctx->matmul_bf16_amx (cg_matmul16.c) */
    int vec_floats;                  /* f32 lanes of its widest vectors: 16 (AVX-512) or 8 */
    LLVMValueRef saved_fn;           /* caller's state while a kernel is built */
    LLVMBasicBlockRef saved_entry, saved_block;
} cg;
/* A counted loop for (iv = begin; iv < end; iv++), iv i64. */
typedef struct cg_loop {
    LLVMBasicBlockRef header, body, exit;
    LLVMValueRef iv;
} cg_loop;
void cg_init(cg *c, LLVMContextRef llctx, LLVMModuleRef mod); /* creates c->b; cg_fini disposes it */
void cg_fini(cg *c);
LLVMValueRef cg_for(cg *c, cg_loop *l, LLVMValueRef begin, LLVMValueRef end, const char *name);
void cg_end(cg *c, cg_loop *l);
/* cg_end; with no_unroll the loop is marked llvm.loop.unroll.disable and
 * llvm.loop.interleave.count 4: a dot product of a constant 1024 floats was
 * otherwise unrolled completely into one chain of dependent FMAs (1.7x slower),
 * and a run-time trip count instead doubled compile time (epilogues, remainders). */
void cg_end_no_unroll(cg *c, cg_loop *l, bool no_unroll);
LLVMValueRef cg_i64(cg *c, int64_t v);
LLVMValueRef cg_i32(cg *c, int32_t v);
LLVMValueRef cg_f32(cg *c, float v);
LLVMValueRef cg_gep(cg *c, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef idx); /* &base[idx] */
LLVMValueRef cg_ldf(cg *c, LLVMValueRef base, LLVMValueRef idx);                   /* base[idx] (f32) */
void cg_stf(cg *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);           /* base[idx] = v */
LLVMValueRef cg_ld_at(cg *c, LLVMTypeRef ty, LLVMValueRef base, int64_t byte_off); /* *(ty *)(base + off) */
LLVMValueRef cg_var(cg *c, LLVMTypeRef ty, const char *name);                      /* alloca in entry */
LLVMValueRef cg_fast(LLVMValueRef inst); /* allow reassociation (vectorisable reductions); returns inst */
LLVMValueRef cg_intrinsic(cg *c, const char *name, LLVMValueRef *args, int n); /* f32 overload */
LLVMValueRef cg_log2_pow2(cg *c, LLVMValueRef x); /* log2 of an i64 power of two (llvm.cttz) */
/* Starts (or finds) the internal function `name` with params described by sig,
 * one char each: 'p' ptr (noalias), 'q' ptr (may alias), 'i' i64. Returns true
 * and leaves the builder inside a fresh entry block when the body must be built;
 * false when it already exists. *fn gets the function either way. */
bool cg_kernel_begin(cg *c, const char *name, const char *sig, LLVMValueRef *fn);
void cg_kernel_end(cg *c); /* ret void, then back to where the caller was building */
/* base[idx] of a weight of dtype kind (IR_F32, IR_F16, IR_BF16) widened to f32, exactly,
 * with integer ops only (no F16C, no libcall): an f32 value at the builder. */
LLVMValueRef cg_ld_weight(cg *c, ir_dtype kind, LLVMValueRef base, LLVMValueRef idx);
/* A 16-bit pattern of kind (IR_BF16 or IR_F16) zero-extended in h (i32, or <N x i32>)
 * -> its value as f32 (or <N x float>). Exact: BF16 is the top half of an f32; F16 is
 * rebuilt with integer ops and one multiply by 2^112 (normals and subnormals exact,
 * Inf/NaN kept), so no libcall and no F16C is needed and it vectorises on any x86-64. */
LLVMValueRef cg_widen16(cg *c, ir_dtype kind, LLVMValueRef h);
/* f32 v rounded to nearest even into IR_F16 or IR_BF16 bits, an i16 at the builder; integer
 * ops and one strict f32 add only (no F16C, no AVX512-BF16): the KV cache's 16-bit writes. */
LLVMValueRef cg_narrow16(cg *c, ir_dtype kind, LLVMValueRef v);

/* ---- cg_kernels.c: one kernel (internal LLVM function) per op and shape ----
 * Each returns the function, building it on first use. Shapes in the comments. */
LLVMValueRef cg_kernel_embed(cg *c, int64_t dim, ir_dtype kind, float scale);
    /* (table [vocab, dim] of kind, tokens [n], n, out [n, dim] f32), rows times scale unless 0 */
LLVMValueRef cg_kernel_rmsnorm(cg *c, int64_t d, float eps, float w_offset);
    /* (x [n, d], w [d], n, out [n, d]): the weight taken as w + w_offset (0 or 1) */
LLVMValueRef cg_kernel_bias_add(cg *c, int64_t cols);     /* (y [n, cols], b [cols], n) in place */
LLVMValueRef cg_kernel_rope(cg *c, int n_heads, int head_size); /* (x [n, n_heads*hs], n, pos0, table) */
LLVMValueRef cg_kernel_silu_mul(cg *c, int64_t cols);     /* (gate [n, cols], up, n, out) */
LLVMValueRef cg_kernel_gelu_mul(cg *c, int64_t cols);     /* (gate [n, cols], up, n, out) */
LLVMValueRef cg_kernel_add(cg *c, int64_t cols);          /* (a [n, cols], b, n, out) */
LLVMValueRef cg_kernel_slice(cg *c, int64_t in_cols, int64_t col0, int64_t cols);
    /* (x [n, in_cols], n, out [n, cols]): out = x[:, col0 : col0 + cols] */
LLVMValueRef cg_kernel_matmul(cg *c, int64_t out, int64_t in, ir_dtype kind);
    /* (x [n, in], W [out, in] of kind, n, y [n, out], sgemm, sgemv, small_rows,
        wconv [ir_wconv_rows(out, in), in], parallel, pool, out, in): y = x W^T. out and
        in are run-time arguments: one kernel per dtype serves every shape whose out is
        a multiple of 4 and in of CG_MM16_KSTEP, one more (_ragged) every other shape. f16/bf16
        take the blocked kernels of cg_matmul16.c for every n (wconv: x split into BF16
        parts for vdpbf16ps); f32 a generated row loop shared among ctx's threads up to
        small_rows rows, sgemm above (sgemv for one row when small_rows is 0) */
/* y[n, N] = alpha * x[n, K] @ W^T + beta * y (f32) with W [N, K] (w_rows_out), or
   alpha * x @ W + beta * y with W [K, N], W's row stride ldw, through sgemm / sgemv
   (ctx's BLAS); lds and N, K are i32 values */
void cg_emit_gemm(cg *c, LLVMValueRef sgemm, LLVMValueRef sgemv, bool w_rows_out, LLVMValueRef n, LLVMValueRef x,
                  LLVMValueRef ldx, LLVMValueRef w, LLVMValueRef ldw, LLVMValueRef y, LLVMValueRef ldy, LLVMValueRef N,
                  LLVMValueRef K, LLVMValueRef alpha, LLVMValueRef beta);
/* acc[r] (f32 allocas) = x[0..len) . w[wrow[r] ..) for r < nr, w of dtype kind (widened) */
void cg_emit_dots(cg *c, ir_dtype kind, LLVMValueRef x, LLVMValueRef w, const LLVMValueRef *wrow, int nr,
                  LLVMValueRef len, bool no_unroll, const LLVMValueRef *acc);

/* task(args, 0, units) (a ctx.h lj_task_fn), through parallel(pool, ...) when the i1
   share is true, else directly on the calling thread */
void cg_call_task(cg *c, LLVMValueRef task, LLVMValueRef args, LLVMValueRef units, LLVMValueRef share,
                  LLVMValueRef parallel, LLVMValueRef pool);

/* ---- cg_lora.c: the LoRA term over the slots, A and B of dtype kind (the schema's lora_dtype) ---- */
LLVMValueRef cg_kernel_lora(cg *c, int r_max, ir_dtype kind);
    /* (y [n, out], x [n, in], n, site, active, t [n, r_max], sgemm, sgemv, small_rows, in, out,
       wide [r_max * (in + out)] f32 scratch, read only when kind is 16-bit and n > small_rows),
       one kernel for every shape:
       y += sum_a w_a s_a (x A_a^T) B_a^T at each slot's true rank; plain loops up to
       small_rows rows, BLAS above (16-bit slots widened into wide first) */
LLVMValueRef cg_kernel_lora_rows(cg *c, int r_max, ir_dtype kind);
    /* (y [n, out], x [n, in], n, site, row_active [n], t [n, r_max], in, out, parallel,
       pool): a decode pass's LoRA term, each row its own active set, rows on the pool */

/* ---- cg_attention.c: the attention kernel over the paged KV cache ---- */
LLVMValueRef cg_kernel_attention(cg *c, int n_heads, int n_kv_heads, int head_size, int window, ir_dtype kv);
    /* (q [n, n_heads*hs], k, v [n, kv_dim], n, pos0, key_cache, value_cache (block pools
        [n_blocks, n_layers, block_size, kv_dim] of kv (IR_F32, IR_F16, IR_BF16) offset to this
        layer), table [blocks] i32, shift = log2(block_size), block_stride = n_layers *
        block_size * kv_dim elements, att [seq_len], out [n, n_heads*hs]) */
LLVMTypeRef cg_kv_elem(cg *c, ir_dtype kv); /* the KV cache's element type: f32, or i16 for 16 bits */
/* ---- cg_matmul16.c: 16-bit matmuls of any number of rows ---- */
/* Sets c's bf16_dot, bf16_round_x, f16c, amx and vec_floats from the target's CPU name
 * (LLVM's, e.g. "znver4"; NULL: none) and feature list ("+a,-b,...", borrowed; NULL:
 * none) and the environment: bf16_dot where AVX512-BF16 pays (AMX, AMD Zen,
 * LORAJIT_NATIVE_BF16=1 or LORAJIT_BF16_ROUND_X=1) unless LORAJIT_NO_NATIVE_BF16=1;
 * LORAJIT_NO_AMX=1 (or bf16_round_x) turns amx off. */
void cg_matmul16_target(cg *c, const char *cpu, const char *features);
/* The task mm16task_<kind>_<mode>[_ktail] (ctx.h lj_task_fn) over units of 16 rows of
 * W [out, in] of kind (F16 or BF16), any shape (out, in are in its argument block;
 * without k_tail, in must be a multiple of CG_MM16_KSTEP), any number of rows, a row's
 * bits independent of n: vdpbf16ps on x's BF16 parts when c->bf16_dot and kind is BF16,
 * else FMAs over W widened to f32 (in registers up to 16 rows, into a tile per thread
 * above). Built on first use, before the kernel that calls it. */
LLVMValueRef cg_matmul16_task(cg *c, ir_dtype kind, bool k_tail);
/* The widest K step of those tasks: a W [out, in] with in a multiple of it leaves no
 * elements past the vector steps, so its task needs no k_tail. */
enum { CG_MM16_KSTEP = 32 };
/* Emits, at the builder, y [n, out] = x [n, in] W^T through task on parallel(pool, ...)
 * (ctx.h lj_parallel_fn); native BF16 first splits x, ir_wconv_rows(out, in) rows at a
 * time, into wconv [ir_wconv_rows(out, in), in] floats. With c->amx, BF16 first calls
 * amx (ctx->matmul_bf16_amx, a run-time value) when it is not NULL, with wconv as its
 * packing room, and skips the rest when it took the shape. */
void cg_matmul16_call(cg *c, LLVMValueRef task, ir_dtype kind, LLVMValueRef out, LLVMValueRef in, LLVMValueRef x,
                      LLVMValueRef w, LLVMValueRef n, LLVMValueRef y, LLVMValueRef wconv, LLVMValueRef parallel,
                      LLVMValueRef pool, LLVMValueRef amx);

/* ---- codegen.c: planned IR -> LLVM module with `lj_forward` and `lj_decode` (ctx.h) ---- */
/* Requires a verified, planned graph. Builds into mod (borrowed) for a target CPU (LLVM's
 * name) with the given features (cg_target_machine's list); both borrowed. *matmuls:
 * what the matmuls took (cg_matmuls). */
lorajit_status cg_module_build(const ir_graph *g, LLVMContextRef llctx, LLVMModuleRef mod, const char *cpu,
                               const char *features, cg_matmuls *matmuls, lj_err *err);

/* ---- target.c: target machines, optimisation, the compile count ---- */
/* A target machine (O3 codegen, PIC) for cpu_name: NULL or "native" = this host's
 * CPU and features (never assumes AVX-512); "x86-64", "x86-64-v2", "x86-64-v3" or
 * "x86-64-v4" = that level with its own features; any other name fails (E_ARG).
 * for_jit picks the JIT's code model, else the small one of a shared library.
 * features_out (may be NULL) gets the feature list the code may use, "+a,-b,...".
 * Caller owns *tm; free with LLVMDisposeTargetMachine(). Caller owns *features_out;
 * free with free(). */
lorajit_status cg_target_machine(const char *cpu_name, bool for_jit, LLVMTargetMachineRef *tm,
                                 char **features_out, lj_err *err);
/* Sets triple and data layout, verifies, and runs "default<O3>". */
lorajit_status cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, lj_err *err);
/* Adds one to the process-wide count of machine-code generations (JIT objects and
 * artifact objects) that lorajit_compiles_total() reads. Thread-safe. */
void cg_count_compile(void);
/* Consumes e (may be NULL: returns OK); on error records s + "what: message". */
lorajit_status cg_llvm_error(LLVMErrorRef e, lorajit_status s, const char *what, lj_err *err);

/* ---- jit.c: the ORC LLJIT session ---- */
/* Takes ownership of the module's thread-safe context and module (tsctx, mod),
 * also on failure. Compiles for the host and looks up the entry points (decode may
 * be NULL when the module has none). Caller owns *out; free with jit_session_free(). */
lorajit_status jit_session_open(LLVMOrcThreadSafeContextRef tsctx, LLVMModuleRef mod,
                                jit_session **out, lj_forward_fn *forward, lj_decode_fn *decode,
                                lj_err *err);
/* The same from object files already compiled for the host (jit_parts_compile):
 * takes ownership of objs[0..n), also on failure; LLJIT links them. Counts one
 * compile (the objects are one compile of the module). */
lorajit_status jit_session_open_objects(LLVMMemoryBufferRef *objs, int n, jit_session **out,
                                        lj_forward_fn *forward, lj_decode_fn *decode, lj_err *err);
void jit_session_free(jit_session *s); /* NULL does nothing */
/* Compiles in s: 1 once the entry points were looked up. */
int64_t jit_session_compiles(const jit_session *s);

/* ---- jit_parts.c: optimisation and machine code on several threads ---- */
enum { JIT_MAX_PARTS = 4 };
/* Parts to split a module into: LORAJIT_COMPILE_THREADS, else the online CPUs; 1..JIT_MAX_PARTS. */
int jit_parts_wanted(void);
/* mod (in tsctx; both stay the caller's, mod is changed) split into n_parts (fewer
 * when it has fewer function definitions), each optimised (default<O3>, printed to
 * stderr when dump) and compiled to an object file on a thread of its own: part 0
 * with tm (borrowed, the JIT's target machine for cpu), the others with their own for
 * cpu (cg_target_machine's name). On success objs[0..*n_objs) are the caller's (objs
 * has room for JIT_MAX_PARTS); on failure none is left. */
lorajit_status jit_parts_compile(LLVMOrcThreadSafeContextRef tsctx, LLVMModuleRef mod, LLVMTargetMachineRef tm,
                                 const char *cpu, int n_parts, bool dump, LLVMMemoryBufferRef *objs, int *n_objs,
                                 lj_err *err);

/* ---- aot.c: the files of an artifact (compiler/engine.c writes manifest.json last) ----
 * Every file is made in a private staging folder, then renamed into the artifact
 * folder: nothing is written through a link already there. */
/* Creates dir if missing (a dir that is a symbolic link, or a file, is refused),
 * removes an earlier dir/manifest.json and makes a private staging folder inside it:
 * its absolute path goes to stage[cap] (publish or discard it). dir is borrowed. */
lorajit_status aot_prepare_dir(const char *dir, char *stage, size_t cap, lj_err *err);
/* Adds the constants lj_abi_version (LJ_ABI_VERSION), lj_code_hash (code_hash),
 * lj_scratch_per_token, lj_scratch_fixed, lj_rows_exact (rows_exact) and
 * lj_layout_sha256 (of L, borrowed) to mod (borrowed) and writes dir/model.o for tm
 * (borrowed); counts the compile (cg_count_compile) once the object is written. */
lorajit_status aot_emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, uint64_t code_hash, const lj_layout *L,
                               bool rows_exact, const char *dir, lj_err *err);
/* Links dir/liblorajit_model.so from dir/model.o by running `cc -shared` (found on
 * PATH, argv without a shell, absolute paths: dir must start with '/'); a missing
 * compiler or a failed link is E_COMPILE with the first line of its log. */
lorajit_status aot_link_library(const char *dir, lj_err *err);
/* Reads dir/liblorajit_model.so's ELF symbols (nothing is loaded): it must export
 * lj_forward, lj_decode and the constants aot_emit_object added, with their values
 * for code_hash and L (borrowed); else E_COMPILE naming the file and symbol. */
lorajit_status aot_check_library(const char *dir, uint64_t code_hash, const lj_layout *L, lj_err *err);
/* Writes dir/model.h: the entry points' declarations and the model's sizes. */
lorajit_status aot_write_header(const char *dir, const lj_layout *L, lj_err *err);
/* Writes text (borrowed) to dir/name (lj_file_replace). */
lorajit_status aot_write_text(const char *dir, const char *name, const char *text, lj_err *err);
/* Renames each file of stage (borrowed) over its name in the folder above it,
 * manifest.json last, then removes stage. */
lorajit_status aot_publish(const char *stage, lj_err *err);
/* Removes stage (borrowed) and what it holds; "" does nothing. */
void aot_discard(const char *stage);

#endif /* LORAJIT_COMPILER_H */
