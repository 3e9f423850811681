/* test_hostile_lock.c — issue 11 class 1, second half: no writer call waits on
 * another one's file reads. A load whose adapter_model.safetensors is a named pipe
 * that no one writes fails at once (and the engine keeps serving). A slow read is
 * made deterministic by this test's own open(): the library's open() of a file
 * under a "slow_adapter" folder parks until the main thread says go (or 10 s pass).
 * While one thread's load is parked there, set_adapter, load, hotswap, delete,
 * list and forward on the main thread must all return promptly (the old code held
 * serve.write_lock across the read, so they waited for the park to time out). Then
 * the parked load finishes: its name is re-checked under the lock, so a second
 * load of the same name made meanwhile wins and the parked one gets E_EXISTS. */
#define _GNU_SOURCE /* syscall, O_* */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "lorajit.h"

#define TINY "conformance/models/llama-tiny"
#define ADAPTERS "conformance/adapters/llama-tiny"
#define PROMPT_MAX_S 2.0 /* a concurrent writer call returns within this */
#define PARK_S 10        /* a parked open gives up after this */

static struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int parked; /* an open is parked */
    int go;     /* the main thread let it go */
} park = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

/* The library's open(): linked from the static runtime archive, it binds here. */
int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (strstr(path, "slow_adapter/adapter_model.safetensors")) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += PARK_S;
        pthread_mutex_lock(&park.m);
        park.parked = 1;
        pthread_cond_broadcast(&park.c);
        while (!park.go && pthread_cond_timedwait(&park.c, &park.m, &until) == 0) {}
        pthread_mutex_unlock(&park.m);
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}


/* dir = root/name, a copy of conformance adapter src; the safetensors file is a
 * named pipe when fifo. */
static void make_adapter(char *dir, size_t cap, const char *root, const char *name, const char *src, int fifo) {
    char a[4096], b[4096];
    snprintf(dir, cap, "%s/%s", root, name);
    mkdir(dir, 0755);
    snprintf(a, sizeof a, "%s/%s/adapter_config.json", ADAPTERS, src);
    snprintf(b, sizeof b, "%s/adapter_config.json", dir);
    check_copy_file(a, b);
    snprintf(a, sizeof a, "%s/%s/adapter_model.safetensors", ADAPTERS, src);
    snprintf(b, sizeof b, "%s/adapter_model.safetensors", dir);
    remove(b);
    if (fifo) CHECK(mkfifo(b, 0600) == 0, "mkfifo %s: %s", b, strerror(errno));
    else check_copy_file(a, b);
}

typedef struct load_job {
    lorajit_engine *e;
    const char *name, *dir;
    lorajit_status st;
    char msg[1024];
} load_job;

static void *load_thread(void *arg) {
    load_job *j = arg;
    j->st = lorajit_load_adapter(j->e, j->name, j->dir);
    snprintf(j->msg, sizeof j->msg, "%s", lorajit_errmsg(j->e));
    return NULL;
}

/* Waits until an open is parked; 0 when none came within PARK_S. */
static int wait_parked(void) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PARK_S;
    pthread_mutex_lock(&park.m);
    while (!park.parked && pthread_cond_timedwait(&park.c, &park.m, &until) == 0) {}
    int p = park.parked;
    pthread_mutex_unlock(&park.m);
    return p;
}

static void release_park(void) {
    pthread_mutex_lock(&park.m);
    park.go = 1;
    pthread_cond_broadcast(&park.c);
    pthread_mutex_unlock(&park.m);
}

/* A writer call on the main thread: it must succeed (or fail as wanted) promptly. */
#define PROMPT(call, want)                                                                       \
    do {                                                                                         \
        double t0_ = check_wall_s();                                                                    \
        lorajit_status st_ = (call);                                                             \
        double dt_ = check_wall_s() - t0_;                                                              \
        CHECK(st_ == (want), "%s: status %d: %s", #call, st_, lorajit_errmsg(e));                \
        CHECK(dt_ < PROMPT_MAX_S, "%s took %.2f s while another load was reading", #call, dt_); \
    } while (0)

int main(int argc, char **argv) {
    check_enter_tests_dir();
    alarm(120);
    char root[1024], fifo_dir[2048], slow_dir[2048];
    snprintf(root, sizeof root, "%s/tmp_hostile_lock", argc > 1 ? argv[1] : ".");
    mkdir(root, 0755);
    make_adapter(fifo_dir, sizeof fifo_dir, root, "fifo_adapter", "a_qv", 1);
    make_adapter(slow_dir, sizeof slow_dir, root, "slow_adapter", "a_all", 0);
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, TINY, &(lorajit_options){.max_adapters = 4});
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    if (st) return check_summary("hostile_lock");
    CHECK(lorajit_load_adapter(e, "qv", ADAPTERS "/a_qv") == LORAJIT_OK, "load qv: %s", lorajit_errmsg(e));

    /* a named pipe no one writes: refused at once, by name and kind */
    PROMPT(lorajit_load_adapter(e, "fifo", fifo_dir), LORAJIT_E_IO);
    CHECK(strstr(lorajit_errmsg(e), "adapter_model.safetensors") && strstr(lorajit_errmsg(e), "named pipe"),
          "fifo: %s", lorajit_errmsg(e));
    PROMPT(lorajit_hotswap_adapter(e, "qv", fifo_dir), LORAJIT_E_IO);

    /* a slow read on another thread does not hold up the writer calls */
    load_job slow = {e, "slow", slow_dir, LORAJIT_OK, ""};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, load_thread, &slow) == 0, "pthread_create");
    CHECK(wait_parked(), "the slow load never opened its safetensors file");
    const char *names[1] = {"qv"};
    float w[1] = {1.0f};
    PROMPT(lorajit_set_adapter(e, names, w, 1), LORAJIT_OK);
    PROMPT(lorajit_load_adapter(e, "mlp", ADAPTERS "/a_mlp"), LORAJIT_OK);
    PROMPT(lorajit_hotswap_adapter(e, "qv", ADAPTERS "/a_all"), LORAJIT_OK);
    PROMPT(lorajit_delete_adapter(e, "mlp"), LORAJIT_OK);
    PROMPT(lorajit_disable_adapters(e), LORAJIT_OK);
    PROMPT(lorajit_enable_adapters(e), LORAJIT_OK);
    /* the same name as the parked load: this one is first to commit */
    PROMPT(lorajit_load_adapter(e, "slow", ADAPTERS "/a_mlp"), LORAJIT_OK);
    const char *listed[8];
    double t0 = check_wall_s();
    int n = lorajit_list_adapters(e, listed, 8);
    CHECK(n == 2 && check_wall_s() - t0 < PROMPT_MAX_S, "list: %d adapters", n);
    int32_t tokens[3] = {1, 2, 3};
    float *logits = malloc(sizeof(float) * 3 * (size_t)lorajit_vocab_size(e));
    PROMPT(lorajit_forward(e, tokens, 3, logits), LORAJIT_OK);
    free(logits);
    release_park();
    pthread_join(t, NULL);
    CHECK(slow.st == LORAJIT_E_EXISTS && strstr(slow.msg, "'slow'"),
          "the parked load of a name loaded meanwhile: status %d: %s", slow.st, slow.msg);

    /* the parked load of a new name succeeds once let go */
    park.parked = park.go = 0;
    load_job slow2 = {e, "slow2", slow_dir, LORAJIT_OK, ""};
    CHECK(pthread_create(&t, NULL, load_thread, &slow2) == 0, "pthread_create");
    CHECK(wait_parked(), "the second slow load never opened its safetensors file");
    PROMPT(lorajit_delete_adapter(e, "slow"), LORAJIT_OK);
    release_park();
    pthread_join(t, NULL);
    CHECK(slow2.st == LORAJIT_OK, "slow2: %s", slow2.msg);
    lorajit_stats s;
    CHECK(lorajit_get_stats(e, &s) == LORAJIT_OK && s.adapters == 2, "adapters: %lld", (long long)s.adapters);
    lorajit_engine_free(e);
    return check_summary("hostile_lock");
}
