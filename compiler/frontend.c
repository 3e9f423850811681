/* frontend.c — config + schema -> IR, by the architecture table.
 *
 * Input: a parsed config (its arch picks an entry of runtime/formats/arch.c) and
 * the adapter schema. Output: what that entry's front end builds (an unverified
 * ir_graph). Adding a front end is one line in `builders` and its file. */
#include "compiler.h"

typedef ir_graph *(*fe_builder)(const lj_config *cfg, const lj_schema *schema, lj_err *err);

static const fe_builder builders[LJ_FE_COUNT] = {
    [LJ_FE_LLAMA] = fe_llama_build,
};

ir_graph *fe_build(const lj_config *cfg, const lj_schema *schema, lj_err *err) {
    const lj_arch *arch = lj_arch_get(cfg->arch);
    LJ_ASSERT(arch->frontend >= 0 && arch->frontend < LJ_FE_COUNT && builders[arch->frontend]);
    return builders[arch->frontend](cfg, schema, err);
}
