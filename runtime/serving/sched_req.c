/* sched_req.c — one request of the scheduler (scheduler.c): its checked copy,
 * the sampling of its next token and the stops (EOS, max_new, stop sequences, stop
 * strings through a streaming detokenizer, the on_token callback), its prompt's
 * log-probabilities when asked (prompt_logprobs), and its result.
 * Only the driving thread touches a request between admission and finish (cancel
 * sets an atomic flag); submit and take copy in and out under the scheduler's lock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

double lj_sched_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void lj_sched_req_free(lj_sched_req *q) {
    if (!q) return;
    lorajit_detokenizer_free(q->detok);
    free(q->hist);
    free(q->token_ms);
    free(q->names);
    free(q->stop_tok);
    free(q->stop_str);
    free(q->text);
    free(q->plp_logits);
    free(q->plp_lp);
    free(q->plp_top_id);
    free(q->plp_top_lp);
    free(q);
}

/* Copies strings[0..n) into one block: n pointers, then the text. NULL on failure. */
static char **copy_strings(const char *const *strings, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += strlen(strings[i]) + 1;
    char **out = lj_malloc(sizeof *out * (size_t)n + len), *t = (char *)(out + n);
    for (int i = 0; out && i < n; i++) {
        out[i] = strcpy(t, strings[i]);
        t += strlen(strings[i]) + 1;
    }
    return out;
}

/* Checks what a request asks of e (the adapters' residency is checked at admission). */
static lorajit_status check(lorajit_engine *e, const lorajit_sched_request *r, bool tokenizer, lj_err *err) {
    int64_t vocab = e->L->cfg.vocab_size, len = e->L->schema.seq_len;
    if (!r) return lj_fail(err, LORAJIT_E_ARG, "sched_submit: the request is NULL");
    if (!r->prompt || r->n_prompt < 1) return lj_fail(err, LORAJIT_E_ARG, "sched_submit: the prompt is NULL or empty");
    if (r->max_new < 1) return lj_fail(err, LORAJIT_E_ARG, "sched_submit: max_new %d, must be >= 1", r->max_new);
    int64_t need = (int64_t)r->n_prompt + r->max_new - 1;
    if (need > len)
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: a prompt of %d tokens and %d new need %lld positions, a "
                       "sequence holds %lld (max_seq_len): it could never be admitted", r->n_prompt, r->max_new,
                       (long long)need, (long long)len);
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= vocab)
            return lj_fail(err, LORAJIT_E_ARG, "sched_submit: token %d at prompt position %d is outside the "
                           "vocabulary [0, %lld)", (int)r->prompt[i], i, (long long)vocab);
    if (r->n_adapters < 0 || r->n_adapters > e->L->schema.n_slots || (r->n_adapters && !r->adapters))
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: %d adapters%s; must be 0..%d (max_adapters)",
                       r->n_adapters, r->n_adapters && !r->adapters ? " (adapters NULL)" : "", e->L->schema.n_slots);
    for (int i = 0; i < r->n_adapters; i++) {
        if (!r->adapters[i] || !r->adapters[i][0])
            return lj_fail(err, LORAJIT_E_ARG, "sched_submit: adapters[%d] is NULL or empty", i);
        if (r->weights && !isfinite(r->weights[i]))
            return lj_fail(err, LORAJIT_E_ARG, "sched_submit: weights[%d] of '%s' is not finite", i, r->adapters[i]);
    }
    lorajit_status st;
    if (r->sampling && (st = lj_sampling_check(r->sampling, err))) return st;
    if (r->sampling && r->sampling->eos_id >= vocab)
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: eos_id %d is outside the vocabulary", r->sampling->eos_id);
    for (int k = 0; r->sampling && k < r->sampling->n_eos_more; k++)
        if (r->sampling->eos_more[k] < 0 || r->sampling->eos_more[k] >= vocab)
            return lj_fail(err, LORAJIT_E_ARG, "sched_submit: eos_more[%d] = %d is outside the vocabulary", k,
                           (int)r->sampling->eos_more[k]);
    if (r->n_stop_seqs > LJ_SCHED_MAX_STOPS || r->n_stop_strings > LJ_SCHED_MAX_STOPS)
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: %d stop sequences and %d stop strings; at most %d each",
                       r->n_stop_seqs, r->n_stop_strings, LJ_SCHED_MAX_STOPS);
    if (r->n_stop_seqs < 0 || (r->n_stop_seqs && (!r->stop_seqs || !r->stop_lens)))
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: %d stop sequences with stop_seqs or stop_lens NULL",
                       r->n_stop_seqs);
    for (int i = 0; i < r->n_stop_seqs; i++) {
        if (!r->stop_seqs[i] || r->stop_lens[i] < 1)
            return lj_fail(err, LORAJIT_E_ARG, "sched_submit: stop sequence %d is NULL or empty", i);
        for (int k = 0; k < r->stop_lens[i]; k++)
            if (r->stop_seqs[i][k] < 0 || r->stop_seqs[i][k] >= vocab)
                return lj_fail(err, LORAJIT_E_ARG, "sched_submit: stop sequence %d: token %d is outside the "
                               "vocabulary", i, (int)r->stop_seqs[i][k]);
    }
    if (r->n_stop_strings < 0 || (r->n_stop_strings && !r->stop_strings))
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: %d stop strings with stop_strings NULL", r->n_stop_strings);
    if (r->n_stop_strings && !tokenizer)
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: stop strings need a tokenizer (lorajit_sched_options."
                       "tokenizer)");
    for (int i = 0; i < r->n_stop_strings; i++)
        if (!r->stop_strings[i] || !r->stop_strings[i][0])
            return lj_fail(err, LORAJIT_E_ARG, "sched_submit: stop string %d is NULL or empty", i);
    if (r->prompt_logprobs && (r->prompt_top_n < 0 || r->prompt_top_n > LORAJIT_MAX_TOP_LOGPROBS ||
                               r->prompt_top_n > vocab))
        return lj_fail(err, LORAJIT_E_ARG, "sched_submit: prompt_top_n %d, must be 0..%d", r->prompt_top_n,
                       LORAJIT_MAX_TOP_LOGPROBS < vocab ? LORAJIT_MAX_TOP_LOGPROBS : (int)vocab);
    return LORAJIT_OK;
}

int lj_sched_plp_rows(const lj_sched_req *q) { return q->n_prompt < LJ_SCHED_PLP_ROWS ? q->n_prompt : LJ_SCHED_PLP_ROWS; }

lorajit_status lj_sched_req_new(lorajit_engine *e, const lorajit_sched_request *r, const lorajit_tokenizer *tok,
                                lj_sched_req **out, lj_err *err) {
    static const lorajit_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1, .eos_id = -1};
    lorajit_status st = check(e, r, tok != NULL, err);
    if (st) return st;
    lj_sched_req *q = lj_calloc(1, sizeof *q);
    if (!q) return lj_fail(err, LORAJIT_E_NOMEM, "sched_submit: out of memory");
    q->n_prompt = r->n_prompt;
    q->max_new = r->max_new;
    q->samp = r->sampling ? *r->sampling : greedy;
    q->n_adapters = r->n_adapters;
    q->on_token = r->on_token;
    q->user = r->user;
    q->queue_ms = q->ttft_ms = -1;
    q->plp = r->prompt_logprobs != 0;
    q->plp_top_n = q->plp ? r->prompt_top_n : 0;
    q->on_prompt = r->on_prompt;
    size_t n_lp = (size_t)r->n_prompt - 1, n_top = n_lp * (size_t)q->plp_top_n;
    int stop_total = 0;
    for (int i = 0; i < r->n_stop_seqs; i++) stop_total += r->stop_lens[i];
    bool ok = (q->hist = lj_malloc(sizeof *q->hist * (size_t)(r->n_prompt + r->max_new))) &&
              (q->token_ms = lj_malloc(sizeof *q->token_ms * (size_t)r->max_new)) &&
              (!r->n_adapters || (q->names = copy_strings(r->adapters, r->n_adapters))) &&
              (!r->n_stop_strings || (q->stop_str = copy_strings(r->stop_strings, r->n_stop_strings))) &&
              (!stop_total || (q->stop_tok = lj_malloc(sizeof *q->stop_tok * (size_t)stop_total))) &&
              (!q->plp || ((q->plp_lp = lj_malloc(sizeof *q->plp_lp * (n_lp + 1))) &&
                           (q->plp_top_id = lj_malloc(sizeof *q->plp_top_id * (n_top + 1))) &&
                           (q->plp_top_lp = lj_malloc(sizeof *q->plp_top_lp * (n_top + 1)))));
    if (ok && r->n_stop_strings && lorajit_detokenizer_open(&q->detok, tok, 0) != LORAJIT_OK) ok = false;
    if (!ok) {
        lj_sched_req_free(q);
        return lj_fail(err, LORAJIT_E_NOMEM, "sched_submit: out of memory copying the request");
    }
    memcpy(q->hist, r->prompt, sizeof *q->hist * (size_t)r->n_prompt);
    for (int i = 0; i < r->n_adapters; i++) q->weight[i] = r->weights ? r->weights[i] : 1.0f;
    q->n_stop_seqs = r->n_stop_seqs;
    for (int i = 0, at = 0; i < r->n_stop_seqs; at += r->stop_lens[i++]) {
        memcpy(q->stop_tok + at, r->stop_seqs[i], sizeof *q->stop_tok * (size_t)r->stop_lens[i]);
        q->stop_at[i] = at;
        q->stop_len[i] = r->stop_lens[i];
    }
    q->n_stop_str = r->n_stop_strings;
    lj_rng_seed(&q->rng, q->samp.seed, 0); /* stream 0: as lorajit_generate's request 0 alone */
    *out = q;
    return LORAJIT_OK;
}

/* Appends the new text of token t; true when a stop string now ends the text. */
static bool stop_string(lj_sched_req *q, int32_t t) {
    const char *piece;
    size_t n;
    if (lorajit_detokenizer_push(q->detok, t, &piece, &n) != LORAJIT_OK || n == 0) return false;
    if (q->text_len + n + 1 > q->text_cap) {
        size_t cap = (q->text_len + n + 1) * 2;
        char *p = realloc(q->text, cap);
        if (!p) return false;
        q->text = p, q->text_cap = cap;
    }
    memcpy(q->text + q->text_len, piece, n);
    size_t before = q->text_len;
    q->text[q->text_len += n] = '\0';
    for (int i = 0; i < q->n_stop_str; i++) { /* only matches that end in the new piece */
        size_t k = strlen(q->stop_str[i]), from = before >= k ? before - k + 1 : 0;
        if (strstr(q->text + from, q->stop_str[i])) return true;
    }
    return false;
}

lorajit_finish lj_sched_req_take(lj_sched_req *q, float *logits, lj_sample_work *w, int64_t id, double now_ms) {
    int n_hist = q->n_prompt + q->n_out;
    int32_t t = lj_sample(logits, &q->samp, q->hist, n_hist, &q->rng, w);
    q->hist[n_hist] = t;
    q->token_ms[q->n_out++] = now_ms - q->submit_ms;
    if (q->n_out == 1) q->ttft_ms = now_ms - q->submit_ms;
    if (q->on_token && q->on_token(q->user, id, t)) return LORAJIT_FINISH_CANCELLED;
    if (t == q->samp.eos_id) return LORAJIT_FINISH_EOS;
    for (int k = 0; k < q->samp.n_eos_more; k++)
        if (t == q->samp.eos_more[k]) return LORAJIT_FINISH_EOS;
    const int32_t *out = q->hist + q->n_prompt;
    for (int i = 0; i < q->n_stop_seqs; i++)
        if (q->stop_len[i] <= q->n_out &&
            !memcmp(out + q->n_out - q->stop_len[i], q->stop_tok + q->stop_at[i], sizeof *out * (size_t)q->stop_len[i]))
            return LORAJIT_FINISH_STOP;
    if (q->detok && stop_string(q, t)) return LORAJIT_FINISH_STOP;
    return q->n_out >= q->max_new ? LORAJIT_FINISH_LENGTH : LORAJIT_FINISH_NONE;
}

int lj_sched_req_prompt_rows(lj_sched_req *q, const float *logits, int vocab, int from, int n_rows, int64_t id) {
    int top_n = q->plp_top_n;
    for (int j = 0; j < n_rows && from + j + 1 < q->n_prompt; j++) { /* row j predicts prompt[from + j + 1] */
        size_t k = (size_t)(from + j);
        lorajit_status st = lorajit_logprobs(logits + (size_t)j * (size_t)vocab, vocab, q->hist[k + 1], top_n,
                                             &q->plp_lp[k], q->plp_top_id + k * (size_t)top_n,
                                             q->plp_top_lp + k * (size_t)top_n);
        LJ_ASSERT(st == LORAJIT_OK); /* checked at submit */
    }
    if (from + n_rows < q->n_prompt) return 0;
    return q->on_prompt ? q->on_prompt(q->user, id, q->n_prompt - 1, q->plp_lp, q->plp_top_id, q->plp_top_lp, top_n)
                        : 0;
}

lorajit_status lj_sched_req_result(lj_sched_req *q, int64_t id, lorajit_sched_result *out, lj_err *err) {
    int32_t *tokens = lj_malloc(sizeof *tokens * (size_t)(q->n_out ? q->n_out : 1));
    if (!tokens) return lj_fail(err, LORAJIT_E_NOMEM, "sched_take: out of memory");
    memcpy(tokens, q->hist + q->n_prompt, sizeof *tokens * (size_t)q->n_out);
    *out = (lorajit_sched_result){.id = id, .finish = q->finish, .n_prompt = q->n_prompt, .n_tokens = q->n_out,
                                  .tokens = tokens, .token_ms = q->token_ms, .queue_ms = q->queue_ms,
                                  .ttft_ms = q->ttft_ms, .total_ms = q->done_ms - q->submit_ms};
    snprintf(out->error, sizeof out->error, "%s", q->error);
    q->token_ms = NULL; /* the caller's now */
    return LORAJIT_OK;
}
