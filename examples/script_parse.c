/* script_parse.c — the CLI's text parsers, with no engine (see script_parse.h).
 *
 * Input: one line of a `lorajit script` file, or a --tokens / --active value, all
 * hostile. Output: a script_cmd (command, NAME, DIR/FILE, active set, tokens) or
 * a reason in why[]. Nothing here calls lorajit: the CLI runs the result, and
 * tests/fuzz/fuzz_script.c fuzzes these functions alone. */
#include "script_parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Caller owns *out; free with free(). */
int parse_tokens(const char *s, int32_t **out, int *n, char *why, size_t whylen) {
    int cap = 16, len = 0;
    int32_t *t = malloc(sizeof *t * cap);
    if (!t) { snprintf(why, whylen, "out of memory"); return -1; }
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) {
            snprintf(why, whylen, "bad token list '%s' (want comma-separated integers)", s);
            free(t);
            return -1;
        }
        if (len == cap) {
            int32_t *bigger = len < (1 << 28) ? realloc(t, sizeof *t * (cap *= 2)) : NULL;
            if (!bigger) { snprintf(why, whylen, "out of memory"); free(t); return -1; }
            t = bigger;
        }
        t[len++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    *out = t;
    *n = len;
    return 0;
}

int parse_active(const char *s, active_spec *a, char *why, size_t whylen) {
    a->n = 0;
    if (strlen(s) >= sizeof a->buf) { snprintf(why, whylen, "active list too long"); return -1; }
    strcpy(a->buf, s);
    if (!a->buf[0]) return 0;
    for (char *item = a->buf; item;) {
        char *comma = strchr(item, ',');
        if (comma) *comma = '\0';
        char *colon = strchr(item, ':');
        float w = 1.0f;
        if (colon) {
            char *end;
            *colon = '\0';
            w = strtof(colon + 1, &end);
            if (end == colon + 1 || *end) {
                snprintf(why, whylen, "bad weight '%s' for adapter '%s'", colon + 1, item);
                return -1;
            }
        }
        if (!*item) { snprintf(why, whylen, "empty adapter name in '%s'", s); return -1; }
        if (a->n == MAX_ACTIVE) { snprintf(why, whylen, "more than %d active adapters", MAX_ACTIVE); return -1; }
        a->names[a->n] = item;
        a->weights[a->n] = w;
        a->n++;
        item = comma ? comma + 1 : NULL;
    }
    return 0;
}

int split_words(char *line, char **w, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        w[n++] = p;
        if (n == max) break;
        while (*p && *p != ' ' && *p != '\t') p++;
        if (*p) *p++ = '\0';
    }
    if (n == max) { /* trim the rest's trailing blanks */
        char *end = w[n - 1] + strlen(w[n - 1]);
        while (end > w[n - 1] && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
    }
    return n;
}

/* Caller owns c->tokens; free with script_cmd_free(). */
int script_parse(char *line, script_cmd *c, char *why, size_t whylen) {
    memset(c, 0, sizeof *c);
    line[strcspn(line, "#\r\n")] = '\0';
    char *w[5];
    const char *start = line + strspn(line, " \t");
    bool gen = !strncmp(start, "generate", 8) && (!start[8] || start[8] == ' ' || start[8] == '\t');
    int n = split_words(line, w, gen ? 5 : 3); /* the last word takes the rest (a path) */
    if (n == 0) return 0;
    const char *cmd = w[0];
    if (!strcmp(cmd, "load") || !strcmp(cmd, "hotswap")) {
        if (n != 3) { snprintf(why, whylen, "%s takes NAME DIR", cmd); return -1; }
        c->op = cmd[0] == 'l' ? SCRIPT_LOAD : SCRIPT_HOTSWAP;
        c->name = w[1];
        c->path = w[2];
    } else if (!strcmp(cmd, "set")) {
        if (n == 3) {
            snprintf(why, whylen, "set takes one list NAME[:W][,NAME[:W]...] without spaces");
            return -1;
        }
        if (parse_active(n == 2 ? w[1] : "", &c->set, why, whylen)) return -1;
        c->op = SCRIPT_SET;
    } else if (!strcmp(cmd, "enable") || !strcmp(cmd, "disable") || !strcmp(cmd, "stats")) {
        if (n != 1) { snprintf(why, whylen, "%s takes no arguments", cmd); return -1; }
        c->op = cmd[0] == 'e' ? SCRIPT_ENABLE : cmd[0] == 'd' ? SCRIPT_DISABLE : SCRIPT_STATS;
    } else if (!strcmp(cmd, "delete")) {
        if (n != 2) { snprintf(why, whylen, "delete takes NAME"); return -1; }
        c->op = SCRIPT_DELETE;
        c->name = w[1];
    } else if (gen) {
        long max_new;
        if (n != 5) { snprintf(why, whylen, "generate takes ADAPTER|- PROMPT N OUTFILE"); return -1; }
        if (parse_int(w[3], 1, 1 << 20, &max_new)) {
            snprintf(why, whylen, "generate: N must be an integer in 1..%d, got '%s'", 1 << 20, w[3]);
            return -1;
        }
        if (parse_tokens(w[2], &c->tokens, &c->n_tokens, why, whylen)) return -1;
        c->op = SCRIPT_GENERATE;
        c->name = strcmp(w[1], "-") ? w[1] : NULL;
        c->max_new = (int)max_new;
        c->path = w[4];
    } else if (!strcmp(cmd, "forward")) {
        if (n != 3) { snprintf(why, whylen, "forward takes TOKENS FILE"); return -1; }
        if (parse_tokens(w[1], &c->tokens, &c->n_tokens, why, whylen)) return -1;
        c->op = SCRIPT_FORWARD;
        c->path = w[2];
    } else {
        snprintf(why, whylen, "unknown command '%s'", cmd);
        return -1;
    }
    return 0;
}

void script_cmd_free(script_cmd *c) {
    if (!c) return;
    free(c->tokens);
    c->tokens = NULL;
    c->n_tokens = 0;
}
