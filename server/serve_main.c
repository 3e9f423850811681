/* serve_main.c — `lorajit serve`: reads the server's options, starts HTTP first (so
 * /health answers 503 while the model compiles), opens the engine (JIT, or an
 * artifact), the tokenizer when the model folder has one (text prompts, chat, stop
 * strings, EOS), the backend and the adapters of --adapter, then marks the server
 * ready and serves until SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "session.h"

#define MAX_ADAPTER_ARGS 64

const char *srv_serve_usage(void) {
    return "  [--adapter NAME=DIR]... [--adapter-dir ROOT] [--host 127.0.0.1] [--port 8000]\n"
           "  [--api-key KEY (or env LORAJIT_API_KEY)] [--served-model-name NAME] [--tokenizer PATH]\n"
           "  [--max-body-bytes 1048576] [--idle-timeout 30] [--max-waiting 256] [--max-logprobs 0]\n";
}

typedef struct serve_args {
    srv_options opt;
    const char *adapters[MAX_ADAPTER_ARGS];
    int n_adapters;
    const char *adapter_dir, *tokenizer;
} serve_args;

static int parse_long(const char *v, long lo, long hi, long *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi) return -1;
    *out = n;
    return 0;
}

static int parse_args(int argc, char **argv, serve_args *a) {
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "lorajit serve: %s: unknown argument or missing value\n", k);
            return -1;
        }
        const char *v = argv[++i];
        long n = 0;
        int bad = 0;
        if (!strcmp(k, "--adapter")) {
            const char *eq = strchr(v, '=');
            bad = !eq || eq == v || a->n_adapters == MAX_ADAPTER_ARGS;
            if (!bad) a->adapters[a->n_adapters++] = v;
        } else if (!strcmp(k, "--adapter-dir")) a->adapter_dir = v;
        else if (!strcmp(k, "--host")) a->opt.host = v;
        else if (!strcmp(k, "--port")) bad = parse_long(v, 0, 65535, &n), a->opt.port = (int)n;
        else if (!strcmp(k, "--api-key")) a->opt.api_key = v;
        else if (!strcmp(k, "--served-model-name")) bad = !srv_name_ok(v), a->opt.served_name = v;
        else if (!strcmp(k, "--tokenizer")) a->tokenizer = v;
        else if (!strcmp(k, "--max-body-bytes")) bad = parse_long(v, 1024, 1L << 30, &n), a->opt.max_body = (size_t)n;
        else if (!strcmp(k, "--idle-timeout")) bad = parse_long(v, 1, 86400, &n), a->opt.idle_timeout_s = (int)n;
        else if (!strcmp(k, "--max-waiting")) bad = parse_long(v, 0, 1 << 20, &n), a->opt.max_waiting = (int)n;
        else if (!strcmp(k, "--max-logprobs")) bad = parse_long(v, 0, SRV_MAX_LOGPROBS, &n), a->opt.max_logprobs = (int)n;
        else {
            fprintf(stderr, "lorajit serve: unknown argument '%s'\n", k);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "lorajit serve: bad value '%s' for %s\n", v, k);
            return -1;
        }
    }
    return 0;
}

/* The model folder's last component: the base model's default name. */
static const char *base_name(const char *dir, char *buf, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(buf, cap, "%.*s", (int)(n - b), dir + b);
    return srv_name_ok(buf) ? buf : "model";
}

/* Engine, tokenizer, backend, adapters; 0, or prints why and returns -1. */
static int start_engine(srv_server *s, const char *artifact, const lorajit_options *opts, const serve_args *a) {
    lorajit_options o = *opts;
    if (!o.threads) { /* one thread (the scheduler's driver) makes the calls: the pool gets the cores */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    lorajit_status st = artifact ? lorajit_engine_open_artifact(&s->e, artifact, s->opt.model_dir, &o)
                                 : lorajit_engine_open(&s->e, s->opt.model_dir, &o);
    if (st) {
        fprintf(stderr, "lorajit serve: cannot open model %s: %s\n", s->opt.model_dir,
                s->e ? lorajit_errmsg(s->e) : "out of memory");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", s->opt.model_dir);
    const char *tok = a->tokenizer ? a->tokenizer : access(path, F_OK) == 0 ? s->opt.model_dir : NULL;
    if (tok && lorajit_tokenizer_open(&s->tok, tok) != LORAJIT_OK) {
        fprintf(stderr, "lorajit serve: tokenizer %s: %s\n", tok, s->tok ? lorajit_tokenizer_errmsg(s->tok) : "out of memory");
        return -1;
    }
    s->eos.eos_id = -1;
    const int32_t *ids;
    int n = s->tok ? lorajit_tokenizer_eos_ids(s->tok, &ids) : 0;
    for (int k = 0; k < n; k++) {
        if (k == 0) s->eos.eos_id = ids[0];
        else if (s->eos.n_eos_more < 8) s->eos.eos_more[s->eos.n_eos_more++] = ids[k];
    }
    char why[1200];
    int max_batch = lorajit_max_batch(s->e);
    if (s->opt.max_logprobs && max_batch < 2) {
        fprintf(stderr, "lorajit serve: --max-logprobs needs --max-batch 2 or more (it keeps one sequence)\n");
        return -1;
    }
    if (!(s->backend = srv_backend_new(s->e, max_batch - (s->opt.max_logprobs > 0), s->opt.max_waiting)) ||
        !(s->lora = srv_lora_new(s->e, a->adapter_dir, why, sizeof why))) {
        fprintf(stderr, "lorajit serve: %s\n", s->backend ? why : "out of memory");
        return -1;
    }
    for (int i = 0; i < a->n_adapters; i++) {
        char name[SRV_MAX_NAME + 2];
        const char *eq = strchr(a->adapters[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - a->adapters[i]), a->adapters[i]);
        if (!strcmp(name, s->opt.served_name)) {
            fprintf(stderr, "lorajit serve: --adapter %s: that is the base model's name\n", name);
            return -1;
        }
        if (srv_lora_load(s->lora, name, eq + 1, why, sizeof why) != 200) {
            fprintf(stderr, "lorajit serve: --adapter %s: %s\n", a->adapters[i], why);
            return -1;
        }
    }
    return 0;
}

int srv_serve(const char *model, const char *artifact, const lorajit_options *opts, int argc, char **argv) {
    char name[SRV_MAX_NAME + 1];
    serve_args a = {.opt = {.host = "127.0.0.1", .port = 8000, .max_body = 1 << 20, .idle_timeout_s = 30,
                            .max_waiting = 256}};
    if (parse_args(argc, argv, &a)) return 2;
    if (!a.opt.api_key) a.opt.api_key = getenv("LORAJIT_API_KEY");
    if (a.opt.api_key && !a.opt.api_key[0]) a.opt.api_key = NULL;
    a.opt.model_dir = model;
    if (!a.opt.served_name) a.opt.served_name = base_name(model, name, sizeof name);
    a.opt.max_lora = opts->max_adapters > 0 ? opts->max_adapters : 8;
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->opt = a.opt;
    s->started = (long)time(NULL);
    atomic_init(&s->next_id, 1);
    srv_metrics_init(&s->metrics);
    pthread_mutex_init(&s->log_mu, NULL);
    /* SIGINT/SIGTERM are taken by sigwait below: block them before any thread starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char why[600];
    int rc = 1;
    srv_http *h = srv_http_start(s, why, sizeof why);
    if (!h) fprintf(stderr, "lorajit serve: %s\n", why);
    else if (start_engine(s, artifact, opts, &a) == 0) {
        atomic_store(&s->ready, 1);
        fprintf(stderr, "lorajit serve: ready: model %s, %d adapter%s, %d sequences%s%s\n", s->opt.served_name,
                a.n_adapters, a.n_adapters == 1 ? "" : "s", lorajit_max_batch(s->e), s->tok ? ", tokenizer" : "",
                s->opt.api_key ? ", API key required" : "");
        int sig = 0;
        sigwait(&sigs, &sig);
        fprintf(stderr, "lorajit serve: signal %d: stopping\n", sig);
        rc = 0;
    }
    srv_http_stop(h); /* waits for the connections' threads */
    srv_lora_free(s->lora);
    srv_backend_free(s->backend);
    lorajit_tokenizer_free(s->tok);
    lorajit_engine_free(s->e);
    srv_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
    return rc;
}
