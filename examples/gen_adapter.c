/* gen_adapter.c — `lorajit_gen adapter`: a random PEFT LoRA adapter for a model
 * folder (adapter_config.json + adapter_model.safetensors), with PEFT's options
 * (targets or a target regex, rslora, rank/alpha patterns, layers_to_transform,
 * dtype). Reads the model's config.json for its shapes. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>


#include "cli_file.h"
#include "gen.h"

// ----------------------------------------------------------------------------
// adapter

/* The integer field key of the model's config.json (root); fallback when it is
 * absent or null, and an error when fallback < 0. */
static int config_int(const cJSON *root, const char *key, int fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (fallback < 0) die("config.json: missing \"%s\"", key);
        return fallback;
    }
    if (!cJSON_IsNumber(v)) die("config.json: \"%s\" is not a number", key);
    return (int)v->valuedouble;
}

/* A KEY=VALUE list: "q_proj=8,model.layers.0.mlp.up_proj=4". */
typedef struct pattern_list {
    char **keys;   // [n]
    double *vals;  // [n]
    regex_t *re;   // [n], compiled "^(.*\.)?(KEY)$"
    int n;
} pattern_list;

static void parse_patterns(const char *opt, const char *s, pattern_list *p) {
    char *buf = strdup(s), *save = NULL;
    if (!buf) die("out of memory");
    int cap = 1;
    for (const char *q = s; *q; q++) cap += *q == ',';
    p->keys = xcalloc((size_t)cap, sizeof *p->keys);
    p->vals = xcalloc((size_t)cap, sizeof *p->vals);
    p->re = xcalloc((size_t)cap, sizeof *p->re);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(tok, '=');
        if (!eq || eq == tok) die("%s: '%s' is not KEY=VALUE", opt, tok);
        *eq = 0;
        p->keys[p->n] = strdup(tok);
        p->vals[p->n] = parse_num(opt, eq + 1);
        size_t len = strlen(tok) + 32;
        char *rx = xcalloc(len, 1);
        snprintf(rx, len, "^(.*\\.)?(%s)$", tok);
        if (regcomp(&p->re[p->n], rx, REG_EXTENDED | REG_NOSUB)) die("%s: bad regex '%s'", opt, tok);
        free(rx);
        p->n++;
    }
    free(buf);
}

/* PEFT's get_pattern_key: the first key whose pattern matches the module path. */
static int pattern_lookup(const pattern_list *p, const char *module, double *val) {
    for (int i = 0; i < p->n; i++)
        if (!regexec(&p->re[i], module, 0, NULL, 0)) { *val = p->vals[i]; return 1; }
    return 0;
}

static void json_patterns(FILE *f, const pattern_list *p, int as_int) {
    if (!p->n) { fputs("{}", f); return; }
    fputs("{\n", f);
    for (int i = 0; i < p->n; i++) {
        fputs("    ", f);
        json_str(f, p->keys[i]);
        fputs(": ", f);
        json_num(f, p->vals[i], as_int);
        fputs(i + 1 < p->n ? ",\n" : "\n", f);
    }
    fputs("  }", f);
}

typedef struct adapter_cfg {
    const char *model_dir, *regex;
    char **targets; // [n_targets] module names or suffixes (PEFT list form)
    int n_targets, r, rslora;
    double alpha, std;
    int *layers;    // [n_layers] layers_to_transform, NULL = all
    int n_layers;
    pattern_list rank_pattern, alpha_pattern;
    uint64_t seed;
    gen_dtype dtype;
} adapter_cfg;

/* PEFT's check_target_module_exists for a module path of the base model. */
static int adapter_targets(const adapter_cfg *a, const regex_t *re, const char *module, int layer) {
    if (a->regex) return !regexec(re, module, 0, NULL, 0);
    int found = 0;
    for (int i = 0; i < a->n_targets && !found; i++) {
        size_t n = strlen(module), k = strlen(a->targets[i]);
        found = !strcmp(module, a->targets[i]) ||
                (n > k && module[n - k - 1] == '.' && !strcmp(module + n - k, a->targets[i]));
    }
    if (!found || !a->layers) return found;
    for (int i = 0; i < a->n_layers; i++)
        if (a->layers[i] == layer) return 1;
    return 0;
}

static void write_adapter_config(const char *dir, const adapter_cfg *a) {
    char path[4096];
    FILE *f = open_out(dir, "adapter_config.json", path, sizeof path);
    fputs("{\n  \"alpha_pattern\": ", f);
    json_patterns(f, &a->alpha_pattern, 1);
    fputs(",\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": ", f);
    json_str(f, a->model_dir);
    fputs(",\n  \"bias\": \"none\",\n  \"corda_config\": null,\n  \"eva_config\": null,\n"
          "  \"exclude_modules\": null,\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n"
          "  \"init_lora_weights\": true,\n  \"layer_replication\": null,\n  \"layers_pattern\": null,\n"
          "  \"layers_to_transform\": ", f);
    if (!a->layers) fputs("null", f);
    else {
        fputs("[\n", f);
        for (int i = 0; i < a->n_layers; i++) fprintf(f, "    %d%s\n", a->layers[i], i + 1 < a->n_layers ? "," : "");
        fputs("  ]", f);
    }
    fputs(",\n  \"loftq_config\": {},\n  \"lora_alpha\": ", f);
    json_num(f, a->alpha, 1);
    fputs(",\n  \"lora_bias\": false,\n  \"lora_dropout\": 0.0,\n  \"megatron_config\": null,\n"
          "  \"megatron_core\": \"megatron.core\",\n  \"modules_to_save\": null,\n"
          "  \"peft_type\": \"LORA\",\n", f);
    fprintf(f, "  \"r\": %d,\n  \"rank_pattern\": ", a->r);
    json_patterns(f, &a->rank_pattern, 1);
    fputs(",\n  \"revision\": null,\n  \"target_modules\": ", f);
    if (a->regex) json_str(f, a->regex);
    else {
        fputs("[\n", f);
        for (int i = 0; i < a->n_targets; i++) {
            fputs("    ", f);
            json_str(f, a->targets[i]);
            fputs(i + 1 < a->n_targets ? ",\n" : "\n", f);
        }
        fputs("  ]", f);
    }
    fprintf(f, ",\n  \"task_type\": \"CAUSAL_LM\",\n  \"trainable_token_indices\": null,\n"
               "  \"use_dora\": false,\n  \"use_rslora\": %s\n}\n", a->rslora ? "true" : "false");
    close_out(f, path);
}

static char *read_text(const char *dir, const char *name) {
    char path[4096], why[8400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = cli_open_read("--model", path, 0, why, sizeof why);
    if (!f) die("%s", why);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = xcalloc((size_t)n + 1, 1);
    if (n < 0 || fread(s, 1, (size_t)n, f) != (size_t)n) die("cannot read %s", path);
    fclose(f);
    return s;
}

static char **split_list(const char *s, int *n) {
    char *buf = strdup(s), *save = NULL;
    if (!buf) die("out of memory");
    char **out = xcalloc(strlen(s) + 1, sizeof *out);
    *n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) out[(*n)++] = strdup(tok);
    free(buf);
    return out;
}

static void pattern_list_free(pattern_list *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->keys[i]);
        regfree(&p->re[i]);
    }
    free(p->keys);
    free(p->vals);
    free(p->re);
}

int cmd_adapter(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) gen_usage("adapter", 1);
    if (argc < 1 || argv[0][0] == '-') die("adapter: missing OUTDIR");
    const char *dir = argv[0], *targets = "q_proj,v_proj", *layers = NULL;
    adapter_cfg a = {.r = 8, .alpha = 16, .std = 0.05, .seed = 1, .dtype = DT_F32};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--rslora")) { a.rslora = 1; continue; }
        if (i + 1 >= argc) die("%s: missing value (or unknown flag)", o);
        const char *v = argv[++i];
        if (!strcmp(o, "--model")) a.model_dir = v;
        else if (!strcmp(o, "--r")) a.r = (int)parse_int(o, v, 1, 1 << 16);
        else if (!strcmp(o, "--alpha")) a.alpha = parse_num(o, v);
        else if (!strcmp(o, "--targets")) targets = v;
        else if (!strcmp(o, "--target-regex")) a.regex = v;
        else if (!strcmp(o, "--rank-pattern")) parse_patterns(o, v, &a.rank_pattern);
        else if (!strcmp(o, "--alpha-pattern")) parse_patterns(o, v, &a.alpha_pattern);
        else if (!strcmp(o, "--layers")) layers = v;
        else if (!strcmp(o, "--dtype")) a.dtype = parse_dtype(v);
        else if (!strcmp(o, "--seed")) a.seed = (uint64_t)parse_int(o, v, 0, 0x7fffffffffffffffL);
        else if (!strcmp(o, "--std")) a.std = parse_num(o, v);
        else die("adapter: unknown option %s", o);
    }
    if (!a.model_dir) die("adapter: --model MODELDIR is required");
    if (a.regex && layers) die("--layers has no effect with --target-regex in PEFT; put the layers in the regex");
    a.targets = split_list(targets, &a.n_targets);
    if (layers) {
        char **ls = split_list(layers, &a.n_layers);
        a.layers = xcalloc((size_t)a.n_layers, sizeof *a.layers);
        for (int i = 0; i < a.n_layers; i++) a.layers[i] = (int)parse_int("--layers", ls[i], 0, 1 << 20), free(ls[i]);
        free(ls);
    }
    regex_t re;
    memset(&re, 0, sizeof re);
    if (a.regex) {
        size_t len = strlen(a.regex) + 8;
        char *rx = xcalloc(len, 1);
        snprintf(rx, len, "^(%s)$", a.regex);
        if (regcomp(&re, rx, REG_EXTENDED | REG_NOSUB)) die("--target-regex: bad POSIX regex '%s'", a.regex);
        free(rx);
    }

    char *text = read_text(a.model_dir, "config.json");
    cJSON *js = cJSON_Parse(text);
    if (!js) die("%s/config.json: not valid JSON", a.model_dir);
    free(text);
    int dim = config_int(js, "hidden_size", -1), hidden_dim = config_int(js, "intermediate_size", -1);
    int n_layers = config_int(js, "num_hidden_layers", -1), n_heads = config_int(js, "num_attention_heads", -1);
    int n_kv_heads = config_int(js, "num_key_value_heads", n_heads);
    int head_size = config_int(js, "head_dim", dim / n_heads);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(js, "model_type");
    int phi3 = cJSON_IsString(type) && !strcmp(type->valuestring, "phi3");
    cJSON_Delete(js);
    int q_dim = n_heads * head_size, kv_dim = n_kv_heads * head_size;

    /* the LoRA-able linears as PEFT names them: LLaMA's seven, or Phi-3's four
     * (modeling_phi3.py: qkv_proj and gate_up_proj fused) */
    static const char *mods[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    static const char *phi3_mods[4] = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
    int ins[7] = {dim, dim, dim, q_dim, dim, dim, hidden_dim}, outs[7] = {q_dim, kv_dim, kv_dim, dim,
                                                                         hidden_dim, hidden_dim, dim};
    int phi3_ins[4] = {dim, q_dim, dim, hidden_dim}, phi3_outs[4] = {q_dim + 2 * kv_dim, dim, 2 * hidden_dim, dim};
    int n_mods = phi3 ? 4 : 7, n_attn = phi3 ? 2 : 4;
    tensor_list l = {0};
    char module[160], name[192];
    for (int L = 0; L < n_layers; L++) {
        for (int m = 0; m < n_mods; m++) {
            snprintf(module, sizeof module, "model.layers.%d.%s.%s", L, m < n_attn ? "self_attn" : "mlp",
                     phi3 ? phi3_mods[m] : mods[m]);
            if (!adapter_targets(&a, &re, module, L)) continue;
            double r = a.r;
            pattern_lookup(&a.rank_pattern, module, &r);
            if (r < 1 || r != (int)r) die("rank_pattern gives %s rank %g", module, r);
            snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", module);
            tensor_add(&l, name, 2, (int)r, phi3 ? phi3_ins[m] : ins[m], a.seed, 0, a.std);
            snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", module);
            tensor_add(&l, name, 2, phi3 ? phi3_outs[m] : outs[m], (int)r, a.seed, 0, a.std);
        }
    }
    if (!l.n) die("adapter: no module of the model matches the targets");
    make_dirs(dir);
    write_adapter_config(dir, &a);
    gen_tensor **ts = xcalloc((size_t)l.n, sizeof *ts);
    for (int i = 0; i < l.n; i++) ts[i] = &l.t[i];
    int64_t bytes = write_safetensors(dir, "adapter_model.safetensors", ts, l.n, a.dtype);
    printf("lorajit_gen: wrote %s: adapter_config.json, adapter_model.safetensors (%d tensors, %lld bytes of %s)\n",
           dir, l.n, (long long)bytes, dtype_st_name(a.dtype));
    free(ts);
    tensor_list_free(&l);
    for (int i = 0; i < a.n_targets; i++) free(a.targets[i]);
    free(a.targets);
    free(a.layers);
    pattern_list_free(&a.rank_pattern);
    pattern_list_free(&a.alpha_pattern);
    if (a.regex) regfree(&re);
    return 0;
}
