/* bench_serve.c — `lorajit bench --serve`: what HTTP costs. The same load is run two
 * ways, alternately, in one run: N client threads of this process calling
 * lorajit_generate (one request each, as `lorajit serve`'s backend does) on an engine
 * of their own, and N client threads sending the same requests to a `lorajit serve`
 * child process over HTTP (POST /v1/completions with "stream": true, a connection per
 * request), both with OpenBLAS single-threaded. Requests: a 16-token prompt, 32 new
 * tokens (greedy, no EOS), for 1 adapter and for 16 adapters used round-robin. Figures:
 * tokens/s, TTFT and inter-token p50/p99 (seen by the client: for HTTP, when a token's
 * SSE event arrives), and HTTP / C API ratios. Issue 15's goal: HTTP adds <= 5 % to
 * throughput and <= 2 ms to p50 TTFT. */
#include <arpa/inet.h>
#include <cblas.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum { BS_CLIENTS = 8, BS_PROMPT = 16, BS_NEW = 32, BS_ADAPTERS = 16, BS_MAX_REQ = 64 };

/* One scenario's run: every client's requests, their token times. */
typedef struct bs_run {
    int http, port, n_adapters, per_client;
    lorajit_engine *e;
    double *ttft, *itl;          /* [BS_CLIENTS * per_client], [.. * (BS_NEW - 1)] ms */
    int n_tokens[BS_CLIENTS];
    int failed;
} bs_run;

typedef struct bs_client {
    bs_run *run;
    int id;
    double t_last;
    int k;                       /* tokens of the current request */
    double *ttft, *itl;          /* this request's slots */
    double t0;
} bs_client;

static void on_token(void *user, int request, int32_t token) {
    bs_client *c = user;
    double t = bench_now_ms();
    if (c->k == 0) *c->ttft = t - c->t0;
    else c->itl[c->k - 1] = t - c->t_last;
    c->t_last = t;
    c->k++;
}

static int32_t prompt_token(int i, int j) { return (int32_t)((i * 37 + j * 131 + 7) % 2048); }

/* One request over HTTP: POST, then read the SSE stream; a token is an event whose
 * token_ids list is not empty. Returns the tokens seen, -1 on a failure. */
static int http_request(bs_client *c, const char *adapter, int i) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->run->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) {
        if (s >= 0) close(s);
        return -1;
    }
    char body[1024], req[1400];
    int n = snprintf(body, sizeof body, "{\"model\":\"%s\",\"max_tokens\":%d,\"temperature\":0,\"stream\":true,"
                     "\"prompt\":[", adapter, BS_NEW);
    for (int j = 0; j < BS_PROMPT; j++) n += snprintf(body + n, sizeof body - n, "%s%d", j ? "," : "", prompt_token(i, j));
    n += snprintf(body + n, sizeof body - n, "]}");
    int m = snprintf(req, sizeof req, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", n, body);
    c->t0 = bench_now_ms();
    c->k = 0;
    if (send(s, req, (size_t)m, MSG_NOSIGNAL) != m) {
        close(s);
        return -1;
    }
    static const char mark[] = "\"token_ids\":[";
    char buf[8192 + 16];
    size_t carry = 0;
    int done = 0;
    for (ssize_t got; !done && (got = recv(s, buf + carry, 8192, 0)) > 0;) {
        size_t len = carry + (size_t)got;
        buf[len] = '\0';
        for (char *p = buf; (p = strstr(p, mark)); p += sizeof mark - 1)
            if (p[sizeof mark - 1] >= '0' && p[sizeof mark - 1] <= '9') on_token(c, 0, 0);
        done = strstr(buf, "data: [DONE]") != NULL;
        carry = len < 15 ? len : 15; /* a mark cut by the read boundary is found next time */
        memmove(buf, buf + len - carry, carry);
    }
    close(s);
    return done ? c->k : -1;
}

static void *client_main(void *arg) {
    bs_client *c = arg;
    bs_run *r = c->run;
    for (int q = 0; q < r->per_client; q++) {
        int i = c->id * r->per_client + q;
        char adapter[16];
        snprintf(adapter, sizeof adapter, "a%d", i % r->n_adapters);
        c->ttft = &r->ttft[i];
        c->itl = &r->itl[(size_t)i * (BS_NEW - 1)];
        int got;
        if (r->http) {
            got = http_request(c, adapter, i);
        } else {
            int32_t prompt[BS_PROMPT], out[BS_NEW];
            for (int j = 0; j < BS_PROMPT; j++) prompt[j] = prompt_token(i, j);
            lorajit_request rq = {.prompt = prompt, .n_prompt = BS_PROMPT, .adapter = adapter, .max_new = BS_NEW,
                                  .out = out};
            c->t0 = bench_now_ms();
            c->k = 0;
            got = lorajit_generate(r->e, &rq, 1, NULL, on_token, c) == LORAJIT_OK ? rq.n_out : -1;
        }
        if (got != BS_NEW) r->failed = 1;
        else r->n_tokens[c->id] += got;
    }
    return NULL;
}

/* Runs every client once; returns the wall time in ms. */
static double run_clients(bs_run *r) {
    pthread_t t[BS_CLIENTS];
    bs_client c[BS_CLIENTS];
    memset(r->n_tokens, 0, sizeof r->n_tokens);
    double t0 = bench_now_ms();
    for (int k = 0; k < BS_CLIENTS; k++) {
        c[k] = (bs_client){.run = r, .id = k};
        if (pthread_create(&t[k], NULL, client_main, &c[k])) bench_die("cannot start a client thread");
    }
    for (int k = 0; k < BS_CLIENTS; k++) pthread_join(t[k], NULL);
    if (r->failed) bench_die("serve bench: a %s request failed", r->http ? "HTTP" : "C API");
    return bench_now_ms() - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(p * (n - 1) + 0.5)];
}

/* `lorajit serve` on model with adapters a0..a15; returns its pid and *port. */
static pid_t start_server(const char *exe_dir, const char *work, const char *model, char (*adapters)[PATH_MAX],
                          int *port) {
    char exe[PATH_MAX + 16], log[PATH_MAX + 16], args[BS_ADAPTERS][PATH_MAX + 16];
    bench_fmt(exe, sizeof exe, "%s/lorajit", exe_dir);
    bench_fmt(log, sizeof log, "%s/serve-bench.log", work);
    const char *argv[64] = {exe, "serve", "--model", model, "--port", "0", "--max-batch", "8", "--slots", "16",
                            "--max-rank", "8", "--max-seq-len", "64", "--targets", "q_proj,v_proj"};
    int n = 16;
    for (int k = 0; k < BS_ADAPTERS; k++) {
        bench_fmt(args[k], sizeof args[k], "a%d=%s", k, adapters[k]);
        argv[n++] = "--adapter";
        argv[n++] = args[k];
    }
    argv[n] = NULL;
    unlink(log);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 3000 && pid > 0; i++) { /* up to 5 minutes on a busy machine */
        usleep(100 * 1000);
        char *text = bench_read_file(log, NULL);
        char *at = strstr(text, "listening on http://127.0.0.1:");
        int ready = strstr(text, "ready:") != NULL;
        if (at) *port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(text);
        if (ready && at) return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
    }
    bench_die("lorajit serve did not start (see %s)", log);
}

void bench_serve(const char *exe_dir, const char *work, bool quick) {
    openblas_set_num_threads(1); /* as the server runs it */
    char model[PATH_MAX], adapters[BS_ADAPTERS][PATH_MAX], args[256];
    bench_fmt(model, sizeof model, "%s/models/serve_d256_l4", work);
    bench_progress("serve: generating the model and 16 adapters (reused when present)");
    bench_generate(exe_dir, "model", model, NULL, "--dim 256 --hidden 688 --layers 4 --heads 8 --kv-heads 8 "
                   "--vocab 2048 --max-pos 256 --seed 3");
    for (int k = 0; k < BS_ADAPTERS; k++) {
        bench_fmt(adapters[k], sizeof adapters[k], "%s/adapters/serve_a%d", work, k);
        bench_fmt(args, sizeof args, "--r 8 --targets q_proj,v_proj --seed %d", 100 + k);
        bench_generate(exe_dir, "adapter", adapters[k], model, args);
    }
    lorajit_options o = {.max_rank = 8, .targets = "q_proj,v_proj", .max_adapters = 16, .max_batch = 8,
                         .max_seq_len = 64};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model, &o), e, model);
    for (int k = 0; k < BS_ADAPTERS; k++) {
        char name[16];
        snprintf(name, sizeof name, "a%d", k);
        bench_must(lorajit_register_adapter(e, name, adapters[k]), e, adapters[k]);
    }
    int port = 0, per_client = quick ? 2 : 6, rounds = quick ? 1 : 3;
    pid_t pid = start_server(exe_dir, work, model, adapters, &port);
    int n_req = BS_CLIENTS * per_client;
    printf("\nServe: %d clients at once, %d requests of %d + %d tokens (greedy) each scenario, OpenBLAS 1 "
           "thread, --max-batch 8; C API = lorajit_generate from %d threads, HTTP = the same through `lorajit "
           "serve` (SSE, a connection per request); medians of %d alternating rounds\n",
           BS_CLIENTS, n_req, BS_PROMPT, BS_NEW, BS_CLIENTS, rounds);
    printf("   %-12s %-6s %10s %10s %10s %10s %10s\n", "adapters", "path", "tokens/s", "TTFT p50", "TTFT p99",
           "ITL p50", "ITL p99");
    for (int sc = 0; sc < 2; sc++) {
        int n_ad = sc ? BS_ADAPTERS : 1;
        double tps[2][8], f[2][4] = {{0}};
        for (int round = 0; round <= rounds; round++) /* round 0: warm-up */
            for (int http = 0; http < 2; http++) {
                bench_progress("serve: %d adapter%s, %s, round %d", n_ad, n_ad > 1 ? "s" : "", http ? "HTTP" : "C API",
                               round);
                bs_run r = {.http = http, .port = port, .n_adapters = n_ad, .per_client = per_client, .e = e};
                r.ttft = calloc((size_t)n_req, sizeof *r.ttft);
                r.itl = calloc((size_t)n_req * (BS_NEW - 1), sizeof *r.itl);
                if (!r.ttft || !r.itl) bench_die("out of memory");
                double ms = run_clients(&r);
                int tokens = 0;
                for (int k = 0; k < BS_CLIENTS; k++) tokens += r.n_tokens[k];
                if (round) {
                    tps[http][round - 1] = tokens / (ms / 1e3);
                    f[http][0] += pct(r.ttft, n_req, 0.5) / rounds;
                    f[http][1] += pct(r.ttft, n_req, 0.99) / rounds;
                    f[http][2] += pct(r.itl, n_req * (BS_NEW - 1), 0.5) / rounds;
                    f[http][3] += pct(r.itl, n_req * (BS_NEW - 1), 0.99) / rounds;
                }
                free(r.ttft);
                free(r.itl);
            }
        double med[2];
        for (int http = 0; http < 2; http++) {
            med[http] = pct(tps[http], rounds, 0.5);
            printf("   %-12d %-6s %10.1f %8.2fms %8.2fms %8.2fms %8.2fms\n", n_ad, http ? "HTTP" : "C API", med[http],
                   f[http][0], f[http][1], f[http][2], f[http][3]);
        }
        printf("   %-12s HTTP / C API throughput %.3f, TTFT p50 %+.2f ms, inter-token p50 %+.2f ms\n", "",
               med[1] / med[0], f[1][0] - f[0][0], f[1][2] - f[0][2]);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    lorajit_engine_free(e);
}
