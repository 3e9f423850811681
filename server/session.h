/* session.h — the server's shared state and one generation's life: srv_server (the
 * engine, tokenizer, backend, adapters, metrics, options), srv_reply (what a route
 * answers), srv_gen (tokens -> text with stop strings, for both the JSON body and the
 * SSE stream) and srv_stream (a generation that http.c's connection thread reads,
 * pulling its tokens from the backend as it goes).
 * Banners name the file that defines each function. Uses lorajit.h and server headers. */
#ifndef LORAJIT_SERVER_SESSION_H
#define LORAJIT_SERVER_SESSION_H

#include <stdatomic.h>
#include <stdio.h>

#include "server.h"

typedef struct srv_options {
    const char *host;            /* default 127.0.0.1 */
    int port;                    /* default 8000; 0: any free port (printed) */
    const char *api_key;         /* NULL: no auth */
    const char *served_name;     /* the base model's name in the API (default: the --model folder) */
    const char *model_dir;
    size_t max_body;             /* bytes, default 1 MiB (413 above) */
    int idle_timeout_s;          /* a connection idle this long is closed (slow clients), default 30 */
    int max_waiting;             /* queued requests before 429, default 256 */
    int max_lora;                /* resident adapter slots (vllm:lora_requests_info max_lora) */
    int max_logprobs;            /* top logprobs a request may ask (0: logprobs refused) */
} srv_options;

typedef struct srv_server {
    srv_options opt;
    lorajit_engine *e;           /* owned by serve_main; NULL until the engine is open */
    lorajit_tokenizer *tok;      /* NULL: the model folder has no tokenizer (token ids only) */
    lorajit_sampling eos;        /* the tokenizer's EOS ids (eos_id, eos_more) */
    srv_backend *backend;
    srv_lora *lora;
    srv_metrics metrics;
    atomic_int ready;            /* 0 while the engine compiles: 503 */
    atomic_ullong next_id;
    long started;                /* unix time */
    pthread_mutex_t log_mu;
} srv_server;

/* One generation's output, as response.c writes it (a whole body or one chunk). */
typedef struct srv_output {
    const char *id;
    long created;
    const char *model;
    int chat;
    const char *text;            /* [len] bytes */
    size_t len;
    const int32_t *ids;          /* [n_ids] (vLLM's token_ids) */
    int n_ids;
    const char *finish;          /* "stop", "length", or NULL while streaming */
    int prompt_tokens, completion_tokens;
    int first;                   /* the first chat chunk (carries the role) */
    /* logprobs (top_n >= 0; else none): for generated id k, tok[k] its text, lp[k] its
     * log-probability, top_tok / top_lp[k * top_n ..] the most likely ids' */
    int top_n;
    char *const *tok, *const *top_tok;
    const float *lp, *top_lp;
    size_t text_offset;          /* completions: text_offset of the first entry (a stream's later chunks) */
    /* completions with echo and logprobs: the prompt's n_prompt_lp entries before the
     * generated ones: prompt_tok[p] the text of prompt id p, prompt_lp[p - 1] its
     * log-probability (p >= 1; null for p = 0), prompt_top_tok / prompt_top_lp[(p - 1) *
     * top_n ..] the most likely ids' there */
    int n_prompt_lp;
    char *const *prompt_tok, *const *prompt_top_tok;
    const float *prompt_lp, *prompt_top_lp;
} srv_output;

/* What a route answers: a body, or a stream (then body is NULL). */
typedef struct srv_stream srv_stream;
typedef struct srv_reply {
    int status;
    char *body;                  /* owned */
    const char *content_type;    /* static */
    srv_stream *stream;          /* owned: http.c reads it, then srv_stream_close */
    /* for the log line */
    char adapter[SRV_MAX_NAME + 1];
    int prompt_tokens, completion_tokens;
    double queue_ms, ttft_ms;
    const char *finish;
} srv_reply;

/* ---- response.c ---- */
/* Each returns text the caller frees with free(); NULL when memory ran out. */
char *srv_error_body(int status, const char *message, const char *param);
char *srv_response_body(const srv_output *out);
char *srv_response_chunk(const srv_output *out);
char *srv_response_usage_chunk(const srv_output *out);
char *srv_response_error_chunk(int status, const char *message);
char *srv_models_body(srv_lora *lora, const char *base, const char *base_root, long created);
/* Fills reply with an error body (replacing its body). */
void srv_reply_error(srv_reply *reply, int status, const char *message, const char *param);

/* ---- session.c ---- */
/* A generation prepared by routes.c: srv_gen_start takes ownership of everything
 * it is given (job, prompt, request) also on failure. */
typedef struct srv_gen srv_gen;
/* Runs g's generation in the calling thread and fills reply with the JSON body. */
void srv_gen_run_body(srv_gen *g, srv_reply *reply);
/* Starts g's generation (submits it); reply->stream reads its SSE text. */
void srv_gen_run_stream(srv_gen *g, srv_reply *reply);
/* Makes a generation: prompt ([n_prompt], ownership taken), the request (ownership
 * of its strings taken), the adapter ("" base; a reference srv_lora_acquire'd is
 * released when it ends), the admitted job, the sampling, the echo text (copied,
 * may be NULL) and the request's number rid (its id: cmpl-RID / chatcmpl-RID). NULL when memory ran out (everything given is freed). */
srv_gen *srv_gen_new(srv_server *s, srv_request *req, int32_t *prompt, int n_prompt, const char *adapter,
                     srv_job *job, const lorajit_sampling *sampling, const char *echo, unsigned long long rid);
/* The next SSE bytes into buf[cap]: blocks until some exist (pulling the generation's
 * tokens on the calling thread); 0 at the end. One thread at a time. */
size_t srv_stream_read(srv_stream *st, char *buf, size_t cap);
/* Cancels the generation if it still runs (a client gone), lets it end, logs, frees.
 * On the thread that read st, or after it. */
void srv_stream_close(srv_stream *st);

/* ---- routes.c ---- */
/* Answers one request (method, path, body[len]) into *reply (status 200..503). */
void srv_route(srv_server *s, unsigned long long rid, const char *method, const char *path, const char *body, size_t len, srv_reply *reply);

/* ---- http.c ---- */
typedef struct srv_http srv_http;
/* Starts listening (threads per connection); prints "listening on http://HOST:PORT".
 * Caller owns the result; free with srv_http_stop(). NULL with why when it cannot. */
srv_http *srv_http_start(srv_server *s, char *why, size_t cap);
void srv_http_stop(srv_http *h);

/* ---- metrics.c (the rest is in server.h) ---- */
double srv_now_ms(void);     /* a monotonic clock */
/* One log line per request on stderr: id, method, path, status, adapter, tokens, times. */
void srv_log_request(srv_server *s, unsigned long long id, const char *method, const char *path,
                     const srv_reply *r, double total_ms);

#endif /* LORAJIT_SERVER_SESSION_H */
