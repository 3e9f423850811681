/* modules.c — the seven LoRA target modules of a LLaMA block.
 *
 * Maps lj_module ids to their Hugging Face names ("q_proj" ... "down_proj") and
 * parent submodules ("self_attn", "mlp"), and back. Static tables, no state. */
#include <string.h>

#include "formats.h"

static const char *const module_names[LJ_MOD_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
};

/* Static text; "?" for an id outside 0..LJ_MOD_COUNT-1. */
const char *lj_module_name(int m) {
    if (m < 0 || m >= LJ_MOD_COUNT) return "?";
    return module_names[m];
}

/* Static text; "?" for an id outside 0..LJ_MOD_COUNT-1. */
const char *lj_module_parent(int m) {
    if (m < 0 || m >= LJ_MOD_COUNT) return "?";
    return m <= LJ_MOD_O ? "self_attn" : "mlp";
}

int lj_module_from_name(const char *s) {
    if (!s) return -1;
    for (int m = 0; m < LJ_MOD_COUNT; m++)
        if (strcmp(s, module_names[m]) == 0) return m;
    return -1;
}
