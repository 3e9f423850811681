/* bench_serve.c — section 12 and `lorajit bench --serve`: what HTTP costs. The same load
 * runs two ways, alternately (the first path alternates by round): C API = 8 client
 * threads submitting to one lorajit_sched stepped by one driver thread, as `lorajit
 * serve`'s backend (server/backend_sched.c) runs every request; HTTP = 8 client threads
 * sending the same requests to a `lorajit serve` child (POST /v1/completions, SSE, a
 * connection per request). Same engine options on both (threads, --max-batch 8, slots),
 * greedy, 16 + 32 tokens. Scenarios: 1 adapter; 16 adapters round-robin (16 slots);
 * 1000 adapters drawn Zipf(1.0) through 8 slots (the server finds them under
 * --adapter-dir ROOT, the C API registers the same folders). Figures: tokens/s, TTFT and
 * inter-token p50/p99 as each client sees its tokens; HTTP / C API ratios of those, and
 * the median of each round's own ratio (its two runs back to back: the pair saw about
 * the same load from the machine's other jobs). */
#include <arpa/inet.h>
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum { BS_CLIENTS = 8, BS_PROMPT = 16, BS_NEW = 32, BS_ADAPTERS = 16, BS_NAMES = 1000, BS_FOLDERS = 8,
       BS_ZIPF_SLOTS = 8, BS_MAX_BATCH = 8, BS_DRAWS = 4096 };

/* The C API side's driver: one thread steps the scheduler while requests are in it
 * and sleeps otherwise; after each step it takes the results of the requests that
 * ended and wakes their clients (only those: as the server's backend wakes a job's
 * own thread). Clients submit under mu. */
typedef struct bs_client bs_client;
typedef struct bs_driver {
    lorajit_sched *s;            /* owned */
    pthread_mutex_t mu;
    pthread_cond_t work;         /* a submit or quit */
    int submitted, busy, quit;   /* busy: requests queued or running after the last step */
    bs_client *in_flight[BS_CLIENTS]; /* by client id: the client whose request is in the scheduler */
    pthread_t thread;
} bs_driver;

/* One path's run of a scenario: every client's requests and their token times. */
typedef struct bs_run {
    int http, port, scenario, per_client;
    const int *draw;             /* [BS_DRAWS] Zipf draws; request i names draw[(draw_at + i) % BS_DRAWS] */
    int draw_at;
    bs_driver *d;
    double *ttft, *itl;          /* [n_req], [n_req * (BS_NEW - 1)] ms */
    double *sum;                 /* [n_req] a checksum of each request's token ids */
    int n_tokens[BS_CLIENTS];
    int failed;
} bs_run;

struct bs_client {
    bs_run *run;
    int id, k;                   /* k: tokens of the current request so far */
    double t0, t_last;
    double *ttft, *itl, *sum;    /* the current request's slots */
    int64_t sched_id;            /* C API: the request in the scheduler */
    lorajit_sched_result res;    /* C API: its result, once done (under the driver's mu) */
    int done;
    pthread_cond_t ended;        /* C API: done was set */
};

/* Records token number c->k of the current request (its time and id). */
static void record_token(bs_client *c, int32_t token) {
    double t = bench_now_ms();
    if (c->k == 0) *c->ttft = t - c->t0;
    else if (c->k < BS_NEW) c->itl[c->k - 1] = t - c->t_last;
    *c->sum += (double)token * (c->k + 1);
    c->t_last = t;
    c->k++;
}

/* The scheduler's on_token (driver thread). */
static int sched_token(void *user, int64_t id, int32_t token) {
    (void)id;
    record_token(user, token);
    return 0;
}

/* Token j of request i's prompt (the same on both paths). */
static int32_t prompt_token(int i, int j) { return (int32_t)((i * 37 + j * 131 + 7) % 2048); }

/* The driver thread: steps while requests were submitted or are in the scheduler. */
static void *driver_main(void *arg) {
    bs_driver *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->quit) {
        if (!d->submitted && !d->busy) {
            pthread_cond_wait(&d->work, &d->mu);
            continue;
        }
        d->submitted = 0;
        pthread_mutex_unlock(&d->mu);
        int busy = 0;
        if (lorajit_sched_step(d->s, &busy) != LORAJIT_OK)
            bench_die("serve bench: lorajit_sched_step: %s", lorajit_sched_errmsg(d->s));
        pthread_mutex_lock(&d->mu);
        d->busy = busy;
        for (int k = 0; k < BS_CLIENTS; k++) {
            bs_client *c = d->in_flight[k];
            if (c && lorajit_sched_take(d->s, c->sched_id, &c->res) == LORAJIT_OK) {
                c->done = 1;
                d->in_flight[k] = NULL;
                pthread_cond_signal(&c->ended);
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* A scheduler over e as srv_backend_new opens it (max_running = max_batch: no sequence
 * kept for logprobs) and its driver thread. Dies when either cannot start. */
static void driver_open(bs_driver *d, lorajit_engine *e) {
    *d = (bs_driver){0};
    lorajit_sched_options o = {.max_running = BS_MAX_BATCH};
    bench_must(lorajit_sched_open(e, &o, &d->s), e, "lorajit_sched_open");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work, NULL);
    if (pthread_create(&d->thread, NULL, driver_main, d)) bench_die("cannot start the driver thread");
}

/* Stops d's thread (no request may be in flight) and frees its scheduler. */
static void driver_close(bs_driver *d) {
    pthread_mutex_lock(&d->mu);
    d->quit = 1;
    pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    lorajit_sched_free(d->s);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->work);
}

/* One request through the scheduler: submit, then wait until the driver took its
 * result. Returns the tokens it made, -1 on a failure (printed). */
static int capi_request(bs_client *c, const char *adapter, int i) {
    bs_driver *d = c->run->d;
    int32_t prompt[BS_PROMPT];
    for (int j = 0; j < BS_PROMPT; j++) prompt[j] = prompt_token(i, j);
    const char *names[1] = {adapter};
    lorajit_sched_request q = {.prompt = prompt, .n_prompt = BS_PROMPT, .adapters = names, .n_adapters = 1,
                               .max_new = BS_NEW, .on_token = sched_token, .user = c};
    pthread_mutex_lock(&d->mu);
    c->t0 = bench_now_ms();
    c->k = 0;
    if (lorajit_sched_submit(d->s, &q, &c->sched_id) != LORAJIT_OK) {
        fprintf(stderr, "serve bench: submit: %s\n", lorajit_sched_errmsg(d->s));
        pthread_mutex_unlock(&d->mu);
        return -1;
    }
    c->done = 0;
    d->in_flight[c->id] = c;
    d->submitted = 1;
    pthread_cond_signal(&d->work);
    while (!c->done) pthread_cond_wait(&c->ended, &d->mu);
    lorajit_sched_result res = c->res;
    pthread_mutex_unlock(&d->mu);
    int got = res.finish == LORAJIT_FINISH_LENGTH ? res.n_tokens : -1;
    if (got < 0) fprintf(stderr, "serve bench: %s: %s %s\n", adapter, lorajit_finish_str(res.finish), res.error);
    lorajit_free(res.tokens);
    lorajit_free(res.token_ms);
    return got;
}

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
    enum { CARRY = 32 };  /* a mark and its id cut by the read boundary are found next time */
    char buf[8192 + CARRY + 1];
    size_t carry = 0;
    int done = 0;
    for (ssize_t got; !done && (got = recv(s, buf + carry, 8192, 0)) > 0;) {
        size_t len = carry + (size_t)got, seen = 0;
        buf[len] = '\0';
        for (char *p = buf; (p = strstr(p, mark)); p += sizeof mark - 1) {
            char *id = p + sizeof mark - 1, *end;
            long v = strtol(id, &end, 10);
            if (*end == '\0') break; /* the id may go on in the next read */
            if (id[0] >= '0' && id[0] <= '9') record_token(c, (int32_t)v);
            seen = (size_t)(end - buf);
        }
        done = strstr(buf, "data: [DONE]") != NULL;
        size_t keep = len - seen < CARRY ? len - seen : CARRY;
        memmove(buf, buf + len - keep, keep);
        carry = keep;
    }
    close(s);
    return done ? c->k : -1;
}

/* A client thread: its per_client requests one after the other, on r's path. */
static void *client_main(void *arg) {
    bs_client *c = arg;
    bs_run *r = c->run;
    for (int q = 0; q < r->per_client; q++) {
        int i = c->id * r->per_client + q;
        char adapter[16];
        if (r->scenario == 2) snprintf(adapter, sizeof adapter, "z%04d", r->draw[(r->draw_at + i) % BS_DRAWS]);
        else snprintf(adapter, sizeof adapter, "a%d", r->scenario ? i % BS_ADAPTERS : 0);
        c->ttft = &r->ttft[i];
        c->itl = &r->itl[(size_t)i * (BS_NEW - 1)];
        c->sum = &r->sum[i];
        *c->sum = 0;
        int got = r->http ? http_request(c, adapter, i) : capi_request(c, adapter, i);
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
        pthread_cond_init(&c[k].ended, NULL);
        if (pthread_create(&t[k], NULL, client_main, &c[k])) bench_die("cannot start a client thread");
    }
    for (int k = 0; k < BS_CLIENTS; k++) pthread_join(t[k], NULL), pthread_cond_destroy(&c[k].ended);
    if (r->failed) bench_die("serve bench: a %s request failed", r->http ? "HTTP" : "C API");
    return bench_now_ms() - t0;
}

/* qsort's order for doubles, ascending. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of v[0..n), sorted in place. */
static double quantile(double *v, int n, double q) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)ceil(q * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* `lorajit serve` on model with extra[0..n_extra) after the common options (the
 * C API engine's); returns its pid and *port once it is ready. log: its stderr. */
static pid_t start_server(const char *exe_dir, const char *log, const char *model, int threads, int slots,
                          const char *const *extra, int n_extra, int *port) {
    char exe[PATH_MAX + 16], th[16], sl[16];
    bench_fmt(exe, sizeof exe, "%s/lorajit", exe_dir);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(sl, sizeof sl, "%d", slots);
    const char *argv[64] = {exe, "serve", "--model", model, "--port", "0", "--max-batch", "8", "--slots", sl,
                            "--max-rank", "8", "--max-seq-len", "64", "--targets", "q_proj,v_proj", "--threads", th};
    int n = 18;
    for (int k = 0; k < n_extra && n < 63; k++) argv[n++] = extra[k];
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

/* The C API engine: the options `lorajit serve` gets from start_server. */
static lorajit_engine *open_engine(const char *model, int threads, int slots) {
    lorajit_options o = {.max_rank = 8, .targets = "q_proj,v_proj", .max_adapters = slots, .max_batch = BS_MAX_BATCH,
                         .max_seq_len = 64, .threads = threads};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model, &o), e, model);
    return e;
}

/* root/f0..f7: real folders holding hard links to folders[0..8)'s files; root/z0000 ..
 * z0999: symlinks to f<i % 8> inside root (so `lorajit serve --adapter-dir root`
 * resolves every name within root). Made afresh each run. */
static void make_root(const char *root, char (*folders)[PATH_MAX]) {
    const char *rm[] = {"rm", "-rf", root, NULL};
    if (bench_run(rm, NULL, NULL, -1, NULL) != 0) bench_die("cannot remove %s", root);
    bench_mkdirs(root);
    char dst[PATH_MAX + 64], src[PATH_MAX + 300], link_to[16];
    for (int f = 0; f < BS_FOLDERS; f++) {
        bench_fmt(dst, sizeof dst, "%s/f%d", root, f);
        bench_mkdirs(dst);
        DIR *dir = opendir(folders[f]);
        if (!dir) bench_die("%s: %s", folders[f], strerror(errno));
        for (struct dirent *de; (de = readdir(dir));) {
            if (de->d_name[0] == '.') continue;
            bench_fmt(src, sizeof src, "%s/%s", folders[f], de->d_name);
            bench_fmt(dst, sizeof dst, "%s/f%d/%s", root, f, de->d_name);
            if (link(src, dst)) bench_die("cannot link %s to %s: %s", src, dst, strerror(errno));
        }
        closedir(dir);
    }
    for (int i = 0; i < BS_NAMES; i++) {
        bench_fmt(dst, sizeof dst, "%s/z%04d", root, i);
        snprintf(link_to, sizeof link_to, "f%d", i % BS_FOLDERS);
        if (symlink(link_to, dst)) bench_die("cannot make %s: %s", dst, strerror(errno));
    }
}

/* Runs scenario sc on both paths, alternating, rounds + 1 times (the first untimed). */
static void measure(bench_serve_row *w, int sc, bs_driver *d, int port, int per_client, int rounds, const int *draw) {
    int n_req = BS_CLIENTS * per_client, n_itl = n_req * (BS_NEW - 1);
    double *ttft[2], *itl[2], *sum[2], tps[2][64], pair_tps[64], pair_ttft[64];
    for (int p = 0; p < 2; p++) {
        ttft[p] = malloc(sizeof(double) * (size_t)n_req * (rounds + 1));
        itl[p] = malloc(sizeof(double) * (size_t)n_itl * (rounds + 1));
        sum[p] = malloc(sizeof(double) * (size_t)n_req);
        if (!ttft[p] || !itl[p] || !sum[p]) bench_die("out of memory");
    }
    w->same_tokens = true;
    for (int round = 0; round <= rounds; round++) {
        for (int k = 0; k < 2; k++) {
            int http = (k + round) % 2; /* who goes first alternates */
            bench_progress("serve: %s, %s, round %d", w->what, http ? "HTTP" : "C API", round);
            bs_run r = {.http = http, .port = port, .scenario = sc, .per_client = per_client, .draw = draw,
                        .draw_at = round * n_req, .d = d, .ttft = ttft[http] + (size_t)round * n_req,
                        .itl = itl[http] + (size_t)round * n_itl, .sum = sum[http]};
            double ms = run_clients(&r);
            int tokens = 0;
            for (int c = 0; c < BS_CLIENTS; c++) tokens += r.n_tokens[c];
            if (round) tps[http][round - 1] = tokens / (ms / 1e3);
        }
        if (round) { /* the round's pair: the two paths run back to back, under about the same load */
            pair_tps[round - 1] = tps[1][round - 1] / tps[0][round - 1];
            pair_ttft[round - 1] = quantile(ttft[1] + (size_t)round * n_req, n_req, 0.5) -
                                   quantile(ttft[0] + (size_t)round * n_req, n_req, 0.5);
        }
    }
    for (int i = 0; i < n_req; i++) /* the same greedy ids both ways (the last round's requests) */
        w->same_tokens &= sum[0][i] == sum[1][i];
    w->pair_tps_ratio = quantile(pair_tps, rounds, 0.5);
    w->pair_ttft_p50_diff = quantile(pair_ttft, rounds, 0.5);
    for (int p = 0; p < 2; p++) {
        bench_serve_path *o = &w->path[p];
        o->tokens_per_s = quantile(tps[p], rounds, 0.5);
        o->ttft_p50 = quantile(ttft[p] + n_req, n_req * rounds, 0.5);
        o->ttft_p99 = quantile(ttft[p] + n_req, n_req * rounds, 0.99);
        o->itl_mean = 0;
        for (int i = 0; i < n_itl * rounds; i++) o->itl_mean += itl[p][n_itl + i] / (n_itl * rounds);
        o->itl_p50 = quantile(itl[p] + n_itl, n_itl * rounds, 0.5);
        o->itl_p99 = quantile(itl[p] + n_itl, n_itl * rounds, 0.99);
        free(ttft[p]), free(itl[p]), free(sum[p]);
    }
}

int bench_serve_progress(bool quick, int rounds) {
    return 1 + BENCH_SERVE_SCENARIOS * 2 * ((rounds > 0 ? rounds : quick ? 1 : 3) + 1);
}

void bench_serve(bench_result *r, const char *exe_dir, const char *work, int rounds) {
    bench_serve_result *v = &r->serve;
    int threads = r->threads > 0 ? r->threads : 1, per_client = r->quick ? 2 : 6;
    rounds = rounds > 0 ? rounds : r->quick ? 1 : 3;
    if (rounds > 64) rounds = 64;
    *v = (bench_serve_result){.clients = BS_CLIENTS, .requests = BS_CLIENTS * per_client, .prompt = BS_PROMPT,
                              .new_tokens = BS_NEW, .rounds = rounds, .threads = threads, .max_batch = BS_MAX_BATCH,
                              .names = BS_NAMES};
    static const struct { const char *name, *what; int adapters, slots; } sc[BENCH_SERVE_SCENARIOS] = {
        {"one_adapter", "1 adapter", 1, BS_ADAPTERS},
        {"adapters16", "16 adapters, round-robin", BS_ADAPTERS, BS_ADAPTERS},
        {"zipf1000", "1000 adapters, Zipf(1.0), 8 slots", BS_NAMES, BS_ZIPF_SLOTS},
    };
    char model[PATH_MAX], adapters[BS_ADAPTERS][PATH_MAX], args[256], root[PATH_MAX], log[PATH_MAX + 32];
    bench_fmt(model, sizeof model, "%s/models/serve_d256_l4", work);
    bench_progress("serve: generating the model and 16 adapters (reused when present)");
    bench_generate(exe_dir, "model", model, NULL, "--dim 256 --hidden 688 --layers 4 --heads 8 --kv-heads 8 "
                   "--vocab 2048 --max-pos 256 --seed 3");
    for (int k = 0; k < BS_ADAPTERS; k++) {
        bench_fmt(adapters[k], sizeof adapters[k], "%s/adapters/serve_a%d", work, k);
        bench_fmt(args, sizeof args, "--r 8 --targets q_proj,v_proj --seed %d", 100 + k);
        bench_generate(exe_dir, "adapter", adapters[k], model, args);
    }
    bench_fmt(root, sizeof root, "%s/serve_root", work);
    make_root(root, adapters);
    static int draw[BS_DRAWS];
    bench_zipf(BS_NAMES, BS_DRAWS, draw);
    char named[BS_ADAPTERS][PATH_MAX + 16];
    const char *extra[2 * BS_ADAPTERS];
    for (int k = 0; k < BS_ADAPTERS; k++) {
        bench_fmt(named[k], sizeof named[k], "a%d=%s", k, adapters[k]);
        extra[2 * k] = "--adapter", extra[2 * k + 1] = named[k];
    }
    const char *zipf_extra[2] = {"--adapter-dir", root};
    for (int g = 0; g < 2; g++) { /* g 0: scenarios 0 and 1 (16 slots); g 1: the Zipf scenario (8 slots) */
        int slots = g ? BS_ZIPF_SLOTS : BS_ADAPTERS, port = 0;
        lorajit_engine *e = open_engine(model, threads, slots);
        char name[16], path[PATH_MAX + 16];
        for (int k = 0; k < (g ? BS_NAMES : BS_ADAPTERS); k++) {
            snprintf(name, sizeof name, g ? "z%04d" : "a%d", k);
            if (g) bench_fmt(path, sizeof path, "%s/f%d", root, k % BS_FOLDERS);
            bench_must(lorajit_register_adapter(e, name, g ? path : adapters[k]), e, name);
        }
        bench_fmt(log, sizeof log, "%s/serve-bench-%d.log", work, g);
        pid_t pid = start_server(exe_dir, log, model, threads, slots, g ? zipf_extra : extra, g ? 2 : 2 * BS_ADAPTERS,
                                 &port);
        bs_driver d;
        driver_open(&d, e);
        for (int s = g ? 2 : 0; s < (g ? 3 : 2); s++) {
            bench_serve_row *w = &v->rows[s];
            *w = (bench_serve_row){.name = sc[s].name, .what = sc[s].what, .adapters = sc[s].adapters,
                                   .slots = sc[s].slots};
            measure(w, s, &d, port, per_client, rounds, draw);
        }
        driver_close(&d);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        lorajit_engine_free(e);
    }
}

/* HTTP / C API of the median tokens/s; 0 when the C API's is 0. */
static double tps_ratio(const bench_serve_row *w) {
    return w->path[0].tokens_per_s > 0 ? w->path[1].tokens_per_s / w->path[0].tokens_per_s : 0;
}

void bench_serve_print(const bench_result *r, FILE *f) {
    const bench_serve_result *v = &r->serve;
    if (!v->rounds) return;
    fprintf(f, "\n12. `lorajit serve` over HTTP against the C API: %d clients at once, %d requests of %d + %d tokens "
            "(greedy) a run;\n   4-layer dim-256 model, rank-8 q,v adapters, --max-batch %d, %d thread%s both ways. "
            "C API = the clients submit to\n   one lorajit_sched stepped by one driver thread (as the server's backend); "
            "HTTP = a `lorajit serve` child\n   (SSE, a connection per request). tokens/s: median of %d alternating "
            "rounds; latencies over all of them\n", v->clients, v->requests, v->prompt, v->new_tokens, v->max_batch,
            v->threads, v->threads == 1 ? "" : "s", v->rounds);
    fprintf(f, "   %-34s %-6s %10s %10s %10s %10s %10s %10s\n", "scenario", "path", "tokens/s", "TTFT p50", "TTFT p99",
            "ITL p50", "ITL p99", "ITL mean");
    for (int s = 0; s < BENCH_SERVE_SCENARIOS; s++) {
        const bench_serve_row *w = &v->rows[s];
        for (int p = 0; p < 2; p++) {
            const bench_serve_path *o = &w->path[p];
            fprintf(f, "   %-34s %-6s %10.1f %8.2fms %8.2fms %8.2fms %8.2fms %8.2fms\n", p ? "" : w->what,
                    p ? "HTTP" : "C API", o->tokens_per_s, o->ttft_p50, o->ttft_p99, o->itl_p50, o->itl_p99, o->itl_mean);
        }
        fprintf(f, "   %-34s HTTP / C API: throughput %.3f, TTFT p50 %+.2f ms, p99 %+.2f ms, ITL p50 %+.2f ms%s\n", "",
                tps_ratio(w), w->path[1].ttft_p50 - w->path[0].ttft_p50, w->path[1].ttft_p99 - w->path[0].ttft_p99,
                w->path[1].itl_p50 - w->path[0].itl_p50, w->same_tokens ? "" : "; token ids DIFFER");
        fprintf(f, "   %-34s   median of the rounds' pairs: throughput %.3f, TTFT p50 %+.2f ms\n", "", w->pair_tps_ratio,
                w->pair_ttft_p50_diff);
    }
    fprintf(f, "   goal (issue 15): HTTP throughput >= 0.95 of the C API's, TTFT p50 <= +2 ms\n");
}

/* {tokens_per_s, ttft_p50_ms, ...} of one path. */
static cJSON *path_json(const bench_serve_path *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "tokens_per_s", o->tokens_per_s);
    cJSON_AddNumberToObject(j, "ttft_p50_ms", o->ttft_p50);
    cJSON_AddNumberToObject(j, "ttft_p99_ms", o->ttft_p99);
    cJSON_AddNumberToObject(j, "itl_p50_ms", o->itl_p50);
    cJSON_AddNumberToObject(j, "itl_p99_ms", o->itl_p99);
    cJSON_AddNumberToObject(j, "itl_mean_ms", o->itl_mean);
    return j;
}

struct cJSON *bench_serve_json(const bench_result *r) {
    const bench_serve_result *v = &r->serve;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "clients", v->clients);
    cJSON_AddNumberToObject(j, "requests_per_run", v->requests);
    cJSON_AddNumberToObject(j, "prompt", v->prompt);
    cJSON_AddNumberToObject(j, "new_tokens", v->new_tokens);
    cJSON_AddNumberToObject(j, "rounds", v->rounds);
    cJSON_AddNumberToObject(j, "threads", v->threads);
    cJSON_AddNumberToObject(j, "max_batch", v->max_batch);
    cJSON_AddNumberToObject(j, "registered", v->names);
    cJSON *sc = cJSON_AddObjectToObject(j, "scenarios");
    for (int s = 0; s < BENCH_SERVE_SCENARIOS && v->rounds; s++) {
        const bench_serve_row *w = &v->rows[s];
        cJSON *o = cJSON_AddObjectToObject(sc, w->name);
        cJSON_AddStringToObject(o, "what", w->what);
        cJSON_AddNumberToObject(o, "adapters", w->adapters);
        cJSON_AddNumberToObject(o, "slots", w->slots);
        cJSON_AddItemToObject(o, "c_api", path_json(&w->path[0]));
        cJSON_AddItemToObject(o, "http", path_json(&w->path[1]));
        cJSON_AddNumberToObject(o, "http_over_c_api_tokens_per_s", tps_ratio(w));
        cJSON_AddNumberToObject(o, "http_minus_c_api_ttft_p50_ms", w->path[1].ttft_p50 - w->path[0].ttft_p50);
        cJSON_AddNumberToObject(o, "http_minus_c_api_itl_p50_ms", w->path[1].itl_p50 - w->path[0].itl_p50);
        cJSON_AddNumberToObject(o, "paired_http_over_c_api_tokens_per_s", w->pair_tps_ratio);
        cJSON_AddNumberToObject(o, "paired_http_minus_c_api_ttft_p50_ms", w->pair_ttft_p50_diff);
        cJSON_AddBoolToObject(o, "same_tokens", w->same_tokens);
    }
    return j;
}
