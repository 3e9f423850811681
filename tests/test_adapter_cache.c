/* test_adapter_cache.c — more adapters than slots (issue 14's adapter cache), through
 * the public API on the conformance tiny model:
 *  - 24 random adapters (lorajit_gen: ranks 2..8, different targets, rslora) in an
 *    adapter folder; an engine with 3 slots cycles through them (120 random picks, a
 *    few hot, many cold) with set_adapter + forward, and every output equals, bit for
 *    bit, the same adapter loaded explicitly into a fresh engine; stats show
 *    just-in-time loads, evictions and host-copy hits, never more than 3 resident;
 *  - generate with per-request adapters that are not resident == the reference;
 *    four distinct adapters in one call on 3 slots is E_FULL and changes nothing;
 *  - explicitly loaded adapters are never evicted; register/hotswap/delete of
 *    registered names (a hotswapped evicted adapter reloads its new weights); no
 *    host copies with a budget of 0; bad names and a broken folder are refused
 *    naming them, with the resident set unchanged;
 *  - lorajit_check_adapter reads a folder without a slot (nothing resident changes),
 *    refuses a broken one naming its file, and for a registered name keeps the parsed
 *    copy: the first use is a host-copy hit, not a file read, with the right logits;
 *  - four threads generating with random lazily loaded adapters: every successful
 *    output equals the reference (E_FULL allowed when all slots are pinned).
 * Usage: test_adapter_cache BUILD_DIR (uses BUILD_DIR/lorajit_gen); run from tests/. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"

#define MODEL "conformance/models/llama-tiny"
#define N_AD 24
#define VOCAB 256
#define N_TOK 5
#define N_NEW 6

static const int32_t tokens[N_TOK] = {1, 17, 42, 99, 200};
static char root[1024];
static float ref_logits[N_AD][N_TOK * VOCAB];
static int32_t ref_ids[N_AD][N_NEW];

static void ad_name(int i, char *out, size_t cap) { snprintf(out, cap, "a%02d", i); }
static void ad_dir(int i, char *out, size_t cap) { snprintf(out, cap, "%s/a%02d", root, i); }

static lorajit_engine *open_engine(int slots) {
    lorajit_options o = {.max_adapters = slots, .max_rank = 8, .max_batch = 4};
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, MODEL, &o);
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    return st == LORAJIT_OK ? e : NULL;
}

static void make_adapters(const char *build) {
    static const char *const targets[4] = {"q_proj,v_proj", "q_proj,k_proj,v_proj,o_proj", "gate_proj,up_proj,down_proj",
                                           "q_proj,down_proj"};
    char cmd[4096];
    snprintf(root, sizeof root, "%s/acache", build);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", root, root);
    CHECK(system(cmd) == 0, "%s", cmd);
    for (int i = 0; i < N_AD; i++) {
        char dir[1100];
        ad_dir(i, dir, sizeof dir);
        snprintf(cmd, sizeof cmd, "'%s/lorajit_gen' adapter '%s' --model %s --r %d --alpha %d --targets %s --seed %d %s "
                 ">/dev/null", build, dir, MODEL, 2 + 2 * (i % 4), 4 + i, targets[i % 4], 100 + i,
                 i % 5 == 0 ? "--rslora" : "");
        CHECK(system(cmd) == 0, "%s", cmd);
    }
}

/* The reference of adapter i: loaded explicitly into a fresh 1-slot engine. */
static void make_reference(void) {
    lorajit_engine *e = open_engine(1);
    for (int i = 0; e && i < N_AD; i++) {
        char dir[1100];
        ad_dir(i, dir, sizeof dir);
        const char *name = "x";
        CHECK(lorajit_load_adapter(e, "x", dir) == LORAJIT_OK && lorajit_set_adapter(e, &name, NULL, 1) == LORAJIT_OK &&
                  lorajit_forward(e, tokens, N_TOK, ref_logits[i]) == LORAJIT_OK,
              "reference %d: %s", i, lorajit_errmsg(e));
        lorajit_request r = {.prompt = (int32_t *)tokens, .n_prompt = N_TOK, .adapter = "x", .max_new = N_NEW,
                             .out = ref_ids[i]};
        CHECK(lorajit_generate(e, &r, 1, NULL, NULL, NULL) == LORAJIT_OK && r.n_out == N_NEW, "reference generate %d", i);
        CHECK(lorajit_delete_adapter(e, "x") == LORAJIT_OK, "delete");
    }
    lorajit_engine_free(e);
}

/* set_adapter(name) + forward on e equals the reference of adapter i. */
static bool forward_is(lorajit_engine *e, const char *name, int i) {
    static float got[N_TOK * VOCAB];
    lorajit_status st = lorajit_set_adapter(e, &name, NULL, 1);
    CHECK(st == LORAJIT_OK, "set_adapter %s: %s", name, lorajit_errmsg(e));
    if (st || lorajit_forward(e, tokens, N_TOK, got) != LORAJIT_OK) return false;
    return memcmp(got, ref_logits[i], sizeof got) == 0;
}

static void test_cycle(void) {
    lorajit_engine *e = open_engine(3);
    if (!e) return;
    CHECK(lorajit_set_adapter_dir(e, root) == LORAJIT_OK, "set_adapter_dir: %s", lorajit_errmsg(e));
    uint64_t rng = 12345;
    int bad = 0, max_resident = 0;
    for (int k = 0; k < 120; k++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int u = (int)(rng >> 33) % 100, i = u < 50 ? u % 3 : u % N_AD; /* three hot, the rest cold */
        char name[16];
        ad_name(i, name, sizeof name);
        bad += !forward_is(e, name, i);
        lorajit_stats s;
        lorajit_get_stats(e, &s);
        if (s.adapters > max_resident) max_resident = (int)s.adapters;
    }
    lorajit_stats s;
    lorajit_get_stats(e, &s);
    CHECK(bad == 0, "%d of 120 cache-served forwards differ from a fresh engine's", bad);
    CHECK(max_resident == 3 && s.jit_loads > N_AD && s.evictions > 0 && s.host_hits > 0 && s.compiles == 1,
          "stats: resident max %d, jit_loads %lld, evictions %lld, host_hits %lld, compiles %lld", max_resident,
          (long long)s.jit_loads, (long long)s.evictions, (long long)s.host_hits, (long long)s.compiles);
    printf("cycle: 120 picks over %d adapters in 3 slots: %lld just-in-time loads, %lld evictions, %lld from host "
           "copies\n", N_AD, (long long)s.jit_loads, (long long)s.evictions, (long long)s.host_hits);

    /* no host copies: every load reads the folder */
    CHECK(lorajit_set_adapter_cache(e, 0) == LORAJIT_OK, "cache 0");
    int64_t hits = s.host_hits;
    for (int i = 3; i < 9; i++) {
        char name[16];
        ad_name(i, name, sizeof name);
        CHECK(forward_is(e, name, i), "budget 0: %s", name);
    }
    lorajit_get_stats(e, &s);
    CHECK(s.host_hits == hits, "budget 0 still served %lld host copies", (long long)(s.host_hits - hits));
    lorajit_engine_free(e);
}

static void test_generate(void) {
    lorajit_engine *e = open_engine(3);
    if (!e) return;
    CHECK(lorajit_set_adapter_dir(e, root) == LORAJIT_OK, "set_adapter_dir");
    int32_t out[4][N_NEW];
    const char *names[4] = {"a05", "a11", "a17", "a23"};
    const int idx[4] = {5, 11, 17, 23};
    lorajit_request r[4];
    for (int i = 0; i < 4; i++)
        r[i] = (lorajit_request){.prompt = (int32_t *)tokens, .n_prompt = N_TOK, .adapter = names[i], .max_new = N_NEW,
                                 .out = out[i]};
    lorajit_status st = lorajit_generate(e, r, 3, NULL, NULL, NULL);
    CHECK(st == LORAJIT_OK, "generate with 3 lazy adapters: %s", lorajit_errmsg(e));
    for (int i = 0; i < 3 && !st; i++)
        CHECK(r[i].n_out == N_NEW && memcmp(out[i], ref_ids[idx[i]], sizeof out[i]) == 0, "request %d ids", i);
    /* four distinct adapters in one call: 3 slots cannot hold them */
    const char *before[8];
    int n_before = lorajit_list_adapters(e, before, 8);
    char keep[8][16];
    for (int i = 0; i < n_before; i++) snprintf(keep[i], sizeof keep[i], "%s", before[i]);
    st = lorajit_generate(e, r, 4, NULL, NULL, NULL);
    CHECK(st == LORAJIT_E_FULL && strstr(lorajit_errmsg(e), "slots"), "4 adapters on 3 slots: %d %s", st,
          lorajit_errmsg(e));
    const char *after[8];
    int n_after = lorajit_list_adapters(e, after, 8);
    bool same = n_after == n_before;
    for (int i = 0; same && i < n_after; i++) {
        bool found = false;
        for (int j = 0; j < n_before; j++) found |= strcmp(after[i], keep[j]) == 0;
        same = found;
    }
    CHECK(same, "a refused generate changed the resident set");
    /* the failed call left nothing pinned: three other adapters still fit */
    for (int i = 0; i < 3; i++) r[i].adapter = (const char *[]){"a00", "a01", "a02"}[i];
    CHECK(lorajit_generate(e, r, 3, NULL, NULL, NULL) == LORAJIT_OK, "generate after E_FULL: %s", lorajit_errmsg(e));
    lorajit_engine_free(e);
}

static void test_verbs(void) {
    lorajit_engine *e = open_engine(3);
    if (!e) return;
    char dir[1100], dir2[1100];
    /* explicit loads are never evicted */
    for (int i = 0; i < 3; i++) {
        char name[16];
        ad_name(i, name, sizeof name);
        ad_dir(i, dir, sizeof dir);
        CHECK(lorajit_load_adapter(e, name, dir) == LORAJIT_OK, "load %s", name);
    }
    ad_dir(7, dir, sizeof dir);
    CHECK(lorajit_register_adapter(e, "seven", dir) == LORAJIT_OK, "register: %s", lorajit_errmsg(e));
    const char *seven = "seven";
    CHECK(lorajit_set_adapter(e, &seven, NULL, 1) == LORAJIT_E_FULL && strstr(lorajit_errmsg(e), "seven"),
          "lazy load over 3 explicit: %s", lorajit_errmsg(e));
    CHECK(lorajit_register_adapter(e, "seven", dir) == LORAJIT_E_EXISTS, "register twice");
    CHECK(lorajit_register_adapter(e, "a00", dir) == LORAJIT_E_EXISTS, "register a loaded name");
    CHECK(lorajit_register_adapter(e, "x", "/nonexistent/adapter") == LORAJIT_E_NOT_FOUND &&
              strstr(lorajit_errmsg(e), "/nonexistent/adapter"),
          "register a missing folder: %s", lorajit_errmsg(e));
    CHECK(lorajit_delete_adapter(e, "a02") == LORAJIT_OK, "delete a02");
    CHECK(forward_is(e, "seven", 7), "registered adapter");
    /* hotswap of a resident lazy adapter, evicted, then named again: the new weights */
    ad_dir(8, dir2, sizeof dir2);
    CHECK(lorajit_hotswap_adapter(e, "seven", dir2) == LORAJIT_OK, "hotswap seven: %s", lorajit_errmsg(e));
    CHECK(forward_is(e, "seven", 8), "after hotswap");
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK, "set none");
    ad_dir(9, dir, sizeof dir);
    CHECK(lorajit_register_adapter(e, "nine", dir) == LORAJIT_OK, "register nine");
    CHECK(forward_is(e, "nine", 9), "nine (evicts seven)");
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK, "set none"); /* an active adapter stays */
    CHECK(forward_is(e, "seven", 8), "seven reloaded after its eviction keeps the hotswapped weights");
    /* hotswap of a registered adapter that is not resident */
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK, "set none");
    CHECK(forward_is(e, "nine", 9), "nine again (evicts seven)");
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK, "set none");
    ad_dir(10, dir2, sizeof dir2);
    CHECK(lorajit_hotswap_adapter(e, "seven", dir2) == LORAJIT_OK, "hotswap evicted seven: %s", lorajit_errmsg(e));
    CHECK(forward_is(e, "seven", 10), "evicted seven hotswapped");
    /* delete forgets a registered name */
    CHECK(lorajit_set_adapter(e, NULL, NULL, 0) == LORAJIT_OK && lorajit_delete_adapter(e, "nine") == LORAJIT_OK,
          "delete nine: %s", lorajit_errmsg(e));
    const char *nine = "nine";
    CHECK(lorajit_set_adapter(e, &nine, NULL, 1) == LORAJIT_E_NOT_FOUND, "nine after delete");
    /* names under the adapter folder: one safe component; a broken folder is refused by name */
    CHECK(lorajit_set_adapter_dir(e, "/nonexistent/root") == LORAJIT_E_NOT_FOUND, "missing root");
    CHECK(lorajit_set_adapter_dir(e, root) == LORAJIT_OK, "root");
    const char *dots = "../acache/a03";
    CHECK(lorajit_set_adapter(e, &dots, NULL, 1) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "path component"),
          "../ name: %s", lorajit_errmsg(e));
    char cmd[2300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/broken' && printf '{\"r\": \"x\"}' > '%s/broken/adapter_config.json'", root,
             root);
    CHECK(system(cmd) == 0, "%s", cmd);
    const char *before[8];
    int n_before = lorajit_list_adapters(e, before, 8);
    const char *broken = "broken";
    CHECK(lorajit_set_adapter(e, &broken, NULL, 1) != LORAJIT_OK && strstr(lorajit_errmsg(e), "broken/adapter_config.json"),
          "broken folder: %s", lorajit_errmsg(e));
    CHECK(lorajit_list_adapters(e, before, 8) == n_before, "a failed load changed the resident set");
    lorajit_engine_free(e);
}

/* lorajit_check_adapter: no slot, errors by file, the parsed copy kept for a registered name */
static void test_check(void) {
    lorajit_engine *e = open_engine(3);
    if (!e) return;
    char dir[1100], broken[1100];
    const char *names[8];
    lorajit_stats s0, s1;
    ad_dir(3, dir, sizeof dir);
    CHECK(lorajit_get_stats(e, &s0) == LORAJIT_OK, "stats");
    CHECK(lorajit_check_adapter(e, NULL, dir) == LORAJIT_OK, "check a03: %s", lorajit_errmsg(e));
    CHECK(lorajit_list_adapters(e, names, 8) == 0, "check made an adapter resident");
    CHECK(lorajit_check_adapter(e, NULL, NULL) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "dir is NULL"),
          "NULL dir: %s", lorajit_errmsg(e));
    snprintf(broken, sizeof broken, "%s/broken", root); /* made by test_verbs */
    CHECK(lorajit_check_adapter(e, NULL, broken) != LORAJIT_OK && strstr(lorajit_errmsg(e), "broken/adapter_config.json"),
          "broken folder: %s", lorajit_errmsg(e));
    ad_dir(11, dir, sizeof dir);
    CHECK(lorajit_register_adapter(e, "eleven", dir) == LORAJIT_OK, "register: %s", lorajit_errmsg(e));
    CHECK(lorajit_check_adapter(e, "eleven", dir) == LORAJIT_OK, "check eleven: %s", lorajit_errmsg(e));
    CHECK(lorajit_list_adapters(e, names, 8) == 0, "check of a registered name made it resident");
    CHECK(forward_is(e, "eleven", 11), "eleven after its check");
    CHECK(lorajit_get_stats(e, &s1) == LORAJIT_OK && s1.jit_loads == s0.jit_loads + 1 &&
              s1.host_hits == s0.host_hits + 1 && s1.loads == s0.loads,
          "first use after a check: %lld jit loads, %lld host hits (want 1, 1), %lld loads (want 0)",
          (long long)(s1.jit_loads - s0.jit_loads), (long long)(s1.host_hits - s0.host_hits),
          (long long)(s1.loads - s0.loads));
    lorajit_engine_free(e);
}

/* ---- threads ---- */
typedef struct {
    lorajit_engine *e;
    int id, ok, full, wrong, other;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    uint64_t rng = 777 + (uint64_t)w->id;
    for (int k = 0; k < 25; k++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int i = (int)(rng >> 33) % 12;
        char name[16];
        ad_name(i, name, sizeof name);
        int32_t out[N_NEW];
        lorajit_request r = {.prompt = (int32_t *)tokens, .n_prompt = N_TOK, .adapter = name, .max_new = N_NEW, .out = out};
        lorajit_status st = lorajit_generate(w->e, &r, 1, NULL, NULL, NULL);
        if (st == LORAJIT_OK) {
            w->ok++;
            w->wrong += r.n_out != N_NEW || memcmp(out, ref_ids[i], sizeof out) != 0;
        } else if (st == LORAJIT_E_FULL) {
            w->full++;
        } else {
            w->other++;
            fprintf(stderr, "thread %d: %s\n", w->id, lorajit_errmsg(w->e));
        }
    }
    return NULL;
}

static void test_threads(void) {
    lorajit_engine *e = open_engine(3);
    if (!e) return;
    CHECK(lorajit_set_adapter_dir(e, root) == LORAJIT_OK, "root");
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.e = e, .id = i};
        CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0, "thread");
    }
    int ok = 0, full = 0, wrong = 0, other = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok, full += w[i].full, wrong += w[i].wrong, other += w[i].other;
    }
    lorajit_stats s;
    lorajit_get_stats(e, &s);
    CHECK(wrong == 0 && other == 0 && ok > 50, "threads: %d ok, %d wrong, %d E_FULL, %d other errors", ok, wrong, full,
          other);
    printf("threads: 4 x 25 generates over 12 adapters in 3 slots: %d ok (all equal the reference), %d E_FULL, "
           "%lld just-in-time loads\n", ok, full, (long long)s.jit_loads);
    lorajit_engine_free(e);
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    check_enter_tests_dir();
    make_adapters(build);
    make_reference();
    test_cycle();
    test_generate();
    test_verbs();
    test_check();
    test_threads();
    return check_summary("adapter_cache");
}
