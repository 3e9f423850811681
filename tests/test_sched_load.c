/* test_sched_load.c — the scheduler's admission against adapter loads and KV
 * blocks (issue 14), through the public API on the conformance tiny model
 * (test_sched.c has the rest; split off to keep both files short):
 *  (a) a just-in-time load runs on the loader thread: while adapter "x" loads
 *      (slowed to 300 ms by LORAJIT_TEST_LOAD_DELAY_MS) a running request keeps
 *      producing tokens (>= 2 before x's request gets its first, each of those
 *      steps far shorter than the load), its ids equal its run alone, x's equal a
 *      fresh engine's with x loaded explicitly, a corrupt adapter's request fails
 *      naming it, and jit_loads counts the one load;
 *  (b) a KV pool of 128 blocks (kv_cache_mb 1) and 24 requests of 8 blocks each:
 *      at most 16 run at once, all finish with LENGTH, ids equal alone-runs.
 * Usage: test_sched_load BUILD_DIR (uses BUILD_DIR/lorajit_gen); run from tests/. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "lorajit.h"
#include "sched_fixture.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs q alone through a fresh scheduler on e: ids into out (cap), returns how many. */
static int alone(lorajit_engine *e, const lorajit_sched_request *q, int32_t *out, int cap) {
    lorajit_sched *s = NULL;
    int64_t id;
    lorajit_sched_result res = {0};
    lorajit_sched_request plain = *q;
    plain.on_token = NULL;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0 && lorajit_sched_submit(s, &plain, &id) == 0 &&
              lorajit_sched_run_until_idle(s) == 0 && lorajit_sched_take(s, id, &res) == 0,
          "alone: %s", lorajit_sched_errmsg(s));
    int n = res.n_tokens < cap ? res.n_tokens : cap;
    if (n) memcpy(out, res.tokens, sizeof *out * (size_t)n);
    lorajit_free(res.tokens), lorajit_free(res.token_ms);
    lorajit_sched_free(s);
    return n;
}

/* ---- (a) a slow load does not hold up the running request ---- */
enum { A_NEW = 60, X_NEW = 5, DELAY_MS = 300 };

static void test_slow_load(const char *build) {
    char dir[1100], bad[1100], cmd[8192];
    snprintf(dir, sizeof dir, "%s/sched_load_adapters/x", build);
    snprintf(bad, sizeof bad, "%s/sched_load_adapters/broken", build);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/sched_load_adapters' && '%s/lorajit_gen' adapter '%s' --model %s --r 4 "
             "--alpha 8 --targets q_proj,v_proj,down_proj --seed 901 >/dev/null && cp -r '%s' '%s' && "
             "truncate -s 100 '%s/adapter_model.safetensors'", build, build, dir, MODEL, dir, bad, bad);
    CHECK(system(cmd) == 0, "%s", cmd);
    /* x's reference: a fresh engine with x loaded explicitly */
    int32_t px[6], want_x[X_NEW], pa[6], want_a[A_NEW];
    fill(px, 6, 5), fill(pa, 6, 1);
    lorajit_engine *ref = open_engine(1, 1);
    lorajit_request r = {.prompt = px, .n_prompt = 6, .adapter = "x", .max_new = X_NEW, .out = want_x};
    CHECK(ref && lorajit_load_adapter(ref, "x", dir) == 0 && lorajit_generate(ref, &r, 1, NULL, NULL, NULL) == 0 &&
              r.n_out == X_NEW, "reference x: %s", lorajit_errmsg(ref));
    lorajit_engine_free(ref);

    lorajit_engine *e = open_engine(4, 4);
    if (!e) return;
    load3(e);
    CHECK(lorajit_register_adapter(e, "x", dir) == 0 && lorajit_register_adapter(e, "broken", bad) == 0,
          "register: %s", lorajit_errmsg(e));
    token_log log = {.n = 0};
    const char *ad_a[1] = {"a_qv"}, *ad_x[1] = {"x"}, *ad_b[1] = {"broken"};
    lorajit_sched_request qa = {.prompt = pa, .n_prompt = 6, .adapters = ad_a, .n_adapters = 1, .max_new = A_NEW,
                                .on_token = log_token, .user = &log};
    lorajit_sched_request qx = {.prompt = px, .n_prompt = 6, .adapters = ad_x, .n_adapters = 1, .max_new = X_NEW,
                                .on_token = log_token, .user = &log};
    lorajit_sched_request qb = qx;
    qb.adapters = ad_b;
    int na = alone(e, &qa, want_a, A_NEW);
    CHECK(na == A_NEW, "a alone: %d tokens", na);
    lorajit_stats st0, st1;
    lorajit_get_stats(e, &st0);

    char delay[16];
    snprintf(delay, sizeof delay, "%d", DELAY_MS);
    setenv("LORAJIT_TEST_LOAD_DELAY_MS", delay, 1);
    lorajit_sched *s = NULL;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0, "open: %s", lorajit_sched_errmsg(s));
    unsetenv("LORAJIT_TEST_LOAD_DELAY_MS");
    if (!s) return;
    int64_t id_a, id_x, id_b;
    int busy = 1;
    CHECK(lorajit_sched_submit(s, &qa, &id_a) == 0, "submit a");
    for (int i = 0; i < 2; i++) CHECK(lorajit_sched_step(s, &busy) == 0, "step: %s", lorajit_sched_errmsg(s));
    int a_before = log.n; /* a decodes now */
    CHECK(lorajit_sched_submit(s, &qx, &id_x) == 0 && lorajit_sched_submit(s, &qb, &id_b) == 0, "submit x, broken");
    double t_submit = now_ms(), worst_a_step = 0;
    int a_during = -1; /* a's tokens from x's submit to x's first token */
    while (busy) {
        int n0 = log.n, a_here = 0;
        double t0 = now_ms();
        CHECK(lorajit_sched_step(s, &busy) == 0, "step: %s", lorajit_sched_errmsg(s));
        double dt = now_ms() - t0;
        for (int i = n0; i < log.n; i++) {
            if (log.ids[i] == id_a) a_here++;
            if (log.ids[i] == id_x && a_during < 0) {
                a_during = 0;
                for (int k = a_before; k < i; k++) a_during += log.ids[k] == id_a;
            }
        }
        if (a_here && a_during < 0 && dt > worst_a_step) worst_a_step = dt;
    }
    double x_wait = now_ms() - t_submit;
    lorajit_sched_result ra, rx, rb;
    CHECK(lorajit_sched_take(s, id_a, &ra) == 0 && lorajit_sched_take(s, id_x, &rx) == 0 &&
              lorajit_sched_take(s, id_b, &rb) == 0, "take: %s", lorajit_sched_errmsg(s));
    lorajit_get_stats(e, &st1);
    CHECK(a_during >= 2, "the running request made %d tokens while x loaded (want >= 2: the load blocked steps)",
          a_during);
    CHECK(worst_a_step < DELAY_MS / 2.0, "a step during the load took %.1f ms (the load takes >= %d ms)",
          worst_a_step, DELAY_MS);
    CHECK(ra.finish == LORAJIT_FINISH_LENGTH && ra.n_tokens == A_NEW &&
              !memcmp(ra.tokens, want_a, sizeof *want_a * A_NEW), "a differs from its run alone (%s %s)",
          lorajit_finish_str(ra.finish), ra.error);
    CHECK(rx.finish == LORAJIT_FINISH_LENGTH && rx.n_tokens == X_NEW &&
              !memcmp(rx.tokens, want_x, sizeof *want_x * X_NEW), "x differs from a fresh engine's (%s %s)",
          lorajit_finish_str(rx.finish), rx.error);
    CHECK(rb.finish == LORAJIT_FINISH_ERROR && rb.n_tokens == 0 && strstr(rb.error, "broken"),
          "the corrupt adapter's request: %s '%s'", lorajit_finish_str(rb.finish), rb.error);
    CHECK(st1.jit_loads == st0.jit_loads + 1, "jit_loads %lld -> %lld (want one load: x)",
          (long long)st0.jit_loads, (long long)st1.jit_loads);
    printf("  load of x slowed to %d ms: a made %d tokens meanwhile, its steps <= %.2f ms; all done %.0f ms after its submit; "
           "broken: %s\n", DELAY_MS, a_during, worst_a_step, x_wait, rb.error);
    lorajit_free(ra.tokens), lorajit_free(ra.token_ms), lorajit_free(rx.tokens), lorajit_free(rx.token_ms);
    lorajit_free(rb.tokens), lorajit_free(rb.token_ms);
    lorajit_sched_free(s);
    lorajit_engine_free(e);
}

/* ---- (b) admission waits for KV blocks ---- */
enum { K_REQS = 24, K_PROMPT = 20, K_NEW = 100 }; /* 119 positions: 8 blocks of 16 */

static int count_token(void *user, int64_t id, int32_t t) {
    ++*(int *)user;
    return 0;
}

static void test_kv_admission(void) {
    lorajit_options o = {.max_adapters = 1, .max_rank = 8, .max_batch = 32, .max_seq_len = 128,
                         .kv_block_size = 16, .kv_cache_mb = 1};
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, MODEL, &o);
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    int64_t total = 0;
    CHECK(!st && lorajit_kv_blocks(e, NULL, &total, NULL, NULL) == 0 && total == 128,
          "1 MiB of 8 KiB blocks: %lld", (long long)total);
    if (st) {
        lorajit_engine_free(e);
        return;
    }
    int per_step = 0, worst = 0;
    int32_t prompt[3][K_PROMPT], want[3][K_NEW];
    lorajit_sched_request q[3];
    for (int k = 0; k < 3; k++) {
        fill(prompt[k], K_PROMPT, 20 + k);
        q[k] = (lorajit_sched_request){.prompt = prompt[k], .n_prompt = K_PROMPT, .max_new = K_NEW,
                                       .on_token = count_token, .user = &per_step};
        CHECK(alone(e, &q[k], want[k], K_NEW) == K_NEW, "alone %d", k);
    }
    lorajit_sched *s = NULL;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0, "open: %s", lorajit_sched_errmsg(s));
    int64_t id[K_REQS];
    for (int i = 0; s && i < K_REQS; i++)
        CHECK(lorajit_sched_submit(s, &q[i % 3], &id[i]) == 0, "submit %d: %s", i, lorajit_sched_errmsg(s));
    int busy = s != NULL, steps = 0;
    while (busy && steps < 10000) {
        per_step = 0;
        if (lorajit_sched_step(s, &busy) != 0) {
            CHECK(0, "step: %s", lorajit_sched_errmsg(s));
            break;
        }
        if (per_step > worst) worst = per_step;
        steps++;
    }
    int ok = 0;
    for (int i = 0; s && i < K_REQS; i++) {
        lorajit_sched_result r;
        if (lorajit_sched_take(s, id[i], &r) != 0) {
            CHECK(0, "take %d: %s", i, lorajit_sched_errmsg(s));
            continue;
        }
        bool same = r.finish == LORAJIT_FINISH_LENGTH && r.n_tokens == K_NEW &&
                    !memcmp(r.tokens, want[i % 3], sizeof *r.tokens * K_NEW);
        CHECK(same, "request %d: %s '%s', %d tokens", i, lorajit_finish_str(r.finish), r.error, r.n_tokens);
        ok += same;
        lorajit_free(r.tokens), lorajit_free(r.token_ms);
    }
    CHECK(worst == 16, "at most %d requests sampled in one step (want 16: 128 blocks / 8 each)", worst);
    printf("  KV pool of %lld blocks, %d requests of 8 blocks: %d == alone, at most %d running, %d steps\n",
           (long long)total, K_REQS, ok, worst, steps);
    lorajit_sched_free(s);
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: test_sched_load BUILD_DIR\n"), 2;
    check_enter_tests_dir();
    test_slow_load(argv[1]);
    test_kv_admission();
    return check_summary("test_sched_load");
}
