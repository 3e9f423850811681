/* session.c — one generation from the admitted job to the last byte: runs it through
 * the backend, turns tokens into text with the model's streaming detokenizer (primed
 * with the prompt, as `lorajit generate --text` does), holds back text that may be the
 * start of a stop string and ends the request at one (the stop string and what follows
 * are not returned, as OpenAI does), times TTFT and inter-token gaps into the metrics,
 * and writes either the JSON body or the SSE chunks. A stream has no thread of its own:
 * http.c's connection thread, reading it (srv_stream_read), pulls the tokens from the
 * backend (srv_backend_next) and formats their chunks itself; a client that goes away
 * cancels the generation when the connection closes (srv_stream_close). */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* Logprobs arrays and their token texts, owned (freed by logprobs_free). */
typedef struct logprobs_mem {
    int32_t *ids, *top_id;
    float *lp, *top_lp;
    char **tok, **top_tok;
    int n_tok, n_top;
} logprobs_mem;

/* Used by the connection's thread only. */
struct srv_stream {
    srv_gen *g;
    srv_job *job;                /* started and not yet finished, else NULL */
    char *buf;                   /* [n] SSE bytes not yet read, from off */
    size_t n, off, cap;
    int done, oom;               /* done: the last bytes ([DONE]) are in buf */
    int cancel;                  /* the client went away */
    srv_reply log;               /* the log line's fields, once done */
};

struct srv_gen {
    srv_server *s;
    srv_request req;             /* owned */
    int32_t *prompt;             /* [n_prompt] owned */
    int n_prompt;
    char adapter[SRV_MAX_NAME + 1];
    srv_job *job;
    lorajit_sampling sampling;
    char id[48];
    long created;
    char *echo;                  /* owned or NULL */
    lorajit_detokenizer *detok;  /* NULL without a tokenizer */
    char *text;                  /* [len] generated text (cut at a stop string) */
    size_t len, cap, safe;       /* text[0..safe) may be returned now */
    size_t sent;                 /* stream: text[0..sent) sent */
    int32_t *ids;                /* [n_ids] generated ids */
    int n_ids, ids_sent;
    int stop_hit, first_chunk;
    size_t lp_offset;            /* stream with logprobs: the text_offset of the next chunk's first token */
    int lp_failed;               /* stream: its logprobs failed (an error chunk was sent): stop */
    int prompt_top_n;            /* echo with logprobs: the top ids of the prompt's entries; else -1 */
    logprobs_mem plp;            /* their texts (tok: [n_prompt]) and figures, once on_prompt came */
    int plp_ready, plp_failed;   /* on_prompt came; it ran out of memory (the request stops) */
    int echo_sent;               /* stream: the echoed prompt's chunk is out */
    double t0, t_first, t_last;
    unsigned long long rid;
    srv_gen_result res;
    srv_stream *stream;          /* NULL: a JSON body */
};

srv_gen *srv_gen_new(srv_server *s, srv_request *req, int32_t *prompt, int n_prompt, const char *adapter,
                     srv_job *job, const lorajit_sampling *sampling, const char *echo, unsigned long long rid) {
    srv_gen *g = calloc(1, sizeof *g);
    int ok = g && (g->ids = malloc(sizeof *g->ids * (size_t)req->max_tokens)) && (!echo || (g->echo = strdup(echo)));
    if (ok && s->tok) ok = lorajit_detokenizer_open(&g->detok, s->tok, 1) == LORAJIT_OK;
    for (int i = 0; ok && g->detok && i < n_prompt; i++) { /* the first piece continues the prompt */
        const char *t;
        size_t n;
        ok = lorajit_detokenizer_push(g->detok, prompt[i], &t, &n) == LORAJIT_OK;
    }
    if (!ok) {
        if (g) {
            lorajit_detokenizer_free(g->detok);
            free(g->ids);
            free(g->echo);
            free(g);
        }
        srv_backend_drop(s->backend, job);
        if (adapter[0]) srv_lora_release(s->lora, adapter);
        srv_request_free(req);
        free(prompt);
        return NULL;
    }
    g->s = s;
    g->req = *req;
    memset(req, 0, sizeof *req);
    g->prompt = prompt;
    g->n_prompt = n_prompt;
    snprintf(g->adapter, sizeof g->adapter, "%s", adapter);
    g->job = job;
    g->sampling = *sampling;
    snprintf(g->id, sizeof g->id, "%s-%llu", g->req.chat ? "chatcmpl" : "cmpl", rid);
    g->rid = rid;
    g->created = (long)time(NULL);
    g->t0 = srv_now_ms();
    g->first_chunk = 1;
    g->prompt_top_n = g->req.echo && !g->req.chat ? g->req.logprobs : -1;
    return g;
}

static void logprobs_free(logprobs_mem *m);

static void gen_free(srv_gen *g) {
    logprobs_free(&g->plp);
    if (g->adapter[0]) srv_lora_release(g->s->lora, g->adapter);
    srv_request_free(&g->req);
    lorajit_detokenizer_free(g->detok);
    free(g->prompt);
    free(g->echo);
    free(g->text);
    free(g->ids);
    free(g);
}

static int append(srv_gen *g, const char *t, size_t n) {
    if (g->len + n + 1 > g->cap) {
        size_t cap = (g->len + n + 1) * 2;
        char *more = realloc(g->text, cap);
        if (!more) return -1;
        g->text = more;
        g->cap = cap;
    }
    memcpy(g->text + g->len, t, n);
    g->len += n;
    return 0;
}

/* Cuts the text at the first stop string at or after safe (1: found); else moves
 * safe up to the longest tail that may still begin one (at_end: no tail held). */
static int check_stop(srv_gen *g, int at_end) {
    const char *from = g->text + g->safe;
    size_t rest = g->len - g->safe, cut = rest;
    for (int i = 0; i < g->req.n_stop; i++) {
        const char *hit = memmem(from, rest, g->req.stop[i], strlen(g->req.stop[i]));
        if (hit && (size_t)(hit - from) < cut) cut = (size_t)(hit - from);
    }
    if (cut < rest) {
        g->len = g->safe = g->safe + cut;
        return 1;
    }
    size_t hold = 0;
    for (int i = 0; !at_end && i < g->req.n_stop; i++) {
        size_t k = strlen(g->req.stop[i]) - 1; /* a proper prefix of stop i at the end */
        for (k = k < rest ? k : rest; k > hold; k--)
            if (!memcmp(g->text + g->len - k, g->req.stop[i], k)) {
                hold = k;
                break;
            }
    }
    g->safe = g->len - hold;
    return 0;
}

/* Appends chunk (taken; NULL: memory ran out) to the stream's bytes. */
static void stream_put(srv_stream *st, char *chunk) {
    size_t n = chunk ? strlen(chunk) : 0;
    if (!chunk) st->oom = 1;
    if (chunk && st->n + n > st->cap) {
        size_t cap = (st->n + n) * 2;
        char *more = realloc(st->buf, cap);
        if (more) st->buf = more, st->cap = cap;
        else st->oom = 1;
    }
    if (chunk && st->n + n <= st->cap) {
        memcpy(st->buf + st->n, chunk, n);
        st->n += n;
    }
    free(chunk);
}

static srv_output output(const srv_gen *g, const char *text, size_t len, const int32_t *ids, int n_ids,
                         const char *finish) {
    return (srv_output){.id = g->id, .created = g->created, .model = g->req.model, .chat = g->req.chat,
                        .text = text, .len = len, .ids = ids, .n_ids = n_ids, .finish = finish,
                        .prompt_tokens = g->n_prompt, .completion_tokens = g->n_ids, .first = g->first_chunk,
                        .top_n = -1};
}

/* o with the prompt's logprobs entries (echo), before its generated ones. */
static void with_prompt_logprobs(const srv_gen *g, srv_output *o) {
    o->top_n = g->prompt_top_n;
    o->n_prompt_lp = g->n_prompt;
    o->prompt_tok = g->plp.tok, o->prompt_top_tok = g->plp.top_tok;
    o->prompt_lp = g->plp.lp, o->prompt_top_lp = g->plp.top_lp;
}

/* A token's text for logprobs: decoded alone (special tokens kept), or "token_id:N"
 * without a tokenizer (vLLM's spelling). Caller owns the result; free with free(). */
static char *token_text(const srv_gen *g, int32_t id) {
    char *t = NULL, buf[32];
    size_t n;
    if (g->s->tok && lorajit_tokenizer_decode(g->s->tok, &id, 1, 0, &t, &n) == LORAJIT_OK) return t;
    snprintf(buf, sizeof buf, "token_id:%d", (int)id);
    return strdup(buf);
}

/* The logprobs of g's generated ids [from, n_ids) (srv_backend_logprobs; key: 0, or
 * the stream's number) into o; mem (freed by logprobs_free) owns the arrays. 0, or -1
 * with the HTTP status in *status and why in msg[cap]. */

/* Frees what gen_logprobs allocated in m (m itself is the caller's). */
static void logprobs_free(logprobs_mem *m) {
    for (int i = 0; m->tok && i < m->n_tok; i++) free(m->tok[i]);
    for (int i = 0; m->top_tok && i < m->n_top; i++) free(m->top_tok[i]);
    free(m->ids), free(m->top_id), free(m->lp), free(m->top_lp), free(m->tok), free(m->top_tok);
}

static int gen_logprobs(srv_gen *g, uint64_t key, int from, srv_output *o, logprobs_mem *m, int *status, char *msg,
                        size_t cap) {
    int n = g->n_ids - from, top = g->req.logprobs, n_all = g->n_prompt + g->n_ids;
    m->n_tok = n, m->n_top = n * top;
    m->ids = malloc(sizeof *m->ids * (size_t)n_all);
    m->lp = malloc(sizeof *m->lp * (size_t)(n ? n : 1));
    m->top_id = malloc(sizeof *m->top_id * (size_t)(m->n_top ? m->n_top : 1));
    m->top_lp = malloc(sizeof *m->top_lp * (size_t)(m->n_top ? m->n_top : 1));
    m->tok = calloc((size_t)(n ? n : 1), sizeof *m->tok);
    m->top_tok = calloc((size_t)(m->n_top ? m->n_top : 1), sizeof *m->top_tok);
    *status = 503;
    if (!m->ids || !m->lp || !m->top_id || !m->top_lp || !m->tok || !m->top_tok)
        return snprintf(msg, cap, "out of memory"), -1;
    memcpy(m->ids, g->prompt, sizeof *m->ids * (size_t)g->n_prompt);
    memcpy(m->ids + g->n_prompt, g->ids, sizeof *m->ids * (size_t)g->n_ids);
    lorajit_status st = srv_backend_logprobs(g->s->backend, key, m->ids, n_all, g->n_prompt, from, g->adapter, top,
                                             m->lp, m->top_id, m->top_lp, msg, cap);
    if (st) {
        *status = st == LORAJIT_E_ARG ? 400 : 503;
        return -1;
    }
    for (int k = 0; k < n; k++) m->tok[k] = token_text(g, g->ids[from + k]);
    for (int k = 0; k < m->n_top; k++) m->top_tok[k] = token_text(g, m->top_id[k]);
    for (int k = 0; k < n; k++) if (!m->tok[k]) return snprintf(msg, cap, "out of memory"), -1;
    for (int k = 0; k < m->n_top; k++) if (!m->top_tok[k]) return snprintf(msg, cap, "out of memory"), -1;
    o->top_n = top, o->tok = m->tok, o->top_tok = m->top_tok, o->lp = m->lp, o->top_lp = m->top_lp;
    return 0;
}

/* Stream: the echoed prompt's chunk, with its logprobs once they came (then the
 * next chunk's text offsets follow the prompt's tokens). */
static void stream_echo(srv_gen *g) {
    srv_output o = output(g, g->echo ? g->echo : "", g->echo ? strlen(g->echo) : 0, NULL, 0, NULL);
    if (g->plp_ready) {
        with_prompt_logprobs(g, &o);
        for (int p = 0; p < g->n_prompt; p++) g->lp_offset += strlen(g->plp.tok[p]);
    }
    stream_put(g->stream, srv_response_chunk(&o));
    g->first_chunk = 0;
    g->echo_sent = 1;
}

/* srv_prompt_fn: keeps the prompt's logprobs with their texts (n = n_prompt - 1);
 * a stream sends the echo chunk now, before the first token's. */
static void on_prompt(void *user, int n, const float *lp, const int32_t *top_id, const float *top_lp, int top_n) {
    srv_gen *g = user;
    logprobs_mem *m = &g->plp;
    size_t n_top = (size_t)n * (size_t)top_n;
    m->n_tok = g->n_prompt, m->n_top = (int)n_top;
    m->lp = malloc(sizeof *m->lp * ((size_t)n + 1));
    m->top_lp = malloc(sizeof *m->top_lp * (n_top + 1));
    m->tok = calloc((size_t)g->n_prompt, sizeof *m->tok);
    m->top_tok = calloc(n_top + 1, sizeof *m->top_tok);
    int ok = m->lp && m->top_lp && m->tok && m->top_tok && n == g->n_prompt - 1 && top_n == g->prompt_top_n;
    for (int p = 0; ok && p < g->n_prompt; p++) ok = (m->tok[p] = token_text(g, g->prompt[p])) != NULL;
    for (size_t k = 0; ok && k < n_top; k++) ok = (m->top_tok[k] = token_text(g, top_id[k])) != NULL;
    if (!ok) {
        g->plp_failed = 1;
        return;
    }
    memcpy(m->lp, lp, sizeof *m->lp * (size_t)n);
    memcpy(m->top_lp, top_lp, sizeof *m->top_lp * n_top);
    g->plp_ready = 1;
    if (g->stream) stream_echo(g);
}

/* Stream: a chunk of the text released and the ids since the last one (finish at the
 * end), with their logprobs when asked (computed for these ids only, as they come:
 * the stream's number g->rid + 1 keys the backend's sequence). */
static void stream_chunk(srv_gen *g, const char *finish) {
    if (g->lp_failed || (!finish && g->safe == g->sent && (g->detok || g->ids_sent == g->n_ids))) return;
    srv_output o = output(g, g->text ? g->text + g->sent : "", g->safe - g->sent, g->ids + g->ids_sent,
                          g->n_ids - g->ids_sent, finish);
    logprobs_mem m = {0};
    char msg[600];
    int status;
    if (g->req.logprobs >= 0 && o.n_ids && gen_logprobs(g, g->rid + 1, g->ids_sent, &o, &m, &status, msg, sizeof msg)) {
        stream_put(g->stream, srv_response_error_chunk(status, msg));
        g->lp_failed = 1;
        logprobs_free(&m);
        return;
    }
    o.text_offset = g->lp_offset;
    for (int k = 0; o.top_n >= 0 && k < o.n_ids; k++) g->lp_offset += strlen(o.tok[k]);
    stream_put(g->stream, srv_response_chunk(&o));
    logprobs_free(&m);
    g->sent = g->safe;
    g->ids_sent = g->n_ids;
    g->first_chunk = 0;
}

static int on_token(void *user, int32_t token) {
    srv_gen *g = user;
    double t = srv_now_ms();
    srv_metrics *m = &g->s->metrics;
    srv_metrics_observe(m, g->n_ids ? &m->itl : &m->ttft, (t - (g->n_ids ? g->t_last : g->t0)) / 1e3);
    if (!g->n_ids) g->t_first = t;
    g->t_last = t;
    if (g->n_ids < g->req.max_tokens) g->ids[g->n_ids++] = token;
    const char *piece;
    size_t n;
    if (g->detok && !g->stop_hit && lorajit_detokenizer_push(g->detok, token, &piece, &n) == LORAJIT_OK &&
        append(g, piece, n) == 0)
        g->stop_hit = g->req.n_stop ? check_stop(g, 0) : (g->safe = g->len, 0);
    if (g->stream) stream_chunk(g, NULL);
    return g->stop_hit || g->lp_failed || g->plp_failed;
}

/* After the backend returned: the detokenizer's rest, the stop check over it. */
static void finish_text(srv_gen *g) {
    const char *piece;
    size_t n;
    if (g->detok && !g->stop_hit && lorajit_detokenizer_flush(g->detok, &piece, &n) == LORAJIT_OK)
        append(g, piece, n);
    if (g->req.n_stop && !g->stop_hit) g->stop_hit = check_stop(g, 1);
    g->safe = g->len;
}

static const char *finish_reason(const srv_gen *g) {
    return g->stop_hit || g->res.finish == SRV_FINISH_EOS ? "stop" : g->res.finish == SRV_FINISH_LENGTH ? "length"
                                                                                                          : "abort";
}

/* The HTTP status of an engine failure. */
static int error_status(lorajit_status st) {
    return st == LORAJIT_E_ARG ? 400 : st == LORAJIT_E_NOT_FOUND ? 404 : st == LORAJIT_E_FULL || st == LORAJIT_E_NOMEM ? 503 : 500;
}

/* The backend's parameters of g's generation (borrowing g's prompt and adapter). */
static srv_gen_params gen_params(const srv_gen *g) {
    return (srv_gen_params){.prompt = g->prompt, .n_prompt = g->n_prompt, .adapter = g->adapter,
                            .max_tokens = g->req.max_tokens, .sampling = g->sampling,
                            .prompt_top_n = g->prompt_top_n, .on_prompt = on_prompt};
}

/* After the backend's result is in g->res: the text's end, metrics, and the log
 * fields into reply. */
static void gen_ended(srv_gen *g, srv_reply *reply) {
    finish_text(g);
    int err = g->res.finish == SRV_FINISH_ERROR;
    int reason = err ? 3 : (g->stream && g->stream->cancel) ? 2 : g->res.finish == SRV_FINISH_LENGTH && !g->stop_hit;
    srv_metrics *m = &g->s->metrics;
    srv_metrics_finished(m, g->n_prompt, g->n_ids, reason);
    srv_metrics_observe(m, &m->queue, g->res.queue_ms / 1e3);
    srv_metrics_observe(m, &m->e2e, (srv_now_ms() - g->t0) / 1e3);
    reply->prompt_tokens = g->n_prompt;
    reply->completion_tokens = g->n_ids;
    reply->queue_ms = g->res.queue_ms;
    reply->ttft_ms = g->n_ids ? g->t_first - g->t0 : 0;
    reply->finish = err ? "error" : reason == 2 ? "abort" : finish_reason(g);
    snprintf(reply->adapter, sizeof reply->adapter, "%s", g->adapter);
}

void srv_gen_run_body(srv_gen *g, srv_reply *reply) {
    srv_gen_params p = gen_params(g);
    srv_job *job = g->job;
    g->job = NULL;
    srv_backend_run(g->s->backend, job, &p, on_token, g, &g->res);
    gen_ended(g, reply);
    if (g->res.finish == SRV_FINISH_ERROR) {
        srv_reply_error(reply, error_status(g->res.status), g->res.message, "");
    } else {
        size_t ne = g->echo ? strlen(g->echo) : 0;
        char *all = malloc(ne + g->len + 1);
        if (all) {
            if (ne) memcpy(all, g->echo, ne);
            if (g->len) memcpy(all + ne, g->text, g->len);
            srv_output o = output(g, all, ne + g->len, g->ids, g->n_ids, finish_reason(g));
            logprobs_mem m = {0};
            int status;
            char msg[600];
            if (g->prompt_top_n >= 0 && !g->plp_ready) {
                srv_reply_error(reply, 503, g->plp_failed ? "out of memory" : "the prompt's logprobs did not come",
                                "");
            } else if (g->req.logprobs >= 0 && gen_logprobs(g, 0, 0, &o, &m, &status, msg, sizeof msg)) {
                srv_reply_error(reply, status, msg, status == 503 && !strcmp(msg, "out of memory") ? "" : "logprobs");
            } else {
                if (g->prompt_top_n >= 0) with_prompt_logprobs(g, &o);
                reply->body = srv_response_body(&o);
                reply->status = 200;
                reply->content_type = "application/json";
                if (!reply->body) srv_reply_error(reply, 503, "out of memory", "");
            }
            logprobs_free(&m);
            free(all);
        } else {
            srv_reply_error(reply, 503, "out of memory", "");
        }
    }
    gen_free(g);
}

/* The generation ended (its result in g->res; the job finished): the last chunks,
 * usage, [DONE]; the log fields into st->log. */
static void stream_end(srv_stream *st) {
    srv_gen *g = st->g;
    gen_ended(g, &st->log);
    if (g->prompt_top_n >= 0 && !g->echo_sent && g->res.finish != SRV_FINISH_ERROR) /* ended before its prompt */
        stream_echo(g);
    if (g->res.finish == SRV_FINISH_ERROR) {
        stream_put(st, srv_response_error_chunk(error_status(g->res.status), g->res.message));
    } else {
        stream_chunk(g, finish_reason(g));
        srv_output o = output(g, "", 0, NULL, 0, NULL);
        if (g->req.include_usage) stream_put(st, srv_response_usage_chunk(&o));
    }
    stream_put(st, strdup("data: [DONE]\n\n"));
    st->done = 1;
}

/* Hands on what the backend has for the stream (blocking until something came);
 * ends the stream after the last of it. */
static void stream_pull(srv_stream *st) {
    srv_backend *b = st->g->s->backend;
    if (srv_backend_next(b, st->job, on_token, st->g)) return;
    srv_backend_finish(b, st->job, &st->g->res);
    st->job = NULL;
    stream_end(st);
}

void srv_gen_run_stream(srv_gen *g, srv_reply *reply) {
    srv_stream *st = calloc(1, sizeof *st);
    if (!st) {
        srv_reply_error(reply, 503, "out of memory", "");
        srv_backend_drop(g->s->backend, g->job);
        gen_free(g);
        return;
    }
    st->g = g;
    g->stream = st;
    if (g->req.chat || (g->echo && g->prompt_top_n < 0)) { /* the role first (chat), or the echoed prompt */
        srv_output o = output(g, g->echo ? g->echo : "", g->echo ? strlen(g->echo) : 0, NULL, 0, NULL);
        stream_put(st, srv_response_chunk(&o));
        g->first_chunk = 0;
    }
    srv_gen_params p = gen_params(g); /* echo with logprobs: on_prompt sends the echo chunk */
    srv_job *job = g->job;
    g->job = NULL;
    if (srv_backend_start(g->s->backend, job, &p, &g->res) == 0) st->job = job;
    else stream_end(st); /* an error chunk */
    reply->status = 200;
    reply->content_type = "text/event-stream";
    reply->stream = st;
    snprintf(reply->adapter, sizeof reply->adapter, "%s", g->adapter);
}

size_t srv_stream_read(srv_stream *st, char *buf, size_t cap) {
    while (st->off == st->n && !st->done) stream_pull(st);
    size_t n = st->n - st->off < cap ? st->n - st->off : cap;
    memcpy(buf, st->buf + st->off, n);
    st->off += n;
    if (st->off == st->n) st->off = st->n = 0;
    return n;
}

void srv_stream_close(srv_stream *st) {
    if (!st) return;
    if (!st->done) { /* the client went away: stop the generation, let it end */
        st->cancel = 1;
        srv_backend_cancel(st->g->s->backend, st->job);
        while (!st->done) stream_pull(st);
    }
    srv_gen *g = st->g;
    st->log.status = 200;
    srv_log_request(g->s, g->rid, "POST", g->req.chat ? "/v1/chat/completions" : "/v1/completions", &st->log,
                    srv_now_ms() - g->t0);
    gen_free(g);
    free(st->buf);
    free(st);
}
