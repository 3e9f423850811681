/* pool.c — the threads that run a compiled kernel's parallel loop.
 *
 * A decode step is bound by reading the weights; one core does not reach the
 * machine's read bandwidth, so the generated matmul splits its rows among a few
 * threads (ctx.parallel = lj_pool_run, ctx.pool = the engine's pool). A run hands
 * out [0, n) in contiguous ranges, one per thread, the calling thread taking the
 * first, and returns when every range is done. Between runs the helpers spin a
 * little (the next matmul of a step follows within microseconds), then sleep.
 *
 * One run at a time: a call that finds the pool busy (another engine call in
 * flight on another thread) runs its whole range itself, so calls never wait on
 * each other and the result is the same: each output element is computed by one
 * thread in one fixed order, whatever the split. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "serving.h"

/* How long an idle helper polls for the next run before it sleeps. The matmuls of
 * a forward or decode step come a few microseconds to a few milliseconds apart
 * (attention and the LoRA terms run between them on the caller); a futex wake-up
 * each time cost a 1-token forward of a dim-1024 model 10-30%, measured. */
#define POOL_SPIN_NS 3000000

struct lj_pool {
    int n_threads;            /* including the caller; helpers are 1..n_threads-1 */
    pthread_t *helpers;       /* [n_threads - 1] */
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_flag busy;         /* held by the thread whose run is in flight */
    _Atomic uint64_t run;     /* bumped to start a run (under mu, for sleepers) */
    _Atomic int pending;      /* helpers still on the current run */
    bool quit;                /* under mu */
    /* the current run: written before run is bumped, read after */
    lj_task_fn fn;
    void *arg;
    int64_t n;
};

typedef struct helper_arg {
    lj_pool *p;
    int index; /* 1..n_threads-1 */
} helper_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Range i of n split in k: [i n / k, (i + 1) n / k). */
static void range_of(int64_t n, int k, int i, int64_t *b, int64_t *e) {
    *b = n * i / k;
    *e = n * (i + 1) / k;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Polls p->run until it moves past seen or POOL_SPIN_NS have passed. */
static void spin_for_run(lj_pool *p, uint64_t seen) {
    int64_t start = now_ns();
    for (unsigned k = 1; atomic_load_explicit(&p->run, memory_order_acquire) == seen; k++) {
        cpu_relax();
        if (k % 256 == 0 && now_ns() - start > POOL_SPIN_NS) return;
    }
}

static void *helper_main(void *p_) {
    helper_arg *h = p_;
    lj_pool *p = h->p;
    uint64_t seen = 0;
    for (;;) {
        spin_for_run(p, seen);
        if (atomic_load_explicit(&p->run, memory_order_acquire) == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->run) == seen && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
            bool quit = p->quit;
            pthread_mutex_unlock(&p->mu);
            if (quit) break;
        }
        seen = atomic_load_explicit(&p->run, memory_order_acquire);
        int64_t b, e;
        range_of(p->n, p->n_threads, h->index, &b, &e);
        if (b < e) p->fn(p->arg, b, e);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    free(h);
    return NULL;
}

void lj_pool_run(void *pool, lj_task_fn fn, void *arg, int64_t n) {
    lj_pool *p = pool;
    if (n <= 0) return;
    if (!p || p->n_threads < 2 || n < 2 || atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire)) {
        fn(arg, 0, n); /* one thread, or the pool is serving another call */
        return;
    }
    p->fn = fn, p->arg = arg, p->n = n;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->run, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    range_of(n, p->n_threads, 0, &b, &e);
    if (b < e) fn(arg, b, e);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) cpu_relax();
    atomic_flag_clear_explicit(&p->busy, memory_order_release);
}

/* Stops and joins the helpers started so far, then frees p. */
void lj_pool_free(lj_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->helpers[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->helpers);
    free(p);
}

lorajit_status lj_pool_new(int threads, lj_pool **out, lj_err *err) {
    *out = NULL;
    if (threads < 1) threads = 1;
    if (threads > LJ_POOL_MAX_THREADS) threads = LJ_POOL_MAX_THREADS;
    lj_pool *p = lj_calloc(1, sizeof *p);
    if (!p) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory (thread pool)");
    p->n_threads = threads;
    atomic_flag_clear(&p->busy);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (threads > 1 && !(p->helpers = lj_calloc((size_t)threads - 1, sizeof *p->helpers))) {
        lj_pool_free(p);
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory (thread pool)");
    }
    for (int i = 1; i < threads; i++) {
        helper_arg *h = lj_malloc(sizeof *h);
        if (!h) {
            lj_pool_free(p);
            return lj_fail(err, LORAJIT_E_NOMEM, "out of memory (thread pool)");
        }
        *h = (helper_arg){p, i};
        if (pthread_create(&p->helpers[p->n_started], NULL, helper_main, h) != 0) {
            free(h);
            lj_pool_free(p);
            return lj_fail(err, LORAJIT_E_NOMEM, "cannot start thread %d of the pool's %d", i, threads);
        }
        p->n_started++;
    }
    *out = p;
    return LORAJIT_OK;
}

int lj_pool_threads(const lj_pool *p) { return p ? p->n_threads : 1; }
