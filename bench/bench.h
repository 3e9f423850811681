/* bench.h — what `lorajit bench` measures, shared by bench/bench.c (the runs),
 * bench/peer.c (the PyTorch subprocess) and bench/report.c (table, JSON, plots).
 * Every time is in milliseconds; a bench_stat is the median, min and max over
 * `reps` timed runs that follow one untimed warm-up run. */
#ifndef LORAJIT_BENCH_H
#define LORAJIT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum {
    BENCH_WIDTHS = 2,    /* model widths timed for compile */
    BENCH_LAYER_SETS = 3,/* 2, 8, 32 layers */
    BENCH_TARGET_SETS = 2, /* attention-only, all-linear */
    BENCH_RANKS = 3,     /* 4, 16, 64 */
    BENCH_TOKEN_SETS = 3,/* prompts of 1, 16, 128 tokens */
    BENCH_FWD_CONFIGS = 6,
    BENCH_SWAPS = BENCH_TARGET_SETS * BENCH_RANKS,
    BENCH_COMPILES = BENCH_WIDTHS * BENCH_LAYER_SETS,
};

typedef struct bench_stat {
    double median, min, max; /* ms */
    int reps;                /* 0: not measured */
} bench_stat;

typedef struct bench_width {
    int dim, hidden_dim, n_heads;
} bench_width;

typedef struct bench_compile_row {
    bench_width w;
    int n_layers;
    bench_stat ir;      /* config + schema + front end + verify + plan + layout */
    bench_stat llvm_ir; /* host target + LLVM IR generation */
    bench_stat opt;     /* verify + default<O3> */
    bench_stat jit;     /* LLJIT: machine code + link + lookup */
    bench_stat total;
} bench_compile_row;

typedef struct bench_swap_row {
    const char *targets;     /* "attn" (q,k,v,o) or "all" (all seven) */
    int rank;
    size_t bytes;            /* f32 bytes of every A and B */
    bench_stat load_file;    /* lorajit_load_adapter, files in the page cache */
    bench_stat hotswap_file; /* lorajit_hotswap_adapter, same */
    bench_stat hotswap_mem;  /* writing a parsed adapter into its slot (lj_slots_write) */
    bench_stat copy;         /* memcpy of `bytes`: the copy bound */
    bench_stat torch;        /* PyTorch: param.data.copy_ of new A/B (reps 0: no peer) */
} bench_swap_row;

typedef struct bench_fwd_row {
    const char *name;        /* JSON key, e.g. "one_adapter" */
    const char *what;        /* for the table */
    const char *peer;        /* the peer config it compares with (NULL: none) */
    bench_stat lj[BENCH_TOKEN_SETS];
    bench_stat torch[BENCH_TOKEN_SETS]; /* reps 0: no peer */
    double agree;            /* max |lorajit - torch| of the 16-token logits; < 0: unknown */
} bench_fwd_row;

typedef struct bench_result {
    bool quick;
    double wall_s;
    /* machine and versions */
    char cpu[128], llvm[32], openblas[256], date[32];
    int n_cpus;               /* online CPUs */
    double load_start, load_end; /* 1-minute load average before and after: others' work shows here */
    int threads;              /* OpenBLAS threads lorajit ran with */
    char threads_env[32];     /* OPENBLAS_NUM_THREADS as found ("" when unset) */
    bool peer_ok;
    char peer_reason[256];    /* why the peer rows are missing */
    char torch[32], python[32];
    int torch_threads;
    /* the forward / swap model */
    int dim, hidden_dim, n_layers, n_heads, vocab;
    double model_mib;
    int r_max, n_slots;
    int tokens[BENCH_TOKEN_SETS];
    double open_ms[3];        /* compile_ms of the engines: no slots, r_max 64, r_max 4 */
    /* figures */
    bench_compile_row compile[BENCH_COMPILES];
    bench_swap_row swap[BENCH_SWAPS];
    bench_fwd_row fwd[BENCH_FWD_CONFIGS];
    bench_stat gemm[BENCH_TOKEN_SETS]; /* the projection GEMMs alone through OpenBLAS */
} bench_result;

/* ---- bench.c ---- */
/* Milliseconds on the monotonic clock. */
double bench_now_ms(void);
/* Prints one progress line (stderr, rewritten in place on a terminal). */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- peer.c: the PyTorch peer ---- */
/* Runs python peer_path spec_path with OPENBLAS_NUM_THREADS = r->threads and merges
 * its figures into r (forward rows by their peer name, swap rows by targets+rank);
 * the peer's progress and errors go to stderr. When python or torch is missing, or
 * the peer fails, sets r->peer_ok = false and r->peer_reason. */
void bench_peer_run(bench_result *r, const char *python, const char *peer_path, const char *spec_path);

/* ---- report.c ---- */
void bench_print_table(const bench_result *r, FILE *f);
/* Writes every figure as JSON. Returns 0, or -1 with errno set. */
int bench_write_json(const bench_result *r, const char *path);
/* Writes bench_*.dat, bench_plots.gp and runs gnuplot into out_dir/bench_*.png.
 * Returns 0 when the PNGs were made; otherwise -1 and why in msg. */
int bench_plot(const bench_result *r, const char *out_dir, char *msg, size_t cap);

#endif /* LORAJIT_BENCH_H */
