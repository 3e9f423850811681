/* backend_generate.c — the backend of backend.h over today's public API: each
 * request is one lorajit_generate call with one request, run in the thread that
 * calls srv_backend_run (the HTTP connection's), at most `slots` at once so that a
 * free sequence always exists (lorajit_generate claims the lowest free one). Jobs
 * wait in admission order (FIFO among those whose thread is ready to run them).
 * Stopping: on_token's non-zero sets lorajit_request.stop, which ends the request
 * after that token. Batching: none across requests (each call is a batch of one);
 * concurrent calls share the engine's compute pool and adapter slots. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

typedef enum job_state { JOB_ADMITTED, JOB_READY, JOB_RUNNING } job_state;

struct srv_job {
    char *adapter;              /* owned */
    job_state state;
    struct timespec admitted;
    srv_job *next;              /* the backend's list, in admission order */
};

struct srv_backend {
    lorajit_engine *e;          /* borrowed */
    int slots, max_waiting;
    pthread_mutex_t mu;
    pthread_cond_t changed;     /* a job started or ended */
    srv_job *jobs;              /* every admitted job not yet ended */
    int running, waiting;
    int lp_seq;                 /* the sequence kept for srv_backend_logprobs, or -1 */
    pthread_mutex_t lp_mu;      /* one logprobs call at a time */
};

static double ms_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

srv_backend *srv_backend_new(lorajit_engine *e, int slots, int max_waiting) {
    srv_backend *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    int max = lorajit_max_batch(e);
    b->e = e;
    b->slots = slots < 1 ? 1 : slots > max ? max : slots;
    b->max_waiting = max_waiting < 0 ? 0 : max_waiting;
    b->lp_seq = b->slots < max ? max - 1 : -1; /* generate claims the lowest free ones */
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->lp_mu, NULL);
    pthread_cond_init(&b->changed, NULL);
    return b;
}

void srv_backend_free(srv_backend *b) {
    if (!b) return;
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->lp_mu);
    pthread_cond_destroy(&b->changed);
    free(b);
}

srv_job *srv_backend_admit(srv_backend *b, const char *adapter) {
    srv_job *j = calloc(1, sizeof *j);
    if (j) j->adapter = strdup(adapter ? adapter : "");
    if (!j || !j->adapter) {
        if (j) free(j);
        return NULL;
    }
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
        free(j->adapter);
        free(j);
        return NULL;
    }
    return j;
}

/* Unlinks j from b's list (b->mu held). */
static void unlink_job(srv_backend *b, srv_job *j) {
    for (srv_job **p = &b->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            return;
        }
}

void srv_backend_drop(srv_backend *b, srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&b->mu);
    unlink_job(b, j);
    b->waiting--;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->mu);
    free(j->adapter);
    free(j);
}

/* j may start: a slot is free and no ready job was admitted before it (b->mu held). */
static int may_start(const srv_backend *b, const srv_job *j) {
    if (b->running >= b->slots) return 0;
    for (const srv_job *k = b->jobs; k != j; k = k->next)
        if (k->state == JOB_READY) return 0;
    return 1;
}

/* lorajit_generate's on_token: forwards to the caller's, whose non-zero stops. */
typedef struct run_ctx {
    lorajit_request *req;
    srv_token_fn on_token;
    void *user;
    int stopped;
} run_ctx;

static void run_token(void *user, int request, int32_t token) {
    run_ctx *c = user;
    if (c->on_token(c->user, token)) {
        c->req->stop = 1;
        c->stopped = 1;
    }
}

static int is_eos(const lorajit_sampling *s, int32_t t) {
    if (t == s->eos_id) return 1;
    for (int k = 0; k < s->n_eos_more; k++)
        if (t == s->eos_more[k]) return 1;
    return 0;
}

void srv_backend_run(srv_backend *b, srv_job *j, const srv_gen_params *p, srv_token_fn on_token, void *user,
                     srv_gen_result *res) {
    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&b->mu);
    j->state = JOB_READY;
    while (!may_start(b, j)) pthread_cond_wait(&b->changed, &b->mu);
    j->state = JOB_RUNNING;
    b->waiting--;
    b->running++;
    pthread_mutex_unlock(&b->mu);
    res->queue_ms = ms_since(&j->admitted);

    int32_t *out = malloc(sizeof *out * (size_t)(p->max_tokens > 0 ? p->max_tokens : 1));
    lorajit_request req = {.prompt = p->prompt, .n_prompt = p->n_prompt, .adapter = p->adapter,
                           .max_new = p->max_tokens, .out = out};
    run_ctx c = {.req = &req, .on_token = on_token, .user = user};
    if (!out) {
        res->status = LORAJIT_E_NOMEM;
        strcpy(res->message, "out of memory");
    } else {
        res->status = lorajit_generate(b->e, &req, 1, &p->sampling, run_token, &c);
        if (res->status) {
            const char *m = lorajit_errmsg(b->e);
            size_t n = strlen(m) < sizeof res->message - 1 ? strlen(m) : sizeof res->message - 1;
            memcpy(res->message, m, n);
            res->message[n] = '\0';
        }
    }
    res->n_out = req.n_out;
    if (res->status) res->finish = SRV_FINISH_ERROR;
    else if (c.stopped) res->finish = SRV_FINISH_STOPPED;
    else if (req.n_out > 0 && is_eos(&p->sampling, out[req.n_out - 1])) res->finish = SRV_FINISH_EOS;
    else res->finish = SRV_FINISH_LENGTH;
    free(out);

    pthread_mutex_lock(&b->mu);
    unlink_job(b, j);
    b->running--;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->mu);
    free(j->adapter);
    free(j);
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
    int64_t free_blocks = 0, total = 0;
    load->kv_usage = lorajit_kv_blocks(b->e, &free_blocks, &total, NULL, NULL) == LORAJIT_OK && total > 0
                         ? (double)(total - free_blocks) / (double)total
                         : 0.0;
    for (const srv_job *j = b->jobs; j; j = j->next)
        add_name(j->state == JOB_RUNNING ? running : waiting, cap, j->adapter);
    pthread_mutex_unlock(&b->mu);
}

/* lp of row[id] and the top_n ids of row[0..vocab) by log-probability. */
static void row_logprobs(const float *row, int vocab, int32_t id, int top_n, float *lp, int32_t *top_id,
                         float *top_lp) {
    float max = row[0];
    for (int v = 1; v < vocab; v++) max = row[v] > max ? row[v] : max;
    double sum = 0;
    for (int v = 0; v < vocab; v++) sum += exp((double)row[v] - max);
    double lse = max + log(sum);
    *lp = (float)(row[id] - lse);
    for (int k = 0; k < top_n; k++) top_id[k] = -1;
    for (int v = 0; v < vocab; v++) { /* insertion into the top_n so far (ties: the lower id first) */
        int k = top_n;
        while (k > 0 && (top_id[k - 1] < 0 || row[v] > row[top_id[k - 1]])) k--;
        if (k == top_n) continue;
        memmove(top_id + k + 1, top_id + k, sizeof *top_id * (size_t)(top_n - k - 1));
        top_id[k] = v;
    }
    for (int k = 0; k < top_n; k++) top_lp[k] = (float)(row[top_id[k]] - lse);
}

lorajit_status srv_backend_logprobs(srv_backend *b, const int32_t *ids, int n_ids, int n_prompt, const char *adapter,
                                    int top_n, float *lp, int32_t *top_id, float *top_lp, char *msg, size_t cap) {
    enum { CHUNK = 32 };
    if (b->lp_seq < 0) {
        snprintf(msg, cap, "logprobs: this server keeps no sequence for them (start it with --max-logprobs N "
                 "and --max-batch 2 or more)");
        return LORAJIT_E_UNSUPPORTED;
    }
    int vocab = lorajit_vocab_size(b->e), seq = b->lp_seq;
    float *logits = malloc(sizeof *logits * (size_t)vocab * CHUNK);
    if (!logits) return snprintf(msg, cap, "out of memory"), LORAJIT_E_NOMEM;
    pthread_mutex_lock(&b->lp_mu);
    const char *names[1] = {adapter};
    lorajit_status st = lorajit_seq_set_adapter(b->e, seq, names, NULL, adapter[0] ? 1 : 0);
    if (!st) st = lorajit_seq_reset(b->e, seq);
    if (!st && n_prompt > 1) st = lorajit_seq_prefill(b->e, seq, ids, n_prompt - 1, NULL);
    for (int p = n_prompt - 1; !st && p < n_ids - 1; p += CHUNK) { /* row j predicts ids[p + j + 1] */
        int n = n_ids - 1 - p < CHUNK ? n_ids - 1 - p : CHUNK;
        if ((st = lorajit_seq_prefill(b->e, seq, ids + p, n, logits))) break;
        for (int j = 0; j < n; j++) {
            int k = p + j + 1 - n_prompt;
            row_logprobs(logits + (size_t)j * vocab, vocab, ids[p + j + 1], top_n, &lp[k], top_id + (size_t)k * top_n,
                         top_lp + (size_t)k * top_n);
        }
    }
    if (st) snprintf(msg, cap, "logprobs: %s", lorajit_errmsg(b->e));
    pthread_mutex_unlock(&b->lp_mu);
    free(logits);
    return st;
}
