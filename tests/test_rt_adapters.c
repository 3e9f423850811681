/* test_rt_adapters.c — peft.c, slots.c and adapters.c on a hand-made layout of the
 * conformance tiny model (dim 64, hidden 160, 2 layers, kv_dim 32), r_max 16, 4 slots.
 * Checks the three PEFT-written conformance adapters against an independent reader,
 * config semantics (rslora, rank/alpha_pattern, regex targets, layers_to_transform,
 * BF16 / unaligned conversion) on adapters written here, slot padding, the registry
 * verbs, and that every malformed adapter fails naming its field/tensor/file with
 * slots and registry byte-identical to before. Recipe: add a case to malformed[]. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "serving.h"

#define CONF "conformance/adapters/llama-tiny/"
#define R_MAX 16
#define N_SLOTS 4
static const int64_t mod_in[LJ_MOD_COUNT] = {64, 64, 64, 64, 64, 64, 160};
static const int64_t mod_out[LJ_MOD_COUNT] = {64, 32, 32, 64, 160, 160, 64};

/* ---- environment: layout + slots + registry ---- */
typedef struct env {
    lj_layout *L;
    lj_slots *s;
    lj_registry r;
} env;

static void env_new(env *e, unsigned mask) {
    lj_err err = {0};
    memset(e, 0, sizeof *e);
    lj_layout *L = e->L = lj_layout_new();
    L->cfg = (lj_config){.dim = 64, .hidden_dim = 160, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                         .head_size = 16, .vocab_size = 256, .seq_len = 128, .rms_eps = 1e-5f,
                         .rope_theta = 10000.0f};
    L->schema = (lj_schema){.r_max = R_MAX, .target_mask = mask, .n_slots = N_SLOTS, .max_tokens = 128};
    L->sites = calloc(2 * LJ_MOD_COUNT, sizeof *L->sites);
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < LJ_MOD_COUNT; m++)
            if (mask & (1u << m))
                L->sites[L->n_sites++] = (lj_site_desc){l, m, mod_in[m], mod_out[m], NULL};
    CHECK(lj_layout_site_paths(L, &err) == LORAJIT_OK, "site paths: %s", err.msg);
    CHECK(lj_slots_new(L, &e->s, &err) == LORAJIT_OK, "slots_new: %s", err.msg);
    CHECK(lj_registry_init(&e->r, N_SLOTS, &err) == LORAJIT_OK, "registry_init: %s", err.msg);
}

static void env_free(env *e) {
    lj_registry_free(&e->r);
    lj_slots_free(e->s);
    lj_layout_free(e->L);
}

/* ---- snapshots of everything a failed call must leave alone ---- */
typedef struct snap {
    unsigned char *p;
    size_t len, cap;
} snap;

static void snap_put(snap *s, const void *data, size_t n) {
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
}

static snap snap_take(const env *e) {
    snap s = {0};
    const lj_slots *sl = e->s;
    for (int i = 0; i < sl->n_sites; i++) {
        const lj_site_desc *sd = &e->L->sites[i];
        snap_put(&s, sl->sites[i].a, (size_t)sl->n_phys * R_MAX * sd->in * sizeof(float));
        snap_put(&s, sl->sites[i].b, (size_t)sl->n_phys * sd->out * R_MAX * sizeof(float));
        snap_put(&s, sl->sites[i].rank, (size_t)sl->n_phys * sizeof(int32_t));
        snap_put(&s, sl->sites[i].scale, (size_t)sl->n_phys * sizeof(float));
    }
    snap_put(&s, sl->dirty, (size_t)sl->n_sites * sl->n_phys * sizeof(int32_t));
    const lj_registry *r = &e->r;
    for (int i = 0; i < r->n_phys; i++) {
        const char *name = r->by_slot[i].name ? r->by_slot[i].name : "(free)";
        snap_put(&s, name, strlen(name) + 1);
        snap_put(&s, &r->by_slot[i].bytes, sizeof r->by_slot[i].bytes);
        snap_put(&s, &r->by_slot[i].seq, sizeof r->by_slot[i].seq);
    }
    snap_put(&s, &r->n_active, sizeof r->n_active);
    snap_put(&s, r->active_slot, sizeof r->active_slot);
    snap_put(&s, r->active_weight, sizeof r->active_weight);
    snap_put(&s, &r->enabled, sizeof r->enabled);
    snap_put(&s, &r->applied, sizeof r->applied);
    snap_put(&s, &r->next_seq, sizeof r->next_seq);
    return s;
}

static bool snap_same(snap a, snap b) {
    bool same = a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
    free(a.p);
    free(b.p);
    return same;
}

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

/* ---- adapters written by the test ---- */
typedef struct tspec {
    char name[160];
    int64_t rows, cols;
} tspec;
typedef struct adapter_spec {
    int n;
    tspec t[64];
} adapter_spec;
enum { DT_F32, DT_BF16, DT_F32_UNALIGNED, DT_F64 };

static char tensor_name[160];
/* Spelled out here, independently of arch.c's table. */
static const char *const mod_path[LJ_MOD_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
};
static const char *lora_name(int layer, int m, char ab) {
    snprintf(tensor_name, sizeof tensor_name, "base_model.model.model.layers.%d.%s.lora_%c.weight", layer,
             mod_path[m], ab);
    return tensor_name;
}

static void spec_add(adapter_spec *sp, const char *name, int64_t rows, int64_t cols) {
    tspec *t = &sp->t[sp->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows, t->cols = cols;
}

static void spec_lora(adapter_spec *sp, int layer, int m, int rank) {
    spec_add(sp, lora_name(layer, m, 'A'), rank, mod_in[m]);
    spec_add(sp, lora_name(layer, m, 'B'), mod_out[m], rank);
}

/* Element k of the tensor called name: exact in BF16. */
static float tval(const char *name, int64_t k) {
    unsigned h = 5381;
    for (const char *c = name; *c; c++) h = h * 33 + (unsigned char)*c;
    return (float)((int)((h % 89 + (unsigned)k * 7) % 97) - 48) / 64.0f;
}

static void write_weights(const char *path, const adapter_spec *sp, int dtype) {
    size_t esz = dtype == DT_BF16 ? 2 : dtype == DT_F64 ? 8 : 4, off = 0, cap = 64 + sp->n * 256;
    char *h = malloc(cap + 16);
    int hl = snprintf(h, cap, "{");
    for (int i = 0; i < sp->n; i++) {
        size_t bytes = (size_t)(sp->t[i].rows * sp->t[i].cols) * esz;
        hl += snprintf(h + hl, cap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],"
                       "\"data_offsets\":[%zu,%zu]}", i ? "," : "", sp->t[i].name,
                       dtype == DT_BF16 ? "BF16" : dtype == DT_F64 ? "F64" : "F32",
                       (long long)sp->t[i].rows, (long long)sp->t[i].cols, off, off + bytes);
        off += bytes;
    }
    h[hl++] = '}';
    while ((8 + hl) % 8 != (dtype == DT_F32_UNALIGNED ? 2 : 0)) h[hl++] = ' ';
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)(((uint64_t)hl >> (8 * i)) & 0xff), f);
    fwrite(h, 1, (size_t)hl, f);
    for (int i = 0; i < sp->n; i++)
        for (int64_t k = 0; k < sp->t[i].rows * sp->t[i].cols; k++) {
            float v = tval(sp->t[i].name, k);
            double d = v;
            uint32_t u;
            memcpy(&u, &v, 4);
            uint16_t bf = (uint16_t)(u >> 16);
            fwrite(dtype == DT_BF16 ? (void *)&bf : dtype == DT_F64 ? (void *)&d : (void *)&v, esz, 1, f);
        }
    fclose(f);
    free(h);
}

static const char *tmp_root;

/* Writes tmp_root/name/{adapter_config.json, adapter_model.safetensors}; config
 * or sp NULL leaves that file out. Returns the folder (static buffer). */
static const char *write_adapter(const char *name, const char *config, const adapter_spec *sp,
                                 int dtype) {
    static char dir[512];
    char path[600];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    remove(path);
    if (config) {
        FILE *f = fopen(path, "w");
        fputs(config, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    remove(path);
    if (sp) write_weights(path, sp, dtype);
    return dir;
}

/* A config with peft_type LORA (unless extra sets it), r (omitted when 0), alpha, targets. */
static const char *config_json(int r, double alpha, const char *targets, const char *extra) {
    static char buf[2048];
    int n = snprintf(buf, sizeof buf, "{");
    if (!extra || !strstr(extra, "\"peft_type\"")) n += snprintf(buf + n, sizeof buf - n, "\"peft_type\": \"LORA\", ");
    if (r) n += snprintf(buf + n, sizeof buf - n, "\"r\": %d, ", r);
    n += snprintf(buf + n, sizeof buf - n, "\"lora_alpha\": %g, \"target_modules\": %s%s%s}", alpha,
                  targets, extra ? ", " : "", extra ? extra : "");
    return buf;
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
        lj_slots_write(e.s, 1, ad);
        const peft_site_w *w = &ad->w[ad->n - 1];
        const lj_site_desc *sd = &e.L->sites[w->site];
        const lj_lora_site *ls = &e.s->sites[w->site];
        int r = w->rank;
        CHECK(ls->rank[1] == r && ls->scale[1] == w->scale, "slot rank/scale");
        CHECK(ls->a[1 * R_MAX * sd->in + (r - 1) * sd->in + 5] == w->a[(r - 1) * sd->in + 5], "slot A");
        CHECK(ls->b[1 * sd->out * R_MAX + 7 * R_MAX + (r - 1)] == w->b[7 * r + (r - 1)], "slot B");
        CHECK(ls->b[1 * sd->out * R_MAX + 7 * R_MAX + r] == 0.0f, "slot B padding");
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
        if (ls->a[slot * R_MAX * sd->in + k] != 0.0f) return false;
    for (int64_t o = 0; o < sd->out; o++)
        for (int c = from; c < R_MAX; c++)
            if (ls->b[slot * sd->out * R_MAX + o * R_MAX + c] != 0.0f) return false;
    return true;
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
    lj_slots_write(e.s, 2, qv);
    CHECK(e.s->sites[q0].rank[2] == 8 && !slot_tail_zero(&e, q0, 2, 2), "rank 8 written");
    lj_slots_write(e.s, 2, r2);
    CHECK(e.s->sites[q0].rank[2] == 2 && e.s->sites[q0].scale[2] == 2.0f, "rank 2 written");
    CHECK(slot_tail_zero(&e, q0, 2, 2), "rows 2..7 of A and cols 2..7 of B zeroed");
    CHECK(e.s->sites[v1].rank[2] == 0 && slot_tail_zero(&e, v1, 2, 0), "uncovered site zeroed");
    CHECK(e.s->sites[q0].a[2 * R_MAX * 64 + 64 + 3] == r2->w[0].a[64 + 3], "A row 1 copied");
    /* the hotswap path: clear + write into the same physical slot */
    lj_slots_write(e.s, 3, qv);
    lj_slots_clear(e.s, 3);
    for (int i = 0; i < e.s->n_sites; i++)
        CHECK(e.s->sites[i].rank[3] == 0 && slot_tail_zero(&e, i, 3, 0), "clear zeroes site %d", i);
    lj_slots_write(e.s, 3, qv);
    lj_slots_clear(e.s, 3);
    lj_slots_write(e.s, 3, r2);
    CHECK(e.s->sites[q0].rank[3] == 2 && slot_tail_zero(&e, q0, 3, 2), "clear+write rank 2");
    /* mlp over qv: attention sites drop to rank 0 and zero */
    lj_slots_write(e.s, 4, qv);
    lj_slots_write(e.s, 4, mlp);
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

/* ---- config semantics on adapters written here ---- */
static peft_adapter *read_ok(const env *e, const char *dir) {
    lj_err err = {0};
    peft_adapter *ad = NULL;
    CHECK(peft_adapter_read(dir, e->L, &ad, &err) == LORAJIT_OK, "%s: %s", dir, err.msg);
    return ad;
}

static const peft_site_w *site_w(const env *e, const peft_adapter *ad, int layer, int m) {
    int site = lj_layout_site(e->L, layer, m);
    for (int i = 0; ad && i < ad->n; i++)
        if (ad->w[i].site == site) return &ad->w[i];
    return NULL;
}

static void test_semantics(void) {
    env e;
    env_new(&e, 0x7f);
    adapter_spec sp = {0};
    peft_adapter *ad;
    const peft_site_w *w;
    /* use_rslora: scale = alpha / sqrt(r) */
    spec_lora(&sp, 0, LJ_MOD_O, 4), spec_lora(&sp, 1, LJ_MOD_O, 4);
    ad = read_ok(&e, write_adapter("rslora", config_json(4, 8, "[\"o_proj\"]", "\"use_rslora\": true"), &sp, DT_F32));
    CHECK(ad && ad->n == 2 && ad->w[0].scale == 4.0f, "rslora scale %g", ad ? ad->w[0].scale : 0);
    peft_adapter_free(ad);
    /* rank_pattern / alpha_pattern: full match of (.*\.)?KEY, first key wins */
    sp.n = 0;
    spec_lora(&sp, 0, LJ_MOD_Q, 2), spec_lora(&sp, 0, LJ_MOD_V, 5);
    spec_lora(&sp, 1, LJ_MOD_Q, 2), spec_lora(&sp, 1, LJ_MOD_V, 6);
    ad = read_ok(&e, write_adapter("patterns", config_json(4, 8, "[\"q_proj\", \"v_proj\"]",
        "\"rank_pattern\": {\"q_proj\": 2, \"layers.1.self_attn.v_proj\": 6, \"v_proj\": 5}, "
        "\"alpha_pattern\": {\"_proj\": 100, \"v_proj\": 3}"), &sp, DT_F32));
    CHECK(ad && ad->n == 4, "patterns: 4 sites");
    w = site_w(&e, ad, 0, LJ_MOD_Q);
    CHECK(w && w->rank == 2 && w->scale == 4.0f, "layer 0 q: rank 2, alpha 8 ('_proj' is no full key)");
    w = site_w(&e, ad, 0, LJ_MOD_V);
    CHECK(w && w->rank == 5 && w->scale == 3.0f / 5, "layer 0 v: rank 5, alpha 3");
    w = site_w(&e, ad, 1, LJ_MOD_V);
    CHECK(w && w->rank == 6 && w->scale == 0.5f, "layer 1 v: first key wins");
    peft_adapter_free(ad);
    /* regex target_modules (full match), BF16 converted into the owned buffer */
    sp.n = 0;
    spec_lora(&sp, 1, LJ_MOD_Q, 3), spec_lora(&sp, 1, LJ_MOD_K, 3);
    ad = read_ok(&e, write_adapter("regex", config_json(3, 6, "\"model\\\\.layers\\\\.1\\\\.self_attn\\\\.(q|k)_proj\"", NULL),
                                  &sp, DT_BF16));
    CHECK(ad && ad->n == 2 && ad->owned != NULL, "regex: layer 1 q,k; converted");
    w = site_w(&e, ad, 1, LJ_MOD_K);
    CHECK(w && w->a[3 * 64 - 1] == tval(lora_name(1, LJ_MOD_K, 'A'), 3 * 64 - 1) &&
          w->b[32 * 3 - 1] == tval(lora_name(1, LJ_MOD_K, 'B'), 32 * 3 - 1), "BF16 values");
    peft_adapter_free(ad);
    /* layers_to_transform as an int; F32 with a misaligned data section is converted */
    sp.n = 0;
    spec_lora(&sp, 1, LJ_MOD_DOWN, 2);
    ad = read_ok(&e, write_adapter("layer1", config_json(2, 2, "[\"mlp.down_proj\"]", "\"layers_to_transform\": 1, "
                                   "\"layers_pattern\": \"layers\""), &sp, DT_F32_UNALIGNED));
    CHECK(ad && ad->n == 1 && ad->owned && site_w(&e, ad, 1, LJ_MOD_DOWN), "layers_to_transform 1");
    w = site_w(&e, ad, 1, LJ_MOD_DOWN);
    CHECK(w && w->a[2 * 160 - 1] == tval(lora_name(1, LJ_MOD_DOWN, 'A'), 2 * 160 - 1), "unaligned values");
    peft_adapter_free(ad);
    /* exclude_modules, an empty layers_to_transform list (= all layers), all-linear */
    sp.n = 0;
    spec_lora(&sp, 1, LJ_MOD_UP, 1);
    ad = read_ok(&e, write_adapter("exclude", config_json(1, 1, "[\"up_proj\"]", "\"exclude_modules\": "
                                   "[\"layers.0.mlp.up_proj\"], \"layers_to_transform\": []"), &sp, DT_F32));
    CHECK(ad && ad->n == 1, "exclude_modules");
    peft_adapter_free(ad);
    sp.n = 0;
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < LJ_MOD_COUNT; m++) spec_lora(&sp, l, m, 1);
    ad = read_ok(&e, write_adapter("all_linear", config_json(1, 1, "\"all-linear\"", NULL), &sp, DT_F32));
    CHECK(ad && ad->n == 14, "all-linear");
    peft_adapter_free(ad);
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

/* ---- malformed adapters: status, message, nothing changed ---- */
typedef struct bad_case {
    const char *name;
    lorajit_status want;
    const char *needle; /* must appear in the message */
} bad_case;

static void expect_fail(env *e, const char *dir, const bad_case *bc) {
    lj_err err = {0};
    snap before = snap_take(e);
    lorajit_status st = lj_adapter_load(&e->r, e->s, e->L, "new", dir, NULL, &err);
    CHECK(st == bc->want && strstr(err.msg, bc->needle), "%s: load gave %d '%s' (want %d, '%s')",
          bc->name, st, err.msg, bc->want, bc->needle);
    st = lj_adapter_hotswap(&e->r, e->s, e->L, "qv", dir, NULL, &err);
    CHECK(st == bc->want && strstr(err.msg, bc->needle), "%s: hotswap gave %d '%s'", bc->name, st, err.msg);
    CHECK(snap_same(before, snap_take(e)), "%s: slots or registry changed", bc->name);
    if (getenv("LJ_TEST_VERBOSE")) printf("%-22s %s\n", bc->name, err.msg);
}

static void test_malformed(void) {
    env e, eqv;
    env_new(&e, 0x7f);
    env_new(&eqv, 1u << LJ_MOD_Q | 1u << LJ_MOD_V);
    lj_err err = {0};
    const char *act[] = {"qv"};
    for (env *x = &e; x; x = x == &e ? &eqv : NULL) {
        CHECK(lj_adapter_load(&x->r, x->s, x->L, "qv", CONF "a_qv", NULL, &err) == LORAJIT_OK, "%s", err.msg);
        CHECK(lj_adapter_set(&x->r, act, NULL, 1, &err) == LORAJIT_OK, "%s", err.msg);
    }
    adapter_spec q4 = {0}; /* q_proj, both layers, rank 4 */
    spec_lora(&q4, 0, LJ_MOD_Q, 4), spec_lora(&q4, 1, LJ_MOD_Q, 4);
    const char *tq = "[\"q_proj\"]";
    static const bad_case c[] = {
        {"use_dora", LORAJIT_E_UNSUPPORTED, "use_dora"},
        {"bias_all", LORAJIT_E_UNSUPPORTED, "bias"},
        {"modules_to_save", LORAJIT_E_UNSUPPORTED, "modules_to_save"},
        {"fan_in_fan_out", LORAJIT_E_UNSUPPORTED, "fan_in_fan_out"},
        {"rank_over_max", LORAJIT_E_UNSUPPORTED, "rank 32"},
        {"rank_pattern_over_max", LORAJIT_E_UNSUPPORTED, "max_rank 16"},
        {"lm_head", LORAJIT_E_UNSUPPORTED, "lm_head"},
        {"wrong_a_shape", LORAJIT_E_SHAPE, "layers.1.self_attn.q_proj.lora_A.weight"},
        {"wrong_b_shape", LORAJIT_E_SHAPE, "layers.0.self_attn.q_proj.lora_B.weight"},
        {"missing_b", LORAJIT_E_NOT_FOUND, "layers.1.self_attn.q_proj.lora_B.weight"},
        {"extra_tensor", LORAJIT_E_FORMAT, "layers.0.self_attn.k_proj.lora_A.weight"},
        {"invalid_json", LORAJIT_E_FORMAT, "adapter_config.json"},
        {"no_safetensors", LORAJIT_E_NOT_FOUND, "adapter_model.safetensors"},
        {"no_config", LORAJIT_E_NOT_FOUND, "adapter_config.json"},
        {"layers_out_of_range", LORAJIT_E_FORMAT, "layers_to_transform"},
        {"peft_type", LORAJIT_E_UNSUPPORTED, "peft_type"},
        {"missing_r", LORAJIT_E_FORMAT, "\"r\""},
        {"missing_alpha", LORAJIT_E_FORMAT, "lora_alpha"},
        {"embed_tokens_regex", LORAJIT_E_UNSUPPORTED, "embed_tokens"},
        {"layers_pattern", LORAJIT_E_UNSUPPORTED, "layers_pattern"},
        {"lora_bias", LORAJIT_E_UNSUPPORTED, "lora_bias"},
        {"layer_replication", LORAJIT_E_UNSUPPORTED, "layer_replication"},
        {"f64_tensor", LORAJIT_E_UNSUPPORTED, "F64"},
        {"pattern_shape", LORAJIT_E_SHAPE, "layers.0.self_attn.q_proj.lora_A.weight"},
        {"garbage_safetensors", LORAJIT_E_FORMAT, "adapter_model.safetensors"},
        {"regex_with_layers", LORAJIT_E_FORMAT, "layers_to_transform"},
        {"bad_regex", LORAJIT_E_FORMAT, "target_modules"},
    };
    const char *d[sizeof c / sizeof c[0]];
    adapter_spec x;
    int i = 0;
    d[i++] = write_adapter(c[0].name, config_json(4, 8, tq, "\"use_dora\": true"), &q4, DT_F32);
    d[i++] = write_adapter(c[1].name, config_json(4, 8, tq, "\"bias\": \"all\""), &q4, DT_F32);
    d[i++] = write_adapter(c[2].name, config_json(4, 8, tq, "\"modules_to_save\": [\"lm_head\"]"), &q4, DT_F32);
    d[i++] = write_adapter(c[3].name, config_json(4, 8, tq, "\"fan_in_fan_out\": true"), &q4, DT_F32);
    d[i++] = write_adapter(c[4].name, config_json(32, 8, tq, NULL), &q4, DT_F32);
    d[i++] = write_adapter(c[5].name, config_json(4, 8, tq, "\"rank_pattern\": {\"layers.1.self_attn.q_proj\": 32}"), &q4, DT_F32);
    d[i++] = write_adapter(c[6].name, config_json(4, 8, "[\"q_proj\", \"lm_head\"]", NULL), &q4, DT_F32);
    x = q4, x.t[2].cols = 63;
    d[i++] = write_adapter(c[7].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    x = q4, x.t[1].rows = 32;
    d[i++] = write_adapter(c[8].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    x = q4, x.n = 3;
    d[i++] = write_adapter(c[9].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    x = q4, spec_add(&x, lora_name(0, LJ_MOD_K, 'A'), 4, 64);
    d[i++] = write_adapter(c[10].name, config_json(4, 8, tq, NULL), &x, DT_F32);
    d[i++] = write_adapter(c[11].name, "{\"peft_type\": \"LORA\", \"r\": 4,, }", &q4, DT_F32);
    d[i++] = write_adapter(c[12].name, config_json(4, 8, tq, NULL), NULL, DT_F32);
    d[i++] = write_adapter(c[13].name, NULL, &q4, DT_F32);
    d[i++] = write_adapter(c[14].name, config_json(4, 8, tq, "\"layers_to_transform\": [0, 5]"), &q4, DT_F32);
    d[i++] = write_adapter(c[15].name, config_json(4, 8, tq, "\"peft_type\": \"PREFIX_TUNING\""), &q4, DT_F32);
    d[i++] = write_adapter(c[16].name, config_json(0, 8, tq, NULL), &q4, DT_F32);
    d[i++] = write_adapter(c[17].name, "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"]}", &q4, DT_F32);
    d[i++] = write_adapter(c[18].name, config_json(4, 8, "\"model\\\\.(embed_tokens|layers\\\\.0\\\\.self_attn\\\\.q_proj)\"", NULL), &q4, DT_F32);
    d[i++] = write_adapter(c[19].name, config_json(4, 8, tq, "\"layers_pattern\": \"h\""), &q4, DT_F32);
    d[i++] = write_adapter(c[20].name, config_json(4, 8, tq, "\"lora_bias\": true"), &q4, DT_F32);
    d[i++] = write_adapter(c[21].name, config_json(4, 8, tq, "\"layer_replication\": [[0, 2]]"), &q4, DT_F32);
    d[i++] = write_adapter(c[22].name, config_json(4, 8, tq, NULL), &q4, DT_F64);
    d[i++] = write_adapter(c[23].name, config_json(4, 8, tq, "\"rank_pattern\": {\"layers.0.self_attn.q_proj\": 2}"), &q4, DT_F32);
    d[i] = write_adapter(c[24].name, config_json(4, 8, tq, NULL), NULL, DT_F32);
    {
        char p[600];
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", d[i++]);
        FILE *f = fopen(p, "wb");
        fwrite("\x40\0\0\0\0\0\0\0{not json", 1, 17, f);
        fclose(f);
    }
    d[i++] = write_adapter(c[25].name, config_json(4, 8, "\"q_proj\"", "\"layers_to_transform\": [0]"), &q4, DT_F32);
    d[i++] = write_adapter(c[26].name, config_json(4, 8, "\"(q_proj\"", NULL), &q4, DT_F32);
    CHECK(i == (int)(sizeof c / sizeof c[0]), "every case written");
    for (int k = 0; k < i; k++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", tmp_root, c[k].name);
        expect_fail(&e, dir, &c[k]);
    }
    /* a module the schema lacks: schema q,v only, adapter on k_proj */
    adapter_spec k4 = {0};
    spec_lora(&k4, 0, LJ_MOD_K, 4), spec_lora(&k4, 1, LJ_MOD_K, 4);
    const bad_case lacks = {"schema_lacks_k", LORAJIT_E_UNSUPPORTED, "schema lacks k_proj"};
    expect_fail(&eqv, write_adapter(lacks.name, config_json(4, 8, "[\"k_proj\"]", NULL), &k4, DT_F32), &lacks);
    env_free(&e);
    env_free(&eqv);
}

/* ---- every allocation failure inside load/hotswap leaves everything as it was ---- */
static void test_alloc_failures(void) {
    env e;
    env_new(&e, 0x7f);
    lj_err err = {0};
    CHECK(lj_adapter_load(&e.r, e.s, e.L, "qv", CONF "a_qv", NULL, &err) == LORAJIT_OK, "%s", err.msg);
    adapter_spec sp = {0};
    spec_lora(&sp, 1, LJ_MOD_DOWN, 2);
    const char *dir = write_adapter("alloc_bf16", config_json(2, 2, "[\"down_proj\"]",
                                    "\"layers_to_transform\": [1], \"rank_pattern\": {\"down_proj\": 2}"), &sp, DT_BF16);
    for (int verb = 0; verb < 2; verb++) {
        int k = 1, nomem = 0;
        for (; k < 200; k++) {
            snap before = snap_take(&e);
            lj_alloc_fail_after(k);
            lorajit_status st = verb ? lj_adapter_hotswap(&e.r, e.s, e.L, "qv", dir, NULL, &err)
                                     : lj_adapter_load(&e.r, e.s, e.L, "bf", dir, NULL, &err);
            lj_alloc_fail_after(0);
            if (st == LORAJIT_OK) {
                free(before.p);
                break;
            }
            nomem++;
            bool same = snap_same(before, snap_take(&e));
            CHECK(st == LORAJIT_E_NOMEM, "verb %d, allocation %d: %d %s", verb, k, st, err.msg);
            CHECK(same, "verb %d, allocation %d: state changed", verb, k);
            if (st != LORAJIT_E_NOMEM || !same) break;
        }
        CHECK(k < 200 && nomem >= 5, "verb %d: %d allocation failures exercised", verb, nomem);
    }
    env_free(&e);
}

int main(int argc, char **argv) {
    static char root[512];
    snprintf(root, sizeof root, "%s/rt_adapters_tmp", argc > 1 ? argv[1] : ".");
    mkdir(root, 0755);
    tmp_root = root;
    test_conformance();
    test_slots();
    test_semantics();
    test_registry();
    test_malformed();
    test_alloc_failures();
    /* NULL-safe destructors */
    lj_slots_free(NULL);
    peft_adapter_free(NULL);
    peft_config_free(NULL);
    lj_registry_free(NULL);
    return check_summary("test_rt_adapters");
}
