/* cli_file.c — opening the files the `lorajit` and `lorajit_gen` commands read and
 * write themselves. Input: an argument's name and its path. Output: a stdio
 * stream on a regular file, or a message naming the argument, the path and what
 * is there instead (a directory, a FIFO, a device). Reads open with O_NONBLOCK so
 * a FIFO is refused instead of waited on; writes check the type before truncating.
 * Uses only libc. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_file.h"

/* What a non-regular file is, in words. */
static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    return "not a plain file";
}

static void refuse(const char *what, const char *path, mode_t m, char *why, size_t whylen) {
    snprintf(why, whylen, "%s %s: is %s, not a regular file", what, path, kind_of(m));
}

/* fd as a blocking stdio stream after the regular-file check; closes fd on failure. */
static FILE *checked_stream(int fd, const char *what, const char *path, const char *mode, int truncate,
                            char *why, size_t whylen) {
    struct stat st;
    FILE *f = NULL;
    if (fstat(fd, &st) != 0) snprintf(why, whylen, "%s %s: cannot stat: %s", what, path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) refuse(what, path, st.st_mode, why, whylen);
    else if (truncate && ftruncate(fd, 0) != 0)
        snprintf(why, whylen, "%s %s: cannot truncate: %s", what, path, strerror(errno));
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, mode)))
        snprintf(why, whylen, "%s %s: cannot open: %s", what, path, strerror(errno));
    if (!f) close(fd);
    return f;
}

FILE *cli_open_read(const char *what, const char *path, int allow_stdin, char *why, size_t whylen) {
    if (allow_stdin && !strcmp(path, "-")) return stdin;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s %s: cannot open: %s", what, path, strerror(errno));
        return NULL;
    }
    return checked_stream(fd, what, path, "r", 0, why, whylen);
}

FILE *cli_open_write(const char *what, const char *path, char *why, size_t whylen) {
    /* no O_TRUNC: a FIFO or device in the way must not be touched before the check */
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
    if (fd < 0) {
        int err = errno;
        if (cli_check_path(what, path, 0, why, whylen) == 0) /* not the type: say why open failed */
            snprintf(why, whylen, "%s %s: cannot create: %s", what, path, strerror(err));
        return NULL;
    }
    return checked_stream(fd, what, path, "wb", 1, why, whylen);
}

int cli_check_path(const char *what, const char *path, int want_exists, char *why, size_t whylen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!want_exists && errno == ENOENT) return 0;
        snprintf(why, whylen, "%s %s: cannot open: %s", what, path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) return 0;
    refuse(what, path, st.st_mode, why, whylen);
    return -1;
}
