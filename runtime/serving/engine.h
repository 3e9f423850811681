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
    _Atomic int64_t jit_loads, evictions, host_hits;
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
    lj_pool *pool;         /* owned; threads = options.threads, else OpenBLAS's at start */
    int threads;           /* options.threads (lj_engine_threads); 0: OpenBLAS's count */
    lj_slots *slots;       /* owned; written under serve.write_lock, only in unpinned slots */
    lj_registry reg;       /* owned names; under serve.write_lock */
    lj_adapter_cache cache; /* adapters by name beyond the slots; under serve.write_lock */
    lj_serve serve;        /* snapshots, workers, locks */
    lj_ctx ctx;            /* the compiled code's view; each call copies it and sets scratch, caches, active */
    lj_kv kv;              /* owned: the paged KV cache of the sequences */
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
/* Host memory for the adapter cache's parsed copies until lorajit_set_adapter_cache. */
#define LJ_ADAPTER_CACHE_DEFAULT ((size_t)256 << 20)
/* ---- resolve.c: adapters named by a call, made resident just in time ---- */
/* Makes the adapters named in names[0..*n) resident (loading each that is not and
 * that the cache knows: from the host copy, else its folder, read with no lock held;
 * evicting a victim when the slots are full) and pins them (users + 1) so that no
 * other call evicts them until lj_engine_unpin. Names the cache does not know
 * (neither resident, registered nor under the adapter folder), NULL or empty are
 * dropped: names[0..*n) keeps those pinned, in order (a name given twice is pinned
 * twice). On failure nothing stays pinned, *n is 0 and err names the adapter. */
lorajit_status lj_engine_resolve(lorajit_engine *e, const char **names, int *n, const char *what, lj_err *err);
/* True when every name in names[0..n) is resident now (a later resolve of them is
 * a pin, no load, unless another call evicts one meanwhile). Takes the write lock. */
bool lj_engine_all_resident(lorajit_engine *e, const char *const *names, int n);
/* Undoes lj_engine_resolve's pins of names[0..n) (names no longer loaded are skipped). */
void lj_engine_unpin(lorajit_engine *e, const char *const *names, int n);
/* Hotswap of a name that is registered but not resident: reads and checks dir,
 * then rebinds the registration to it (keeping the copy). */
lorajit_status lj_engine_hotswap_registered(lorajit_engine *e, const char *name, const char *dir, lj_err *err);
/* 1 when names[0..n) are 1..max usable names (else the call's own checks say why). */
bool lj_adapter_names_ok(const char *const *names, int n, int max);
/* Pins the own adapters of the claimed sequences seqs[0..n) for one call (resolve: an
 * evicted one is loaded again). *pinned (free with lj_engine_unpin_free, n_pinned)
 * borrows the names from the sequences' choices, which the claim keeps. */
lorajit_status lj_engine_pin_seqs(lorajit_engine *e, const int *seqs, int n, const char ***pinned, int *n_pinned,
                                  const char *what, lj_err *err);
void lj_engine_unpin_free(lorajit_engine *e, const char **pinned, int n);
/* Pins the adapter names of every generate request's spec ("NAME[:W][,NAME[:W]...]")
 * for the call. *pinned: n_pinned names in one block (pointers, then their text);
 * the caller unpins (lj_engine_unpin) and frees it. A malformed spec pins what it
 * can name; generate's own checks report it. */
lorajit_status lj_engine_pin_requests(lorajit_engine *e, const lorajit_request *reqs, int n, char ***pinned,
                                      int *n_pinned, lj_err *err);
/* Rows a worker's scratch holds, the most one compiled call may take: max_tokens
 * (lj_forward's chunks) or max_batch (lj_decode's rows), whichever is larger. */
static inline int64_t lj_engine_rows(const lj_layout *L) {
    return L->schema.max_tokens > L->schema.max_batch ? L->schema.max_tokens : L->schema.max_batch;
}
/* The slot picker of writer calls: a slot no snapshot pins (lj_serve_pick_slot). */
lj_slot_pick lj_engine_pick(lorajit_engine *e);

/* ---- generate.c: prefill and decode of sequences the caller holds (claimed or
 * open as handles); step.c and seq_handle.c use them too ---- */
/* lj_seq_prefill's piece for code with rows_exact: calls of up to max_tokens rows, the
 * LoRA terms on the generated row loop for every row (as a decode row has them). */
#define LJ_PREFILL_EXACT (-1)
/* Validates, then appends tokens[0..n) to sequence seq in compiled calls of at most
 * piece rows (0: max_tokens; LJ_PREFILL_EXACT), with one adapter snapshot. logits: NULL or [n, vocab];
 * last: NULL or [vocab], the last row. req: generate's request (-1: none), for
 * messages. On failure the position stays. */
lorajit_status lj_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n, int piece, float *logits,
                              float *last, const char *what, int req, lj_err *err);
/* Validates everything, then one compiled lj_decode pass over n rows, row i token
 * tokens[i] of sequence seqs[i]: at its sequence's position, the sequences distinct
 * (pos NULL; n <= max_batch), or at pos[i], a sequence's rows at consecutive positions
 * from its own (a prompt's chunk as rows; n <= max(max_batch, max_tokens)). n_prefill
 * rows count as prefill tokens. logits [n, vocab]. req: NULL or generate's request of
 * each row. On failure no sequence advances. */
lorajit_status lj_decode_rows(lorajit_engine *e, const int *seqs, const int64_t *pos, const int32_t *tokens, int n,
                              int n_prefill, float *logits, const char *what, const int *req, lj_err *err);
/* Gives sequence seq its own adapters names[0..n) + weights (NULL: all 1), made
 * resident first (lj_engine_resolve); names are copied. On failure the choice stays. */
lorajit_status lj_seq_set_choice(lorajit_engine *e, int seq, const char *const *names, const float *weights, int n,
                                 const char *what, lj_err *err);

/* ---- seq_handle.c: a sequence held as a handle (lorajit_seq_open) ---- */
/* The handle owns the claim of sequence id (its busy flag) from open to close, so
 * that the int API and lorajit_generate leave that sequence alone. */
struct lorajit_seq {
    lorajit_engine *e;     /* borrowed: the engine outlives its handles */
    int id;                /* the sequence held */
    atomic_bool in_call;   /* a call uses the handle (one thread at a time) */
};
/* Marks handles[0..n) in use for one call (all or none); E_ARG naming the row when
 * one is NULL, of another engine, named twice or in use. */
lorajit_status lj_seq_handles_take(lorajit_engine *e, lorajit_seq *const *handles, int n, const char *what,
                                   lj_err *err);
void lj_seq_handles_give(lorajit_seq *const *handles, int n);

/* End of a public call: counts a failure in failed_calls; returns st. */
lorajit_status lj_engine_leave(lorajit_engine *e, lorajit_status st);
/* The end of a message about logits that are not finite (lj_nonfinite_find): the
 * call fails instead of returning or sampling them. */
#define LJ_NONFINITE_WHY "a weight of the model or of an applied adapter holds NaN or Inf, or the " \
                         "activations overflowed"

/* ---- sched_req.c: one request of the scheduler (scheduler.c) ---- */
#define LJ_SCHED_MAX_STOPS 16 /* stop sequences, and stop strings, per request */
typedef struct lj_sched_req {
    struct lj_sched_req *next;   /* in the queue or the finished list */
    int64_t id;
    int n_prompt, max_new, n_out;
    int32_t *hist;               /* [n_prompt + max_new] owned: the prompt, then the sampled ids */
    double *token_ms;            /* [max_new] owned: when each id was sampled, from submit */
    int n_adapters;
    char **names;                /* [n_adapters] owned block: pointers, then text */
    float weight[LJ_MAX_SLOTS];  /* [n_adapters] */
    const char *pinned[LJ_MAX_SLOTS]; /* [n_pinned] names pinned while it runs (into names) */
    int n_pinned;
    lorajit_sampling samp;
    lj_rng rng;
    int n_stop_seqs, stop_at[LJ_SCHED_MAX_STOPS], stop_len[LJ_SCHED_MAX_STOPS];
    int32_t *stop_tok;           /* owned: the stop sequences, each at stop_at[i], stop_len[i] long */
    int n_stop_str;
    char **stop_str;             /* [n_stop_str] owned block */
    lorajit_detokenizer *detok;  /* owned; with stop strings only */
    char *text;                  /* owned: the text so far (stop strings), text_len bytes + NUL */
    size_t text_len, text_cap;
    lorajit_sched_token_fn on_token;
    void *user;
    atomic_bool cancel;          /* lorajit_sched_cancel of a running request */
    lorajit_seq *seq;            /* owned while it runs */
    int n_fed;                   /* prompt tokens in its sequence */
    double submit_ms, queue_ms, ttft_ms, done_ms;
    lorajit_finish finish;
    char error[512];
    int load;                    /* LJ_LOAD_*: its adapters on the scheduler's loader thread */
    lorajit_status load_st;      /* LJ_LOAD_DONE: how the load went; its message in error */
    int full_retries;            /* loads retried after E_FULL with no other pins seen */
    /* prompt_logprobs (plp): entry k for prompt position k + 1 (lorajit_sched_prompt_fn) */
    bool plp;                    /* asked: its prefill chunks take every row's logits */
    int plp_top_n;
    lorajit_sched_prompt_fn on_prompt;
    float *plp_logits;           /* [plp_rows, vocab] owned from admission to its first token */
    float *plp_lp;               /* [n_prompt - 1] owned */
    int32_t *plp_top_id;         /* [n_prompt - 1, plp_top_n] owned */
    float *plp_top_lp;           /* [n_prompt - 1, plp_top_n] owned */
} lj_sched_req;
/* Most prompt tokens a step runs of a request with prompt_logprobs (the rows of its
 * plp_logits): bounds that buffer; the values do not depend on the chunking. */
#define LJ_SCHED_PLP_ROWS 64
int lj_sched_plp_rows(const lj_sched_req *q); /* min(n_prompt, LJ_SCHED_PLP_ROWS) */
/* A queued request's adapter load (scheduler.c): none asked, waiting for the loader,
 * being loaded (the loader owns pinned[] then), done (pinned[] pinned, or load_st). */
enum { LJ_LOAD_NONE, LJ_LOAD_WAITING, LJ_LOAD_RUNNING, LJ_LOAD_DONE };
double lj_sched_now_ms(void); /* the monotonic clock */
/* Checks r against e (and stop strings against tok != NULL) and copies it. Caller
 * owns *out; free with lj_sched_req_free(). */
lorajit_status lj_sched_req_new(lorajit_engine *e, const lorajit_sched_request *r, const lorajit_tokenizer *tok,
                                lj_sched_req **out, lj_err *err);
void lj_sched_req_free(lj_sched_req *q); /* NULL does nothing; the sequence is closed by the scheduler */
/* Samples q's next id from logits [vocab] (overwritten), records it and its time,
 * calls on_token, and says whether q is done (LORAJIT_FINISH_NONE: it goes on). */
lorajit_finish lj_sched_req_take(lj_sched_req *q, float *logits, lj_sample_work *w, int64_t id, double now_ms);
/* prompt_logprobs: entries for the rows of a prefill chunk that ran from prompt
 * position `from` (logits [n_rows, vocab], row j after prompt[from + j]); at the
 * prompt's end calls on_prompt. Returns on_prompt's answer
 * (non-zero: cancel), 0 before the end. */
int lj_sched_req_prompt_rows(lj_sched_req *q, const float *logits, int vocab, int from, int n_rows, int64_t id);
/* Fills *out from finished q: out->tokens a new copy, out->token_ms taken from q. */
lorajit_status lj_sched_req_result(lj_sched_req *q, int64_t id, lorajit_sched_result *out, lj_err *err);

#endif /* LORAJIT_ENGINE_H */
