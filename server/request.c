/* request.c — OpenAI request bodies into srv_request (server.h), with no engine:
 * /v1/completions and /v1/chat/completions (model, prompt or messages, sampling,
 * stop, stream, echo, n = 1, logprobs) and vLLM's load/unload_lora_adapter bodies.
 * Input: any bytes. Output: a filled struct, or a 400 message naming the field.
 * Unknown fields are ignored (OpenAI does the same); a known field of the wrong
 * type or out of range is refused. Fuzzed by tests/fuzz/fuzz_request.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server.h"

static int fail(srv_parse_error *err, const char *param, const char *fmt, const char *detail) {
    snprintf(err->param, sizeof err->param, "%s", param);
    snprintf(err->message, sizeof err->message, fmt, param, detail ? detail : "");
    return -1;
}

long srv_utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (size_t)n > len - i - 1) return (long)i;
        unsigned cp = n == 0 ? c : c & (0x3F >> n);
        for (int k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return (long)i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (long)i;
        i += (size_t)n + 1;
    }
    return -1;
}

int srv_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n < 1 || n > SRV_MAX_NAME || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* The body as a JSON object (any bytes refused cleanly), or NULL with *err. */
static cJSON *parse_object(const char *body, size_t len, srv_parse_error *err) {
    char at[32];
    long bad = srv_utf8_invalid_at(body, len);
    if (bad >= 0) {
        snprintf(at, sizeof at, "%ld", bad);
        fail(err, "", "the body is not valid UTF-8%s (byte %s)", at);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fail(err, "", "the body is not a JSON object%s", "");
        return NULL;
    }
    return root;
}

/* A field that is absent or null reads as absent. */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}

/* number field in [lo, hi] (hi_open: < hi); 1 found, 0 absent, -1 bad. */
static int get_number(const cJSON *o, const char *name, double lo, double hi, double *v, srv_parse_error *err) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble)) return fail(err, name, "'%s' must be a number%s", "");
    if (f->valuedouble < lo || f->valuedouble > hi) {
        char range[96];
        snprintf(range, sizeof range, " in [%g, %g], got %g", lo, hi, f->valuedouble);
        return fail(err, name, "'%s' must be%s", range);
    }
    *v = f->valuedouble;
    return 1;
}

/* integer field in [lo, hi]; 1 found, 0 absent, -1 bad. */
static int get_int(const cJSON *o, const char *name, double lo, double hi, double *v, srv_parse_error *err) {
    const cJSON *f = field(o, name);
    if (f && (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble)))
        return fail(err, name, "'%s' must be an integer%s", "");
    return get_number(o, name, lo, hi, v, err);
}

static int get_bool(const cJSON *o, const char *name, int *v, srv_parse_error *err) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) return fail(err, name, "'%s' must be true or false%s", "");
    *v = cJSON_IsTrue(f);
    return 1;
}

/* ids of a JSON array of integers in [0, 2^31). */
static int get_ids(const cJSON *a, int32_t **ids, int *n, srv_parse_error *err) {
    int k = cJSON_GetArraySize(a);
    if (k < 1 || k > SRV_MAX_PROMPT_IDS) return fail(err, "prompt", "'%s' must hold 1..65536 token ids%s", "");
    if (!(*ids = malloc(sizeof **ids * (size_t)k))) return fail(err, "prompt", "'%s': out of memory%s", "");
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 ||
            x->valuedouble > 2147483647.0) {
            free(*ids);
            *ids = NULL;
            return fail(err, "prompt", "'%s' must be a string or a list of token ids (integers >= 0)%s", "");
        }
        (*ids)[i] = (int32_t)x->valuedouble;
    }
    *n = k;
    return 0;
}

/* prompt: a string, a list of ids, or a list of one string / one list of ids. */
static int get_prompt(const cJSON *o, srv_request *r, srv_parse_error *err) {
    const cJSON *p = field(o, "prompt");
    if (!p) return fail(err, "prompt", "'%s' is required%s", "");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && (cJSON_IsString(p->child) || cJSON_IsArray(p->child)))
        p = p->child;
    else if (cJSON_IsArray(p) && p->child && (cJSON_IsString(p->child) || cJSON_IsArray(p->child)))
        return fail(err, "prompt", "'%s': one prompt per request (n = 1)%s", "");
    if (cJSON_IsString(p)) {
        if (!p->valuestring[0]) return fail(err, "prompt", "'%s' is empty%s", "");
        if (!(r->prompt = strdup(p->valuestring))) return fail(err, "prompt", "'%s': out of memory%s", "");
        return 0;
    }
    if (!cJSON_IsArray(p)) return fail(err, "prompt", "'%s' must be a string or a list of token ids%s", "");
    return get_ids(p, &r->prompt_ids, &r->n_prompt_ids, err);
}

/* messages: [{role, content}] with content a string or a list of text parts, written
 * back with every content a string (what chat templates expect). */
static int get_messages(const cJSON *o, srv_request *r, srv_parse_error *err) {
    const cJSON *m = field(o, "messages");
    if (!m || !cJSON_IsArray(m) || !m->child)
        return fail(err, "messages", "'%s' must be a non-empty list of messages%s", "");
    cJSON *out = cJSON_CreateArray();
    int rc = out ? 0 : fail(err, "messages", "'%s': out of memory%s", "");
    for (const cJSON *x = m->child; x && !rc; x = x->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(x, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(x, "content");
        if (!cJSON_IsObject(x) || !cJSON_IsString(role)) {
            rc = fail(err, "messages", "'%s': each message must be an object with a string 'role'%s", "");
            break;
        }
        cJSON *copy = cJSON_Duplicate(x, 1);
        if (!copy || !cJSON_AddItemToArray(out, copy)) {
            cJSON_Delete(copy);
            rc = fail(err, "messages", "'%s': out of memory%s", "");
            break;
        }
        if (!content || cJSON_IsNull(content) || cJSON_IsString(content)) continue;
        if (!cJSON_IsArray(content)) {
            rc = fail(err, "messages", "'%s': 'content' must be a string or a list of text parts%s", "");
            break;
        }
        size_t len = 0;
        for (const cJSON *part = content->child; part; part = part->next) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
                rc = fail(err, "messages", "'%s': only text content parts ({\"type\": \"text\", \"text\": ...}) "
                          "are supported%s", "");
                break;
            }
            len += strlen(text->valuestring);
        }
        char *joined = rc ? NULL : malloc(len + 1);
        if (!rc && !joined) rc = fail(err, "messages", "'%s': out of memory%s", "");
        if (rc) break;
        joined[0] = '\0';
        for (const cJSON *part = content->child; part; part = part->next)
            strcat(joined, cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring);
        cJSON *s = cJSON_CreateString(joined);
        free(joined);
        if (!s || !cJSON_ReplaceItemInObjectCaseSensitive(copy, "content", s)) {
            cJSON_Delete(s);
            rc = fail(err, "messages", "'%s': out of memory%s", "");
        }
    }
    if (!rc && !(r->messages_json = cJSON_PrintUnformatted(out))) rc = fail(err, "messages", "'%s': out of memory%s", "");
    cJSON_Delete(out);
    return rc;
}

/* stop: a string or a list of at most 4 non-empty strings. */
static int get_stop(const cJSON *o, srv_request *r, srv_parse_error *err) {
    const cJSON *s = field(o, "stop");
    if (!s) return 0;
    const cJSON *one = cJSON_IsString(s) ? s : NULL;
    if (!one && !cJSON_IsArray(s)) return fail(err, "stop", "'%s' must be a string or a list of strings%s", "");
    if (!one && cJSON_GetArraySize(s) > SRV_MAX_STOP) return fail(err, "stop", "'%s' holds more than 4 strings%s", "");
    for (const cJSON *x = one ? one : s->child; x; x = one ? NULL : x->next) {
        if (!cJSON_IsString(x) || !x->valuestring[0] || strlen(x->valuestring) > SRV_MAX_STOP_LEN)
            return fail(err, "stop", "'%s' strings must be 1..256 bytes%s", "");
        if (!(r->stop[r->n_stop] = strdup(x->valuestring))) return fail(err, "stop", "'%s': out of memory%s", "");
        r->n_stop++;
    }
    return 0;
}

/* The sampling and output fields both endpoints share. */
static int get_common(const cJSON *o, srv_request *r, srv_parse_error *err) {
    double v;
    int k;
    const char *max_name = r->chat && field(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((k = get_int(o, max_name, 1, SRV_MAX_TOKENS, &v, err)) < 0) return -1;
    r->max_tokens = k ? (int)v : 16;
    if ((k = get_number(o, "temperature", 0, 100, &v, err)) < 0) return -1;
    r->temperature = k ? (float)v : 1.0f;
    if ((k = get_number(o, "top_p", 0, 1, &v, err)) < 0) return -1;
    if (k && v <= 0) return fail(err, "top_p", "'%s' must be in (0, 1]%s", "");
    r->top_p = k ? (float)v : 1.0f;
    if ((k = get_int(o, "top_k", -1, 1 << 30, &v, err)) < 0) return -1;
    r->top_k = k && v > 0 ? (int)v : 0;
    if ((k = get_number(o, "repetition_penalty", 0, 100, &v, err)) < 0) return -1;
    if (k && v <= 0) return fail(err, "repetition_penalty", "'%s' must be > 0%s", "");
    r->repetition_penalty = k ? (float)v : 1.0f;
    if ((k = get_int(o, "seed", 0, 18446744073709549568.0, &v, err)) < 0) return -1;
    r->has_seed = k;
    r->seed = k ? (uint64_t)v : 0;
    if ((k = get_int(o, "n", 1, 1, &v, err)) < 0) return fail(err, "n", "'%s': only n = 1 is supported%s", "");
    if ((k = get_int(o, "best_of", 1, 1, &v, err)) < 0) return fail(err, "best_of", "'%s': only 1 is supported%s", "");
    if (get_number(o, "frequency_penalty", 0, 0, &v, err) < 0)
        return fail(err, "frequency_penalty", "'%s': only 0 is supported (see repetition_penalty)%s", "");
    if (get_number(o, "presence_penalty", 0, 0, &v, err) < 0)
        return fail(err, "presence_penalty", "'%s': only 0 is supported (see repetition_penalty)%s", "");
    if (get_bool(o, "stream", &r->stream, err) < 0) return -1;
    const cJSON *so = field(o, "stream_options");
    if (so && !cJSON_IsObject(so)) return fail(err, "stream_options", "'%s' must be an object%s", "");
    if (so && get_bool(so, "include_usage", &r->include_usage, err) < 0) return -1;
    return get_stop(o, r, err);
}

int srv_request_parse(const char *body, size_t len, int chat, srv_request *r, srv_parse_error *err) {
    memset(r, 0, sizeof *r);
    memset(err, 0, sizeof *err);
    r->chat = chat;
    r->logprobs = -1;
    cJSON *o = parse_object(body, len, err);
    if (!o) return -1;
    int rc = 0;
    const cJSON *model = field(o, "model");
    if (model && (!cJSON_IsString(model) || strlen(model->valuestring) > 4096))
        rc = fail(err, "model", "'%s' must be a string%s", "");
    else if (model && !(r->model = strdup(model->valuestring)))
        rc = fail(err, "model", "'%s': out of memory%s", "");
    if (!rc) rc = chat ? get_messages(o, r, err) : get_prompt(o, r, err);
    if (!rc) rc = get_common(o, r, err);
    double v;
    int k;
    if (!rc && !chat) {
        if (get_bool(o, "echo", &r->echo, err) < 0) rc = -1;
        else if ((k = get_int(o, "logprobs", 0, SRV_MAX_LOGPROBS, &v, err)) < 0) rc = -1;
        else if (k) r->logprobs = (int)v;
    } else if (!rc) {
        int want = 0;
        if (get_bool(o, "logprobs", &want, err) < 0) rc = -1;
        else if ((k = get_int(o, "top_logprobs", 0, SRV_MAX_LOGPROBS, &v, err)) < 0) rc = -1;
        else if (want) r->logprobs = k ? (int)v : 0;
    }
    cJSON_Delete(o);
    if (rc) srv_request_free(r);
    return rc;
}

void srv_request_free(srv_request *r) {
    free(r->model);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->messages_json);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

int srv_lora_body_parse(const char *body, size_t len, int need_path, char *name, char *path, size_t pathcap,
                        srv_parse_error *err) {
    memset(err, 0, sizeof *err);
    cJSON *o = parse_object(body, len, err);
    if (!o) return -1;
    const cJSON *n = field(o, "lora_name"), *p = field(o, "lora_path");
    int rc = 0;
    if (!cJSON_IsString(n) || !srv_name_ok(n->valuestring))
        rc = fail(err, "lora_name", "'%s' must be 1..128 characters of [A-Za-z0-9._-], not starting with '.'%s", "");
    else if (need_path && (!cJSON_IsString(p) || !p->valuestring[0] || strlen(p->valuestring) >= pathcap))
        rc = fail(err, "lora_path", "'%s' must be a non-empty path%s", "");
    if (!rc) {
        snprintf(name, SRV_MAX_NAME + 1, "%s", n->valuestring);
        if (need_path) snprintf(path, pathcap, "%s", p->valuestring);
    }
    cJSON_Delete(o);
    return rc;
}
