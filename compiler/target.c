/* target.c — target machines and the optimisation pipeline.
 * The JIT generates code for the CPU this process runs on (LLVMGetHostCPUName and
 * LLVMGetHostCPUFeatures): AVX-512 where the host has it, AVX2 elsewhere, never
 * assumed. An artifact may instead name an x86-64 level (x86-64, -v2, -v3, -v4) so
 * that it runs on machines older than the build machine; its feature list is kept
 * for the manifest. Optimisation is the new pass manager's "default<O3>".
 * Also the one place that turns an LLVMErrorRef into a status and message, and
 * the process-wide count of compiles (lorajit_compiles_total). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "compiler.h"

/* Process-wide on purpose (anti-pattern 3's listed exception): how many times this
 * process generated machine code, whatever engine or artifact it was for. */
static _Atomic int64_t compiles_total;

void cg_count_compile(void) { atomic_fetch_add(&compiles_total, 1); }

int64_t lorajit_compiles_total(void) { return atomic_load(&compiles_total); }

lorajit_status cg_llvm_error(LLVMErrorRef e, lorajit_status s, const char *what, lj_err *err) {
    if (!e) return LORAJIT_OK;
    char *msg = LLVMGetErrorMessage(e); /* consumes e */
    lj_fail(err, s, "%s: %s", what, msg ? msg : "(no message)");
    LLVMDisposeErrorMessage(msg);
    return s;
}

/* The x86-64 psABI levels and the features each implies (LLVM's X86.td
 * X86_64V{1..4}Features, implied features spelled out). */
static const struct {
    const char *cpu;
    const char *features;
} x86_levels[] = {
    {"x86-64", "+64bit,+cmov,+cx8,+fxsr,+mmx,+sse,+sse2"},
    {"x86-64-v2", "+64bit,+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,+cx16,+sahf,+crc32,+popcnt,+sse3,"
                  "+ssse3,+sse4.1,+sse4.2"},
    {"x86-64-v3", "+64bit,+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,+cx16,+sahf,+crc32,+popcnt,+sse3,"
                  "+ssse3,+sse4.1,+sse4.2,+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,+xsave"},
    {"x86-64-v4", "+64bit,+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,+cx16,+sahf,+crc32,+popcnt,+sse3,"
                  "+ssse3,+sse4.1,+sse4.2,+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,+xsave,"
                  "+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl,+evex512"},
};

lorajit_status cg_target_machine(const char *cpu_name, bool for_jit, LLVMTargetMachineRef *tm,
                                 char **features_out, lj_err *err) {
    *tm = NULL;
    if (features_out) *features_out = NULL;
    bool host = !cpu_name || !*cpu_name || strcmp(cpu_name, "native") == 0;
    const char *level_features = NULL;
    for (size_t i = 0; !host && i < sizeof x86_levels / sizeof x86_levels[0]; i++)
        if (strcmp(cpu_name, x86_levels[i].cpu) == 0) level_features = x86_levels[i].features;
    if (!host && !level_features)
        return lj_fail(err, LORAJIT_E_ARG, "target CPU \"%s\" is not supported: use native, "
                       "x86-64, x86-64-v2, x86-64-v3 or x86-64-v4", cpu_name);
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter())
        return lj_fail(err, LORAJIT_E_COMPILE, "LLVM: no native target for this host");
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = host ? LLVMGetHostCPUName() : NULL;
    char *features = host ? LLVMGetHostCPUFeatures() : NULL;
    char *msg = NULL;
    LLVMTargetRef target;
    lorajit_status st = LORAJIT_OK;
    if (!host && strncmp(triple, "x86_64", 6) != 0) {
        st = lj_fail(err, LORAJIT_E_ARG, "target CPU \"%s\" is an x86-64 level but this LLVM "
                     "targets %s", cpu_name, triple);
    } else if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        st = lj_fail(err, LORAJIT_E_COMPILE, "LLVM: target %s: %s", triple, msg ? msg : "");
    } else {
        /* A named level gets the CPU's own features: "" adds nothing to them. */
        *tm = LLVMCreateTargetMachine(target, triple, host ? cpu : cpu_name, host ? features : "",
                                      LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                      for_jit ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
        if (!*tm)
            st = lj_fail(err, LORAJIT_E_COMPILE, "LLVM: cannot create a target machine for %s",
                         host ? cpu : cpu_name);
    }
    if (!st && features_out) {
        const char *f = host ? features : level_features;
        size_t n = strlen(f) + 1;
        if (!(*features_out = malloc(n))) {
            st = lj_fail(err, LORAJIT_E_NOMEM, "out of memory");
        } else {
            memcpy(*features_out, f, n);
        }
    }
    if (st && *tm) {
        LLVMDisposeTargetMachine(*tm);
        *tm = NULL;
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    if (cpu) LLVMDisposeMessage(cpu);
    if (features) LLVMDisposeMessage(features);
    return st;
}

lorajit_status cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, lj_err *err) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        lorajit_status st = lj_fail(err, LORAJIT_E_COMPILE, "LLVM verifier: %s", msg ? msg : "");
        LLVMDisposeMessage(msg);
        return st;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
    LLVMErrorRef e = LLVMRunPasses(mod, "default<O3>", tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    return cg_llvm_error(e, LORAJIT_E_COMPILE, "LLVM passes", err);
}
