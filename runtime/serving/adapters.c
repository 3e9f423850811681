/* adapters.c — the adapter registry (name -> physical slot) and the PEFT verbs.
 *
 * n_phys = n_slots + 1 physical slots: at most n_slots adapters are resident, so
 * one slot is normally free as the hotswap spare. Every verb validates first (an
 * adapter is read by peft_adapter_read into a temporary image, outside any lock:
 * lj_adapter_put only re-checks and commits in a few small steps); on failure
 * registry and slots are unchanged. Writes only go to a slot no entry owns and
 * (through the caller's pick) no reader holds, so no reader ever sees a slot
 * change under it; hotswap and delete just release the old slot. The
 * engine publishes the registry to readers (serve.c) after a verb succeeds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serving.h"

/* applied = the chosen set, or nothing when disabled. */
static void applied_update(lj_registry *r) {
    int n = r->enabled ? r->n_active : 0;
    for (int i = 0; i < n; i++) {
        r->applied.slot[i] = r->active_slot[i];
        r->applied.weight[i] = r->active_weight[i];
    }
    r->applied.n = n;
}

/* A slot that may be written now: pick's (lj_serve_pick_slot when readers run
 * concurrently), else the first one no entry owns; -1 when every slot is owned. */
static int free_slot(const lj_registry *r, const lj_slot_pick *pick) {
    if (pick && pick->fn) return pick->fn(pick->arg, r);
    for (int i = 0; i < r->n_phys; i++)
        if (!r->by_slot[i].name) return i;
    return -1;
}

lorajit_status lj_registry_init(lj_registry *r, int n_slots, lj_err *err) {
    if (!r) return lj_fail(err, LORAJIT_E_ARG, "lj_registry_init: NULL registry");
    if (n_slots < 1 || n_slots + 1 > LJ_MAX_SLOTS)
        return lj_fail(err, LORAJIT_E_ARG, "max_adapters %d: must be 1..%d", n_slots,
                       LJ_MAX_SLOTS - 1);
    lj_adapter_entry *by_slot = lj_calloc((size_t)n_slots + 1, sizeof *by_slot);
    if (!by_slot) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating the registry");
    memset(r, 0, sizeof *r);
    r->n_slots = n_slots;
    r->n_phys = n_slots + 1;
    r->by_slot = by_slot;
    r->enabled = true;
    return LORAJIT_OK;
}

void lj_registry_free(lj_registry *r) {
    if (!r) return;
    for (int i = 0; r->by_slot && i < r->n_phys; i++) free(r->by_slot[i].name);
    free(r->by_slot);
    memset(r, 0, sizeof *r);
}

int lj_registry_find(const lj_registry *r, const char *name) {
    if (!r || !name) return -1;
    for (int i = 0; i < r->n_phys; i++)
        if (r->by_slot[i].name && strcmp(r->by_slot[i].name, name) == 0) return i;
    return -1;
}

int lj_registry_count(const lj_registry *r) {
    int n = 0;
    for (int i = 0; r && i < r->n_phys; i++) n += r->by_slot[i].name != NULL;
    return n;
}

int lj_registry_victim(const lj_registry *r) {
    int best = -1;
    for (int i = 0; r && i < r->n_phys; i++) {
        const lj_adapter_entry *a = &r->by_slot[i];
        bool active = false;
        for (int k = 0; k < r->n_active; k++) active |= r->active_slot[k] == i;
        if (a->name && a->lazy && a->users == 0 && !active &&
            (best < 0 || a->last_used < r->by_slot[best].last_used))
            best = i;
    }
    return best;
}

static lorajit_status check_name(const char *name, const char *dir, bool need_dir, lj_err *err) {
    if (!name || !name[0]) return lj_fail(err, LORAJIT_E_ARG, "adapter name is NULL or empty");
    if (need_dir && !dir) return lj_fail(err, LORAJIT_E_ARG, "adapter '%s': dir is NULL", name);
    return LORAJIT_OK;
}

lorajit_status lj_adapter_check(const lj_registry *r, const char *name, const char *dir, bool hotswap,
                                lj_err *err) {
    lorajit_status st;
    if ((st = check_name(name, dir, true, err))) return st;
    int old = lj_registry_find(r, name);
    if (hotswap && old < 0)
        return lj_fail(err, LORAJIT_E_NOT_FOUND, "cannot hotswap adapter '%s': it is not loaded",
                       name);
    if (!hotswap && old >= 0)
        return lj_fail(err, LORAJIT_E_EXISTS, "adapter '%s' is already loaded (hotswap replaces "
                       "it, delete removes it)", name);
    if (!hotswap && lj_registry_count(r) >= r->n_slots && lj_registry_victim(r) < 0)
        return lj_fail(err, LORAJIT_E_FULL, "cannot load adapter '%s': all %d adapter slots are "
                       "in use (loaded explicitly, active, or used by running calls; delete one, or "
                       "open the engine with a larger max_adapters)", name, r->n_slots);
    return LORAJIT_OK;
}

lorajit_status lj_adapter_put(lj_registry *r, lj_slots *s, const char *name, const peft_adapter *ad,
                              bool hotswap, const lj_slot_pick *pick, lj_err *err) {
    lorajit_status st;
    if ((st = lj_adapter_check(r, name, "", hotswap, err))) return st; /* "": the folder was read */
    int old = lj_registry_find(r, name);
    char *copy = NULL;
    if (!hotswap && !(copy = lj_strdup(name)))
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory loading adapter '%s'", name);
    if (!hotswap && lj_registry_count(r) >= r->n_slots) { /* evict: released like a delete */
        int victim = lj_registry_victim(r);
        LJ_ASSERT(victim >= 0); /* the check above */
        /* the write may go to the victim's slot, so what the write could refuse (an unchecked
           image's NaN / Inf, 16-bit slots' range) is tested before it is evicted (a failed
           load must leave it resident): the separate scan, only here */
        if ((st = lj_slots_check(s, ad, err))) {
            free(copy);
            return st;
        }
        free(r->by_slot[victim].name);
        r->by_slot[victim] = (lj_adapter_entry){0};
    }
    int slot = free_slot(r, pick); /* at most n_slots of n_phys are owned */
    LJ_ASSERT(slot >= 0 && slot != old);
    if ((st = lj_slots_write(s, slot, ad, err))) { /* unowned and unpinned: nothing reads it */
        free(copy); /* nothing committed: registry and published state as they were */
        return st;
    }
    if (hotswap) {
        r->by_slot[slot] = r->by_slot[old];
        r->by_slot[slot].bytes = ad->bytes;
        r->by_slot[old] = (lj_adapter_entry){0};
        for (int i = 0; i < r->n_active; i++)
            if (r->active_slot[i] == old) r->active_slot[i] = slot;
    } else {
        r->by_slot[slot] = (lj_adapter_entry){.name = copy, .bytes = ad->bytes, .seq = r->next_seq++,
                                              .last_used = ++r->clock};
    }
    applied_update(r); /* a hotswap's old slot is released: older snapshots may still use it */
    return LORAJIT_OK;
}

/* check, read, put: for callers with no concurrent writer (tests, tools). */
static lorajit_status read_and_put(lj_registry *r, lj_slots *s, const lj_layout *L, const char *name,
                                   const char *dir, bool hotswap, const lj_slot_pick *pick, lj_err *err) {
    peft_adapter *ad = NULL;
    lorajit_status st = lj_adapter_check(r, name, dir, hotswap, err);
    if (!st) st = peft_adapter_read_mapped(dir, L, &ad, err);
    if (!st) st = lj_adapter_put(r, s, name, ad, hotswap, pick, err);
    peft_adapter_free(ad);
    return st;
}

lorajit_status lj_adapter_load(lj_registry *r, lj_slots *s, const lj_layout *L, const char *name,
                               const char *dir, const lj_slot_pick *pick, lj_err *err) {
    return read_and_put(r, s, L, name, dir, false, pick, err);
}

lorajit_status lj_adapter_hotswap(lj_registry *r, lj_slots *s, const lj_layout *L,
                                  const char *name, const char *dir, const lj_slot_pick *pick,
                                  lj_err *err) {
    return read_and_put(r, s, L, name, dir, true, pick, err);
}

lorajit_status lj_adapter_delete(lj_registry *r, lj_slots *s, const char *name, lj_err *err) {
    lorajit_status st;
    if ((st = check_name(name, NULL, false, err))) return st;
    int slot = lj_registry_find(r, name);
    if (slot < 0)
        return lj_fail(err, LORAJIT_E_NOT_FOUND, "cannot delete adapter '%s': it is not loaded",
                       name);
    int k = 0;
    for (int i = 0; i < r->n_active; i++)
        if (r->active_slot[i] != slot) {
            r->active_slot[k] = r->active_slot[i];
            r->active_weight[k++] = r->active_weight[i];
        }
    r->n_active = k;
    free(r->by_slot[slot].name);
    r->by_slot[slot] = (lj_adapter_entry){0};
    applied_update(r); /* the slot is released, not cleared: a reader may still use it */
    return LORAJIT_OK;
}

lorajit_status lj_adapter_set(lj_registry *r, const char *const *names, const float *weights,
                              int n, lj_err *err) {
    int slot[LJ_MAX_SLOTS];
    if (n < 0 || n > r->n_slots)
        return lj_fail(err, LORAJIT_E_ARG, "set_adapter: n = %d, must be 0..%d (max_adapters)", n,
                       r->n_slots);
    if (n > 0 && !names) return lj_fail(err, LORAJIT_E_ARG, "set_adapter: names is NULL");
    for (int i = 0; i < n; i++) {
        if (!names[i]) return lj_fail(err, LORAJIT_E_ARG, "set_adapter: names[%d] is NULL", i);
        slot[i] = lj_registry_find(r, names[i]);
        if (slot[i] < 0)
            return lj_fail(err, LORAJIT_E_NOT_FOUND, "set_adapter: adapter '%s' (names[%d]) is "
                           "not loaded", names[i], i);
        for (int j = 0; j < i; j++)
            if (slot[j] == slot[i])
                return lj_fail(err, LORAJIT_E_ARG, "set_adapter: adapter '%s' is named twice "
                               "(names[%d] and names[%d])", names[i], j, i);
        if (weights && !isfinite(weights[i]))
            return lj_fail(err, LORAJIT_E_ARG, "set_adapter: weights[%d] of '%s' is not finite",
                           i, names[i]);
    }
    for (int i = 0; i < n; i++) {
        r->active_slot[i] = slot[i];
        r->active_weight[i] = weights ? weights[i] : 1.0f;
    }
    r->n_active = n;
    applied_update(r);
    return LORAJIT_OK;
}

void lj_adapter_enable(lj_registry *r, bool on) {
    r->enabled = on;
    applied_update(r);
}
