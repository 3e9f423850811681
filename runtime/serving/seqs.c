/* seqs.c — a sequence's adapter choice: checked against a snapshot of the
 * adapters and copied (names + weights) so that it outlives the caller's arrays;
 * and freeing the engine's sequences. generate.c resolves a choice to slots at
 * every step; engine.c frees the sequences with the engine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serving.h"

void lj_seq_choice_free(lj_seq_choice *c) {
    if (!c) return;
    free(c->text);
    c->text = NULL;
}

void lj_seqs_free(lj_seq *seqs, int n) {
    if (!seqs) return;
    for (int i = 0; i < n; i++) lj_seq_choice_free(&seqs[i].choice);
    free(seqs);
}

lorajit_status lj_seq_choice_make(const lj_snapshot *v, int max_adapters, const char *const *names,
                                  const float *weights, int n, lj_seq_choice *out,
                                  const char *what, lj_err *err) {
    if (n < 0 || n > max_adapters)
        return lj_fail(err, LORAJIT_E_ARG, "%s: n = %d adapters, must be 0..%d (max_adapters)", what,
                       n, max_adapters);
    if (n > 0 && !names) return lj_fail(err, LORAJIT_E_ARG, "%s: names is NULL", what);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i]) return lj_fail(err, LORAJIT_E_ARG, "%s: names[%d] is NULL", what, i);
        if (lj_snapshot_find(v, names[i]) < 0)
            return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: adapter '%s' (names[%d]) is not loaded",
                           what, names[i], i);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return lj_fail(err, LORAJIT_E_ARG, "%s: adapter '%s' is named twice (names[%d] and "
                               "names[%d])", what, names[i], j, i);
        if (weights && !isfinite(weights[i]))
            return lj_fail(err, LORAJIT_E_ARG, "%s: weights[%d] of '%s' is not finite", what, i,
                           names[i]);
        len += strlen(names[i]) + 1;
    }
    lj_seq_choice c = {.own = true, .n = n};
    if (n > 0 && !(c.text = lj_malloc(len)))
        return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory copying adapter names", what);
    char *p = c.text;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(names[i]) + 1;
        memcpy(p, names[i], k);
        c.names[i] = p;
        c.weight[i] = weights ? weights[i] : 1.0f;
        p += k;
    }
    *out = c;
    return LORAJIT_OK;
}
