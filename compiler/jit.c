/* jit.c — the ORC LLJIT session: takes object files compiled for the host
 * (jit_parts.c; the engine's path) or an optimised module that LLJIT compiles itself
 * (test_jit), links them and returns the address of lj_forward. Every object file
 * LLJIT's compiler produces passes a transform that counts it; objects given already
 * compiled count as one compile (per session and process-wide: where JIT machine
 * code is generated). The libm functions the kernels call
 * (expf, powf, sinf, cosf) and memcpy/memset are defined in the JIT as absolute
 * symbols taken from this process, so lookups never depend on what the linker
 * kept (--as-needed); BLAS is reached through ctx pointers, not symbols. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/LLJIT.h>

#include "compiler.h"

struct jit_session {
    LLVMOrcLLJITRef jit;
    _Atomic int64_t compiles; /* objects this session's compiler produced */
};

int64_t jit_session_compiles(const jit_session *s) {
    return atomic_load(&((jit_session *)s)->compiles);
}

/* The object layer's transform: runs once per module compiled to machine code;
 * counts it and passes the object on unchanged. */
static LLVMErrorRef count_object(void *ctx, LLVMMemoryBufferRef *obj) {
    jit_session *s = ctx;
    atomic_fetch_add(&s->compiles, 1);
    cg_count_compile();
    return NULL; /* LLVMErrorSuccess */
}

void jit_session_free(jit_session *s) {
    if (!s) return;
    if (s->jit) LLVMOrcDisposeLLJIT(s->jit);
    free(s);
}

/* The process symbols generated code may call. */
static LLVMErrorRef define_libc_symbols(LLVMOrcLLJITRef jit) {
    static const struct { const char *name; void *addr; } syms[] = {
        {"expf", (void *)expf}, {"powf", (void *)powf}, {"sinf", (void *)sinf},
        {"cosf", (void *)cosf}, {"sqrtf", (void *)sqrtf}, {"memcpy", (void *)memcpy},
        {"memset", (void *)memset}, {"memmove", (void *)memmove},
    };
    enum { N = sizeof syms / sizeof syms[0] };
    LLVMOrcCSymbolMapPair pairs[N];
    for (int i = 0; i < N; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, syms[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, N); /* takes the names */
    LLVMErrorRef e = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(jit), mu);
    if (e) LLVMOrcDisposeMaterializationUnit(mu);
    return e;
}

/* A new session: LLJIT for the host with the process symbols defined. */
static lorajit_status session_new(jit_session **out, lj_err *err) {
    LLVMOrcJITTargetMachineBuilderRef jtmb = NULL;
    jit_session *s = *out = calloc(1, sizeof *s);
    if (!s) return lj_fail(err, LORAJIT_E_NOMEM, "JIT: out of memory");
    lorajit_status st = cg_llvm_error(LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb), LORAJIT_E_COMPILE,
                                      "JIT: host detection", err);
    if (st) return st;
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* ownership -> builder */
    st = cg_llvm_error(LLVMOrcCreateLLJIT(&s->jit, builder), LORAJIT_E_COMPILE, "JIT: create", err); /* builder consumed */
    if (!st) st = cg_llvm_error(define_libc_symbols(s->jit), LORAJIT_E_COMPILE, "JIT: define symbols", err);
    return st;
}

/* The entry points' addresses (lookups link what was added). */
static lorajit_status lookup_entries(jit_session *s, lj_forward_fn *forward, lj_decode_fn *decode, lj_err *err) {
    LLVMOrcExecutorAddress addr = 0, dec = 0;
    lorajit_status st = cg_llvm_error(LLVMOrcLLJITLookup(s->jit, &addr, LJ_FORWARD_SYMBOL), LORAJIT_E_COMPILE,
                                      "JIT: lookup", err);
    if (!st && decode)
        st = cg_llvm_error(LLVMOrcLLJITLookup(s->jit, &dec, LJ_DECODE_SYMBOL), LORAJIT_E_COMPILE, "JIT: lookup", err);
    if (st) return st;
    *forward = (lj_forward_fn)(uintptr_t)addr;
    if (decode) *decode = (lj_decode_fn)(uintptr_t)dec;
    return LORAJIT_OK;
}

lorajit_status jit_session_open(LLVMOrcThreadSafeContextRef tsctx, LLVMModuleRef mod, jit_session **out,
                                lj_forward_fn *forward, lj_decode_fn *decode, lj_err *err) {
    jit_session *s = NULL;
    *out = NULL;
    *forward = NULL;
    if (decode) *decode = NULL;
    lorajit_status st = session_new(&s, err);
    if (st) goto fail;
    LLVMOrcObjectTransformLayerSetTransform(LLVMOrcLLJITGetObjTransformLayer(s->jit), count_object, s);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsctx); /* ownership of mod -> tsm */
    mod = NULL;
    /* ownership -> LLJIT, also on failure */
    st = cg_llvm_error(LLVMOrcLLJITAddLLVMIRModule(s->jit, LLVMOrcLLJITGetMainJITDylib(s->jit), tsm),
                       LORAJIT_E_COMPILE, "JIT: add module", err);
    if (!st) st = lookup_entries(s, forward, decode, err);
    if (st) goto fail;
    LLVMOrcDisposeThreadSafeContext(tsctx); /* the module holds its own reference */
    *out = s;
    return LORAJIT_OK;
fail:
    if (mod) LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsctx);
    jit_session_free(s);
    return st;
}

lorajit_status jit_session_open_objects(LLVMMemoryBufferRef *objs, int n, jit_session **out, lj_forward_fn *forward,
                                        lj_decode_fn *decode, lj_err *err) {
    jit_session *s = NULL;
    int i = 0;
    *out = NULL;
    *forward = NULL;
    if (decode) *decode = NULL;
    lorajit_status st = session_new(&s, err);
    for (; i < n && !st; i++) /* ownership of each -> LLJIT, also on failure */
        st = cg_llvm_error(LLVMOrcLLJITAddObjectFile(s->jit, LLVMOrcLLJITGetMainJITDylib(s->jit), objs[i]),
                           LORAJIT_E_COMPILE, "JIT: add object", err);
    for (; i < n; i++) LLVMDisposeMemoryBuffer(objs[i]);
    if (!st) st = lookup_entries(s, forward, decode, err);
    if (st) {
        jit_session_free(s);
        return st;
    }
    atomic_store(&s->compiles, 1); /* the objects are one compile of the module */
    cg_count_compile();
    *out = s;
    return LORAJIT_OK;
}
