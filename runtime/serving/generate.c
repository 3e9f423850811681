/* generate.c — sequences, prefill, batched decode and lorajit_generate.
 *
 * Each of the engine's max_batch sequences has KV cache blocks (kv.c: taken
 * before a call runs, all or none, given back on reset), a position, an adapter
 * choice (follow the engine's applied set, or its own names + weights, resolved
 * against the snapshot of each step so a hotswap shows at the next step) and a
 * busy flag that a call claims first (one thread per sequence).
 * Prefill runs the compiled lj_forward over the sequence's blocks; a decode step
 * runs lj_decode once over rows of several sequences, each with its own lj_active.
 * Every call checks all its input first and changes nothing when it fails; logits
 * that are NaN or Inf fail the call, naming sequence and position (never sampled). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The set sequence s applies with snapshot v: v's applied set, or its own names
 * resolved to their slots in v (nothing while v is disabled, as PEFT's
 * disable_adapters overrides adapter_names). Writes only seqs[s].row. */
static lorajit_status seq_active(lorajit_engine *e, const lj_snapshot *v, int s, const lj_active **out,
                                 const char *what, lj_err *err) {
    lj_seq *q = &e->seqs[s];
    if (!q->choice.own) {
        *out = &v->applied;
        return LORAJIT_OK;
    }
    lj_active *a = &q->row;
    a->n = 0;
    for (int i = 0; v->enabled && i < q->choice.n; i++) {
        int slot = lj_snapshot_find(v, q->choice.names[i]);
        if (slot < 0)
            return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: sequence %d uses adapter '%s', which is not "
                           "loaded (deleted after lorajit_seq_set_adapter?)", what, s, q->choice.names[i]);
        a->slot[a->n] = slot;
        a->weight[a->n++] = q->choice.weight[i];
    }
    *out = a;
    return LORAJIT_OK;
}

static lorajit_status check_seq(lorajit_engine *e, int s, const char *what, lj_err *err) {
    int max = e->L->schema.max_batch;
    if (s < 0 || s >= max)
        return lj_fail(err, LORAJIT_E_ARG, "%s: sequence %d is out of range (max_batch %d: "
                       "sequences 0..%d)", what, s, max, max - 1);
    return LORAJIT_OK;
}

/* Room for `more` positions in sequence s. */
static lorajit_status check_room(lorajit_engine *e, int s, int64_t more, const char *what, lj_err *err) {
    int64_t pos = e->seqs[s].pos, len = e->L->schema.seq_len;
    if (more > len - pos)
        return lj_fail(err, LORAJIT_E_ARG, "%s: KV cache full: sequence %d holds %lld of %lld "
                       "positions, %lld more asked", what, s, (long long)pos, (long long)len,
                       (long long)more);
    return LORAJIT_OK;
}

static lorajit_status check_tokens(lorajit_engine *e, const int32_t *tokens, int n, const char *what,
                                   const char *unit, lj_err *err) {
    int64_t vocab = e->L->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return lj_fail(err, LORAJIT_E_ARG, "%s: token %d at %s %d is outside the vocabulary "
                           "[0, %lld)", what, (int)tokens[i], unit, i, (long long)vocab);
    return LORAJIT_OK;
}

/* ---- claims: one call per sequence at a time ---- */

static bool seq_try_claim(lorajit_engine *e, int s) { return !atomic_exchange(&e->seqs[s].busy, true); }

static void seq_unclaim(lorajit_engine *e, const int *seqs, int n) {
    for (int i = 0; i < n; i++) atomic_store(&e->seqs[seqs[i]].busy, false);
}

/* Checks seqs[0..n) (range, distinct) and claims them all, or none. */
static lorajit_status seq_claim(lorajit_engine *e, const int *seqs, int n, const char *what, lj_err *err) {
    lorajit_status st;
    for (int i = 0; i < n; i++) {
        if ((st = check_seq(e, seqs[i], what, err))) return st;
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return lj_fail(err, LORAJIT_E_ARG, "%s: sequence %d is in rows %d and %d; a step "
                               "advances each sequence once", what, seqs[i], j, i);
    }
    for (int i = 0; i < n; i++)
        if (!seq_try_claim(e, seqs[i])) {
            seq_unclaim(e, seqs, i);
            return lj_fail(err, LORAJIT_E_ARG, "%s: sequence %d is in use by another call (a sequence "
                           "is used by one thread at a time)", what, seqs[i]);
        }
    return LORAJIT_OK;
}

/* ---- prefill and decode ---- */

/* The failure for logits row (of sequence seq at position pos) whose value index
 * lj_nonfinite_find found; req >= 0 names generate's request (which stops), else
 * row >= 0 names decode's row. Nothing advanced: the caller returns before it does. */
static lorajit_status not_finite(const char *what, int req, int row, int seq, int64_t pos,
                                 const float *logits, size_t index, lj_err *err) {
    char who[64];
    if (req >= 0) snprintf(who, sizeof who, "request %d (sequence %d)", req, seq);
    else if (row >= 0) snprintf(who, sizeof who, "row %d (sequence %d)", row, seq);
    else snprintf(who, sizeof who, "sequence %d", seq);
    return lj_fail(err, LORAJIT_E_FORMAT, "%s: %s, position %lld: the logits are not finite (%s at "
                   "vocabulary index %zu); %s; %s", what, who, (long long)pos,
                   lj_nonfinite_word(logits[index]), index,
                   req >= 0 ? "generation stopped (out holds the tokens sampled before)"
                            : "the sequence did not advance", LJ_NONFINITE_WHY);
}

/* Validates, then appends tokens[0..n) to sequence seq in chunks of max_tokens,
 * all of them with one snapshot of the adapters. The caller has claimed seq.
 * logits: NULL or [n, vocab_size]; last: NULL or [vocab_size], gets the last row.
 * tokens, logits and last are borrowed for the call. req: generate's request (-1:
 * none), for messages. On failure nothing changes (the position stays; logits that
 * are not finite fail the call, and the KV entries written past the position are
 * overwritten by the next call). */
lorajit_status lj_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n, int piece,
                              float *logits, float *last, const char *what, int req, lj_err *err) {
    lorajit_status st;
    if ((st = check_seq(e, seq, what, err))) return st;
    if (!tokens) return lj_fail(err, LORAJIT_E_ARG, "%s: tokens is NULL", what);
    if (n < 1) return lj_fail(err, LORAJIT_E_ARG, "%s: n = %d tokens, must be >= 1", what, n);
    if ((st = check_room(e, seq, n, what, err)) || (st = check_tokens(e, tokens, n, what, "position", err)))
        return st;
    int64_t vocab = e->L->cfg.vocab_size, chunk = e->L->schema.max_tokens;
    if (piece > 0 && piece < chunk) chunk = piece;
    int64_t small_rows = piece == LJ_PREFILL_EXACT ? chunk : e->ctx.small_rows; /* LoRA's row loop up to it */
    float *tmp = NULL;
    if (!logits) { /* logits nobody wants: chunks of at most 4 Mi floats of them */
        int64_t rows = ((int64_t)1 << 22) / vocab;
        if (rows < 1) rows = 1;
        if (chunk > rows) chunk = rows;
        if (chunk > n) chunk = n;
        if (!(tmp = lj_malloc(sizeof *tmp * (size_t)(chunk * vocab))))
            return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory (%lld x %lld logits)", what,
                           (long long)chunk, (long long)vocab);
    }
    lj_worker *w;
    int64_t pos = e->seqs[seq].pos, end = pos + n;
    if ((st = lj_kv_reserve(&e->kv, &seq, &end, 1, false, what, err)) ||
        (st = lj_worker_get(&e->serve, false, &w, err))) {
        lj_kv_trim(&e->kv, seq, pos); /* the blocks taken go back */
        free(tmp);
        return st;
    }
    int64_t t0 = now_ns();
    const lj_active *act;
    lj_snapshot *v = lj_snapshot_acquire(&e->serve); /* one adapter state for the whole prefill */
    if ((st = seq_active(e, v, seq, &act, what, err))) goto done;
    lj_ctx c = e->ctx;
    c.small_rows = small_rows;
    c.scratch = w->scratch;
    c.key_cache = e->kv.key_pool;
    c.value_cache = e->kv.value_pool;
    c.block_table = lj_kv_table(&e->kv, seq);
    c.active = act;
    /* One table for the whole prefill, as transformers' one forward over the prompt
     * (seq_len = pos + n, whatever the chunking into max_tokens calls). */
    float rope[LJ_ROPE_MAX_HALF + 1];
    c.rope = lj_engine_rope(e, pos + n, rope);
    for (int64_t off = 0; off < n; off += chunk) {
        int64_t m = n - off < chunk ? n - off : chunk;
        float *out = logits ? logits + off * vocab : tmp;
        lj_pool *was = lj_pool_bind(e->pool);
        int rc = e->code.forward(&c, tokens + off, m, pos + off, out);
        lj_pool_bind(was);
        if (rc != 0) {
            st = lj_fail(err, LORAJIT_E_COMPILE, "%s: compiled code returned %d", what, rc);
            goto done;
        }
        size_t total = (size_t)(m * vocab), k = lj_nonfinite_find(out, total);
        if (k < total) {
            st = not_finite(what, req, -1, seq, pos + off + (int64_t)k / vocab, out, k % (size_t)vocab, err);
            goto done;
        }
        if (last && off + m == n) memcpy(last, out + (m - 1) * vocab, sizeof *last * (size_t)vocab);
    }
    e->seqs[seq].pos = pos + n;
    atomic_fetch_add(&e->n.prefill_tokens, n);
    atomic_fetch_add(&e->n.prefill_ns, now_ns() - t0);
done:
    lj_snapshot_release(&e->serve, v);
    lj_worker_put(&e->serve, w);
    if (st) lj_kv_trim(&e->kv, seq, pos); /* the blocks taken for the positions go back */
    free(tmp);
    return st;
}

/* Validates everything (range, vocabulary, room in each KV cache, adapter names),
 * then runs one compiled lj_decode pass with one snapshot over n rows: row i is token
 * tokens[i] of sequence seqs[i]. pos NULL: each row at its sequence's position, the
 * sequences distinct (n <= max_batch). pos given: row i at pos[i], a sequence's rows
 * at consecutive positions from its own in row order (a prompt's chunk as rows: each
 * row's attention writes its K/V and sees the rows before it, as lj_forward's does;
 * n <= max(max_batch, max_tokens), the scratch's rows). n_prefill of the rows count
 * as prefill tokens in the stats. The caller has claimed seqs. logits [n, vocab_size].
 * Everything is borrowed for the call; req: NULL, or generate's request of each row,
 * for messages. On failure nothing changes: a row whose logits are not finite fails
 * the pass and no sequence advances. */
lorajit_status lj_decode_rows(lorajit_engine *e, const int *seqs, const int64_t *pos, const int32_t *tokens, int n,
                              int n_prefill, float *logits, const char *what, const int *req, lj_err *err) {
    lorajit_status st;
    int max = e->L->schema.max_batch, cap = pos ? (int)lj_engine_rows(e->L) : max;
    if (!e->code.decode)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: the compiled code has no batched decode "
                       "entry point (%s)", what, LJ_DECODE_SYMBOL);
    if (!seqs || !tokens || !logits)
        return lj_fail(err, LORAJIT_E_ARG, "%s: seqs, tokens or logits is NULL", what);
    if (n < 1 || n > cap)
        return lj_fail(err, LORAJIT_E_ARG, "%s: n = %d rows, must be 1..%d (%s)", what, n, cap,
                       cap > max ? "max_tokens" : "max_batch");
    if ((st = check_tokens(e, tokens, n, what, "row", err))) return st;
    int ds[LJ_MAX_SLOTS], n_ds = 0;    /* the distinct sequences, in order of first row */
    int64_t from[LJ_MAX_SLOTS], end[LJ_MAX_SLOTS], width = 0; /* each one's positions before and after */
    for (int i = 0; i < n; i++) {
        if ((st = check_seq(e, seqs[i], what, err))) return st;
        int d = 0;
        while (d < n_ds && ds[d] != seqs[i]) d++;
        if (d < n_ds && !pos) {
            int j = 0;
            while (seqs[j] != seqs[i]) j++;
            return lj_fail(err, LORAJIT_E_ARG, "%s: sequence %d is in rows %d and %d; a step advances each "
                           "sequence once", what, seqs[i], j, i);
        }
        if (d == n_ds) ds[n_ds++] = seqs[i], from[d] = end[d] = e->seqs[seqs[i]].pos;
        if (pos && pos[i] != end[d])
            return lj_fail(err, LORAJIT_E_ARG, "%s: row %d of sequence %d is at position %lld, not %lld (a "
                           "sequence's rows follow on from its position)", what, i, seqs[i], (long long)pos[i],
                           (long long)end[d]);
        if ((st = check_room(e, seqs[i], end[d] - from[d] + 1, what, err))) return st;
        end[d]++;
        if (lj_kv_blocks_for(&e->kv, end[d]) > width) width = lj_kv_blocks_for(&e->kv, end[d]);
    }
    /* one block: each row's adapters, position, sequence (int32, as ctx.h's lj_decode takes it), block table */
    size_t bytes = (size_t)n * (sizeof(lj_active *) + sizeof(int64_t) + sizeof(int32_t) * (size_t)(1 + width));
    const lj_active **act = lj_malloc(bytes);
    lj_worker *w = NULL;
    if (!act) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory (%d rows' block tables)", what, n);
    } else if ((st = lj_kv_reserve(&e->kv, ds, end, n_ds, false, what, err)) ||
               (st = lj_worker_get(&e->serve, false, &w, err))) {
        for (int d = 0; d < n_ds; d++) lj_kv_trim(&e->kv, ds[d], from[d]);
    }
    if (st) {
        free((void *)act);
        return st;
    }
    int64_t *at = (int64_t *)(act + n);
    int32_t *seq = (int32_t *)(at + n), *table = seq + n;
    for (int i = 0; i < n; i++) at[i] = pos ? pos[i] : e->seqs[seqs[i]].pos, seq[i] = seqs[i];
    lj_kv_gather(&e->kv, seqs, n, width, table);
    int64_t t0 = now_ns();
    lj_snapshot *v = lj_snapshot_acquire(&e->serve); /* one adapter state for every row */
    for (int i = 0; i < n && !st; i++) st = seq_active(e, v, seqs[i], &act[i], what, err);
    if (!st) {
        lj_ctx c = e->ctx; /* row i's cache is found through its block table */
        c.scratch = w->scratch;
        c.key_cache = e->kv.key_pool;
        c.value_cache = e->kv.value_pool;
        c.block_table = table;
        c.block_table_stride = width;
        float *rope = NULL; /* per-row tables (each sequence's own length) when the type varies */
        if (lj_rope_varies(&e->L->cfg)) {
            int64_t per = lj_rope_row_floats(&e->L->cfg);
            if (!(rope = lj_malloc(sizeof *rope * (size_t)(per * n))))
                st = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory (RoPE tables)", what);
            for (int i = 0; rope && i < n; i++) lj_rope_table(&e->L->cfg, at[i] + 1, rope + per * i);
            c.rope = rope;
            c.rope_stride = per;
        }
        lj_pool *was = lj_pool_bind(e->pool);
        int rc = st ? 0 : e->code.decode(&c, tokens, n, at, seq, act, logits);
        lj_pool_bind(was);
        free(rope);
        if (rc != 0) st = lj_fail(err, LORAJIT_E_COMPILE, "%s: compiled code returned %d", what, rc);
        size_t vocab = (size_t)e->L->cfg.vocab_size;
        for (int i = 0; i < n && !st; i++) {
            size_t k = lj_nonfinite_find(logits + (size_t)i * vocab, vocab);
            if (k < vocab)
                st = not_finite(what, req ? req[i] : -1, i, seqs[i], at[i], logits + (size_t)i * vocab, k, err);
        }
    }
    lj_snapshot_release(&e->serve, v);
    lj_worker_put(&e->serve, w);
    free((void *)act);
    if (st) {
        for (int d = 0; d < n_ds; d++) lj_kv_trim(&e->kv, ds[d], from[d]); /* the blocks taken go back */
        return st;
    }
    for (int d = 0; d < n_ds; d++) e->seqs[ds[d]].pos = end[d];
    int64_t dt = now_ns() - t0, dt_prefill = dt * n_prefill / n; /* the pass's time shared by rows */
    atomic_fetch_add(&e->n.prefill_tokens, n_prefill);
    atomic_fetch_add(&e->n.prefill_ns, dt_prefill);
    atomic_fetch_add(&e->n.decode_tokens, n - n_prefill);
    atomic_fetch_add(&e->n.decode_ns, dt - dt_prefill);
    return LORAJIT_OK;
}

/* ---- public: sequences ---- */

lorajit_status lorajit_seq_set_adapter(lorajit_engine *e, int seq, const char *const *names,
                                       const float *weights, int n) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "seq_set_adapter", &err);
    if (st) return st;
    if ((st = seq_claim(e, &seq, 1, "seq_set_adapter", err))) return lj_engine_leave(e, st);
    st = lj_seq_set_choice(e, seq, names, weights, n, "seq_set_adapter", err);
    seq_unclaim(e, &seq, 1);
    return lj_engine_leave(e, st);
}

lorajit_status lj_seq_set_choice(lorajit_engine *e, int seq, const char *const *names, const float *weights,
                                 int n, const char *what, lj_err *err) {
    lj_seq_choice c;
    const char *pinned[LJ_MAX_SLOTS];
    int n_pinned = lj_adapter_names_ok(names, n, e->L->schema.n_slots) ? n : 0; /* else choice_make says why */
    if (n_pinned) memcpy(pinned, names, sizeof *pinned * (size_t)n);
    lorajit_status st = lj_engine_resolve(e, pinned, &n_pinned, what, err);
    if (st) return st;
    lj_snapshot *v = lj_snapshot_acquire(&e->serve); /* the names are checked against one state */
    st = lj_seq_choice_make(v, e->L->schema.n_slots, names, weights, n, &c, what, err);
    lj_snapshot_release(&e->serve, v);
    lj_engine_unpin(e, pinned, n_pinned); /* each step pins them again (lj_engine_pin_seqs) */
    if (!st) {
        lj_seq_choice_free(&e->seqs[seq].choice);
        e->seqs[seq].choice = c;
    }
    return st;
}

lorajit_status lorajit_seq_follow_engine(lorajit_engine *e, int seq) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "seq_follow_engine", &err);
    if (st) return st;
    if ((st = seq_claim(e, &seq, 1, "seq_follow_engine", err))) return lj_engine_leave(e, st);
    lj_seq_choice_free(&e->seqs[seq].choice);
    e->seqs[seq].choice = (lj_seq_choice){0};
    seq_unclaim(e, &seq, 1);
    return LORAJIT_OK;
}

lorajit_status lorajit_seq_reset(lorajit_engine *e, int seq) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "seq_reset", &err);
    if (st) return st;
    if ((st = seq_claim(e, &seq, 1, "seq_reset", err))) return lj_engine_leave(e, st);
    e->seqs[seq].pos = 0;
    lj_kv_trim(&e->kv, seq, 0);
    seq_unclaim(e, &seq, 1);
    return LORAJIT_OK;
}

int lorajit_seq_pos(const lorajit_engine *e, int seq) {
    if (!e || !e->started || seq < 0 || seq >= e->L->schema.max_batch) return -1;
    return (int)e->seqs[seq].pos;
}

lorajit_status lorajit_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n,
                                   float *logits) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "seq_prefill", &err);
    if (st) return st;
    if ((st = seq_claim(e, &seq, 1, "seq_prefill", err))) return lj_engine_leave(e, st);
    const char **pinned;
    int n_pinned;
    if (!(st = lj_engine_pin_seqs(e, &seq, 1, &pinned, &n_pinned, "seq_prefill", err))) {
        st = lj_seq_prefill(e, seq, tokens, n, 0, logits, NULL, "seq_prefill", -1, err);
        lj_engine_unpin_free(e, pinned, n_pinned);
    }
    seq_unclaim(e, &seq, 1);
    return lj_engine_leave(e, st);
}

lorajit_status lorajit_decode(lorajit_engine *e, const int *seqs, const int32_t *tokens, int n,
                              float *logits) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "decode", &err);
    if (st) return st;
    if (!e->code.decode || !seqs || n < 1 || n > e->L->schema.max_batch) /* decode_step words it */
        return lj_engine_leave(e, lj_decode_rows(e, seqs, NULL, tokens, n, 0, logits, "decode", NULL, err));
    if ((st = seq_claim(e, seqs, n, "decode", err))) return lj_engine_leave(e, st);
    const char **pinned;
    int n_pinned;
    if (!(st = lj_engine_pin_seqs(e, seqs, n, &pinned, &n_pinned, "decode", err))) {
        st = lj_decode_rows(e, seqs, NULL, tokens, n, 0, logits, "decode", NULL, err);
        lj_engine_unpin_free(e, pinned, n_pinned);
    }
    seq_unclaim(e, seqs, n);
    return lj_engine_leave(e, st);
}

/* ---- public: generate ---- */

/* What one request needs besides the request itself. */
typedef struct gen_req {
    lj_seq_choice choice;   /* owned until committed to the sequence */
    int32_t *hist;          /* [n_prompt + max_new] owned: prompt, then generated ids */
    int n_hist;
    lj_rng rng;
} gen_req;

/* Parses "NAME[:W][,NAME[:W]...]" (NULL: follow the engine, "": the base model)
 * into g->choice, checking the names against snapshot v. */
static lorajit_status parse_adapter(lorajit_engine *e, const lj_snapshot *v, int i, const char *spec,
                                    gen_req *g, lj_err *err) {
    if (!spec) {
        g->choice = (lj_seq_choice){0};
        return LORAJIT_OK;
    }
    char what[64], *buf = lj_malloc(strlen(spec) + 1);
    const char *names[LJ_MAX_SLOTS];
    float w[LJ_MAX_SLOTS];
    int n = 0;
    snprintf(what, sizeof what, "generate: request %d", i);
    if (!buf) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", what);
    strcpy(buf, spec);
    lorajit_status st = LORAJIT_OK;
    for (char *item = buf; *buf && item && !st;) {
        char *comma = strchr(item, ','), *colon, *end;
        if (comma) *comma = '\0';
        w[n] = 1.0f;
        if ((colon = strchr(item, ':'))) {
            *colon = '\0';
            w[n] = strtof(colon + 1, &end);
            if (end == colon + 1 || *end)
                st = lj_fail(err, LORAJIT_E_ARG, "%s: adapter \"%s\": bad weight '%s' for '%s' "
                             "(want NAME[:W][,NAME[:W]...])", what, spec, colon + 1, item);
        }
        if (!st && !*item)
            st = lj_fail(err, LORAJIT_E_ARG, "%s: adapter \"%s\" has an empty name", what, spec);
        if (!st && n == LJ_MAX_SLOTS - 1)
            st = lj_fail(err, LORAJIT_E_ARG, "%s: adapter \"%s\" names too many adapters", what, spec);
        if (!st) names[n++] = item;
        item = comma ? comma + 1 : NULL;
    }
    if (!st) st = lj_seq_choice_make(v, e->L->schema.n_slots, names, w, n, &g->choice, what, err);
    free(buf);
    return st;
}

/* Checks request i (prompt, sizes, adapter against snapshot v) and prepares g. */
static lorajit_status prepare(lorajit_engine *e, const lj_snapshot *v, int i, const lorajit_request *r,
                              gen_req *g, uint64_t seed, lj_err *err) {
    lorajit_status st;
    char what[64];
    int64_t len = e->L->schema.seq_len;
    snprintf(what, sizeof what, "generate: request %d", i);
    if (!r->prompt || r->n_prompt < 1)
        return lj_fail(err, LORAJIT_E_ARG, "%s: the prompt is NULL or empty", what);
    if (r->max_new < 0 || (r->max_new > 0 && !r->out))
        return lj_fail(err, LORAJIT_E_ARG, "%s: max_new %d with out %s", what, r->max_new,
                       r->out ? "set" : "NULL");
    int64_t need = (int64_t)r->n_prompt + (r->max_new > 0 ? r->max_new - 1 : 0);
    if (need > len)
        return lj_fail(err, LORAJIT_E_ARG, "%s: KV cache full: a prompt of %d tokens and %d new "
                       "need %lld positions, a sequence holds %lld (max_seq_len)", what, r->n_prompt,
                       r->max_new, (long long)need, (long long)len);
    if ((st = check_tokens(e, r->prompt, r->n_prompt, what, "prompt position", err))) return st;
    if ((st = parse_adapter(e, v, i, r->adapter, g, err))) return st;
    if (!(g->hist = lj_malloc(sizeof *g->hist * (size_t)(r->n_prompt + r->max_new))))
        return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", what);
    memcpy(g->hist, r->prompt, sizeof *g->hist * (size_t)r->n_prompt);
    g->n_hist = r->n_prompt;
    lj_rng_seed(&g->rng, seed, (uint64_t)i);
    return LORAJIT_OK;
}

/* Samples request i's next token from row; returns 1 while it goes on. */
static int take(lorajit_request *r, gen_req *g, int i, float *row, const lorajit_sampling *s,
                lj_sample_work *w, lorajit_token_fn on_token, void *user) {
    int32_t t = lj_sample(row, s, g->hist, g->n_hist, &g->rng, w);
    r->out[r->n_out++] = t;
    g->hist[g->n_hist++] = t;
    if (on_token) on_token(user, i, t);
    for (int k = 0; k < s->n_eos_more; k++)
        if (t == s->eos_more[k]) return 0;
    return t != s->eos_id && r->n_out < r->max_new && !r->stop;
}

/* Claims the first n sequences no other call is using into sq[0..n); all or none. */
static lorajit_status claim_free(lorajit_engine *e, int n, int *sq, lj_err *err) {
    int got = 0, max = e->L->schema.max_batch;
    for (int s = 0; s < max && got < n; s++)
        if (seq_try_claim(e, s)) sq[got++] = s;
    if (got == n) return LORAJIT_OK;
    seq_unclaim(e, sq, got);
    return lj_fail(err, LORAJIT_E_ARG, "generate: %d requests need %d sequences, but only %d of %d are "
                   "free (the others are in use by other calls)", n, n, got, max);
}

lorajit_status lorajit_generate(lorajit_engine *e, lorajit_request *reqs, int n,
                                const lorajit_sampling *s, lorajit_token_fn on_token, void *user) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "generate", &err);
    if (st) return st;
    static const lorajit_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1,
                                            .eos_id = -1};
    int max = e->L->schema.max_batch, vocab = (int)e->L->cfg.vocab_size;
    if (!s) s = &greedy;
    if (!reqs || n < 1 || n > max)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "generate: %d requests%s; must be "
                                          "1..%d (max_batch)", n, reqs ? "" : " (reqs NULL)", max));
    if ((st = lj_sampling_check(s, err))) return lj_engine_leave(e, st);
    if (s->eos_id >= vocab)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "generate: eos_id %d is outside the "
                                          "vocabulary [0, %d)", s->eos_id, vocab));
    for (int k = 0; k < s->n_eos_more; k++)
        if (s->eos_more[k] >= vocab)
            return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "generate: eos_more[%d] = %d is outside "
                                              "the vocabulary [0, %d)", k, (int)s->eos_more[k], vocab));
    int sq[LJ_MAX_SLOTS], n_claimed = 0, n_pinned = 0; /* request i runs in sequence sq[i] */
    char **pinned = NULL;                                /* the requests' adapter names, pinned */
    gen_req *g = lj_calloc((size_t)n, sizeof *g);
    lj_sample_work *w = lj_sample_work_new(vocab);
    float *logits = lj_malloc(sizeof *logits * (size_t)n * (size_t)vocab);
    if (!g || !w || !logits) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "generate: out of memory");
        goto done;
    }
    bool steps = false;
    if ((st = lj_engine_pin_requests(e, reqs, n, &pinned, &n_pinned, err))) goto done;
    lj_snapshot *v = lj_snapshot_acquire(&e->serve); /* adapter names are checked against one state */
    for (int i = 0; i < n && !st; i++) {
        st = prepare(e, v, i, &reqs[i], &g[i], s->seed, err);
        steps |= reqs[i].max_new > 1;
    }
    lj_snapshot_release(&e->serve, v);
    if (!st && steps && !e->code.decode)
        st = lj_fail(err, LORAJIT_E_UNSUPPORTED, "generate: the compiled code has no batched decode "
                     "entry point (%s)", LJ_DECODE_SYMBOL);
    if (st || (st = claim_free(e, n, sq, err))) goto done;
    n_claimed = n;
    int64_t need[LJ_MAX_SLOTS]; /* every position a request can reach, its blocks taken now */
    for (int i = 0; i < n; i++) need[i] = (int64_t)reqs[i].n_prompt + (reqs[i].max_new > 1 ? reqs[i].max_new - 1 : 0);
    if ((st = lj_kv_reserve(&e->kv, sq, need, n, true, "generate", err))) goto done;
    for (int i = 0; i < n; i++) { /* commit: every check passed */
        lj_seq *q = &e->seqs[sq[i]];
        lj_seq_choice_free(&q->choice);
        q->choice = g[i].choice;
        g[i].choice = (lj_seq_choice){0};
        q->pos = 0;
        reqs[i].n_out = 0;
    }
    int live[LJ_MAX_SLOTS], rows[LJ_MAX_SLOTS], n_live = 0;
    int32_t next[LJ_MAX_SLOTS];
    for (int i = 0; i < n; i++) {
        float *row = logits + (size_t)i * vocab;
        if ((st = lj_seq_prefill(e, sq[i], reqs[i].prompt, reqs[i].n_prompt, 0, NULL, row, "generate", i, err)))
            goto done;
        if (reqs[i].max_new > 0 && take(&reqs[i], &g[i], i, row, s, w, on_token, user))
            live[n_live++] = i;
    }
    while (n_live > 0) {
        for (int k = 0; k < n_live; k++) {
            next[k] = reqs[live[k]].out[reqs[live[k]].n_out - 1];
            rows[k] = sq[live[k]];
        }
        if ((st = lj_decode_rows(e, rows, NULL, next, n_live, 0, logits, "generate", live, err))) goto done;
        int still = 0;
        for (int k = 0; k < n_live; k++) {
            int i = live[k];
            if (take(&reqs[i], &g[i], i, logits + (size_t)k * vocab, s, w, on_token, user))
                live[still++] = i;
        }
        n_live = still;
    }
done:
    lj_engine_unpin(e, (const char *const *)pinned, n_pinned);
    free(pinned);
    for (int i = 0; i < n_claimed; i++) lj_kv_trim(&e->kv, sq[i], e->seqs[sq[i]].pos); /* unused blocks back */
    seq_unclaim(e, sq, n_claimed);
    for (int i = 0; g && i < n; i++) {
        lj_seq_choice_free(&g[i].choice);
        free(g[i].hist);
    }
    free(g);
    lj_sample_work_free(w);
    free(logits);
    return lj_engine_leave(e, st);
}
