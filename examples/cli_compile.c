/* cli_compile.c — `lorajit compile`: a model and its schema to an artifact folder.
 *
 * Input: --model DIR (only config.json is read), the schema options, --target-cpu
 * (native, x86-64, x86-64-v2, x86-64-v3, x86-64-v4) and -o OUT. Output: OUT holds
 * liblorajit_model.so, model.o, model.h, model.ir and manifest.json (see
 * lorajit_compile_artifact); one line reports the files' sizes and the time taken.
 * `run`, `script`, `inspect` and `generate` then take --artifact OUT. Uses only
 * lorajit.h and libc. Exit status: 0 ok, 1 the compilation failed, 2 usage. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Size of OUT/name in bytes, or -1. */
static long long file_size(const char *dir, const char *name) {
    char path[4200];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path || stat(path, &st) != 0) return -1;
    return (long long)st.st_size;
}

int cmd_compile(int argc, char **argv) {
    cli_common c = {0};
    const char *out = NULL, *cpu = "native";
    for (int i = 2; i < argc; i++) {
        int k = take_common(argc, argv, &i, &c);
        if (k < 0) return usage();
        if (k) continue;
        const char *a = argv[i];
        if (is_help(a)) return help("compile");
        if (strcmp(a, "-o") && strcmp(a, "--out") && strcmp(a, "--target-cpu")) {
            fprintf(stderr, "lorajit compile: unknown argument '%s'\n", a);
            return usage();
        }
        if (i + 1 >= argc) { fprintf(stderr, "lorajit compile: %s needs a value\n", a); return usage(); }
        if (!strcmp(a, "--target-cpu")) cpu = argv[++i];
        else out = argv[++i];
    }
    if (!c.model || !out || c.artifact) {
        fprintf(stderr, "lorajit compile: --model and -o OUT are required (and --artifact makes no sense here)\n");
        return usage();
    }
    if (check_common(&c)) return 1;
    char msg[1024];
    double t0 = progress_begin(&c, "compiling model %s for CPU %s into %s", c.model, cpu, out);
    lorajit_status s = lorajit_compile_artifact(c.model, &c.opts, cpu, out, msg, sizeof msg);
    double ms = now_ms() - t0;
    progress_end(&c, t0, s == LORAJIT_OK);
    if (s != LORAJIT_OK) {
        fprintf(stderr, "lorajit compile: %s (%s)\n", msg, lorajit_status_str(s));
        return 1;
    }
    static const char *const files[] = {"liblorajit_model.so", "model.o", "model.h", "model.ir", "manifest.json"};
    long long total = 0;
    printf("lorajit compile: %s for target CPU %s in %.1f ms:", out, cpu, ms);
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        long long n = file_size(out, files[k]);
        printf(" %s %lld", files[k], n);
        total += n > 0 ? n : 0;
    }
    printf(" (%lld bytes)\n", total);
    return 0;
}
