/* pool_gemm.c — OpenBLAS on the engine's threads: one set of compute threads.
 *
 * OpenBLAS has its own threads, and they spin while they wait; next to the engine's
 * pool (pool.c) two sets of spinning threads fought for the cores, and on a shared
 * 2-core machine a decode step fell from ~12 to ~2 tokens/s. So the engine pins
 * OpenBLAS to one thread (lj_blas_threads_take, at start) and the compiled code's
 * sgemm (ctx.sgemm = lj_pool_sgemm) cuts a large product into blocks of output
 * columns, each one single-threaded cblas_sgemm, run on the pool bound to the
 * calling thread (lj_pool_bind, around each compiled call).
 *
 * Numerics: OpenBLAS's result for an element depends on where the element falls in
 * the call (its kernels treat tiles and edges differently: measured, a product cut
 * into column blocks differs in the last bits from one call, for every shape tried).
 * The blocks are therefore a function of the shape alone (lj_pool_gemm_cols), never
 * of the thread count, and the pool runs the same blocks whoever runs them: the
 * result is the same bits with 1, 2 or 64 threads, within float rounding of one
 * cblas_sgemm (the golden tests' tolerance). */
#include <cblas.h>
#include <stdatomic.h>

#include "serving.h"

/* Process-wide on purpose (OpenBLAS's thread count is process-wide): the count it
 * had when lorajit pinned it to one thread; 0 before. */
static _Atomic int blas_threads_found;

/* The pool of the compiled call running on this thread (lj_pool_bind); thread-local,
 * so concurrent calls on several engines each find their own. */
static _Thread_local lj_pool *bound_pool;

int lj_blas_threads_take(void) {
    int now = openblas_get_num_threads();
    if (now > 1) {
        atomic_store(&blas_threads_found, now);
        openblas_set_num_threads(1);
        return now;
    }
    int found = atomic_load(&blas_threads_found);
    return found > 0 ? found : 1;
}

lj_pool *lj_pool_bind(lj_pool *p) {
    lj_pool *was = bound_pool;
    bound_pool = p;
    return was;
}

/* Few rows: the product is bound by reading B (the weights), so narrow blocks share
 * it among threads at no cost; more rows re-pack A once per block, so wider ones. */
int lj_pool_gemm_cols(int m) { return m <= 64 ? 128 : 256; }

/* One product, cut in blocks of `cols` columns of C. */
typedef struct gemm_blocks {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, cols;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_blocks;

/* lj_task_fn: blocks [b0, b1) of the product. Block j is C[:, j cols ..) = alpha
 * op(A) op(B)[:, j cols ..) + beta C[:, j cols ..): B's columns are its rows when
 * transposed (W [n, k] with CblasTrans, as the compiled matmuls pass it). */
static void gemm_block_task(void *arg, int64_t b0, int64_t b1) {
    const gemm_blocks *g = arg;
    for (int64_t j = b0; j < b1; j++) {
        int64_t c0 = j * g->cols;
        int width = (int)(g->n - c0 < g->cols ? g->n - c0 : g->cols);
        const float *bj = g->b + (g->trans_b == CblasTrans ? c0 * g->ldb : c0);
        cblas_sgemm(CblasRowMajor, g->trans_a, g->trans_b, g->m, width, g->k, g->alpha, g->a, g->lda, bj, g->ldb,
                    g->beta, g->c + c0, g->ldc);
    }
}

void lj_pool_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    int cols = lj_pool_gemm_cols(m);
    if (order != CblasRowMajor || n <= cols) {
        cblas_sgemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    gemm_blocks g = {trans_a, trans_b, m, n, k, lda, ldb, ldc, cols, alpha, beta, a, b, c};
    lj_pool_run(bound_pool, gemm_block_task, &g, (n + cols - 1) / cols);
}
