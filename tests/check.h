/* check.h — the tests' assertion macros (chibicc-style ASSERT, ggml-style nmse).
 * Recipe for a new test: add tests/test_NAME.c with a main() that uses CHECK and
 * ends with `return check_summary("NAME");`; CMake picks it up, ctest runs it from
 * tests/ with the build directory as argv[1]. */
#ifndef LORAJIT_CHECK_H
#define LORAJIT_CHECK_H

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int check_pass_count, check_fail_count;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) {                                                               \
            check_pass_count++;                                                   \
        } else {                                                                  \
            check_fail_count++;                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

/* Largest violation of |got - want| <= atol + rtol * |want| over n values, as a
 * ratio (<= 1 passes); *worst gets the index of the worst element. */
static inline double check_close_ratio(const float *got, const float *want, long n, double atol,
                                       double rtol, long *worst) {
    double r = 0;
    if (worst) *worst = -1;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double lim = atol + rtol * fabs((double)want[i]);
        double q = (d != d) ? INFINITY : d / lim;
        if (q > r || (q != q)) { r = q; if (worst) *worst = i; }
    }
    return r;
}

/* Reads a whole file, NUL-terminated. Caller owns the result; free with free().
 * NULL if unreadable. *len (when not NULL) gets the byte count. */
static inline char *check_read_file(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? (char *)malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* Writes data[0..n) to path. Returns 0, or -1 on any failure. */
static inline int check_write_file(const char *path, const void *data, long n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, (size_t)n, f) == (size_t)n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Copies the file src to dst (a test fixture); CHECK fails naming both when it cannot. */
static inline void check_copy_file(const char *src, const char *dst) {
    long n = 0;
    char *data = check_read_file(src, &n);
    CHECK(data && check_write_file(dst, data, n) == 0, "copy %s -> %s", src, dst);
    free(data);
}

/* Seconds on the monotonic clock (wall time). */
static inline double check_wall_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Tests run from tests/ (ctest's working directory); started from the project
 * root instead, move into tests/ so relative fixture paths hold. */
static inline void check_enter_tests_dir(void) {
    struct stat sb;
    if (stat("conformance/expected/index.json", &sb) != 0 && stat("tests/conformance", &sb) == 0)
        CHECK(chdir("tests") == 0, "chdir tests");
}

/* Unpacks tests/tokenizer/NAME into BUILD/tok/NAME (plain files copied, .xz ones
 * decompressed with xz); run from tests/. dir gets the folder. Returns 0 on success.
 * Each file is written under a temporary name and renamed into place: tests that run
 * beside each other (ctest -j) unpack the same folder, and one that has a file mapped
 * must never see it truncated (a SIGBUS seen once). */
static inline int check_unpack_tokenizer(const char *build, const char *name, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/tok/%s", build, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir -p %s; for f in tokenizer/%s/*; do b=$(basename $f); t=${b%%.xz}; "
             "case $b in *.xz) xz -dc $f > %s/.$t.$$;; *) cp $f %s/.$t.$$;; esac; "
             "mv -f %s/.$t.$$ %s/$t; done",
             dir, name, dir, dir, dir, dir);
    return system(cmd);
}

/* A child process that spins until check_stop_busy kills it: another process that
 * wants a core (oversubscription tests). Returns its pid, or -1 when fork failed. */
static inline pid_t check_spawn_busy(void) {
    pid_t pid = fork();
    if (pid == 0) {
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    return pid;
}

static inline void check_stop_busy(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static inline int check_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_pass_count, check_fail_count);
    return check_fail_count ? 1 : 0;
}

#endif
