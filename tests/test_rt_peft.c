/* test_rt_peft.c — peft.c and adapters.c on adapters written here, on the fixture's
 * tiny layout (rt_adapters_fixture.h): config semantics (rslora, rank/alpha_pattern,
 * regex targets, layers_to_transform, exclude_modules, all-linear, BF16 / unaligned
 * conversion); every malformed adapter fails load and hotswap naming its
 * field/tensor/file with slots and registry byte-identical to before (recipe: add a
 * case to malformed[]); and every allocation failure inside load/hotswap leaves
 * everything as it was. Conformance adapters, slots, registry: test_rt_adapters.c. */
#include "rt_adapters_fixture.h"

/* ---- config semantics on adapters written here ---- */
static peft_adapter *read_ok(const env *e, const char *dir) {
    lj_err err = {0};
    peft_adapter *ad = NULL;
    CHECK(peft_adapter_read(dir, e->L, &ad, &err) == LORAJIT_OK, "%s: %s", dir, err.msg);
    return ad;
}

static const peft_site_w *site_w(const env *e, const peft_adapter *ad, int layer, int m) {
    int site = lj_layout_site(e->L, layer, m);
    for (int i = 0; ad && i < ad->n; i++)
        if (ad->w[i].site == site) return &ad->w[i];
    return NULL;
}

static void test_semantics(void) {
    env e;
    env_new(&e, 0x7f);
    adapter_spec sp = {0};
    peft_adapter *ad;
    const peft_site_w *w;
    /* use_rslora: scale = alpha / sqrt(r) */
    spec_lora(&sp, 0, LJ_MOD_O, 4), spec_lora(&sp, 1, LJ_MOD_O, 4);
    ad = read_ok(&e, write_adapter("rslora", config_json(4, 8, "[\"o_proj\"]", "\"use_rslora\": true"), &sp, DT_F32));
    CHECK(ad && ad->n == 2 && ad->w[0].scale == 4.0f, "rslora scale %g", ad ? ad->w[0].scale : 0);
    peft_adapter_free(ad);
    /* rank_pattern / alpha_pattern: full match of (.*\.)?KEY, first key wins */
    sp.n = 0;
    spec_lora(&sp, 0, LJ_MOD_Q, 2), spec_lora(&sp, 0, LJ_MOD_V, 5);
    spec_lora(&sp, 1, LJ_MOD_Q, 2), spec_lora(&sp, 1, LJ_MOD_V, 6);
    ad = read_ok(&e, write_adapter("patterns", config_json(4, 8, "[\"q_proj\", \"v_proj\"]",
        "\"rank_pattern\": {\"q_proj\": 2, \"layers.1.self_attn.v_proj\": 6, \"v_proj\": 5}, "
        "\"alpha_pattern\": {\"_proj\": 100, \"v_proj\": 3}"), &sp, DT_F32));
    CHECK(ad && ad->n == 4, "patterns: 4 sites");
    w = site_w(&e, ad, 0, LJ_MOD_Q);
    CHECK(w && w->rank == 2 && w->scale == 4.0f, "layer 0 q: rank 2, alpha 8 ('_proj' is no full key)");
    w = site_w(&e, ad, 0, LJ_MOD_V);
    CHECK(w && w->rank == 5 && w->scale == 3.0f / 5, "layer 0 v: rank 5, alpha 3");
    w = site_w(&e, ad, 1, LJ_MOD_V);
    CHECK(w && w->rank == 6 && w->scale == 0.5f, "layer 1 v: first key wins");
    peft_adapter_free(ad);
    /* regex target_modules (full match), BF16 converted into the owned buffer */
    sp.n = 0;
    spec_lora(&sp, 1, LJ_MOD_Q, 3), spec_lora(&sp, 1, LJ_MOD_K, 3);
    ad = read_ok(&e, write_adapter("regex", config_json(3, 6, "\"model\\\\.layers\\\\.1\\\\.self_attn\\\\.(q|k)_proj\"", NULL),
                                  &sp, DT_BF16));
    CHECK(ad && ad->n == 2 && ad->owned != NULL, "regex: layer 1 q,k; converted");
    w = site_w(&e, ad, 1, LJ_MOD_K);
    CHECK(w && w->a[3 * 64 - 1] == tval(lora_name(1, LJ_MOD_K, 'A'), 3 * 64 - 1) &&
          w->b[32 * 3 - 1] == tval(lora_name(1, LJ_MOD_K, 'B'), 32 * 3 - 1), "BF16 values");
    peft_adapter_free(ad);
    /* layers_to_transform as an int; F32 with a misaligned data section is converted */
    sp.n = 0;
    spec_lora(&sp, 1, LJ_MOD_DOWN, 2);
    ad = read_ok(&e, write_adapter("layer1", config_json(2, 2, "[\"mlp.down_proj\"]", "\"layers_to_transform\": 1, "
                                   "\"layers_pattern\": \"layers\""), &sp, DT_F32_UNALIGNED));
    CHECK(ad && ad->n == 1 && ad->owned && site_w(&e, ad, 1, LJ_MOD_DOWN), "layers_to_transform 1");
    w = site_w(&e, ad, 1, LJ_MOD_DOWN);
    CHECK(w && w->a[2 * 160 - 1] == tval(lora_name(1, LJ_MOD_DOWN, 'A'), 2 * 160 - 1), "unaligned values");
    peft_adapter_free(ad);
    /* exclude_modules, an empty layers_to_transform list (= all layers), all-linear */
    sp.n = 0;
    spec_lora(&sp, 1, LJ_MOD_UP, 1);
    ad = read_ok(&e, write_adapter("exclude", config_json(1, 1, "[\"up_proj\"]", "\"exclude_modules\": "
                                   "[\"layers.0.mlp.up_proj\"], \"layers_to_transform\": []"), &sp, DT_F32));
    CHECK(ad && ad->n == 1, "exclude_modules");
    peft_adapter_free(ad);
    sp.n = 0;
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < LJ_MOD_COUNT; m++) spec_lora(&sp, l, m, 1);
    ad = read_ok(&e, write_adapter("all_linear", config_json(1, 1, "\"all-linear\"", NULL), &sp, DT_F32));
    CHECK(ad && ad->n == 14, "all-linear");
    peft_adapter_free(ad);
    env_free(&e);
}

/* ---- malformed adapters: status, message, nothing changed ---- */
typedef struct bad_case {
    const char *name;
    lorajit_status want;
    const char *needle; /* must appear in the message */
} bad_case;

static void expect_fail(env *e, const char *dir, const bad_case *bc) {
    lj_err err = {0};
    snap before = snap_take(e);
    lorajit_status st = lj_adapter_load(&e->r, e->s, e->L, "new", dir, NULL, &err);
    CHECK(st == bc->want && strstr(err.msg, bc->needle), "%s: load gave %d '%s' (want %d, '%s')",
          bc->name, st, err.msg, bc->want, bc->needle);
    st = lj_adapter_hotswap(&e->r, e->s, e->L, "qv", dir, NULL, &err);
    CHECK(st == bc->want && strstr(err.msg, bc->needle), "%s: hotswap gave %d '%s'", bc->name, st, err.msg);
    CHECK(snap_same(before, snap_take(e)), "%s: slots or registry changed", bc->name);
    if (getenv("LJ_TEST_VERBOSE")) printf("%-22s %s\n", bc->name, err.msg);
}

static void test_malformed(void) {
    env e, eqv;
    env_new(&e, 0x7f);
    env_new(&eqv, 1u << LJ_MOD_Q | 1u << LJ_MOD_V);
    lj_err err = {0};
    const char *act[] = {"qv"};
    for (env *x = &e; x; x = x == &e ? &eqv : NULL) {
        CHECK(lj_adapter_load(&x->r, x->s, x->L, "qv", CONF "a_qv", NULL, &err) == LORAJIT_OK, "%s", err.msg);
        CHECK(lj_adapter_set(&x->r, act, NULL, 1, &err) == LORAJIT_OK, "%s", err.msg);
    }
    adapter_spec q4 = {0}; /* q_proj, both layers, rank 4 */
    spec_lora(&q4, 0, LJ_MOD_Q, 4), spec_lora(&q4, 1, LJ_MOD_Q, 4);
    const char *tq = "[\"q_proj\"]";
    static const bad_case c[] = {
        {"use_dora", LORAJIT_E_UNSUPPORTED, "use_dora"},
        {"bias_all", LORAJIT_E_UNSUPPORTED, "bias"},
        {"modules_to_save", LORAJIT_E_UNSUPPORTED, "modules_to_save"},
        {"fan_in_fan_out", LORAJIT_E_UNSUPPORTED, "fan_in_fan_out"},
        {"rank_over_max", LORAJIT_E_UNSUPPORTED, "rank 32"},
        {"rank_pattern_over_max", LORAJIT_E_UNSUPPORTED, "max_rank 16"},
        {"lm_head", LORAJIT_E_UNSUPPORTED, "lm_head"},
        {"wrong_a_shape", LORAJIT_E_SHAPE, "layers.1.self_attn.q_proj.lora_A.weight"},
        {"wrong_b_shape", LORAJIT_E_SHAPE, "layers.0.self_attn.q_proj.lora_B.weight"},
        {"missing_b", LORAJIT_E_NOT_FOUND, "layers.1.self_attn.q_proj.lora_B.weight"},
        {"extra_tensor", LORAJIT_E_FORMAT, "layers.0.self_attn.k_proj.lora_A.weight"},
        {"invalid_json", LORAJIT_E_FORMAT, "adapter_config.json"},
        {"no_safetensors", LORAJIT_E_NOT_FOUND, "adapter_model.safetensors"},
        {"no_config", LORAJIT_E_NOT_FOUND, "adapter_config.json"},
        {"layers_out_of_range", LORAJIT_E_FORMAT, "layers_to_transform"},
        {"peft_type", LORAJIT_E_UNSUPPORTED, "peft_type"},
        {"missing_r", LORAJIT_E_FORMAT, "\"r\""},
        {"missing_alpha", LORAJIT_E_FORMAT, "lora_alpha"},
        {"embed_tokens_regex", LORAJIT_E_UNSUPPORTED, "embed_tokens"},
        {"layers_pattern", LORAJIT_E_UNSUPPORTED, "layers_pattern"},
        {"lora_bias", LORAJIT_E_UNSUPPORTED, "lora_bias"},
        {"layer_replication", LORAJIT_E_UNSUPPORTED, "layer_replication"},
        {"f64_tensor", LORAJIT_E_UNSUPPORTED, "F64"},
        {"pattern_shape", LORAJIT_E_SHAPE, "layers.0.self_attn.q_proj.lora_A.weight"},
        {"garbage_safetensors", LORAJIT_E_FORMAT, "adapter_model.safetensors"},
        {"regex_with_layers", LORAJIT_E_FORMAT, "layers_to_transform"},
        {"bad_regex", LORAJIT_E_FORMAT, "target_modules"},
    };
    const char *d[sizeof c / sizeof c[0]];
    adapter_spec x;
    int i = 0;
    d[i++] = write_adapter(c[0].name, config_json(4, 8, tq, "\"use_dora\": true"), &q4, DT_F32);
    d[i++] = write_adapter(c[1].name, config_json(4, 8, tq, "\"bias\": \"all\""), &q4, DT_F32);
    d[i++] = write_adapter(c[2].name, config_json(4, 8, tq, "\"modules_to_save\": [\"lm_head\"]"), &q4, DT_F32);
    d[i++] = write_adapter(c[3].name, config_json(4, 8, tq, "\"fan_in_fan_out\": true"), &q4, DT_F32);
    d[i++] = write_adapter(c[4].name, config_json(32, 8, tq, NULL), &q4, DT_F32);
    d[i++] = write_adapter(c[5].name, config_json(4, 8, tq, "\"rank_pattern\": {\"layers.1.self_attn.q_proj\": 32}"), &q4, DT_F32);
    d[i++] = write_adapter(c[6].name, config_json(4, 8, "[\"q_proj\", \"lm_head\"]", NULL), &q4, DT_F32);
    x = q4, x.t[2].cols = 63;
    d[i++] = write_adapter(c[7].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    x = q4, x.t[1].rows = 32;
    d[i++] = write_adapter(c[8].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    x = q4, x.n = 3;
    d[i++] = write_adapter(c[9].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    x = q4, spec_add(&x, lora_name(0, LJ_MOD_K, 'A'), 4, 64);
    d[i++] = write_adapter(c[10].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    d[i++] = write_adapter(c[11].name, "{\"peft_type\": \"LORA\", \"r\": 4,, }", &q4, DT_F32);
    d[i++] = write_adapter(c[12].name, config_json(4, 8, tq, NULL), NULL, DT_F32);
    d[i++] = write_adapter(c[13].name, NULL, &q4, DT_F32);
    d[i++] = write_adapter(c[14].name, config_json(4, 8, tq, "\"layers_to_transform\": [0, 5]"), &q4, DT_F32);
    d[i++] = write_adapter(c[15].name, config_json(4, 8, tq, "\"peft_type\": \"PREFIX_TUNING\""), &q4, DT_F32);
    d[i++] = write_adapter(c[16].name, config_json(0, 8, tq, NULL), &q4, DT_F32);
    d[i++] = write_adapter(c[17].name, "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"]}", &q4, DT_F32);
    d[i++] = write_adapter(c[18].name, config_json(4, 8, "\"model\\\\.(embed_tokens|layers\\\\.0\\\\.self_attn\\\\.q_proj)\"", NULL), &q4, DT_F32);
    d[i++] = write_adapter(c[19].name, config_json(4, 8, tq, "\"layers_pattern\": \"h\""), &q4, DT_F32);
    d[i++] = write_adapter(c[20].name, config_json(4, 8, tq, "\"lora_bias\": true"), &q4, DT_F32);
    d[i++] = write_adapter(c[21].name, config_json(4, 8, tq, "\"layer_replication\": [[0, 2]]"), &q4, DT_F32);
    d[i++] = write_adapter(c[22].name, config_json(4, 8, tq, NULL), &q4, DT_F64);
    d[i++] = write_adapter(c[23].name, config_json(4, 8, tq, "\"rank_pattern\": {\"layers.0.self_attn.q_proj\": 2}"), &q4, DT_F32);
    d[i] = write_adapter(c[24].name, config_json(4, 8, tq, NULL), NULL, DT_F32);
    {
        char p[600];
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", d[i++]);
        FILE *f = fopen(p, "wb");
        fwrite("\x40\0\0\0\0\0\0\0{not json", 1, 17, f);
        fclose(f);
    }
    d[i++] = write_adapter(c[25].name, config_json(4, 8, "\"q_proj\"", "\"layers_to_transform\": [0]"), &q4, DT_F32);
    d[i++] = write_adapter(c[26].name, config_json(4, 8, "\"(q_proj\"", NULL), &q4, DT_F32);
    CHECK(i == (int)(sizeof c / sizeof c[0]), "every case written");
    for (int k = 0; k < i; k++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", tmp_root, c[k].name);
        expect_fail(&e, dir, &c[k]);
    }
    /* a module the schema lacks: schema q,v only, adapter on k_proj */
    adapter_spec k4 = {0};
    spec_lora(&k4, 0, LJ_MOD_K, 4), spec_lora(&k4, 1, LJ_MOD_K, 4);
    const bad_case lacks = {"schema_lacks_k", LORAJIT_E_UNSUPPORTED, "schema lacks k_proj"};
    expect_fail(&eqv, write_adapter(lacks.name, config_json(4, 8, "[\"k_proj\"]", NULL), &k4, DT_F32), &lacks);
    env_free(&e);
    env_free(&eqv);
}

/* ---- every allocation failure inside load/hotswap leaves everything as it was ---- */
static void test_alloc_failures(void) {
    env e;
    env_new(&e, 0x7f);
    lj_err err = {0};
    CHECK(lj_adapter_load(&e.r, e.s, e.L, "qv", CONF "a_qv", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    adapter_spec sp = {0};
    spec_lora(&sp, 1, LJ_MOD_DOWN, 2);
    const char *dir = write_adapter("alloc_bf16", config_json(2, 2, "[\"down_proj\"]",
                                    "\"layers_to_transform\": [1], \"rank_pattern\": {\"down_proj\": 2}"), &sp, DT_BF16);
    for (int verb = 0; verb < 2; verb++) {
        int k = 1, nomem = 0;
        for (; k < 200; k++) {
            snap before = snap_take(&e);
            lj_alloc_fail_after(k);
            lorajit_status st = verb ? lj_adapter_hotswap(&e.r, e.s, e.L, "qv", dir, NULL, &err)
                                     : lj_adapter_load(&e.r, e.s, e.L, "bf", dir, NULL, &err);
            lj_alloc_fail_after(0);
            if (st == LORAJIT_OK) {
                free(before.p);
                break;
            }
            nomem++;
            bool same = snap_same(before, snap_take(&e));
            CHECK(st == LORAJIT_E_NOMEM, "verb %d, allocation %d: %d %s", verb, k, st, err.msg);
            CHECK(same, "verb %d, allocation %d: state changed", verb, k);
            if (st != LORAJIT_E_NOMEM || !same) break;
        }
        CHECK(k < 200 && nomem >= 5, "verb %d: %d allocation failures exercised", verb, nomem);
    }
    env_free(&e);
}

int main(int argc, char **argv) {
    fixture_tmp_setup(argc, argv, "rt_peft_tmp");
    test_semantics();
    test_malformed();
    test_alloc_failures();
    return check_summary("test_rt_peft");
}
