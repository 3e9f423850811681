/* engine.h — private to runtime/serving/: the body of the lorajit_engine handle
 * and the sequences, shared by engine.c (the handle, the adapter verbs, forward)
 * and generate.c (prefill, decode, generation). Nothing outside serving/ sees it. */
#ifndef LORAJIT_ENGINE_H
#define LORAJIT_ENGINE_H

#include "serving.h"

/* ---- engine.c: the lorajit_engine handle (public API minus lorajit_engine_open) ---- */
/* The engine's counters (lorajit_stats), updated by any thread. */
typedef struct lj_counters {
    _Atomic int64_t loads, hotswaps, deletes, forwards, failed_calls;
    _Atomic int64_t prefill_tokens, decode_tokens, prefill_ns, decode_ns;
} lj_counters;
/* The handle. Its body is internal: generate.c reads it too. After start, only
 * serve (its locks), the counters, the sequences (one thread each) and what the
 * writer lock guards change. */
struct lorajit_engine {
    lj_err err;            /* the open path's status + message (why the engine did not
                              start); calls after that use per-thread records (serve) */
    bool started;
    lj_layout *L;          /* owned */
    lj_weights *w;         /* owned */
    lj_pool *pool;         /* owned; threads = OpenBLAS's at start */
    lj_slots *slots;       /* owned; written under serve.write_lock, only in unpinned slots */
    lj_registry reg;       /* owned names; under serve.write_lock */
    lj_serve serve;        /* snapshots, workers, locks */
    lj_ctx ctx;            /* the compiled code's view; each call copies it and sets scratch, caches, active */
    float *key_cache;      /* [max_batch, n_layers, seq_len, kv_dim]: sequence s's block at s * cache_stride */
    float *value_cache;    /* same layout as key_cache */
    int64_t cache_stride;  /* floats per sequence: n_layers * seq_len * kv_dim */
    lj_seq *seqs;          /* [max_batch] owned */
    lj_code code;          /* owned; released once */
    lj_counters n;
    float *rope;           /* owned: the RoPE table of a type that does not vary with the
                              sequence length (lj_rope_varies false), what ctx.rope points at */
};
/* Start of every public call that changes or uses e: finds (or makes) the calling
 * thread's error record, clears it and points *err at it (borrowed; valid until
 * lorajit_engine_free); refuses a NULL engine or one that did not start (what
 * names the call in the message). */
lorajit_status lj_engine_enter(lorajit_engine *e, const char *what, lj_err **err);
/* ctx.rope for a call whose positions end at seq_len (transformers' dynamic_rope_update:
 * max position + 1): the engine's fixed table, or buf (lj_rope_row_floats floats,
 * borrowed) filled for seq_len when the RoPE type varies with it (dynamic, longrope). */
const float *lj_engine_rope(const lorajit_engine *e, int64_t seq_len, float *buf);
/* End of a public call: counts a failure in failed_calls; returns st. */
lorajit_status lj_engine_leave(lorajit_engine *e, lorajit_status st);
/* The end of a message about logits that are not finite (lj_nonfinite_find): the
 * call fails instead of returning or sampling them. */
#define LJ_NONFINITE_WHY "a weight of the model or of an applied adapter holds NaN or Inf, or the " \
                         "activations overflowed"

#endif /* LORAJIT_ENGINE_H */
