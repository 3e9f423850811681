/* step.c — lorajit_step: one step of mixed work over sequence handles (issue 14).
 *
 * Each row appends tokens to its sequence: a prefill chunk (n_tokens > 1) or one
 * token (decode). Code whose matmuls all take 16-bit kernels (lj_code.rows_exact: a
 * row's bits do not depend on the rows beside it) and whose RoPE tables do not vary
 * with length runs the whole step as rows of lj_decode passes (lj_decode_rows): a
 * chunk's tokens are rows of its sequence at consecutive positions, each attending
 * to the rows before it, so a step reads the weights once whatever its mix of
 * prefill and decode (passes of at most max(max_batch, max_tokens) rows and
 * LJ_STEP_LOGITS_FLOATS of logits). Other code runs each chunk through generate.c's
 * lj_seq_prefill (lj_forward, in calls of at most ctx.small_rows (8) rows so that
 * every row takes the generated row loop: any chunking of a prompt, and a decode
 * row, give the same bits, where sgemm's depend on M) and the decode rows in
 * lj_decode passes of up to small_rows rows, each row with its sequence's own
 * adapters, pinned for the step. All or nothing: every row is checked before anything
 * runs, and when a part fails after others ran, the positions of every row are put
 * back (the KV entries written past them are overwritten by the next call, as after
 * any failed prefill). */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Checks row i of a step: tokens, vocabulary, room in its sequence. */
static lorajit_status check_row(lorajit_engine *e, const lorajit_step_row *r, int i, lj_err *err) {
    int64_t vocab = e->L->cfg.vocab_size, len = e->L->schema.seq_len, pos = e->seqs[r->seq->id].pos;
    int id = r->seq->id;
    if (!r->tokens || r->n_tokens < 1)
        return lj_fail(err, LORAJIT_E_ARG, "step: row %d (sequence %d): %s", i, id,
                       r->tokens ? "n_tokens must be >= 1" : "tokens is NULL");
    if (r->n_tokens > len - pos)
        return lj_fail(err, LORAJIT_E_ARG, "step: row %d: KV cache full: sequence %d holds %lld of %lld "
                       "positions, %d more asked", i, id, (long long)pos, (long long)len, r->n_tokens);
    for (int k = 0; k < r->n_tokens; k++)
        if (r->tokens[k] < 0 || r->tokens[k] >= vocab)
            return lj_fail(err, LORAJIT_E_ARG, "step: row %d (sequence %d): token %d at %d is outside the "
                           "vocabulary [0, %lld)", i, id, (int)r->tokens[k], k, (long long)vocab);
    return LORAJIT_OK;
}

enum { LJ_STEP_LOGITS_FLOATS = 1 << 23 }; /* logits a pass may hold (32 MiB); at least a row */

/* How many of the pass rows [f, f + len) (one step row's tokens) fall in the pass
 * [k0, k0 + m); *lo: the first of them. */
static int in_pass(int f, int len, int k0, int m, int *lo) {
    *lo = f > k0 ? f : k0;
    int hi = f + len < k0 + m ? f + len : k0 + m;
    return hi > *lo ? hi - *lo : 0;
}

/* Every row as rows of lj_decode passes (code with rows_exact and a decode entry,
 * RoPE tables that do not vary): rows[i]'s tokens at its sequence's next positions
 * (each sequence is in one row: lj_seq_handles_take). The caller has pinned the rows'
 * adapters and puts the positions back on failure. */
static lorajit_status run_passes(lorajit_engine *e, const lorajit_step_row *rows, int n, lj_err *err) {
    size_t vocab = (size_t)e->L->cfg.vocab_size;
    int total = 0, cap = (int)lj_engine_rows(e->L);
    for (int i = 0; i < n; i++) total += rows[i].n_tokens;
    int by_logits = vocab >= LJ_STEP_LOGITS_FLOATS ? 1 : (int)(LJ_STEP_LOGITS_FLOATS / vocab);
    if (cap > by_logits) cap = by_logits;
    int per = total < cap ? total : cap;
    /* one block: each pass row's position, logits of a pass, sequence, token */
    size_t bytes = sizeof(int64_t) * (size_t)total + sizeof(float) * vocab * (size_t)per +
                   (sizeof(int) + sizeof(int32_t)) * (size_t)total;
    int64_t *pos = lj_malloc(bytes);
    if (!pos) return lj_fail(err, LORAJIT_E_NOMEM, "step: out of memory (%d rows, %d rows of logits)", total, per);
    float *logits = (float *)(pos + total);
    int *seq = (int *)(logits + vocab * (size_t)per);
    int32_t *tok = (int32_t *)(seq + total);
    for (int i = 0, k = 0; i < n; i++)
        for (int t = 0; t < rows[i].n_tokens; t++, k++)
            seq[k] = rows[i].seq->id, pos[k] = e->seqs[seq[k]].pos + t, tok[k] = rows[i].tokens[t];
    lorajit_status st = LORAJIT_OK;
    for (int k0 = 0; k0 < total && !st; k0 += per) { /* pass rows [k0, k0 + m) */
        int m = total - k0 < per ? total - k0 : per, n_prefill = 0, lo;
        for (int i = 0, f = 0; i < n; f += rows[i++].n_tokens)
            if (rows[i].n_tokens > 1) n_prefill += in_pass(f, rows[i].n_tokens, k0, m, &lo);
        st = lj_decode_rows(e, seq + k0, pos + k0, tok + k0, m, n_prefill, logits, "step", NULL, err);
        for (int i = 0, f = 0; i < n && !st; f += rows[i++].n_tokens) { /* the logits each row wants */
            const lorajit_step_row *r = &rows[i];
            int got = in_pass(f, r->n_tokens, k0, m, &lo), last = f + r->n_tokens - 1;
            if (got && r->logits && r->all_logits) /* every row of the chunk */
                memcpy(r->logits + (size_t)(lo - f) * vocab, logits + (size_t)(lo - k0) * vocab,
                       sizeof *logits * vocab * (size_t)got);
            else if (got && r->logits && last < lo + got)
                memcpy(r->logits, logits + (size_t)(last - k0) * vocab, sizeof *logits * vocab);
        }
    }
    free(pos);
    return st;
}

/* Each chunk through lj_seq_prefill, then the decode rows in lj_decode passes. The
 * caller has pinned the rows' adapters and puts the positions back on failure. */
static lorajit_status run_apart(lorajit_engine *e, const lorajit_step_row *rows, int n, lj_err *err) {
    int dec_ids[LJ_MAX_SLOTS], dec_row[LJ_MAX_SLOTS], n_dec = 0;
    int32_t dec_tok[LJ_MAX_SLOTS];
    size_t vocab = (size_t)e->L->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (rows[i].n_tokens == 1) {
            dec_ids[n_dec] = rows[i].seq->id;
            dec_tok[n_dec] = rows[i].tokens[0];
            dec_row[n_dec++] = i;
        }
    if (n_dec && !e->code.decode)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "step: the compiled code has no batched decode entry point "
                       "(%s) for its %d decode rows", LJ_DECODE_SYMBOL, n_dec);
    float *dec_logits = n_dec ? lj_malloc(sizeof *dec_logits * vocab * (size_t)n_dec) : NULL;
    if (n_dec && !dec_logits) return lj_fail(err, LORAJIT_E_NOMEM, "step: out of memory (%d logits rows)", n_dec);
    bool exact = e->code.rows_exact; /* any chunk's rows equal decode rows: no 8-row passes */
    lorajit_status st = LORAJIT_OK;
    for (int i = 0; i < n && !st; i++) {
        const lorajit_step_row *r = &rows[i];
        if (r->n_tokens > 1)
            st = lj_seq_prefill(e, r->seq->id, r->tokens, r->n_tokens,
                                exact ? LJ_PREFILL_EXACT : (int)e->ctx.small_rows, r->all_logits ? r->logits : NULL,
                                r->all_logits ? NULL : r->logits, "step", -1, err);
    }
    int piece = e->ctx.small_rows > 0 && !exact ? (int)e->ctx.small_rows : n_dec; /* rows per lj_decode pass */
    for (int k = 0; k < n_dec && !st; k += piece)
        st = lj_decode_rows(e, dec_ids + k, NULL, dec_tok + k, n_dec - k < piece ? n_dec - k : piece, 0,
                            dec_logits + vocab * (size_t)k, "step", NULL, err);
    for (int k = 0; k < n_dec && !st; k++)
        if (rows[dec_row[k]].logits)
            memcpy(rows[dec_row[k]].logits, dec_logits + vocab * (size_t)k, sizeof *dec_logits * vocab);
    free(dec_logits);
    return st;
}

/* Runs the checked rows; the caller holds their handles. On failure every row's
 * position is what it was. */
static lorajit_status run_rows(lorajit_engine *e, const lorajit_step_row *rows, int n, lj_err *err) {
    int ids[LJ_MAX_SLOTS];
    int64_t pos[LJ_MAX_SLOTS];
    for (int i = 0; i < n; i++) ids[i] = rows[i].seq->id, pos[i] = e->seqs[ids[i]].pos;
    const char **pinned;
    int n_pinned;
    lorajit_status st = lj_engine_pin_seqs(e, ids, n, &pinned, &n_pinned, "step", err);
    if (!st && e->code.rows_exact && e->code.decode && !lj_rope_varies(&e->L->cfg))
        st = run_passes(e, rows, n, err);
    else if (!st)
        st = run_apart(e, rows, n, err);
    if (st)
        for (int i = 0; i < n; i++) e->seqs[ids[i]].pos = pos[i];
    lj_engine_unpin_free(e, pinned, n_pinned);
    return st;
}

lorajit_status lorajit_step(lorajit_engine *e, const lorajit_step_row *rows, int n) {
    lj_err *err;
    lorajit_status st = lj_engine_enter(e, "step", &err);
    if (st) return st;
    int max = e->L->schema.max_batch;
    if (!rows || n < 1 || n > max)
        return lj_engine_leave(e, lj_fail(err, LORAJIT_E_ARG, "step: %d rows%s; must be 1..%d (max_batch)", n,
                                          rows ? "" : " (rows NULL)", max));
    lorajit_seq *h[LJ_MAX_SLOTS];
    for (int i = 0; i < n; i++) h[i] = rows[i].seq;
    if ((st = lj_seq_handles_take(e, h, n, "step", err))) return lj_engine_leave(e, st);
    for (int i = 0; i < n && !st; i++) st = check_row(e, &rows[i], i, err);
    if (!st) st = run_rows(e, rows, n, err);
    lj_seq_handles_give(h, n);
    return lj_engine_leave(e, st);
}
