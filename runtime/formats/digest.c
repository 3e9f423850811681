/* digest.c — the digests an artifact records, and how its files are created.
 *   lj_sha256 / lj_sha256_hex: SHA-256 (OpenSSL libcrypto, EVP_Digest) of bytes; the
 *     library, manifest and IR digests of manifest.json
 *   lj_fnv1a64: FNV-1a 64, kept only where no security claim is made (the code
 *     identity lj_code_hash, which tells two builds apart, not an author)
 *   lj_file_replace: a file written as a new temporary file (mkstemp: O_CREAT | O_EXCL)
 *     in its folder, then renamed over its name: it never writes through a link
 * The digests detect accidents and mismatches, not a malicious author: an artifact's
 * library is code that runs when it is loaded (README, "Ahead of time"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "formats.h"

uint64_t lj_fnv1a64(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

bool lj_sha256(const void *data, size_t n, uint8_t out[LJ_SHA256_BYTES]) {
    unsigned int len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == LJ_SHA256_BYTES;
}

bool lj_sha256_hex(const void *data, size_t n, char out[LJ_SHA256_HEX]) {
    uint8_t d[LJ_SHA256_BYTES];
    if (!lj_sha256(data, n, d)) return false;
    for (int i = 0; i < LJ_SHA256_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    return true;
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
