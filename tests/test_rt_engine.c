/* test_rt_engine.c — engine.c without a compiler: a hand-made layout of the
 * conformance tiny model plus a fake lj_code whose forward records what it sees
 * through lj_ctx (weights, sites, active set, caches, BLAS pointers). Checks start,
 * argument validation, errmsg clearing, the adapter verbs and counters through the
 * public API, list order, print_ir, a failed start, and that release runs once.
 * Recipe: add a check to one of the test_ functions; fake_forward's logits carry
 * what a new check needs to see from the ctx. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "serving.h"

#define MODEL "conformance/models/llama-tiny"
#define CONF "conformance/adapters/llama-tiny/"
static const int64_t mod_in[LJ_MOD_COUNT] = {64, 64, 64, 64, 64, 64, 160};
static const int64_t mod_out[LJ_MOD_COUNT] = {64, 32, 32, 64, 160, 160, 64};

/* Caller owns the result; free with lj_layout_free(). */
static lj_layout *tiny_layout(int n_slots) {
    static const char *const per_layer[] = {
        "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
        "mlp.down_proj"};
    static const int64_t rows[] = {64, 64, 32, 32, 64, 64, 160, 160, 64};
    static const int64_t cols[] = {0, 64, 64, 64, 64, 0, 64, 64, 160};
    lj_layout *L = lj_layout_new();
    L->cfg = (lj_config){.dim = 64, .hidden_dim = 160, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                         .head_size = 16, .vocab_size = 256, .seq_len = 128, .rms_eps = 1e-5f,
                         .rope_theta = 10000.0f};
    L->schema = (lj_schema){.r_max = 16, .target_mask = 0x7f, .n_slots = n_slots, .max_tokens = 64,
                            .seq_len = 128, .max_batch = 2};
    L->weights = calloc(3 + 2 * 9, sizeof *L->weights);
    L->sites = calloc(2 * LJ_MOD_COUNT, sizeof *L->sites);
    char name[128];
    L->weights[L->n_weights++] = (lj_weight_desc){strdup("model.embed_tokens.weight"), 256, 64};
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < 9; i++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, per_layer[i]);
            L->weights[L->n_weights++] = (lj_weight_desc){strdup(name), rows[i], cols[i]};
        }
        for (int m = 0; m < LJ_MOD_COUNT; m++)
            L->sites[L->n_sites++] = (lj_site_desc){l, m, mod_in[m], mod_out[m], NULL};
    }
    CHECK(lj_layout_site_paths(L, NULL) == LORAJIT_OK, "site paths");
    L->weights[L->n_weights++] = (lj_weight_desc){strdup("model.norm.weight"), 64, 0};
    L->weights[L->n_weights++] = (lj_weight_desc){strdup("lm_head.weight"), 256, 64};
    L->scratch_per_token = 1000;
    L->scratch_fixed = 77;
    return L;
}

/* The fake compiled code: owner counts releases, forward reports the ctx. */
typedef struct fake_owner {
    int releases;
    int64_t compiles; /* what the fake code reports as its machine-code generations */
} fake_owner;

static void fake_release(void *owner) { ((fake_owner *)owner)->releases++; }
static int64_t fake_compiles(const void *owner) { return ((const fake_owner *)owner)->compiles; }

/* logits row 0: [0] active n, [1] sum of weights, [2] rank of site 0 in the first
 * active slot, [3] sgemv check, [4] weights[0][0] (embedding), [5] last scratch
 * float and last cache float writable (1). */
static int fake_forward(const lj_ctx *ctx, const int32_t *tokens, int64_t n, int64_t pos0,
                        float *logits) {
    memset(logits, 0, (size_t)n * 256 * sizeof(float));
    logits[0] = (float)ctx->active->n;
    for (int i = 0; i < ctx->active->n; i++) logits[1] += ctx->active->weight[i];
    logits[2] = ctx->active->n ? (float)ctx->sites[0].rank[ctx->active->slot[0]] : -1.0f;
    float a[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, 1, 1}, y[2] = {0, 0};
    ctx->sgemv(101 /* CblasRowMajor */, 111 /* CblasNoTrans */, 2, 3, 1.0f, a, 3, x, 1, 0.0f, y, 1);
    logits[3] = y[0] * 100 + y[1]; /* 6 * 100 + 15 */
    logits[4] = ((const float *)ctx->weights[0])[0];
    ctx->scratch[(1000 * 64 + 77) - 1] = 1.0f;
    /* lorajit_forward's private cache: blocks for max_tokens (64) positions of 2 layers,
     * kv_dim 32, f32 (the paged layout, runtime/serving/kv.c forward_elems) */
    ((float *)ctx->key_cache)[2 * 64 * 32 - 1] = 1.0f;
    ((float *)ctx->value_cache)[2 * 64 * 32 - 1] = 1.0f;
    logits[5] = 1.0f;
    logits[(n - 1) * 256 + 255] = (float)(tokens[n - 1] + pos0);
    return 0;
}

static lj_code fake_code(fake_owner *o) {
    char *ir = malloc(32);
    snprintf(ir, 32, "graph tiny {}\n");
    return (lj_code){.forward = fake_forward, .owner = o, .release = fake_release, .ir_text = ir,
                     .compiles = fake_compiles, .compile_ms = 12.5};
}

static lorajit_engine *started(fake_owner *o, int n_slots) {
    lorajit_engine *e = lj_engine_alloc();
    lorajit_status st = lj_engine_start(e, MODEL, tiny_layout(n_slots), fake_code(o));
    CHECK(st == LORAJIT_OK, "start: %s", lorajit_errmsg(e));
    CHECK(strcmp(lorajit_errmsg(e), "") == 0, "errmsg empty after start");
    return e;
}

static void test_forward(void) {
    fake_owner o = {0};
    lorajit_engine *e = started(&o, 4);
    static float logits[64 * 256];
    int32_t tok[64] = {1, 2, 3, 4};
    CHECK(lorajit_vocab_size(e) == 256 && lorajit_max_tokens(e) == 64, "model facts");
    CHECK(lorajit_forward(e, tok, 4, logits) == LORAJIT_OK, "%s", lorajit_errmsg(e));
    CHECK(logits[0] == 0 && logits[2] == -1 && logits[3] == 615 && logits[5] == 1, "ctx seen by forward");
    CHECK(logits[3 * 256 + 255] == 4.0f, "tokens and pos0 passed");
    /* embedding row 0 read through ctx->weights: compare with a second read of the file */
    CHECK(logits[4] != 0.0f, "weights bound");
    CHECK(lorajit_forward(e, tok, 0, logits) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "n = 0"), "n = 0");
    CHECK(lorajit_forward(e, tok, 65, logits) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "max_tokens"),
          "n > max");
    tok[2] = 256;
    CHECK(lorajit_forward(e, tok, 4, logits) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "position 2"),
          "token range: %s", lorajit_errmsg(e));
    tok[2] = -1;
    CHECK(lorajit_forward(e, tok, 4, logits) == LORAJIT_E_ARG, "negative token");
    CHECK(lorajit_forward(e, NULL, 4, logits) == LORAJIT_E_ARG, "NULL tokens");
    tok[2] = 3;
    CHECK(lorajit_forward(e, tok, 4, logits) == LORAJIT_OK && strcmp(lorajit_errmsg(e), "") == 0,
          "errmsg cleared by a success");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(lorajit_engine_print_ir(e, f) == LORAJIT_OK, "print_ir");
    fclose(f);
    CHECK(buf && strcmp(buf, "graph tiny {}\n") == 0, "print_ir text");
    free(buf);
    CHECK(lorajit_engine_print_ir(e, NULL) == LORAJIT_E_ARG, "print_ir NULL");
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK, "stats");
    CHECK(st.compiles == 0 && st.compile_ms == 12.5 && st.forwards == 2 && st.failed_calls == 5 &&
          st.enabled == 1, "stats: compiles %lld forwards %lld failed %lld", (long long)st.compiles,
          (long long)st.forwards, (long long)st.failed_calls);
    o.compiles = 3; /* read live from the code's owner, not copied at start */
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK && st.compiles == 3, "stats.compiles live: %lld",
          (long long)st.compiles);
    lorajit_engine_free(e);
    CHECK(o.releases == 1, "release called once (%d)", o.releases);
}

static void test_adapters(void) {
    fake_owner o = {0};
    lorajit_engine *e = started(&o, 2);
    static float logits[256];
    int32_t tok[1] = {7};
    const char *names[4];
    CHECK(lorajit_load_adapter(e, "all", CONF "a_all") == LORAJIT_OK, "%s", lorajit_errmsg(e));
    CHECK(lorajit_load_adapter(e, "x", CONF "nope") == LORAJIT_E_NOT_FOUND &&
          strstr(lorajit_errmsg(e), "nope"), "missing dir: %s", lorajit_errmsg(e));
    CHECK(lorajit_load_adapter(e, "qv", CONF "a_qv") == LORAJIT_OK, "%s", lorajit_errmsg(e));
    CHECK(lorajit_load_adapter(e, "mlp", CONF "a_mlp") == LORAJIT_E_FULL &&
          strstr(lorajit_errmsg(e), "mlp"), "full: %s", lorajit_errmsg(e));
    const char *set[] = {"qv", "all"};
    const float w[] = {0.25f, 0.5f};
    CHECK(lorajit_set_adapter(e, set, w, 2) == LORAJIT_OK, "%s", lorajit_errmsg(e));
    CHECK(lorajit_forward(e, tok, 1, logits) == LORAJIT_OK && logits[0] == 2 && logits[1] == 0.75f &&
          logits[2] == 8, "forward sees the set: n %g sum %g rank %g", logits[0], logits[1], logits[2]);
    CHECK(lorajit_disable_adapters(e) == LORAJIT_OK && lorajit_forward(e, tok, 1, logits) == LORAJIT_OK &&
          logits[0] == 0, "disabled");
    CHECK(lorajit_enable_adapters(e) == LORAJIT_OK && lorajit_forward(e, tok, 1, logits) == LORAJIT_OK &&
          logits[0] == 2, "enabled");
    /* hotswap qv with a_mlp: q_proj of layer 0 (site 0) now rank 0 in the new slot */
    CHECK(lorajit_hotswap_adapter(e, "qv", CONF "a_mlp") == LORAJIT_OK, "%s", lorajit_errmsg(e));
    CHECK(lorajit_forward(e, tok, 1, logits) == LORAJIT_OK && logits[0] == 2 && logits[2] == 0, "after hotswap");
    CHECK(lorajit_list_adapters(e, names, 4) == 2 && !strcmp(names[0], "all") && !strcmp(names[1], "qv"),
          "list in load order");
    CHECK(lorajit_list_adapters(e, names, 1) == 2 && !strcmp(names[0], "all"), "list cap");
    CHECK(lorajit_list_adapters(e, NULL, 0) == 2, "list count");
    const char *unknown[] = {"qv", "zzz"};
    CHECK(lorajit_set_adapter(e, unknown, NULL, 2) == LORAJIT_E_NOT_FOUND && strstr(lorajit_errmsg(e), "zzz"),
          "unknown in set");
    CHECK(lorajit_delete_adapter(e, "qv") == LORAJIT_OK, "%s", lorajit_errmsg(e));
    CHECK(lorajit_delete_adapter(e, "qv") == LORAJIT_E_NOT_FOUND, "deleted twice");
    CHECK(lorajit_forward(e, tok, 1, logits) == LORAJIT_OK && logits[0] == 1 && logits[1] == 0.5f &&
          logits[2] == 4, "after delete only 'all' (rank 4) at weight 0.5");
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK, "stats");
    CHECK(st.loads == 2 && st.hotswaps == 1 && st.deletes == 1 && st.failed_calls == 4 &&
          st.adapters == 1 && st.active == 1 && st.enabled == 1,
          "stats loads %lld hotswaps %lld deletes %lld failed %lld adapters %lld active %lld",
          (long long)st.loads, (long long)st.hotswaps, (long long)st.deletes,
          (long long)st.failed_calls, (long long)st.adapters, (long long)st.active);
    lorajit_disable_adapters(e);
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK && st.enabled == 0 && st.active == 0, "disabled stats");
    lorajit_engine_free(e);
    CHECK(o.releases == 1, "release once");
}

static void test_failed_start(void) {
    fake_owner o = {0};
    lorajit_engine *e = lj_engine_alloc();
    CHECK(lj_engine_start(e, "no/such/model", tiny_layout(2), fake_code(&o)) != LORAJIT_OK, "start fails");
    CHECK(strstr(lorajit_errmsg(e), "no/such/model") != NULL, "message names the folder: %s",
          lorajit_errmsg(e));
    CHECK(lorajit_load_adapter(e, "a", CONF "a_qv") == LORAJIT_E_ARG &&
          strstr(lorajit_errmsg(e), "did not start") && strstr(lorajit_errmsg(e), "no/such/model"),
          "verbs refuse: %s", lorajit_errmsg(e));
    int32_t tok = 1;
    float logits[256];
    CHECK(lorajit_forward(e, &tok, 1, logits) == LORAJIT_E_ARG, "forward refuses");
    CHECK(lorajit_enable_adapters(e) == LORAJIT_E_ARG && lorajit_disable_adapters(e) == LORAJIT_E_ARG,
          "enable/disable refuse");
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_E_ARG && lorajit_vocab_size(e) == 0 &&
          lorajit_list_adapters(e, NULL, 0) == 0, "getters refuse");
    lorajit_engine_free(e);
    CHECK(o.releases == 1, "release once after a failed start");
    /* a handle the compiler never started (its own error recorded on it) */
    e = lj_engine_alloc();
    lj_fail(lj_engine_err(e), LORAJIT_E_FORMAT, "config.json: field 'hidden_size' missing");
    CHECK(lorajit_delete_adapter(e, "a") == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "hidden_size"),
          "unstarted: %s", lorajit_errmsg(e));
    lorajit_engine_free(e);
    /* NULL engine: start frees what it was given */
    o.releases = 0;
    CHECK(lj_engine_start(NULL, MODEL, tiny_layout(2), fake_code(&o)) == LORAJIT_E_ARG && o.releases == 1,
          "start(NULL) releases");
    lorajit_engine_free(NULL);
    CHECK(lorajit_load_adapter(NULL, "a", "b") == LORAJIT_E_ARG && lorajit_forward(NULL, &tok, 1, logits) ==
          LORAJIT_E_ARG && strlen(lorajit_errmsg(NULL)) > 0, "NULL engine");
}

int main(int argc, char **argv) {
    test_forward();
    test_adapters();
    test_failed_start();
    return check_summary("test_rt_engine");
}
