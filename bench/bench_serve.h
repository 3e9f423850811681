/* bench_serve.h — what the files of section 12 share: bench_serve.c (scenarios and
 * figures) runs bench_serve_load.c's load against what bench_serve_setup.c makes.
 * Internal to bench/. */
#ifndef LORAJIT_BENCH_SERVE_H
#define LORAJIT_BENCH_SERVE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "lorajit.h"

enum { BS_CLIENTS = 8, BS_PROMPT = 16, BS_NEW = 32, BS_ADAPTERS = 16, BS_NAMES = 1000, BS_FOLDERS = 8,
       BS_ZIPF_SLOTS = 8, BS_MAX_BATCH = 8, BS_DRAWS = 4096 };

/* A paced run: requests sent at fixed times, whether or not earlier ones ended (open
 * loop, as vLLM's benchmark_serving --request-rate), so that a request's TTFT is not
 * tied to when another one ended. At most BS_PACED requests a run, on at most
 * BS_PACED connections. */
enum { BS_PACED = 64 };

typedef struct bs_driver bs_driver;
/* One path's run of a scenario: every client's requests and their token times. */
typedef struct bs_run {
    int http, port, mode, per_client; /* mode: serve_sc's (0 one adapter, 1 round-robin, 2 Zipf) */
    const double *arrival;       /* paced: request i is sent arrival[i] ms after the start; NULL: closed loop */
    int n_paced;                 /* paced: requests (<= BS_PACED) */
    const int *draw;             /* [BS_DRAWS] Zipf draws; request i names draw[(draw_at + i) % BS_DRAWS] */
    int draw_at;
    bs_driver *d;
    double *ttft, *itl;          /* [n_req], [n_req * (BS_NEW - 1)] ms */
    double *sum;                 /* [n_req] a checksum of each request's token ids */
    int n_tokens[BS_CLIENTS];
    int failed;
} bs_run;

/* A scheduler over e as srv_backend_new opens it (max_running = max_batch: no sequence
 * kept for logprobs) and its driver thread, which steps it while requests are in it and
 * sleeps otherwise. Dies when either cannot start. Free with bs_driver_close (no
 * request in flight). */
bs_driver *bs_driver_open(lorajit_engine *e);
void bs_driver_close(bs_driver *d);
/* Runs r's requests on its path (r->http), closed loop or paced (r->arrival), filling
 * r's records and n_tokens; dies when a request failed. Returns the wall time in ms. */
double bs_run_clients(bs_run *r);

/* Model m (0: the small one, 1: dim 1024 BF16) under work/models (generated when
 * missing) into model[PATH_MAX], and its 16 rank-8 q,v adapters into adapters[]. */
void bs_serve_model(const char *exe_dir, const char *work, int m, char *model, char (*adapters)[PATH_MAX]);
/* `lorajit serve` on model with extra[0..n_extra) after the common options (the
 * C API engine's); returns its pid and *port once it is ready. log: its stderr. */
pid_t bs_start_server(const char *exe_dir, const char *log, const char *model, int threads, int slots,
                      const char *const *extra, int n_extra, int *port);
/* The C API engine: the options `lorajit serve` gets from bs_start_server. Dies when it cannot open. */
lorajit_engine *bs_open_engine(const char *model, int threads, int slots);
/* root/f0..f7 (real folders of hard links to folders[0..8)'s files) and root/z0000 ..
 * z0999 (symlinks to f<i % 8> inside root, so that `lorajit serve --adapter-dir root`
 * resolves every name within root), made afresh. */
void bs_make_root(const char *root, char (*folders)[PATH_MAX]);
/* CPU time of process pid (0: this one), every thread, in us; 0 when it cannot be read. */
double bs_cpu_us(pid_t pid);

#endif /* LORAJIT_BENCH_SERVE_H */
