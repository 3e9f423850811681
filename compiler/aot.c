/* aot.c — the files of an ahead-of-time artifact, from an optimised module.
 *   aot_prepare_dir:    the folder (created if missing; a symbolic link is refused),
 *                       its earlier manifest.json removed, a private staging folder
 *                       (mkdtemp, 0700) inside it where every file below is made
 *   aot_emit_object:    model.o (PIC, for the target machine), with the constants
 *                       lj_abi_version, lj_code_hash, lj_scratch_* and lj_layout_sha256
 *   aot_link_library:   liblorajit_model.so, linked by the system C compiler (cc) from
 *                       absolute paths (never read as options), run without a shell
 *   aot_check_library:  the linked file exports the entry points and constants (read
 *                       from its ELF symbols, nothing loaded)
 *   aot_write_header:   model.h, the entry points' declarations
 *   aot_publish:        renames each file over its name in the folder, manifest.json
 *                       last (a link already there is replaced, never written through)
 * The manifest (runtime/formats/manifest.c) is written by compiler/engine.c into the
 * staging folder last, so a folder whose compilation failed holds no manifest. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#define AOT_STAGE ".lorajit-stage-XXXXXX"

/* The files an artifact holds, in the order they are published (manifest last). */
static const char *const aot_files[] = {AOT_OBJECT, LJ_ARTIFACT_LIBRARY, AOT_HEADER, LJ_ARTIFACT_IR,
                                        LJ_ARTIFACT_MANIFEST};
enum { AOT_N_FILES = sizeof aot_files / sizeof aot_files[0] };

lorajit_status aot_prepare_dir(const char *dir, char *stage, size_t cap, lj_err *err) {
    struct stat st;
    if (!dir[0]) return lj_fail(err, LORAJIT_E_ARG, "the artifact folder is an empty path");
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0)
            return lj_fail(err, LORAJIT_E_IO, "%s: cannot create the artifact folder: %s", dir, strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
        return lj_fail(err, LORAJIT_E_IO, "%s: is a symbolic link; give the folder it points to (an artifact "
                       "folder is written only where it is named)", dir);
    } else if (!S_ISDIR(st.st_mode)) {
        return lj_fail(err, LORAJIT_E_IO, "%s: not a folder (a file is in the way)", dir);
    }
    char abs[PATH_MAX], path[4096];
    if (!realpath(dir, abs)) return lj_fail(err, LORAJIT_E_IO, "%s: %s", dir, strerror(errno));
    lorajit_status s = lj_path_join(path, sizeof path, abs, LJ_ARTIFACT_MANIFEST, err);
    if (s) return s;
    if (unlink(path) != 0 && errno != ENOENT) /* removes a link, never its target */
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot remove the earlier manifest: %s", path, strerror(errno));
    if ((s = lj_path_join(stage, cap, abs, AOT_STAGE, err))) return s;
    if (!mkdtemp(stage))
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot create a staging folder in it: %s", dir, strerror(errno));
    return LORAJIT_OK; /* stage is absolute: it starts with '/' */
}

/* Adds `const <ty> name = value;` with external linkage to mod. */
static void add_global(LLVMModuleRef mod, LLVMTypeRef ty, const char *name, LLVMValueRef value) {
    LLVMValueRef g = LLVMAddGlobal(mod, ty, name);
    LLVMSetInitializer(g, value);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMExternalLinkage);
}

static void add_constant(LLVMModuleRef mod, LLVMTypeRef ty, const char *name, unsigned long long value) {
    add_global(mod, ty, name, LLVMConstInt(ty, value, 0));
}

lorajit_status aot_emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, uint64_t code_hash, const lj_layout *L,
                               bool rows_exact, const char *dir, lj_err *err) {
    char path[4096];
    uint8_t digest[LJ_SHA256_BYTES];
    lorajit_status s = lj_path_join(path, sizeof path, dir, AOT_OBJECT, err);
    if (!s) s = lj_layout_digest(L, digest, err);
    if (s) return s;
    LLVMContextRef llctx = LLVMGetModuleContext(mod);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(llctx);
    add_constant(mod, LLVMInt32TypeInContext(llctx), LJ_ABI_SYMBOL, LJ_ABI_VERSION);
    add_constant(mod, i64, LJ_CODE_HASH_SYMBOL, code_hash);
    add_constant(mod, i64, LJ_SCRATCH_PER_TOKEN_SYMBOL, (unsigned long long)L->scratch_per_token);
    add_constant(mod, i64, LJ_SCRATCH_FIXED_SYMBOL, (unsigned long long)L->scratch_fixed);
    add_constant(mod, LLVMInt32TypeInContext(llctx), LJ_ROWS_EXACT_SYMBOL, rows_exact ? 1 : 0);
    add_global(mod, LLVMArrayType2(LLVMInt8TypeInContext(llctx), LJ_SHA256_BYTES), LJ_LAYOUT_DIGEST_SYMBOL,
               LLVMConstStringInContext(llctx, (const char *)digest, LJ_SHA256_BYTES, 1));
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, path, LLVMObjectFile, &msg)) { /* a new file in the staging folder */
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
    if (dir[0] != '/') return lj_fail(err, LORAJIT_E_ARG, "link: %s is not an absolute path", dir);
    if ((s = lj_path_join(obj, sizeof obj, dir, AOT_OBJECT, err)) ||
        (s = lj_path_join(lib, sizeof lib, dir, LJ_ARTIFACT_LIBRARY, err)) ||
        (s = lj_path_join(log, sizeof log, dir, AOT_LINK_LOG, err)))
        return s;
    /* argv, no shell; lib and obj start with '/', so cc never reads them as options */
    char *argv[] = {AOT_CC, "-shared", "-Wl,--no-undefined", "-Wl,-z,noexecstack", "-o", lib, obj, "-lm", NULL};
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return lj_fail(err, LORAJIT_E_NOMEM, "link: out of memory");
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
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
        return lj_fail(err, LORAJIT_E_COMPILE, "linking %s with \"%s -shared\" failed (%s %d): %s",
                       lib, AOT_CC, WIFEXITED(status) ? "exit status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), line);
    }
    unlink(log); /* empty on success */
    return LORAJIT_OK;
}

lorajit_status aot_check_library(const char *dir, uint64_t code_hash, const lj_layout *L, lj_err *err) {
    char path[4096], *data = NULL;
    size_t len;
    lj_library_consts k;
    uint8_t want[LJ_SHA256_BYTES];
    lorajit_status s = lj_path_join(path, sizeof path, dir, LJ_ARTIFACT_LIBRARY, err);
    if (!s) s = lj_read_file(path, &data, &len, err);
    if (!s) s = lj_library_consts_read(data, len, path, &k, err);
    if (!s) s = lj_layout_digest(L, want, err);
    free(data);
    if (!s && (k.abi != LJ_ABI_VERSION || k.code_hash != code_hash || k.scratch_per_token != L->scratch_per_token ||
               k.scratch_fixed != L->scratch_fixed || memcmp(k.layout_sha256, want, sizeof want) != 0))
        s = lj_fail(err, LORAJIT_E_COMPILE, "%s: the linked library's constants are not the compiled ones", path);
    return s;
}

lorajit_status aot_write_header(const char *dir, const lj_layout *L, lj_err *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return lj_fail(err, LORAJIT_E_NOMEM, "%s/" AOT_HEADER ": out of memory", dir);
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
            "extern const uint64_t " LJ_CODE_HASH_SYMBOL "; /* = manifest.json \"code_hash\" */\n"
            "extern const int64_t " LJ_SCRATCH_PER_TOKEN_SYMBOL ", " LJ_SCRATCH_FIXED_SYMBOL
            "; /* = manifest.json \"scratch_floats\" */\n"
            "extern const uint8_t " LJ_LAYOUT_DIGEST_SYMBOL "[32]; /* SHA-256 of the manifest's layout */\n"
            "extern const int32_t " LJ_ROWS_EXACT_SYMBOL "; /* 1: a row's numbers never depend on the rows beside it */\n\n"
            "#endif\n",
            LJ_ABI_VERSION, LJ_ABI_VERSION, (long long)c->dim, (long long)c->n_layers,
            (long long)c->vocab_size, (long long)L->schema.seq_len, (long long)L->schema.max_tokens,
            L->schema.r_max);
    lorajit_status s = fclose(f) != 0 || !text ? lj_fail(err, LORAJIT_E_NOMEM, "%s/" AOT_HEADER ": out of memory", dir)
                                               : lj_file_replace(dir, AOT_HEADER, text, len, err);
    free(text);
    return s;
}

lorajit_status aot_write_text(const char *dir, const char *name, const char *text, lj_err *err) {
    return lj_file_replace(dir, name, text, strlen(text), err);
}

lorajit_status aot_publish(const char *stage, lj_err *err) {
    char from[4096], to[4096], parent[4096];
    snprintf(parent, sizeof parent, "%s", stage);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = '\0'; /* the folder, as resolved when the stage was made */
    lorajit_status s = LORAJIT_OK;
    for (int i = 0; i < AOT_N_FILES && !s; i++)
        if (!(s = lj_path_join(from, sizeof from, stage, aot_files[i], err)) &&
            !(s = lj_path_join(to, sizeof to, parent, aot_files[i], err)))
            s = lj_file_rename(from, to, err);
    if (!s) aot_discard(stage); /* empty by now */
    return s;
}

void aot_discard(const char *stage) {
    char path[4096];
    if (!stage[0]) return;
    for (int i = 0; i < AOT_N_FILES; i++)
        if (snprintf(path, sizeof path, "%s/%s", stage, aot_files[i]) < (int)sizeof path) unlink(path);
    if (snprintf(path, sizeof path, "%s/%s", stage, AOT_LINK_LOG) < (int)sizeof path) unlink(path);
    rmdir(stage);
}
