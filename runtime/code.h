/* code.h — the hand-off between a compiler and the runtime: what compiled code
 * is (entry points, who owns them, how it was made) and the one call that puts
 * it in an engine. compiler/ (the JIT) and serving/artifact.c (dlopen of an
 * ahead-of-time library) are the two producers; serving/engine.c the consumer.
 * Includes the formats (the layout) and ctx.h (the ABI); nothing of serving. */
#ifndef LORAJIT_CODE_H
#define LORAJIT_CODE_H

#include "ctx.h"
#include "formats.h"

/* Wall time of each compile stage in ms (lorajit_stats' *_ms stage fields); all 0
 * for code compiled ahead of time. */
typedef struct lj_compile_times {
    double frontend;  /* config.json + schema + front end (IR) + weight dtypes */
    double plan;      /* ir_verify + ir_plan + ir_verify + layout */
    double codegen;   /* target machine + LLVM IR generation */
    double optimize;  /* LLVM verifier + default<O3> */
    double jit;       /* LLJIT: machine code, link, symbol lookup (an artifact: object emission) */
} lj_compile_times;

/* What a compiler hands the runtime: entry point plus who owns the code. */
typedef struct lj_code {
    lj_forward_fn forward;
    lj_decode_fn decode;           /* batched decode step over several sequences */
    void *owner;                   /* e.g. the JIT session */
    void (*release)(void *owner);  /* frees owner; called once by the engine */
    char *ir_text;                 /* malloc'd text of the IR, for lorajit_engine_print_ir; may be NULL */
    /* Machine-code generations of this code so far, counted where they happen (the
     * JIT's object layer), read live by lorajit_get_stats with owner; NULL: none in
     * this process (an artifact was compiled ahead of time). */
    int64_t (*compiles)(const void *owner);
    double compile_ms;             /* wall time of the whole compile */
    lj_compile_times times;        /* compile_ms by stage */
    bool rows_exact;               /* every matmul's rows are the same bits whatever the rows beside
                                      them (16-bit weights only: cg_matmul16.c): a prompt may then run in
                                      chunks of any size and still equal a decode row (step.c) */
} lj_code;
/* Copies t into st's stage fields (frontend_ms .. jit_ms). */
static inline void lj_stats_set_times(lorajit_stats *st, const lj_compile_times *t) {
    st->frontend_ms = t->frontend;
    st->plan_ms = t->plan;
    st->codegen_ms = t->codegen;
    st->optimize_ms = t->optimize;
    st->jit_ms = t->jit;
}
/* An empty handle whose error can be set. Caller owns the result; free with
 * lorajit_engine_free(). NULL when out of memory (or out of thread keys). */
lorajit_engine *lj_engine_alloc(void);
/* The open path's error record (single-threaded, before the engine is shared). */
lj_err *lj_engine_err(lorajit_engine *e);
/* Records opts->threads (opts may be NULL: 0, the default) for lj_engine_start;
 * LORAJIT_E_ARG with the message on e when it is out of range. Call before compiling. */
lorajit_status lj_engine_threads(lorajit_engine *e, const lorajit_options *opts);
/* Binds weights, allocates slots, the sequences' KV caches and a first worker,
 * publishes the empty adapter state and installs code. Takes ownership of L and
 * code, also on failure. */
lorajit_status lj_engine_start(lorajit_engine *e, const char *model_dir, lj_layout *L,
                               lj_code code);

#endif /* LORAJIT_CODE_H */
