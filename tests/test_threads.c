/* test_threads.c — the engine's threads (options.threads, runtime/serving/pool.c and
 * pool_gemm.c) give the same bits whatever their count, also oversubscribed.
 *
 * Models: lorajit_gen makes a BF16 and an F32 LLaMA (dim 256, hidden 688, vocab 2048)
 * large enough that every matmul runs on the pool and prefill's sgemm is cut into
 * column blocks. For each: an engine of 1 thread is the reference; engines of 2 and
 * 4 threads (4 > the 2 cores this runs on) must give the same bits for a 16-token
 * forward, a 12-token prefill and 6 decode steps at batch 1 and 3 — the 4-thread
 * engine with a spinning child process on the machine, and within a bounded time of
 * the 1-thread engine next to the same child. Also: options.threads out of range is
 * refused before compiling, naming the field; opening an engine pins OpenBLAS to one
 * thread and 0 takes the count it had. */
#define _GNU_SOURCE
#include <cblas.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "lorajit.h"

enum { VOCAB = 2048, FWD = 16, PROMPT = 12, STEPS = 6, BATCH = 3 };

static char root[] = "/tmp/lorajit_threads_XXXXXX";

/* Every output of one engine: forward, prefill of each sequence, decode steps. */
typedef struct outputs {
    float fwd[FWD * VOCAB];
    float prefill[BATCH][PROMPT * VOCAB];
    float step1[STEPS][VOCAB];          /* batch 1 on sequence 0 */
    float step3[STEPS][BATCH * VOCAB];  /* batch 3 on sequences 0..2 after the above */
} outputs;

/* Runs everything on a fresh engine of `threads` threads; returns the seconds the
 * calls took (not the compile). */
static double run_all(const char *model, int threads, outputs *o) {
    lorajit_options opts = {.targets = "none", .max_tokens = FWD, .max_batch = BATCH, .max_seq_len = 64,
                            .threads = threads};
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, model, &opts);
    CHECK(st == LORAJIT_OK, "open %s with %d threads: %s", model, threads, lorajit_errmsg(e));
    if (st) {
        lorajit_engine_free(e);
        return 0;
    }
    int32_t tok[FWD];
    for (int i = 0; i < FWD; i++) tok[i] = (int32_t)((i * 7919u + 13) % VOCAB);
    double t0 = check_wall_s();
    CHECK(lorajit_forward(e, tok, FWD, o->fwd) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    for (int s = 0; s < BATCH; s++)
        CHECK(lorajit_seq_prefill(e, s, tok + s, PROMPT, o->prefill[s]) == LORAJIT_OK, "prefill: %s",
              lorajit_errmsg(e));
    int seq0 = 0, seqs[BATCH] = {0, 1, 2};
    for (int k = 0; k < STEPS; k++)
        CHECK(lorajit_decode(e, &seq0, &tok[k], 1, o->step1[k]) == LORAJIT_OK, "decode: %s", lorajit_errmsg(e));
    for (int k = 0; k < STEPS; k++)
        CHECK(lorajit_decode(e, seqs, &tok[k], BATCH, o->step3[k]) == LORAJIT_OK, "decode 3: %s", lorajit_errmsg(e));
    double s = check_wall_s() - t0;
    lorajit_engine_free(e);
    return s;
}

static void compare(const char *what, const outputs *ref, const outputs *got) {
    CHECK(!memcmp(ref->fwd, got->fwd, sizeof ref->fwd), "%s: forward differs from 1 thread", what);
    CHECK(!memcmp(ref->prefill, got->prefill, sizeof ref->prefill), "%s: prefill differs from 1 thread", what);
    CHECK(!memcmp(ref->step1, got->step1, sizeof ref->step1), "%s: decode (batch 1) differs from 1 thread", what);
    CHECK(!memcmp(ref->step3, got->step3, sizeof ref->step3), "%s: decode (batch 3) differs from 1 thread", what);
}

static void test_model(const char *build, const char *dtype) {
    char dir[PATH_MAX], cmd[3 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", root, dtype);
    snprintf(cmd, sizeof cmd, "'%s/lorajit_gen' model '%s' --dim 256 --hidden 688 --layers 2 --heads 4 "
             "--kv-heads 2 --vocab %d --max-pos 64 --std 0.05 --seed 5 --dtype %s >/dev/null", build, dir, VOCAB, dtype);
    CHECK(system(cmd) == 0, "%s", cmd);
    static outputs ref, got;
    double t1 = run_all(dir, 1, &ref);
    int finite = 1;
    for (int i = 0; i < FWD * VOCAB; i++) finite &= isfinite(ref.fwd[i]) != 0;
    CHECK(finite, "%s: 1-thread forward logits not finite", dtype);
    run_all(dir, 2, &got);
    compare(dtype, &ref, &got);
    /* oversubscribed: 4 threads and a busy process on 2 cores, against 1 thread next to the same */
    pid_t child = check_spawn_busy();
    CHECK(child > 0, "fork");
    double t1_busy = run_all(dir, 1, &got);
    compare(dtype, &ref, &got);
    double t4_busy = run_all(dir, 4, &got);
    check_stop_busy(child);
    char what[64];
    snprintf(what, sizeof what, "%s, 4 threads next to a busy process", dtype);
    compare(what, &ref, &got);
    CHECK(t4_busy < 4 * t1_busy + 0.1, "%s: 4 threads next to a busy process took %.3f s, 1 thread %.3f s", dtype,
          t4_busy, t1_busy);
    printf("  %s: 1 thread %.3f s idle, %.3f s next to a busy process; 4 threads next to it %.3f s; same bits\n",
           dtype, t1, t1_busy, t4_busy);
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    /* out of range: refused before compiling, naming the field */
    lorajit_options bad = {.threads = -1};
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, "conformance/models/llama-tiny", &bad);
    CHECK(st == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "options.threads"), "threads -1: %d %s", st,
          lorajit_errmsg(e));
    lorajit_engine_free(e);
    bad.threads = 100000;
    st = lorajit_engine_open(&e, "conformance/models/llama-tiny", &bad);
    CHECK(st == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "options.threads"), "threads 100000: %d %s", st,
          lorajit_errmsg(e));
    lorajit_engine_free(e);
    /* opening pins OpenBLAS to one thread; threads 0 takes the count it had */
    openblas_set_num_threads(3);
    int had = openblas_get_num_threads();
    lorajit_options dflt = {0};
    CHECK(lorajit_engine_open(&e, "conformance/models/llama-tiny", &dflt) == LORAJIT_OK, "open: %s",
          lorajit_errmsg(e));
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS has %d threads after open, not 1", openblas_get_num_threads());
    lorajit_stats s;
    CHECK(lorajit_get_stats(e, &s) == LORAJIT_OK && s.threads == had, "the engine has %d threads, OpenBLAS had %d",
          s.threads, had);
    lorajit_engine_free(e);
    lorajit_engine *e2 = NULL;
    CHECK(lorajit_engine_open(&e2, "conformance/models/llama-tiny", &dflt) == LORAJIT_OK, "open: %s",
          lorajit_errmsg(e2));
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS has %d threads after a second open", openblas_get_num_threads());
    CHECK(lorajit_get_stats(e2, &s) == LORAJIT_OK && s.threads == had, "a second engine has %d threads, not %d",
          s.threads, had);
    lorajit_engine_free(e2);
    printf("  OpenBLAS had %d threads, 1 after open\n", had);

    test_model(build, "bf16");
    test_model(build, "f32");
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "%s", cmd);
    return check_summary("test_threads");
}
