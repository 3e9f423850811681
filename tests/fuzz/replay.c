/* replay.c — main() for a parser harness built without libFuzzer.
 *
 * Usage: fuzz_NAME FILE|DIR...  Runs LLVMFuzzerTestOneInput once on each file
 * (a directory: each regular file in it, in name order) and prints how many ran.
 * ctest runs every harness over its seed corpus (tests/fuzz/corpus/NAME) and its
 * regressions (tests/fuzz/regressions/NAME), so CI replays every input that ever
 * crashed a parser, under ASan + UBSan in the sanitizer pass. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Runs the harness on the whole of path; -1 when it cannot be read. */
static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (!bigger) { free(buf); buf = NULL; }
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf) return -1;
    /* An exact-size copy, so that ASan sees any read past the input's end. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) { free(buf); return -1; }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int ran = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) { fprintf(stderr, "replay: cannot stat %s\n", argv[i]); bad++; continue; }
        if (!S_ISDIR(sb.st_mode)) { bad += run_file(argv[i]) != 0; ran++; continue; }
        DIR *d = opendir(argv[i]);
        char **names = NULL;
        int n = 0;
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char **more = realloc(names, sizeof *names * (n + 1));
            if (!more) break;
            names = more;
            names[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2);
            if (!names[n]) break;
            sprintf(names[n++], "%s/%s", argv[i], e->d_name);
        }
        if (d) closedir(d);
        if (n > 0) qsort(names, n, sizeof *names, cmp_str);
        for (int k = 0; k < n; k++) {
            if (stat(names[k], &sb) == 0 && S_ISREG(sb.st_mode)) {
                bad += run_file(names[k]) != 0;
                ran++;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("%s: replayed %d inputs, %d unreadable\n", argv[0], ran, bad);
    return bad || ran == 0 ? 1 : 0;
}
