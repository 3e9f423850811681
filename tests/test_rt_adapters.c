/* test_rt_adapters.c — peft.c, slots.c and adapters.c on the fixture's tiny layout
 * (rt_adapters_fixture.h): the three PEFT-written conformance adapters read and
 * checked against an independent safetensors reader and committed into a slot;
 * slot padding and zeroing (rank shrink, clear, hotswap path); and the registry
 * verbs (load, set, enable, hotswap, delete, E_EXISTS / E_NOT_FOUND / E_FULL with
 * slots and registry unchanged). Config semantics, malformed adapters and
 * allocation failures: test_rt_peft.c. */
#include <cjson/cJSON.h>

#include "rt_adapters_fixture.h"

/* ---- independent safetensors reader (F32 only) for the conformance files ---- */
static bool ref_tensor(const char *path, const char *name, float *out, size_t cap, int64_t shape[2]) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    bool ok = fread(buf, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, hlen);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    ok = ok && t;
    if (ok) {
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        shape[0] = (int64_t)cJSON_GetArrayItem(sh, 0)->valuedouble;
        shape[1] = (int64_t)cJSON_GetArrayItem(sh, 1)->valuedouble;
        size_t begin = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        size_t n = (size_t)(shape[0] * shape[1]);
        ok = n <= cap;
        if (ok) memcpy(out, buf + 8 + hlen + begin, n * sizeof(float));
    }
    cJSON_Delete(h);
    free(buf);
    return ok;
}

/* ---- conformance adapters ---- */
static void test_conformance(void) {
    env e;
    env_new(&e, 0x7f);
    static const struct { const char *name; int n, rank; float scale; unsigned mods; } cases[] = {
        {"a_qv", 4, 8, 2.0f, 1u << LJ_MOD_Q | 1u << LJ_MOD_V},
        {"a_all", 14, 4, 2.0f, 0x7f},
        {"a_mlp", 6, 2, 2.0f, 1u << LJ_MOD_GATE | 1u << LJ_MOD_UP | 1u << LJ_MOD_DOWN},
    };
    static float ref[160 * 16];
    for (int c = 0; c < 3; c++) {
        lj_err err = {0};
        peft_adapter *ad = NULL;
        char dir[256], st_path[300];
        snprintf(dir, sizeof dir, CONF "%s", cases[c].name);
        snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
        CHECK(peft_adapter_read(dir, e.L, &ad, &err) == LORAJIT_OK, "%s: %s", dir, err.msg);
        if (!ad) continue;
        CHECK(ad->n == cases[c].n, "%s: %d sites", dir, ad->n);
        CHECK(ad->owned == NULL, "%s: F32 aligned data is borrowed", dir);
        size_t bytes = 0;
        for (int i = 0; i < ad->n; i++) {
            const peft_site_w *w = &ad->w[i];
            const lj_site_desc *sd = &e.L->sites[w->site];
            CHECK(i == 0 || w->site > ad->w[i - 1].site, "ordered by site");
            CHECK(w->rank == cases[c].rank && w->scale == cases[c].scale, "%s site %d: rank %d scale %g",
                  dir, w->site, w->rank, w->scale);
            CHECK(cases[c].mods & (1u << sd->module), "%s: module %d", dir, sd->module);
            bytes += (size_t)w->rank * (sd->in + sd->out) * sizeof(float);
            /* values against an independent reader */
            int64_t shape[2] = {0, 0};
            for (int b = 0; b < 2; b++) {
                const char *nm = lora_name(sd->layer, sd->module, b ? 'B' : 'A');
                const float *got = b ? w->b : w->a;
                CHECK(ref_tensor(st_path, nm, ref, sizeof ref / sizeof ref[0], shape), "ref %s", nm);
                CHECK(shape[0] * shape[1] == (int64_t)w->rank * (b ? sd->out : sd->in), "%s shape", nm);
                CHECK(memcmp(got, ref, (size_t)(shape[0] * shape[1]) * sizeof(float)) == 0,
                      "%s values differ", nm);
            }
        }
        CHECK(ad->bytes == bytes, "%s: bytes %zu vs %zu", dir, ad->bytes, bytes);
        /* commit into slot 1 and read one A and one B element back */
        CHECK(lj_slots_write(e.s, 1, ad, &err) == LORAJIT_OK, "write ad: %s", err.msg);
        const peft_site_w *w = &ad->w[ad->n - 1];
        const lj_site_desc *sd = &e.L->sites[w->site];
        const lj_lora_site *ls = &e.s->sites[w->site];
        int r = w->rank;
        CHECK(ls->rank[1] == r && ls->scale[1] == w->scale, "slot rank/scale");
        CHECK(((const float *)ls->a)[1 * R_MAX * sd->in + (r - 1) * sd->in + 5] == w->a[(r - 1) * sd->in + 5], "slot A");
        /* B rank-major: column j of the file's [out, r] is row j of the slot's [r_max, out] */
        CHECK(((const float *)ls->b)[1 * R_MAX * sd->out + (r - 1) * sd->out + 7] == w->b[7 * r + (r - 1)], "slot B");
        int64_t b_off = 0; /* every element: the transpose's whole tiles and its edges */
        for (int64_t o = 0; o < sd->out && b_off == 0; o++)
            for (int j = 0; j < r; j++)
                if (((const float *)ls->b)[1 * R_MAX * sd->out + j * sd->out + o] != w->b[o * r + j]) b_off = o * r + j + 1;
        CHECK(b_off == 0, "%s: slot B element %lld (out %lld x rank %d) is not the file's", dir, (long long)b_off - 1,
              (long long)sd->out, r);
        CHECK(((const float *)ls->b)[1 * R_MAX * sd->out + r * sd->out + 7] == 0.0f, "slot B padding");
        CHECK(ls->rank[0] == 0 && ls->rank[2] == 0, "other slots untouched");
        peft_adapter_free(ad);
    }
    env_free(&e);
}

/* ---- slot padding and zeroing ---- */
static bool slot_tail_zero(const env *e, int site, int slot, int from) {
    const lj_site_desc *sd = &e->L->sites[site];
    const lj_lora_site *ls = &e->s->sites[site];
    for (int64_t k = (int64_t)from * sd->in; k < R_MAX * sd->in; k++)
        if (((const float *)ls->a)[slot * R_MAX * sd->in + k] != 0.0f) return false;
    for (int64_t k = (int64_t)from * sd->out; k < R_MAX * sd->out; k++) /* B's rows from.. (rank-major) */
        if (((const float *)ls->b)[slot * R_MAX * sd->out + k] != 0.0f) return false;
    return true;
}

/* tmp/name: a q_proj adapter on layer 0 of rank r (dtype DT_F32, DT_F32_UNALIGNED or
 * DT_BF16) whose value at index at of the data (A then B) is a NaN (none if at < 0). */
static const char *nan_adapter(const char *name, int r, int dtype, int64_t at) {
    adapter_spec sp = {0};
    spec_lora(&sp, 0, LJ_MOD_Q, r);
    const char *dir = write_adapter(name, config_json(r, 2 * r, "[\"q_proj\"]", "\"layers_to_transform\": [0]"),
                                    &sp, dtype);
    char path[700];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (at < 0) return dir;
    FILE *f = fopen(path, "r+b");
    uint64_t hl = 0;
    CHECK(f && fread(&hl, 8, 1, f) == 1, "%s", path);
    if (!f) return dir;
    float nanf_ = __builtin_nanf("");
    uint16_t nan16 = 0x7fc0;
    size_t esz = dtype == DT_BF16 ? 2 : 4;
    fseek(f, (long)(8 + hl + esz * (uint64_t)at), SEEK_SET);
    fwrite(dtype == DT_BF16 ? (void *)&nan16 : (void *)&nanf_, esz, 1, f);
    fclose(f);
    return dir;
}

/* Unchecked (mapped) images with a NaN: the slot write fails as it converts, naming
 * the tensor and element as the separate scan does, and a later write over the
 * part-written slot leaves it exactly as if the failed one had not happened. */
static void test_slots_nan(void) {
    env e;
    env_new(&e, 0x7f);
    lj_err err = {0}, err2 = {0};
    peft_adapter *big = NULL, *r2 = NULL, *bad = NULL;
    adapter_spec sp = {0};
    spec_lora(&sp, 0, LJ_MOD_Q, 2);
    const char *dir = write_adapter("q_r2_ok", config_json(2, 4, "[\"q_proj\"]", "\"layers_to_transform\": [0]"),
                                    &sp, DT_F32);
    CHECK(peft_adapter_read(dir, e.L, &r2, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(peft_adapter_read(CONF "a_qv", e.L, &big, &err) == LORAJIT_OK, "%s", err.msg);
    if (!r2 || !big) goto done;
    int q0 = lj_layout_site(e.L, 0, LJ_MOD_Q);
    static const struct { const char *name; int r, dtype; int64_t at; const char *want; } cases[] = {
        {"nan_a", 2, DT_F32_UNALIGNED, 70, "lora_A.weight' holds NaN at element 70 (row 1, column 6)"},
        {"nan_b_part", 2, DT_F32, 128 + 19, "lora_B.weight' holds NaN at element 19 (row 9, column 1)"},
        {"nan_b_full", R_MAX, DT_BF16, R_MAX * 64 + 16 * 9 + 3, "lora_B.weight' holds NaN at element 147 (row 9, column 3)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *d = nan_adapter(cases[i].name, cases[i].r, cases[i].dtype, cases[i].at);
        CHECK(lj_slots_write(e.s, 1, big, &err) == LORAJIT_OK, "rank 8 first: %s", err.msg);
        CHECK(peft_adapter_read_mapped(d, e.L, &bad, &err) == LORAJIT_OK && bad && bad->unchecked,
              "%s: a mapped image is read unchecked: %s", cases[i].name, err.msg);
        if (!bad) continue;
        CHECK(lj_slots_write(e.s, 1, bad, &err) == LORAJIT_E_FORMAT && strstr(err.msg, cases[i].want) &&
              strstr(err.msg, cases[i].name), "%s: fused check: %s", cases[i].name, err.msg);
        CHECK(lj_slots_check(e.s, bad, &err2) == LORAJIT_E_FORMAT && !strcmp(err.msg, err2.msg),
              "%s: the separate scan says the same: %s", cases[i].name, err2.msg);
        peft_adapter_free(bad);
        bad = NULL;
        CHECK(lj_slots_write(e.s, 1, r2, &err) == LORAJIT_OK, "rank 2 over it: %s", err.msg);
        CHECK(e.s->sites[q0].rank[1] == 2 && slot_tail_zero(&e, q0, 1, 2), "%s: rows/cols 2.. zeroed after",
              cases[i].name);
        CHECK(((const float *)e.s->sites[q0].a)[1 * R_MAX * 64 + 64 + 6] == r2->w[0].a[64 + 6], "%s: A written", cases[i].name);
        CHECK(((const float *)e.s->sites[q0].b)[1 * R_MAX * 64 + 1 * 64 + 9] == r2->w[0].b[9 * 2 + 1], "%s: B written",
              cases[i].name);
        for (int k = 0; k < e.s->n_sites; k++)
            if (k != q0) CHECK(e.s->sites[k].rank[1] == 0 && slot_tail_zero(&e, k, 1, 0), "site %d zero", k);
    }
    { /* a file cut after it was read: the write's pread finds the end (no SIGBUS as a mapping gave) */
        char path[700];
        const char *d = nan_adapter("cut_later", 2, DT_F32, -1); /* no NaN */
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", d);
        CHECK(peft_adapter_read_mapped(d, e.L, &bad, &err) == LORAJIT_OK, "cut_later: %s", err.msg);
        struct stat sb;
        CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size - 40) == 0, "truncate %s", path);
        CHECK(bad && lj_slots_write(e.s, 1, bad, &err) == LORAJIT_E_IO && strstr(err.msg, "ended early") &&
              strstr(err.msg, "cut_later"), "a file cut after the read: %s", err.msg);
        peft_adapter_free(bad);
        CHECK(lj_slots_write(e.s, 1, r2, &err) == LORAJIT_OK && slot_tail_zero(&e, q0, 1, 2), "rank 2 after: %s",
              err.msg);
    }
done:
    peft_adapter_free(big);
    peft_adapter_free(r2);
    env_free(&e);
}

static void test_slots(void) {
    env e;
    env_new(&e, 0x7f);
    lj_err err = {0};
    peft_adapter *qv = NULL, *mlp = NULL, *r2 = NULL;
    adapter_spec sp = {0};
    spec_lora(&sp, 0, LJ_MOD_Q, 2);
    const char *dir = write_adapter("q_r2", config_json(2, 4, "[\"q_proj\"]", "\"layers_to_transform\": [0]"),
                                    &sp, DT_F32);
    CHECK(peft_adapter_read(CONF "a_qv", e.L, &qv, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(peft_adapter_read(CONF "a_mlp", e.L, &mlp, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(peft_adapter_read(dir, e.L, &r2, &err) == LORAJIT_OK, "%s", err.msg);
    if (!qv || !mlp || !r2) goto done;
    int q0 = lj_layout_site(e.L, 0, LJ_MOD_Q), v1 = lj_layout_site(e.L, 1, LJ_MOD_V);
    /* rank 8 then rank 2 written over it (no clear): rows/cols 2..7 zeroed */
    CHECK(lj_slots_write(e.s, 2, qv, &err) == LORAJIT_OK, "write qv: %s", err.msg);
    CHECK(e.s->sites[q0].rank[2] == 8 && !slot_tail_zero(&e, q0, 2, 2), "rank 8 written");
    CHECK(lj_slots_write(e.s, 2, r2, &err) == LORAJIT_OK, "write r2: %s", err.msg);
    CHECK(e.s->sites[q0].rank[2] == 2 && e.s->sites[q0].scale[2] == 2.0f, "rank 2 written");
    CHECK(slot_tail_zero(&e, q0, 2, 2), "rows 2..7 of A and cols 2..7 of B zeroed");
    CHECK(e.s->sites[v1].rank[2] == 0 && slot_tail_zero(&e, v1, 2, 0), "uncovered site zeroed");
    CHECK(((const float *)e.s->sites[q0].a)[2 * R_MAX * 64 + 64 + 3] == r2->w[0].a[64 + 3], "A row 1 copied");
    /* the hotswap path: clear + write into the same physical slot */
    CHECK(lj_slots_write(e.s, 3, qv, &err) == LORAJIT_OK, "write qv: %s", err.msg);
    lj_slots_clear(e.s, 3);
    for (int i = 0; i < e.s->n_sites; i++)
        CHECK(e.s->sites[i].rank[3] == 0 && slot_tail_zero(&e, i, 3, 0), "clear zeroes site %d", i);
    CHECK(lj_slots_write(e.s, 3, qv, &err) == LORAJIT_OK, "write qv: %s", err.msg);
    lj_slots_clear(e.s, 3);
    CHECK(lj_slots_write(e.s, 3, r2, &err) == LORAJIT_OK, "write r2: %s", err.msg);
    CHECK(e.s->sites[q0].rank[3] == 2 && slot_tail_zero(&e, q0, 3, 2), "clear+write rank 2");
    /* mlp over qv: attention sites drop to rank 0 and zero */
    CHECK(lj_slots_write(e.s, 4, qv, &err) == LORAJIT_OK, "write qv: %s", err.msg);
    CHECK(lj_slots_write(e.s, 4, mlp, &err) == LORAJIT_OK, "write mlp: %s", err.msg);
    for (int i = 0; i < e.s->n_sites; i++) {
        bool is_mlp = e.L->sites[i].module >= LJ_MOD_GATE;
        CHECK(e.s->sites[i].rank[4] == (is_mlp ? 2 : 0), "site %d rank", i);
        CHECK(slot_tail_zero(&e, i, 4, is_mlp ? 2 : 0), "site %d zero tail", i);
    }
    CHECK(e.s->sites[q0].rank[0] == 0 && slot_tail_zero(&e, q0, 0, 0), "slot 0 untouched");
done:
    peft_adapter_free(qv);
    peft_adapter_free(mlp);
    peft_adapter_free(r2);
    env_free(&e);
}

/* ---- registry verbs ---- */
static void test_registry(void) {
    env e;
    env_new(&e, 0x7f);
    lj_err err = {0};
    lj_registry *r = &e.r;
    CHECK(lj_adapter_load(r, e.s, e.L, "qv", CONF "a_qv", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(lj_adapter_load(r, e.s, e.L, "all", CONF "a_all", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(lj_registry_count(r) == 2 && r->applied.n == 0, "load does not activate");
    snap before = snap_take(&e);
    CHECK(lj_adapter_load(r, e.s, e.L, "qv", CONF "a_mlp", NULL, &err) == LORAJIT_E_EXISTS &&
          strstr(err.msg, "'qv'"), "E_EXISTS: %s", err.msg);
    const char *bad[] = {"qv", "nope"}, *dup[] = {"qv", "all", "qv"};
    CHECK(lj_adapter_set(r, bad, NULL, 2, &err) == LORAJIT_E_NOT_FOUND && strstr(err.msg, "nope"),
          "unknown name: %s", err.msg);
    CHECK(lj_adapter_set(r, dup, NULL, 3, &err) == LORAJIT_E_ARG && strstr(err.msg, "qv"), "dup: %s", err.msg);
    CHECK(lj_adapter_delete(r, e.s, "nope", &err) == LORAJIT_E_NOT_FOUND, "delete unknown");
    CHECK(lj_adapter_hotswap(r, e.s, e.L, "nope", CONF "a_mlp", NULL, &err) == LORAJIT_E_NOT_FOUND, "hotswap unknown");
    CHECK(snap_same(before, snap_take(&e)), "failed verbs change nothing");
    const char *set[] = {"all", "qv"};
    const float wts[] = {0.5f, 2.0f};
    CHECK(lj_adapter_set(r, set, wts, 2, &err) == LORAJIT_OK, "%s", err.msg);
    int s_qv = lj_registry_find(r, "qv"), s_all = lj_registry_find(r, "all");
    CHECK(r->applied.n == 2 && r->applied.slot[0] == s_all && r->applied.slot[1] == s_qv &&
          r->applied.weight[0] == 0.5f && r->applied.weight[1] == 2.0f, "applied set");
    lj_adapter_enable(r, false);
    CHECK(r->applied.n == 0 && r->n_active == 2, "disabled: nothing applied");
    lj_adapter_enable(r, true);
    CHECK(r->applied.n == 2, "enabled again");
    /* hotswap qv (rank 8 q/v) with a_mlp (rank 2 mlp): spare slot, active set follows */
    CHECK(lj_adapter_hotswap(r, e.s, e.L, "qv", CONF "a_mlp", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    int s_new = lj_registry_find(r, "qv");
    CHECK(s_new != s_qv && s_new != s_all && r->applied.slot[1] == s_new && r->applied.weight[1] == 2.0f,
          "hotswap moved qv %d -> %d", s_qv, s_new);
    CHECK(r->by_slot[s_qv].name == NULL && lj_registry_count(r) == 2, "old slot free");
    for (int i = 0; i < e.s->n_sites; i++) {
        bool is_mlp = e.L->sites[i].module >= LJ_MOD_GATE;
        bool is_qv = e.L->sites[i].module == LJ_MOD_Q || e.L->sites[i].module == LJ_MOD_V;
        /* released, not cleared: a reader of an older snapshot may still be using it */
        CHECK(e.s->sites[i].rank[s_qv] == (is_qv ? 8 : 0), "old slot released untouched");
        CHECK(e.s->sites[i].rank[s_new] == (is_mlp ? 2 : 0), "new slot ranks");
    }
    /* delete leaves the active set; the slot is released (its data stays until rewritten) */
    CHECK(lj_adapter_delete(r, e.s, "all", &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(r->applied.n == 1 && r->applied.slot[0] == s_new && r->applied.weight[0] == 2.0f, "after delete");
    CHECK(e.s->sites[0].rank[s_all] == 4 && lj_registry_find(r, "all") < 0, "deleted");
    CHECK(lj_adapter_set(r, NULL, NULL, 0, &err) == LORAJIT_OK && r->applied.n == 0, "empty set");
    /* full: n_slots adapters resident, the spare stays free; hotswap still works */
    CHECK(lj_adapter_load(r, e.s, e.L, "b", CONF "a_qv", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(lj_adapter_load(r, e.s, e.L, "c", CONF "a_all", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(lj_adapter_load(r, e.s, e.L, "d", CONF "a_mlp", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    /* b, c, d went into released slots: every slot holds exactly its rank, zeros beyond */
    for (int slot = 0; slot < r->n_phys; slot++)
        for (int i = 0; r->by_slot[slot].name && i < e.s->n_sites; i++)
            CHECK(slot_tail_zero(&e, i, slot, e.s->sites[i].rank[slot]), "slot %d site %d: stale rows", slot, i);
    before = snap_take(&e);
    CHECK(lj_adapter_load(r, e.s, e.L, "e", CONF "a_qv", NULL, &err) == LORAJIT_E_FULL && strstr(err.msg, "'e'"),
          "E_FULL: %s", err.msg);
    CHECK(snap_same(before, snap_take(&e)), "E_FULL changes nothing");
    CHECK(lj_adapter_hotswap(r, e.s, e.L, "b", CONF "a_all", NULL, &err) == LORAJIT_OK, "hotswap when full: %s", err.msg);
    CHECK(lj_registry_count(r) == N_SLOTS, "still %d resident", N_SLOTS);
    env_free(&e);
}

/* The B transpose's every path (8 x 8 tiles, 4-column tiles, single columns, rows
 * past the last 8) in f32 and BF16 slots: a q_proj site of out 61 (not a multiple
 * of 8), in-memory adapters of every rank 1..R_MAX with distinct values exact in
 * BF16 slots, each written over the last into slot 1 and checked element by element
 * against B [out, r], rows past r zero. */
static void test_transpose_shapes(void) {
    enum { OUT = 61, IN = 64 };
    static float a[R_MAX * IN], b[OUT * R_MAX];
    for (int k = 0; k < R_MAX * IN; k++) a[k] = (float)(k % 251) / 8.0f;
    for (int k = 0; k < OUT * R_MAX; k++) /* distinct (odd part, power of two), exact in BF16 */
        b[k] = (float)(2 * (k % 64) + 1) * (float)(1 << (k / 64));
    for (int dt = 0; dt < 2; dt++) {
        lj_err err = {0};
        lj_slots *s = NULL;
        lj_layout *L = lj_layout_new();
        L->cfg = (lj_config){.dim = 64, .n_layers = 1};
        L->schema = (lj_schema){.r_max = R_MAX, .target_mask = 1u << LJ_MOD_Q, .n_slots = 2,
                                .lora_dtype = dt ? LJ_DTYPE_BF16 : LJ_DTYPE_F32};
        L->sites = calloc(1, sizeof *L->sites);
        L->sites[L->n_sites++] = (lj_site_desc){0, LJ_MOD_Q, IN, OUT, NULL};
        CHECK(lj_slots_new(L, &s, &err) == LORAJIT_OK, "slots_new: %s", err.msg);
        for (int r = 1; s && r <= R_MAX; r++) {
            peft_site_w w = {.site = 0, .rank = r, .scale = 1.0f, .a = a, .b = b, .a_raw = a, .b_raw = b,
                             .a_name = "A", .b_name = "B", .a_dtype = ST_F32, .b_dtype = ST_F32};
            peft_adapter ad = {.n = 1, .w = &w};
            CHECK(lj_slots_write(s, 1, &ad, &err) == LORAJIT_OK, "rank %d: %s", r, err.msg);
            int bad = -1;
            for (int j = 0; j < R_MAX && bad < 0; j++)
                for (int o = 0; o < OUT && bad < 0; o++) {
                    float want = j < r ? b[o * r + j] : 0.0f, got;
                    size_t at = (size_t)R_MAX * OUT + (size_t)j * OUT + (size_t)o; /* slot 1 [r_max, out] */
                    if (dt) st_convert_f32(ST_BF16, (const uint16_t *)s->sites[0].b + at, 1, &got);
                    else got = ((const float *)s->sites[0].b)[at];
                    if (got != want) bad = j * OUT + o;
                }
            CHECK(bad < 0, "%s slots, rank %d: slot B row %d column %d wrong", dt ? "bf16" : "f32", r,
                  bad / OUT, bad % OUT);
        }
        lj_slots_free(s);
        lj_layout_free(L);
    }
}

/* lj_slots_write split across a pool (lj_slots_use_pool; a write of
 * LJ_SLOTS_SPLIT_BYTES or more): 24 sites of ranks 1..48, every fifth site not
 * covered, written over a full-rank write (rows to zero) by a 3-thread pool, give
 * the same slot bytes, ranks, scales and dirty marks as the calling thread alone,
 * in f32 and BF16 slots; an unchecked image with a NaN at two sites fails with the
 * message of the lower one, as the write site by site does. */
static void test_split_write(void) {
    enum { SITES = 24, IN = 96, OUT = 160, R = 48 };
    float *a = malloc(sizeof(float) * SITES * R * IN), *b = malloc(sizeof(float) * SITES * OUT * R);
    peft_site_w full[SITES], part[SITES];
    char names[SITES][2][16];
    int n_part = 0;
    for (size_t k = 0; k < (size_t)SITES * R * IN; k++) a[k] = (float)((int)(k * 7919 % 1001) - 500) / 64.0f;
    for (size_t k = 0; k < (size_t)SITES * OUT * R; k++) b[k] = (float)((int)(k * 104729 % 999) - 499) / 128.0f;
    for (int i = 0; i < SITES; i++) {
        snprintf(names[i][0], 16, "A%d", i), snprintf(names[i][1], 16, "B%d", i);
        const float *ai = a + (size_t)i * R * IN, *bi = b + (size_t)i * OUT * R;
        full[i] = (peft_site_w){.site = i, .rank = R, .scale = 0.5f, .a = ai, .b = bi, .a_raw = ai, .b_raw = bi,
                                .a_name = names[i][0], .b_name = names[i][1], .a_dtype = ST_F32, .b_dtype = ST_F32};
        if (i % 5 == 4) continue;
        part[n_part] = full[i];
        part[n_part].rank = 1 + i * 13 % R, part[n_part++].scale = (float)i;
    }
    peft_adapter ad_full = {.n = SITES, .w = full, .bytes = sizeof(float) * SITES * R * (IN + OUT)};
    peft_adapter ad_part = {.n = n_part, .w = part, .bytes = ad_full.bytes};
    CHECK(ad_full.bytes >= LJ_SLOTS_SPLIT_BYTES, "the write is large enough to split");
    lj_err err = {0};
    lj_pool *pool = NULL;
    CHECK(lj_pool_new(3, &pool, &err) == LORAJIT_OK, "pool: %s", err.msg);
    for (int dt = 0; dt < 2 && pool; dt++) {
        lj_layout *L = lj_layout_new();
        L->cfg = (lj_config){.dim = IN, .n_layers = SITES};
        L->schema = (lj_schema){.r_max = R, .target_mask = 1u << LJ_MOD_Q, .n_slots = 1,
                                .lora_dtype = dt ? LJ_DTYPE_BF16 : LJ_DTYPE_F32};
        L->sites = calloc(SITES, sizeof *L->sites);
        for (int i = 0; i < SITES; i++) L->sites[L->n_sites++] = (lj_site_desc){i, LJ_MOD_Q, IN, OUT, NULL};
        lj_slots *s[2] = {NULL, NULL}; /* 0: the calling thread, 1: the pool */
        char msg[2][sizeof err.msg];
        for (int k = 0; k < 2; k++) {
            CHECK(lj_slots_new(L, &s[k], &err) == LORAJIT_OK, "slots_new: %s", err.msg);
            if (k && s[k]) CHECK(lj_slots_use_pool(s[k], pool, &err) == LORAJIT_OK && s[k]->n_scratch == 3,
                                 "use_pool: %s", err.msg);
            if (!s[k]) continue;
            CHECK(lj_slots_write(s[k], 1, &ad_full, &err) == LORAJIT_OK, "full write: %s", err.msg);
            CHECK(lj_slots_write(s[k], 1, &ad_part, &err) == LORAJIT_OK, "part write: %s", err.msg);
        }
        size_t esz = dt ? 2 : 4, bytes_a = 2 * (size_t)R * IN * esz, bytes_b = 2 * (size_t)R * OUT * esz;
        for (int i = 0; s[0] && s[1] && i < SITES; i++) {
            const lj_lora_site *x = &s[0]->sites[i], *y = &s[1]->sites[i];
            CHECK(!memcmp(x->a, y->a, bytes_a) && !memcmp(x->b, y->b, bytes_b) && x->rank[1] == y->rank[1] &&
                  x->scale[1] == y->scale[1] && s[0]->dirty[i * 2 + 1] == s[1]->dirty[i * 2 + 1],
                  "%s slots, site %d: the split write differs from the calling thread's", dt ? "bf16" : "f32", i);
            CHECK(x->rank[1] == (i % 5 == 4 ? 0 : 1 + i * 13 % R), "site %d rank %d", i, x->rank[1]);
        }
        b[(size_t)19 * OUT * R + 5] = NAN, a[(size_t)7 * R * IN + 3] = NAN; /* B19 and A7 */
        ad_part.unchecked = true;
        for (int k = 0; k < 2 && s[0] && s[1]; k++) {
            CHECK(lj_slots_write(s[k], 0, &ad_part, &err) == LORAJIT_E_FORMAT, "NaN refused");
            snprintf(msg[k], sizeof msg[k], "%s", err.msg);
        }
        if (s[0] && s[1])
            CHECK(!strcmp(msg[0], msg[1]) && strstr(msg[0], "'A7'"), "split NaN message '%s' against '%s'", msg[1],
                  msg[0]);
        b[(size_t)19 * OUT * R + 5] = 1.0f, a[(size_t)7 * R * IN + 3] = 1.0f;
        ad_part.unchecked = false;
        lj_slots_free(s[0]);
        lj_slots_free(s[1]);
        lj_layout_free(L);
    }
    lj_pool_free(pool);
    free(a);
    free(b);
}

int main(int argc, char **argv) {
    fixture_tmp_setup(argc, argv, "rt_adapters_tmp");
    test_conformance();
    test_slots();
    test_slots_nan();
    test_transpose_shapes();
    test_split_write();
    test_registry();
    /* NULL-safe destructors */
    lj_slots_free(NULL);
    peft_adapter_free(NULL);
    peft_config_free(NULL);
    lj_registry_free(NULL);
    return check_summary("test_rt_adapters");
}
