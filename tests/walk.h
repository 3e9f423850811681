/* walk.h — a random walk of adapter operations on one compiled engine, checked
 * against an engine rebuilt from scratch (shared by test_compile_once and test_soak).
 *
 * walk_open compiles engines A and B (conformance tiny model, N_SLOTS slots), makes a
 * pool of adapter folders (the three conformance adapters, a copy, scaled copies under
 * /tmp) and reads the s7 conformance logits. walk_step applies one seeded random load,
 * hotswap, set, enable, disable or delete to A, updates the expected state and checks
 * the status (E_FULL, E_EXISTS, E_NOT_FOUND exactly when due). walk_checkpoint
 * compares A's stats and logits bit for bit with B rebuilt to the same state, and with
 * the conformance .bin where the state is one of its cases. Run from tests/. */
#ifndef LORAJIT_WALK_H
#define LORAJIT_WALK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"

#define TINY_MODEL "conformance/models/llama-tiny"
#define TINY_ADAPTERS "conformance/adapters/llama-tiny"
#define N_SLOTS 4
#define N_NAMES 6     /* more names than slots, so E_FULL happens */
#define N_DIRS 7      /* adapter folders in the pool */
#define N_PROMPT 7    /* the s7 cases' prompt */
#define TINY_VOCAB 256
#define WALK_FN static __attribute__((unused))

/* ---- files ---- */

/* out = dir/file; -1 when it does not fit. */
WALK_FN int join_path(char *out, size_t cap, const char *dir, const char *file) {
    return snprintf(out, cap, "%s/%s", dir, file) < (int)cap ? 0 : -1;
}

/* ---- the pool of adapter folders ---- */

typedef struct pool_dir {
    char path[256];
    const char *conf; /* conformance case name of its logits ("a_qv"...), NULL if none */
    int temp;         /* written by this test (removed at the end) */
} pool_dir;

/* Writes a copy of conformance adapter src into a new temp folder, with every F32
 * value of its safetensors multiplied by factor (so B·A scales by factor²). */
WALK_FN int make_scaled_copy(pool_dir *d, const char *src, float factor) {
    char path[512];
    long n_cfg, n_st;
    snprintf(d->path, sizeof d->path, "/tmp/lorajit_walk_XXXXXX");
    if (!mkdtemp(d->path)) return -1;
    d->temp = 1;
    snprintf(path, sizeof path, "%s/%s/adapter_config.json", TINY_ADAPTERS, src);
    char *cfg = check_read_file(path, &n_cfg);
    snprintf(path, sizeof path, "%s/%s/adapter_model.safetensors", TINY_ADAPTERS, src);
    char *st = check_read_file(path, &n_st);
    int rc = -1;
    if (!cfg || !st || n_st < 8) goto done;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)st[i];
    if (hlen > (uint64_t)n_st - 8) goto done;
    char saved = st[8 + hlen];
    st[8 + hlen] = '\0';
    int all_f32 = !strstr(st + 8, "F16") && !strstr(st + 8, "BF16") && !strstr(st + 8, "F64");
    st[8 + hlen] = saved;
    if (!all_f32) goto done; /* the scaling below assumes every tensor is F32 */
    for (long off = 8 + (long)hlen; off + 4 <= n_st; off += 4) {
        float v;
        memcpy(&v, st + off, 4);
        v *= factor;
        memcpy(st + off, &v, 4);
    }
    if (join_path(path, sizeof path, d->path, "adapter_config.json") || check_write_file(path, cfg, n_cfg)) goto done;
    if (join_path(path, sizeof path, d->path, "adapter_model.safetensors")) goto done;
    rc = check_write_file(path, st, n_st);
done:
    free(cfg);
    free(st);
    return rc;
}

WALK_FN void remove_dir(const pool_dir *d) {
    char path[512];
    if (!d->temp) return;
    if (!join_path(path, sizeof path, d->path, "adapter_config.json")) remove(path);
    if (!join_path(path, sizeof path, d->path, "adapter_model.safetensors")) remove(path);
    rmdir(d->path);
}

/* ---- the expected state ---- */

typedef struct model {
    int dir[N_NAMES]; /* pool folder held by each name; -1 = not loaded */
    int n_active;
    int active[N_SLOTS]; /* name indices, in set order */
    float weight[N_SLOTS];
    int enabled;
} model;

static const char *const names[N_NAMES] = {"n0", "n1", "n2", "n3", "n4", "n5"};

WALK_FN int n_loaded(const model *m) {
    int k = 0;
    for (int i = 0; i < N_NAMES; i++) k += m->dir[i] >= 0;
    return k;
}

static uint64_t rng_state;
WALK_FN uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
WALK_FN int rng_below(int n) { return (int)(rng_next() % (uint64_t)n); }

/* A name: with probability pct_loaded % one that is loaded (when any is), else any. */
WALK_FN int pick_name(const model *m, int pct_loaded) {
    int loaded[N_NAMES], k = 0;
    for (int i = 0; i < N_NAMES; i++)
        if (m->dir[i] >= 0) loaded[k++] = i;
    if (k && rng_below(100) < pct_loaded) return loaded[rng_below(k)];
    return rng_below(N_NAMES);
}

/* Recreates m on engine b from scratch: delete all, load the active names, set, disable. */
WALK_FN int rebuild(lorajit_engine *b, const model *m, const pool_dir *dirs, char *why, size_t whylen) {
    const char *listed[N_SLOTS * 2];
    char copy[N_SLOTS * 2][64];
    int n = lorajit_list_adapters(b, listed, N_SLOTS * 2);
    for (int i = 0; i < n; i++) snprintf(copy[i], sizeof copy[i], "%s", listed[i]);
    for (int i = 0; i < n; i++)
        if (lorajit_delete_adapter(b, copy[i]) != LORAJIT_OK) goto fail;
    if (lorajit_enable_adapters(b) != LORAJIT_OK) goto fail;
    const char *act[N_SLOTS];
    for (int i = 0; i < m->n_active; i++) {
        act[i] = names[m->active[i]];
        if (lorajit_load_adapter(b, act[i], dirs[m->dir[m->active[i]]].path) != LORAJIT_OK) goto fail;
    }
    if (lorajit_set_adapter(b, act, m->weight, m->n_active) != LORAJIT_OK) goto fail;
    if (!m->enabled && lorajit_disable_adapters(b) != LORAJIT_OK) goto fail;
    return 0;
fail:
    snprintf(why, whylen, "%s", lorajit_errmsg(b));
    return -1;
}

WALK_FN void describe(const model *m, char *out, size_t cap) {
    int len = snprintf(out, cap, "%s active [", m->enabled ? "enabled" : "disabled");
    for (int i = 0; i < m->n_active && len < (int)cap; i++)
        len += snprintf(out + len, cap - len, "%s%s:%g", i ? "," : "", names[m->active[i]], m->weight[i]);
    if (len < (int)cap) snprintf(out + len, cap - len, "]");
}

/* ---- conformance references (s7 cases) ---- */

typedef struct refs {
    int32_t tokens[N_PROMPT];
    const char *names[4];   /* "base", "a_qv", "a_all", "a_mlp" */
    float *logits[4];       /* [N_PROMPT, TINY_VOCAB] each */
} refs;

WALK_FN int load_refs(refs *r) {
    char *text = check_read_file("conformance/expected/index.json", NULL);
    cJSON *index = text ? cJSON_Parse(text) : NULL;
    free(text);
    static const char *const which[4] = {"base", "a_qv", "a_all", "a_mlp"};
    int found = 0, have_tokens = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(index, "cases")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "case"));
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "file"));
        for (int k = 0; k < 4 && name && file; k++) {
            char want[64], path[512];
            snprintf(want, sizeof want, "llama-tiny__%s__s7", which[k]);
            if (strcmp(name, want)) continue;
            const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens");
            if (k == 0 && cJSON_GetArraySize(toks) == N_PROMPT) {
                for (int i = 0; i < N_PROMPT; i++)
                    r->tokens[i] = (int32_t)cJSON_GetArrayItem(toks, i)->valuedouble;
                have_tokens = 1;
            }
            long len = 0;
            snprintf(path, sizeof path, "conformance/expected/%s", file);
            r->names[k] = which[k];
            free(r->logits[k]);
            r->logits[k] = (float *)check_read_file(path, &len);
            if (r->logits[k] && len == (long)sizeof(float) * N_PROMPT * TINY_VOCAB) found++;
        }
    }
    cJSON_Delete(index);
    return found == 4 && have_tokens ? 0 : -1;
}

WALK_FN const float *ref_for(const refs *r, const char *conf) {
    for (int k = 0; k < 4; k++)
        if (r->names[k] && !strcmp(r->names[k], conf)) return r->logits[k];
    return NULL;
}

/* ---- the walk ---- */

/* Opens the tiny model with N_SLOTS slots. Caller owns the result; free with
 * lorajit_engine_free(). NULL (after a failed CHECK) when it does not open. */
WALK_FN lorajit_engine *open_tiny(void) {
    lorajit_options opts = {.max_adapters = N_SLOTS};
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, TINY_MODEL, &opts);
    CHECK(s == LORAJIT_OK, "open %s: %s", TINY_MODEL, e ? lorajit_errmsg(e) : lorajit_status_str(s));
    if (s != LORAJIT_OK) { lorajit_engine_free(e); return NULL; }
    return e;
}

typedef struct walk {
    lorajit_engine *a, *b;  /* owned: the engine under test, the one rebuilt at checkpoints */
    model m;
    pool_dir dirs[N_DIRS];
    refs r;
    long n_ok, n_full, n_exists, n_not_found;
    long checkpoints, n_multi, bit_mismatch, n_conf;
} walk;

/* cd to tests/ when run from the repository root. */
WALK_FN void walk_chdir(void) {
    struct stat sb;
    if (stat("conformance/expected/index.json", &sb) != 0 && stat("tests/conformance", &sb) == 0)
        CHECK(chdir("tests") == 0, "chdir tests");
}

/* Seeds the walk, writes the pool, reads the references, opens A and B. 0 or -1. */
WALK_FN int walk_open(walk *w, uint64_t seed) {
    memset(w, 0, sizeof *w);
    rng_state = seed;
    w->m.enabled = 1;
    for (int i = 0; i < N_NAMES; i++) w->m.dir[i] = -1;
    CHECK(load_refs(&w->r) == 0, "cannot read the s7 conformance cases");
    static const char *const src[N_DIRS] = {"a_qv", "a_all", "a_mlp", "a_qv", "a_all", "a_mlp", "a_qv"};
    static const char *const conf[N_DIRS] = {"a_qv", "a_all", "a_mlp", "a_qv", NULL, NULL, NULL};
    static const float factor[N_DIRS] = {1, 1, 1, 1, 0.5f, 1.5f, -0.75f};
    int setup_ok = 1;
    for (int d = 0; d < N_DIRS; d++) {
        w->dirs[d].conf = conf[d];
        if (d < 3) snprintf(w->dirs[d].path, sizeof w->dirs[d].path, "%s/%s", TINY_ADAPTERS, src[d]);
        else setup_ok &= make_scaled_copy(&w->dirs[d], src[d], factor[d]) == 0;
    }
    CHECK(setup_ok, "cannot write the extra adapters under /tmp");
    w->a = open_tiny();
    w->b = open_tiny();
    if (!w->a || !w->b || !setup_ok || !w->r.logits[3]) return -1;
    int vocab = lorajit_vocab_size(w->a);
    CHECK(vocab == TINY_VOCAB, "vocab %d, want %d", vocab, TINY_VOCAB);
    return vocab == TINY_VOCAB ? 0 : -1;
}

WALK_FN void walk_close(walk *w) {
    lorajit_engine_free(w->a);
    lorajit_engine_free(w->b);
    for (int d = 0; d < N_DIRS; d++) remove_dir(&w->dirs[d]);
    for (int k = 0; k < 4; k++) free(w->r.logits[k]);
    memset(w, 0, sizeof *w);
}

/* One random load / hotswap / set / enable / disable / delete on A (the mix of
 * test_compile_once). Returns 0, or -1 when A's status was not the expected one
 * (the model no longer describes A: stop rather than report noise). */
WALK_FN int walk_step(walk *w, long step) {
    model *m = &w->m;
    int op = rng_below(100), name = -1, d = -1;
    lorajit_status got, want = LORAJIT_OK, alt = LORAJIT_OK;
    char what[160];
    if (op < 25) { /* load */
        name = pick_name(m, 0);
        d = rng_below(N_DIRS);
        snprintf(what, sizeof what, "load %s %s", names[name], w->dirs[d].path);
        got = lorajit_load_adapter(w->a, names[name], w->dirs[d].path);
        if (m->dir[name] >= 0) want = alt = LORAJIT_E_EXISTS;
        else if (n_loaded(m) == N_SLOTS) want = alt = LORAJIT_E_FULL;
        if (m->dir[name] >= 0 && n_loaded(m) == N_SLOTS) alt = LORAJIT_E_FULL; /* both apply */
        if (got == LORAJIT_OK && want == LORAJIT_OK) m->dir[name] = d;
    } else if (op < 37) { /* hotswap */
        name = pick_name(m, 80);
        d = rng_below(N_DIRS);
        snprintf(what, sizeof what, "hotswap %s %s", names[name], w->dirs[d].path);
        got = lorajit_hotswap_adapter(w->a, names[name], w->dirs[d].path);
        if (m->dir[name] < 0) want = alt = LORAJIT_E_NOT_FOUND;
        else if (got == LORAJIT_OK) m->dir[name] = d;
    } else if (op < 67) { /* set */
        int order[N_NAMES], k = 0, n_set, missing = 0;
        int from_loaded = rng_below(100) < 85;
        for (int i = 0; i < N_NAMES; i++)
            if (!from_loaded || m->dir[i] >= 0) order[k++] = i;
        for (int i = k - 1; i > 0; i--) { int j = rng_below(i + 1), t = order[i]; order[i] = order[j]; order[j] = t; }
        n_set = (k && rng_below(10)) ? 1 + rng_below(k < 3 ? k : 3) : 0;
        static const float wpool[3] = {1.0f, 0.5f, -1.0f};
        const char *set_names[N_SLOTS];
        float set_w[N_SLOTS];
        int len = snprintf(what, sizeof what, "set");
        for (int i = 0; i < n_set; i++) {
            set_names[i] = names[order[i]];
            set_w[i] = wpool[rng_below(3)];
            missing |= m->dir[order[i]] < 0;
            len += snprintf(what + len, sizeof what - len, " %s:%g", set_names[i], set_w[i]);
        }
        got = lorajit_set_adapter(w->a, set_names, set_w, n_set);
        if (missing) want = alt = LORAJIT_E_NOT_FOUND;
        else if (got == LORAJIT_OK) {
            m->n_active = n_set;
            for (int i = 0; i < n_set; i++) { m->active[i] = order[i]; m->weight[i] = set_w[i]; }
        }
    } else if (op < 75) {
        snprintf(what, sizeof what, "enable");
        got = lorajit_enable_adapters(w->a);
        m->enabled = 1;
    } else if (op < 79) {
        snprintf(what, sizeof what, "disable");
        got = lorajit_disable_adapters(w->a);
        m->enabled = 0;
    } else { /* delete */
        name = pick_name(m, 50);
        snprintf(what, sizeof what, "delete %s", names[name]);
        got = lorajit_delete_adapter(w->a, names[name]);
        if (m->dir[name] < 0) want = alt = LORAJIT_E_NOT_FOUND;
        else if (got == LORAJIT_OK) {
            m->dir[name] = -1;
            int k = 0;
            for (int i = 0; i < m->n_active; i++)
                if (m->active[i] != name) { m->active[k] = m->active[i]; m->weight[k++] = m->weight[i]; }
            m->n_active = k;
        }
    }
    w->n_ok += got == LORAJIT_OK;
    w->n_full += got == LORAJIT_E_FULL;
    w->n_exists += got == LORAJIT_E_EXISTS;
    w->n_not_found += got == LORAJIT_E_NOT_FOUND;
    if (got != want && got != alt) {
        CHECK(0, "step %ld: %s: got %s (%s), want %s", step, what, lorajit_status_str(got),
              lorajit_errmsg(w->a), lorajit_status_str(want));
        return -1;
    }
    return 0;
}

/* Checkpoint: A's stats, A's logits bit for bit against B rebuilt from scratch, and
 * against the conformance logits where the state is one of their cases. Returns 0,
 * or -1 when a forward or the rebuild failed (the walk cannot go on). */
WALK_FN int walk_checkpoint(walk *w, long step) {
    const model *m = &w->m;
    static float la[N_PROMPT * TINY_VOCAB], lb[N_PROMPT * TINY_VOCAB];
    w->checkpoints++;
    w->n_multi += m->enabled && m->n_active >= 2;
    char state[256], why[1200] = "";
    describe(m, state, sizeof state);
    lorajit_stats st;
    lorajit_get_stats(w->a, &st);
    CHECK(st.adapters == n_loaded(m) && st.enabled == m->enabled && st.active == (m->enabled ? m->n_active : 0),
          "step %ld (%s): stats adapters %lld active %lld enabled %d, want %d %d %d", step, state,
          (long long)st.adapters, (long long)st.active, st.enabled, n_loaded(m), m->enabled ? m->n_active : 0,
          m->enabled);
    if (lorajit_forward(w->a, w->r.tokens, N_PROMPT, la) != LORAJIT_OK) {
        CHECK(0, "step %ld: forward on A: %s", step, lorajit_errmsg(w->a));
        return -1;
    }
    if (rebuild(w->b, m, w->dirs, why, sizeof why) || lorajit_forward(w->b, w->r.tokens, N_PROMPT, lb) != LORAJIT_OK) {
        CHECK(0, "step %ld (%s): rebuilding on B: %s %s", step, state, why, lorajit_errmsg(w->b));
        return -1;
    }
    if (memcmp(la, lb, sizeof la)) {
        long worst;
        double ratio = check_close_ratio(la, lb, N_PROMPT * TINY_VOCAB, 2e-4, 2e-4, &worst);
        CHECK(0, "step %ld (%s): A and rebuilt B differ (worst [%ld] %.9g vs %.9g, %.3g x tolerance)", step,
              state, worst, la[worst], lb[worst], ratio);
        w->bit_mismatch++;
    } else {
        CHECK(1, "bit-identical");
    }
    const float *want_logits = NULL;
    if (!m->enabled || m->n_active == 0) want_logits = ref_for(&w->r, "base");
    else if (m->n_active == 1 && m->weight[0] == 1.0f && w->dirs[m->dir[m->active[0]]].conf)
        want_logits = ref_for(&w->r, w->dirs[m->dir[m->active[0]]].conf);
    if (want_logits) {
        long worst;
        double ratio = check_close_ratio(la, want_logits, N_PROMPT * TINY_VOCAB, 2e-4, 2e-4, &worst);
        CHECK(ratio <= 1.0, "step %ld (%s): %.3g x tolerance from the conformance logits at [%ld]", step,
              state, ratio, worst);
        w->n_conf++;
    }
    return 0;
}

#endif /* LORAJIT_WALK_H */
