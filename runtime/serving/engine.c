/* engine.c — the lorajit_engine handle: everything of the public API except
 * lorajit_engine_open (compiler/) and lorajit_status_str (err.c).
 *
 * The compiler allocates a handle (lj_engine_alloc), records open errors on it
 * (lj_engine_err) and hands over layout + compiled code (lj_engine_start), which
 * binds weights, allocates slots, the sequences' paged KV cache (kv.c) and a first worker, and
 * publishes the empty adapter state (serve.c). Writer calls run one at a time under
 * serve.write_lock (never held while a file is read) and publish a new snapshot;
 * readers run on a snapshot and a worker of their own. Public calls clear the
 * calling thread's error first, so errmsg is "" after a success. Generation lives
 * in generate.c. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"


lorajit_engine *lj_engine_alloc(void) {
    lorajit_engine *e = lj_calloc(1, sizeof *e);
    if (!e) return NULL;
    if (lj_serve_init(&e->serve) != LORAJIT_OK) {
        free(e);
        return NULL;
    }
    lj_err_clear(&e->err);
    return e;
}

lj_err *lj_engine_err(lorajit_engine *e) { return e ? &e->err : NULL; }

lorajit_status lj_engine_threads(lorajit_engine *e, const lorajit_options *opts) {
    int n = opts ? opts->threads : 0;
    if (n < 0 || n > LJ_POOL_MAX_THREADS)
        return lj_fail(&e->err, LORAJIT_E_ARG, "options.threads is %d; it must be 0 (OpenBLAS's thread count) "
                       "or 1..%d", n, LJ_POOL_MAX_THREADS);
    e->threads = n;
    return LORAJIT_OK;
}

/* floats = a * b + c, failing when it does not fit in size_t bytes. */
static bool floats_of(int64_t a, int64_t b, int64_t c, size_t *out) {
    if (a < 0 || b < 0 || c < 0) return false;
    if (b != 0 && a > (INT64_MAX - c) / b) return false;
    int64_t n = a * b + c;
    if ((uint64_t)n > SIZE_MAX / sizeof(float)) return false;
    *out = n > 0 ? (size_t)n : 1;
    return true;
}

static void code_release(lj_code *code) {
    if (code->release) code->release(code->owner);
    free(code->ir_text);
    memset(code, 0, sizeof *code);
}

lorajit_status lj_engine_start(lorajit_engine *e, const char *model_dir, lj_layout *L,
                               lj_code code) {
    if (!e) {
        lj_layout_free(L);
        code_release(&code);
        return LORAJIT_E_ARG;
    }
    lj_layout_free(e->L); /* a handle is started once; these are NULL */
    code_release(&e->code);
    e->L = L;
    e->code = code;
    lj_err *err = &e->err;
    lorajit_status st;
    size_t n_scratch;
    lj_worker *first = NULL;
    lj_snapshot *v = NULL;
    if (!L || !code.forward || !model_dir) {
        return lj_fail(err, LORAJIT_E_ARG, "lj_engine_start: no layout, code or model_dir");
    }
    const lj_config *cfg = &L->cfg;
    const lj_schema *sc = &L->schema;
    LJ_ASSERT(sc->max_batch >= 1 && sc->max_batch <= LJ_MAX_SLOTS - 1 && sc->seq_len >= sc->max_tokens);
    int64_t rows = lj_engine_rows(L);
    if (!floats_of(L->scratch_per_token, rows, L->scratch_fixed, &n_scratch))
        return lj_fail(err, LORAJIT_E_ARG, "scratch size overflows (%lld tokens per call, %lld positions): lower "
                       "--max-seq-len / max_tokens", (long long)sc->max_tokens, (long long)sc->seq_len);
    if ((st = lj_kv_init(&e->kv, cfg, sc, err))) return st; /* before the weights: the cheaper refusal first */
    if ((st = lj_weights_open(model_dir, L, &e->w, err))) return st;
    int blas_threads = lj_blas_threads_take(); /* OpenBLAS pinned to 1: the pool splits its sgemm calls */
    if ((st = lj_pool_new(e->threads > 0 ? e->threads : blas_threads, &e->pool, err))) return st;
    if ((st = lj_slots_new(L, &e->slots, err)) || (st = lj_slots_use_pool(e->slots, e->pool, err))) return st;
    if ((st = lj_registry_init(&e->reg, sc->n_slots, err))) return st;
    lj_acache_init(&e->cache, LJ_ADAPTER_CACHE_DEFAULT);
    e->serve.n_scratch = n_scratch;
    e->serve.cache_bytes = (size_t)e->kv.forward_elems * (size_t)e->kv.elem_bytes;
    e->seqs = lj_calloc((size_t)sc->max_batch, sizeof *e->seqs);
    if (!e->seqs || lj_worker_get(&e->serve, true, &first, NULL) || lj_snapshot_new(&e->reg, 0, &v, NULL))
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory: scratch %zu floats + a private KV cache of %zu "
                       "bytes for lorajit_forward; lower --max-seq-len / max_tokens", n_scratch,
                       2 * e->serve.cache_bytes); /* the pieces stay on e */
    if (!(e->rope = lj_calloc((size_t)lj_rope_row_floats(cfg), sizeof(float))))
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory (RoPE table)");
    lj_rope_table(cfg, cfg->seq_len, e->rope); /* the table of every call unless it varies */
    lj_worker_put(&e->serve, first);             /* the pool's first worker */
    lj_serve_publish(&e->serve, &e->reg, v);     /* the empty state */
    e->ctx = (lj_ctx){
        .weights = e->w->data,
        .sites = e->slots->sites,
        .sgemm = lj_pool_sgemm,
        .sgemv = (lj_sgemv_fn)(void (*)(void))cblas_sgemv,
        .small_rows = LJ_SMALL_ROWS,
        .parallel = lj_pool_run,
        .pool = e->pool,
        .rope = e->rope,
        .block_size = e->kv.block_size,
        .matmul_bf16_amx = lj_amx_ready() ? lj_matmul_bf16_amx : NULL,
    };
    e->started = true;
    lj_err_clear(err);
    return LORAJIT_OK;
}

void lorajit_engine_free(lorajit_engine *e) {
    if (!e) return;
    code_release(&e->code);
    lj_serve_free(&e->serve);
    lj_registry_free(&e->reg);
    lj_acache_free(&e->cache);
    lj_slots_free(e->slots);
    lj_weights_free(e->w);
    lj_pool_free(e->pool);
    lj_seqs_free(e->seqs, e->L ? e->L->schema.max_batch : 0); /* reads L: before it goes */
    lj_layout_free(e->L);
    lj_kv_free(&e->kv);
    free(e->rope);
    free(e);
}

const float *lj_engine_rope(const lorajit_engine *e, int64_t seq_len, float *buf) {
    if (!lj_rope_varies(&e->L->cfg)) return e->rope;
    lj_rope_table(&e->L->cfg, seq_len, buf);
    return buf;
}

const char *lorajit_errmsg(const lorajit_engine *e) {
    if (!e) return "no engine (NULL handle: lorajit_engine_open ran out of memory)";
    const lj_err *t = lj_serve_thread_err(&((lorajit_engine *)e)->serve, false); /* the caller's */
    if (!t) t = &e->err; /* this thread made no call: the open path's message, "" once started */
    return t->status == LORAJIT_OK ? "" : t->msg;
}

lorajit_status lj_engine_enter(lorajit_engine *e, const char *what, lj_err **err) {
    if (!e) return LORAJIT_E_ARG;
    lj_err *t = lj_serve_thread_err(&e->serve, true);
    if (!t) return LORAJIT_E_NOMEM; /* no record for this thread: the status says it */
    *err = t;
    if (!e->started)
        return lj_fail(t, LORAJIT_E_ARG, "%s: the engine did not start (%s)", what,
                       e->err.status ? e->err.msg : "lorajit_engine_open failed");
    lj_err_clear(t);
    return LORAJIT_OK;
}

lorajit_status lj_engine_leave(lorajit_engine *e, lorajit_status st) {
    if (st != LORAJIT_OK) atomic_fetch_add(&e->n.failed_calls, 1);
    return st;
}

lorajit_status lorajit_engine_print_ir(lorajit_engine *e, FILE *f) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "print_ir", &err);
    if (st) return st;
    if (!f) return lj_fail(err, LORAJIT_E_ARG, "print_ir: FILE is NULL");
    if (!e->code.ir_text)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "print_ir: the compiled code kept no IR text");
    if (fputs(e->code.ir_text, f) < 0 || ferror(f))
        return lj_fail(err, LORAJIT_E_IO, "print_ir: write failed");
    return LORAJIT_OK;
}

int lorajit_vocab_size(const lorajit_engine *e) {
    return e && e->started ? (int)e->L->cfg.vocab_size : 0;
}

int lorajit_max_tokens(const lorajit_engine *e) {
    return e && e->started ? (int)e->L->schema.max_tokens : 0;
}

int lorajit_max_batch(const lorajit_engine *e) {
    return e && e->started ? e->L->schema.max_batch : 0;
}

lorajit_status lorajit_kv_blocks(const lorajit_engine *e, int64_t *free_blocks, int64_t *total_blocks,
                                 int *block_size, size_t *block_bytes) {
    if (!e || !e->started) return LORAJIT_E_ARG; /* const e: message left as is */
    lj_kv_count(&((lorajit_engine *)e)->kv, free_blocks, total_blocks); /* its lock changes */
    if (block_size) *block_size = (int)e->kv.block_size;
    if (block_bytes) *block_bytes = 2 * (size_t)e->kv.block_elems * (size_t)e->kv.elem_bytes;
    return LORAJIT_OK;
}

/* ---- writer calls: one at a time; each success publishes a new snapshot ---- */

/* Takes the write lock and allocates the snapshot the call will publish (room for
 * the registry's names plus `name`), so that nothing can fail after the commit. */
static lorajit_status write_begin(lorajit_engine *e, const char *name, lj_snapshot **v, lj_err *err) {
    pthread_mutex_lock(&e->serve.write_lock);
    lorajit_status st = lj_snapshot_new(&e->reg, name ? strlen(name) + 1 : 0, v, err);
    if (st) pthread_mutex_unlock(&e->serve.write_lock);
    return st;
}

/* Publishes v when the call succeeded (else frees it), lets go of the write lock,
 * counts a success in *count (may be NULL). */
static lorajit_status write_end(lorajit_engine *e, lorajit_status st, lj_snapshot *v, _Atomic int64_t *count) {
    if (st == LORAJIT_OK) lj_serve_publish(&e->serve, &e->reg, v);
    else free(v);
    pthread_mutex_unlock(&e->serve.write_lock);
    if (st == LORAJIT_OK && count) atomic_fetch_add(count, 1);
    return lj_engine_leave(e, st);
}


/* After a hotswap of name to dir (under the write lock): a lazily loaded or
 * registered adapter is read from dir from now on (an eviction reloads the new
 * weights) and its old host copy is dropped. When that cannot be recorded (out of
 * memory) the adapter is made not evictable and forgotten by the cache instead. */
static void rebind_after_hotswap(lorajit_engine *e, const char *name, const char *dir) {
    lj_adapter_entry *a = &e->reg.by_slot[lj_registry_find(&e->reg, name)];
    lj_err ignored;
    if (!a->lazy && !lj_acache_registered(&e->cache, name)) {
        lj_acache_forget(&e->cache, name); /* a copy left from before an explicit load */
    } else if (lj_acache_rebind(&e->cache, name, dir, &ignored) != LORAJIT_OK) {
        lj_acache_forget(&e->cache, name);
        a->lazy = false;
    }
}

/* load and hotswap. The folder is read with no lock held, so a slow or hostile
 * folder (a named pipe, a huge file) never blocks the other writer calls: first
 * the registry checks under the lock (so "already loaded", "not loaded" and
 * "slots full" come before any error of the folder, as they always did), then
 * peft_adapter_read against the layout (immutable after start) with no lock, then
 * lj_adapter_put under the lock, which checks again (another call may have
 * changed the registry meanwhile) and commits. */
static lorajit_status adapter_write(lorajit_engine *e, const char *what, const char *name, const char *dir,
                                    bool hotswap) {
    lj_err *err;
    lj_snapshot *v;
    peft_adapter *ad = NULL;
    lorajit_status st = lj_engine_enter(e, what, &err);
    if (st) return st;
    pthread_mutex_lock(&e->serve.write_lock);
    bool registered_only = hotswap && name && dir && lj_registry_find(&e->reg, name) < 0 &&
                           lj_acache_registered(&e->cache, name);
    st = registered_only ? LORAJIT_OK : lj_adapter_check(&e->reg, name, dir, hotswap, err);
    pthread_mutex_unlock(&e->serve.write_lock);
    if (registered_only) return lj_engine_leave(e, lj_engine_hotswap_registered(e, name, dir, err));
    if (!st) st = peft_adapter_read_mapped(dir, e->L, &ad, err); /* converted into the slot */
    if (!st && !(st = write_begin(e, hotswap ? NULL : name, &v, err))) {
        lj_slot_pick pick = lj_engine_pick(e);
        st = lj_adapter_put(&e->reg, e->slots, name, ad, hotswap, &pick, err);
        if (!st && hotswap) rebind_after_hotswap(e, name, dir);
        st = write_end(e, st, v, hotswap ? &e->n.hotswaps : &e->n.loads);
    } else {
        st = lj_engine_leave(e, st);
    }
    peft_adapter_free(ad);
    return st;
}

lorajit_status lorajit_load_adapter(lorajit_engine *e, const char *name, const char *dir) {
    return adapter_write(e, "load_adapter", name, dir, false);
}

lorajit_status lorajit_hotswap_adapter(lorajit_engine *e, const char *name, const char *dir) {
    return adapter_write(e, "hotswap_adapter", name, dir, true);
}

lorajit_status lorajit_delete_adapter(lorajit_engine *e, const char *name) {
    lj_err *err;
    lj_snapshot *v;
    lorajit_status st = lj_engine_enter(e, "delete_adapter", &err);
    if (st) return st;
    if ((st = write_begin(e, NULL, &v, err))) return lj_engine_leave(e, st);
    bool registered = name && lj_acache_forget(&e->cache, name);
    if (!registered || lj_registry_find(&e->reg, name) >= 0) st = lj_adapter_delete(&e->reg, e->slots, name, err);
    return write_end(e, st, v, &e->n.deletes);
}

lorajit_status lorajit_set_adapter(lorajit_engine *e, const char *const *names,
                                   const float *weights, int n) {
    lj_err *err;
    lj_snapshot *v;
    lorajit_status st = lj_engine_enter(e, "set_adapter", &err);
    if (st) return st;
    const char *pinned[LJ_MAX_SLOTS];
    int n_pinned = lj_adapter_names_ok(names, n, e->reg.n_slots) ? n : 0; /* else lj_adapter_set says why */
    if (n_pinned) memcpy(pinned, names, sizeof *pinned * (size_t)n);
    if ((st = lj_engine_resolve(e, pinned, &n_pinned, "set_adapter", err))) return lj_engine_leave(e, st);
    if ((st = write_begin(e, NULL, &v, err))) {
        lj_engine_unpin(e, pinned, n_pinned);
        return lj_engine_leave(e, st);
    }
    st = lj_adapter_set(&e->reg, names, weights, n, err);
    st = write_end(e, st, v, NULL);
    lj_engine_unpin(e, pinned, n_pinned); /* active now: never evicted while it is */
    return st;
}

static lorajit_status enable(lorajit_engine *e, bool on, const char *what) {
    lj_err *err;
    lj_snapshot *v;
    lorajit_status st = lj_engine_enter(e, what, &err);
    if (st) return st;
    if ((st = write_begin(e, NULL, &v, err))) return lj_engine_leave(e, st);
    lj_adapter_enable(&e->reg, on);
    return write_end(e, LORAJIT_OK, v, NULL);
}

lorajit_status lorajit_enable_adapters(lorajit_engine *e) { return enable(e, true, "enable_adapters"); }

lorajit_status lorajit_disable_adapters(lorajit_engine *e) { return enable(e, false, "disable_adapters"); }

/* ---- reader calls ---- */

lorajit_status lorajit_forward(lorajit_engine *e, const int32_t *tokens, int n, float *logits) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "forward", &err);
    if (st) return st;
    int64_t max = e->L->schema.max_tokens, vocab = e->L->cfg.vocab_size;
    if (!tokens || !logits)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "forward: tokens or logits is NULL"));
    if (n < 1 || n > max)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "forward: n = %d tokens, must be "
                                          "1..%lld (max_tokens)", n, (long long)max));
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "forward: token %d at position %d "
                                              "is outside the vocabulary [0, %lld)", (int)tokens[i],
                                              i, (long long)vocab));
    lj_worker *w;
    if ((st = lj_worker_get(&e->serve, true, &w, err))) return lj_engine_leave(e, st);
    lj_snapshot *v = lj_snapshot_acquire(&e->serve);
    lj_ctx c = e->ctx; /* the worker's private cache: a forward never touches a sequence */
    c.active = &v->applied;
    c.scratch = w->scratch;
    c.key_cache = w->key_cache;
    c.value_cache = w->value_cache;
    c.block_table = e->kv.identity;
    float rope[LJ_ROPE_MAX_HALF + 1];
    c.rope = lj_engine_rope(e, n, rope); /* positions 0..n-1 */
    lj_pool *was = lj_pool_bind(e->pool);
    int rc = e->code.forward(&c, tokens, n, 0, logits);
    lj_pool_bind(was);
    lj_snapshot_release(&e->serve, v);
    lj_worker_put(&e->serve, w);
    if (rc != 0)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_COMPILE, "forward: compiled code returned %d",
                                          rc));
    size_t total = (size_t)n * (size_t)vocab, k = lj_nonfinite_find(logits, total);
    if (k < total)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_FORMAT, "forward: position %zu of %d: the "
                                          "logits are not finite (%s at vocabulary index %zu); %s",
                                          k / (size_t)vocab, n, lj_nonfinite_word(logits[k]),
                                          k % (size_t)vocab, LJ_NONFINITE_WHY));
    atomic_fetch_add(&e->n.forwards, 1);
    return LORAJIT_OK;
}

lorajit_status lorajit_get_stats(const lorajit_engine *e, lorajit_stats *st) {
    if (!e || !e->started || !st) return LORAJIT_E_ARG; /* const e: message left as is */
    lorajit_engine *m = (lorajit_engine *)e; /* its locks and counters change */
    lj_snapshot *v = lj_snapshot_acquire(&m->serve);
    *st = (lorajit_stats){
        .compiles = e->code.compiles ? e->code.compiles(e->code.owner) : 0,
        .loads = atomic_load(&m->n.loads),
        .hotswaps = atomic_load(&m->n.hotswaps),
        .deletes = atomic_load(&m->n.deletes),
        .forwards = atomic_load(&m->n.forwards),
        .failed_calls = atomic_load(&m->n.failed_calls),
        .adapters = v->n_resident,
        .active = v->applied.n,
        .enabled = v->enabled,
        .compile_ms = e->code.compile_ms,
        .prefill_tokens = atomic_load(&m->n.prefill_tokens),
        .decode_tokens = atomic_load(&m->n.decode_tokens),
        .prefill_ms = (double)atomic_load(&m->n.prefill_ns) / 1e6,
        .decode_ms = (double)atomic_load(&m->n.decode_ns) / 1e6,
        .jit_loads = atomic_load(&m->n.jit_loads),
        .evictions = atomic_load(&m->n.evictions),
        .host_hits = atomic_load(&m->n.host_hits),
        .threads = lj_pool_threads(e->pool),
    };
    lj_stats_set_times(st, &e->code.times);
    lj_snapshot_release(&m->serve, v);
    return LORAJIT_OK;
}

int lorajit_list_adapters(const lorajit_engine *e, const char **names, int cap) {
    if (!e || !e->started) return 0;
    lorajit_engine *m = (lorajit_engine *)e; /* the registry is read under the write lock */
    pthread_mutex_lock(&m->serve.write_lock);
    const lj_registry *r = &e->reg;
    int n = lj_registry_count(r);
    int64_t last = -1;
    /* in load order: pick the next larger seq each round (n <= 64) */
    for (int k = 0; k < n && names && k < cap; k++) {
        int best = -1;
        for (int i = 0; i < r->n_phys; i++)
            if (r->by_slot[i].name && r->by_slot[i].seq > last &&
                (best < 0 || r->by_slot[i].seq < r->by_slot[best].seq))
                best = i;
        names[k] = r->by_slot[best].name;
        last = r->by_slot[best].seq;
    }
    pthread_mutex_unlock(&m->serve.write_lock);
    return n;
}

/* ---- the adapter cache's public calls (resolve.c does the loading) ---- */
lorajit_status lorajit_register_adapter(lorajit_engine *e, const char *name, const char *dir) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "register_adapter", &err);
    if (st) return st;
    struct stat sb;
    if (!name || !name[0] || !dir)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "register_adapter: name is NULL or empty, or dir is NULL"));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_NOT_FOUND, "register_adapter '%s': %s is not a directory",
                                          name, dir));
    pthread_mutex_lock(&e->serve.write_lock);
    if (lj_registry_find(&e->reg, name) >= 0)
        st = lj_fail(err, LORAJIT_E_EXISTS, "register_adapter: adapter '%s' is already loaded", name);
    if (!st) st = lj_acache_register(&e->cache, name, dir, err);
    pthread_mutex_unlock(&e->serve.write_lock);
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_check_adapter(lorajit_engine *e, const char *name, const char *dir) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "check_adapter", &err);
    if (st) return st;
    if (!dir) return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "check_adapter: dir is NULL"));
    peft_adapter *img = NULL;
    st = peft_adapter_read(dir, e->L, &img, err); /* no lock: the layout and slot dtype are immutable */
    if (!st) st = lj_slots_check(e->slots, img, err); /* a 16-bit slot's range */
    if (!st && name) st = peft_adapter_detach(img, e->L, err); /* only a copy that may be kept */
    if (!st && name) {
        pthread_mutex_lock(&e->serve.write_lock);
        if (lj_acache_registered(&e->cache, name) && lj_registry_find(&e->reg, name) < 0) {
            lj_acache_keep(&e->cache, name, dir, img); /* taken; used only while name means dir */
            img = NULL;
        }
        pthread_mutex_unlock(&e->serve.write_lock);
    }
    peft_adapter_free(img);
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_set_adapter_dir(lorajit_engine *e, const char *root) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "set_adapter_dir", &err);
    if (st) return st;
    struct stat sb;
    if (root && (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_NOT_FOUND, "set_adapter_dir: %s is not a directory", root));
    pthread_mutex_lock(&e->serve.write_lock);
    st = lj_acache_set_root(&e->cache, root, err);
    pthread_mutex_unlock(&e->serve.write_lock);
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_set_adapter_cache(lorajit_engine *e, size_t host_bytes) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "set_adapter_cache", &err);
    if (st) return st;
    pthread_mutex_lock(&e->serve.write_lock);
    lj_acache_set_budget(&e->cache, host_bytes);
    pthread_mutex_unlock(&e->serve.write_lock);
    return lj_engine_leave(e, LORAJIT_OK);
}
