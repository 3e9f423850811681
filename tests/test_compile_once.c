/* test_compile_once.c — compiles are counted, and adapter operations never compile.
 *
 * (a) lorajit_compiles_total() (the process-wide count, taken where machine code is
 *     generated) goes up by exactly 1 per engine open and per lorajit_compile_only,
 *     whose stage timings add up to no more than compile_ms.
 * (b) Engine A (4 slots, conformance tiny model) takes a seeded random walk of load,
 *     hotswap, set (weights from {1, 0.5, -1}), enable, disable and delete over a pool
 *     of adapter folders (walk.h), with a forward now and then; every 25 steps A's
 *     logits are compared bit for bit with engine B rebuilt from scratch to the same
 *     state, and with the conformance .bin where the state is one of its cases. The
 *     process-wide count does not move over the walk; each engine's stays 1.
 * (c) An artifact: lorajit_compile_artifact adds 1, opening it adds 0 (compiles 0).
 * Usage: test_compile_once BUILD_DIR [STEPS=10000] [SEED]; run from tests/. */
#include <dirent.h>
#include <time.h>

#include "walk.h"

#define CHECK_EVERY 25
#define FORWARD_PCT 2 /* a forward on A after this % of the steps (they are the cost) */

static int64_t total(void) { return lorajit_compiles_total(); }

/* (a) one engine open, one compile_only: +1 each. */
static void count_opens(void) {
    int64_t c0 = total();
    lorajit_engine *e = open_tiny();
    CHECK(total() == c0 + 1, "an engine open moved the count by %lld, want 1", (long long)(total() - c0));
    lorajit_stats st = {0};
    CHECK(e && lorajit_get_stats(e, &st) == LORAJIT_OK && st.compiles == 1, "engine compiles %lld, want 1",
          (long long)st.compiles);
    double stages = st.frontend_ms + st.plan_ms + st.codegen_ms + st.optimize_ms + st.jit_ms;
    CHECK(st.frontend_ms > 0 && st.plan_ms > 0 && st.codegen_ms > 0 && st.optimize_ms > 0 && st.jit_ms > 0 &&
          stages <= st.compile_ms, "stage times %.3f %.3f %.3f %.3f %.3f ms (sum %.3f) vs compile_ms %.3f",
          st.frontend_ms, st.plan_ms, st.codegen_ms, st.optimize_ms, st.jit_ms, stages, st.compile_ms);
    lorajit_engine_free(e);
    CHECK(total() == c0 + 1, "freeing an engine moved the count");
    char msg[512];
    lorajit_options opts = {.max_adapters = N_SLOTS};
    c0 = total();
    CHECK(lorajit_compile_only(TINY_MODEL, &opts, &st, msg, sizeof msg) == LORAJIT_OK, "compile_only: %s", msg);
    CHECK(total() == c0 + 1 && st.compiles == 1 && st.jit_ms > 0 && st.loads == 0,
          "compile_only: count +%lld, compiles %lld, jit_ms %.3f", (long long)(total() - c0),
          (long long)st.compiles, st.jit_ms);
    c0 = total();
    CHECK(lorajit_compile_only("no/such/model", &opts, NULL, msg, sizeof msg) == LORAJIT_E_IO &&
          strstr(msg, "no/such/model/config.json"), "compile_only of a missing folder: %s", msg);
    CHECK(total() == c0, "a failed compile_only moved the count");
}

/* (c) compile an artifact into a temp folder (+1), open it (+0), remove it. */
static void count_artifact(const refs *r) {
    char dir[64] = "/tmp/lorajit_once_XXXXXX", msg[512];
    lorajit_options opts = {.max_adapters = N_SLOTS};
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    int64_t c0 = total();
    lorajit_status s = lorajit_compile_artifact(TINY_MODEL, &opts, NULL, dir, msg, sizeof msg);
    CHECK(s == LORAJIT_OK && total() == c0 + 1, "compile artifact: %s, count +%lld, want 1", msg,
          (long long)(total() - c0));
    lorajit_engine *e = NULL;
    c0 = total();
    s = s ? s : lorajit_engine_open_artifact(&e, dir, TINY_MODEL, NULL);
    CHECK(s == LORAJIT_OK, "open artifact: %s", e ? lorajit_errmsg(e) : lorajit_status_str(s));
    static float logits[N_PROMPT * TINY_VOCAB];
    lorajit_stats st = {.compiles = -1};
    if (!s) {
        CHECK(lorajit_forward(e, r->tokens, N_PROMPT, logits) == LORAJIT_OK, "artifact forward");
        lorajit_get_stats(e, &st);
    }
    CHECK(total() == c0, "opening and running an artifact moved the count by %lld", (long long)(total() - c0));
    CHECK(st.compiles == 0 && st.jit_ms == 0 && st.frontend_ms == 0, "artifact engine compiles %lld, jit_ms %.3f",
          (long long)st.compiles, st.jit_ms);
    lorajit_engine_free(e);
    DIR *d = opendir(dir);
    for (struct dirent *f; d && (f = readdir(d));) {
        char path[512];
        if (f->d_name[0] != '.' && !join_path(path, sizeof path, dir, f->d_name)) remove(path);
    }
    if (d) closedir(d);
    CHECK(rmdir(dir) == 0, "cannot remove %s", dir);
}

int main(int argc, char **argv) {
    long steps = argc > 2 ? atol(argv[2]) : 10000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 20261125;
    walk_chdir();
    count_opens();
    walk w;
    long step = 0, forwards = 0;
    int64_t c0 = total();
    if (walk_open(&w, seed) == 0) {
        int64_t c1 = total();
        CHECK(c1 == c0 + 2, "opening engines A and B moved the count by %lld, want 2", (long long)(c1 - c0));
        static float logits[N_PROMPT * TINY_VOCAB];
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (step = 1; step <= steps; step++) {
            if (walk_step(&w, step)) break;
            if (rng_below(100) < FORWARD_PCT) {
                forwards++;
                if (lorajit_forward(w.a, w.r.tokens, N_PROMPT, logits) != LORAJIT_OK) {
                    CHECK(0, "step %ld: forward on A: %s", step, lorajit_errmsg(w.a));
                    break;
                }
            }
            if ((step % CHECK_EVERY == 0 || step == steps) && walk_checkpoint(&w, step)) break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        lorajit_stats sa, sb;
        lorajit_get_stats(w.a, &sa);
        lorajit_get_stats(w.b, &sb);
        CHECK(total() == c1, "%ld adapter operations moved the process-wide count by %lld, want 0",
              step > steps ? steps : step, (long long)(total() - c1));
        CHECK(sa.compiles == 1, "engine A compiled %lld times, want 1", (long long)sa.compiles);
        CHECK(sb.compiles == 1, "engine B compiled %lld times, want 1", (long long)sb.compiles);
        printf("test_compile_once: seed %llu, %ld/%ld steps (%ld ok, %ld E_FULL, %ld E_EXISTS, %ld E_NOT_FOUND), "
               "%ld extra forwards, %ld checkpoints (%ld with 2+ adapters applied, %ld bit mismatches, %ld "
               "against conformance), %.2f s, compiles A=%lld B=%lld, process-wide %lld (+%lld over the walk)\n",
               (unsigned long long)seed, step > steps ? steps : step, steps, w.n_ok, w.n_full, w.n_exists,
               w.n_not_found, forwards, w.checkpoints, w.n_multi, w.bit_mismatch, w.n_conf,
               (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, (long long)sa.compiles,
               (long long)sb.compiles, (long long)total(), (long long)(total() - c1));
        CHECK(step > steps, "the walk stopped early at step %ld", step);
        count_artifact(&w.r);
    }
    walk_close(&w);
    return check_summary("test_compile_once");
}
