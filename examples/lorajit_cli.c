/* lorajit_cli.c — the `lorajit` command: run, script and inspect, the common
 * options and opening the engine (generate: cli_generate.c, compile: cli_compile.c,
 * demo: cli_demo.c, usage and progress: cli_text.c, file checks: cli_file.c).
 * Input: a Hugging Face LLaMA model folder, PEFT adapter folders, token lists and
 * (script) a file of commands. Output: logits (raw little-endian float32 [tokens,
 * vocab]) or a per-position argmax summary, the IR text and counters. Uses only
 * lorajit.h and libc.
 * Exit status: 0 ok, 1 a failure (model, adapter, file, script line), 2 usage. */
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
#include "cli_file.h"

/* ---- output ---- */

/* Writes n floats as raw little-endian float32 to path (a regular file, named
 * `what` in messages). 0, else writes why and returns -1. */
static int write_logits(const char *what, const char *path, const float *x, size_t n, char *why, size_t whylen) {
    FILE *f = cli_open_write(what, path, why, whylen);
    if (!f) return -1;
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char b[4] = {u & 0xff, (u >> 8) & 0xff, (u >> 16) & 0xff, u >> 24};
        ok = fwrite(b, 1, 4, f) == 4;
    }
    int err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (!ok) snprintf(why, whylen, "%s %s: cannot write: %s", what, path, strerror(err ? err : EIO));
    return ok ? 0 : -1;
}

/* ---- common options: --model, --artifact, --schema, --max-rank, --targets,
 * --slots, --max-batch, --max-seq-len, --kv-cache-mb, --kv-block-size, --kv-dtype,
 * --lora-dtype, --threads, --progress, --no-progress ---- */

int take_common(int argc, char **argv, int *i, cli_common *c) {
    const char *a = argv[*i];
    if (!strcmp(a, "--progress") || !strcmp(a, "--no-progress")) {
        c->progress = a[2] == 'p' ? 1 : -1;
        return 1;
    }
    int is_common = !strcmp(a, "--model") || !strcmp(a, "--schema") || !strcmp(a, "--max-rank") ||
                    !strcmp(a, "--targets") || !strcmp(a, "--slots") || !strcmp(a, "--max-batch") ||
                    !strcmp(a, "--max-seq-len") || !strcmp(a, "--artifact") || !strcmp(a, "--kv-cache-mb") ||
                    !strcmp(a, "--kv-block-size") || !strcmp(a, "--kv-dtype") || !strcmp(a, "--lora-dtype") ||
                    !strcmp(a, "--threads");
    if (!is_common) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "lorajit: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    long n;
    if (!strcmp(a, "--model")) c->model = v;
    else if (!strcmp(a, "--artifact")) c->artifact = v;
    else if (!strcmp(a, "--schema")) c->opts.schema_path = v;
    else if (!strcmp(a, "--targets")) c->opts.targets = v;
    else if (!strcmp(a, "--kv-dtype")) c->opts.kv_dtype = v; /* checked by the library (options.kv_dtype) */
    else if (!strcmp(a, "--lora-dtype")) c->opts.lora_dtype = v; /* checked by the library (options.lora_dtype) */
    else if (parse_int(v, 1, INT_MAX, &n)) {
        fprintf(stderr, "lorajit: %s wants a positive integer, got '%s'\n", a, v);
        return -1;
    } else if (!strcmp(a, "--max-rank")) c->opts.max_rank = (int)n;
    else if (!strcmp(a, "--max-batch")) c->opts.max_batch = (int)n;
    else if (!strcmp(a, "--max-seq-len")) c->opts.max_seq_len = (int)n;
    else if (!strcmp(a, "--kv-cache-mb")) c->opts.kv_cache_mb = (int)n;
    else if (!strcmp(a, "--kv-block-size")) c->opts.kv_block_size = (int)n;
    else if (!strcmp(a, "--threads")) c->opts.threads = (int)n;
    else c->opts.max_adapters = (int)n;
    return 1;
}

int check_common(const cli_common *c) {
    char why[4400];
    if (!c->opts.schema_path || cli_check_path("--schema", c->opts.schema_path, 1, why, sizeof why) == 0) return 0;
    fprintf(stderr, "lorajit: %s\n", why);
    return -1;
}

lorajit_engine *open_engine(const cli_common *c) {
    if (check_common(c)) return NULL;
    lorajit_engine *e = NULL;
    double t0 = c->artifact ? progress_begin(c, "opening artifact %s (weights %s)", c->artifact, c->model)
                            : progress_begin(c, "compiling model %s", c->model);
    lorajit_status s = c->artifact ? lorajit_engine_open_artifact(&e, c->artifact, c->model, &c->opts)
                                   : lorajit_engine_open(&e, c->model, &c->opts);
    progress_end(c, t0, s == LORAJIT_OK);
    if (s != LORAJIT_OK) {
        fprintf(stderr, "lorajit: cannot open model %s%s%s: %s (%s)\n", c->model,
                c->artifact ? " with artifact " : "", c->artifact ? c->artifact : "",
                e ? lorajit_errmsg(e) : "out of memory", lorajit_status_str(s));
        lorajit_engine_free(e);
        return NULL;
    }
    lorajit_stats st; /* the library times its stages; no callback to show them live */
    if (!c->artifact && progress_on(c) && lorajit_get_stats(e, &st) == LORAJIT_OK)
        fprintf(stderr, "lorajit:   config + front end %.1f ms, plan %.1f ms, codegen %.1f ms, optimize %.1f ms, "
                "jit %.1f ms\n", st.frontend_ms, st.plan_ms, st.codegen_ms, st.optimize_ms, st.jit_ms);
    return e;
}

int load_adapters(const cli_common *c, lorajit_engine *e, const char *verb, const char *const *adapters, int n) {
    for (int i = 0; i < n; i++) {
        char name[256];
        const char *eq = strchr(adapters[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - adapters[i]), adapters[i]);
        double t0 = progress_begin(c, "loading adapter %s from %s", name, eq + 1);
        lorajit_status s = lorajit_load_adapter(e, name, eq + 1);
        progress_end(c, t0, s == LORAJIT_OK);
        if (s != LORAJIT_OK) {
            fprintf(stderr, "lorajit %s: load %s: %s\n", verb, name, lorajit_errmsg(e));
            return -1;
        }
    }
    return 0;
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
        if (is_help(a)) return help("run");
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
    char why[4400];
    int32_t *tokens;
    int n;
    active_spec act;
    if (logits_path && cli_check_path("--logits", logits_path, 0, why, sizeof why)) {
        fprintf(stderr, "lorajit run: %s\n", why); /* before the compile, not after */
        return 1;
    }
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
    if (load_adapters(&c, e, "run", adapters, n_adapters)) goto done;
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
    double t0 = progress_begin(&c, "forward of %d token%s", n, n == 1 ? "" : "s");
    lorajit_status s = lorajit_forward(e, tokens, n, logits);
    progress_end(&c, t0, s == LORAJIT_OK);
    if (s != LORAJIT_OK) {
        fprintf(stderr, "lorajit run: forward: %s\n", lorajit_errmsg(e));
        goto done;
    }
    if (logits_path) {
        if (write_logits("--logits", logits_path, logits, (size_t)n * vocab, why, sizeof why)) {
            fprintf(stderr, "lorajit run: %s\n", why);
            goto done;
        }
        printf("lorajit run: wrote %s: logits [%d, %d] float32 little-endian, %zu bytes\n", logits_path, n, vocab,
               (size_t)n * (size_t)vocab * 4);
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

void print_stats(lorajit_engine *e) {
    lorajit_stats st;
    if (lorajit_get_stats(e, &st) != LORAJIT_OK) return;
    printf("compiles=%lld loads=%lld hotswaps=%lld deletes=%lld forwards=%lld adapters=%lld "
           "active=%lld enabled=%d compile_ms=%.3f failed_calls=%lld prefill_tokens=%lld "
           "decode_tokens=%lld threads=%d\n",
           (long long)st.compiles, (long long)st.loads, (long long)st.hotswaps, (long long)st.deletes,
           (long long)st.forwards, (long long)st.adapters, (long long)st.active, st.enabled,
           st.compile_ms, (long long)st.failed_calls, (long long)st.prefill_tokens,
           (long long)st.decode_tokens, st.threads);
    fflush(stdout);
}

/* Runs one script line; returns 0 or writes why and returns -1. */
static int script_line(const cli_common *cc, lorajit_engine *e, char *line, char *why, size_t whylen) {
    script_cmd c;
    if (script_parse(line, &c, why, whylen)) return -1;
    lorajit_status s = LORAJIT_OK;
    int failed = 0; /* why already written */
    double t0 = 0;
    switch (c.op) {
    case SCRIPT_BLANK: break;
    case SCRIPT_LOAD:
    case SCRIPT_HOTSWAP:
        t0 = progress_begin(cc, "%s adapter %s from %s", c.op == SCRIPT_LOAD ? "loading" : "hotswapping", c.name,
                            c.path);
        s = c.op == SCRIPT_LOAD ? lorajit_load_adapter(e, c.name, c.path) : lorajit_hotswap_adapter(e, c.name, c.path);
        progress_end(cc, t0, s == LORAJIT_OK);
        break;
    case SCRIPT_SET: s = lorajit_set_adapter(e, c.set.names, c.set.weights, c.set.n); break;
    case SCRIPT_ENABLE: s = lorajit_enable_adapters(e); break;
    case SCRIPT_DISABLE: s = lorajit_disable_adapters(e); break;
    case SCRIPT_DELETE: s = lorajit_delete_adapter(e, c.name); break;
    case SCRIPT_STATS: print_stats(e); break;
    case SCRIPT_GENERATE: failed = script_generate(e, &c, why, whylen) != 0; break;
    case SCRIPT_FORWARD: {
        int vocab = lorajit_vocab_size(e);
        float *logits = malloc(sizeof *logits * (size_t)c.n_tokens * (size_t)(vocab > 0 ? vocab : 1));
        if (!logits) { script_cmd_free(&c); snprintf(why, whylen, "out of memory"); return -1; }
        s = lorajit_forward(e, c.tokens, c.n_tokens, logits);
        if (s == LORAJIT_OK)
            failed = write_logits("forward FILE", c.path, logits, (size_t)c.n_tokens * vocab, why, whylen) != 0;
        free(logits);
        break;
    }
    }
    script_cmd_free(&c);
    if (failed) return -1;
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
        if (is_help(argv[i])) return help("script");
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
    char why[4400];
    FILE *f = cli_open_read("script FILE", path, 1, why, sizeof why);
    if (!f) {
        fprintf(stderr, "lorajit script: %s\n", why);
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
        if (script_line(&c, e, line, why, sizeof why)) {
            fflush(stdout);
            fprintf(stderr, "error: line %ld: %s\n", lineno, why);
            failed = 1;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "lorajit script: %s: read error after line %ld\n", path, lineno);
        failed = 1;
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
        if (!k && is_help(argv[i])) return help("inspect");
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
    if (!strcmp(cmd, "serve")) return cmd_serve(argc, argv);
    if (!strcmp(cmd, "compile")) return cmd_compile(argc, argv);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(cmd, "detokenize")) return cmd_detokenize(argc, argv);
    if (is_help(cmd) || !strcmp(cmd, "help")) return help(argc > 2 && !is_help(argv[2]) ? argv[2] : NULL);
    fprintf(stderr, "lorajit: unknown command '%s'\n", cmd);
    return usage();
}
