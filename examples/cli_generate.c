/* cli_generate.c — `lorajit generate` and the script language's `generate` line.
 *
 * Input: a model folder, adapters (--adapter NAME=DIR), one prompt (--prompt ids,
 * --text or --chat, with --use for its adapters) or a batch file (one request a
 * line: ADAPTER|- PROMPT [MAX_NEW]) and the sampling options. EOS comes from the
 * model's tokenizer files (lorajit_tokenizer_eos_ids) unless --eos is given.
 * Output on stdout: the generated text as it streams (--text, --chat; the ids too
 * with --print-ids) or the ids as they are produced (comma-separated; in a batch
 * one "REQUEST: ID" line each), then per request its ids, then "prefill: N tokens
 * in X ms (Y tok/s); decode: ...".
 * A batch runs as one lorajit_generate call (several when it exceeds --max-batch); a
 * JSONL batch file runs through the scheduler instead (cli_batch.c). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_file.h"

#define DEFAULT_MAX_NEW 16

/* One request of the command line or the batch file. */
typedef struct cli_req {
    char *adapter;    /* owned "NAME[:W],..." or NULL (the engine's set: no adapter) */
    int32_t *prompt;  /* [n_prompt] owned */
    int n_prompt;
    int max_new;
    int32_t *out;     /* [max_new] owned */
    int n_out;
} cli_req;

typedef struct cli_gen {
    cli_req *reqs;    /* [n] owned */
    int n, cap;
} cli_gen;

static void gen_free(cli_gen *g) {
    for (int i = 0; i < g->n; i++) {
        free(g->reqs[i].adapter);
        free(g->reqs[i].prompt);
        free(g->reqs[i].out);
    }
    free(g->reqs);
}

/* Adds a request (adapter NULL or "-": none). Takes ownership of prompt, also on failure. */
static int gen_add(cli_gen *g, const char *adapter, int32_t *prompt, int n_prompt, int max_new) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 8;
        cli_req *more = realloc(g->reqs, sizeof *more * cap);
        if (!more) { free(prompt); return -1; }
        g->reqs = more;
        g->cap = cap;
    }
    cli_req *r = &g->reqs[g->n];
    *r = (cli_req){.prompt = prompt, .n_prompt = n_prompt, .max_new = max_new};
    r->out = malloc(sizeof *r->out * (size_t)(max_new > 0 ? max_new : 1));
    r->adapter = adapter && strcmp(adapter, "-") ? strdup(adapter) : NULL;
    g->n++; /* from here gen_free frees it */
    return !r->out || (adapter && strcmp(adapter, "-") && !r->adapter) ? -1 : 0;
}

/* Reads the batch file: ADAPTER|- PROMPT [MAX_NEW] a line, '#' comments. */
static int read_batch(const char *path, int max_new, cli_gen *g) {
    char why[4400];
    FILE *f = cli_open_read("--batch", path, 1, why, sizeof why);
    if (!f) {
        fprintf(stderr, "lorajit generate: %s\n", why);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) != -1) {
        lineno++;
        line[strcspn(line, "#\r\n")] = '\0';
        char *w[3];
        int n = split_words(line, w, 3);
        if (n == 0) continue;
        int32_t *prompt = NULL;
        int n_prompt = 0;
        long m = max_new;
        if (n < 2 || (n == 3 && parse_int(w[2], 1, 1 << 20, &m))) {
            snprintf(why, sizeof why, "want ADAPTER|- PROMPT [MAX_NEW] (MAX_NEW a positive integer)");
            rc = -1;
        } else if (parse_tokens(w[1], &prompt, &n_prompt, why, sizeof why)) {
            rc = -1;
        } else if (gen_add(g, w[0], prompt, n_prompt, (int)m)) {
            snprintf(why, sizeof why, "out of memory");
            rc = -1;
        }
        if (rc) fprintf(stderr, "lorajit generate: %s: line %ld: %s\n", path, lineno, why);
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "lorajit generate: %s: read error after line %ld\n", path, lineno);
        rc = -1;
    }
    free(line);
    if (f != stdin) fclose(f);
    if (rc == 0 && g->n == 0) {
        fprintf(stderr, "lorajit generate: %s holds no requests\n", path);
        rc = -1;
    }
    return rc;
}

/* on_token: the ids of one request comma-separated on a line, or "REQUEST: ID" lines;
 * and the token counter on stderr. */
typedef struct printer {
    int batch;        /* more than one request */
    int base;         /* index of the first request of this lorajit_generate call */
    int printed;      /* ids printed (single request) */
    int counter;      /* 0 none; 1 one line rewritten ('\r': stderr a terminal, stdout not);
                         2 a line at every tenth of the total (stderr not a terminal) */
    int count, total; /* tokens so far, at most (the sum of max_new) */
    double shown_ms;  /* when the rewritten line was last shown (at most every 100 ms) */
    lorajit_detokenizer *detok; /* text mode: the ids stream through it as text; else NULL */
    int detok_failed;
} printer;

/* Text mode: the text that token completes (nothing for half a character). */
static void print_text(printer *p, int32_t token) {
    const char *text;
    size_t len;
    if (p->detok_failed) return;
    if (lorajit_detokenizer_push(p->detok, token, &text, &len) != LORAJIT_OK) {
        fprintf(stderr, "\nlorajit generate: %s\n", lorajit_detokenizer_errmsg(p->detok));
        p->detok_failed = 1;
        return;
    }
    fwrite(text, 1, len, stdout);
}

static void print_token(void *user, int request, int32_t token) {
    printer *p = user;
    if (p->batch) printf("%d: %d\n", p->base + request, (int)token);
    else if (p->detok) print_text(p, token);
    else printf("%s%d", p->printed++ ? "," : "", (int)token);
    fflush(stdout);
    p->count++;
    int show = p->counter == 2 && p->count * 10 / p->total != (p->count - 1) * 10 / p->total;
    if (p->counter == 1 && (p->count == p->total || now_ms() - p->shown_ms >= 100)) {
        p->shown_ms = now_ms();
        show = 1;
    }
    if (show)
        fprintf(stderr, "%slorajit: generate: %d/%d tokens%s", p->counter == 1 ? "\r" : "", p->count, p->total,
                p->counter == 1 ? "" : "\n");
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Sampling and request options of `generate`: 1 taken, 0 not one of them, -1 bad. */
static int take_sampling(int argc, char **argv, int *i, lorajit_sampling *s, long *max_new) {
    static const char *const names[] = {"--max-new", "--temperature", "--top-k", "--top-p",
                                        "--repetition-penalty", "--seed", "--eos"};
    const char *a = argv[*i];
    int k = 0;
    while (k < 7 && strcmp(a, names[k])) k++;
    if (k == 7) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "lorajit generate: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    long n = 0;
    int bad = 0;
    switch (k) {
    case 0: bad = parse_int(v, 1, 1 << 20, max_new); break;
    case 1: bad = parse_float(v, &s->temperature) || s->temperature < 0; break;
    case 2: bad = parse_int(v, 0, INT_MAX, &n); s->top_k = (int)n; break;
    case 3: bad = parse_float(v, &s->top_p) || s->top_p <= 0 || s->top_p > 1; break;
    case 4: bad = parse_float(v, &s->repetition_penalty) || s->repetition_penalty <= 0; break;
    case 5: {
        char *end;
        errno = 0;
        unsigned long long seed = strtoull(v, &end, 10);
        bad = errno || end == v || *end || v[0] == '-';
        s->seed = seed;
        break;
    }
    case 6: bad = parse_int(v, 0, INT_MAX, &n); s->eos_id = (int)n; break;
    }
    if (bad) fprintf(stderr, "lorajit generate: bad value '%s' for %s\n", v, a);
    return bad ? -1 : 1;
}

/* Runs g's requests in calls of at most batch requests; prints as it goes (the
 * token counter too when progress_on(c)). */
static int run_requests(const cli_common *c, lorajit_engine *e, cli_gen *g, int batch, const lorajit_sampling *s,
                        lorajit_detokenizer *detok, int print_ids) {
    lorajit_request *r = malloc(sizeof *r * (size_t)batch);
    if (!r) return -1;
    printer p = {.batch = g->n > 1, .detok = detok};
    /* both on one terminal: the ids on stdout already show the progress */
    if (progress_on(c)) p.counter = !isatty(2) ? 2 : !isatty(1) ? 1 : 0;
    for (int i = 0; i < g->n; i++) p.total += g->reqs[i].max_new;
    double t0 = now_ms();
    int rc = 0;
    for (int base = 0; base < g->n && rc == 0; base += batch) {
        int n = g->n - base < batch ? g->n - base : batch;
        for (int i = 0; i < n; i++) {
            cli_req *q = &g->reqs[base + i];
            r[i] = (lorajit_request){q->prompt, q->n_prompt, q->adapter, q->max_new, q->out, 0, 0};
        }
        p.base = base;
        if (lorajit_generate(e, r, n, s, print_token, &p) != LORAJIT_OK) {
            fflush(stdout);
            fprintf(stderr, "lorajit generate: %s\n", lorajit_errmsg(e));
            rc = -1;
        }
        for (int i = 0; i < n; i++) g->reqs[base + i].n_out = r[i].n_out;
    }
    if (detok && rc == 0) {
        const char *text;
        size_t len;
        if (!p.detok_failed && lorajit_detokenizer_flush(detok, &text, &len) == LORAJIT_OK) fwrite(text, 1, len, stdout);
        else if (!p.detok_failed) fprintf(stderr, "lorajit generate: %s\n", lorajit_detokenizer_errmsg(detok));
        if (p.detok_failed) rc = -1;
    }
    if (p.counter == 1) fputc('\n', stderr);
    if (progress_on(c))
        fprintf(stderr, "lorajit: generate: %d tokens for %d request%s in %.1f ms%s\n", p.count, g->n,
                g->n > 1 ? "s" : "", now_ms() - t0, rc ? " (failed)" : "");
    if (!p.batch && rc == 0) printf("\n");
    for (int k = 0; detok && print_ids && rc == 0 && k < g->reqs[0].n_out; k++)
        printf("%s%d%s", k ? "," : "ids: ", (int)g->reqs[0].out[k], k + 1 == g->reqs[0].n_out ? "\n" : "");
    for (int i = 0; p.batch && rc == 0 && i < g->n; i++) {
        printf("request %d (%s):", i, g->reqs[i].adapter ? g->reqs[i].adapter : "-");
        for (int k = 0; k < g->reqs[i].n_out; k++) printf("%s%d", k ? "," : " ", (int)g->reqs[i].out[k]);
        printf("\n");
    }
    free(r);
    return rc;
}

static void print_rate(const char *what, int64_t tokens, double ms) {
    printf("%s: %lld tokens in %.3f ms (%.1f tok/s)", what, (long long)tokens, ms,
           ms > 0 ? tokens * 1e3 / ms : 0.0);
}

/* A model folder with a tokenizer.json gives its tokenizer (and so EOS). */
static int has_tokenizer(const char *model_dir) {
    char path[4096];
    return snprintf(path, sizeof path, "%s/tokenizer.json", model_dir) < (int)sizeof path && access(path, F_OK) == 0;
}

/* EOS from the tokenizer's files: the first id is eos_id, the others eos_more. */
static void take_eos(const lorajit_tokenizer *t, lorajit_sampling *s) {
    const int32_t *ids;
    int n = lorajit_tokenizer_eos_ids(t, &ids);
    for (int k = 0; k < n; k++) {
        if (k == 0) s->eos_id = ids[0];
        else if (s->n_eos_more < 8) s->eos_more[s->n_eos_more++] = ids[k];
    }
}

/* Pushes the prompt through the streaming detokenizer so that the first generated
 * piece is spelled as it continues the prompt (a decoder that strips the first
 * space strips it from the prompt, not from the answer); prints the prompt's text
 * when echo (--text), not for a chat template's rendering (--chat). 0, or -1. */
static int prime_detok(lorajit_detokenizer *d, const cli_req *r, int echo) {
    for (int i = 0; i < r->n_prompt; i++) {
        const char *text;
        size_t len;
        if (lorajit_detokenizer_push(d, r->prompt[i], &text, &len) != LORAJIT_OK) return -1;
        if (echo) fwrite(text, 1, len, stdout);
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    cli_common c = {0};
    const char *adapters[64];
    int n_adapters = 0;
    const char *prompt_arg = NULL, *use = NULL, *batch_path = NULL, *text = NULL, *tok_path = NULL, *adapter_dir = NULL;
    int chat = 0, print_ids = 0;
    long max_new = DEFAULT_MAX_NEW;
    lorajit_sampling s = {.temperature = 0, .top_k = 0, .top_p = 1, .repetition_penalty = 1, .seed = 0,
                          .eos_id = -1};
    for (int i = 2; i < argc; i++) {
        int k = take_common(argc, argv, &i, &c);
        if (k == 0) k = take_sampling(argc, argv, &i, &s, &max_new);
        if (k < 0) return usage();
        if (k) continue;
        const char *a = argv[i];
        if (is_help(a)) return help("generate");
        if (!strcmp(a, "--print-ids")) { print_ids = 1; continue; }
        int known = !strcmp(a, "--adapter") || !strcmp(a, "--prompt") || !strcmp(a, "--use") || !strcmp(a, "--batch") ||
                    !strcmp(a, "--text") || !strcmp(a, "--chat") || !strcmp(a, "--tokenizer") ||
                    !strcmp(a, "--adapter-dir");
        if (!known) { fprintf(stderr, "lorajit generate: unknown argument '%s'\n", a); return usage(); }
        if (i + 1 >= argc) { fprintf(stderr, "lorajit generate: %s needs a value\n", a); return usage(); }
        char *v = argv[++i];
        if (!strcmp(a, "--adapter")) {
            if (!strchr(v, '=') || v[0] == '=' || n_adapters == 64) {
                fprintf(stderr, "lorajit generate: --adapter wants NAME=DIR (at most 64), got '%s'\n", v);
                return usage();
            }
            adapters[n_adapters++] = v;
        } else if (!strcmp(a, "--prompt")) prompt_arg = v;
        else if (!strcmp(a, "--use")) use = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--adapter-dir")) adapter_dir = v;
        else if (!strcmp(a, "--batch")) batch_path = v;
        else if (text) { fprintf(stderr, "lorajit generate: give one of --text or --chat\n"); return usage(); }
        else text = v, chat = !strcmp(a, "--chat");
    }
    if (!c.model || !!prompt_arg + !!batch_path + !!text != 1 || (use && batch_path)) {
        fprintf(stderr, "lorajit generate: --model and one of --prompt, --text, --chat (with --use) or --batch "
                        "are required\n");
        return usage();
    }
    cli_gen g = {0};
    int rc = 1;
    char why[512];
    lorajit_engine *e = NULL;
    lorajit_tokenizer *t = NULL;
    lorajit_detokenizer *detok = NULL;
    /* the model's tokenizer: needed for text, and gives EOS unless --eos did */
    int jsonl = batch_path && cli_batch_is_jsonl(batch_path); /* through the scheduler: cli_batch.c */
    if (text || tok_path || ((s.eos_id < 0 || jsonl) && has_tokenizer(c.model))) {
        if (!(t = cli_tokenizer_open("generate", tok_path ? tok_path : c.model))) goto done;
        if (s.eos_id < 0) take_eos(t, &s);
    }
    if (text) {
        int32_t *prompt;
        int n;
        if (cli_encode_prompt("generate", t, text, chat, &prompt, &n)) goto done;
        if (gen_add(&g, use, prompt, n, (int)max_new)) { fprintf(stderr, "lorajit generate: out of memory\n"); goto done; }
        if (lorajit_detokenizer_open(&detok, t, 1) != LORAJIT_OK || prime_detok(detok, &g.reqs[0], !chat)) {
            fprintf(stderr, "lorajit generate: %s\n", detok ? lorajit_detokenizer_errmsg(detok) : "out of memory");
            goto done;
        }
    } else if (jsonl) {
        rc = cli_batch_run(&c, batch_path, &s, (int)max_new, t, adapters, n_adapters, adapter_dir);
        goto done;
    } else if (batch_path) {
        if (read_batch(batch_path, (int)max_new, &g)) goto done;
    } else {
        int32_t *prompt;
        int n;
        if (parse_tokens(prompt_arg, &prompt, &n, why, sizeof why)) {
            fprintf(stderr, "lorajit generate: --prompt: %s\n", why);
            goto done;
        }
        if (gen_add(&g, use, prompt, n, (int)max_new)) { fprintf(stderr, "lorajit generate: out of memory\n"); goto done; }
    }
    /* the whole batch at once; an artifact's max_batch was fixed when it was compiled */
    if (!c.opts.max_batch && !c.artifact) c.opts.max_batch = g.n < 64 ? g.n : 64;
    if (!(e = open_engine(&c)) || load_adapters(&c, e, "generate", adapters, n_adapters)) goto done;
    if (adapter_dir && lorajit_set_adapter_dir(e, adapter_dir) != LORAJIT_OK) { /* NAME = DIR/NAME, loaded when used */
        fprintf(stderr, "lorajit generate: --adapter-dir: %s\n", lorajit_errmsg(e));
        goto done;
    }
    lorajit_stats before, after;
    lorajit_get_stats(e, &before);
    if (run_requests(&c, e, &g, lorajit_max_batch(e), &s, detok, print_ids)) goto done;
    lorajit_get_stats(e, &after);
    print_rate("prefill", after.prefill_tokens - before.prefill_tokens, after.prefill_ms - before.prefill_ms);
    printf("; ");
    print_rate("decode", after.decode_tokens - before.decode_tokens, after.decode_ms - before.decode_ms);
    printf("\n");
    rc = 0;
done:
    gen_free(&g);
    lorajit_engine_free(e);
    lorajit_detokenizer_free(detok);
    lorajit_tokenizer_free(t);
    return rc;
}

int script_generate(lorajit_engine *e, const script_cmd *c, char *why, size_t whylen) {
    int32_t *out = malloc(sizeof *out * (size_t)c->max_new);
    if (!out) { snprintf(why, whylen, "out of memory"); return -1; }
    lorajit_request r = {c->tokens, c->n_tokens, c->name, c->max_new, out, 0, 0};
    if (lorajit_generate(e, &r, 1, NULL, NULL, NULL) != LORAJIT_OK) {
        snprintf(why, whylen, "%s", lorajit_errmsg(e));
        free(out);
        return -1;
    }
    FILE *f = cli_open_write("generate OUTFILE", c->path, why, whylen);
    if (!f) { free(out); return -1; }
    int ok = 1;
    for (int i = 0; ok && i < r.n_out; i++) ok = fprintf(f, "%s%d", i ? "," : "", (int)out[i]) > 0;
    if (ok) ok = fputc('\n', f) != EOF;
    int err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    free(out);
    if (!ok) {
        snprintf(why, whylen, "generate OUTFILE %s: cannot write: %s", c->path, strerror(err ? err : EIO));
        return -1;
    }
    return 0;
}
