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
typedef struct lj_seq lj_seq;
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
};
/* Start of every public call that changes or uses e: finds (or makes) the calling
 * thread's error record, clears it and points *err at it (borrowed; valid until
 * lorajit_engine_free); refuses a NULL engine or one that did not start (what
 * names the call in the message). */
lorajit_status lj_engine_enter(lorajit_engine *e, const char *what, lj_err **err);
/* End of a public call: counts a failure in failed_calls; returns st. */
lorajit_status lj_engine_leave(lorajit_engine *e, lorajit_status st);

/* ---- generate.c: sequences (KV cache position + adapter choice), prefill, decode ---- */
/* Which adapters a sequence uses. */
typedef struct lj_seq_choice {
    bool own;                        /* false: follow the engine's applied set */
    int n;                           /* own set: adapters (0: the base model) */
    char *text;                      /* owned: the n names, NUL-separated; NULL when n = 0 */
    const char *names[LJ_MAX_SLOTS]; /* [n] borrowed from text */
    float weight[LJ_MAX_SLOTS];      /* [n] */
} lj_seq_choice;
struct lj_seq {
    atomic_bool busy;                /* a call is using this sequence (claimed at entry) */
    int64_t pos;                     /* positions held in this sequence's KV cache */
    lj_seq_choice choice;
    lj_active row;                   /* the own set resolved to slots at the current step */
};
/* Frees what seqs[0..n) own, then seqs. NULL does nothing. */
void lj_seqs_free(lj_seq *seqs, int n);
/* Checks names[0..n) + weights against the adapters of snapshot v (loaded,
 * distinct, finite weights, n <= max_adapters) and copies them into *out (own =
 * true). what names the call in messages. Caller owns *out's text; free with
 * lj_seq_choice_free(). On failure *out is untouched. */
lorajit_status lj_seq_choice_make(const lj_snapshot *v, int max_adapters, const char *const *names,
                                  const float *weights, int n, lj_seq_choice *out,
                                  const char *what, lj_err *err);
void lj_seq_choice_free(lj_seq_choice *c); /* frees text only; NULL-safe */
/* Validates, then appends tokens[0..n) to sequence seq in chunks of max_tokens,
 * all of them with one snapshot of the adapters. The caller has claimed seq.
 * logits: NULL or [n, vocab_size]; last: NULL or [vocab_size], gets the last row.
 * tokens, logits and last are borrowed for the call. On failure nothing changes
 * (the position stays). */
lorajit_status lj_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n,
                              float *logits, float *last, const char *what, lj_err *err);
/* Validates everything (range, distinct sequences, vocabulary, room in each KV
 * cache, adapter names), then runs one compiled decode step with one snapshot.
 * The caller has claimed seqs. logits [n, vocab_size]. seqs, tokens and logits
 * are borrowed for the call. On failure nothing changes. */
lorajit_status lj_decode_step(lorajit_engine *e, const int *seqs, const int32_t *tokens, int n,
                              float *logits, const char *what, lj_err *err);

#endif /* LORAJIT_ENGINE_H */
