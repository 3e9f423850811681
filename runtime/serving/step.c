/* step.c — lorajit_step: one step of mixed work over sequence handles (issue 14).
 *
 * Each row appends tokens to its sequence: a prefill chunk (n_tokens > 1) runs the
 * compiled lj_forward through generate.c's lj_seq_prefill in calls of at most
 * ctx.small_rows (8) rows, so that every row takes the generated row loop, whose
 * numbers do not depend on the rows beside it: any chunking of a prompt, and a
 * decode row, give the same bits (sgemm's do depend on M); and the decode rows
 * (n_tokens 1) go into lj_decode passes (lj_decode_step) of up to small_rows rows
 * for the same reason (one pass up to 8 rows; 16 rows are two passes, each reading
 * the weights once: on 16-bit weights the row loop beats sgemm, which widens them
 * first), each row with its sequence's own adapters, pinned for the step. All or nothing: every row is
 * checked before anything runs, and when a part fails after others ran, the
 * positions of every row are put back (the KV entries written past them are
 * overwritten by the next call, as after any failed prefill).
 * Code whose matmuls all take 16-bit kernels (lj_code.rows_exact: a row's bits
 * do not depend on n there) runs a chunk in calls of up to max_tokens rows with the
 * LoRA terms on the row loop for all of them (LJ_PREFILL_EXACT), and all decode rows
 * in one pass: each reads the weights once instead of once per 8 rows. */
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

/* Runs the checked rows; the caller holds their handles. On failure every row's
 * position is what it was. */
static lorajit_status run_rows(lorajit_engine *e, const lorajit_step_row *rows, int n, lj_err *err) {
    int ids[LJ_MAX_SLOTS], dec_ids[LJ_MAX_SLOTS], dec_row[LJ_MAX_SLOTS], n_dec = 0;
    int32_t dec_tok[LJ_MAX_SLOTS];
    int64_t pos[LJ_MAX_SLOTS];
    size_t vocab = (size_t)e->L->cfg.vocab_size;
    for (int i = 0; i < n; i++) {
        ids[i] = rows[i].seq->id;
        pos[i] = e->seqs[ids[i]].pos;
        if (rows[i].n_tokens == 1) {
            dec_ids[n_dec] = ids[i];
            dec_tok[n_dec] = rows[i].tokens[0];
            dec_row[n_dec++] = i;
        }
    }
    if (n_dec && !e->code.decode)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "step: the compiled code has no batched decode entry point "
                       "(%s) for its %d decode rows", LJ_DECODE_SYMBOL, n_dec);
    float *dec_logits = n_dec ? lj_malloc(sizeof *dec_logits * vocab * (size_t)n_dec) : NULL;
    if (n_dec && !dec_logits) return lj_fail(err, LORAJIT_E_NOMEM, "step: out of memory (%d logits rows)", n_dec);
    const char **pinned;
    int n_pinned;
    lorajit_status st = lj_engine_pin_seqs(e, ids, n, &pinned, &n_pinned, "step", err);
    bool exact = e->code.rows_exact; /* any chunk's rows equal decode rows: no 8-row passes */
    for (int i = 0; i < n && !st; i++) {
        const lorajit_step_row *r = &rows[i];
        if (r->n_tokens > 1)
            st = lj_seq_prefill(e, ids[i], r->tokens, r->n_tokens, exact ? LJ_PREFILL_EXACT : (int)e->ctx.small_rows,
                                r->all_logits ? r->logits : NULL,
                                r->all_logits ? NULL : r->logits, "step", -1, err);
    }
    int piece = e->ctx.small_rows > 0 && !exact ? (int)e->ctx.small_rows : n_dec; /* rows per lj_decode pass */
    for (int k = 0; k < n_dec && !st; k += piece)
        st = lj_decode_step(e, dec_ids + k, dec_tok + k, n_dec - k < piece ? n_dec - k : piece,
                            dec_logits + vocab * (size_t)k, "step", NULL, err);
    for (int k = 0; k < n_dec && !st; k++)
        if (rows[dec_row[k]].logits)
            memcpy(rows[dec_row[k]].logits, dec_logits + vocab * (size_t)k, sizeof *dec_logits * vocab);
    if (st)
        for (int i = 0; i < n; i++) e->seqs[ids[i]].pos = pos[i];
    lj_engine_unpin_free(e, pinned, n_pinned);
    free(dec_logits);
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
