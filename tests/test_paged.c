/* test_paged.c — the paged KV cache (issue 14).
 * (a) Bit for bit: chunked prefills that cross blocks, batched decode steps (rows in
 *     changing order, a reset sequence refilled from blocks other sequences used),
 *     lorajit_forward and greedy lorajit_generate give with block sizes 1, 4 and 16
 *     exactly the logits and ids of block size 64 = max_seq_len (one block per
 *     sequence: the contiguous [n_layers, seq_len, kv_dim] cache of ABI 5), on LLaMA
 *     (conformance llama-tiny), Mistral (sliding window 8) and Qwen3 (golden models);
 *     and an artifact opened with block size 4 gives the JIT's block-64 bits.
 * (b) A 1 MiB pool of 8 blocks: prefill, decode and generate that need more blocks
 *     than are free fail with LORAJIT_E_FULL naming the sequence and the blocks in
 *     use, and change nothing (positions, free blocks, and the other sequences' next
 *     logits equal, bit for bit, those of an engine that never made the failed
 *     calls); reset gives blocks back and they are reused; generate gives back
 *     the blocks it reserved and did not use; the pool stays within kv_cache_mb.
 * (c) KV memory: 16 sequences of 192 tokens take <= 1.2x the bytes their K and V
 *     need, in a 25 MiB pool where the old [max_batch, max_seq_len] cache needed 32.
 * (d) Bad block sizes and budgets are refused by name (options and schema file).
 * (e) Four threads, one sequence each, compete for the 8 blocks: each round a thread
 *     resets its sequence, prefills 40 tokens (3 blocks) and decodes 2 steps; a call
 *     either succeeds with the single-threaded logits bit for bit or fails with
 *     LORAJIT_E_FULL, and all 8 blocks are free at the end (ThreadSanitizer: no race).
 * Run from tests/ with the build dir as argv[1] (BUILD/lorajit_gen writes the model of
 * (b) and (c); the artifact of (a) goes to BUILD too). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "check.h"
#include "lorajit.h"

#define SEQ 64     /* max_seq_len of (a) */
#define CHUNK 16   /* max_tokens of (a): a 20-token prefill is two compiled calls */
#define N_GEN 10

/* Everything (a) observes of one engine, in order. */
typedef struct trace {
    float *x;      /* logits, appended */
    size_t n, cap;
    int32_t ids[2][N_GEN];
    int n_ids[2];
} trace;

static void put(trace *t, const float *x, size_t n) {
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->x = realloc(t->x, sizeof *t->x * t->cap);
    }
    memcpy(t->x + t->n, x, sizeof *x * n);
    t->n += n;
}

static lorajit_engine *open_kv(const char *model, lorajit_options o) {
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, model, &o);
    CHECK(s == LORAJIT_OK, "open %s (block %d, %d MiB): %s", model, o.kv_block_size, o.kv_cache_mb,
          e ? lorajit_errmsg(e) : lorajit_status_str(s));
    if (s == LORAJIT_OK) return e;
    lorajit_engine_free(e);
    return NULL;
}

static int32_t tok(int i, int vocab) { return (int32_t)((i * 37 + 11) % vocab); }

/* One decode step of rows seqs[0..n) with tokens from step k, logits recorded. */
static void step(lorajit_engine *e, trace *t, const int *seqs, int n, int k, float *buf) {
    int vocab = lorajit_vocab_size(e);
    int32_t toks[4];
    for (int i = 0; i < n; i++) toks[i] = tok(k * 13 + seqs[i] * 7 + 3, vocab);
    CHECK(lorajit_decode(e, seqs, toks, n, buf) == LORAJIT_OK, "decode step %d: %s", k, lorajit_errmsg(e));
    put(t, buf, (size_t)n * vocab);
}

/* The run of (a) on e (3 sequences of SEQ positions). */
static void run_a(lorajit_engine *e, trace *t) {
    int vocab = lorajit_vocab_size(e);
    float *buf = malloc(sizeof(float) * 32 * vocab);
    int32_t p[32];
    for (int i = 0; i < 32; i++) p[i] = tok(i, vocab);
    CHECK(lorajit_seq_prefill(e, 0, p, 20, buf) == LORAJIT_OK, "prefill 0: %s", lorajit_errmsg(e));
    put(t, buf, 20 * (size_t)vocab);
    CHECK(lorajit_seq_prefill(e, 1, p + 3, 13, buf) == LORAJIT_OK, "prefill 1: %s", lorajit_errmsg(e));
    put(t, buf, 13 * (size_t)vocab);
    CHECK(lorajit_seq_prefill(e, 2, p + 5, 5, buf) == LORAJIT_OK, "prefill 2: %s", lorajit_errmsg(e));
    put(t, buf, 5 * (size_t)vocab);
    CHECK(lorajit_seq_prefill(e, 2, p + 9, 2, buf) == LORAJIT_OK, "prefill 2 again: %s", lorajit_errmsg(e));
    put(t, buf, 2 * (size_t)vocab);
    static const int orders[2][3] = {{0, 1, 2}, {2, 0, 1}};
    for (int k = 0; k < 12; k++) step(e, t, orders[k % 2], 3, k, buf);
    CHECK(lorajit_seq_reset(e, 1) == LORAJIT_OK, "reset 1: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_prefill(e, 1, p + 1, 9, buf) == LORAJIT_OK, "prefill 1 after reset: %s", lorajit_errmsg(e));
    put(t, buf, 9 * (size_t)vocab);
    static const int two[2] = {1, 2};
    for (int k = 12; k < 15; k++) step(e, t, two, 2, k, buf);
    CHECK(lorajit_forward(e, p, CHUNK, buf) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    put(t, buf, CHUNK * (size_t)vocab);
    lorajit_request r[2] = {{.prompt = p, .n_prompt = 7, .max_new = N_GEN, .out = t->ids[0]},
                            {.prompt = p + 4, .n_prompt = 17, .max_new = N_GEN, .out = t->ids[1]}};
    CHECK(lorajit_generate(e, r, 2, NULL, NULL, NULL) == LORAJIT_OK, "generate: %s", lorajit_errmsg(e));
    t->n_ids[0] = r[0].n_out;
    t->n_ids[1] = r[1].n_out;
    static const int last[1] = {2}; /* sequence 2 kept its positions through generate */
    step(e, t, last, 1, 15, buf);
    free(buf);
}

static bool same_trace(const trace *a, const trace *b) {
    return a->n == b->n && !memcmp(a->x, b->x, sizeof *a->x * a->n) && a->n_ids[0] == b->n_ids[0] &&
           a->n_ids[1] == b->n_ids[1] && !memcmp(a->ids, b->ids, sizeof a->ids);
}

static void test_bits(const char *build) {
    static const char *const models[3] = {"conformance/models/llama-tiny", "golden/models/mistral",
                                          "golden/models/qwen3"};
    static const int sizes[3] = {1, 4, 16};
    trace ref_tiny = {0};
    for (int m = 0; m < 3; m++) {
        lorajit_options o = {.targets = "none", .max_batch = 3, .max_seq_len = SEQ, .max_tokens = CHUNK,
                             .kv_block_size = SEQ};
        trace ref = {0};
        lorajit_engine *e = open_kv(models[m], o);
        if (!e) continue;
        run_a(e, &ref);
        lorajit_engine_free(e);
        CHECK(ref.n_ids[0] == N_GEN && ref.n_ids[1] == N_GEN, "%s: generate ran", models[m]);
        for (int s = 0; s < 3; s++) {
            trace t = {0};
            o.kv_block_size = sizes[s];
            if (!(e = open_kv(models[m], o))) continue;
            int bs = 0;
            int64_t total = 0;
            CHECK(lorajit_kv_blocks(e, NULL, &total, &bs, NULL) == LORAJIT_OK && bs == sizes[s] &&
                      total == 3 * (SEQ / sizes[s]), "%s: block size %d, %lld blocks", models[m], bs, (long long)total);
            run_a(e, &t);
            lorajit_engine_free(e);
            CHECK(same_trace(&t, &ref), "%s: block size %d differs from one block per sequence (%zu vs %zu floats)",
                  models[m], sizes[s], t.n, ref.n);
            free(t.x);
        }
        if (m == 0) ref_tiny = ref;
        else free(ref.x);
    }
    /* An artifact does not depend on the block size: opened with blocks of 4, the JIT's bits. */
    char art[1024], msg[1024];
    snprintf(art, sizeof art, "%s/paged_artifact", build);
    lorajit_options o = {.targets = "none", .max_batch = 3, .max_seq_len = SEQ, .max_tokens = CHUNK};
    lorajit_status s = lorajit_compile_artifact(models[0], &o, "native", art, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "compile artifact: %s", msg);
    o.kv_block_size = 4;
    lorajit_engine *e = NULL;
    if (s == LORAJIT_OK) s = lorajit_engine_open_artifact(&e, art, models[0], &o);
    CHECK(s == LORAJIT_OK, "open artifact with blocks of 4: %s", e ? lorajit_errmsg(e) : lorajit_status_str(s));
    if (s == LORAJIT_OK) {
        trace t = {0};
        int bs = 0;
        CHECK(lorajit_kv_blocks(e, NULL, NULL, &bs, NULL) == LORAJIT_OK && bs == 4, "artifact block size %d", bs);
        run_a(e, &t);
        CHECK(same_trace(&t, &ref_tiny), "artifact, blocks of 4 != JIT, one block per sequence");
        free(t.x);
    }
    lorajit_engine_free(e);
    free(ref_tiny.x);
}

/* ---- (b) and (c): a model with 8 KiB of K and V per position ---- */
#define BIG_VOCAB 256
#define POS_BYTES (2 * 4 * 256 * 4) /* K and V, 4 layers, kv_dim 256, f32 */
static char big[1024];

static void make_big(const char *build) {
    char cmd[4096];
    snprintf(big, sizeof big, "%s/paged_model", build);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && '%s/lorajit_gen' model '%s' --dim 256 --hidden 512 --layers 4 "
             "--heads 4 --kv-heads 4 --vocab %d --max-pos 256 --seed 7 >/dev/null", big, build, big, BIG_VOCAB);
    CHECK(system(cmd) == 0, "%s", cmd);
}

static int64_t free_blocks(lorajit_engine *e) {
    int64_t f = -1;
    lorajit_kv_blocks(e, &f, NULL, NULL, NULL);
    return f;
}

/* Prefills sequences 0 and 1 with 40 and 39 tokens: 3 + 3 of the 8 blocks. */
static void fill_b(lorajit_engine *e) {
    int32_t p[40];
    for (int i = 0; i < 40; i++) p[i] = tok(i, BIG_VOCAB);
    CHECK(lorajit_seq_prefill(e, 0, p, 40, NULL) == LORAJIT_OK, "prefill 0: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_prefill(e, 1, p + 1, 39, NULL) == LORAJIT_OK, "prefill 1: %s", lorajit_errmsg(e));
}

static void test_full(void) {
    lorajit_options o = {.targets = "none", .max_batch = 4, .max_seq_len = 128, .kv_block_size = 16,
                         .kv_cache_mb = 1};
    lorajit_engine *a = open_kv(big, o), *b = open_kv(big, o);
    if (!a || !b) {
        lorajit_engine_free(a);
        lorajit_engine_free(b);
        return;
    }
    int64_t total = 0;
    int bs = 0;
    size_t bytes = 0;
    CHECK(lorajit_kv_blocks(a, NULL, &total, &bs, &bytes) == LORAJIT_OK && bs == 16 && bytes == 16 * POS_BYTES &&
              total == 8 && total * (int64_t)bytes <= (1 << 20), "1 MiB: %lld blocks of %zu bytes", (long long)total, bytes);
    fill_b(a);
    fill_b(b);
    CHECK(free_blocks(a) == 2, "after two 40-token prefills, 2 of 8 blocks free: %lld", (long long)free_blocks(a));
    int32_t p[100];
    for (int i = 0; i < 100; i++) p[i] = tok(i + 5, BIG_VOCAB);
    /* a prefill that needs 3 blocks with 2 free */
    lorajit_status s = lorajit_seq_prefill(a, 2, p, 40, NULL);
    const char *m = lorajit_errmsg(a);
    CHECK(s == LORAJIT_E_FULL && strstr(m, "sequence 2") && strstr(m, "6 of the pool's 8 blocks are in use"),
          "prefill past the pool: %d %s", s, m);
    CHECK(lorajit_seq_pos(a, 2) == 0 && free_blocks(a) == 2, "nothing changed: pos %d, free %lld",
          lorajit_seq_pos(a, 2), (long long)free_blocks(a));
    for (lorajit_engine *e = a; e; e = e == a ? b : NULL)
        CHECK(lorajit_seq_prefill(e, 2, p, 32, NULL) == LORAJIT_OK, "prefill 2 (32): %s", lorajit_errmsg(e));
    CHECK(free_blocks(a) == 0, "pool used up: %lld free", (long long)free_blocks(a));
    /* a decode step whose row 2 needs a new block (position 32) */
    float la[3 * BIG_VOCAB], lb[3 * BIG_VOCAB];
    static const int rows3[3] = {0, 1, 2}, rows2[2] = {0, 1};
    int32_t t3[3] = {5, 6, 7};
    s = lorajit_decode(a, rows3, t3, 3, la);
    m = lorajit_errmsg(a);
    CHECK(s == LORAJIT_E_FULL && strstr(m, "sequence 2") && strstr(m, "8 of the pool's 8 blocks are in use"),
          "decode past the pool: %d %s", s, m);
    CHECK(lorajit_seq_pos(a, 0) == 40 && lorajit_seq_pos(a, 1) == 39 && lorajit_seq_pos(a, 2) == 32,
          "no row advanced: %d %d %d", lorajit_seq_pos(a, 0), lorajit_seq_pos(a, 1), lorajit_seq_pos(a, 2));
    /* a generate that needs 7 blocks, with 3 (sequence 0's) to be had */
    int32_t out[40];
    lorajit_request r = {.prompt = p, .n_prompt = 60, .max_new = 40, .out = out};
    s = lorajit_generate(a, &r, 1, NULL, NULL, NULL);
    m = lorajit_errmsg(a);
    CHECK(s == LORAJIT_E_FULL && strstr(m, "sequence 0") && strstr(m, "blocks are in use"), "generate past the pool: "
          "%d %s", s, m);
    CHECK(lorajit_seq_pos(a, 0) == 40 && free_blocks(a) == 0, "generate changed nothing: pos %d, free %lld",
          lorajit_seq_pos(a, 0), (long long)free_blocks(a));
    /* the other sequences' next logits: those of b, which never made the failed calls */
    for (int k = 0; k < 2; k++) {
        CHECK(lorajit_decode(a, rows2, t3, 2, la) == LORAJIT_OK && lorajit_decode(b, rows2, t3, 2, lb) == LORAJIT_OK,
              "decode 0, 1: %s / %s", lorajit_errmsg(a), lorajit_errmsg(b));
        CHECK(!memcmp(la, lb, sizeof(float) * 2 * BIG_VOCAB), "step %d after the failed calls differs", k);
    }
    /* reset gives sequence 2's blocks back; sequence 3 takes them */
    CHECK(lorajit_seq_reset(a, 2) == LORAJIT_OK && free_blocks(a) == 2, "reset: %lld free", (long long)free_blocks(a));
    CHECK(lorajit_seq_prefill(a, 3, p, 32, NULL) == LORAJIT_OK && free_blocks(a) == 0, "the freed blocks reused: %s",
          lorajit_errmsg(a));
    CHECK(lorajit_seq_prefill(a, 2, p, 1, NULL) == LORAJIT_E_FULL, "and they are gone again");
    /* generate reserves what it may need and gives back what it did not use */
    for (int q = 1; q < 4; q++) CHECK(lorajit_seq_reset(a, q) == LORAJIT_OK, "reset %d", q);
    CHECK(free_blocks(a) == 5, "sequence 0 holds 3 blocks: %lld free", (long long)free_blocks(a));
    r = (lorajit_request){.prompt = p, .n_prompt = 20, .max_new = 1, .out = out};
    CHECK(lorajit_generate(a, &r, 1, NULL, NULL, NULL) == LORAJIT_OK && r.n_out == 1, "generate 1: %s",
          lorajit_errmsg(a));
    lorajit_sampling stop = {.top_p = 1, .repetition_penalty = 1, .eos_id = out[0]};
    r = (lorajit_request){.prompt = p, .n_prompt = 20, .max_new = 40, .out = out};
    CHECK(lorajit_generate(a, &r, 1, &stop, NULL, NULL) == LORAJIT_OK && r.n_out == 1, "generate to eos: %s",
          lorajit_errmsg(a));
    CHECK(lorajit_seq_pos(a, 0) == 20 && free_blocks(a) == 6, "after eos at once sequence 0 keeps 2 blocks (of the "
          "4 reserved): pos %d, %lld free", lorajit_seq_pos(a, 0), (long long)free_blocks(a));
    lorajit_engine_free(a);
    lorajit_engine_free(b);
}

static void test_memory(void) {
    lorajit_options o = {.targets = "none", .max_batch = 16, .max_seq_len = 256, .kv_block_size = 16,
                         .kv_cache_mb = 25}; /* the old cache: 16 x 256 x 8 KiB = 32 MiB */
    lorajit_engine *e = open_kv(big, o);
    if (!e) return;
    int32_t p[192];
    for (int i = 0; i < 192; i++) p[i] = tok(i, BIG_VOCAB);
    int64_t free0 = 0, total = 0, free1 = 0;
    size_t bytes = 0;
    lorajit_kv_blocks(e, &free0, &total, NULL, &bytes);
    CHECK(total * (int64_t)bytes <= (int64_t)25 << 20, "pool %lld bytes within 25 MiB", (long long)(total * (int64_t)bytes));
    for (int q = 0; q < 16; q++)
        CHECK(lorajit_seq_prefill(e, q, p, 192, NULL) == LORAJIT_OK, "prefill %d: %s", q, lorajit_errmsg(e));
    lorajit_kv_blocks(e, &free1, NULL, NULL, NULL);
    double used = (double)(free0 - free1) * (double)bytes, need = 16.0 * 192 * POS_BYTES;
    printf("KV memory: 16 sequences x 192 tokens: %.2f MiB of blocks for %.2f MiB of K/V (%.3fx); pool %.2f MiB, "
           "old layout %.2f MiB\n", used / (1 << 20), need / (1 << 20), used / need,
           (double)total * (double)bytes / (1 << 20), 16.0 * 256 * POS_BYTES / (1 << 20));
    CHECK(used <= 1.2 * need && used >= need, "blocks in use %.0f bytes for %.0f", used, need);
    lorajit_engine_free(e);
}

/* ---- (e) ---- */
#define E_ROUNDS 12
typedef struct e_arg {
    lorajit_engine *e;
    int seq;
    const float *want; /* [3, BIG_VOCAB]: last prefill row, then the 2 decode steps */
    int ok, full, other;
} e_arg;

/* One round on a->seq: reset, prefill 40, decode 2; logits of each into got[3]. */
static lorajit_status e_round(lorajit_engine *e, int seq, float *got) {
    int32_t p[40], t[1] = {9};
    float *all = malloc(sizeof(float) * 40 * BIG_VOCAB);
    for (int i = 0; i < 40; i++) p[i] = tok(i + 3, BIG_VOCAB);
    lorajit_status s = lorajit_seq_reset(e, seq);
    if (!s) s = lorajit_seq_prefill(e, seq, p, 40, all);
    if (!s) memcpy(got, all + 39 * BIG_VOCAB, sizeof(float) * BIG_VOCAB);
    for (int k = 1; k < 3 && !s; k++) s = lorajit_decode(e, &seq, t, 1, got + k * BIG_VOCAB);
    free(all);
    return s;
}

static void *e_thread(void *p) {
    e_arg *a = p;
    float got[3 * BIG_VOCAB];
    for (int r = 0; r < E_ROUNDS; r++) {
        lorajit_status s = e_round(a->e, a->seq, got);
        if (s == LORAJIT_OK) a->ok += !memcmp(got, a->want, sizeof got), a->other += !!memcmp(got, a->want, sizeof got);
        else if (s == LORAJIT_E_FULL) a->full++;
        else a->other++;
    }
    lorajit_seq_reset(a->e, a->seq);
    return NULL;
}

static void test_threads(void) {
    openblas_set_num_threads(1); /* several calling threads: the header's advice */
    lorajit_options o = {.targets = "none", .max_batch = 4, .max_seq_len = 128, .kv_block_size = 16,
                         .kv_cache_mb = 1};
    lorajit_engine *e = open_kv(big, o);
    if (!e) return;
    float want[3 * BIG_VOCAB];
    CHECK(e_round(e, 0, want) == LORAJIT_OK, "single-threaded round: %s", lorajit_errmsg(e));
    e_arg a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (e_arg){.e = e, .seq = i, .want = want};
        pthread_create(&th[i], NULL, e_thread, &a[i]);
    }
    int ok = 0, full = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(a[i].other == 0, "thread %d: %d calls neither equal to one thread's nor E_FULL", i, a[i].other);
        ok += a[i].ok, full += a[i].full;
    }
    printf("threads: %d rounds with the single-threaded bits, %d refused E_FULL\n", ok, full);
    CHECK(ok + full == 4 * E_ROUNDS && ok > 0, "%d + %d rounds", ok, full);
    int64_t total = 0;
    CHECK(lorajit_kv_blocks(e, NULL, &total, NULL, NULL) == LORAJIT_OK && free_blocks(e) == total && total == 8,
          "all blocks back: %lld of %lld free", (long long)free_blocks(e), (long long)total);
    lorajit_engine_free(e);
}

static void test_refusals(void) {
    static const struct {
        int bs, mb;
        const char *word;
    } bad[3] = {{3, 0, "kv_block_size"}, {16, -1, "kv_cache_mb"}, {65536, 1, "kv_cache_mb"}};
    for (int i = 0; i < 3; i++) {
        lorajit_options o = {.targets = "none", .kv_block_size = bad[i].bs, .kv_cache_mb = bad[i].mb};
        lorajit_engine *e = NULL;
        lorajit_status s = lorajit_engine_open(&e, big, &o);
        CHECK(s == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), bad[i].word), "block %d, %d MiB: %d %s", bad[i].bs,
              bad[i].mb, s, lorajit_errmsg(e));
        lorajit_engine_free(e);
    }
    char path[] = "/tmp/lorajit_paged_schema_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    static const char *const text[2] = {"{\"kv_block_size\": 4, \"kv_cache_mb\": 1}", "{\"kv_block_size\": 12}"};
    for (int i = 0; i < 2; i++) {
        CHECK(check_write_file(path, text[i], (long)strlen(text[i])) == 0, "write %s", path);
        lorajit_options o = {.schema_path = path, .targets = "none"};
        lorajit_engine *e = NULL;
        lorajit_status s = lorajit_engine_open(&e, big, &o);
        int bs = 0;
        int64_t total = 0;
        if (i == 0)
            CHECK(s == LORAJIT_OK && lorajit_kv_blocks(e, NULL, &total, &bs, NULL) == LORAJIT_OK && bs == 4 &&
                      total == (1 << 20) / (4 * POS_BYTES), "schema file: %s, block %d, %lld blocks", lorajit_errmsg(e),
                  bs, (long long)total);
        else
            CHECK(s == LORAJIT_E_FORMAT && strstr(lorajit_errmsg(e), "kv_block_size") &&
                      strstr(lorajit_errmsg(e), "power of two"), "schema block 12: %s", lorajit_errmsg(e));
        lorajit_engine_free(e);
    }
    unlink(path);
    CHECK(lorajit_kv_blocks(NULL, NULL, NULL, NULL, NULL) == LORAJIT_E_ARG, "kv_blocks(NULL)");
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    check_enter_tests_dir();
    test_bits(build);
    make_big(build);
    test_full();
    test_memory();
    test_refusals();
    test_threads();
    return check_summary("paged");
}
