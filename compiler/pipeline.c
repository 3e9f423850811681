/* pipeline.c — the one compile entry, in two halves, each stage a visible call:
 *   pipeline_ir_build:   config.json -> schema -> front end (IR with LoRA sites) ->
 *                        weight headers (every tensor present, its shape, dtype) ->
 *                        ir_verify -> ir_plan -> ir_verify -> layout
 *   pipeline_code_build: target machine -> codegen (LLVM IR) -> default<O3> ->
 *                        LLJIT (entry points) or model.o (an artifact)
 * Each half times its stages (lj_compile_times). Used by compiler/engine.c (JIT open,
 * lorajit_compile_artifact, lorajit_compile_only) and tests/test_ops.c (half 2).
 * LORAJIT_DUMP=ir,llvm prints those stages to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"

double pipeline_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool dump_wanted(const char *stage) {
    const char *d = getenv("LORAJIT_DUMP");
    return d && strstr(d, stage);
}

/* The IR as malloc'd text, after two comment lines naming the architecture entry
 * used and the config.json keys it does not act on (`lorajit inspect`). NULL when
 * out of memory. */
static char *ir_text(const ir_graph *g, const lj_config *cfg, const char *config_path) {
    char *buf = NULL, ignored[1024], unknown[1024];
    size_t len = 0;
    const lj_arch *a = lj_arch_get(cfg->arch);
    lj_err err = {0};
    if (lj_config_unread_keys(config_path, a, ignored, unknown, sizeof ignored, &err))
        snprintf(unknown, sizeof unknown, "(not listed: %.900s)", err.msg);
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fprintf(f, "# architecture: %s (LLaMA block%s%s%s%s%s), hidden_act %s\n", a->model_type,
            a->bias_fixed ? ", fixed q,k,v biases" : "", (a->block & LJ_BLOCK_QK_NORM) ? ", q_norm/k_norm per head" : "",
            (a->block & LJ_BLOCK_SLIDING_WINDOW) ? ", sliding window" : "",
            lj_arch_linear_module(a, LJ_LIN_QKV) >= 0 ? ", fused qkv_proj/gate_up_proj" : "",
            (a->block & LJ_BLOCK_GEMMA) ? ", norms 1 + w, embeddings x sqrt(hidden_size)" : "", a->hidden_act);
    fprintf(f, "# config.json: ignored %s; unknown %s\n", ignored[0] ? ignored : "none", unknown[0] ? unknown : "none");
    ir_print(g, f);
    fclose(f);
    return buf;
}

void pipeline_ir_free(pipeline_ir *p) {
    ir_graph_free(p->g);
    lj_layout_free(p->L);
    free(p->ir_text);
    memset(p, 0, sizeof *p);
}

lorajit_status pipeline_ir_build(const char *model_dir, const lorajit_options *opts, pipeline_ir *out,
                                 lj_err *err) {
    memset(out, 0, sizeof *out);
    lorajit_options none = {0};
    char path[4096];
    lj_config cfg;
    lj_schema schema;
    double t0 = pipeline_now_ms();
    lorajit_status st = lj_path_join(path, sizeof path, model_dir, "config.json", err);
    if (!st) st = lj_config_read(path, &cfg, err);
    if (!st) st = lj_schema_resolve(opts ? opts : &none, &cfg, &schema, err);
    if (st) return st;
    ir_graph *g = out->g = fe_build(&cfg, &schema, err); /* front end (the architecture table) */
    if (!g) return err->status ? err->status : LORAJIT_E_NOMEM;
    st = fe_weight_dtypes(g, model_dir, err); /* the headers checked: no work for absent weights */
    double t1 = pipeline_now_ms();
    if (!st) st = ir_verify(g);
    if (!st) st = ir_plan(g);
    if (!st) st = ir_verify(g);
    if (st && g->status) lj_fail(err, st, "%s: %s", path, g->msg);
    if (!st && dump_wanted("ir")) ir_print(g, stderr);
    if (!st) st = fe_layout(g, &cfg, &schema, &out->L, err);
    if (!st && !(out->ir_text = ir_text(g, &cfg, path))) st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory printing the IR");
    out->frontend_ms = t1 - t0;
    out->plan_ms = pipeline_now_ms() - t1;
    if (st) pipeline_ir_free(out);
    return st;
}

void pipeline_code_free(pipeline_code *c) {
    jit_session_free(c->jit);
    free(c->triple);
    free(c->cpu);
    free(c->features);
    memset(c, 0, sizeof *c);
}

/* strdup of an LLVM message, which it disposes. NULL when out of memory. */
static char *take_message(char *msg) {
    char *s = lj_strdup(msg ? msg : "");
    LLVMDisposeMessage(msg);
    return s;
}

/* FNV-1a 64 of the optimised module's text: the code's identity. */
static lorajit_status module_hash(LLVMModuleRef mod, uint64_t *out, lj_err *err) {
    char *text = LLVMPrintModuleToString(mod);
    if (!text) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory printing the LLVM module");
    *out = lj_fnv1a64(text, strlen(text), LJ_FNV_OFFSET);
    LLVMDisposeMessage(text);
    return LORAJIT_OK;
}

static void dump_module(LLVMModuleRef mod) {
    char *s = LLVMPrintModuleToString(mod);
    fprintf(stderr, "%s\n", s);
    LLVMDisposeMessage(s);
}

lorajit_status pipeline_code_build(const ir_graph *g, const pipeline_target *t, pipeline_code *out,
                                   lj_err *err) {
    memset(out, 0, sizeof *out);
    bool jit = !t->object_dir;
    LLVMTargetMachineRef tm = NULL;
    double t0 = pipeline_now_ms();
    lorajit_status st = cg_target_machine(t->cpu, jit, &tm, &out->features, err);
    if (st) return st;
    LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef llctx = LLVMOrcThreadSafeContextGetContext(tsctx);
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("lorajit", llctx);
    if (!(out->cpu = take_message(LLVMGetTargetMachineCPU(tm)))) st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory");
    if (!st) st = cg_module_build(g, llctx, mod, out->cpu, out->features, &out->matmuls, err); /* codegen */
    if (!st && !(out->triple = take_message(LLVMGetTargetMachineTriple(tm))))
        st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory");
    double t1 = pipeline_now_ms(), t2 = t1;
    if (!st && jit) { /* optimised and compiled in parts, on threads; LLJIT links the objects */
        LLVMMemoryBufferRef objs[JIT_MAX_PARTS];
        int n_objs = 0;
        st = jit_parts_compile(tsctx, mod, tm, t->cpu, jit_parts_wanted(), dump_wanted("llvm"), objs, &n_objs, err);
        t2 = pipeline_now_ms();
        if (!st) st = jit_session_open_objects(objs, n_objs, &out->jit, &out->forward, &out->decode, err);
        if (!st) out->compiles = jit_session_compiles(out->jit);
    } else if (!st) {
        st = cg_optimize(mod, tm, err); /* default<O3> */
        if (!st && dump_wanted("llvm")) dump_module(mod);
        t2 = pipeline_now_ms();
        if (!st) st = module_hash(mod, &out->code_hash, err);
        if (!st) st = aot_emit_object(mod, tm, out->code_hash, t->layout, out->matmuls.rows_exact, t->object_dir,
                                          err); /* model.o */
        if (!st) out->compiles = 1;
    }
    out->times = (lj_compile_times){.codegen = t1 - t0, .optimize = t2 - t1, .jit = pipeline_now_ms() - t2};
    if (mod) LLVMDisposeModule(mod);
    if (tsctx) LLVMOrcDisposeThreadSafeContext(tsctx);
    LLVMDisposeTargetMachine(tm);
    if (st) pipeline_code_free(out);
    return st;
}
