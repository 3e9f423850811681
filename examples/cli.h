/* cli.h — what the `lorajit` command's files share (lorajit_cli.c, cli_*.c):
 * the common options (--model and the schema options), opening an engine with
 * them, usage and help, progress lines, a clock. Uses only lorajit.h and libc. */
#ifndef LORAJIT_CLI_H
#define LORAJIT_CLI_H

#include "lorajit.h"
#include "script_parse.h"

typedef struct cli_common {
    const char *model;
    const char *artifact;  /* --artifact DIR: open this artifact (lorajit compile) instead of compiling */
    lorajit_options opts;
    int progress;          /* --progress 1, --no-progress -1, else 0: on when stderr is a terminal */
} cli_common;

/* Consumes argv[*i] (and its value) when it is a common option: 1 taken, 0 not
 * a common option, -1 usage error. */
int take_common(int argc, char **argv, int *i, cli_common *c);
/* Checks the common options' files (--schema a regular file): 0, else prints why
 * and returns -1 (caller exits 1). */
int check_common(const cli_common *c);
/* Checks them, then opens the engine (with a progress line) or prints why it could
 * not (caller exits 1). Caller owns the result; free with lorajit_engine_free(). */
lorajit_engine *open_engine(const cli_common *c);
/* Loads every "NAME=DIR" of adapters[0..n) (a progress line each); prints why one
 * failed ("lorajit VERB: load NAME: ...") and returns -1. */
int load_adapters(const cli_common *c, lorajit_engine *e, const char *verb, const char *const *adapters, int n);
double now_ms(void);
void print_stats(lorajit_engine *e); /* the engine's counters, one line each, to stdout */

/* ---- cli_text.c ---- */
int usage(void);             /* prints every verb's usage to stderr; returns 2 */
int help(const char *verb);  /* prints verb's usage (NULL: every verb's) to stdout; returns 0 */
int is_help(const char *arg); /* "--help" or "-h" */
/* Progress lines on stderr, when progress_on(c): progress_begin prints
 * "lorajit: <what> ..." and returns the time; progress_end ends the line with
 * " done in X ms" (ok) or " failed". */
int progress_on(const cli_common *c);
double progress_begin(const cli_common *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(const cli_common *c, double t0, int ok);

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

/* ---- cli_serve.c ---- */
/* `lorajit serve ...` (server/): exit status 0 (stopped by a signal), 1 or 2 (usage). */
int cmd_serve(int argc, char **argv);
/* ---- cli_batch.c ---- */
/* 1 when path (a regular file, or - for stdin) starts, after blanks, with '{' (JSONL); stdin is
 * peeked without losing that character. */
int cli_batch_is_jsonl(const char *path);
/* `lorajit generate --batch FILE` of a JSONL file through the scheduler: opens the
 * engine (c->opts.max_batch: requests at once, default min(requests, 16)), loads
 * adapters[0..n_adapters) ("NAME=DIR"), sets adapter_dir (may be NULL), runs every
 * request and prints one JSON line each. s and max_new: the defaults of each line; t
 * (may be NULL): text prompts, stop strings and the output's text. Exit status. */
int cli_batch_run(cli_common *c, const char *path, const lorajit_sampling *s, int max_new, const lorajit_tokenizer *t,
                  const char *const *adapters, int n_adapters, const char *adapter_dir);

/* ---- cli_tokenize.c ---- */
/* `lorajit tokenize ...` / `lorajit detokenize ...`: exit status 0, 1 or 2 (usage). */
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
/* Opens the tokenizer at path (a model folder or tokenizer.json); prints why it
 * could not ("lorajit VERB: ...") and returns NULL. Free with lorajit_tokenizer_free. */
lorajit_tokenizer *cli_tokenizer_open(const char *verb, const char *path);
/* Encodes text (chat: as a user turn through the model's chat template, with the
 * generation prompt; else with the post-processor's special tokens) into *ids
 * (caller frees with free()). 0, or prints why and returns -1. */
int cli_encode_prompt(const char *verb, const lorajit_tokenizer *t, const char *text, int chat, int32_t **ids,
                      int *n);

#endif /* LORAJIT_CLI_H */
