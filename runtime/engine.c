/* engine.c — the lorajit_engine handle: everything of the public API except
 * lorajit_engine_open (compiler/) and lorajit_status_str (err.c).
 *
 * The compiler allocates a handle (lj_engine_alloc), records errors on it
 * (lj_engine_err) and hands over layout + compiled code (lj_engine_start), which
 * binds weights, allocates slots, scratch, the sequences' KV caches (plus one
 * private to lorajit_forward) and fills the lj_ctx the compiled code reads. Public
 * calls clear the error first, so errmsg is "" after a success; on an engine that
 * did not start they return LORAJIT_E_ARG. Generation lives in generate.c. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"


lorajit_engine *lj_engine_alloc(void) {
    lorajit_engine *e = lj_calloc(1, sizeof *e);
    if (e) lj_err_clear(&e->err);
    return e;
}

lj_err *lj_engine_err(lorajit_engine *e) { return e ? &e->err : NULL; }

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
    size_t n_scratch, n_cache;
    if (!L || !code.forward || !model_dir) {
        st = lj_fail(err, LORAJIT_E_ARG, "lj_engine_start: no layout, code or model_dir");
        goto fail;
    }
    const lj_config *cfg = &L->cfg;
    const lj_schema *sc = &L->schema;
    LJ_ASSERT(sc->max_batch >= 1 && sc->max_batch <= LJ_MAX_SLOTS - 1 && sc->seq_len >= sc->max_tokens);
    int64_t kv_dim = cfg->n_kv_heads * cfg->head_size;
    int64_t rows = sc->max_tokens > sc->max_batch ? sc->max_tokens : sc->max_batch;
    e->cache_stride = cfg->n_layers * sc->seq_len * kv_dim;
    if (!floats_of(L->scratch_per_token, rows, L->scratch_fixed, &n_scratch) ||
        !floats_of(e->cache_stride, sc->max_batch + 1, 0, &n_cache)) {
        st = lj_fail(err, LORAJIT_E_ARG, "scratch or KV cache size overflows");
        goto fail;
    }
    if ((st = lj_weights_open(model_dir, L, &e->w, err))) goto fail;
    if ((st = lj_slots_new(L, &e->slots, err))) goto fail;
    if ((st = lj_registry_init(&e->reg, sc->n_slots, err))) goto fail;
    e->scratch = lj_calloc(n_scratch, sizeof(float));
    e->key_cache = lj_calloc(n_cache, sizeof(float));
    e->value_cache = lj_calloc(n_cache, sizeof(float));
    e->seqs = lj_calloc((size_t)sc->max_batch, sizeof *e->seqs);
    if (!e->scratch || !e->key_cache || !e->value_cache || !e->seqs) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory: scratch %zu + KV caches 2 x %zu floats "
                     "(%d sequences + 1 of %lld positions)", n_scratch, n_cache, sc->max_batch,
                     (long long)sc->seq_len);
        goto fail;
    }
    e->ctx = (lj_ctx){
        .weights = e->w->data,
        .sites = e->slots->sites,
        .active = &e->reg.applied,
        .scratch = e->scratch,
        .key_cache = e->key_cache,
        .value_cache = e->value_cache,
        .sgemm = (lj_sgemm_fn)(void (*)(void))cblas_sgemm,
        .sgemv = (lj_sgemv_fn)(void (*)(void))cblas_sgemv,
    };
    e->stats.compiles = code.compiles;
    e->stats.compile_ms = code.compile_ms;
    e->stats.enabled = 1;
    e->started = true;
    lj_err_clear(err);
    return LORAJIT_OK;
fail:
    e->open_err = *err; /* the pieces stay on e; lorajit_engine_free frees them */
    return st;
}

void lorajit_engine_free(lorajit_engine *e) {
    if (!e) return;
    code_release(&e->code);
    lj_registry_free(&e->reg);
    lj_slots_free(e->slots);
    lj_weights_free(e->w);
    lj_seqs_free(e->seqs, e->L ? e->L->schema.max_batch : 0); /* reads L: before it goes */
    lj_layout_free(e->L);
    free(e->scratch);
    free(e->key_cache);
    free(e->value_cache);
    free(e);
}

const char *lorajit_errmsg(const lorajit_engine *e) {
    if (!e) return "no engine (NULL handle: lorajit_engine_open ran out of memory)";
    return e->err.status == LORAJIT_OK ? "" : e->err.msg;
}

lorajit_status lj_engine_enter(lorajit_engine *e, const char *what) {
    if (!e) return LORAJIT_E_ARG;
    if (!e->started) {
        if (e->open_err.status == LORAJIT_OK) e->open_err = e->err; /* open failed before start */
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: the engine did not start (%s)", what,
                       e->open_err.status ? e->open_err.msg : "lorajit_engine_open failed");
    }
    lj_err_clear(&e->err);
    return LORAJIT_OK;
}

lorajit_status lj_engine_leave(lorajit_engine *e, lorajit_status st) {
    if (st != LORAJIT_OK) e->stats.failed_calls++;
    return st;
}

lorajit_status lorajit_engine_print_ir(lorajit_engine *e, FILE *f) {
    lorajit_status st = lj_engine_enter(e, "print_ir");
    if (st) return st;
    if (!f) return lj_fail(&e->err, LORAJIT_E_ARG, "print_ir: FILE is NULL");
    if (!e->code.ir_text)
        return lj_fail(&e->err, LORAJIT_E_UNSUPPORTED, "print_ir: the compiled code kept no IR text");
    if (fputs(e->code.ir_text, f) < 0 || ferror(f))
        return lj_fail(&e->err, LORAJIT_E_IO, "print_ir: write failed");
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

lorajit_status lorajit_load_adapter(lorajit_engine *e, const char *name, const char *dir) {
    lorajit_status st = lj_engine_enter(e, "load_adapter");
    if (st) return st;
    st = lj_adapter_load(&e->reg, e->slots, e->L, name, dir, &e->err);
    if (st == LORAJIT_OK) e->stats.loads++;
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_hotswap_adapter(lorajit_engine *e, const char *name, const char *dir) {
    lorajit_status st = lj_engine_enter(e, "hotswap_adapter");
    if (st) return st;
    st = lj_adapter_hotswap(&e->reg, e->slots, e->L, name, dir, &e->err);
    if (st == LORAJIT_OK) e->stats.hotswaps++;
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_delete_adapter(lorajit_engine *e, const char *name) {
    lorajit_status st = lj_engine_enter(e, "delete_adapter");
    if (st) return st;
    st = lj_adapter_delete(&e->reg, e->slots, name, &e->err);
    if (st == LORAJIT_OK) e->stats.deletes++;
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_set_adapter(lorajit_engine *e, const char *const *names,
                                   const float *weights, int n) {
    lorajit_status st = lj_engine_enter(e, "set_adapter");
    if (st) return st;
    return lj_engine_leave(e, lj_adapter_set(&e->reg, names, weights, n, &e->err));
}

lorajit_status lorajit_enable_adapters(lorajit_engine *e) {
    lorajit_status st = lj_engine_enter(e, "enable_adapters");
    if (st) return st;
    lj_adapter_enable(&e->reg, true);
    return LORAJIT_OK;
}

lorajit_status lorajit_disable_adapters(lorajit_engine *e) {
    lorajit_status st = lj_engine_enter(e, "disable_adapters");
    if (st) return st;
    lj_adapter_enable(&e->reg, false);
    return LORAJIT_OK;
}

lorajit_status lorajit_forward(lorajit_engine *e, const int32_t *tokens, int n, float *logits) {
    lorajit_status st = lj_engine_enter(e, "forward");
    if (st) return st;
    lj_err *err = &e->err;
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
    lj_ctx c = e->ctx; /* the private cache block: a forward never touches a sequence */
    int64_t own = (int64_t)e->L->schema.max_batch * e->cache_stride;
    c.key_cache = e->key_cache + own;
    c.value_cache = e->value_cache + own;
    int rc = e->code.forward(&c, tokens, n, 0, logits);
    if (rc != 0)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_COMPILE, "forward: compiled code returned %d",
                                          rc));
    e->stats.forwards++;
    return LORAJIT_OK;
}

lorajit_status lorajit_get_stats(const lorajit_engine *e, lorajit_stats *st) {
    if (!e || !e->started || !st) return LORAJIT_E_ARG; /* const e: message left as is */
    *st = e->stats;
    st->adapters = lj_registry_count(&e->reg);
    st->active = e->reg.applied.n;
    st->enabled = e->reg.enabled;
    return LORAJIT_OK;
}

int lorajit_list_adapters(const lorajit_engine *e, const char **names, int cap) {
    if (!e || !e->started) return 0;
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
    return n;
}
