/* test_hostile_files.c — issue 11, classes 1 (not a regular file), 3 (unbounded
 * reads) and 9 (leaks in messages), on every file lorajit reads: config.json, the
 * schema, model.safetensors, the shard index, a shard, adapter_config.json,
 * adapter_model.safetensors and an artifact's manifest.json, model.ir and
 * liblorajit_model.so. Each is replaced in turn by a named pipe (no writer), a
 * directory and a text file that starts with a secret: the public call must fail
 * at once naming the file (and the kind), and no message may hold the secret.
 * Then the caps: 20 MB JSON files and safetensors headers are refused by name, and
 * peak memory (of a forked child, printed) stays bounded. alarm() turns a hang
 * into a failure. Scratch folder: argv[1]/tmp_hostile_files. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _DEFAULT_SOURCE   /* wait4 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "rt_formats_fixture.h"

#define SECRET "SECRET-7c1e-do-not-print"
#define TINY_ADAPTER "conformance/adapters/llama-tiny/a_qv"
#define SLOW_S 5.0 /* a refusal must come well before this */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK 4 /* ASan: shadow memory, and freed blocks stay resident in its quarantine */
#else
#define RSS_SLACK 1
#endif

enum kind { AS_FIFO, AS_DIR, AS_SECRET, N_KINDS };
static const char *const kind_word[N_KINDS] = {"named pipe", "directory", NULL};


/* dir/name for every name of a NULL-terminated list, copied from src (a folder). */
static void copy_dir(const char *src, const char *dst, const char *const *names) {
    char a[4096], b[4096];
    mkdir(dst, 0755);
    for (int i = 0; names[i]; i++) {
        snprintf(a, sizeof a, "%s/%s", src, names[i]);
        snprintf(b, sizeof b, "%s/%s", dst, names[i]);
        check_copy_file(a, b);
    }
}

/* Puts a hostile thing of kind k at path (replacing the file there). */
static void make_hostile(const char *path, enum kind k) {
    remove(path);
    int rc = 0;
    if (k == AS_FIFO) rc = mkfifo(path, 0600);
    if (k == AS_DIR) rc = mkdir(path, 0755);
    if (k == AS_SECRET) {
        char text[4096];
        snprintf(text, sizeof text, "%s: the first bytes of a private file\n{\"%s\": \"%s\"}\n", SECRET,
                 SECRET, SECRET);
        write_text(path, text);
    }
    if (rc != 0) {
        fprintf(stderr, "cannot make %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

/* A failed call: its message names the file and the kind, holds no secret, came fast. */
static void check_refusal(int line, const char *what, lorajit_status st, const char *msg, const char *file,
                          enum kind k, double t0) {
    double dt = check_wall_s() - t0;
    CHECK(st != LORAJIT_OK, "line %d: %s as %s was accepted", line, what, k == AS_SECRET ? "text" : kind_word[k]);
    CHECK(strstr(msg, file), "line %d: %s: message does not name %s: %s", line, what, file, msg);
    CHECK(!kind_word[k] || strstr(msg, kind_word[k]), "line %d: %s: message lacks \"%s\": %s", line, what,
          kind_word[k], msg);
    CHECK(!strstr(msg, "SECRET"), "line %d: %s: the message echoes the file: %s", line, what, msg);
    CHECK(dt < SLOW_S, "line %d: %s took %.1f s", line, what, dt);
}

/* ---- the model folder: config.json, model.safetensors (or an index and a shard), the schema ---- */

static const char *const model_files[] = {"config.json", "model.safetensors", NULL};

/* A sharded copy of the tiny model: model.safetensors.index.json + shard-1.safetensors. */
static void make_sharded(const char *dir) {
    char p[4096], idx[1 << 16];
    st_file *f;
    lj_err err;
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    check_copy_file(TINY "/config.json", p);
    snprintf(p, sizeof p, "%s/shard-1.safetensors", dir);
    check_copy_file(TINY "/model.safetensors", p);
    if (st_open(TINY "/model.safetensors", &f, &err) != LORAJIT_OK) exit(2);
    size_t at = (size_t)snprintf(idx, sizeof idx, "{\"weight_map\":{");
    for (int i = 0; i < f->n_tensors; i++)
        at += (size_t)snprintf(idx + at, sizeof idx - at, "%s\"%s\":\"shard-1.safetensors\"", i ? "," : "",
                               f->tensors[i].name);
    snprintf(idx + at, sizeof idx - at, "}}");
    st_close(f);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, idx);
}

static void test_model_files(void) {
    static const struct {
        const char *file;
        bool sharded, schema;
    } cases[] = {
        {"config.json", false, false},
        {"model.safetensors", false, false},
        {"schema.json", false, true},
        {"model.safetensors.index.json", true, false},
        {"shard-1.safetensors", true, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int k = 0; k < N_KINDS; k++) {
            char dir[2048], path[4096], what[256];
            snprintf(what, sizeof what, "model_%zu_%d", c, k);
            tpath(dir, what);
            if (cases[c].sharded) make_sharded(dir);
            else copy_dir(TINY, dir, model_files);
            snprintf(path, sizeof path, "%s/%s", dir, cases[c].file);
            make_hostile(path, (enum kind)k);
            lorajit_options o = {.schema_path = cases[c].schema ? path : NULL};
            lorajit_engine *e = NULL;
            double t0 = check_wall_s();
            lorajit_status st = lorajit_engine_open(&e, dir, &o);
            check_refusal(__LINE__, cases[c].file, st, lorajit_errmsg(e), cases[c].file, (enum kind)k, t0);
            lorajit_engine_free(e);
        }
}

/* ---- adapter folders, through lorajit_load_adapter and lorajit_hotswap_adapter ---- */

static const char *const adapter_files[] = {"adapter_config.json", "adapter_model.safetensors", NULL};

static void test_adapter_files(lorajit_engine *e) {
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < N_KINDS; k++) {
            char dir[2048], path[4096], what[256];
            snprintf(what, sizeof what, "adapter_%d_%d", f, k);
            copy_dir(TINY_ADAPTER, tpath(dir, what), adapter_files);
            snprintf(path, sizeof path, "%s/%s", dir, adapter_files[f]);
            make_hostile(path, (enum kind)k);
            double t0 = check_wall_s();
            lorajit_status st = lorajit_load_adapter(e, "hostile", dir);
            check_refusal(__LINE__, "load", st, lorajit_errmsg(e), adapter_files[f], (enum kind)k, t0);
            t0 = check_wall_s();
            st = lorajit_hotswap_adapter(e, "qv", dir);
            check_refusal(__LINE__, "hotswap", st, lorajit_errmsg(e), adapter_files[f], (enum kind)k, t0);
        }
    lorajit_stats s;
    CHECK(lorajit_get_stats(e, &s) == LORAJIT_OK && s.adapters == 1, "the registry changed");
}

/* ---- an artifact's files, through lorajit_engine_open_artifact ---- */

static void test_artifact_files(void) {
    static const char *const art_files[] = {LJ_ARTIFACT_MANIFEST, LJ_ARTIFACT_IR, LJ_ARTIFACT_LIBRARY, NULL};
    char art[2048], msg[1024];
    tpath(art, "artifact");
    lorajit_status st = lorajit_compile_artifact(TINY, NULL, NULL, art, msg, sizeof msg);
    CHECK(st == LORAJIT_OK, "compile_artifact: %s", msg);
    if (st) return;
    for (int f = 0; art_files[f]; f++)
        for (int k = 0; k < N_KINDS; k++) {
            char dir[2048], path[4096], what[256];
            snprintf(what, sizeof what, "artifact_%d_%d", f, k);
            copy_dir(art, tpath(dir, what), art_files);
            snprintf(path, sizeof path, "%s/%s", dir, art_files[f]);
            make_hostile(path, (enum kind)k);
            lorajit_engine *e = NULL;
            double t0 = check_wall_s();
            st = lorajit_engine_open_artifact(&e, dir, TINY, NULL);
            check_refusal(__LINE__, art_files[f], st, lorajit_errmsg(e), art_files[f], (enum kind)k, t0);
            lorajit_engine_free(e);
        }
}

/* ---- caps: size and memory ---- */

/* Runs fn in a forked child; returns the child's peak RSS in MiB (-1 when fn failed
 * its own checks or the child died). */
static double child_peak_mib(int (*fn)(const char *), const char *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg));
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return (double)ru.ru_maxrss / 1024.0;
}

static lj_err child_err;

static int noop_child(const char *unused) {
    (void)unused;
    return 0;
}

/* The children: 0 when the refusal was the expected one (checked in the parent
 * again, from the same call). */
static int read_json_child(const char *path) {
    struct cJSON *root;
    lorajit_status st = lj_json_read(path, LJ_JSON_MAX_BYTES, &root, &child_err);
    return st == LORAJIT_E_UNSUPPORTED ? 0 : 1;
}

static int st_open_child(const char *path) {
    st_file *f;
    lorajit_status st = st_open(path, &f, &child_err);
    st_close(f);
    return st != LORAJIT_OK ? 0 : 1;
}

static int st_open_ok_child(const char *path) {
    st_file *f;
    lorajit_status st = st_open(path, &f, &child_err);
    st_close(f);
    return st == LORAJIT_OK ? 0 : 1;
}

/* A safetensors file whose header has n empty F32 tensors (shape [0]: 0 bytes each,
 * no data) named t0000000.., padded with spaces to pad bytes when pad > 0. */
static void write_many_tensors(const char *path, long n, size_t pad) {
    size_t cap = (size_t)n * 64 + pad + 64, at = 8;
    char *buf = malloc(cap);
    at += (size_t)snprintf(buf + at, cap - at, "{");
    for (long i = 0; i < n; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s\"t%07ld\":{\"dtype\":\"F32\",\"shape\":[0],"
                               "\"data_offsets\":[0,0]}", i ? "," : "", i);
    at += (size_t)snprintf(buf + at, cap - at, "}");
    while (at - 8 < pad) buf[at++] = ' ';
    uint64_t hl = at - 8;
    for (int i = 0; i < 8; i++) buf[i] = (char)(hl >> (8 * i));
    write_bytes(path, buf, at);
    free(buf);
}

/* Peak memory of the refusals (and of the largest header still read), each in a
 * forked child, minus a child that does nothing; run before any engine exists. */
static void test_memory(void) {
    char p[2048];
    size_t big = (size_t)20 << 20;
    double base = child_peak_mib(noop_child, NULL), mib;
    printf("peak RSS of a child that does nothing: %.1f MiB\n", base);
    tpath(p, "big_config.json");
    char *text = malloc(big); /* {"peft_type": "LORA", "target_modules": [0,0,...,0]}: 10M values */
    size_t at = (size_t)sprintf(text, "{\"peft_type\": \"LORA\", \"target_modules\": [0");
    while (at < big - 4) at += (size_t)sprintf(text + at, ",0");
    memcpy(text + at, "]}", 2);
    write_bytes(p, text, at + 2);
    free(text);
    mib = child_peak_mib(read_json_child, p) - base;
    printf("peak RSS, reading a 20 MB adapter_config.json: +%.1f MiB\n", mib);
    CHECK(mib > -base && mib < RSS_SLACK * 32, "20 MB adapter_config.json: child peak +%.1f MiB", mib);
    tpath(p, "big_header.safetensors");
    write_many_tensors(p, 1000, big);
    mib = child_peak_mib(st_open_child, p) - base;
    printf("peak RSS, a 20 MB safetensors header: +%.1f MiB\n", mib);
    CHECK(mib > -base && mib < RSS_SLACK * 32, "20 MB header: child peak +%.1f MiB", mib);
    tpath(p, "many.safetensors");
    write_many_tensors(p, 250000, 0);
    mib = child_peak_mib(st_open_child, p) - base;
    printf("peak RSS, a 15 MB header of 250000 tensors: +%.1f MiB\n", mib);
    CHECK(mib > -base && mib < RSS_SLACK * 48, "many tensors: child peak +%.1f MiB", mib);
    tpath(p, "most.safetensors");
    write_many_tensors(p, 120000, 0);
    mib = child_peak_mib(st_open_ok_child, p) - base;
    printf("peak RSS, the largest header still read (120000 tensors, 7 MB): +%.1f MiB\n", mib);
    CHECK(mib > -base && mib < RSS_SLACK * 256, "120000 tensors: child peak +%.1f MiB", mib);
}

/* The same refusals through the public API, named in the message. */
static void test_caps(lorajit_engine *e) {
    char p[4096], dir[2048];
    size_t big = (size_t)20 << 20;
    lj_err err;
    st_file *f;
    copy_dir(TINY_ADAPTER, tpath(dir, "big_config"), adapter_files);
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    check_copy_file(tpath(p + 1024, "big_config.json"), p);
    CHECK(lorajit_load_adapter(e, "big", dir) == LORAJIT_E_UNSUPPORTED &&
          strstr(lorajit_errmsg(e), "adapter_config.json") && strstr(lorajit_errmsg(e), "over the limit of 1048576"),
          "20 MB adapter_config.json: %s", lorajit_errmsg(e));
    expect_err(__LINE__, st_open(tpath(p, "big_header.safetensors"), &f, &err), &err, LORAJIT_E_FORMAT,
               "big_header.safetensors", "16 MiB");
    copy_dir(TINY_ADAPTER, tpath(dir, "big_header"), adapter_files);
    char st_path[4096];
    snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
    check_copy_file(p, st_path);
    CHECK(lorajit_load_adapter(e, "bigh", dir) == LORAJIT_E_FORMAT && strstr(lorajit_errmsg(e), "16 MiB") &&
          strstr(lorajit_errmsg(e), "adapter_model.safetensors"), "20 MB header: %s", lorajit_errmsg(e));
    expect_err(__LINE__, st_open(tpath(p, "many.safetensors"), &f, &err), &err, LORAJIT_E_UNSUPPORTED,
               "many.safetensors", "values");
    tpath(p, "too_many.safetensors");
    write_many_tensors(p, 131073, 0);
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "too_many.safetensors", "131072");

    /* a shard index over 16 MiB and a schema over 1 MiB */
    make_sharded(tpath(dir, "big_index"));
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    char *text = malloc(big);
    memset(text, ' ', big);
    memcpy(text, "{}", 2);
    write_bytes(p, text, big);
    lorajit_engine *x = NULL;
    CHECK(lorajit_engine_open(&x, dir, NULL) == LORAJIT_E_UNSUPPORTED && strstr(lorajit_errmsg(x), "index.json") &&
          strstr(lorajit_errmsg(x), "over the limit"), "20 MB index: %s", lorajit_errmsg(x));
    lorajit_engine_free(x);
    tpath(p, "big_schema.json");
    write_bytes(p, text, (size_t)2 << 20);
    free(text);
    x = NULL;
    CHECK(lorajit_engine_open(&x, TINY, &(lorajit_options){.schema_path = p}) == LORAJIT_E_UNSUPPORTED &&
          strstr(lorajit_errmsg(x), "big_schema.json") && strstr(lorajit_errmsg(x), "over the limit"),
          "2 MB schema: %s", lorajit_errmsg(x));
    lorajit_engine_free(x);
}

/* ---- leaks: names from files are bounded and printable; file bytes never echoed ---- */

static void test_leaks(void) {
    char p[2048];
    lj_err err;
    st_file *f;
    /* the first 8 bytes of a text file read as a header length: never printed */
    write_text(tpath(p, "secret.safetensors"), SECRET "\n");
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "secret.safetensors", "header length");
    uint64_t n8 = 0;
    for (int i = 7; i >= 0; i--) n8 = (n8 << 8) | (unsigned char)SECRET[i];
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)n8);
    CHECK(!strstr(err.msg, "SECRET") && !strstr(err.msg, num), "echoed: %s", err.msg);
    unsigned char past[16] = {'S', 'E', 'C', 0, 0, 0, 0, 0, 'x'}; /* a length under the cap, past the end */
    write_bytes(tpath(p, "past.safetensors"), past, sizeof past);
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "past.safetensors", "runs past");
    CHECK(!strstr(err.msg, "4408659"), "the header length is echoed: %s", err.msg); /* "SEC" little-endian */
    /* a JSON file that is not JSON: an offset, never the text */
    write_text(tpath(p, "secret.json"), SECRET);
    struct cJSON *root;
    expect_err(__LINE__, lj_json_read(p, LJ_JSON_MAX_BYTES, &root, &err), &err, LORAJIT_E_FORMAT, "secret.json",
               "byte 0");
    CHECK(!strstr(err.msg, "SECRET"), "echoed: %s", err.msg);
    /* a tensor name with a terminal escape, a long one, a long unknown dtype */
    static const char *const headers[] = {
        "{\"a\\u001b[2J\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}",
        "{\"w\":{\"dtype\":\"" SECRET SECRET "\",\"shape\":[],\"data_offsets\":[0,0]}}",
    };
    for (int i = 0; i < 2; i++) {
        size_t hl = strlen(headers[i]);
        unsigned char buf[512] = {(unsigned char)hl};
        memcpy(buf + 8, headers[i], hl);
        CHECK(st_open_buffer(buf, 8 + hl, "h.safetensors", &f, &err) == LORAJIT_E_FORMAT, "header %d accepted", i);
        CHECK(!strchr(err.msg, '\x1b') && strlen(err.msg) < 200, "header %d: %s", i, err.msg);
    }
    CHECK(strstr(err.msg, "\"SECRET-7c1e-do-n...\"") && !strstr(err.msg, SECRET SECRET), "dtype not cut: %s",
          err.msg);
    char name[600];
    memset(name, 'n', sizeof name);
    char hdr[800];
    int hl = snprintf(hdr + 8, sizeof hdr - 8, "{\"%.*s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}",
                      (int)sizeof name, name);
    memset(hdr, 0, 8);
    hdr[0] = (char)(hl & 0xff);
    hdr[1] = (char)(hl >> 8);
    expect_err(__LINE__, st_open_buffer(hdr, 8 + (size_t)hl, "long.safetensors", &f, &err), &err, LORAJIT_E_FORMAT,
               "long.safetensors", "over the limit of 512");
    /* any message: one printable line */
    lj_fail(&err, LORAJIT_E_FORMAT, "x.json: field \"%s\"", "a\x1b[31mb\nc");
    CHECK(!strcmp(err.msg, "x.json: field \"a?[31mb c\""), "not sanitised: %s", err.msg);
}

int main(int argc, char **argv) {
    check_enter_tests_dir();
    alarm(120); /* a hang (a blocking open) fails the test instead of stalling the suite */
    if (fixture_tmp_setup(argc, argv, "hostile_files")) return 2;
    test_memory();
    test_leaks();
    test_model_files();
    test_artifact_files();
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, TINY, NULL);
    CHECK(st == LORAJIT_OK, "open: %s", lorajit_errmsg(e));
    if (st == LORAJIT_OK) {
        CHECK(lorajit_load_adapter(e, "qv", TINY_ADAPTER) == LORAJIT_OK, "load: %s", lorajit_errmsg(e));
        test_adapter_files(e);
        test_caps(e);
    }
    lorajit_engine_free(e);
    printf("hostile files: %d malformed inputs refused\n", n_malformed);
    return check_summary("hostile_files");
}
