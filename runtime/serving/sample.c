/* sample.c — picking the next token from one row of logits.
 *
 * Input: logits [vocab_size], a lorajit_sampling setting, the ids already in the
 * sequence (for the repetition penalty) and a PRNG state; output: one token id.
 * The steps follow Hugging Face's generate(): repetition penalty (CTRL), then
 * greedy when temperature is 0, else temperature, top-k, top-p and a draw. The
 * PRNG is splitmix64 (Steele et al.), one stream per request, so a seed gives
 * the same tokens on every run. Also lorajit_logprobs (a row's log-softmax and
 * top ids). Pure functions: no engine, no globals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serving.h"

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lj_rng_seed(lj_rng *r, uint64_t seed, uint64_t stream) {
    r->state = mix64(seed + mix64(stream + GOLDEN_GAMMA)); /* streams far apart in the sequence */
}

uint64_t lj_rng_next(lj_rng *r) {
    r->state += GOLDEN_GAMMA;
    return mix64(r->state);
}

double lj_rng_uniform(lj_rng *r) { return (double)(lj_rng_next(r) >> 11) * 0x1.0p-53; }

lj_sample_work *lj_sample_work_new(int vocab) {
    if (vocab < 1) return NULL;
    lj_sample_work *w = lj_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->vocab = vocab;
    w->cand = lj_malloc(sizeof *w->cand * (size_t)vocab);
    w->prob = lj_malloc(sizeof *w->prob * (size_t)vocab);
    w->seen = lj_calloc((size_t)vocab, 1);
    if (!w->cand || !w->prob || !w->seen) {
        lj_sample_work_free(w);
        return NULL;
    }
    return w;
}

void lj_sample_work_free(lj_sample_work *w) {
    if (!w) return;
    free(w->cand);
    free(w->prob);
    free(w->seen);
    free(w);
}

lorajit_status lj_sampling_check(const lorajit_sampling *s, lj_err *err) {
    if (!s) return lj_fail(err, LORAJIT_E_ARG, "sampling: the setting is NULL");
    if (!isfinite(s->temperature) || s->temperature < 0)
        return lj_fail(err, LORAJIT_E_ARG, "sampling: temperature %g must be finite and >= 0 "
                       "(0: greedy)", s->temperature);
    if (s->top_k < 0)
        return lj_fail(err, LORAJIT_E_ARG, "sampling: top_k %d must be >= 0 (0: off)", s->top_k);
    if (!(s->top_p > 0 && s->top_p <= 1))
        return lj_fail(err, LORAJIT_E_ARG, "sampling: top_p %g must be in (0, 1] (1: off)", s->top_p);
    if (!isfinite(s->repetition_penalty) || s->repetition_penalty <= 0)
        return lj_fail(err, LORAJIT_E_ARG, "sampling: repetition_penalty %g must be finite and > 0 "
                       "(1: off)", s->repetition_penalty);
    if (s->eos_id < -1)
        return lj_fail(err, LORAJIT_E_ARG, "sampling: eos_id %d must be a token id or -1 (none)",
                       s->eos_id);
    if (s->n_eos_more < 0 || s->n_eos_more > 8)
        return lj_fail(err, LORAJIT_E_ARG, "sampling: n_eos_more %d must be 0..8", s->n_eos_more);
    for (int k = 0; k < s->n_eos_more; k++)
        if (s->eos_more[k] < 0)
            return lj_fail(err, LORAJIT_E_ARG, "sampling: eos_more[%d] = %d must be a token id", k,
                           (int)s->eos_more[k]);
    return LORAJIT_OK;
}

int32_t lj_argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i])) best = i;
    return best;
}

/* CTRL's penalty on every distinct id of hist: logit / p when positive, else * p. */
static void penalize(float *logits, int vocab, float p, const int32_t *hist, int n_hist, uint8_t *seen) {
    for (int i = 0; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= vocab || seen[t]) continue;
        seen[t] = 1;
        logits[t] = logits[t] > 0 ? logits[t] / p : logits[t] * p;
    }
    for (int i = 0; i < n_hist; i++)
        if (hist[i] >= 0 && hist[i] < vocab) seen[hist[i]] = 0;
}

/* Candidate order: higher logit first, then lower id (NaN last). */
static bool better(const lj_cand *a, const lj_cand *b) {
    if (a->logit != b->logit) return a->logit > b->logit || b->logit != b->logit;
    return a->id < b->id;
}

static int cmp_cand(const void *pa, const void *pb) {
    const lj_cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Min-heap (worst candidate at the root) of the k best seen so far. */
static void heap_down(lj_cand *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && better(&h[m], &h[l])) m = l;
        if (r < k && better(&h[m], &h[r])) m = r;
        if (m == i) return;
        lj_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Puts the best k of logits[0..vocab) into cand[0..k), best first: O(vocab log k). */
static void select_top(const float *logits, int vocab, int k, lj_cand *cand) {
    for (int i = 0; i < k; i++) cand[i] = (lj_cand){logits[i], i};
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(cand, k, i);
    for (int i = k; i < vocab; i++) {
        lj_cand c = {logits[i], i};
        if (better(&c, &cand[0])) {
            cand[0] = c;
            heap_down(cand, k, 0);
        }
    }
    qsort(cand, (size_t)k, sizeof *cand, cmp_cand);
}

int32_t lj_sample(float *logits, const lorajit_sampling *s, const int32_t *hist, int n_hist,
                  lj_rng *rng, lj_sample_work *w) {
    int vocab = w->vocab;
    if (s->repetition_penalty != 1.0f && hist)
        penalize(logits, vocab, s->repetition_penalty, hist, n_hist, w->seen);
    if (s->temperature == 0) return lj_argmax(logits, vocab);
    int n = vocab;
    bool sorted = (s->top_k > 0 && s->top_k < vocab) || s->top_p < 1;
    if (s->top_k > 0 && s->top_k < vocab) {
        n = s->top_k;
        select_top(logits, vocab, n, w->cand);
    } else {
        for (int i = 0; i < vocab; i++) w->cand[i] = (lj_cand){logits[i], i};
        if (sorted) qsort(w->cand, (size_t)vocab, sizeof *w->cand, cmp_cand);
    }
    float top = sorted ? w->cand[0].logit : logits[lj_argmax(logits, vocab)];
    if (!isfinite(top)) return w->cand[0].id; /* nothing to weigh: the best candidate */
    double total = 0, inv_t = 1.0 / s->temperature;
    for (int i = 0; i < n; i++) {
        double x = (double)w->cand[i].logit;
        w->prob[i] = x == x ? exp((x - top) * inv_t) : 0; /* softmax(logits / T), unnormalised */
        total += w->prob[i];
    }
    if (s->top_p < 1) { /* nucleus: the smallest prefix whose probability reaches top_p */
        double cum = 0, want = (double)s->top_p * total;
        int keep = 0;
        while (keep < n) {
            cum += w->prob[keep++];
            if (cum >= want) break;
        }
        n = keep;
        total = cum;
    }
    double u = lj_rng_uniform(rng) * total, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += w->prob[i];
        if (u < cum) return w->cand[i].id;
    }
    for (int i = n - 1; i > 0; i--) /* rounding ran past the end: the last with weight */
        if (w->prob[i] > 0) return w->cand[i].id;
    return w->cand[0].id;
}

lorajit_status lorajit_logprobs(const float *logits, int vocab, int32_t id, int top_n, float *lp, int32_t *top_id,
                                float *top_lp) {
    if (!logits || vocab < 1 || id < 0 || id >= vocab || !lp || top_n < 0 || top_n > LORAJIT_MAX_TOP_LOGPROBS ||
        top_n > vocab || (top_n && (!top_id || !top_lp)))
        return LORAJIT_E_ARG;
    float max = logits[0];
    for (int v = 1; v < vocab; v++) max = logits[v] > max ? logits[v] : max;
    double sum = 0;
    for (int v = 0; v < vocab; v++) sum += exp((double)logits[v] - max);
    double lse = max + log(sum);
    *lp = (float)(logits[id] - lse);
    for (int k = 0; k < top_n; k++) top_id[k] = -1;
    for (int v = 0; v < vocab; v++) { /* insertion into the top_n so far (ties: the lower id first) */
        int k = top_n;
        while (k > 0 && (top_id[k - 1] < 0 || logits[v] > logits[top_id[k - 1]])) k--;
        if (k == top_n) continue;
        memmove(top_id + k + 1, top_id + k, sizeof *top_id * (size_t)(top_n - k - 1));
        top_id[k] = v;
    }
    for (int k = 0; k < top_n; k++) top_lp[k] = (float)(logits[top_id[k]] - lse);
    return LORAJIT_OK;
}
