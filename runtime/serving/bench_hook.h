/* bench_hook.h — the one internal call bench/ makes (everything else there uses
 * lorajit.h only), documented as that exception: writing a parsed adapter into a
 * LoRA slot straight from memory, the copy at the heart of a load or hotswap, so
 * `lorajit bench` can set it against memcpy of the same bytes and against
 * lorajit_hotswap_adapter from files. The runtime's types stay behind the handle. */
#ifndef LORAJIT_BENCH_HOOK_H
#define LORAJIT_BENCH_HOOK_H

#include <stddef.h>

#include "lorajit.h"

typedef struct lj_bench_slots lj_bench_slots;

/* Parses the PEFT adapters in dirs[0] and dirs[1] against e's layout (as a load
 * would) and allocates slot buffers of its own shaped like e's: e's slots, adapters
 * and state are not touched. *bytes gets the f32 bytes of dirs[0]'s A and B. On
 * failure the message goes to errbuf (caller-owned, errcap bytes). Caller owns *out;
 * free with lj_bench_slots_free(). */
lorajit_status lj_bench_slots_open(const lorajit_engine *e, const char *const dirs[2], lj_bench_slots **out,
                                   size_t *bytes, char *errbuf, size_t errcap);
/* Writes adapter which (0: dirs[0], 1: dirs[1]) into slot 0 (lj_slots_write). */
void lj_bench_slots_write(lj_bench_slots *b, int which);
void lj_bench_slots_free(lj_bench_slots *b); /* NULL does nothing */

#endif /* LORAJIT_BENCH_HOOK_H */
