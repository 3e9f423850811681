/* server.h — `lorajit serve`'s room: an OpenAI/vLLM-compatible HTTP server over
 * lorajit.h (libmicrohttpd for HTTP, cJSON for JSON). Every non-static function of
 * server/ is declared here under its file's banner, except the backend
 * (backend.h: the one thing that knows how a request runs).
 *
 * Layers, as vLLM splits them: http.c (connections, body cap, auth, logs) ->
 * routes.c (one function per endpoint) -> request.c (JSON -> srv_request, no engine)
 * and response.c (srv_* -> JSON / SSE text) -> session.c (tokens -> text, stop
 * strings, the stream) -> backend.h. metrics.c holds the counters; lora.c the adapters
 * the server knows by name. Uses include/lorajit.h and its own headers only. */
#ifndef LORAJIT_SERVER_H
#define LORAJIT_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lorajit.h"

#define SRV_MAX_STOP 4           /* stop strings per request (OpenAI's limit) */
#define SRV_MAX_STOP_LEN 256     /* bytes per stop string */
#define SRV_MAX_PROMPT_IDS 65536 /* ids in a prompt given as ids */
#define SRV_MAX_TOKENS (1 << 20) /* max_tokens above this is refused by the parser */
#define SRV_MAX_NAME 128         /* an adapter's or the model's name */
#define SRV_MAX_LOGPROBS 20      /* top logprobs (OpenAI's limit) */

/* ---- request.c: request bodies -> structs (no engine; fuzzed by tests/fuzz/fuzz_request.c) ---- */

/* A parsed /v1/completions (chat = 0) or /v1/chat/completions (chat = 1) body. */
typedef struct srv_request {
    int chat;
    char *model;                 /* owned; NULL: not given (the base model) */
    char *prompt;                /* completions: the prompt text (owned), or NULL when given as ids */
    int32_t *prompt_ids;         /* completions: [n_prompt_ids] owned, or NULL */
    int n_prompt_ids;
    char *messages_json;         /* chat: the messages, content as strings (owned JSON text) */
    int max_tokens;              /* 1..SRV_MAX_TOKENS; 16 when not given */
    float temperature;           /* >= 0, default 1 */
    float top_p;                 /* (0, 1], default 1 */
    int top_k;                   /* 0 = off (-1 is taken as 0) */
    float repetition_penalty;    /* > 0, default 1 (vLLM's extension) */
    uint64_t seed;
    int has_seed;
    char *stop[SRV_MAX_STOP];    /* owned, non-empty */
    int n_stop;
    int stream, include_usage;   /* stream_options.include_usage */
    int echo;                    /* completions */
    int logprobs;                /* -1 none; else top-N (0..SRV_MAX_LOGPROBS) */
} srv_request;

/* A parse failure: HTTP 400 with message, naming param (the field, "" for the body). */
typedef struct srv_parse_error {
    char message[512];
    char param[64];
} srv_parse_error;

/* Parses body[0..len) (any bytes: invalid UTF-8, bad JSON, wrong types and values are
 * refused naming the field; unknown fields are ignored as OpenAI does). 0 and *r
 * filled (caller frees with srv_request_free), or -1 with *err and *r zeroed. */
int srv_request_parse(const char *body, size_t len, int chat, srv_request *r, srv_parse_error *err);
void srv_request_free(srv_request *r);
/* /v1/load_lora_adapter (need_path 1) and /v1/unload_lora_adapter bodies: lora_name
 * (a valid adapter name: srv_name_ok) and lora_path, copied into name[SRV_MAX_NAME + 1]
 * and path[pathcap]. 0, or -1 with *err. */
int srv_lora_body_parse(const char *body, size_t len, int need_path, char *name, char *path, size_t pathcap,
                        srv_parse_error *err);
/* 1 when name can be an adapter's name: 1..SRV_MAX_NAME bytes of [A-Za-z0-9._-], not
 * starting with '.' (so it is one path component and needs no quoting anywhere). */
int srv_name_ok(const char *name);
/* Index of the first byte of s[0..len) that is not valid UTF-8, or -1. */
long srv_utf8_invalid_at(const char *s, size_t len);

/* ---- metrics.c: counters and histograms, formatted as Prometheus text ---- */

#define SRV_HIST_BUCKETS 16
typedef struct srv_histogram {
    const double *bounds;        /* [SRV_HIST_BUCKETS] upper bounds in seconds, static */
    uint64_t counts[SRV_HIST_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t n;
} srv_histogram;

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t prompt_tokens, generation_tokens;
    uint64_t finished[4];        /* by reason: stop, length, abort, error */
    uint64_t http_requests[6];   /* by status class: 2xx, 400, 401, 404, 413/429/503, 5xx other */
    srv_histogram ttft, itl, e2e, queue;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
void srv_metrics_observe(srv_metrics *m, srv_histogram *h, double seconds);
/* A request ended: its token counts and reason (0 stop, 1 length, 2 abort, 3 error). */
void srv_metrics_finished(srv_metrics *m, int prompt_tokens, int generation_tokens, int reason);
void srv_metrics_http(srv_metrics *m, int status);
/* The Prometheus text of m and the queue (vLLM's names, model_name label = model).
 * Caller owns the result; free with free(). NULL when memory ran out. */
char *srv_metrics_text(srv_metrics *m, const srv_backend_load *load, const char *running_adapters,
                       const char *waiting_adapters, int max_lora, const char *model);

/* ---- lora.c: the adapters the server knows by name (vLLM's load/unload) ---- */

typedef struct srv_lora srv_lora;
/* root: NULL, or the folder that confines every adapter path (realpath'ed here); a
 * request naming an unknown NAME loads ROOT/NAME just in time. e borrowed. Caller owns
 * the result; free with srv_lora_free(). NULL (with why[cap]) when root is not a folder. */
srv_lora *srv_lora_new(lorajit_engine *e, const char *root, char *why, size_t cap);
void srv_lora_free(srv_lora *l);
/* Loads (validates, then registers with the engine's adapter cache) name from path.
 * Returns an HTTP status: 200, 400 (bad path, outside ROOT, not an adapter, name
 * taken), 503 (the engine has no slot to validate it in); why[cap] says why. */
int srv_lora_load(srv_lora *l, const char *name, const char *path, char *why, size_t cap);
/* Unloads name once no running request uses it. 200, or 404 with why. */
int srv_lora_unload(srv_lora *l, const char *name, char *why, size_t cap);
/* Takes a reference on name for one request (loading ROOT/NAME first when it is
 * unknown and ROOT is set): 200, 404 (unknown), or 400/503 from the load. */
int srv_lora_acquire(srv_lora *l, const char *name, char *why, size_t cap);
void srv_lora_release(srv_lora *l, const char *name);
/* Calls fn(user, name, path, created) for each known adapter, in load order. */
void srv_lora_each(srv_lora *l, void (*fn)(void *user, const char *name, const char *path, long created),
                   void *user);

#endif /* LORAJIT_SERVER_H */
