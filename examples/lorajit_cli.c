/* lorajit_cli.c — the `lorajit` command: run, script, inspect and demo.
 *
 * Input: a Hugging Face LLaMA model folder, PEFT adapter folders, token lists and
 * (script) a file of commands. Output: logits (raw little-endian float32 [tokens,
 * vocab]) or a per-position argmax summary, the IR text, counters, and for `demo`
 * the compile-once-swap-many check with its timings. Uses only lorajit.h and libc.
 * Exit status: 0 ok, 1 a failure (model, adapter, script line, demo check), 2 usage. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lorajit.h"

#define MAX_ACTIVE 64 /* the header's limit on resident adapters */

static const char usage_text[] =
    "usage:\n"
    "  lorajit run    --model DIR [--schema FILE] [--max-rank N] [--targets a,b,..] [--slots N]\n"
    "                 [--adapter NAME=DIR]... [--active NAME[:W][,NAME[:W]...]] [--disable]\n"
    "                 --tokens 1,2,3 [--logits FILE]\n"
    "  lorajit script --model DIR [--schema FILE] [--max-rank N] [--targets ..] [--slots N] FILE|-\n"
    "  lorajit inspect --model DIR [--schema FILE] [--max-rank N] [--targets ..] [--slots N]\n"
    "  lorajit demo   [--model DIR] [--cycles N]\n"
    "script commands, one per line ('#' starts a comment):\n"
    "  load NAME DIR | hotswap NAME DIR | set NAME[:W][,NAME[:W]...] | enable | disable\n"
    "  delete NAME | forward TOKENS FILE | stats\n"
    "demo: without --model it uses the conformance model and adapters found at\n"
    "  $LORAJIT_DATA or <exe dir>/../tests/conformance; with --model DIR it loads\n"
    "  a_qv, a_all and a_mlp from DIR/../../adapters/<basename of DIR>/.\n";

static int usage(void) {
    fputs(usage_text, stderr);
    return 2;
}

/* ---- parsing helpers ---- */

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Parses "1,2,3" into a malloc'd array. Caller owns *out; free with free(). */
static int parse_tokens(const char *s, int32_t **out, int *n, char *why, size_t whylen) {
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
            int32_t *bigger = realloc(t, sizeof *t * (cap *= 2));
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

/* An active-set spec "NAME[:W][,NAME[:W]...]": names point into buf (a copy). */
typedef struct active_spec {
    char buf[4096];
    const char *names[MAX_ACTIVE];
    float weights[MAX_ACTIVE];
    int n;
} active_spec;

static int parse_active(const char *s, active_spec *a, char *why, size_t whylen) {
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

/* Writes n floats as raw little-endian float32. */
static int write_logits(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char b[4] = {u & 0xff, (u >> 8) & 0xff, (u >> 16) & 0xff, u >> 24};
        if (fwrite(b, 1, 4, f) != 4) { fclose(f); return -1; }
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- common options: --model, --schema, --max-rank, --targets, --slots ---- */

typedef struct cli_common {
    const char *model;
    lorajit_options opts;
} cli_common;

/* Consumes argv[*i] (and its value) when it is a common option: 1 taken, 0 not
 * a common option, -1 usage error. */
static int take_common(int argc, char **argv, int *i, cli_common *c) {
    const char *a = argv[*i];
    int is_common = !strcmp(a, "--model") || !strcmp(a, "--schema") || !strcmp(a, "--max-rank") ||
                    !strcmp(a, "--targets") || !strcmp(a, "--slots");
    if (!is_common) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "lorajit: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    long n;
    if (!strcmp(a, "--model")) c->model = v;
    else if (!strcmp(a, "--schema")) c->opts.schema_path = v;
    else if (!strcmp(a, "--targets")) c->opts.targets = v;
    else if (parse_int(v, 1, INT_MAX, &n)) {
        fprintf(stderr, "lorajit: %s wants a positive integer, got '%s'\n", a, v);
        return -1;
    } else if (!strcmp(a, "--max-rank")) c->opts.max_rank = (int)n;
    else c->opts.max_adapters = (int)n;
    return 1;
}

/* Opens the engine or prints why it could not (caller exits 1). */
static lorajit_engine *open_engine(const cli_common *c) {
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open(&e, c->model, &c->opts);
    if (s != LORAJIT_OK) {
        fprintf(stderr, "lorajit: cannot open model %s: %s (%s)\n", c->model,
                e ? lorajit_errmsg(e) : "out of memory", lorajit_status_str(s));
        lorajit_engine_free(e);
        return NULL;
    }
    return e;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- run ---- */

static int cmd_run(int argc, char **argv) {
    cli_common c = {0};
    const char *adapters[MAX_ACTIVE];
    int n_adapters = 0, disable = 0;
    const char *active = NULL, *tokens_arg = NULL, *logits_path = NULL;
    for (int i = 2; i < argc; i++) {
        int k = take_common(argc, argv, &i, &c);
        if (k < 0) return usage();
        if (k) continue;
        const char *a = argv[i];
        if (!strcmp(a, "--disable")) { disable = 1; continue; }
        int known = !strcmp(a, "--adapter") || !strcmp(a, "--active") || !strcmp(a, "--tokens") ||
                    !strcmp(a, "--logits");
        if (!known) { fprintf(stderr, "lorajit run: unknown argument '%s'\n", a); return usage(); }
        if (i + 1 >= argc) { fprintf(stderr, "lorajit run: %s needs a value\n", a); return usage(); }
        const char *v = argv[++i];
        if (!strcmp(a, "--adapter")) {
            if (!strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "lorajit run: --adapter wants NAME=DIR, got '%s'\n", v);
                return usage();
            }
            if (n_adapters == MAX_ACTIVE) { fprintf(stderr, "lorajit run: too many --adapter\n"); return usage(); }
            adapters[n_adapters++] = v;
        } else if (!strcmp(a, "--active")) active = v;
        else if (!strcmp(a, "--tokens")) tokens_arg = v;
        else logits_path = v;
    }
    if (!c.model || !tokens_arg) {
        fprintf(stderr, "lorajit run: --model and --tokens are required\n");
        return usage();
    }
    char why[512];
    int32_t *tokens;
    int n;
    active_spec act;
    if (parse_tokens(tokens_arg, &tokens, &n, why, sizeof why)) {
        fprintf(stderr, "lorajit run: %s\n", why);
        return usage();
    }
    if (active && parse_active(active, &act, why, sizeof why)) {
        fprintf(stderr, "lorajit run: %s\n", why);
        free(tokens);
        return usage();
    }
    lorajit_engine *e = open_engine(&c);
    if (!e) { free(tokens); return 1; }
    int rc = 1;
    float *logits = NULL;
    for (int i = 0; i < n_adapters; i++) {
        char name[256];
        const char *eq = strchr(adapters[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - adapters[i]), adapters[i]);
        if (lorajit_load_adapter(e, name, eq + 1) != LORAJIT_OK) {
            fprintf(stderr, "lorajit run: load %s: %s\n", name, lorajit_errmsg(e));
            goto done;
        }
    }
    if (active && lorajit_set_adapter(e, act.names, act.weights, act.n) != LORAJIT_OK) {
        fprintf(stderr, "lorajit run: --active %s: %s\n", active, lorajit_errmsg(e));
        goto done;
    }
    if (disable && lorajit_disable_adapters(e) != LORAJIT_OK) {
        fprintf(stderr, "lorajit run: disable: %s\n", lorajit_errmsg(e));
        goto done;
    }
    int vocab = lorajit_vocab_size(e);
    logits = malloc(sizeof *logits * (size_t)n * (size_t)(vocab > 0 ? vocab : 1));
    if (!logits) { fprintf(stderr, "lorajit run: out of memory\n"); goto done; }
    if (lorajit_forward(e, tokens, n, logits) != LORAJIT_OK) {
        fprintf(stderr, "lorajit run: forward: %s\n", lorajit_errmsg(e));
        goto done;
    }
    if (logits_path) {
        if (write_logits(logits_path, logits, (size_t)n * vocab)) {
            fprintf(stderr, "lorajit run: cannot write %s: %s\n", logits_path, strerror(errno));
            goto done;
        }
    } else {
        for (int p = 0; p < n; p++) {
            const float *row = logits + (size_t)p * vocab;
            int best = 0;
            for (int v = 1; v < vocab; v++)
                if (row[v] > row[best]) best = v;
            printf("pos %d token %d argmax %d logit %.6f\n", p, tokens[p], best, row[best]);
        }
    }
    rc = 0;
done:
    free(logits);
    free(tokens);
    lorajit_engine_free(e);
    return rc;
}

/* ---- script ---- */

static void print_stats(lorajit_engine *e) {
    lorajit_stats st;
    if (lorajit_get_stats(e, &st) != LORAJIT_OK) return;
    printf("compiles=%lld loads=%lld hotswaps=%lld deletes=%lld forwards=%lld adapters=%lld "
           "active=%lld enabled=%d compile_ms=%.3f failed_calls=%lld\n",
           (long long)st.compiles, (long long)st.loads, (long long)st.hotswaps, (long long)st.deletes,
           (long long)st.forwards, (long long)st.adapters, (long long)st.active, st.enabled,
           st.compile_ms, (long long)st.failed_calls);
    fflush(stdout);
}

/* Splits line into at most max words; the last word takes the rest of the line
 * (so a final path may hold spaces). Returns the number of words, or max + 1 when
 * there are more words than max would allow (never for max's own rest). */
static int split_words(char *line, char **w, int max) {
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

/* Runs one script line; returns 0 or writes why and returns -1. */
static int script_line(lorajit_engine *e, char *line, char *why, size_t whylen) {
    char *w[3];
    int n = split_words(line, w, 3);
    if (n == 0) return 0;
    const char *cmd = w[0];
    lorajit_status s = LORAJIT_OK;
    if (!strcmp(cmd, "load") || !strcmp(cmd, "hotswap")) {
        if (n != 3) { snprintf(why, whylen, "%s takes NAME DIR", cmd); return -1; }
        s = cmd[0] == 'l' ? lorajit_load_adapter(e, w[1], w[2]) : lorajit_hotswap_adapter(e, w[1], w[2]);
    } else if (!strcmp(cmd, "set")) {
        active_spec act;
        if (n == 3) {
            snprintf(why, whylen, "set takes one list NAME[:W][,NAME[:W]...] without spaces");
            return -1;
        }
        if (parse_active(n == 2 ? w[1] : "", &act, why, whylen)) return -1;
        s = lorajit_set_adapter(e, act.names, act.weights, act.n);
    } else if (!strcmp(cmd, "enable") || !strcmp(cmd, "disable") || !strcmp(cmd, "stats")) {
        if (n != 1) { snprintf(why, whylen, "%s takes no arguments", cmd); return -1; }
        if (cmd[0] == 'e') s = lorajit_enable_adapters(e);
        else if (cmd[0] == 'd') s = lorajit_disable_adapters(e);
        else print_stats(e);
    } else if (!strcmp(cmd, "delete")) {
        if (n != 2) { snprintf(why, whylen, "delete takes NAME"); return -1; }
        s = lorajit_delete_adapter(e, w[1]);
    } else if (!strcmp(cmd, "forward")) {
        if (n != 3) { snprintf(why, whylen, "forward takes TOKENS FILE"); return -1; }
        int32_t *tokens;
        int nt;
        if (parse_tokens(w[1], &tokens, &nt, why, whylen)) return -1;
        int vocab = lorajit_vocab_size(e);
        float *logits = malloc(sizeof *logits * (size_t)nt * (size_t)(vocab > 0 ? vocab : 1));
        if (!logits) { free(tokens); snprintf(why, whylen, "out of memory"); return -1; }
        s = lorajit_forward(e, tokens, nt, logits);
        int werr = 0;
        if (s == LORAJIT_OK && write_logits(w[2], logits, (size_t)nt * vocab)) werr = errno ? errno : EIO;
        free(logits);
        free(tokens);
        if (werr) { snprintf(why, whylen, "cannot write %s: %s", w[2], strerror(werr)); return -1; }
    } else {
        snprintf(why, whylen, "unknown command '%s'", cmd);
        return -1;
    }
    if (s != LORAJIT_OK) {
        snprintf(why, whylen, "%s", lorajit_errmsg(e));
        return -1;
    }
    return 0;
}

static int cmd_script(int argc, char **argv) {
    cli_common c = {0};
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        int k = take_common(argc, argv, &i, &c);
        if (k < 0) return usage();
        if (k) continue;
        if (path || (argv[i][0] == '-' && argv[i][1])) {
            fprintf(stderr, "lorajit script: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
        path = argv[i];
    }
    if (!c.model || !path) {
        fprintf(stderr, "lorajit script: --model and a script FILE (or -) are required\n");
        return usage();
    }
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "lorajit script: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    lorajit_engine *e = open_engine(&c);
    if (!e) { if (f != stdin) fclose(f); return 1; }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int failed = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        char why[1200];
        if (script_line(e, line, why, sizeof why)) {
            fflush(stdout);
            fprintf(stderr, "error: line %ld: %s\n", lineno, why);
            failed = 1;
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    lorajit_engine_free(e);
    return failed;
}

/* ---- inspect ---- */

static int cmd_inspect(int argc, char **argv) {
    cli_common c = {0};
    for (int i = 2; i < argc; i++) {
        int k = take_common(argc, argv, &i, &c);
        if (k < 0) return usage();
        if (!k) { fprintf(stderr, "lorajit inspect: unknown argument '%s'\n", argv[i]); return usage(); }
    }
    if (!c.model) { fprintf(stderr, "lorajit inspect: --model is required\n"); return usage(); }
    lorajit_engine *e = open_engine(&c);
    if (!e) return 1;
    int rc = 0;
    if (lorajit_engine_print_ir(e, stdout) != LORAJIT_OK) {
        fprintf(stderr, "lorajit inspect: %s\n", lorajit_errmsg(e));
        rc = 1;
    }
    lorajit_engine_free(e);
    return rc;
}

/* ---- demo: compile once, swap many ---- */

#define DEMO_NAMES 3
static const char *const demo_names[DEMO_NAMES] = {"a_qv", "a_all", "a_mlp"};

/* Logits seen for one adapter state, keyed by a text description of the state. */
typedef struct demo_state {
    char key[160];
    float *logits; /* [n_prompt, vocab] */
} demo_state;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Finds the conformance set: $LORAJIT_DATA, else <exe dir>/../tests/conformance. */
static int find_data_dir(char *out, size_t cap) {
    const char *env = getenv("LORAJIT_DATA");
    if (env && *env) { snprintf(out, cap, "%s", env); return 0; }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    return snprintf(out, cap, "%s/../tests/conformance", exe) < (int)cap ? 0 : -1;
}

/* Writes the adapters' folder for model_dir: DIR/../../adapters/<basename DIR>. */
static int adapters_for_model(const char *model_dir, char *out, size_t cap) {
    char m[4096];
    if (snprintf(m, sizeof m, "%s", model_dir) >= (int)sizeof m) return -1;
    size_t len = strlen(m);
    while (len > 1 && m[len - 1] == '/') m[--len] = '\0';
    const char *base = strrchr(m, '/') ? strrchr(m, '/') + 1 : m;
    return snprintf(out, cap, "%s/../../adapters/%s", m, base) < (int)cap ? 0 : -1;
}

static int cmd_demo(int argc, char **argv) {
    const char *model = NULL;
    long cycles = 200;
    for (int i = 2; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--model")) model = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--cycles")) {
            if (parse_int(argv[++i], 1, 100000000, &cycles)) {
                fprintf(stderr, "lorajit demo: --cycles wants a positive integer\n");
                return usage();
            }
        } else { fprintf(stderr, "lorajit demo: bad argument '%s'\n", argv[i]); return usage(); }
    }
    char data[4096], model_dir[4200], adapter_root[8400], dirs[DEMO_NAMES][8500];
    if (model) snprintf(model_dir, sizeof model_dir, "%s", model);
    else {
        if (find_data_dir(data, sizeof data)) {
            fprintf(stderr, "lorajit demo: cannot find the conformance data; set LORAJIT_DATA\n");
            return 1;
        }
        snprintf(model_dir, sizeof model_dir, "%s/models/llama-tiny", data);
    }
    int too_long = adapters_for_model(model_dir, adapter_root, sizeof adapter_root);
    for (int k = 0; k < DEMO_NAMES; k++)
        too_long |= snprintf(dirs[k], sizeof dirs[k], "%s/%s", adapter_root, demo_names[k]) >= (int)sizeof dirs[k];
    if (too_long) {
        fprintf(stderr, "lorajit demo: model path too long\n");
        return 1;
    }
    printf("demo: model %s\ndemo: adapters %s/{a_qv,a_all,a_mlp}\n", model_dir, adapter_root);

    cli_common c = {.model = model_dir};
    double t0 = now_ms();
    lorajit_engine *e = open_engine(&c);
    if (!e) return 1;
    double open_ms = now_ms() - t0;
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    printf("demo: compiled once in %.1f ms (engine open %.1f ms)\n", st.compile_ms, open_ms);

    int vocab = lorajit_vocab_size(e);
    int32_t prompt[] = {175, 196, 25, 246, 67, 211, 151};
    enum { n_prompt = sizeof prompt / sizeof prompt[0] };
    for (int i = 0; i < n_prompt; i++) prompt[i] %= vocab > 0 ? vocab : 1;
    size_t n_logits = (size_t)n_prompt * (size_t)(vocab > 0 ? vocab : 1);
    long n_swaps_max = cycles * DEMO_NAMES, n_fwd_max = cycles * (DEMO_NAMES + 1) + 1;
    float *base = malloc(n_logits * sizeof *base), *got = malloc(n_logits * sizeof *got);
    double *swap_ms = malloc(n_swaps_max * sizeof *swap_ms), *fwd_ms = malloc(n_fwd_max * sizeof *fwd_ms);
    demo_state *states = NULL;
    int n_states = 0, n_swaps = 0, n_fwd = 0, n_fail = 0, n_recur = 0, n_disabled = 0;
    int rc = 1;
    if (!base || !got || !swap_ms || !fwd_ms) { fprintf(stderr, "demo: out of memory\n"); goto done; }

#define DEMO_FORWARD(buf)                                                                \
    do {                                                                                 \
        double f0 = now_ms();                                                            \
        if (lorajit_forward(e, prompt, n_prompt, (buf)) != LORAJIT_OK) {                 \
            fprintf(stderr, "demo: forward: %s\n", lorajit_errmsg(e));                   \
            goto done;                                                                   \
        }                                                                                \
        fwd_ms[n_fwd++] = now_ms() - f0;                                                 \
    } while (0)

    DEMO_FORWARD(base);
    for (int k = 0; k < DEMO_NAMES; k++) {
        if (lorajit_load_adapter(e, demo_names[k], dirs[k]) != LORAJIT_OK) {
            fprintf(stderr, "demo: load %s: %s\n", demo_names[k], lorajit_errmsg(e));
            goto done;
        }
    }
    /* holds[k]: which adapter directory name k holds now (they rotate by hotswap). */
    int holds[DEMO_NAMES] = {0, 1, 2};
    /* The seven non-empty subsets of the three names, as bit masks, in a fixed cycle. */
    static const int combos[] = {1, 2, 4, 3, 5, 6, 7};
    static const float weights[] = {1.0f, 0.5f, 1.0f, 0.25f};
    int step = 0;
    for (long cyc = 0; cyc < cycles; cyc++) {
        for (int j = 0; j < DEMO_NAMES; j++, step++) {
            /* Swap: name j takes the adapter one to the right of the one it holds. */
            int next = (holds[j] + 1) % DEMO_NAMES;
            double s0 = now_ms();
            if (lorajit_hotswap_adapter(e, demo_names[j], dirs[next]) != LORAJIT_OK) {
                fprintf(stderr, "demo: hotswap %s <- %s: %s\n", demo_names[j], dirs[next], lorajit_errmsg(e));
                goto done;
            }
            swap_ms[n_swaps++] = now_ms() - s0;
            holds[j] = next;
            /* Activate a combination with weights that depend on the step. */
            int mask = combos[step % 7];
            const char *names[DEMO_NAMES];
            float w[DEMO_NAMES];
            int n = 0;
            char key[160] = "";
            for (int k = 0; k < DEMO_NAMES; k++) {
                if (!(mask & (1 << k))) continue;
                names[n] = demo_names[k];
                w[n] = weights[(step / 7 + k) % 4];
                size_t kl = strlen(key);
                snprintf(key + kl, sizeof key - kl, "%s=%s*%g;", demo_names[k], demo_names[holds[k]], w[n]);
                n++;
            }
            if (lorajit_set_adapter(e, names, w, n) != LORAJIT_OK) {
                fprintf(stderr, "demo: set_adapter: %s\n", lorajit_errmsg(e));
                goto done;
            }
            DEMO_FORWARD(got);
            if (!memcmp(got, base, n_logits * sizeof *got)) {
                fprintf(stderr, "demo: FAIL state %s gives the base logits\n", key);
                n_fail++;
            }
            int found = -1;
            for (int s = 0; s < n_states; s++)
                if (!strcmp(states[s].key, key)) found = s;
            if (found >= 0) {
                n_recur++;
                if (memcmp(got, states[found].logits, n_logits * sizeof *got)) {
                    fprintf(stderr, "demo: FAIL state %s gave different logits on recurrence\n", key);
                    n_fail++;
                }
            } else {
                demo_state *more = realloc(states, (n_states + 1) * sizeof *states);
                if (!more) { fprintf(stderr, "demo: out of memory\n"); goto done; }
                states = more;
                states[n_states].logits = malloc(n_logits * sizeof *got);
                if (!states[n_states].logits) { fprintf(stderr, "demo: out of memory\n"); goto done; }
                memcpy(states[n_states].logits, got, n_logits * sizeof *got);
                snprintf(states[n_states].key, sizeof states[n_states].key, "%s", key);
                n_states++;
            }
        }
        /* Once a cycle: disabled adapters must give the base model bit for bit. */
        if (lorajit_disable_adapters(e) != LORAJIT_OK) {
            fprintf(stderr, "demo: disable: %s\n", lorajit_errmsg(e));
            goto done;
        }
        DEMO_FORWARD(got);
        n_disabled++;
        if (memcmp(got, base, n_logits * sizeof *got)) {
            fprintf(stderr, "demo: FAIL disabled logits differ from the base logits (cycle %ld)\n", cyc);
            n_fail++;
        }
        if (lorajit_enable_adapters(e) != LORAJIT_OK) {
            fprintf(stderr, "demo: enable: %s\n", lorajit_errmsg(e));
            goto done;
        }
    }
#undef DEMO_FORWARD

    lorajit_get_stats(e, &st);
    double swap_min = swap_ms[0], swap_max = swap_ms[0];
    for (int i = 1; i < n_swaps; i++) {
        if (swap_ms[i] < swap_min) swap_min = swap_ms[i];
        if (swap_ms[i] > swap_max) swap_max = swap_ms[i];
    }
    double swap_med = median(swap_ms, n_swaps), fwd_med = median(fwd_ms, n_fwd);
    printf("demo: compile %.1f ms once; %d hotswaps: median %.3f ms, min %.3f ms, max %.3f ms\n",
           st.compile_ms, n_swaps, swap_med, swap_min, swap_max);
    printf("demo: %d forwards of %d tokens: median %.3f ms; %d adapter states, %d recurrences "
           "bit-identical checks, %d disabled == base checks\n",
           n_fwd, n_prompt, fwd_med, n_states, n_recur, n_disabled);
    printf("demo: stats: ");
    print_stats(e);
    if (st.compiles != 1) {
        fprintf(stderr, "demo: FAIL compiles=%lld, want 1\n", (long long)st.compiles);
        n_fail++;
    }
    printf("demo: %s compiles=%lld swaps=%d swap_median_ms=%.3f forward_median_ms=%.3f "
           "states=%d failed_checks=%d\n",
           n_fail ? "FAIL" : "OK", (long long)st.compiles, n_swaps, swap_med, fwd_med, n_states, n_fail);
    rc = n_fail ? 1 : 0;
done:
    for (int s = 0; s < n_states; s++) free(states[s].logits);
    free(states);
    free(base);
    free(got);
    free(swap_ms);
    free(fwd_ms);
    lorajit_engine_free(e);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
    if (!strcmp(cmd, "script")) return cmd_script(argc, argv);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc, argv);
    if (!strcmp(cmd, "demo")) return cmd_demo(argc, argv);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    fprintf(stderr, "lorajit: unknown command '%s'\n", cmd);
    return usage();
}
