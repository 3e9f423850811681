/* test_hostile_config.c — issue 11's hostile model folders: class 2 (work before
 * validation: a config larger than its weight files fails at once, before any code
 * is made, naming the first missing tensor and how many; a wrong shape likewise;
 * every config size bounded, by field), class 7's shard half (the index's
 * weight_map decides which shard a tensor is read from), and the KV cache default
 * (min(max_position_embeddings, 4096); an allocation failure suggests
 * --max-seq-len / --max-batch). Models are the conformance tiny model's tensors
 * under configs and shards written to argv[1]/tmp_hostile_config. */
#define _XOPEN_SOURCE 700 /* nftw, strdup */
#include <time.h>

#include "rt_formats_fixture.h"
#include "compiler.h"

/* ASan: let an impossible calloc return NULL (as glibc does) instead of aborting. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* CPU seconds of the whole process (all threads): what the refused work cost,
 * whatever else the machine runs at the time (wall time is printed too). */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


/* The tiny model's config with these sizes, written to dir/config.json. */
static void write_config(const char *dir, int layers, int inter, long max_pos) {
    char p[2048], text[1024];
    snprintf(text, sizeof text,
             "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
             "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":256,"
             "\"max_position_embeddings\":%ld,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
             "\"hidden_act\":\"silu\",\"tie_word_embeddings\":false}",
             inter, layers, max_pos);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, text);
}

/* Writes path: the tensors of src named by keep (NULL: all of them), F32, those named
 * fill (NULL: none) with every value set to value. */
static void write_shard(const char *path, const st_file *src, const char *keep, const char *fill, float value) {
    char *header = calloc(1, 1 << 16);
    size_t at = 0, data_len = 0;
    at += (size_t)snprintf(header, 1 << 16, "{");
    for (int i = 0; i < src->n_tensors; i++) {
        const st_tensor *t = &src->tensors[i];
        if (keep && strcmp(keep, t->name) != 0) continue;
        size_t n = (size_t)(t->end - t->begin);
        at += (size_t)snprintf(header + at, (1 << 16) - at, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld",
                               at > 1 ? "," : "", t->name, (long long)t->shape[0]);
        for (int k = 1; k < t->ndim; k++)
            at += (size_t)snprintf(header + at, (1 << 16) - at, ",%lld", (long long)t->shape[k]);
        at += (size_t)snprintf(header + at, (1 << 16) - at, "],\"data_offsets\":[%zu,%zu]}", data_len, data_len + n);
        data_len += n;
    }
    at += (size_t)snprintf(header + at, (1 << 16) - at, "}");
    while (at % 8) header[at++] = ' ';
    unsigned char *buf = calloc(1, 8 + at + data_len);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)at >> (8 * i));
    memcpy(buf + 8, header, at);
    size_t off = 8 + at;
    for (int i = 0; i < src->n_tensors; i++) {
        const st_tensor *t = &src->tensors[i];
        if (keep && strcmp(keep, t->name) != 0) continue;
        size_t n = (size_t)(t->end - t->begin);
        if (fill && strcmp(fill, t->name) == 0)
            for (size_t k = 0; k < n / 4; k++) memcpy(buf + off + 4 * k, &value, 4);
        else
            memcpy(buf + off, t->data, n);
        off += n;
    }
    write_bytes(path, buf, off);
    free(buf);
    free(header);
}

/* A folder under tmp_root: name/config.json (tiny, with these sizes) and
 * name/model.safetensors (tiny's tensors). Returns the folder in buf. */
static const char *tiny_folder(char *buf, const st_file *tiny, const char *name, int layers, int inter,
                               long max_pos) {
    char p[2048];
    tpath(buf, name);
    mkdir(buf, 0755);
    write_config(buf, layers, inter, max_pos);
    snprintf(p, sizeof p, "%s/model.safetensors", buf);
    write_shard(p, tiny, NULL, NULL, 0);
    return buf;
}

/* ---- class 2: a config larger than its files fails before any code is made ---- */
static void test_work_before_validation(const st_file *tiny) {
    char dir[2048], out[2048], msg[1024];
    lorajit_engine *e = NULL;
    /* 1024 layers (the bound) of a 2-layer model: the JIT open, an artifact and a
     * compile-only all fail at once naming layer 2 and the count. */
    tiny_folder(dir, tiny, "layers_1024", 1024, 160, 128);
    double t0 = now_s(), w0 = check_wall_s();
    lorajit_status st = lorajit_engine_open(&e, dir, NULL);
    double dt = now_s() - t0;
    printf("1024 layers, 2 in the file: refused after %.3f s CPU, %.3f s wall\n", dt, check_wall_s() - w0);
    const char *m = lorajit_errmsg(e);
    CHECK(st == LORAJIT_E_NOT_FOUND && strstr(m, "\"model.layers.2.") && strstr(m, "model.safetensors") &&
              strstr(m, "9198 of the 9219 tensors"),
          "1024 layers, 2 in the file: %d %s", st, m);
    CHECK(dt < 1.0, "1024 layers refused in %.3f s (want well under a second)", dt);
    lorajit_engine_free(e);
    t0 = now_s();
    st = lorajit_compile_artifact(dir, NULL, NULL, tpath(out, "layers_1024_art"), msg, sizeof msg);
    dt = now_s() - t0;
    CHECK(st == LORAJIT_E_NOT_FOUND && strstr(msg, "\"model.layers.2.") && dt < 1.0,
          "artifact of 1024 layers: %d in %.3f s: %s", st, dt, msg);
    st = lorajit_compile_only(dir, NULL, NULL, msg, sizeof msg);
    CHECK(st == LORAJIT_E_NOT_FOUND && strstr(msg, "\"model.layers.2."), "compile-only: %s", msg);

    /* The 4096 layers: over the bound, refused by field before the front end. */
    write_config(dir, 4096, 160, 128);
    t0 = now_s();
    st = lorajit_engine_open(&e, dir, NULL);
    dt = now_s() - t0;
    m = lorajit_errmsg(e);
    CHECK(st == LORAJIT_E_UNSUPPORTED && strstr(m, "config.json") && strstr(m, "\"num_hidden_layers\"") &&
              strstr(m, "over the limit 1024") && dt < 1.0,
          "4096 layers: %d in %.3f s: %s", st, dt, m);
    lorajit_engine_free(e);

    /* A wrong shape: intermediate_size 128, the file's MLP is 160 wide. */
    tiny_folder(dir, tiny, "shape", 2, 128, 128);
    t0 = now_s();
    st = lorajit_engine_open(&e, dir, NULL);
    dt = now_s() - t0;
    m = lorajit_errmsg(e);
    CHECK(st == LORAJIT_E_SHAPE && strstr(m, "\"model.layers.0.mlp.gate_proj.weight\"") &&
              strstr(m, "expected shape [128, 64], got [160, 64]") && dt < 1.0,
          "wrong shape: %d in %.3f s: %s", st, dt, m);
    lorajit_engine_free(e);
    /* An artifact never opens the weights: it used to be written for a config its
     * files do not fit; now the headers are checked first. */
    st = lorajit_compile_artifact(dir, NULL, NULL, tpath(out, "shape_art"), msg, sizeof msg);
    CHECK(st == LORAJIT_E_SHAPE && strstr(msg, "\"model.layers.0.mlp.gate_proj.weight\""),
          "artifact of a wrong shape: %d %s", st, msg);

    /* A folder with config.json alone still compiles (an artifact made before the weights). */
    tpath(dir, "config_only");
    mkdir(dir, 0755);
    write_config(dir, 2, 160, 128);
    st = lorajit_compile_only(dir, NULL, NULL, msg, sizeof msg);
    CHECK(st == LORAJIT_OK, "config alone compiles: %s", msg);
}

/* ---- class 2: every config size bounded, the field named ---- */
static void test_bounds(void) {
    /* Each field at its bound (accepted) and one over (refused by name); the other
     * sizes chosen so that the config is valid at the bound. */
#define SIZES(h, i, l, n, v, rest) "{\"hidden_size\":" h ",\"intermediate_size\":" i ",\"num_hidden_layers\":" \
                                   l ",\"num_attention_heads\":" n ",\"vocab_size\":" v rest "}"
    static const struct { const char *field, *fmt; long long max; } f[] = {
        {"num_hidden_layers", SIZES("64", "16", "%lld", "4", "16", ""), LJ_CONFIG_MAX_LAYERS},
        {"hidden_size", SIZES("%lld", "16", "1", "64", "16", ""), LJ_CONFIG_MAX_HIDDEN},
        {"intermediate_size", SIZES("64", "%lld", "1", "4", "16", ""), LJ_CONFIG_MAX_INTERMEDIATE},
        {"num_attention_heads", SIZES("64", "16", "1", "%lld", "16", ",\"head_dim\":2"), LJ_CONFIG_MAX_HEADS},
        {"num_key_value_heads", SIZES("64", "16", "1", "1024", "16", ",\"head_dim\":2,\"num_key_value_heads\":%lld"),
         LJ_CONFIG_MAX_HEADS},
        {"head_dim", SIZES("64", "16", "1", "2", "16", ",\"head_dim\":%lld"), LJ_CONFIG_MAX_HEAD_DIM},
        {"vocab_size", SIZES("64", "16", "1", "4", "%lld", ""), LJ_CONFIG_MAX_VOCAB},
        {"max_position_embeddings", SIZES("64", "16", "1", "4", "16", ",\"max_position_embeddings\":%lld"),
         LJ_CONFIG_MAX_POSITIONS},
    };
#undef SIZES
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        for (int over = 0; over < 2; over++) {
            char text[512], key[64], lim[64];
            snprintf(text, sizeof text, f[i].fmt, f[i].max + over);
            snprintf(key, sizeof key, "\"%s\"", f[i].field);
            snprintf(lim, sizeof lim, "over the limit %lld", f[i].max);
            lj_config c;
            lj_err err;
            lj_err_clear(&err);
            lorajit_status s = lj_config_parse(text, strlen(text), "bounds/config.json", &c, &err);
            if (!over)
                CHECK(s == LORAJIT_OK, "%s at its bound %lld is accepted: %s", f[i].field, f[i].max, err.msg);
            else
                expect_err(__LINE__, s, &err, LORAJIT_E_UNSUPPORTED, key, lim);
            CHECK(!over || strstr(err.msg, "bounds/config.json"), "%s: the file named: %s", f[i].field, err.msg);
        }
    }
    /* Derived sizes: head_dim = hidden / heads over its bound, heads x head_dim over hidden's. */
    lj_config c;
    lj_err err;
    const char *derived = "{\"hidden_size\":65536,\"intermediate_size\":16,\"num_hidden_layers\":1,"
                          "\"num_attention_heads\":8,\"vocab_size\":16}";
    expect_err(__LINE__, lj_config_parse(derived, strlen(derived), "d.json", &c, &err), &err,
               LORAJIT_E_UNSUPPORTED, "\"head_dim\"", "over the limit 1024");
    const char *wide = "{\"hidden_size\":64,\"intermediate_size\":16,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":1024,\"head_dim\":128,\"vocab_size\":16}";
    expect_err(__LINE__, lj_config_parse(wide, strlen(wide), "w.json", &c, &err), &err,
               LORAJIT_E_UNSUPPORTED, "\"num_attention_heads\" x \"head_dim\"", "over the limit 65536");
}

/* ---- class 7 (shards): the index decides which shard a tensor is read from ---- */

/* Opens dir, runs tokens 1..4, returns logits [4 * 256] in out; false on failure. */
static bool logits_of(const char *dir, float *out) {
    lorajit_engine *e = NULL;
    const int32_t tok[4] = {1, 2, 3, 4};
    lorajit_options o = {.targets = "none"};
    lorajit_status st = lorajit_engine_open(&e, dir, &o);
    if (!st) st = lorajit_forward(e, tok, 4, out);
    CHECK(st == LORAJIT_OK, "%s: %s", dir, lorajit_errmsg(e));
    lorajit_engine_free(e);
    return st == LORAJIT_OK;
}

/* dir: shard A = every tiny tensor, shard B = only model.norm.weight, all 2.0; the
 * index names norm_shard for model.norm.weight and A for the rest. */
static void sharded_folder(const char *dir, const st_file *tiny, const char *norm_shard) {
    char p[4096], *idx = calloc(1, 1 << 14);
    static const char *A = "model-00001-of-00002.safetensors", *B = "model-00002-of-00002.safetensors";
    mkdir(dir, 0755);
    write_config(dir, 2, 160, 128);
    snprintf(p, sizeof p, "%s/%s", dir, A);
    write_shard(p, tiny, NULL, NULL, 0);
    snprintf(p, sizeof p, "%s/%s", dir, B);
    write_shard(p, tiny, "model.norm.weight", "model.norm.weight", 2.0f);
    size_t at = (size_t)snprintf(idx, 1 << 14, "{\"metadata\":{},\"weight_map\":{");
    for (int i = 0; i < tiny->n_tensors; i++) {
        const char *name = tiny->tensors[i].name;
        at += (size_t)snprintf(idx + at, (1 << 14) - at, "%s\"%s\":\"%s\"", i ? "," : "", name,
                               strcmp(name, "model.norm.weight") == 0 ? norm_shard : A);
    }
    snprintf(idx + at, (1 << 14) - at, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, idx);
    free(idx);
}

static void test_shard_index(const st_file *tiny) {
    static float plain[4 * 256], twos[4 * 256], got[4 * 256];
    char dir[2048], p[4096];
    /* References: the tiny model, and the tiny model with model.norm.weight all 2.0. */
    tiny_folder(dir, tiny, "ref_plain", 2, 160, 128);
    bool ok = logits_of(dir, plain);
    tpath(dir, "ref_twos");
    mkdir(dir, 0755);
    write_config(dir, 2, 160, 128);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_shard(p, tiny, NULL, "model.norm.weight", 2.0f);
    ok = logits_of(dir, twos) && ok;
    CHECK(ok && memcmp(plain, twos, sizeof plain) != 0, "the two references differ");

    /* The index names B (the second file) for model.norm.weight, which A holds too:
     * the first file used to win; the index's copy is served. */
    sharded_folder(tpath(dir, "index_b"), tiny, "model-00002-of-00002.safetensors");
    CHECK(logits_of(dir, got) && memcmp(got, twos, sizeof got) == 0, "index names B: B's norm served");
    /* The index names A while B holds another copy: A's, never B's. */
    sharded_folder(tpath(dir, "index_a"), tiny, "model-00001-of-00002.safetensors");
    CHECK(logits_of(dir, got) && memcmp(got, plain, sizeof got) == 0, "index names A: A's norm served");

    /* Through lj_weights_open too: the bound data is the index's shard's. */
    lj_err err;
    lj_layout *L = lj_layout_new();
    L->weights = calloc(1, sizeof *L->weights);
    L->weights[0] = (lj_weight_desc){strdup("model.norm.weight"), 64, 0, LJ_DTYPE_F32};
    L->n_weights = 1;
    lj_weights *w = NULL;
    CHECK(lj_weights_open(tpath(dir, "index_b"), L, &w, &err) == LORAJIT_OK && w &&
              ((const float *)w->data[0])[0] == 2.0f,
          "lj_weights_open: the index's shard: %s", err.msg);
    lj_weights_free(w);

    /* The index names a shard that does not hold the tensor: refused, naming both. */
    tpath(dir, "index_wrong");
    sharded_folder(dir, tiny, "model-00002-of-00002.safetensors");
    free(L->weights[0].name);
    L->weights[0].name = strdup("model.embed_tokens.weight");
    L->weights[0].rows = 256, L->weights[0].cols = 64;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, "{\"weight_map\":{\"model.embed_tokens.weight\":\"model-00002-of-00002.safetensors\","
                  "\"model.norm.weight\":\"model-00001-of-00002.safetensors\"}}");
    w = (lj_weights *)1;
    expect_err(__LINE__, lj_weights_open(dir, L, &w, &err), &err, LORAJIT_E_NOT_FOUND,
               "\"model.embed_tokens.weight\"", "model-00002-of-00002.safetensors");
    CHECK(w == NULL && strstr(err.msg, "model.safetensors.index.json"), "names the index: %s", err.msg);

    /* A weight_map listing one tensor for two shards (a duplicate key): the JSON layer
     * refuses a key given twice (json.c), naming its path; never read silently from the
     * first-named shard. */
    write_text(p, "{\"weight_map\":{\"model.embed_tokens.weight\":\"model-00002-of-00002.safetensors\","
                  "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\"}}");
    lj_err_clear(&err);
    lorajit_status s = lj_weights_open(dir, L, &w, &err);
    CHECK(s == LORAJIT_E_FORMAT && strstr(err.msg, "\"weight_map.model.embed_tokens.weight\" appears twice") &&
              strstr(err.msg, "model.safetensors.index.json") && !w,
          "a tensor listed for two shards: %d %s", s, err.msg);
    lj_weights_free(s ? NULL : w);
    lj_layout_free(L);
}

/* ---- newcomer: the KV cache defaults to min(max_position_embeddings, 4096) ---- */
static int fake_forward(const lj_ctx *ctx, const int32_t *t, int64_t n, int64_t pos0, float *logits) {
    (void)ctx, (void)t, (void)n, (void)pos0, (void)logits;
    return 0;
}

static void test_kv_default(const st_file *tiny) {
    char dir[2048];
    lj_err err;
    lj_config cfg = {0};
    lj_schema s;
    /* Resolution: short contexts keep theirs, long ones get 4096; asking raises it. */
    static const struct { int64_t pos; lorajit_options o; int64_t seq, tokens; } r[] = {
        {128, {0}, 128, 128},
        {INT64_C(1) << 20, {0}, 4096, 4096},
        {INT64_C(1) << 20, {.max_seq_len = 100000}, 100000, 4096},
        {INT64_C(1) << 20, {.max_tokens = 8192}, 8192, 8192},
        {INT64_C(1) << 20, {.max_seq_len = 1000}, 1000, 1000},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        cfg = (lj_config){.dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_size = 16, .seq_len = r[i].pos};
        CHECK(lj_schema_resolve(&r[i].o, &cfg, &s, &err) == LORAJIT_OK && s.seq_len == r[i].seq &&
                  s.max_tokens == r[i].tokens,
              "case %zu: seq_len %lld max_tokens %lld: %s", i, (long long)s.seq_len, (long long)s.max_tokens, err.msg);
    }

    /* A 1M-token config opens with a 4096-position cache by default. */
    tiny_folder(dir, tiny, "context_1m", 2, 160, 1048576);
    lorajit_engine *e = NULL;
    lorajit_options o = {.targets = "none"};
    CHECK(lorajit_engine_open(&e, dir, &o) == LORAJIT_OK, "1M context: %s", lorajit_errmsg(e));
    CHECK(lorajit_max_tokens(e) == 4096, "max_tokens %d", lorajit_max_tokens(e));
    int32_t *tok = calloc(4097, sizeof *tok);
    CHECK(lorajit_seq_prefill(e, 0, tok, 4097, NULL) == LORAJIT_E_ARG && strstr(lorajit_errmsg(e), "of 4096 positions"),
          "a sequence holds 4096 positions: %s", lorajit_errmsg(e));
    free(tok);
    lorajit_engine_free(e);

    /* The KV cache cannot be had: the message gives the sizes and says what to lower. */
    static const int64_t seqs[2] = {INT64_C(1) << 40, INT64_C(1) << 56}; /* 1 PiB; past size_t */
    for (int i = 0; i < 2; i++) {
        pipeline_ir ir;
        lj_err_clear(&err);
        tiny_folder(dir, tiny, "ref_plain", 2, 160, 128);
        CHECK(pipeline_ir_build(dir, &o, &ir, &err) == LORAJIT_OK, "pipeline: %s", err.msg);
        lj_layout *L = ir.L;
        ir.L = NULL;
        pipeline_ir_free(&ir);
        L->schema.seq_len = seqs[i];
        e = lj_engine_alloc();
        lorajit_status st = lj_engine_start(e, dir, L, (lj_code){.forward = fake_forward});
        const char *m = lorajit_errmsg(e);
        CHECK((i ? st == LORAJIT_E_ARG : st == LORAJIT_E_NOMEM) && strstr(m, "--max-seq-len") &&
                  strstr(m, "--max-batch") && strstr(m, "options.max_seq_len") && (i || strstr(m, "GiB")),
              "KV cache too big (%d): %d %s", i, st, m);
        lorajit_engine_free(e);
    }
}

int main(int argc, char **argv) {
    if (fixture_tmp_setup(argc, argv, "hostile_config") != 0) return 2;
    st_file *tiny = NULL;
    lj_err err;
    if (st_open(TINY "/model.safetensors", &tiny, &err) != LORAJIT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    test_work_before_validation(tiny);
    test_bounds();
    test_shard_index(tiny);
    test_kv_default(tiny);
    st_close(tiny);
    return check_summary("hostile_config");
}
