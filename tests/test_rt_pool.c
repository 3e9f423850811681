/* test_rt_pool.c — runtime/serving/pool.c: every unit of a parallel loop runs exactly once,
 * on the caller and the helpers, for every split (n below, at and above the thread
 * count); two threads that run loops on one pool at once both finish with every
 * unit done (one of them runs its loop alone); a pool of one thread and a NULL pool
 * run the loop on the caller; free joins the helpers (ASan/valgrind see no leak).
 * Oversubscription (more runnable threads than cores): a pool of 8 threads next to a
 * spinning child process runs every unit once, in bounded time; idle helpers sleep
 * (the process uses almost no CPU between runs); a caller whose helper holds a chunk
 * for long sleeps instead of spinning, and runs the other chunks itself.
 * lj_pool_sgemm (pool_gemm.c): the same bits on no pool and pools of 2 and 4 threads,
 * within float rounding of a double-precision loop, for both B layouts, beta 0 and 1,
 * ldc wider than n, products narrower and wider than one column block. */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "serving.h"

enum { MAX_UNITS = 1000 };

typedef struct loop {
    _Atomic int hits[MAX_UNITS]; /* times each unit ran */
    _Atomic int calls;           /* fn calls (ranges) */
    _Atomic int bad_range;       /* a range outside [0, n) or empty */
    int64_t n;
} loop;

static void count_units(void *arg, int64_t b, int64_t e) {
    loop *l = arg;
    atomic_fetch_add(&l->calls, 1);
    if (b < 0 || e > l->n || b >= e) atomic_fetch_add(&l->bad_range, 1);
    for (int64_t i = b; i < e && i >= 0 && i < l->n; i++) atomic_fetch_add(&l->hits[i], 1);
}

/* Runs a loop of n units on p; every unit must run once, in at most `threads` ranges. */
static void check_loop(lj_pool *p, int threads, int64_t n) {
    static loop l;
    memset(&l, 0, sizeof l);
    l.n = n;
    lj_pool_run(p, count_units, &l, n);
    int once = 0;
    for (int64_t i = 0; i < n; i++) once += atomic_load(&l.hits[i]) == 1;
    CHECK(once == n, "threads %d, n %lld: %d of %lld units ran exactly once", threads, (long long)n, once,
          (long long)n);
    CHECK(atomic_load(&l.bad_range) == 0 && atomic_load(&l.calls) <= threads * LJ_POOL_CHUNKS_PER_THREAD &&
              (n == 0 || l.calls >= 1),
          "threads %d, n %lld: %d calls, %d bad ranges", threads, (long long)n, atomic_load(&l.calls),
          atomic_load(&l.bad_range));
}

typedef struct racer {
    lj_pool *p;
    loop l;
    int rounds, ok_rounds;
} racer;

static void *race(void *arg) {
    racer *r = arg;
    for (int k = 0; k < r->rounds; k++) {
        for (int64_t i = 0; i < r->l.n; i++) atomic_store(&r->l.hits[i], 0);
        lj_pool_run(r->p, count_units, &r->l, r->l.n);
        int once = 0;
        for (int64_t i = 0; i < r->l.n; i++) once += atomic_load(&r->l.hits[i]) == 1;
        r->ok_rounds += once == r->l.n;
    }
    return NULL;
}


static double cpu_s(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A run whose first chunk taken by a helper sleeps 60 ms (a helper the OS does not
 * schedule); counts the units each side ran. */
typedef struct late {
    pthread_t caller;
    _Atomic int slept;
    _Atomic long by_caller, by_helpers;
} late;

static void late_fn(void *arg, int64_t b, int64_t e) {
    late *l = arg;
    double until = check_wall_s() + 20e-6; /* 20 us a chunk: time for sleeping helpers to wake */
    while (check_wall_s() < until) {
    }
    if (pthread_equal(pthread_self(), l->caller)) {
        atomic_fetch_add(&l->by_caller, e - b);
        return;
    }
    if (atomic_exchange(&l->slept, 1) == 0) nanosleep(&(struct timespec){0, 60 * 1000 * 1000}, NULL);
    atomic_fetch_add(&l->by_helpers, e - b);
}

/* C [m, n] (ldc) = alpha A [m, k] op(B) + beta C on pools of 1, 2 and 4 threads. */
static void test_sgemm(void) {
    enum { K = 67, LDC_PAD = 5 };
    static const int ms[] = {1, 12, 100}, ns[] = {100, 300, 700};
    lj_err err = {0};
    CHECK(lj_blas_threads_take() >= 1, "OpenBLAS's thread count"); /* pinned to 1, as an engine does: no */
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS not pinned");   /* OpenBLAS threads polling after */
    lj_pool *pools[3] = {NULL, NULL, NULL};
    CHECK(lj_pool_new(2, &pools[1], &err) == LORAJIT_OK && lj_pool_new(4, &pools[2], &err) == LORAJIT_OK, "pools: %s",
          err.msg);
    int same = 0, close = 0, cases = 0;
    for (int mi = 0; mi < 3; mi++)
        for (int ni = 0; ni < 3; ni++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    int m = ms[mi], n = ns[ni], ldc = n + LDC_PAD, trans = tb ? CblasTrans : CblasNoTrans;
                    int ldb = tb ? K : n;
                    float *a = malloc(sizeof(float) * m * K), *b = malloc(sizeof(float) * n * K);
                    float *c[3];
                    for (int i = 0; i < m * K; i++) a[i] = (float)((i * 7 + 3) % 23) / 23.0f - 0.5f;
                    for (int i = 0; i < n * K; i++) b[i] = (float)((i * 11 + 5) % 29) / 29.0f - 0.5f;
                    for (int p = 0; p < 3; p++) {
                        c[p] = malloc(sizeof(float) * m * ldc);
                        for (int i = 0; i < m * ldc; i++) c[p][i] = (float)(i % 13) / 13.0f;
                        lj_pool *was = lj_pool_bind(pools[p]);
                        lj_pool_sgemm(CblasRowMajor, CblasNoTrans, trans, m, n, K, 0.75f, a, K, b, ldb, (float)beta,
                                      c[p], ldc);
                        lj_pool_bind(was);
                    }
                    same += !memcmp(c[0], c[1], sizeof(float) * m * ldc) && !memcmp(c[0], c[2], sizeof(float) * m * ldc);
                    double worst = 0;
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < ldc; j++) {
                            double want = (float)((i * ldc + j) % 13) / 13.0f; /* the pad stays as it was */
                            if (j < n) {
                                double dot = 0;
                                for (int q = 0; q < K; q++) dot += (double)a[i * K + q] * b[tb ? j * K + q : q * n + j];
                                want = 0.75 * dot + beta * want;
                            }
                            double d = fabs(c[0][i * ldc + j] - want) / (1e-5 + 1e-5 * fabs(want));
                            if (d > worst) worst = d;
                        }
                    close += worst <= 1;
                    cases++;
                    free(a), free(b);
                    for (int p = 0; p < 3; p++) free(c[p]);
                }
    CHECK(same == cases, "sgemm: %d of %d cases the same bits on 1, 2 and 4 threads", same, cases);
    CHECK(close == cases, "sgemm: %d of %d cases within 1e-5 + 1e-5|x| of a double loop", close, cases);
    lj_pool_free(pools[1]);
    lj_pool_free(pools[2]);
}

static void test_oversubscribed(void) {
    lj_err err = {0};
    lj_pool *p = NULL;
    CHECK(lj_pool_new(8, &p, &err) == LORAJIT_OK, "pool of 8: %s", err.msg);

    /* idle helpers sleep: over 300 ms with no run the process uses little CPU */
    check_loop(p, 8, 999);
    double cpu0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
    double idle_cpu = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    /* The state decides: every helper is on the condition variable. The CPU bound is
     * loose on purpose: a polling helper would use most of the 300 ms, but process CPU
     * also counts OpenBLAS's own threads (started when the library loads, polling a
     * while after the sgemm tests above): measured 10-21 ms here, 0.6 ms with
     * OPENBLAS_NUM_THREADS=1; CI failed once on a 15 ms bound. */
    int asleep = lj_pool_sleepers(p);
    CHECK(asleep == 7, "after 300 ms idle %d of 7 helpers sleep", asleep);
    CHECK(idle_cpu < 0.075, "7 idle helpers used %.1f ms of CPU in 300 ms (they should sleep)", idle_cpu * 1e3);
    printf("  idle: %d of 7 helpers asleep; they used %.2f ms of CPU in 300 ms\n", asleep, idle_cpu * 1e3);

    /* a helper that holds a chunk for 60 ms: the caller runs the rest and then sleeps */
    static late l;
    double t0, wall = 0, caller_cpu = 0;
    long total = 0;
    for (int tries = 0; tries < 50 && !atomic_load(&l.slept); tries++) { /* until a helper took a chunk */
        l = (late){.caller = pthread_self()};
        t0 = check_wall_s();
        double c0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
        lj_pool_run(p, late_fn, &l, 8 * LJ_POOL_CHUNKS_PER_THREAD * 10);
        wall = check_wall_s() - t0, caller_cpu = cpu_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        total = atomic_load(&l.by_caller) + atomic_load(&l.by_helpers);
        CHECK(total == 8 * LJ_POOL_CHUNKS_PER_THREAD * 10, "late helper: %ld units ran", total);
    }
    CHECK(atomic_load(&l.slept), "no helper took a chunk in 50 runs");
    if (atomic_load(&l.slept)) {
        CHECK(wall >= 0.055, "the run returned before the late chunk was done (%.1f ms)", wall * 1e3);
        CHECK(caller_cpu < 0.030, "the caller used %.1f ms of CPU waiting %.1f ms for a late chunk (it should sleep)",
              caller_cpu * 1e3, wall * 1e3);
        printf("  late helper: the run took %.1f ms, the caller used %.2f ms of CPU and ran %ld of %ld units\n",
               wall * 1e3, caller_cpu * 1e3, atomic_load(&l.by_caller), total);
    }

    /* next to a busy process, 8 threads on the machine's cores: every unit once, bounded time */
    pid_t child = check_spawn_busy();
    CHECK(child > 0, "fork");
    t0 = check_wall_s();
    int rounds = 0;
    for (; rounds < 2000 && check_wall_s() - t0 < 5.0; rounds++) check_loop(p, 8, (rounds * 37) % MAX_UNITS + 1);
    double busy_s = check_wall_s() - t0;
    check_stop_busy(child);
    CHECK(rounds >= 200, "next to a busy process only %d loops of 8 threads ran in %.1f s", rounds, busy_s);
    printf("  busy neighbour: %d loops on 8 threads in %.2f s\n", rounds, busy_s);
    lj_pool_free(p);
}

int main(void) {
    lj_err err = {0};
    for (int threads = 1; threads <= 4; threads++) {
        lj_pool *p = NULL;
        CHECK(lj_pool_new(threads, &p, &err) == LORAJIT_OK && p, "pool of %d: %s", threads, err.msg);
        CHECK(lj_pool_threads(p) == threads, "pool of %d has %d threads", threads, lj_pool_threads(p));
        static const int64_t ns[] = {0, 1, 2, 3, 4, 5, 7, 64, 999, MAX_UNITS};
        for (int rep = 0; rep < 50; rep++) /* back to back: helpers still spinning, then asleep */
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) check_loop(p, threads, ns[k]);
        lj_pool_free(p);
    }
    check_loop(NULL, 1, 77); /* no pool: the caller runs it */

    /* two threads share a 3-thread pool: one gets it, the other runs alone */
    lj_pool *p = NULL;
    CHECK(lj_pool_new(3, &p, &err) == LORAJIT_OK, "pool of 3: %s", err.msg);
    static racer r[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        r[i].p = p, r[i].l.n = 500 + 13 * i, r[i].rounds = 2000;
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        CHECK(r[i].ok_rounds == r[i].rounds, "racer %d: %d of %d rounds ran every unit once", i, r[i].ok_rounds,
              r[i].rounds);
    lj_pool_free(p);
    lj_pool_free(NULL);
    CHECK(lj_pool_threads(NULL) == 1, "NULL pool: one thread");

    /* allocation failure at each allocation while starting (some helpers already
     * running): a clean error, the started helpers joined, nothing leaked */
    int k, clean = 0;
    for (k = 1; k < 20; k++) {
        lj_pool *q = NULL;
        lj_alloc_fail_after(k);
        lorajit_status s = lj_pool_new(4, &q, &err);
        lj_alloc_fail_after(0);
        if (s == LORAJIT_OK) {
            check_loop(q, 4, 100);
            lj_pool_free(q);
            break;
        }
        clean += s == LORAJIT_E_NOMEM && q == NULL && strstr(err.msg, "thread pool") != NULL;
    }
    CHECK(k > 1 && clean == k - 1, "alloc sweep: %d of %d failures clean", clean, k - 1);
    test_sgemm();
    test_oversubscribed();
    return check_summary("test_rt_pool");
}
