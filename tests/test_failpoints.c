/* test_failpoints.c — a failed load or hotswap changes nothing that is served.
 * On one compiled engine (conformance tiny model, 4 slots, max_rank 16) holding three
 * adapters, two of them active with weights, every allocation inside a load and a
 * hotswap is made to fail in turn (lj_alloc_fail_after; cJSON's allocations are routed
 * through the same hook), and a set of bad adapter folders is loaded and hotswapped in
 * (bad JSON, rank over max_rank, wrong shape, truncated or lying safetensors, regex
 * bombs, missing files, DoRA). After each failure the served logits, the logits of each
 * adapter alone, the adapter list and the stats must be byte for byte as before (only
 * failed_calls grows, by one), and the message must name the cause. Usage:
 * test_failpoints BUILD_DIR (uses BUILD_DIR/lorajit_gen); run from tests/. */
#include "serving.h"
#include "walk.h"

#define MAX_LISTED 8

/* What a client can observe: stats, the list, the served logits, each adapter alone. */
typedef struct snap {
    lorajit_stats st;                       /* forwards and failed_calls zeroed */
    int n_listed;
    char listed[MAX_LISTED][64];
    float served[N_PROMPT * TINY_VOCAB];
    float alone[MAX_LISTED][N_PROMPT * TINY_VOCAB];
} snap;

static const int32_t prompt[N_PROMPT] = {175, 196, 25, 246, 67, 211, 151};
static const char *const act_names[2] = {"qv", "all"};
static const float act_w[2] = {1.0f, 0.5f};
static int cjson_alloc_failed; /* the injected failure hit an allocation of cJSON */

static void *cjson_malloc(size_t n) {
    void *p = lj_malloc(n);
    if (!p) cjson_alloc_failed = 1;
    return p;
}

static int64_t failed_calls(lorajit_engine *e) {
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    return st.failed_calls;
}

/* Observes e; restores the active set {qv:1, all:0.5} after the per-adapter forwards. */
static void snap_take(lorajit_engine *e, snap *s) {
    memset(s, 0, sizeof *s);
    lorajit_get_stats(e, &s->st);
    s->st.forwards = s->st.failed_calls = 0;
    const char *listed[MAX_LISTED];
    s->n_listed = lorajit_list_adapters(e, listed, MAX_LISTED);
    for (int i = 0; i < s->n_listed && i < MAX_LISTED; i++) snprintf(s->listed[i], 64, "%s", listed[i]);
    CHECK(lorajit_forward(e, prompt, N_PROMPT, s->served) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    for (int i = 0; i < s->n_listed && i < MAX_LISTED; i++) {
        const char *one = s->listed[i];
        CHECK(lorajit_set_adapter(e, &one, NULL, 1) == LORAJIT_OK, "set %s: %s", one, lorajit_errmsg(e));
        CHECK(lorajit_forward(e, prompt, N_PROMPT, s->alone[i]) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    }
    CHECK(lorajit_set_adapter(e, act_names, act_w, 2) == LORAJIT_OK, "set: %s", lorajit_errmsg(e));
}

static int snap_same(const snap *a, const snap *b) {
    return !memcmp(&a->st, &b->st, sizeof a->st) && a->n_listed == b->n_listed &&
           !memcmp(a->listed, b->listed, sizeof a->listed) && !memcmp(a->served, b->served, sizeof a->served) &&
           !memcmp(a->alone, b->alone, sizeof a->alone);
}

/* verb 0: load name from dir; 1: hotswap name to dir. */
static lorajit_status apply(lorajit_engine *e, int verb, const char *name, const char *dir) {
    return verb ? lorajit_hotswap_adapter(e, name, dir) : lorajit_load_adapter(e, name, dir);
}

/* Checks that the failed call left e as ref and counted one failure. */
static void expect_unchanged(lorajit_engine *e, const snap *ref, int64_t fc_before, const char *what) {
    static snap now;
    CHECK(failed_calls(e) == fc_before + 1, "%s: failed_calls %lld, want %lld", what,
          (long long)failed_calls(e), (long long)fc_before + 1);
    snap_take(e, &now);
    CHECK(snap_same(ref, &now), "%s: the engine changed (stats, list or logits)", what);
}

/* Fails allocation 1, 2, ... of one load / hotswap until the call succeeds, then undoes it. */
static void fail_each_allocation(lorajit_engine *e, int verb, const char *name, const char *dir,
                                 const char *undo_dir) {
    static snap ref_snap;
    const snap *ref = &ref_snap;
    snap_take(e, &ref_snap);
    char what[600];
    int k, failures = 0, in_cjson = 0;
    lorajit_status st = LORAJIT_OK;
    for (k = 1; k < 2000; k++) {
        int64_t fc = failed_calls(e);
        cjson_alloc_failed = 0;
        lj_alloc_fail_after(k);
        st = apply(e, verb, name, dir);
        lj_alloc_fail_after(0);
        if (st == LORAJIT_OK) break;
        failures++;
        in_cjson += cjson_alloc_failed;
        snprintf(what, sizeof what, "%s %s %s, allocation %d", verb ? "hotswap" : "load", name, dir, k);
        /* cJSON reports its own allocation failures as a parse error */
        CHECK(cjson_alloc_failed || (st == LORAJIT_E_NOMEM && strstr(lorajit_errmsg(e), "out of memory")),
              "%s: %s (%s), want E_NOMEM", what, lorajit_status_str(st), lorajit_errmsg(e));
        expect_unchanged(e, ref, fc, what);
    }
    CHECK(st == LORAJIT_OK && failures >= 5, "%s %s: %d allocation failures, then %s", verb ? "hotswap" : "load",
          dir, failures, lorajit_status_str(st));
    printf("test_failpoints: %s %s: %d failing allocations (%d in cJSON), each checked\n",
           verb ? "hotswap" : "load", dir, failures, in_cjson);
    static snap now;
    st = verb ? lorajit_hotswap_adapter(e, name, undo_dir) : lorajit_delete_adapter(e, name);
    CHECK(st == LORAJIT_OK, "undo: %s", lorajit_errmsg(e));
    snap_take(e, &now);
    now.st.loads = ref->st.loads, now.st.hotswaps = ref->st.hotswaps, now.st.deletes = ref->st.deletes;
    CHECK(snap_same(ref, &now), "after undoing the successful %s the engine differs", verb ? "hotswap" : "load");
}

/* ---- bad adapter folders ---- */

typedef struct bad_case {
    const char *name;
    lorajit_status want;
    const char *in_msg;    /* must appear in the message */
} bad_case;

/* Writes root/name with config text cfg (NULL: none) and n bytes of weights (NULL: none). */
static const char *write_bad(const char *root, const char *name, const char *cfg, const char *w, long n) {
    static char dir[16][512];
    static int next;
    char *d = dir[next++ % 16], path[600];
    snprintf(d, 512, "%s/%s", root, name);
    mkdir(d, 0755);
    int ok = 1;
    if (cfg && !join_path(path, sizeof path, d, "adapter_config.json")) ok &= check_write_file(path, cfg, (long)strlen(cfg)) == 0;
    if (w && !join_path(path, sizeof path, d, "adapter_model.safetensors")) ok &= check_write_file(path, w, n) == 0;
    CHECK(ok, "cannot write %s", d);
    return d;
}

/* a_qv's config with field key set to the JSON value (NULL: removed). Caller frees. */
static char *qv_config_with(const char *key, const char *value) {
    char *text = check_read_file(TINY_ADAPTERS "/a_qv/adapter_config.json", NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    if (value) cJSON_AddItemToObject(j, key, cJSON_Parse(value));
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    return out;
}

static void test_bad_files(lorajit_engine *e, const char *root) {
    static snap ref_snap;
    const snap *ref = &ref_snap;
    snap_take(e, &ref_snap);
    long n_st = 0;
    char *st = check_read_file(TINY_ADAPTERS "/a_qv/adapter_model.safetensors", &n_st);
    char *cfg = check_read_file(TINY_ADAPTERS "/a_qv/adapter_config.json", NULL);
    char *rank32 = qv_config_with("r", "32"), *rank2 = qv_config_with("r", "2");
    char *qkv = qv_config_with("target_modules", "[\"q_proj\", \"k_proj\", \"v_proj\"]");
    char *dora = qv_config_with("use_dora", "true");
    char *bomb = qv_config_with("target_modules", "\"model.*((q_pr{99}){99}){99}oj\"");
    char *stacked = qv_config_with("rank_pattern", "{\"q_pr**********************oj\": 2}");
    if (!st || !cfg || !rank32 || !rank2 || !qkv || !dora || !bomb || !stacked || n_st < 64) {
        CHECK(0, "cannot prepare the bad adapters");
        goto done;
    }
    char huge[16];
    memcpy(huge, "\0\0\0\0\0\0\0\x40{}      ", 16);
    struct { bad_case c; const char *dir; } cases[] = {
        {{"bad_json", LORAJIT_E_FORMAT, "adapter_config.json: invalid JSON"},
         write_bad(root, "bad_json", "{\"peft_type\": \"LORA\", \"r\": 4,, }", st, n_st)},
        {{"rank_too_big", LORAJIT_E_UNSUPPORTED, "max_rank 16"}, write_bad(root, "rank_too_big", rank32, st, n_st)},
        {{"wrong_shape", LORAJIT_E_SHAPE, "lora_A.weight' has shape [8, 64], expected [2, 64]"},
         write_bad(root, "wrong_shape", rank2, st, n_st)},
        {{"truncated", LORAJIT_E_FORMAT, "adapter_model.safetensors"}, write_bad(root, "truncated", cfg, st, n_st / 2)},
        {{"header_length", LORAJIT_E_FORMAT, "runs past the end of the file"},
         write_bad(root, "header_length", cfg, huge, 16)},
        {{"missing_tensor", LORAJIT_E_NOT_FOUND, "k_proj.lora_A.weight' is missing"},
         write_bad(root, "missing_tensor", qkv, st, n_st)},
        {{"regex_bomb", LORAJIT_E_UNSUPPORTED, "too complex"}, write_bad(root, "regex_bomb", bomb, st, n_st)},
        {{"regex_stacked", LORAJIT_E_FORMAT, "rank_pattern': regular expression 'q_pr***"},
         write_bad(root, "regex_stacked", stacked, st, n_st)},
        {{"dora", LORAJIT_E_UNSUPPORTED, "use_dora"}, write_bad(root, "dora", dora, st, n_st)},
        {{"no_weights", LORAJIT_E_NOT_FOUND, "adapter_model.safetensors: no such file"},
         write_bad(root, "no_weights", cfg, NULL, 0)},
        {{"no_folder", LORAJIT_E_NOT_FOUND, "no such file"}, "/nonexistent/lorajit/adapter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int verb = 0; verb < 2; verb++) {
            char what[700];
            snprintf(what, sizeof what, "%s of %s", verb ? "hotswap" : "load", cases[i].dir);
            int64_t fc = failed_calls(e);
            lorajit_status got = apply(e, verb, verb ? "qv" : "new", cases[i].dir);
            CHECK(got == cases[i].c.want && strstr(lorajit_errmsg(e), cases[i].c.in_msg),
                  "%s: got %s '%s', want %s naming '%s'", what, lorajit_status_str(got), lorajit_errmsg(e),
                  lorajit_status_str(cases[i].c.want), cases[i].c.in_msg);
            if (strcmp(cases[i].c.name, "no_folder"))
                CHECK(strstr(lorajit_errmsg(e), cases[i].dir) != NULL, "%s: the message does not name the folder: %s",
                      what, lorajit_errmsg(e));
            expect_unchanged(e, ref, fc, what);
        }
    printf("test_failpoints: %zu bad adapter folders, each loaded and hotswapped, checked\n",
           sizeof cases / sizeof cases[0]);
done:
    free(st), free(cfg), free(rank32), free(rank2), free(qkv), free(dora), free(bomb), free(stacked);
}

/* lj_calloc64 (the workers' scratch): 64-byte aligned and zeroed for sizes around a
 * line, NULL on overflow and when the failure hook says so. */
static void test_calloc64(void) {
    static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 4097};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        float *p = lj_calloc64(sizes[i], sizeof(float));
        size_t nonzero = 0;
        for (size_t k = 0; p && k < sizes[i]; k++) nonzero += p[k] != 0.0f;
        CHECK(p && (uintptr_t)p % 64 == 0 && nonzero == 0, "lj_calloc64(%zu floats): %p, %zu nonzero", sizes[i],
              (void *)p, nonzero);
        free(p);
    }
    CHECK(lj_calloc64(SIZE_MAX / 2, 4) == NULL, "lj_calloc64 overflow");
    lj_alloc_fail_after(1);
    void *p = lj_calloc64(16, 4);
    CHECK(p == NULL, "lj_calloc64 under the failure hook");
    free(p);
    lj_alloc_fail_after(0);
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    walk_chdir();
    test_calloc64();
    cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = free};
    cJSON_InitHooks(&hooks);
    char root[512], bf16[600], cmd[2000];
    snprintf(root, sizeof root, "/tmp/lorajit_failpoints_XXXXXX");
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    /* a BF16 adapter with a rank pattern: its load converts into an owned buffer */
    snprintf(bf16, sizeof bf16, "%s/bf16", root);
    snprintf(cmd, sizeof cmd, "'%s/lorajit_gen' adapter '%s' --model %s --r 4 --alpha 8 --targets q_proj,k_proj,down_proj "
             "--dtype bf16 --rank-pattern down_proj=2 --seed 7 > /dev/null", build, bf16, TINY_MODEL);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    lorajit_options opts = {.max_adapters = 4, .max_rank = 16};
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, TINY_MODEL, &opts);
    CHECK(s == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    if (s == LORAJIT_OK) {
        CHECK(lorajit_load_adapter(e, "qv", TINY_ADAPTERS "/a_qv") == LORAJIT_OK, "%s", lorajit_errmsg(e));
        CHECK(lorajit_load_adapter(e, "all", TINY_ADAPTERS "/a_all") == LORAJIT_OK, "%s", lorajit_errmsg(e));
        CHECK(lorajit_load_adapter(e, "mlp", TINY_ADAPTERS "/a_mlp") == LORAJIT_OK, "%s", lorajit_errmsg(e));
        CHECK(lorajit_set_adapter(e, act_names, act_w, 2) == LORAJIT_OK, "%s", lorajit_errmsg(e));
        static snap ref;
        snap_take(e, &ref);
        CHECK(ref.n_listed == 3 && memcmp(ref.served, ref.alone[0], sizeof ref.served), "setup");
        fail_each_allocation(e, 0, "new", TINY_ADAPTERS "/a_mlp", NULL);
        fail_each_allocation(e, 0, "new", bf16, NULL);
        fail_each_allocation(e, 1, "qv", TINY_ADAPTERS "/a_all", TINY_ADAPTERS "/a_qv");
        fail_each_allocation(e, 1, "all", bf16, TINY_ADAPTERS "/a_all");
        test_bad_files(e, root);
        lorajit_stats st;
        lorajit_get_stats(e, &st);
        CHECK(st.compiles == 1, "compiles %lld", (long long)st.compiles);
    }
    lorajit_engine_free(e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "%s", cmd);
    cJSON_InitHooks(NULL);
    return check_summary("test_failpoints");
}
