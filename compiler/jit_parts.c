/* jit_parts.c — the JIT's optimisation and machine code on several threads.
 *
 * One module's default<O3> and code generation run on one thread (LLVM has no
 * parallel pass manager): at TinyLlama's shape ~300 ms each, most of an engine's open.
 * The module's function definitions are split into parts, each a copy of the module
 * (through bitcode, in a context of its own) in which the other parts' functions are
 * declarations; the parts are optimised and compiled to object files concurrently,
 * each with a target machine of its own, and LLJIT links the objects (jit.c). Every
 * definition gets external linkage so that a call into another part resolves when the
 * objects are linked (the module defines no globals, and its function names are
 * unique). The entry points stay in part 0. Functions are dealt largest first (by
 * instruction count) to the part with the fewest instructions so far. Nothing is
 * inlined across parts, and nothing was: every generated kernel is a noinline function
 * (cg_kernel_begin), so each function's code is what one module gives; what a part
 * loses is interprocedural facts about the others' functions (internal linkage).
 * LORAJIT_COMPILE_THREADS=N (1..JIT_MAX_PARTS) sets the parts; the default is the
 * online CPUs, at most JIT_MAX_PARTS. One part skips the bitcode copy. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "compiler.h"

/* One part: its module (owned until the thread is done) and what the thread made. */
typedef struct jit_part {
    LLVMOrcThreadSafeContextRef tsctx; /* owns mod's context */
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;           /* part 0: the caller's; others owned, made on the calling
                                          thread (LLVM's target registration is not safe to run
                                          on two threads) */
    bool dump;                         /* LORAJIT_DUMP=llvm: print the optimised part */
    LLVMMemoryBufferRef obj;           /* the object file, on success */
    lorajit_status st;
    lj_err err;
} jit_part;

int jit_parts_wanted(void) {
    const char *v = getenv("LORAJIT_COMPILE_THREADS");
    long n = v && *v ? strtol(v, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > JIT_MAX_PARTS ? JIT_MAX_PARTS : (int)n;
}

/* Instructions in f's body. */
static long fn_size(LLVMValueRef f) {
    long n = 0;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
        for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) n++;
    return n;
}

/* part_of[k] for the k-th function definition of mod (module order): the entry
 * points in part 0, the rest dealt largest first to the lightest part. size:
 * scratch of n_defs. */
static void deal(LLVMModuleRef mod, int n_parts, int *part_of, long *size, int n_defs) {
    long load[JIT_MAX_PARTS] = {0};
    int k = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f)) continue;
        const char *name = LLVMGetValueName(f);
        bool entry = !strcmp(name, LJ_FORWARD_SYMBOL) || !strcmp(name, LJ_DECODE_SYMBOL);
        part_of[k] = entry ? 0 : -1;
        size[k] = fn_size(f);
        if (entry) load[0] += size[k];
        k++;
    }
    for (;;) { /* the largest function not dealt yet, to the lightest part */
        int best = -1, p = 0;
        for (int i = 0; i < n_defs; i++)
            if (part_of[i] < 0 && (best < 0 || size[i] > size[best])) best = i;
        if (best < 0) break;
        for (int q = 1; q < n_parts; q++)
            if (load[q] < load[p]) p = q;
        part_of[best] = p;
        load[p] += size[best];
    }
}

/* In mod (a copy of the whole module): every definition external; those of other
 * parts replaced by declarations of the same type and calling convention (appended
 * to the function list, so the walk passes them as declarations). false when out of
 * memory. */
static bool keep_part(LLVMModuleRef mod, const int *part_of, int part) {
    int k = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod), next; f; f = next) {
        next = LLVMGetNextFunction(f);
        if (LLVMIsDeclaration(f)) continue;
        LLVMSetLinkage(f, LLVMExternalLinkage);
        LLVMSetVisibility(f, LLVMDefaultVisibility);
        if (part_of[k++] == part) continue;
        size_t len;
        const char *was = LLVMGetValueName2(f, &len);
        char *name = strndup(was, len);
        if (!name) return false;
        LLVMSetValueName2(f, "", 0); /* frees the name for the declaration */
        LLVMValueRef d = LLVMAddFunction(mod, name, LLVMGlobalGetValueType(f));
        LLVMSetFunctionCallConv(d, LLVMGetFunctionCallConv(f));
        LLVMReplaceAllUsesWith(f, d);
        LLVMDeleteFunction(f);
        free(name);
    }
    return true;
}

static void *part_main(void *arg) {
    jit_part *p = arg;
    char *msg = NULL;
    p->st = cg_optimize(p->mod, p->tm, &p->err); /* default<O3> */
    if (!p->st && p->dump) {
        char *s = LLVMPrintModuleToString(p->mod);
        fprintf(stderr, "%s\n", s);
        LLVMDisposeMessage(s);
    }
    if (!p->st && LLVMTargetMachineEmitToMemoryBuffer(p->tm, p->mod, LLVMObjectFile, &msg, &p->obj))
        p->st = lj_fail(&p->err, LORAJIT_E_COMPILE, "LLVM code generation: %s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return NULL;
}

/* Runs the pass manager once over an empty module on this thread, before the parts'
 * threads: LLVM creates some process-wide state lazily on a pass manager's first run
 * (the timers' lock), published with atomics that ThreadSanitizer cannot see in an
 * uninstrumented libLLVM; made here, it happens before the threads (pthread_create). */
static void warm_up(LLVMTargetMachineRef tm) {
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("warm_up", ctx);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m, "default<O0>", tm, opts);
    if (e) LLVMConsumeError(e); /* nothing rides on it */
    LLVMDisposePassBuilderOptions(opts);
    LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
}

lorajit_status jit_parts_compile(LLVMOrcThreadSafeContextRef tsctx, LLVMModuleRef mod, LLVMTargetMachineRef tm,
                                 const char *cpu, int n_parts, bool dump, LLVMMemoryBufferRef *objs, int *n_objs,
                                 lj_err *err) {
    jit_part parts[JIT_MAX_PARTS];
    pthread_t tid[JIT_MAX_PARTS];
    bool started[JIT_MAX_PARTS] = {false};
    int n_defs = 0, *part_of = NULL;
    long *size = NULL;
    lorajit_status st = LORAJIT_OK;
    *n_objs = 0;
    memset(parts, 0, sizeof parts);
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) n_defs += !LLVMIsDeclaration(f);
    if (n_parts > n_defs) n_parts = n_defs; /* n_parts >= 1: the module defines lj_forward */
    parts[0] = (jit_part){.tsctx = tsctx, .mod = mod, .tm = tm, .dump = dump};
    if (n_parts > 1) {
        LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(mod);
        part_of = calloc((size_t)n_defs, sizeof *part_of);
        size = calloc((size_t)n_defs, sizeof *size);
        if (!bc || !part_of || !size) st = lj_fail(err, LORAJIT_E_NOMEM, "JIT: out of memory splitting the module");
        if (!st) deal(mod, n_parts, part_of, size, n_defs);
        for (int p = 1; p < n_parts && !st; p++) {
            parts[p] = (jit_part){.tsctx = LLVMOrcCreateNewThreadSafeContext(), .dump = dump};
            if (LLVMParseBitcodeInContext2(LLVMOrcThreadSafeContextGetContext(parts[p].tsctx), bc, &parts[p].mod))
                st = lj_fail(err, LORAJIT_E_COMPILE, "JIT: cannot read back the module's bitcode");
            else if (!keep_part(parts[p].mod, part_of, p))
                st = lj_fail(err, LORAJIT_E_NOMEM, "JIT: out of memory splitting the module");
        }
        if (!st && !keep_part(mod, part_of, 0)) st = lj_fail(err, LORAJIT_E_NOMEM, "JIT: out of memory splitting the module");
        if (bc) LLVMDisposeMemoryBuffer(bc);
    }
    for (int p = 1; p < n_parts && !st; p++) st = cg_target_machine(cpu, true, &parts[p].tm, NULL, err);
    if (!st && n_parts > 1) warm_up(parts[0].tm);
    for (int p = 1; p < n_parts && !st; p++) /* part 0 on this thread */
        started[p] = pthread_create(&tid[p], NULL, part_main, &parts[p]) == 0;
    if (!st) part_main(&parts[0]);
    for (int p = 1; p < n_parts; p++) {
        if (started[p]) pthread_join(tid[p], NULL);
        else if (!st && parts[p].mod) part_main(&parts[p]); /* no thread to be had: here */
    }
    for (int p = 0; p < n_parts; p++) {
        if (!st && parts[p].st) {
            st = parts[p].st;
            lj_fail(err, st, "%s", parts[p].err.msg);
        }
        if (p > 0 && parts[p].tm) LLVMDisposeTargetMachine(parts[p].tm);
        if (p > 0 && parts[p].mod) LLVMDisposeModule(parts[p].mod);
        if (p > 0 && parts[p].tsctx) LLVMOrcDisposeThreadSafeContext(parts[p].tsctx);
    }
    for (int p = 0; p < n_parts; p++) {
        if (!st && parts[p].obj) objs[(*n_objs)++] = parts[p].obj;
        else if (parts[p].obj) LLVMDisposeMemoryBuffer(parts[p].obj);
    }
    free(part_of);
    free(size);
    return st;
}
