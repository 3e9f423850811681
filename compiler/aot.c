/* aot.c — the files of an ahead-of-time artifact, from an optimised module.
 *   aot_prepare_dir:  creates the folder, removes an earlier manifest.json
 *   aot_emit_object:  model.o (PIC, for the target machine), with lj_abi_version and
 *                     lj_code_hash added as constant globals
 *   aot_link_library: liblorajit_model.so, linked by the system C compiler (cc)
 *   aot_write_header: model.h, the entry points' declarations
 * The manifest (runtime/formats/manifest.c) is written last, by the pipeline, so a folder
 * whose compilation failed half-way holds no manifest and cannot be opened. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compiler.h"

extern char **environ;

#define AOT_OBJECT "model.o"
#define AOT_HEADER "model.h"
#define AOT_LINK_LOG "link.log"
#define AOT_CC "cc"

lorajit_status aot_prepare_dir(const char *dir, lj_err *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot create the artifact folder: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return lj_fail(err, LORAJIT_E_IO, "%s: not a folder", dir);
    char path[4096];
    lorajit_status s = lj_path_join(path, sizeof path, dir, LJ_ARTIFACT_MANIFEST, err);
    if (s) return s;
    if (unlink(path) != 0 && errno != ENOENT)
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot remove the earlier manifest: %s", path, strerror(errno));
    return LORAJIT_OK;
}

/* Adds `const <ty> name = value;` with external linkage to mod. */
static void add_constant(LLVMModuleRef mod, LLVMTypeRef ty, const char *name, unsigned long long value) {
    LLVMValueRef g = LLVMAddGlobal(mod, ty, name);
    LLVMSetInitializer(g, LLVMConstInt(ty, value, 0));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMExternalLinkage);
}

lorajit_status aot_emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, uint64_t code_hash,
                               const char *dir, lj_err *err) {
    char path[4096];
    lorajit_status s = lj_path_join(path, sizeof path, dir, AOT_OBJECT, err);
    if (s) return s;
    LLVMContextRef llctx = LLVMGetModuleContext(mod);
    add_constant(mod, LLVMInt32TypeInContext(llctx), LJ_ABI_SYMBOL, LJ_ABI_VERSION);
    add_constant(mod, LLVMInt64TypeInContext(llctx), LJ_CODE_HASH_SYMBOL, code_hash);
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, path, LLVMObjectFile, &msg)) {
        s = lj_fail(err, LORAJIT_E_COMPILE, "%s: LLVM cannot emit the object file: %s", path, msg ? msg : "");
    } else {
        cg_count_compile(); /* machine code generated */
    }
    LLVMDisposeMessage(msg);
    return s;
}

/* The first line of the linker's log, for a message. */
static void first_line(const char *log_path, char *out, size_t cap) {
    out[0] = '\0';
    FILE *f = fopen(log_path, "r");
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

lorajit_status aot_link_library(const char *dir, lj_err *err) {
    char obj[4096], lib[4096], log[4096];
    lorajit_status s;
    if ((s = lj_path_join(obj, sizeof obj, dir, AOT_OBJECT, err)) ||
        (s = lj_path_join(lib, sizeof lib, dir, LJ_ARTIFACT_LIBRARY, err)) ||
        (s = lj_path_join(log, sizeof log, dir, AOT_LINK_LOG, err)))
        return s;
    char *argv[] = {AOT_CC, "-shared", "-Wl,--no-undefined", "-Wl,-z,noexecstack", "-o", lib, obj, "-lm", NULL};
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return lj_fail(err, LORAJIT_E_NOMEM, "link: out of memory");
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, AOT_CC, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return lj_fail(err, LORAJIT_E_COMPILE, "cannot run the C compiler \"%s\" (searched on PATH) to link %s: "
                       "%s; install one (e.g. apt-get install gcc) or put cc on PATH", AOT_CC, lib, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return lj_fail(err, LORAJIT_E_COMPILE, "link: waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char line[300];
        first_line(log, line, sizeof line);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return lj_fail(err, LORAJIT_E_COMPILE, "cannot run the C compiler \"%s\" to link %s (exit 127: %s)",
                           AOT_CC, lib, line);
        return lj_fail(err, LORAJIT_E_COMPILE, "linking %s with \"%s -shared\" failed (%s %d): %s (full log: %s)",
                       lib, AOT_CC, WIFEXITED(status) ? "exit status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), line, log);
    }
    unlink(log); /* empty on success */
    return LORAJIT_OK;
}

lorajit_status aot_write_header(const char *dir, const lj_layout *L, lj_err *err) {
    char path[4096];
    lorajit_status s = lj_path_join(path, sizeof path, dir, AOT_HEADER, err);
    if (s) return s;
    FILE *f = fopen(path, "w");
    if (!f) return lj_fail(err, LORAJIT_E_IO, "%s: cannot write: %s", path, strerror(errno));
    const lj_config *c = &L->cfg;
    fprintf(f,
            "/* model.h — the entry points of " LJ_ARTIFACT_LIBRARY ", compiled by lorajit.\n"
            " * Generated with manifest.json, which lists the tensors, LoRA sites and target CPU.\n"
            " * The code reads every weight, LoRA slot, the active adapter set, scratch, KV\n"
            " * caches and BLAS through one lj_ctx (lorajit runtime/ctx.h, ABI version %d);\n"
            " * programs normally go through the runtime: lorajit_engine_open_artifact(). */\n"
            "#ifndef LORAJIT_MODEL_H\n#define LORAJIT_MODEL_H\n\n#include <stdint.h>\n\n"
            "#define LORAJIT_MODEL_ABI_VERSION %d\n"
            "#define LORAJIT_MODEL_DIM %lld        /* hidden_size */\n"
            "#define LORAJIT_MODEL_N_LAYERS %lld\n"
            "#define LORAJIT_MODEL_VOCAB_SIZE %lld\n"
            "#define LORAJIT_MODEL_SEQ_LEN %lld    /* KV cache positions per sequence */\n"
            "#define LORAJIT_MODEL_MAX_TOKENS %lld /* tokens per lj_forward call */\n"
            "#define LORAJIT_MODEL_R_MAX %d\n\n"
            "struct lj_ctx;\nstruct lj_active;\n\n"
            "/* tokens[0..n) of one sequence at positions pos0..; logits [n, vocab_size]. Returns 0. */\n"
            "int " LJ_FORWARD_SYMBOL "(const struct lj_ctx *ctx, const int32_t *tokens, int64_t n, int64_t pos0,\n"
            "               float *logits);\n"
            "/* Row i: one token of sequence seq[i] at pos[i] with adapters active[i]; logits [n, vocab_size]. */\n"
            "int " LJ_DECODE_SYMBOL "(const struct lj_ctx *ctx, const int32_t *tokens, int64_t n, const int64_t *pos,\n"
            "              const int32_t *seq, const struct lj_active *const *active, float *logits);\n"
            "extern const int32_t " LJ_ABI_SYMBOL ";  /* = LORAJIT_MODEL_ABI_VERSION */\n"
            "extern const uint64_t " LJ_CODE_HASH_SYMBOL "; /* = manifest.json \"code_hash\" */\n\n"
            "#endif\n",
            LJ_ABI_VERSION, LJ_ABI_VERSION, (long long)c->dim, (long long)c->n_layers,
            (long long)c->vocab_size, (long long)L->schema.seq_len, (long long)L->schema.max_tokens,
            L->schema.r_max);
    if (fclose(f) != 0) return lj_fail(err, LORAJIT_E_IO, "%s: cannot write: %s", path, strerror(errno));
    return LORAJIT_OK;
}

lorajit_status aot_write_text(const char *dir, const char *name, const char *text, lj_err *err) {
    char path[4096];
    lorajit_status s = lj_path_join(path, sizeof path, dir, name, err);
    if (s) return s;
    FILE *f = fopen(path, "w");
    if (!f) return lj_fail(err, LORAJIT_E_IO, "%s: cannot write: %s", path, strerror(errno));
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0 || !ok) return lj_fail(err, LORAJIT_E_IO, "%s: cannot write: %s", path, strerror(errno));
    return LORAJIT_OK;
}
