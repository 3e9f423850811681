/* bench_hook.c — bench_hook.h: slot writes from memory for `lorajit bench`.
 * Input: a started engine (its layout) and two adapter folders. Output: a handle
 * holding both parsed adapters and slot buffers of its own, on which
 * lj_bench_slots_write is exactly the lj_slots_write a load or hotswap runs. */
#include <stdio.h>
#include <stdlib.h>

#include "bench_hook.h"
#include "engine.h"

struct lj_bench_slots {
    lj_slots *slots;     /* owned, shaped like the engine's */
    peft_adapter *ad[2]; /* owned */
};

void lj_bench_slots_free(lj_bench_slots *b) {
    if (!b) return;
    lj_slots_free(b->slots);
    peft_adapter_free(b->ad[0]);
    peft_adapter_free(b->ad[1]);
    free(b);
}

lorajit_status lj_bench_slots_open(const lorajit_engine *e, const char *const dirs[2], lj_bench_slots **out,
                                   size_t *bytes, char *errbuf, size_t errcap) {
    lj_err err;
    lj_err_clear(&err);
    *out = NULL;
    lj_bench_slots *b = calloc(1, sizeof *b);
    lorajit_status st = LORAJIT_OK;
    if (!b) st = lj_fail(&err, LORAJIT_E_NOMEM, "out of memory");
    else if (!e || !e->started) st = lj_fail(&err, LORAJIT_E_ARG, "lj_bench_slots_open: engine not started");
    if (!st) st = lj_slots_new(e->L, &b->slots, &err);
    if (!st) st = lj_slots_use_pool(b->slots, e->pool, &err); /* split as the engine's writes are */
    for (int k = 0; k < 2 && !st; k++) st = peft_adapter_read(dirs[k], e->L, &b->ad[k], &err);
    if (st) {
        lj_bench_slots_free(b);
        if (errbuf && errcap) snprintf(errbuf, errcap, "%s", err.msg);
        return st;
    }
    *bytes = b->ad[0]->bytes;
    *out = b;
    return LORAJIT_OK;
}

void lj_bench_slots_write(lj_bench_slots *b, int which) {
    lj_err err;
    lorajit_status st = lj_slots_write(b->slots, 0, b->ad[which], &err);
    LJ_ASSERT(st == LORAJIT_OK); /* a checked image (peft_adapter_read) */
}
