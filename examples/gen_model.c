/* gen_model.c — lorajit_gen: writes a random LLaMA model in Hugging Face layout
 * (config.json + model.safetensors, or shards + model.safetensors.index.json) and
 * (gen_adapter.c) random PEFT LoRA adapters for it.
 *
 * Inputs: command-line options (see usage()). Outputs: files under OUTDIR.
 * Every value depends only on (seed, tensor name, element index): splitmix64 drives
 * an Irwin-Hall normal (sum of 12 uniforms, integer arithmetic, one rounding), so the
 * files are bit-identical on every machine. Uses libc, libm and cJSON. A CLI: errors go
 * to stderr and exit with status 2.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen.h"

// ----------------------------------------------------------------------------
// model

typedef struct model_cfg {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_size, vocab_size, max_pos;
    int tied, attention_bias, mlp_bias, shards;
    const char *arch;   /* model_type: llama, qwen2, qwen3, mistral, phi3, gemma */
    int sliding_window; /* mistral, phi3: 0 writes null */
    double rope_theta, rms_eps, std;
    uint64_t seed;
    gen_dtype dtype;
} model_cfg;

/* The families' classes (transformers' modeling_<family>.py) by model_type. */
static const struct { const char *model_type, *cls; } families[] = {
    {"llama", "LlamaForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"},
    {"mistral", "MistralForCausalLM"}, {"phi3", "Phi3ForCausalLM"}, {"gemma", "GemmaForCausalLM"},
};
static const char *family_class(const char *arch) {
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!strcmp(arch, families[i].model_type)) return families[i].cls;
    die("--arch %s: one of llama, qwen2, qwen3, mistral, phi3, gemma", arch);
}

/* The keys a family's config.json has beyond LLaMA's, as its configuration_<family>.py
 * writes them (Qwen2 has no attention_bias / mlp_bias: its q,k,v biases are fixed). */
static void write_family_keys(FILE *f, const model_cfg *c) {
    if (!strcmp(c->arch, "qwen2") || !strcmp(c->arch, "qwen3"))
        fprintf(f, "  \"max_window_layers\": %d,\n  \"use_sliding_window\": false,\n"
                   "  \"sliding_window\": %s,\n", c->n_layers, !strcmp(c->arch, "qwen2") ? "4096" : "null");
    if (!strcmp(c->arch, "mistral") || !strcmp(c->arch, "phi3")) {
        if (c->sliding_window) fprintf(f, "  \"sliding_window\": %d,\n", c->sliding_window);
        else fprintf(f, "  \"sliding_window\": null,\n");
    }
    /* configuration_phi3.py: dropouts and the longrope original length */
    if (!strcmp(c->arch, "phi3"))
        fprintf(f, "  \"embd_pdrop\": 0.0,\n  \"resid_pdrop\": 0.0,\n  \"original_max_position_embeddings\": %d,\n"
                   "  \"pad_token_id\": 32000,\n", c->max_pos);
    /* configuration_gemma.py: hidden_activation is what GemmaMLP reads */
    if (!strcmp(c->arch, "gemma"))
        fprintf(f, "  \"hidden_activation\": \"gelu_pytorch_tanh\",\n  \"pad_token_id\": 0,\n");
    if (strcmp(c->arch, "qwen2") && strcmp(c->arch, "mistral"))
        fprintf(f, "  \"attention_bias\": %s,\n", c->attention_bias ? "true" : "false");
}

static void write_model_config(const char *dir, const model_cfg *c) {
    char path[4096];
    FILE *f = open_out(dir, "config.json", path, sizeof path);
    fprintf(f, "{\n  \"architectures\": [\n    \"%s\"\n  ],\n", family_class(c->arch));
    write_family_keys(f, c);
    fprintf(f, "  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n");
    if (strcmp(c->arch, "phi3")) fprintf(f, "  \"head_dim\": %d,\n", c->head_size); /* Phi3Config has none */
    fprintf(f, "  \"hidden_act\": \"%s\",\n", !strcmp(c->arch, "gemma") ? "gelu_pytorch_tanh" : "silu");
    fprintf(f, "  \"hidden_size\": %d,\n  \"initializer_range\": 0.02,\n", c->dim);
    fprintf(f, "  \"intermediate_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->hidden_dim, c->max_pos);
    if (!strcmp(c->arch, "llama")) fprintf(f, "  \"mlp_bias\": %s,\n", c->mlp_bias ? "true" : "false");
    fprintf(f, "  \"model_type\": \"%s\",\n", c->arch);
    fprintf(f, "  \"num_attention_heads\": %d,\n  \"num_hidden_layers\": %d,\n", c->n_heads, c->n_layers);
    fprintf(f, "  \"num_key_value_heads\": %d,\n", c->n_kv_heads);
    if (strcmp(c->arch, "phi3") && strcmp(c->arch, "gemma")) fprintf(f, "  \"pretraining_tp\": 1,\n");
    fprintf(f, "  \"rms_norm_eps\": %g,\n  \"rope_scaling\": null,\n  \"rope_theta\": ", c->rms_eps);
    json_num(f, c->rope_theta, 0);
    fprintf(f, ",\n  \"tie_word_embeddings\": %s,\n", c->tied ? "true" : "false");
    fprintf(f, "  \"torch_dtype\": \"%s\",\n", dtype_torch_name(c->dtype));
    fprintf(f, "  \"transformers_version\": \"4.47.0\",\n  \"use_cache\": true,\n");
    fprintf(f, "  \"vocab_size\": %d\n}\n", c->vocab_size);
    close_out(f, path);
}

/* The HF tensors of the model, in model order (embed, layers, norm, lm_head). */
static void build_model_tensors(tensor_list *l, const model_cfg *c) {
    char name[192];
    int q_dim = c->n_heads * c->head_size, kv_dim = c->n_kv_heads * c->head_size;
    double s = c->std;
    /* Gemma's norms compute with 1 + w (GemmaRMSNorm, weights initialised to 0) */
    double norm_mean = !strcmp(c->arch, "gemma") ? 0.0 : 1.0;
    int phi3 = !strcmp(c->arch, "phi3");
    tensor_add(l, "model.embed_tokens.weight", 2, c->vocab_size, c->dim, c->seed, 0, s);
    for (int L = 0; L < c->n_layers; L++) {
        static const char *attn[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
        static const char *mlp[3] = {"gate_proj", "up_proj", "down_proj"};
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", L);
        tensor_add(l, name, 1, c->dim, 1, c->seed, norm_mean, 0.1);
        if (phi3) { /* modeling_phi3.py: qkv_proj [q_dim + 2 kv_dim, dim], o_proj, gate_up_proj [2 hidden, dim] */
            snprintf(name, sizeof name, "model.layers.%d.self_attn.qkv_proj.weight", L);
            tensor_add(l, name, 2, q_dim + 2 * kv_dim, c->dim, c->seed, 0, s);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", L);
            tensor_add(l, name, 2, c->dim, q_dim, c->seed, 0, s);
            snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", L);
            tensor_add(l, name, 1, c->dim, 1, c->seed, norm_mean, 0.1);
            snprintf(name, sizeof name, "model.layers.%d.mlp.gate_up_proj.weight", L);
            tensor_add(l, name, 2, 2 * c->hidden_dim, c->dim, c->seed, 0, s);
            snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", L);
            tensor_add(l, name, 2, c->dim, c->hidden_dim, c->seed, 0, s);
            continue;
        }
        for (int m = 0; m < 4; m++) {
            int out = m == 0 ? q_dim : m == 3 ? c->dim : kv_dim, in = m == 3 ? q_dim : c->dim;
            snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", L, attn[m]);
            tensor_add(l, name, 2, out, in, c->seed, 0, s);
            /* qwen2: q,k,v biased always, o never (modeling_qwen2.py Qwen2Attention) */
            int biased = !strcmp(c->arch, "qwen2") ? m < 3 : !strcmp(c->arch, "mistral") ? 0 : c->attention_bias;
            if (biased) {
                snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.bias", L, attn[m]);
                tensor_add(l, name, 1, out, 1, c->seed, 0, s);
            }
        }
        if (!strcmp(c->arch, "qwen3")) /* modeling_qwen3.py Qwen3Attention: q_norm, k_norm [head_dim] */
            for (int m = 0; m < 2; m++) {
                snprintf(name, sizeof name, "model.layers.%d.self_attn.%s_norm.weight", L, m ? "k" : "q");
                tensor_add(l, name, 1, c->head_size, 1, c->seed, 1.0, 0.1);
            }
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", L);
        tensor_add(l, name, 1, c->dim, 1, c->seed, norm_mean, 0.1);
        for (int m = 0; m < 3; m++) {
            int out = m == 2 ? c->dim : c->hidden_dim, in = m == 2 ? c->hidden_dim : c->dim;
            snprintf(name, sizeof name, "model.layers.%d.mlp.%s.weight", L, mlp[m]);
            tensor_add(l, name, 2, out, in, c->seed, 0, s);
            if (c->mlp_bias && !strcmp(c->arch, "llama")) {
                snprintf(name, sizeof name, "model.layers.%d.mlp.%s.bias", L, mlp[m]);
                tensor_add(l, name, 1, out, 1, c->seed, 0, s);
            }
        }
    }
    tensor_add(l, "model.norm.weight", 1, c->dim, 1, c->seed, norm_mean, 0.1);
    if (!c->tied) tensor_add(l, "lm_head.weight", 2, c->vocab_size, c->dim, c->seed, 0, s);
}

/* Splits the tensors, in model order, into c->shards files of about equal size.
 * Returns the bytes of tensor data written. */
static int64_t write_model_weights(const char *dir, tensor_list *l, const model_cfg *c) {
    gen_tensor **ts = xcalloc((size_t)l->n, sizeof *ts);
    if (c->shards == 1) {
        for (int i = 0; i < l->n; i++) ts[i] = &l->t[i];
        int64_t bytes = write_safetensors(dir, "model.safetensors", ts, l->n, c->dtype);
        free(ts);
        return bytes;
    }
    if (c->shards > l->n) die("--shards %d: the model has only %d tensors", c->shards, l->n);
    int64_t total = 0, done = 0;
    for (int i = 0; i < l->n; i++) total += tensor_count(&l->t[i]) * dtype_size(c->dtype);
    int *shard_of = xcalloc((size_t)l->n, sizeof *shard_of);
    for (int i = 0, s = 0; i < l->n; i++) {
        shard_of[i] = s;
        done += tensor_count(&l->t[i]) * dtype_size(c->dtype);
        // next shard once this one holds its share, or when each later shard needs one tensor
        int left = l->n - i - 1;
        if (s < c->shards - 1 && (done * c->shards >= total * (s + 1) || left <= c->shards - 1 - s)) s++;
    }
    char file[64], path[4096];
    char (*files)[64] = xcalloc((size_t)c->shards, sizeof *files);
    for (int s = 0; s < c->shards; s++) {
        int n = 0;
        for (int i = 0; i < l->n; i++)
            if (shard_of[i] == s) ts[n++] = &l->t[i];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, c->shards);
        strcpy(files[s], file);
        write_safetensors(dir, file, ts, n, c->dtype);
    }
    for (int i = 0; i < l->n; i++) ts[i] = &l->t[i];
    qsort(ts, (size_t)l->n, sizeof *ts, cmp_tensor_ptr);
    FILE *f = open_out(dir, "model.safetensors.index.json", path, sizeof path);
    fprintf(f, "{\n  \"metadata\": {\n    \"total_size\": %lld\n  },\n  \"weight_map\": {\n", (long long)total);
    for (int i = 0; i < l->n; i++)
        fprintf(f, "    \"%s\": \"%s\"%s\n", ts[i]->name, files[shard_of[ts[i] - l->t]], i + 1 < l->n ? "," : "");
    fprintf(f, "  }\n}\n");
    close_out(f, path);
    free(files);
    free(shard_of);
    free(ts);
    return total;
}

int cmd_model(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) gen_usage("model", 1);
    if (argc < 1 || argv[0][0] == '-') die("model: missing OUTDIR");
    const char *dir = argv[0];
    model_cfg c = {.dim = 64, .hidden_dim = 160, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                   .vocab_size = 256, .max_pos = 128, .shards = 1, .rope_theta = 10000.0,
                   .rms_eps = 1e-5, .std = 0.08, .seed = 1, .dtype = DT_F32, .arch = "llama"};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--tied")) { c.tied = 1; continue; }
        if (!strcmp(o, "--attention-bias")) { c.attention_bias = 1; continue; }
        if (!strcmp(o, "--mlp-bias")) { c.mlp_bias = 1; continue; }
        if (i + 1 >= argc) die("%s: missing value (or unknown flag)", o);
        const char *v = argv[++i];
        if (!strcmp(o, "--dim")) c.dim = (int)parse_int(o, v, 1, 1 << 16);
        else if (!strcmp(o, "--hidden")) c.hidden_dim = (int)parse_int(o, v, 1, 1 << 18);
        else if (!strcmp(o, "--layers")) c.n_layers = (int)parse_int(o, v, 1, 1024);
        else if (!strcmp(o, "--heads")) c.n_heads = (int)parse_int(o, v, 1, 1024);
        else if (!strcmp(o, "--kv-heads")) c.n_kv_heads = (int)parse_int(o, v, 1, 1024);
        else if (!strcmp(o, "--head-dim")) c.head_size = (int)parse_int(o, v, 2, 1 << 14);
        else if (!strcmp(o, "--vocab")) c.vocab_size = (int)parse_int(o, v, 1, 1 << 22);
        else if (!strcmp(o, "--max-pos")) c.max_pos = (int)parse_int(o, v, 1, 1 << 22);
        else if (!strcmp(o, "--shards")) c.shards = (int)parse_int(o, v, 1, 99999);
        else if (!strcmp(o, "--seed")) c.seed = (uint64_t)parse_int(o, v, 0, 0x7fffffffffffffffL);
        else if (!strcmp(o, "--std")) c.std = parse_num(o, v);
        else if (!strcmp(o, "--rope-theta")) c.rope_theta = parse_num(o, v);
        else if (!strcmp(o, "--rms-eps")) c.rms_eps = parse_num(o, v);
        else if (!strcmp(o, "--dtype")) c.dtype = parse_dtype(v);
        else if (!strcmp(o, "--arch")) c.arch = v, (void)family_class(v);
        else if (!strcmp(o, "--sliding-window")) c.sliding_window = (int)parse_int(o, v, 0, 1 << 24);
        else die("model: unknown option %s", o);
    }
    if (!c.head_size) {
        if (c.dim % c.n_heads) die("--dim %d is not a multiple of --heads %d (give --head-dim)", c.dim, c.n_heads);
        c.head_size = c.dim / c.n_heads;
    }
    if (c.head_size % 2) die("head_dim %d must be even (RoPE rotates pairs)", c.head_size);
    if (!strcmp(c.arch, "phi3") && c.head_size * c.n_heads != c.dim)
        die("--arch phi3: head_dim is hidden_size / num_attention_heads (Phi3Config has no head_dim)");
    if (!strcmp(c.arch, "phi3") && (c.attention_bias || c.mlp_bias)) die("--arch phi3: its linears have no biases");
    if (!strcmp(c.arch, "gemma")) c.tied = 1; /* GemmaConfig: tie_word_embeddings true */
    if (c.n_heads % c.n_kv_heads) die("--heads %d is not a multiple of --kv-heads %d", c.n_heads, c.n_kv_heads);
    make_dirs(dir);
    write_model_config(dir, &c);
    tensor_list l = {0};
    build_model_tensors(&l, &c);
    int64_t bytes = write_model_weights(dir, &l, &c);
    if (c.shards == 1)
        printf("lorajit_gen: wrote %s: config.json, model.safetensors (%d tensors, %lld bytes of %s)\n", dir, l.n,
               (long long)bytes, dtype_st_name(c.dtype));
    else
        printf("lorajit_gen: wrote %s: config.json, %d shards model-*-of-%05d.safetensors, "
               "model.safetensors.index.json (%d tensors, %lld bytes of %s)\n",
               dir, c.shards, c.shards, l.n, (long long)bytes, dtype_st_name(c.dtype));
    tensor_list_free(&l);
    return 0;
}

// ----------------------------------------------------------------------------
// main

static const char model_usage[] =
    "  lorajit_gen model OUTDIR [--arch llama|qwen2|qwen3|mistral|phi3|gemma]\n"
    "      [--sliding-window N (mistral, phi3)]\n"
    "      [--dim 64] [--hidden 160] [--layers 2] [--heads 4] [--kv-heads 2]\n"
    "      [--head-dim N] [--vocab 256] [--max-pos 128] [--tied] [--attention-bias] [--mlp-bias]\n"
    "      [--rope-theta 10000] [--rms-eps 1e-5] [--dtype f32|f16|bf16] [--shards N] [--seed S] [--std 0.08]\n";
static const char adapter_usage[] =
    "  lorajit_gen adapter OUTDIR --model MODELDIR [--r 8] [--alpha 16]\n"
    "      [--targets q_proj,v_proj | --target-regex REGEX] [--rslora] [--rank-pattern KEY=R,...]\n"
    "      [--alpha-pattern KEY=A,...] [--layers 0,1] [--dtype f32|f16|bf16] [--seed S] [--std 0.05]\n";

void gen_usage(const char *which, int asked) {
    FILE *f = asked ? stdout : stderr;
    fputs("usage:\n", f);
    if (!which || !strcmp(which, "model")) fputs(model_usage, f);
    if (!which || !strcmp(which, "adapter")) fputs(adapter_usage, f);
    exit(asked ? 0 : 2);
}

int main(int argc, char **argv) {
    if (argc < 2) gen_usage(NULL, 0);
    if (!strcmp(argv[1], "model")) return cmd_model(argc - 2, argv + 2);
    if (!strcmp(argv[1], "adapter")) return cmd_adapter(argc - 2, argv + 2);
    gen_usage(NULL, !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"));
}
