/* routes.c — one function per endpoint: /v1/completions, /v1/chat/completions,
 * /v1/models, /v1/load_lora_adapter, /v1/unload_lora_adapter, /health, /metrics.
 * Input: the method, path and body (auth and the body cap are http.c's). Output: a
 * srv_reply (JSON, text, or a stream). A generation request is parsed (request.c),
 * its model resolved to the base or an adapter (lora.c: a reference for the whole
 * request), its prompt made into ids (tokenizer, chat template), admitted into the
 * backend (429 when the queue is full) and handed to session.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"

static void reply_text(srv_reply *reply, int status, const char *type, char *text) {
    reply->status = text ? status : 503;
    reply->body = text;
    reply->content_type = type;
    if (!text) srv_reply_error(reply, 503, "out of memory", "");
}

/* A seed for a request that gave none: different for every request. */
static uint64_t fresh_seed(unsigned long long rid) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t z = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^ (rid * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The request's prompt as ids (*ids caller-owned) and, with echo, its text (*echo
 * caller-owned). 0, or -1 with the reply's error. */
static int prompt_ids(srv_server *s, srv_request *req, int32_t **ids, int *n, char **echo, srv_reply *reply) {
    const char *param = req->chat ? "messages" : "prompt";
    if (!s->tok && (req->chat || req->prompt || req->n_stop)) {
        srv_reply_error(reply, 400, req->n_stop ? "'stop' needs a tokenizer: this model folder has no tokenizer.json"
                                   : req->chat ? "chat needs a tokenizer: this model folder has no tokenizer.json"
                                               : "text prompts need a tokenizer: this model folder has no "
                                                 "tokenizer.json; send token ids", req->n_stop ? "stop" : param);
        return -1;
    }
    char *rendered = NULL;
    lorajit_status st = LORAJIT_OK;
    if (req->chat) st = lorajit_tokenizer_apply_chat_template(s->tok, req->messages_json, 1, &rendered);
    const char *text = req->chat ? rendered : req->prompt;
    if (!st && text) st = lorajit_tokenizer_encode(s->tok, text, strlen(text), !req->chat, ids, n);
    lorajit_free(rendered);
    if (st) {
        char why[600];
        snprintf(why, sizeof why, "'%s': %s", param, lorajit_tokenizer_errmsg(s->tok));
        srv_reply_error(reply, st == LORAJIT_E_NOMEM ? 503 : 400, why, param);
        return -1;
    }
    if (!text) { /* given as ids */
        *ids = req->prompt_ids;
        *n = req->n_prompt_ids;
        req->prompt_ids = NULL;
    }
    if (*n < 1) {
        srv_reply_error(reply, 400, "the prompt is empty after tokenization", param);
        lorajit_free(*ids);
        return -1;
    }
    if (req->echo && req->prompt) *echo = strdup(req->prompt);
    else if (req->echo && s->tok) {
        size_t len;
        if (lorajit_tokenizer_decode(s->tok, *ids, *n, 1, echo, &len)) *echo = NULL;
    }
    return 0;
}

static void route_generate(srv_server *s, unsigned long long rid, int chat, const char *body, size_t len,
                           srv_reply *reply) {
    srv_request req;
    srv_parse_error perr;
    if (srv_request_parse(body, len, chat, &req, &perr)) return srv_reply_error(reply, 400, perr.message, perr.param);
    char why[600];
    const char *adapter = "";
    int32_t *ids = NULL;
    int n = 0;
    char *echo = NULL;
    if (req.logprobs > s->opt.max_logprobs) { /* with echo the prompt's come from the scheduler (session.c) */
        snprintf(why, sizeof why, "'logprobs': %s", s->opt.max_logprobs ? "more than the server's --max-logprobs"
                 : "this server was started without --max-logprobs N");
        srv_reply_error(reply, 400, why, req.chat ? "top_logprobs" : "logprobs");
        goto fail;
    }
    if (!req.model && !(req.model = strdup(s->opt.served_name))) {
        srv_reply_error(reply, 503, "out of memory", "");
        goto fail;
    }
    if (strcmp(req.model, s->opt.served_name)) {
        int status = srv_lora_acquire(s->lora, req.model, why, sizeof why);
        if (status != 200) {
            srv_reply_error(reply, status, why, status == 404 ? "model" : "");
            goto fail;
        }
        adapter = req.model;
    }
    snprintf(reply->adapter, sizeof reply->adapter, "%s", adapter);
    if (prompt_ids(s, &req, &ids, &n, &echo, reply)) goto fail;
    lorajit_sampling sm = s->eos;
    sm.temperature = req.temperature;
    sm.top_p = req.top_p;
    sm.top_k = req.top_k;
    sm.repetition_penalty = req.repetition_penalty;
    sm.seed = req.has_seed ? req.seed : fresh_seed(rid);
    srv_job *job = srv_backend_admit(s->backend, adapter);
    if (!job) {
        srv_reply_error(reply, 429, "the server's queue is full; retry later", "");
        goto fail;
    }
    char adapter_copy[SRV_MAX_NAME + 1];
    snprintf(adapter_copy, sizeof adapter_copy, "%s", adapter);
    int stream = req.stream;
    srv_gen *g = srv_gen_new(s, &req, ids, n, adapter_copy, job, &sm, echo, rid); /* owns them all now */
    free(echo);
    if (!g) return srv_reply_error(reply, 503, "out of memory", "");
    if (stream) srv_gen_run_stream(g, reply);
    else srv_gen_run_body(g, reply);
    return;
fail:
    if (adapter[0]) srv_lora_release(s->lora, adapter);
    lorajit_free(ids);
    free(echo);
    srv_request_free(&req);
}

static void route_lora(srv_server *s, int load, const char *body, size_t len, srv_reply *reply) {
    char name[SRV_MAX_NAME + 1], path[4096], why[1200];
    srv_parse_error perr;
    if (srv_lora_body_parse(body, len, load, name, path, sizeof path, &perr))
        return srv_reply_error(reply, 400, perr.message, perr.param);
    snprintf(reply->adapter, sizeof reply->adapter, "%s", name);
    if (load && !strcmp(name, s->opt.served_name))
        return srv_reply_error(reply, 400, "lora_name: that is the base model's name", "lora_name");
    int status = load ? srv_lora_load(s->lora, name, path, why, sizeof why) : srv_lora_unload(s->lora, name, why, sizeof why);
    if (status != 200) return srv_reply_error(reply, status, why, status == 400 ? (load ? "lora_path" : "lora_name") : "");
    char msg[300];
    snprintf(msg, sizeof msg, "Success: LoRA adapter '%s' %s successfully.", name, load ? "added" : "removed");
    reply_text(reply, 200, "text/plain", strdup(msg));
}

static void route_metrics(srv_server *s, srv_reply *reply) {
    srv_backend_load load;
    char running[1024], waiting[1024];
    srv_backend_state(s->backend, &load, running, waiting, sizeof running);
    reply_text(reply, 200, "text/plain; version=0.0.4",
               srv_metrics_text(&s->metrics, &load, running, waiting, s->opt.max_lora, s->opt.served_name));
}

void srv_route(srv_server *s, unsigned long long rid, const char *method, const char *path, const char *body,
               size_t len, srv_reply *reply) {
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    static const char *const gets[] = {"/health", "/metrics", "/v1/models"};
    static const char *const posts[] = {"/v1/completions", "/v1/chat/completions", "/v1/load_lora_adapter",
                                        "/v1/unload_lora_adapter"};
    int g = -1, p = -1;
    for (int i = 0; i < 3; i++) if (!strcmp(path, gets[i])) g = i;
    for (int i = 0; i < 4; i++) if (!strcmp(path, posts[i])) p = i;
    if (g < 0 && p < 0) return srv_reply_error(reply, 404, "no such endpoint", "");
    if ((g >= 0 && !get) || (p >= 0 && !post)) return srv_reply_error(reply, 405, "method not allowed", "");
    if (!atomic_load(&s->ready)) return srv_reply_error(reply, 503, "the model is still loading", "");
    if (g == 0) return reply_text(reply, 200, "application/json", strdup("{\"status\":\"ok\"}\n"));
    if (g == 1) return route_metrics(s, reply);
    if (g == 2) return reply_text(reply, 200, "application/json",
                                  srv_models_body(s->lora, s->opt.served_name, s->opt.model_dir, s->started));
    if (p <= 1) return route_generate(s, rid, p == 1, body, len, reply);
    route_lora(s, p == 2, body, len, reply);
}
