/* bench_serve_setup.c — what section 12 (`lorajit bench --serve`, bench_serve.c) runs
 * its load against: the two models and their adapters (generated once into the bench's
 * work folder), the --adapter-dir ROOT of the Zipf scenario, the C API engine and the
 * `lorajit serve` child with the same options, and a process's CPU clock. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_serve.h"

static const struct {
    const char *tag, *args;
} serve_models[2] = {
    {"serve_d256_l4", "--dim 256 --hidden 688 --layers 4 --heads 8 --kv-heads 8 --vocab 2048 --max-pos 256 --seed 3"},
    {"serve_d1024_l8_bf16", "--dim 1024 --hidden 2816 --layers 8 --heads 16 --kv-heads 4 --vocab 32000 "
                            "--max-pos 256 --std 0.02 --seed 5 --dtype bf16"},
};

void bs_serve_model(const char *exe_dir, const char *work, int m, char *model, char (*adapters)[PATH_MAX]) {
    char args[256];
    bench_fmt(model, PATH_MAX, "%s/models/%s", work, serve_models[m].tag);
    bench_progress("serve: generating %s and 16 adapters (reused when present)", serve_models[m].tag);
    bench_generate(exe_dir, "model", model, NULL, serve_models[m].args);
    for (int k = 0; k < BS_ADAPTERS; k++) {
        bench_fmt(adapters[k], PATH_MAX, "%s/adapters/%s_a%d", work, m ? serve_models[m].tag : "serve", k);
        bench_fmt(args, sizeof args, "--r 8 --targets q_proj,v_proj --seed %d", 100 + k);
        bench_generate(exe_dir, "adapter", adapters[k], model, args);
    }
}

pid_t bs_start_server(const char *exe_dir, const char *log, const char *model, int threads, int slots,
                      const char *const *extra, int n_extra, int *port) {
    char exe[PATH_MAX + 16], th[16], sl[16];
    bench_fmt(exe, sizeof exe, "%s/lorajit", exe_dir);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(sl, sizeof sl, "%d", slots);
    const char *argv[64] = {exe, "serve", "--model", model, "--port", "0", "--max-batch", "8", "--slots", sl,
                            "--max-rank", "8", "--max-seq-len", "64", "--targets", "q_proj,v_proj", "--threads", th};
    int n = 18;
    for (int k = 0; k < n_extra && n < 63; k++) argv[n++] = extra[k];
    argv[n] = NULL;
    unlink(log);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 3000 && pid > 0; i++) { /* up to 5 minutes on a busy machine */
        usleep(100 * 1000);
        char *text = bench_read_file(log, NULL);
        char *at = strstr(text, "listening on http://127.0.0.1:");
        int ready = strstr(text, "ready:") != NULL;
        if (at) *port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(text);
        if (ready && at) return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
    }
    bench_die("lorajit serve did not start (see %s)", log);
}

lorajit_engine *bs_open_engine(const char *model, int threads, int slots) {
    lorajit_options o = {.max_rank = 8, .targets = "q_proj,v_proj", .max_adapters = slots, .max_batch = BS_MAX_BATCH,
                         .max_seq_len = 64, .threads = threads};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model, &o), e, model);
    return e;
}

void bs_make_root(const char *root, char (*folders)[PATH_MAX]) {
    const char *rm[] = {"rm", "-rf", root, NULL};
    if (bench_run(rm, NULL, NULL, -1, NULL) != 0) bench_die("cannot remove %s", root);
    bench_mkdirs(root);
    char dst[PATH_MAX + 64], src[PATH_MAX + 300], link_to[16];
    for (int f = 0; f < BS_FOLDERS; f++) {
        bench_fmt(dst, sizeof dst, "%s/f%d", root, f);
        bench_mkdirs(dst);
        DIR *dir = opendir(folders[f]);
        if (!dir) bench_die("%s: %s", folders[f], strerror(errno));
        for (struct dirent *de; (de = readdir(dir));) {
            if (de->d_name[0] == '.') continue;
            bench_fmt(src, sizeof src, "%s/%s", folders[f], de->d_name);
            bench_fmt(dst, sizeof dst, "%s/f%d/%s", root, f, de->d_name);
            if (link(src, dst)) bench_die("cannot link %s to %s: %s", src, dst, strerror(errno));
        }
        closedir(dir);
    }
    for (int i = 0; i < BS_NAMES; i++) {
        bench_fmt(dst, sizeof dst, "%s/z%04d", root, i);
        snprintf(link_to, sizeof link_to, "f%d", i % BS_FOLDERS);
        if (symlink(link_to, dst)) bench_die("cannot make %s: %s", dst, strerror(errno));
    }
}

double bs_cpu_us(pid_t pid) {
    clockid_t id = CLOCK_PROCESS_CPUTIME_ID;
    struct timespec t;
    if ((pid && clock_getcpuclockid(pid, &id)) || clock_gettime(id, &t)) return 0;
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
