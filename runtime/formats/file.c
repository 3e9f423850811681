/* file.c — whole-file reads, new files and path joins of runtime/formats/.
 *
 * Inputs: paths from the user's model and adapter folders. Outputs:
 * NUL-terminated file contents (optionally capped in size) and joined paths;
 * every failure names the path, with strerror for I/O. Only regular files are
 * read: a named pipe, directory, device or socket is refused by name, never
 * waited on. A file is written as a new temporary file in its folder (O_EXCL) and
 * renamed over its name, so it never writes through a link. JSON is json.c's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp */
#endif
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats.h"

/* What st is, for "not a regular file (...)"; NULL for a regular file. */
static const char *kind_of(const struct stat *st) {
    if (S_ISREG(st->st_mode)) return NULL;
    if (S_ISDIR(st->st_mode)) return "a directory";
    if (S_ISFIFO(st->st_mode)) return "a named pipe";
    if (S_ISCHR(st->st_mode)) return "a character device";
    if (S_ISBLK(st->st_mode)) return "a block device";
    if (S_ISSOCK(st->st_mode)) return "a socket";
    return "not a file";
}

/* On success *fd is an open descriptor the caller closes. The kind is checked
 * twice: stat() before open() so that a device or socket is never opened at all,
 * and fstat() after it, on what was really opened (the path may have changed in
 * between). O_NONBLOCK: opening a named pipe that no one writes returns at once. */
lorajit_status lj_open_regular(const char *path, int *fd, size_t *size, lj_err *err) {
    *fd = -1;
    struct stat st;
    const char *kind;
    if (stat(path, &st) != 0) return lj_fail(err, LORAJIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if ((kind = kind_of(&st))) return lj_fail(err, LORAJIT_E_IO, "%s: not a regular file (%s)", path, kind);
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0) return lj_fail(err, LORAJIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    lorajit_status s = LORAJIT_OK;
    if (fstat(*fd, &st) != 0)
        s = lj_fail(err, LORAJIT_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if ((kind = kind_of(&st)))
        s = lj_fail(err, LORAJIT_E_IO, "%s: not a regular file (%s)", path, kind);
    else if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX)
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: file of %lld bytes is too large", path, (long long)st.st_size);
    if (s) {
        close(*fd);
        *fd = -1;
        return s;
    }
    *size = (size_t)st.st_size;
    return LORAJIT_OK;
}

/* Caller owns *data; free with free(). On failure *data is NULL and *len 0. */
lorajit_status lj_read_file(const char *path, char **data, size_t *len, lj_err *err) {
    return lj_read_file_max(path, SIZE_MAX - 1, data, len, err);
}

/* Caller owns *data; free with free(). On failure *data is NULL and *len 0. */
lorajit_status lj_read_fd(int fd, size_t size, const char *path, char **data, size_t *len, lj_err *err) {
    *data = NULL;
    *len = 0;
    char *buf = lj_malloc(size + 1);
    if (!buf) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory reading %zu bytes", path, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            return lj_fail(err, LORAJIT_E_IO, "%s: read failed at byte %zu of %zu: %s", path, got,
                           size, e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return LORAJIT_OK;
}

/* Caller owns *data; free with free(). On failure *data is NULL and *len 0. */
lorajit_status lj_read_file_max(const char *path, size_t max_bytes, char **data, size_t *len, lj_err *err) {
    *data = NULL;
    *len = 0;
    int fd;
    size_t size;
    lorajit_status s = lj_open_regular(path, &fd, &size, err);
    if (s) return s;
    if (size > max_bytes)
        s = lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: file of %zu bytes is over the limit of %zu bytes", path,
                    size, max_bytes);
    else
        s = lj_read_fd(fd, size, path, data, len, err);
    close(fd);
    return s;
}

lorajit_status lj_path_join(char *out, size_t cap, const char *dir, const char *name, lj_err *err) {
    size_t dl = strlen(dir);
    const char *sep = (dl > 0 && dir[dl - 1] != '/') ? "/" : "";
    size_t need = dl + strlen(sep) + strlen(name) + 1;
    if (need > cap)
        return lj_fail(err, LORAJIT_E_ARG, "path %s%s%s is %zu bytes, longer than %zu", dir, sep,
                       name, need - 1, cap ? cap - 1 : 0);
    memcpy(out, dir, dl);
    memcpy(out + dl, sep, strlen(sep));
    memcpy(out + dl + strlen(sep), name, strlen(name) + 1);
    return LORAJIT_OK;
}

lorajit_status lj_file_replace(const char *dir, const char *name, const void *data, size_t n, lj_err *err) {
    char path[4096], tmp[4096];
    lorajit_status s = lj_path_join(path, sizeof path, dir, name, err);
    if (s) return s;
    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= (int)sizeof tmp)
        return lj_fail(err, LORAJIT_E_ARG, "%s: path too long", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT | O_EXCL: a new file, never a link */
    if (fd < 0) return lj_fail(err, LORAJIT_E_IO, "%s: cannot create a temporary file next to it: %s", path,
                               strerror(errno));
    const char *p = data;
    int e = 0;
    while (n > 0 && !e) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) e = w < 0 ? errno : EIO;
        else p += w, n -= (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 && !e) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        unlink(tmp);
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return lj_file_rename(tmp, path, err);
}

lorajit_status lj_file_rename(const char *from, const char *to, lj_err *err) {
    if (rename(from, to) == 0) return LORAJIT_OK; /* replaces a file or link at `to`; follows neither */
    int e = errno;
    struct stat st;
    const char *what = lstat(to, &st) != 0 ? "" : S_ISDIR(st.st_mode) ? " (a folder is in the way)"
                                                : !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) ? " (a special file is in the way)" : "";
    unlink(from);
    return lj_fail(err, LORAJIT_E_IO, "%s: cannot replace%s: %s", to, what, strerror(e));
}
