/* lorajit_cli.c — the `lorajit` command: run, script, inspect and demo
 * (generate: cli_generate.c).
 * Input: a Hugging Face LLaMA model folder, PEFT adapter folders, token lists and
 * (script) a file of commands. Output: logits (raw little-endian float32 [tokens,
 * vocab]) or a per-position argmax summary, the IR text, counters, and for `demo`
 * the compile-once-swap-many check with its timings. Uses only lorajit.h and libc.
 * Exit status: 0 ok, 1 a failure (model, adapter, script line, demo check), 2 usage. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
    "usage:\n"
    "  lorajit run    --model DIR [--schema FILE] [--max-rank N] [--targets a,b,..] [--slots N]\n"
    "                 [--adapter NAME=DIR]... [--active NAME[:W][,NAME[:W]...]] [--disable]\n"
    "                 --tokens 1,2,3 [--logits FILE]\n"
    "  lorajit script --model DIR [--schema FILE] [--max-rank N] [--targets ..] [--slots N] FILE|-\n"
    "  lorajit inspect --model DIR [--schema FILE] [--max-rank N] [--targets ..] [--slots N]\n"
    "  lorajit demo   [--model DIR] [--cycles N]\n"
    "  lorajit bench  [--quick] [--out DIR] ...          # runs lorajit_bench (bench/)\n"
    "  lorajit compile --model DIR [schema options] [--target-cpu CPU] -o OUT\n"
    "                 (CPU: native (default), x86-64, x86-64-v2, x86-64-v3, x86-64-v4)\n"
    "  lorajit generate --model DIR [schema options] [--adapter NAME=DIR]...\n"
    "                 (--prompt 1,2,3 [--use NAME[:W][,NAME[:W]...]] | --batch FILE)\n"
    "                 [--max-new N] [--temperature T] [--top-k K] [--top-p P]\n"
    "                 [--repetition-penalty R] [--seed S] [--eos ID]\n"
    "schema options: --schema FILE --max-rank N --targets a,b,.. --slots N --max-batch N\n"
    "  --max-seq-len N\n"
    "--artifact OUT (run, script, inspect, generate): serve the artifact that `lorajit\n"
    "  compile` wrote to OUT instead of compiling; --model still names the weights\n"
    "generate --batch FILE: one request a line, ADAPTER|- PROMPT [MAX_NEW], all in one\n"
    "  batch (ADAPTER: NAME[:W][,NAME[:W]...], '-' the base model)\n"
    "script commands, one per line ('#' starts a comment):\n"
    "  load NAME DIR | hotswap NAME DIR | set NAME[:W][,NAME[:W]...] | enable | disable\n"
    "  delete NAME | forward TOKENS FILE | stats\n"
    "  generate ADAPTER|- PROMPT N OUTFILE   (greedy; '-': the engine's active set)\n"
    "demo: without --model it uses the conformance model and adapters found at\n"
    "  $LORAJIT_DATA or <exe dir>/../tests/conformance; with --model DIR it loads\n"
    "  a_qv, a_all and a_mlp from DIR/../../adapters/<basename of DIR>/.\n";

int usage(void) {
    fputs(usage_text, stderr);
    return 2;
}

/* ---- output ---- */

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

/* ---- common options: --model, --artifact, --schema, --max-rank, --targets,
 * --slots, --max-batch, --max-seq-len ---- */

int take_common(int argc, char **argv, int *i, cli_common *c) {
    const char *a = argv[*i];
    int is_common = !strcmp(a, "--model") || !strcmp(a, "--schema") || !strcmp(a, "--max-rank") ||
                    !strcmp(a, "--targets") || !strcmp(a, "--slots") || !strcmp(a, "--max-batch") ||
                    !strcmp(a, "--max-seq-len") || !strcmp(a, "--artifact");
    if (!is_common) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "lorajit: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    long n;
    if (!strcmp(a, "--model")) c->model = v;
    else if (!strcmp(a, "--artifact")) c->artifact = v;
    else if (!strcmp(a, "--schema")) c->opts.schema_path = v;
    else if (!strcmp(a, "--targets")) c->opts.targets = v;
    else if (parse_int(v, 1, INT_MAX, &n)) {
        fprintf(stderr, "lorajit: %s wants a positive integer, got '%s'\n", a, v);
        return -1;
    } else if (!strcmp(a, "--max-rank")) c->opts.max_rank = (int)n;
    else if (!strcmp(a, "--max-batch")) c->opts.max_batch = (int)n;
    else if (!strcmp(a, "--max-seq-len")) c->opts.max_seq_len = (int)n;
    else c->opts.max_adapters = (int)n;
    return 1;
}

lorajit_engine *open_engine(const cli_common *c) {
    lorajit_engine *e = NULL;
    lorajit_status s = c->artifact ? lorajit_engine_open_artifact(&e, c->artifact, c->model, &c->opts)
                                   : lorajit_engine_open(&e, c->model, &c->opts);
    if (s != LORAJIT_OK) {
        fprintf(stderr, "lorajit: cannot open model %s%s%s: %s (%s)\n", c->model,
                c->artifact ? " with artifact " : "", c->artifact ? c->artifact : "",
                e ? lorajit_errmsg(e) : "out of memory", lorajit_status_str(s));
        lorajit_engine_free(e);
        return NULL;
    }
    return e;
}

double now_ms(void) {
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
           "active=%lld enabled=%d compile_ms=%.3f failed_calls=%lld prefill_tokens=%lld "
           "decode_tokens=%lld\n",
           (long long)st.compiles, (long long)st.loads, (long long)st.hotswaps, (long long)st.deletes,
           (long long)st.forwards, (long long)st.adapters, (long long)st.active, st.enabled,
           st.compile_ms, (long long)st.failed_calls, (long long)st.prefill_tokens,
           (long long)st.decode_tokens);
    fflush(stdout);
}

/* Runs one script line; returns 0 or writes why and returns -1. */
static int script_line(lorajit_engine *e, char *line, char *why, size_t whylen) {
    script_cmd c;
    if (script_parse(line, &c, why, whylen)) return -1;
    lorajit_status s = LORAJIT_OK;
    int werr = 0;
    switch (c.op) {
    case SCRIPT_BLANK: break;
    case SCRIPT_LOAD: s = lorajit_load_adapter(e, c.name, c.path); break;
    case SCRIPT_HOTSWAP: s = lorajit_hotswap_adapter(e, c.name, c.path); break;
    case SCRIPT_SET: s = lorajit_set_adapter(e, c.set.names, c.set.weights, c.set.n); break;
    case SCRIPT_ENABLE: s = lorajit_enable_adapters(e); break;
    case SCRIPT_DISABLE: s = lorajit_disable_adapters(e); break;
    case SCRIPT_DELETE: s = lorajit_delete_adapter(e, c.name); break;
    case SCRIPT_STATS: print_stats(e); break;
    case SCRIPT_GENERATE: {
        int rc = script_generate(e, &c, why, whylen);
        script_cmd_free(&c);
        return rc;
    }
    case SCRIPT_FORWARD: {
        int vocab = lorajit_vocab_size(e);
        float *logits = malloc(sizeof *logits * (size_t)c.n_tokens * (size_t)(vocab > 0 ? vocab : 1));
        if (!logits) { script_cmd_free(&c); snprintf(why, whylen, "out of memory"); return -1; }
        s = lorajit_forward(e, c.tokens, c.n_tokens, logits);
        if (s == LORAJIT_OK && write_logits(c.path, logits, (size_t)c.n_tokens * vocab)) werr = errno ? errno : EIO;
        free(logits);
        break;
    }
    }
    script_cmd_free(&c);
    if (werr) { snprintf(why, whylen, "cannot write %s: %s", c.path, strerror(werr)); return -1; }
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

#define DEMO_MAX 3    /* adapters the demo cycles through */
#define DEMO_PROMPT 7 /* tokens of the fixed prompt */

/* Logits seen for one adapter state, keyed by a text description of the state. */
typedef struct demo_state {
    char key[256];
    float *logits; /* [n_prompt, vocab_size] */
} demo_state;

typedef struct demo {
    lorajit_engine *e;
    int n_ad;                      /* adapters in use, 1..DEMO_MAX */
    char names[DEMO_MAX][64];      /* adapter names = their folder names */
    char dirs[DEMO_MAX][4400];     /* their folders */
    int32_t prompt[DEMO_PROMPT];
    size_t n_logits;               /* n_prompt * vocab_size */
    float *base, *got;             /* [n_prompt, vocab_size] */
    demo_state *states;
    int n_states, n_recur, n_disabled, n_fail;
    double *swap_ms, *fwd_ms;      /* one entry per hotswap / forward */
    int n_swaps, n_fwd;
} demo;

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
    if (env && *env) return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
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

static int is_adapter_dir(const char *root, const char *name) {
    char path[4400];
    if (snprintf(path, sizeof path, "%s/%s/adapter_config.json", root, name) >= (int)sizeof path) return 0;
    return access(path, R_OK) == 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Picks the demo's adapters under root: a_qv, a_all and a_mlp when all three are
 * there, else the first DEMO_MAX adapter folders in name order. */
static int demo_find_adapters(demo *d, const char *root) {
    static const char *const preferred[DEMO_MAX] = {"a_qv", "a_all", "a_mlp"};
    d->n_ad = 0;
    int all = 1;
    for (int k = 0; k < DEMO_MAX; k++) all &= is_adapter_dir(root, preferred[k]);
    if (all) {
        for (int k = 0; k < DEMO_MAX; k++) snprintf(d->names[k], sizeof d->names[k], "%s", preferred[k]);
        d->n_ad = DEMO_MAX;
    } else {
        DIR *dir = opendir(root);
        char found[64][64];
        int n = 0;
        for (struct dirent *ent; dir && n < 64 && (ent = readdir(dir));)
            if (ent->d_name[0] != '.' && strlen(ent->d_name) < 64 && is_adapter_dir(root, ent->d_name))
                strcpy(found[n++], ent->d_name);
        if (dir) closedir(dir);
        qsort(found, n, sizeof found[0], cmp_name);
        for (; d->n_ad < n && d->n_ad < DEMO_MAX; d->n_ad++) strcpy(d->names[d->n_ad], found[d->n_ad]);
    }
    for (int k = 0; k < d->n_ad; k++)
        if (snprintf(d->dirs[k], sizeof d->dirs[k], "%s/%s", root, d->names[k]) >= (int)sizeof d->dirs[k]) return -1;
    return d->n_ad ? 0 : -1;
}

/* Forwards the prompt into out and times it. */
static int demo_forward(demo *d, float *out) {
    double t0 = now_ms();
    if (lorajit_forward(d->e, d->prompt, DEMO_PROMPT, out) != LORAJIT_OK) {
        fprintf(stderr, "demo: forward: %s\n", lorajit_errmsg(d->e));
        return -1;
    }
    d->fwd_ms[d->n_fwd++] = now_ms() - t0;
    return 0;
}

/* Checks d->got for the adapter state key: it differs from the base logits, and
 * it is bit-identical to what the same state gave before. */
static int demo_check_state(demo *d, const char *key) {
    size_t bytes = d->n_logits * sizeof(float);
    if (!memcmp(d->got, d->base, bytes)) {
        fprintf(stderr, "demo: FAIL state %s gives the base logits\n", key);
        d->n_fail++;
    }
    for (int s = 0; s < d->n_states; s++) {
        if (strcmp(d->states[s].key, key)) continue;
        d->n_recur++;
        if (memcmp(d->got, d->states[s].logits, bytes)) {
            fprintf(stderr, "demo: FAIL state %s gave different logits when it recurred\n", key);
            d->n_fail++;
        }
        return 0;
    }
    demo_state *more = realloc(d->states, (d->n_states + 1) * sizeof *more);
    if (!more) return -1;
    d->states = more;
    demo_state *st = &d->states[d->n_states];
    if (!(st->logits = malloc(bytes))) return -1;
    memcpy(st->logits, d->got, bytes);
    snprintf(st->key, sizeof st->key, "%s", key);
    d->n_states++;
    return 0;
}

/* The cycles: each round hotswaps every name to the next adapter folder (timed),
 * activates a subset with weights after each swap and checks it, then checks that
 * disabled adapters give the base logits bit for bit. */
static int demo_cycles(demo *d, long cycles) {
    int holds[DEMO_MAX], masks[1 << DEMO_MAX], n_masks = 0;
    for (int k = 0; k < d->n_ad; k++) holds[k] = k; /* which folder name k holds now */
    for (int bits = 1; bits <= d->n_ad; bits++)     /* non-empty subsets, singles first */
        for (int m = 1; m < 1 << d->n_ad; m++)
            if (__builtin_popcount(m) == bits) masks[n_masks++] = m;
    static const float weights[] = {1.0f, 0.5f, 1.0f, 0.25f};
    long step = 0;
    for (long cyc = 0; cyc < cycles; cyc++) {
        for (int j = 0; j < d->n_ad; j++, step++) {
            int next = (holds[j] + 1) % d->n_ad;
            double t0 = now_ms();
            if (lorajit_hotswap_adapter(d->e, d->names[j], d->dirs[next]) != LORAJIT_OK) {
                fprintf(stderr, "demo: hotswap %s <- %s: %s\n", d->names[j], d->dirs[next], lorajit_errmsg(d->e));
                return -1;
            }
            d->swap_ms[d->n_swaps++] = now_ms() - t0;
            holds[j] = next;
            int mask = masks[step % n_masks], n = 0;
            const char *names[DEMO_MAX];
            float w[DEMO_MAX];
            char key[256] = "";
            for (int k = 0; k < d->n_ad; k++) {
                if (!(mask & (1 << k))) continue;
                names[n] = d->names[k];
                w[n] = weights[(step / n_masks + k) % 4];
                size_t kl = strlen(key);
                snprintf(key + kl, sizeof key - kl, "%s=%s*%g;", d->names[k], d->names[holds[k]], w[n]);
                n++;
            }
            if (lorajit_set_adapter(d->e, names, w, n) != LORAJIT_OK) {
                fprintf(stderr, "demo: set_adapter: %s\n", lorajit_errmsg(d->e));
                return -1;
            }
            if (demo_forward(d, d->got) || demo_check_state(d, key)) return -1;
        }
        if (lorajit_disable_adapters(d->e) != LORAJIT_OK || demo_forward(d, d->got)) return -1;
        d->n_disabled++;
        if (memcmp(d->got, d->base, d->n_logits * sizeof(float))) {
            fprintf(stderr, "demo: FAIL disabled logits differ from the base logits (cycle %ld)\n", cyc);
            d->n_fail++;
        }
        if (lorajit_enable_adapters(d->e) != LORAJIT_OK) return -1;
    }
    return 0;
}

/* The headline figure: hotswap of a rank-16 adapter on all seven
 * projections, alternating between two such adapters (examples/data, made by
 * lorajit_gen) so that every swap writes all of its bytes. Skipped (returns 0
 * with *n = 0) when they are not there, e.g. for another --model. */
static int demo_r16(demo *d, const char *data, const char *model_dir, double *med, int *n) {
    char dirs[2][4600], base[4096];
    const char *slash = strrchr(model_dir, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : model_dir);
    *n = 0;
    for (int k = 0; k < 2; k++) {
        if (snprintf(dirs[k], sizeof dirs[k], "%s/../../examples/data/adapters/%s/r16_all_%d", data, base, k + 1) >=
            (int)sizeof dirs[k])
            return 0;
        if (!is_adapter_dir(dirs[k], ".")) return 0;
    }
    const char *name = "r16_all";
    if (lorajit_load_adapter(d->e, name, dirs[0]) != LORAJIT_OK) {
        fprintf(stderr, "demo: load %s: %s\n", dirs[0], lorajit_errmsg(d->e));
        return -1;
    }
    enum { SWAPS = 200 };
    double ms[SWAPS];
    for (int i = 0; i < SWAPS; i++) {
        double t0 = now_ms();
        if (lorajit_hotswap_adapter(d->e, name, dirs[(i + 1) % 2]) != LORAJIT_OK) {
            fprintf(stderr, "demo: hotswap %s: %s\n", name, lorajit_errmsg(d->e));
            return -1;
        }
        ms[i] = now_ms() - t0;
    }
    *med = median(ms, SWAPS);
    *n = SWAPS;
    return lorajit_delete_adapter(d->e, name) == LORAJIT_OK ? 0 : -1;
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
    char data[4096], model_dir[4096], root[4200], real[PATH_MAX];
    if (!model && find_data_dir(data, sizeof data)) {
        fprintf(stderr, "lorajit demo: cannot find the conformance data; set LORAJIT_DATA\n");
        return 1;
    }
    int too_long = model ? snprintf(model_dir, sizeof model_dir, "%s", model) >= (int)sizeof model_dir
                         : snprintf(model_dir, sizeof model_dir, "%s/models/llama-tiny", data) >= (int)sizeof model_dir;
    if (!too_long && realpath(model_dir, real)) snprintf(model_dir, sizeof model_dir, "%s", real);
    too_long |= adapters_for_model(model_dir, root, sizeof root);
    if (!too_long && realpath(root, real)) snprintf(root, sizeof root, "%s", real);
    demo *d = calloc(1, sizeof *d);
    if (!d) { fprintf(stderr, "demo: out of memory\n"); return 1; }
    int rc = 1;
    if (too_long || demo_find_adapters(d, root)) {
        fprintf(stderr, "lorajit demo: no adapters found under %s\n", root);
        goto done;
    }
    printf("demo: model %s\ndemo: adapters in %s:", model_dir, root);
    for (int k = 0; k < d->n_ad; k++) printf(" %s", d->names[k]);
    printf("\n");

    cli_common c = {.model = model_dir};
    double t0 = now_ms();
    if (!(d->e = open_engine(&c))) goto done;
    double open_ms = now_ms() - t0;
    lorajit_stats st;
    lorajit_get_stats(d->e, &st);
    printf("demo: compiled once in %.1f ms (engine open %.1f ms)\n", st.compile_ms, open_ms);

    int vocab = lorajit_vocab_size(d->e);
    static const int32_t prompt[DEMO_PROMPT] = {175, 196, 25, 246, 67, 211, 151};
    for (int i = 0; i < DEMO_PROMPT; i++) d->prompt[i] = prompt[i] % (vocab > 0 ? vocab : 1);
    d->n_logits = (size_t)DEMO_PROMPT * (size_t)(vocab > 0 ? vocab : 1);
    d->base = malloc(d->n_logits * sizeof(float));
    d->got = malloc(d->n_logits * sizeof(float));
    d->swap_ms = malloc(sizeof(double) * cycles * d->n_ad);
    d->fwd_ms = malloc(sizeof(double) * (cycles * (d->n_ad + 1) + 1));
    if (!d->base || !d->got || !d->swap_ms || !d->fwd_ms) { fprintf(stderr, "demo: out of memory\n"); goto done; }
    if (demo_forward(d, d->base)) goto done;
    for (int k = 0; k < d->n_ad; k++) {
        if (lorajit_load_adapter(d->e, d->names[k], d->dirs[k]) != LORAJIT_OK) {
            fprintf(stderr, "demo: load %s: %s\n", d->names[k], lorajit_errmsg(d->e));
            goto done;
        }
    }
    if (demo_cycles(d, cycles)) {
        fprintf(stderr, "demo: stopped: %s\n", lorajit_errmsg(d->e));
        goto done;
    }

    double r16_med = 0;
    int r16_n = 0;
    if (demo_r16(d, model ? "" : data, model_dir, &r16_med, &r16_n)) goto done;
    lorajit_get_stats(d->e, &st);
    double swap_min = d->swap_ms[0], swap_max = d->swap_ms[0];
    for (int i = 1; i < d->n_swaps; i++) {
        if (d->swap_ms[i] < swap_min) swap_min = d->swap_ms[i];
        if (d->swap_ms[i] > swap_max) swap_max = d->swap_ms[i];
    }
    double swap_med = median(d->swap_ms, d->n_swaps), fwd_med = median(d->fwd_ms, d->n_fwd);
    printf("demo: compile %.1f ms once; %d hotswaps: median %.3f ms, min %.3f ms, max %.3f ms\n",
           st.compile_ms, d->n_swaps, swap_med, swap_min, swap_max);
    if (r16_n)
        printf("demo: rank-16 adapter on all seven projections: %d hotswaps, median %.3f ms\n", r16_n, r16_med);
    printf("demo: %d forwards of %d tokens: median %.3f ms\n", d->n_fwd, DEMO_PROMPT, fwd_med);
    printf("demo: checks: %d adapter states differ from base, %d recurrences bit-identical, "
           "%d disabled == base\n", d->n_states, d->n_recur, d->n_disabled);
    printf("demo: stats: ");
    print_stats(d->e);
    if (st.compiles != 1) {
        fprintf(stderr, "demo: FAIL compiles=%lld, want 1\n", (long long)st.compiles);
        d->n_fail++;
    }
    printf("demo: %s compiles=%lld swaps=%d swap_median_ms=%.3f forward_median_ms=%.3f "
           "compile_ms=%.1f states=%d failed_checks=%d\n",
           d->n_fail ? "FAIL" : "OK", (long long)st.compiles, d->n_swaps, swap_med, fwd_med, st.compile_ms,
           d->n_states, d->n_fail);
    rc = d->n_fail ? 1 : 0;
done:
    for (int s = 0; s < d->n_states; s++) free(d->states[s].logits);
    free(d->states);
    free(d->base);
    free(d->got);
    free(d->swap_ms);
    free(d->fwd_ms);
    lorajit_engine_free(d->e);
    free(d);
    return rc;
}

/* `lorajit bench ...` runs the lorajit_bench binary that sits next to this one. */
static int cmd_bench(char **argv) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    if (n <= 0) {
        perror("lorajit bench: /proc/self/exe");
        return 1;
    }
    exe[n] = '\0';
    strcpy(strrchr(exe, '/') + 1, "lorajit_bench");
    argv[1] = exe;
    execv(exe, argv + 1);
    fprintf(stderr, "lorajit bench: cannot run %s: %s\n", exe, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "bench")) return cmd_bench(argv);
    if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
    if (!strcmp(cmd, "script")) return cmd_script(argc, argv);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc, argv);
    if (!strcmp(cmd, "demo")) return cmd_demo(argc, argv);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);
    if (!strcmp(cmd, "compile")) return cmd_compile(argc, argv);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    fprintf(stderr, "lorajit: unknown command '%s'\n", cmd);
    return usage();
}
