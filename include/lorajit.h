/* lorajit.h — the one public header of lorajit.
 *
 * lorajit compiles a Hugging Face LLaMA-family model once (LLVM, ORC LLJIT) with
 * LoRA slots on its target linears, then loads, activates, combines, disables,
 * hot-swaps and deletes PEFT adapters at run time without ever recompiling.
 *
 * Conventions
 *  - Every call that can fail returns lorajit_status; LORAJIT_OK is 0.
 *  - The message of the last failure lives on the handle: lorajit_errmsg(e).
 *  - Handles are opaque. Tensors are row-major, PyTorch/safetensors order.
 *
 * Threads (swap while serving). On one engine, any number of threads may call the
 * reader calls -- lorajit_forward, lorajit_seq_prefill, lorajit_decode,
 * lorajit_generate, lorajit_get_stats -- at the same time as each other and as the
 * writer calls -- load, hotswap, delete, set_adapter, enable, disable, and
 * list_adapters -- which run one at a time (an engine mutex serialises them).
 *  - Each reader call (each prefill, and each decode step of lorajit_generate)
 *    sees one adapter state: the one published by the last writer call that had
 *    finished when it started, or a later one. Never half an adapter, never a
 *    slot that is being written or was freed: a writer writes only slots that no
 *    running call can see, then publishes the new state by a pointer flip.
 *  - A writer never blocks a reader: taking the current state is a few atomic
 *    operations, no lock, and the flip is one atomic exchange. A reader can
 *    delay a load or hotswap by at most one compiled call, when every spare slot
 *    is still held by calls that run on an older state; never forever.
 *  - Sequences: a sequence is used by one thread at a time. The calls that name
 *    sequences (seq_set_adapter, seq_follow_engine, seq_reset, seq_prefill,
 *    decode) claim them for their duration and fail with LORAJIT_E_ARG ("in use")
 *    when another call holds one; lorajit_generate claims the first n sequences
 *    that no call holds. Threads that drive their own sequences and threads that
 *    call lorajit_generate should therefore use disjoint sequences (e.g. the
 *    highest ones for your own, since generate takes the lowest free ones).
 *  - lorajit_errmsg(e) is per thread: the message of the calling thread's last
 *    call on e. A thread that has made no call sees the open message ("" once
 *    the engine started).
 *  - Compute threads: each engine starts a pool of options.threads threads (0:
 *    as many as OpenBLAS has when the engine opens: OPENBLAS_NUM_THREADS, or
 *    openblas_set_num_threads before open). Opening an engine pins OpenBLAS to one
 *    thread for the whole process (OpenBLAS's count is process-wide) and lorajit's
 *    own OpenBLAS calls are cut into blocks run on the pool, so an engine never has
 *    two sets of threads; an application that also uses OpenBLAS and wants it
 *    threaded calls openblas_set_num_threads after opening (lorajit's prefill then
 *    runs OpenBLAS's threads inside the pool's: correct, slower on busy cores).
 *    The compiled matmuls of 1..8 rows (decode) split their rows among the pool's
 *    threads, larger ones split sgemm by output columns. Waiting threads spin for
 *    microseconds, then sleep, and work is claimed in small chunks, so a thread the
 *    OS does not schedule (a busy neighbour process) costs a wake-up, not a core.
 *    One call uses the pool at a time; a call that finds it busy runs on its own
 *    thread. Results are bit-identical whatever the thread count.
 *  - Several calling threads: they share the pool (one at a time, the others run
 *    alone); with many callers options.threads = 1 lets the callers be the
 *    parallelism.
 *  - Model facts (vocab_size, max_tokens, max_batch) and print_ir may be called
 *    from any thread. No lock is held while lorajit_generate's on_token runs.
 *  - lorajit_engine_open / _open_artifact and lorajit_engine_free are not
 *    concurrent with anything on that engine: free it after every other thread
 *    is done with it. Distinct engines are independent.
 */
#ifndef LORAJIT_H
#define LORAJIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LORAJIT_API __attribute__((visibility("default")))
#else
#define LORAJIT_API
#endif

/* ---- Version ----
 * The version of this header (CMakeLists.txt's project(VERSION); the build fails
 * when they differ). 0.x: a minor release may change the API and ABI. */
#define LORAJIT_VERSION_MAJOR 0
#define LORAJIT_VERSION_MINOR 1
#define LORAJIT_VERSION_PATCH 0
#define LORAJIT_VERSION_STRING "0.1.0"

/* The version of the library that is running, "MAJOR.MINOR.PATCH": compare it with
 * LORAJIT_VERSION_STRING, the header the program was compiled against. Static text. */
LORAJIT_API const char *lorajit_version(void);

typedef enum lorajit_status {
    LORAJIT_OK = 0,
    LORAJIT_E_IO,          /* a file could not be opened, read or mapped */
    LORAJIT_E_FORMAT,      /* a file is malformed (JSON, safetensors header, data) */
    LORAJIT_E_SHAPE,       /* a tensor's shape does not fit the model */
    LORAJIT_E_UNSUPPORTED, /* valid input that lorajit cannot represent */
    LORAJIT_E_NOT_FOUND,   /* a named adapter, tensor or file does not exist */
    LORAJIT_E_EXISTS,      /* an adapter of that name is already loaded */
    LORAJIT_E_FULL,        /* every adapter slot is in use, or no KV cache block is free */
    LORAJIT_E_NOMEM,       /* an allocation failed */
    LORAJIT_E_ARG,         /* a bad argument (NULL, out of range, too many tokens) */
    LORAJIT_E_COMPILE,     /* LLVM failed to build, optimise or JIT the model */
    LORAJIT_STATUS_COUNT
} lorajit_status;

typedef struct lorajit_engine lorajit_engine;

/* Options for lorajit_engine_open. Zero / NULL fields take the value from
 * schema_path when it is given, else the default. Plain struct, caller owns it. */
typedef struct lorajit_options {
    const char *schema_path; /* adapter schema JSON: {"max_rank", "target_modules", "max_adapters"} */
    int max_rank;            /* default 64 */
    const char *targets;     /* comma list, e.g. "q_proj,v_proj"; default every linear of the architecture */
    int max_adapters;        /* resident adapter slots, default 8, at most 64 */
    int max_tokens;          /* tokens per forward call; default min(max_position_embeddings, 4096) */
    int max_batch;           /* sequences with their own KV cache (generation), default 4, at most 64 */
    int max_seq_len;         /* KV cache length per sequence; default min(max_position_embeddings,
                                4096) (or max_tokens when larger); raise it up to
                                max_position_embeddings, or past it when rope_scaling
                                extends the context (CLI: --max-seq-len) */
    /* The KV cache is paged: blocks of kv_block_size positions taken from one pool as
     * sequences grow, given back when a sequence is reset (lorajit_kv_blocks). Not
     * compiled in: an artifact may be opened with any of them. */
    int kv_cache_mb;         /* MiB for the pool (K and V of every layer); default 0: what every
                                sequence's max_seq_len positions take (max_batch of them), the
                                whole cache; less shares it (CLI: --kv-cache-mb) */
    int kv_block_size;       /* positions per block, a power of two up to 65536; default 16
                                (CLI: --kv-block-size) */
    int threads;             /* compute threads of the engine's pool, 1..256; 0 (default): the
                                count OpenBLAS has at open (OPENBLAS_NUM_THREADS, else every
                                core), or had when lorajit first pinned it. Opening an engine
                                sets OpenBLAS to one thread for the whole process: the pool
                                runs lorajit's GEMMs */
    const char *kv_dtype;    /* how the KV cache stores keys and values: "f32" (NULL, the
                                default), "f16" or "bf16" (rounded to nearest even as they are
                                written, widened to f32 as attention reads them; sums stay f32).
                                16 bits halve a block's bytes, so the same kv_cache_mb holds twice
                                the blocks. Compiled in (an artifact records it; opening one with
                                another is refused); schema key "kv_dtype" (CLI: --kv-dtype) */
    const char *lora_dtype;  /* how the LoRA slots store A and B: "f32" (NULL, the default: the
                                adapter's values exactly, as PEFT computes them), "bf16" or "f16"
                                (rounded to nearest even as an adapter is written into a slot,
                                widened to f32 as the kernels read them; sums stay f32). 16 bits
                                halve the bytes a decode step reads per distinct adapter and a
                                swap writes. Compiled in (an artifact records it; opening one
                                with another is refused); schema key "lora_dtype" (CLI:
                                --lora-dtype) */
} lorajit_options;

/* Counters of an engine's life. compiles is counted where LLJIT generates machine
 * code for the engine: 1 after lorajit_engine_open, and it stays 1 (0 for an engine
 * opened from an artifact: it was compiled ahead of time, not in this process). */
typedef struct lorajit_stats {
    int64_t compiles;     /* machine-code generations of the forward graph for this engine */
    int64_t loads, hotswaps, deletes, forwards, failed_calls;
    int64_t adapters;     /* adapters resident now */
    int64_t active;       /* adapters in the active set now (0 when disabled) */
    int enabled;          /* 1 unless disable was called */
    double compile_ms;    /* wall time of front end + optimisation + JIT */
    int64_t prefill_tokens, decode_tokens; /* tokens run by lorajit_seq_prefill / lorajit_decode */
    double prefill_ms, decode_ms;          /* wall time spent in them */
    /* compile_ms by stage (all 0 for an artifact engine); the rest of compile_ms is
     * bookkeeping between stages */
    double frontend_ms;   /* config.json + schema + front end (IR) + weight dtypes */
    double plan_ms;       /* ir_verify + ir_plan + ir_verify + layout */
    double codegen_ms;    /* target machine + LLVM IR generation */
    double optimize_ms;   /* LLVM verifier + default<O3> + machine code (a JIT engine:
                             parts of the module on threads, LORAJIT_COMPILE_THREADS) */
    double jit_ms;        /* LLJIT: link, symbol lookup */
    /* the adapter cache (lorajit_register_adapter) */
    int64_t jit_loads;    /* adapters loaded just in time because a call named them */
    int64_t evictions;    /* adapters evicted from their slot to make room */
    int64_t host_hits;    /* just-in-time loads served from the host-memory copies */
    int threads;          /* compute threads of the engine's pool (options.threads or OpenBLAS's) */
} lorajit_stats;

/* Static text for a status code; never NULL. */
LORAJIT_API const char *lorajit_status_str(lorajit_status s);

/* Reads the model folder (config.json + model.safetensors, or a sharded set via
 * model.safetensors.index.json), builds the IR with LoRA slots, compiles it once
 * and maps the weights. *out is written even on failure (as sqlite3_open does) so
 * that lorajit_errmsg(*out) explains it; it is NULL only when memory ran out.
 * Caller owns *out; free with lorajit_engine_free(). */
LORAJIT_API lorajit_status lorajit_engine_open(lorajit_engine **out, const char *model_dir,
                                               const lorajit_options *opts);

/* Frees the engine, its compiled code, weights and adapters. NULL does nothing. */
LORAJIT_API void lorajit_engine_free(lorajit_engine *e);

/* ---- Ahead of time: compile once on a build machine, ship, open without LLVM ----
 * An artifact is a folder: liblorajit_model.so (the compiled forward and decode
 * entry points), model.o, model.h (their declarations), model.ir (the IR text) and
 * manifest.json (the config, the schema, every tensor the code expects with its
 * shape and dtype, the LoRA sites, the target CPU and features, and hashes of the
 * IR, the code, the library and the manifest itself). */

/* Compiles model_dir's config.json (the weights are not read) with opts' schema,
 * through the same IR and optimisation pipeline as lorajit_engine_open, for
 * target_cpu: NULL or "native" = this machine's CPU and features; "x86-64",
 * "x86-64-v2", "x86-64-v3" or "x86-64-v4" = that level, so that the artifact runs
 * on older machines. Writes the artifact into out_dir (created if missing; an
 * earlier artifact there is replaced). Links with the system C compiler (`cc` on
 * PATH). On failure the message goes to errbuf (caller-owned, errcap bytes; may be
 * NULL) and out_dir holds no manifest.json, so it cannot be opened. */
LORAJIT_API lorajit_status lorajit_compile_artifact(const char *model_dir, const lorajit_options *opts,
                                                    const char *target_cpu, const char *out_dir,
                                                    char *errbuf, size_t errcap);

/* Compiles model_dir's config.json with opts exactly as lorajit_engine_open does
 * (same pipeline, JIT for this host) without mapping the weights (it reads only
 * their safetensors headers, when present, for their dtypes), then drops the code:
 * checks that a config and schema compile, and times the stages. stats (may be
 * NULL) gets compiles, compile_ms and the stage times; its other counters are 0.
 * Adds 1 to lorajit_compiles_total(). On failure the message goes to errbuf
 * (caller-owned, errcap bytes; may be NULL). */
LORAJIT_API lorajit_status lorajit_compile_only(const char *model_dir, const lorajit_options *opts,
                                                lorajit_stats *stats, char *errbuf, size_t errcap);

/* Machine-code generations in this process so far, of every engine and artifact:
 * +1 for each lorajit_engine_open, lorajit_compile_artifact and lorajit_compile_only
 * that succeeded; nothing for lorajit_engine_open_artifact or any adapter, forward
 * or generation call. Thread-safe. In a program linked with the runtime library
 * alone (no LLVM) this call does not exist. */
LORAJIT_API int64_t lorajit_compiles_total(void);

/* Opens the artifact in artifact_dir with the weights of model_dir, without LLVM
 * (the library is dlopen'ed). Refused, with the reason in lorajit_errmsg(*out): a
 * manifest that was edited or an ABI version of another lorajit, a config.json
 * that differs from the compiled one (the field is named), a CPU that lacks a
 * compiled feature (named), a library that does not match its hash, weights whose
 * names or shapes differ (the tensor is named). opts: NULL, or options that must
 * agree with the schema compiled into the artifact. Everything else is as for
 * lorajit_engine_open: *out is written even on failure; the same calls apply;
 * stats.compiles is 0. Caller owns *out; free with lorajit_engine_free(). */
LORAJIT_API lorajit_status lorajit_engine_open_artifact(lorajit_engine **out, const char *artifact_dir,
                                                        const char *model_dir, const lorajit_options *opts);

/* Message of the calling thread's last call on e ("" when it succeeded, or the
 * open message when this thread made no call yet). Borrowed; valid until this
 * thread's next call on e. */
LORAJIT_API const char *lorajit_errmsg(const lorajit_engine *e);

/* Writes the model's IR (after verification and passes) as text to f. */
LORAJIT_API lorajit_status lorajit_engine_print_ir(lorajit_engine *e, FILE *f);

/* Model facts: vocab size, max tokens per forward call, sequences (max_batch;
 * fixed by the schema, which an artifact's user may not know). 0 when e did not start. */
LORAJIT_API int lorajit_vocab_size(const lorajit_engine *e);
LORAJIT_API int lorajit_max_tokens(const lorajit_engine *e);
LORAJIT_API int lorajit_max_batch(const lorajit_engine *e);

/* Loads the PEFT adapter in dir (adapter_config.json + adapter_model.safetensors)
 * into a free slot under name. Does not activate it. Everything is validated before
 * anything is written: on failure the loaded adapters and the active set are as before. */
LORAJIT_API lorajit_status lorajit_load_adapter(lorajit_engine *e, const char *name, const char *dir);

/* Replaces the weights of the loaded adapter name with those in dir (rank, alpha,
 * rslora and targets may all differ, within the schema). An active adapter stays
 * active with the new weights. On failure nothing changes. */
LORAJIT_API lorajit_status lorajit_hotswap_adapter(lorajit_engine *e, const char *name, const char *dir);

/* Unloads name and frees its slot; it also leaves the active set. A registered
 * name is forgotten (registration and host copy), loaded or not. */
LORAJIT_API lorajit_status lorajit_delete_adapter(lorajit_engine *e, const char *name);

/* Makes names[0..n) the active set: y = Wx + sum_i weights[i] * s_i * B_i A_i x.
 * weights may be NULL (all 1). n = 0 activates nothing. Unknown names fail and
 * change nothing. names are borrowed for the call only. */
LORAJIT_API lorajit_status lorajit_set_adapter(lorajit_engine *e, const char *const *names,
                                               const float *weights, int n);

/* disable: forward gives exactly the base model; enable: the active set applies again.
 * They fail only when memory runs out (LORAJIT_E_NOMEM: publishing a state allocates). */
LORAJIT_API lorajit_status lorajit_enable_adapters(lorajit_engine *e);
LORAJIT_API lorajit_status lorajit_disable_adapters(lorajit_engine *e);

/* Runs the compiled forward pass over tokens[0..n) from position 0, in a KV cache
 * of its own (it never disturbs a generating sequence).
 * logits: caller-owned [n, vocab_size] floats, one row per input position. A NaN
 * or Inf among them fails the call (LORAJIT_E_FORMAT, naming the position). */
LORAJIT_API lorajit_status lorajit_forward(lorajit_engine *e, const int32_t *tokens, int n, float *logits);

/* Copies the counters into *st. */
LORAJIT_API lorajit_status lorajit_get_stats(const lorajit_engine *e, lorajit_stats *st);

/* ---- More adapters than slots: the adapter cache ----
 * An engine holds at most max_adapters adapters resident in its compiled slots.
 * Beyond them adapters are known by name: registered (lorajit_register_adapter), or
 * found as ROOT/NAME in the adapter folder (lorajit_set_adapter_dir). A call that
 * names one that is not resident (lorajit_set_adapter, lorajit_seq_set_adapter,
 * lorajit_seq_prefill, lorajit_decode, a lorajit_generate request) loads it just in
 * time into a free slot, or into the slot of the least recently used adapter that
 * was loaded that way, is not in the active set and is not in use by a running call;
 * that one is evicted (still known: named again, it is loaded again). Adapters
 * loaded with lorajit_load_adapter are never evicted. Copies of adapters read
 * lately stay parsed in host memory (lorajit_set_adapter_cache), so that loading
 * one again is a copy into a slot, not a file read; a copy is used until the
 * adapter is hotswapped or deleted. No slot to free: LORAJIT_E_FULL, nothing
 * changed. A just-in-time load reads the folder with no lock held, so other calls
 * keep running meanwhile; a failed one changes nothing and names the folder. */
/* Registers name for the folder dir (a directory; read when name is first used).
 * LORAJIT_E_EXISTS when name is loaded or registered already. Strings are copied. */
LORAJIT_API lorajit_status lorajit_register_adapter(lorajit_engine *e, const char *name, const char *dir);
/* Reads the adapter folder dir and checks it against the engine as
 * lorajit_load_adapter would (files, tensor names, shapes, ranks, targets, finite
 * values within the slots' dtype), without a slot and without blocking other calls:
 * nothing resident changes. When name (NULL: none) is registered and not resident,
 * the parsed copy joins the host-memory copies (lorajit_set_adapter_cache), so its
 * first use is a copy into a slot, not a file read. For a server that validates a
 * folder when it is named and loads it when a request uses it. */
LORAJIT_API lorajit_status lorajit_check_adapter(lorajit_engine *e, const char *name, const char *dir);
/* Sets the adapter folder: a name neither loaded nor registered means root/NAME
 * (NAME one path component, not starting with '.'). NULL: none. */
LORAJIT_API lorajit_status lorajit_set_adapter_dir(lorajit_engine *e, const char *root);
/* Host memory for the parsed copies, in bytes (default 256 MiB; 0 keeps none). */
LORAJIT_API lorajit_status lorajit_set_adapter_cache(lorajit_engine *e, size_t host_bytes);

/* Lists resident adapters: writes up to cap names (borrowed; valid until the next
 * load/hotswap/delete on e, by any thread) and returns how many are resident. */
LORAJIT_API int lorajit_list_adapters(const lorajit_engine *e, const char **names, int cap);

/* ---- Generation: sequences with a KV cache, batched decode, sampling ----
 * An engine has max_batch sequences (0..max_batch-1), each with its own KV cache
 * of up to max_seq_len positions, in blocks taken from the engine's pool as it
 * grows (options.kv_cache_mb, kv_block_size), and its own adapter choice. The prefill and decode
 * entry points come from the same single compilation as lorajit_forward.
 * Every call below checks all of its input first (sequence range, room in the
 * KV cache, vocabulary, adapter names) and changes nothing when it fails.
 * Logits that come out NaN or Inf (a bad base weight, or overflow) are never
 * returned as a success or sampled: the call fails with LORAJIT_E_FORMAT naming
 * the sequence (or request) and the position, no sequence advances, and
 * lorajit_generate stops (out holds the tokens sampled before). */

/* Which adapters a sequence uses. By default a sequence follows the engine's
 * active set (lorajit_set_adapter, enable/disable) as it is at each step; after
 * lorajit_seq_set_adapter it uses its own set: names[0..n) with weights (NULL:
 * all 1), n = 0 meaning the base model (like PEFT's adapter_names= per row).
 * Unknown names fail at the call and change nothing. Names are resolved at every
 * step, so a hotswap of an adapter the sequence uses takes effect at its next
 * step, and a deleted adapter makes the next step fail naming it. While the
 * engine is disabled no sequence applies any adapter (PEFT: disable_adapters
 * wins over adapter_names). names are borrowed for the call. */
LORAJIT_API lorajit_status lorajit_seq_set_adapter(lorajit_engine *e, int seq, const char *const *names,
                                                   const float *weights, int n);
/* Makes seq follow the engine's active set again. */
LORAJIT_API lorajit_status lorajit_seq_follow_engine(lorajit_engine *e, int seq);
/* Empties seq's KV cache (position 0) and gives its blocks back to the pool; its
 * adapter choice stays. */
LORAJIT_API lorajit_status lorajit_seq_reset(lorajit_engine *e, int seq);
/* Number of positions seq holds (racy while another thread runs seq). -1 when seq
 * is out of range. */
LORAJIT_API int lorajit_seq_pos(const lorajit_engine *e, int seq);
/* Appends tokens[0..n) to seq (any n with pos + n <= max_seq_len, in chunks of
 * max_tokens), writing their K/V into its cache. logits: NULL, or caller-owned
 * [n, vocab_size] for every position. tokens and logits are borrowed for the call.
 * The blocks for the new positions are taken first; when the pool has too few free,
 * the call fails with LORAJIT_E_FULL naming the sequence and the blocks in use, and
 * changes nothing. */
LORAJIT_API lorajit_status lorajit_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n,
                                               float *logits);
/* One decode step over a batch: row i appends tokens[i] to sequence seqs[i]
 * (distinct, n <= max_batch) using that sequence's adapters, all rows in one pass
 * (batched GEMMs, per-row LoRA gathered from each row's slots, as Punica's BGMV).
 * A sequence whose cache is full fails the call ("KV cache full: sequence 2 holds
 * 128 of 128 positions, 1 more asked"); rows that need a new block when the pool
 * has too few free fail it with LORAJIT_E_FULL (no row advances). logits:
 * caller-owned [n, vocab_size].
 * seqs, tokens and logits are borrowed for the call. Fails with
 * LORAJIT_E_UNSUPPORTED when the compiled code has no decode entry point. */
LORAJIT_API lorajit_status lorajit_decode(lorajit_engine *e, const int *seqs, const int32_t *tokens, int n,
                                          float *logits);

/* The paged KV cache: blocks free now (racy while other calls run), blocks in the
 * pool, positions per block and bytes per block (K and V of every layer). A caller
 * that schedules sequences can reserve against these: a prefill to position p needs
 * ceil(p / block_size) blocks for its sequence in all, a decode step one more block
 * each time the position reaches a multiple of block_size. Any pointer may be NULL. */
LORAJIT_API lorajit_status lorajit_kv_blocks(const lorajit_engine *e, int64_t *free_blocks, int64_t *total_blocks,
                                             int *block_size, size_t *block_bytes);

/* Sampling. temperature 0 = greedy (argmax; ties to the lowest id). top_k 0 = off,
 * top_p 1 = off, repetition_penalty 1 = off (CTRL-style: logits of tokens already in
 * the sequence are divided by it when positive, multiplied when negative). */
typedef struct lorajit_sampling {
    float temperature;
    int top_k;
    float top_p;
    float repetition_penalty;
    uint64_t seed;           /* same seed, same tokens; request i draws from its own
                                stream of the seed, whatever else is in its batch */
    int eos_id;              /* stop when sampled; -1: none */
    int n_eos_more;          /* 0..8: eos_more[0..n) also stop (e.g. generation_config.json's
                                eos_token_id list: lorajit_tokenizer_eos_ids) */
    int32_t eos_more[8];
} lorajit_sampling;

/* One generation request. adapter: NULL follows the engine's active set, ""
 * is the base model, else "NAME[:W][,NAME[:W]...]". out: caller-owned [max_new].
 * stop: 0 at the call; on_token (which runs on the generating thread) may set it
 * non-zero to end this request after the token it was given (a stop string, a
 * client gone): the request then takes no more decode steps, the others go on. */
typedef struct lorajit_request {
    const int32_t *prompt;
    int n_prompt;
    const char *adapter;
    int max_new;
    int32_t *out;
    int n_out;               /* written: tokens generated (eos included when sampled) */
    int stop;                /* set by the caller's on_token to end the request early */
} lorajit_request;

/* Called for every generated token as it is produced (to stop request early, set
 * reqs[request].stop; user can carry the reqs pointer). */
typedef void (*lorajit_token_fn)(void *user, int request, int32_t token);

/* Generates for reqs[0..n) together: n <= max_batch, each request in its own
 * sequence (the first n that no other call holds, 0..n-1 when none is held;
 * LORAJIT_E_ARG when fewer are free; reset first, its adapter choice replaced by
 * the request's),
 * prompts prefilled, then batched decode steps until every request hit eos or
 * max_new. A request needs n_prompt + max_new - 1 <= max_seq_len positions; the
 * blocks for all of them are taken before anything runs (LORAJIT_E_FULL, nothing
 * changed, when the pool has too few free), and those not used are given back at
 * the end (the sequences keep the blocks of the positions they hold until reset).
 * s NULL: greedy. on_token may be NULL. Every request is checked before any
 * sequence changes; reqs are borrowed for the call, out written in place. */
LORAJIT_API lorajit_status lorajit_generate(lorajit_engine *e, lorajit_request *reqs, int n,
                                            const lorajit_sampling *s, lorajit_token_fn on_token,
                                            void *user);

/* Sequences as handles, lorajit_step and the scheduler: in lorajit_serving.h. */
#include "lorajit_serving.h"

/* ---- Text: Hugging Face tokenizers and chat templates ----
 * In both libraries (no LLVM). A tokenizer is read-only after open: any number of
 * threads may encode, decode and render templates with one tokenizer at the same
 * time; a streaming detokenizer is used by one thread at a time. Texts are UTF-8. */
typedef struct lorajit_tokenizer lorajit_tokenizer;
typedef struct lorajit_detokenizer lorajit_detokenizer;

/* Frees memory that a lorajit_* call returned to the caller (ids, texts). NULL does nothing. */
LORAJIT_API void lorajit_free(void *p);

/* Opens a tokenizer. path: a model folder (tokenizer.json, with tokenizer_config.json,
 * generation_config.json and special_tokens_map.json when present) or a tokenizer.json
 * file (its folder's other files are read too). Encodes and decodes exactly as Hugging
 * Face tokenizers does; a model type, normaliser, pre-tokeniser, post-processor or
 * decoder it does not implement is refused by name (LORAJIT_E_UNSUPPORTED), never
 * replaced by another. *out is written even on failure so that
 * lorajit_tokenizer_errmsg(*out) explains it; NULL only when memory ran out. Caller
 * owns *out; free with lorajit_tokenizer_free(). */
LORAJIT_API lorajit_status lorajit_tokenizer_open(lorajit_tokenizer **out, const char *path);
/* NULL does nothing. */
LORAJIT_API void lorajit_tokenizer_free(lorajit_tokenizer *t);
/* Message of the calling thread's last call on t ("" when it succeeded; the open
 * message for a thread that made no call). Borrowed until this thread's next call on t. */
LORAJIT_API const char *lorajit_tokenizer_errmsg(const lorajit_tokenizer *t);

/* Encodes len bytes of UTF-8 text (invalid UTF-8 is refused with its byte offset,
 * LORAJIT_E_ARG). add_special: 1 adds what the post-processor adds (BOS/EOS as the
 * file says; HF's add_special_tokens=True), 0 does not. Special and added tokens
 * written in the text are matched as HF does. *ids (caller frees with lorajit_free)
 * gets *n ids. */
LORAJIT_API lorajit_status lorajit_tokenizer_encode(const lorajit_tokenizer *t, const char *text, size_t len,
                                                    int add_special, int32_t **ids, int *n);
/* Decodes n ids to text as HF's decode(ids, skip_special_tokens) does. *text (NUL
 * terminated, *len bytes without the NUL; caller frees with lorajit_free). An id
 * outside the vocabulary is refused (LORAJIT_E_ARG, the id named). */
LORAJIT_API lorajit_status lorajit_tokenizer_decode(const lorajit_tokenizer *t, const int32_t *ids, int n,
                                                    int skip_special, char **text, size_t *len);

/* Tokenizer facts: vocabulary size (highest id + 1, added tokens included); the id
 * of a token's text (-1 when absent); BOS id (-1 when none). eos_ids: the ids that
 * end a generation, from generation_config.json's eos_token_id (a number or a list),
 * else tokenizer_config.json's eos_token; returns how many (0..8), *ids borrowed. */
LORAJIT_API int lorajit_tokenizer_vocab_size(const lorajit_tokenizer *t);
LORAJIT_API int32_t lorajit_tokenizer_token_id(const lorajit_tokenizer *t, const char *token);
LORAJIT_API int32_t lorajit_tokenizer_bos_id(const lorajit_tokenizer *t);
LORAJIT_API int lorajit_tokenizer_eos_ids(const lorajit_tokenizer *t, const int32_t **ids);

/* Streaming decode: push ids as they are generated; each push returns the text that
 * became complete (never half a UTF-8 character; byte-fallback and byte-level pieces
 * complete across ids). The concatenation of every push and the final flush equals
 * lorajit_tokenizer_decode of the whole sequence with the same skip_special. t must
 * outlive d. */
LORAJIT_API lorajit_status lorajit_detokenizer_open(lorajit_detokenizer **out, const lorajit_tokenizer *t,
                                                    int skip_special);
/* *text: borrowed until the next call on d, NUL terminated, *len bytes (may be 0). */
LORAJIT_API lorajit_status lorajit_detokenizer_push(lorajit_detokenizer *d, int32_t id, const char **text,
                                                    size_t *len);
/* The rest (an incomplete character at the end decodes as HF does, U+FFFD), then
 * d is ready for a new sequence. */
LORAJIT_API lorajit_status lorajit_detokenizer_flush(lorajit_detokenizer *d, const char **text, size_t *len);
/* Message of d's last failure; borrowed. */
LORAJIT_API const char *lorajit_detokenizer_errmsg(const lorajit_detokenizer *d);
LORAJIT_API void lorajit_detokenizer_free(lorajit_detokenizer *d);

/* Renders tokenizer_config.json's chat_template (Jinja) for messages_json, a JSON
 * array of message objects as OpenAI's API sends them ({"role", "content", ...}),
 * with add_generation_prompt, bos_token and eos_token as transformers'
 * apply_chat_template passes them. Byte-identical to jinja2 for the constructs it
 * implements; a construct it does not implement is refused by name
 * (LORAJIT_E_UNSUPPORTED); raise_exception in the template gives LORAJIT_E_ARG with
 * the template's message. *text: caller frees with lorajit_free. */
LORAJIT_API lorajit_status lorajit_tokenizer_apply_chat_template(const lorajit_tokenizer *t,
                                                                 const char *messages_json,
                                                                 int add_generation_prompt, char **text);
/* The same with more template variables: vars_json (NULL or a JSON object) is merged
 * into the variables as transformers' apply_chat_template(**kwargs) does, e.g.
 * {"tools": [...], "documents": [...], "enable_thinking": false}; its keys win over
 * bos_token/eos_token/unk_token/pad_token; "messages" and "add_generation_prompt" may
 * not be among them (LORAJIT_E_ARG). *text: caller frees with lorajit_free. */
LORAJIT_API lorajit_status lorajit_tokenizer_apply_chat_template_vars(const lorajit_tokenizer *t,
                                                                      const char *messages_json,
                                                                      const char *vars_json,
                                                                      int add_generation_prompt, char **text);

#ifdef __cplusplus
}
#endif
#endif /* LORAJIT_H */
