/* test_compile_once.c — thousands of random adapter operations on one compiled engine.
 *
 * Engine A (4 slots, conformance tiny model) takes a seeded random walk of load,
 * hotswap, set (weights from {1, 0.5, -1}), enable, disable and delete over a pool
 * of names and adapter folders (the three conformance adapters, a copy, and scaled
 * copies written at start). The test keeps a model of the expected state, checks each
 * status (E_FULL, E_EXISTS, E_NOT_FOUND exactly when due), and every 25 steps compares
 * A's logits bit for bit with engine B rebuilt from scratch to the same state, and
 * with the conformance .bin where the state is one of its cases (walk.h). Both compile
 * once. Usage: test_compile_once BUILD_DIR [STEPS=3000] [SEED]; run from tests/. */
#include <time.h>

#include "walk.h"

#define CHECK_EVERY 25

int main(int argc, char **argv) {
    long steps = argc > 2 ? atol(argv[2]) : 3000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 20261125;
    walk_chdir();
    walk w;
    long step = 0;
    if (walk_open(&w, seed) == 0) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (step = 1; step <= steps; step++) {
            if (walk_step(&w, step)) break;
            if ((step % CHECK_EVERY == 0 || step == steps) && walk_checkpoint(&w, step)) break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        lorajit_stats sa, sb;
        lorajit_get_stats(w.a, &sa);
        lorajit_get_stats(w.b, &sb);
        CHECK(sa.compiles == 1, "engine A compiled %lld times, want 1", (long long)sa.compiles);
        CHECK(sb.compiles == 1, "engine B compiled %lld times, want 1", (long long)sb.compiles);
        printf("test_compile_once: seed %llu, %ld/%ld steps (%ld ok, %ld E_FULL, %ld E_EXISTS, %ld E_NOT_FOUND), "
               "%ld checkpoints (%ld with 2+ adapters applied, %ld bit mismatches, %ld against conformance), "
               "%.2f s, compiles A=%lld B=%lld\n",
               (unsigned long long)seed, step > steps ? steps : step, steps, w.n_ok, w.n_full, w.n_exists,
               w.n_not_found, w.checkpoints, w.n_multi, w.bit_mismatch, w.n_conf,
               (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, (long long)sa.compiles,
               (long long)sb.compiles);
        CHECK(step > steps, "the walk stopped early at step %ld", step);
    }
    walk_close(&w);
    return check_summary("test_compile_once");
}
