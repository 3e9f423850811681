/* test_rt_arch.c — the architecture table (runtime/formats/arch.c) and what reads it:
 * model_type lookup and refusal, LLaMA's modules (names, paths, parents), module
 * paths both ways, the bias mask config.json's attention_bias / mlp_bias give, and
 * the layout's site paths, and the manifest's model_type, bias fields and sites.
 * Expected names are spelled out here, independently of
 * the table. Recipe for a new architecture: add its entry's expected modules and
 * bias fields as another block of test_modules / test_biases. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "formats.h"

#define BIT(m) (1u << (m))

static lorajit_status parse(const char *extra, lj_config *c, lj_err *err) {
    char json[512];
    snprintf(json, sizeof json,
             "{%s%s\"hidden_size\":64,\"intermediate_size\":160,\"num_hidden_layers\":2,"
             "\"num_attention_heads\":4,\"vocab_size\":256}", extra, extra[0] ? "," : "");
    lj_err_clear(err);
    return lj_config_parse(json, strlen(json), "arch_config.json", c, err);
}

static void expect(lorajit_status got, const lj_err *err, lorajit_status want, const char *n1, const char *n2) {
    CHECK(got == want && err->status == want, "status %d, want %d: %s", got, want, err->msg);
    CHECK(strstr(err->msg, "arch_config.json") && strstr(err->msg, n1) && (!n2 || strstr(err->msg, n2)),
          "message lacks \"%s\" / \"%s\": %s", n1, n2 ? n2 : "", err->msg);
}

static void test_lookup(void) {
    CHECK(lj_arch_count() >= 1, "table not empty");
    CHECK(lj_arch_find("llama") == 0 && strcmp(lj_arch_get(0)->model_type, "llama") == 0, "llama is entry 0");
    CHECK(lj_arch_find(NULL) == LJ_ARCH_DEFAULT && LJ_ARCH_DEFAULT == lj_arch_find("llama"), "absent: llama");
    CHECK(lj_arch_find("gpt2") == -1 && lj_arch_find("Llama") == -1 && lj_arch_find("") == -1, "unknown");
    char list[256];
    lj_arch_list(list, sizeof list);
    CHECK(strstr(list, "\"llama\"") != NULL, "supported list: %s", list);

    lj_err err;
    lj_config c;
    CHECK(parse("", &c, &err) == LORAJIT_OK && c.arch == 0, "no model_type: %s", err.msg);
    CHECK(c.seq_len == 2048 && c.rms_eps == 1e-6f && c.rope_theta == 10000.0f && !c.tie_embeddings,
          "llama defaults");
    CHECK(parse("\"model_type\":\"llama\"", &c, &err) == LORAJIT_OK && c.arch == lj_arch_find("llama"), "llama");
    expect(parse("\"model_type\":\"gpt2\"", &c, &err), &err, LORAJIT_E_UNSUPPORTED, "field \"model_type\"",
           "supported model types: \"llama\"");
    expect(parse("\"model_type\":7", &c, &err), &err, LORAJIT_E_FORMAT, "\"model_type\" must be a string", NULL);
    expect(parse("\"hidden_act\":\"gelu\"", &c, &err), &err, LORAJIT_E_UNSUPPORTED, "hidden_act", "\"silu\"");
}

/* The families of issue 13 (qwen2, qwen3, mistral): defaults, biases, the sliding
 * window and the refusals, named. */
static void test_families(void) {
    lj_err err;
    lj_config c;
    unsigned qkv = BIT(0) | BIT(1) | BIT(2), qkvo = qkv | BIT(3);
    CHECK(parse("\"model_type\":\"qwen2\",\"attention_bias\":false,\"sliding_window\":4096", &c, &err) == LORAJIT_OK &&
              c.bias_mask == qkv && c.sliding_window == 0 && c.seq_len == 32768, "qwen2: %s", err.msg);
    expect(parse("\"model_type\":\"qwen2\",\"use_sliding_window\":true", &c, &err), &err, LORAJIT_E_UNSUPPORTED,
           "field \"use_sliding_window\" is true", "qwen2");
    CHECK(parse("\"model_type\":\"qwen3\"", &c, &err) == LORAJIT_OK && c.head_size == 128 && c.bias_mask == 0,
          "qwen3 head_dim default 128: %s", err.msg);
    CHECK(parse("\"model_type\":\"qwen3\",\"attention_bias\":true,\"head_dim\":24", &c, &err) == LORAJIT_OK &&
              c.bias_mask == qkvo && c.head_size == 24, "qwen3 attention_bias: %s", err.msg);
    expect(parse("\"model_type\":\"qwen3\",\"use_sliding_window\":true", &c, &err), &err, LORAJIT_E_UNSUPPORTED,
           "use_sliding_window", "qwen3");
    expect(parse("\"model_type\":\"qwen3\",\"hidden_act\":\"gelu_new\"", &c, &err), &err, LORAJIT_E_UNSUPPORTED,
           "hidden_act", "\"silu\"");
    CHECK(parse("\"model_type\":\"mistral\"", &c, &err) == LORAJIT_OK && c.sliding_window == 4096 &&
              c.bias_mask == 0, "mistral default window 4096: %s", err.msg);
    CHECK(parse("\"model_type\":\"mistral\",\"sliding_window\":null", &c, &err) == LORAJIT_OK &&
              c.sliding_window == 0, "mistral window null: %s", err.msg);
    CHECK(parse("\"model_type\":\"mistral\",\"sliding_window\":8", &c, &err) == LORAJIT_OK && c.sliding_window == 8,
          "mistral window 8: %s", err.msg);
    CHECK(parse("\"sliding_window\":8", &c, &err) == LORAJIT_OK && c.sliding_window == 0, "llama ignores the window");
    expect(parse("\"model_type\":\"mistral\",\"sliding_window\":-1", &c, &err), &err, LORAJIT_E_FORMAT,
           "sliding_window", NULL);
    /* phi3 (configuration_phi3.py defaults; partial_rotary_factor only 1.0) */
    CHECK(parse("\"model_type\":\"phi3\"", &c, &err) == LORAJIT_OK && c.seq_len == 4096 && c.rms_eps == 1e-5f &&
              c.sliding_window == 0 && !c.tie_embeddings && c.bias_mask == 0, "phi3 defaults: %s", err.msg);
    CHECK(parse("\"model_type\":\"phi3\",\"sliding_window\":2047,\"partial_rotary_factor\":1.0,\"attention_bias\":true",
                &c, &err) == LORAJIT_OK && c.sliding_window == 2047 && c.bias_mask == 0, "phi3 window: %s", err.msg);
    expect(parse("\"model_type\":\"phi3\",\"partial_rotary_factor\":0.5", &c, &err), &err, LORAJIT_E_UNSUPPORTED,
           "field \"partial_rotary_factor\" is 0.5", "phi3");
    expect(parse("\"model_type\":\"phi3\",\"partial_rotary_factor\":\"x\"", &c, &err), &err, LORAJIT_E_FORMAT,
           "partial_rotary_factor", NULL);
    /* gemma (configuration_gemma.py defaults; GemmaMLP reads hidden_activation, ignores hidden_act) */
    CHECK(parse("\"model_type\":\"gemma\"", &c, &err) == LORAJIT_OK && c.head_size == 256 && c.tie_embeddings &&
              c.seq_len == 8192, "gemma defaults: %s", err.msg);
    CHECK(parse("\"model_type\":\"gemma\",\"hidden_act\":\"gelu\",\"hidden_activation\":null,\"head_dim\":16,"
                "\"attention_bias\":true", &c, &err) == LORAJIT_OK && c.head_size == 16 && c.bias_mask == qkvo,
          "gemma hidden_act gelu: %s", err.msg);
    CHECK(parse("\"model_type\":\"gemma\",\"hidden_activation\":\"gelu_pytorch_tanh\"", &c, &err) == LORAJIT_OK,
          "gemma hidden_activation: %s", err.msg);
    expect(parse("\"model_type\":\"gemma\",\"hidden_activation\":\"gelu\"", &c, &err), &err,
           LORAJIT_E_UNSUPPORTED, "field \"hidden_activation\" is \"gelu\"", "gelu_pytorch_tanh");
    expect(parse("\"model_type\":\"gemma\",\"hidden_act\":\"relu\"", &c, &err), &err, LORAJIT_E_UNSUPPORTED,
           "field \"hidden_act\" is \"relu\"", "gemma");
    expect(parse("\"model_type\":\"gemma\",\"hidden_activation\":7", &c, &err), &err, LORAJIT_E_FORMAT,
           "hidden_activation", NULL);
    static const char *const refused[] = {"gemma2", "phi3small", "phi", "qwen2_moe"};
    for (int i = 0; i < 4; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "\"model_type\":\"%s\"", refused[i]);
        expect(parse(extra, &c, &err), &err, LORAJIT_E_UNSUPPORTED, refused[i], "supported model types");
    }
}

static void test_modules(void) {
    static const struct { const char *name, *path, *parent; } llama[] = {
        {"q_proj", "self_attn.q_proj", "self_attn"}, {"k_proj", "self_attn.k_proj", "self_attn"},
        {"v_proj", "self_attn.v_proj", "self_attn"}, {"o_proj", "self_attn.o_proj", "self_attn"},
        {"gate_proj", "mlp.gate_proj", "mlp"},       {"up_proj", "mlp.up_proj", "mlp"},
        {"down_proj", "mlp.down_proj", "mlp"},
    };
    const lj_arch *a = lj_arch_get(lj_arch_find("llama"));
    CHECK(a->n_modules == 7 && a->frontend == LJ_FE_LLAMA && strcmp(a->hidden_act, "silu") == 0, "llama entry");
    for (int m = 0; m < 7 && m < a->n_modules; m++) {
        CHECK(!strcmp(a->modules[m].name, llama[m].name) && !strcmp(a->modules[m].path, llama[m].path) &&
                  !strcmp(a->modules[m].parent, llama[m].parent), "module %d: %s", m, a->modules[m].name);
        CHECK(lj_arch_module_find(a, llama[m].name) == m && !strcmp(lj_arch_module_name(a, m), llama[m].name),
              "module %d round trip", m);
        char path[128], want[128];
        int layer = -1, mod = -1;
        snprintf(want, sizeof want, "model.layers.11.%s", llama[m].path);
        CHECK(lj_arch_module_path(a, 11, m, path, sizeof path) == (int)strlen(want) && !strcmp(path, want),
              "path %s", path);
        CHECK(lj_arch_path_parse(a, want, &layer, &mod) && layer == 11 && mod == m, "parse %s", want);
    }
    CHECK(lj_arch_module_find(a, "qproj") == -1 && lj_arch_module_find(a, NULL) == -1, "bad module");
    CHECK(!strcmp(lj_arch_module_name(a, 7), "?") && !strcmp(lj_arch_module_name(a, -1), "?"), "name out of range");
    static const char *const not_paths[] = {
        "model.layers.03.self_attn.q_proj", "model.layers.3.self_attn.q_proj.lora_A", "model.layers..mlp.up_proj",
        "model.layers.3.q_proj", "layers.3.self_attn.q_proj", "model.layers.3", "model.layersX3.mlp.up_proj",
    };
    for (size_t i = 0; i < sizeof not_paths / sizeof not_paths[0]; i++) {
        int layer, mod;
        CHECK(!lj_arch_path_parse(a, not_paths[i], &layer, &mod), "not a module path: %s", not_paths[i]);
    }
    char names[256];
    lj_arch_module_names(a, lj_arch_all_modules(a), names, sizeof names);
    CHECK(!strcmp(names, "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"), "all: %s", names);
    lj_arch_module_names(a, BIT(LJ_MOD_K) | BIT(LJ_MOD_DOWN), names, sizeof names);
    CHECK(!strcmp(names, "k_proj, down_proj"), "k, down: %s", names);
    CHECK(lj_arch_all_modules(a) == 0x7f && a->peft_default_targets == (BIT(LJ_MOD_Q) | BIT(LJ_MOD_V)), "masks");
    CHECK(!strcmp(lj_arch_layers_pattern(a), "layers"), "layers_pattern");
    /* phi3: four modules, two fused (modeling_phi3.py), PEFT's default all four */
    const lj_arch *p = lj_arch_get(lj_arch_find("phi3"));
    lj_arch_module_names(p, lj_arch_all_modules(p), names, sizeof names);
    CHECK(p->n_modules == 4 && !strcmp(names, "qkv_proj, o_proj, gate_up_proj, down_proj") &&
              p->peft_default_targets == 0xf, "phi3 modules: %s", names);
    CHECK(lj_arch_module_find(p, "q_proj") == -1 && lj_arch_linear_module(p, LJ_LIN_Q) == -1 &&
              lj_arch_linear_module(p, LJ_LIN_GATE_UP) == 2, "phi3 has no q_proj");
    lj_config pc = {.arch = lj_arch_find("phi3"), .dim = 64, .hidden_dim = 96, .n_heads = 4, .n_kv_heads = 2,
                    .head_size = 16};
    int64_t in, out;
    lj_arch_linear_shape(&pc, 0, &in, &out);
    CHECK(in == 64 && out == 128, "qkv_proj [128, 64]: [%lld, %lld]", (long long)out, (long long)in);
    lj_arch_linear_shape(&pc, 2, &in, &out);
    CHECK(in == 64 && out == 192, "gate_up_proj [192, 64]: [%lld, %lld]", (long long)out, (long long)in);
    lj_arch_linear_shape(&pc, 4, &in, &out);
    CHECK(in == 0 && out == 0, "no module 4");
    int layer = -1, mod = -1;
    CHECK(lj_arch_path_parse(p, "model.layers.2.mlp.gate_up_proj", &layer, &mod) && layer == 2 && mod == 2 &&
              !lj_arch_path_parse(p, "model.layers.2.mlp.up_proj", &layer, &mod), "phi3 paths");
}

static void test_biases(void) {
    static const struct { const char *extra; unsigned mask; } cases[] = {
        {"", 0},
        {"\"attention_bias\":false,\"mlp_bias\":false", 0},
        {"\"attention_bias\":true", BIT(LJ_MOD_Q) | BIT(LJ_MOD_K) | BIT(LJ_MOD_V) | BIT(LJ_MOD_O)},
        {"\"mlp_bias\":true", BIT(LJ_MOD_GATE) | BIT(LJ_MOD_UP) | BIT(LJ_MOD_DOWN)},
        {"\"attention_bias\":true,\"mlp_bias\":true", 0x7f},
        {"\"attention_bias\":null,\"mlp_bias\":true", BIT(LJ_MOD_GATE) | BIT(LJ_MOD_UP) | BIT(LJ_MOD_DOWN)},
    };
    lj_err err;
    lj_config c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(parse(cases[i].extra, &c, &err) == LORAJIT_OK, "%s: %s", cases[i].extra, err.msg);
        CHECK(c.bias_mask == cases[i].mask, "{%s}: bias_mask 0x%x, want 0x%x", cases[i].extra, c.bias_mask,
              cases[i].mask);
    }
    expect(parse("\"attention_bias\":\"yes\"", &c, &err), &err, LORAJIT_E_FORMAT, "attention_bias", NULL);
    expect(parse("\"mlp_bias\":1", &c, &err), &err, LORAJIT_E_FORMAT, "mlp_bias", NULL);
}

static void test_site_paths(void) {
    lj_err err;
    lj_layout *L = lj_layout_new();
    L->n_sites = 3;
    L->sites = calloc(3, sizeof *L->sites);
    L->sites[0] = (lj_site_desc){0, LJ_MOD_Q, 64, 64, NULL};
    L->sites[1] = (lj_site_desc){0, LJ_MOD_V, 64, 32, NULL};
    L->sites[2] = (lj_site_desc){1, LJ_MOD_DOWN, 160, 64, NULL};
    CHECK(lj_layout_site_paths(L, &err) == LORAJIT_OK, "%s", err.msg);
    static const char *const want[] = {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                       "model.layers.1.mlp.down_proj"};
    for (int i = 0; i < 3; i++)
        CHECK(L->sites[i].path && !strcmp(L->sites[i].path, want[i]), "site %d: %s", i,
              L->sites[i].path ? L->sites[i].path : "(null)");
    lj_alloc_fail_after(2); /* the second site's path: E_NOMEM, the first replaced, no leak */
    lorajit_status s = lj_layout_site_paths(L, &err);
    lj_alloc_fail_after(0);
    CHECK(s == LORAJIT_E_NOMEM && strstr(err.msg, "site 1") && L->sites[1].path, "nomem: %s", err.msg);
    lj_layout_free(L);
}

/* Parses the manifest text with config.model_type set to type (NULL: removed), resealed. */
static lorajit_status reparse(const char *text, const char *type, lj_manifest *m, lj_err *err) {
    cJSON *root = cJSON_Parse(text);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "model_type");
    if (type) cJSON_AddStringToObject(cfg, "model_type", type);
    CHECK(lj_manifest_seal(root, err) == LORAJIT_OK, "seal: %s", err->msg);
    char *forged = cJSON_PrintUnformatted(root);
    lj_err_clear(err);
    lorajit_status s = lj_manifest_parse(forged, strlen(forged), "forged.json", m, err);
    cJSON_free(forged);
    cJSON_Delete(root);
    return s;
}

/* A one-layer layout with q_proj and down_proj sites through manifest.json and back. */
static void test_manifest(const char *build) {
    lj_err err = {0};
    lj_layout *L = lj_layout_new();
    L->cfg = (lj_config){.dim = 64, .hidden_dim = 160, .n_layers = 1, .n_heads = 4, .n_kv_heads = 2,
                         .head_size = 16, .vocab_size = 256, .seq_len = 128, .rms_eps = 1e-5f,
                         .rope_theta = 10000.0f, .bias_mask = BIT(LJ_MOD_GATE) | BIT(LJ_MOD_UP) | BIT(LJ_MOD_DOWN)};
    L->schema = (lj_schema){.r_max = 8, .target_mask = BIT(LJ_MOD_Q) | BIT(LJ_MOD_DOWN), .n_slots = 2,
                            .max_tokens = 16, .seq_len = 16, .max_batch = 1};
    L->n_weights = 2;
    L->weights = calloc(2, sizeof *L->weights);
    L->weights[0] = (lj_weight_desc){strdup("model.layers.0.self_attn.q_proj.weight"), 64, 64, LJ_DTYPE_F32};
    L->weights[1] = (lj_weight_desc){strdup("model.layers.0.mlp.down_proj.weight"), 64, 160, LJ_DTYPE_F32};
    L->n_sites = 2;
    L->sites = calloc(2, sizeof *L->sites);
    L->sites[0] = (lj_site_desc){0, LJ_MOD_Q, 64, 64, NULL};
    L->sites[1] = (lj_site_desc){0, LJ_MOD_DOWN, 160, 64, NULL};
    char dir[2048], path[2100];
    snprintf(dir, sizeof dir, "%s/tmp_rt_arch", build);
    mkdir(dir, 0777);
    lj_manifest m = {.abi_version = LJ_ABI_VERSION, .L = L, .triple = "x86_64-pc-linux-gnu", .cpu = "x86-64"};
    CHECK(lj_manifest_write(dir, &m, &err) == LORAJIT_OK, "write: %s", err.msg);
    lj_layout_free(L);

    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = check_read_file(path, NULL);
    CHECK(text && strstr(text, "\"model_type\":\t\"llama\"") && strstr(text, "\"attention_bias\":\tfalse") &&
              strstr(text, "\"mlp_bias\":\ttrue") && strstr(text, "\"module\":\t\"down_proj\""),
          "manifest text: %s", text ? text : "(unreadable)");
    CHECK(lj_manifest_read(dir, &m, &err) == LORAJIT_OK, "read: %s", err.msg);
    if (m.L) {
        CHECK(m.L->cfg.arch == 0 && m.L->cfg.bias_mask == (BIT(LJ_MOD_GATE) | BIT(LJ_MOD_UP) | BIT(LJ_MOD_DOWN)),
              "config back: arch %d bias 0x%x", m.L->cfg.arch, m.L->cfg.bias_mask);
        CHECK(m.L->n_sites == 2 && m.L->sites[1].module == LJ_MOD_DOWN && m.L->sites[1].path &&
                  !strcmp(m.L->sites[1].path, "model.layers.0.mlp.down_proj"), "sites back");
        lj_config other = m.L->cfg;
        other.bias_mask |= BIT(LJ_MOD_K);
        lj_err_clear(&err);
        CHECK(lj_config_compare(&m.L->cfg, &other, "other/config.json", dir, &err) == LORAJIT_E_SHAPE &&
                  strstr(err.msg, "\"attention_bias\" is true"), "compare biases: %s", err.msg);
        other.bias_mask = 0;
        lj_err_clear(&err);
        CHECK(lj_config_compare(&m.L->cfg, &other, "other/config.json", dir, &err) == LORAJIT_E_SHAPE &&
                  strstr(err.msg, "\"mlp_bias\" is false"), "compare biases: %s", err.msg);
        CHECK(lj_config_compare(&m.L->cfg, &m.L->cfg, "same", dir, &err) == LORAJIT_OK, "compare same");
    }
    lj_manifest_clear(&m);
    if (text) {
        CHECK(reparse(text, NULL, &m, &err) == LORAJIT_OK && m.L && m.L->cfg.arch == 0,
              "no model_type (an older manifest) reads as llama: %s", err.msg);
        lj_manifest_clear(&m);
        CHECK(reparse(text, "gpt2", &m, &err) == LORAJIT_E_UNSUPPORTED && strstr(err.msg, "config.model_type") &&
                  strstr(err.msg, "\"llama\"") && !m.L, "unknown model_type: %s", err.msg);
    }
    free(text);
}

int main(int argc, char **argv) {
    test_lookup();
    test_families();
    test_modules();
    test_biases();
    test_site_paths();
    test_manifest(argc > 1 ? argv[1] : ".");
    return check_summary("test_rt_arch");
}
