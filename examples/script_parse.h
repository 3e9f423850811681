/* script_parse.h — the CLI's text parsers, with no engine: the `lorajit script`
 * line language (one command per line, '#' starts a comment) and the lists that
 * `run` and `script` share (token lists "1,2,3", active sets "NAME[:W],..."). The
 * CLI runs what script_parse returns; tests/fuzz/fuzz_script.c fuzzes it alone.
 * Every parser writes why it failed into why[whylen] and returns -1. */
#ifndef LORAJIT_SCRIPT_PARSE_H
#define LORAJIT_SCRIPT_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define MAX_ACTIVE 64 /* the header's limit on resident adapters */

/* A decimal integer in lo..hi, the whole of s: 0, else -1. */
int parse_int(const char *s, long lo, long hi, long *out);
/* Parses "1,2,3" (int32 values). Caller owns *out; free with free(). */
int parse_tokens(const char *s, int32_t **out, int *n, char *why, size_t whylen);

/* An active-set spec "NAME[:W][,NAME[:W]...]": names point into buf (a copy). */
typedef struct active_spec {
    char buf[4096];
    const char *names[MAX_ACTIVE]; /* [n] borrowed from buf */
    float weights[MAX_ACTIVE];     /* [n] */
    int n;
} active_spec;
/* "" gives n = 0. A weight must be a whole float ("0.5", "-1"). */
int parse_active(const char *s, active_spec *a, char *why, size_t whylen);

/* Splits line in place into at most max words; the last word takes the rest of
 * the line (so a final path may hold spaces). Returns the number of words. */
int split_words(char *line, char **w, int max);

/* ---- script lines ---- */
typedef enum script_op {
    SCRIPT_BLANK,   /* empty or comment-only line */
    SCRIPT_LOAD,    /* load NAME DIR */
    SCRIPT_HOTSWAP, /* hotswap NAME DIR */
    SCRIPT_SET,     /* set NAME[:W][,NAME[:W]...]  (no list: the empty set) */
    SCRIPT_ENABLE,
    SCRIPT_DISABLE,
    SCRIPT_DELETE,  /* delete NAME */
    SCRIPT_FORWARD, /* forward TOKENS FILE */
    SCRIPT_STATS,
    SCRIPT_GENERATE, /* generate ADAPTER|- PROMPT N OUTFILE  (greedy, N new tokens) */
} script_op;
typedef struct script_cmd {
    script_op op;
    const char *name;  /* load, hotswap, delete: borrowed from the line; generate: the
                          adapter "NAME[:W][,NAME[:W]...]", NULL for "-" (the engine's set) */
    const char *path;  /* load, hotswap: DIR; forward, generate: FILE; borrowed from the line */
    active_spec set;   /* set */
    int32_t *tokens;   /* forward: [n_tokens], generate: the prompt; owned; free with script_cmd_free() */
    int n_tokens;
    int max_new;       /* generate: N */
} script_cmd;
/* Parses one line (cut in place at '#' and at a CR or LF) into *c: the command,
 * its arity and its lists. Caller owns c->tokens; free with script_cmd_free(),
 * also after a failure (then nothing is held). */
int script_parse(char *line, script_cmd *c, char *why, size_t whylen);
void script_cmd_free(script_cmd *c); /* NULL does nothing */

#endif /* LORAJIT_SCRIPT_PARSE_H */
