/* lorajit_serving.h — part of lorajit.h, included by it (include lorajit.h, not this):
 * sequences as handles, one step for mixed work, and the scheduler (continuous
 * batching). Split out only to keep each header file short; same prefix, same rules.
 * Every type it uses is declared in lorajit.h before the point that includes it. */
#ifndef LORAJIT_API_SERVING_H
#define LORAJIT_API_SERVING_H
#ifndef LORAJIT_H
#error "include lorajit.h, not lorajit_serving.h"
#endif

/* ---- Sequences as handles, and one step for mixed work (issue 14) ----
 * A handle holds one of the engine's max_batch sequences from lorajit_seq_open to
 * lorajit_seq_close (the int calls above and lorajit_generate leave it alone; a
 * call naming its number fails "in use"). A handle is used by one thread at a time
 * (a second concurrent call on it fails with LORAJIT_E_ARG "in use"). Messages are
 * read with lorajit_errmsg(e) of the handle's engine. */
typedef struct lorajit_seq lorajit_seq;
/* Opens a handle on the lowest free sequence, empty (position 0), on the base model
 * (no adapter) until lorajit_seq_set_adapters. LORAJIT_E_FULL when every sequence is
 * held (by handles or by running calls). Caller owns *out (NULL on failure); free
 * with lorajit_seq_close(). */
LORAJIT_API lorajit_status lorajit_seq_open(lorajit_engine *e, lorajit_seq **out);
/* Empties the sequence, drops its adapter choice and gives it back. NULL does nothing. */
LORAJIT_API void lorajit_seq_close(lorajit_seq *s);
/* The adapters s uses from its next step: names[0..n) with weights (NULL: all 1),
 * n = 0 the base model. A name that is not resident but known to the adapter cache
 * is loaded now; unknown names fail and change nothing. Arrays borrowed for the call. */
LORAJIT_API lorajit_status lorajit_seq_set_adapters(lorajit_seq *s, const char *const *names,
                                                    const float *weights, int n);
/* Positions s holds; its sequence number (for lorajit_seq_pos and messages). -1 for NULL. */
LORAJIT_API int lorajit_seq_length(const lorajit_seq *s);
LORAJIT_API int lorajit_seq_number(const lorajit_seq *s);

/* One row of lorajit_step: append tokens[0..n_tokens) to seq; n_tokens 1 is a decode
 * row, more a prefill chunk. logits: NULL (none wanted), else caller-owned [vocab]
 * for the last position's row, or [n_tokens, vocab] with all_logits. */
typedef struct lorajit_step_row {
    lorajit_seq *seq;
    const int32_t *tokens;   /* [n_tokens], borrowed for the call */
    int n_tokens;
    float *logits;
    int all_logits;
} lorajit_step_row;
/* Runs rows[0..n) (distinct sequences of e) as one step, each row with its sequence's
 * adapters. All or nothing: every row is checked first (handle, vocabulary, room in
 * the KV cache) and when any part fails (logits not finite too) no sequence advances.
 * A row's numbers never depend on the rows beside it, so any chunking of a prompt
 * gives the same logits bit for bit. On 16-bit weights (every matmul computes a row
 * the same way whatever the rows beside it) the whole step runs as rows of the
 * compiled decode, a chunk's tokens at consecutive positions of their sequence: one
 * read of the weights a step, in passes of at most max(max_batch, max_tokens) rows.
 * Otherwise prefill chunks run the compiled forward in calls of at most 8 rows and
 * decode rows go in lj_decode passes of at most 8, where the generated row loop
 * computes a row the same way (lorajit_seq_prefill of more than 8 tokens takes
 * sgemm, whose last bits depend on the number of rows). */
LORAJIT_API lorajit_status lorajit_step(lorajit_engine *e, const lorajit_step_row *rows, int n);

/* ---- The scheduler: continuous batching (runtime/serving/scheduler.c) ----
 * Requests are submitted at any time (any thread) and join the running batch
 * between steps. One thread drives: lorajit_sched_step runs one step of at most
 * token_budget tokens: a decode row for every running request past its prompt,
 * then prefill chunks of the waiting prompts in admission order with what is left
 * (at least min_chunk tokens a step, so prompts always progress); a long prompt is
 * cut into chunks and never stalls the decoding rows.
 * Admission: queue, never preempt. A request is admitted (in submission order)
 * when a sequence is free, its positions (n_prompt + max_new - 1) fit
 * max_seq_len, the paged KV cache has free blocks for all of them on top of what
 * the running requests may still take (blocks held by sequences outside the
 * scheduler are not foreseen), its adapters are resident (pinned until it
 * finishes; when every slot is pinned by running requests it waits) and the admit
 * hook (if any) agrees. An adapter that is not resident is loaded just in time on
 * the scheduler's loader thread (file read, parse, slot write) while steps go on:
 * its request stays queued and is admitted at the first step after the load, and
 * requests behind it whose adapters are resident may start meanwhile (FIFO is not
 * strict across loads). A running request is never stopped for lack of room: it
 * holds its sequence and KV blocks (all its positions) to the end.
 * A request that can never be admitted fails at submit (LORAJIT_E_ARG).
 * A request finishes on EOS, max_new, a stop token sequence, a stop string (with a
 * tokenizer), its on_token (or on_prompt) callback returning non-zero or lorajit_sched_cancel
 * (cancelled: it takes no part in the next step), or an error (its adapter failed
 * to load, logits not finite, ...: the message names it; other requests go on). */
typedef struct lorajit_sched lorajit_sched;
typedef struct lorajit_tokenizer lorajit_tokenizer; /* see Text below */
typedef enum lorajit_finish {
    LORAJIT_FINISH_NONE = 0,   /* queued or running */
    LORAJIT_FINISH_EOS,        /* sampled an EOS id (kept as the last token) */
    LORAJIT_FINISH_LENGTH,     /* max_new tokens */
    LORAJIT_FINISH_STOP,       /* a stop sequence or stop string (its tokens kept) */
    LORAJIT_FINISH_CANCELLED,  /* on_token returned non-zero, or lorajit_sched_cancel */
    LORAJIT_FINISH_ERROR       /* lorajit_sched_result.error says why */
} lorajit_finish;
/* Called on the driving thread for each token as it is sampled (no lock held);
 * non-zero cancels the request (the token is kept). */
typedef int (*lorajit_sched_token_fn)(void *user, int64_t id, int32_t token);
/* Called on the driving thread once for a request with prompt_logprobs, when its
 * last prefill chunk has run (before its first on_token; no lock held). n =
 * n_prompt - 1 entries: lp[k] = log P(prompt[k + 1] | prompt[0..k]) under the
 * request's adapters, top_id / top_lp[k * top_n ..] the top_n most likely ids at
 * that position and theirs, most likely first (lorajit_logprobs). The same values
 * whatever the prefill chunking. Arrays borrowed for the call; non-zero cancels the
 * request (no token is sampled). */
typedef int (*lorajit_sched_prompt_fn)(void *user, int64_t id, int n, const float *lp, const int32_t *top_id,
                                       const float *top_lp, int top_n);
/* A request; everything is copied by lorajit_sched_submit. */
typedef struct lorajit_sched_request {
    const int32_t *prompt;
    int n_prompt;
    const char *const *adapters; /* [n_adapters] names; 0 adapters: the base model */
    const float *weights;        /* [n_adapters] or NULL (all 1) */
    int n_adapters;
    int max_new;                 /* >= 1 */
    const lorajit_sampling *sampling; /* NULL: greedy; its seed's stream 0 (as
                                         lorajit_generate's request 0 alone) */
    const int32_t *const *stop_seqs; /* [n_stop_seqs] token sequences that end it */
    const int *stop_lens;        /* [n_stop_seqs] */
    int n_stop_seqs;
    const char *const *stop_strings; /* [n_stop_strings]: needs options.tokenizer */
    int n_stop_strings;
    lorajit_sched_token_fn on_token; /* may be NULL */
    void *user;                  /* for on_token and on_prompt */
    int prompt_logprobs;         /* non-zero: the prompt's log-probabilities to on_prompt (its
                                    prefill chunks compute every position's logits); 0 costs nothing */
    int prompt_top_n;            /* with prompt_logprobs: top ids per position, 0..LORAJIT_MAX_TOP_LOGPROBS */
    lorajit_sched_prompt_fn on_prompt; /* may be NULL */
} lorajit_sched_request;
/* What a finished request did. Times in ms from its submit. */
typedef struct lorajit_sched_result {
    int64_t id;
    lorajit_finish finish;
    char error[512];             /* for LORAJIT_FINISH_ERROR: the message */
    int n_prompt, n_tokens;
    int32_t *tokens;             /* [n_tokens] caller owns; free with lorajit_free() */
    double *token_ms;            /* [n_tokens] when each was sampled; free with lorajit_free() */
    double queue_ms;             /* submit -> admitted (-1: never admitted) */
    double ttft_ms;              /* submit -> first token (-1: none) */
    double total_ms;             /* submit -> finished */
} lorajit_sched_result;
/* Admission hook, asked last when a request could otherwise start: 1 when
 * `positions` more positions can be given to it now (e.g. a paged KV cache's free
 * blocks; a yes is an admission, so the hook may reserve them), 0 keeps it queued
 * (and the requests behind it: admission is in order). */
typedef int (*lorajit_sched_admit_fn)(void *user, int positions);
typedef struct lorajit_sched_options {
    int token_budget;            /* tokens a step runs (decode rows + prefill chunks);
                                    0: max_tokens; at least 1 */
    int min_chunk;               /* prefill tokens a step runs at least; 0: 16 */
    int max_running;             /* requests running at once; 0: max_batch */
    const lorajit_tokenizer *tokenizer; /* for stop strings (borrowed; outlives the scheduler) */
    lorajit_sched_admit_fn admit;
    void *admit_user;
} lorajit_sched_options;
/* A scheduler over e (which outlives it). opts may be NULL (defaults). Caller owns
 * *out; free with lorajit_sched_free(). Messages: lorajit_sched_errmsg. */
LORAJIT_API lorajit_status lorajit_sched_open(lorajit_engine *e, const lorajit_sched_options *opts,
                                              lorajit_sched **out);
/* Cancels and finishes every request, closes its sequences. NULL does nothing. No
 * other call on s may be running. */
LORAJIT_API void lorajit_sched_free(lorajit_sched *s);
/* Queues a copy of r (any thread); *id gets its number (from 1). Bad requests
 * (empty prompt, ids outside the vocabulary, positions over max_seq_len, too many
 * adapters, bad sampling, stop strings without a tokenizer, prompt_top_n out of
 * range) fail here. */
LORAJIT_API lorajit_status lorajit_sched_submit(lorajit_sched *s, const lorajit_sched_request *r, int64_t *id);
/* Cancels request id (any thread): queued, it finishes at once; running, before
 * the next step. LORAJIT_E_NOT_FOUND when it is not queued or running. */
LORAJIT_API lorajit_status lorajit_sched_cancel(lorajit_sched *s, int64_t id);
/* One step (one thread drives): admits, runs, samples, finishes. *busy (may be
 * NULL) gets the requests queued or running after it. An error of a request
 * finishes that request; the call itself fails only on misuse (a second driving
 * thread) or when memory runs out. */
LORAJIT_API lorajit_status lorajit_sched_step(lorajit_sched *s, int *busy);
/* Steps until nothing is queued or running. */
LORAJIT_API lorajit_status lorajit_sched_run_until_idle(lorajit_sched *s);
/* Takes a finished request's result (any thread): LORAJIT_E_NOT_FOUND while it is
 * not finished (or was taken). The caller owns out->tokens and out->token_ms. */
LORAJIT_API lorajit_status lorajit_sched_take(lorajit_sched *s, int64_t id, lorajit_sched_result *out);
/* Log-softmax of one logits row [vocab] (borrowed for the call): *lp = the log-
 * probability of id, top_id / top_lp[0..top_n) the top_n most likely ids and theirs,
 * most likely first (ties: the lower id). top_n 0..LORAJIT_MAX_TOP_LOGPROBS; top_id
 * and top_lp caller-owned [top_n] (may be NULL when top_n is 0). LORAJIT_E_ARG on a
 * bad argument (nothing written). Pure: no engine. */
#define LORAJIT_MAX_TOP_LOGPROBS 20
LORAJIT_API lorajit_status lorajit_logprobs(const float *logits, int vocab, int32_t id, int top_n, float *lp,
                                            int32_t *top_id, float *top_lp);
/* Static text of a finish reason ("eos", "length", "stop", "cancelled", "error", "none"). */
LORAJIT_API const char *lorajit_finish_str(lorajit_finish f);
/* Message of the calling thread's last failed call on s. Borrowed until its next call. */
LORAJIT_API const char *lorajit_sched_errmsg(const lorajit_sched *s);


#endif /* LORAJIT_API_SERVING_H */
