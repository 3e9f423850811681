/* resolve.c — adapters named by a call, made resident just in time (issue 14).
 *
 * lj_engine_resolve is the one place a call's adapter names meet the adapter cache
 * (adapter_cache.c): each name already resident is pinned at once; each that is
 * not is found (registered folder, or ROOT/NAME), read -- from its host copy under
 * the writer lock, else from the folder with no lock held, then detached and kept
 * -- and committed with lj_adapter_put, which evicts the least recently used
 * unpinned lazy adapter when every slot is owned; a new snapshot is published as
 * by any writer call. Pins (lj_adapter_entry.users) keep a running call's adapters
 * from being evicted by another call's load. The public calls of the cache are in engine.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static int pick_unpinned(void *serve, const lj_registry *r) { return lj_serve_pick_slot(serve, r); }

lj_slot_pick lj_engine_pick(lorajit_engine *e) { return (lj_slot_pick){pick_unpinned, &e->serve}; }

/* Pins name when it is resident (under the write lock); false when it is not. */
static bool pin_resident(lorajit_engine *e, const char *name) {
    int slot = lj_registry_find(&e->reg, name);
    if (slot < 0) return false;
    e->reg.by_slot[slot].users++;
    e->reg.by_slot[slot].last_used = ++e->reg.clock;
    return true;
}

bool lj_engine_all_resident(lorajit_engine *e, const char *const *names, int n) {
    bool all = true;
    pthread_mutex_lock(&e->serve.write_lock);
    for (int i = 0; i < n && all; i++) all = lj_registry_find(&e->reg, names[i]) >= 0;
    pthread_mutex_unlock(&e->serve.write_lock);
    return all;
}

void lj_engine_unpin(lorajit_engine *e, const char *const *names, int n) {
    if (n <= 0) return;
    pthread_mutex_lock(&e->serve.write_lock);
    for (int i = 0; i < n; i++) {
        int slot = names[i] ? lj_registry_find(&e->reg, names[i]) : -1;
        if (slot >= 0 && e->reg.by_slot[slot].users > 0) e->reg.by_slot[slot].users--;
    }
    pthread_mutex_unlock(&e->serve.write_lock);
}

/* Commits img as the lazily loaded, pinned adapter name (under the write lock). */
static lorajit_status commit(lorajit_engine *e, const char *name, const peft_adapter *img, lj_err *err) {
    lj_snapshot *v;
    bool full = lj_registry_count(&e->reg) >= e->reg.n_slots;
    lj_slot_pick pick = lj_engine_pick(e);
    lorajit_status st = lj_snapshot_new(&e->reg, strlen(name) + 1, &v, err);
    if (!st) st = lj_adapter_put(&e->reg, e->slots, name, img, false, &pick, err);
    if (st) {
        free(v);
        return st;
    }
    lj_serve_publish(&e->serve, &e->reg, v);
    bool pinned = pin_resident(e, name);
    LJ_ASSERT(pinned);
    e->reg.by_slot[lj_registry_find(&e->reg, name)].lazy = true;
    atomic_fetch_add(&e->n.jit_loads, 1);
    if (full) atomic_fetch_add(&e->n.evictions, 1);
    return LORAJIT_OK;
}

/* err's message prefixed with the call and the adapter; returns st. */
static lorajit_status named(lj_err *err, lorajit_status st, const char *what, const char *name) {
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return lj_fail(err, st, "%s: adapter '%s': %s", what, name, why);
}

/* Makes name resident and pinned (*pinned true), or leaves it when the cache does
 * not know it (*pinned false). Takes and leaves the write lock. */
static lorajit_status resolve_one(lorajit_engine *e, const char *name, const char *what, bool *pinned, lj_err *err) {
    char dir[4096];
    lj_err quiet;
    pthread_mutex_lock(&e->serve.write_lock);
    *pinned = pin_resident(e, name);
    lorajit_status st = *pinned ? LORAJIT_OK : lj_acache_dir(&e->cache, name, dir, sizeof dir, &quiet);
    if (*pinned || st == LORAJIT_E_NOT_FOUND) { /* resident, or unknown: the call's own checks speak */
        pthread_mutex_unlock(&e->serve.write_lock);
        return LORAJIT_OK;
    }
    if (st) lj_fail(err, st, "%s", quiet.msg);
    *pinned = true; /* from here: pinned on success */
    if (!st) st = lj_adapter_check(&e->reg, name, dir, false, err); /* E_FULL before any read */
    const peft_adapter *copy = st ? NULL : lj_acache_get(&e->cache, name, dir);
    if (copy) { /* a copy in host memory: a slot write, no file read */
        st = commit(e, name, copy, err);
        if (!st) atomic_fetch_add(&e->n.host_hits, 1);
    }
    pthread_mutex_unlock(&e->serve.write_lock);
    if (st || copy) return st ? named(err, st, what, name) : st;

    peft_adapter *img = NULL;
    st = peft_adapter_read(dir, e->L, &img, err); /* no lock: other calls go on */
    if (!st) st = peft_adapter_detach(img, e->L, err);
    pthread_mutex_lock(&e->serve.write_lock);
    if (!st && !pin_resident(e, name)) /* another call may have loaded it meanwhile */
        st = commit(e, name, img, err);
    if (!st) {
        lj_acache_keep(&e->cache, name, dir, img); /* taken */
        img = NULL;
    }
    pthread_mutex_unlock(&e->serve.write_lock);
    peft_adapter_free(img);
    return st ? named(err, st, what, name) : st;
}

lorajit_status lj_engine_resolve(lorajit_engine *e, const char **names, int *n, const char *what, lj_err *err) {
    int k = 0;
    for (int i = 0; i < *n; i++) {
        bool pinned = false;
        lorajit_status st = names[i] && names[i][0] ? resolve_one(e, names[i], what, &pinned, err) : LORAJIT_OK;
        if (st) {
            lj_engine_unpin(e, names, k);
            *n = 0;
            return st;
        }
        if (pinned) names[k++] = names[i];
    }
    *n = k;
    return LORAJIT_OK;
}

lorajit_status lj_engine_hotswap_registered(lorajit_engine *e, const char *name, const char *dir, lj_err *err) {
    peft_adapter *img = NULL;
    lorajit_status st = peft_adapter_read(dir, e->L, &img, err);
    if (!st) st = peft_adapter_detach(img, e->L, err);
    pthread_mutex_lock(&e->serve.write_lock);
    if (!st && !lj_acache_registered(&e->cache, name))
        st = lj_fail(err, LORAJIT_E_NOT_FOUND, "cannot hotswap adapter '%s': it is no longer registered", name);
    if (!st && lj_registry_find(&e->reg, name) >= 0)
        st = lj_fail(err, LORAJIT_E_ARG, "hotswap_adapter '%s': it was loaded meanwhile; hotswap again", name);
    if (!st) st = lj_acache_rebind(&e->cache, name, dir, err);
    if (!st) {
        lj_acache_keep(&e->cache, name, dir, img);
        img = NULL;
        atomic_fetch_add(&e->n.hotswaps, 1);
    }
    pthread_mutex_unlock(&e->serve.write_lock);
    peft_adapter_free(img);
    return st;
}

/* ---- the adapters a call runs with (generate.c) ---- */
bool lj_adapter_names_ok(const char *const *names, int n, int max) {
    if (!names || n < 1 || n > max) return false;
    for (int i = 0; i < n; i++)
        if (!names[i] || !names[i][0]) return false;
    return true;
}

lorajit_status lj_engine_pin_seqs(lorajit_engine *e, const int *seqs, int n, const char ***pinned, int *n_pinned,
                               const char *what, lj_err *err) {
    int k = 0;
    *pinned = NULL;
    *n_pinned = 0;
    for (int i = 0; i < n; i++) k += e->seqs[seqs[i]].choice.own ? e->seqs[seqs[i]].choice.n : 0;
    if (k == 0) return LORAJIT_OK;
    const char **names = lj_malloc(sizeof *names * (size_t)k);
    if (!names) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", what);
    k = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; e->seqs[seqs[i]].choice.own && j < e->seqs[seqs[i]].choice.n; j++)
            names[k++] = e->seqs[seqs[i]].choice.names[j];
    lorajit_status st = lj_engine_resolve(e, names, &k, what, err);
    if (st || k == 0) {
        free(names);
        return st;
    }
    *pinned = names;
    *n_pinned = k;
    return LORAJIT_OK;
}

void lj_engine_unpin_free(lorajit_engine *e, const char **pinned, int n) {
    lj_engine_unpin(e, pinned, n);
    free((void *)pinned);
}

lorajit_status lj_engine_pin_requests(lorajit_engine *e, const lorajit_request *reqs, int n, char ***pinned,
                                   int *n_pinned, lj_err *err) {
    size_t len = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i].adapter) {
            len += strlen(reqs[i].adapter) + 1;
            for (const char *p = reqs[i].adapter; *p; p++) k += *p == ',';
            k += reqs[i].adapter[0] != 0;
        }
    if (k == 0) return LORAJIT_OK;
    char **names = lj_malloc(sizeof *names * (size_t)k + len); /* k pointers, then the text */
    if (!names) return lj_fail(err, LORAJIT_E_NOMEM, "generate: out of memory");
    char *t = (char *)(names + k);
    k = 0;
    for (int i = 0; i < n; i++) {
        if (!reqs[i].adapter || !reqs[i].adapter[0]) continue;
        strcpy(t, reqs[i].adapter);
        for (char *item = t; item;) {
            char *comma = strchr(item, ',');
            if (comma) *comma = '\0';
            char *colon = strchr(item, ':');
            if (colon) *colon = '\0';
            if (*item) names[k++] = item;
            item = comma ? comma + 1 : NULL;
        }
        t += strlen(reqs[i].adapter) + 1;
    }
    lorajit_status st = lj_engine_resolve(e, (const char **)names, &k, "generate", err);
    if (st || k == 0) {
        free(names);
        return st;
    }
    *pinned = names;
    *n_pinned = k;
    return LORAJIT_OK;
}
