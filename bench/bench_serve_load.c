/* bench_serve_load.c — section 12's load and what it records, the same requests two
 * ways: C API = client threads submitting to one lorajit_sched stepped by one driver
 * thread, as `lorajit serve`'s backend (server/backend_sched.c) runs every request;
 * HTTP = one load generator thread over epoll sending them to a `lorajit serve` child
 * (POST /v1/completions, SSE) on kept-alive connections, as wrk runs and as the OpenAI
 * clients keep theirs. Closed loop: 8 clients, each sending its next request when the
 * last one ended. Paced (open loop, as vLLM's benchmark_serving --request-rate): request
 * i sent at arrival[i] whether or not earlier ones ended. Every request's TTFT and
 * inter-token gaps are taken as its client sees its tokens. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_serve.h"

/* The C API side's driver: one thread steps the scheduler while requests are in it
 * and sleeps otherwise; after each step it takes the results of the requests that
 * ended and wakes their clients (only those: as the server's backend wakes a job's
 * own thread). Clients submit under mu. */
typedef struct bs_client bs_client;
struct bs_driver {
    lorajit_sched *s;            /* owned */
    pthread_mutex_t mu;
    pthread_cond_t work;         /* a submit or quit */
    int submitted, busy, quit;   /* busy: requests queued or running after the last step */
    bs_client *in_flight[BS_PACED]; /* by client id (paced: request): whose request is in the scheduler */
    pthread_t thread;
};

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
        for (int k = 0; k < BS_PACED; k++) {
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

bs_driver *bs_driver_open(lorajit_engine *e) {
    bs_driver *d = calloc(1, sizeof *d);
    if (!d) bench_die("out of memory");
    lorajit_sched_options o = {.max_running = BS_MAX_BATCH};
    bench_must(lorajit_sched_open(e, &o, &d->s), e, "lorajit_sched_open");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work, NULL);
    if (pthread_create(&d->thread, NULL, driver_main, d)) bench_die("cannot start the driver thread");
    return d;
}

void bs_driver_close(bs_driver *d) {
    pthread_mutex_lock(&d->mu);
    d->quit = 1;
    pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    lorajit_sched_free(d->s);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->work);
    free(d);
}

/* Submits request i for c (its record slots set by begin_request) to the scheduler.
 * 0, or -1 on a failure (printed). */
static int capi_submit(bs_client *c, const char *adapter, int i) {
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
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* Waits until the driver took c's result. Returns the tokens it made, -1 on a
 * failure (printed). */
static int capi_wait(bs_client *c, const char *adapter) {
    bs_driver *d = c->run->d;
    pthread_mutex_lock(&d->mu);
    while (!c->done) pthread_cond_wait(&c->ended, &d->mu);
    lorajit_sched_result res = c->res;
    pthread_mutex_unlock(&d->mu);
    int got = res.finish == LORAJIT_FINISH_LENGTH ? res.n_tokens : -1;
    if (got < 0) fprintf(stderr, "serve bench: %s: %s %s\n", adapter, lorajit_finish_str(res.finish), res.error);
    lorajit_free(res.tokens);
    lorajit_free(res.token_ms);
    return got;
}

/* A request of r ended with got tokens (-1: failed), counted in n_tokens[slot] (one
 * slot a thread). */
static void request_ended(bs_run *r, int slot, int got) {
    if (got != BS_NEW) r->failed = 1;
    else r->n_tokens[slot] += got;
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
        request_ended(r, c->id, capi_submit(c, adapter, i) ? -1 : capi_wait(c, adapter));
    }
    return NULL;
}

/* An HTTP client of the load generator: one kept-alive connection, its requests one
 * after the other, the SSE bytes scanned as they come. */
typedef struct bs_http {
    bs_client c;
    int fd, q;                   /* q: requests of this client sent so far (closed loop) */
    int req;                     /* the request on the connection now (index into the run's records) */
    int busy;                    /* paced: a request is on it */
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

/* Sends request i on h (POST /v1/completions, stream); its clock starts here. */
static int http_send(bs_http *h, int i) {
    bs_run *r = h->c.run;
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
    h->req = i;
    return send(h->fd, req, (size_t)m, MSG_NOSIGNAL) == m ? 0 : -1;
}

/* Opens (again) h's connection and sends request i on it. */
static void http_open_send(bs_http *h, int ep, int port, int i) {
    if (http_connect(h, ep, port) || http_send(h, i)) bench_die("serve bench: cannot reach the server");
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
        http_open_send(&h[k], ep, r->port, k * r->per_client + h[k].q++);
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
                http_open_send(x, ep, r->port, x->req);
                continue;
            }
            if (st < 0) bench_die("serve bench: an HTTP request failed (connection lost)");
            if (st == 0) continue;
            request_ended(r, x->c.id, x->c.k);
            if (x->q < r->per_client) {
                if (http_send(x, x->c.id * r->per_client + x->q++)) bench_die("serve bench: cannot send");
            } else {
                close(x->fd);
                live--;
            }
        }
    }
    close(ep);
    free(h);
}

/* ms on bench_now_ms's clock (CLOCK_MONOTONIC) as a timespec. */
static struct timespec at_ms(double ms) {
    return (struct timespec){.tv_sec = (time_t)(ms / 1e3), .tv_nsec = (long)(fmod(ms, 1e3) * 1e6)};
}

/* The C API path paced: this thread submits request i at arrival[i] (the driver
 * records its tokens), then waits for every one. */
static void run_capi_paced(bs_run *r) {
    bs_client c[BS_PACED];
    char adapter[BS_PACED][16];
    int submitted[BS_PACED] = {0};
    double t0 = bench_now_ms();
    for (int i = 0; i < r->n_paced; i++) {
        c[i] = (bs_client){.run = r, .id = i};
        pthread_cond_init(&c[i].ended, NULL);
        adapter_of(r, i, adapter[i], sizeof adapter[i]);
        struct timespec t = at_ms(t0 + r->arrival[i]);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
        }
        begin_request(&c[i], i);
        submitted[i] = capi_submit(&c[i], adapter[i], i) == 0;
    }
    for (int i = 0; i < r->n_paced; i++) {
        request_ended(r, 0, submitted[i] ? capi_wait(&c[i], adapter[i]) : -1);
        pthread_cond_destroy(&c[i].ended);
    }
}

/* The HTTP path paced: one thread over epoll sends request i at arrival[i] (a timerfd
 * wakes it) on an idle kept-alive connection, or on a new one when none is idle. */
static void run_http_paced(bs_run *r) {
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    bs_http *h = calloc(BS_PACED, sizeof *h);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL}, ev[BS_PACED + 1];
    if (ep < 0 || tfd < 0 || !h || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev)) bench_die("serve bench: epoll or memory");
    int n_conn = 0, next = 0, ended = 0;
    double t0 = bench_now_ms();
    struct itimerspec when = {.it_value = at_ms(t0 + r->arrival[0])};
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &when, NULL);
    while (ended < r->n_paced) {
        int n = epoll_wait(ep, ev, BS_PACED + 1, 60000);
        if (n <= 0) bench_die("serve bench: no answer from the server in 60 s");
        for (int e = 0; e < n; e++) {
            bs_http *x = ev[e].data.ptr;
            if (!x) { /* the timer: send every request that is due */
                uint64_t fired;
                if (read(tfd, &fired, sizeof fired) < 0 && errno != EAGAIN) bench_die("serve bench: timerfd");
                for (; next < r->n_paced && bench_now_ms() >= t0 + r->arrival[next]; next++) {
                    bs_http *y = NULL;
                    for (int k = 0; k < n_conn && !y; k++) /* an idle one, else a closed one to reopen */
                        if (!h[k].busy && h[k].fd >= 0) y = &h[k];
                    for (int k = 0; k < n_conn && !y; k++)
                        if (!h[k].busy) y = &h[k];
                    if (!y && n_conn == BS_PACED) bench_die("serve bench: more than %d requests at once", BS_PACED);
                    if (!y) y = &h[n_conn++], y->fd = -1, y->c = (bs_client){.run = r};
                    y->busy = 1, y->reconnects = 0;
                    if (y->fd >= 0 && http_send(y, next) == 0) continue;
                    if (y->fd >= 0) epoll_ctl(ep, EPOLL_CTL_DEL, y->fd, NULL), close(y->fd);
                    http_open_send(y, ep, r->port, next);
                }
                if (next < r->n_paced) {
                    when.it_value = at_ms(t0 + r->arrival[next]);
                    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &when, NULL);
                }
                continue;
            }
            if (!x->busy) { /* idle: the last answer's chunked-body end, or the server closed it */
                char rest[256];
                ssize_t got = recv(x->fd, rest, sizeof rest, MSG_DONTWAIT);
                if (got > 0 || (got < 0 && errno == EAGAIN)) continue;
            }
            int st = x->busy ? http_read(x) : -1;
            if (st < 0 && (!x->busy || (!x->got_bytes && x->reconnects++ < 3))) { /* closed by the server */
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                close(x->fd);
                x->fd = -1;
                if (x->busy) http_open_send(x, ep, r->port, x->req); /* before its answer began: again */
                continue;
            }
            if (st < 0) bench_die("serve bench: an HTTP request failed (connection lost)");
            if (st == 0) continue;
            request_ended(r, 0, x->c.k);
            x->busy = 0;
            ended++;
        }
    }
    for (int k = 0; k < n_conn; k++)
        if (h[k].fd >= 0) close(h[k].fd);
    close(tfd);
    close(ep);
    free(h);
}

double bs_run_clients(bs_run *r) {
    pthread_t t[BS_CLIENTS];
    bs_client c[BS_CLIENTS];
    memset(r->n_tokens, 0, sizeof r->n_tokens);
    double t0 = bench_now_ms();
    if (r->arrival) {
        if (r->http) run_http_paced(r);
        else run_capi_paced(r);
    } else if (r->http) {
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
