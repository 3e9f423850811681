/* gen_model.c — lorajit_gen: writes a random LLaMA model in Hugging Face layout
 * (config.json + model.safetensors, or shards + model.safetensors.index.json) and
 * random PEFT LoRA adapters for it (adapter_config.json + adapter_model.safetensors).
 *
 * Inputs: command-line options (see usage()). Outputs: files under OUTDIR.
 * Every value depends only on (seed, tensor name, element index): splitmix64 drives
 * an Irwin-Hall normal (sum of 12 uniforms, integer arithmetic, one rounding), so the
 * files are bit-identical on every machine. Uses libc and libm only. A CLI: errors go
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

// ----------------------------------------------------------------------------
// errors

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("lorajit_gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory");
    return p;
}

static long parse_int(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
    return v;
}

static double parse_num(const char *opt, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) die("%s: '%s' is not a number", opt, s);
    return v;
}

// ----------------------------------------------------------------------------
// random numbers: splitmix64 + Irwin-Hall normal

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Approximately N(0, 1): sum of 12 uniform 32-bit integers, centred. The sum is
 * exact in int64 and in double (< 2^53), and the scale by 2^-32 is exact. */
static double rng_normal(uint64_t *state) {
    int64_t sum = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t z = splitmix64(state);
        sum += (int64_t)(z >> 32) + (int64_t)(z & 0xffffffffu);
    }
    sum -= (int64_t)6 << 32;
    return (double)sum * (1.0 / 4294967296.0);
}

// ----------------------------------------------------------------------------
// tensors

typedef struct gen_tensor {
    char name[192];
    int ndim;
    int64_t shape[2]; // [out, in] for matrices, [n] for vectors
    float *data;      // [shape[0] * shape[1]]
} gen_tensor;

typedef struct tensor_list {
    gen_tensor *t; // [n], capacity cap
    int n, cap;
} tensor_list;

/* Appends a tensor whose elements are mean + std * N(0,1), seeded by (seed, name). */
static void tensor_add(tensor_list *l, const char *name, int ndim, int64_t rows, int64_t cols,
                       uint64_t seed, double mean, double std) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, (size_t)l->cap * sizeof *l->t);
        if (!l->t) die("out of memory");
    }
    gen_tensor *t = &l->t[l->n++];
    if (strlen(name) >= sizeof t->name) die("tensor name too long: %s", name);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->shape[0] = rows;
    t->shape[1] = ndim == 2 ? cols : 1;
    int64_t count = rows * t->shape[1];
    t->data = xcalloc((size_t)count, sizeof(float));
    uint64_t state = seed * 0x9e3779b97f4a7c15ull ^ fnv1a64(name); // one stream per tensor
    for (int64_t i = 0; i < count; i++) t->data[i] = (float)(mean + std * rng_normal(&state));
}

static void tensor_list_free(tensor_list *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].data);
    free(l->t);
}

static int64_t tensor_count(const gen_tensor *t) { return t->shape[0] * t->shape[1]; }
// ----------------------------------------------------------------------------
// dtypes: f32 stored as is, f16 and bf16 rounded to nearest even

typedef enum { DT_F32, DT_F16, DT_BF16 } gen_dtype;

static gen_dtype parse_dtype(const char *s) {
    if (!strcmp(s, "f32")) return DT_F32;
    if (!strcmp(s, "f16")) return DT_F16;
    if (!strcmp(s, "bf16")) return DT_BF16;
    die("--dtype: '%s' is not f32, f16 or bf16", s);
    return DT_F32;
}

static const char *dtype_st_name(gen_dtype d) { return d == DT_F32 ? "F32" : d == DT_F16 ? "F16" : "BF16"; }
static const char *dtype_torch_name(gen_dtype d) {
    return d == DT_F32 ? "float32" : d == DT_F16 ? "float16" : "bfloat16";
}
static int dtype_size(gen_dtype d) { return d == DT_F32 ? 4 : 2; }

static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    int exp = (int)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { // f16 subnormal or zero
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; // a carry rolls into the exponent
    return (uint16_t)h;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* Writes count values of data as little-endian dtype to f. */
static void write_values(FILE *f, const float *data, int64_t count, gen_dtype dt) {
    unsigned char b[4];
    for (int64_t i = 0; i < count; i++) {
        uint32_t x;
        if (dt == DT_F32) memcpy(&x, &data[i], 4);
        else x = dt == DT_F16 ? f32_to_f16(data[i]) : f32_to_bf16(data[i]);
        for (int k = 0; k < 4; k++) b[k] = (unsigned char)(x >> (8 * k));
        if (fwrite(b, 1, (size_t)dtype_size(dt), f) != (size_t)dtype_size(dt)) die("write failed");
    }
}

// ----------------------------------------------------------------------------
// files

static void make_dirs(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) die("path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) die("cannot create %s: %s", buf, strerror(errno));
            if (!c) break;
            *p = c;
        }
    }
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t cap) {
    if ((size_t)snprintf(path, cap, "%s/%s", dir, name) >= cap) die("path too long: %s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot write %s: %s", path, strerror(errno));
    return f;
}

static void close_out(FILE *f, const char *path) {
    if (ferror(f) | fclose(f)) die("error writing %s", path);
}

/* Writes s as a JSON string literal. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* Writes a number as Python's json would: integral values without a fraction when
 * as_int, else like repr(float). */
static void json_num(FILE *f, double v, int as_int) {
    if (as_int && v == (double)(long long)v) fprintf(f, "%lld", (long long)v);
    else if (v == (double)(long long)v && v < 1e16 && v > -1e16) fprintf(f, "%.1f", v);
    else fprintf(f, "%.17g", v);
}

static int cmp_tensor_ptr(const void *a, const void *b) {
    return strcmp((*(gen_tensor *const *)a)->name, (*(gen_tensor *const *)b)->name);
}

/* Writes ts[0..n) (sorted by name, as the safetensors library does) to dir/file.
 * Layout: u64 LE header length, JSON header padded with spaces to a multiple of 8,
 * then the data. Returns the data size in bytes. */
static int64_t write_safetensors(const char *dir, const char *file, gen_tensor **ts, int n, gen_dtype dt) {
    qsort(ts, (size_t)n, sizeof *ts, cmp_tensor_ptr);
    size_t cap = 256 + (size_t)n * 320, len = 0;
    char *hdr = xcalloc(cap, 1);
    int64_t off = 0;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        int64_t bytes = tensor_count(ts[i]) * dtype_size(dt);
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", ts[i]->name,
                                dtype_st_name(dt));
        for (int d = 0; d < ts[i]->ndim; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "", (long long)ts[i]->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
                                (long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    if (len + 8 >= cap) die("internal: safetensors header overflow");
    while (len % 8) hdr[len++] = ' ';
    char path[4096];
    FILE *f = open_out(dir, file, path, sizeof path);
    unsigned char lenb[8];
    for (int k = 0; k < 8; k++) lenb[k] = (unsigned char)((uint64_t)len >> (8 * k));
    fwrite(lenb, 1, 8, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < n; i++) write_values(f, ts[i]->data, tensor_count(ts[i]), dt);
    close_out(f, path);
    free(hdr);
    return off;
}

// ----------------------------------------------------------------------------
// model

typedef struct model_cfg {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_size, vocab_size, max_pos;
    int tied, attention_bias, mlp_bias, shards;
    double rope_theta, rms_eps, std;
    uint64_t seed;
    gen_dtype dtype;
} model_cfg;

static void write_model_config(const char *dir, const model_cfg *c) {
    char path[4096];
    FILE *f = open_out(dir, "config.json", path, sizeof path);
    fprintf(f, "{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n");
    fprintf(f, "  \"attention_bias\": %s,\n", c->attention_bias ? "true" : "false");
    fprintf(f, "  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n");
    fprintf(f, "  \"head_dim\": %d,\n  \"hidden_act\": \"silu\",\n", c->head_size);
    fprintf(f, "  \"hidden_size\": %d,\n  \"initializer_range\": 0.02,\n", c->dim);
    fprintf(f, "  \"intermediate_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->hidden_dim, c->max_pos);
    fprintf(f, "  \"mlp_bias\": %s,\n  \"model_type\": \"llama\",\n", c->mlp_bias ? "true" : "false");
    fprintf(f, "  \"num_attention_heads\": %d,\n  \"num_hidden_layers\": %d,\n", c->n_heads, c->n_layers);
    fprintf(f, "  \"num_key_value_heads\": %d,\n  \"pretraining_tp\": 1,\n", c->n_kv_heads);
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
    tensor_add(l, "model.embed_tokens.weight", 2, c->vocab_size, c->dim, c->seed, 0, s);
    for (int L = 0; L < c->n_layers; L++) {
        static const char *attn[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
        static const char *mlp[3] = {"gate_proj", "up_proj", "down_proj"};
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", L);
        tensor_add(l, name, 1, c->dim, 1, c->seed, 1.0, 0.1);
        for (int m = 0; m < 4; m++) {
            int out = m == 0 ? q_dim : m == 3 ? c->dim : kv_dim, in = m == 3 ? q_dim : c->dim;
            snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", L, attn[m]);
            tensor_add(l, name, 2, out, in, c->seed, 0, s);
            if (c->attention_bias) {
                snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.bias", L, attn[m]);
                tensor_add(l, name, 1, out, 1, c->seed, 0, s);
            }
        }
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", L);
        tensor_add(l, name, 1, c->dim, 1, c->seed, 1.0, 0.1);
        for (int m = 0; m < 3; m++) {
            int out = m == 2 ? c->dim : c->hidden_dim, in = m == 2 ? c->hidden_dim : c->dim;
            snprintf(name, sizeof name, "model.layers.%d.mlp.%s.weight", L, mlp[m]);
            tensor_add(l, name, 2, out, in, c->seed, 0, s);
            if (c->mlp_bias) {
                snprintf(name, sizeof name, "model.layers.%d.mlp.%s.bias", L, mlp[m]);
                tensor_add(l, name, 1, out, 1, c->seed, 0, s);
            }
        }
    }
    tensor_add(l, "model.norm.weight", 1, c->dim, 1, c->seed, 1.0, 0.1);
    if (!c->tied) tensor_add(l, "lm_head.weight", 2, c->vocab_size, c->dim, c->seed, 0, s);
}

/* Splits the tensors, in model order, into c->shards files of about equal size. */
static void write_model_weights(const char *dir, tensor_list *l, const model_cfg *c) {
    gen_tensor **ts = xcalloc((size_t)l->n, sizeof *ts);
    if (c->shards == 1) {
        for (int i = 0; i < l->n; i++) ts[i] = &l->t[i];
        write_safetensors(dir, "model.safetensors", ts, l->n, c->dtype);
        free(ts);
        return;
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
}

static int cmd_model(int argc, char **argv) {
    if (argc < 1 || argv[0][0] == '-') die("model: missing OUTDIR");
    const char *dir = argv[0];
    model_cfg c = {.dim = 64, .hidden_dim = 160, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                   .vocab_size = 256, .max_pos = 128, .shards = 1, .rope_theta = 10000.0,
                   .rms_eps = 1e-5, .std = 0.08, .seed = 1, .dtype = DT_F32};
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
        else die("model: unknown option %s", o);
    }
    if (!c.head_size) {
        if (c.dim % c.n_heads) die("--dim %d is not a multiple of --heads %d (give --head-dim)", c.dim, c.n_heads);
        c.head_size = c.dim / c.n_heads;
    }
    if (c.head_size % 2) die("head_dim %d must be even (RoPE rotates pairs)", c.head_size);
    if (c.n_heads % c.n_kv_heads) die("--heads %d is not a multiple of --kv-heads %d", c.n_heads, c.n_kv_heads);
    make_dirs(dir);
    write_model_config(dir, &c);
    tensor_list l = {0};
    build_model_tensors(&l, &c);
    write_model_weights(dir, &l, &c);
    tensor_list_free(&l);
    return 0;
}

// ----------------------------------------------------------------------------
// adapter

/* Reads a number or boolean field of a flat JSON object (the model's config.json)
 * into *out. Returns 0 when the key is absent or null. */
static int json_field(const char *js, const char *key, double *out) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p) return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p++ != ':') die("config.json: no ':' after %s", pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!strncmp(p, "true", 4)) { *out = 1; return 1; }
    if (!strncmp(p, "false", 5)) { *out = 0; return 1; }
    if (!strncmp(p, "null", 4)) return 0;
    char *end;
    *out = strtod(p, &end);
    if (end == p) die("config.json: %s is not a number", pat);
    return 1;
}

static int config_int(const char *js, const char *key, int fallback) {
    double v;
    if (!json_field(js, key, &v)) {
        if (fallback < 0) die("config.json: missing \"%s\"", key);
        return fallback;
    }
    return (int)v;
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
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot read %s: %s", path, strerror(errno));
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

static int cmd_adapter(int argc, char **argv) {
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

    char *js = read_text(a.model_dir, "config.json");
    int dim = config_int(js, "hidden_size", -1), hidden_dim = config_int(js, "intermediate_size", -1);
    int n_layers = config_int(js, "num_hidden_layers", -1), n_heads = config_int(js, "num_attention_heads", -1);
    int n_kv_heads = config_int(js, "num_key_value_heads", n_heads);
    int head_size = config_int(js, "head_dim", dim / n_heads);
    free(js);
    int q_dim = n_heads * head_size, kv_dim = n_kv_heads * head_size;

    static const char *mods[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    int ins[7] = {dim, dim, dim, q_dim, dim, dim, hidden_dim}, outs[7] = {q_dim, kv_dim, kv_dim, dim,
                                                                         hidden_dim, hidden_dim, dim};
    tensor_list l = {0};
    char module[160], name[192];
    for (int L = 0; L < n_layers; L++) {
        for (int m = 0; m < 7; m++) {
            snprintf(module, sizeof module, "model.layers.%d.%s.%s", L, m < 4 ? "self_attn" : "mlp", mods[m]);
            if (!adapter_targets(&a, &re, module, L)) continue;
            double r = a.r;
            pattern_lookup(&a.rank_pattern, module, &r);
            if (r < 1 || r != (int)r) die("rank_pattern gives %s rank %g", module, r);
            snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", module);
            tensor_add(&l, name, 2, (int)r, ins[m], a.seed, 0, a.std);
            snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", module);
            tensor_add(&l, name, 2, outs[m], (int)r, a.seed, 0, a.std);
        }
    }
    if (!l.n) die("adapter: no module of the model matches the targets");
    make_dirs(dir);
    write_adapter_config(dir, &a);
    gen_tensor **ts = xcalloc((size_t)l.n, sizeof *ts);
    for (int i = 0; i < l.n; i++) ts[i] = &l.t[i];
    write_safetensors(dir, "adapter_model.safetensors", ts, l.n, a.dtype);
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

// ----------------------------------------------------------------------------
// main

static void usage(void) {
    fputs("usage:\n"
          "  lorajit_gen model OUTDIR [--dim 64] [--hidden 160] [--layers 2] [--heads 4] [--kv-heads 2]\n"
          "      [--head-dim N] [--vocab 256] [--max-pos 128] [--tied] [--attention-bias] [--mlp-bias]\n"
          "      [--rope-theta 10000] [--rms-eps 1e-5] [--dtype f32|f16|bf16] [--shards N] [--seed S] [--std 0.08]\n"
          "  lorajit_gen adapter OUTDIR --model MODELDIR [--r 8] [--alpha 16]\n"
          "      [--targets q_proj,v_proj | --target-regex REGEX] [--rslora] [--rank-pattern KEY=R,...]\n"
          "      [--alpha-pattern KEY=A,...] [--layers 0,1] [--dtype f32|f16|bf16] [--seed S] [--std 0.05]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (!strcmp(argv[1], "model")) return cmd_model(argc - 2, argv + 2);
    if (!strcmp(argv[1], "adapter")) return cmd_adapter(argc - 2, argv + 2);
    usage();
    return 2;
}
