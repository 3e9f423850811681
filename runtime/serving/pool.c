/* pool.c — the threads that run a compiled kernel's parallel loop.
 *
 * A decode step is bound by reading the weights; one core does not reach the
 * machine's read bandwidth, so the generated matmul splits its rows among a few
 * threads (ctx.parallel = lj_pool_run, ctx.pool = the engine's pool), and
 * pool_gemm.c splits prefill's sgemm calls the same way. A run cuts [0, n) into
 * up to threads x LJ_POOL_CHUNKS_PER_THREAD chunks that the caller and the helpers
 * claim one at a time from one atomic word, so a helper that the OS has not
 * scheduled (another process holds the core) delays only the chunk it holds, not a
 * fixed share: the others finish the rest. Nobody spins for long: a helper polls
 * for the next run for POOL_SPIN_NS, then sleeps on a condition variable; the caller
 * polls for the last chunks for POOL_WAIT_SPIN_NS, then sleeps until the helper that
 * finishes the run wakes it. On a machine with more runnable threads than cores a
 * late partner therefore costs a wake-up, never a core.
 *
 * One run at a time: a call that finds the pool busy (another engine call in
 * flight on another thread) runs its whole range itself, so calls never wait on
 * each other. Each unit is computed by one thread, whatever the split, so the
 * result does not depend on the thread count or on who ran which chunk. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "serving.h"

/* How long an idle helper polls for the next run before it sleeps. The matmuls of a
 * decode step come microseconds apart (norms, RoPE, attention run between them on
 * the caller); a wake-up for each cost a 1-token forward of a dim-1024 model 10-30%
 * (measured), so a helper keeps polling across those gaps, but not across the gap
 * between two steps or calls: under oversubscription a polling helper takes a core
 * from the caller or from another process. Measured with `lorajit bench` section 9. */
#define POOL_SPIN_NS 200000
/* How long the caller polls for the chunks still held by helpers before it sleeps:
 * about one chunk of a decode matmul; longer means the holder is not running. */
#define POOL_WAIT_SPIN_NS 50000

/* The claim word: run id (32 bits) | chunks of the run (16) | next chunk (16). */
#define CLAIM_RUN(w) ((uint32_t)((w) >> 32))
#define CLAIM_CHUNKS(w) ((int)(((w) >> 16) & 0xffff))
#define CLAIM_NEXT(w) ((int)((w) & 0xffff))

struct lj_pool {
    int n_threads;             /* including the caller; helpers are 1..n_threads-1 */
    pthread_t *helpers;        /* [n_threads - 1] */
    int n_started;
    pthread_mutex_t mu;        /* guards the two condition variables' waits and quit */
    pthread_cond_t wake;       /* helpers sleep here between runs */
    pthread_cond_t finished;   /* the caller sleeps here for the run's last chunk */
    atomic_flag busy;          /* held by the thread whose run is in flight */
    _Atomic uint64_t claim;    /* the run in flight and its next chunk (CLAIM_*) */
    _Atomic int done;          /* chunks of the current run finished */
    _Atomic int sleepers;      /* helpers waiting (or about to wait) on wake */
    _Atomic int caller_asleep; /* the caller waits (or is about to wait) on finished */
    bool quit;                 /* under mu */
    uint32_t run_id;           /* the last run's id: written by the busy flag's holder */
    /* the current run: written before claim is published, read after a chunk of it
     * is claimed (stable until every chunk is done) */
    lj_task_fn fn;
    void *arg;
    int64_t n;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs chunks of whatever run is in flight until none is left. Chunk c
 * of nc covers [c n / nc, (c + 1) n / nc). The thread that finishes the last chunk
 * wakes a sleeping caller. */
static void run_chunks(lj_pool *p) {
    uint64_t w = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        int c = CLAIM_NEXT(w), nc = CLAIM_CHUNKS(w);
        if (c >= nc) return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &w, w + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* w reloaded */
        int64_t n = p->n;
        p->fn(p->arg, n * c / nc, n * (c + 1) / nc);
        if (atomic_fetch_add(&p->done, 1) + 1 == nc && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->mu);
        }
        w = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

/* Returns once a run newer than `seen` is published, or false when the pool quits.
 * Polls for POOL_SPIN_NS (yielding now and then, so that a descheduled caller on an
 * oversubscribed core gets it back), then sleeps. */
static bool wait_for_run(lj_pool *p, uint32_t seen) {
    int64_t start = now_ns();
    for (unsigned k = 1;; k++) {
        if (CLAIM_RUN(atomic_load_explicit(&p->claim, memory_order_acquire)) != seen) return true;
        cpu_relax();
        if (k % 64 == 0) {
            if (now_ns() - start > POOL_SPIN_NS) break;
            if (k % 1024 == 0) sched_yield();
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1); /* before the check: lj_pool_run reads it after publishing */
    while (CLAIM_RUN(atomic_load(&p->claim)) == seen && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    bool quit = p->quit;
    pthread_mutex_unlock(&p->mu);
    return !quit;
}

static void *helper_main(void *p_) {
    lj_pool *p = p_;
    uint32_t seen = 0; /* lj_pool_new publishes run 0 with no chunks */
    while (wait_for_run(p, seen)) {
        seen = CLAIM_RUN(atomic_load_explicit(&p->claim, memory_order_acquire));
        run_chunks(p);
    }
    return NULL;
}

/* Waits until the helpers finished the nc chunks they hold: polls POOL_WAIT_SPIN_NS,
 * then sleeps until the last one signals. */
static void wait_done(lj_pool *p, int nc) {
    int64_t start = now_ns();
    for (unsigned k = 1; atomic_load_explicit(&p->done, memory_order_acquire) != nc; k++) {
        cpu_relax();
        if (k % 64 == 0 && now_ns() - start > POOL_WAIT_SPIN_NS) {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_asleep, 1); /* before the check: run_chunks reads it after counting */
            while (atomic_load(&p->done) != nc) pthread_cond_wait(&p->finished, &p->mu);
            atomic_store(&p->caller_asleep, 0);
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
}

void lj_pool_run(void *pool, lj_task_fn fn, void *arg, int64_t n) {
    lj_pool *p = pool;
    if (n <= 0) return;
    if (!p || p->n_threads < 2 || n < 2 || atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire)) {
        fn(arg, 0, n); /* one thread, or the pool is serving another call */
        return;
    }
    int64_t most = (int64_t)p->n_threads * LJ_POOL_CHUNKS_PER_THREAD;
    int nc = (int)(n < most ? n : most);
    p->fn = fn, p->arg = arg, p->n = n;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    p->run_id++;
    atomic_store(&p->claim, (uint64_t)p->run_id << 32 | (uint64_t)nc << 16); /* publishes the run */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_chunks(p);
    wait_done(p, nc);
    atomic_flag_clear_explicit(&p->busy, memory_order_release);
}

int lj_pool_sleepers(lj_pool *p) { return p ? atomic_load(&p->sleepers) : 0; }

/* Stops and joins the helpers started so far, then frees p. */
void lj_pool_free(lj_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->helpers[i], NULL);
    pthread_cond_destroy(&p->finished);
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
    atomic_init(&p->claim, 0); /* run 0, no chunks */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    if (threads > 1 && !(p->helpers = lj_calloc((size_t)threads - 1, sizeof *p->helpers))) {
        lj_pool_free(p);
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory (thread pool)");
    }
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&p->helpers[p->n_started], NULL, helper_main, p) != 0) {
            lj_pool_free(p);
            return lj_fail(err, LORAJIT_E_NOMEM, "cannot start thread %d of the pool's %d", i, threads);
        }
        p->n_started++;
    }
    *out = p;
    return LORAJIT_OK;
}

int lj_pool_threads(const lj_pool *p) { return p ? p->n_threads : 1; }
