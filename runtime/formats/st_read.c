/* st_read.c — tensor data read with pread into f32 (or kept 16-bit), tested for NaN /
 * Inf on the way.
 *
 * Input: a safetensors file opened with st_open_pread (a mapping for the header and
 * an open descriptor) and a tensor's bytes, named by their pointer into the mapping.
 * Output: f32 values (or the file's own 16-bit values) in the caller's buffer, and
 * the index of the first NaN / Inf. The data pages of the mapping are never touched:
 * a first touch of a fresh mapping costs a fault per 4 KiB page (several times a copy
 * of it, measured on a VM), while pread copies from the page cache through the
 * kernel's own mapping. Values of the destination's dtype are read straight into it
 * and tested there while in cache; 16-bit values into f32 go through a staging buffer
 * (ST_STAGE_BYTES, within L2), converted and tested in one pass. One pread asks for at
 * most ST_STAGE_BYTES: on the project's VM reading a page-cached adapter in 64 KiB
 * pieces took 1.8-2.6x a memcpy of its bytes, in 1 MiB pieces 1.3-1.7x. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "formats.h"

/* pread of exactly len bytes at off into dst; E_IO naming the file when the read
 * fails or the file ends first (it was cut after it was opened). */
static lorajit_status pread_full(const st_file *f, void *dst, size_t len, uint64_t off, lj_err *err) {
    unsigned char *p = dst;
    while (len > 0) {
        ssize_t k = pread(f->fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return lj_fail(err, LORAJIT_E_IO, "%s: cannot read %zu bytes at file byte %llu: %s", f->path, len,
                           (unsigned long long)off, k < 0 ? strerror(errno) : "the file ended early (changed "
                           "while being read?)");
        p += k, len -= (size_t)k, off += (uint64_t)k;
    }
    return LORAJIT_OK;
}

lorajit_status st_read_finite(const st_file *f, const void *raw, st_dtype d, bool keep, size_t n, void *dst,
                              void *stage, size_t *bad, lj_err *err) {
    LJ_ASSERT(f && f->fd >= 0);
    size_t es = st_dtype_size(d); /* bytes of a value in the file (and in dst when it lands straight) */
    unsigned char *out = dst;
    uint64_t off = (uint64_t)((const unsigned char *)raw - (const unsigned char *)f->map);
    lorajit_status st = LORAJIT_OK;
    *bad = n;
    for (size_t i = 0; i < n && !st; i += ST_STAGE_BYTES / es) {
        size_t m = n - i < ST_STAGE_BYTES / es ? n - i : ST_STAGE_BYTES / es, k;
        if (keep || d == ST_F32) { /* dst's dtype: straight in, tested while in cache */
            st = pread_full(f, out + es * i, es * m, off + es * i, err);
            k = st ? m : lj_nonfinite_find_dtype(d, out + es * i, m);
        } else { /* 16-bit values into f32: staged, converted and tested into dst */
            st = pread_full(f, stage, es * m, off + es * i, err);
            k = st ? m : st_convert_f32_finite(d, stage, m, (float *)dst + i);
        }
        if (k < m) {
            *bad = i + k;
            break;
        }
    }
    return st;
}
