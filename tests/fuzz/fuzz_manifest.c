/* fuzz_manifest.c — libFuzzer harness for an artifact's manifest.json.
 *
 * Input: the bytes of a manifest, parsed by lj_manifest_parse as they are; when
 * that is refused for the "manifest_sha256" seal alone (the usual fate of a mutated
 * manifest), the JSON is re-sealed with lj_manifest_seal and parsed again, so that
 * mutations reach the field checks behind the seal (config, schema, weights, sites
 * against weights). An accepted manifest must give a layout the runtime can bind, and
 * lj_manifest_check_sizes (sizes recomputed from its config) must accept or refuse it. */
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "formats.h"

/* Returns true when the manifest was refused for its seal alone. */
static bool parse_and_check(const char *text, size_t len) {
    lj_manifest m;
    lj_err err = {0};
    lorajit_status st = lj_manifest_parse(text, len, "manifest.json", &m, &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK_REFUSAL(st, err);
        FUZZ_CHECK(m.L == NULL && m.features == NULL);
        return strstr(err.msg, "\"manifest_sha256\"") != NULL;
    }
    const lj_layout *L = m.L;
    FUZZ_CHECK(L && m.features && L->n_weights >= 1);
    FUZZ_CHECK(L->schema.r_max >= 1 && L->schema.n_slots >= 1 && L->schema.n_slots < LJ_MAX_SLOTS);
    FUZZ_CHECK(L->schema.max_tokens >= 1 && L->schema.max_tokens <= L->schema.seq_len &&
               L->schema.seq_len <= L->cfg.seq_len);
    for (int i = 0; i < L->n_weights; i++) FUZZ_CHECK(L->weights[i].name && L->weights[i].rows >= 1);
    for (int i = 0; i < L->n_sites; i++) {
        const lj_site_desc *s = &L->sites[i];
        FUZZ_CHECK(L->cfg.arch >= 0 && L->cfg.arch < lj_arch_count());
        FUZZ_CHECK(s->layer >= 0 && s->layer < L->cfg.n_layers && s->module >= 0 &&
                   s->module < lj_arch_get(L->cfg.arch)->n_modules && s->path);
        FUZZ_CHECK((L->schema.target_mask >> s->module) & 1);
        FUZZ_CHECK(s->in >= 1 && s->out >= 1 && lj_layout_site(L, s->layer, s->module) == i);
    }
    lj_err size_err = {0};
    lorajit_status sizes = lj_manifest_check_sizes(L, "manifest.json", &size_err);
    if (sizes != LORAJIT_OK) FUZZ_CHECK_REFUSAL(sizes, size_err);
    lj_manifest_clear(&m);
    lj_manifest_clear(&m);
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!parse_and_check((const char *)data, size)) return 0;
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    lj_err err = {0};
    if (cJSON_IsObject(root) && lj_manifest_seal(root, &err) == LORAJIT_OK) {
        char *text = cJSON_PrintUnformatted(root);
        if (text) parse_and_check(text, strlen(text));
        cJSON_free(text);
    }
    cJSON_Delete(root);
    return 0;
}
