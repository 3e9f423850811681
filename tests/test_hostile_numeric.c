/* test_hostile_numeric.c — issue 11: class 6 (silent non-finite results) and the JSON
 * half of class 7 (duplicate keys), each example a check that passed on the old code.
 * (a) lj_nonfinite_find: NaN / Inf at block edges, finite extremes, unaligned data;
 *     st_convert_f32_finite (the slot write's fused test) against st_convert_f32.
 * (b) a key twice (and a \u0000 escape) refused in every JSON kind: config, adapter
 *     config, schema, shard index, manifest, safetensors header, naming file + key path.
 * (c) lora_alpha 1e39, alpha_pattern 1e30 refused naming the field; NaN / Inf in adapter
 *     weights (F32 borrowed; BF16, unaligned F32 converted) refused naming tensor + element.
 * (d) public API on copies of the tiny model: such adapters do not load and the served
 *     logits stay; NaN base weights fail forward / seq_prefill / decode / generate naming
 *     call, sequence or request and position; nothing advances; generate stops. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lorajit.h"
#include "rt_adapters_fixture.h"

#define TINY_MODEL "conformance/models/llama-tiny"
#define VOCAB 256

static void expect(lorajit_status got, lorajit_status want, const char *msg, const char *n1, const char *n2,
                   int line) {
    CHECK(got == want, "line %d: status %d, want %d (%s)", line, got, want, msg);
    CHECK(!n1 || strstr(msg, n1), "line %d: message lacks \"%s\": %s", line, n1, msg);
    CHECK(!n2 || strstr(msg, n2), "line %d: message lacks \"%s\": %s", line, n2, msg);
}

/* Runs call, then reads e's message (the order expect's arguments would not fix). */
#define EXPECT_API(e, call, want, n1, n2)                                     \
    do {                                                                      \
        lorajit_status got_ = (call);                                         \
        expect(got_, want, lorajit_errmsg(e), n1, n2, __LINE__);              \
    } while (0)

/* ---- (a) the scan ---- */
static void test_scan(void) {
    float x[300];
    for (int i = 0; i < 300; i++) x[i] = (i % 2 ? -1.0f : 1.0f) * (i == 7 ? 3.4e38f : i == 9 ? 1e-45f : i);
    CHECK(lj_nonfinite_find(x, 300) == 300, "finite extremes and subnormals are finite");
    CHECK(lj_nonfinite_find(x, 0) == 0, "empty");
    static const int at[] = {0, 1, 63, 64, 65, 127, 128, 255, 299};
    const float bad[] = {NAN, INFINITY, -INFINITY, -NAN};
    for (size_t a = 0; a < sizeof at / sizeof at[0]; a++)
        for (int b = 0; b < 4; b++) {
            float keep = x[at[a]];
            x[at[a]] = bad[b];
            CHECK(lj_nonfinite_find(x, 300) == (size_t)at[a], "%s at %d", lj_nonfinite_word(bad[b]), at[a]);
            CHECK(lj_nonfinite_find(x + 1, 299) == (size_t)(at[a] ? at[a] - 1 : 299), "unaligned, at %d", at[a]);
            x[at[a]] = keep;
        }
    CHECK(!strcmp(lj_nonfinite_word(NAN), "NaN") && !strcmp(lj_nonfinite_word(-INFINITY), "-Inf"), "words");
    /* the added cost of the load-time scan, per MB of f32 (reported, not checked) */
    size_t n = (size_t)16 << 20;
    float *big = malloc(n * sizeof *big);
    for (size_t i = 0; i < n; i++) big[i] = (float)(i & 1023) * 0.001f;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t k = 0;
    for (int r = 0; r < 4; r++) k += lj_nonfinite_find(big, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / 4;
    printf("scan: %.1f us per MB of f32 (%zu MB, k %zu)\n", us / (double)(n * sizeof *big >> 20),
           n * sizeof *big >> 20, k / 4);
    free(big);
}

/* ---- (b) duplicate keys in every JSON kind ---- */
static void test_duplicates(void) {
    lj_err err = {0};
    const lj_arch *arch = lj_arch_get(0);
#define TXT(s) s, strlen(s)
    static const char cfg_dup[] = "{\"hidden_size\":64,\"intermediate_size\":160,\"num_hidden_layers\":2,"
                                  "\"num_attention_heads\":4,\"vocab_size\":256,\"model_type\":\"llama\","
                                  "\"num_hidden_layers\":4}";
    lj_config c;
    expect(lj_config_parse(TXT(cfg_dup), "config.json", &c, &err), LORAJIT_E_FORMAT, err.msg, "config.json",
           "key \"num_hidden_layers\" appears twice", __LINE__);
    peft_config pc = {0};
    static const char *const peft[][2] = {
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":16,\"lora_alpha\":64}", "\"lora_alpha\""},
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":16,\"rank_pattern\":{\"q_proj\":2,\"q_proj\":8}}",
         "\"rank_pattern.q_proj\""},
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":16,\"x\":[1,{\"y\":1,\"y\":2}]}", "\"x[1].y\""},
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\\u0000x\":64,\"lora_alpha\":16}", "\\u0000 at byte 37"},
    };
    for (size_t i = 0; i < sizeof peft / sizeof peft[0]; i++) {
        expect(peft_config_parse(TXT(peft[i][0]), "adapter_config.json", arch, &pc, &err), LORAJIT_E_FORMAT,
               err.msg, "adapter_config.json", peft[i][1], __LINE__);
        peft_config_free(&pc);
    }
    lj_schema s = {.r_max = 64, .n_slots = 8, .target_mask = 127};
    expect(lj_schema_parse(TXT("{\"max_rank\":8,\"max_rank\":64}"), "schema.json", arch, &s, &err),
           LORAJIT_E_FORMAT, err.msg, "schema.json", "\"max_rank\" appears twice", __LINE__);
    char **shards;
    int n_shards;
    expect(lj_shard_index_parse(TXT("{\"weight_map\":{\"a.weight\":\"m1.safetensors\",\"a.weight\":"
                                    "\"m2.safetensors\"}}"), "model.safetensors.index.json", &shards, &n_shards,
                                &err), LORAJIT_E_FORMAT, err.msg, "model.safetensors.index.json",
           "\"weight_map.a.weight\" appears twice", __LINE__);
    lj_manifest m;
    expect(lj_manifest_parse(TXT("{\"format\":1,\"format\":2}"), "manifest.json", &m, &err), LORAJIT_E_FORMAT,
           err.msg, "manifest.json", "\"format\" appears twice", __LINE__);
    /* the safetensors header: a tensor named twice (the first entry won before) */
    static const char hdr[] = "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                              "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    unsigned char buf[256] = {0};
    size_t hl = strlen(hdr);
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, hdr, hl);
    st_file *f;
    expect(st_open_buffer(buf, 8 + hl + 8, "adapter_model.safetensors", &f, &err), LORAJIT_E_FORMAT, err.msg,
           "adapter_model.safetensors", "key \"t\" appears twice in the JSON header", __LINE__);
    /* the same keys once each still parse; keys differing only in case are distinct */
    cJSON *j;
    CHECK(lj_json_parse(TXT("{\"a\":{\"b\":1},\"c\":{\"b\":2},\"A\":1,\"s\":\"x\\\\u0000\"}"), "ok.json", 0, &j,
                        &err) == LORAJIT_OK, "distinct keys: %s", err.msg);
    cJSON_Delete(j);
#undef TXT
}

/* ---- files: copies and pokes ---- */

/* Writes value into element k of tensor name of a safetensors file (F32 or BF16). */
static void poke(const char *path, const char *name, long k, float value) {
    long n = 0;
    unsigned char *d = (unsigned char *)check_read_file(path, &n);
    uint64_t hl = 0;
    for (int i = 7; d && i >= 0; i--) hl = (hl << 8) | d[i];
    cJSON *h = d ? cJSON_ParseWithLength((const char *)d + 8, (size_t)hl) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    CHECK(off && cJSON_IsString(dt), "poke: %s has no tensor %s", path, name);
    if (off && cJSON_IsString(dt)) {
        bool bf16 = !strcmp(dt->valuestring, "BF16");
        uint32_t u;
        memcpy(&u, &value, 4);
        uint16_t b = (uint16_t)(u >> 16);
        long at = 8 + (long)hl + (long)off->child->valuedouble + k * (bf16 ? 2 : 4);
        int fd = open(path, O_WRONLY);
        CHECK(fd >= 0 && pwrite(fd, bf16 ? (void *)&b : (void *)&value, bf16 ? 2 : 4, at) == (bf16 ? 2 : 4),
              "poke %s", path);
        if (fd >= 0) close(fd);
    }
    cJSON_Delete(h);
    free(d);
}

/* ---- (c) scales and adapter weights at load ---- */
static void test_adapter_values(void) {
    lj_err err = {0};
    const lj_arch *arch = lj_arch_get(0);
    peft_config pc = {0};
    static const struct { const char *json, *needle; } huge[] = {
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":1e39}", "\"lora_alpha\" is 1e+39"},
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":-2e7}", "\"lora_alpha\""},
        {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"alpha_pattern\":{\"q_proj\":1e30}}",
         "\"alpha_pattern.q_proj\""},
    };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        expect(peft_config_parse(huge[i].json, strlen(huge[i].json), "adapter_config.json", arch, &pc, &err),
               LORAJIT_E_UNSUPPORTED, err.msg, "adapter_config.json", huge[i].needle, __LINE__);
        peft_config_free(&pc);
    }
    static const char ok[] = "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":16777216,\"alpha_pattern\":{\"v_proj\":0}}";
    CHECK(peft_config_parse(ok, strlen(ok), "a.json", arch, &pc, &err) == LORAJIT_OK, "alpha 2^24, 0: %s", err.msg);
    peft_config_free(&pc);

    env e;
    env_new(&e, 127);
    adapter_spec sp = {0};
    for (int m = 0; m < LJ_MOD_COUNT; m++) spec_lora(&sp, 1, m, 4);
    static const struct { int dtype; int tensor; long k; float v; const char *word; } bad[] = {
        {DT_F32, 3, 0, NAN, "NaN at element 0 (row 0, column 0)"},
        {DT_F32, 13, 255, INFINITY, "+Inf at element 255 (row 63, column 3)"},
        {DT_BF16, 4, 161, -INFINITY, "-Inf at element 161 (row 2, column 33)"},
        {DT_F32_UNALIGNED, 0, 17, NAN, "NaN at element 17"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *dir = write_adapter("nonfinite", config_json(4, 8, "\"all-linear\"",
                                        "\"layers_to_transform\": [1]"), &sp, bad[i].dtype);
        char path[600];
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        peft_adapter *ad = NULL;
        CHECK(peft_adapter_read(dir, e.L, &ad, &err) == LORAJIT_OK, "clean copy %zu loads: %s", i, err.msg);
        peft_adapter_free(ad);
        ad = NULL;
        poke(path, sp.t[bad[i].tensor].name, bad[i].k, bad[i].v);
        expect(peft_adapter_read(dir, e.L, &ad, &err), LORAJIT_E_FORMAT, err.msg, sp.t[bad[i].tensor].name,
               bad[i].word, __LINE__);
        CHECK(!ad, "no image on failure");
    }
    env_free(&e);
}

/* ---- (d) the public API ---- */
static char root[512];

static lorajit_engine *open_model(const char *dir) {
    lorajit_engine *e = NULL;
    lorajit_options o = {.max_batch = 2, .max_adapters = 2, .max_rank = 8};
    lorajit_status s = lorajit_engine_open(&e, dir, &o);
    CHECK(s == LORAJIT_OK, "open %s: %s", dir, lorajit_errmsg(e));
    if (s) {
        lorajit_engine_free(e);
        return NULL;
    }
    return e;
}

static bool all_finite(const float *x, size_t n) { return lj_nonfinite_find(x, n) == n; }

/* Copies conformance adapter a_all to root/name and changes it with what (a config
 * text, or NULL to poke value into one weight). Returns the folder. */
static const char *bad_adapter(const char *name, const char *config, float value) {
    static char dir[600];
    char from[700], to[700];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0755);
    snprintf(from, sizeof from, CONF "a_all/adapter_model.safetensors");
    snprintf(to, sizeof to, "%s/adapter_model.safetensors", dir);
    check_copy_file(from, to);
    snprintf(from, sizeof from, CONF "a_all/adapter_config.json");
    snprintf(to, sizeof to, "%s/adapter_config.json", dir);
    check_copy_file(from, to);
    if (config) {
        FILE *f = fopen(to, "w");
        fputs(config, f);
        fclose(f);
    } else {
        snprintf(to, sizeof to, "%s/adapter_model.safetensors", dir);
        poke(to, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", 5, value);
    }
    return dir;
}

static void test_api_adapters(void) {
    lorajit_engine *e = open_model(TINY_MODEL);
    if (!e) return;
    CHECK(lorajit_load_adapter(e, "good", CONF "a_all") == LORAJIT_OK, "load: %s", lorajit_errmsg(e));
    const char *names[] = {"good"};
    CHECK(lorajit_set_adapter(e, names, NULL, 1) == LORAJIT_OK, "set: %s", lorajit_errmsg(e));
    int32_t tok[4] = {1, 5, 9, 3};
    float before[4 * VOCAB], after[4 * VOCAB];
    CHECK(lorajit_forward(e, tok, 4, before) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    static const char cfg_head[] = "{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"q_proj\",\"k_proj\","
                                   "\"v_proj\",\"o_proj\",\"gate_proj\",\"up_proj\",\"down_proj\"],";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s\"lora_alpha\":1e39}", cfg_head);
    lorajit_status s = lorajit_load_adapter(e, "huge", bad_adapter("huge", cfg, 0));
    expect(s, LORAJIT_E_UNSUPPORTED, lorajit_errmsg(e), "adapter_config.json", "\"lora_alpha\"", __LINE__);
    snprintf(cfg, sizeof cfg, "%s\"lora_alpha\":16,\"lora_alpha\":64}", cfg_head);
    s = lorajit_load_adapter(e, "dup", bad_adapter("dup", cfg, 0));
    expect(s, LORAJIT_E_FORMAT, lorajit_errmsg(e), "adapter_config.json", "\"lora_alpha\" appears twice", __LINE__);
    s = lorajit_hotswap_adapter(e, "good", bad_adapter("nan", NULL, NAN));
    expect(s, LORAJIT_E_FORMAT, lorajit_errmsg(e), "layers.1.self_attn.v_proj.lora_B.weight' holds NaN at element 5",
           NULL, __LINE__);
    s = lorajit_load_adapter(e, "inf", bad_adapter("inf", NULL, -INFINITY));
    expect(s, LORAJIT_E_FORMAT, lorajit_errmsg(e), "-Inf at element 5 (row 1, column 1)", NULL, __LINE__);
    CHECK(lorajit_forward(e, tok, 4, after) == LORAJIT_OK && !memcmp(before, after, sizeof before),
          "the served logits are unchanged after the refused loads");
    lorajit_engine_free(e);
}

/* root/nanmodel: the tiny model with NaN in every embedding row but keep's. */
static const char *nan_model(int keep) {
    static char dir[600];
    char to[700];
    snprintf(dir, sizeof dir, "%s/nanmodel", root);
    mkdir(dir, 0755);
    snprintf(to, sizeof to, "%s/config.json", dir);
    check_copy_file(TINY_MODEL "/config.json", to);
    snprintf(to, sizeof to, "%s/model.safetensors", dir);
    check_copy_file(TINY_MODEL "/model.safetensors", to);
    for (int t = 0; t < VOCAB; t++)
        if (t != keep) poke(to, "model.embed_tokens.weight", (long)t * 64, NAN);
    return dir;
}

static void test_api_base_nan(void) {
    lorajit_engine *e = open_model(TINY_MODEL);
    if (!e) return;
    static float lg[4 * VOCAB];
    int keep = -1, first = -1; /* a token whose greedy successor is another token */
    for (int t = 1; t < VOCAB && keep < 0; t++) {
        int32_t one = t;
        CHECK(lorajit_forward(e, &one, 1, lg) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
        int best = 0;
        for (int v = 1; v < VOCAB; v++) best = lg[v] > lg[best] ? v : best;
        if (best != t) keep = t, first = best;
    }
    lorajit_engine_free(e);
    CHECK(keep > 0, "a token whose greedy successor differs");
    if (keep < 0 || !(e = open_model(nan_model(keep)))) return;
    int x = keep == 1 ? 2 : 1; /* a token with a NaN embedding */
    /* forward: positions before the NaN are fine, the call fails naming position 2 */
    int32_t ok3[3] = {keep, keep, keep}, bad3[3] = {keep, keep, x};
    CHECK(lorajit_forward(e, ok3, 3, lg) == LORAJIT_OK && all_finite(lg, 3 * VOCAB), "finite forward: %s",
          lorajit_errmsg(e));
    float want[VOCAB];
    memcpy(want, lg + 2 * VOCAB, sizeof want);
    EXPECT_API(e, lorajit_forward(e, bad3, 3, lg), LORAJIT_E_FORMAT,
               "forward: position 2 of 3", "not finite (NaN");
    /* seq_prefill: fails, the position stays */
    CHECK(lorajit_seq_prefill(e, 0, ok3, 1, NULL) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_prefill(e, 1, ok3, 1, NULL) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    EXPECT_API(e, lorajit_seq_prefill(e, 0, bad3, 3, NULL), LORAJIT_E_FORMAT,
               "seq_prefill: sequence 0, position 3", "the sequence did not advance");
    CHECK(lorajit_seq_pos(e, 0) == 1, "prefill failure leaves position 1, got %d", lorajit_seq_pos(e, 0));
    /* decode: one bad row fails the step; no sequence advances */
    int seqs[2] = {0, 1};
    int32_t toks[2] = {keep, x};
    EXPECT_API(e, lorajit_decode(e, seqs, toks, 2, lg), LORAJIT_E_FORMAT,
               "decode: row 1 (sequence 1), position 1", "NaN or Inf");
    CHECK(lorajit_seq_pos(e, 0) == 1 && lorajit_seq_pos(e, 1) == 1, "decode failure leaves positions 1, 1");
    /* ... and the sequences go on as if it had not happened */
    toks[1] = keep;
    CHECK(lorajit_decode(e, seqs, toks, 2, lg) == LORAJIT_OK, "decode: %s", lorajit_errmsg(e));
    CHECK(lorajit_seq_prefill(e, 0, ok3, 1, lg + 2 * VOCAB) == LORAJIT_OK, "prefill: %s", lorajit_errmsg(e));
    CHECK(check_close_ratio(lg + 2 * VOCAB, want, VOCAB, 1e-4, 1e-4, NULL) <= 1 &&
          check_close_ratio(lg, lg + VOCAB, VOCAB, 1e-4, 1e-4, NULL) <= 1, "after the failures: as forward");
    /* generate: a prompt with a NaN embedding fails in prefill; a NaN after the first token stops it */
    int32_t out[2][8], prompt[1] = {keep};
    lorajit_request r[2] = {{.prompt = bad3, .n_prompt = 3, .max_new = 4, .out = out[0]}};
    EXPECT_API(e, lorajit_generate(e, r, 1, NULL, NULL, NULL), LORAJIT_E_FORMAT,
               "generate: request 0 (sequence 0), position 2", "generation stopped");
    r[0] = (lorajit_request){.prompt = prompt, .n_prompt = 1, .max_new = 1, .out = out[0]};
    r[1] = (lorajit_request){.prompt = prompt, .n_prompt = 1, .max_new = 8, .out = out[1]};
    EXPECT_API(e, lorajit_generate(e, r, 2, NULL, NULL, NULL), LORAJIT_E_FORMAT,
               "generate: request 1 (sequence 1), position 1", "not finite");
    CHECK(r[0].n_out == 1 && r[1].n_out == 1 && r[1].out[0] == first, "generate stopped after the first token: "
          "n_out %d, %d, token %d (want %d)", r[0].n_out, r[1].n_out, r[1].out[0], first);
    lorajit_stats st;
    CHECK(lorajit_get_stats(e, &st) == LORAJIT_OK && st.failed_calls == 5, "5 failed calls, got %lld",
          (long long)st.failed_calls);
    lorajit_engine_free(e);
}

/* ---- (a') the fused conversion: st_convert_f32_finite against st_convert_f32 + the scan ----
 * Lengths around its blocks of 64 and 16, a NaN / Inf at each block edge, F32 (unaligned
 * source), F16 and BF16 bits; where the values are finite, the same floats as st_convert_f32. */
static void test_fused(void) {
    static const size_t lens[] = {1, 15, 16, 17, 31, 63, 64, 65, 80, 95, 129, 300};
    static const int at[] = {0, 1, 15, 16, 17, 63, 64, 65, 79, 80, 128, 299};
    unsigned char src[4 * 300 + 1];
    float got[300], want[300];
    for (int d = 0; d < 3; d++) {
        st_dtype dt = d == 0 ? ST_F32 : d == 1 ? ST_F16 : ST_BF16;
        size_t es = st_dtype_size(dt);
        const unsigned char *p = src + (d == 0); /* F32 read unaligned */
        for (size_t i = 0; i < 300; i++) { /* finite values, extremes of each dtype included */
            uint32_t f32 = (uint32_t)(0x3f800000u + i * 0x12345u) ^ (i % 2 ? 0x80000000u : 0) ^ (i == 5 ? 0x7f000000u : 0);
            uint16_t h16 = (uint16_t)((dt == ST_F16 ? 0x3c00u + i * 37u % 0x3800u : 0x3f80u + i * 41u % 0x3f00u) |
                                      (i % 3 ? 0 : 0x8000u));
            if (i == 6) h16 = dt == ST_F16 ? 0x7bffu : 0x7f7fu; /* the largest finite */
            memcpy(src + (d == 0) + es * i, es == 4 ? (void *)&f32 : (void *)&h16, es);
        }
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            size_t n = lens[l];
            st_convert_f32(dt, p, n, want);
            CHECK(st_convert_f32_finite(dt, p, n, got) == n && !memcmp(got, want, n * sizeof(float)),
                  "%s n %zu: finite values converted as st_convert_f32", st_dtype_name(dt), n);
            for (size_t a = 0; a < sizeof at / sizeof at[0] && at[a] < (int)n; a++)
                for (int b = 0; b < 2; b++) {
                    unsigned char keep[4];
                    unsigned char *q = src + (d == 0) + es * (size_t)at[a];
                    memcpy(keep, q, es);
                    uint32_t nan32 = b ? 0xff800000u : 0x7fc00001u; /* NaN, -Inf */
                    uint16_t nan16 = dt == ST_F16 ? (b ? 0xfc00u : 0x7e01u) : (b ? 0xff80u : 0x7fc1u);
                    memcpy(q, es == 4 ? (void *)&nan32 : (void *)&nan16, es);
                    CHECK(st_convert_f32_finite(dt, p, n, got) == (size_t)at[a], "%s n %zu: %s at %d found",
                          st_dtype_name(dt), n, b ? "-Inf" : "NaN", at[a]);
                    memcpy(q, keep, es);
                }
        }
    }
}

int main(int argc, char **argv) {
    fixture_tmp_setup(argc, argv, "hostile_numeric_tmp");
    test_fused();
    snprintf(root, sizeof root, "%s", tmp_root);
    test_scan();
    test_duplicates();
    test_adapter_values();
    test_api_adapters();
    test_api_base_nan();
    return check_summary("hostile_numeric");
}
