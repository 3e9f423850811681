/* bench_sched.c — section 11 of `lorajit bench`: continuous batching (issue 14). On
 * the decode section's model (TinyLlama's shape, BF16; 2 layers at dim 256 with
 * --quick) and its eight rank-16 adapters on all seven projections: 16 requests of
 * a 128-token prompt and 64 new tokens (greedy, no EOS), all submitted at once to a
 * lorajit_sched (token budget 128) and run until idle, timed round-robin in five
 * configurations, the LoRA slots in BF16 (lora_dtype "bf16", the model's dtype, as
 * vLLM keeps adapters) but for the last:
 *   alone     one request by itself (the baseline of "16 concurrent / alone");
 *   one       16 requests, every one with the same adapter;
 *   distinct  16 requests, 16 distinct adapters (names over the 8 folders, 16 slots);
 *   zipf      16 requests, each naming one of 1000 registered adapters drawn
 *             Zipf(1.0) (new draws every run) through 8 slots: misses load just in
 *             time, and a request whose adapter finds every slot pinned waits;
 *   distinct_f32  distinct with f32 slots (the default lora_dtype: PEFT's values exactly).
 * Figures: generated tokens/s of a run (median), and p50/p99 of the time to first
 * token and of the gaps between a request's tokens over the timed runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum { BS_REQ = 16, BS_PROMPT = 128, BS_NEW = 64, BS_NAMES = 1000, BS_ZIPF_SLOTS = 8, BS_SAMPLES = 1 << 16,
       BS_DRAWS = 64 * BS_REQ };

typedef struct bs_arg {
    lorajit_engine *e;
    const char *what;
    int n_req, mode;             /* mode 0: adapter "a0"; 1: "d%02d" of the request; 2: Zipf draws */
    int runs;                    /* runs so far (the first is the warm-up) */
    const int *draw;             /* [BS_DRAWS] Zipf(1.0) draws, taken in turn from every run */
    int n_drawn;
    int vocab;
    double *ttft, *itl;          /* samples of the timed runs */
    int n_ttft, n_itl;
} bs_arg;

static void run(void *p) {
    bs_arg *a = p;
    lorajit_sched *s = NULL;
    bench_must(lorajit_sched_open(a->e, &(lorajit_sched_options){.token_budget = BS_PROMPT}, &s), a->e, "sched_open");
    static int32_t prompt[BS_REQ][BS_PROMPT];
    char names[BS_REQ][16];
    int64_t id[BS_REQ];
    for (int i = 0; i < a->n_req; i++) {
        for (int k = 0; k < BS_PROMPT; k++) prompt[i][k] = (int32_t)((k * 7919u + 13 + 101u * i) % (unsigned)a->vocab);
        if (a->mode == 0) snprintf(names[i], sizeof names[i], "a0");
        else if (a->mode == 1) snprintf(names[i], sizeof names[i], "d%02d", i);
        else snprintf(names[i], sizeof names[i], "z%04d", a->draw[a->n_drawn++ % BS_DRAWS]);
        const char *ad[1] = {names[i]};
        lorajit_sched_request q = {.prompt = prompt[i], .n_prompt = BS_PROMPT, .adapters = ad, .n_adapters = 1,
                                   .max_new = BS_NEW};
        if (lorajit_sched_submit(s, &q, &id[i]) != LORAJIT_OK) bench_die("sched_submit: %s", lorajit_sched_errmsg(s));
    }
    if (lorajit_sched_run_until_idle(s) != LORAJIT_OK) bench_die("sched: %s", lorajit_sched_errmsg(s));
    bool timed = a->runs++ > 0;
    for (int i = 0; i < a->n_req; i++) {
        lorajit_sched_result res;
        if (lorajit_sched_take(s, id[i], &res) != LORAJIT_OK || res.n_tokens != BS_NEW)
            bench_die("sched (%s): request %d: %s %s", a->what, i, lorajit_finish_str(res.finish), res.error);
        if (timed && a->n_ttft < BS_SAMPLES) a->ttft[a->n_ttft++] = res.ttft_ms;
        for (int k = 1; timed && k < res.n_tokens && a->n_itl < BS_SAMPLES; k++)
            a->itl[a->n_itl++] = res.token_ms[k] - res.token_ms[k - 1];
        lorajit_free(res.tokens), lorajit_free(res.token_ms);
    }
    lorajit_sched_free(s);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The q-quantile (nearest rank) of v[0..n), sorted in place. */
static double quantile(double *v, int n, double q) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)ceil(q * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static lorajit_engine *open_engine(const bench_result *r, int slots, const char *lora_dtype) {
    lorajit_options o = {.max_rank = 16, .targets = "all-linear", .max_adapters = slots, .max_tokens = BS_PROMPT,
                         .max_batch = BS_REQ, .max_seq_len = BS_PROMPT + BS_NEW, .lora_dtype = lora_dtype};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, r->dec.model_dir, &o), e, r->dec.model_dir);
    return e;
}

void bench_sched(bench_result *r) {
    bench_sched_result *c = &r->sched;
    *c = (bench_sched_result){.n_layers = r->dec.n_layers, .prompt = BS_PROMPT, .new_tokens = BS_NEW,
                              .budget = BS_PROMPT, .n_names = BS_NAMES, .zipf_slots = BS_ZIPF_SLOTS,
                              .distinct_slots = BS_REQ, .dtype = r->dec.dtype};
    bench_progress("continuous batching: compiling 4 engines, %d adapters registered", BS_NAMES);
    lorajit_engine *e[4] = {open_engine(r, 1, "bf16"), open_engine(r, BS_REQ, "bf16"),
                            open_engine(r, BS_ZIPF_SLOTS, "bf16"), open_engine(r, BS_REQ, NULL)};
    bench_must(lorajit_load_adapter(e[0], "a0", r->dec.ad_dir[0]), e[0], r->dec.ad_dir[0]);
    for (int i = 0; i < BS_REQ; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%02d", i);
        bench_must(lorajit_register_adapter(e[1], name, r->dec.ad_dir[i % 8]), e[1], "register");
        bench_must(lorajit_register_adapter(e[3], name, r->dec.ad_dir[i % 8]), e[3], "register");
    }
    for (int i = 0; i < BS_NAMES; i++) {
        char name[16];
        snprintf(name, sizeof name, "z%04d", i);
        bench_must(lorajit_register_adapter(e[2], name, r->dec.ad_dir[i % 8]), e[2], "register");
    }
    static int draw[BS_DRAWS];
    bench_zipf(BS_NAMES, BS_DRAWS, draw);
    static const struct { const char *name, *what; int n_req, engine, mode; } cfg[BENCH_SCHED_CONFIGS] = {
        {"alone", "one request alone", 1, 0, 0},
        {"one_adapter", "16 requests, one adapter", BS_REQ, 0, 0},
        {"distinct", "16 requests, 16 distinct adapters (16 slots)", BS_REQ, 1, 1},
        {"zipf", "16 requests, 1000 registered, Zipf(1.0), 8 slots", BS_REQ, 2, 2},
        {"distinct_f32", "16 requests, 16 distinct adapters, f32 slots", BS_REQ, 3, 1},
    };
    bs_arg a[BENCH_SCHED_CONFIGS];
    bench_job jobs[BENCH_SCHED_CONFIGS];
    for (int k = 0; k < BENCH_SCHED_CONFIGS; k++) {
        a[k] = (bs_arg){.e = e[cfg[k].engine], .what = cfg[k].name, .n_req = cfg[k].n_req, .mode = cfg[k].mode,
                        .draw = draw, .vocab = r->dec.vocab};
        if (!(a[k].ttft = malloc(sizeof(double) * BS_SAMPLES)) || !(a[k].itl = malloc(sizeof(double) * BS_SAMPLES)))
            bench_die("out of memory");
        c->rows[k] = (bench_sched_row){.name = cfg[k].name, .what = cfg[k].what, .requests = cfg[k].n_req};
        jobs[k] = (bench_job){NULL, run, NULL, &a[k], &c->rows[k].run};
    }
    int reps = 2;
    bench_progress("continuous batching: %d requests of %d + %d tokens, %d configurations, %d rounds after a warm-up",
                   BS_REQ, BS_PROMPT, BS_NEW, BENCH_SCHED_CONFIGS, reps);
    lorajit_stats s0, s1;
    lorajit_get_stats(e[2], &s0);
    bench_measure_jobs(jobs, BENCH_SCHED_CONFIGS, reps);
    lorajit_get_stats(e[2], &s1);
    for (int k = 0; k < BENCH_SCHED_CONFIGS; k++) {
        bench_sched_row *w = &c->rows[k];
        w->tokens_per_s = w->run.median > 0 ? w->requests * BS_NEW / (w->run.median / 1e3) : 0;
        w->ttft_p50 = quantile(a[k].ttft, a[k].n_ttft, 0.5), w->ttft_p99 = quantile(a[k].ttft, a[k].n_ttft, 0.99);
        w->itl_p50 = quantile(a[k].itl, a[k].n_itl, 0.5), w->itl_p99 = quantile(a[k].itl, a[k].n_itl, 0.99);
        free(a[k].ttft), free(a[k].itl);
    }
    bench_sched_row *z = &c->rows[3];
    z->jit_loads = (double)(s1.jit_loads - s0.jit_loads) / (reps + 1);
    z->evictions = (double)(s1.evictions - s0.evictions) / (reps + 1);
    z->host_hits = (double)(s1.host_hits - s0.host_hits) / (reps + 1);
    for (int k = 0; k < 4; k++) lorajit_engine_free(e[k]);
}

static double ratio(const bench_sched_row *a, const bench_sched_row *b) {
    return b->tokens_per_s > 0 ? a->tokens_per_s / b->tokens_per_s : 0;
}

void bench_sched_print(const bench_result *r, FILE *f) {
    const bench_sched_result *c = &r->sched;
    if (!c->rows[0].run.reps) return;
    fprintf(f, "\n11. Continuous batching (lorajit_sched, token budget %d): %d requests at once, %d-token prompts, %d "
            "new tokens;\n   the decode model (%s, %d layers), rank-16 adapters on all seven projections, LoRA slots in "
            "bf16\n   (lora_dtype) but for the last row\n", c->budget,
            BS_REQ, c->prompt, c->new_tokens, c->dtype, c->n_layers);
    fprintf(f, "   %-50s %10s %18s %18s\n", "", "tokens/s", "TTFT p50/p99 ms", "inter-token p50/p99");
    for (int k = 0; k < BENCH_SCHED_CONFIGS; k++) {
        const bench_sched_row *w = &c->rows[k];
        fprintf(f, "   %-50s %10.1f %8.1f / %7.1f %8.1f / %7.1f\n", w->what, w->tokens_per_s, w->ttft_p50, w->ttft_p99,
                w->itl_p50, w->itl_p99);
    }
    fprintf(f, "   Zipf per run: %.1f just-in-time loads, %.1f evictions, %.1f from host copies\n", c->rows[3].jit_loads,
            c->rows[3].evictions, c->rows[3].host_hits);
    fprintf(f, "   throughput: 16 distinct / one adapter %.2f; Zipf / one adapter %.2f; 16 concurrent / alone %.2f;\n"
            "   16 distinct in f32 slots / one adapter (bf16 slots) %.2f\n", ratio(&c->rows[2], &c->rows[1]),
            ratio(&c->rows[3], &c->rows[1]), ratio(&c->rows[1], &c->rows[0]), ratio(&c->rows[4], &c->rows[1]));
}

struct cJSON *bench_sched_json(const bench_result *r) {
    const bench_sched_result *c = &r->sched;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "layers", c->n_layers);
    cJSON_AddNumberToObject(j, "prompt", c->prompt);
    cJSON_AddNumberToObject(j, "new_tokens", c->new_tokens);
    cJSON_AddNumberToObject(j, "token_budget", c->budget);
    cJSON_AddNumberToObject(j, "registered", c->n_names);
    cJSON_AddNumberToObject(j, "zipf_slots", c->zipf_slots);
    cJSON *rows = cJSON_AddObjectToObject(j, "configs");
    for (int k = 0; k < BENCH_SCHED_CONFIGS; k++) {
        const bench_sched_row *w = &c->rows[k];
        cJSON *o = cJSON_AddObjectToObject(rows, w->name);
        cJSON_AddNumberToObject(o, "requests", w->requests);
        cJSON_AddItemToObject(o, "run_ms", bench_stat_json(w->run));
        cJSON_AddNumberToObject(o, "tokens_per_s", w->tokens_per_s);
        cJSON_AddNumberToObject(o, "ttft_p50_ms", w->ttft_p50);
        cJSON_AddNumberToObject(o, "ttft_p99_ms", w->ttft_p99);
        cJSON_AddNumberToObject(o, "itl_p50_ms", w->itl_p50);
        cJSON_AddNumberToObject(o, "itl_p99_ms", w->itl_p99);
    }
    cJSON_AddNumberToObject(j, "zipf_jit_loads_per_run", c->rows[3].jit_loads);
    cJSON_AddNumberToObject(j, "zipf_evictions_per_run", c->rows[3].evictions);
    cJSON_AddNumberToObject(j, "zipf_host_hits_per_run", c->rows[3].host_hits);
    cJSON_AddNumberToObject(j, "distinct_over_one", ratio(&c->rows[2], &c->rows[1]));
    cJSON_AddNumberToObject(j, "zipf_over_one", ratio(&c->rows[3], &c->rows[1]));
    cJSON_AddNumberToObject(j, "concurrent_over_alone", ratio(&c->rows[1], &c->rows[0]));
    cJSON_AddNumberToObject(j, "distinct_f32_over_one", ratio(&c->rows[4], &c->rows[1]));
    cJSON_AddStringToObject(j, "lora_dtype", "bf16 (distinct_f32: f32)");
    return j;
}
