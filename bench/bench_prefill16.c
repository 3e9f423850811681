/* bench_prefill16.c — part of section 4 of `lorajit bench`: prefill of a 16-bit model
 * (the decode section's, TinyLlama's shape) against OpenBLAS sgemm doing only the
 * projection GEMMs on f32 copies of the same weights, on 1 and 2 threads.
 *
 * Per thread count (the engines' pools, options.threads, and OpenBLAS's while the GEMMs run),
 * timed round-robin: a 128-token prefill with the kernel the host gets (AMX tiles on a
 * CPU with AMX-BF16, vdpbf16ps on AMD Zen with AVX512-BF16, else FMAs over widened W:
 * compiler/cg_matmul16.c cg_matmul16_target), the same with LORAJIT_NO_NATIVE_BF16=1
 * (the FMA kernel), the same with LORAJIT_BF16_ROUND_X=1 (x rounded to BF16 once, no lo
 * part), on a host with AVX512-BF16 whose kernel is another the same with vdpbf16ps
 * (LORAJIT_NO_AMX=1 on AMX, else LORAJIT_NATIVE_BF16=1),
 * the GEMMs alone at M = 128 (bench_gemm), a 12-token prefill and one decode
 * step (batch 1). Ratios: GEMMs ms / prefill ms (a speed ratio: > 1 is faster than
 * sgemm) and 12-token prefill ms / step ms. No adapter is active. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench.h"

typedef struct p16_arg {
    lorajit_engine *e;
    const int32_t *prompt; /* [BENCH_P16_LONG] */
    int n;                 /* tokens of the prefill */
    int32_t token;
    float *logits;         /* [vocab] */
} p16_arg;

/* Idle long enough for spinning threads to sleep (the pool polls 3 ms, OpenBLAS up to
 * ~0.1 s), so each job starts on quiet cores. Not timed. */
static void quiet(void) { nanosleep(&(struct timespec){0, 120 * 1000 * 1000}, NULL); }

static void prefill_prep(void *p) {
    p16_arg *a = p;
    bench_must(lorajit_seq_reset(a->e, 0), a->e, "seq_reset");
    quiet();
}
static void prefill_once(void *p) {
    p16_arg *a = p;
    bench_must(lorajit_seq_prefill(a->e, 0, a->prompt, a->n, NULL), a->e, "seq_prefill");
}
/* The step follows a 12-token prompt; the sequence starts again before it is long. */
static void step_prep(void *p) {
    p16_arg *a = p;
    if (lorajit_seq_pos(a->e, 0) < BENCH_P16_SHORT || lorajit_seq_pos(a->e, 0) > 200) {
        bench_must(lorajit_seq_reset(a->e, 0), a->e, "seq_reset");
        bench_must(lorajit_seq_prefill(a->e, 0, a->prompt, BENCH_P16_SHORT, NULL), a->e, "seq_prefill");
    }
    quiet();
}
static void step_once(void *p) {
    p16_arg *a = p;
    int seq = 0;
    bench_must(lorajit_decode(a->e, &seq, &a->token, 1, a->logits), a->e, "decode");
}

/* An engine for one 128-token sequence on a pool of `threads`, compiled with env (NULL
 * or "NAME") set to 1. The count is given, not left to OpenBLAS's: once an engine has
 * pinned OpenBLAS to one thread, a later open takes the count found then, so setting
 * OpenBLAS to 1 no longer gives a 1-thread pool (before 2026-12-06 this section's
 * "1 thread" rows ran on the earlier engines' count). */
static lorajit_engine *open_engine(const char *model_dir, const char *env, int threads) {
    lorajit_options o = {.max_rank = 16, .targets = "q_proj,v_proj", .max_adapters = 1,
                         .max_tokens = BENCH_P16_LONG, .max_batch = 1, .max_seq_len = 256, .threads = threads};
    if (env) setenv(env, "1", 1);
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, model_dir, &o);
    if (env) unsetenv(env);
    bench_must(st, e, model_dir);
    return e;
}

/* A line of /proc/cpuinfo starting with key ("flags", "vendor_id") holds text. */
static bool cpuinfo_has(const char *key, const char *text) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    bool yes = false;
    while (f && !yes && fgets(line, sizeof line, f))
        yes = !strncmp(line, key, strlen(key)) && strstr(line, text);
    if (f) fclose(f);
    return yes;
}

void bench_prefill16(bench_result *r, const char *model_dir) {
    bench_p16_result *p = &r->dec.p16;
    const char *no_amx = getenv("LORAJIT_NO_AMX");
    bool bf16 = cpuinfo_has("flags", " avx512_bf16"), amx_bf16 = bf16 && cpuinfo_has("flags", " amx_bf16");
    bool amx = amx_bf16 && !(no_amx && *no_amx && strcmp(no_amx, "0"));
    /* cg_matmul16_target's choice, seen from here: vdpbf16ps with AMX or on AMD Zen */
    bool dot = bf16 && (amx_bf16 || cpuinfo_has("vendor_id", "AuthenticAMD"));
    *p = (bench_p16_result){.run = strcmp(r->dec.dtype, "F32") != 0,
                            .kernel = amx ? "amx" : dot ? "vdpbf16ps" : "fma", .dot = bf16 && (amx || !dot)};
    if (!p->run) return;
    int32_t prompt[BENCH_P16_LONG];
    for (int i = 0; i < BENCH_P16_LONG; i++) prompt[i] = (int32_t)((i * 7919u + 13) % (unsigned)r->dec.vocab);
    float *logits = malloc(sizeof(float) * (size_t)r->dec.vocab);
    if (!logits) bench_die("out of memory");
    bench_gemm g = {0};
    bench_gemm_open(&g, model_dir, r->dec.n_layers);
    g.n = BENCH_P16_LONG;
    int reps = r->quick ? 3 : 5;
    for (int t = 0; t < BENCH_P16_THREADS; t++) {
        bench_p16_row *row = &p->rows[t];
        row->threads = t + 1;
        bench_progress("decode: 16-bit prefill of %d and %d tokens against sgemm, %d thread%s", BENCH_P16_LONG,
                       BENCH_P16_SHORT, row->threads, t ? "s" : "");
        g.threads = row->threads; /* sgemm on that many OpenBLAS threads while it runs (engines pin it to 1) */
        lorajit_engine *host = open_engine(model_dir, NULL, row->threads);
        lorajit_engine *packed = open_engine(model_dir, "LORAJIT_NO_NATIVE_BF16", row->threads);
        lorajit_engine *round_x = open_engine(model_dir, "LORAJIT_BF16_ROUND_X", row->threads);
        lorajit_engine *dot =
            !p->dot ? NULL : open_engine(model_dir, amx ? "LORAJIT_NO_AMX" : "LORAJIT_NATIVE_BF16", row->threads);
        p16_arg a[6] = {{host, prompt, BENCH_P16_LONG, 17, logits}, {packed, prompt, BENCH_P16_LONG, 17, logits},
                        {round_x, prompt, BENCH_P16_LONG, 17, logits}, {host, prompt, BENCH_P16_SHORT, 17, logits},
                        {host, prompt, 0, 17, logits}, {dot, prompt, BENCH_P16_LONG, 17, logits}};
        bench_job jobs[7] = {
            {prefill_prep, prefill_once, NULL, &a[0], &row->native},
            {prefill_prep, prefill_once, NULL, &a[1], &row->packed},
            {prefill_prep, prefill_once, NULL, &a[2], &row->round_x},
            {NULL, bench_gemm_once, NULL, &g, &row->sgemm},
            {prefill_prep, prefill_once, NULL, &a[3], &row->short_prompt},
            {step_prep, step_once, NULL, &a[4], &row->step},
            {prefill_prep, prefill_once, NULL, &a[5], &row->dot},
        };
        bench_measure_jobs(jobs, p->dot ? 7 : 6, reps);
        lorajit_engine_free(dot);
        lorajit_engine_free(host);
        lorajit_engine_free(packed);
        lorajit_engine_free(round_x);
    }
    bench_gemm_close(&g);
    free(logits);
}

void bench_prefill16_print(const bench_result *r, FILE *f) {
    const bench_p16_result *p = &r->dec.p16;
    if (!p->run) return;
    bool amx = !strcmp(p->kernel, "amx");
    fprintf(f, "  16-bit prefill of %d tokens (no adapter): host = the kernel this CPU gets, %s; fma = "
               "LORAJIT_NO_NATIVE_BF16=1 (W widened to f32 + FMA); round-x = LORAJIT_BF16_ROUND_X=1 (x rounded to BF16 "
               "once);%s sgemm = the projection GEMMs alone at M = %d on f32 copies; xS = sgemm ms / prefill ms\n",
            BENCH_P16_LONG, amx ? "AMX tiles (AMX-BF16)" : strcmp(p->kernel, "fma") ? "vdpbf16ps (AVX512-BF16)"
                                                                                     : "fma (W widened to f32 + FMA)",
            !p->dot ? ""
            : amx   ? " dpbf16 = LORAJIT_NO_AMX=1 (vdpbf16ps);"
                    : " dpbf16 = LORAJIT_NATIVE_BF16=1 (vdpbf16ps);",
            BENCH_P16_LONG);
    fprintf(f, "  %-7s %9s %9s %9s %9s %9s %7s %7s %7s %7s %9s %8s %11s\n", "threads", "host ms", "fma", "round-x",
            "dpbf16", "sgemm ms", "xS host", "fma", "round-x", "dpbf16", "12-tok ms", "step ms", "12-tok/step");
    for (int t = 0; t < BENCH_P16_THREADS; t++) {
        const bench_p16_row *w = &p->rows[t];
        double sg = w->sgemm.median;
        char dot[16] = "-", dot_x[16] = "-";
        if (p->dot) {
            snprintf(dot, sizeof dot, "%.1f", w->dot.median);
            snprintf(dot_x, sizeof dot_x, "%.2f", sg / w->dot.median);
        }
        fprintf(f, "  %-7d %9.1f %9.1f %9.1f %9s %9.1f %7.2f %7.2f %7.2f %7s %9.1f %8.2f %11.2f\n", w->threads,
                w->native.median, w->packed.median, w->round_x.median, dot, sg, sg / w->native.median,
                sg / w->packed.median, sg / w->round_x.median, dot_x, w->short_prompt.median, w->step.median,
                w->short_prompt.median / w->step.median);
    }
}

cJSON *bench_prefill16_json(const bench_result *r) {
    const bench_p16_result *p = &r->dec.p16;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "run", p->run);
    if (!p->run) return o;
    cJSON_AddStringToObject(o, "host_kernel", p->kernel);
    cJSON_AddNumberToObject(o, "long_tokens", BENCH_P16_LONG);
    cJSON_AddNumberToObject(o, "short_tokens", BENCH_P16_SHORT);
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    for (int t = 0; t < BENCH_P16_THREADS; t++) {
        const bench_p16_row *w = &p->rows[t];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "threads", w->threads);
        cJSON_AddItemToObject(x, "prefill_host_ms", bench_stat_json(w->native));
        cJSON_AddItemToObject(x, "prefill_fma_ms", bench_stat_json(w->packed));
        cJSON_AddItemToObject(x, "prefill_round_x_ms", bench_stat_json(w->round_x));
        cJSON_AddItemToObject(x, "sgemm_ms", bench_stat_json(w->sgemm));
        cJSON_AddItemToObject(x, "prefill_short_ms", bench_stat_json(w->short_prompt));
        cJSON_AddItemToObject(x, "step_ms", bench_stat_json(w->step));
        cJSON_AddNumberToObject(x, "sgemm_over_host", w->sgemm.median / w->native.median);
        cJSON_AddNumberToObject(x, "sgemm_over_fma", w->sgemm.median / w->packed.median);
        cJSON_AddNumberToObject(x, "sgemm_over_round_x", w->sgemm.median / w->round_x.median);
        cJSON_AddNumberToObject(x, "short_over_step", w->short_prompt.median / w->step.median);
        if (p->dot) {
            cJSON_AddItemToObject(x, "prefill_dpbf16_ms", bench_stat_json(w->dot));
            cJSON_AddNumberToObject(x, "sgemm_over_dpbf16", w->sgemm.median / w->dot.median);
        }
        cJSON_AddItemToArray(rows, x);
    }
    return o;
}
