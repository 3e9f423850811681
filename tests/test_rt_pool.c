/* test_rt_pool.c — runtime/serving/pool.c: every unit of a parallel loop runs exactly once,
 * on the caller and the helpers, for every split (n below, at and above the thread
 * count); two threads that run loops on one pool at once both finish with every
 * unit done (one of them runs its loop alone); a pool of one thread and a NULL pool
 * run the loop on the caller; free joins the helpers (ASan/valgrind see no leak). */
#include <pthread.h>
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
    return check_summary("test_rt_pool");
}
