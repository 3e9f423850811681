/* test_layer_loop.c — issue 16: the layer loop of codegen.c against the unrolled code.
 *
 * codegen.c emits the repeated layer body once, in a loop over layers, unless
 * LORAJIT_UNROLL_LAYERS is set at compile time (read at each compile, so one process
 * can build both). On random models from lorajit_gen (5 layers, GQA 4/2 heads, F32,
 * BF16 and F16 weights) with three adapters on different targets and layers:
 * (a) a looped and an unrolled engine give bit-identical logits for a multi-token
 *     forward, two prefills with different adapter sets, and batched decode steps;
 *     the unrolled engine's entry points (LORAJIT_DUMP=llvm, optimised) are the larger,
 *     so the two really are different code;
 *     so do looped engines compiled in one part and in three (LORAJIT_COMPILE_THREADS:
 *     the module split among threads, jit_parts.c), whose dumps show one and three
 *     modules;
 * (b) compile_only of 2- and 8-layer models of one width: the looped module's
 *     entry points' instruction count stays within 5% (+64) of the 2-layer one's,
 *     the unrolled one's at least doubles.
 * Usage: test_layer_loop BUILD_DIR (uses BUILD_DIR/lorajit_gen); run from tests/.
 * Scratch folder: BUILD_DIR/tmp_layer_loop. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"

#define VOCAB 256
#define N_PROMPT 7
#define N_PROMPT1 5
#define N_DECODE 4
#define N_SEQ 2
/* floats one scenario writes: forward, two prefills, N_DECODE steps of N_SEQ rows */
#define N_OUT ((N_PROMPT + N_PROMPT + N_PROMPT1 + N_DECODE * N_SEQ) * VOCAB)

static char root[1024], gen[1100];

static const int32_t prompt[N_PROMPT] = {1, 17, 42, 99, 200, 3, 250};
static const int32_t prompt1[N_PROMPT1] = {2, 64, 128, 7, 31};

/* Runs lorajit_gen with the formatted arguments; false when it fails. */
static bool run_gen(const char *fmt, const char *a, const char *b, const char *extra) {
    char cmd[8192], args[3072];
    snprintf(args, sizeof args, fmt, a, b, extra);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null", gen, args);
    bool ok = system(cmd) == 0;
    CHECK(ok, "%s", cmd);
    return ok;
}

/* Sets (unroll) or clears LORAJIT_UNROLL_LAYERS; codegen reads it at each compile. */
static void set_unroll(bool unroll) {
    if (unroll) setenv("LORAJIT_UNROLL_LAYERS", "1", 1);
    else unsetenv("LORAJIT_UNROLL_LAYERS");
}

/* Counts the instruction lines of the entry points lj_forward and lj_decode in an
 * LLVM module's text in f (lines indented inside their bodies, comments excluded):
 * the code emitted per layer; the kernels they call are shared by every layer. */
static long count_instructions(FILE *f, long *modules) {
    char line[8192];
    long n = 0;
    bool in_entry = false;
    rewind(f);
    *modules = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "target datalayout", 17)) ++*modules; /* one a module (a part) */
        if (!strncmp(line, "define ", 7)) in_entry = strstr(line, "@lj_forward(") || strstr(line, "@lj_decode(");
        else if (line[0] == '}') in_entry = false;
        else if (in_entry && line[0] == ' ' && line[1] == ' ' && line[2] != ' ' && line[2] != ';' && line[2] != '\n')
            n++;
    }
    return n;
}

/* stderr into a temporary file while LORAJIT_DUMP=llvm is set: the optimised module
 * of the compile that runs between capture_begin and capture_end. */
typedef struct capture {
    FILE *f;
    int saved;
    long modules; /* modules printed (capture_end) */
} capture;

static void capture_begin(capture *c) {
    fflush(stderr);
    c->f = tmpfile();
    c->saved = dup(2);
    CHECK(c->f && c->saved >= 0, "tmpfile / dup");
    if (c->f) dup2(fileno(c->f), 2);
    setenv("LORAJIT_DUMP", "llvm", 1);
}

/* Restores stderr; returns the instruction count of what was captured. */
static long capture_end(capture *c) {
    unsetenv("LORAJIT_DUMP");
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, 2);
        close(c->saved);
    }
    long n = c->f ? count_instructions(c->f, &c->modules) : -1;
    if (c->f) fclose(c->f);
    return n;
}

/* Opens an engine on model with the layer loop (unroll false) or without, compiled
 * in the parts LORAJIT_COMPILE_THREADS = parts says (NULL: unset, the default); *insns
 * gets its entry points' instruction count (optimised), *modules the modules its dump
 * printed. NULL on failure (checked). */
static lorajit_engine *open_engine(const char *model, bool unroll, const char *parts, long *insns, long *modules) {
    lorajit_options o = {.max_rank = 8, .max_adapters = 4, .max_tokens = 16, .max_batch = N_SEQ,
                         .max_seq_len = 32, .threads = 2};
    lorajit_engine *e = NULL;
    capture c;
    set_unroll(unroll);
    if (parts) setenv("LORAJIT_COMPILE_THREADS", parts, 1);
    capture_begin(&c);
    lorajit_status st = lorajit_engine_open(&e, model, &o);
    *insns = capture_end(&c);
    *modules = c.modules;
    set_unroll(false);
    unsetenv("LORAJIT_COMPILE_THREADS");
    CHECK(st == LORAJIT_OK, "open %s (%s): %s", model, unroll ? "unrolled" : "looped", lorajit_errmsg(e));
    if (st) {
        lorajit_engine_free(e);
        return NULL;
    }
    return e;
}

/* Loads the adapters and runs the scenario on e, writing N_OUT floats to out.
 * false when a call fails (checked, naming it). */
static bool run_scenario(lorajit_engine *e, const char *tag, float *out) {
    static const char *const names[3] = {"attn", "mlp", "mix"};
    for (int i = 0; i < 3; i++) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/ad_%s", root, names[i]);
        if (lorajit_load_adapter(e, names[i], dir) != LORAJIT_OK) {
            CHECK(0, "%s: load %s: %s", tag, dir, lorajit_errmsg(e));
            return false;
        }
    }
    const char *both[2] = {"attn", "mlp"};
    const float w[2] = {1.0f, -0.5f};
    float *p = out;
    bool ok = lorajit_set_adapter(e, both, w, 2) == LORAJIT_OK;
    ok = ok && lorajit_forward(e, prompt, N_PROMPT, p) == LORAJIT_OK; /* the engine's set */
    p += N_PROMPT * VOCAB;
    ok = ok && lorajit_seq_set_adapter(e, 1, &names[2], NULL, 1) == LORAJIT_OK;
    ok = ok && lorajit_seq_prefill(e, 0, prompt, N_PROMPT, p) == LORAJIT_OK;
    p += N_PROMPT * VOCAB;
    ok = ok && lorajit_seq_prefill(e, 1, prompt1, N_PROMPT1, p) == LORAJIT_OK;
    p += N_PROMPT1 * VOCAB;
    const int seqs[N_SEQ] = {0, 1};
    for (int s = 0; ok && s < N_DECODE; s++, p += N_SEQ * VOCAB) {
        const int32_t tok[N_SEQ] = {(int32_t)(11 + 37 * s), (int32_t)(200 - 13 * s)};
        ok = lorajit_decode(e, seqs, tok, N_SEQ, p) == LORAJIT_OK;
    }
    CHECK(ok, "%s: scenario: %s", tag, lorajit_errmsg(e));
    return ok;
}

/* (a) for one weight dtype: looped and unrolled engines, and looped ones compiled in
 * one and in three parts, agree bit for bit. */
static void compare_dtype(const char *dtype) {
    char model[1100];
    snprintf(model, sizeof model, "%s/model_%s", root, dtype);
    if (strcmp(dtype, "f32") && /* model_f32 is main's */
        !run_gen("model '%s' --layers 5 --dim 64 --hidden 160 --heads 4 --kv-heads 2 --dtype %s --seed 7%s", model,
                 dtype, ""))
        return;
    enum { V = 4 };
    static const char *const tag[V] = {"looped", "unrolled", "looped, 1 part", "looped, 3 parts"};
    static const char *const parts[V] = {NULL, NULL, "1", "3"};
    static float out[V][N_OUT];
    long insns[V] = {-1, -1, -1, -1}, modules[V] = {0};
    bool ok[V] = {false};
    for (int u = 0; u < V; u++) {
        memset(out[u], 0, sizeof out[u]);
        lorajit_engine *e = open_engine(model, u == 1, parts[u], &insns[u], &modules[u]);
        ok[u] = e && run_scenario(e, tag[u], out[u]);
        lorajit_engine_free(e);
    }
    for (int u = 0; u < V; u++)
        if (!ok[u]) return;
    long finite = 0, distinct = 0;
    for (long i = 0; i < N_OUT; i++) {
        finite += isfinite(out[0][i]);
        distinct += i > 0 && out[0][i] != out[0][i - 1];
    }
    for (int u = 1; u < V; u++) {
        long first = -1;
        for (long i = 0; i < N_OUT && first < 0; i++)
            if (memcmp(&out[0][i], &out[u][i], sizeof(float))) first = i;
        CHECK(first < 0, "%s: looped and %s logits differ first at float %ld (row %ld, token %ld): %.9g vs %.9g",
              dtype, tag[u], first, first / VOCAB, first % VOCAB, first < 0 ? 0.0 : out[0][first],
              first < 0 ? 0.0 : out[u][first]);
    }
    CHECK(modules[2] == 1 && modules[3] == 3, "%s: dumps of 1 and 3 parts printed %ld and %ld modules", dtype,
          modules[2], modules[3]);
    CHECK(finite == N_OUT && distinct > N_OUT / 2, "%s: logits degenerate (%ld finite, %ld changes of %d)", dtype,
          finite, distinct, N_OUT);
    CHECK(insns[0] > 0 && insns[1] > insns[0], "%s: the unrolled module (%ld instructions) is not larger than the "
          "looped one (%ld): the two engines may be the same code", dtype, insns[1], insns[0]);
    printf("test_layer_loop: %s, 5 layers: %d logits bit-identical (looped, unrolled, 1 and 3 parts); entry points "
           "%ld instructions looped, %ld unrolled\n", dtype, N_OUT, insns[0], insns[1]);
}

/* The entry points' instruction count (optimised) of compile_only on model. -1 on failure. */
static long compiled_size(const char *model, bool unroll) {
    lorajit_options o = {.max_rank = 8, .max_adapters = 4, .max_tokens = 16};
    char msg[1024];
    capture c;
    set_unroll(unroll);
    capture_begin(&c);
    lorajit_status st = lorajit_compile_only(model, &o, NULL, msg, sizeof msg);
    long n = capture_end(&c);
    set_unroll(false);
    CHECK(st == LORAJIT_OK, "compile_only %s: %s", model, msg);
    return st ? -1 : n;
}

/* (b) code size against layers: flat when looped, growing when unrolled. */
static void size_vs_layers(void) {
    char m2[1100], m8[1100];
    snprintf(m2, sizeof m2, "%s/size_l2", root);
    snprintf(m8, sizeof m8, "%s/size_l8", root);
    if (!run_gen("model '%s' --layers 2 --dim 64 --hidden 160 --heads 4 --kv-heads 2%s%s", m2, "", "") ||
        !run_gen("model '%s' --layers 8 --dim 64 --hidden 160 --heads 4 --kv-heads 2%s%s", m8, "", ""))
        return;
    long loop2 = compiled_size(m2, false), loop8 = compiled_size(m8, false);
    long unr2 = compiled_size(m2, true), unr8 = compiled_size(m8, true);
    printf("test_layer_loop: entry-point instructions, 2 -> 8 layers: looped %ld -> %ld, unrolled %ld -> %ld\n", loop2,
           loop8, unr2, unr8);
    CHECK(loop2 > 0 && loop8 > 0 && loop8 <= loop2 + loop2 / 20 + 64,
          "looped code grows with layers: %ld instructions at 2 layers, %ld at 8", loop2, loop8);
    CHECK(unr2 > 0 && unr8 >= 2 * unr2,
          "unrolled code does not grow with layers (%ld at 2, %ld at 8): the size measure cannot see a lost loop",
          unr2, unr8);
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    snprintf(root, sizeof root, "%s/tmp_layer_loop", build);
    snprintf(gen, sizeof gen, "%s/lorajit_gen", build);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", root, root);
    CHECK(system(cmd) == 0, "%s", cmd);
    set_unroll(false);
    char base[1100];
    snprintf(base, sizeof base, "%s/model_f32", root);
    /* the adapters follow model_f32's shapes, shared by every dtype (same config) */
    bool ok = run_gen("model '%s' --layers 5 --dim 64 --hidden 160 --heads 4 --kv-heads 2 --dtype f32 --seed 7%s%s",
                      base, "", "") &&
              run_gen("adapter '%s/ad_attn' --model '%s' --r 8 --alpha 16 --targets q_proj,k_proj,v_proj,o_proj "
                      "--seed 11%s", root, base, "") &&
              run_gen("adapter '%s/ad_mlp' --model '%s' --r 4 --alpha 8 --targets gate_proj,up_proj,down_proj "
                      "--layers 0,2,4 --seed 12%s", root, base, "") &&
              run_gen("adapter '%s/ad_mix' --model '%s' --r 6 --alpha 12 --targets q_proj,v_proj,down_proj --rslora "
                      "--dtype bf16 --seed 13%s", root, base, "");
    if (ok) {
        compare_dtype("f32");
        compare_dtype("bf16");
        compare_dtype("f16");
    }
    size_vs_layers();
    if (!check_fail_count) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    return check_summary("test_layer_loop");
}
