/* rt_adapters_fixture.h — what test_rt_adapters and test_rt_peft share: a hand-made
 * layout of the conformance tiny model (dim 64, hidden 160, 2 layers, kv_dim 32)
 * with slots (r_max 16, 4 slots) and a registry; byte snapshots of slots + registry
 * (what a failed call must leave alone); and a writer of PEFT adapter folders
 * (adapter_config.json + adapter_model.safetensors in F32 / BF16 / unaligned F32 /
 * F64) under tmp_root, with values tval() that are exact in BF16. */
#ifndef LORAJIT_RT_ADAPTERS_FIXTURE_H
#define LORAJIT_RT_ADAPTERS_FIXTURE_H

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

static inline void env_new(env *e, unsigned mask) {
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

static inline void env_free(env *e) {
    lj_registry_free(&e->r);
    lj_slots_free(e->s);
    lj_layout_free(e->L);
}

/* ---- snapshots of everything a failed call must leave alone ---- */
typedef struct snap {
    unsigned char *p;
    size_t len, cap;
} snap;

static inline void snap_put(snap *s, const void *data, size_t n) {
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
}

static inline snap snap_take(const env *e) {
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

static inline bool snap_same(snap a, snap b) {
    bool same = a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
    free(a.p);
    free(b.p);
    return same;
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

/* Makes tmp_root = argv[1]/NAME (kept between runs; each adapter folder is rewritten). */
static void fixture_tmp_setup(int argc, char **argv, const char *name) {
    static char root[512];
    snprintf(root, sizeof root, "%s/%s", argc > 1 ? argv[1] : ".", name);
    mkdir(root, 0755);
    tmp_root = root;
}

#endif
