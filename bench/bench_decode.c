/* bench_decode.c — section 4 of `lorajit bench`: decode tokens/s at batch 1 and 8 on
 * a TinyLlama-shaped model (dim 2048, hidden 5632, 22 layers, 32 heads, 4 KV heads,
 * vocab 32000; BF16 as TinyLlama ships, or F16 / F32) against the bound set by memory
 * bandwidth, and a batch of 8 rows with 8 distinct adapters against the same batch
 * sharing one.
 *
 * Inputs: the model and eight rank-16 adapters on all seven projections, made by
 * lorajit_gen under the work dir (reused). Measures one 64-token prefill, then
 * round-robin: lorajit_decode steps in five configurations, the same projection
 * GEMMs alone through OpenBLAS at M = 1 and 8, the read and copy bandwidth
 * (streaming sum and memcpy of a large buffer, on the OpenBLAS thread count) and the
 * FMA peak on as many threads (bench_fma.c): a step's bound in bytes and in FMAs.
 * Outputs: r->dec, its table lines (bench_decode_print) and JSON (bench_decode_json). */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum {
    DEC_BATCH = 8,        /* rows of the big batch = adapters = sequences */
    DEC_PROMPT = 64,      /* prefill tokens */
    DEC_SEQ_LEN = 512,    /* KV positions per sequence */
    DEC_MAX_THREADS = 64, /* bandwidth loops */
};

static const char *const all_seven = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";

/* The five configurations, timed round-robin. mode: 0 no adapter, 1 every row uses
 * adapter 0, 2 row i uses adapter i. */
static const struct dec_cfg {
    const char *name, *what;
    int batch, mode;
} cfgs[BENCH_DECODE_CONFIGS] = {
    {"b1_base", "no adapter", 1, 0},
    {"b1_one_adapter", "one r16 adapter", 1, 1},
    {"b8_base", "no adapter", DEC_BATCH, 0},
    {"b8_shared", "one r16 adapter shared by all rows", DEC_BATCH, 1},
    {"b8_mixed", "8 distinct r16 adapters, one per row", DEC_BATCH, 2},
};

// ----------------------------------------------------------------------------
// bytes a step reads

/* Values of the model's matrices (no biases, lm_head not tied): every layer's seven
 * projections, lm_head, and embed_tokens when with_embed. */
static double matrix_values(const bench_decode_result *d, bool with_embed) {
    double head_size = d->dim / d->n_heads, q_dim = d->n_heads * head_size, kv_dim = d->n_kv_heads * head_size;
    double layer = q_dim * d->dim + 2 * kv_dim * d->dim + d->dim * q_dim + 3.0 * d->hidden_dim * d->dim;
    return d->n_layers * layer + (with_embed ? 2.0 : 1.0) * d->vocab * d->dim;
}
/* Values of its norms: two per layer and the final one. */
static double norm_values(const bench_decode_result *d) { return (2.0 * d->n_layers + 1) * d->dim; }

/* Floats of one adapter: A [r, in] and B [out, r] of the seven projections per layer. */
static double adapter_floats(const bench_decode_result *d) {
    double head_size = d->dim / d->n_heads, q_dim = d->n_heads * head_size, kv_dim = d->n_kv_heads * head_size;
    double in_out = (d->dim + q_dim) * 2 + (d->dim + kv_dim) * 2 + (d->dim + d->hidden_dim) * 3;
    return d->n_layers * d->rank * in_out;
}

// ----------------------------------------------------------------------------
// bandwidth: every thread streams its part of one large buffer

typedef float v16f __attribute__((vector_size(64)));

typedef struct bw_part {
    const char *src; /* [bytes] */
    char *dst;       /* [bytes], copy only */
    size_t bytes;
    float sum;       /* of the floats read: keeps the loads alive */
} bw_part;

typedef struct bw_arg {
    int threads;
    void *(*fn)(void *);
    bw_part part[DEC_MAX_THREADS];
} bw_arg;

/* Sums the part's floats in 64-byte vectors, eight chains (the adds never wait for
 * memory). Cloned for AVX-512, AVX2 and baseline x86-64, picked at run time for the
 * host, so the read is as wide as the compiled kernels' own loads. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void *read_part(void *p) {
    bw_part *s = p;
    const v16f *x = (const v16f *)s->src;
    v16f a[8] = {{0}};
    for (size_t i = 0, n = s->bytes / sizeof(v16f); i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k];
    v16f t = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    float sum = 0;
    for (int k = 0; k < 16; k++) sum += t[k];
    s->sum = sum;
    return NULL;
}

static void *copy_part(void *p) {
    bw_part *s = p;
    memcpy(s->dst, s->src, s->bytes);
    return NULL;
}

static void bw_once(void *p) {
    bw_arg *a = p;
    pthread_t t[DEC_MAX_THREADS];
    for (int i = 1; i < a->threads; i++)
        if (pthread_create(&t[i], NULL, a->fn, &a->part[i]) != 0) bench_die("pthread_create failed");
    a->fn(&a->part[0]);
    for (int i = 1; i < a->threads; i++) pthread_join(t[i], NULL);
}

/* Two buffers of d->bw_bytes and the read and copy jobs over them, split among
 * d->threads threads; timed round-robin with the decode steps, so the bound sees
 * the same moments of machine load as the steps it bounds. */
typedef struct bw_bufs {
    char *src, *dst;
    bw_arg rd, cp;
} bw_bufs;

static void bw_open(bw_bufs *b, const bench_decode_result *d) {
    b->src = aligned_alloc(64, d->bw_bytes), b->dst = aligned_alloc(64, d->bw_bytes);
    if (!b->src || !b->dst) bench_die("out of memory (two buffers of %zu MiB)", d->bw_bytes >> 20);
    memset(b->src, 0, d->bw_bytes); /* every page mapped before timing */
    memset(b->dst, 0, d->bw_bytes);
    b->rd.threads = b->cp.threads = d->threads;
    b->rd.fn = read_part, b->cp.fn = copy_part;
    size_t part = d->bw_bytes / (size_t)d->threads / 64 * 64;
    for (int i = 0; i < d->threads; i++) {
        size_t off = part * (size_t)i, len = i == d->threads - 1 ? d->bw_bytes - off : part;
        b->rd.part[i] = b->cp.part[i] = (bw_part){b->src + off, b->dst + off, len, 0};
    }
}

static void bw_close(bw_bufs *b) {
    free(b->src);
    free(b->dst);
}

// ----------------------------------------------------------------------------
// prefill and decode

typedef struct prefill_arg {
    lorajit_engine *e;
    const char *const *names; /* [DEC_BATCH] */
    const int32_t *prompt;
    int seq;
} prefill_arg;

/* The next sequence, emptied, with its own adapter. */
static void prefill_prep(void *p) {
    prefill_arg *a = p;
    a->seq = (a->seq + 1) % DEC_BATCH;
    bench_must(lorajit_seq_reset(a->e, a->seq), a->e, "seq_reset");
    bench_must(lorajit_seq_set_adapter(a->e, a->seq, &a->names[a->seq], NULL, 1), a->e, "seq_set_adapter");
}
static void prefill_once(void *p) {
    prefill_arg *a = p;
    bench_must(lorajit_seq_prefill(a->e, a->seq, a->prompt, DEC_PROMPT, NULL), a->e, "seq_prefill");
}

typedef struct step_arg {
    lorajit_engine *e;
    const char *const *names; /* [DEC_BATCH] */
    int batch, mode, vocab, step;
    int seqs[DEC_BATCH];
    int32_t tokens[DEC_BATCH];
    float *logits;            /* [DEC_BATCH, vocab] */
} step_arg;

/* Before each timed job: idle long enough for every spinning thread to sleep (the
 * engine's pool polls 3 ms; OpenBLAS's threads up to 2^28 cycles, ~0.1 s), so each
 * job starts on quiet cores whatever ran before it. Not timed. */
static void settle(void *p) {
    (void)p;
    nanosleep(&(struct timespec){0, 120 * 1000 * 1000}, NULL);
}

/* Rows 0..batch-1 = sequences 0..batch-1, their adapters as the mode says, and
 * the next token of each. */
static void step_prep(void *p) {
    step_arg *a = p;
    for (int i = 0; i < a->batch; i++) {
        const char *const *name = a->mode == 2 ? &a->names[i] : &a->names[0];
        bench_must(lorajit_seq_set_adapter(a->e, i, name, NULL, a->mode ? 1 : 0), a->e, "seq_set_adapter");
        a->seqs[i] = i;
        a->tokens[i] = (int32_t)(((unsigned)a->step * 7919u + (unsigned)i * 104729u + 13u) % (unsigned)a->vocab);
    }
    a->step++;
    settle(NULL);
}
static void step_once(void *p) {
    step_arg *a = p;
    bench_must(lorajit_decode(a->e, a->seqs, a->tokens, a->batch, a->logits), a->e, "decode");
}

// ----------------------------------------------------------------------------
// the run

void bench_decode_model(bench_result *r, const char *exe_dir, const char *work, int n_layers, const char *dtype) {
    bench_decode_result *d = &r->dec;
    bool quick = r->quick;
    *d = (bench_decode_result){.dim = quick ? 256 : 2048, .hidden_dim = quick ? 688 : 5632,
                               .n_layers = n_layers > 0 ? n_layers : quick ? 2 : 22, .full_layers = 22,
                               .n_heads = quick ? 4 : 32, .n_kv_heads = quick ? 2 : 4, .vocab = quick ? 2048 : 32000,
                               .rank = 16, .n_adapters = DEC_BATCH, .prompt = DEC_PROMPT};
    if (quick) d->full_layers = d->n_layers;
    d->dtype = !strcmp(dtype, "f32") ? "F32" : !strcmp(dtype, "f16") ? "F16" : "BF16";
    d->elem_bytes = strcmp(d->dtype, "F32") ? 2 : 4;
    d->threads = r->threads < 1 ? 1 : r->threads > DEC_MAX_THREADS ? DEC_MAX_THREADS : r->threads;
    d->bw_bytes = (size_t)(quick ? 256 : 1024) << 20;

    /* inputs */
    char model_dir[PATH_MAX], ad_dir[DEC_BATCH][PATH_MAX], args[PATH_MAX + 256], tag[64];
    snprintf(tag, sizeof tag, "decode_d%d_l%d_%s", d->dim, d->n_layers, dtype);
    bench_progress("decode: generating a dim %d, %d-layer model and %d adapters (reused when present)", d->dim,
                   d->n_layers, DEC_BATCH);
    double t0 = bench_now_ms();
    bool made = false;
    bench_fmt(model_dir, sizeof model_dir, "%s/models/%s", work, tag);
    bench_fmt(d->model_dir, sizeof d->model_dir, "%s", model_dir);
    bench_fmt(d->adapter_root, sizeof d->adapter_root, "%s/adapters/%s", work, tag);
    snprintf(args, sizeof args, "--dim %d --hidden %d --layers %d --heads %d --kv-heads %d --vocab %d "
             "--max-pos %d --std 0.02 --seed 7 --dtype %s", d->dim, d->hidden_dim, d->n_layers, d->n_heads,
             d->n_kv_heads, d->vocab, DEC_SEQ_LEN, dtype);
    made |= bench_generate(exe_dir, "model", model_dir, NULL, args);
    if (r->only_p16) {
        bench_prefill16(r, model_dir);
        return;
    }
    for (int i = 0; i < DEC_BATCH; i++) {
        bench_fmt(ad_dir[i], PATH_MAX, "%s/r16_%d", d->adapter_root, i);
        snprintf(args, sizeof args, "--r %d --alpha %d --targets %s --seed %d", d->rank, 2 * d->rank,
                 all_seven, 300 + i);
        made |= bench_generate(exe_dir, "adapter", ad_dir[i], model_dir, args);
    }
    d->gen_s = made ? (bench_now_ms() - t0) / 1e3 : 0;
    bench_fmt(d->model_dir, sizeof d->model_dir, "%s", model_dir);
    for (int i = 0; i < DEC_BATCH; i++) bench_fmt(d->ad_dir[i], sizeof d->ad_dir[i], "%s", ad_dir[i]);
    /* the byte counts the bound uses, checked against the files */
    char path[PATH_MAX + 64];
    bench_fmt(path, sizeof path, "%s/model.safetensors", model_dir);
    d->model_bytes = bench_st_data_bytes(path);
    double file_bytes = d->elem_bytes * (matrix_values(d, true) + norm_values(d));
    if (d->model_bytes != file_bytes)
        bench_die("%s holds %.0f bytes of tensors, the decode bound counts %.0f", path, d->model_bytes, file_bytes);
    d->adapter_bytes = 4 * adapter_floats(d);
    bench_fmt(path, sizeof path, "%s/adapter_model.safetensors", ad_dir[0]);
    if (bench_st_data_bytes(path) != d->adapter_bytes)
        bench_die("%s holds %.0f bytes of tensors, the decode bound counts %.0f", path, bench_st_data_bytes(path),
                  d->adapter_bytes);
    for (int c = 0; c < BENCH_DECODE_CONFIGS; c++) {
        bench_decode_row *row = &d->rows[c];
        row->name = cfgs[c].name, row->what = cfgs[c].what, row->batch = cfgs[c].batch;
        row->n_adapters = cfgs[c].mode == 0 ? 0 : cfgs[c].mode == 1 ? 1 : cfgs[c].batch;
        /* matrices as stored (16-bit stays 16-bit), norms widened to f32 at load */
        row->bytes = d->elem_bytes * matrix_values(d, false) + 4 * norm_values(d) +
                     (double)d->elem_bytes * row->batch * d->dim + row->n_adapters * d->adapter_bytes;
    }

}

void bench_decode(bench_result *r, const char *exe_dir, const char *work, int n_layers, const char *dtype) {
    bench_decode_result *d = &r->dec;
    bench_decode_model(r, exe_dir, work, n_layers, dtype);
    int steps = r->quick ? 5 : 32;
    const char *model_dir = d->model_dir;
    char ad_dir[DEC_BATCH][PATH_MAX];
    for (int i = 0; i < DEC_BATCH; i++) bench_fmt(ad_dir[i], PATH_MAX, "%s/r16_%d", d->adapter_root, i);

    /* the engine: eight sequences, eight rank-16 slots on the seven projections */
    bench_progress("decode: compiling, loading %d adapters, prefill of %d tokens", DEC_BATCH, DEC_PROMPT);
    lorajit_options opts = {.max_rank = d->rank, .targets = "all-linear", .max_adapters = DEC_BATCH,
                            .max_tokens = DEC_PROMPT, .max_batch = DEC_BATCH, .max_seq_len = DEC_SEQ_LEN};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model_dir, &opts), e, model_dir);
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    d->open_ms = st.compile_ms;
    char names_buf[DEC_BATCH][8];
    const char *names[DEC_BATCH];
    for (int i = 0; i < DEC_BATCH; i++) {
        snprintf(names_buf[i], sizeof names_buf[i], "a%d", i);
        names[i] = names_buf[i];
        bench_must(lorajit_load_adapter(e, names[i], ad_dir[i]), e, ad_dir[i]);
    }
    int32_t prompt[DEC_PROMPT];
    for (int i = 0; i < DEC_PROMPT; i++) prompt[i] = (int32_t)((i * 7919u + 13) % (unsigned)d->vocab);
    /* warm-up on sequence 0, then one timed prefill per sequence 1..7, 0: all eight hold the prompt */
    prefill_arg pa = {e, names, prompt, -1};
    bench_job pj = {prefill_prep, prefill_once, NULL, &pa, &d->prefill};
    bench_measure_jobs(&pj, 1, DEC_BATCH);

    /* decode: one warm-up round, then `steps` rounds of the five configurations, the
     * GEMMs alone at M = 1 and M = 8, and the read and copy bandwidth */
    bench_progress("decode: %d steps of batch 1 and %d, five configurations, the GEMMs and the bandwidth "
                   "(%zu MiB) round-robin", steps, DEC_BATCH, d->bw_bytes >> 20);
    step_arg sa[BENCH_DECODE_CONFIGS];
    bench_job jobs[BENCH_DECODE_CONFIGS + 5];
    bw_bufs bw;
    bw_open(&bw, d);
    jobs[BENCH_DECODE_CONFIGS + 2] = (bench_job){settle, bw_once, NULL, &bw.rd, &d->read};
    jobs[BENCH_DECODE_CONFIGS + 3] = (bench_job){settle, bw_once, NULL, &bw.cp, &d->copy};
    bench_fma_init(&d->fma, d->threads);
    jobs[BENCH_DECODE_CONFIGS + 4] = (bench_job){settle, bench_fma_once, NULL, &d->fma, &d->fma_ms};
    bench_gemm g1 = {0}, g8;
    bench_gemm_open(&g1, model_dir, d->n_layers);
    g1.threads = d->threads;
    g8 = g1, g1.n = 1, g8.n = DEC_BATCH;
    jobs[BENCH_DECODE_CONFIGS] = (bench_job){settle, bench_gemm_once, NULL, &g1, &d->gemm[0]};
    jobs[BENCH_DECODE_CONFIGS + 1] = (bench_job){settle, bench_gemm_once, NULL, &g8, &d->gemm[1]};
    float *logits = malloc(sizeof(float) * DEC_BATCH * (size_t)d->vocab);
    if (!logits) bench_die("out of memory");
    for (int c = 0; c < BENCH_DECODE_CONFIGS; c++) {
        sa[c] = (step_arg){.e = e, .names = names, .batch = cfgs[c].batch, .mode = cfgs[c].mode,
                           .vocab = d->vocab, .logits = logits};
        jobs[c] = (bench_job){step_prep, step_once, NULL, &sa[c], &d->rows[c].step};
    }
    d->pos_start = lorajit_seq_pos(e, 0);
    bench_measure_jobs(jobs, BENCH_DECODE_CONFIGS + 5, steps);
    bench_gemm_close(&g1); /* g8 shares its mapping and buffers */
    bw_close(&bw);
    d->pos_end = lorajit_seq_pos(e, 0);
    d->finite = true;
    for (size_t i = 0; i < DEC_BATCH * (size_t)d->vocab; i++) d->finite &= isfinite(logits[i]) != 0;
    free(logits);
    lorajit_engine_free(e);
    bench_prefill16(r, model_dir);
}

// ----------------------------------------------------------------------------
// report

static double gb_per_s(double bytes, bench_stat s) { return bytes / (s.median * 1e6); }

/* Milliseconds the row's bytes take at the read (or copy) bandwidth. */
static double bound_ms(const bench_decode_result *d, const bench_decode_row *row, bool copy) {
    return row->bytes / (gb_per_s((double)d->bw_bytes, copy ? d->copy : d->read) * 1e6);
}

/* The fastest step over the bound at the fastest read: less sensitive to other
 * processes than the medians. */
static double over_bound_min(const bench_decode_result *d, const bench_decode_row *row) {
    return row->step.min / (row->bytes * d->read.min / (double)d->bw_bytes);
}

/* Milliseconds the row's multiply-adds take at the FMA peak: every row through every
 * matrix (lm_head included), and through its adapter's A and B where it has one;
 * attention's (~1 % here) not counted. */
static double fma_bound_ms(const bench_decode_result *d, const bench_decode_row *row) {
    double macs = row->batch * (matrix_values(d, false) + (row->n_adapters ? adapter_floats(d) : 0));
    return macs * d->fma_ms.median / d->fma.macs;
}

static const bench_stat *gemm_of(const bench_decode_result *d, const bench_decode_row *row) {
    return &d->gemm[row->batch == 1 ? 0 : 1];
}

static const bench_decode_row *dec_row(const bench_decode_result *d, const char *name) {
    for (int c = 0; c < BENCH_DECODE_CONFIGS; c++)
        if (!strcmp(d->rows[c].name, name)) return &d->rows[c];
    return NULL;
}

static double step_ratio(const bench_decode_result *d, const char *a, const char *b) {
    return dec_row(d, a)->step.median / dec_row(d, b)->step.median;
}

void bench_decode_print(const bench_result *r, FILE *f) {
    const bench_decode_result *d = &r->dec;
    fprintf(f, "\n4. Decode, %s: dim %d, hidden %d, %d layers%s, %d heads, %d KV heads, vocab %d, %s "
               "(%.0f MiB); compile %.0f ms\n", r->quick ? "small model (--quick)" : "TinyLlama's shape", d->dim,
            d->hidden_dim, d->n_layers, d->n_layers < d->full_layers ? " (of TinyLlama's 22)" : "", d->n_heads,
            d->n_kv_heads, d->vocab, d->dtype, d->model_bytes / 1048576.0, d->open_ms);
    fprintf(f, "  bandwidth, %d thread%s over %zu MiB: read %.1f GB/s (sum of floats), memcpy %.1f GB/s "
               "(bytes copied / time)\n", d->threads, d->threads > 1 ? "s" : "", d->bw_bytes >> 20,
            gb_per_s((double)d->bw_bytes, d->read), gb_per_s((double)d->bw_bytes, d->copy));
    fprintf(f, "  bound = bytes a step reads (all tensors but embed_tokens, the rows' embeddings, A+B of each "
               "distinct adapter: %.1f MiB each) / read bandwidth\n", d->adapter_bytes / 1048576.0);
    fprintf(f, "  FMA bound = multiply-adds a step does (each row through every matrix and its adapter) / the FMA "
               "peak of %d thread%s (16 chains of %d-lane FMAs each): %.1f GMAC/s\n", d->fma.threads,
            d->fma.threads > 1 ? "s" : "", d->fma.lanes, d->fma.macs / (d->fma_ms.median * 1e6));
    fprintf(f, "  prefill of %d tokens, one sequence, one r16 adapter: %.1f ms (%.1f tokens/s)\n", d->prompt,
            d->prefill.median, d->prompt / (d->prefill.median / 1e3));
    fprintf(f, "  %-38s %5s %9s %8s %9s %9s %9s %7s %7s %7s %7s %6s\n", "configuration", "batch", "ms/step",
            "steps/s", "tokens/s", "MiB read", "bound ms", "xbound", "(min)", "xGEMM", "FMA ms", "xFMA");
    for (int i = 0; i < 2; i++)
        fprintf(f, "  %-38s %5d %9.2f\n", i ? (d->elem_bytes == 4 ? "GEMMs alone, OpenBLAS sgemm" :
                                                 "GEMMs alone, OpenBLAS sgemm (f32 copy)") :
                                               (d->elem_bytes == 4 ? "GEMMs alone, OpenBLAS sgemv" :
                                                 "GEMMs alone, OpenBLAS sgemv (f32 copy)"),
                i ? DEC_BATCH : 1, d->gemm[i].median);
    for (int c = 0; c < BENCH_DECODE_CONFIGS; c++) {
        const bench_decode_row *row = &d->rows[c];
        double b = bound_ms(d, row, false);
        double fb = fma_bound_ms(d, row);
        fprintf(f, "  %-38s %5d %9.2f %8.2f %9.2f %9.0f %9.2f %7.2f %7.2f %7.2f %7.2f %6.2f\n", row->what,
                row->batch, row->step.median, 1e3 / row->step.median, row->batch * 1e3 / row->step.median,
                row->bytes / 1048576.0, b, row->step.median / b, over_bound_min(d, row),
                row->step.median / gemm_of(d, row)->median, fb, row->step.median / fb);
    }
    fprintf(f, "  batch 8 step time: mixed / shared %.3f, shared / no adapter %.3f; batch 8 / batch 1 (no adapter) "
               "%.2f\n", step_ratio(d, "b8_mixed", "b8_shared"), step_ratio(d, "b8_shared", "b8_base"),
            step_ratio(d, "b8_base", "b1_base"));
    fprintf(f, "  (min) = fastest step / bound at the fastest read. %d timed steps per configuration after one "
               "warm-up, round-robin; sequence 0 at KV positions %d..%d%s\n", d->rows[0].step.reps, d->pos_start,
            d->pos_end, d->finite ? "" : "; logits NOT finite");
    bench_prefill16_print(r, f);
}

cJSON *bench_decode_json(const bench_result *r) {
    const bench_decode_result *d = &r->dec;
    cJSON *o = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddNumberToObject(m, "dim", d->dim);
    cJSON_AddNumberToObject(m, "hidden_dim", d->hidden_dim);
    cJSON_AddNumberToObject(m, "n_layers", d->n_layers);
    cJSON_AddNumberToObject(m, "tinyllama_layers", 22);
    cJSON_AddNumberToObject(m, "n_heads", d->n_heads);
    cJSON_AddNumberToObject(m, "n_kv_heads", d->n_kv_heads);
    cJSON_AddNumberToObject(m, "vocab_size", d->vocab);
    cJSON_AddStringToObject(m, "dtype", d->dtype);
    cJSON_AddNumberToObject(m, "tensor_bytes", d->model_bytes);
    cJSON_AddNumberToObject(m, "adapters", d->n_adapters);
    cJSON_AddNumberToObject(m, "adapter_rank", d->rank);
    cJSON_AddStringToObject(m, "adapter_targets", all_seven);
    cJSON_AddNumberToObject(m, "adapter_bytes", d->adapter_bytes);
    cJSON_AddNumberToObject(o, "generate_s", d->gen_s);
    cJSON_AddNumberToObject(o, "compile_ms", d->open_ms);
    cJSON_AddNumberToObject(o, "openblas_threads", r->threads);
    cJSON *bw = cJSON_AddObjectToObject(o, "bandwidth");
    cJSON_AddStringToObject(bw, "read", "sum of the floats of a buffer, split among the threads (reads only)");
    cJSON_AddStringToObject(bw, "copy", "memcpy of a buffer into another, split among the threads; "
                                        "GB/s = bytes copied / time");
    cJSON_AddNumberToObject(bw, "buffer_bytes", (double)d->bw_bytes);
    cJSON_AddNumberToObject(bw, "threads", d->threads);
    cJSON_AddItemToObject(bw, "read_ms", bench_stat_json(d->read));
    cJSON_AddNumberToObject(bw, "read_gb_per_s", gb_per_s((double)d->bw_bytes, d->read));
    cJSON_AddItemToObject(bw, "copy_ms", bench_stat_json(d->copy));
    cJSON_AddNumberToObject(bw, "copy_gb_per_s", gb_per_s((double)d->bw_bytes, d->copy));
    cJSON *fm = cJSON_AddObjectToObject(o, "fma_peak");
    cJSON_AddStringToObject(fm, "what", "16 independent chains of vector FMAs per thread, as wide as the compiled "
                                        "kernels' (lanes), on the bandwidth loops' threads; timed with the steps");
    cJSON_AddNumberToObject(fm, "threads", d->fma.threads);
    cJSON_AddNumberToObject(fm, "lanes", d->fma.lanes);
    cJSON_AddNumberToObject(fm, "macs", d->fma.macs);
    cJSON_AddItemToObject(fm, "ms", bench_stat_json(d->fma_ms));
    cJSON_AddNumberToObject(fm, "gmac_per_s", d->fma.macs / (d->fma_ms.median * 1e6));
    cJSON *pf = cJSON_AddObjectToObject(o, "prefill");
    cJSON_AddNumberToObject(pf, "tokens", d->prompt);
    cJSON_AddStringToObject(pf, "what", "lorajit_seq_prefill of one sequence with one r16 adapter");
    cJSON_AddItemToObject(pf, "ms", bench_stat_json(d->prefill));
    cJSON_AddNumberToObject(pf, "tokens_per_s", d->prompt / (d->prefill.median / 1e3));
    cJSON_AddStringToObject(o, "bound", "bytes one step reads (every tensor but embed_tokens, matrices in their "
                                        "stored dtype and norms as f32, one embedding row per row, A and B of each "
                                        "distinct adapter) / read_gb_per_s; KV cache reads not counted");
    cJSON *gm = cJSON_AddObjectToObject(o, "gemm_ms");
    cJSON_AddStringToObject(gm, "what", "the projection GEMMs alone through OpenBLAS (every layer's seven, "
                                        "lm_head): sgemv at M = 1, sgemm on W [N, K] with Trans at M = 8; "
                                        "on f32 copies of a 16-bit model (OpenBLAS reads only f32)");
    cJSON_AddItemToObject(gm, "1", bench_stat_json(d->gemm[0]));
    cJSON_AddItemToObject(gm, "8", bench_stat_json(d->gemm[1]));
    cJSON_AddNumberToObject(o, "kv_pos_start", d->pos_start);
    cJSON_AddNumberToObject(o, "kv_pos_end", d->pos_end);
    cJSON_AddBoolToObject(o, "logits_finite", d->finite);
    cJSON *cf = cJSON_AddObjectToObject(o, "configs");
    for (int c = 0; c < BENCH_DECODE_CONFIGS; c++) {
        const bench_decode_row *row = &d->rows[c];
        cJSON *x = cJSON_AddObjectToObject(cf, row->name);
        cJSON_AddStringToObject(x, "what", row->what);
        cJSON_AddNumberToObject(x, "batch", row->batch);
        cJSON_AddNumberToObject(x, "distinct_adapters", row->n_adapters);
        cJSON_AddNumberToObject(x, "bytes_per_step", row->bytes);
        cJSON_AddItemToObject(x, "step_ms", bench_stat_json(row->step));
        cJSON_AddNumberToObject(x, "steps_per_s", 1e3 / row->step.median);
        cJSON_AddNumberToObject(x, "tokens_per_s", row->batch * 1e3 / row->step.median);
        cJSON_AddNumberToObject(x, "bound_ms", bound_ms(d, row, false));
        cJSON_AddNumberToObject(x, "over_bound", row->step.median / bound_ms(d, row, false));
        cJSON_AddNumberToObject(x, "over_bound_min", over_bound_min(d, row));
        cJSON_AddNumberToObject(x, "over_copy_bound", row->step.median / bound_ms(d, row, true));
        cJSON_AddNumberToObject(x, "over_gemm", row->step.median / gemm_of(d, row)->median);
        cJSON_AddNumberToObject(x, "fma_bound_ms", fma_bound_ms(d, row));
        cJSON_AddNumberToObject(x, "over_fma_bound", row->step.median / fma_bound_ms(d, row));
    }
    cJSON *q = cJSON_AddObjectToObject(o, "ratios");
    cJSON_AddNumberToObject(q, "b8_mixed_over_shared", step_ratio(d, "b8_mixed", "b8_shared"));
    cJSON_AddNumberToObject(q, "b8_shared_over_base", step_ratio(d, "b8_shared", "b8_base"));
    cJSON_AddNumberToObject(q, "b1_one_adapter_over_base", step_ratio(d, "b1_one_adapter", "b1_base"));
    cJSON_AddNumberToObject(q, "b8_over_b1_base", step_ratio(d, "b8_base", "b1_base"));
    cJSON_AddItemToObject(o, "prefill16", bench_prefill16_json(r));
    return o;
}

bench_stat bench_read_stat(int threads, size_t bytes, int reps) {
    bench_decode_result d = {.threads = threads < 1 ? 1 : threads > DEC_MAX_THREADS ? DEC_MAX_THREADS : threads,
                             .bw_bytes = bytes};
    bench_stat s = {0};
    bw_bufs bw;
    bw_open(&bw, &d);
    bench_job j = {settle, bw_once, NULL, &bw.rd, &s};
    bench_measure_jobs(&j, 1, reps);
    bw_close(&bw);
    return s;
}
