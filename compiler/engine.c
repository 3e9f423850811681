/* engine.c — the pipeline. Both paths share its front half (compile_front):
 *   config.json + schema -> front end (IR with LoRA slots; weight dtypes from the
 *   safetensors headers) -> ir_verify -> ir_plan
 *   -> layout for the runtime -> codegen (LLVM IR) -> O3 for the target CPU
 * then lorajit_engine_open: -> LLJIT -> lj_engine_start (weights mmap, slots, KV cache)
 * or lorajit_compile_artifact: -> model.o -> liblorajit_model.so -> model.h, model.ir
 *   -> manifest.json (runtime/artifact.c opens the result without LLVM).
 * These are the only places a model is compiled; each runs once per engine/artifact.
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

/* The IR as malloc'd text. NULL when out of memory. */
static char *ir_text(const ir_graph *g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    ir_print(g, f);
    fclose(f);
    return buf;
}

/* What the front half produces; every field owned. */
typedef struct compiled {
    lj_layout *L;                      /* what the code expects: weights, sites, scratch */
    char *ir_text;                     /* the IR as text (malloc'd) */
    LLVMOrcThreadSafeContextRef tsctx;
    LLVMModuleRef mod;                 /* optimised, in tsctx's context */
    LLVMTargetMachineRef tm;
    char *features;                    /* the target's feature list (malloc'd) */
} compiled;

static void compiled_free(compiled *c) {
    lj_layout_free(c->L);
    free(c->ir_text);
    if (c->mod) LLVMDisposeModule(c->mod);
    if (c->tsctx) LLVMOrcDisposeThreadSafeContext(c->tsctx);
    if (c->tm) LLVMDisposeTargetMachine(c->tm);
    free(c->features);
    memset(c, 0, sizeof *c);
}

/* The front half, for cpu (NULL: the host). On failure *out is empty. */
static lorajit_status compile_front(const char *model_dir, const lorajit_options *opts, const char *cpu,
                                    bool for_jit, compiled *out, lj_err *err) {
    memset(out, 0, sizeof *out);
    lorajit_options none = {0};
    char path[4096];
    lj_config cfg;
    lj_schema schema;
    lorajit_status st = lj_path_join(path, sizeof path, model_dir, "config.json", err);
    if (!st) st = lj_config_read(path, &cfg, err);
    if (!st) st = lj_schema_resolve(opts ? opts : &none, &cfg, &schema, err);
    if (st) return st;

    ir_graph *g = fe_build(&cfg, &schema, err); /* front end */
    if (!g) return err->status ? err->status : LORAJIT_E_NOMEM;
    st = fe_weight_dtypes(g, model_dir, err);
    if (!st) st = ir_verify(g);
    if (!st) st = ir_plan(g);
    if (!st) st = ir_verify(g);
    if (st && g->status) lj_fail(err, st, "%s: %s", path, g->msg);
    if (!st && dump_wanted("ir")) ir_print(g, stderr);
    if (!st) st = fe_layout(g, &cfg, &schema, &out->L, err);
    if (!st && !(out->ir_text = ir_text(g))) st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory printing the IR");
    if (!st) st = cg_target_machine(cpu, for_jit, &out->tm, &out->features, err);
    if (!st) {
        out->tsctx = LLVMOrcCreateNewThreadSafeContext();
        LLVMContextRef llctx = LLVMOrcThreadSafeContextGetContext(out->tsctx);
        out->mod = LLVMModuleCreateWithNameInContext("lorajit", llctx);
        st = cg_module_build(g, llctx, out->mod, err); /* codegen */
    }
    if (!st) st = cg_optimize(out->mod, out->tm, err);
    ir_graph_free(g);
    if (st) {
        compiled_free(out);
        return st;
    }
    if (dump_wanted("llvm")) {
        char *s = LLVMPrintModuleToString(out->mod);
        fprintf(stderr, "%s\n", s);
        LLVMDisposeMessage(s);
    }
    return LORAJIT_OK;
}

static void release_jit(void *owner) { jit_session_free(owner); }

lorajit_status lorajit_engine_open(lorajit_engine **out, const char *model_dir, const lorajit_options *opts) {
    if (!out) return LORAJIT_E_ARG;
    lorajit_engine *e = *out = lj_engine_alloc();
    if (!e) return LORAJIT_E_NOMEM;
    lj_err *err = lj_engine_err(e);
    if (!model_dir) return lj_fail(err, LORAJIT_E_ARG, "lorajit_engine_open: model_dir is NULL");
    double t0 = now_ms();

    compiled c;
    lorajit_status st = compile_front(model_dir, opts, NULL, true, &c, err);
    if (st) return st;
    lj_code code = {.ir_text = c.ir_text, .compiles = 1};
    jit_session *js = NULL;
    st = jit_session_open(c.tsctx, c.mod, &js, &code.forward, &code.decode, err); /* ownership of tsctx, mod -> JIT */
    lj_layout *L = c.L;
    c = (compiled){.tm = c.tm, .features = c.features}; /* the rest moved */
    compiled_free(&c);
    if (st) {
        lj_layout_free(L);
        free(code.ir_text);
        return st;
    }
    code.owner = js;
    code.release = release_jit;
    code.compile_ms = now_ms() - t0;
    return lj_engine_start(e, model_dir, L, code); /* ownership of L, code -> engine */
}

/* FNV-1a 64 of the optimised module's text: the code's identity. */
static lorajit_status module_hash(LLVMModuleRef mod, uint64_t *out, lj_err *err) {
    char *text = LLVMPrintModuleToString(mod);
    if (!text) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory printing the LLVM module");
    *out = lj_fnv1a64(text, strlen(text), LJ_FNV_OFFSET);
    LLVMDisposeMessage(text);
    return LORAJIT_OK;
}

/* manifest.json: the layout, the target and the hashes of the IR, code and library. */
static lorajit_status write_manifest(const compiled *c, uint64_t code_hash, const char *dir, lj_err *err) {
    lj_manifest m = {.abi_version = LJ_ABI_VERSION, .L = c->L, .features = c->features, .code_hash = code_hash,
                     .ir_hash = lj_fnv1a64(c->ir_text, strlen(c->ir_text), LJ_FNV_OFFSET)};
    char *triple = LLVMGetTargetMachineTriple(c->tm), *cpu = LLVMGetTargetMachineCPU(c->tm), lib[4096];
    snprintf(m.triple, sizeof m.triple, "%s", triple);
    snprintf(m.cpu, sizeof m.cpu, "%s", cpu);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    lorajit_status st = lj_path_join(lib, sizeof lib, dir, LJ_ARTIFACT_LIBRARY, err);
    if (!st) st = lj_file_hash(lib, &m.library_hash, err);
    if (!st) st = lj_manifest_write(dir, &m, err);
    return st;
}

lorajit_status lorajit_compile_artifact(const char *model_dir, const lorajit_options *opts, const char *target_cpu,
                                        const char *out_dir, char *errbuf, size_t errcap) {
    lj_err err;
    lj_err_clear(&err);
    compiled c = {0};
    uint64_t code_hash = 0;
    lorajit_status st = LORAJIT_OK;
    if (!model_dir || !out_dir) st = lj_fail(&err, LORAJIT_E_ARG, "lorajit_compile_artifact: model_dir or out_dir is NULL");
    if (!st) st = aot_prepare_dir(out_dir, &err);                         /* no manifest until the end */
    if (!st) st = compile_front(model_dir, opts, target_cpu, false, &c, &err);
    if (!st) st = module_hash(c.mod, &code_hash, &err);
    if (!st) st = aot_emit_object(c.mod, c.tm, code_hash, out_dir, &err); /* model.o */
    if (!st) st = aot_link_library(out_dir, &err);                        /* liblorajit_model.so */
    if (!st) st = aot_write_header(out_dir, c.L, &err);                   /* model.h */
    if (!st) st = aot_write_text(out_dir, LJ_ARTIFACT_IR, c.ir_text, &err); /* model.ir */
    if (!st) st = write_manifest(&c, code_hash, out_dir, &err);           /* manifest.json, last */
    compiled_free(&c);
    if (errbuf && errcap) snprintf(errbuf, errcap, "%s", st ? err.msg : "");
    return st;
}
