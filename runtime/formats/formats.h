/* formats.h — internal header of runtime/formats/: the readers and writers of
 * every file lorajit touches (config.json, the adapter schema, safetensors, the
 * shard index, PEFT adapter folders, an artifact's manifest), the layout the
 * compiled code expects, and the error record they all report through. Pure
 * parsers: nothing here knows of threads, locks or the engine.
 *
 * Shapes: row-major, safetensors order [out, in]. Errors: every fallible function
 * takes an lj_err and returns its status; messages name the file, tensor or field
 * (and the byte offset where one applies). */
#ifndef LORAJIT_FORMATS_H
#define LORAJIT_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "lorajit.h"
/* ---- err.c: status + message, assertions ---- */
typedef struct lj_err {
    lorajit_status status; /* LORAJIT_OK when no error */
    char msg[1024];
} lj_err;

/* Records s and a printf-style message in err (when err is not NULL) and returns s. */
lorajit_status lj_fail(lj_err *err, lorajit_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lj_err_clear(lj_err *err);
/* Bug in lorajit itself (never bad input): prints file:line and aborts. */
void lj_abort(const char *file, int line, const char *what);
#define LJ_ASSERT(x) ((x) ? (void)0 : lj_abort(__FILE__, __LINE__, #x))
/* On a function whose loops the compiler vectorises: an AVX2 copy beside the
 * baseline one, the loader picking by the CPU it runs on (ifunc), so nothing is
 * assumed of the CPU. For the swap path's per-byte passes (conversions, NaN / Inf
 * tests, rounding): AVX2 took the rounding of f32 values into BF16 slots from 22 to
 * 15.5 ms for a 25 MB adapter. Not under ThreadSanitizer: the loader runs an ifunc's
 * resolver before TSan's runtime is set up, and the instrumented resolver crashes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang_analyzer__) && !defined(__SANITIZE_THREAD__)
#define LJ_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LJ_SIMD_CLONES
#endif

/* Allocation hooks (tests inject failures through lj_alloc_fail_after). */
void *lj_malloc(size_t n);              /* Caller owns the result; free with free(). NULL on failure. */
void *lj_calloc(size_t n, size_t size); /* Caller owns the result; free with free(). */
void *lj_calloc64(size_t n, size_t size); /* the same, starting on a 64-byte boundary */
char *lj_strdup(const char *s);         /* Caller owns the result; free with free(). NULL on failure. */
/* Test hook: make the k-th lj_malloc/lj_calloc from now on fail (k >= 1); 0 disables. */
void lj_alloc_fail_after(long k);
/* ---- file.c: whole-file reads, new files, paths ---- */
/* Opens path read-only and checks it is a regular file of a representable size.
 * On success the caller owns *fd (close it); on failure *fd is -1 and err names path. */
lorajit_status lj_open_regular(const char *path, int *fd, size_t *size, lj_err *err);
/* Reads path into a NUL-terminated buffer. Caller owns *data; free with free(). */
lorajit_status lj_read_file(const char *path, char **data, size_t *len, lj_err *err);
/* The same, refusing (E_UNSUPPORTED, "over the limit") a file over max_bytes before
 * reading it. Caller owns *data; free with free(). On failure *data is NULL. */
lorajit_status lj_read_file_max(const char *path, size_t max_bytes, char **data, size_t *len, lj_err *err);
/* Reads size bytes from the start of fd (from lj_open_regular; not closed here) into a
 * NUL-terminated buffer; path names it in messages. Caller owns *data; free with
 * free(). On failure *data is NULL. */
lorajit_status lj_read_fd(int fd, size_t size, const char *path, char **data, size_t *len, lj_err *err);
/* Writes dir + "/" + name into out (cap bytes); fails with E_ARG if it does not fit. */
lorajit_status lj_path_join(char *out, size_t cap, const char *dir, const char *name, lj_err *err);

/* Writes dir/name as a new temporary file in dir (mkstemp: O_CREAT | O_EXCL, then
 * mode 0644) holding data[0..n), then renames it over dir/name: a file or link
 * already at dir/name is replaced, never written through (a folder there is refused,
 * named). dir, name and data are borrowed for the call. */
lorajit_status lj_file_replace(const char *dir, const char *name, const void *data, size_t n, lj_err *err);
/* rename(from, to) (replaces a file or link at `to` without following it); on
 * failure removes `from` and names `to` and what is in the way. Borrowed for the call. */
lorajit_status lj_file_rename(const char *from, const char *to, lj_err *err);
/* ---- json.c: the JSON reading layer (one preamble, typed field readers) ---- */
struct cJSON;
/* The size caps lj_json_read callers pass, per kind of file: far above any real
 * file (README "Limits"), low enough that a hostile file cannot take much memory.
 * A parsed tree also has at most LJ_JSON_MAX_VALUES values (json.c), whatever the
 * cap. Real sizes: a LLaMA config.json or adapter_config.json is 1-2 KB; the
 * shard index of a 671B mixture-of-experts model (163 shards, ~90k tensors) is
 * under 10 MB; a manifest lists the model's tensors (~300 B each). */
#define LJ_JSON_MAX_BYTES ((size_t)1 << 20)     /* config.json, adapter_config.json, the schema: 1 MiB */
#define LJ_JSON_MAX_INDEX ((size_t)16 << 20)    /* model.safetensors.index.json: 16 MiB */
#define LJ_JSON_MAX_MANIFEST ((size_t)64 << 20) /* an artifact's manifest.json: 64 MiB */
#define LJ_JSON_MAX_VALUES (1 << 20)            /* values (objects, lists, scalars) of one text */
/* Parses text[0..len) (need not be NUL-terminated) as one JSON value, refusing
 * trailing garbage and (E_UNSUPPORTED, before building the tree) a text of more
 * than LJ_JSON_MAX_VALUES values. A syntax error is E_FORMAT naming path and the
 * byte offset (base + offset into text; base is where text starts in the file).
 * Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse(const char *text, size_t len, const char *path, size_t base,
                             struct cJSON **root, lj_err *err);
/* lj_json_parse with a cap of max_values values instead of LJ_JSON_MAX_VALUES (a
 * kind of file whose real instances hold more: tokenizer.json, TK_MAX_JSON_VALUES).
 * Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse_max(const char *text, size_t len, const char *path, size_t base, long max_values,
                                 struct cJSON **root, lj_err *err);
/* lj_json_parse (base 0), then checks the root is an object ("the top level is not
 * a JSON object", naming path). text and path are borrowed for the call.
 * Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse_object(const char *text, size_t len, const char *path, struct cJSON **root,
                                    lj_err *err);
/* The preamble: reads path (refusing a file over max_bytes), parses it and checks
 * the root is an object, every failure naming path.
 * Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_read(const char *path, size_t max_bytes, struct cJSON **root, lj_err *err);

/* Where the fields a reader reads sit, for messages: "<path>: field "<prefix><key>" ...". */
typedef struct lj_json_at {
    const char *path;   /* the file (borrowed) */
    const char *prefix; /* field path of the object read from: "" or NULL at the top,
                         * "config.", "rank_pattern.", "weights[3]." (borrowed) */
    lj_err *err;
} lj_json_at;
/* Flags of the field readers. */
#define LJ_JSON_OPTIONAL 0u /* absent or null: LORAJIT_OK, the output keeps its default */
#define LJ_JSON_REQUIRED 1u /* absent or null: E_FORMAT, field "..." is missing */
#define LJ_JSON_LIMIT 2u    /* lj_json_int: over hi is lorajit's limit (E_UNSUPPORTED, "over the limit") */
#define LJ_JSON_POSITIVE 4u /* lj_json_number / lj_json_float: must be > 0 */
/* The field readers. Each reads obj's member key (key NULL: obj is the value itself,
 * as met when iterating an object or a list, named prefix + obj->string) into *out,
 * writing *out only when the field is present and valid. Wrong type or range is
 * E_FORMAT naming at->path and the field path: "must be an integer", "is 0; it must
 * be in 1..64", "must be a positive number", "must be true or false", "must be a
 * string", "must be a list of strings", "must be an object", "must be a list".
 * All pointers are borrowed for the call; outputs that point into obj's tree say so. */
lorajit_status lj_json_int(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                           int64_t lo, int64_t hi, int64_t *out); /* an integer in lo..hi */
lorajit_status lj_json_number(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                              double *out); /* a finite number */
lorajit_status lj_json_float(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                             float *out); /* a number finite also as a float */
lorajit_status lj_json_bool(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                            bool *out);
/* Borrowed; *out valid until obj's tree is deleted. */
lorajit_status lj_json_string(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                              const char **out);
/* A list of strings (an element that is not names its index). Caller owns *out, the
 * array; free with free(). Its strings are borrowed; valid until obj's tree is
 * deleted. Absent and optional, or on failure: *out is NULL and *n 0. */
lorajit_status lj_json_strings(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                               const char ***out, int *n);
/* Borrowed; *out valid until obj's tree is deleted. */
lorajit_status lj_json_object(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                              const struct cJSON **out);
/* Borrowed; *out valid until obj's tree is deleted. */
lorajit_status lj_json_array(const lj_json_at *at, const struct cJSON *obj, const char *key, unsigned flags,
                             const struct cJSON **out);

#include "rope.h" /* lj_rope (rope_scaling), held by lj_config */
/* ---- config.c: Hugging Face config.json of a model in the architecture table ---- */
/* Bounds on what a config.json may ask for, per field. Each is several times what
 * the largest published model of the family uses, so no real config meets one,
 * yet each stops a hostile file before it makes the compiler or the runtime do
 * absurd work (the weight check, lj_weights_probe, catches a config larger than
 * its files; these bound what a config alone, as for an artifact, can ask):
 *   layers 1024:       8x LLaMA-3.1-405B's 126 (PaLM 118, MT-NLG 105);
 *   hidden 65536:      4x 405B's 16384 (PaLM 18432, MT-NLG 20480); also the bound on
 *                      heads x head_dim, the attention width (405B: 128 x 128);
 *   intermediate 262144: ~5x 405B's 53248 (PaLM 73728);
 *   heads 1024:        8x the most (405B, DeepSeek-V3: 128), key/value heads too;
 *   head_dim 1024:     4x the widest (Gemma: 256);
 *   vocab 2097152:     8x Gemma 3's 262144 (Gemma 256000, LLaMA-3 128256);
 *   positions 16777216: above the longest context (Llama-4-Scout: 10485760); the
 *                      KV cache is not sized from it (lj_schema_resolve: 4096 by
 *                      default), so a long context costs nothing until asked for. */
#define LJ_CONFIG_MAX_LAYERS INT64_C(1024)
#define LJ_CONFIG_MAX_HIDDEN (INT64_C(1) << 16)
#define LJ_CONFIG_MAX_INTERMEDIATE (INT64_C(1) << 18)
#define LJ_CONFIG_MAX_HEADS INT64_C(1024)
#define LJ_CONFIG_MAX_HEAD_DIM INT64_C(1024)
#define LJ_CONFIG_MAX_VOCAB (INT64_C(1) << 21)
#define LJ_CONFIG_MAX_POSITIONS (INT64_C(1) << 24)
/* The config fields, listed once: X(HF name, lj_config member, kind, need, default,
 * max). kind: INT (int64_t, 1..max, over max is lorajit's limit), INT0 (the same
 * in 0..max, 0 meaning none), FLOAT (float,
 * positive and finite), BOOL. need: REQUIRED or OPTIONAL (absent or null keeps the
 * default; a default of 0 is filled in after reading: n_kv_heads = n_heads,
 * head_size = dim / n_heads). Expanded by the config reader (config.c), the
 * manifest writer and lj_config_compare (manifest.c), the architecture table's
 * defaults (arch.c) and tests/test_rt_json.c. The fields that differ by
 * architecture -- model_type, the bias booleans -- are the table's (arch.c). */
#define LJ_CONFIG_FIELDS(X)                                                          \
    X(hidden_size, dim, INT, REQUIRED, 0, LJ_CONFIG_MAX_HIDDEN)                      \
    X(intermediate_size, hidden_dim, INT, REQUIRED, 0, LJ_CONFIG_MAX_INTERMEDIATE)   \
    X(num_hidden_layers, n_layers, INT, REQUIRED, 0, LJ_CONFIG_MAX_LAYERS)           \
    X(num_attention_heads, n_heads, INT, REQUIRED, 0, LJ_CONFIG_MAX_HEADS)           \
    X(num_key_value_heads, n_kv_heads, INT, OPTIONAL, 0, LJ_CONFIG_MAX_HEADS)        \
    X(head_dim, head_size, INT, OPTIONAL, 0, LJ_CONFIG_MAX_HEAD_DIM)                 \
    X(vocab_size, vocab_size, INT, REQUIRED, 0, LJ_CONFIG_MAX_VOCAB)                 \
    X(max_position_embeddings, seq_len, INT, OPTIONAL, 2048, LJ_CONFIG_MAX_POSITIONS) \
    X(rms_norm_eps, rms_eps, FLOAT, OPTIONAL, 1e-6f, 0)                              \
    X(rope_theta, rope_theta, FLOAT, OPTIONAL, 10000.0f, 0)                          \
    X(tie_word_embeddings, tie_embeddings, BOOL, OPTIONAL, false, 0)                \
    LJ_CONFIG_FAMILY_FIELDS(X)
/* Fields of the families beyond LLaMA (issue 13): sliding_window (Mistral; 0 = none,
 * and 0 for every architecture whose entry lacks LJ_BLOCK_SLIDING_WINDOW, so the
 * manifest records the window the compiled code applies). */
#define LJ_CONFIG_FAMILY_FIELDS(X)                                                   \
    X(sliding_window, sliding_window, INT0, OPTIONAL, 0, LJ_CONFIG_MAX_POSITIONS)
/* The defaults of every LJ_CONFIG_FIELDS member, as designated initialisers. */
#define LJ_CONFIG_DEFAULT_(hf, member, kind, need, def, max) .member = def,
#define LJ_CONFIG_DEFAULTS LJ_CONFIG_FIELDS(LJ_CONFIG_DEFAULT_)
typedef struct lj_config {
    int arch;             /* model_type's index in the architecture table (lj_arch_get); 0: llama */
    int64_t dim;          /* hidden_size */
    int64_t hidden_dim;   /* intermediate_size */
    int64_t n_layers;     /* num_hidden_layers */
    int64_t n_heads;      /* num_attention_heads */
    int64_t n_kv_heads;   /* num_key_value_heads (default n_heads) */
    int64_t head_size;    /* head_dim (default dim / n_heads) */
    int64_t vocab_size;
    int64_t seq_len;      /* max_position_embeddings (the architecture's default) */
    float rms_eps;        /* rms_norm_eps (the architecture's default) */
    float rope_theta;     /* the architecture's default */
    bool tie_embeddings;  /* tie_word_embeddings (default false) */
    int64_t sliding_window; /* Mistral's window: query i sees keys j with i - j < it; 0: none */
    unsigned bias_mask;   /* bit m set: module m carries a bias (from the arch's bias fields,
                             e.g. LLaMA's attention_bias: q,k,v,o; mlp_bias: gate,up,down) */
    lj_rope rope;         /* rope_scaling (rope.h; type default when null) */
} lj_config;
/* Parses config.json text; path is used in messages only. Looks model_type up in
 * the architecture table (absent: llama) and starts from that entry's defaults.
 * Refuses, naming the field: a model_type not in the table (listing those that
 * are), a rope_scaling rope.c refuses, a hidden_act other than the
 * architecture's, missing, non-integer or non-positive sizes, n_heads not a
 * multiple of n_kv_heads, sizes over the LJ_CONFIG_MAX_* bounds above (E_UNSUPPORTED,
 * "over the limit", naming the field), a derived head_dim over its bound or heads x
 * head_dim over the hidden bound. */
lorajit_status lj_config_parse(const char *text, size_t len, const char *path, lj_config *cfg,
                               lj_err *err);
lorajit_status lj_config_read(const char *path, lj_config *cfg, lj_err *err);
/* Reads the LJ_CONFIG_FIELDS members of the JSON object obj into *c (at names the
 * file and the object's field path). Fields absent keep what *c holds, unless
 * required or all_required (an artifact's manifest records every field). Checks
 * each field alone, not how they fit together (that is lj_config_parse's).
 * All pointers borrowed for the call. */
lorajit_status lj_config_fields_read(const lj_json_at *at, const struct cJSON *obj, bool all_required,
                                     lj_config *c);

#include "arch.h" /* lj_arch (model_type -> modules, biases, defaults); its entries hold an lj_config */
/* ---- config_keys.c: the config.json keys an architecture does not act on ----
 * The keys of config.json at path that a neither reads nor refuses, into ignored
 * (those lorajit knowingly ignores: ids, dtype, versions) and unknown (the rest),
 * comma-separated, each cap bytes. All pointers borrowed for the call. */
lorajit_status lj_config_unread_keys(const char *path, const lj_arch *a, char *ignored, char *unknown, size_t cap,
                                     lj_err *err);
/* ---- schema.c: the adapter schema ---- */
typedef struct lj_schema {
    int r_max;            /* max_rank (default 64) */
    unsigned target_mask; /* bit m set: module m carries a slot (default all the arch's modules) */
    int n_slots;          /* max_adapters: resident adapters (default 8, 1..64) */
    int64_t max_tokens;   /* tokens per forward call (default seq_len, at most it) */
    int64_t seq_len;      /* KV cache positions per sequence (options.max_seq_len; default
                             min(cfg->seq_len, 4096), raised to max_tokens when that asks more) */
    int max_batch;        /* sequences with a KV cache (options.max_batch, default 4) */
    /* the paged KV cache: not compiled in (an artifact serves any of them), so an
     * artifact's manifest does not record them and its options may set them */
    int kv_block_size;    /* positions per block, a power of two (options.kv_block_size, default 16) */
    int kv_cache_mb;      /* MiB for the K and V blocks (options.kv_cache_mb); 0: max_batch * seq_len
                             positions, the whole cache of every sequence */
    int kv_dtype;         /* LJ_DTYPE_F32 (default), F16 or BF16 (options.kv_dtype, schema
                             "kv_dtype"): the KV element type, compiled in, in the manifest */
    int lora_dtype;       /* LJ_DTYPE_F32 (default), F16 or BF16 (options.lora_dtype, schema
                             "lora_dtype"): the LoRA slots' A and B element type, compiled in,
                             in the manifest */
} lj_schema;
#define LJ_KV_BLOCK_DEFAULT 16
#define LJ_KV_BLOCK_MAX 65536
/* The dtypes of kv_dtype and lora_dtype: "f32"/"f16"/"bf16" <-> LJ_DTYPE_* (-1 for
 * another name or NULL; names static), and an element's bytes (4 for F32, else 2). */
int lj_kv_dtype_parse(const char *name);
const char *lj_kv_dtype_name(int dtype);
int lj_kv_dtype_bytes(int dtype);
/* obj's member key (absent: *dtype unchanged), a dtype name, into *dtype; anything else
 * is E_FORMAT naming at->path and the field (at->prefix + key). Borrowed for the call. */
lorajit_status lj_json_dtype(const lj_json_at *at, const struct cJSON *obj, const char *key, int *dtype);
/* options.<field>'s value (NULL: *dtype unchanged), a dtype name, into *dtype; anything
 * else is E_ARG naming options.<field> and the value. Borrowed for the call. */
lorajit_status lj_dtype_option(const char *field, const char *value, int *dtype, lj_err *err);
/* Sets s's KV cache fields from opts (its non-zero kv_block_size / kv_cache_mb, else
 * what s holds) after checking them; on failure s is unchanged. */
lorajit_status lj_schema_kv(const lorajit_options *opts, lj_schema *s, lj_err *err);
/* Parses schema JSON {"max_rank", "target_modules", "max_adapters", "max_tokens",
 * "kv_block_size", "kv_cache_mb", "kv_dtype", "lora_dtype"}
 * into *s, starting from what *s holds (fields absent stay); module names are
 * arch's (borrowed). path for messages. */
lorajit_status lj_schema_parse(const char *text, size_t len, const char *path, const lj_arch *arch,
                               lj_schema *s, lj_err *err);
/* The longest KV cache cfg allows: max_position_embeddings, or LJ_CONFIG_MAX_POSITIONS
 * when rope_scaling extends the context (lj_rope_extends). */
int64_t lj_schema_max_positions(const lj_config *cfg);
/* Defaults, then opts->schema_path, then opts' non-zero fields; validates against cfg. */
lorajit_status lj_schema_resolve(const lorajit_options *opts, const lj_config *cfg, lj_schema *s,
                                 lj_err *err);

/* ---- layout.c: what the compiled code expects (made by compiler/, owned by runtime) ---- */
typedef struct lj_weight_desc {
    char *name;    /* safetensors tensor name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int64_t rows;  /* [rows, cols], or [rows] when cols == 0 */
    int64_t cols;
    int32_t dtype; /* LJ_DTYPE_* the compiled code reads: F32, or F16/BF16 for a matrix */
} lj_weight_desc;
typedef struct lj_site_desc {
    int layer;
    int module;    /* module id in the config's architecture (lj_arch_get(cfg.arch)) */
    int64_t in;    /* K */
    int64_t out;   /* N */
    char *path;    /* its Hugging Face module path, "model.layers.3.self_attn.q_proj" (owned) */
} lj_site_desc;
typedef struct lj_layout {
    lj_config cfg;
    lj_schema schema;
    int n_weights;
    lj_weight_desc *weights;   /* [n_weights], by weight id */
    int n_sites;
    lj_site_desc *sites;       /* [n_sites], by site id */
    int64_t scratch_per_token; /* floats */
    int64_t scratch_fixed;     /* floats */
} lj_layout;
/* Caller owns the result (all fields zero, arrays NULL); free with lj_layout_free(). */
lj_layout *lj_layout_new(void);
void lj_layout_free(lj_layout *L); /* frees names, paths and arrays too; NULL does nothing */
/* Sets every site's path from L->cfg's architecture and the site's (layer, module). */
lorajit_status lj_layout_site_paths(lj_layout *L, lj_err *err);
/* Site id of (layer, module), or -1 when that linear carries no slot. */
int lj_layout_site(const lj_layout *L, int layer, int module);

/* ---- digest.c: SHA-256 (libcrypto), FNV-1a ---- */
#define LJ_SHA256_BYTES 32
#define LJ_SHA256_HEX 65 /* 64 lowercase hex digits + NUL */
/* SHA-256 of data[0..n) (borrowed for the call) into out; false if libcrypto fails. */
bool lj_sha256(const void *data, size_t n, uint8_t out[LJ_SHA256_BYTES]);
bool lj_sha256_hex(const void *data, size_t n, char out[LJ_SHA256_HEX]);
/* FNV-1a 64 of data[0..n), continuing from h (LJ_FNV_OFFSET to start); no security
 * claim (it tells builds apart). data is borrowed for the call. */
uint64_t lj_fnv1a64(const void *data, size_t n, uint64_t h);

/* ---- elf.c: an ELF64 shared library's exports, read from its bytes (nothing runs) ---- */
typedef struct lj_elf_sym {
    const char *name; /* borrowed */
    size_t size;      /* 0: a function that must be exported; else a constant of this many bytes */
    void *value;      /* [size]: receives the constant's bytes (borrowed) */
} lj_elf_sym;
/* Finds each of want[0..n_want) among file[0..len)'s dynamic symbols (defined,
 * global, default visibility) and copies each constant's bytes from the file. A file
 * that is not an ELF64 little-endian shared object, or a symbol missing or of another
 * type or size, is E_FORMAT naming path and the symbol. file, path and want are
 * borrowed for the call. */
lorajit_status lj_elf_symbols(const void *file, size_t len, const char *path, lj_elf_sym *want, int n_want,
                              lj_err *err);
/* What an artifact's library exports besides lj_forward and lj_decode (ctx.h). */
typedef struct lj_library_consts {
    int32_t abi;                            /* lj_abi_version */
    uint64_t code_hash;                     /* lj_code_hash */
    int64_t scratch_per_token, scratch_fixed; /* lj_scratch_per_token, lj_scratch_fixed */
    uint8_t layout_sha256[LJ_SHA256_BYTES]; /* lj_layout_sha256 */
} lj_library_consts;
/* lj_elf_symbols for an artifact's library: both entry points must be exported
 * functions; *out gets the constants. file and path are borrowed for the call. */
lorajit_status lj_library_consts_read(const void *file, size_t len, const char *path, lj_library_consts *out,
                                      lj_err *err);

/* ---- manifest.c: an artifact's manifest.json (compiler/ writes it, artifact.c reads it) ---- */
#define LJ_ARTIFACT_MANIFEST "manifest.json"
#define LJ_ARTIFACT_LIBRARY "liblorajit_model.so"
#define LJ_ARTIFACT_IR "model.ir"
#define LJ_FNV_OFFSET UINT64_C(0xcbf29ce484222325) /* FNV-1a 64 offset basis */
typedef struct lj_manifest {
    int abi_version;       /* LJ_ABI_VERSION of the ctx.h the code was compiled against */
    lj_layout *L;          /* config, schema, weights, sites, scratch sizes */
    char triple[128];      /* e.g. "x86_64-pc-linux-gnu" */
    char cpu[64];          /* LLVM CPU name: the host's ("znver3") or an x86-64 level ("x86-64-v2") */
    char *features;        /* "+avx2,-avx512f,..." as LLVM spells them */
    char ir_sha256[LJ_SHA256_HEX];      /* of model.ir, the lorajit IR text */
    uint64_t code_hash;    /* FNV-1a 64 of the optimised LLVM module text; the library's lj_code_hash */
    char library_sha256[LJ_SHA256_HEX]; /* of liblorajit_model.so */
} lj_manifest;
/* SHA-256 of the layout's manifest sections (config, schema, weights, lora_sites,
 * scratch_floats as compact JSON): the compiler bakes it into the library
 * (LJ_LAYOUT_DIGEST_SYMBOL), the runtime recomputes it from the manifest it read.
 * L is borrowed for the call. */
lorajit_status lj_layout_digest(const lj_layout *L, uint8_t out[LJ_SHA256_BYTES], lj_err *err);
/* Writes dir/manifest.json from m (borrowed), sealed with "manifest_sha256", as a new
 * file renamed over the name (lj_file_replace: never through a link). */
lorajit_status lj_manifest_write(const char *dir, const lj_manifest *m, lj_err *err);
/* Reads dir/manifest.json: checks manifest_sha256, the ABI version and every field
 * (sites against the schema and the weights' shapes) and rebuilds the layout.
 * Caller owns m->L and m->features; free with lj_manifest_clear(). On failure
 * *m is cleared. */
lorajit_status lj_manifest_read(const char *dir, lj_manifest *m, lj_err *err);
/* The same on text[0..len) (for fuzzing); text and path are borrowed for the call,
 * path is used in messages only. Caller owns m->L and m->features; free with
 * lj_manifest_clear(). */
lorajit_status lj_manifest_parse(const char *text, size_t len, const char *path, lj_manifest *m,
                                 lj_err *err);
void lj_manifest_clear(lj_manifest *m); /* frees L and features; NULL does nothing */
/* Sets root's "manifest_sha256" to the SHA-256 of root's compact text without it
 * (tests use it to forge a manifest that passes the hash). root is borrowed. */
lorajit_status lj_manifest_seal(struct cJSON *root, lj_err *err);
/* ---- manifest_check.c: the sizes a manifest states, recomputed from config + schema ---- */
/* Every weight's shape and their number, every site's in/out and the attention row
 * in the fixed scratch, derived from L->cfg and L->schema; the first that L states
 * otherwise is E_FORMAT naming path, the field and both values. L is borrowed. */
lorajit_status lj_manifest_check_sizes(const lj_layout *L, const char *path, lj_err *err);
/* The first config field (Hugging Face name) where model differs from artifact,
 * as E_SHAPE naming model_path, the field and both values. All borrowed for the call. */
lorajit_status lj_config_compare(const lj_config *artifact, const lj_config *model, const char *model_path,
                                 const char *artifact_dir, lj_err *err);

/* ---- safetensors.c: mmap reader, validated header ---- */
typedef enum st_dtype {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
    ST_DTYPE_COUNT
} st_dtype;
typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;            /* 0..8 */
    int64_t shape[8];
    uint64_t begin, end; /* data_offsets, relative to the data section */
    const void *data;    /* borrowed; points into the mapping */
} st_tensor;
typedef struct st_file {
    char *path;
    void *map;           /* [size] the whole file: read-only mmap, or the borrowed buffer */
    size_t size;
    bool mapped;         /* true: map is our mmap, unmapped by st_close; false: borrowed */
    int fd;              /* st_open_pread: the open file, closed by st_close; else -1 */
    size_t data_start;   /* 8 + header length */
    int n_tensors;
    st_tensor *tensors;  /* [n_tensors], sorted by name */
} st_file;
/* Maps and validates path: header length within the file (and at most 16 MiB),
 * valid JSON, known dtypes, shapes whose byte size equals end - begin, offsets
 * inside the data section and not overlapping. Caller owns *out; free with
 * st_close(). On failure *out is NULL and err names the file, tensor and offset. */
lorajit_status st_open(const char *path, st_file **out, lj_err *err);
/* As st_open, with every page mapped up front (for a file read whole at once).
 * Caller owns *out; free with st_close(). On failure *out is NULL. */
lorajit_status st_open_whole(const char *path, st_file **out, lj_err *err);
/* As st_open, keeping the file open (fd) for st_read_f32_finite (pread: only the
 * header's pages are touched). Caller owns *out; free with st_close(). */
lorajit_status st_open_pread(const char *path, st_file **out, lj_err *err);
/* Same checks on a buffer (for fuzzing); buf is borrowed and must outlive *out. */
lorajit_status st_open_buffer(const void *buf, size_t size, const char *name, st_file **out,
                              lj_err *err);
void st_close(st_file *f); /* NULL does nothing */
/* Borrowed; valid until st_close(f). NULL if absent. */
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
/* t (F32, F16 or BF16) as f32 into dst[element count of t]; other dtypes fail naming t. */
lorajit_status st_to_f32(const st_file *f, const st_tensor *t, float *dst, lj_err *err);
/* dst[0..n) = src[0..n) of dtype d (F32, F16 or BF16; src may be unaligned), exact;
 * a vectorisable loop. Another dtype is a bug in the caller (LJ_ASSERT). */
void st_convert_f32(st_dtype d, const void *src, size_t n, float *dst);
/* st_convert_f32 testing as it writes: index of the first NaN / +-Inf (it stops there), n if none. */
size_t st_convert_f32_finite(st_dtype d, const void *src, size_t n, float *dst);
/* ---- st_read.c: tensor data by pread, converted and tested on the way ---- */
#define ST_STAGE_BYTES (1u << 20) /* st_read_finite's staging buffer and largest pread (st_read.c) */
/* Reads n values of dtype d (F32, F16, BF16) at raw (a pointer into f's mapping;
 * st_open_pread) by pread into dst[0..n), as f32, or as d itself when keep (a 16-bit
 * slot of the file's dtype: the bytes copied), tested as they land: *bad = index of
 * the first NaN / Inf (the read stops there; its value is in dst), n if none. stage:
 * borrowed scratch of ST_STAGE_BYTES. E_IO naming the file on a failed or short read. */
lorajit_status st_read_finite(const st_file *f, const void *raw, st_dtype d, bool keep, size_t n, void *dst,
                              void *stage, size_t *bad, lj_err *err);

/* ---- weights.c: the model's tensors bound to the layout ---- */
/* One weight_map entry of model.safetensors.index.json. */
typedef struct lj_shard_entry {
    char *name;           /* the tensor (owned) */
    int file;             /* its shard: lj_weights.files[file] */
} lj_shard_entry;
typedef struct lj_weights {
    int n;                /* = layout n_weights */
    const void **data;    /* [n] by weight id: into the mmap (F32, or F16/BF16 matrices) or owned[] */
    int32_t *dtype;       /* [n] LJ_DTYPE_* of data[i]: the layout's */
    void **owned;         /* [n] malloc'd copies (widened to f32, or unaligned 16-bit), NULL where mapped */
    int n_files;
    st_file **files;      /* [n_files] open shards */
    int n_map;
    lj_shard_entry *map;  /* [n_map] the index's weight_map sorted by name; NULL for one file */
} lj_weights;
/* Opens model_dir/model.safetensors, or every shard named by
 * model_dir/model.safetensors.index.json, checks every layout weight's header entry
 * (present, F32/F16/BF16, its shape, the dtype the code reads) and only then binds
 * them. With an index, each tensor is read from the shard its weight_map names and
 * from no other: a copy in another shard is ignored, a tensor the index does not
 * list (or lists for two shards) is refused by name. A missing tensor is E_NOT_FOUND
 * naming the first and how many are missing. Caller owns *out; free with
 * lj_weights_free(). */
lorajit_status lj_weights_open(const char *model_dir, const lj_layout *L, lj_weights **out,
                               lj_err *err);
st_dtype lj_dtype_st(int32_t d); /* LJ_DTYPE_* -> its safetensors dtype (names via st_dtype_name) */
/* The compiler's look at the weights before it compiles: lj_weights_open's header
 * checks on want[0..n) (name, rows, cols; want is borrowed for the call), reading
 * headers only, and want[i].dtype = F16 or BF16 for a matrix the files hold so,
 * else F32. A folder without weight files gives all F32 and LORAJIT_OK (a config
 * alone compiles an artifact). */
lorajit_status lj_weights_probe(const char *model_dir, lj_weight_desc *want, int n, lj_err *err);
void lj_weights_free(lj_weights *w); /* NULL does nothing */
/* Parses model.safetensors.index.json text ("weight_map": {tensor: shard file}) into
 * its distinct shard file names, sorted. Refuses, naming path and entry: a missing or
 * empty weight_map, a non-string entry, a shard that is not a plain file name (no
 * '/', '\\' or ".."), more than 10000 shards, a tensor listed for two shards. Caller owns *shards; free with
 * lj_shard_names_free(*shards, *n_shards). On failure *shards is NULL. */
lorajit_status lj_shard_index_parse(const char *text, size_t len, const char *path, char ***shards,
                                    int *n_shards, lj_err *err);
void lj_shard_names_free(char **names, int n); /* NULL does nothing */

/* ---- regex.c: regular expressions from adapter files, bounded before regcomp ---- */
typedef struct lj_regex lj_regex; /* a compiled POSIX ERE (regex_t inside regex.c) */
/* Compiles "^" prefix "(" body ")$" (REG_EXTENDED | REG_NOSUB). Refuses, naming path
 * and field: a body over 1024 characters, a repeat of a repeat ("a**"), over 64
 * repeats, or repeats that expand past 20000 nodes. Caller owns *out; free with
 * lj_regex_free(). */
lorajit_status lj_regex_compile(const char *prefix, const char *body, const char *path,
                                const char *field, lj_regex **out, lj_err *err);
/* true when re matches the whole of s (both borrowed for the call). */
bool lj_regex_match(const lj_regex *re, const char *s);
void lj_regex_free(lj_regex *re); /* NULL does nothing */

/* ---- finite.c: NaN / Inf in f32 arrays ---- */
/* Bit 31 set when the f32 with these bits is NaN or +-Inf (all exponent bits set
 * carry into bit 31 when 2^23 is added): integer ands, adds, ors that vectorise. */
static inline uint32_t lj_nonfinite_bit(uint32_t bits) { return ((bits & 0x7f800000u) + 0x00800000u) & 0x80000000u; }
/* Index of the first NaN or +-Inf among x[0..n) (borrowed for the call), n if none. */
size_t lj_nonfinite_find(const float *x, size_t n);
/* Index of the first F16 / BF16 value of src[0..n) (borrowed, maybe unaligned) with all
 * exponent bits set (NaN, +-Inf), n if none; exp_mask 0x7c00 (F16) or 0x7f80 (BF16). */
size_t lj_nonfinite_find16(const void *src, size_t n, uint16_t exp_mask);
/* lj_nonfinite_find(16) for raw[0..n) of dtype dt (F32, F16, BF16; maybe unaligned). */
size_t lj_nonfinite_find_dtype(st_dtype dt, const void *raw, size_t n);
/* "NaN", "+Inf" or "-Inf" for a value lj_nonfinite_find found (static text). */
const char *lj_nonfinite_word(float v);
/* E_FORMAT naming path, tensor, v (NaN, +-Inf), element k of [rows, cols], its row, column. */
lorajit_status lj_nonfinite_fail(lj_err *err, const char *path, const char *tensor, float v, size_t k, size_t cols);

#include "peft.h" /* peft_config, peft_adapter: PEFT adapter folders (peft.c) */

#endif /* LORAJIT_FORMATS_H */
