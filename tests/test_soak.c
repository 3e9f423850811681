/* test_soak.c — a long random run of the public API on one compiled engine.
 *
 * Steps: the walk of walk.h (load, hotswap, set, enable, disable, delete) mixed with
 * forward calls (the conformance prompt, or random tokens of random length). Every
 * 100 steps A is checked against engine B rebuilt from scratch and the conformance
 * logits; a prompt forward between checkpoints must equal the last checkpoint's bit for
 * bit when the state has not changed. At the end compiles must be 1, and the resident
 * set (/proc/self/statm) after warm-up (10% of the steps) and at the end must not grow
 * by over 8 MiB (only reported under ASan, whose quarantine grows). Usage: test_soak
 * BUILD_DIR [STEPS] [SEED]; STEPS default $LORAJIT_SOAK_STEPS or 20000; long run 100000. */
#include <math.h>
#include <time.h>

#include "walk.h"

#define CHECK_EVERY 100
#define RSS_LIMIT_KIB (8 * 1024)

/* Resident set in KiB, from /proc/self/statm; -1 when unreadable. */
static long rss_kib(void) {
    long pages_total = 0, pages_resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
    fclose(f);
    return pages_resident < 0 ? -1 : pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
    const char *env = getenv("LORAJIT_SOAK_STEPS");
    long steps = argc > 2 ? atol(argv[2]) : env && *env ? atol(env) : 20000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 20261126;
    long warm = steps / 10 > 0 ? steps / 10 : 1;
    walk_chdir();
    walk w;
    static float logits[128 * TINY_VOCAB], at_checkpoint[N_PROMPT * TINY_VOCAB];
    static int32_t tokens[128];
    model m_checkpoint;
    int have_checkpoint = 0;
    long step = 0, n_fwd = 0, n_fwd_same = 0, rss_warm = -1, rss_end = -1, rss_peak = -1;
    if (walk_open(&w, seed) != 0) goto done;
    int max_tokens = lorajit_max_tokens(w.a);
    CHECK(max_tokens >= N_PROMPT && max_tokens <= 128, "max_tokens %d", max_tokens);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (step = 1; step <= steps; step++) {
        if (rng_below(100) < 25) { /* forward */
            int same_prompt = rng_below(2), n = N_PROMPT;
            if (same_prompt) memcpy(tokens, w.r.tokens, sizeof w.r.tokens);
            else {
                n = 1 + rng_below(max_tokens);
                for (int i = 0; i < n; i++) tokens[i] = rng_below(TINY_VOCAB);
            }
            lorajit_status s = lorajit_forward(w.a, tokens, n, logits);
            CHECK(s == LORAJIT_OK, "step %ld: forward of %d tokens: %s", step, n, lorajit_errmsg(w.a));
            if (s != LORAJIT_OK) break;
            n_fwd++;
            int finite = 1;
            for (long i = 0; i < (long)n * TINY_VOCAB; i++) finite &= isfinite(logits[i]);
            CHECK(finite, "step %ld: forward gave a non-finite logit", step);
            if (same_prompt && have_checkpoint && !memcmp(&m_checkpoint, &w.m, sizeof w.m)) {
                n_fwd_same++;
                CHECK(!memcmp(logits, at_checkpoint, sizeof at_checkpoint),
                      "step %ld: same state as the last checkpoint, different logits", step);
            }
        } else if (walk_step(&w, step)) {
            break;
        }
        if (step % CHECK_EVERY == 0 || step == steps) {
            if (walk_checkpoint(&w, step)) break;
            if (lorajit_forward(w.a, w.r.tokens, N_PROMPT, at_checkpoint) != LORAJIT_OK) break;
            memcpy(&m_checkpoint, &w.m, sizeof w.m);
            have_checkpoint = 1;
        }
        if (step == warm) rss_warm = rss_kib();
        if (step % 1000 == 0) {
            long r = rss_kib();
            if (r > rss_peak) rss_peak = r;
        }
    }
    rss_end = rss_kib();
    if (rss_end > rss_peak) rss_peak = rss_end;
    double secs = seconds_since(&t0);
    lorajit_stats sa;
    lorajit_get_stats(w.a, &sa);
    CHECK(step > steps, "the soak stopped early at step %ld", step);
    CHECK(sa.compiles == 1, "engine A compiled %lld times, want 1", (long long)sa.compiles);
    long growth = rss_end - rss_warm;
    printf("test_soak: seed %llu, %ld steps in %.2f s (%ld forwards, %ld compared with the last checkpoint; "
           "%ld ok, %ld E_FULL, %ld E_EXISTS, %ld E_NOT_FOUND), %ld checkpoints (%ld bit mismatches, %ld against "
           "conformance), compiles=%lld loads=%lld hotswaps=%lld deletes=%lld\n",
           (unsigned long long)seed, step > steps ? steps : step, secs, n_fwd, n_fwd_same, w.n_ok, w.n_full,
           w.n_exists, w.n_not_found, w.checkpoints, w.bit_mismatch, w.n_conf, (long long)sa.compiles,
           (long long)sa.loads, (long long)sa.hotswaps, (long long)sa.deletes);
    printf("test_soak: RSS after warm-up (step %ld) %ld KiB, at the end %ld KiB, peak %ld KiB: growth %+ld KiB\n",
           warm, rss_warm, rss_end, rss_peak, growth);
    CHECK(rss_warm > 0 && rss_end > 0, "cannot read /proc/self/statm");
#if defined(__SANITIZE_ADDRESS__)
    printf("test_soak: ASan build: RSS growth reported only (the quarantine holds freed memory)\n");
#else
    CHECK(growth <= RSS_LIMIT_KIB, "RSS grew by %ld KiB, over %d KiB", growth, RSS_LIMIT_KIB);
#endif
done:
    walk_close(&w);
    return check_summary("test_soak");
}
