/* bench.h — what `lorajit bench` measures, and the functions of bench/, under their
 * files' banners. The files call each other one way only:
 *   bench.c -> peer.c, report.c -> bench_decode.c -> bench_prefill16.c -> bench_gemm.c -> bench_util.c
 *   bench.c -> bench_swap.c
 *   bench.c, report.c -> bench_shapes.c, bench_tok.c, bench_cache.c, bench_kv.c, bench_threads.c,
 *   bench_sched.c
 * (and any of them -> bench_util.c; nothing calls back into bench.c).
 * bench/ uses the public API (lorajit.h) and one internal hook, bench_hook.h (slot
 * writes from memory). Every time is in milliseconds; a bench_stat is the median,
 * min and max over `reps` timed runs that follow one untimed warm-up run. */
#ifndef LORAJIT_BENCH_H
#define LORAJIT_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lorajit.h"

enum {
    BENCH_WIDTHS = 2,    /* model widths timed for compile */
    BENCH_LAYER_SETS = 3,/* 2, 8, 32 layers */
    BENCH_TARGET_SETS = 2, /* attention-only, all-linear */
    BENCH_RANKS = 3,     /* 4, 16, 64 */
    BENCH_TOKEN_SETS = 3,/* prompts of 1, 16, 128 tokens */
    BENCH_FWD_CONFIGS = 6,
    BENCH_SWAPS = BENCH_TARGET_SETS * BENCH_RANKS,
    BENCH_COMPILES = BENCH_WIDTHS * BENCH_LAYER_SETS,
    BENCH_DECODE_CONFIGS = 5,   /* batch 1: base, one adapter; batch 8: base, shared, mixed */
    BENCH_DECODE_PROGRESS = 5,  /* bench_progress calls of bench_decode (2 of them bench_prefill16's) */
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
    /* lorajit_compile_only's stage times (lorajit_stats) */
    bench_stat ir;      /* frontend_ms + plan_ms: config + schema + front end + dtypes + verify + plan + layout */
    bench_stat llvm_ir; /* codegen_ms: host target + LLVM IR generation */
    bench_stat opt;     /* optimize_ms: verify + default<O3> */
    bench_stat jit;     /* jit_ms: LLJIT: machine code + link + lookup */
    bench_stat total;   /* the sum of the four */
} bench_compile_row;

typedef struct bench_swap_row {
    const char *targets;     /* "attn" (q,k,v,o) or "all" (all seven) */
    int rank;
    size_t bytes;            /* f32 bytes of every A and B */
    bench_stat load_file;    /* lorajit_load_adapter, files in the page cache */
    bench_stat hotswap_file; /* lorajit_hotswap_adapter, same */
    bench_stat hotswap_mem;  /* writing a parsed adapter into its slot (bench_hook.h) */
    bench_stat copy;         /* memcpy of `bytes`: the copy bound */
    bench_stat torch;        /* PyTorch: param.data.copy_ of new A/B (reps 0: no peer) */
} bench_swap_row;

/* Section 2's 16-bit rows: a BF16 rank-16 adapter on all seven projections of the
 * decode model (TinyLlama's shape: 25 MB), index 0 into f32 slots, 1 into BF16 slots. */
typedef struct bench_swap16_result {
    size_t file_bytes;       /* BF16 bytes of every A and B */
    size_t f32_bytes;        /* the same values as f32: what f32 slots receive */
    bench_stat copy_file;    /* memcpy of file_bytes */
    bench_stat copy_f32;     /* memcpy of f32_bytes */
    bench_stat load[2];      /* lorajit_load_adapter (then deleted, untimed), file in the page cache */
    bench_stat hotswap[2];   /* lorajit_hotswap_adapter between two such files */
} bench_swap16_result;

typedef struct bench_fwd_row {
    const char *name;        /* JSON key, e.g. "one_adapter" */
    const char *what;        /* for the table */
    const char *peer;        /* the peer config it compares with (NULL: none) */
    bench_stat lj[BENCH_TOKEN_SETS];
    bench_stat torch[BENCH_TOKEN_SETS]; /* reps 0: no peer */
    double agree;            /* max |lorajit - torch| of the 16-token logits; < 0: unknown */
} bench_fwd_row;

/* One decode configuration: `batch` sequences, each advancing one token per step. */
typedef struct bench_decode_row {
    const char *name;        /* JSON key, e.g. "b8_mixed" */
    const char *what;        /* for the table */
    int batch;
    int n_adapters;          /* distinct adapters a step reads: 0, 1 or batch */
    double bytes;            /* weight bytes a step reads: every tensor but embed_tokens,
                                batch embedding rows, A and B of each distinct adapter */
    bench_stat step;         /* one lorajit_decode call */
} bench_decode_row;

/* The FMA peak (bench_fma.c): bench_fma_once does macs multiply-adds on threads
 * threads, in independent chains of vector FMAs as wide as the compiled kernels'. */
typedef struct bench_fma {
    int threads, lanes;      /* lanes: 16 (AVX-512), 8 (AVX2 + FMA) or 4 (SSE multiply, then add) */
    double macs;             /* multiply-adds of one bench_fma_once, all threads */
    float sink;              /* keeps the chains' results alive */
} bench_fma;
void bench_fma_init(bench_fma *f, int threads);
void bench_fma_once(void *f); /* a bench_job's run */

/* Section 4: decode on a TinyLlama-shaped model against the memory bandwidth. */
/* 16-bit prefill against sgemm on f32 copies (bench_prefill16.c), one thread count. */
enum { BENCH_P16_THREADS = 2, BENCH_P16_LONG = 128, BENCH_P16_SHORT = 12 };
typedef struct bench_p16_row {
    int threads;             /* the engines' pools (options.threads) and OpenBLAS's for the GEMMs */
    bench_stat native;       /* prefill of BENCH_P16_LONG tokens, the kernel the host gets */
    bench_stat packed;       /* the same compiled with LORAJIT_NO_NATIVE_BF16=1 */
    bench_stat round_x;      /* the same compiled with LORAJIT_BF16_ROUND_X=1 */
    bench_stat dot;          /* vdpbf16ps where the host has AVX512-BF16 but gets another kernel:
                                LORAJIT_NO_AMX=1 on an AMX host, else LORAJIT_NATIVE_BF16=1 */
    bench_stat sgemm;        /* the projection GEMMs alone at M = BENCH_P16_LONG (bench_gemm, f32 copies) */
    bench_stat short_prompt; /* prefill of BENCH_P16_SHORT tokens (host kernel) */
    bench_stat step;         /* one batch-1 decode step after it */
} bench_p16_row;
typedef struct bench_p16_result {
    bool run;                /* the decode model is 16-bit */
    const char *kernel;      /* the host's: "amx", "vdpbf16ps" or "fma" (bench_p16_kernel) */
    bool dot;                /* the dot row is run (the host has AVX512-BF16, kernel not vdpbf16ps) */
    bench_p16_row rows[BENCH_P16_THREADS];
} bench_p16_result;

typedef struct bench_decode_result {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab;
    int full_layers;         /* TinyLlama's 22: n_layers < full_layers says the model was cut */
    int rank, n_adapters;    /* rank-16 adapters on all seven projections, 8 of them */
    const char *dtype;       /* of the model's tensors: "F32", "F16" or "BF16" */
    int elem_bytes;          /* 4 or 2 */
    double model_bytes;      /* tensor data of model.safetensors */
    double adapter_bytes;    /* A and B of one adapter */
    double gen_s;            /* lorajit_gen for the model and adapters; 0: reused */
    double open_ms;          /* compile of the decode engine */
    int threads;             /* threads of the bandwidth loops (= OpenBLAS threads) */
    size_t bw_bytes;         /* buffer the bandwidth loops stream */
    bench_stat read;         /* summing bw_bytes of floats (reads only) */
    bench_stat copy;         /* memcpy of bw_bytes into another buffer */
    int prompt;              /* tokens of the timed prefill */
    bench_stat prefill;      /* lorajit_seq_prefill of the prompt on one sequence */
    bench_stat gemm[2];      /* the projection GEMMs alone (bench_gemm) at M = 1 and M = 8 */
    bench_fma fma;           /* the FMA peak on `threads` threads ... */
    bench_stat fma_ms;       /* ... bench_fma_once, timed round-robin with the steps */
    int pos_start, pos_end;  /* sequence 0's KV positions over the timed steps */
    bool finite;             /* the last step's logits are all finite */
    bench_decode_row rows[BENCH_DECODE_CONFIGS];
    char model_dir[PATH_MAX];    /* the generated model, reused by sections 10 and 11 */
    char adapter_root[PATH_MAX]; /* its adapters: r16_0 .. r16_7 under it */
    char ad_dir[8][PATH_MAX];    /* the same, each folder */
    bench_p16_result p16;
} bench_decode_result;

/* Section 5: a real checkpoint's shape (bench_shapes.c). */
enum { BENCH_SHAPES = 2 };
typedef struct bench_shape_result {
    const char *name, *note;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab;
    double step_bytes;       /* bytes a batch-1 decode step reads (BF16 matrices, f32 norms) */
    double head_bytes;       /* of which the tied lm_head */
    double open_ms;
    int prompt;
    bench_stat prefill, step, step1; /* step1: the one-layer model's step */
    bench_stat read;         /* read bandwidth, measured between the steps */
} bench_shape_result;

/* Section 7: the tokenizer (bench_tok.c), lorajit against Hugging Face tokenizers. */
enum { BENCH_TOK_FAMILIES = 2 };
typedef struct bench_tok_row {
    const char *name, *what;   /* "qwen3", "Qwen3 byte-level BPE (NFC, regex Split, ByteLevel)" */
    int vocab;                 /* lorajit_tokenizer_vocab_size */
    double file_bytes;         /* tokenizer.json */
    bench_stat load;           /* lorajit_tokenizer_open of tokenizer.json (file in the page cache) */
    bench_stat encode;         /* lorajit_tokenizer_encode of the whole text, no special tokens */
    int n_ids;
    unsigned ids_fnv;          /* FNV-1a 32 over the ids, as bench_hf.js computes it */
    bench_stat hf_load;        /* Tokenizer.fromFile (reps 0: HF unavailable) */
    bench_stat hf_encode;      /* Tokenizer.encode, RAYON_NUM_THREADS=1 */
    int hf_ids;
    unsigned hf_fnv;
} bench_tok_row;
typedef struct bench_tok_result {
    double text_bytes;         /* of the text both encode */
    bool hf_ok;
    char hf_reason[256];       /* why the HF figures are missing */
    char hf_version[32], node[64];
    bench_tok_row rows[BENCH_TOK_FAMILIES];
} bench_tok_result;

/* Section 8: many adapters through few slots (bench_cache.c). */
typedef struct bench_cache_result {
    int n_names, n_folders, n_slots;  /* adapters registered, their folders, slots */
    int n_req, prompt, new_tokens, distinct; /* generate calls a run, their sizes, distinct draws */
    bench_stat one, zipf, cold;       /* a run: one adapter; Zipf draws with / without host copies */
    double jit_loads, evictions, host_hits; /* per Zipf run (with copies) */
    int64_t compiles;
} bench_cache_result;

/* Section 9: the paged KV cache (bench_kv.c). */
typedef struct bench_kv_result {
    int seqs, tokens, seq_len, block, budget_mb; /* sequences x tokens prefilled; max_seq_len; block size; pool MiB */
    double used_bytes, need_bytes;    /* blocks in use after the prefills; K and V of those tokens */
    double pool_bytes, old_bytes;     /* the pool; the old cache (seqs x seq_len positions) */
    bench_stat paged, flat;           /* a decode step: blocks of `block`; one block a sequence */
    bool same_logits;                 /* the two steps' logits, bit for bit */
} bench_kv_result;
/* Section 10: threads on a shared machine (bench_threads.c): decode at 1 and 2 threads,
 * idle and next to one busy process, a short prefill at 1 and 2 threads, and the first
 * decode step after it against the second. */
enum { BENCH_THREADS_PROGRESS = 2 };
typedef struct bench_threads_result {
    int steps;                 /* decode steps of one timed run, batch 1, from position 0 */
    int prompt;                /* tokens of the timed prefill */
    int rounds;                /* timed rounds (each config once per round, round-robin) */
    double open_ms[2];         /* compile of the 1- and 2-thread engines */
    bench_stat decode[2][2];   /* [threads - 1][busy]: a run of `steps` decode steps */
    bench_stat prefill[2];     /* [threads - 1]: prefill of `prompt` tokens, idle */
    bench_stat first[2];       /* [threads - 1]: the first decode step right after that prefill */
    bench_stat second[2];      /* [threads - 1]: the step after it (a steady step) */
    bool same_bits;            /* the 1- and 2-thread engines' logits are the same bits */
    bool busy_ok;              /* the busy process ran (started, alive until killed) */
} bench_threads_result;
/* Section 11: continuous batching through the scheduler (bench_sched.c). */
enum { BENCH_SCHED_CONFIGS = 5 };
typedef struct bench_sched_row {
    const char *name, *what;
    int requests;            /* requests of a run, all submitted at its start */
    bench_stat run;          /* wall time of a run (submit to the last token) */
    double tokens_per_s;     /* generated tokens / median run */
    double ttft_p50, ttft_p99, itl_p50, itl_p99; /* ms, over every request of the timed runs */
    double jit_loads, evictions, host_hits; /* per timed run */
} bench_sched_row;
typedef struct bench_sched_result {
    int n_layers, prompt, new_tokens, budget, n_names, zipf_slots, distinct_slots;
    const char *dtype;
    bench_sched_row rows[BENCH_SCHED_CONFIGS]; /* alone, one adapter, 16 distinct, Zipf, 16 distinct in f32 slots */
} bench_sched_result;

/* Section 12 and `lorajit bench --serve`: HTTP against the C API (bench_serve.c). */
enum { BENCH_SERVE_SCENARIOS = 4 };
typedef struct bench_serve_path {
    double tokens_per_s;         /* median over the timed rounds */
    double ttft_p50, ttft_p99, itl_p50, itl_p99; /* ms, over every request of the timed rounds */
    double itl_mean;             /* ms: the gaps' mean (a burst of late tokens does not lower it) */
    double cpu_us_per_token;     /* CPU time of both processes over the timed rounds / their tokens, us */
    double server_us_per_token;  /* of which the `lorajit serve` child's (HTTP; ~0 on the C API path) */
} bench_serve_path;
typedef struct bench_serve_row {
    const char *name, *what;
    int adapters, slots;         /* adapter names the requests use, resident slots */
    bench_serve_path path[2];    /* [0] C API (lorajit_sched + a driver thread), [1] HTTP */
    bool same_tokens;            /* both paths gave every request the same ids (last round) */
    double pair_tps_ratio;       /* median over rounds of HTTP / C API tokens/s of the round */
    double pair_ttft_p50_diff;   /* median over rounds of HTTP - C API TTFT p50 of the round, ms */
    int paced_requests;          /* paced runs (open loop, Poisson arrivals): requests a run */
    double paced_rate;           /* their rate, requests/s: half the C API's closed-loop requests/s */
    bench_serve_path paced[2];   /* the paced runs' latencies ([0] C API, [1] HTTP; no tokens/s or CPU) */
} bench_serve_row;
typedef struct bench_serve_result {
    int clients, requests, prompt, new_tokens, rounds, threads, max_batch, names;
    int scenarios;               /* rows measured: 3 with --quick (the small model's), else 4 */
    bench_serve_row rows[BENCH_SERVE_SCENARIOS]; /* 1 adapter, 16 adapters, 1000 Zipf; 16 adapters, dim 1024 */
} bench_serve_result;

typedef struct bench_result {
    bool quick;
    bool only_p16;            /* --only-prefill16: bench_decode runs bench_prefill16 alone */
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
    bench_swap16_result swap16; /* reps 0: not run */
    bench_fwd_row fwd[BENCH_FWD_CONFIGS];
    bench_stat gemm[BENCH_TOKEN_SETS]; /* the projection GEMMs alone through OpenBLAS */
    bench_decode_result dec;
    bench_shape_result shapes[BENCH_SHAPES];
    int n_shapes;             /* 0: not run (--quick) */
    bench_tok_result tok;
    bench_cache_result cache;
    bench_kv_result kv;
    bench_threads_result thr;
    bench_sched_result sched;
    bench_serve_result serve;
} bench_result;

/* ---- bench_util.c ---- */
/* Prints "lorajit bench: <message>" to stderr and exits 1 (a CLI: no partial report). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* snprintf into buf (cap bytes) that dies rather than truncate (paths, commands). */
void bench_fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
/* Dies with what, the status and lorajit_errmsg(e) unless st is LORAJIT_OK. */
void bench_must(lorajit_status st, lorajit_engine *e, const char *what);
/* Milliseconds on the monotonic clock. */
double bench_now_ms(void);
/* Starts the progress count (total lines) and the run's clock. */
void bench_progress_start(int total);
/* Seconds since bench_progress_start. */
double bench_elapsed_s(void);
/* Prints one progress line (stderr, rewritten in place on a terminal). */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* mkdir -p path; dies when it cannot. */
void bench_mkdirs(const char *path);
/* n_req draws of Zipf(1.0) over 0..n-1 into out (fixed seed: the same draws every
 * call): P(k) proportional to 1 / (k + 1). */
void bench_zipf(int n, int n_req, int *out);
/* The next of a sequence of uniform draws in [0, 1) from *state (a 64-bit LCG; the
 * same seed gives the same draws). */
double bench_uniform(uint64_t *state);
/* Sorts ms[0..reps) and returns its median, min and max. */
bench_stat bench_stat_of(double *ms, int reps);

/* One thing to time: prep(arg) untimed, run(arg) timed, undo(arg) untimed (either
 * may be NULL); the result goes to *out. */
typedef struct bench_job {
    void (*prep)(void *), (*run)(void *), (*undo)(void *);
    void *arg;
    bench_stat *out;
} bench_job;

/* Runs every job once untimed (warm-up), then reps rounds in which each job runs
 * once, in order: jobs compared with each other share the same moments of machine
 * load, so a busy second hurts them all alike. */
void bench_measure_jobs(bench_job *jobs, int n, int reps);
/* {median, min, max, reps} of s. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_stat_json(bench_stat s);
/* The bench_stat of such an object (o borrowed); reps 0 when o is not one. */
bench_stat bench_stat_from_json(const struct cJSON *o);
/* Runs argv (argv[0] a path, or a name found on PATH) without a shell, in dir (NULL:
 * here), with extra_env ("K=V", NULL-terminated; may be NULL) over the inherited
 * environment, stdout to out_fd (-1: /dev/null), stderr to err_path (NULL: ours).
 * Every pointer is borrowed for the call. Returns the exit status; -1 when it could
 * not start or died of a signal. */
int bench_run(const char *const argv[], const char *dir, const char *const extra_env[], int out_fd,
              const char *err_path);
/* Runs `exe_dir/lorajit_gen kind dir [--model model_dir] args` (args: flags and
 * numbers separated by spaces, no paths; model_dir may be NULL) unless dir/.stamp
 * already records the same model_dir and args. Returns true when it ran. */
bool bench_generate(const char *exe_dir, const char *kind, const char *dir, const char *model_dir,
                    const char *args);
/* The whole file, NUL-terminated; *len (may be NULL) gets its size. Dies when it
 * cannot. Caller owns the result; free with free(). */
char *bench_read_file(const char *path, size_t *len);

/* ---- bench_prefill16.c: 16-bit prefill against sgemm (in section 4) ---- */
/* Fills r->dec.p16 on the decode section's model (model_dir, borrowed) when it is
 * 16-bit: 1 and 2 threads; restores OpenBLAS's thread count. */
void bench_prefill16(bench_result *r, const char *model_dir);
void bench_prefill16_print(const bench_result *r, FILE *f);
/* The "prefill16" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_prefill16_json(const bench_result *r);

/* ---- bench_gemm.c ---- */
/* The model's projection GEMMs (q,k,v,o,gate,up,down of every layer, lm_head) as
 * lorajit calls them: sgemv for one token, sgemm on W [N, K] with Trans otherwise. */
typedef struct bench_gemm {
    char path[PATH_MAX];  /* the model's safetensors */
    unsigned char *map;   /* [map_bytes] the file, mapped read-only */
    size_t map_bytes, data_off; /* data_off: 8 + header length */
    int n_mats;
    const float **w;      /* [n_mats] W [out, in] f32: in the mapping (F32) or in owned[] */
    float **owned;        /* [n_mats] f32 copies of F16/BF16 matrices (what OpenBLAS can read) */
    int *out, *in;        /* [n_mats] */
    float *x;             /* [128, max in] */
    float *y;             /* [128, max out] */
    int n;                /* tokens (rows of x), 1..128 */
    int threads;          /* OpenBLAS threads for the run (an engine pins it to 1); 0: as it is */
} bench_gemm;
/* Maps the model's weights (the same page-cache pages lorajit's engines map); a
 * 16-bit model's matrices are widened to f32 copies, since sgemm reads only f32. */
void bench_gemm_open(bench_gemm *a, const char *model_dir, int n_layers);
/* A bench_job run: every GEMM once on a->n rows, on a->threads OpenBLAS threads. */
void bench_gemm_once(void *p);
void bench_gemm_close(bench_gemm *a);
/* Bytes of tensor data in a .safetensors file: its size less the 8-byte header
 * length and the header. Dies when it cannot read it. */
double bench_st_data_bytes(const char *path);

/* ---- bench_decode.c ---- */
/* Fills r->dec: generates (or reuses, under work) the TinyLlama-shaped model with
 * n_layers layers (0: 22; 2 layers at dim 256 with r->quick) and eight adapters,
 * measures the read and copy bandwidth with r->threads threads, a 64-token prefill
 * and decode steps at batch 1 and 8. */
void bench_decode(bench_result *r, const char *exe_dir, const char *work, int n_layers, const char *dtype);
/* The first part of bench_decode alone: r->dec's sizes and byte counts, the model and
 * adapters generated (or reused) under work. */
void bench_decode_model(bench_result *r, const char *exe_dir, const char *work, int n_layers, const char *dtype);
void bench_decode_print(const bench_result *r, FILE *f);
/* Reading bytes of floats on threads threads (the decode section's read loop), timed
 * reps times after a warm-up. */
bench_stat bench_read_stat(int threads, size_t bytes, int reps);

/* ---- bench_shapes.c: decode and prefill on real checkpoints' shapes ---- */
/* Fills r->shapes (skipped with r->quick): LLaMA-3.2-1B and Qwen2.5-0.5B shapes (BF16,
 * tied; Qwen2.5 as a LLaMA-shaped model of the same sizes) generated under work, a
 * 64-token prefill and batch-1 decode steps against the read bandwidth measured in the
 * same run, and the lm_head share from a one-layer model of the same shape. */
void bench_shapes(bench_result *r, const char *exe_dir, const char *work);
void bench_shapes_print(const bench_result *r, FILE *f);

/* ---- bench_swap.c ---- */
/* Section 2 on e (slots r_max 64 on all seven projections of the forward model):
 * r->swap[i] (targets, rank set) timed reps rounds with adapters[i]'s pair. */
void bench_swaps(bench_result *r, int reps, lorajit_engine *e, char adapters[BENCH_SWAPS][2][PATH_MAX]);
/* Section 2's 16-bit rows into r->swap16, on r->dec's model (bench_decode_model run
 * first); its two BF16 adapters generated (or reused) beside r->dec's. */
void bench_swap16(bench_result *r, const char *exe_dir, int reps);
/* Section 2's table (report.c). */
void bench_swaps_print(const bench_result *r, FILE *f);

/* ---- bench_cache.c ---- */
/* Section 8: generate calls with one adapter against the same calls naming adapters
 * drawn Zipf(1.0) from 1000 registered names over folders[0..n_folders) (8 slots),
 * with and without host copies; one engine each, on model_dir (the forward model). */
void bench_cache(bench_result *r, const char *model_dir, const char *const *folders, int n_folders);
void bench_cache_print(const bench_result *r, FILE *f);
/* The "cache" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_cache_json(const bench_result *r);

/* ---- bench_kv.c ---- */
/* Section 9: generates (or reuses, under work) a small model and fills r->kv: the KV
 * bytes of 16 sequences of 192 tokens in blocks of 16 within a 25 MiB pool, and a
 * batch-16 decode step with blocks of 16 against one block a sequence (round-robin). */
void bench_kv(bench_result *r, const char *exe_dir, const char *work);
void bench_kv_print(const bench_result *r, FILE *f);
/* The "kv_cache" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_kv_json(const bench_result *r);
/* The "shapes" list of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_shapes_json(const bench_result *r);
/* The "decode" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_decode_json(const bench_result *r);

/* ---- bench_sched.c ---- */
/* Section 9: 16 concurrent requests through lorajit_sched on the decode section's
 * model (r->dec.model_dir, its adapters): one adapter, 16 distinct adapters, 1000
 * registered adapters drawn Zipf(1.0) through 8 slots, and one request alone;
 * tokens/s, time to first token and inter-token latency. Runs after bench_decode. */
void bench_sched(bench_result *r);
void bench_sched_print(const bench_result *r, FILE *f);
/* The "sched" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_sched_json(const bench_result *r);

/* ---- bench_tok.c: the tokenizer against Hugging Face tokenizers ---- */
/* Fills r->tok: unpacks TinyLlama's and Qwen3's tokenizer.json (tests/tokenizer/) and
 * the text (the texts of tests/tokenizer/expected/qwen3.json.xz) under work/tok, times
 * lorajit's load and encode of each, then runs node (NULL: "node" on PATH) on
 * tests/tokenizer/bench_hf.js for HF's on the same files, with NODE_PATH = node_path
 * (NULL: inherited) and RAYON_NUM_THREADS=1. Without node or the npm package, the HF
 * figures are left out and r->tok.hf_reason says why. Fewer repetitions with r->quick. */
void bench_tok(bench_result *r, const char *work, const char *node, const char *node_path);
void bench_tok_print(const bench_result *r, FILE *f);
/* The "tokenizer" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_tok_json(const bench_result *r);

/* ---- bench_threads.c: section 10, threads next to a busy process ---- */
/* Fills r->thr on r->dec's model (run bench_decode first): two engines of 1 and 2
 * threads (options.threads); round-robin runs of decode steps on each, idle and with
 * one spinning child process (forked before the run, killed after), and a prefill. */
void bench_threads(bench_result *r);
void bench_threads_print(const bench_result *r, FILE *f);
/* The "threads" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_threads_json(const bench_result *r);
/* ---- bench_serve.c: section 12, `lorajit bench --serve` ---- */
/* Fills r->serve: HTTP (a `lorajit serve` child, exe_dir/lorajit) against the C API
 * (client threads submitting to one lorajit_sched and its driver thread) on the same
 * load and engine options (r->threads threads): 1 adapter, 16 adapters, 1000 adapters
 * Zipf(1.0) through 8 slots (under work/serve_root, made afresh). rounds timed rounds
 * (0: 3, 1 with r->quick) after a warm-up; fewer requests with r->quick. */
void bench_serve(bench_result *r, const char *exe_dir, const char *work, int rounds);
/* The progress lines bench_serve prints. */
int bench_serve_progress(bool quick, int rounds);
void bench_serve_print(const bench_result *r, FILE *f);
/* The "serve" object of bench.json. Caller owns the result; free with cJSON_Delete(). */
struct cJSON *bench_serve_json(const bench_result *r);

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
