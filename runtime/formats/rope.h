/* rope.h — RoPE scaling (config.json "rope_scaling"), included by formats.h in the
 * middle (it needs lj_err and lj_json_at; lj_config holds an lj_rope).
 *
 * Types follow transformers' modeling_rope_utils.py: default (null), linear,
 * dynamic (NTK), yarn, longrope ("su" is its legacy name), llama3. "rope_type" or the
 * legacy "type" names the type; any other type is refused by name, and every
 * missing or invalid field is named (rope_config_validation's rules, warnings there
 * are refusals here). The compiled code never bakes a frequency: the runtime fills
 * lj_ctx.rope with inv_freq[head_size / 2] and the cos/sin scale (lj_rope_table),
 * per call for the types whose frequencies depend on the sequence length. */
#ifndef LORAJIT_ROPE_H
#define LORAJIT_ROPE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum lj_rope_type {
    LJ_ROPE_DEFAULT, LJ_ROPE_LINEAR, LJ_ROPE_DYNAMIC, LJ_ROPE_YARN, LJ_ROPE_LONGROPE, LJ_ROPE_LLAMA3,
    LJ_ROPE_COUNT
} lj_rope_type;

#define LJ_ROPE_MAX_HALF 512 /* LJ_CONFIG_MAX_HEAD_DIM / 2: longrope's factor lists */

/* The fields of rope_scaling as given (has: LJ_ROPE_HAS_* bits of the optional ones
 * present), so that the manifest writes back exactly what was read. */
enum {
    LJ_ROPE_HAS_ORIG = 1u, LJ_ROPE_HAS_ATTN = 2u, LJ_ROPE_HAS_BETA_FAST = 4u, LJ_ROPE_HAS_BETA_SLOW = 8u,
    LJ_ROPE_HAS_MSCALE = 16u, LJ_ROPE_HAS_MSCALE_ALL = 32u, LJ_ROPE_HAS_FACTOR = 64u,
    LJ_ROPE_HAS_TRUNCATE = 128u, LJ_ROPE_HAS_TOP_ORIG = 256u
};
typedef struct lj_rope {
    int type;                 /* lj_rope_type */
    unsigned has;             /* LJ_ROPE_HAS_* */
    double factor;            /* linear, dynamic, yarn, llama3 (required); longrope (optional) */
    double low_freq_factor, high_freq_factor; /* llama3 */
    int64_t original_max;     /* rope_scaling.original_max_position_embeddings */
    int64_t top_original_max; /* config.json's top-level original_max_position_embeddings (Phi-3) */
    double attention_factor, beta_fast, beta_slow, mscale, mscale_all_dim; /* yarn, longrope */
    bool truncate;            /* yarn (default true) */
    int n_factors;            /* longrope: head_size / 2 */
    float short_factor[LJ_ROPE_MAX_HALF], long_factor[LJ_ROPE_MAX_HALF];
} lj_rope;

struct cJSON;
struct lj_config;

/* Reads obj's "rope_scaling" (and, for longrope, the top-level
 * "original_max_position_embeddings") into cfg->rope; cfg's head_size and seq_len
 * must be final. obj is a config.json object or a manifest's config section (which
 * records them the same way). Refuses an unknown type, a missing or invalid field,
 * naming it (E_UNSUPPORTED for a type, E_FORMAT for a field). Borrowed for the call. */
lorajit_status lj_rope_read(const lj_json_at *at, const struct cJSON *obj, struct lj_config *cfg);
/* Adds "rope_scaling" (null for default) and the top-level original max when it was
 * given to obj, as lj_rope_read reads them back. Returns false when out of memory. */
bool lj_rope_write(struct cJSON *obj, const lj_rope *r);
/* Whether two configs' RoPE scaling is the same (every field as given). */
bool lj_rope_same(const lj_rope *a, const lj_rope *b);
/* The type's name ("default", "linear", ...). */
const char *lj_rope_type_name(int type);
/* Whether the type's frequencies depend on the sequence length (dynamic, longrope). */
bool lj_rope_varies(const struct lj_config *cfg);
/* Whether the type lets a sequence run past max_position_embeddings (all but default). */
bool lj_rope_extends(const struct lj_config *cfg);
/* Floats of one table: inv_freq[head_size / 2] then the cos/sin scale. */
int64_t lj_rope_row_floats(const struct lj_config *cfg);
/* Writes the table (lj_rope_row_floats floats) for a call whose positions end at
 * seq_len (seq_len = max position + 1, as transformers' dynamic_rope_update). row is
 * borrowed for the call. */
void lj_rope_table(const struct lj_config *cfg, int64_t seq_len, float *row);

#endif /* LORAJIT_ROPE_H */
