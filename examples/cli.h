/* cli.h — what the `lorajit` command's files share (lorajit_cli.c, cli_*.c):
 * the common options (--model and the schema options), opening an engine with
 * them, usage, a clock. Uses only lorajit.h and libc. */
#ifndef LORAJIT_CLI_H
#define LORAJIT_CLI_H

#include "lorajit.h"
#include "script_parse.h"

typedef struct cli_common {
    const char *model;
    const char *artifact;  /* --artifact DIR: open this artifact (lorajit compile) instead of compiling */
    lorajit_options opts;
} cli_common;

/* Consumes argv[*i] (and its value) when it is a common option: 1 taken, 0 not
 * a common option, -1 usage error. */
int take_common(int argc, char **argv, int *i, cli_common *c);
/* Opens the engine or prints why it could not (caller exits 1). Caller owns the
 * result; free with lorajit_engine_free(). */
lorajit_engine *open_engine(const cli_common *c);
int usage(void); /* prints the usage text to stderr; returns 2 */
double now_ms(void);
void print_stats(lorajit_engine *e); /* the engine's counters, one line each, to stdout */

/* ---- cli_compile.c ---- */
/* `lorajit compile ...`: exit status 0, 1 (a failure) or 2 (usage). */
int cmd_compile(int argc, char **argv);

/* ---- cli_demo.c ---- */
/* `lorajit demo ...`: exit status 0, 1 (a failed check) or 2 (usage). */
int cmd_demo(int argc, char **argv);

/* ---- cli_generate.c ---- */
/* `lorajit generate ...`: exit status 0, 1 (a failure) or 2 (usage). */
int cmd_generate(int argc, char **argv);
/* Runs a script's `generate` line (greedy) on e and writes the ids, comma-separated,
 * to c->path. Returns 0, or writes why and returns -1. */
int script_generate(lorajit_engine *e, const script_cmd *c, char *why, size_t whylen);

#endif /* LORAJIT_CLI_H */
