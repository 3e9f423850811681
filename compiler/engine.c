/* engine.c — lorajit_engine_open: the whole JIT pipeline in one function.
 *   config.json + schema -> front end (IR with LoRA slots) -> ir_verify -> ir_plan
 *   -> layout for the runtime -> codegen (LLVM IR) -> O3 for the host -> LLJIT
 *   -> lj_engine_start (weights mmap, slot buffers, KV cache).
 * This is the only place a model is compiled, and it runs once per engine.
 * LORAJIT_DUMP=ir,llvm in the environment prints those stages to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool dump_wanted(const char *stage) {
    const char *d = getenv("LORAJIT_DUMP");
    return d && strstr(d, stage);
}

/* The IR as malloc'd text (for lorajit_engine_print_ir). NULL when out of memory. */
static char *ir_text(const ir_graph *g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    ir_print(g, f);
    fclose(f);
    return buf;
}

static void release_jit(void *owner) { jit_session_free(owner); }

/* Compiles planned graph g to a forward function. Fills code (owner, forward). */
static lorajit_status compile_graph(const ir_graph *g, lj_code *code, lj_err *err) {
    LLVMTargetMachineRef tm = NULL;
    lorajit_status st = cg_host_target(&tm, err);
    if (st) return st;
    LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("lorajit", LLVMOrcThreadSafeContextGetContext(tsctx));
    st = cg_module_build(g, LLVMOrcThreadSafeContextGetContext(tsctx), mod, err);
    if (!st) st = cg_optimize(mod, tm, err);
    LLVMDisposeTargetMachine(tm);
    if (st) {
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
        return st;
    }
    if (dump_wanted("llvm")) {
        char *s = LLVMPrintModuleToString(mod);
        fprintf(stderr, "%s\n", s);
        LLVMDisposeMessage(s);
    }
    jit_session *js = NULL;
    st = jit_session_open(tsctx, mod, &js, &code->forward, &code->decode, err); /* ownership of tsctx, mod -> JIT */
    if (st) return st;
    code->owner = js;
    code->release = release_jit;
    return LORAJIT_OK;
}

lorajit_status lorajit_engine_open(lorajit_engine **out, const char *model_dir, const lorajit_options *opts) {
    if (!out) return LORAJIT_E_ARG;
    lorajit_engine *e = *out = lj_engine_alloc();
    if (!e) return LORAJIT_E_NOMEM;
    lj_err *err = lj_engine_err(e);
    if (!model_dir) return lj_fail(err, LORAJIT_E_ARG, "lorajit_engine_open: model_dir is NULL");
    lorajit_options none = {0};
    double t0 = now_ms();

    char path[4096];
    lj_config cfg;
    lj_schema schema;
    lorajit_status st = lj_path_join(path, sizeof path, model_dir, "config.json", err);
    if (!st) st = lj_config_read(path, &cfg, err);
    if (!st) st = lj_schema_resolve(opts ? opts : &none, &cfg, &schema, err);
    if (st) return st;

    ir_graph *g = fe_llama_build(&cfg, &schema, err); /* front end */
    if (!g) return err->status ? err->status : LORAJIT_E_NOMEM;
    st = ir_verify(g);
    if (!st) st = ir_plan(g);
    if (!st) st = ir_verify(g);
    if (st) {
        lj_fail(err, st, "%s: %s", path, g->msg);
        ir_graph_free(g);
        return st;
    }
    if (dump_wanted("ir")) ir_print(g, stderr);

    lj_layout *L = NULL;
    lj_code code = {0};
    st = fe_layout(g, &cfg, &schema, &L, err);
    if (!st) st = compile_graph(g, &code, err);
    code.ir_text = st ? NULL : ir_text(g);
    ir_graph_free(g);
    if (st) {
        lj_layout_free(L);
        return st;
    }
    code.compiles = 1;
    code.compile_ms = now_ms() - t0;
    return lj_engine_start(e, model_dir, L, code); /* ownership of L, code -> engine */
}
