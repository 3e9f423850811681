/* bench_serve.c — section 12 and `lorajit bench --serve`: what HTTP costs. The same
 * requests run two ways (bench_serve_load.c): C API = a lorajit_sched stepped by one
 * driver thread, as `lorajit serve`'s backend runs every request; HTTP = a `lorajit
 * serve` child (bench_serve_setup.c) with the same engine options (threads, --max-batch
 * 8, slots), greedy, 16 + 32 tokens. Scenarios on a small model (its steps cost least,
 * so what HTTP costs a token weighs most there): 1 adapter; 16 adapters round-robin (16
 * slots); 1000 adapters drawn Zipf(1.0) through 8 slots (the server finds them under
 * --adapter-dir ROOT, the C API registers the same folders); then 16 adapters on a
 * dim-1024 BF16 model (not with --quick). Each scenario runs closed loop (8 clients),
 * alternating paths by round: tokens/s, TTFT and inter-token p50/p99, both processes'
 * CPU time a token; HTTP / C API ratios of those, and the median of each round's own
 * ratio (its two runs back to back saw about the same load from the machine's other
 * jobs). Then paced: the same requests sent at Poisson arrival times at half the rate
 * the C API path served in closed loop (the same times both ways), for TTFT and
 * inter-token latency without the closed loop's waves (8 clients whose requests end in
 * the same step all send their next ones together). */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "bench.h"
#include "bench_serve.h"

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

/* o's TTFT and inter-token figures from ttft[n] and itl[n_itl] (ms; sorted in place). */
static void latencies(bench_serve_path *o, double *ttft, int n, double *itl, int n_itl) {
    o->ttft_p50 = quantile(ttft, n, 0.5);
    o->ttft_p99 = quantile(ttft, n, 0.99);
    o->itl_mean = 0;
    for (int i = 0; i < n_itl; i++) o->itl_mean += itl[i] / n_itl;
    o->itl_p50 = quantile(itl, n_itl, 0.5);
    o->itl_p99 = quantile(itl, n_itl, 0.99);
}

/* Both paths' records of runs of n requests each (bs_run's ttft, itl and sum):
 * ttft[p] [runs * n], itl[p] [runs * n * (BS_NEW - 1)], sum[p] [n] (the last run's). */
typedef struct records {
    double *ttft[2], *itl[2], *sum[2];
} records;

/* Allocates m's arrays (dies when memory runs out); free with records_free. */
static void records_alloc(records *m, int n, int runs) {
    for (int p = 0; p < 2; p++) {
        m->ttft[p] = malloc(sizeof(double) * (size_t)n * runs);
        m->itl[p] = malloc(sizeof(double) * (size_t)n * (BS_NEW - 1) * runs);
        m->sum[p] = malloc(sizeof(double) * (size_t)n);
        if (!m->ttft[p] || !m->itl[p] || !m->sum[p]) bench_die("out of memory");
    }
}

static void records_free(records *m) {
    for (int p = 0; p < 2; p++) free(m->ttft[p]), free(m->itl[p]), free(m->sum[p]);
}

/* Whether both paths gave requests 0..n-1 of their last run the same ids. */
static bool same_ids(const records *m, int n) {
    for (int i = 0; i < n; i++)
        if (m->sum[0][i] != m->sum[1][i]) return false;
    return true;
}

/* Runs a scenario of mode (serve_sc) on both paths, alternating, rounds + 1 times (the first untimed);
 * server: the `lorajit serve` child, whose CPU time is counted with this process's. */
static void measure(bench_serve_row *w, int mode, bs_driver *d, int port, pid_t server, int per_client, int rounds,
                    const int *draw) {
    int n_req = BS_CLIENTS * per_client, n_itl = n_req * (BS_NEW - 1);
    double tps[2][64], pair_tps[64], pair_ttft[64];
    double cpu[2] = {0, 0}, cpu_server[2] = {0, 0}, tokens_all[2] = {0, 0};
    records m;
    records_alloc(&m, n_req, rounds + 1);
    for (int round = 0; round <= rounds; round++) {
        for (int k = 0; k < 2; k++) {
            int http = (k + round) % 2; /* who goes first alternates */
            bench_progress("serve: %s, %s, round %d", w->what, http ? "HTTP" : "C API", round);
            bs_run r = {.http = http, .port = port, .mode = mode, .per_client = per_client, .draw = draw,
                        .draw_at = round * n_req, .d = d, .ttft = m.ttft[http] + (size_t)round * n_req,
                        .itl = m.itl[http] + (size_t)round * n_itl, .sum = m.sum[http]};
            double self0 = bs_cpu_us(0), srv0 = bs_cpu_us(server);
            double ms = bs_run_clients(&r);
            double self1 = bs_cpu_us(0), srv1 = bs_cpu_us(server);
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
            pair_ttft[round - 1] = quantile(m.ttft[1] + (size_t)round * n_req, n_req, 0.5) -
                                   quantile(m.ttft[0] + (size_t)round * n_req, n_req, 0.5);
        }
    }
    w->same_tokens = same_ids(&m, n_req); /* the same greedy ids both ways (the last round's requests) */
    w->pair_tps_ratio = quantile(pair_tps, rounds, 0.5);
    w->pair_ttft_p50_diff = quantile(pair_ttft, rounds, 0.5);
    for (int p = 0; p < 2; p++) {
        bench_serve_path *o = &w->path[p];
        o->tokens_per_s = quantile(tps[p], rounds, 0.5);
        latencies(o, m.ttft[p] + n_req, n_req * rounds, m.itl[p] + n_itl, n_itl * rounds);
        o->cpu_us_per_token = tokens_all[p] > 0 ? cpu[p] / tokens_all[p] : 0;
        o->server_us_per_token = tokens_all[p] > 0 ? cpu_server[p] / tokens_all[p] : 0;
    }
    records_free(&m);
}

/* The scenario again, paced (run_*_paced) after measure: half a closed-loop run's
 * requests (at most BS_PACED), sent at Poisson arrival times at half the requests/s
 * the C API path served in the closed loop (w->path[0]); new times each round, the
 * same for both paths; rounds rounds, alternating which path goes first, all timed
 * (the closed loop warmed both). Fills w->paced* and ands w->same_tokens. */
static void measure_paced(bench_serve_row *w, int mode, bs_driver *d, int port, int per_client, int rounds,
                          const int *draw) {
    int n = BS_CLIENTS * per_client / 2;
    n = n > BS_PACED ? BS_PACED : n < 1 ? 1 : n;
    int n_itl = n * (BS_NEW - 1);
    double rate = w->path[0].tokens_per_s / BS_NEW / 2, arrival[BS_PACED];
    if (!(rate > 0)) bench_die("serve bench: no closed-loop rate to pace %s at", w->what);
    w->paced_requests = n, w->paced_rate = rate;
    records m;
    records_alloc(&m, n, rounds);
    uint64_t rng = 7;
    for (int round = 0; round < rounds; round++) {
        double t = 0;
        for (int i = 0; i < n; i++) /* exponential gaps */
            arrival[i] = t += -log(1 - bench_uniform(&rng)) / rate * 1e3;
        for (int k = 0; k < 2; k++) {
            int http = (k + round) % 2;
            bench_progress("serve: %s, paced, %s, round %d", w->what, http ? "HTTP" : "C API", round);
            bs_run r = {.http = http, .port = port, .mode = mode, .per_client = per_client, .draw = draw,
                        .draw_at = (rounds + 1 + round) * BS_CLIENTS * per_client, .d = d,
                        .ttft = m.ttft[http] + (size_t)round * n, .itl = m.itl[http] + (size_t)round * n_itl,
                        .sum = m.sum[http], .arrival = arrival, .n_paced = n};
            bs_run_clients(&r);
        }
        w->same_tokens &= same_ids(&m, n);
    }
    for (int p = 0; p < 2; p++) latencies(&w->paced[p], m.ttft[p], n * rounds, m.itl[p], n_itl * rounds);
    records_free(&m);
}

/* The scenarios: the small model's three (its steps cost least, so HTTP's cost a token
 * weighs most), then 16 adapters on the larger model (a step nearer a real model's,
 * left out by --quick). model: index into bench_serve_setup.c's models; mode: 0 one adapter, 1 the
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
/* Scenarios the run measures: the small model's alone with --quick. */
static int serve_scenarios(bool quick) { return quick ? 3 : BENCH_SERVE_SCENARIOS; }

int bench_serve_progress(bool quick, int rounds) {
    rounds = rounds > 0 ? rounds : quick ? 1 : 3;
    return (quick ? 1 : 2) + serve_scenarios(quick) * 2 * (2 * rounds + 1); /* closed loop (+ a warm-up), paced */
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
        if (m != have_model) bs_serve_model(exe_dir, work, m, model, adapters), have_model = m;
        if (zipf) bs_make_root(root, adapters);
        char named[BS_ADAPTERS][PATH_MAX + 16];
        const char *extra[2 * BS_ADAPTERS], *zipf_extra[2] = {"--adapter-dir", root};
        for (int k = 0; k < BS_ADAPTERS; k++) {
            bench_fmt(named[k], sizeof named[k], "a%d=%s", k, adapters[k]);
            extra[2 * k] = "--adapter", extra[2 * k + 1] = named[k];
        }
        lorajit_engine *e = bs_open_engine(model, threads, slots);
        char name[16], path[PATH_MAX + 16];
        for (int k = 0; k < (zipf ? BS_NAMES : BS_ADAPTERS); k++) {
            snprintf(name, sizeof name, zipf ? "z%04d" : "a%d", k);
            if (zipf) bench_fmt(path, sizeof path, "%s/f%d", root, k % BS_FOLDERS);
            bench_must(lorajit_register_adapter(e, name, zipf ? path : adapters[k]), e, name);
        }
        bench_fmt(log, sizeof log, "%s/serve-bench-%d.log", work, group);
        pid_t pid = bs_start_server(exe_dir, log, model, threads, slots, zipf ? zipf_extra : extra,
                                 zipf ? 2 : 2 * BS_ADAPTERS, &port);
        bs_driver *d = bs_driver_open(e);
        for (int s = s0; s < s1; s++) {
            bench_serve_row *w = &v->rows[s];
            *w = (bench_serve_row){.name = serve_sc[s].name, .what = serve_sc[s].what,
                                   .adapters = serve_sc[s].adapters, .slots = serve_sc[s].slots};
            measure(w, serve_sc[s].mode, d, port, pid, per_client, rounds, draw);
            measure_paced(w, serve_sc[s].mode, d, port, per_client, rounds, draw);
        }
        bs_driver_close(d);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        lorajit_engine_free(e);
    }
}
