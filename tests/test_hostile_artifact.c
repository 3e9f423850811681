/* test_hostile_artifact.c — issue 11's classes 4, 5 and 8 on ahead-of-time artifacts.
 *  4 writes through links: symbolic links named model.h, model.o, liblorajit_model.so,
 *    manifest.json and model.ir already in the folder, pointing outside, are replaced
 *    (rename), their targets untouched; a folder that is itself a link is refused; a
 *    folder in the way of a file is refused, naming it, and leaves no manifest;
 *    `lorajit_gen model DIR` replaces links in DIR the same way.
 *  5 arguments that look like options: folders named "-x" and "-shared" (C API and
 *    `lorajit compile -o -x`) are folders of those names holding working artifacts;
 *    a library without lj_forward is refused by the export check (nothing loaded).
 *  8 artifacts are code: a re-sealed manifest with smaller scratch sizes, another
 *    weight shape or another site size is refused naming the field; the digests are
 *    SHA-256 (compared with sha256sum); a foreign library with the manifest's digests
 *    recomputed is refused before dlopen when its exports disagree (its constructor
 *    never runs), and when it copies every constant it IS loaded and its constructor
 *    runs: the documented limit (README: serve only trusted artifacts).
 * Files go under argv[1] (the build dir)/hostile-artifact; run from tests/. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"
#include "serving.h"
#include "manifest_forge.h"

#define TINY "conformance/models/llama-tiny"
static const lorajit_options opts = {.max_rank = 8, .max_adapters = 2, .max_batch = 2, .max_seq_len = 64};
static const char *const files[] = {"model.h", "model.o", "liblorajit_model.so", "manifest.json", "model.ir"};
enum { N_FILES = 5 };
static char root[PATH_MAX + 32], tiny[PATH_MAX];

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static lorajit_status compile(const char *dir, char *msg, size_t cap) {
    return lorajit_compile_artifact(tiny, &opts, "native", dir, msg, cap);
}

/* Opens dir as an artifact of the tiny model; returns the status, msg its message. */
static lorajit_status open_artifact(const char *dir, char *msg, size_t cap) {
    lorajit_engine *e = NULL;
    lorajit_status s = lorajit_engine_open_artifact(&e, dir, tiny, NULL);
    snprintf(msg, cap, "%s", e ? lorajit_errmsg(e) : "");
    lorajit_engine_free(e);
    return s;
}

static bool is_regular(const char *dir, const char *name) {
    char p[2 * PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- 4: writes through links ---- */
static void test_links(void) {
    char dir[4200], outside[4200], p[4400], q[4400], msg[1024];
    snprintf(dir, sizeof dir, "%s/links", root);
    snprintf(outside, sizeof outside, "%s/outside", root);
    mkdir(dir, 0777);
    mkdir(outside, 0777);
    for (int i = 0; i < N_FILES; i++) {
        snprintf(p, sizeof p, "%s/%s", outside, files[i]);
        CHECK(check_write_file(p, "precious\n", 9) == 0, "write %s", p);
        snprintf(q, sizeof q, "%s/%s", dir, files[i]);
        unlink(q);
        CHECK(symlink(p, q) == 0, "symlink %s", q);
    }
    lorajit_status s = compile(dir, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "compile over links: %s", msg);
    for (int i = 0; i < N_FILES; i++) {
        snprintf(p, sizeof p, "%s/%s", outside, files[i]);
        long n;
        char *data = check_read_file(p, &n);
        CHECK(data && n == 9 && !memcmp(data, "precious\n", 9), "%s was written through the link", p);
        free(data);
        CHECK(is_regular(dir, files[i]), "%s/%s is not a regular file (the link should be replaced)", dir, files[i]);
    }
    CHECK(open_artifact(dir, msg, sizeof msg) == LORAJIT_OK, "open: %s", msg);

    /* the folder itself a link: refused, nothing written where it points */
    char link_dir[4200];
    snprintf(link_dir, sizeof link_dir, "%s/dir-link", root);
    unlink(link_dir);
    CHECK(symlink(outside, link_dir) == 0, "symlink dir");
    s = compile(link_dir, msg, sizeof msg);
    CHECK(s == LORAJIT_E_IO && strstr(msg, link_dir) && strstr(msg, "symbolic link"), "dir link: %d %s", s, msg);
    printf("  refused (folder link): %s\n", msg);
    snprintf(p, sizeof p, "%s/model.h", outside);
    long n;
    char *data = check_read_file(p, &n);
    CHECK(data && n == 9, "the folder link's target was written");
    free(data);

    /* a folder in the way of model.h: refused naming it; no manifest left behind */
    char blocked[4200];
    snprintf(blocked, sizeof blocked, "%s/blocked", root);
    mkdir(blocked, 0777);
    snprintf(p, sizeof p, "%s/model.h", blocked);
    mkdir(p, 0777);
    s = compile(blocked, msg, sizeof msg);
    CHECK(s == LORAJIT_E_IO && strstr(msg, "model.h") && strstr(msg, "folder is in the way"), "blocked: %d %s", s, msg);
    CHECK(!is_regular(blocked, "manifest.json"), "a manifest was left in a failed folder");
    printf("  refused (folder in the way): %s\n", msg);
}

/* lorajit_gen model DIR (the other folder writer) with links in DIR: replaced too */
static void test_gen_links(const char *build) {
    char dir[PATH_MAX + 64], secret[PATH_MAX + 64], p[2 * PATH_MAX], cmd[4 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/gen", root);
    snprintf(secret, sizeof secret, "%s/gen-secret", root);
    mkdir(dir, 0777);
    CHECK(check_write_file(secret, "precious\n", 9) == 0, "write %s", secret);
    const char *names[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        CHECK(symlink(secret, p) == 0, "symlink %s", p);
    }
    snprintf(cmd, sizeof cmd, "'%s/lorajit_gen' model '%s' >/dev/null", build, dir);
    CHECK(run(cmd) == 0, "%s", cmd);
    long n;
    char *data = check_read_file(secret, &n);
    CHECK(data && n == 9 && !memcmp(data, "precious\n", 9), "lorajit_gen wrote through a link");
    free(data);
    CHECK(is_regular(dir, "config.json") && is_regular(dir, "model.safetensors"), "lorajit_gen kept a link");
}

/* ---- 5: arguments that look like options ---- */
static void test_option_names(const char *build) {
    char cwd[4096], msg[1024], cmd[16384];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    CHECK(chdir(root) == 0, "chdir %s", root);
    const char *names[] = {"-x", "-shared", "--help"};
    for (int i = 0; i < 3; i++) {
        lorajit_status s = compile(names[i], msg, sizeof msg);
        CHECK(s == LORAJIT_OK, "compile -o %s: %s", names[i], msg);
        CHECK(is_regular(names[i], "liblorajit_model.so"), "no library in folder %s", names[i]);
        CHECK(open_artifact(names[i], msg, sizeof msg) == LORAJIT_OK, "open %s: %s", names[i], msg);
    }
    /* the CLI: `lorajit compile -o -y` */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/lorajit' compile --model '%s' --max-rank 8 -o -y >/dev/null", root,
             build, tiny);
    CHECK(run(cmd) == 0, "%s", cmd);
    CHECK(is_regular("-y", "liblorajit_model.so") && is_regular("-y", "manifest.json"), "cli: no artifact in -y");
    CHECK(chdir(cwd) == 0, "chdir back");

    /* a library without lj_forward: the export check refuses it, naming the symbol */
    char so[4200];
    snprintf(so, sizeof so, "%s/nofwd.so", root);
    snprintf(cmd, sizeof cmd, "printf 'int lj_decode(void){return 0;}\\n' | cc -shared -fPIC -x c -o '%s' -", so);
    CHECK(run(cmd) == 0, "%s", cmd);
    long n;
    char *data = check_read_file(so, &n);
    lj_elf_sym want[] = {{LJ_DECODE_SYMBOL, 0, NULL}, {LJ_FORWARD_SYMBOL, 0, NULL}};
    lj_err err = {0};
    CHECK(data && lj_elf_symbols(data, (size_t)n, so, want, 2, &err) == LORAJIT_E_FORMAT &&
              strstr(err.msg, "\"lj_forward\"") && strstr(err.msg, so), "export check: %s", err.msg);
    printf("  refused (no lj_forward): %s\n", err.msg);
    /* truncated or garbage bytes: refused, never read out of bounds */
    for (long cut = 0; data && cut < n; cut += n / 37 + 1)
        CHECK(lj_elf_symbols(data, (size_t)cut, so, want, 2, &err) != LORAJIT_OK, "a file cut at %ld accepted", cut);
    free(data);
}

/* ---- 8: artifacts are code ---- */

/* copies artifact src to root/name; returns its path in out */
static void copy_artifact(const char *src, const char *name, char *out, size_t cap) {
    char cmd[9000];
    snprintf(out, cap, "%s/%s", root, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", out, src, out);
    CHECK(run(cmd) == 0, "%s", cmd);
}

static void halve_scratch(cJSON *j, const char *field) {
    cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scratch_floats"), field);
    cJSON_SetNumberValue(o, o->valuedouble / 2);
}
static void shrink_weight(cJSON *j, const char *unused) {
    cJSON *w = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "weights"), 1); /* layer 0's input_layernorm */
    cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(w, "shape"), 0);
    cJSON_SetNumberValue(d, d->valuedouble - 1);
}
static void set_library_sha(cJSON *j, const char *hex) {
    cJSON_ReplaceItemInObject(j, "library_sha256", cJSON_CreateString(hex));
}

/* A foreign library in dir: lj_forward, lj_decode and a constructor that writes
 * marker; with every_constant, also the constants copied from the manifest. Then
 * the manifest's library_sha256 is recomputed for it and the manifest re-sealed. */
static void plant_foreign(const char *dir, const char *marker, bool every_constant) {
    char src[4200], so[4200], cmd[13000], extra[2048] = "";
    if (every_constant) {
        lj_manifest m;
        lj_err err = {0};
        uint8_t d[LJ_SHA256_BYTES];
        CHECK(lj_manifest_read(dir, &m, &err) == LORAJIT_OK && lj_layout_digest(m.L, d, &err) == LORAJIT_OK, "%s",
              err.msg);
        size_t at = (size_t)snprintf(extra, sizeof extra,
                                     "const int lj_abi_version = %d; const unsigned long lj_code_hash = %lluUL;"
                                     "const long lj_scratch_per_token = %lld, lj_scratch_fixed = %lld;"
                                     "const unsigned char lj_layout_sha256[32] = {",
                                     LJ_ABI_VERSION, (unsigned long long)m.code_hash,
                                     (long long)(m.L ? m.L->scratch_per_token : 0),
                                     (long long)(m.L ? m.L->scratch_fixed : 0));
        for (int i = 0; i < LJ_SHA256_BYTES; i++) at += (size_t)snprintf(extra + at, sizeof extra - at, "%d,", d[i]);
        snprintf(extra + at, sizeof extra - at, "};");
        lj_manifest_clear(&m);
    }
    snprintf(src, sizeof src, "%s/foreign.c", root);
    snprintf(so, sizeof so, "%s/liblorajit_model.so", dir);
    char code[4096];
    int n = snprintf(code, sizeof code,
                     "#include <stdio.h>\n__attribute__((constructor)) static void ran(void) {"
                     " FILE *f = fopen(\"%s\", \"w\"); if (f) fclose(f); }\n"
                     "int lj_forward(void) { return 0; }\nint lj_decode(void) { return 0; }\n%s\n", marker, extra);
    CHECK(check_write_file(src, code, n) == 0, "write %s", src);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -o '%s' '%s'", so, src);
    CHECK(run(cmd) == 0, "%s", cmd);
    long len;
    char *data = check_read_file(so, &len), hex[LJ_SHA256_HEX];
    CHECK(data && lj_sha256_hex(data, (size_t)len, hex), "hash %s", so);
    free(data);
    forge(dir, set_library_sha, hex);
}

static void test_code(const char *art) {
    char dir[4200], msg[1024], path[4300], cmd[4400], line[200] = "";
    /* the library digest is SHA-256 (the same as sha256sum's) */
    lj_manifest m;
    lj_err err = {0};
    CHECK(lj_manifest_read(art, &m, &err) == LORAJIT_OK, "%s", err.msg);
    snprintf(cmd, sizeof cmd, "sha256sum '%s/liblorajit_model.so'", art);
    FILE *p = popen(cmd, "r");
    CHECK(p && fgets(line, sizeof line, p), "%s", cmd);
    if (p) pclose(p);
    CHECK(strlen(m.library_sha256) == 64 && !strncmp(line, m.library_sha256, 64), "library_sha256 %s vs %s",
          m.library_sha256, line);
    lj_manifest_clear(&m);

    const char *fields[] = {"per_token", "fixed"};
    for (int i = 0; i < 2; i++) {
        copy_artifact(art, fields[i], dir, sizeof dir);
        forge(dir, halve_scratch, fields[i]);
        char want[64];
        snprintf(want, sizeof want, "scratch_floats.%s", fields[i]);
        lorajit_status s = open_artifact(dir, msg, sizeof msg);
        CHECK(s == LORAJIT_E_FORMAT && strstr(msg, want) && strstr(msg, "manifest.json"), "smaller %s: %d %s", want,
              s, msg);
        printf("  refused (smaller %s): %s\n", want, msg);
    }
    copy_artifact(art, "shape", dir, sizeof dir);
    forge(dir, shrink_weight, NULL);
    lorajit_status s = open_artifact(dir, msg, sizeof msg);
    CHECK(s == LORAJIT_E_FORMAT && strstr(msg, "weights[1].shape[0]") && strstr(msg, "manifest.json"), "shape: %d %s",
          s, msg);
    printf("  refused (another weight shape): %s\n", msg);

    /* a foreign library lacking the constants: refused before dlopen (no constructor ran) */
    snprintf(path, sizeof path, "%s/constructor-ran", root);
    unlink(path);
    copy_artifact(art, "foreign", dir, sizeof dir);
    plant_foreign(dir, path, false);
    s = open_artifact(dir, msg, sizeof msg);
    CHECK(s == LORAJIT_E_FORMAT && strstr(msg, "liblorajit_model.so") && strstr(msg, LJ_ABI_SYMBOL), "foreign: %d %s",
          s, msg);
    CHECK(access(path, F_OK) != 0, "the foreign library's constructor ran before it was refused");
    printf("  refused before dlopen (foreign library): %s\n", msg);
    /* one that copies every constant: loaded, and its constructor runs (trusted artifacts only) */
    copy_artifact(art, "foreign-all", dir, sizeof dir);
    plant_foreign(dir, path, true);
    s = open_artifact(dir, msg, sizeof msg);
    CHECK(s == LORAJIT_OK, "a foreign library copying every constant: %d %s", s, msg);
    CHECK(access(path, F_OK) == 0, "its constructor did not run");
    printf("  documented limit: a foreign library that copies every constant is loaded; its constructor ran\n");
}

int main(int argc, char **argv) {
    check_enter_tests_dir();
    const char *build = argc > 1 ? argv[1] : "../build";
    char b[PATH_MAX], cmd[8300];
    CHECK(realpath(build, b) != NULL, "build dir %s", build);
    CHECK(realpath(TINY, tiny) != NULL, "%s", TINY);
    snprintf(root, sizeof root, "%s/hostile-artifact", b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", root, root);
    CHECK(run(cmd) == 0, "%s", cmd);
    test_links();
    test_gen_links(b);
    test_option_names(b);
    char art[4200], msg[1024];
    snprintf(art, sizeof art, "%s/good", root);
    CHECK(compile(art, msg, sizeof msg) == LORAJIT_OK, "compile: %s", msg);
    test_code(art);
    return check_summary("hostile_artifact");
}
