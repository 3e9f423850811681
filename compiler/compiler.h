/* compiler.h — internal header of compiler/: every non-static function, under its
 * file's banner. compiler/ builds on ir/ and on runtime's readers (config, schema,
 * layout) and glues the JIT path: front end -> ir_verify -> ir_plan -> codegen ->
 * optimise -> JIT -> lj_engine_start (compiler/engine.c reads as that list). */
#ifndef LORAJIT_COMPILER_H
#define LORAJIT_COMPILER_H

#include "ir.h"
#include "runtime.h"

/* ---- frontend_llama.c: config + schema -> IR ----
 * Builds the whole LLaMA forward pass (llama2.c's forward(), HF tensor names) with
 * a LORA node after every linear whose module is in schema->target_mask. Weight
 * ids follow creation order; site ids follow (layer, q,k,v,o,gate,up,down).
 * Caller owns the result; free with ir_graph_free(). On failure returns NULL and
 * err names the config field or node. */
ir_graph *fe_llama_build(const lj_config *cfg, const lj_schema *schema, lj_err *err);

/* ---- layout.c: IR -> the runtime's lj_layout ----
 * Requires a planned graph. Lists weights (by weight id: tensor name, shape) and
 * LoRA sites (layer, module, in, out), copies cfg and schema and the scratch sizes.
 * Caller owns *out; free with lj_layout_free(). */
lorajit_status fe_layout(const ir_graph *g, const lj_config *cfg, const lj_schema *schema,
                         lj_layout **out, lj_err *err);

#endif /* LORAJIT_COMPILER_H */
