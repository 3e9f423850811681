/* bench.c — lorajit_bench (`lorajit bench`): compile-once-swap-many measured against
 * the machine's limits and against PyTorch, in one run.
 *
 * Inputs: options (usage()); models and PEFT adapters made by lorajit_gen (found next
 * to this binary) in a work dir reused across runs. Measures compile stages for 2, 8
 * and 32 layers at two widths; adapter load/hotswap against a memcpy of the same
 * bytes; forward for 1/16/128-token prompts in six configurations against the same
 * GEMMs through OpenBLAS; decode on a TinyLlama-shaped model against the memory
 * bandwidth (bench_decode.c); real shapes (bench_shapes.c); the tokenizer against HF
 * tokenizers (bench_tok.c); many adapters through few slots (bench_cache.c); decode
 * at 1 and 2 threads next to a busy process (bench_threads.c); then runs the PyTorch
 * peer (peer.c). Outputs: a table on
 * stdout, OUT/bench.json, OUT/bench_*.png (report.c). Exit 1 on any failure. */
#define _GNU_SOURCE
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <llvm-c/Core.h> /* LLVMGetVersion, for the report */

#include "bench.h"
#include "bench_hook.h" /* the one internal hook: slot writes from memory */

#ifndef LORAJIT_SOURCE_DIR
#define LORAJIT_SOURCE_DIR "."
#endif

static const bench_width full_widths[BENCH_WIDTHS] = {{512, 1376, 8}, {1024, 2816, 16}};
static const int layer_sets[BENCH_LAYER_SETS] = {2, 8, 32};
static const int ranks[BENCH_RANKS] = {4, 16, 64};
static const char *const target_sets[BENCH_TARGET_SETS] = {"attn", "all"};
static const char *const target_lists[BENCH_TARGET_SETS] = {
    "q_proj,k_proj,v_proj,o_proj", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"};
static const int token_sets[BENCH_TOKEN_SETS] = {1, 16, 128};

typedef struct bench_opts {
    bool quick, no_peer, no_plots, only_shapes, only_tok, only_threads, only_p16, only_serve, only_sched, only_decode,
        only_swaps;
    int threads, serve_rounds; /* 0: as OpenBLAS found it; section 12's timed rounds (0: its default) */
    int decode_layers;     /* 0: bench_decode's default (TinyLlama's 22; 2 with --quick) */
    const char *decode_dtype; /* "bf16" (default, as TinyLlama ships), "f16" or "f32" */
    char out[PATH_MAX], work[PATH_MAX], exe_dir[PATH_MAX];
    const char *python, *peer;
    const char *node, *node_path; /* HF tokenizers: node (NULL: on PATH), its NODE_PATH (NULL: inherited) */
} bench_opts;

/* Writes j (taken: freed here) as text to path; dies when it cannot. */
static void write_json(cJSON *j, const char *path) {
    char *out = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    if (!f || !out || fputs(out, f) < 0 || fclose(f)) bench_die("cannot write %s", path);
    free(out);
    cJSON_Delete(j);
}

/* Writes dir/config.json: the model's config with other sizes (the compiler reads
 * only config.json, so compile timing needs no weights). */
static void write_config(const char *model_dir, const char *dir, const bench_width *w, int n_layers) {
    char path[PATH_MAX + 32];
    bench_fmt(path, sizeof path, "%s/config.json", model_dir);
    char *text = bench_read_file(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) bench_die("%s: not JSON", path);
    cJSON_ReplaceItemInObject(j, "hidden_size", cJSON_CreateNumber(w->dim));
    cJSON_ReplaceItemInObject(j, "intermediate_size", cJSON_CreateNumber(w->hidden_dim));
    cJSON_ReplaceItemInObject(j, "num_attention_heads", cJSON_CreateNumber(w->n_heads));
    cJSON_ReplaceItemInObject(j, "num_key_value_heads", cJSON_CreateNumber(w->n_heads));
    cJSON_ReplaceItemInObject(j, "head_dim", cJSON_CreateNumber(w->dim / w->n_heads));
    cJSON_ReplaceItemInObject(j, "num_hidden_layers", cJSON_CreateNumber(n_layers));
    bench_mkdirs(dir);
    bench_fmt(path, sizeof path, "%s/config.json", dir);
    write_json(j, path);
}

// ----------------------------------------------------------------------------
// 1. compile time by stage (lorajit_compile_only: the engine's own pipeline, its
//    stage times from lorajit_stats)

typedef struct compile_arg {
    const char *model_dir;
    lorajit_options opts;
    double ms[4]; /* ir, llvm_ir, opt, jit of the last run */
} compile_arg;

static void compile_once(void *p) {
    compile_arg *a = p;
    lorajit_stats st;
    char msg[1024];
    if (lorajit_compile_only(a->model_dir, &a->opts, &st, msg, sizeof msg)) bench_die("compile: %s", msg);
    a->ms[0] = st.frontend_ms + st.plan_ms, a->ms[1] = st.codegen_ms, a->ms[2] = st.optimize_ms, a->ms[3] = st.jit_ms;
}

/* Compile timing needs only config.json: each (width, layers) gets one, derived
 * from the generated model's. Slots on all seven projections, r_max 64, 8 slots. */
static void bench_compile(bench_result *r, const bench_opts *o, const char *mid_dir) {
    int reps = o->quick ? 1 : 3;
    for (int i = 0; i < BENCH_COMPILES; i++) {
        bench_compile_row *row = &r->compile[i];
        char dir[PATH_MAX + 64];
        row->w = full_widths[i / BENCH_LAYER_SETS];
        row->n_layers = layer_sets[i % BENCH_LAYER_SETS];
        bench_fmt(dir, sizeof dir, "%s/compile/d%d_l%d", o->work, row->w.dim, row->n_layers);
        write_config(mid_dir, dir, &row->w, row->n_layers);
        bench_progress("compile: dim %d, %d layers", row->w.dim, row->n_layers);
        compile_arg a = {dir, {.max_rank = 64, .max_adapters = 8}, {0}};
        if (i == 0) compile_once(&a); /* warm-up: LLVM's one-time initialisation */
        double *v = calloc(5 * (size_t)reps, sizeof(double)); /* [stage, rep] */
        if (!v) bench_die("out of memory");
        for (int k = 0; k < reps; k++) {
            compile_once(&a);
            for (int s = 0; s < 4; s++) v[s * reps + k] = a.ms[s];
            v[4 * reps + k] = a.ms[0] + a.ms[1] + a.ms[2] + a.ms[3];
        }
        bench_stat *out[5] = {&row->ir, &row->llvm_ir, &row->opt, &row->jit, &row->total};
        for (int s = 0; s < 5; s++) *out[s] = bench_stat_of(v + s * reps, reps);
        free(v);
    }
}

// ----------------------------------------------------------------------------
// 2. forward in six configurations, and the GEMM bound

typedef struct fwd_arg {
    lorajit_engine *e;
    const char *const *active; /* the adapters this configuration applies */
    int n_active;
    const int32_t *tokens;
    int n;
    float *logits;             /* [128, vocab] */
} fwd_arg;

static void fwd_prep(void *p) {
    fwd_arg *a = p;
    bench_must(lorajit_set_adapter(a->e, a->active, NULL, a->n_active), a->e, "set_adapter");
}

static void fwd_once(void *p) {
    fwd_arg *a = p;
    bench_must(lorajit_forward(a->e, a->tokens, a->n, a->logits), a->e, "forward");
}

/* The forward adapters: four rank-16 and one rank-4, all on the seven projections. */
static const char *const fwd_names[5] = {"f16a", "f16b", "f16c", "f16d", "f4"};

/* Forward configurations: engine 0 has no slots, 1 slots of r_max 64, 2 slots of
 * r_max 4; active = fwd_names[first .. first + n_active). peer: the PyTorch
 * configuration it compares with (PEFT has no padding: r4 is r4 whatever r_max). */
static const struct fwd_cfg {
    const char *name, *what, *peer;
    int engine, first, n_active;
} cfgs[BENCH_FWD_CONFIGS] = {
    {"base", "no slots compiled (targets none)", "base", 0, 0, 0},
    {"slots_idle", "slots compiled, no adapter active", "slots_idle", 1, 0, 0},
    {"one_adapter", "one r16 all-linear adapter", "one_adapter", 1, 0, 1},
    {"four_adapters", "four r16 all-linear adapters", "four_adapters", 1, 0, 4},
    {"r4_max64", "r4 adapter in a max-rank-64 slot", "r4_max64", 1, 4, 1},
    {"r4_max4", "r4 adapter in a max-rank-4 slot", "r4_max64", 2, 4, 1},
};

/* The six configurations and the GEMM bound, measured round-robin per prompt length.
 * The 16-token logits of each go to logit_dir/<name>_16.bin for the peer to compare. */
static void bench_forward(bench_result *r, lorajit_engine *engines[3], bench_gemm *gemm,
                          const int *reps, const char *logit_dir) {
    int32_t tokens[128];
    for (int i = 0; i < 128; i++) tokens[i] = (int32_t)((i * 7919u + 13) % (unsigned)r->vocab);
    fwd_arg args[BENCH_FWD_CONFIGS];
    bench_job jobs[BENCH_FWD_CONFIGS + 1];
    for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
        bench_fwd_row *row = &r->fwd[c];
        row->name = cfgs[c].name, row->what = cfgs[c].what, row->peer = cfgs[c].peer, row->agree = -1;
        args[c] = (fwd_arg){engines[cfgs[c].engine], fwd_names + cfgs[c].first, cfgs[c].n_active, tokens,
                            0, malloc(sizeof(float) * 128 * (size_t)r->vocab)};
        if (!args[c].logits) bench_die("out of memory");
    }
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) {
        bench_progress("forward: six configurations and the GEMM bound, %d token%s", token_sets[t],
                       token_sets[t] > 1 ? "s" : "");
        for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
            args[c].n = token_sets[t];
            jobs[c] = (bench_job){fwd_prep, fwd_once, NULL, &args[c], &r->fwd[c].lj[t]};
        }
        gemm->n = token_sets[t];
        jobs[BENCH_FWD_CONFIGS] = (bench_job){NULL, bench_gemm_once, NULL, gemm, &r->gemm[t]};
        bench_measure_jobs(jobs, BENCH_FWD_CONFIGS + 1, reps[t]);
        if (token_sets[t] != 16) continue;
        for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
            char path[PATH_MAX + 64];
            bench_fmt(path, sizeof path, "%s/%s_16.bin", logit_dir, r->fwd[c].name);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(args[c].logits, sizeof(float), 16 * (size_t)r->vocab, f) != 16 * (size_t)r->vocab)
                bench_die("cannot write %s", path);
            fclose(f);
        }
    }
    for (int c = 0; c < BENCH_FWD_CONFIGS; c++) free(args[c].logits);
}

static lorajit_engine *open_engine(const char *model_dir, const lorajit_options *opts, double *ms) {
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model_dir, opts), e, model_dir);
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    *ms = st.compile_ms;
    return e;
}

// ----------------------------------------------------------------------------
// main

/* The usage: on stdout with status 0 when asked for (--help), else on stderr with 2. */
static void usage(int asked) {
    fputs("usage: lorajit bench [--quick] [--out DIR] [--work DIR] [--threads N] [--no-peer]\n"
          "                     [--no-plots] [--python PATH] [--peer PATH] [--decode-layers N]\n"
          "                     [--decode-dtype bf16|f16|f32] [--only-shapes] [--only-tokenizer]\n"
          "                     [--only-threads] [--only-prefill16] [--serve] [--only-sched] [--only-decode]\n"
          "                     [--only-swaps]\n"
          "                     [--serve-rounds N] [--node PATH] [--node-path DIR]\n"
          "  --quick     small model, few repetitions: every figure in well under a minute\n"
          "  --out DIR   bench.json and bench_*.png (default: the build dir)\n"
          "  --work DIR  generated models and adapters, reused (default: BUILD/bench-work)\n"
          "  --threads N OpenBLAS threads (default: OPENBLAS_NUM_THREADS, else every core)\n"
          "  --no-peer   skip PyTorch; --python (default /usr/bin/python3), --peer peer_torch.py\n"
          "  --decode-layers N  layers of the TinyLlama-shaped decode model (default 22)\n"
          "  --decode-dtype T   its weights' dtype (default bf16, as TinyLlama ships)\n"
          "  --only-shapes      only the real shapes (LLaMA-3.2-1B, Qwen2.5-0.5B): prefill, decode, lm_head\n"
          "  --only-prefill16   only the 16-bit prefill rows of section 4 (decode model: --decode-layers,\n"
          "                     --decode-dtype; TinyLlama's width unless --quick)\n"
          "  --only-tokenizer   only the tokenizer section (TinyLlama, Qwen3 against HF tokenizers)\n"
          "  --only-threads     only section 10: decode at 1 and 2 threads, idle and next to a busy process\n"
          "  --serve            only section 12, `lorajit serve` over HTTP against the C API on the same\n"
          "                     load (also OUT/bench_serve.json); --serve-rounds N: its timed rounds (3)\n"
          "  --only-sched       only the decode section and continuous batching (sections 4 and 11);\n"
          "                     --only-decode: the decode section (4) alone, its 16-bit prefill rows included\n"
          "  --only-swaps       only section 2: swaps against memcpy, and a BF16 rank-16 adapter on the\n"
          "                     decode model (--decode-layers) into f32 and BF16 slots\n"
          "  --node PATH        Node.js for HF tokenizers (default: node on PATH); --node-path DIR: the\n"
          "                     NODE_PATH holding its npm package `tokenizers` (default: $NODE_PATH)\n",
          asked ? stdout : stderr);
    exit(asked ? 0 : 2);
}

static void parse_args(int argc, char **argv, bench_opts *o) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) bench_die("cannot read /proc/self/exe");
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    bench_fmt(o->exe_dir, sizeof o->exe_dir, "%s", exe);
    bench_fmt(o->out, sizeof o->out, "%s", exe);
    o->work[0] = '\0';
    o->python = "/usr/bin/python3", o->peer = LORAJIT_SOURCE_DIR "/bench/peer_torch.py", o->decode_dtype = "bf16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage(1);
        else if (!strcmp(a, "--quick")) o->quick = true;
        else if (!strcmp(a, "--no-peer")) o->no_peer = true;
        else if (!strcmp(a, "--no-plots")) o->no_plots = true;
        else if (!strcmp(a, "--only-shapes")) o->only_shapes = true;
        else if (!strcmp(a, "--only-tokenizer")) o->only_tok = true;
        else if (!strcmp(a, "--only-threads")) o->only_threads = true;
        else if (!strcmp(a, "--only-prefill16")) o->only_p16 = true;
        else if (!strcmp(a, "--serve")) o->only_serve = true;
        else if (!strcmp(a, "--only-sched")) o->only_sched = true;
        else if (!strcmp(a, "--only-decode")) o->only_decode = true;
        else if (!strcmp(a, "--only-swaps")) o->only_swaps = true;
        else if (!strcmp(a, "--node") && v) o->node = argv[++i];
        else if (!strcmp(a, "--node-path") && v) o->node_path = argv[++i];
        else if (!strcmp(a, "--out") && v) bench_fmt(o->out, sizeof o->out, "%s", argv[++i]);
        else if (!strcmp(a, "--work") && v) bench_fmt(o->work, sizeof o->work, "%s", argv[++i]);
        else if (!strcmp(a, "--python") && v) o->python = argv[++i];
        else if (!strcmp(a, "--peer") && v) o->peer = argv[++i];
        else if (!strcmp(a, "--threads") && v) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--serve-rounds") && v) o->serve_rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--decode-layers") && v) o->decode_layers = atoi(argv[++i]);
        else if (!strcmp(a, "--decode-dtype") && v) o->decode_dtype = argv[++i];
        else usage(0);
    }
    if (strcmp(o->decode_dtype, "bf16") && strcmp(o->decode_dtype, "f16") && strcmp(o->decode_dtype, "f32"))
        usage(0);
    if (!o->work[0]) bench_fmt(o->work, sizeof o->work, "%s/bench-work", exe);
    bench_mkdirs(o->out);
    bench_mkdirs(o->work);
    char *real = realpath(o->work, NULL);
    if (real) bench_fmt(o->work, sizeof o->work, "%s", real);
    free(real);
}

static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1) l = -1;
    if (f) fclose(f);
    return l;
}

static void read_machine(bench_result *r) {
    r->n_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    r->load_start = load_average();
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    bench_fmt(r->cpu, sizeof r->cpu, "unknown");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            bench_fmt(r->cpu, sizeof r->cpu, "%s", strchr(line, ':') + 2);
            r->cpu[strcspn(r->cpu, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    unsigned maj, min, patch;
    LLVMGetVersion(&maj, &min, &patch);
    bench_fmt(r->llvm, sizeof r->llvm, "%u.%u.%u", maj, min, patch);
    bench_fmt(r->openblas, sizeof r->openblas, "%s (core %s)", openblas_get_config(), openblas_get_corename());
    r->threads = openblas_get_num_threads();
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    bench_fmt(r->threads_env, sizeof r->threads_env, "%s", env ? env : "");
    time_t now = time(NULL);
    strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
}

/* The peer's spec: model, adapters, forward configs, swaps, reps, logits to compare. */
static void write_peer_spec(const bench_result *r, const char *path, const char *model_dir,
                            char fwd_adapters[5][PATH_MAX], char adapters[BENCH_SWAPS][2][PATH_MAX],
                            const int *reps, int swap_reps, const char *work) {
    cJSON *j = cJSON_CreateObject(), *ad = cJSON_AddObjectToObject(j, "adapters");
    cJSON_AddStringToObject(j, "model", model_dir);
    for (int i = 0; i < 5; i++) cJSON_AddStringToObject(ad, fwd_names[i], fwd_adapters[i]);
    cJSON *tok = cJSON_AddObjectToObject(j, "tokens"), *rp = cJSON_AddObjectToObject(j, "reps");
    cJSON *cmp = cJSON_AddObjectToObject(cJSON_AddObjectToObject(j, "compare"), "16");
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) {
        char key[16];
        bench_fmt(key, sizeof key, "%d", token_sets[t]);
        int ids[128];
        for (int i = 0; i < token_sets[t]; i++) ids[i] = (int)((i * 7919u + 13) % (unsigned)r->vocab);
        cJSON_AddItemToObject(tok, key, cJSON_CreateIntArray(ids, token_sets[t]));
        cJSON_AddNumberToObject(rp, key, reps[t]);
    }
    cJSON *fc = cJSON_AddArrayToObject(j, "forward_configs");
    for (int i = 0; i < BENCH_FWD_CONFIGS; i++) {
        const bench_fwd_row *row = &r->fwd[i];
        if (!row->peer || strcmp(row->peer, row->name) != 0) continue; /* run each peer config once */
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", row->name);
        cJSON_AddBoolToObject(c, "lora", cfgs[i].engine != 0);
        cJSON_AddItemToObject(c, "active", cJSON_CreateStringArray(fwd_names + cfgs[i].first, cfgs[i].n_active));
        cJSON_AddItemToArray(fc, c);
        char lp[PATH_MAX + 64];
        bench_fmt(lp, sizeof lp, "%s/logits/%s_16.bin", work, row->name);
        cJSON_AddStringToObject(cmp, row->name, lp);
    }
    cJSON *sw = cJSON_AddArrayToObject(j, "swaps");
    for (int i = 0; i < BENCH_SWAPS; i++) {
        char name[32];
        bench_fmt(name, sizeof name, "%s_r%d", r->swap[i].targets, r->swap[i].rank);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddStringToObject(c, "a", adapters[i][0]);
        cJSON_AddStringToObject(c, "b", adapters[i][1]);
        cJSON_AddItemToArray(sw, c);
    }
    cJSON_AddNumberToObject(j, "swap_reps", swap_reps);
    char *text = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    if (!f || !text || fputs(text, f) < 0) bench_die("cannot write %s", path);
    fclose(f);
    free(text);
    cJSON_Delete(j);
}

/* The forward / swap model and its adapters under o->work (reused when present):
 * r's model fields and swap rows' names set, the folders into model_dir, adapters
 * (section 2's pairs) and fwd_ad (section 3's five). */
static void forward_inputs(const bench_opts *o, bench_result *r, char model_dir[PATH_MAX],
                           char adapters[BENCH_SWAPS][2][PATH_MAX], char fwd_ad[5][PATH_MAX]) {
    bench_width mid = o->quick ? full_widths[0] : full_widths[1];
    r->dim = mid.dim, r->hidden_dim = mid.hidden_dim, r->n_heads = mid.n_heads;
    r->n_layers = o->quick ? 4 : 8, r->vocab = 2048, r->r_max = 64, r->n_slots = 6;
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) r->tokens[t] = token_sets[t];
    char args[1024];
    bench_progress("generating the model and adapters (reused when present)");
    bench_fmt(model_dir, PATH_MAX, "%s/models/d%d_l%d", o->work, r->dim, r->n_layers);
    bench_fmt(args, sizeof args, "--dim %d --hidden %d --layers %d --heads %d --kv-heads %d "
             "--vocab %d --max-pos 256 --seed 1", r->dim, r->hidden_dim, r->n_layers, r->n_heads, r->n_heads,
             r->vocab);
    bench_generate(o->exe_dir, "model", model_dir, NULL, args);
    struct stat sb;
    char wpath[PATH_MAX + 32];
    bench_fmt(wpath, sizeof wpath, "%s/model.safetensors", model_dir);
    r->model_mib = stat(wpath, &sb) == 0 ? sb.st_size / 1048576.0 : 0;
    for (int i = 0; i < BENCH_SWAPS; i++) {
        int rank = ranks[i % BENCH_RANKS];
        r->swap[i].targets = target_sets[i / BENCH_RANKS], r->swap[i].rank = rank;
        for (int k = 0; k < 2; k++) {
            bench_fmt(adapters[i][k], PATH_MAX, "%s/adapters/d%d_l%d/%s_r%d_%c", o->work, r->dim, r->n_layers,
                     target_sets[i / BENCH_RANKS], rank, 'a' + k);
            bench_fmt(args, sizeof args, "--r %d --alpha %d --targets %s --seed %d", rank, 2 * rank,
                      target_lists[i / BENCH_RANKS], 100 + 2 * i + k);
            bench_generate(o->exe_dir, "adapter", adapters[i][k], model_dir, args);
        }
    }
    for (int i = 0; i < 5; i++) {
        int rank = i < 4 ? 16 : 4;
        bench_fmt(fwd_ad[i], PATH_MAX, "%s/adapters/d%d_l%d/fwd_%d", o->work, r->dim, r->n_layers, i);
        bench_fmt(args, sizeof args, "--r %d --alpha %d --targets %s --seed %d", rank, 2 * rank,
                  target_lists[1], 200 + i);
        bench_generate(o->exe_dir, "adapter", fwd_ad[i], model_dir, args);
    }
}

int main(int argc, char **argv) {
    static bench_opts o;
    static bench_result r;
    parse_args(argc, argv, &o);
    if (o.threads > 0) openblas_set_num_threads(o.threads);
    bench_progress_start(1 + BENCH_COMPILES + 1 + BENCH_TOKEN_SETS + BENCH_SWAPS + 1 + BENCH_DECODE_PROGRESS +
                         (o.quick ? 0 : BENCH_SHAPES) + BENCH_TOK_FAMILIES + 1 + BENCH_THREADS_PROGRESS + 1 + 2 +
                         bench_serve_progress(o.quick, o.serve_rounds));
    r.quick = o.quick;
    read_machine(&r);
    if (o.only_shapes) { /* section 5 alone */
        r.quick = false;
        bench_shapes(&r, o.exe_dir, o.work);
        if (isatty(2)) fputc('\n', stderr);
        bench_shapes_print(&r, stdout);
        return 0;
    }
    if (o.only_p16) { /* section 4's 16-bit prefill rows alone */
        bench_progress_start(3); /* bench_decode's model line, bench_prefill16's two */
        r.only_p16 = true;
        bench_decode(&r, o.exe_dir, o.work, o.decode_layers, o.decode_dtype);
        if (isatty(2)) fputc('\n', stderr);
        bench_prefill16_print(&r, stdout);
        return 0;
    }
    if (o.only_serve) { /* section 12 alone: the table, and its object as OUT/bench_serve.json */
        bench_progress_start(bench_serve_progress(o.quick, o.serve_rounds));
        bench_serve(&r, o.exe_dir, o.work, o.serve_rounds);
        if (isatty(2)) fputc('\n', stderr);
        bench_serve_print(&r, stdout);
        char path[PATH_MAX + 32];
        bench_fmt(path, sizeof path, "%s/bench_serve.json", o.out);
        write_json(bench_serve_json(&r), path);
        printf("\nJSON: %s\n", path);
        return 0;
    }
    if (o.only_sched || o.only_decode) { /* the decode section, then (--only-sched) section 11 on its model */
        bench_progress_start(BENCH_DECODE_PROGRESS + (o.only_sched ? 2 : 0));
        bench_decode(&r, o.exe_dir, o.work, o.decode_layers, o.decode_dtype);
        if (o.only_sched) bench_sched(&r);
        if (isatty(2)) fputc('\n', stderr);
        bench_decode_print(&r, stdout);
        if (o.only_sched) bench_sched_print(&r, stdout);
        return 0;
    }
    if (o.only_tok) { /* section 7 alone */
        bench_progress_start(BENCH_TOK_FAMILIES);
        bench_tok(&r, o.work, o.node, o.node_path);
        if (isatty(2)) fputc('\n', stderr);
        bench_tok_print(&r, stdout);
        return 0;
    }
    if (o.only_threads) { /* section 10 alone, on section 4's model */
        bench_progress_start(1 + BENCH_THREADS_PROGRESS);
        bench_decode_model(&r, o.exe_dir, o.work, o.decode_layers, o.decode_dtype);
        bench_threads(&r);
        if (isatty(2)) fputc('\n', stderr);
        bench_threads_print(&r, stdout);
        return 0;
    }
    int fwd_reps[BENCH_TOKEN_SETS] = {30, 15, 9}, quick_reps[BENCH_TOKEN_SETS] = {5, 3, 2};
    const int *reps = o.quick ? quick_reps : fwd_reps;
    int swap_reps = o.quick ? 5 : 30;
    char model_dir[PATH_MAX], adapters[BENCH_SWAPS][2][PATH_MAX], fwd_ad[5][PATH_MAX];
    forward_inputs(&o, &r, model_dir, adapters, fwd_ad);
    if (o.only_swaps) { /* section 2 alone: its engine, then the 16-bit rows on section 4's model */
        bench_progress_start(2 + BENCH_SWAPS + 2);
        lorajit_options o_64 = {.max_rank = 64, .targets = "all-linear", .max_adapters = r.n_slots,
                                .max_tokens = 128};
        lorajit_engine *e_64 = open_engine(model_dir, &o_64, &r.open_ms[1]);
        bench_swaps(&r, swap_reps, e_64, adapters);
        lorajit_engine_free(e_64);
        bench_decode_model(&r, o.exe_dir, o.work, o.decode_layers, o.decode_dtype);
        bench_swap16(&r, o.exe_dir, swap_reps);
        if (isatty(2)) fputc('\n', stderr);
        printf("lorajit bench --only-swaps — %s (%d CPUs), %s; load average %.2f before, %.2f after\n", r.cpu,
               r.n_cpus, r.date, r.load_start, load_average());
        bench_swaps_print(&r, stdout);
        return 0;
    }

    bench_compile(&r, &o, model_dir);

    /* engines: no slots; all-linear slots at max rank 64; all-linear slots at max rank 4 */
    bench_progress("compiling the forward engines");
    lorajit_options o_none = {.targets = "none", .max_tokens = 128};
    lorajit_options o_64 = {.max_rank = 64, .targets = "all-linear", .max_adapters = r.n_slots, .max_tokens = 128};
    lorajit_options o_4 = {.max_rank = 4, .targets = "all-linear", .max_adapters = 2, .max_tokens = 128};
    lorajit_engine *e_none = open_engine(model_dir, &o_none, &r.open_ms[0]);
    lorajit_engine *e_64 = open_engine(model_dir, &o_64, &r.open_ms[1]);
    lorajit_engine *e_4 = open_engine(model_dir, &o_4, &r.open_ms[2]);
    for (int i = 0; i < 5; i++) bench_must(lorajit_load_adapter(e_64, fwd_names[i], fwd_ad[i]), e_64, fwd_ad[i]);
    bench_must(lorajit_load_adapter(e_4, fwd_names[4], fwd_ad[4]), e_4, fwd_ad[4]);
    lorajit_engine *engines[3] = {e_none, e_64, e_4};
    char logit_dir[PATH_MAX + 16];
    bench_fmt(logit_dir, sizeof logit_dir, "%s/logits", o.work);
    bench_mkdirs(logit_dir);
    bench_gemm gemm = {0};
    bench_gemm_open(&gemm, model_dir, r.n_layers);
    gemm.threads = r.threads;
    bench_forward(&r, engines, &gemm, reps, logit_dir);
    bench_gemm_close(&gemm);

    for (int i = 0; i < 5; i++) bench_must(lorajit_delete_adapter(e_64, fwd_names[i]), e_64, "delete");
    bench_swaps(&r, swap_reps, e_64, adapters);
    lorajit_engine_free(e_none);
    lorajit_engine_free(e_64);
    lorajit_engine_free(e_4);
    bench_decode(&r, o.exe_dir, o.work, o.decode_layers, o.decode_dtype);
    bench_swap16(&r, o.exe_dir, swap_reps);
    bench_shapes(&r, o.exe_dir, o.work);
    bench_tok(&r, o.work, o.node, o.node_path);
    const char *folders[2 * BENCH_SWAPS + 5];
    for (int i = 0; i < BENCH_SWAPS; i++) folders[2 * i] = adapters[i][0], folders[2 * i + 1] = adapters[i][1];
    for (int i = 0; i < 5; i++) folders[2 * BENCH_SWAPS + i] = fwd_ad[i];
    bench_cache(&r, model_dir, folders, 2 * BENCH_SWAPS + 5);
    bench_kv(&r, o.exe_dir, o.work);
    bench_threads(&r);
    bench_sched(&r);
    bench_serve(&r, o.exe_dir, o.work, o.serve_rounds);

    /* the PyTorch peer, same model files and thread count */
    bench_progress("PyTorch peer (%s %s)", o.python, o.no_peer ? "skipped" : "running");
    if (o.no_peer) {
        bench_fmt(r.peer_reason, sizeof r.peer_reason, "skipped (--no-peer)");
    } else {
        char spec[PATH_MAX + 32];
        bench_fmt(spec, sizeof spec, "%s/peer_spec.json", o.work);
        write_peer_spec(&r, spec, model_dir, fwd_ad, adapters, reps, swap_reps, o.work);
        bench_peer_run(&r, o.python, o.peer, spec);
    }

    bench_progress("writing the report");
    r.wall_s = bench_elapsed_s();
    r.load_end = load_average();
    if (isatty(2)) fputc('\n', stderr);
    char path[PATH_MAX + 32], msg[512];
    bench_fmt(path, sizeof path, "%s/bench.json", o.out);
    if (bench_write_json(&r, path) != 0) bench_die("cannot write %s: %s", path, strerror(errno));
    bench_print_table(&r, stdout);
    printf("\nJSON: %s\n", path);
    if (o.no_plots) printf("plots: skipped (--no-plots)\n");
    else if (bench_plot(&r, o.out, msg, sizeof msg) == 0) printf("plots: %s/bench_{compile,swap,forward}.png\n", o.out);
    else printf("plots: skipped: %s\n", msg);
    return 0;
}
