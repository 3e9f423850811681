/* backend.h — what the HTTP layer of `lorajit serve` asks of the engine that runs
 * its requests, and nothing more: admit a request (or refuse it: queue full), run
 * it with a per-token callback that can stop it (in one call, or pulled step by step
 * from the caller's own thread: start, next, finish), read the queue's state.
 *
 * The backend (backend_sched.c) runs requests on the continuous-batching scheduler
 * (lorajit_sched): one driver thread steps it, so concurrent requests share decode
 * steps; at most `slots` run at once, the others wait in a FIFO of at most
 * `max_waiting`. Nothing else in server/ knows how a request is run.
 * Uses lorajit.h only (lorajit_sampling, lorajit_status, the scheduler). */
#ifndef LORAJIT_SERVER_BACKEND_H
#define LORAJIT_SERVER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lorajit.h"

typedef struct srv_backend srv_backend;
typedef struct srv_job srv_job;

/* Why a request ended. */
typedef enum srv_finish {
    SRV_FINISH_LENGTH,  /* max_tokens generated */
    SRV_FINISH_EOS,     /* an end-of-sequence id was sampled */
    SRV_FINISH_STOPPED, /* on_token returned non-zero (a stop string, a client gone) */
    SRV_FINISH_ERROR    /* the engine refused or failed: status and message say why */
} srv_finish;

/* Called on the thread in srv_backend_run (or _next) once, before the first srv_token_fn, with
 * the prompt's log-probabilities (srv_gen_params.prompt_top_n >= 0): n = n_prompt - 1
 * entries, lp[k] that of prompt id k + 1 given those before it, top_id / top_lp[k *
 * top_n ..] the top_n most likely ids there (lorajit_sched_prompt_fn). Arrays borrowed
 * for the call. Not called when the request ended before its prompt was read. */
typedef void (*srv_prompt_fn)(void *user, int n, const float *lp, const int32_t *top_id, const float *top_lp,
                              int top_n);

/* One generation. prompt and adapter are borrowed for srv_backend_run / _start. */
typedef struct srv_gen_params {
    const int32_t *prompt;       /* [n_prompt] */
    int n_prompt;
    const char *adapter;         /* "" = the base model, else one adapter's name */
    int max_tokens;              /* >= 1 */
    lorajit_sampling sampling;   /* eos ids included */
    int prompt_top_n;            /* -1: no prompt logprobs; else computed by the scheduler with
                                    this many top ids (0..20) and handed to on_prompt */
    srv_prompt_fn on_prompt;     /* with prompt_top_n >= 0; its user is srv_backend_run's / _next's */
} srv_gen_params;

typedef struct srv_gen_result {
    srv_finish finish;
    int n_out;                   /* tokens handed to on_token (an EOS included) */
    double queue_ms;             /* admitted -> started */
    lorajit_status status;       /* LORAJIT_OK unless finish == SRV_FINISH_ERROR */
    char message[512];           /* the engine's message when it failed */
} srv_gen_result;

/* Called on the thread in srv_backend_run (or _next) for each token as it is generated;
 * non-zero stops the request after this token (no further step for it; tokens the
 * scheduler made meanwhile are dropped). */
typedef int (*srv_token_fn)(void *user, int32_t token);

/* A backend over e (borrowed; must outlive it) with its scheduler and driver thread:
 * at most slots requests run at once (1..lorajit_max_batch(e)), at most max_waiting
 * wait. With slots < max_batch the highest sequence is kept for srv_backend_logprobs.
 * Caller owns the result; free with srv_backend_free(). NULL when memory ran out or
 * the scheduler or its thread could not start. */
srv_backend *srv_backend_new(lorajit_engine *e, int slots, int max_waiting);
/* Stops the driver thread and frees b; every job must have been run or dropped.
 * NULL does nothing. */
void srv_backend_free(srv_backend *b);

/* Admits a request for adapter ("" base; copied) into the queue. NULL when the
 * queue is full (HTTP 429) or memory ran out. The job must then go to exactly one of
 * srv_backend_run, srv_backend_start or srv_backend_drop. */
srv_job *srv_backend_admit(srv_backend *b, const char *adapter);
/* Submits the job's generation (p, borrowed for the call) to the scheduler, calls
 * on_token for each token as the driver thread makes it, fills *res, and frees the
 * job. Blocks the calling thread until the request ends. */
void srv_backend_run(srv_backend *b, srv_job *job, const srv_gen_params *p, srv_token_fn on_token, void *user,
                     srv_gen_result *res);
/* srv_backend_run in pieces, for a caller that pulls tokens on its own thread: start,
 * then next until it returns 0, then finish. Submits the job (p borrowed for the call;
 * its on_prompt kept). 0, or -1 when that failed: res is filled (SRV_FINISH_ERROR) and
 * the job is freed. */
int srv_backend_start(srv_backend *b, srv_job *job, const srv_gen_params *p, srv_gen_result *res);
/* Blocks until the started job has something new, then hands the prompt's logprobs
 * (once, first) and every token queued since the last call to on_token on the calling
 * thread, no lock held (non-zero stops the job as in srv_backend_run). The driver wakes
 * the job's thread once per step. 1 while the job may make more; 0 once it ended and
 * everything was handed on. */
int srv_backend_next(srv_backend *b, srv_job *job, srv_token_fn on_token, void *user);
/* After srv_backend_next returned 0: fills res and frees the job. */
void srv_backend_finish(srv_backend *b, srv_job *job, srv_gen_result *res);
/* Stops a started job (a client gone): it leaves the scheduler before its next step and
 * srv_backend_next hands nothing more on; keep calling that until it returns 0. */
void srv_backend_cancel(srv_backend *b, srv_job *job);
/* Frees a job that will not run (the request failed before generation). NULL does nothing. */
void srv_backend_drop(srv_backend *b, srv_job *job);

/* Log-probabilities of a generation, computed again by prefilling ids[0..n_ids) (the
 * prompt, then the generated ids) in a sequence the backend keeps for this (the
 * highest; srv_backend_new's slots must leave it free), under adapter ("" base). For
 * generated id k in [from, n_ids - n_prompt) (ids[n_prompt + k]): lp[k - from] its
 * log-probability given the ids before it, top_id / top_lp[(k - from) * top_n ..] the
 * top_n most likely ids and theirs (top_n 0..20). Rows with logits run in calls of at
 * most 8 (the row loop), so the figures do not depend on from or on earlier calls.
 * key: 0, or a number the caller keeps for calls that extend the same ids (a stream,
 * from = the ids it already has): when the last call had the same key and the sequence
 * still holds ids[0..n_prompt - 1 + from), only the new rows run; otherwise (another
 * call used the sequence meanwhile) it starts over. All arrays caller-owned. One call
 * at a time (a lock). LORAJIT_E_UNSUPPORTED when the backend keeps no sequence for it;
 * msg[cap] says why on failure. */
lorajit_status srv_backend_logprobs(srv_backend *b, uint64_t key, const int32_t *ids, int n_ids, int n_prompt, int from,
                                    const char *adapter, int top_n, float *lp, int32_t *top_id, float *top_lp, char *msg,
                                    size_t cap);

/* The queue now: requests running and waiting, and the distinct adapters of each
 * ("" = base not listed) comma-separated into running[cap] / waiting[cap]. */
typedef struct srv_backend_load {
    int running, waiting, slots;
    double kv_usage; /* blocks of the engine's paged KV cache in use ÷ blocks, 0..1 */
    uint64_t steps, step_tokens; /* scheduler steps run, tokens sampled by them (÷: the mean batch) */
} srv_backend_load;
void srv_backend_state(srv_backend *b, srv_backend_load *load, char *running, char *waiting, int cap);

#endif /* LORAJIT_SERVER_BACKEND_H */
