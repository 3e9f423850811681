/* gen_util.c — the pieces lorajit_gen's commands share: errors (stderr, exit 2),
 * splitmix64 and an Irwin-Hall normal (integer arithmetic, one rounding: the same
 * bits on every machine), tensors seeded by (seed, name), f16/bf16 rounding to
 * nearest even, and file output (directories, JSON scalars, safetensors). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_file.h"
#include "gen.h"
// ----------------------------------------------------------------------------
// errors

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("lorajit_gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory");
    return p;
}

long parse_int(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
    return v;
}

double parse_num(const char *opt, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) die("%s: '%s' is not a number", opt, s);
    return v;
}

// ----------------------------------------------------------------------------
// random numbers: splitmix64 + Irwin-Hall normal

uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Approximately N(0, 1): sum of 12 uniform 32-bit integers, centred. The sum is
 * exact in int64 and in double (< 2^53), and the scale by 2^-32 is exact. */
double rng_normal(uint64_t *state) {
    int64_t sum = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t z = splitmix64(state);
        sum += (int64_t)(z >> 32) + (int64_t)(z & 0xffffffffu);
    }
    sum -= (int64_t)6 << 32;
    return (double)sum * (1.0 / 4294967296.0);
}

// ----------------------------------------------------------------------------
// tensors



/* Appends a tensor whose elements are mean + std * N(0,1), seeded by (seed, name). */
void tensor_add(tensor_list *l, const char *name, int ndim, int64_t rows, int64_t cols,
                       uint64_t seed, double mean, double std) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, (size_t)l->cap * sizeof *l->t);
        if (!l->t) die("out of memory");
    }
    gen_tensor *t = &l->t[l->n++];
    if (strlen(name) >= sizeof t->name) die("tensor name too long: %s", name);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->shape[0] = rows;
    t->shape[1] = ndim == 2 ? cols : 1;
    int64_t count = rows * t->shape[1];
    t->data = xcalloc((size_t)count, sizeof(float));
    uint64_t state = seed * 0x9e3779b97f4a7c15ull ^ fnv1a64(name); // one stream per tensor
    for (int64_t i = 0; i < count; i++) t->data[i] = (float)(mean + std * rng_normal(&state));
}

void tensor_list_free(tensor_list *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].data);
    free(l->t);
}

int64_t tensor_count(const gen_tensor *t) { return t->shape[0] * t->shape[1]; }
// ----------------------------------------------------------------------------
// dtypes: f32 stored as is, f16 and bf16 rounded to nearest even


gen_dtype parse_dtype(const char *s) {
    if (!strcmp(s, "f32")) return DT_F32;
    if (!strcmp(s, "f16")) return DT_F16;
    if (!strcmp(s, "bf16")) return DT_BF16;
    die("--dtype: '%s' is not f32, f16 or bf16", s);
    return DT_F32;
}

const char *dtype_st_name(gen_dtype d) { return d == DT_F32 ? "F32" : d == DT_F16 ? "F16" : "BF16"; }
const char *dtype_torch_name(gen_dtype d) {
    return d == DT_F32 ? "float32" : d == DT_F16 ? "float16" : "bfloat16";
}
int dtype_size(gen_dtype d) { return d == DT_F32 ? 4 : 2; }

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    int exp = (int)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { // f16 subnormal or zero
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; // a carry rolls into the exponent
    return (uint16_t)h;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* Writes count values of data as little-endian dtype to f. */
void write_values(FILE *f, const float *data, int64_t count, gen_dtype dt) {
    unsigned char b[4];
    for (int64_t i = 0; i < count; i++) {
        uint32_t x;
        if (dt == DT_F32) memcpy(&x, &data[i], 4);
        else x = dt == DT_F16 ? f32_to_f16(data[i]) : f32_to_bf16(data[i]);
        for (int k = 0; k < 4; k++) b[k] = (unsigned char)(x >> (8 * k));
        if (fwrite(b, 1, (size_t)dtype_size(dt), f) != (size_t)dtype_size(dt)) die("write failed");
    }
}

// ----------------------------------------------------------------------------
// files

void make_dirs(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) die("path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) die("cannot create %s: %s", buf, strerror(errno));
            if (!c) break;
            *p = c;
        }
    }
}

FILE *open_out(const char *dir, const char *name, char *path, size_t cap) {
    char why[8400];
    if ((size_t)snprintf(path, cap, "%s/%s", dir, name) >= cap) die("path too long: %s/%s", dir, name);
    /* A new file: a link or regular file already at path is removed, never written
     * through; anything else there (a named pipe, a folder, a device) is refused. */
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode) &&
        cli_check_path("OUTDIR", path, 0, why, sizeof why) != 0)
        die("%s", why);
    if (unlink(path) != 0 && errno != ENOENT) die("cannot replace %s: %s", path, strerror(errno));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) die("cannot write %s: %s", path, strerror(errno));
    return f;
}

void close_out(FILE *f, const char *path) {
    if (ferror(f) | fclose(f)) die("error writing %s", path);
}

/* Writes s as a JSON string literal. */
void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* Writes a number as Python's json would: integral values without a fraction when
 * as_int, else like repr(float). */
void json_num(FILE *f, double v, int as_int) {
    if (as_int && v == (double)(long long)v) fprintf(f, "%lld", (long long)v);
    else if (v == (double)(long long)v && v < 1e16 && v > -1e16) fprintf(f, "%.1f", v);
    else fprintf(f, "%.17g", v);
}

int cmp_tensor_ptr(const void *a, const void *b) {
    return strcmp((*(gen_tensor *const *)a)->name, (*(gen_tensor *const *)b)->name);
}

/* Writes ts[0..n) (sorted by name, as the safetensors library does) to dir/file.
 * Layout: u64 LE header length, JSON header padded with spaces to a multiple of 8,
 * then the data. Returns the data size in bytes. */
int64_t write_safetensors(const char *dir, const char *file, gen_tensor **ts, int n, gen_dtype dt) {
    qsort(ts, (size_t)n, sizeof *ts, cmp_tensor_ptr);
    size_t cap = 256 + (size_t)n * 320, len = 0;
    char *hdr = xcalloc(cap, 1);
    int64_t off = 0;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        int64_t bytes = tensor_count(ts[i]) * dtype_size(dt);
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", ts[i]->name,
                                dtype_st_name(dt));
        for (int d = 0; d < ts[i]->ndim; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "", (long long)ts[i]->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
                                (long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    if (len + 8 >= cap) die("internal: safetensors header overflow");
    while (len % 8) hdr[len++] = ' ';
    char path[4096];
    FILE *f = open_out(dir, file, path, sizeof path);
    unsigned char lenb[8];
    for (int k = 0; k < 8; k++) lenb[k] = (unsigned char)((uint64_t)len >> (8 * k));
    fwrite(lenb, 1, 8, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < n; i++) write_values(f, ts[i]->data, tensor_count(ts[i]), dt);
    close_out(f, path);
    free(hdr);
    return off;
}
