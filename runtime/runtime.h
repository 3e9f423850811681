/* runtime.h — internal header of runtime/: every non-static function, under its
 * file's banner. runtime/ never includes compiler/ or LLVM: it reads formats, owns
 * weights (mmap), slot buffers, the adapter registry and the active set, and calls
 * compiled code through a function pointer (ctx.h).
 *
 * Shapes: row-major, safetensors order [out, in]. Errors: every fallible function
 * takes an lj_err and returns its status; messages name the file, tensor or field
 * (and the byte offset where one applies). */
#ifndef LORAJIT_RUNTIME_H
#define LORAJIT_RUNTIME_H

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
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

/* Allocation hooks (tests inject failures through lj_alloc_fail_after). */
void *lj_malloc(size_t n);              /* Caller owns the result; free with free(). NULL on failure. */
void *lj_calloc(size_t n, size_t size); /* Caller owns the result; free with free(). */
char *lj_strdup(const char *s);         /* Caller owns the result; free with free(). NULL on failure. */
/* Test hook: make the k-th lj_malloc/lj_calloc from now on fail (k >= 1); 0 disables. */
void lj_alloc_fail_after(long k);

/* ---- file.c: whole-file reads, paths ---- */
/* Opens path read-only and checks it is a regular file of a representable size.
 * On success the caller owns *fd (close it); on failure *fd is -1 and err names path. */
lorajit_status lj_open_regular(const char *path, int *fd, size_t *size, lj_err *err);
/* Reads path into a NUL-terminated buffer. Caller owns *data; free with free(). */
lorajit_status lj_read_file(const char *path, char **data, size_t *len, lj_err *err);
/* Writes dir + "/" + name into out (cap bytes); fails with E_ARG if it does not fit. */
lorajit_status lj_path_join(char *out, size_t cap, const char *dir, const char *name, lj_err *err);
struct cJSON;
/* Parses text[0..len) (need not be NUL-terminated) as one JSON value, refusing
 * trailing garbage. A syntax error is E_FORMAT naming path and the byte offset
 * (base + offset into text; base is where text starts in the file).
 * Caller owns *root; free with cJSON_Delete(). On failure *root is NULL. */
lorajit_status lj_json_parse(const char *text, size_t len, const char *path, size_t base,
                             struct cJSON **root, lj_err *err);

/* ---- modules.c: the seven LoRA target modules of a LLaMA block ---- */
typedef enum lj_module {
    LJ_MOD_Q, LJ_MOD_K, LJ_MOD_V, LJ_MOD_O, LJ_MOD_GATE, LJ_MOD_UP, LJ_MOD_DOWN,
    LJ_MOD_COUNT
} lj_module;
const char *lj_module_name(int m);      /* "q_proj" ... "down_proj"; static text */
const char *lj_module_parent(int m);    /* "self_attn" or "mlp" */
int lj_module_from_name(const char *s); /* -1 when s is not one of the seven */

/* ---- config.c: Hugging Face config.json of a LLaMA-family model ---- */
typedef struct lj_config {
    int64_t dim;          /* hidden_size */
    int64_t hidden_dim;   /* intermediate_size */
    int64_t n_layers;     /* num_hidden_layers */
    int64_t n_heads;      /* num_attention_heads */
    int64_t n_kv_heads;   /* num_key_value_heads (default n_heads) */
    int64_t head_size;    /* head_dim (default dim / n_heads) */
    int64_t vocab_size;
    int64_t seq_len;      /* max_position_embeddings (default 2048) */
    float rms_eps;        /* rms_norm_eps (default 1e-6) */
    float rope_theta;     /* default 10000 */
    bool tie_embeddings;  /* tie_word_embeddings (default false) */
    bool attention_bias;  /* q/k/v/o carry biases */
    bool mlp_bias;        /* gate/up/down carry biases */
} lj_config;
/* Parses config.json text; path is used in messages only. Refuses, naming the
 * field: a model_type present and other than "llama", a rope_scaling that is not
 * null, hidden_act other than "silu", missing, non-integer or non-positive sizes,
 * n_heads not a multiple of n_kv_heads, absurd sizes (a dimension over 1<<20,
 * more than 4096 layers, a vocabulary over 1<<24). */
lorajit_status lj_config_parse(const char *text, size_t len, const char *path, lj_config *cfg,
                               lj_err *err);
lorajit_status lj_config_read(const char *path, lj_config *cfg, lj_err *err);

/* ---- schema.c: the adapter schema ---- */
typedef struct lj_schema {
    int r_max;            /* max_rank (default 64) */
    unsigned target_mask; /* bit m set: module m carries a slot (default all seven) */
    int n_slots;          /* max_adapters: resident adapters (default 8, 1..64) */
    int64_t max_tokens;   /* tokens per forward call (default seq_len, at most it) */
    int64_t seq_len;      /* KV cache positions per sequence (options.max_seq_len, default cfg->seq_len) */
    int max_batch;        /* sequences with a KV cache (options.max_batch, default 4) */
} lj_schema;
/* Parses schema JSON {"max_rank", "target_modules", "max_adapters", "max_tokens"}
 * into *s, starting from what *s holds (fields absent stay). path for messages. */
lorajit_status lj_schema_parse(const char *text, size_t len, const char *path, lj_schema *s,
                               lj_err *err);
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
    int module;    /* lj_module */
    int64_t in;    /* K */
    int64_t out;   /* N */
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
void lj_layout_free(lj_layout *L); /* frees names and arrays too; NULL does nothing */
/* Site id of (layer, module), or -1 when that linear carries no slot. */
int lj_layout_site(const lj_layout *L, int layer, int module);

/* ---- manifest.c: an artifact's manifest.json (compiler/ writes it, artifact.c reads it) ---- */
#define LJ_ARTIFACT_MANIFEST "manifest.json"
#define LJ_ARTIFACT_LIBRARY "liblorajit_model.so"
#define LJ_ARTIFACT_IR "model.ir"
#define LJ_FNV_OFFSET UINT64_C(0xcbf29ce484222325) /* FNV-1a 64 offset basis */
/* FNV-1a 64 of data[0..n), continuing from h (LJ_FNV_OFFSET to start). data is
 * borrowed for the call. */
uint64_t lj_fnv1a64(const void *data, size_t n, uint64_t h);
/* FNV-1a 64 of the whole file at path (borrowed for the call). */
lorajit_status lj_file_hash(const char *path, uint64_t *out, lj_err *err);
typedef struct lj_manifest {
    int abi_version;       /* LJ_ABI_VERSION of the ctx.h the code was compiled against */
    lj_layout *L;          /* config, schema, weights, sites, scratch sizes */
    char triple[128];      /* e.g. "x86_64-pc-linux-gnu" */
    char cpu[64];          /* LLVM CPU name: the host's ("znver3") or an x86-64 level ("x86-64-v2") */
    char *features;        /* "+avx2,-avx512f,..." as LLVM spells them */
    uint64_t ir_hash;      /* FNV-1a 64 of model.ir, the lorajit IR text */
    uint64_t code_hash;    /* FNV-1a 64 of the optimised LLVM module text; the library's lj_code_hash */
    uint64_t library_hash; /* FNV-1a 64 of liblorajit_model.so */
} lj_manifest;
/* Writes dir/manifest.json from m (borrowed), sealed with "manifest_hash". */
lorajit_status lj_manifest_write(const char *dir, const lj_manifest *m, lj_err *err);
/* Reads dir/manifest.json: checks manifest_hash, the ABI version and every field
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
/* Sets root's "manifest_hash" to the hash of root's compact text without it
 * (tests use it to forge a manifest that passes the hash). root is borrowed. */
lorajit_status lj_manifest_seal(struct cJSON *root, lj_err *err);
/* The first config field (Hugging Face name) where model differs from artifact,
 * as E_SHAPE naming model_path, the field and both values. All borrowed for the call. */
lorajit_status lj_config_compare(const lj_config *artifact, const lj_config *model, const char *model_path,
                                 const char *artifact_dir, lj_err *err);

/* ---- artifact.c: lorajit_engine_open_artifact (no LLVM: dlopen) ---- */
/* 1: this CPU has the x86 feature f (LLVM's spelling, or an x86-64 level name;
 * borrowed for the call); 0: it lacks it; -1: this runtime cannot test f. */
int lj_cpu_has(const char *f);

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
    size_t data_start;   /* 8 + header length */
    int n_tensors;
    st_tensor *tensors;  /* [n_tensors], sorted by name */
} st_file;
/* Maps and validates path: header length within the file (and at most 100 MB),
 * valid JSON, known dtypes, shapes whose byte size equals end - begin, offsets
 * inside the data section and not overlapping. Caller owns *out; free with
 * st_close(). On failure *out is NULL and err names the file, tensor and offset. */
lorajit_status st_open(const char *path, st_file **out, lj_err *err);
/* Same checks on a buffer (for fuzzing); buf is borrowed and must outlive *out. */
lorajit_status st_open_buffer(const void *buf, size_t size, const char *name, st_file **out,
                              lj_err *err);
void st_close(st_file *f); /* NULL does nothing */
/* Borrowed; valid until st_close(f). NULL if absent. */
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
/* Converts t (F32, F16 or BF16) to n f32 values in dst (n = element count of t);
 * other dtypes fail naming the tensor. */
lorajit_status st_to_f32(const st_file *f, const st_tensor *t, float *dst, lj_err *err);

/* ---- weights.c: the model's tensors bound to the layout ---- */
typedef struct lj_weights {
    int n;                /* = layout n_weights */
    const void **data;    /* [n] by weight id: into the mmap (F32, or F16/BF16 matrices) or owned[] */
    int32_t *dtype;       /* [n] LJ_DTYPE_* of data[i]: the layout's */
    void **owned;         /* [n] malloc'd copies (widened to f32, or unaligned 16-bit), NULL where mapped */
    int n_files;
    st_file **files;      /* [n_files] open shards */
} lj_weights;
/* Opens model_dir/model.safetensors, or every shard named by
 * model_dir/model.safetensors.index.json, and binds each layout weight by name,
 * checking its shape. Caller owns *out; free with lj_weights_free(). */
lorajit_status lj_weights_open(const char *model_dir, const lj_layout *L, lj_weights **out,
                               lj_err *err);
/* dtypes[i] = the LJ_DTYPE_* model_dir's files hold for tensor names[i]: F16 or BF16
 * when so, else F32 (also for a missing or unsupported tensor: lj_weights_open
 * names those). A folder without weight files gives all F32 and LORAJIT_OK. */
st_dtype lj_dtype_st(int32_t d); /* LJ_DTYPE_* -> its safetensors dtype (names via st_dtype_name) */
lorajit_status lj_weights_probe(const char *model_dir, const char *const *names, int n, int32_t *dtypes,
                                lj_err *err);
void lj_weights_free(lj_weights *w); /* NULL does nothing */
/* Parses model.safetensors.index.json text ("weight_map": {tensor: shard file}) into
 * its distinct shard file names, sorted. Refuses, naming path and entry: a missing or
 * empty weight_map, a non-string entry, a shard that is not a plain file name (no
 * '/', '\\' or ".."), more than 10000 shards. Caller owns *shards; free with
 * lj_shard_names_free(*shards, *n_shards). On failure *shards is NULL. */
lorajit_status lj_shard_index_parse(const char *text, size_t len, const char *path, char ***shards,
                                    int *n_shards, lj_err *err);
void lj_shard_names_free(char **names, int n); /* NULL does nothing */

/* ---- slots.c: LoRA slot buffers ---- */
typedef struct lj_slots {
    int n_sites;
    int n_phys;           /* physical slots = schema n_slots + 1 (the hotswap spare) */
    int r_max;
    lj_lora_site *sites;  /* [n_sites] what ctx->sites points at */
    int32_t *dirty;       /* [n_sites * n_phys] rows/cols written since last zeroed */
    int64_t *in;          /* [n_sites] K of each site (from the layout) */
    int64_t *out;         /* [n_sites] N of each site */
} lj_slots;
/* Allocates zeroed slot buffers for every layout site. Caller owns *out; free with lj_slots_free(). */
lorajit_status lj_slots_new(const lj_layout *L, lj_slots **out, lj_err *err);
void lj_slots_free(lj_slots *s); /* NULL does nothing */

/* ---- regex.c: regular expressions from adapter files, bounded before regcomp ---- */
/* Compiles "^" prefix "(" body ")$" (REG_EXTENDED | REG_NOSUB). Refuses, naming path
 * and field: a body over 1024 characters, a repeat of a repeat ("a**"), over 64
 * repeats, or repeats that expand past 20000 nodes. Caller owns *out; free with
 * lj_regex_free(). */
lorajit_status lj_regex_compile(const char *prefix, const char *body, const char *path,
                                const char *field, regex_t **out, lj_err *err);
void lj_regex_free(regex_t *re); /* NULL does nothing */

/* ---- peft.c: PEFT adapter folders, validated into an image before any write ---- */
typedef struct peft_site_w {
    int site;            /* layout site id */
    int rank;            /* r of this module (rank_pattern applied) */
    float scale;         /* alpha/r or alpha/sqrt(r) (alpha_pattern, use_rslora applied) */
    const float *a;      /* [rank, in]: borrowed from the mapping (F32) or into owned */
    const float *b;      /* [out, rank] */
} peft_site_w;
typedef struct peft_adapter {
    int n;               /* sites this adapter covers */
    peft_site_w *w;      /* [n], ordered by site id */
    size_t bytes;        /* f32 bytes of all A and B */
    st_file *file;       /* the open adapter_model.safetensors (owned) */
    float *owned;        /* [f32 values of the non-borrowed A/B] conversions, owned; NULL if none */
} peft_adapter;
/* A module selector of adapter_config.json (target_modules, exclude_modules): a
 * list of names, each matched as a dotted suffix of the module path
 * ("model.layers.3.self_attn.q_proj"), or one regex matched against the whole path. */
typedef struct peft_match {
    regex_t *re;         /* owned, compiled "^(PATTERN)$" (REG_EXTENDED); NULL for a list */
    int n;
    char **names;        /* [n] owned suffixes */
} peft_match;
/* One rank_pattern / alpha_pattern entry: applies where "^(.*\.)?(KEY)$" matches. */
typedef struct peft_pattern {
    char *key;           /* owned, as written in the JSON */
    regex_t *re;         /* owned */
    double value;
} peft_pattern;
/* Parsed adapter_config.json (PEFT's LoraConfig, the fields that change results). */
typedef struct peft_config {
    int r;
    double alpha;
    bool use_rslora;
    peft_match targets;  /* target_modules (null: PEFT's LLaMA default q_proj, v_proj) */
    peft_match excludes; /* exclude_modules (null: none) */
    int n_rank_pattern;
    peft_pattern *rank_pattern;   /* [n_rank_pattern], first match wins */
    int n_alpha_pattern;
    peft_pattern *alpha_pattern;  /* [n_alpha_pattern] */
    int n_layers;        /* layers_to_transform: 0 = every layer */
    int *layers;         /* [n_layers] owned */
} peft_config;
/* Parses adapter_config.json text; refuses, naming the field: peft_type other than
 * LORA, use_dora, bias other than "none", modules_to_save, fan_in_fan_out,
 * lora_bias, layers_pattern other than "layers", layer_replication, target_modules
 * naming anything but the seven projections, missing r / lora_alpha. Caller owns
 * *cfg's contents; free with peft_config_free(). */
lorajit_status peft_config_parse(const char *text, size_t len, const char *path, peft_config *cfg,
                                 lj_err *err);
void peft_config_free(peft_config *cfg); /* NULL-safe, frees contents only */
/* Reads dir/adapter_config.json and dir/adapter_model.safetensors and checks every
 * tensor against L: names, targeted modules inside the schema, rank <= r_max,
 * shapes [r, in] / [out, r], none missing, none extra. Writes nothing shared.
 * Caller owns *out; free with peft_adapter_free(). */
lorajit_status peft_adapter_read(const char *dir, const lj_layout *L, peft_adapter **out,
                                 lj_err *err);
void peft_adapter_free(peft_adapter *ad); /* NULL does nothing */
/* Writes ad into physical slot `slot` of every site (sites ad does not cover get
 * rank 0), zeroing rows/cols left over from an earlier, larger adapter. Cannot fail.
 * The caller makes sure no reader can see the slot (lj_serve_pick_slot). */
void lj_slots_write(lj_slots *s, int slot, const peft_adapter *ad);
/* Marks slot empty at every site (rank 0). */
void lj_slots_clear(lj_slots *s, int slot);

/* ---- adapters.c: the registry (name -> slot) and the active set ---- */
typedef struct lj_adapter_entry {
    char *name;          /* owned; NULL when the slot is free */
    size_t bytes;        /* f32 bytes of A and B */
    int64_t seq;         /* load order (kept by hotswap), for listing */
} lj_adapter_entry;
struct lj_serve;
/* Written by writer calls only (under lj_serve.write_lock); readers see it through
 * snapshots (serve.c), never directly. */
typedef struct lj_registry {
    int n_slots;                   /* resident adapters allowed (schema) */
    int n_phys;                    /* n_slots + 1 */
    lj_adapter_entry *by_slot;     /* [n_phys] */
    int n_active;                  /* the set chosen by set_adapter */
    int active_slot[LJ_MAX_SLOTS]; /* [n_active] */
    float active_weight[LJ_MAX_SLOTS];
    bool enabled;                  /* false after disable */
    lj_active applied;             /* what engine-following calls apply: chosen set, or n = 0 when disabled */
    int64_t next_seq;              /* seq of the next load */
    struct lj_serve *serve;        /* borrowed: where slots are pinned; NULL when nothing reads concurrently */
} lj_registry;
lorajit_status lj_registry_init(lj_registry *r, int n_slots, lj_err *err);
void lj_registry_free(lj_registry *r); /* frees names; NULL-safe */
int lj_registry_find(const lj_registry *r, const char *name); /* slot or -1 */
int lj_registry_count(const lj_registry *r);
/* The PEFT verbs on registry + slots. Each validates first and changes nothing on
 * failure. load and hotswap write a slot that no entry owns (and, with r->serve,
 * that no snapshot pins: they may wait for one); hotswap and delete release the
 * old slot without clearing it (nothing reads an unowned slot; the next write
 * zeroes what it leaves over). */
lorajit_status lj_adapter_load(lj_registry *r, lj_slots *s, const lj_layout *L, const char *name,
                               const char *dir, lj_err *err);
lorajit_status lj_adapter_hotswap(lj_registry *r, lj_slots *s, const lj_layout *L,
                                  const char *name, const char *dir, lj_err *err);
lorajit_status lj_adapter_delete(lj_registry *r, lj_slots *s, const char *name, lj_err *err);
lorajit_status lj_adapter_set(lj_registry *r, const char *const *names, const float *weights,
                              int n, lj_err *err);
void lj_adapter_enable(lj_registry *r, bool on);

/* ---- pool.c: threads for the compiled kernels' parallel loops ---- */
#define LJ_POOL_MAX_THREADS 256
typedef struct lj_pool lj_pool;
/* Starts threads - 1 helper threads (clamped to 1..LJ_POOL_MAX_THREADS; 1: none).
 * Caller owns *out; free with lj_pool_free(), which joins the helpers. */
lorajit_status lj_pool_new(int threads, lj_pool **out, lj_err *err);
void lj_pool_free(lj_pool *p); /* NULL does nothing; no run may be in flight */
/* ctx.h's lj_parallel_fn: fn(arg, b, e) over [0, n) split among the threads,
 * returning when all are done. Runs fn(arg, 0, n) itself when pool is NULL, has
 * one thread, or is busy with another thread's run. */
void lj_pool_run(void *pool, lj_task_fn fn, void *arg, int64_t n);
int lj_pool_threads(const lj_pool *p); /* 1 for NULL */

/* ---- serve.c: snapshots, slot pins, workers, per-thread errors ---- */
/* What readers see of the registry: immutable once published; freed when it is
 * no longer current and its last reader lets go. */
typedef struct lj_snapshot {
    _Atomic int64_t refs;           /* readers holding it, + 1 while it is current */
    bool enabled;
    int n_phys;
    int n_resident;
    lj_active applied;              /* what engine-following calls apply */
    const char *name[LJ_MAX_SLOTS]; /* [n_phys] adapter owning slot i (into text), NULL when free */
    size_t cap;                     /* bytes of text */
    char text[];                    /* [cap] the names, NUL-terminated */
} lj_snapshot;
/* Scratch for one call at a time (a pool grows to the number of concurrent calls). */
typedef struct lj_worker {
    struct lj_worker *next_idle, *next_all;
    float *scratch;                 /* [scratch_per_token * max(max_tokens, max_batch) + scratch_fixed] */
    float *key_cache;               /* [n_layers, seq_len, kv_dim]: lorajit_forward's private cache; NULL
                                       until this worker runs one */
    float *value_cache;             /* same layout as key_cache */
} lj_worker;
/* One thread's error message on one engine. */
typedef struct lj_thread_err {
    lj_err err;
    atomic_bool live;               /* held by a running thread (false: reusable) */
    struct lj_thread_err *next;
} lj_thread_err;
typedef struct lj_serve {
    bool ready;                     /* the locks and the key exist */
    pthread_mutex_t write_lock;     /* serialises writer calls (the registry, slot writes) */
    _Atomic(lj_snapshot *) current; /* owned (one reference); what a reader acquires, lock-free */
    _Atomic int64_t epoch;          /* bumped by each publish; its parity picks a counter below */
    _Atomic int64_t entering[2];    /* readers between reading `current` and counting their reference */
    pthread_mutex_t pin_lock;       /* pins; never taken by a reader's acquire */
    pthread_cond_t unpinned;        /* broadcast when a snapshot is freed */
    int32_t pins[LJ_MAX_SLOTS];     /* [n_phys] live snapshots (current, or held by readers) holding slot i */
    pthread_mutex_t pool_lock;      /* idle, all, errs */
    lj_worker *idle, *all;          /* owned, through next_all */
    size_t n_scratch, n_cache;      /* floats of a worker's scratch and of each of its caches */
    pthread_key_t err_key;          /* -> the calling thread's lj_thread_err */
    lj_thread_err *errs;            /* owned: every record */
    _Atomic int64_t reader_wait_max_ns; /* longest lj_snapshot_acquire */
    _Atomic int64_t writer_wait_max_ns; /* longest wait of lj_serve_pick_slot for an unpinned slot */
    _Atomic int64_t writer_waits;       /* how often it had to wait */
    _Atomic int64_t grace_max_ns;       /* longest wait of a publish for readers inside acquire */
} lj_serve;
/* Creates the locks and the thread key (E_NOMEM when the system has none left). */
lorajit_status lj_serve_init(lj_serve *sv);
/* Frees snapshots, workers and records; no call may be in flight. NULL-safe. */
void lj_serve_free(lj_serve *sv);
/* The calling thread's error record; created (create = true) on its first call.
 * Borrowed; valid until lorajit_engine_free. NULL when out of memory or absent. */
lj_err *lj_serve_thread_err(lj_serve *sv, bool create);
/* A snapshot big enough for r's names plus extra bytes (a name about to be added).
 * Caller owns *out; it is consumed by lj_serve_publish, or freed with free(). */
lorajit_status lj_snapshot_new(const lj_registry *r, size_t extra, lj_snapshot **out, lj_err *err);
/* Fills v from r and makes it current (one atomic exchange), then waits for readers
 * still inside lj_snapshot_acquire on the old one and drops the engine's reference
 * to it. Takes ownership of v. Writer only. */
void lj_serve_publish(lj_serve *sv, const lj_registry *r, lj_snapshot *v);
/* Reader: the current snapshot, held until lj_snapshot_release; takes no lock and
 * never waits. Borrowed; valid until then. */
lj_snapshot *lj_snapshot_acquire(lj_serve *sv);
void lj_snapshot_release(lj_serve *sv, lj_snapshot *v); /* NULL does nothing */
int lj_snapshot_find(const lj_snapshot *v, const char *name); /* slot or -1 */
/* Writer: a slot no entry of r owns and no snapshot pins; waits for readers of
 * retired snapshots to let go when there is none (bounded by one compiled call). */
int lj_serve_pick_slot(lj_serve *sv, const lj_registry *r);
/* A worker for one call: an idle one, else a new one; with_cache: with the private
 * KV cache (allocated on first need). Borrowed; valid until lj_worker_put (the
 * pool owns it). */
lorajit_status lj_worker_get(lj_serve *sv, bool with_cache, lj_worker **out, lj_err *err);
void lj_worker_put(lj_serve *sv, lj_worker *w); /* NULL does nothing */

/* ---- engine.c: the lorajit_engine handle (public API minus lorajit_engine_open) ---- */
/* What a compiler hands the runtime: entry point plus who owns the code. */
typedef struct lj_code {
    lj_forward_fn forward;
    lj_decode_fn decode;           /* batched decode step over several sequences */
    void *owner;                   /* e.g. the JIT session */
    void (*release)(void *owner);  /* frees owner; called once by the engine */
    char *ir_text;                 /* malloc'd text of the IR, for lorajit_engine_print_ir; may be NULL */
    int64_t compiles;              /* compilations that produced this code (1) */
    double compile_ms;
} lj_code;
/* The engine's counters (lorajit_stats), updated by any thread. */
typedef struct lj_counters {
    _Atomic int64_t loads, hotswaps, deletes, forwards, failed_calls;
    _Atomic int64_t prefill_tokens, decode_tokens, prefill_ns, decode_ns;
} lj_counters;
typedef struct lj_seq lj_seq;
/* The handle. Its body is internal: generate.c reads it too. After start, only
 * serve (its locks), the counters, the sequences (one thread each) and what the
 * writer lock guards change. */
struct lorajit_engine {
    lj_err err;            /* the open path's status + message (why the engine did not
                              start); calls after that use per-thread records (serve) */
    bool started;
    lj_layout *L;          /* owned */
    lj_weights *w;         /* owned */
    lj_pool *pool;         /* owned; threads = OpenBLAS's at start */
    lj_slots *slots;       /* owned; written under serve.write_lock, only in unpinned slots */
    lj_registry reg;       /* owned names; under serve.write_lock */
    lj_serve serve;        /* snapshots, workers, locks */
    lj_ctx ctx;            /* the compiled code's view; each call copies it and sets scratch, caches, active */
    float *key_cache;      /* [max_batch, n_layers, seq_len, kv_dim]: sequence s's block at s * cache_stride */
    float *value_cache;    /* same layout as key_cache */
    int64_t cache_stride;  /* floats per sequence: n_layers * seq_len * kv_dim */
    lj_seq *seqs;          /* [max_batch] owned */
    lj_code code;          /* owned; released once */
    lj_counters n;
};
/* An empty handle whose error can be set. Caller owns the result; free with
 * lorajit_engine_free(). NULL when out of memory (or out of thread keys). */
lorajit_engine *lj_engine_alloc(void);
/* The open path's error record (single-threaded, before the engine is shared). */
lj_err *lj_engine_err(lorajit_engine *e);
/* Binds weights, allocates slots, the sequences' KV caches and a first worker,
 * publishes the empty adapter state and installs code. Takes ownership of L and
 * code, also on failure. */
lorajit_status lj_engine_start(lorajit_engine *e, const char *model_dir, lj_layout *L,
                               lj_code code);
/* Start of every public call that changes or uses e: finds (or makes) the calling
 * thread's error record, clears it and points *err at it (borrowed; valid until
 * lorajit_engine_free); refuses a NULL engine or one that did not start (what
 * names the call in the message). */
lorajit_status lj_engine_enter(lorajit_engine *e, const char *what, lj_err **err);
/* End of a public call: counts a failure in failed_calls; returns st. */
lorajit_status lj_engine_leave(lorajit_engine *e, lorajit_status st);

/* ---- generate.c: sequences (KV cache position + adapter choice), prefill, decode ---- */
/* Which adapters a sequence uses. */
typedef struct lj_seq_choice {
    bool own;                        /* false: follow the engine's applied set */
    int n;                           /* own set: adapters (0: the base model) */
    char *text;                      /* owned: the n names, NUL-separated; NULL when n = 0 */
    const char *names[LJ_MAX_SLOTS]; /* [n] borrowed from text */
    float weight[LJ_MAX_SLOTS];      /* [n] */
} lj_seq_choice;
struct lj_seq {
    atomic_bool busy;                /* a call is using this sequence (claimed at entry) */
    int64_t pos;                     /* positions held in this sequence's KV cache */
    lj_seq_choice choice;
    lj_active row;                   /* the own set resolved to slots at the current step */
};
/* Frees what seqs[0..n) own, then seqs. NULL does nothing. */
void lj_seqs_free(lj_seq *seqs, int n);
/* Checks names[0..n) + weights against the adapters of snapshot v (loaded,
 * distinct, finite weights, n <= max_adapters) and copies them into *out (own =
 * true). what names the call in messages. Caller owns *out's text; free with
 * lj_seq_choice_free(). On failure *out is untouched. */
lorajit_status lj_seq_choice_make(const lj_snapshot *v, int max_adapters, const char *const *names,
                                  const float *weights, int n, lj_seq_choice *out,
                                  const char *what, lj_err *err);
void lj_seq_choice_free(lj_seq_choice *c); /* frees text only; NULL-safe */
/* Validates, then appends tokens[0..n) to sequence seq in chunks of max_tokens,
 * all of them with one snapshot of the adapters. The caller has claimed seq.
 * logits: NULL or [n, vocab_size]; last: NULL or [vocab_size], gets the last row.
 * tokens, logits and last are borrowed for the call. On failure nothing changes
 * (the position stays). */
lorajit_status lj_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n,
                              float *logits, float *last, const char *what, lj_err *err);
/* Validates everything (range, distinct sequences, vocabulary, room in each KV
 * cache, adapter names), then runs one compiled decode step with one snapshot.
 * The caller has claimed seqs. logits [n, vocab_size]. seqs, tokens and logits
 * are borrowed for the call. On failure nothing changes. */
lorajit_status lj_decode_step(lorajit_engine *e, const int *seqs, const int32_t *tokens, int n,
                              float *logits, const char *what, lj_err *err);

/* ---- sample.c: sampling a token from a logits row (pure; no engine) ---- */
typedef struct lj_rng {
    uint64_t state;                  /* splitmix64 state */
} lj_rng;
/* Seeds stream `stream` of seed (request i of a batch draws from stream i). r is
 * borrowed for the call, as in lj_rng_next and lj_rng_uniform. */
void lj_rng_seed(lj_rng *r, uint64_t seed, uint64_t stream);
uint64_t lj_rng_next(lj_rng *r);     /* splitmix64 */
double lj_rng_uniform(lj_rng *r);    /* [0, 1), 53 random bits */
/* A candidate token of a draw. */
typedef struct lj_cand {
    float logit;
    int32_t id;
} lj_cand;
/* Work space for lj_sample, sized for one vocabulary. */
typedef struct lj_sample_work {
    int vocab;
    lj_cand *cand;                   /* [vocab] candidates, best first once sorted */
    double *prob;                    /* [vocab] their unnormalised probabilities */
    uint8_t *seen;                   /* [vocab] repetition-penalty marks, all 0 between calls */
} lj_sample_work;
/* Caller owns the result; free with lj_sample_work_free(). NULL when out of memory. */
lj_sample_work *lj_sample_work_new(int vocab);
void lj_sample_work_free(lj_sample_work *w); /* NULL does nothing */
/* Checks a sampling setting; messages name the field. s is borrowed for the call. */
lorajit_status lj_sampling_check(const lorajit_sampling *s, lj_err *err);
/* Index of the largest of x[0..n) (ties: the lowest index; NaN never wins). x is
 * borrowed for the call. */
int32_t lj_argmax(const float *x, int n);
/* Picks the next token from logits [vocab] (overwritten: penalty and temperature
 * are applied in place). Order as in Hugging Face: repetition penalty over
 * hist[0..n_hist) (each distinct id once), then temperature 0 = argmax, else
 * logits / T, top-k, top-p (smallest set whose probability reaches top_p), and a
 * draw from rng. s must have passed lj_sampling_check. Every pointer is borrowed
 * for the call. */
int32_t lj_sample(float *logits, const lorajit_sampling *s, const int32_t *hist, int n_hist,
                  lj_rng *rng, lj_sample_work *w);

#endif /* LORAJIT_RUNTIME_H */
