/* ctx.h — the data the compiled forward function reads, and its signature.
 *
 * The compiled code reads everything through one lj_ctx: weight pointers, LoRA
 * slot buffers, the active adapter set, scratch, KV cache and the BLAS entry
 * points. Nothing here is baked into code, so a swap (new slot data, new active
 * set) never needs a recompile. compiler/codegen.c reads fields by offsetof() of
 * these structs, so this header is the ABI between runtime/ and generated code.
 * Plain C: no LLVM, no IR. */
#ifndef LORAJIT_CTX_H
#define LORAJIT_CTX_H

#include <stdint.h>

/* Version of this ABI (the structs below and the entry points' signatures). An
 * artifact records it (manifest.json "abi_version", the library's lj_abi_version)
 * and the runtime refuses another. Bump it on any change below. */
#define LJ_ABI_VERSION 8 /* 8: LoRA slots hold B rank-major, [r_max, out] (lj_lora_site.b);
                            7: matmul_bf16_amx (a BF16 matmul on AMX tiles, from the runtime);
                            6: the paged KV cache (key_cache / value_cache are block pools read
                            through block_table, block_table_stride, block_size; no cache
                            stride is compiled in; key_cache's element type is the compiled
                            kv_dtype, which the layout digest pins); 5: RoPE frequencies through ctx (rope,
                            rope_stride); 4: the scratch sizes and layout digest below; SHA-256
                            digests */
#define LJ_ABI_SYMBOL "lj_abi_version"     /* const int32_t in an artifact's library */
#define LJ_CODE_HASH_SYMBOL "lj_code_hash" /* const uint64_t: manifest.json "code_hash" */
/* What an artifact's code was compiled for, baked into its library next to the code
 * so that a manifest cannot claim less: const int64_t scratch floats (manifest.json
 * "scratch_floats") and const uint8_t[32], the SHA-256 of the layout (lj_layout_digest). */
#define LJ_SCRATCH_PER_TOKEN_SYMBOL "lj_scratch_per_token"
#define LJ_SCRATCH_FIXED_SYMBOL "lj_scratch_fixed"
#define LJ_LAYOUT_DIGEST_SYMBOL "lj_layout_sha256"
/* const int32_t 1 when every matmul of the code computes a row the same way whatever rows
 * share the call (lj_code.rows_exact: a step may then run as rows of lj_decode passes);
 * artifacts made before it lack the symbol and are read as 0. */
#define LJ_ROWS_EXACT_SYMBOL "lj_rows_exact"

/* Rows up to which the generated matmul beats OpenBLAS (measured on TinyLlama's shape,
 * F32, 1 and 2 threads: 1.2-1.6x over sgemv / sgemm at 1 and 8 rows). */
#define LJ_SMALL_ROWS 8

#define LJ_MAX_SLOTS 65 /* physical slots: up to 64 resident adapters + 1 spare for hotswap */

/* cblas_sgemm / cblas_sgemv with the CBLAS enums passed as int. */
typedef void (*lj_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c,
                            int ldc);
typedef void (*lj_sgemv_fn)(int order, int trans, int m, int n, float alpha, const float *a,
                            int lda, const float *x, int incx, float beta, float *y, int incy);

/* A parallel loop of compiled code: fn(arg, begin, end) runs units [begin, end).
 * parallel(pool, fn, arg, n) runs [0, n) split among the pool's threads (the caller
 * takes part) and returns when all are done; with pool NULL, fn(arg, 0, n). */
typedef void (*lj_task_fn)(void *arg, int64_t begin, int64_t end);
typedef void (*lj_parallel_fn)(void *pool, lj_task_fn fn, void *arg, int64_t n);

/* y[n, out] = x[n, in] W[out, in]^T for a BF16 W on the CPU's AMX tiles (the runtime's
 * lj_matmul_bf16_amx): x is split into two BF16 parts (hi, lo: the generated native
 * kernel's split) packed into xs, room for xs_rows rows (xs_rows * in floats), and the
 * units of W are shared by parallel(pool, ...). Returns 0, touching nothing, for a shape
 * it does not take (out not a multiple of 16, in not of 32, xs_rows < 16): the generated
 * kernel then runs. A row's result does not depend on n or the threads. */
typedef int (*lj_matmul16_fn)(const float *x, void *xs, int64_t xs_rows, const uint16_t *w, int64_t n, float *y,
                              int64_t out, int64_t in, lj_parallel_fn parallel, void *pool);

/* One LoRA site (a targeted linear in one layer), in = K, out = N. A and B hold the
 * compiled lora_dtype (the layout's schema.lora_dtype, which the layout digest pins):
 * float, or 16-bit F16 / BF16 (a void * either way, so the ABI is the same). */
typedef struct lj_lora_site {
    void *a;        /* [n_phys, r_max, in]  slot s's A at a + s * r_max * in, rows 0..rank-1 used */
    void *b;        /* [n_phys, r_max, out] slot s's B at b + s * r_max * out, rank-major (row
                       j = column j of PEFT's lora_B [out, r]): rows 0..rank-1 used, so a
                       rank-r write is one contiguous run */
    int32_t *rank;  /* [n_phys] rank held by slot s for this site (0: nothing, skip) */
    float *scale;   /* [n_phys] alpha/r or alpha/sqrt(r) for this site */
} lj_lora_site;

/* The active set the compiled code applies: n = 0 means the base model exactly. */
typedef struct lj_active {
    int32_t n;                    /* active adapters */
    int32_t slot[LJ_MAX_SLOTS];   /* [n] physical slot of each */
    float weight[LJ_MAX_SLOTS];   /* [n] user weight w_i (scale s_i comes from the site) */
} lj_active;

/* Element type of a weight tensor as the compiled code reads it (the layout's
 * lj_weight_desc.dtype; compiled in). Matrices (embedding, projections, lm_head)
 * stay in the file's 16-bit type, so a decode step reads half the bytes; the
 * kernels widen to f32 as they load (exact); 1-D tensors (norms, biases) are F32. */
enum { LJ_DTYPE_F32 = 0, LJ_DTYPE_F16 = 1, LJ_DTYPE_BF16 = 2 };

typedef struct lj_ctx {
    const void *const *weights;   /* [n_weights] tensors by weight id (layout order), each
                                     [rows, cols] of the layout's dtype */
    const lj_lora_site *sites;    /* [n_sites] */
    const lj_active *active;      /* the set applied by this call */
    float *scratch;               /* [scratch_per_token * max_tokens + scratch_fixed] */
    void *key_cache;              /* the block pool [n_blocks, n_layers, block_size, kv_dim] of the
                                     compiled kv_dtype (the layout's schema.kv_dtype: float, or 16-bit
                                     F16 / BF16 bits): position j of a sequence, layer l, is element
                                     ((table[j / block_size] * n_layers + l) * block_size + j %
                                     block_size) * kv_dim, table its block table */
    void *value_cache;            /* same layout as key_cache */
    const int32_t *block_table;   /* lj_forward: the sequence's blocks [ceil(positions / block_size)];
                                     lj_decode: row i's at block_table + i * block_table_stride. Every
                                     position the call writes or reads has its block there. */
    int64_t block_table_stride;   /* int32s between lj_decode's rows' tables */
    int64_t block_size;           /* positions per block: a power of two (read at run time) */
    lj_sgemm_fn sgemm;
    lj_sgemv_fn sgemv;
    int64_t small_rows;           /* matmuls of 1..small_rows rows take the generated row loop
                                     (reads W once for all rows, on the pool's threads); 0:
                                     BLAS for every f32 matmul. The runtime sets LJ_SMALL_ROWS. */
    lj_parallel_fn parallel;      /* never NULL: runs the generated matmuls' row loops */
    void *pool;                   /* its first argument (the runtime's lj_pool; may be NULL) */
    const float *rope;            /* RoPE tables of head_size / 2 + 1 floats: inv_freq[head_size / 2],
                                     then the scale of cos and sin (yarn / longrope attention factor,
                                     else 1). lj_forward reads the table at rope; lj_decode row i the
                                     one at rope + i * rope_stride. The runtime computes them
                                     (runtime/formats/rope.c) for the call's sequence lengths. */
    int64_t rope_stride;          /* floats between lj_decode's rows' tables; 0: one for all rows */
    lj_matmul16_fn matmul_bf16_amx; /* NULL: the generated kernels only. Read by code compiled for a
                                     target with AMX-BF16, for every BF16 matmul; the runtime sets it
                                     only where the CPU has AMX and the OS lets this process use it */
} lj_ctx;

/* The compiled entry point: runs tokens[0..n) at positions pos0..pos0+n-1, writing
 * K/V into the cache (the blocks of ctx->block_table) and logits [n, vocab_size]. Returns 0. */
typedef int (*lj_forward_fn)(const lj_ctx *ctx, const int32_t *tokens, int64_t n, int64_t pos0,
                             float *logits);

#define LJ_FORWARD_SYMBOL "lj_forward"

/* The compiled batched decode step: row i is one token of sequence seq[i] at
 * position pos[i], using adapter set active[i] (ctx->active is not read). K/V go
 * to the blocks of row i's table (block_table + i * block_table_stride; seq[i] is
 * not read since ABI 6); logits [n, vocab_size]. Rows must name distinct sequences
 * (no two tables may share a block). Returns 0. */
typedef int (*lj_decode_fn)(const lj_ctx *ctx, const int32_t *tokens, int64_t n, const int64_t *pos,
                            const int32_t *seq, const lj_active *const *active, float *logits);

#define LJ_DECODE_SYMBOL "lj_decode"

#endif /* LORAJIT_CTX_H */
