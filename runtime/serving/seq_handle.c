/* seq_handle.c — sequences as handles (lorajit_seq_open / _close, issue 14).
 *
 * A handle holds one of the engine's internal sequences (generate.c's lj_seq) by
 * keeping its busy claim from open to close, so the int API and lorajit_generate
 * see it as in use. A handle names its adapters as names + weights (generate.c's
 * lj_seq_set_choice) and is used by one call at a time (its in_call flag, taken by
 * lj_seq_handles_take for each call). Close empties the sequence and gives it back. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

lorajit_status lorajit_seq_open(lorajit_engine *e, lorajit_seq **out) {
    lj_err *err;
    if (out) *out = NULL;
    lorajit_status st = lj_engine_enter(e, "seq_open", &err);
    if (st) return st;
    if (!out) return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "seq_open: out is NULL"));
    lorajit_seq *h = lj_calloc(1, sizeof *h);
    if (!h) return lj_engine_leave(e, lj_fail(err, LORAJIT_E_NOMEM, "seq_open: out of memory"));
    int max = e->L->schema.max_batch;
    for (int s = 0; s < max; s++)
        if (!atomic_exchange(&e->seqs[s].busy, true)) { /* claimed until close */
            lj_seq *q = &e->seqs[s];
            q->pos = 0;
            lj_seq_choice_free(&q->choice);
            q->choice = (lj_seq_choice){.own = true}; /* the base model until set_adapters */
            *h = (lorajit_seq){.e = e, .id = s};
            *out = h;
            return LORAJIT_OK;
        }
    free(h);
    return lj_engine_leave(e, lj_fail(err, LORAJIT_E_FULL, "seq_open: every sequence is in use (max_batch %d: "
                                      "held by open handles or running calls); close one or open the engine "
                                      "with a larger max_batch", max));
}

void lorajit_seq_close(lorajit_seq *s) {
    if (!s) return;
    lj_seq *q = &s->e->seqs[s->id];
    q->pos = 0;
    lj_kv_trim(&s->e->kv, s->id, 0); /* its blocks back to the pool, as lorajit_seq_reset */
    lj_seq_choice_free(&q->choice);
    q->choice = (lj_seq_choice){0};
    atomic_store(&q->busy, false);
    free(s);
}

lorajit_status lj_seq_handles_take(lorajit_engine *e, lorajit_seq *const *handles, int n, const char *what,
                                   lj_err *err) {
    for (int i = 0; i < n; i++) {
        if (!handles[i]) return lj_fail(err, LORAJIT_E_ARG, "%s: row %d: the sequence handle is NULL", what, i);
        if (handles[i]->e != e)
            return lj_fail(err, LORAJIT_E_ARG, "%s: row %d: sequence %d belongs to another engine", what, i,
                           handles[i]->id);
        for (int j = 0; j < i; j++)
            if (handles[j] == handles[i])
                return lj_fail(err, LORAJIT_E_ARG, "%s: sequence %d is in rows %d and %d; a step advances "
                               "each sequence once", what, handles[i]->id, j, i);
    }
    for (int i = 0; i < n; i++)
        if (atomic_exchange(&handles[i]->in_call, true)) {
            lj_seq_handles_give(handles, i);
            return lj_fail(err, LORAJIT_E_ARG, "%s: sequence %d is in use by another call (a handle is used "
                           "by one thread at a time)", what, handles[i]->id);
        }
    return LORAJIT_OK;
}

void lj_seq_handles_give(lorajit_seq *const *handles, int n) {
    for (int i = 0; i < n; i++) atomic_store(&handles[i]->in_call, false);
}

lorajit_status lorajit_seq_set_adapters(lorajit_seq *s, const char *const *names, const float *weights, int n) {
    lj_err *err;
    lorajit_engine *e = s ? s->e : NULL;
    lorajit_status st = lj_engine_enter(e, "seq_set_adapters", &err);
    if (st) return st;
    if ((st = lj_seq_handles_take(e, &s, 1, "seq_set_adapters", err))) return lj_engine_leave(e, st);
    st = lj_seq_set_choice(e, s->id, names, weights, n, "seq_set_adapters", err);
    lj_seq_handles_give(&s, 1);
    return lj_engine_leave(e, st);
}

int lorajit_seq_length(const lorajit_seq *s) { return s ? (int)s->e->seqs[s->id].pos : -1; }

int lorajit_seq_number(const lorajit_seq *s) { return s ? s->id : -1; }
