/* serving.h — internal header of runtime/serving/: what runs a compiled model
 * and swaps adapters while serving: slot buffers, the adapter registry, the
 * compute pool, snapshots and workers (serve.c), sampling, and the CPU check of
 * an artifact. The engine's own struct is private to engine.h. */
#ifndef LORAJIT_SERVING_H
#define LORAJIT_SERVING_H

#include <pthread.h>
#include <stdatomic.h>

#include "code.h"

/* ---- slots.c: LoRA slot buffers ---- */
/* What one thread writing a slot works in. */
typedef struct lj_slot_scratch {
    void *stage;          /* [ST_STAGE_BYTES] staging of reads by pread */
    float *wide;          /* [r_max * max(in, out)] f32: a tensor as read (B before its transpose,
                             16-bit slots' values before rounding) */
    uint16_t *wide16;     /* 16-bit slots: [r_max * max out] B rounded, before its transpose */
} lj_slot_scratch;
typedef struct lj_slots {
    int n_sites;
    int n_phys;           /* physical slots = schema n_slots + 1 (the hotswap spare) */
    int r_max;
    int dtype;            /* A and B elements: LJ_DTYPE_F32, F16 or BF16 (the schema's lora_dtype) */
    lj_lora_site *sites;  /* [n_sites] what ctx->sites points at */
    int32_t *dirty;       /* [n_sites * n_phys] rows/cols written since last zeroed */
    int64_t *in;          /* [n_sites] K of each site (from the layout) */
    int64_t *out;         /* [n_sites] N of each site */
    size_t wide_n, wide16_n; /* floats of each scratch's wide, values of its wide16 */
    int n_scratch;        /* 1, or the pool's threads after lj_slots_use_pool */
    lj_slot_scratch *scratch;  /* [n_scratch]; writes are serialised, a write's threads take one each */
    atomic_flag *scratch_held; /* [n_scratch] */
    struct lj_pool *pool; /* borrowed (lj_slots_use_pool): large writes split their sites across it */
} lj_slots;
/* Allocates zeroed slot buffers for every layout site. Caller owns *out; free with lj_slots_free(). */
lorajit_status lj_slots_new(const lj_layout *L, lj_slots **out, lj_err *err);
void lj_slots_free(lj_slots *s); /* NULL does nothing */

/* Writes ad into physical slot `slot` of every site (sites ad does not cover get
 * rank 0), zeroing rows/cols left over from an earlier, larger adapter, rounding to
 * the slots' dtype. Fails only for an unchecked image (peft_adapter_read_mapped)
 * that holds a NaN / Inf, or for a value past 16-bit slots' range (F16: |v| over
 * 65504), found as it is converted (E_FORMAT naming the file, tensor and element): the slot is
 * then left part-written, which is harmless because the caller makes sure no
 * reader can see it (an unowned slot, lj_serve_pick_slot) and publishes nothing. */
lorajit_status lj_slots_write(lj_slots *s, int slot, const peft_adapter *ad, lj_err *err);
/* Tests ad's values without writing anything (a separate scan of the file's bytes):
 * an unchecked image's for NaN / Inf, and, when the slots are 16-bit and ad's dtype
 * could exceed theirs, every value for their range: the error lj_slots_write would
 * give, or OK. */
lorajit_status lj_slots_check(const lj_slots *s, const peft_adapter *ad, lj_err *err);
/* Marks slot empty at every site (rank 0). */
void lj_slots_clear(lj_slots *s, int slot);
/* Lets lj_slots_write split a write of LJ_SLOTS_SPLIT_BYTES or more across pool's
 * threads, a site to a thread (one scratch each, allocated here). pool is borrowed
 * and must outlive s. NOMEM leaves s writing on the calling thread. 1 MiB: a write
 * of that size takes 0.05-0.5 ms, where waking the helpers (tens of microseconds)
 * stops mattering; a 1 MiB hotswap measured the same either way. */
#define LJ_SLOTS_SPLIT_BYTES (1u << 20)
lorajit_status lj_slots_use_pool(lj_slots *s, struct lj_pool *pool, lj_err *err);

/* ---- adapters.c: the registry (name -> slot) and the active set ---- */
typedef struct lj_adapter_entry {
    char *name;          /* owned; NULL when the slot is free */
    size_t bytes;        /* f32 bytes of A and B */
    int64_t seq;         /* load order (kept by hotswap), for listing */
    bool lazy;           /* made resident by a call that named it (resolve.c): may be evicted */
    int users;           /* calls running with it (resolve.c pins): never evicted while > 0 */
    int64_t last_used;   /* lj_registry.clock when a call last named it */
} lj_adapter_entry;
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
    int64_t clock;                 /* counts the calls that name adapters (last_used) */
} lj_registry;
/* How a verb picks the slot it writes: fn(arg, r) returns a slot no entry of r owns
 * and no reader can see (the engine passes lj_serve_pick_slot), or -1 when every
 * slot is owned. NULL (or fn NULL): the first slot no entry owns (nothing reads
 * concurrently). Borrowed for the call. */
typedef struct lj_slot_pick {
    int (*fn)(void *arg, const lj_registry *r);
    void *arg;
} lj_slot_pick;
lorajit_status lj_registry_init(lj_registry *r, int n_slots, lj_err *err);
void lj_registry_free(lj_registry *r); /* frees names; NULL-safe */
int lj_registry_find(const lj_registry *r, const char *name); /* slot or -1 */
int lj_registry_count(const lj_registry *r);
/* The adapter to evict for a new one when every slot is owned: of those loaded
 * lazily, with no call running with them (users 0) and not in the active set, the
 * least recently used; its slot, or -1 when there is none. */
int lj_registry_victim(const lj_registry *r);
/* The PEFT verbs on registry + slots. Each validates first and changes nothing on
 * failure. load and hotswap write a slot that no entry owns (and, with pick,
 * that no snapshot pins: they may wait for one); hotswap and delete release the
 * old slot without clearing it (nothing reads an unowned slot; the next write
 * zeroes what it leaves over). */
/* The two halves of load and hotswap, so that no lock is held while files are read
 * (engine.c: check under the writer lock, peft_adapter_read with no lock, put under
 * it again). check: the argument and registry checks, in this order: name NULL or
 * empty, dir NULL (E_ARG); hotswap of a name not loaded (E_NOT_FOUND); load of a
 * name already loaded (E_EXISTS); load with every slot in use and no victim
 * (lj_registry_victim) to evict (E_FULL). put: the same checks again (the registry
 * may have changed during the read), then the commit, evicting the victim first
 * when every slot is owned; ad is borrowed for the call (the caller frees it). */
lorajit_status lj_adapter_check(const lj_registry *r, const char *name, const char *dir, bool hotswap,
                                lj_err *err);
lorajit_status lj_adapter_put(lj_registry *r, lj_slots *s, const char *name, const peft_adapter *ad,
                              bool hotswap, const lj_slot_pick *pick, lj_err *err);
/* check, peft_adapter_read, put in one call, with no lock (for a caller without
 * concurrent writers); dir is borrowed for the call. */
lorajit_status lj_adapter_load(lj_registry *r, lj_slots *s, const lj_layout *L, const char *name,
                               const char *dir, const lj_slot_pick *pick, lj_err *err);
lorajit_status lj_adapter_hotswap(lj_registry *r, lj_slots *s, const lj_layout *L,
                                  const char *name, const char *dir, const lj_slot_pick *pick,
                                  lj_err *err);
lorajit_status lj_adapter_delete(lj_registry *r, lj_slots *s, const char *name, lj_err *err);
lorajit_status lj_adapter_set(lj_registry *r, const char *const *names, const float *weights,
                              int n, lj_err *err);
void lj_adapter_enable(lj_registry *r, bool on);

/* ---- adapter_cache.c: adapters by name beyond the slots (issue 14) ----
 * Registered folders, a root folder (NAME = ROOT/NAME), and detached copies of
 * adapters read lately in host memory within a byte budget. A plain structure: the
 * engine uses it under lj_serve.write_lock. A copy is served until the adapter is
 * hotswapped or deleted (files changed in place are picked up by a hotswap). */
typedef struct lj_cached_adapter {
    char *name;          /* owned */
    char *dir;           /* owned: where name is read from when registered */
    bool registered;     /* by lorajit_register_adapter (or a hotswap of a lazy adapter) */
    peft_adapter *img;   /* owned, detached (peft_adapter_detach); NULL: none kept */
    char *img_dir;       /* owned: the folder img was read from; NULL with img */
    int64_t used;        /* c->clock at its last use */
} lj_cached_adapter;
typedef struct lj_adapter_cache {
    char *root;                  /* owned; NULL: no adapter folder */
    lj_cached_adapter *items;    /* [n] owned, room for cap */
    int n, cap;
    size_t budget, bytes;        /* host bytes allowed for images, and held */
    int64_t clock;
} lj_adapter_cache;
void lj_acache_init(lj_adapter_cache *c, size_t budget);
void lj_acache_free(lj_adapter_cache *c); /* NULL does nothing */
/* name -> dir (both copied); E_EXISTS when name is registered already. */
lorajit_status lj_acache_register(lj_adapter_cache *c, const char *name, const char *dir, lj_err *err);
/* The root folder (copied; NULL: none). */
lorajit_status lj_acache_set_root(lj_adapter_cache *c, const char *root, lj_err *err);
/* The folder name is read from into out[cap]: its registration, else ROOT/name when
 * a root is set and name is one safe path component (E_ARG naming it otherwise);
 * E_NOT_FOUND when neither. */
lorajit_status lj_acache_dir(const lj_adapter_cache *c, const char *name, char *out, size_t cap, lj_err *err);
/* The kept copy of name read from dir, or NULL; counts as a use. Borrowed: valid
 * until the next call that changes c. */
const peft_adapter *lj_acache_get(lj_adapter_cache *c, const char *name, const char *dir);
/* Keeps img (detached, taken; freed at once when over the budget or not detached)
 * as name's copy of dir, dropping the least recently used copies to fit. */
void lj_acache_keep(lj_adapter_cache *c, const char *name, const char *dir, peft_adapter *img);
/* Forgets name's registration and copy; returns whether it was registered. */
bool lj_acache_forget(lj_adapter_cache *c, const char *name);
bool lj_acache_registered(const lj_adapter_cache *c, const char *name);
/* Registers name at dir (a hotswap: it is read from there from now on) and drops its copy. */
lorajit_status lj_acache_rebind(lj_adapter_cache *c, const char *name, const char *dir, lj_err *err);
/* A new budget; copies over it are dropped, least recently used first. */
void lj_acache_set_budget(lj_adapter_cache *c, size_t budget);

/* ---- kv.c: the paged KV cache (blocks of block_size positions from one pool) ---- */
typedef struct lj_kv {
    bool ready;              /* the lock exists */
    int64_t block_size;      /* positions per block, a power of two */
    int64_t block_elems;     /* elements of one block of K (or V): n_layers * block_size * kv_dim */
    int elem_bytes;          /* bytes of one element: 4 (kv_dtype f32) or 2 (f16, bf16) */
    int64_t per_seq;         /* most blocks a sequence holds: ceil(seq_len / block_size) */
    int max_batch;           /* sequences */
    int32_t n_blocks;        /* blocks in the pool */
    void *key_pool;          /* [n_blocks, n_layers, block_size, kv_dim] of the schema's kv_dtype
                                (ctx.h key_cache) */
    void *value_pool;        /* same layout as key_pool */
    pthread_mutex_t lock;    /* free_list, n_free, held and the tables change under it */
    int32_t *free_list;      /* [n_blocks] a stack of the free blocks, n_free of them */
    int32_t n_free;
    int32_t *table;          /* [max_batch, per_seq] sequence s's blocks in position order,
                                held[s] of them; read without the lock by the call that claims s */
    int32_t *held;           /* [max_batch] blocks sequence s holds */
    int32_t *identity;       /* [ceil(max_tokens / block_size)] 0, 1, ...: the block table of
                                lorajit_forward's private cache (a worker's, forward_elems) */
    int64_t forward_elems;   /* elements of that private cache, K or V */
} lj_kv;
/* Sizes the pool from sc (kv_block_size, 0: LJ_KV_BLOCK_DEFAULT; kv_cache_mb, 0:
 * max_batch * seq_len positions; more than that is never allocated) and allocates it. On failure the
 * pieces stay on kv for lj_kv_free. */
lorajit_status lj_kv_init(lj_kv *kv, const lj_config *cfg, const lj_schema *sc, lj_err *err);
void lj_kv_free(lj_kv *kv); /* NULL does nothing */
int64_t lj_kv_blocks_for(const lj_kv *kv, int64_t positions); /* ceil(positions / block_size) */
/* Makes each sequence seqs[i] (distinct, claimed by the caller) hold the blocks for
 * positions[i] positions: at least those (exact: exactly those, giving the rest
 * back); all or none. E_FULL naming the first sequence short of blocks and the
 * blocks in use when the pool has too few free; nothing changes then. */
lorajit_status lj_kv_reserve(lj_kv *kv, const int *seqs, const int64_t *positions, int n, bool exact,
                             const char *what, lj_err *err);
/* Gives back seq's blocks beyond those of `positions` positions. */
void lj_kv_trim(lj_kv *kv, int seq, int64_t positions);
/* Sequence seq's block table (held by its claimer). Borrowed; valid until the next
 * reserve or trim of seq. */
const int32_t *lj_kv_table(const lj_kv *kv, int seq);
/* out[i * width ..] = the first min(width, held) blocks of seqs[i]: lj_decode's rows. */
void lj_kv_gather(const lj_kv *kv, const int *seqs, int n, int64_t width, int32_t *out);
void lj_kv_count(lj_kv *kv, int64_t *free_blocks, int64_t *total_blocks); /* either may be NULL */

/* ---- pool.c: threads for the compiled kernels' parallel loops ---- */
#define LJ_POOL_MAX_THREADS 256
#define LJ_POOL_CHUNKS_PER_THREAD 8 /* a run is cut into at most threads x this many chunks */
typedef struct lj_pool lj_pool;
/* Starts threads - 1 helper threads (clamped to 1..LJ_POOL_MAX_THREADS; 1: none).
 * Caller owns *out; free with lj_pool_free(), which joins the helpers. */
lorajit_status lj_pool_new(int threads, lj_pool **out, lj_err *err);
void lj_pool_free(lj_pool *p); /* NULL does nothing; no run may be in flight */
/* ctx.h's lj_parallel_fn: fn(arg, b, e) over [0, n) cut into chunks that the
 * caller and the helpers claim one by one, returning when all are done. Runs
 * fn(arg, 0, n) itself when pool is NULL, has one thread, or is busy with another
 * thread's run. Waits spin briefly, then sleep. */
void lj_pool_run(void *pool, lj_task_fn fn, void *arg, int64_t n);
int lj_pool_threads(const lj_pool *p); /* 1 for NULL */
/* Helpers asleep on the pool's condition variable now (0 for NULL): a helper that
 * polls for a run is not counted. For tests and stats. */
int lj_pool_sleepers(lj_pool *p);

/* ---- matmul_amx.c: BF16 matmuls on AMX tiles ---- */
/* Whether this process may run AMX-BF16 code: the CPU has it (and AVX512-BF16) and
 * the OS granted the tile state (asked once); false with LORAJIT_NO_AMX=1. */
bool lj_amx_ready(void);
/* ctx.h's lj_matmul16_fn (ctx->matmul_bf16_amx where lj_amx_ready()). */
int lj_matmul_bf16_amx(const float *x, void *xs, int64_t xs_rows, const uint16_t *w, int64_t n, float *y,
                       int64_t out, int64_t in, lj_parallel_fn parallel, void *pool);

/* ---- pool_gemm.c: OpenBLAS on the pool's threads ---- */
/* Output columns of one block of lj_pool_sgemm for an m-row product: a function of
 * the shape only, so the result is the same bits whatever the thread count. */
int lj_pool_gemm_cols(int m);
/* ctx.h's lj_sgemm_fn (cblas_sgemm's arguments): a row-major product of more
 * than lj_pool_gemm_cols(m) columns is computed as blocks of that many columns of
 * C, one cblas_sgemm each, run on the pool bound to the calling thread
 * (lj_pool_bind; on the caller alone when none). Anything else is one cblas_sgemm. */
void lj_pool_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Makes p the pool lj_pool_sgemm uses on the calling thread (NULL: none) and
 * returns the previous one (bind it back after the compiled call). p borrowed. */
lj_pool *lj_pool_bind(lj_pool *p);
/* The engine's default thread count: the count OpenBLAS has now, or the one it had
 * when lorajit first pinned it; pins OpenBLAS to one thread for the process, so the
 * engine's pool is the only set of compute threads. */
int lj_blas_threads_take(void);

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
    void *key_cache;                /* [blocks, n_layers, block_size, kv_dim] of the KV dtype (lj_kv.identity's
                                       blocks): lorajit_forward's private cache; NULL until this worker runs one */
    void *value_cache;              /* same layout as key_cache */
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
    size_t n_scratch;               /* floats of a worker's scratch */
    size_t cache_bytes;             /* bytes of each of a worker's private caches (K, V) */
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

/* ---- seqs.c: a sequence's adapter choice (KV cache position + choice; generate.c runs them) ---- */
/* Which adapters a sequence uses. */
typedef struct lj_seq_choice {
    bool own;                        /* false: follow the engine's applied set */
    int n;                           /* own set: adapters (0: the base model) */
    char *text;                      /* owned: the n names, NUL-separated; NULL when n = 0 */
    const char *names[LJ_MAX_SLOTS]; /* [n] borrowed from text */
    float weight[LJ_MAX_SLOTS];      /* [n] */
} lj_seq_choice;
typedef struct lj_seq {
    atomic_bool busy;                /* a call is using this sequence (claimed at entry) */
    int64_t pos;                     /* positions held in this sequence's KV cache */
    lj_seq_choice choice;
    lj_active row;                   /* the own set resolved to slots at the current step */
} lj_seq;
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

/* ---- artifact.c: lorajit_engine_open_artifact (no LLVM: dlopen) ---- */
/* 1: this CPU has the x86 feature f (LLVM's spelling, or an x86-64 level name;
 * borrowed for the call); 0: it lacks it; -1: this runtime cannot test f. */
int lj_cpu_has(const char *f);

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

/* ---- bench_hook.c: slot writes from memory for `lorajit bench` ----
 * Declared in bench_hook.h, a header of its own, so that bench/ sees nothing else
 * of the runtime (the one documented exception to bench/ using lorajit.h only). */
#include "bench_hook.h"

#endif /* LORAJIT_SERVING_H */
