/* test_concurrency.c — swap while serving: every output is that of a state that
 * existed during its call. On one engine (conformance tiny model, 3 slots) expected
 * outputs are computed single-threaded first: forward logits of 7 engine states,
 * prefill/decode logits and greedy generate tokens for every path of what adapter
 * "y" applies per step. Then a writer cycles load/hotswap/set/enable/disable/delete
 * (and calls that must fail) while READERS threads forward, one decodes its own
 * sequence, one generates and one times snapshot acquisition; each output must match
 * a state of its window, history[v0 .. v1 + 1]. Also: OpenBLAS on 4 threads at once.
 * Usage: test_concurrency BUILD_DIR [READERS=3] [SECONDS=3] [BLAS_THREADS=1; 0: as is] */
#include <cblas.h>
#include <pthread.h>
#include <time.h>

#include "engine.h"
#include "walk.h"

#define N_FWD_STATES 7 /* 0 base; 1+c: x alone (content c); 4+c: x:1 + z:0.5 */
#define N_Y 3          /* what "y" applies: 0 a_qv, 1 a_all, 2 nothing (the engine is disabled) */
#define T_DECODE 3     /* decode steps after the prefill */
#define G_NEW 4        /* tokens generate makes */
#define N_PATHS 81     /* N_Y ^ (T_DECODE + 1) = N_Y ^ G_NEW */
#define N_NODES 120    /* N_Y + N_Y^2 + N_Y^3 + N_Y^4 */
#define HIST_CAP (1 << 22)
#define ROW (N_PROMPT * TINY_VOCAB)
#define DEC_SEQ 3      /* the decode reader's sequence; generate takes the lowest free one */

static const char *const x_dir[3] = {TINY_ADAPTERS "/a_qv", TINY_ADAPTERS "/a_all", TINY_ADAPTERS "/a_mlp"};
static const char *const y_dir[2] = {TINY_ADAPTERS "/a_qv", TINY_ADAPTERS "/a_all"};
static const char *const z_dir = TINY_ADAPTERS "/a_mlp";
static const char *const bad_dir = "/nonexistent/lorajit/adapter";
static const int32_t dec_tok[T_DECODE + 1] = {0, 5, 77, 200}; /* [0] unused: step 0 is the prefill */

/* Everything the threads share. */
static struct {
    lorajit_engine *e;
    int32_t prompt[N_PROMPT];
    float fwd[N_FWD_STATES][ROW];       /* expected forward logits per state */
    float node[N_NODES][ROW];           /* decode tree: node(d, path digits 0..d) */
    bool node_set[N_NODES];
    int32_t gen[N_PATHS][G_NEW];        /* greedy tokens per path (digit d: what y applied at step d) */
    _Atomic int32_t *hist;              /* [HIST_CAP] version -> fwd state | what y applies << 8; -1 unset */
    _Atomic int64_t version;            /* last writer call that returned */
    atomic_bool stop;
    _Atomic long forwards, overlapped, dec_steps, gens, writer_ops, writer_fails, reader_fails;
    _Atomic long failed_calls_expected;
    _Atomic int64_t call_max_ns;        /* longest reader call */
} S;

/* check.h's counters are plain ints: threads report only failures, under a lock. */
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
#define TCHECK(cond, ...)                        \
    do {                                         \
        if (!(cond)) {                           \
            pthread_mutex_lock(&check_lock);     \
            CHECK(0, __VA_ARGS__);               \
            pthread_mutex_unlock(&check_lock);   \
        }                                        \
    } while (0)

/* Paths are base-N_Y numbers, digit d = what y applied at step d. */
static int digit(int path, int d) {
    while (d-- > 0) path /= N_Y;
    return path % N_Y;
}
static int ipow(int b, int k) { return k ? b * ipow(b, k - 1) : 1; }
/* Node of step d reached by the first d + 1 digits of a path (prefix < N_Y^(d+1)). */
static int node_idx(int d, int prefix) { return (ipow(N_Y, d + 1) - N_Y) / (N_Y - 1) + prefix; }

static int64_t ns_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void call_took(int64_t t0) {
    int64_t d = ns_now() - t0, old = atomic_load(&S.call_max_ns);
    while (d > old && !atomic_compare_exchange_weak(&S.call_max_ns, &old, d)) {
    }
}

static double secs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool ok(lorajit_status st, const char *what) {
    TCHECK(st == LORAJIT_OK, "%s: %s", what, lorajit_errmsg(S.e));
    return st == LORAJIT_OK;
}

/* The history entries a call running from v0 to v1 may have seen: [v0, v1 + 1]
 * (the writer stores hist[k] before call k and version = k after it returns). */
static int window(int64_t v0, int64_t v1, int32_t *out) {
    int n = 0;
    for (int64_t k = v0; k <= v1 + 1 && k < HIST_CAP; k++) {
        int32_t h = atomic_load(&S.hist[k]);
        if (h >= 0) out[n++] = h;
    }
    return n;
}

/* ---- OpenBLAS from several threads at once: bitwise the same as from one ---- */

#define BLAS_N 512
typedef struct blas_job {
    const float *a, *b, *ref_c, *ref_y, *ref_yt;
    int mismatches;
} blas_job;

static void blas_run(const float *a, const float *b, float *c, float *y, float *yt) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BLAS_N, BLAS_N, BLAS_N, 1.0f, a, BLAS_N, b, BLAS_N,
                0.0f, c, BLAS_N);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, BLAS_N, BLAS_N, 1.0f, a, BLAS_N, b, 1, 0.0f, y, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, BLAS_N, BLAS_N, 1.0f, a, BLAS_N, b, 1, 0.0f, yt, 1);
}

static void *blas_thread(void *p) {
    blas_job *j = p;
    float *c = malloc(sizeof *c * BLAS_N * BLAS_N), y[BLAS_N], yt[BLAS_N];
    for (int it = 0; it < 20 && c; it++) {
        blas_run(j->a, j->b, c, y, yt);
        j->mismatches += memcmp(c, j->ref_c, sizeof *c * BLAS_N * BLAS_N) != 0;
        j->mismatches += memcmp(y, j->ref_y, sizeof y) != 0 || memcmp(yt, j->ref_yt, sizeof yt) != 0;
    }
    free(c);
    return NULL;
}

static void blas_check(void) {
    size_t nn = (size_t)BLAS_N * BLAS_N;
    float *a = malloc(sizeof *a * nn), *b = malloc(sizeof *b * nn), *c = malloc(sizeof *c * nn);
    static float y[BLAS_N], yt[BLAS_N];
    for (size_t i = 0; i < nn; i++) a[i] = (float)((int)(rng_next() % 2001) - 1000) / 997.0f;
    for (size_t i = 0; i < nn; i++) b[i] = (float)((int)(rng_next() % 2001) - 1000) / 991.0f;
    blas_run(a, b, c, y, yt);
    blas_job j[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (blas_job){a, b, c, y, yt, 0};
        pthread_create(&t[i], NULL, blas_thread, &j[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL), bad += j[i].mismatches;
    CHECK(bad == 0, "OpenBLAS: %d of 80 concurrent sgemm/sgemv runs differ from the single-threaded result", bad);
    printf("test_concurrency: OpenBLAS %d x %d sgemm + sgemv (N, T) on 4 threads at once x 20: %s\n", BLAS_N, BLAS_N,
           bad ? "DIFFERENT" : "bit-identical to one thread");
    free(a), free(b), free(c);
}

/* ---- the grace period, step by step ---- */

static void *enable_call(void *done) {
    lorajit_status st = lorajit_enable_adapters(S.e); /* a writer call: publishes a snapshot */
    TCHECK(st == LORAJIT_OK, "enable: %s", lorajit_errmsg(S.e));
    atomic_store((atomic_bool *)done, true);
    return NULL;
}

static bool returns_within(atomic_bool *done, int ms) {
    for (int i = 0; i < ms && !atomic_load(done); i++) {
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
    return atomic_load(done);
}

/* A reader paused inside lj_snapshot_acquire (its steps done here by hand): it read
 * the epoch before publish 1, then counted itself and loaded the pointer before
 * publish 2. Publish 2 must wait for it to take its reference, whichever counter
 * it used, or the snapshot it loaded is freed under it. */
static void grace_check(void) {
    lj_serve *sv = &S.e->serve;
    atomic_bool done1 = false, done2 = false;
    pthread_t w1, w2;
    int p = (int)(atomic_load(&sv->epoch) & 1);            /* reader: reads the epoch */
    pthread_create(&w1, NULL, enable_call, &done1);          /* publish 1 */
    pthread_join(w1, NULL);
    CHECK(atomic_load(&done1), "publish 1 returned");
    atomic_fetch_add(&sv->entering[p], 1);                   /* reader: counts itself (stale parity) */
    lj_snapshot *v = atomic_load(&sv->current);               /* reader: loads the pointer */
    pthread_create(&w2, NULL, enable_call, &done2);          /* publish 2 retires v */
    CHECK(!returns_within(&done2, 100), "publish 2 did not wait for a reader inside acquire");
    atomic_fetch_add(&v->refs, 1);                           /* reader: its reference (v must be alive) */
    atomic_fetch_sub(&sv->entering[p], 1);                   /* reader: done acquiring */
    CHECK(returns_within(&done2, 10000), "publish 2 returns once the reader holds its reference");
    pthread_join(w2, NULL);
    CHECK(atomic_load(&v->refs) == 1 && atomic_load(&sv->current) != v, "v retired, held by the reader alone");
    lj_snapshot_release(sv, v);                              /* frees v: ASan would flag a double free */
    printf("test_concurrency: grace period: a publish waits for a reader paused inside acquire (stale epoch)\n");
}

/* A sequence another call holds is refused, not shared; generate takes free ones. */
static void claims_check(void) {
    lorajit_engine *e = S.e;
    static float out[ROW];
    int32_t gen_out[2];
    int seqs[2] = {0, 1};
    atomic_store(&e->seqs[1].busy, true); /* as if another thread were inside a call on sequence 1 */
    CHECK(lorajit_seq_prefill(e, 1, S.prompt, N_PROMPT, out) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "in use"),
          "prefill of a held sequence: %s", lorajit_errmsg(e));
    CHECK(lorajit_decode(e, seqs, S.prompt, 2, out) == LORAJIT_E_ARG && !atomic_load(&e->seqs[0].busy),
          "decode naming a held sequence fails and releases the others: %s", lorajit_errmsg(e));
    lorajit_request rq[4];
    for (int i = 0; i < 4; i++)
        rq[i] = (lorajit_request){.prompt = S.prompt, .n_prompt = N_PROMPT, .max_new = 2, .out = gen_out};
    CHECK(lorajit_generate(e, rq, 4, NULL, NULL, NULL) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "free"),
          "generate wants 4 free sequences, 3 are: %s", lorajit_errmsg(e));
    CHECK(lorajit_generate(e, rq, 1, NULL, NULL, NULL) == LORAJIT_OK && lorajit_seq_pos(e, 0) == N_PROMPT + 1 &&
          lorajit_seq_pos(e, 1) == 0, "generate of 1 runs in sequence 0: %s", lorajit_errmsg(e));
    atomic_store(&e->seqs[0].busy, true);
    CHECK(lorajit_generate(e, rq, 1, NULL, NULL, NULL) == LORAJIT_OK && lorajit_seq_pos(e, 2) == N_PROMPT + 1,
          "with 0 and 1 held, generate of 1 runs in sequence 2: %s", lorajit_errmsg(e));
    atomic_store(&e->seqs[0].busy, false), atomic_store(&e->seqs[1].busy, false);
    for (int i = 0; i < 4; i++) CHECK(!atomic_load(&e->seqs[i].busy), "sequence %d released", i);
}

/* ---- expected outputs, single-threaded ---- */

static bool precompute(const refs *r) {
    lorajit_engine *e = S.e;
    const char *xz[2] = {"x", "z"};
    const float w_pair[2] = {1.0f, 0.5f};
    if (!ok(lorajit_set_adapter(e, NULL, NULL, 0), "set []") || !ok(lorajit_forward(e, S.prompt, N_PROMPT, S.fwd[0]), "forward"))
        return false;
    if (!ok(lorajit_load_adapter(e, "z", z_dir), "load z")) return false;
    for (int c = 0; c < 3; c++) {
        lorajit_status st = c ? lorajit_hotswap_adapter(e, "x", x_dir[c]) : lorajit_load_adapter(e, "x", x_dir[c]);
        if (!ok(st, "x") || !ok(lorajit_set_adapter(e, xz, NULL, 1), "set [x]") ||
            !ok(lorajit_forward(e, S.prompt, N_PROMPT, S.fwd[1 + c]), "forward") ||
            !ok(lorajit_set_adapter(e, xz, w_pair, 2), "set [x, z]") ||
            !ok(lorajit_forward(e, S.prompt, N_PROMPT, S.fwd[4 + c]), "forward"))
            return false;
    }
    static const char *const conf[4] = {"base", "a_qv", "a_all", "a_mlp"};
    for (int s = 0; s < 4; s++) {
        long worst;
        double q = check_close_ratio(S.fwd[s], ref_for(r, conf[s]), ROW, 2e-4, 2e-4, &worst);
        CHECK(q <= 1.0, "state %d: %.3g x tolerance from the conformance logits of %s", s, q, conf[s]);
    }
    /* the sequence paths: y0 / y1 hold the two contents of "y" */
    if (!ok(lorajit_set_adapter(e, NULL, NULL, 0), "set []") || !ok(lorajit_delete_adapter(e, "z"), "delete z") ||
        !ok(lorajit_load_adapter(e, "y0", y_dir[0]), "load y0") || !ok(lorajit_load_adapter(e, "y1", y_dir[1]), "y1"))
        return false;
    static const char *const yn[N_Y] = {"y0", "y1", NULL};
    static float last[TINY_VOCAB];
    for (int path = 0; path < N_PATHS; path++) {
        if (!ok(lorajit_seq_reset(e, DEC_SEQ), "reset")) return false;
        for (int d = 0; d <= T_DECODE; d++) {
            int y = digit(path, d), idx = node_idx(d, path % ipow(N_Y, d + 1)), seq = DEC_SEQ;
            static float out[ROW];
            memset(out, 0, sizeof out);
            if (!ok(lorajit_seq_set_adapter(e, DEC_SEQ, &yn[y], NULL, yn[y] != NULL), "seq_set_adapter") ||
                !ok(d ? lorajit_decode(e, &seq, &dec_tok[d], 1, out) : lorajit_seq_prefill(e, seq, S.prompt, N_PROMPT, out),
                    "step"))
                return false;
            if (S.node_set[idx]) CHECK(!memcmp(S.node[idx], out, sizeof out), "node %d: not deterministic", idx);
            memcpy(S.node[idx], out, sizeof out);
            S.node_set[idx] = true;
        }
    }
    for (int path = 0; path < N_PATHS; path++) {
        int seq = 0;
        static float out[ROW];
        if (!ok(lorajit_seq_reset(e, seq), "reset")) return false;
        for (int d = 0; d < G_NEW; d++) {
            int y = digit(path, d);
            if (!ok(lorajit_seq_set_adapter(e, seq, &yn[y], NULL, yn[y] != NULL), "seq_set_adapter") ||
                !ok(d ? lorajit_decode(e, &seq, &S.gen[path][d - 1], 1, out)
                      : lorajit_seq_prefill(e, seq, S.prompt, N_PROMPT, out), "step"))
                return false;
            memcpy(last, d ? out : out + (N_PROMPT - 1) * TINY_VOCAB, sizeof last);
            S.gen[path][d] = lj_argmax(last, TINY_VOCAB);
        }
    }
    /* the states must be told apart, or matching one proves nothing */
    for (int a = 0; a < N_FWD_STATES; a++)
        for (int b = a + 1; b < N_FWD_STATES; b++) CHECK(memcmp(S.fwd[a], S.fwd[b], ROW * 4), "states %d, %d equal", a, b);
    for (int a = 0; a < N_Y; a++)
        for (int b = a + 1; b < N_Y; b++) CHECK(memcmp(S.node[a], S.node[b], ROW * 4), "y %d, %d: same prefill", a, b);
    for (int s = 0; s < 4; s++) lorajit_seq_follow_engine(e, s);
    /* the served start: x = a_qv alone, y = a_qv, z = a_mlp */
    return ok(lorajit_delete_adapter(e, "y0"), "delete") && ok(lorajit_delete_adapter(e, "y1"), "delete") &&
           ok(lorajit_hotswap_adapter(e, "x", x_dir[0]), "x") && ok(lorajit_load_adapter(e, "y", y_dir[0]), "y") &&
           ok(lorajit_load_adapter(e, "z", z_dir), "z") && ok(lorajit_set_adapter(e, xz, NULL, 1), "set [x]");
}

/* ---- the writer ---- */

typedef struct wmodel {
    int xc, yc;
    int kind;     /* 0: nothing active, 1: [x], 2: [x, z:0.5] */
    int enabled;
} wmodel;

static int32_t packed(const wmodel *m) {
    int fwd = !m->enabled || m->kind == 0 ? 0 : m->kind == 1 ? 1 + m->xc : 4 + m->xc;
    return fwd | (m->enabled ? m->yc : 2) << 8; /* disabled: no sequence applies y */
}

/* One call of the cycle; the model moves first, the history entry is stored, then
 * the call runs. Returns 0, or -1 when the status was not the expected one. */
static int writer_step(long k, wmodel *m) {
    lorajit_engine *e = S.e;
    const char *xz[2] = {"x", "z"};
    const float w_pair[2] = {1.0f, 0.5f};
    lorajit_status want = LORAJIT_OK, got;
    int op = (int)(k % 15);
    static const int kind_after[15] = {-1, 2, -1, -1, -1, -1, -1, 1, -1, -1, 0, -1, -1, 1, -1};
    if (op == 0 || op == 3) m->xc = (m->xc + 1) % 3;
    if (op == 2 || op == 8) m->yc ^= 1;
    if (op == 4 || op == 6) m->enabled = op == 6;
    if (kind_after[op] >= 0) m->kind = kind_after[op];
    atomic_store(&S.hist[k], packed(m));
    switch (op) {
    case 0: case 3: got = lorajit_hotswap_adapter(e, "x", x_dir[m->xc]); break;
    case 1: got = lorajit_set_adapter(e, xz, w_pair, 2); break;
    case 2: case 8: got = lorajit_hotswap_adapter(e, "y", y_dir[m->yc]); break;
    case 4: got = lorajit_disable_adapters(e); break;
    case 5: want = LORAJIT_E_NOT_FOUND, got = lorajit_hotswap_adapter(e, "x", bad_dir); break;
    case 6: got = lorajit_enable_adapters(e); break;
    case 7: got = lorajit_delete_adapter(e, "z"); break;
    case 9: got = lorajit_load_adapter(e, "z", z_dir); break;
    case 10: got = lorajit_set_adapter(e, NULL, NULL, 0); break;
    case 11: got = lorajit_delete_adapter(e, "x"); break;
    case 12: got = lorajit_load_adapter(e, "x", x_dir[m->xc]); break;
    case 13: got = lorajit_set_adapter(e, xz, NULL, 1); break;
    default: want = LORAJIT_E_FULL, got = lorajit_load_adapter(e, "w", z_dir); break;
    }
    if (got != LORAJIT_OK) {
        atomic_fetch_add(&S.writer_fails, 1);
        atomic_fetch_add(&S.failed_calls_expected, 1);
        const char *needle = want == LORAJIT_E_FULL ? "'w'" : "no such file";
        TCHECK(strstr(lorajit_errmsg(e), needle) != NULL, "writer: its own message, naming %s: '%s'", needle,
              lorajit_errmsg(e));
    }
    TCHECK(got == want, "writer call %ld (op %d): %s (%s), want %s", k, op, lorajit_status_str(got), lorajit_errmsg(e),
          lorajit_status_str(want));
    return got == want ? 0 : -1;
}

static void *writer(void *p) {
    wmodel m = *(wmodel *)p;
    for (long k = 1; !atomic_load(&S.stop) && k < HIST_CAP - 2; k++) {
        if (writer_step(k, &m)) break;
        atomic_store(&S.version, k);
        atomic_fetch_add(&S.writer_ops, 1);
    }
    return NULL;
}

/* ---- the readers ---- */

static void reader_fail(void) {
    atomic_fetch_add(&S.reader_fails, 1);
    atomic_store(&S.stop, true);
}

static void *forward_reader(void *p) {
    static _Thread_local float out[ROW];
    int32_t win[64 * 1024];
    for (long it = 0; !atomic_load(&S.stop); it++) {
        if (it % 64 == 63) { /* errmsg is this thread's, whatever the writer fails with */
            TCHECK(lorajit_forward(S.e, S.prompt, 0, out) == LORAJIT_E_ARG && strstr(lorajit_errmsg(S.e), "forward: n = 0"),
                  "reader: own message: '%s'", lorajit_errmsg(S.e));
            atomic_fetch_add(&S.failed_calls_expected, 1);
        }
        int64_t v0 = atomic_load(&S.version), t0 = ns_now();
        lorajit_status st = lorajit_forward(S.e, S.prompt, N_PROMPT, out);
        call_took(t0);
        int64_t v1 = atomic_load(&S.version);
        if (st != LORAJIT_OK || lorajit_errmsg(S.e)[0]) {
            TCHECK(0, "forward: %s '%s'", lorajit_status_str(st), lorajit_errmsg(S.e));
            reader_fail();
            break;
        }
        int n = window(v0, v1 < v0 + 60000 ? v1 : v0 + 60000, win), hit = -1;
        for (int i = 0; i < n && hit < 0; i++)
            if (!memcmp(out, S.fwd[win[i] & 0xff], sizeof out)) hit = i;
        if (hit < 0) {
            TCHECK(0, "forward between versions %lld and %lld matches none of its %d states", (long long)v0,
                  (long long)v1, n);
            reader_fail();
            break;
        }
        atomic_fetch_add(&S.forwards, 1);
        if (v1 > v0) atomic_fetch_add(&S.overlapped, 1);
    }
    return p;
}

/* What y applied in [v0, v1 + 1], as a bit mask of N_Y bits. */
static int y_allowed(int64_t v0, int64_t v1) {
    static _Thread_local int32_t win[64 * 1024];
    int n = window(v0, v1 < v0 + 60000 ? v1 : v0 + 60000, win), mask = 0;
    for (int i = 0; i < n; i++) mask |= 1 << (win[i] >> 8);
    return mask;
}

static void *decode_reader(void *p) {
    static float out[ROW];
    const char *y = "y";
    int seq = DEC_SEQ;
    if (!ok(lorajit_seq_set_adapter(S.e, seq, &y, NULL, 1), "decode reader: seq_set_adapter")) reader_fail();
    while (!atomic_load(&S.stop)) {
        if (!ok(lorajit_seq_reset(S.e, seq), "reset")) break;
        int prefix = 0;
        for (int d = 0; d <= T_DECODE && !atomic_load(&S.stop); d++) {
            int64_t v0 = atomic_load(&S.version), t0 = ns_now();
            lorajit_status st = d ? lorajit_decode(S.e, &seq, &dec_tok[d], 1, out)
                                  : lorajit_seq_prefill(S.e, seq, S.prompt, N_PROMPT, out);
            call_took(t0);
            int64_t v1 = atomic_load(&S.version);
            size_t len = sizeof(float) * (d ? TINY_VOCAB : ROW);
            int allowed = y_allowed(v0, v1), hit = -1;
            for (int b = 0; b < N_Y && hit < 0 && st == LORAJIT_OK; b++)
                if (allowed >> b & 1 && !memcmp(out, S.node[node_idx(d, prefix + b * ipow(N_Y, d))], len)) hit = b;
            if (hit < 0) {
                TCHECK(0, "decode step %d (%s): matches no y content of versions %lld..%lld (mask %d)", d,
                      lorajit_errmsg(S.e), (long long)v0, (long long)v1, allowed);
                reader_fail();
                return p;
            }
            prefix += hit * ipow(N_Y, d);
            atomic_fetch_add(&S.dec_steps, 1);
        }
    }
    return p;
}

static void *generate_reader(void *p) {
    int32_t out[G_NEW];
    while (!atomic_load(&S.stop)) {
        lorajit_request rq = {.prompt = S.prompt, .n_prompt = N_PROMPT, .adapter = "y", .max_new = G_NEW, .out = out};
        int64_t v0 = atomic_load(&S.version);
        lorajit_status st = lorajit_generate(S.e, &rq, 1, NULL, NULL, NULL);
        int64_t v1 = atomic_load(&S.version);
        int allowed = y_allowed(v0, v1), hit = -1;
        for (int path = 0; path < N_PATHS && hit < 0 && st == LORAJIT_OK && rq.n_out == G_NEW; path++) {
            int uses = 0;
            for (int d = 0; d < G_NEW; d++) uses |= 1 << digit(path, d);
            if ((uses & ~allowed) == 0 && !memcmp(out, S.gen[path], sizeof out)) hit = path;
        }
        if (hit < 0) {
            TCHECK(0, "generate (%s, %d tokens): matches no path of y contents of versions %lld..%lld",
                  lorajit_errmsg(S.e), rq.n_out, (long long)v0, (long long)v1);
            reader_fail();
            break;
        }
        atomic_fetch_add(&S.gens, 1);
    }
    return p;
}

/* Times lj_snapshot_acquire itself (what a swap can cost a reader). */
typedef struct probe {
    int64_t *ns;       /* [cap] acquire times */
    int64_t *empty_ns; /* [cap] the same two clock reads around nothing: preemption alone */
    long n, cap;
} probe;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void *prober(void *p) {
    probe *pr = p;
    struct timespec pause = {0, 20000}, t0, t1;
    while (!atomic_load(&S.stop) && pr->n < pr->cap) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        lj_snapshot *v = lj_snapshot_acquire(&S.e->serve);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        lj_snapshot_release(&S.e->serve, v);
        pr->ns[pr->n] = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        pr->empty_ns[pr->n++] = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int readers = argc > 2 ? atoi(argv[2]) : 3;
    double seconds = argc > 3 ? atof(argv[3]) : 3.0;
    int blas_threads = argc > 4 ? atoi(argv[4]) : 1;
    if (readers < 1) readers = 1;
    if (readers > 64) readers = 64;
    walk_chdir();
    rng_state = 20261201;
    blas_check();
    /* Serving runs many calls at once; OpenBLAS's own pool then only makes callers
       queue and spin for it (measured: a decode step waited up to a second on 2
       cores), so the stress runs it single-threaded unless told otherwise. */
    if (blas_threads > 0) openblas_set_num_threads(blas_threads);
    static refs r;
    CHECK(load_refs(&r) == 0, "cannot read the s7 conformance cases");
    memcpy(S.prompt, r.tokens, sizeof S.prompt);
    lorajit_options opts = {.max_adapters = 3, .max_rank = 16, .max_batch = 4};
    lorajit_status st = lorajit_engine_open(&S.e, TINY_MODEL, &opts);
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(S.e));
    S.hist = malloc(sizeof *S.hist * HIST_CAP);
    probe pr = {.cap = 1 << 20};
    pr.ns = malloc(sizeof *pr.ns * (size_t)pr.cap);
    pr.empty_ns = malloc(sizeof *pr.ns * (size_t)pr.cap);
    if (st != LORAJIT_OK || !S.hist || !pr.ns || !pr.empty_ns) goto done;
    grace_check();
    claims_check();
    if (!precompute(&r)) goto done;
    for (long k = 0; k < HIST_CAP; k++) atomic_init(&S.hist[k], -1);
    wmodel m0 = {.xc = 0, .yc = 0, .kind = 1, .enabled = 1};
    atomic_store(&S.hist[0], packed(&m0));
    lorajit_stats before, after;
    lorajit_get_stats(S.e, &before);
    lj_serve *sv = &S.e->serve; /* its timings from here on are the stress's */
    atomic_store(&sv->reader_wait_max_ns, 0), atomic_store(&sv->writer_wait_max_ns, 0);
    atomic_store(&sv->writer_waits, 0), atomic_store(&sv->grace_max_ns, 0);
    pthread_t tw, tr[64], td, tg, tp;
    double t0 = secs_now();
    pthread_create(&tw, NULL, writer, &m0);
    for (int i = 0; i < readers; i++) pthread_create(&tr[i], NULL, forward_reader, NULL);
    pthread_create(&td, NULL, decode_reader, NULL);
    pthread_create(&tg, NULL, generate_reader, NULL);
    pthread_create(&tp, NULL, prober, &pr);
    while (!atomic_load(&S.stop) && secs_now() - t0 < seconds) {
        struct timespec nap = {0, 10000000};
        nanosleep(&nap, NULL);
    }
    atomic_store(&S.stop, true);
    pthread_join(tw, NULL);
    for (int i = 0; i < readers; i++) pthread_join(tr[i], NULL);
    pthread_join(td, NULL), pthread_join(tg, NULL), pthread_join(tp, NULL);
    double secs = secs_now() - t0;
    lorajit_get_stats(S.e, &after);
    qsort(pr.ns, (size_t)pr.n, sizeof *pr.ns, cmp_i64);
    qsort(pr.empty_ns, (size_t)pr.n, sizeof *pr.ns, cmp_i64);
    long fwd = atomic_load(&S.forwards), ops = atomic_load(&S.writer_ops);
    printf("test_concurrency: OpenBLAS threads %d; longest reader call %.1f us\n", openblas_get_num_threads(),
           atomic_load(&S.call_max_ns) / 1e3);
    printf("test_concurrency: %d forward readers + 1 decode + 1 generate + 1 probe + 1 writer, %.2f s: %ld forwards "
           "checked (%ld overlapped a publish), %ld decode steps, %ld generate calls checked; %ld writer calls (%ld "
           "failed as planned)\n", readers, secs, fwd, atomic_load(&S.overlapped), atomic_load(&S.dec_steps),
           atomic_load(&S.gens), ops, atomic_load(&S.writer_fails));
    if (pr.n > 0)
        printf("test_concurrency: snapshot acquire (%ld probes): median %.2f us, p99 %.2f us, max %.1f us (two clock "
               "reads around nothing, same load: p99 %.2f us, max %.1f us); longest acquire in any call %.1f us; "
               "writer waited for a pinned slot %lld times, longest %.1f us; longest grace period %.1f us\n", pr.n,
               pr.ns[pr.n / 2] / 1e3, pr.ns[pr.n * 99 / 100] / 1e3, pr.ns[pr.n - 1] / 1e3,
               pr.empty_ns[pr.n * 99 / 100] / 1e3, pr.empty_ns[pr.n - 1] / 1e3,
               atomic_load(&sv->reader_wait_max_ns) / 1e3, (long long)atomic_load(&sv->writer_waits),
               atomic_load(&sv->writer_wait_max_ns) / 1e3, atomic_load(&sv->grace_max_ns) / 1e3);
    CHECK(atomic_load(&S.reader_fails) == 0, "a reader saw an output of no state of its window");
    CHECK(fwd > 0 && ops > 15 && atomic_load(&S.dec_steps) > 0 && atomic_load(&S.gens) > 0,
          "every thread made progress (forwards %ld, writer %ld, decode %ld, generate %ld)", fwd, ops,
          atomic_load(&S.dec_steps), atomic_load(&S.gens));
    /* the counters are exact under concurrency */
    long want_loads = 0, want_swaps = 0, want_deletes = 0;
    for (long k = 1; k <= ops; k++) {
        int op = (int)(k % 15);
        want_loads += op == 9 || op == 12;
        want_swaps += op == 0 || op == 2 || op == 3 || op == 8;
        want_deletes += op == 7 || op == 11;
    }
    CHECK(after.compiles == 1 && after.forwards - before.forwards == fwd &&
          after.failed_calls - before.failed_calls == atomic_load(&S.failed_calls_expected) &&
          after.loads - before.loads == want_loads && after.hotswaps - before.hotswaps == want_swaps &&
          after.deletes - before.deletes == want_deletes,
          "stats: compiles %lld, forwards +%lld (want %ld), failed +%lld (want %ld), loads +%lld (%ld), hotswaps "
          "+%lld (%ld), deletes +%lld (%ld)", (long long)after.compiles, (long long)(after.forwards - before.forwards),
          fwd, (long long)(after.failed_calls - before.failed_calls), atomic_load(&S.failed_calls_expected),
          (long long)(after.loads - before.loads), want_loads, (long long)(after.hotswaps - before.hotswaps),
          want_swaps, (long long)(after.deletes - before.deletes), want_deletes);
    CHECK(after.prefill_tokens > before.prefill_tokens && after.decode_tokens > before.decode_tokens, "token counters");
done:
    lorajit_engine_free(S.e);
    free(S.hist);
    free(pr.ns);
    free(pr.empty_ns);
    for (int k = 0; k < 4; k++) free(r.logits[k]);
    return check_summary("test_concurrency");
}
