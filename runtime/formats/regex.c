/* regex.c — regular expressions from adapter files, bounded before regcomp.
 *
 * Input: a POSIX ERE written in adapter_config.json (target_modules, exclude_modules,
 * rank_pattern / alpha_pattern keys), hostile until checked. Output: a compiled
 * regex_t, or a refusal naming the file and field. glibc's regcomp copies the
 * operand of every '+' and {n,m} and spends superlinear time on runs of repeats, so
 * a pattern is refused before regcomp when it is long, repeats a repeat, or its
 * repeats would expand past a bound (found by tests/fuzz/fuzz_peft_config). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regex.h>

#include "formats.h"

struct lj_regex {
    regex_t re;
};

#define REGEX_MAX_LEN 1024     /* characters of one pattern */
#define REGEX_MAX_NODES 20000  /* bound on the parse tree glibc builds for it */
#define REGEX_MAX_REPEATS 64   /* '*', '+', '?' and {n,m} in one pattern */

/* An upper bound on the tree glibc's regcomp builds for the ERE p. It copies the
 * operand of '+' (x+ is x x*) and of {n,m} (m copies), so stacked or nested
 * repeats multiply: "a++++..." or "((a{99}){99}){99}" would take gigabytes. Also
 * counts the repeats into *repeats, and returns -1 for a repeat of a repeat
 * ("a**", "a+{2}"; a lazy "a*?" is allowed): Python's re, which PEFT uses, refuses
 * those as "multiple repeat", and glibc spends seconds on a run of them. */
static double regex_nodes(const char *p, int *repeats) {
    struct { double alts, cur, last; } lv[32] = {{0, 0, 0}};
    int d = 0, after = 0; /* 1: just after a repeat; 2: after a repeat and its lazy '?' */
    *repeats = 0;
    while (*p) {
        char c = *p++;
        double q = -1; /* size of the quantified operand, when c is a quantifier */
        bool rep = c == '*' || c == '+' || c == '?' || (c == '{' && *p >= '0' && *p <= '9');
        if (rep) {
            if (after == 2 || (after == 1 && c != '?')) return -1;
            after = after == 1 ? 2 : 1;
            ++*repeats;
        } else {
            after = 0;
        }
        if (c == '*' || c == '?') q = lv[d].last + 1;
        else if (c == '+') q = 2 * lv[d].last + 1;
        else if (c == '{' && *p >= '0' && *p <= '9') {
            double n = 0, m = -1;
            for (; *p >= '0' && *p <= '9'; p++) n = n * 10 + (*p - '0');
            if (*p == ',') {
                p++;
                if (*p >= '0' && *p <= '9')
                    for (m = 0; *p >= '0' && *p <= '9'; p++) m = m * 10 + (*p - '0');
                else m = n + 1; /* {n,} is n copies and a star */
            }
            if (*p == '}') p++;
            q = ((m > n ? m : n) + 1) * lv[d].last + 1;
        }
        if (q >= 0) {
            lv[d].cur += q - lv[d].last;
            lv[d].last = q;
            continue;
        }
        double atom = 1;
        if (c == '\\') {
            if (*p) p++;
        } else if (c == '[') { /* a bracket expression: one node, whatever it holds */
            if (*p == '^') p++;
            if (*p == ']') p++;
            while (*p && *p != ']') {
                if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                    char k = p[1];
                    for (p += 2; *p && !(p[0] == k && p[1] == ']'); p++) {}
                    if (*p) p += 2;
                } else {
                    p++;
                }
            }
            if (*p) p++;
        } else if (c == '(') {
            if (++d == 32) return INFINITY;
            lv[d].alts = lv[d].cur = lv[d].last = 0;
            continue;
        } else if (c == ')' && d > 0) {
            atom = lv[d].alts + lv[d].cur + 1;
            d--;
        } else if (c == '|') {
            lv[d].alts += lv[d].cur + 1;
            lv[d].cur = lv[d].last = 0;
            continue;
        }
        lv[d].cur += atom;
        lv[d].last = atom;
    }
    double total = 0;
    for (; d >= 0; d--) total += lv[d].alts + lv[d].cur + 1;
    return total;
}

/* Caller owns *out; free with lj_regex_free(). */
lorajit_status lj_regex_compile(const char *prefix, const char *body, const char *path,
                                const char *field, lj_regex **out, lj_err *err) {
    if (strlen(body) > REGEX_MAX_LEN)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field '%s': regular expression of %zu "
                       "characters; at most %d", path, field, strlen(body), REGEX_MAX_LEN);
    int repeats;
    double nodes = regex_nodes(body, &repeats);
    if (nodes < 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: field '%s': regular expression '%.80s%s' repeats a "
                       "repeat (like 'a**'; Python's re refuses it too)", path, field, body,
                       strlen(body) > 80 ? "..." : "");
    if (nodes > REGEX_MAX_NODES || repeats > REGEX_MAX_REPEATS)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: field '%s': regular expression '%.80s%s' "
                       "is too complex (%d repeats, at most %d; they expand to %.0f nodes, at most "
                       "%d)", path, field, body, strlen(body) > 80 ? "..." : "", repeats,
                       REGEX_MAX_REPEATS, nodes > 1e9 ? 1e9 : nodes, REGEX_MAX_NODES);
    size_t n = strlen(prefix) + strlen(body) + 8;
    char *src = lj_malloc(n);
    lj_regex *re = lj_malloc(sizeof *re);
    lorajit_status st = LORAJIT_OK;
    if (!src || !re) {
        st = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory compiling '%s'", path, field);
        goto fail;
    }
    snprintf(src, n, "^%s(%s)$", prefix, body);
    int rc = regcomp(&re->re, src, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &re->re, why, sizeof why);
        st = lj_fail(err, LORAJIT_E_FORMAT, "%s: field '%s': bad regular expression '%s': %s",
                     path, field, body, why);
        goto fail;
    }
    free(src);
    *out = re;
    return LORAJIT_OK;
fail:
    free(src);
    free(re);
    return st;
}

bool lj_regex_match(const lj_regex *re, const char *s) {
    return regexec(&re->re, s, 0, NULL, 0) == 0;
}

void lj_regex_free(lj_regex *re) {
    if (!re) return;
    regfree(&re->re);
    free(re);
}
