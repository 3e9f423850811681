/* scheduler.c — continuous batching over sequence handles (issue 14).
 *
 * Requests (sched_req.c) wait in a queue; between steps the driving thread admits
 * them in order while a sequence is free, the paged KV cache has free blocks for
 * prompt + max_new positions of every running request, the admit hook agrees and
 * their adapters are resident (pinned until the request finishes). A request whose
 * adapters are not resident is handed to the loader thread (started lazily, joined
 * by lorajit_sched_free), which reads, parses and commits them (lj_engine_resolve)
 * while steps go on; it stays queued, later requests may pass it (FIFO is not strict
 * across loads), and is admitted at the first step after its load. Queue, never
 * preempt: an admitted request holds its sequence and blocks to the end. Each
 * step (lorajit_step) has a decode row for every request past its prompt, then
 * prefill chunks of the others in admission order within the token budget (at
 * least min_chunk prefill tokens; a request with prompt_logprobs takes every row's
 * logits, at most LJ_SCHED_PLP_ROWS rows a step). When a step fails, its rows are
 * run one at a time so that only the requests that fail alone finish with the error.
 * Locking: s->lock guards the queue, the finished list, running[] and the ids;
 * only the driving thread changes a running request (cancel sets its flag). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

struct lorajit_sched {
    lorajit_engine *e;             /* borrowed */
    lorajit_sched_options o;       /* token_budget, min_chunk, max_running filled in */
    pthread_mutex_t lock;
    lj_sched_req *queue, *queue_tail; /* submitted, not admitted; FIFO */
    lj_sched_req *done;            /* finished, not taken */
    lj_sched_req *running[LJ_MAX_SLOTS]; /* [n_running] in admission order */
    int n_running, n_queued;
    int64_t next_id;
    atomic_bool driving;           /* a thread is in lorajit_sched_step */
    lj_sample_work *work;          /* the driving thread's */
    float *logits;                 /* [max_running, vocab] one row per step row */
    int vocab;
    pthread_cond_t load_cv;        /* the loader waits here for a request to load, or stop */
    pthread_cond_t loaded_cv;      /* the driver waits here when only loads are left */
    pthread_t loader;
    bool loader_on, loader_stop;   /* under lock */
    int n_loading;                 /* queued requests LJ_LOAD_WAITING or _RUNNING (under lock) */
    int64_t n_loaded;              /* loads finished (under lock) */
    int load_delay_ms;             /* LORAJIT_TEST_LOAD_DELAY_MS: tests slow each load down */
};

static _Thread_local lj_err sched_err; /* the calling thread's last message */

const char *lorajit_sched_errmsg(const lorajit_sched *s) { return sched_err.msg; }

const char *lorajit_finish_str(lorajit_finish f) {
    switch (f) {
    case LORAJIT_FINISH_NONE: return "none";
    case LORAJIT_FINISH_EOS: return "eos";
    case LORAJIT_FINISH_LENGTH: return "length";
    case LORAJIT_FINISH_STOP: return "stop";
    case LORAJIT_FINISH_CANCELLED: return "cancelled";
    case LORAJIT_FINISH_ERROR: return "error";
    }
    return "unknown";
}

lorajit_status lorajit_sched_open(lorajit_engine *e, const lorajit_sched_options *opts, lorajit_sched **out) {
    lj_err *err = &sched_err;
    lj_err_clear(err);
    if (!out) return lj_fail(err, LORAJIT_E_ARG, "sched_open: out is NULL");
    *out = NULL;
    if (!e || lorajit_vocab_size(e) == 0)
        return lj_fail(err, LORAJIT_E_ARG, "sched_open: the engine is NULL or did not start");
    lorajit_sched_options o = opts ? *opts : (lorajit_sched_options){0};
    int max = e->L->schema.max_batch;
    if (o.token_budget < 0 || o.min_chunk < 0 || o.max_running < 0 || o.max_running > max)
        return lj_fail(err, LORAJIT_E_ARG, "sched_open: token_budget %d, min_chunk %d, max_running %d: must be >= 0 "
                       "(max_running <= max_batch %d)", o.token_budget, o.min_chunk, o.max_running, max);
    if (!o.token_budget) o.token_budget = (int)e->L->schema.max_tokens;
    if (!o.min_chunk) o.min_chunk = 16;
    if (!o.max_running) o.max_running = max;
    lorajit_sched *s = lj_calloc(1, sizeof *s);
    if (!s) return lj_fail(err, LORAJIT_E_NOMEM, "sched_open: out of memory");
    s->e = e, s->o = o, s->vocab = lorajit_vocab_size(e), s->next_id = 1;
    s->work = lj_sample_work_new(s->vocab);
    s->logits = lj_malloc(sizeof *s->logits * (size_t)s->vocab * (size_t)o.max_running);
    const char *delay = getenv("LORAJIT_TEST_LOAD_DELAY_MS");
    s->load_delay_ms = delay ? atoi(delay) : 0;
    if (!s->work || !s->logits || pthread_mutex_init(&s->lock, NULL)) {
        lj_sample_work_free(s->work);
        free(s->logits);
        free(s);
        return lj_fail(err, LORAJIT_E_NOMEM, "sched_open: out of memory");
    }
    pthread_cond_init(&s->load_cv, NULL);
    pthread_cond_init(&s->loaded_cv, NULL);
    *out = s;
    return LORAJIT_OK;
}

/* The loader thread: loads the first LJ_LOAD_WAITING request's adapters (pinned on
 * success) with no scheduler lock held, until lorajit_sched_free stops it. A request
 * being loaded stays in the queue (cancel only flags it), so q stays valid. */
static void *loader_main(void *arg) {
    lorajit_sched *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        lj_sched_req *q = s->queue;
        while (q && q->load != LJ_LOAD_WAITING) q = q->next;
        if (!q && s->loader_stop) break;
        if (!q) {
            pthread_cond_wait(&s->load_cv, &s->lock);
            continue;
        }
        q->load = LJ_LOAD_RUNNING;
        pthread_mutex_unlock(&s->lock);
        if (s->load_delay_ms > 0) {
            struct timespec ts = {s->load_delay_ms / 1000, (long)(s->load_delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        char what[64];
        snprintf(what, sizeof what, "request %lld", (long long)q->id);
        lj_err why = {0};
        q->n_pinned = q->n_adapters;
        for (int i = 0; i < q->n_adapters; i++) q->pinned[i] = q->names[i];
        lorajit_status st = lj_engine_resolve(s->e, q->pinned, &q->n_pinned, what, &why);
        pthread_mutex_lock(&s->lock);
        q->load_st = st;
        if (st) snprintf(q->error, sizeof q->error, "%.*s", (int)sizeof q->error - 1, why.msg);
        q->load = LJ_LOAD_DONE;
        s->n_loading--;
        s->n_loaded++;
        pthread_cond_broadcast(&s->loaded_cv);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Hands q (queued, LJ_LOAD_NONE) to the loader, starting it the first time (under
 * the lock). False when no thread can be started: q is then resolved in place. */
static bool send_to_loader(lorajit_sched *s, lj_sched_req *q) {
    if (!s->loader_on && pthread_create(&s->loader, NULL, loader_main, s) != 0) return false;
    s->loader_on = true;
    q->load = LJ_LOAD_WAITING;
    s->n_loading++;
    pthread_cond_signal(&s->load_cv);
    return true;
}

lorajit_status lorajit_sched_submit(lorajit_sched *s, const lorajit_sched_request *r, int64_t *id) {
    lj_err *err = &sched_err;
    lj_err_clear(err);
    if (!s || !id) return lj_fail(err, LORAJIT_E_ARG, "sched_submit: the scheduler or id is NULL");
    lj_sched_req *q;
    lorajit_status st = lj_sched_req_new(s->e, r, s->o.tokenizer, &q, err);
    if (st) return st;
    q->submit_ms = lj_sched_now_ms();
    pthread_mutex_lock(&s->lock);
    q->id = *id = s->next_id++;
    if (s->queue_tail) s->queue_tail->next = q;
    else s->queue = q;
    s->queue_tail = q;
    s->n_queued++;
    pthread_mutex_unlock(&s->lock);
    return LORAJIT_OK;
}

/* Puts q on the finished list (under the lock). */
static void push_done(lorajit_sched *s, lj_sched_req *q) {
    q->done_ms = lj_sched_now_ms();
    q->next = s->done;
    s->done = q;
}

lorajit_status lorajit_sched_cancel(lorajit_sched *s, int64_t id) {
    lj_err *err = &sched_err;
    lj_err_clear(err);
    if (!s) return lj_fail(err, LORAJIT_E_ARG, "sched_cancel: the scheduler is NULL");
    lorajit_status st = LORAJIT_E_NOT_FOUND;
    pthread_mutex_lock(&s->lock);
    for (lj_sched_req **p = &s->queue, *prev = NULL; *p; prev = *p, p = &(*p)->next)
        if ((*p)->id == id) {
            lj_sched_req *q = *p;
            st = LORAJIT_OK;
            if (q->load == LJ_LOAD_RUNNING || q->load == LJ_LOAD_DONE) { /* the driver ends it (and unpins) */
                atomic_store(&q->cancel, true);
                break;
            }
            if (q->load == LJ_LOAD_WAITING) { /* a driver asleep until a load ends must see this one go */
                s->n_loading--;
                pthread_cond_broadcast(&s->loaded_cv);
            }
            if (!(*p = q->next)) s->queue_tail = prev;
            s->n_queued--;
            q->finish = LORAJIT_FINISH_CANCELLED;
            push_done(s, q);
            break;
        }
    for (int i = 0; st && i < s->n_running; i++)
        if (s->running[i]->id == id) {
            atomic_store(&s->running[i]->cancel, true);
            st = LORAJIT_OK;
        }
    pthread_mutex_unlock(&s->lock);
    return st ? lj_fail(err, st, "sched_cancel: request %lld is not queued or running", (long long)id) : st;
}

/* Ends running request q with reason f (why: the message of an error): closes its
 * sequence, unpins its adapters, moves it to the finished list. Driving thread. */
static void finish(lorajit_sched *s, lj_sched_req *q, lorajit_finish f, const char *why) {
    lorajit_seq_close(q->seq);
    q->seq = NULL;
    lj_engine_unpin(s->e, q->pinned, q->n_pinned);
    q->n_pinned = 0;
    q->finish = f;
    if (why) snprintf(q->error, sizeof q->error, "%s", why);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == q) {
            memmove(&s->running[i], &s->running[i + 1], sizeof *s->running * (size_t)(s->n_running - i - 1));
            s->n_running--;
            break;
        }
    push_done(s, q);
    pthread_mutex_unlock(&s->lock);
}

/* What admitting q came to. */
enum { ADMIT_OK, ADMIT_WAIT, ADMIT_WAIT_SLOTS, ADMIT_FAILED };

/* Whether the KV cache has blocks for q's prompt + max_new positions on top of what
 * every running request may still take (its full need less what it holds), so that
 * no running request ever fails for lack of blocks. Blocks taken by sequences outside
 * this scheduler are not foreseen. ADMIT_FAILED (why) when the pool could never. */
static int kv_fits(lorajit_sched *s, lj_sched_req *q, lj_err *why) {
    lj_kv *kv = &s->e->kv;
    int64_t need = lj_kv_blocks_for(kv, q->n_prompt + q->max_new - 1), owed = 0;
    pthread_mutex_lock(&kv->lock);
    for (int i = 0; i < s->n_running; i++) {
        lj_sched_req *r = s->running[i];
        if (r == q || !r->seq) continue;
        int64_t more = lj_kv_blocks_for(kv, r->n_prompt + r->max_new - 1) - kv->held[r->seq->id];
        owed += more > 0 ? more : 0;
    }
    int64_t n_free = kv->n_free, n_blocks = kv->n_blocks;
    pthread_mutex_unlock(&kv->lock);
    if (need > n_blocks) {
        lj_fail(why, LORAJIT_E_FULL, "request %lld: %d positions need %lld KV cache blocks, the pool has %lld "
                "(options.kv_cache_mb)", (long long)q->id, q->n_prompt + q->max_new - 1, (long long)need,
                (long long)n_blocks);
        return ADMIT_FAILED;
    }
    return need + owed <= n_free ? ADMIT_OK : ADMIT_WAIT;
}

/* Whether requests other than q hold or are taking adapter pins: running, or
 * queued with their adapters being loaded or loaded. */
static bool others_pin(lorajit_sched *s, const lj_sched_req *q) {
    pthread_mutex_lock(&s->lock);
    bool any = s->n_running > 1;
    for (const lj_sched_req *r = s->queue; r && !any; r = r->next)
        any = r != q && (r->load == LJ_LOAD_RUNNING || (r->load == LJ_LOAD_DONE && r->n_pinned > 0));
    pthread_mutex_unlock(&s->lock);
    return any;
}

/* Tries to start q (already in running[]): KV blocks, a sequence, its adapters
 * (pinned by the loader, or resolved here when resident), then the hook (asked
 * last, so that its yes is an admission). */
static int admit(lorajit_sched *s, lj_sched_req *q, lj_err *why) {
    lorajit_engine *e = s->e;
    if (q->plp && !q->plp_logits && q->n_fed < q->n_prompt &&
        !(q->plp_logits = lj_malloc(sizeof *q->plp_logits * (size_t)s->vocab * (size_t)lj_sched_plp_rows(q)))) {
        lj_fail(why, LORAJIT_E_NOMEM, "request %lld: out of memory for its prompt's logits (prompt_logprobs)",
                (long long)q->id);
        return ADMIT_FAILED;
    }
    int kv = kv_fits(s, q, why);
    if (kv != ADMIT_OK) return kv;
    if (lorajit_seq_open(e, &q->seq) != LORAJIT_OK) return ADMIT_WAIT; /* every sequence held */
    char what[64];
    snprintf(what, sizeof what, "request %lld", (long long)q->id);
    lorajit_status st;
    /* The loader pinned them, or failed. A failure for want of slots is retried here
     * (on this thread, nothing else running) once the requests whose pins filled the
     * slots have finished: the loader cannot see them go while others are admitted. */
    if (q->load == LJ_LOAD_DONE && !(q->load_st == LORAJIT_E_FULL && !others_pin(s, q))) {
        if ((st = q->load_st)) lj_fail(why, st, "%s", q->error);
    } else {
        q->n_pinned = q->n_adapters;
        for (int i = 0; i < q->n_adapters; i++) q->pinned[i] = q->names[i];
        st = lj_engine_resolve(e, q->pinned, &q->n_pinned, what, why);
    }
    q->error[0] = '\0'; /* the loader's message, if any, is in why now */
    q->load = LJ_LOAD_NONE;
    if (!st) st = lj_seq_set_choice(e, q->seq->id, (const char *const *)q->names, q->weight, q->n_adapters, what, why);
    bool hook_no = !st && s->o.admit && !s->o.admit(s->o.admit_user, q->n_prompt + q->max_new - 1);
    if (!st && !hook_no) return ADMIT_OK;
    lorajit_seq_close(q->seq);
    q->seq = NULL;
    lj_engine_unpin(e, q->pinned, q->n_pinned);
    q->n_pinned = 0;
    /* every slot pinned by other requests: wait for one to finish; alone it never fits */
    if (hook_no) return ADMIT_WAIT;
    if (st != LORAJIT_E_FULL) return ADMIT_FAILED;
    /* the pins seen full may have gone since: one more try before it counts as never fitting */
    return others_pin(s, q) || q->full_retries++ < 1 ? ADMIT_WAIT_SLOTS : ADMIT_FAILED;
}

/* The first queued request that can be tried now, unlinked (under the lock): those
 * being loaded are passed over; one whose adapters are not resident is sent to the
 * loader and passed over. NULL when none. */
static lj_sched_req *pick_queued(lorajit_sched *s) {
    lj_sched_req *prev = NULL;
    for (lj_sched_req **p = &s->queue, *q; (q = *p); prev = q, p = &q->next) {
        if (q->load == LJ_LOAD_WAITING || q->load == LJ_LOAD_RUNNING) continue;
        if (q->load == LJ_LOAD_NONE && q->n_adapters &&
            !lj_engine_all_resident(s->e, (const char *const *)q->names, q->n_adapters) && send_to_loader(s, q))
            continue;
        if (!(*p = q->next)) s->queue_tail = prev;
        q->next = NULL;
        s->n_queued--;
        return q;
    }
    return NULL;
}

/* Admits queued requests in order until one must wait. Returns how many started. */
static int admit_queued(lorajit_sched *s) {
    int started = 0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        lj_sched_req *q = s->n_running < s->o.max_running ? pick_queued(s) : NULL;
        if (q) s->running[s->n_running++] = q; /* so that cancel finds it meanwhile */
        pthread_mutex_unlock(&s->lock);
        if (!q) return started;
        if (atomic_load(&q->cancel)) { /* cancelled while its adapters loaded */
            q->error[0] = '\0';
            finish(s, q, LORAJIT_FINISH_CANCELLED, NULL);
            continue;
        }
        lj_err why = {0};
        int a = admit(s, q, &why);
        if (a == ADMIT_OK) {
            q->queue_ms = lj_sched_now_ms() - q->submit_ms;
            started++;
            continue;
        }
        if (a == ADMIT_FAILED) {
            finish(s, q, LORAJIT_FINISH_ERROR, why.msg);
            continue;
        }
        pthread_mutex_lock(&s->lock); /* back to the head of the queue */
        s->n_running--;
        bool cancelled = atomic_load(&q->cancel);
        if (cancelled) {
            lj_engine_unpin(s->e, q->pinned, q->n_pinned); /* pins kept while it waited */
            q->n_pinned = 0;
            q->finish = LORAJIT_FINISH_CANCELLED;
            push_done(s, q);
        } else {
            if (!(q->next = s->queue)) s->queue_tail = q;
            s->queue = q;
            s->n_queued++;
            if (a == ADMIT_WAIT_SLOTS && q->n_adapters && send_to_loader(s, q)) /* tried again as pins go */
                cancelled = true; /* (not cancelled) passed over from now on: go on with the rest */
        }
        pthread_mutex_unlock(&s->lock);
        if (!cancelled) return started;
    }
}

/* The rows of one step: decode rows, then prefill chunks within the budget.
 * who[i]: the running request of row i. Returns the number of rows. */
static int plan_rows(lorajit_sched *s, lorajit_step_row *rows, lj_sched_req **who, int *chunk) {
    int n = 0, n_dec = 0;
    for (int i = 0; i < s->n_running; i++) {
        lj_sched_req *q = s->running[i];
        if (q->n_fed < q->n_prompt) continue;
        rows[n] = (lorajit_step_row){.seq = q->seq, .tokens = &q->hist[q->n_prompt + q->n_out - 1], .n_tokens = 1,
                                     .logits = s->logits + (size_t)n * s->vocab};
        chunk[n] = 0;
        who[n++] = q;
        n_dec++;
    }
    int left = s->o.token_budget - n_dec;
    if (left < s->o.min_chunk) left = s->o.min_chunk;
    for (int i = 0; i < s->n_running && left > 0; i++) {
        lj_sched_req *q = s->running[i];
        if (q->n_fed >= q->n_prompt) continue;
        int c = q->n_prompt - q->n_fed < left ? q->n_prompt - q->n_fed : left;
        if (q->plp && c > lj_sched_plp_rows(q)) c = lj_sched_plp_rows(q);
        bool last = q->n_fed + c == q->n_prompt;
        rows[n] = (lorajit_step_row){.seq = q->seq, .tokens = q->hist + q->n_fed, .n_tokens = c,
                                     .logits = last ? s->logits + (size_t)n * s->vocab : NULL};
        if (q->plp) rows[n].logits = q->plp_logits, rows[n].all_logits = 1; /* every row: the prompt's logprobs */
        chunk[n] = c;
        who[n++] = q;
        left -= c;
    }
    return n;
}

/* After row i ran: the prompt advanced, or a token is sampled (and maybe q ends). */
static void after_row(lorajit_sched *s, const lorajit_step_row *row, lj_sched_req *q, int chunk) {
    int from = q->n_fed;
    q->n_fed += chunk;
    if (!row->logits) return;
    float *last = row->logits; /* the row that samples the next token */
    if (row->all_logits) { /* prompt_logprobs: every row of the chunk */
        last += (size_t)(chunk - 1) * (size_t)s->vocab;
        if (lj_sched_req_prompt_rows(q, row->logits, s->vocab, from, chunk, q->id)) {
            finish(s, q, LORAJIT_FINISH_CANCELLED, NULL);
            return;
        }
        if (q->n_fed < q->n_prompt) return;
    }
    lorajit_finish f = lj_sched_req_take(q, last, s->work, q->id, lj_sched_now_ms());
    if (row->all_logits) { /* its prompt is done: the rows' buffer is not needed again */
        free(q->plp_logits);
        q->plp_logits = NULL;
    }
    if (f != LORAJIT_FINISH_NONE) finish(s, q, f, NULL);
}

lorajit_status lorajit_sched_step(lorajit_sched *s, int *busy) {
    lj_err *err = &sched_err;
    lj_err_clear(err);
    if (!s) return lj_fail(err, LORAJIT_E_ARG, "sched_step: the scheduler is NULL");
    if (atomic_exchange(&s->driving, true))
        return lj_fail(err, LORAJIT_E_ARG, "sched_step: another thread is driving this scheduler (one at a time)");
    pthread_mutex_lock(&s->lock);
    int64_t loaded0 = s->n_loaded; /* a load done during this step: not stuck */
    pthread_mutex_unlock(&s->lock);
    for (int i = s->n_running - 1; i >= 0; i--) /* cancelled: no part in this step */
        if (atomic_load(&s->running[i]->cancel)) finish(s, s->running[i], LORAJIT_FINISH_CANCELLED, NULL);
    admit_queued(s);
    lorajit_step_row rows[LJ_MAX_SLOTS];
    lj_sched_req *who[LJ_MAX_SLOTS];
    int chunk[LJ_MAX_SLOTS], n = plan_rows(s, rows, who, chunk);
    lorajit_status st = n ? lorajit_step(s->e, rows, n) : LORAJIT_OK;
    if (!st) {
        for (int i = 0; i < n; i++) after_row(s, &rows[i], who[i], chunk[i]);
    } else {
        for (int i = 0; i < n; i++) /* alone, each row succeeds or fails by itself */
            if (n == 1 || lorajit_step(s->e, &rows[i], 1) != LORAJIT_OK) finish(s, who[i], LORAJIT_FINISH_ERROR,
                                                                             lorajit_errmsg(s->e));
            else after_row(s, &rows[i], who[i], chunk[i]);
    }
    pthread_mutex_lock(&s->lock);
    bool waited = n == 0 && s->n_running == 0 && s->n_loading > 0;
    if (waited) { /* only loads left: sleep until one is done (admitted next step), never spin */
        int64_t loaded = s->n_loaded;
        while (s->n_loading > 0 && s->n_loaded == loaded) pthread_cond_wait(&s->loaded_cv, &s->lock);
    }
    int left = s->n_running + s->n_queued;
    bool stuck = !waited && n == 0 && s->n_queued > 0 && s->n_running == 0 && s->n_loading == 0 &&
                 s->n_loaded == loaded0;
    pthread_mutex_unlock(&s->lock);
    if (busy) *busy = left;
    atomic_store(&s->driving, false);
    if (stuck)
        return lj_fail(err, LORAJIT_E_FULL, "sched_step: %d requests queued and none can start: no sequence is "
                       "free (held by other handles or calls) or the admit hook refuses", left);
    return LORAJIT_OK;
}

lorajit_status lorajit_sched_run_until_idle(lorajit_sched *s) {
    int busy = 1;
    lorajit_status st = LORAJIT_OK;
    while (busy > 0 && !(st = lorajit_sched_step(s, &busy))) {}
    return st;
}

lorajit_status lorajit_sched_take(lorajit_sched *s, int64_t id, lorajit_sched_result *out) {
    lj_err *err = &sched_err;
    lj_err_clear(err);
    if (!s || !out) return lj_fail(err, LORAJIT_E_ARG, "sched_take: the scheduler or out is NULL");
    lorajit_status st = LORAJIT_E_NOT_FOUND;
    pthread_mutex_lock(&s->lock);
    for (lj_sched_req **p = &s->done; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            lj_sched_req *q = *p;
            if (!(st = lj_sched_req_result(q, id, out, err))) {
                *p = q->next;
                lj_sched_req_free(q);
            }
            break;
        }
    pthread_mutex_unlock(&s->lock);
    if (st == LORAJIT_E_NOT_FOUND)
        lj_fail(err, st, "sched_take: request %lld is not finished (or was taken)", (long long)id);
    return st;
}

void lorajit_sched_free(lorajit_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->loader_stop = true;
    for (lj_sched_req *q = s->queue; q; q = q->next) /* no new loads; the one running ends */
        if (q->load == LJ_LOAD_WAITING) q->load = LJ_LOAD_NONE;
    pthread_cond_broadcast(&s->load_cv);
    pthread_mutex_unlock(&s->lock);
    if (s->loader_on) pthread_join(s->loader, NULL);
    while (s->n_running) finish(s, s->running[s->n_running - 1], LORAJIT_FINISH_CANCELLED, NULL);
    for (lj_sched_req *q = s->queue, *next; q; q = next) {
        next = q->next;
        if (q->load == LJ_LOAD_DONE) lj_engine_unpin(s->e, q->pinned, q->n_pinned);
        lj_sched_req_free(q);
    }
    for (lj_sched_req *q = s->done, *next; q; q = next) {
        next = q->next;
        lj_sched_req_free(q);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->load_cv);
    pthread_cond_destroy(&s->loaded_cv);
    lj_sample_work_free(s->work);
    free(s->logits);
    free(s);
}
