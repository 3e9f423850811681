/* test_sched.c — the scheduler (issue 14), through the public API on the conformance
 * tiny model and its three PEFT adapters:
 *  (handles and lorajit_step themselves: test_step.c; slow adapter loads and KV
 *  admission: test_sched_load.c)
 *  (a) a request admitted mid-decode (budget 8: chunked, mixed steps)
 *      gives the ids it gives alone, greedy and seeded; requests with different
 *      adapters share steps, each equal to lorajit_generate of it alone (an
 *      independent path: prompts of <= 8 tokens run the same row loop);
 *  (b) cancellation by on_token and by lorajit_sched_cancel (queued and running),
 *      EOS, stop sequences, the admit hook (queue, never preempt), bad requests;
 *  (c) 40 random adapters registered, 4 slots: 80 requests cycled through the
 *      scheduler, every output equal to lorajit_generate on an engine with only that
 *      adapter loaded; a corrupt registered adapter fails its request by name and
 *      leaves the others' outputs untouched;
 *  (d) threads submitting and cancelling while one drives steps (run it under TSan).
 * Usage: test_sched BUILD_DIR (uses BUILD_DIR/lorajit_gen); run from tests/. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lorajit.h"
#include "sched_fixture.h"

#define N_AD 40

/* ---- (a), (b) requests through the scheduler ---- */
typedef struct req_spec {
    int n_prompt, salt, max_new;
    const char *ad[2];
    float w[2];
    int n_ad;
    const lorajit_sampling *samp;
} req_spec;

static lorajit_sched_request make_req(const req_spec *r, int32_t *prompt) {
    fill(prompt, r->n_prompt, r->salt);
    return (lorajit_sched_request){.prompt = prompt, .n_prompt = r->n_prompt, .adapters = r->ad, .weights = r->w,
                                   .n_adapters = r->n_ad, .max_new = r->max_new, .sampling = r->samp};
}

/* Runs r alone through a fresh scheduler on e: ids into out, returns how many. */
static int alone(lorajit_engine *e, const req_spec *r, int32_t *out, int budget) {
    lorajit_sched_options o = {.token_budget = budget};
    lorajit_sched *s = NULL;
    int32_t prompt[64];
    lorajit_sched_request q = make_req(r, prompt);
    int64_t id;
    lorajit_sched_result res = {0};
    CHECK(lorajit_sched_open(e, &o, &s) == 0 && lorajit_sched_submit(s, &q, &id) == 0 &&
              lorajit_sched_run_until_idle(s) == 0 && lorajit_sched_take(s, id, &res) == 0,
          "alone: %s", lorajit_sched_errmsg(s));
    int n = res.n_tokens;
    if (n) memcpy(out, res.tokens, sizeof *out * (size_t)n);
    lorajit_free(res.tokens), lorajit_free(res.token_ms);
    lorajit_sched_free(s);
    return n;
}

static bool same_ids(const lorajit_sched_result *r, const int32_t *want, int n) {
    return r->n_tokens == n && !memcmp(r->tokens, want, sizeof *want * (size_t)n);
}

static void test_mid_decode(lorajit_engine *e, const lorajit_sampling *samp, const char *label) {
    req_spec y = {30, 5, 20, {"a_all"}, {1}, 1, samp}, x = {12, 6, 16, {"a_qv", "a_mlp"}, {0.5f, 1}, 2, samp};
    int32_t want_x[32], want_y[32], px[64], py[64];
    int nx = alone(e, &x, want_x, 8), ny = alone(e, &y, want_y, 8);
    CHECK(nx == 16 && ny == 20, "%s alone: %d and %d tokens", label, nx, ny);
    lorajit_sched_options o = {.token_budget = 8, .min_chunk = 4};
    lorajit_sched *s;
    token_log log = {.n = 0};
    lorajit_sched_request qy = make_req(&y, py), qx = make_req(&x, px);
    qy.on_token = qx.on_token = log_token;
    qy.user = qx.user = &log;
    int64_t iy, ix;
    CHECK(lorajit_sched_open(e, &o, &s) == 0 && lorajit_sched_submit(s, &qy, &iy) == 0, "open");
    int busy, steps = 0;
    while (log.n < 6 && steps++ < 100) CHECK(lorajit_sched_step(s, &busy) == 0, "step: %s", lorajit_sched_errmsg(s));
    CHECK(lorajit_sched_submit(s, &qx, &ix) == 0 && lorajit_sched_run_until_idle(s) == 0, "run: %s",
          lorajit_sched_errmsg(s));
    lorajit_sched_result rx, ry;
    CHECK(lorajit_sched_take(s, ix, &rx) == 0 && lorajit_sched_take(s, iy, &ry) == 0, "take");
    CHECK(same_ids(&rx, want_x, nx) && rx.finish == LORAJIT_FINISH_LENGTH, "%s: request admitted mid-decode differs "
          "from alone", label);
    CHECK(same_ids(&ry, want_y, ny), "%s: the running request changed when another joined", label);
    int first_x = -1, last_y = -1; /* y kept decoding after x's first token: they shared steps */
    for (int i = 0; i < log.n; i++) {
        if (log.ids[i] == ix && first_x < 0) first_x = i;
        if (log.ids[i] == iy) last_y = i;
    }
    CHECK(first_x > 0 && last_y > first_x, "%s: x's first token at %d, y's last at %d: not interleaved", label, first_x,
          last_y);
    CHECK(rx.queue_ms >= 0 && rx.ttft_ms >= rx.queue_ms && rx.total_ms >= rx.ttft_ms && rx.token_ms[15] >= rx.ttft_ms,
          "stats: queue %.3f ttft %.3f total %.3f", rx.queue_ms, rx.ttft_ms, rx.total_ms);
    printf("  %s: admitted mid-decode (budget 8) == alone (%d and %d ids); queue %.2f ms, ttft %.2f ms\n", label, nx,
           ny, rx.queue_ms, rx.ttft_ms);
    lorajit_free(rx.tokens), lorajit_free(rx.token_ms), lorajit_free(ry.tokens), lorajit_free(ry.token_ms);
    lorajit_sched_free(s);
}

/* Four adapter sets in one scheduler: each equals lorajit_generate of it alone. */
static void test_shared_steps(lorajit_engine *e) {
    static const char *const spec[4] = {"a_qv", "a_all", "", "a_qv:1,a_mlp:-0.75"};
    req_spec r[4] = {{7, 1, 10, {"a_qv"}, {1}, 1, NULL}, {8, 2, 10, {"a_all"}, {1}, 1, NULL},
                     {5, 3, 10, {NULL}, {1}, 0, NULL}, {6, 4, 10, {"a_qv", "a_mlp"}, {1, -0.75f}, 2, NULL}};
    int32_t want[4][16], prompt[4][64];
    for (int i = 0; i < 4; i++) {
        fill(prompt[i], r[i].n_prompt, r[i].salt);
        lorajit_request g = {.prompt = prompt[i], .n_prompt = r[i].n_prompt, .adapter = spec[i], .max_new = 10,
                             .out = want[i]};
        CHECK(lorajit_generate(e, &g, 1, NULL, NULL, NULL) == 0 && g.n_out == 10, "generate %d: %s", i, lorajit_errmsg(e));
    }
    lorajit_sched *s;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0, "open");
    int64_t id[4];
    for (int i = 0; i < 4; i++) {
        lorajit_sched_request q = make_req(&r[i], prompt[i]);
        CHECK(lorajit_sched_submit(s, &q, &id[i]) == 0, "submit");
    }
    int busy = 1, steps = 0;
    while (busy && steps < 100) {
        CHECK(lorajit_sched_step(s, &busy) == 0, "step: %s", lorajit_sched_errmsg(s));
        steps++;
    }
    CHECK(steps == 10, "4 requests of 10 tokens took %d steps, want 10 (one prefill step, 9 decode steps)", steps);
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        lorajit_sched_result res;
        CHECK(lorajit_sched_take(s, id[i], &res) == 0, "take");
        ok += same_ids(&res, want[i], 10);
        CHECK(same_ids(&res, want[i], 10), "request %d (%s) differs from lorajit_generate alone", i, spec[i]);
        lorajit_free(res.tokens), lorajit_free(res.token_ms);
    }
    printf("  4 adapter sets sharing %d steps: %d of 4 == lorajit_generate alone\n", steps, ok);
    lorajit_sched_free(s);
}

static int cancel_at_3(void *user, int64_t id, int32_t t) { return ++*(int *)user >= 3; }

static void test_stops(lorajit_engine *e) {
    req_spec a = {6, 7, 12, {"a_qv"}, {1}, 1, NULL}, b = {9, 8, 12, {"a_all"}, {1}, 1, NULL};
    int32_t want_a[16], want_b[16], pa[64], pb[64], pc[64];
    alone(e, &a, want_a, 0), alone(e, &b, want_b, 0);
    lorajit_sched *s;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0, "open");
    int count = 0;
    lorajit_sched_request qa = make_req(&a, pa), qb = make_req(&b, pb), qc = make_req(&b, pc);
    qb.on_token = cancel_at_3;
    qb.user = &count;
    int64_t ia, ib, ic, iq;
    CHECK(!lorajit_sched_submit(s, &qa, &ia) && !lorajit_sched_submit(s, &qb, &ib) && !lorajit_sched_submit(s, &qc, &ic),
          "submit");
    int busy;
    for (int k = 0; k < 5; k++) lorajit_sched_step(s, &busy);
    CHECK(lorajit_sched_cancel(s, ic) == 0, "cancel running: %s", lorajit_sched_errmsg(s));
    lorajit_sched_result rc0;
    CHECK(lorajit_sched_take(s, ic, &rc0) == LORAJIT_E_NOT_FOUND, "cancelled but not yet finished before the next step");
    CHECK(lorajit_sched_submit(s, &qc, &iq) == 0 && lorajit_sched_cancel(s, iq) == 0, "cancel queued");
    CHECK(lorajit_sched_run_until_idle(s) == 0, "run");
    lorajit_sched_result ra, rb, rc, rq;
    CHECK(!lorajit_sched_take(s, ia, &ra) && !lorajit_sched_take(s, ib, &rb) && !lorajit_sched_take(s, ic, &rc) &&
              !lorajit_sched_take(s, iq, &rq), "take");
    CHECK(same_ids(&ra, want_a, 12) && ra.finish == LORAJIT_FINISH_LENGTH, "the request beside cancelled ones changed");
    CHECK(rb.finish == LORAJIT_FINISH_CANCELLED && same_ids(&rb, want_b, 3), "on_token cancel: %s after %d tokens",
          lorajit_finish_str(rb.finish), rb.n_tokens);
    CHECK(rc.finish == LORAJIT_FINISH_CANCELLED && same_ids(&rc, want_b, 5), "sched_cancel after 5 steps: %s, %d tokens",
          lorajit_finish_str(rc.finish), rc.n_tokens);
    CHECK(rq.finish == LORAJIT_FINISH_CANCELLED && rq.n_tokens == 0 && rq.queue_ms < 0, "queued cancel");
    CHECK(lorajit_sched_cancel(s, ia) == LORAJIT_E_NOT_FOUND && lorajit_sched_take(s, ia, &ra) == LORAJIT_E_NOT_FOUND,
          "finished: not cancellable, taken once");
    lorajit_free(ra.tokens), lorajit_free(ra.token_ms), lorajit_free(rb.tokens), lorajit_free(rb.token_ms);
    lorajit_free(rc.tokens), lorajit_free(rc.token_ms), lorajit_free(rq.tokens), lorajit_free(rq.token_ms);
    /* EOS and stop sequences end a request where they occur */
    lorajit_sampling eos = {.top_p = 1, .repetition_penalty = 1, .eos_id = want_a[4]};
    int first = 0;
    while (want_a[first] != want_a[4]) first++;
    a.samp = &eos;
    int32_t got[16];
    CHECK(alone(e, &a, got, 0) == first + 1 && !memcmp(got, want_a, sizeof *got * (size_t)(first + 1)), "eos");
    a.samp = NULL;
    const int32_t *stop[1] = {&want_a[6]};
    int stop_len[1] = {2};
    lorajit_sched_request qs = make_req(&a, pa);
    qs.stop_seqs = stop, qs.stop_lens = stop_len, qs.n_stop_seqs = 1;
    lorajit_sched_result rs;
    CHECK(!lorajit_sched_submit(s, &qs, &ia) && !lorajit_sched_run_until_idle(s) && !lorajit_sched_take(s, ia, &rs),
          "stop seq");
    CHECK(rs.finish == LORAJIT_FINISH_STOP && rs.n_tokens <= 8 && rs.n_tokens >= 2 &&
              !memcmp(rs.tokens + rs.n_tokens - 2, stop[0], 2 * sizeof(int32_t)),
          "stop sequence: %s after %d tokens", lorajit_finish_str(rs.finish), rs.n_tokens);
    lorajit_free(rs.tokens), lorajit_free(rs.token_ms);
    /* bad requests fail at submit and queue nothing */
    lorajit_sched_request bad = make_req(&a, pa);
    bad.max_new = 128;
    CHECK(lorajit_sched_submit(s, &bad, &ia) == LORAJIT_E_ARG && strstr(lorajit_sched_errmsg(s), "max_seq_len"),
          "too long: %s", lorajit_sched_errmsg(s));
    bad = make_req(&a, pa), bad.n_prompt = 0;
    CHECK(lorajit_sched_submit(s, &bad, &ia) == LORAJIT_E_ARG, "empty prompt");
    const char *stop_s[1] = {"x"};
    bad = make_req(&a, pa), bad.stop_strings = stop_s, bad.n_stop_strings = 1;
    CHECK(lorajit_sched_submit(s, &bad, &ia) == LORAJIT_E_ARG && strstr(lorajit_sched_errmsg(s), "tokenizer"),
          "stop strings without a tokenizer");
    bad = make_req(&a, pa), pa[2] = V;
    CHECK(lorajit_sched_submit(s, &bad, &ia) == LORAJIT_E_ARG && strstr(lorajit_sched_errmsg(s), "vocabulary"), "bad id");
    CHECK(lorajit_sched_step(s, &busy) == 0 && busy == 0, "nothing queued after bad submits");
    printf("  cancel (on_token at 3, sched_cancel running and queued), eos, stop sequence, bad requests: as asked\n");
    lorajit_sched_free(s);
}

/* The admit hook as a KV budget: at most 40 positions held at once. */
typedef struct kv_budget {
    int held, max_held;
} kv_budget;
static int admit_kv(void *user, int positions) {
    kv_budget *k = user;
    if (k->held + positions > 40) return 0;
    k->held += positions;
    if (k->held > k->max_held) k->max_held = k->held;
    return 1;
}
static int release_kv(void *user, int64_t id, int32_t t) { return 0; }

static void test_admit_hook(lorajit_engine *e) {
    kv_budget kv = {0, 0};
    lorajit_sched_options o = {.admit = admit_kv, .admit_user = &kv};
    lorajit_sched *s;
    CHECK(lorajit_sched_open(e, &o, &s) == 0, "open");
    req_spec r = {8, 9, 10, {"a_mlp"}, {1}, 1, NULL};
    int32_t want[16], p[64];
    alone(e, &r, want, 0);
    int64_t id[4];
    for (int i = 0; i < 4; i++) {
        lorajit_sched_request q = make_req(&r, p);
        q.on_token = release_kv;
        CHECK(lorajit_sched_submit(s, &q, &id[i]) == 0, "submit");
    }
    int done = 0, ok = 0, busy = 1;
    while (busy) {
        CHECK(lorajit_sched_step(s, &busy) == 0, "step: %s", lorajit_sched_errmsg(s));
        for (int i = 0; i < 4; i++) {
            lorajit_sched_result res;
            if (lorajit_sched_take(s, id[i], &res)) continue;
            kv.held -= res.n_prompt + 10 - 1; /* its positions are free again */
            ok += same_ids(&res, want, 10);
            done++;
            lorajit_free(res.tokens), lorajit_free(res.token_ms);
        }
    }
    CHECK(done == 4 && ok == 4 && kv.max_held == 34, "admit hook: %d done, %d equal, %d positions held at most (want "
          "34: two requests of 17 at a time)", done, ok, kv.max_held);
    printf("  admit hook (40 positions): 4 requests of 17 ran 2 at a time, all == alone\n");
    lorajit_sched_free(s);
}

/* ---- (c) many adapters through 4 slots, and a corrupt one ---- */
static char root[1024];
static int32_t ref[N_AD][8];
enum { E_PROMPT = 6, E_NEW = 5, E_REQS = 80 };

static void ad_dir(int i, char *out, size_t cap) { snprintf(out, cap, "%s/g%02d", root, i); }
static void ad_name(int i, char *out, size_t cap) { snprintf(out, cap, "g%02d", i); }

static void make_adapters(const char *build) {
    static const char *const targets[4] = {"q_proj,v_proj", "q_proj,k_proj,v_proj,o_proj", "gate_proj,up_proj,down_proj",
                                           "q_proj,down_proj"};
    char cmd[4096], dir[1100];
    snprintf(root, sizeof root, "%s/sched_adapters", build);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", root, root);
    CHECK(system(cmd) == 0, "%s", cmd);
    for (int i = 0; i < N_AD; i++) {
        ad_dir(i, dir, sizeof dir);
        snprintf(cmd, sizeof cmd, "'%s/lorajit_gen' adapter '%s' --model %s --r %d --alpha %d --targets %s --seed %d "
                 ">/dev/null", build, dir, MODEL, 2 + 2 * (i % 4), 4 + i, targets[i % 4], 300 + i);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    /* broken: g00's config with its safetensors cut short */
    snprintf(cmd, sizeof cmd, "cp -r '%s/g00' '%s/broken' && truncate -s 100 '%s/broken/adapter_model.safetensors'", root,
             root, root);
    CHECK(system(cmd) == 0, "%s", cmd);
    /* the reference of adapter i: lorajit_generate with only it loaded, explicitly */
    lorajit_engine *e = open_engine(1, 1);
    for (int i = 0; e && i < N_AD; i++) {
        int32_t prompt[E_PROMPT];
        fill(prompt, E_PROMPT, i);
        ad_dir(i, dir, sizeof dir);
        lorajit_request r = {.prompt = prompt, .n_prompt = E_PROMPT, .adapter = "x", .max_new = E_NEW, .out = ref[i]};
        CHECK(lorajit_load_adapter(e, "x", dir) == 0 && lorajit_generate(e, &r, 1, NULL, NULL, NULL) == 0 &&
                  r.n_out == E_NEW && lorajit_delete_adapter(e, "x") == 0, "reference %d: %s", i, lorajit_errmsg(e));
    }
    lorajit_engine_free(e);
}

static lorajit_engine *open_registered(void) {
    lorajit_engine *e = open_engine(4, 4);
    char dir[1100], name[16];
    for (int i = 0; e && i < N_AD; i++) {
        ad_dir(i, dir, sizeof dir), ad_name(i, name, sizeof name);
        CHECK(lorajit_register_adapter(e, name, dir) == 0, "register %s: %s", name, lorajit_errmsg(e));
    }
    snprintf(dir, sizeof dir, "%s/broken", root);
    CHECK(e && lorajit_register_adapter(e, "broken", dir) == 0, "register broken");
    return e;
}

static void test_many_adapters(void) {
    lorajit_engine *e = open_registered();
    if (!e) return;
    lorajit_sched *s;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0, "open");
    int64_t id[E_REQS];
    int pick[E_REQS];
    char names[E_REQS][16];
    uint64_t rng = 777;
    for (int k = 0; k < E_REQS; k++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int u = (int)(rng >> 33) % 100;
        pick[k] = k == 10 || k == 50 ? -1 : u < 40 ? u % 3 : u % N_AD; /* three hot, the rest cold, two broken */
        if (pick[k] < 0) snprintf(names[k], sizeof names[k], "broken");
        else ad_name(pick[k], names[k], sizeof names[k]);
        int32_t prompt[E_PROMPT];
        fill(prompt, E_PROMPT, pick[k] < 0 ? 0 : pick[k]);
        const char *ad[1] = {names[k]};
        lorajit_sched_request q = {.prompt = prompt, .n_prompt = E_PROMPT, .adapters = ad, .n_adapters = 1,
                                   .max_new = E_NEW};
        CHECK(lorajit_sched_submit(s, &q, &id[k]) == 0, "submit %d: %s", k, lorajit_sched_errmsg(s));
    }
    CHECK(lorajit_sched_run_until_idle(s) == 0, "run: %s", lorajit_sched_errmsg(s));
    int ok = 0, errors = 0;
    for (int k = 0; k < E_REQS; k++) {
        lorajit_sched_result r;
        if (lorajit_sched_take(s, id[k], &r) != 0) {
            CHECK(0, "take %d: %s", k, lorajit_sched_errmsg(s));
            continue;
        }
        if (pick[k] < 0) {
            errors += r.finish == LORAJIT_FINISH_ERROR && strstr(r.error, "broken") && r.n_tokens == 0;
            if (k == 10) printf("  the corrupt adapter's request: %s: %s\n", lorajit_finish_str(r.finish), r.error);
        } else {
            bool same = r.finish == LORAJIT_FINISH_LENGTH && same_ids(&r, ref[pick[k]], E_NEW);
            CHECK(same, "request %d (%s) differs from a fresh engine's run (%s %s)", k, names[k],
                  lorajit_finish_str(r.finish), r.error);
            ok += same;
        }
        lorajit_free(r.tokens), lorajit_free(r.token_ms);
    }
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    CHECK(errors == 2, "the corrupt adapter's two requests: %d finished with an error naming it", errors);
    CHECK(st.jit_loads > N_AD / 2 && st.evictions > 0 && st.compiles == 1 && st.adapters <= 4,
          "stats: jit_loads %lld evictions %lld compiles %lld resident %lld", (long long)st.jit_loads,
          (long long)st.evictions, (long long)st.compiles, (long long)st.adapters);
    printf("  %d adapters registered, 4 slots: %d of %d requests == a fresh engine's run; %lld just-in-time loads, "
           "%lld evictions, %lld host hits\n", N_AD, ok, E_REQS - 2, (long long)st.jit_loads, (long long)st.evictions,
           (long long)st.host_hits);
    lorajit_sched_free(s);
    lorajit_engine_free(e);
}

/* ---- (d) threads ---- */
enum { T_THREADS = 3, T_REQS = 16 };
typedef struct submitter {
    lorajit_sched *s;
    int t;
    int64_t id[T_REQS];
    int pick[T_REQS];
    bool cancelled[T_REQS];
    int failed;          /* submits that failed (CHECK is not thread-safe: counted here) */
    char why[512];
} submitter;
static atomic_int submitters_left;

static void *submit_thread(void *p) {
    submitter *a = p;
    uint64_t rng = 99 + (uint64_t)a->t;
    for (int k = 0; k < T_REQS; k++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        a->pick[k] = (int)(rng >> 33) % 6;
        char name[16];
        ad_name(a->pick[k], name, sizeof name);
        int32_t prompt[E_PROMPT];
        fill(prompt, E_PROMPT, a->pick[k]);
        const char *ad[1] = {name};
        lorajit_sched_request q = {.prompt = prompt, .n_prompt = E_PROMPT, .adapters = ad, .n_adapters = 1,
                                   .max_new = E_NEW};
        if (lorajit_sched_submit(a->s, &q, &a->id[k]) != LORAJIT_OK)
            a->failed++, snprintf(a->why, sizeof a->why, "%s", lorajit_sched_errmsg(a->s));
        if (k % 3 == 2) /* cancel an earlier one: queued, running or finished */
            a->cancelled[k - 1] = lorajit_sched_cancel(a->s, a->id[k - 1]) == LORAJIT_OK;
        if (k % 4 == 0) usleep(200);
    }
    atomic_fetch_sub(&submitters_left, 1);
    return NULL;
}

static int drive_failed;
static char drive_why[512];

static void *drive_thread(void *p) {
    lorajit_sched *s = p;
    for (;;) {
        /* read before the step: once no submitter is left, every submit happened
         * before this step, so its busy count includes them all */
        int submitting = atomic_load(&submitters_left), busy = 0;
        if (lorajit_sched_step(s, &busy) != LORAJIT_OK)
            drive_failed++, snprintf(drive_why, sizeof drive_why, "%s", lorajit_sched_errmsg(s));
        if (!submitting && !busy) break;
        if (!busy) usleep(100);
    }
    return NULL;
}

static void test_threads(void) {
    lorajit_engine *e = open_registered();
    if (!e) return;
    lorajit_sched *s;
    CHECK(lorajit_sched_open(e, NULL, &s) == 0, "open");
    submitter a[T_THREADS];
    pthread_t th[T_THREADS + 1];
    atomic_store(&submitters_left, T_THREADS);
    pthread_create(&th[T_THREADS], NULL, drive_thread, s);
    for (int t = 0; t < T_THREADS; t++) {
        a[t] = (submitter){.s = s, .t = t};
        pthread_create(&th[t], NULL, submit_thread, &a[t]);
    }
    for (int t = 0; t <= T_THREADS; t++) pthread_join(th[t], NULL);
    CHECK(drive_failed == 0, "%d steps failed: %s", drive_failed, drive_why);
    for (int t = 0; t < T_THREADS; t++) CHECK(a[t].failed == 0, "thread %d: %d submits failed: %s", t, a[t].failed, a[t].why);
    int ok = 0, cancelled = 0, prefix = 0;
    for (int t = 0; t < T_THREADS; t++)
        for (int k = 0; k < T_REQS; k++) {
            lorajit_sched_result r;
            if (lorajit_sched_take(s, a[t].id[k], &r) != 0) {
                CHECK(0, "take thread %d request %d: %s", t, k, lorajit_sched_errmsg(s));
                continue;
            }
            const int32_t *want = ref[a[t].pick[k]];
            if (r.finish == LORAJIT_FINISH_CANCELLED) {
                cancelled++;
                prefix += r.n_tokens <= E_NEW && !memcmp(r.tokens, want, sizeof *want * (size_t)r.n_tokens);
            } else {
                ok += r.finish == LORAJIT_FINISH_LENGTH && same_ids(&r, want, E_NEW);
            }
            CHECK(r.finish != LORAJIT_FINISH_CANCELLED || a[t].cancelled[k], "cancelled without a cancel");
            lorajit_free(r.tokens), lorajit_free(r.token_ms);
        }
    CHECK(ok + cancelled == T_THREADS * T_REQS && prefix == cancelled, "threads: %d equal, %d cancelled (%d prefixes)",
          ok, cancelled, prefix);
    printf("  %d threads submitting and cancelling, one driving: %d == reference, %d cancelled (each a prefix of it)\n",
           T_THREADS, ok, cancelled);
    lorajit_sched_free(s);
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: test_sched BUILD_DIR\n"), 2;
    check_enter_tests_dir();
    lorajit_engine *e = open_engine(4, 4);
    if (e) {
        load3(e);
        lorajit_sampling seeded = {.temperature = 0.8f, .top_k = 20, .top_p = 0.95f, .repetition_penalty = 1.1f,
                                   .seed = 7, .eos_id = -1};
        test_mid_decode(e, NULL, "greedy");
        test_mid_decode(e, &seeded, "seeded sampling");
        test_shared_steps(e);
        test_stops(e);
        test_admit_hook(e);
        lorajit_sched_free(NULL);
        lorajit_engine_free(e);
    }
    make_adapters(argv[1]);
    test_many_adapters();
    test_threads();
    return check_summary("test_sched");
}
