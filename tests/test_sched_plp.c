/* test_sched_plp.c — the scheduler's prompt log-probabilities (prompt_logprobs,
 * lorajit_sched_prompt_fn) on the conformance tiny model and its PEFT adapters:
 *  (a) every entry against an independent reference: log-softmax in double of
 *      lorajit_forward's logits at every position, under the same adapters, and
 *      the top ids against a full sort of that row;
 *  (b) chunked prefill (budgets 3, 4, 8, one chunk) gives the same bits, also when
 *      the request shares its steps with a decoding request;
 *  (c) the generated ids are those of the same request without the option, which
 *      never calls on_prompt; on_prompt comes before the first token; a one-token
 *      prompt gives 0 entries; on_prompt's non-zero cancels; bad top_n fails at submit;
 *  (d) lorajit_logprobs itself: a row against the reference, bad arguments.
 * Recipe: a new case builds a req (plp_run) and compares its plp_got with want(). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"
#include "sched_fixture.h"

#define N_PROMPT 21
#define TOP_N 5
#define MAX_NEW 6

/* What on_prompt and on_token saw of one request. */
typedef struct plp_got {
    int calls, n, top_n, tokens_before; /* tokens_before: on_token calls before on_prompt */
    int tokens;
    float lp[N_PROMPT];
    int32_t top_id[N_PROMPT * TOP_N];
    float top_lp[N_PROMPT * TOP_N];
    int cancel;                         /* on_prompt's answer */
} plp_got;

static int got_prompt(void *user, int64_t id, int n, const float *lp, const int32_t *top_id, const float *top_lp,
                      int top_n) {
    (void)id;
    plp_got *g = user;
    g->calls++;
    g->n = n, g->top_n = top_n, g->tokens_before = g->tokens;
    if (n <= N_PROMPT && top_n <= TOP_N) {
        memcpy(g->lp, lp, sizeof *lp * (size_t)n);
        memcpy(g->top_id, top_id, sizeof *top_id * (size_t)(n * top_n));
        memcpy(g->top_lp, top_lp, sizeof *top_lp * (size_t)(n * top_n));
    }
    return g->cancel;
}

static int got_token(void *user, int64_t id, int32_t t) {
    (void)id, (void)t;
    ((plp_got *)user)->tokens++;
    return 0;
}

/* The reference: log-softmax (double) of lorajit_forward's rows under adapters ad[0..n_ad). */
static void want(lorajit_engine *e, const int32_t *prompt, int n, const char *const *ad, int n_ad, double *ref) {
    float *logits = malloc(sizeof *logits * (size_t)n * V);
    CHECK(lorajit_set_adapter(e, ad, NULL, n_ad) == LORAJIT_OK, "set_adapter: %s", lorajit_errmsg(e));
    CHECK(lorajit_forward(e, prompt, n, logits) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
    for (int p = 0; p < n; p++) {
        const float *row = logits + (size_t)p * V;
        double max = row[0], sum = 0;
        for (int v = 1; v < V; v++) max = row[v] > max ? row[v] : max;
        for (int v = 0; v < V; v++) sum += exp((double)row[v] - max);
        for (int v = 0; v < V; v++) ref[(size_t)p * V + v] = (double)row[v] - max - log(sum);
    }
    free(logits);
}

/* The k-th largest of row[0..V) (a full sort; the reference for the top ids). */
static double kth_largest(const double *row, int k) {
    double sorted[V];
    memcpy(sorted, row, sizeof sorted);
    for (int i = 0; i <= k; i++) /* selection of the first k + 1 */
        for (int j = i + 1; j < V; j++)
            if (sorted[j] > sorted[i]) {
                double t = sorted[i];
                sorted[i] = sorted[j], sorted[j] = t;
            }
    return sorted[k];
}

/* g's entries against ref ([N_PROMPT, V] rows: row p predicts prompt[p + 1]). */
static void check_against(const plp_got *g, const int32_t *prompt, const double *ref, const char *label) {
    CHECK(g->calls == 1 && g->n == N_PROMPT - 1 && g->top_n == TOP_N, "%s: on_prompt calls %d, n %d, top_n %d",
          label, g->calls, g->n, g->top_n);
    double worst = 0;
    bool sorted = true, tops = true;
    for (int k = 0; k < g->n; k++) {
        const double *row = ref + (size_t)k * V;
        double d = fabs(g->lp[k] - row[prompt[k + 1]]);
        worst = d > worst ? d : worst;
        for (int j = 0; j < TOP_N; j++) {
            int32_t id = g->top_id[k * TOP_N + j];
            float lp = g->top_lp[k * TOP_N + j];
            if (id < 0 || id >= V || fabs(lp - row[id]) > 1e-4 || fabs(lp - kth_largest(row, j)) > 1e-4) tops = false;
            if (j && lp > g->top_lp[k * TOP_N + j - 1]) sorted = false;
        }
        if (g->lp[k] > g->top_lp[k * TOP_N] + 1e-6) sorted = false; /* top-1 >= the chosen */
    }
    CHECK(worst < 1e-4, "%s: prompt logprobs within 1e-4 of log-softmax(lorajit_forward) (worst %.3g)", label, worst);
    CHECK(tops, "%s: top ids are the reference row's %d largest, with their logprobs", label, TOP_N);
    CHECK(sorted, "%s: top logprobs most likely first, top-1 >= the prompt token's", label);
}

/* Runs one request with prompt_logprobs (plp) or without through a scheduler of
 * token budget `budget` on e; when busy, a decoding request shares its steps. */
static lorajit_finish plp_run(lorajit_engine *e, const int32_t *prompt, int n, const char *const *ad, int n_ad,
                              bool plp, int budget, bool busy, plp_got *g, int32_t *ids, int *n_ids) {
    lorajit_sched_options o = {.token_budget = budget, .min_chunk = budget};
    lorajit_sched *s = NULL;
    int32_t other[9];
    fill(other, 9, 5);
    lorajit_sched_request ro = {.prompt = other, .n_prompt = 9, .max_new = 20};
    lorajit_sched_request r = {.prompt = prompt, .n_prompt = n, .adapters = ad, .n_adapters = n_ad,
                               .max_new = MAX_NEW, .on_token = got_token, .user = g, .prompt_logprobs = plp,
                               .prompt_top_n = TOP_N, .on_prompt = got_prompt};
    int64_t id, id_other = 0;
    lorajit_sched_result res = {0}, res_other = {0};
    bool ok = lorajit_sched_open(e, &o, &s) == LORAJIT_OK;
    if (ok && busy) { /* the other one is decoding when this one starts */
        ok = lorajit_sched_submit(s, &ro, &id_other) == LORAJIT_OK;
        for (int i = 0; ok && i < 6; i++) ok = lorajit_sched_step(s, NULL) == LORAJIT_OK;
    }
    ok = ok && lorajit_sched_submit(s, &r, &id) == LORAJIT_OK && lorajit_sched_run_until_idle(s) == LORAJIT_OK &&
         lorajit_sched_take(s, id, &res) == LORAJIT_OK &&
         (!busy || lorajit_sched_take(s, id_other, &res_other) == LORAJIT_OK);
    CHECK(ok, "plp_run (budget %d%s): %s", budget, busy ? ", busy" : "", lorajit_sched_errmsg(s));
    *n_ids = res.n_tokens;
    if (ok && res.n_tokens) memcpy(ids, res.tokens, sizeof *ids * (size_t)res.n_tokens);
    lorajit_free(res.tokens), lorajit_free(res.token_ms);
    lorajit_free(res_other.tokens), lorajit_free(res_other.token_ms);
    lorajit_sched_free(s);
    return ok ? res.finish : LORAJIT_FINISH_ERROR;
}

static void test_values(lorajit_engine *e, const char *const *ad, int n_ad, const char *label) {
    int32_t prompt[N_PROMPT], ids0[MAX_NEW], ids[MAX_NEW];
    fill(prompt, N_PROMPT, 2);
    double *ref = malloc(sizeof *ref * N_PROMPT * V);
    want(e, prompt, N_PROMPT, ad, n_ad, ref);
    lorajit_set_adapter(e, NULL, NULL, 0);
    plp_got none = {0}, one = {0};
    int n0, n1;
    plp_run(e, prompt, N_PROMPT, ad, n_ad, false, 0, false, &none, ids0, &n0);
    CHECK(none.calls == 0 && n0 == MAX_NEW, "%s: without the option on_prompt is never called (%d calls)", label,
          none.calls);
    plp_run(e, prompt, N_PROMPT, ad, n_ad, true, 0, false, &one, ids, &n1);
    char what[96];
    snprintf(what, sizeof what, "%s, one chunk", label);
    check_against(&one, prompt, ref, what);
    CHECK(one.tokens_before == 0, "%s: on_prompt before the first token", what);
    CHECK(n1 == n0 && !memcmp(ids, ids0, sizeof *ids * (size_t)n0), "%s: same ids as without prompt_logprobs", what);
    static const int budgets[] = {3, 4, 8};
    for (int b = 0; b < 6; b++) {
        bool busy = b >= 3;
        plp_got g = {0};
        int n;
        plp_run(e, prompt, N_PROMPT, ad, n_ad, true, budgets[b % 3], busy, &g, ids, &n);
        snprintf(what, sizeof what, "%s, chunks of %d%s", label, budgets[b % 3], busy ? " beside a decode" : "");
        check_against(&g, prompt, ref, what);
        CHECK(!memcmp(g.lp, one.lp, sizeof g.lp) && !memcmp(g.top_id, one.top_id, sizeof g.top_id) &&
                  !memcmp(g.top_lp, one.top_lp, sizeof g.top_lp),
              "%s: the same bits as one chunk", what);
        CHECK(n == n0 && !memcmp(ids, ids0, sizeof *ids * (size_t)n0), "%s: same ids", what);
    }
    free(ref);
}

static void test_edges(lorajit_engine *e) {
    int32_t prompt[N_PROMPT], ids[MAX_NEW];
    fill(prompt, N_PROMPT, 4);
    plp_got g = {0};
    int n;
    plp_run(e, prompt, 1, NULL, 0, true, 0, false, &g, ids, &n);
    CHECK(g.calls == 1 && g.n == 0 && n == MAX_NEW, "one-token prompt: on_prompt with 0 entries (%d calls, n %d)",
          g.calls, g.n);
    plp_got stop = {.cancel = 1};
    lorajit_finish f = plp_run(e, prompt, N_PROMPT, NULL, 0, true, 4, false, &stop, ids, &n);
    CHECK(f == LORAJIT_FINISH_CANCELLED && n == 0 && stop.tokens == 0,
          "on_prompt non-zero cancels before any token (finish %s, %d ids)", lorajit_finish_str(f), n);
    lorajit_sched *s = NULL;
    lorajit_sched_request bad = {.prompt = prompt, .n_prompt = 4, .max_new = 1, .prompt_logprobs = 1,
                                 .prompt_top_n = LORAJIT_MAX_TOP_LOGPROBS + 1};
    int64_t id;
    CHECK(lorajit_sched_open(e, NULL, &s) == LORAJIT_OK && lorajit_sched_submit(s, &bad, &id) == LORAJIT_E_ARG &&
              strstr(lorajit_sched_errmsg(s), "prompt_top_n"),
          "prompt_top_n 21 fails at submit, naming the field: %s", lorajit_sched_errmsg(s));
    lorajit_sched_free(s);
}

static void test_logprobs_fn(void) {
    float row[V];
    for (int v = 0; v < V; v++) row[v] = (float)sin(v * 0.7) * 3.0f;
    row[17] = row[200] = 4.0f; /* a tie: the lower id first */
    float lp, top_lp[3];
    int32_t top_id[3];
    CHECK(lorajit_logprobs(row, V, 5, 3, &lp, top_id, top_lp) == LORAJIT_OK, "lorajit_logprobs");
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)row[v] - 4.0);
    CHECK(fabs(lp - (row[5] - 4.0 - log(sum))) < 1e-5 && top_id[0] == 17 && top_id[1] == 200 &&
              fabs(top_lp[0] - (0 - log(sum))) < 1e-5 && top_lp[1] == top_lp[0] && top_lp[2] < top_lp[1],
          "lorajit_logprobs: value, ties lower id first (%d %d %d)", top_id[0], top_id[1], top_id[2]);
    CHECK(lorajit_logprobs(row, V, V, 0, &lp, NULL, NULL) == LORAJIT_E_ARG &&
              lorajit_logprobs(row, V, 0, LORAJIT_MAX_TOP_LOGPROBS + 1, &lp, top_id, top_lp) == LORAJIT_E_ARG &&
              lorajit_logprobs(row, V, 0, 2, &lp, NULL, top_lp) == LORAJIT_E_ARG &&
              lorajit_logprobs(NULL, V, 0, 0, &lp, NULL, NULL) == LORAJIT_E_ARG,
          "lorajit_logprobs: bad arguments fail");
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    check_enter_tests_dir();
    test_logprobs_fn();
    lorajit_engine *e = open_engine(4, 4);
    if (e) {
        load3(e);
        static const char *const all[1] = {"a_all"}, *const two[2] = {"a_qv", "a_mlp"};
        test_values(e, NULL, 0, "base");
        test_values(e, all, 1, "a_all");
        test_values(e, two, 2, "a_qv + a_mlp");
        test_edges(e);
        lorajit_engine_free(e);
    }
    return check_summary("test_sched_plp");
}
