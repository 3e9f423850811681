/* engine.c — the public compile calls: the two halves of pipeline.c, then what
 * each one's code goes to:
 *   lorajit_engine_open:      IR -> JIT -> lj_engine_start (weights mmap, slots, KV cache)
 *   lorajit_compile_artifact: IR -> model.o -> liblorajit_model.so (its exports
 *                             checked) -> model.h, model.ir -> manifest.json, all in a
 *                             staging folder, then renamed in (serving/artifact.c opens
 *                             the artifact without LLVM)
 *   lorajit_compile_only:     IR -> JIT, then dropped (checks and times a config)
 * These are the only places a model is compiled; each compiles once per call.
 * target.c's lorajit_compiles_total counts the machine code they generate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

/* Both halves' stage times in one record. */
static lj_compile_times stage_times(const pipeline_ir *ir, const pipeline_code *c) {
    lj_compile_times t = c->times;
    t.frontend = ir->frontend_ms;
    t.plan = ir->plan_ms;
    return t;
}

static void release_jit(void *owner) { jit_session_free(owner); }
static int64_t jit_compiles(const void *owner) { return jit_session_compiles(owner); }

lorajit_status lorajit_engine_open(lorajit_engine **out, const char *model_dir, const lorajit_options *opts) {
    if (!out) return LORAJIT_E_ARG;
    lorajit_engine *e = *out = lj_engine_alloc();
    if (!e) return LORAJIT_E_NOMEM;
    lj_err *err = lj_engine_err(e);
    if (!model_dir) return lj_fail(err, LORAJIT_E_ARG, "lorajit_engine_open: model_dir is NULL");
    if (lj_engine_threads(e, opts)) return LORAJIT_E_ARG; /* the message is on e */
    double t0 = pipeline_now_ms();
    pipeline_ir ir;
    pipeline_code c;
    lorajit_status st = pipeline_ir_build(model_dir, opts, &ir, err);
    if (!st) st = pipeline_code_build(ir.g, &(pipeline_target){0}, &c, err); /* JIT for this host */
    if (st) {
        pipeline_ir_free(&ir);
        return st;
    }
    lj_code code = {.forward = c.forward, .decode = c.decode, .owner = c.jit, .release = release_jit,
                    .ir_text = ir.ir_text, .compiles = jit_compiles, .compile_ms = pipeline_now_ms() - t0,
                    .times = stage_times(&ir, &c), .rows_exact = c.matmuls.rows_exact};
    lj_layout *L = ir.L;
    ir.ir_text = NULL, ir.L = NULL, c.jit = NULL; /* moved into code and L */
    pipeline_ir_free(&ir);
    pipeline_code_free(&c);
    return lj_engine_start(e, model_dir, L, code); /* ownership of L, code -> engine */
}

/* manifest.json: the layout, the target, the code identity and the SHA-256 of the IR
 * text and of the library, into the staging folder dir. */
static lorajit_status write_manifest(const pipeline_ir *ir, const pipeline_code *c, const char *dir,
                                     lj_err *err) {
    lj_manifest m = {.abi_version = LJ_ABI_VERSION, .L = ir->L, .features = c->features, .code_hash = c->code_hash};
    char lib[4096], *data = NULL;
    size_t len;
    snprintf(m.triple, sizeof m.triple, "%s", c->triple);
    snprintf(m.cpu, sizeof m.cpu, "%s", c->cpu);
    lorajit_status st = lj_path_join(lib, sizeof lib, dir, LJ_ARTIFACT_LIBRARY, err);
    if (!st) st = lj_read_file(lib, &data, &len, err);
    if (!st && (!lj_sha256_hex(data, len, m.library_sha256) ||
                !lj_sha256_hex(ir->ir_text, strlen(ir->ir_text), m.ir_sha256)))
        st = lj_fail(err, LORAJIT_E_NOMEM, "%s: cannot compute its SHA-256", lib);
    free(data);
    if (!st) st = lj_manifest_write(dir, &m, err);
    return st;
}

lorajit_status lorajit_compile_artifact(const char *model_dir, const lorajit_options *opts, const char *target_cpu,
                                        const char *out_dir, char *errbuf, size_t errcap) {
    lj_err err;
    lj_err_clear(&err);
    pipeline_ir ir = {0};
    pipeline_code c = {0};
    char stage[4096] = "";
    lorajit_status st = LORAJIT_OK;
    if (!model_dir || !out_dir) st = lj_fail(&err, LORAJIT_E_ARG, "lorajit_compile_artifact: model_dir or out_dir is NULL");
    if (!st) st = aot_prepare_dir(out_dir, stage, sizeof stage, &err); /* no manifest until the end */
    if (!st) st = pipeline_ir_build(model_dir, opts, &ir, &err);
    if (!st) st = pipeline_code_build(ir.g, &(pipeline_target){target_cpu, stage, ir.L}, &c, &err); /* model.o */
    if (!st) st = aot_link_library(stage, &err);                          /* liblorajit_model.so */
    if (!st) st = aot_check_library(stage, c.code_hash, ir.L, &err);      /* its exports, before success */
    if (!st) st = aot_write_header(stage, ir.L, &err);                    /* model.h */
    if (!st) st = aot_write_text(stage, LJ_ARTIFACT_IR, ir.ir_text, &err); /* model.ir */
    if (!st) st = write_manifest(&ir, &c, stage, &err);                   /* manifest.json */
    if (!st) st = aot_publish(stage, &err);                               /* renamed in, manifest last */
    if (st) aot_discard(stage);
    pipeline_ir_free(&ir);
    pipeline_code_free(&c);
    if (errbuf && errcap) snprintf(errbuf, errcap, "%s", st ? err.msg : "");
    return st;
}

lorajit_status lorajit_compile_only(const char *model_dir, const lorajit_options *opts, lorajit_stats *stats,
                                    char *errbuf, size_t errcap) {
    lj_err err;
    lj_err_clear(&err);
    pipeline_ir ir = {0};
    pipeline_code c = {0};
    lorajit_status st = LORAJIT_OK;
    double t0 = pipeline_now_ms();
    if (!model_dir) st = lj_fail(&err, LORAJIT_E_ARG, "lorajit_compile_only: model_dir is NULL");
    if (!st) st = pipeline_ir_build(model_dir, opts, &ir, &err);
    if (!st) st = pipeline_code_build(ir.g, &(pipeline_target){0}, &c, &err); /* JIT for this host */
    if (!st && stats) {
        lj_compile_times t = stage_times(&ir, &c);
        *stats = (lorajit_stats){.compiles = c.compiles, .compile_ms = pipeline_now_ms() - t0};
        lj_stats_set_times(stats, &t);
    }
    pipeline_ir_free(&ir);
    pipeline_code_free(&c);
    if (errbuf && errcap) snprintf(errbuf, errcap, "%s", st ? err.msg : "");
    return st;
}
