/* slots.c — LoRA slot buffers: per layout site, n_phys physical slots of A and B.
 *
 * Site buffers: A [n_phys, r_max, in], B [n_phys, out, r_max] (ldb = r_max), plus
 * rank [n_phys] and scale [n_phys]; compiled code reads them through lj_ctx.sites.
 * Invariant: every element of a slot beyond its rank is zero. dirty[site, slot]
 * is the rank last written there, so a write or clear zeroes only rows/cols
 * between the new rank and that mark: a swap costs O(adapter bytes), never
 * O(model). Writing cannot fail: peft_adapter_read validated everything before. */
#include <stdlib.h>
#include <string.h>

#include "serving.h"

static void site_free(lj_lora_site *s) {
    free(s->a);
    free(s->b);
    free(s->rank);
    free(s->scale);
}

lorajit_status lj_slots_new(const lj_layout *L, lj_slots **out, lj_err *err) {
    lj_slots *s = NULL;
    lorajit_status st = LORAJIT_OK;
    if (!L || !out) return lj_fail(err, LORAJIT_E_ARG, "lj_slots_new: NULL argument");
    int n_phys = L->schema.n_slots + 1, r_max = L->schema.r_max;
    if (L->schema.n_slots < 1 || n_phys > LJ_MAX_SLOTS || r_max < 1)
        return lj_fail(err, LORAJIT_E_ARG, "schema: max_adapters %d must be 1..%d and max_rank %d "
                       "positive", L->schema.n_slots, LJ_MAX_SLOTS - 1, r_max);
    s = lj_calloc(1, sizeof *s);
    if (!s) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating LoRA slots");
    s->n_sites = L->n_sites, s->n_phys = n_phys, s->r_max = r_max;
    s->sites = lj_calloc((size_t)L->n_sites + 1, sizeof *s->sites);
    s->dirty = lj_calloc((size_t)L->n_sites * (size_t)n_phys + 1, sizeof *s->dirty);
    s->in = lj_calloc((size_t)L->n_sites + 1, sizeof *s->in);
    s->out = lj_calloc((size_t)L->n_sites + 1, sizeof *s->out);
    if (!s->sites || !s->dirty || !s->in || !s->out) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating LoRA slots");
        goto fail;
    }
    for (int i = 0; i < L->n_sites; i++) {
        const lj_site_desc *sd = &L->sites[i];
        lj_lora_site *site = &s->sites[i];
        if (sd->in < 1 || sd->out < 1 || sd->in > (1 << 24) || sd->out > (1 << 24)) {
            st = lj_fail(err, LORAJIT_E_SHAPE, "layout site %d (layer %d %s): in %lld, out %lld out "
                         "of range", i, sd->layer, lj_arch_module_name(lj_arch_get(L->cfg.arch), sd->module), (long long)sd->in,
                         (long long)sd->out);
            goto fail;
        }
        s->in[i] = sd->in, s->out[i] = sd->out;
        size_t per_slot_a = (size_t)r_max * (size_t)sd->in, per_slot_b = (size_t)sd->out * r_max;
        site->a = lj_calloc((size_t)n_phys * per_slot_a, sizeof(float));
        site->b = lj_calloc((size_t)n_phys * per_slot_b, sizeof(float));
        site->rank = lj_calloc((size_t)n_phys, sizeof(int32_t));
        site->scale = lj_calloc((size_t)n_phys, sizeof(float));
        if (!site->a || !site->b || !site->rank || !site->scale) {
            st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory allocating LoRA slots of layer %d %s "
                         "(%zu bytes)", sd->layer, lj_arch_module_name(lj_arch_get(L->cfg.arch), sd->module),
                         (size_t)n_phys * (per_slot_a + per_slot_b) * sizeof(float));
            goto fail;
        }
    }
    *out = s;
    return LORAJIT_OK;
fail:
    lj_slots_free(s);
    return st;
}

void lj_slots_free(lj_slots *s) {
    if (!s) return;
    for (int i = 0; s->sites && i < s->n_sites; i++) site_free(&s->sites[i]);
    free(s->sites);
    free(s->dirty);
    free(s->in);
    free(s->out);
    free(s);
}

/* Writes rank-r data (A [r, in] of a_dtype, B [out, r] of b_dtype, converted to f32
 * on the way; w NULL with r = 0) into one slot of one site and zeroes what an
 * earlier, larger write left between r and the dirty mark. */
static void site_write(lj_slots *s, int site, int slot, int64_t in, int64_t out, int r,
                       const peft_site_w *w) {
    lj_lora_site *ls = &s->sites[site];
    int32_t *dirty = &s->dirty[(size_t)site * (size_t)s->n_phys + (size_t)slot];
    int r_max = s->r_max, old = *dirty;
    float *da = ls->a + (size_t)slot * (size_t)r_max * (size_t)in; /* [r_max, in] */
    float *db = ls->b + (size_t)slot * (size_t)out * (size_t)r_max; /* [out, r_max] */
    LJ_ASSERT(r >= 0 && r <= r_max && old >= 0 && old <= r_max);
    if (r > 0) st_convert_f32(w->a_dtype, w->a_raw, (size_t)r * (size_t)in, da);
    if (old > r) memset(da + (size_t)r * (size_t)in, 0, (size_t)(old - r) * (size_t)in * sizeof(float));
    if (r == r_max) { /* full rank: B [out, r] is the slot's layout, one pass */
        st_convert_f32(w->b_dtype, w->b_raw, (size_t)out * (size_t)r_max, db);
    } else if (r > 0 || old > r) {
        const unsigned char *src = r > 0 ? w->b_raw : NULL;
        size_t row_bytes = (size_t)r * st_dtype_size(r > 0 ? w->b_dtype : ST_F32);
        for (int64_t o = 0; o < out; o++) {
            float *row = db + (size_t)o * (size_t)r_max;
            if (r > 0) st_convert_f32(w->b_dtype, src + (size_t)o * row_bytes, (size_t)r, row);
            if (old > r) memset(row + r, 0, (size_t)(old - r) * sizeof(float));
        }
    }
    ls->rank[slot] = r;
    ls->scale[slot] = r > 0 ? w->scale : 0.0f;
    *dirty = r;
}

/* ad->w is ordered by site id (peft_adapter_read sorts it). */
void lj_slots_write(lj_slots *s, int slot, const peft_adapter *ad) {
    LJ_ASSERT(s && ad && slot >= 0 && slot < s->n_phys);
    int j = 0;
    for (int i = 0; i < s->n_sites; i++) {
        if (j < ad->n && ad->w[j].site == i) {
            const peft_site_w *w = &ad->w[j++];
            site_write(s, i, slot, s->in[i], s->out[i], w->rank, w);
        } else {
            site_write(s, i, slot, s->in[i], s->out[i], 0, NULL);
        }
    }
    LJ_ASSERT(j == ad->n);
}

void lj_slots_clear(lj_slots *s, int slot) {
    LJ_ASSERT(s && slot >= 0 && slot < s->n_phys);
    for (int i = 0; i < s->n_sites; i++)
        site_write(s, i, slot, s->in[i], s->out[i], 0, NULL);
}
