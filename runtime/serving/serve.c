/* serve.c — what lets readers run while a writer swaps: snapshots, slot pins,
 * workers and per-thread error records.
 *
 * A snapshot is an immutable, refcounted copy of what readers need from the
 * registry (applied set, enabled, name of each slot). Every successful writer call
 * publishes a new one with one atomic pointer exchange; readers take a reference
 * without a lock (an epoch counter pair lets the writer know when no reader can
 * still be taking one on the old pointer). pins[i] counts the live snapshots whose
 * view holds slot i: a writer writes only a slot that no entry owns and nothing
 * pins, waiting on `unpinned` otherwise. Workers: per-call scratch; records: errmsg. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serving.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void atomic_max(_Atomic int64_t *m, int64_t v) {
    int64_t old = atomic_load(m);
    while (v > old && !atomic_compare_exchange_weak(m, &old, v)) {
    }
}

static void snapshot_unref(lj_serve *sv, lj_snapshot *v);

/* ---- thread error records ---- */

/* Thread exit: the record may serve another thread (freed with the engine). A
 * thread that exits while lorajit_engine_free runs could still be in here after
 * pthread_key_delete: hence lorajit.h's "free it after every other thread is done". */
static void thread_err_gone(void *p) {
    atomic_store(&((lj_thread_err *)p)->live, false);
}

lorajit_status lj_serve_init(lj_serve *sv) {
    memset(sv, 0, sizeof *sv);
    if (pthread_key_create(&sv->err_key, thread_err_gone) != 0) return LORAJIT_E_NOMEM;
    if (pthread_mutex_init(&sv->write_lock, NULL) != 0) goto no_write;
    if (pthread_mutex_init(&sv->pin_lock, NULL) != 0) goto no_lock;
    if (pthread_cond_init(&sv->unpinned, NULL) != 0) goto no_cond;
    if (pthread_mutex_init(&sv->pool_lock, NULL) != 0) goto no_pool;
    sv->ready = true;
    return LORAJIT_OK;
no_pool:
    pthread_cond_destroy(&sv->unpinned);
no_cond:
    pthread_mutex_destroy(&sv->pin_lock);
no_lock:
    pthread_mutex_destroy(&sv->write_lock);
no_write:
    pthread_key_delete(sv->err_key);
    return LORAJIT_E_NOMEM;
}

void lj_serve_free(lj_serve *sv) {
    if (!sv || !sv->ready) return;
    lj_snapshot *v = atomic_exchange(&sv->current, NULL);
    if (v) snapshot_unref(sv, v); /* no call is in flight: the engine's was the last reference */
    for (lj_worker *w = sv->all, *next; w; w = next) {
        next = w->next_all;
        free(w->scratch);
        free(w->key_cache);
        free(w->value_cache);
        free(w);
    }
    pthread_key_delete(sv->err_key); /* no destructor runs after this */
    for (lj_thread_err *t = sv->errs, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    pthread_mutex_destroy(&sv->pool_lock);
    pthread_cond_destroy(&sv->unpinned);
    pthread_mutex_destroy(&sv->pin_lock);
    pthread_mutex_destroy(&sv->write_lock);
    memset(sv, 0, sizeof *sv);
}

lj_err *lj_serve_thread_err(lj_serve *sv, bool create) {
    lj_thread_err *t = pthread_getspecific(sv->err_key);
    if (t || !create) return t ? &t->err : NULL;
    pthread_mutex_lock(&sv->pool_lock);
    for (t = sv->errs; t; t = t->next) { /* a record left by a thread that exited */
        bool dead = false;
        if (atomic_compare_exchange_strong(&t->live, &dead, true)) break;
    }
    if (!t && (t = lj_calloc(1, sizeof *t))) {
        atomic_init(&t->live, true);
        t->next = sv->errs;
        sv->errs = t;
    }
    pthread_mutex_unlock(&sv->pool_lock);
    if (!t) return NULL;
    if (pthread_setspecific(sv->err_key, t) != 0) {
        atomic_store(&t->live, false);
        return NULL;
    }
    lj_err_clear(&t->err);
    return &t->err;
}

/* ---- snapshots ---- */

static size_t names_bytes(const lj_registry *r) {
    size_t n = 0;
    for (int i = 0; i < r->n_phys; i++)
        if (r->by_slot[i].name) n += strlen(r->by_slot[i].name) + 1;
    return n;
}

lorajit_status lj_snapshot_new(const lj_registry *r, size_t extra, lj_snapshot **out, lj_err *err) {
    size_t cap = names_bytes(r) + extra + 1;
    lj_snapshot *v = lj_malloc(sizeof *v + cap);
    if (!v) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory publishing the adapter state (%zu bytes)",
                           sizeof *v + cap);
    memset(v, 0, sizeof *v);
    v->cap = cap;
    *out = v;
    return LORAJIT_OK;
}

/* Copies r's view into v. */
static void snapshot_fill(lj_snapshot *v, const lj_registry *r) {
    size_t used = 0;
    v->enabled = r->enabled;
    v->applied = r->applied;
    v->n_phys = r->n_phys;
    v->n_resident = 0;
    for (int i = 0; i < r->n_phys; i++) {
        v->name[i] = NULL;
        if (!r->by_slot[i].name) continue;
        size_t k = strlen(r->by_slot[i].name) + 1;
        LJ_ASSERT(used + k <= v->cap); /* lj_snapshot_new sized it for this registry */
        memcpy(v->text + used, r->by_slot[i].name, k);
        v->name[i] = v->text + used;
        used += k;
        v->n_resident++;
    }
}

int lj_snapshot_find(const lj_snapshot *v, const char *name) {
    for (int i = 0; name && i < v->n_phys; i++)
        if (v->name[i] && strcmp(v->name[i], name) == 0) return i;
    return -1;
}

/* pins += d for every slot v's view holds. Under sv->pin_lock. */
static void pin(lj_serve *sv, const lj_snapshot *v, int d) {
    for (int i = 0; i < v->n_phys; i++)
        if (v->name[i]) sv->pins[i] += d;
}

/* The last reference to v went: unpin its slots, wake a writer waiting for one. */
static void snapshot_dead(lj_serve *sv, lj_snapshot *v) {
    pthread_mutex_lock(&sv->pin_lock);
    pin(sv, v, -1);
    pthread_cond_broadcast(&sv->unpinned);
    pthread_mutex_unlock(&sv->pin_lock);
    free(v);
}

/* Drops one reference to v (a reader's, or the engine's while v was current). */
static void snapshot_unref(lj_serve *sv, lj_snapshot *v) {
    int64_t before = atomic_fetch_sub(&v->refs, 1);
    LJ_ASSERT(before >= 1);
    if (before == 1) snapshot_dead(sv, v);
}

void lj_serve_publish(lj_serve *sv, const lj_registry *r, lj_snapshot *v) {
    snapshot_fill(v, r);
    atomic_init(&v->refs, 1); /* the engine's reference while it is current */
    pthread_mutex_lock(&sv->pin_lock);
    pin(sv, v, +1);
    pthread_mutex_unlock(&sv->pin_lock);
    lj_snapshot *old = atomic_exchange(&sv->current, v); /* the flip: readers see v from here */
    if (!old) return;
    /* Grace period. A reader that loaded `old` counted itself in entering[] before
       that load and leaves only after taking its reference, so once each counter
       has been seen at 0 after the exchange, every such reader holds its reference.
       Which counter a reader uses depends on an epoch it may have read long before,
       so both are waited for; flipping the epoch before each wait sends new readers
       to the other counter, so the waited one drains (SRCU's two flips). */
    int64_t t0 = now_ns();
    for (int round = 0; round < 2; round++) {
        int p = (int)(atomic_fetch_add(&sv->epoch, 1) & 1); /* new readers: p ^ 1 */
        for (int spins = 0; atomic_load(&sv->entering[p]) != 0; spins++) {
            if (spins < 64) continue;
            struct timespec nap = {0, 1000};
            nanosleep(&nap, NULL); /* a reader was preempted inside its few instructions */
        }
    }
    atomic_max(&sv->grace_max_ns, now_ns() - t0);
    snapshot_unref(sv, old); /* freed here, or by its last reader */
}

lj_snapshot *lj_snapshot_acquire(lj_serve *sv) {
    int64_t t0 = now_ns();
    int p = (int)(atomic_load(&sv->epoch) & 1);
    atomic_fetch_add(&sv->entering[p], 1);
    lj_snapshot *v = atomic_load(&sv->current);
    atomic_fetch_add(&v->refs, 1);
    atomic_fetch_sub(&sv->entering[p], 1);
    atomic_max(&sv->reader_wait_max_ns, now_ns() - t0);
    return v;
}

void lj_snapshot_release(lj_serve *sv, lj_snapshot *v) {
    if (v) snapshot_unref(sv, v);
}

int lj_serve_pick_slot(lj_serve *sv, const lj_registry *r) {
    int64_t t0 = 0;
    pthread_mutex_lock(&sv->pin_lock);
    for (;;) {
        for (int i = 0; i < r->n_phys; i++)
            if (!r->by_slot[i].name && sv->pins[i] == 0) {
                pthread_mutex_unlock(&sv->pin_lock);
                if (t0) atomic_max(&sv->writer_wait_max_ns, now_ns() - t0);
                return i;
            }
        /* every free slot is held by a retired snapshot that a reader still uses:
           one compiled call at most, then its last release broadcasts */
        if (!t0) {
            t0 = now_ns();
            atomic_fetch_add(&sv->writer_waits, 1);
        }
        pthread_cond_wait(&sv->unpinned, &sv->pin_lock);
    }
}

/* ---- workers ---- */

lorajit_status lj_worker_get(lj_serve *sv, bool with_cache, lj_worker **out, lj_err *err) {
    pthread_mutex_lock(&sv->pool_lock);
    lj_worker *w = sv->idle;
    if (w) sv->idle = w->next_idle;
    pthread_mutex_unlock(&sv->pool_lock);
    if (!w) { /* scratch on a cache line: the kernels' rows of x are multiples of 16 floats, so no
                 vector load straddles two lines (malloc's 16-byte alignment split every
                 one: batch-8 decode steps of 6 TinyLlama-width BF16 layers 53.2 against 60.2 ms,
                 two engines alternated; 19 % on a model in L3) */
        if (!(w = lj_calloc(1, sizeof *w)) || !(w->scratch = lj_calloc64(sv->n_scratch, sizeof(float)))) {
            free(w);
            return lj_fail(err, LORAJIT_E_NOMEM, "out of memory: scratch of %zu floats for a call", sv->n_scratch);
        }
        pthread_mutex_lock(&sv->pool_lock);
        w->next_all = sv->all;
        sv->all = w;
        pthread_mutex_unlock(&sv->pool_lock);
    }
    if (with_cache && !w->key_cache) { /* only workers that ran a lorajit_forward carry one */
        w->key_cache = lj_calloc(sv->cache_bytes, 1);
        w->value_cache = w->key_cache ? lj_calloc(sv->cache_bytes, 1) : NULL;
        if (!w->value_cache) {
            free(w->key_cache);
            w->key_cache = NULL;
            lj_worker_put(sv, w);
            return lj_fail(err, LORAJIT_E_NOMEM, "out of memory: a private KV cache of 2 x %zu bytes for "
                           "lorajit_forward", sv->cache_bytes);
        }
    }
    *out = w;
    return LORAJIT_OK;
}

void lj_worker_put(lj_serve *sv, lj_worker *w) {
    if (!w) return;
    pthread_mutex_lock(&sv->pool_lock);
    w->next_idle = sv->idle;
    sv->idle = w;
    pthread_mutex_unlock(&sv->pool_lock);
}
