/* test_jit.c — the LLJIT session's error path and its compile count.
 *
 * (a) A module that defines `memcpy` (which the session already defines as a
 *     process symbol) is refused when added to LLJIT: jit_session_open returns
 *     E_COMPILE naming "add module", the module having gone to LLJIT also on failure
 *     (disposing it again was a double free: run under ASan, LORAJIT_SANITIZE=ON),
 *     and nothing was compiled (lorajit_compiles_total unchanged).
 * (b) A module with the two entry points compiles exactly once: the session's count
 *     and the process-wide count each go up by 1, and both entry points resolve.
 * Run from tests/ (no files needed). */
#include <string.h>

#include "check.h"
#include "compiler.h"

/* A module of context ts holding `void name(void) { ret }` for each name. */
static LLVMModuleRef module_with(LLVMOrcThreadSafeContextRef ts, const char *const *names, int n) {
    LLVMContextRef llctx = LLVMOrcThreadSafeContextGetContext(ts);
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("t", llctx);
    LLVMTypeRef fn_ty = LLVMFunctionType(LLVMVoidTypeInContext(llctx), NULL, 0, 0);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(llctx);
    for (int i = 0; i < n; i++) {
        LLVMValueRef fn = LLVMAddFunction(mod, names[i], fn_ty);
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llctx, fn, "entry"));
        LLVMBuildRetVoid(b);
    }
    LLVMDisposeBuilder(b);
    return mod;
}

int main(void) {
    lj_err err = {0};
    LLVMTargetMachineRef tm = NULL; /* initialises the native target, as the pipeline does */
    CHECK(cg_target_machine(NULL, true, &tm, NULL, &err) == LORAJIT_OK, "%s", err.msg);
    LLVMDisposeTargetMachine(tm);

    /* (a) refused at add: ownership went to LLJIT */
    static const char *const clash[] = {"memcpy"};
    LLVMOrcThreadSafeContextRef ts = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = module_with(ts, clash, 1);
    jit_session *js = NULL;
    lj_forward_fn fwd = NULL;
    lj_decode_fn dec = NULL;
    int64_t c0 = lorajit_compiles_total();
    lorajit_status s = jit_session_open(ts, mod, &js, &fwd, &dec, &err);
    CHECK(s == LORAJIT_E_COMPILE && strstr(err.msg, "add module") && !js && !fwd,
          "a module redefining memcpy: status %d, \"%s\"", s, err.msg);
    CHECK(lorajit_compiles_total() == c0, "a refused module moved the count");

    /* (b) the entry points: one compile */
    static const char *const entries[] = {LJ_FORWARD_SYMBOL, LJ_DECODE_SYMBOL};
    ts = LLVMOrcCreateNewThreadSafeContext();
    mod = module_with(ts, entries, 2);
    lj_err_clear(&err);
    s = jit_session_open(ts, mod, &js, &fwd, &dec, &err);
    CHECK(s == LORAJIT_OK && fwd && dec, "entry points: %s", err.msg);
    CHECK(s || jit_session_compiles(js) == 1, "session compiles %lld, want 1", (long long)jit_session_compiles(js));
    CHECK(lorajit_compiles_total() == c0 + 1, "process-wide +%lld, want 1", (long long)(lorajit_compiles_total() - c0));
    jit_session_free(js);
    return check_summary("test_jit");
}
