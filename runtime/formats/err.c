/* err.c — status codes, error messages, invariant aborts and allocation.
 *
 * Inputs: failures found anywhere in runtime/ (bad input -> lj_fail, a bug in
 * lorajit itself -> LJ_ASSERT/lj_abort). Outputs: an lj_err holding a status and
 * a message that names the file, tensor or field; lorajit_status_str's static
 * text; lj_malloc/lj_calloc, which tests can make fail on the k-th call so that
 * every fail: path is exercised under ASan. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"

/* The one file-scope mutable variable in runtime/, kept on purpose: a test-only
 * hook that makes the k-th allocation from now on fail (0: never). Tests set it
 * from a single thread; production code never touches it, so it is always 0
 * there and lj_malloc is plain malloc. Not synchronised. */
static long alloc_fail_countdown;

const char *lorajit_status_str(lorajit_status s) {
    switch (s) {
    case LORAJIT_OK: return "ok";
    case LORAJIT_E_IO: return "i/o error (a file could not be opened, read or mapped)";
    case LORAJIT_E_FORMAT: return "malformed file";
    case LORAJIT_E_SHAPE: return "tensor shape does not fit the model";
    case LORAJIT_E_UNSUPPORTED: return "unsupported input";
    case LORAJIT_E_NOT_FOUND: return "not found";
    case LORAJIT_E_EXISTS: return "adapter already loaded";
    case LORAJIT_E_FULL: return "every adapter slot is in use";
    case LORAJIT_E_NOMEM: return "out of memory";
    case LORAJIT_E_ARG: return "bad argument";
    case LORAJIT_E_COMPILE: return "compilation failed";
    case LORAJIT_STATUS_COUNT: break;
    }
    return "unknown status";
}

lorajit_status lj_fail(lj_err *err, lorajit_status s, const char *fmt, ...) {
    if (!err) return s;
    /* Format into a local buffer first, so that a caller may pass err->msg as an
     * argument (to prefix context to an earlier message). */
    char buf[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Names and values from files may hold control characters (terminal escapes):
     * a message is one line of printable text. */
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = (*c == '\n' || *c == '\t') ? ' ' : '?';
    memcpy(err->msg, buf, sizeof buf);
    err->status = s;
    return s;
}

void lj_err_clear(lj_err *err) {
    if (!err) return;
    err->status = LORAJIT_OK;
    err->msg[0] = '\0';
}

void lj_abort(const char *file, int line, const char *what) {
    fprintf(stderr, "lorajit: %s:%d: internal error: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

/* True when the failure hook says this allocation must fail. */
static int alloc_should_fail(void) {
    if (alloc_fail_countdown <= 0) return 0;
    return --alloc_fail_countdown == 0;
}

/* Caller owns the result; free with free(). NULL on failure; n == 0 gives a
 * valid, distinct pointer. */
void *lj_malloc(size_t n) {
    if (alloc_should_fail()) return NULL;
    return malloc(n ? n : 1);
}

/* Caller owns the result; free with free(). NULL on failure or overflow. */
void *lj_calloc(size_t n, size_t size) {
    if (alloc_should_fail()) return NULL;
    if (n == 0 || size == 0) return calloc(1, 1);
    return calloc(n, size);
}

/* Caller owns the result; free with free(). n * size zeroed bytes starting on a
 * 64-byte boundary (a cache line: vector loads of rows whose length is a multiple of
 * 16 floats never straddle two lines). NULL on failure or overflow. */
void *lj_calloc64(size_t n, size_t size) {
    if (alloc_should_fail()) return NULL;
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n && size ? (n * size + 63) / 64 * 64 : 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes)) return NULL;
    memset(p, 0, bytes);
    return p;
}

void lj_alloc_fail_after(long k) {
    alloc_fail_countdown = k > 0 ? k : 0;
}

char *lj_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = lj_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
