/* cli_batch.c — `lorajit generate --batch FILE` for a JSONL file: every request goes
 * through the library's scheduler (lorajit_sched_*), so requests join and leave the
 * running batch as they start and finish (continuous batching).
 * Input: one JSON object a line: "prompt" (ids) or "text" / "chat" (with a
 * tokenizer), and optionally "adapter" ("NAME[:W][,NAME[:W]...]", or a list of names
 * with "weights"), "max_new", "temperature", "top_k", "top_p", "repetition_penalty",
 * "seed", "eos", "stop" (strings and/or lists of ids) and "id" (echoed back); the
 * command line's options are the defaults. Every line is checked before any runs.
 * Output: one JSON line per request, in the file's order, with its ids, its text
 * (with a tokenizer), finish reason (and error) and times; the totals on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_file.h"

#define MAX_NAMES 64

/* One line of the file, parsed. */
typedef struct batch_req {
    cJSON *json;                 /* owned: the line */
    int32_t *prompt;             /* owned [n_prompt] */
    int n_prompt;
    char *spec;                  /* owned copy of "adapter" split in place */
    const char *names[MAX_NAMES];
    float weights[MAX_NAMES];
    int n_names;
    lorajit_sampling s;
    int max_new;
    const char *stop_str[16];    /* into json */
    int32_t *stop_ids[16];       /* owned */
    int stop_len[16], n_stop_str, n_stop_ids;
    int64_t id;                  /* the scheduler's */
} batch_req;

static void req_free(batch_req *r) {
    cJSON_Delete(r->json);
    free(r->prompt);
    free(r->spec);
    for (int i = 0; i < r->n_stop_ids; i++) free(r->stop_ids[i]);
}

/* A list of ids into *out (caller frees). 0, or why. */
static int ids_of(const cJSON *a, int32_t **out, int *n, char *why, size_t cap) {
    int k = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || k < 1) return snprintf(why, cap, "want a non-empty list of token ids"), -1;
    int32_t *ids = malloc(sizeof *ids * (size_t)k);
    if (!ids) return snprintf(why, cap, "out of memory"), -1;
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 2147483647.0 ||
            x->valuedouble != (double)(int32_t)x->valuedouble) {
            free(ids);
            return snprintf(why, cap, "item %d is not a token id", i), -1;
        }
        ids[i] = (int32_t)x->valuedouble;
    }
    *out = ids, *n = k;
    return 0;
}

/* "adapter": a "NAME[:W],..." string or a list of names (with "weights"). */
static int take_adapter(batch_req *r, char *why, size_t cap) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r->json, "adapter");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(r->json, "weights");
    if (!a || cJSON_IsNull(a)) return 0;
    if (cJSON_IsArray(a)) {
        for (const cJSON *x = a->child; x; x = x->next) {
            if (!cJSON_IsString(x) || r->n_names == MAX_NAMES) return snprintf(why, cap, "\"adapter\": names only"), -1;
            const cJSON *wx = cJSON_GetArrayItem(w, r->n_names);
            if (w && !cJSON_IsNumber(wx)) return snprintf(why, cap, "\"weights\" must match \"adapter\""), -1;
            r->weights[r->n_names] = wx ? (float)wx->valuedouble : 1.0f;
            r->names[r->n_names++] = x->valuestring;
        }
        return 0;
    }
    if (!cJSON_IsString(a)) return snprintf(why, cap, "\"adapter\" must be a string or a list of names"), -1;
    if (!strcmp(a->valuestring, "-")) return 0; /* the base model, as in the plain batch file */
    if (!(r->spec = strdup(a->valuestring))) return snprintf(why, cap, "out of memory"), -1;
    for (char *item = r->spec; *r->spec && item;) {
        char *comma = strchr(item, ','), *colon, *end;
        if (comma) *comma = '\0';
        float wt = 1.0f;
        if ((colon = strchr(item, ':'))) {
            *colon = '\0';
            wt = strtof(colon + 1, &end);
            if (end == colon + 1 || *end) return snprintf(why, cap, "\"adapter\": bad weight '%s'", colon + 1), -1;
        }
        if (!*item || r->n_names == MAX_NAMES) return snprintf(why, cap, "\"adapter\": an empty name"), -1;
        r->weights[r->n_names] = wt;
        r->names[r->n_names++] = item;
        item = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* A number field into *v when present (lo..hi). */
static int num(const cJSON *o, const char *key, double lo, double hi, double *v, char *why, size_t cap) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x) return 0;
    if (!cJSON_IsNumber(x) || x->valuedouble < lo || x->valuedouble > hi)
        return snprintf(why, cap, "\"%s\" must be a number in [%g, %g]", key, lo, hi), -1;
    *v = x->valuedouble;
    return 0;
}

static int parse_line(const char *line, const lorajit_tokenizer *t, const lorajit_sampling *s, int max_new,
                      batch_req *r, char *why, size_t cap) {
    *r = (batch_req){.s = *s, .max_new = max_new};
    if (!(r->json = cJSON_Parse(line)) || !cJSON_IsObject(r->json)) return snprintf(why, cap, "not a JSON object"), -1;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->json, "prompt");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(r->json, "text");
    const cJSON *chat = cJSON_GetObjectItemCaseSensitive(r->json, "chat");
    if (!!p + !!text + !!chat != 1) return snprintf(why, cap, "give one of \"prompt\", \"text\" or \"chat\""), -1;
    if (p && ids_of(p, &r->prompt, &r->n_prompt, why, cap)) return -1;
    const cJSON *tx = text ? text : chat;
    if (tx && !cJSON_IsString(tx)) return snprintf(why, cap, "\"%s\" must be a string", text ? "text" : "chat"), -1;
    if (tx && !t) return snprintf(why, cap, "text needs a tokenizer (the model's tokenizer.json or --tokenizer)"), -1;
    if (tx && cli_encode_prompt("generate", t, tx->valuestring, !!chat, &r->prompt, &r->n_prompt)) return -1;
    double v;
    if (take_adapter(r, why, cap)) return -1;
    if ((v = r->max_new, num(r->json, "max_new", 1, 1 << 20, &v, why, cap))) return -1;
    r->max_new = (int)v;
    double temp = r->s.temperature, top_k = r->s.top_k, top_p = r->s.top_p, rep = r->s.repetition_penalty;
    double seed = (double)r->s.seed, eos = r->s.eos_id;
    if (num(r->json, "temperature", 0, 1e6, &temp, why, cap) || num(r->json, "top_k", 0, 1 << 30, &top_k, why, cap) ||
        num(r->json, "top_p", 0, 1, &top_p, why, cap) || num(r->json, "repetition_penalty", 0, 1e6, &rep, why, cap) ||
        num(r->json, "seed", 0, 9007199254740992.0, &seed, why, cap) || num(r->json, "eos", -1, 1 << 30, &eos, why, cap))
        return -1;
    r->s.temperature = (float)temp, r->s.top_k = (int)top_k, r->s.top_p = (float)top_p;
    r->s.repetition_penalty = (float)rep, r->s.seed = (uint64_t)seed, r->s.eos_id = (int)eos;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(r->json, "stop");
    for (const cJSON *x = cJSON_IsArray(stop) ? stop->child : NULL; x; x = x->next) {
        if (r->n_stop_str == 16 || r->n_stop_ids == 16) return snprintf(why, cap, "\"stop\": at most 16 of each"), -1;
        if (cJSON_IsString(x)) r->stop_str[r->n_stop_str++] = x->valuestring;
        else if (ids_of(x, &r->stop_ids[r->n_stop_ids], &r->stop_len[r->n_stop_ids], why, cap)) return -1;
        else r->n_stop_ids++;
    }
    if (stop && !cJSON_IsArray(stop)) return snprintf(why, cap, "\"stop\" must be a list"), -1;
    return 0;
}

/* Reads every line of path into *reqs (*n). 0, or prints why and returns -1. */
static int read_jsonl(const char *path, const lorajit_tokenizer *t, const lorajit_sampling *s, int max_new,
                      batch_req **reqs, int *n) {
    char why[4400];
    FILE *f = cli_open_read("--batch", path, 1, why, sizeof why);
    if (!f) return fprintf(stderr, "lorajit generate: %s\n", why), -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, room = 0;
    long lineno = 0;
    while (rc == 0 && getline(&line, &cap, f) != -1) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0') continue;
        if (*n == room) {
            batch_req *more = realloc(*reqs, sizeof *more * (size_t)(room = room ? 2 * room : 16));
            if (!more) { rc = -1; snprintf(why, sizeof why, "out of memory"); break; }
            *reqs = more;
        }
        rc = parse_line(line, t, s, max_new, &(*reqs)[*n], why, sizeof why);
        (*n)++; /* req_free frees it either way */
    }
    if (rc) fprintf(stderr, "lorajit generate: %s: line %ld: %s\n", path, lineno, why);
    else if (ferror(f)) rc = -1, fprintf(stderr, "lorajit generate: %s: read error\n", path);
    else if (*n == 0) rc = -1, fprintf(stderr, "lorajit generate: %s holds no requests\n", path);
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* The output line of request i. */
static void print_result(int i, const batch_req *r, const lorajit_sched_result *res, const lorajit_tokenizer *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r->json, "id");
    if (id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, 1));
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
    for (int k = 0; k < res->n_tokens; k++) cJSON_AddItemToArray(toks, cJSON_CreateNumber(res->tokens[k]));
    char *text = NULL;
    size_t len;
    if (t && lorajit_tokenizer_decode(t, res->tokens, res->n_tokens, 1, &text, &len) == LORAJIT_OK)
        cJSON_AddStringToObject(o, "text", text);
    lorajit_free(text);
    cJSON_AddStringToObject(o, "finish", lorajit_finish_str(res->finish));
    if (res->finish == LORAJIT_FINISH_ERROR) cJSON_AddStringToObject(o, "error", res->error);
    cJSON_AddNumberToObject(o, "n_prompt", res->n_prompt);
    cJSON_AddNumberToObject(o, "n_tokens", res->n_tokens);
    cJSON_AddNumberToObject(o, "queue_ms", res->queue_ms);
    cJSON_AddNumberToObject(o, "ttft_ms", res->ttft_ms);
    cJSON_AddNumberToObject(o, "total_ms", res->total_ms);
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(o);
}

int cli_batch_is_jsonl(const char *path) {
    struct stat sb; /* a FIFO or device is never opened here: the reader refuses it by kind */
    if (strcmp(path, "-") && (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))) return 0;
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) return 0; /* the reader says why */
    int c;
    while ((c = getc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n') {}
    if (f == stdin && c != EOF) ungetc(c, f);
    else if (f != stdin) fclose(f);
    return c == '{';
}

int cli_batch_run(cli_common *c, const char *path, const lorajit_sampling *s, int max_new, const lorajit_tokenizer *t,
                  const char *const *adapters, int n_adapters, const char *adapter_dir) {
    batch_req *reqs = NULL;
    int n = 0, rc = 1;
    lorajit_engine *e = NULL;
    lorajit_sched *sch = NULL;
    if (read_jsonl(path, t, s, max_new, &reqs, &n)) goto done;
    if (!c->opts.max_batch && !c->artifact) c->opts.max_batch = n < 16 ? n : 16; /* requests running at once */
    if (!(e = open_engine(c)) || load_adapters(c, e, "generate", adapters, n_adapters)) goto done;
    if (adapter_dir && lorajit_set_adapter_dir(e, adapter_dir) != LORAJIT_OK) {
        fprintf(stderr, "lorajit generate: --adapter-dir: %s\n", lorajit_errmsg(e));
        goto done;
    }
    lorajit_sched_options o = {.tokenizer = t};
    if (lorajit_sched_open(e, &o, &sch) != LORAJIT_OK) {
        fprintf(stderr, "lorajit generate: %s\n", lorajit_sched_errmsg(sch));
        goto done;
    }
    for (int i = 0; i < n; i++) {
        batch_req *r = &reqs[i];
        const int32_t *stop_ids[16];
        for (int k = 0; k < r->n_stop_ids; k++) stop_ids[k] = r->stop_ids[k];
        lorajit_sched_request q = {.prompt = r->prompt, .n_prompt = r->n_prompt, .adapters = r->names,
                                   .weights = r->weights, .n_adapters = r->n_names, .max_new = r->max_new,
                                   .sampling = &r->s, .stop_seqs = stop_ids, .stop_lens = r->stop_len,
                                   .n_stop_seqs = r->n_stop_ids, .stop_strings = r->stop_str,
                                   .n_stop_strings = r->n_stop_str};
        if (lorajit_sched_submit(sch, &q, &r->id) != LORAJIT_OK) {
            fprintf(stderr, "lorajit generate: %s: request %d: %s\n", path, i, lorajit_sched_errmsg(sch));
            goto done;
        }
    }
    double t0 = now_ms();
    if (lorajit_sched_run_until_idle(sch) != LORAJIT_OK) {
        fprintf(stderr, "lorajit generate: %s\n", lorajit_sched_errmsg(sch));
        goto done;
    }
    double ms = now_ms() - t0;
    long tokens = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        lorajit_sched_result res;
        if (lorajit_sched_take(sch, reqs[i].id, &res) != LORAJIT_OK) continue;
        print_result(i, &reqs[i], &res, t);
        tokens += res.n_tokens;
        failed += res.finish == LORAJIT_FINISH_ERROR;
        lorajit_free(res.tokens), lorajit_free(res.token_ms);
    }
    if (progress_on(c))
        fprintf(stderr, "lorajit: generate: %ld tokens for %d requests in %.1f ms (%.1f tok/s), %ld failed\n", tokens,
                n, ms, ms > 0 ? tokens * 1e3 / ms : 0.0, failed);
    rc = failed ? 1 : 0;
done:
    lorajit_sched_free(sch);
    lorajit_engine_free(e);
    for (int i = 0; i < n; i++) req_free(&reqs[i]);
    free(reqs);
    return rc;
}
