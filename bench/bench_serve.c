/* bench_serve.c — section 12 and `lorajit bench --serve`: what HTTP costs. The same load
 * runs two ways, alternately (the first path alternates by round): C API = 8 client
 * threads submitting to one lorajit_sched stepped by one driver thread, as `lorajit
 * serve`'s backend (server/backend_sched.c) runs every request; HTTP = a load generator
 * thread sending the same requests to a `lorajit serve` child (POST /v1/completions,
 * SSE) for 8 clients over epoll, each on a kept-alive connection, as wrk runs and as the
 * OpenAI clients keep theirs. Same engine options on both (threads, --max-batch 8,
 * slots), greedy, 16 + 32 tokens. Scenarios on a small model (its steps cost least, so
 * what HTTP costs a token weighs most there): 1 adapter; 16 adapters round-robin (16
 * slots); 1000 adapters drawn Zipf(1.0) through 8 slots (the server finds them under
 * --adapter-dir ROOT, the C API registers the same folders); then 16 adapters on a
 * dim-1024 BF16 model (not with --quick). Figures: tokens/s, TTFT and inter-token
 * p50/p99 as each client sees its tokens, and both processes' CPU time a token; HTTP /
 * C API ratios of those, and the median of each round's own ratio (its two runs back
 * to back: the pair saw about the same load from the machine's other jobs). */
#include <arpa/inet.h>
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    int http, port, mode, per_client; /* mode: serve_sc's (0 one adapter, 1 round-robin, 2 Zipf) */
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

/* Request i's name of an adapter in r's mode. */
static void adapter_of(const bs_run *r, int i, char *name, size_t cap) {
    if (r->mode == 2) snprintf(name, cap, "z%04d", r->draw[(r->draw_at + i) % BS_DRAWS]);
    else snprintf(name, cap, "a%d", r->mode ? i % BS_ADAPTERS : 0);
}

/* Points c's record slots at request i of r and starts its token count. */
static void begin_request(bs_client *c, int i) {
    bs_run *r = c->run;
    c->ttft = &r->ttft[i];
    c->itl = &r->itl[(size_t)i * (BS_NEW - 1)];
    c->sum = &r->sum[i];
    *c->sum = 0;
    c->k = 0;
}

/* The C API path: a client thread, its per_client requests one after the other. */
static void *client_main(void *arg) {
    bs_client *c = arg;
    bs_run *r = c->run;
    for (int q = 0; q < r->per_client; q++) {
        int i = c->id * r->per_client + q;
        char adapter[16];
        adapter_of(r, i, adapter, sizeof adapter);
        begin_request(c, i);
        int got = capi_request(c, adapter, i);
        if (got != BS_NEW) r->failed = 1;
        else r->n_tokens[c->id] += got;
    }
    return NULL;
}

/* An HTTP client of the load generator: one kept-alive connection, its requests one
 * after the other, the SSE bytes scanned as they come. */
typedef struct bs_http {
    bs_client c;
    int fd, q;                   /* q: requests of this client sent so far */
    int got_bytes;               /* bytes of the current request's answer came */
    int reconnects;              /* connections the server closed between two requests */
    size_t carry;
    char buf[8192 + 64 + 1];
} bs_http;

/* A new connection for h, watched by ep (blocking socket: reads pass MSG_DONTWAIT). */
static int http_connect(bs_http *h, int ep, int port) {
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&a, sizeof a)) return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = h};
    return epoll_ctl(ep, EPOLL_CTL_ADD, h->fd, &ev);
}

/* Sends h's request q (POST /v1/completions, stream); its clock starts here. */
static int http_send(bs_http *h) {
    bs_run *r = h->c.run;
    int i = h->c.id * r->per_client + h->q;
    char adapter[16], body[1024], req[1400];
    adapter_of(r, i, adapter, sizeof adapter);
    begin_request(&h->c, i);
    int n = snprintf(body, sizeof body, "{\"model\":\"%s\",\"max_tokens\":%d,\"temperature\":0,\"stream\":true,"
                     "\"prompt\":[", adapter, BS_NEW);
    for (int j = 0; j < BS_PROMPT; j++) n += snprintf(body + n, sizeof body - n, "%s%d", j ? "," : "", prompt_token(i, j));
    n += snprintf(body + n, sizeof body - n, "]}");
    int m = snprintf(req, sizeof req, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nContent-Length: %d\r\n\r\n%s", n, body);
    h->c.t0 = bench_now_ms();
    h->got_bytes = 0, h->carry = 0;
    h->q++;
    return send(h->fd, req, (size_t)m, MSG_NOSIGNAL) == m ? 0 : -1;
}

/* Scans what came on h: a token is an event whose token_ids list is not empty, the
 * answer ends at "data: [DONE]". Returns 1 when the answer ended, 0 for more, -1 when
 * the connection failed. */
static int http_read(bs_http *h) {
    static const char mark[] = "\"token_ids\":[";
    enum { CARRY = 32 }; /* a mark and its id cut by the read boundary are found next time */
    ssize_t got = recv(h->fd, h->buf + h->carry, 8192, MSG_DONTWAIT);
    if (got < 0) return errno == EAGAIN ? 0 : -1;
    if (got == 0) return -1;
    h->got_bytes = 1;
    size_t len = h->carry + (size_t)got, seen = 0;
    h->buf[len] = '\0';
    for (char *p = h->buf; (p = strstr(p, mark)); p += sizeof mark - 1) {
        char *id = p + sizeof mark - 1, *end;
        long v = strtol(id, &end, 10);
        if (*end == '\0') break; /* the id may go on in the next read */
        if (id[0] >= '0' && id[0] <= '9') record_token(&h->c, (int32_t)v);
        seen = (size_t)(end - h->buf);
    }
    if (strstr(h->buf, "data: [DONE]")) return 1;
    size_t keep = len - seen < CARRY ? len - seen : CARRY;
    memmove(h->buf, h->buf + len - keep, keep);
    h->carry = keep;
    return 0;
}

/* The HTTP path: every client on one thread over epoll (a load generator's few wake-ups
 * per step, as wrk's event loop, so the machine's two cores go to the server), each on
 * a kept-alive connection as the OpenAI clients keep theirs. A client sends its next
 * request when the answer's [DONE] came (the chunked body's last bytes follow it and
 * are ignored); a connection the server closed between two requests is opened again
 * and the request sent again. */
static void run_http(bs_run *r) {
    int ep = epoll_create1(0);
    bs_http *h = calloc(BS_CLIENTS, sizeof *h);
    if (ep < 0 || !h) bench_die("serve bench: epoll or memory");
    int live = 0;
    for (int k = 0; k < BS_CLIENTS; k++) {
        h[k].c = (bs_client){.run = r, .id = k};
        if (http_connect(&h[k], ep, r->port) || http_send(&h[k])) bench_die("serve bench: cannot reach the server");
        live++;
    }
    struct epoll_event ev[BS_CLIENTS];
    while (live > 0) {
        int n = epoll_wait(ep, ev, BS_CLIENTS, 60000);
        if (n <= 0) bench_die("serve bench: no answer from the server in 60 s");
        for (int e = 0; e < n; e++) {
            bs_http *x = ev[e].data.ptr;
            int st = http_read(x);
            if (st < 0 && !x->got_bytes && x->reconnects++ < 3) { /* closed before the answer began: again */
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                close(x->fd);
                x->q--;
                if (http_connect(x, ep, r->port) || http_send(x)) bench_die("serve bench: cannot reach the server");
                continue;
            }
            if (st < 0) bench_die("serve bench: an HTTP request failed (connection lost)");
            if (st == 0) continue;
            if (x->c.k != BS_NEW) r->failed = 1;
            else r->n_tokens[x->c.id] += x->c.k;
            if (x->q < r->per_client) {
                if (http_send(x)) bench_die("serve bench: cannot send");
            } else {
                close(x->fd);
                live--;
            }
        }
    }
    close(ep);
    free(h);
}

/* Runs every client once; returns the wall time in ms. */
static double run_clients(bs_run *r) {
    pthread_t t[BS_CLIENTS];
    bs_client c[BS_CLIENTS];
    memset(r->n_tokens, 0, sizeof r->n_tokens);
    double t0 = bench_now_ms();
    if (r->http) {
        run_http(r);
    } else {
        for (int k = 0; k < BS_CLIENTS; k++) {
            c[k] = (bs_client){.run = r, .id = k};
            pthread_cond_init(&c[k].ended, NULL);
            if (pthread_create(&t[k], NULL, client_main, &c[k])) bench_die("cannot start a client thread");
        }
        for (int k = 0; k < BS_CLIENTS; k++) pthread_join(t[k], NULL), pthread_cond_destroy(&c[k].ended);
    }
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

/* CPU time of process pid (0: this one), every thread, in us; 0 when it cannot be read. */
static double cpu_us(pid_t pid) {
    clockid_t id = CLOCK_PROCESS_CPUTIME_ID;
    struct timespec t;
    if ((pid && clock_getcpuclockid(pid, &id)) || clock_gettime(id, &t)) return 0;
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Runs a scenario of mode (serve_sc) on both paths, alternating, rounds + 1 times (the first untimed);
 * server: the `lorajit serve` child, whose CPU time is counted with this process's. */
static void measure(bench_serve_row *w, int mode, bs_driver *d, int port, pid_t server, int per_client, int rounds,
                    const int *draw) {
    int n_req = BS_CLIENTS * per_client, n_itl = n_req * (BS_NEW - 1);
    double *ttft[2], *itl[2], *sum[2], tps[2][64], pair_tps[64], pair_ttft[64];
    double cpu[2] = {0, 0}, cpu_server[2] = {0, 0}, tokens_all[2] = {0, 0};
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
            bs_run r = {.http = http, .port = port, .mode = mode, .per_client = per_client, .draw = draw,
                        .draw_at = round * n_req, .d = d, .ttft = ttft[http] + (size_t)round * n_req,
                        .itl = itl[http] + (size_t)round * n_itl, .sum = sum[http]};
            double self0 = cpu_us(0), srv0 = cpu_us(server);
            double ms = run_clients(&r);
            double self1 = cpu_us(0), srv1 = cpu_us(server);
            int tokens = 0;
            for (int c = 0; c < BS_CLIENTS; c++) tokens += r.n_tokens[c];
            if (round) {
                tps[http][round - 1] = tokens / (ms / 1e3);
                cpu[http] += (self1 - self0) + (srv1 - srv0);
                cpu_server[http] += srv1 - srv0;
                tokens_all[http] += tokens;
            }
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
        o->cpu_us_per_token = tokens_all[p] > 0 ? cpu[p] / tokens_all[p] : 0;
        o->server_us_per_token = tokens_all[p] > 0 ? cpu_server[p] / tokens_all[p] : 0;
        free(ttft[p]), free(itl[p]), free(sum[p]);
    }
}

/* The scenarios: the small model's three (its steps cost least, so HTTP's cost a token
 * weighs most), then 16 adapters on the larger model (a step nearer a real model's,
 * left out by --quick). model: index into serve_models; mode: 0 one adapter, 1 the
 * 16 round-robin, 2 the 1000 names drawn Zipf. */
static const struct {
    const char *name, *what;
    int model, mode, adapters, slots;
} serve_sc[BENCH_SERVE_SCENARIOS] = {
    {"one_adapter", "1 adapter", 0, 0, 1, BS_ADAPTERS},
    {"adapters16", "16 adapters, round-robin", 0, 1, BS_ADAPTERS, BS_ADAPTERS},
    {"zipf1000", "1000 adapters, Zipf(1.0), 8 slots", 0, 2, BS_NAMES, BS_ZIPF_SLOTS},
    {"adapters16_d1024", "16 adapters, dim-1024 BF16 model", 1, 1, BS_ADAPTERS, BS_ADAPTERS},
};
static const struct {
    const char *tag, *args;
} serve_models[2] = {
    {"serve_d256_l4", "--dim 256 --hidden 688 --layers 4 --heads 8 --kv-heads 8 --vocab 2048 --max-pos 256 --seed 3"},
    {"serve_d1024_l8_bf16", "--dim 1024 --hidden 2816 --layers 8 --heads 16 --kv-heads 4 --vocab 32000 "
                            "--max-pos 256 --std 0.02 --seed 5 --dtype bf16"},
};

/* Scenarios the run measures: the small model's alone with --quick. */
static int serve_scenarios(bool quick) { return quick ? 3 : BENCH_SERVE_SCENARIOS; }

int bench_serve_progress(bool quick, int rounds) {
    return (quick ? 1 : 2) + serve_scenarios(quick) * 2 * ((rounds > 0 ? rounds : quick ? 1 : 3) + 1);
}

/* Model m of serve_models under work (generated when missing) and its 16 rank-8 q,v
 * adapters into adapters[]. */
static void serve_model(const char *exe_dir, const char *work, int m, char *model, char (*adapters)[PATH_MAX]) {
    char args[256];
    bench_fmt(model, PATH_MAX, "%s/models/%s", work, serve_models[m].tag);
    bench_progress("serve: generating %s and 16 adapters (reused when present)", serve_models[m].tag);
    bench_generate(exe_dir, "model", model, NULL, serve_models[m].args);
    for (int k = 0; k < BS_ADAPTERS; k++) {
        bench_fmt(adapters[k], PATH_MAX, "%s/adapters/%s_a%d", work, m ? serve_models[m].tag : "serve", k);
        bench_fmt(args, sizeof args, "--r 8 --targets q_proj,v_proj --seed %d", 100 + k);
        bench_generate(exe_dir, "adapter", adapters[k], model, args);
    }
}

void bench_serve(bench_result *r, const char *exe_dir, const char *work, int rounds) {
    bench_serve_result *v = &r->serve;
    int threads = r->threads > 0 ? r->threads : 1, per_client = r->quick ? 2 : 12;
    rounds = rounds > 0 ? rounds : r->quick ? 1 : 3;
    if (rounds > 64) rounds = 64;
    *v = (bench_serve_result){.clients = BS_CLIENTS, .requests = BS_CLIENTS * per_client, .prompt = BS_PROMPT,
                              .new_tokens = BS_NEW, .rounds = rounds, .threads = threads, .max_batch = BS_MAX_BATCH,
                              .names = BS_NAMES, .scenarios = serve_scenarios(r->quick)};
    char model[PATH_MAX], adapters[BS_ADAPTERS][PATH_MAX], root[PATH_MAX], log[PATH_MAX + 32];
    static int draw[BS_DRAWS];
    bench_zipf(BS_NAMES, BS_DRAWS, draw);
    bench_fmt(root, sizeof root, "%s/serve_root", work);
    /* one server (and C API engine) for each run of scenarios with the same model, slots
       and adapter source (the 16 named, or the 1000 under ROOT) */
    int have_model = -1;
    for (int s0 = 0, s1, group = 0; s0 < v->scenarios; s0 = s1, group++) {
        int m = serve_sc[s0].model, zipf = serve_sc[s0].mode == 2, slots = serve_sc[s0].slots, port = 0;
        s1 = s0 + 1;
        while (s1 < v->scenarios && serve_sc[s1].model == m && serve_sc[s1].slots == slots &&
               (serve_sc[s1].mode == 2) == zipf)
            s1++;
        if (m != have_model) serve_model(exe_dir, work, m, model, adapters), have_model = m;
        if (zipf) make_root(root, adapters);
        char named[BS_ADAPTERS][PATH_MAX + 16];
        const char *extra[2 * BS_ADAPTERS], *zipf_extra[2] = {"--adapter-dir", root};
        for (int k = 0; k < BS_ADAPTERS; k++) {
            bench_fmt(named[k], sizeof named[k], "a%d=%s", k, adapters[k]);
            extra[2 * k] = "--adapter", extra[2 * k + 1] = named[k];
        }
        lorajit_engine *e = open_engine(model, threads, slots);
        char name[16], path[PATH_MAX + 16];
        for (int k = 0; k < (zipf ? BS_NAMES : BS_ADAPTERS); k++) {
            snprintf(name, sizeof name, zipf ? "z%04d" : "a%d", k);
            if (zipf) bench_fmt(path, sizeof path, "%s/f%d", root, k % BS_FOLDERS);
            bench_must(lorajit_register_adapter(e, name, zipf ? path : adapters[k]), e, name);
        }
        bench_fmt(log, sizeof log, "%s/serve-bench-%d.log", work, group);
        pid_t pid = start_server(exe_dir, log, model, threads, slots, zipf ? zipf_extra : extra,
                                 zipf ? 2 : 2 * BS_ADAPTERS, &port);
        bs_driver d;
        driver_open(&d, e);
        for (int s = s0; s < s1; s++) {
            bench_serve_row *w = &v->rows[s];
            *w = (bench_serve_row){.name = serve_sc[s].name, .what = serve_sc[s].what,
                                   .adapters = serve_sc[s].adapters, .slots = serve_sc[s].slots};
            measure(w, serve_sc[s].mode, &d, port, pid, per_client, rounds, draw);
        }
        driver_close(&d);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        lorajit_engine_free(e);
    }
}
