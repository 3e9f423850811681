/* backend_sched.c — the backend of backend.h on the continuous-batching scheduler
 * (lorajit_sched, include/lorajit_serving.h): concurrent requests share decode steps.
 *
 * One driver thread owns the scheduler: it loops lorajit_sched_step while any job is
 * submitted and not finished, and sleeps on b->work otherwise (never spins). A job is
 * submitted by srv_backend_start; the scheduler's on_token (driver thread) appends each
 * token to the job's queue and marks the job fresh; after the step the driver wakes the
 * first fresh job's thread, which wakes the next one's (wake_next), so each is woken
 * once a step, not mid-step, and the driver's core is left to it. That thread, in
 * srv_backend_next, takes every token queued so far in one lock round-trip and hands
 * them to its on_token without a lock held, so an SSE stream writes as tokens arrive.
 * When on_token returns non-zero the job is cancelled (lorajit_sched_cancel: no part in
 * the next step) and the tokens still queued are dropped. The prompt's logprobs (echo)
 * come the same way, copied by on_prompt and handed on before the first token. The job
 * is freed (srv_backend_finish) only after the driver took its result
 * (lorajit_sched_take), so no callback can reach a freed job.
 * Running vs waiting: the scheduler's admit hook (driver thread, asked when the head
 * of its FIFO queue starts) marks the lowest-id submitted job running; requests that
 * ended before they started (cancelled, their adapter failed) are taken first.
 * Logprobs: the scheduler runs at most `slots` requests on the lowest free sequences,
 * so with slots < max_batch the highest stays free for srv_backend_logprobs.
 * Locking: b->mu guards the job list, the counts and each job's queue and state;
 * order b->mu, then the scheduler's own lock (submit, cancel, take under b->mu). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

typedef enum job_state { JOB_ADMITTED, JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

struct srv_job {
    srv_backend *b;
    char *adapter;              /* owned */
    job_state state;
    int64_t id;                 /* the scheduler's, once JOB_QUEUED */
    struct timespec admitted, started;
    pthread_cond_t more;        /* tokens were queued or the job is done (signalled after a step) */
    int fresh;                  /* something came that the job's thread was not woken for yet */
    int waiting;                /* the job's thread waits on more */
    int32_t *tok;               /* [cap] tokens from the driver; n_tok queued, n_read taken by the job's thread */
    int cap, n_tok, n_read;
    int n_handed;               /* tokens handed to on_token (its thread only) */
    int stop;                   /* the connection's on_token said stop: drop the rest */
    srv_prompt_fn on_prompt;    /* srv_gen_params.on_prompt */
    lorajit_sched_result res;   /* once JOB_DONE; tokens and token_ms freed at take */
    float *plp;                 /* owned: the prompt's logprobs from the driver, NULL until they came:
                                   [n_plp] lp, then [n_plp, plp_top] top lp */
    int32_t *plp_top_id;        /* owned: [n_plp, plp_top] */
    int n_plp, plp_top;
    int plp_handed;             /* given to srv_prompt_fn */
    srv_job *next;              /* the backend's list, in admission order */
};

struct srv_backend {
    lorajit_engine *e;          /* borrowed */
    lorajit_sched *sched;       /* owned; driven by the driver thread only */
    int slots, max_waiting;
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a job was submitted, or quit */
    pthread_t driver;
    int quit, n_live;           /* n_live: jobs submitted and not yet done */
    srv_job *jobs;              /* every admitted job not yet freed */
    int running, waiting;
    uint64_t steps, step_tokens; /* lorajit_sched_step calls that ran, tokens they sampled */
    int lp_seq;                 /* the sequence kept for srv_backend_logprobs, or -1 */
    uint64_t lp_key;            /* the key of the call that left lp_seq as it is (0: none) */
    pthread_mutex_t lp_mu;      /* one logprobs call at a time; guards lp_key */
};

/* Milliseconds from t0 to t1. */
static double ms_between(const struct timespec *t0, const struct timespec *t1) {
    return (t1->tv_sec - t0->tv_sec) * 1e3 + (t1->tv_nsec - t0->tv_nsec) / 1e6;
}

/* j finished with result r (b->mu held): counts, state; its thread is woken after the step. */
static void job_done(srv_backend *b, srv_job *j, const lorajit_sched_result *r) {
    if (j->state == JOB_RUNNING) b->running--;
    else b->waiting--;
    if (j->state != JOB_RUNNING) clock_gettime(CLOCK_MONOTONIC, &j->started); /* never started: queued to the end */
    j->res = *r;
    lorajit_free(j->res.tokens);
    lorajit_free(j->res.token_ms);
    j->res.tokens = NULL, j->res.token_ms = NULL;
    j->state = JOB_DONE;
    j->fresh = 1;
    b->n_live--;
}

/* Wakes the thread of the first fresh job that waits (b->mu held); fresh jobs before it
 * whose threads are busy will find their tokens themselves. That thread calls this
 * again once it runs, so a step's jobs are woken one after the other, each by the one
 * before: the driver wakes one thread a step, and the rest are woken off its core. */
static void wake_next(srv_backend *b) {
    for (srv_job *j = b->jobs; j; j = j->next) {
        if (!j->fresh) continue;
        j->fresh = 0;
        if (j->waiting) {
            pthread_cond_signal(&j->more);
            return;
        }
    }
}

/* After a step (b->mu held): takes the result of every submitted job that finished,
 * and starts waking the threads of the jobs that got something (tokens, logprobs,
 * their end). */
static void after_step(srv_backend *b) {
    for (srv_job *j = b->jobs; j; j = j->next) {
        lorajit_sched_result r;
        if ((j->state == JOB_QUEUED || j->state == JOB_RUNNING) && lorajit_sched_take(b->sched, j->id, &r) == LORAJIT_OK)
            job_done(b, j, &r);
    }
    wake_next(b);
}

/* The admit hook (driver thread): the head of the scheduler's queue starts now. It
 * is the queued job of the lowest id that has not finished meanwhile. Always yes. */
static int on_admit(void *user, int positions) {
    srv_backend *b = user;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        srv_job *head = NULL;
        for (srv_job *j = b->jobs; j; j = j->next)
            if (j->state == JOB_QUEUED && (!head || j->id < head->id)) head = j;
        if (!head) break;
        lorajit_sched_result r;
        if (lorajit_sched_take(b->sched, head->id, &r) == LORAJIT_OK) { /* ended before it started */
            job_done(b, head, &r);
            continue;
        }
        head->state = JOB_RUNNING;
        clock_gettime(CLOCK_MONOTONIC, &head->started);
        b->waiting--;
        b->running++;
        break;
    }
    pthread_mutex_unlock(&b->mu);
    return 1;
}

/* The scheduler's on_token (driver thread): queues the token for j's thread (woken
 * after the step). */
static int on_sched_token(void *user, int64_t id, int32_t token) {
    srv_job *j = user;
    pthread_mutex_lock(&j->b->mu);
    if (!j->stop && j->n_tok < j->cap) j->tok[j->n_tok++] = token, j->fresh = 1;
    j->b->step_tokens++;
    int stop = j->stop;
    pthread_mutex_unlock(&j->b->mu);
    return stop;
}

/* The scheduler's on_prompt (driver thread): keeps a copy of the prompt's logprobs
 * for j's thread (dropped when memory runs out: the request is then cancelled). */
static int on_sched_prompt(void *user, int64_t id, int n, const float *lp, const int32_t *top_id, const float *top_lp,
                           int top_n) {
    srv_job *j = user;
    size_t n_top = (size_t)n * (size_t)top_n;
    float *all = malloc(sizeof *all * ((size_t)n + n_top + 1));
    int32_t *ids = malloc(sizeof *ids * (n_top + 1));
    if (!all || !ids) {
        free(all), free(ids);
        return 1;
    }
    memcpy(all, lp, sizeof *all * (size_t)n);
    memcpy(all + n, top_lp, sizeof *all * n_top);
    memcpy(ids, top_id, sizeof *ids * n_top);
    pthread_mutex_lock(&j->b->mu);
    j->plp = all, j->plp_top_id = ids, j->n_plp = n, j->plp_top = top_n;
    j->fresh = 1;
    pthread_mutex_unlock(&j->b->mu);
    return 0;
}

/* The driver thread: steps while a job is live, sleeps on b->work otherwise. */
static void *driver_main(void *arg) {
    srv_backend *b = arg;
    int failing = 0;
    pthread_mutex_lock(&b->mu);
    while (!b->quit) {
        if (!b->n_live) {
            pthread_cond_wait(&b->work, &b->mu);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        lorajit_status st = lorajit_sched_step(b->sched, NULL);
        pthread_mutex_lock(&b->mu);
        b->steps += !st;
        after_step(b);
        if (st && b->n_live && !b->quit) { /* none could start (no free sequence): wait, do not spin */
            if (!failing) fprintf(stderr, "lorajit serve: %s\n", lorajit_sched_errmsg(b->sched));
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 20 * 1000000L;
            if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&b->work, &b->mu, &t);
        }
        failing = st != LORAJIT_OK; /* one line a run of failed steps */
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

srv_backend *srv_backend_new(lorajit_engine *e, int slots, int max_waiting) {
    srv_backend *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    int max = lorajit_max_batch(e);
    b->e = e;
    b->slots = slots < 1 ? 1 : slots > max ? max : slots;
    b->max_waiting = max_waiting < 0 ? 0 : max_waiting;
    b->lp_seq = b->slots < max ? max - 1 : -1; /* the scheduler opens the lowest free ones */
    lorajit_sched_options o = {.max_running = b->slots, .admit = on_admit, .admit_user = b};
    if (lorajit_sched_open(e, &o, &b->sched)) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->lp_mu, NULL);
    pthread_cond_init(&b->work, NULL);
    if (pthread_create(&b->driver, NULL, driver_main, b)) {
        lorajit_sched_free(b->sched);
        pthread_mutex_destroy(&b->mu);
        pthread_mutex_destroy(&b->lp_mu);
        pthread_cond_destroy(&b->work);
        free(b);
        return NULL;
    }
    return b;
}

void srv_backend_free(srv_backend *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->quit = 1;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->driver, NULL);
    lorajit_sched_free(b->sched);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->lp_mu);
    pthread_cond_destroy(&b->work);
    free(b);
}

srv_job *srv_backend_admit(srv_backend *b, const char *adapter) {
    srv_job *j = calloc(1, sizeof *j);
    if (j) j->adapter = strdup(adapter ? adapter : "");
    if (!j || !j->adapter) {
        if (j) free(j);
        return NULL;
    }
    j->b = b;
    pthread_cond_init(&j->more, NULL);
    clock_gettime(CLOCK_MONOTONIC, &j->admitted);
    pthread_mutex_lock(&b->mu);
    int full = b->running >= b->slots && b->waiting >= b->max_waiting;
    if (!full) {
        srv_job **p = &b->jobs;
        while (*p) p = &(*p)->next;
        *p = j;
        b->waiting++;
    }
    pthread_mutex_unlock(&b->mu);
    if (full) {
        pthread_cond_destroy(&j->more);
        free(j->adapter);
        free(j);
        return NULL;
    }
    return j;
}

/* Unlinks j from b's list (taking b->mu) and frees it. */
static void free_job(srv_backend *b, srv_job *j) {
    pthread_mutex_lock(&b->mu);
    for (srv_job **p = &b->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&j->more);
    free(j->tok);
    free(j->plp);
    free(j->plp_top_id);
    free(j->adapter);
    free(j);
}

void srv_backend_drop(srv_backend *b, srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&b->mu);
    b->waiting--;
    pthread_mutex_unlock(&b->mu);
    free_job(b, j);
}

/* Submits j for p (b->mu held, so ids rise in list order). A failure leaves j
 * admitted and fills res. */
static int submit(srv_backend *b, srv_job *j, const srv_gen_params *p, srv_gen_result *res) {
    const char *names[1] = {p->adapter};
    lorajit_sched_request r = {.prompt = p->prompt, .n_prompt = p->n_prompt, .adapters = names,
                               .n_adapters = p->adapter && p->adapter[0] ? 1 : 0, .max_new = p->max_tokens,
                               .sampling = &p->sampling, .on_token = on_sched_token, .user = j,
                               .prompt_logprobs = p->prompt_top_n >= 0, .prompt_top_n = p->prompt_top_n,
                               .on_prompt = on_sched_prompt};
    lorajit_status st = j->tok ? lorajit_sched_submit(b->sched, &r, &j->id) : LORAJIT_E_NOMEM;
    if (st) {
        res->status = st;
        snprintf(res->message, sizeof res->message, "%s", j->tok ? lorajit_sched_errmsg(b->sched) : "out of memory");
        return -1;
    }
    j->state = JOB_QUEUED;
    b->n_live++;
    pthread_cond_signal(&b->work);
    return 0;
}

int srv_backend_start(srv_backend *b, srv_job *j, const srv_gen_params *p, srv_gen_result *res) {
    memset(res, 0, sizeof *res);
    j->cap = p->max_tokens > 0 ? p->max_tokens : 1;
    j->tok = malloc(sizeof *j->tok * (size_t)j->cap);
    j->on_prompt = p->on_prompt;
    pthread_mutex_lock(&b->mu);
    if (submit(b, j, p, res)) {
        b->waiting--;
        pthread_mutex_unlock(&b->mu);
        res->finish = SRV_FINISH_ERROR;
        free_job(b, j);
        return -1;
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* Stops j (b->mu held): no more tokens are handed on, and it leaves the scheduler. */
static void stop_job(srv_backend *b, srv_job *j) {
    j->stop = 1;
    if (j->state != JOB_DONE) lorajit_sched_cancel(b->sched, j->id); /* not found: it just ended */
}

int srv_backend_next(srv_backend *b, srv_job *j, srv_token_fn on_token, void *user) {
    pthread_mutex_lock(&b->mu);
    int plp, from, to, done;
    for (;;) {
        plp = j->plp && !j->plp_handed && !j->stop;
        from = j->n_read, to = j->stop ? j->n_read : j->n_tok;
        done = j->state == JOB_DONE; /* then no token comes after n_tok */
        if (plp || from < to || done) break;
        j->waiting = 1;
        pthread_cond_wait(&j->more, &b->mu);
        j->waiting = 0;
    }
    wake_next(b); /* pass the wake-up on */
    j->plp_handed |= plp;
    j->n_read = to;
    pthread_mutex_unlock(&b->mu); /* tok[from..to) and the logprobs are not written again */
    if (plp && j->on_prompt) j->on_prompt(user, j->n_plp, j->plp, j->plp_top_id, j->plp + j->n_plp, j->plp_top);
    int stop = 0;
    for (int k = from; k < to && !stop; k++, j->n_handed++) stop = on_token(user, j->tok[k]);
    if (stop) {
        pthread_mutex_lock(&b->mu);
        stop_job(b, j);
        done = j->state == JOB_DONE;
        pthread_mutex_unlock(&b->mu);
    }
    return !done;
}

void srv_backend_cancel(srv_backend *b, srv_job *j) {
    pthread_mutex_lock(&b->mu);
    stop_job(b, j);
    pthread_mutex_unlock(&b->mu);
}

void srv_backend_finish(srv_backend *b, srv_job *j, srv_gen_result *res) {
    res->n_out = j->n_handed;
    res->queue_ms = ms_between(&j->admitted, &j->started);
    lorajit_finish f = j->res.finish;
    if (f == LORAJIT_FINISH_ERROR) {
        res->finish = SRV_FINISH_ERROR;
        res->status = LORAJIT_E_UNSUPPORTED; /* the scheduler's result carries a message, no status: HTTP 500 */
        snprintf(res->message, sizeof res->message, "%s", j->res.error);
    } else if (j->stop || f == LORAJIT_FINISH_CANCELLED || f == LORAJIT_FINISH_STOP) {
        res->finish = SRV_FINISH_STOPPED;
    } else {
        res->finish = f == LORAJIT_FINISH_EOS ? SRV_FINISH_EOS : SRV_FINISH_LENGTH;
    }
    free_job(b, j);
}

void srv_backend_run(srv_backend *b, srv_job *j, const srv_gen_params *p, srv_token_fn on_token, void *user,
                     srv_gen_result *res) {
    if (srv_backend_start(b, j, p, res)) return;
    while (srv_backend_next(b, j, on_token, user)) {
    }
    srv_backend_finish(b, j, res);
}

/* Appends name to the comma list list[cap] unless it is "" or there already. */
static void add_name(char *list, int cap, const char *name) {
    if (!name[0] || cap <= 0) return;
    size_t n = strlen(name), len = strlen(list);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t k = comma ? (size_t)(comma - p) : strlen(p);
        if (k == n && !memcmp(p, name, n)) return;
        p += k + (comma != NULL);
    }
    if (len + (len > 0) + n + 1 > (size_t)cap) return; /* full: the list is cut */
    if (len) list[len++] = ',';
    memcpy(list + len, name, n + 1);
}

void srv_backend_state(srv_backend *b, srv_backend_load *load, char *running, char *waiting, int cap) {
    if (cap > 0) running[0] = waiting[0] = '\0';
    pthread_mutex_lock(&b->mu);
    load->running = b->running;
    load->waiting = b->waiting;
    load->slots = b->slots;
    load->steps = b->steps;
    load->step_tokens = b->step_tokens;
    int64_t free_blocks = 0, total = 0;
    load->kv_usage = lorajit_kv_blocks(b->e, &free_blocks, &total, NULL, NULL) == LORAJIT_OK && total > 0
                         ? (double)(total - free_blocks) / (double)total
                         : 0.0;
    for (const srv_job *j = b->jobs; j; j = j->next)
        if (j->state != JOB_DONE) add_name(j->state == JOB_RUNNING ? running : waiting, cap, j->adapter);
    pthread_mutex_unlock(&b->mu);
}

lorajit_status srv_backend_logprobs(srv_backend *b, uint64_t key, const int32_t *ids, int n_ids, int n_prompt, int from,
                                    const char *adapter, int top_n, float *lp, int32_t *top_id, float *top_lp, char *msg,
                                    size_t cap) {
    enum { CHUNK = 8 }; /* lorajit_step's small rows: the row loop, a row's logits whatever rows share the call */
    if (b->lp_seq < 0) {
        snprintf(msg, cap, "logprobs: this server keeps no sequence for them (start it with --max-logprobs N "
                 "and --max-batch 2 or more)");
        return LORAJIT_E_UNSUPPORTED;
    }
    int vocab = lorajit_vocab_size(b->e), seq = b->lp_seq;
    float *logits = malloc(sizeof *logits * (size_t)vocab * CHUNK);
    if (!logits) return snprintf(msg, cap, "out of memory"), LORAJIT_E_NOMEM;
    pthread_mutex_lock(&b->lp_mu);
    int start = n_prompt - 1 + from; /* positions held before the first row whose logits are wanted */
    lorajit_status st = LORAJIT_OK;
    int bad_top = 0;
    if (!key || key != b->lp_key || lorajit_seq_pos(b->e, seq) != start) { /* start over */
        const char *names[1] = {adapter};
        st = lorajit_seq_set_adapter(b->e, seq, names, NULL, adapter[0] ? 1 : 0);
        if (!st) st = lorajit_seq_reset(b->e, seq);
        if (!st && n_prompt > 1) st = lorajit_seq_prefill(b->e, seq, ids, n_prompt - 1, NULL);
        for (int p = n_prompt - 1; !st && p < start; p += CHUNK) /* as the rows with logits were run */
            st = lorajit_seq_prefill(b->e, seq, ids + p, start - p < CHUNK ? start - p : CHUNK, NULL);
    }
    b->lp_key = 0;
    for (int p = start; !st && p < n_ids - 1; p += CHUNK) { /* row j predicts ids[p + j + 1] */
        int n = n_ids - 1 - p < CHUNK ? n_ids - 1 - p : CHUNK;
        if ((st = lorajit_seq_prefill(b->e, seq, ids + p, n, logits))) break;
        for (int j = 0; j < n; j++) {
            int k = p + j + 1 - n_prompt - from;
            if (!st && (st = lorajit_logprobs(logits + (size_t)j * vocab, vocab, ids[p + j + 1], top_n, &lp[k],
                                              top_id + (size_t)k * top_n, top_lp + (size_t)k * top_n)))
                snprintf(msg, cap, "logprobs: %d top ids asked, the vocabulary has %d", top_n, vocab), bad_top = 1;
        }
    }
    if (st && !bad_top) snprintf(msg, cap, "logprobs: %s", lorajit_errmsg(b->e));
    else b->lp_key = key;
    pthread_mutex_unlock(&b->lp_mu);
    free(logits);
    return st;
}
