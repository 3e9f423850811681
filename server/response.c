/* response.c — the server's answers as OpenAI writes them: completion and chat
 * bodies, their server-sent-event chunks ("data: {...}\n\n", then "data: [DONE]"),
 * the model list as vLLM gives it, and error bodies
 * {"error": {"message", "type", "param", "code"}}. Input: srv_output and plain
 * values; output: text the caller frees with free(). NULL only when memory ran out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server.h"
#include "session.h"

/* cJSON's printed text, as a malloc'ed string with a prefix and suffix; o deleted. */
static char *print_wrapped(cJSON *o, const char *prefix, const char *suffix) {
    char *json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!json) return NULL;
    size_t n = strlen(prefix) + strlen(json) + strlen(suffix) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s%s", prefix, json, suffix);
    cJSON_free(json);
    return out;
}

static const char *error_type(int status) {
    switch (status) {
    case 400: case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return "server_error";
    }
}

static const char *error_code(int status) {
    switch (status) {
    case 401: return "invalid_api_key";
    case 404: return "model_not_found";
    case 413: return "request_too_large";
    case 429: return "queue_full";
    case 503: return "server_not_ready";
    default: return NULL;
    }
}

char *srv_error_body(int status, const char *message, const char *param) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", error_type(status));
    if (param && param[0]) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    const char *code = error_code(status);
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNumberToObject(e, "code", status);
    return print_wrapped(o, "", "\n");
}

void srv_reply_error(srv_reply *reply, int status, const char *message, const char *param) {
    free(reply->body);
    reply->status = status;
    reply->body = srv_error_body(status, message, param);
    reply->content_type = "application/json";
}

/* A string of len bytes (the text may hold NUL bytes: they end it, as JSON text cannot carry them raw). */
static cJSON *add_text(cJSON *o, const char *name, const char *text, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (len) memcpy(s, text, len);
    s[len] = '\0';
    cJSON *item = cJSON_AddStringToObject(o, name, s);
    free(s);
    return item;
}

static void add_usage(cJSON *o, const srv_output *out) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", out->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", out->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", out->prompt_tokens + out->completion_tokens);
}

/* The object every body and chunk starts with. */
static cJSON *head(const srv_output *out, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", out->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)out->created);
    cJSON_AddStringToObject(o, "model", out->model);
    return o;
}

/* A token's text as a JSON list of its bytes (chat logprobs' "bytes"). */
static cJSON *token_bytes(const char *t) {
    cJSON *a = cJSON_CreateArray();
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) cJSON_AddItemToArray(a, cJSON_CreateNumber(*p));
    return a;
}

/* One token's entry of completions' logprobs: its text, log-probability and top_n
 * most likely (lp NULL: null for both, a prompt's first token), at text offset *off
 * (each token's text decoded alone), which it advances. */
static void add_completion_entry(const char *tok, const float *lp, char *const *top_tok, const float *top_lp, int top_n,
                                 size_t *off, cJSON *tokens, cJSON *lps, cJSON *tops, cJSON *offs) {
    cJSON_AddItemToArray(tokens, cJSON_CreateString(tok));
    cJSON_AddItemToArray(lps, lp ? cJSON_CreateNumber(*lp) : cJSON_CreateNull());
    cJSON *top = lp ? cJSON_CreateObject() : cJSON_CreateNull();
    for (int j = 0; lp && j < top_n; j++)
        if (!cJSON_GetObjectItemCaseSensitive(top, top_tok[j])) cJSON_AddNumberToObject(top, top_tok[j], top_lp[j]);
    cJSON_AddItemToArray(tops, top);
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)*off));
    *off += strlen(tok);
}

/* logprobs as OpenAI writes them: completions {tokens, token_logprobs, top_logprobs,
 * text_offset}; chat {content: [{token, logprob, bytes, top_logprobs}]}. */
static void add_logprobs(cJSON *c, const srv_output *out) {
    cJSON *l = cJSON_AddObjectToObject(c, "logprobs");
    if (out->chat) {
        cJSON *content = cJSON_AddArrayToObject(l, "content");
        for (int k = 0; k < out->n_ids; k++) {
            cJSON *t = cJSON_CreateObject(), *top;
            cJSON_AddItemToArray(content, t);
            cJSON_AddStringToObject(t, "token", out->tok[k]);
            cJSON_AddNumberToObject(t, "logprob", out->lp[k]);
            cJSON_AddItemToObject(t, "bytes", token_bytes(out->tok[k]));
            top = cJSON_AddArrayToObject(t, "top_logprobs");
            for (int j = 0; j < out->top_n; j++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddItemToArray(top, x);
                cJSON_AddStringToObject(x, "token", out->top_tok[k * out->top_n + j]);
                cJSON_AddNumberToObject(x, "logprob", out->top_lp[k * out->top_n + j]);
                cJSON_AddItemToObject(x, "bytes", token_bytes(out->top_tok[k * out->top_n + j]));
            }
        }
        return;
    }
    cJSON *tokens = cJSON_AddArrayToObject(l, "tokens"), *lps = cJSON_AddArrayToObject(l, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(l, "top_logprobs"), *offs = cJSON_AddArrayToObject(l, "text_offset");
    size_t off = out->text_offset;
    for (int p = 0; p < out->n_prompt_lp; p++) /* echo: the prompt's first, null for its first token */
        add_completion_entry(out->prompt_tok[p], p ? &out->prompt_lp[p - 1] : NULL,
                             p ? out->prompt_top_tok + (size_t)(p - 1) * out->top_n : NULL,
                             p ? out->prompt_top_lp + (size_t)(p - 1) * out->top_n : NULL, out->top_n, &off, tokens,
                             lps, tops, offs);
    for (int k = 0; k < out->n_ids; k++)
        add_completion_entry(out->tok[k], &out->lp[k], out->top_tok + (size_t)k * out->top_n,
                             out->top_lp + (size_t)k * out->top_n, out->top_n, &off, tokens, lps, tops, offs);
}

/* One choice: text (completions) or message / delta (chat), ids, finish_reason. */
static void add_choice(cJSON *o, const srv_output *out, int chunk) {
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (!out->chat) {
        add_text(c, "text", out->text, out->len);
    } else {
        cJSON *m = cJSON_AddObjectToObject(c, chunk ? "delta" : "message");
        if (!chunk || out->first) cJSON_AddStringToObject(m, "role", "assistant");
        if (!chunk || out->len || out->first) add_text(m, "content", out->text, out->len);
    }
    if (out->top_n >= 0) add_logprobs(c, out);
    else cJSON_AddNullToObject(c, "logprobs");
    if (out->finish) cJSON_AddStringToObject(c, "finish_reason", out->finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    int32_t none = 0;
    cJSON *ids = cJSON_CreateIntArray(out->n_ids ? out->ids : &none, out->n_ids); /* vLLM's token_ids */
    cJSON_AddItemToObject(c, "token_ids", ids);
}

char *srv_response_body(const srv_output *out) {
    cJSON *o = head(out, out->chat ? "chat.completion" : "text_completion");
    add_choice(o, out, 0);
    add_usage(o, out);
    return print_wrapped(o, "", "\n");
}

char *srv_response_chunk(const srv_output *out) {
    cJSON *o = head(out, out->chat ? "chat.completion.chunk" : "text_completion");
    add_choice(o, out, 1);
    return print_wrapped(o, "data: ", "\n\n");
}

char *srv_response_usage_chunk(const srv_output *out) {
    cJSON *o = head(out, out->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(o, "choices");
    add_usage(o, out);
    return print_wrapped(o, "data: ", "\n\n");
}

char *srv_response_error_chunk(int status, const char *message) {
    char *body = srv_error_body(status, message, NULL);
    if (!body) return NULL;
    size_t n = strlen(body);
    while (n && body[n - 1] == '\n') body[--n] = '\0';
    size_t cap = n + 32;
    char *out = malloc(cap);
    if (out) snprintf(out, cap, "data: %s\n\n", body);
    free(body);
    return out;
}

typedef struct model_list {
    cJSON *data;
    const char *base;
} model_list;

static void add_model(cJSON *data, const char *id, long created, const char *root, const char *parent) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "lorajit");
    cJSON_AddStringToObject(m, "root", root);
    if (parent) cJSON_AddStringToObject(m, "parent", parent);
    else cJSON_AddNullToObject(m, "parent");
    cJSON_AddItemToArray(data, m);
}

static void add_adapter(void *user, const char *name, const char *path, long created) {
    model_list *l = user;
    add_model(l->data, name, created, path, l->base);
}

char *srv_models_body(srv_lora *lora, const char *base, const char *base_root, long created) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    model_list l = {.data = cJSON_AddArrayToObject(o, "data"), .base = base};
    add_model(l.data, base, created, base_root, NULL);
    srv_lora_each(lora, add_adapter, &l);
    return print_wrapped(o, "", "\n");
}
