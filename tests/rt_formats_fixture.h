/* rt_formats_fixture.h — what test_rt_formats and test_rt_safetensors share: a
 * scratch folder (argv[1]/tmp_NAME, rebuilt each run), writers for files under it,
 * and expect_err, which counts malformed-input cases and checks that a failure has
 * the wanted status and a message naming the file / tensor / field.
 * Include after defining _XOPEN_SOURCE 700 (nftw). */
#ifndef LORAJIT_RT_FORMATS_FIXTURE_H
#define LORAJIT_RT_FORMATS_FIXTURE_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "formats.h"

#define TINY "conformance/models/llama-tiny"

static char tmp_root[1024];
static int n_malformed; /* malformed-input cases checked */

static const char *tpath(char *buf, const char *name) {
    snprintf(buf, 2048, "%s/%s", tmp_root, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno)); exit(2); }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static void expect_err(int line, lorajit_status got, const lj_err *err, lorajit_status want,
                       const char *n1, const char *n2) {
    n_malformed++;
    CHECK(got == want && err->status == want, "line %d: status %d (%s), want %d; msg: %s", line,
          got, lorajit_status_str(got), want, err->msg);
    CHECK(n1 == NULL || strstr(err->msg, n1), "line %d: message lacks \"%s\": %s", line, n1, err->msg);
    CHECK(n2 == NULL || strstr(err->msg, n2), "line %d: message lacks \"%s\": %s", line, n2, err->msg);
}

static int rm_entry(const char *p, const struct stat *s, int flag, struct FTW *ftw) { return remove(p); }

/* Makes tmp_root = argv[1]/tmp_NAME, empty. Returns 0, or 2 when it cannot. */
static int fixture_tmp_setup(int argc, char **argv, const char *name) {
    snprintf(tmp_root, sizeof tmp_root, "%s/tmp_%s", argc > 1 ? argv[1] : ".", name);
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(tmp_root, 0755) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", tmp_root, strerror(errno));
        return 2;
    }
    return 0;
}

#endif
