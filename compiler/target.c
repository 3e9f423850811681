/* target.c — the host target machine and the optimisation pipeline.
 * Code is generated for the CPU this process runs on (LLVMGetHostCPUName and
 * LLVMGetHostCPUFeatures): AVX-512 where the host has it, AVX2 elsewhere, never
 * assumed. Optimisation is the new pass manager's "default<O3>".
 * Also the one place that turns an LLVMErrorRef into a status and message. */
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "compiler.h"

lorajit_status cg_llvm_error(LLVMErrorRef e, lorajit_status s, const char *what, lj_err *err) {
    if (!e) return LORAJIT_OK;
    char *msg = LLVMGetErrorMessage(e); /* consumes e */
    lj_fail(err, s, "%s: %s", what, msg ? msg : "(no message)");
    LLVMDisposeErrorMessage(msg);
    return s;
}

lorajit_status cg_host_target(LLVMTargetMachineRef *tm, lj_err *err) {
    *tm = NULL;
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter())
        return lj_fail(err, LORAJIT_E_COMPILE, "LLVM: no native target for this host");
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    char *msg = NULL;
    LLVMTargetRef target;
    lorajit_status st = LORAJIT_OK;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        st = lj_fail(err, LORAJIT_E_COMPILE, "LLVM: target %s: %s", triple, msg ? msg : "");
    } else {
        *tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                      LLVMRelocPIC, LLVMCodeModelJITDefault);
        if (!*tm) st = lj_fail(err, LORAJIT_E_COMPILE, "LLVM: cannot create a target machine for %s", cpu);
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
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
