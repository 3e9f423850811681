/* bench_util.c — what every part of `lorajit bench` leans on, calling nothing else
 * of bench/: failing (a CLI: print and exit 1), formatting paths, the clock and the
 * progress line, timing jobs round-robin into bench_stats (median, min, max), the
 * stats as JSON, running a program without a shell (bench_run: an argument list, so
 * no path can be read as an option or as shell text), and making models and adapters
 * with lorajit_gen (reused when their stamp matches). No figures here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"

void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("\nlorajit bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void bench_fmt(char *buf, size_t cap, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) bench_die("path or command too long: %.80s...", buf);
}

void bench_must(lorajit_status st, lorajit_engine *e, const char *what) {
    if (st != LORAJIT_OK) bench_die("%s: %s: %s", what, lorajit_status_str(st), lorajit_errmsg(e));
}

double bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The progress line's state: one CLI run, one line (set by bench_progress_start). */
static int progress_step, progress_total;
static double progress_t0;

void bench_progress_start(int total) {
    progress_step = 0;
    progress_total = total;
    progress_t0 = bench_now_ms();
}

double bench_elapsed_s(void) { return (bench_now_ms() - progress_t0) / 1e3; }

void bench_progress(const char *fmt, ...) {
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    bool tty = isatty(2);
    fprintf(stderr, "%s[%3d/%d %5.1fs] %-70s%s", tty ? "\r" : "", ++progress_step, progress_total,
            bench_elapsed_s(), what, tty ? "" : "\n");
    fflush(stderr);
}

void bench_mkdirs(const char *path) {
    char p[PATH_MAX];
    bench_fmt(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) bench_die("cannot create %s: %s", p, strerror(errno));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_stat bench_stat_of(double *ms, int reps) {
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    return (bench_stat){reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]), ms[0],
                        ms[reps - 1], reps};
}

void bench_measure_jobs(bench_job *jobs, int n, int reps) {
    double *ms = calloc((size_t)n * (size_t)reps, sizeof *ms);
    if (!ms) bench_die("out of memory");
    for (int round = -1; round < reps; round++)
        for (int j = 0; j < n; j++) {
            bench_job *b = &jobs[j];
            if (b->prep) b->prep(b->arg);
            double t0 = bench_now_ms();
            b->run(b->arg);
            double t = bench_now_ms() - t0;
            if (b->undo) b->undo(b->arg);
            if (round >= 0) ms[(size_t)j * (size_t)reps + (size_t)round] = t;
        }
    for (int j = 0; j < n; j++) *jobs[j].out = bench_stat_of(ms + (size_t)j * (size_t)reps, reps);
    free(ms);
}

cJSON *bench_stat_json(bench_stat s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "median", s.median);
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "max", s.max);
    cJSON_AddNumberToObject(o, "reps", s.reps);
    return o;
}

bench_stat bench_stat_from_json(const cJSON *o) {
    const cJSON *m = cJSON_GetObjectItem(o, "median"), *lo = cJSON_GetObjectItem(o, "min"),
                *hi = cJSON_GetObjectItem(o, "max"), *n = cJSON_GetObjectItem(o, "reps");
    if (!cJSON_IsNumber(m) || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || !cJSON_IsNumber(n)) return (bench_stat){0};
    return (bench_stat){m->valuedouble, lo->valuedouble, hi->valuedouble, n->valueint};
}

extern char **environ;

int bench_run(const char *const argv[], const char *dir, const char *const extra_env[], int out_fd,
              const char *err_path) {
    int n_env = 0, n_extra = 0;
    while (environ[n_env]) n_env++;
    while (extra_env && extra_env[n_extra]) n_extra++;
    char **envp = calloc((size_t)(n_env + n_extra + 1), sizeof *envp);
    if (!envp) bench_die("out of memory");
    int k = 0;
    for (int i = 0; i < n_extra; i++) envp[k++] = (char *)extra_env[i];
    for (int i = 0; i < n_env; i++) { /* the caller's settings win over the inherited ones */
        bool shadowed = false;
        for (int j = 0; j < n_extra && !shadowed; j++) {
            size_t eq = strcspn(extra_env[j], "=");
            shadowed = strncmp(environ[i], extra_env[j], eq + 1) == 0;
        }
        if (!shadowed) envp[k++] = environ[i];
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (dir) posix_spawn_file_actions_addchdir_np(&fa, dir);
    if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    else posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (err_path) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc != 0) return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool bench_generate(const char *exe_dir, const char *kind, const char *dir, const char *model_dir, const char *args) {
    char stamp[PATH_MAX + 16], want[PATH_MAX + 1100], have[PATH_MAX + 1100] = "";
    bench_fmt(stamp, sizeof stamp, "%s/.stamp", dir);
    bench_fmt(want, sizeof want, "%s%s%s", model_dir ? model_dir : "", model_dir ? " " : "", args);
    FILE *f = fopen(stamp, "r");
    if (f) {
        size_t n = fread(have, 1, sizeof have - 1, f);
        have[n] = '\0';
        fclose(f);
        if (strcmp(have, want) == 0) return false;
    }
    /* lorajit_gen KIND DIR [--model MODEL_DIR] ARGS...: args holds flags and numbers only */
    char exe[PATH_MAX + 16], words[1024];
    const char *argv[64];
    int n = 0;
    bench_fmt(exe, sizeof exe, "%s/lorajit_gen", exe_dir);
    argv[n++] = exe, argv[n++] = kind, argv[n++] = dir;
    if (model_dir) argv[n++] = "--model", argv[n++] = model_dir;
    bench_fmt(words, sizeof words, "%s", args);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < 63; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n] = NULL;
    if (bench_run(argv, NULL, NULL, -1, NULL) != 0) bench_die("generation failed: lorajit_gen %s %s %s", kind, dir, want);
    f = fopen(stamp, "w");
    if (!f) bench_die("cannot write %s", stamp);
    fputs(want, f);
    fclose(f);
    return true;
}

char *bench_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        fclose(f);
        if (len) *len = (size_t)n;
        return buf;
    }
    bench_die("cannot read %s: %s", path, strerror(errno));
}

double bench_uniform(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0;
}

void bench_zipf(int n, int n_req, int *out) {
    double *cdf = malloc(sizeof *cdf * (size_t)n), sum = 0;
    if (!cdf) bench_die("out of memory");
    for (int k = 0; k < n; k++) cdf[k] = (sum += 1.0 / (k + 1));
    uint64_t s = 42;
    for (int i = 0; i < n_req; i++) {
        double u = bench_uniform(&s) * sum;
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] < u) lo = mid + 1;
            else hi = mid;
        }
        out[i] = lo;
    }
    free(cdf);
}
