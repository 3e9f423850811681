/* generate.c — sequences, prefill, batched decode and lorajit_generate.
 *
 * Each of the engine's max_batch sequences has a KV cache block (engine.c), a
 * position and an adapter choice: follow the engine's applied set, or its own
 * names + weights, resolved to physical slots at every step so a hotswap shows at
 * the next step. Prefill runs the compiled lj_forward over the sequence's block
 * at pos0 = its position; a decode step runs lj_decode once over rows of several
 * sequences, each with its own lj_active (gathered LoRA). Every call checks all
 * its input first and changes nothing when it fails. Sampling is in sample.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- sequence state ---- */

void lj_seq_choice_free(lj_seq_choice *c) {
    if (!c) return;
    free(c->text);
    c->text = NULL;
}

void lj_seqs_free(lj_seq *seqs, int n) {
    if (!seqs) return;
    for (int i = 0; i < n; i++) lj_seq_choice_free(&seqs[i].choice);
    free(seqs);
}

lorajit_status lj_seq_choice_make(const lj_registry *r, const char *const *names,
                                  const float *weights, int n, lj_seq_choice *out,
                                  const char *what, lj_err *err) {
    if (n < 0 || n > r->n_slots)
        return lj_fail(err, LORAJIT_E_ARG, "%s: n = %d adapters, must be 0..%d (max_adapters)", what,
                       n, r->n_slots);
    if (n > 0 && !names) return lj_fail(err, LORAJIT_E_ARG, "%s: names is NULL", what);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i]) return lj_fail(err, LORAJIT_E_ARG, "%s: names[%d] is NULL", what, i);
        if (lj_registry_find(r, names[i]) < 0)
            return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: adapter '%s' (names[%d]) is not loaded",
                           what, names[i], i);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return lj_fail(err, LORAJIT_E_ARG, "%s: adapter '%s' is named twice (names[%d] and "
                               "names[%d])", what, names[i], j, i);
        if (weights && !isfinite(weights[i]))
            return lj_fail(err, LORAJIT_E_ARG, "%s: weights[%d] of '%s' is not finite", what, i,
                           names[i]);
        len += strlen(names[i]) + 1;
    }
    lj_seq_choice c = {.own = true, .n = n};
    if (n > 0 && !(c.text = lj_malloc(len)))
        return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory copying adapter names", what);
    char *p = c.text;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(names[i]) + 1;
        memcpy(p, names[i], k);
        c.names[i] = p;
        c.weight[i] = weights ? weights[i] : 1.0f;
        p += k;
    }
    *out = c;
    return LORAJIT_OK;
}

/* The set sequence s applies now: the engine's applied set, or its own names
 * resolved to their current slots (nothing while the engine is disabled, as
 * PEFT's disable_adapters overrides adapter_names). Writes only seqs[s].row. */
static lorajit_status seq_active(lorajit_engine *e, int s, const lj_active **out, const char *what) {
    lj_seq *q = &e->seqs[s];
    if (!q->choice.own) {
        *out = &e->reg.applied;
        return LORAJIT_OK;
    }
    lj_active *a = &q->row;
    a->n = 0;
    for (int i = 0; e->reg.enabled && i < q->choice.n; i++) {
        int slot = lj_registry_find(&e->reg, q->choice.names[i]);
        if (slot < 0)
            return lj_fail(&e->err, LORAJIT_E_NOT_FOUND, "%s: sequence %d uses adapter '%s', which "
                           "is not loaded (deleted after lorajit_seq_set_adapter?)", what, s,
                           q->choice.names[i]);
        a->slot[a->n] = slot;
        a->weight[a->n++] = q->choice.weight[i];
    }
    *out = a;
    return LORAJIT_OK;
}

static lorajit_status check_seq(lorajit_engine *e, int s, const char *what) {
    int max = e->L->schema.max_batch;
    if (s < 0 || s >= max)
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: sequence %d is out of range (max_batch %d: "
                       "sequences 0..%d)", what, s, max, max - 1);
    return LORAJIT_OK;
}

/* Room for `more` positions in sequence s. */
static lorajit_status check_room(lorajit_engine *e, int s, int64_t more, const char *what) {
    int64_t pos = e->seqs[s].pos, len = e->L->schema.seq_len;
    if (more > len - pos)
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: KV cache full: sequence %d holds %lld of %lld "
                       "positions, %lld more asked", what, s, (long long)pos, (long long)len,
                       (long long)more);
    return LORAJIT_OK;
}

static lorajit_status check_tokens(lorajit_engine *e, const int32_t *tokens, int n, const char *what,
                                   const char *unit) {
    int64_t vocab = e->L->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return lj_fail(&e->err, LORAJIT_E_ARG, "%s: token %d at %s %d is outside the vocabulary "
                           "[0, %lld)", what, (int)tokens[i], unit, i, (long long)vocab);
    return LORAJIT_OK;
}

/* ---- prefill and decode ---- */

lorajit_status lj_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n,
                              float *logits, float *last, const char *what) {
    lorajit_status st;
    const lj_active *act;
    if ((st = check_seq(e, seq, what))) return st;
    if (!tokens) return lj_fail(&e->err, LORAJIT_E_ARG, "%s: tokens is NULL", what);
    if (n < 1) return lj_fail(&e->err, LORAJIT_E_ARG, "%s: n = %d tokens, must be >= 1", what, n);
    if ((st = check_room(e, seq, n, what)) || (st = check_tokens(e, tokens, n, what, "position")) ||
        (st = seq_active(e, seq, &act, what)))
        return st;
    int64_t vocab = e->L->cfg.vocab_size, chunk = e->L->schema.max_tokens;
    float *tmp = NULL;
    if (!logits) { /* logits nobody wants: chunks of at most 4 Mi floats of them */
        int64_t rows = ((int64_t)1 << 22) / vocab;
        if (rows < 1) rows = 1;
        if (chunk > rows) chunk = rows;
        if (chunk > n) chunk = n;
        if (!(tmp = lj_malloc(sizeof *tmp * (size_t)(chunk * vocab))))
            return lj_fail(&e->err, LORAJIT_E_NOMEM, "%s: out of memory (%lld x %lld logits)", what,
                           (long long)chunk, (long long)vocab);
    }
    double t0 = now_ms();
    lj_ctx c = e->ctx;
    c.key_cache = e->key_cache + seq * e->cache_stride;
    c.value_cache = e->value_cache + seq * e->cache_stride;
    c.active = act;
    int64_t pos = e->seqs[seq].pos;
    for (int64_t off = 0; off < n; off += chunk) {
        int64_t m = n - off < chunk ? n - off : chunk;
        float *out = logits ? logits + off * vocab : tmp;
        int rc = e->code.forward(&c, tokens + off, m, pos + off, out);
        if (rc != 0) {
            free(tmp);
            return lj_fail(&e->err, LORAJIT_E_COMPILE, "%s: compiled code returned %d", what, rc);
        }
        if (last && off + m == n) memcpy(last, out + (m - 1) * vocab, sizeof *last * (size_t)vocab);
    }
    free(tmp);
    e->seqs[seq].pos = pos + n;
    e->stats.prefill_tokens += n;
    e->stats.prefill_ms += now_ms() - t0;
    return LORAJIT_OK;
}

lorajit_status lj_decode_step(lorajit_engine *e, const int *seqs, const int32_t *tokens, int n,
                              float *logits, const char *what) {
    lorajit_status st;
    int max = e->L->schema.max_batch;
    if (!e->code.decode)
        return lj_fail(&e->err, LORAJIT_E_UNSUPPORTED, "%s: the compiled code has no batched decode "
                       "entry point (%s)", what, LJ_DECODE_SYMBOL);
    if (!seqs || !tokens || !logits)
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: seqs, tokens or logits is NULL", what);
    if (n < 1 || n > max)
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: n = %d rows, must be 1..%d (max_batch)", what, n,
                       max);
    int64_t pos[LJ_MAX_SLOTS];
    int32_t seq[LJ_MAX_SLOTS];
    const lj_active *act[LJ_MAX_SLOTS];
    if ((st = check_tokens(e, tokens, n, what, "row"))) return st;
    for (int i = 0; i < n; i++) {
        if ((st = check_seq(e, seqs[i], what))) return st;
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return lj_fail(&e->err, LORAJIT_E_ARG, "%s: sequence %d is in rows %d and %d; a "
                               "step advances each sequence once", what, seqs[i], j, i);
        if ((st = check_room(e, seqs[i], 1, what)) || (st = seq_active(e, seqs[i], &act[i], what)))
            return st;
        pos[i] = e->seqs[seqs[i]].pos;
        seq[i] = seqs[i];
    }
    double t0 = now_ms();
    lj_ctx c = e->ctx; /* all caches: row i's block is found through seq[i] */
    c.key_cache = e->key_cache;
    c.value_cache = e->value_cache;
    int rc = e->code.decode(&c, tokens, n, pos, seq, act, logits);
    if (rc != 0) return lj_fail(&e->err, LORAJIT_E_COMPILE, "%s: compiled code returned %d", what, rc);
    for (int i = 0; i < n; i++) e->seqs[seqs[i]].pos++;
    e->stats.decode_tokens += n;
    e->stats.decode_ms += now_ms() - t0;
    return LORAJIT_OK;
}

/* ---- public: sequences ---- */

lorajit_status lorajit_seq_set_adapter(lorajit_engine *e, int seq, const char *const *names,
                                       const float *weights, int n) {
    lorajit_status st = lj_engine_enter(e, "seq_set_adapter");
    if (st) return st;
    lj_seq_choice c;
    if ((st = check_seq(e, seq, "seq_set_adapter")) ||
        (st = lj_seq_choice_make(&e->reg, names, weights, n, &c, "seq_set_adapter", &e->err)))
        return lj_engine_leave(e, st);
    lj_seq_choice_free(&e->seqs[seq].choice);
    e->seqs[seq].choice = c;
    return LORAJIT_OK;
}

lorajit_status lorajit_seq_follow_engine(lorajit_engine *e, int seq) {
    lorajit_status st = lj_engine_enter(e, "seq_follow_engine");
    if (st) return st;
    if ((st = check_seq(e, seq, "seq_follow_engine"))) return lj_engine_leave(e, st);
    lj_seq_choice_free(&e->seqs[seq].choice);
    e->seqs[seq].choice = (lj_seq_choice){0};
    return LORAJIT_OK;
}

lorajit_status lorajit_seq_reset(lorajit_engine *e, int seq) {
    lorajit_status st = lj_engine_enter(e, "seq_reset");
    if (st) return st;
    if ((st = check_seq(e, seq, "seq_reset"))) return lj_engine_leave(e, st);
    e->seqs[seq].pos = 0;
    return LORAJIT_OK;
}

int lorajit_seq_pos(const lorajit_engine *e, int seq) {
    if (!e || !e->started || seq < 0 || seq >= e->L->schema.max_batch) return -1;
    return (int)e->seqs[seq].pos;
}

lorajit_status lorajit_seq_prefill(lorajit_engine *e, int seq, const int32_t *tokens, int n,
                                   float *logits) {
    lorajit_status st = lj_engine_enter(e, "seq_prefill");
    if (st) return st;
    return lj_engine_leave(e, lj_seq_prefill(e, seq, tokens, n, logits, NULL, "seq_prefill"));
}

lorajit_status lorajit_decode(lorajit_engine *e, const int *seqs, const int32_t *tokens, int n,
                              float *logits) {
    lorajit_status st = lj_engine_enter(e, "decode");
    if (st) return st;
    return lj_engine_leave(e, lj_decode_step(e, seqs, tokens, n, logits, "decode"));
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
 * into g->choice, checking the names against the registry. */
static lorajit_status parse_adapter(lorajit_engine *e, int i, const char *spec, gen_req *g) {
    if (!spec) {
        g->choice = (lj_seq_choice){0};
        return LORAJIT_OK;
    }
    char what[64], *buf = lj_malloc(strlen(spec) + 1);
    const char *names[LJ_MAX_SLOTS];
    float w[LJ_MAX_SLOTS];
    int n = 0;
    snprintf(what, sizeof what, "generate: request %d", i);
    if (!buf) return lj_fail(&e->err, LORAJIT_E_NOMEM, "%s: out of memory", what);
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
                st = lj_fail(&e->err, LORAJIT_E_ARG, "%s: adapter \"%s\": bad weight '%s' for '%s' "
                             "(want NAME[:W][,NAME[:W]...])", what, spec, colon + 1, item);
        }
        if (!st && !*item)
            st = lj_fail(&e->err, LORAJIT_E_ARG, "%s: adapter \"%s\" has an empty name", what, spec);
        if (!st && n == LJ_MAX_SLOTS - 1)
            st = lj_fail(&e->err, LORAJIT_E_ARG, "%s: adapter \"%s\" names too many adapters", what,
                         spec);
        if (!st) names[n++] = item;
        item = comma ? comma + 1 : NULL;
    }
    if (!st) st = lj_seq_choice_make(&e->reg, names, w, n, &g->choice, what, &e->err);
    free(buf);
    return st;
}

/* Checks request i (prompt, sizes, adapter) and prepares g. */
static lorajit_status prepare(lorajit_engine *e, int i, const lorajit_request *r, gen_req *g,
                              uint64_t seed) {
    lorajit_status st;
    char what[64];
    int64_t len = e->L->schema.seq_len;
    snprintf(what, sizeof what, "generate: request %d", i);
    if (!r->prompt || r->n_prompt < 1)
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: the prompt is NULL or empty", what);
    if (r->max_new < 0 || (r->max_new > 0 && !r->out))
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: max_new %d with out %s", what, r->max_new,
                       r->out ? "set" : "NULL");
    int64_t need = (int64_t)r->n_prompt + (r->max_new > 0 ? r->max_new - 1 : 0);
    if (need > len)
        return lj_fail(&e->err, LORAJIT_E_ARG, "%s: KV cache full: a prompt of %d tokens and %d new "
                       "need %lld positions, a sequence holds %lld (max_seq_len)", what, r->n_prompt,
                       r->max_new, (long long)need, (long long)len);
    if ((st = check_tokens(e, r->prompt, r->n_prompt, what, "prompt position"))) return st;
    if ((st = parse_adapter(e, i, r->adapter, g))) return st;
    if (!(g->hist = lj_malloc(sizeof *g->hist * (size_t)(r->n_prompt + r->max_new))))
        return lj_fail(&e->err, LORAJIT_E_NOMEM, "%s: out of memory", what);
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
    return t != s->eos_id && r->n_out < r->max_new;
}

lorajit_status lorajit_generate(lorajit_engine *e, lorajit_request *reqs, int n,
                                const lorajit_sampling *s, lorajit_token_fn on_token, void *user) {
    lorajit_status st = lj_engine_enter(e, "generate");
    if (st) return st;
    lj_err *err = &e->err;
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
    gen_req *g = lj_calloc((size_t)n, sizeof *g);
    lj_sample_work *w = lj_sample_work_new(vocab);
    float *logits = lj_malloc(sizeof *logits * (size_t)n * (size_t)vocab);
    if (!g || !w || !logits) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "generate: out of memory");
        goto done;
    }
    bool steps = false;
    for (int i = 0; i < n && !st; i++) {
        st = prepare(e, i, &reqs[i], &g[i], s->seed);
        steps |= reqs[i].max_new > 1;
    }
    if (!st && steps && !e->code.decode)
        st = lj_fail(err, LORAJIT_E_UNSUPPORTED, "generate: the compiled code has no batched decode "
                     "entry point (%s)", LJ_DECODE_SYMBOL);
    if (st) goto done;
    for (int i = 0; i < n; i++) { /* commit: every check passed */
        lj_seq_choice_free(&e->seqs[i].choice);
        e->seqs[i].choice = g[i].choice;
        g[i].choice = (lj_seq_choice){0};
        e->seqs[i].pos = 0;
        reqs[i].n_out = 0;
    }
    int live[LJ_MAX_SLOTS], n_live = 0;
    int32_t next[LJ_MAX_SLOTS];
    for (int i = 0; i < n; i++) {
        float *row = logits + (size_t)i * vocab;
        if ((st = lj_seq_prefill(e, i, reqs[i].prompt, reqs[i].n_prompt, NULL, row, "generate")))
            goto done;
        if (reqs[i].max_new > 0 && take(&reqs[i], &g[i], i, row, s, w, on_token, user))
            live[n_live++] = i;
    }
    while (n_live > 0) {
        for (int k = 0; k < n_live; k++) next[k] = reqs[live[k]].out[reqs[live[k]].n_out - 1];
        if ((st = lj_decode_step(e, live, next, n_live, logits, "generate"))) goto done;
        int still = 0;
        for (int k = 0; k < n_live; k++) {
            int i = live[k];
            if (take(&reqs[i], &g[i], i, logits + (size_t)k * vocab, s, w, on_token, user))
                live[still++] = i;
        }
        n_live = still;
    }
done:
    for (int i = 0; g && i < n; i++) {
        lj_seq_choice_free(&g[i].choice);
        free(g[i].hist);
    }
    free(g);
    lj_sample_work_free(w);
    free(logits);
    return lj_engine_leave(e, st);
}
