/* bench_shapes.c — section 5 of `lorajit bench`: prefill and decode on two real
 * checkpoints' shapes besides TinyLlama's, against the read bandwidth measured in the
 * same run:
 *   LLaMA-3.2-1B: dim 2048, intermediate 8192, 16 layers, 32 / 8 heads, head_dim 64,
 *                 vocab 128256, tied, BF16, rope_scaling llama3 (factor 32, 8192);
 *   Qwen2.5-0.5B: dim 896, intermediate 4864, 24 layers, 14 / 2 heads, head_dim 64,
 *                 vocab 151936, tied, BF16, model_type qwen2 (q/k/v biases: 896 + 2 x 128
 *                 floats a layer, under 0.01% of the bytes, left out of the byte count).
 * Random weights (lorajit_gen, reused under work). The lm_head share: the same shape
 * cut to one layer gives t1 = head + one layer; one layer is (t - t1) / (L - 1), so
 * the head takes t1 - (t - t1) / (L - 1), compared with its bytes at the bandwidth.
 * Skipped with --quick (CI): the two models are 2.5 and 1 GB. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum { SH_PROMPT = 64, SH_STEPS = 16 };

static const struct {
    const char *name, *note, *tag, *rope, *arch;
    int dim, hidden, layers, heads, kv, head_dim, vocab;
    double theta;
} shapes[BENCH_SHAPES] = {
    {"LLaMA-3.2-1B", "llama, rope_scaling llama3", "llama32_1b",
     "{\"rope_type\":\"llama3\",\"factor\":32.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
     "\"original_max_position_embeddings\":8192}",
     "llama", 2048, 8192, 16, 32, 8, 64, 128256, 500000.0},
    {"Qwen2.5-0.5B", "qwen2 (q/k/v biases)", "qwen25_05b", NULL, "qwen2",
     896, 4864, 24, 14, 2, 64, 151936, 1000000.0},
};

/* Adds rope_scaling to dir/config.json (lorajit_gen writes null). */
static void set_rope(const char *dir, const char *rope) {
    char path[PATH_MAX + 32];
    bench_fmt(path, sizeof path, "%s/config.json", dir);
    char *text = bench_read_file(path, NULL);
    cJSON *j = cJSON_Parse(text), *r = cJSON_Parse(rope);
    if (!j || !r) bench_die("%s: cannot parse", path);
    cJSON_ReplaceItemInObject(j, "rope_scaling", r);
    char *out = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    if (!f || fputs(out, f) < 0 || fclose(f) != 0) bench_die("cannot write %s", path);
    free(out), free(text);
    cJSON_Delete(j);
}

static void gen_model(const char *exe_dir, const char *dir, int s, int layers) {
    char args[512];
    snprintf(args, sizeof args, "--arch %s --dim %d --hidden %d --layers %d --heads %d --kv-heads %d --head-dim %d "
             "--vocab %d --tied --max-pos 131072 --rope-theta %g --rms-eps 1e-6 --std 0.02 --seed 5 --dtype bf16",
             shapes[s].arch, shapes[s].dim, shapes[s].hidden, layers, shapes[s].heads, shapes[s].kv, shapes[s].head_dim,
             shapes[s].vocab, shapes[s].theta);
    bench_generate(exe_dir, "model", dir, NULL, args);
    if (shapes[s].rope) set_rope(dir, shapes[s].rope);
}

typedef struct sh_arg {
    lorajit_engine *e;
    int32_t prompt[SH_PROMPT];
    int32_t token;
    float *logits;
} sh_arg;

static void reset(void *p) {
    sh_arg *a = p;
    bench_must(lorajit_seq_reset(a->e, 0), a->e, "seq_reset");
}
static void prefill(void *p) {
    sh_arg *a = p;
    bench_must(lorajit_seq_prefill(a->e, 0, a->prompt, SH_PROMPT, NULL), a->e, "seq_prefill");
}
static void step_prep(void *p) {
    sh_arg *a = p;
    if (lorajit_seq_pos(a->e, 0) >= 480) reset(p), prefill(p);
}
static void step(void *p) {
    sh_arg *a = p;
    int seq = 0;
    bench_must(lorajit_decode(a->e, &seq, &a->token, 1, a->logits), a->e, "decode");
}

static lorajit_engine *open_engine(const char *dir, double *open_ms) {
    lorajit_options o = {.max_rank = 16, .targets = "q_proj,v_proj", .max_adapters = 1, .max_tokens = SH_PROMPT,
                         .max_batch = 1, .max_seq_len = 512};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, dir, &o), e, dir);
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    if (open_ms) *open_ms = st.compile_ms;
    return e;
}

void bench_shapes(bench_result *r, const char *exe_dir, const char *work) {
    r->n_shapes = 0;
    if (r->quick) return;
    for (int s = 0; s < BENCH_SHAPES; s++) {
        bench_shape_result *d = &r->shapes[s];
        *d = (bench_shape_result){.name = shapes[s].name, .note = shapes[s].note, .dim = shapes[s].dim,
                                  .hidden_dim = shapes[s].hidden, .n_layers = shapes[s].layers,
                                  .n_heads = shapes[s].heads, .n_kv_heads = shapes[s].kv,
                                  .head_dim = shapes[s].head_dim, .vocab = shapes[s].vocab, .prompt = SH_PROMPT};
        bench_progress("shapes: %s (generating under %s when missing)", d->name, work);
        char dir[PATH_MAX], dir1[PATH_MAX];
        bench_fmt(dir, sizeof dir, "%s/models/%s", work, shapes[s].tag);
        bench_fmt(dir1, sizeof dir1, "%s/models/%s_l1", work, shapes[s].tag);
        gen_model(exe_dir, dir, s, d->n_layers);
        gen_model(exe_dir, dir1, s, 1);
        double q = (double)d->n_heads * d->head_dim, kv = (double)d->n_kv_heads * d->head_dim;
        double layer = 2 * (q * d->dim * 2 + kv * d->dim * 2 + 3.0 * d->hidden_dim * d->dim) + 4.0 * 2 * d->dim;
        d->head_bytes = 2.0 * d->vocab * d->dim;
        d->step_bytes = d->n_layers * layer + d->head_bytes + 4.0 * d->dim;
        sh_arg a = {.token = 17};
        for (int i = 0; i < SH_PROMPT; i++) a.prompt[i] = (int32_t)((i * 7919u + 13) % (unsigned)d->vocab);
        if (!(a.logits = malloc(sizeof(float) * (size_t)d->vocab))) bench_die("out of memory");
        a.e = open_engine(dir, &d->open_ms);
        bench_job pj = {reset, prefill, NULL, &a, &d->prefill};
        bench_measure_jobs(&pj, 1, 3);
        bench_job sj = {step_prep, step, NULL, &a, &d->step};
        bench_measure_jobs(&sj, 1, SH_STEPS);
        lorajit_engine_free(a.e);
        a.e = open_engine(dir1, NULL);
        reset(&a), prefill(&a);
        bench_job s1 = {step_prep, step, NULL, &a, &d->step1};
        bench_measure_jobs(&s1, 1, SH_STEPS);
        lorajit_engine_free(a.e);
        free(a.logits);
        d->read = bench_read_stat(r->threads, (size_t)1 << 30, 5);
        r->n_shapes = s + 1;
    }
}

static double gbs(double bytes, double ms) { return bytes / (ms * 1e6); }

void bench_shapes_print(const bench_result *r, FILE *f) {
    if (!r->n_shapes) {
        fprintf(f, "\nReal shapes: skipped (--quick)\n");
        return;
    }
    fprintf(f, "\nReal shapes (random BF16 weights, tied lm_head, batch 1, r16 slots on q,v, no adapter active)\n");
    for (int s = 0; s < r->n_shapes; s++) {
        const bench_shape_result *d = &r->shapes[s];
        double bw = gbs((double)((size_t)1 << 30), d->read.median);
        double layer_ms = (d->step.median - d->step1.median) / (d->n_layers - 1);
        double head_ms = d->step1.median - layer_ms;
        double layers_bytes = d->step_bytes - d->head_bytes;
        fprintf(f, "  %s (%s): dim %d, intermediate %d, %d layers, %d/%d heads, head_dim %d, vocab %d; "
                "compile %.0f ms\n", d->name, d->note, d->dim, d->hidden_dim, d->n_layers, d->n_heads, d->n_kv_heads,
                d->head_dim, d->vocab, d->open_ms);
        fprintf(f, "    prefill %d tokens %.1f ms (%.0f tok/s); decode step %.2f ms (%.1f tok/s), reads %.0f MiB: "
                "%.1f GB/s = %.2fx the bound (read %.1f GB/s)\n", d->prompt, d->prefill.median,
                d->prompt / (d->prefill.median / 1e3), d->step.median, 1e3 / d->step.median, d->step_bytes / 1048576.0,
                gbs(d->step_bytes, d->step.median), d->step.median / (d->step_bytes / (bw * 1e6)), bw);
        fprintf(f, "    lm_head (%.0f MiB, %.0f%% of a step's bytes): ~%.2f ms = %.1f GB/s; the layers: %.2f ms a "
                "layer = %.1f GB/s (one-layer model's step %.2f ms)\n", d->head_bytes / 1048576.0,
                100 * d->head_bytes / d->step_bytes, head_ms, gbs(d->head_bytes, head_ms), layer_ms,
                gbs(layers_bytes / d->n_layers, layer_ms), d->step1.median);
    }
}

cJSON *bench_shapes_json(const bench_result *r) {
    cJSON *a = cJSON_CreateArray();
    for (int s = 0; a && s < r->n_shapes; s++) {
        const bench_shape_result *d = &r->shapes[s];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "note", d->note);
        cJSON_AddNumberToObject(o, "dim", d->dim);
        cJSON_AddNumberToObject(o, "n_layers", d->n_layers);
        cJSON_AddNumberToObject(o, "vocab", d->vocab);
        cJSON_AddNumberToObject(o, "step_bytes", d->step_bytes);
        cJSON_AddNumberToObject(o, "head_bytes", d->head_bytes);
        cJSON_AddNumberToObject(o, "prompt", d->prompt);
        cJSON_AddItemToObject(o, "prefill_ms", bench_stat_json(d->prefill));
        cJSON_AddItemToObject(o, "step_ms", bench_stat_json(d->step));
        cJSON_AddItemToObject(o, "step_one_layer_ms", bench_stat_json(d->step1));
        cJSON_AddItemToObject(o, "read_1gib_ms", bench_stat_json(d->read));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}
