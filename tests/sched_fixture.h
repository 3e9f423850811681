/* sched_fixture.h — what test_step.c and test_sched.c share: the conformance tiny
 * model opened with a number of slots and sequences, its three PEFT adapters loaded,
 * prompts of known ids, and a log of which request each token went to. Include after check.h and lorajit.h. */
#ifndef LORAJIT_SCHED_FIXTURE_H
#define LORAJIT_SCHED_FIXTURE_H

#define MODEL "conformance/models/llama-tiny"
#define ADS "conformance/adapters/llama-tiny"
#define V 256 /* its vocabulary */

static inline lorajit_engine *open_engine(int slots, int max_batch) {
    lorajit_options o = {.max_adapters = slots, .max_rank = 8, .max_batch = max_batch, .max_seq_len = 128};
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, MODEL, &o);
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    if (st) lorajit_engine_free(e);
    return st ? NULL : e;
}

static inline void load3(lorajit_engine *e) {
    static const char *const n[3] = {"a_qv", "a_all", "a_mlp"};
    for (int i = 0; i < 3; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s", ADS, n[i]);
        CHECK(lorajit_load_adapter(e, n[i], dir) == LORAJIT_OK, "load %s: %s", dir, lorajit_errmsg(e));
    }
}

/* An on_token callback's log: the request id of each token, in the order made. */
typedef struct token_log {
    int64_t ids[256];
    int n;
} token_log;
static inline int log_token(void *user, int64_t id, int32_t t) {
    (void)t;
    token_log *l = user;
    if (l->n < 256) l->ids[l->n++] = id;
    return 0;
}

static inline void fill(int32_t *t, int n, int salt) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)((i * 37 + 11 + salt * 53) % V);
}

#endif /* LORAJIT_SCHED_FIXTURE_H */
