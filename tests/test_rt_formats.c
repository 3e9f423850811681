/* test_rt_formats.c — runtime/'s config and schema readers and its small helpers on
 * valid and hostile input: err.c (status texts, lj_fail), file.c (path join, whole-
 * file reads), layout.c (site lookup), config.json (tiny model, defaults, bad
 * fields) and the adapter schema (file, options, bad fields; unchanged on failure).
 * safetensors and weights binding: test_rt_safetensors.c. Recipe for a malformed
 * case: write the file under TMP (argv[1]/tmp_rt_formats, rebuilt each run), call
 * the reader, then expect_err(line, status, &err, WANT, "needle", "needle2"): the
 * status must match and the message must name the file / field. */
#define _XOPEN_SOURCE 700 /* nftw, strdup */
#include "rt_formats_fixture.h"

/* ---- err.c, file.c, layout.c ---- */
static void test_helpers(void) {
    const char *seen[LORAJIT_STATUS_COUNT];
    for (int s = 0; s < LORAJIT_STATUS_COUNT; s++) {
        seen[s] = lorajit_status_str((lorajit_status)s);
        CHECK(seen[s] && seen[s][0], "status %d has no text", s);
        for (int t = 0; t < s; t++) CHECK(strcmp(seen[s], seen[t]) != 0, "status %d text repeats", s);
    }
    CHECK(lorajit_status_str((lorajit_status)999) != NULL, "out-of-range status");
    lj_err err;
    lj_err_clear(&err);
    CHECK(lj_fail(NULL, LORAJIT_E_ARG, "x") == LORAJIT_E_ARG, "lj_fail(NULL)");
    lj_fail(&err, LORAJIT_E_IO, "inner %d", 7);
    lj_fail(&err, LORAJIT_E_FORMAT, "outer: %s", err.msg);
    CHECK(err.status == LORAJIT_E_FORMAT && strcmp(err.msg, "outer: inner 7") == 0, "%s", err.msg);
    lj_err_clear(&err);
    lj_err_clear(NULL);
    CHECK(err.status == LORAJIT_OK && err.msg[0] == 0, "clear");

    char out[16];
    CHECK(lj_path_join(out, sizeof out, "a/b", "c", &err) == LORAJIT_OK && !strcmp(out, "a/b/c"), "join");
    CHECK(lj_path_join(out, sizeof out, "a/", "c", &err) == LORAJIT_OK && !strcmp(out, "a/c"), "join /");
    expect_err(__LINE__, lj_path_join(out, sizeof out, "a-long-directory", "file.json", &err), &err,
               LORAJIT_E_ARG, "a-long-directory/file.json", NULL);
    char *data;
    size_t len;
    char p[2048];
    expect_err(__LINE__, lj_read_file(tpath(p, "no-such-file.json"), &data, &len, &err), &err,
               LORAJIT_E_IO, "no-such-file.json", strerror(ENOENT));
    CHECK(data == NULL && len == 0, "read_file output on failure");
    expect_err(__LINE__, lj_read_file(tmp_root, &data, &len, &err), &err, LORAJIT_E_IO, tmp_root,
               "not a regular file");
    write_text(tpath(p, "hello.txt"), "hello");
    CHECK(lj_read_file(p, &data, &len, &err) == LORAJIT_OK && len == 5 && !strcmp(data, "hello"), "read");
    free(data);

    lj_layout *L = lj_layout_new();
    L->n_sites = 3;
    L->sites = calloc(3, sizeof *L->sites);
    L->sites[0] = (lj_site_desc){0, LJ_MOD_Q, 64, 64, NULL};
    L->sites[1] = (lj_site_desc){0, LJ_MOD_V, 64, 32, NULL};
    L->sites[2] = (lj_site_desc){1, LJ_MOD_Q, 64, 64, NULL};
    CHECK(lj_layout_site(L, 1, LJ_MOD_Q) == 2 && lj_layout_site(L, 0, LJ_MOD_V) == 1, "site ids");
    CHECK(lj_layout_site(L, 1, LJ_MOD_V) == -1, "no site");
    lj_layout_free(L);
    lj_layout_free(NULL);
    st_close(NULL);
    lj_weights_free(NULL);
}

/* ---- config.c ---- */
static void test_config(void) {
    lj_err err;
    lj_config c;
    CHECK(lj_config_read(TINY "/config.json", &c, &err) == LORAJIT_OK, "tiny config: %s", err.msg);
    CHECK(c.dim == 64 && c.hidden_dim == 160 && c.n_layers == 2 && c.n_heads == 4 &&
              c.n_kv_heads == 2 && c.head_size == 16 && c.vocab_size == 256 && c.seq_len == 128,
          "tiny sizes");
    CHECK(c.rms_eps == 1e-5f && c.rope_theta == 10000.0f, "tiny eps %g theta %g", c.rms_eps, c.rope_theta);
    CHECK(!c.tie_embeddings && c.bias_mask == 0 && c.arch == 0, "tiny flags");

    const char *min = "{\"hidden_size\":96,\"intermediate_size\":200,\"num_hidden_layers\":3,"
                      "\"num_attention_heads\":6,\"vocab_size\":50,\"head_dim\":null}";
    CHECK(lj_config_parse(min, strlen(min), "min.json", &c, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(c.n_kv_heads == 6 && c.head_size == 16 && c.seq_len == 2048 && c.rms_eps == 1e-6f &&
              c.rope_theta == 10000.0f && !c.tie_embeddings,
          "defaults");

    static const struct {
        int line;
        const char *json;
        lorajit_status want;
        const char *needle;
    } bad[] = {
        {__LINE__, "{\"hidden_size\": 64,", LORAJIT_E_FORMAT, "byte 19"},
        {__LINE__, "{\"model_type\":\"gemma2\"}", LORAJIT_E_UNSUPPORTED, "model_type"},
        {__LINE__, "{\"hidden_size\":64,\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"vocab_size\":8,\"rope_scaling\":{\"type\":\"ntk\",\"factor\":2}}", LORAJIT_E_UNSUPPORTED,
         "\"rope_scaling.type\" is \"ntk\""},
        {__LINE__, "{\"hidden_act\":\"gelu\"}", LORAJIT_E_UNSUPPORTED, "hidden_act"},
        {__LINE__, "{\"intermediate_size\":1}", LORAJIT_E_FORMAT, "\"hidden_size\" is missing"},
        {__LINE__, "{\"hidden_size\":64.5}", LORAJIT_E_FORMAT, "hidden_size"},
        {__LINE__, "{\"hidden_size\":-64}", LORAJIT_E_FORMAT, "hidden_size"},
        {__LINE__, "{\"hidden_size\":\"64\"}", LORAJIT_E_FORMAT, "hidden_size"},
        {__LINE__, "{\"hidden_size\":4194304}", LORAJIT_E_UNSUPPORTED, "hidden_size"},
        {__LINE__, "[1,2]", LORAJIT_E_FORMAT, "not a JSON object"},
        {__LINE__, "{\"hidden_size\":64} x", LORAJIT_E_FORMAT, "byte 19"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lj_err_clear(&err);
        lorajit_status s = lj_config_parse(bad[i].json, strlen(bad[i].json), "bad_config.json", &c, &err);
        expect_err(bad[i].line, s, &err, bad[i].want, "bad_config.json", bad[i].needle);
    }
    /* Field-level checks on otherwise complete configs. */
    static const struct {
        int line;
        const char *extra;
        lorajit_status want;
        const char *needle;
    } bad2[] = {
        {__LINE__, "\"num_key_value_heads\":3", LORAJIT_E_FORMAT, "num_key_value_heads"},
        {__LINE__, "\"vocab_size\":1073741824", LORAJIT_E_UNSUPPORTED, "vocab_size"},
        {__LINE__, "\"num_hidden_layers\":100000", LORAJIT_E_UNSUPPORTED, "num_hidden_layers"},
        {__LINE__, "\"rms_norm_eps\":-1", LORAJIT_E_FORMAT, "rms_norm_eps"},
        {__LINE__, "\"tie_word_embeddings\":\"yes\"", LORAJIT_E_FORMAT, "tie_word_embeddings"},
        {__LINE__, "\"num_attention_heads\":5", LORAJIT_E_FORMAT, "num_attention_heads"},
    };
    for (size_t i = 0; i < sizeof bad2 / sizeof bad2[0]; i++) {
        static const char *const base[] = {"\"hidden_size\":64", "\"intermediate_size\":160",
                                           "\"num_hidden_layers\":2", "\"num_attention_heads\":4",
                                           "\"vocab_size\":256", "\"model_type\":\"llama\""};
        char json[512];
        int k = snprintf(json, sizeof json, "{%s", bad2[i].extra);
        for (size_t b = 0; b < sizeof base / sizeof base[0]; b++) /* each key once: a key twice is refused */
            if (strncmp(bad2[i].extra, base[b], (size_t)(strchr(base[b], ':') - base[b])) != 0)
                k += snprintf(json + k, sizeof json - (size_t)k, ",%s", base[b]);
        snprintf(json + k, sizeof json - (size_t)k, "}");
        lj_err_clear(&err);
        lorajit_status s = lj_config_parse(json, strlen(json), "cfg2.json", &c, &err);
        expect_err(bad2[i].line, s, &err, bad2[i].want, "cfg2.json", bad2[i].needle);
    }
    char p[2048];
    expect_err(__LINE__, lj_config_read(tpath(p, "missing/config.json"), &c, &err), &err, LORAJIT_E_IO,
               "missing/config.json", NULL);
}

/* ---- schema.c ---- */
static void test_schema(void) {
    lj_err err;
    lj_config cfg;
    CHECK(lj_config_read(TINY "/config.json", &cfg, &err) == LORAJIT_OK, "%s", err.msg);
    lj_schema s;
    CHECK(lj_schema_resolve(NULL, &cfg, &s, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(s.r_max == 64 && s.target_mask == 0x7f && s.n_slots == 8 && s.max_tokens == 128, "defaults");

    char p[2048];
    write_text(tpath(p, "schema.json"),
               "{\"max_rank\": 16, \"target_modules\": [\"q_proj\", \"v_proj\"], "
               "\"max_adapters\": 4, \"max_tokens\": 64}");
    lorajit_options o = {.schema_path = p};
    CHECK(lj_schema_resolve(&o, &cfg, &s, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(s.r_max == 16 && s.target_mask == ((1u << LJ_MOD_Q) | (1u << LJ_MOD_V)) && s.n_slots == 4 &&
              s.max_tokens == 64,
          "schema file");
    o.max_rank = 8;
    o.targets = "down_proj, gate_proj";
    o.max_tokens = 100;
    CHECK(lj_schema_resolve(&o, &cfg, &s, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(s.r_max == 8 && s.target_mask == ((1u << LJ_MOD_DOWN) | (1u << LJ_MOD_GATE)) && s.n_slots == 4 &&
              s.max_tokens == 100,
          "opts override");
    const char *al = "{\"target_modules\": \"all-linear\"}";
    s.target_mask = 1;
    CHECK(lj_schema_parse(al, strlen(al), "al.json", lj_arch_get(cfg.arch), &s, &err) == LORAJIT_OK &&
              s.target_mask == 0x7f,
          "all-linear");

    static const struct {
        int line;
        const char *json;
        const char *needle;
    } bad[] = {
        {__LINE__, "{\"target_modules\": [\"q_proj\", \"qq_proj\"]}", "qq_proj"},
        {__LINE__, "{\"max_rank\": 0}", "max_rank"},
        {__LINE__, "{\"max_rank\": \"big\"}", "max_rank"},
        {__LINE__, "{\"max_rank\": 4096}", "max_rank"},
        {__LINE__, "{\"max_ranks\": 8}", "max_ranks"},
        {__LINE__, "{\"max_adapters\": 65}", "max_adapters"},
        {__LINE__, "{\"target_modules\": []}", "target_modules"},
        {__LINE__, "{\"target_modules\": \"everything\"}", "everything"},
        {__LINE__, "{\"max_rank\": 8", "byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lj_schema before = s, t = s;
        lj_err_clear(&err);
        lorajit_status st = lj_schema_parse(bad[i].json, strlen(bad[i].json), "bad_schema.json",
                                            lj_arch_get(cfg.arch), &t, &err);
        expect_err(bad[i].line, st, &err, LORAJIT_E_FORMAT, "bad_schema.json", bad[i].needle);
        CHECK(memcmp(&before, &t, sizeof t) == 0, "line %d: schema changed on failure", bad[i].line);
    }
    lorajit_options o2 = {.targets = "q_proj,foo_proj"};
    expect_err(__LINE__, lj_schema_resolve(&o2, &cfg, &s, &err), &err, LORAJIT_E_ARG, "foo_proj", NULL);
    lorajit_options o3 = {.max_tokens = 129};
    expect_err(__LINE__, lj_schema_resolve(&o3, &cfg, &s, &err), &err, LORAJIT_E_ARG, "max_tokens", NULL);
    lorajit_options o4 = {.max_adapters = 65};
    expect_err(__LINE__, lj_schema_resolve(&o4, &cfg, &s, &err), &err, LORAJIT_E_ARG, "max_adapters", NULL);
    write_text(tpath(p, "schema_big.json"), "{\"max_tokens\": 4096}");
    lorajit_options o5 = {.schema_path = p};
    expect_err(__LINE__, lj_schema_resolve(&o5, &cfg, &s, &err), &err, LORAJIT_E_FORMAT,
               "schema_big.json", "max_tokens");
    write_text(tpath(p, "schema_bad.json"), "{\"max_rank\": 8,,}");
    expect_err(__LINE__, lj_schema_resolve(&o5, &cfg, &s, &err), &err, LORAJIT_E_FORMAT,
               "schema_bad.json", "invalid JSON at byte");
}

int main(int argc, char **argv) {
    if (fixture_tmp_setup(argc, argv, "rt_formats") != 0) return 2;
    test_helpers();
    test_config();
    test_schema();
    CHECK(n_malformed >= 20, "only %d malformed-input cases", n_malformed);
    printf("malformed-input cases: %d\n", n_malformed);
    return check_summary("rt_formats");
}
