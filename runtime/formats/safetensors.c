/* safetensors.c — maps a .safetensors file and validates its header.
 *
 * Input: a file (or buffer) laid out as an 8-byte little-endian header length N,
 * N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}, then the data section. Output: an st_file
 * whose tensors are sorted by name and point into the mapping. The bytes are
 * hostile until checked: every refusal names the file, the tensor and the byte
 * offset; sizes are checked for overflow; ranges must fit the data section and
 * must not overlap. Also converts F32 / F16 / BF16 tensors to f32. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_POPULATE */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "formats.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place; a big-endian host needs byte swaps"
#endif

/* Caps far above real files (README "Limits"): the largest real headers are a
 * few MB (~20k tensors in one shard of a mixture-of-experts model); a LLaMA
 * shard lists a few hundred tensors. The reference implementation allows 100 MB,
 * which a hostile file turns into GBs of parse tree; here the header text is at
 * most 16 MiB, and json.c bounds its values (so the tree) separately. */
#define ST_MAX_HEADER (UINT64_C(16) << 20)
#define ST_MAX_TENSORS (1 << 17)
#define ST_MAX_NAME 512                   /* bytes of a tensor name: real ones are < 100 */
#define ST_MAX_INT (UINT64_C(1) << 53)    /* larger JSON numbers are not exact doubles */

const char *st_dtype_name(st_dtype d) {
    switch (d) {
    case ST_F32: return "F32";
    case ST_F16: return "F16";
    case ST_BF16: return "BF16";
    case ST_F64: return "F64";
    case ST_I64: return "I64";
    case ST_I32: return "I32";
    case ST_I16: return "I16";
    case ST_I8: return "I8";
    case ST_U8: return "U8";
    case ST_BOOL: return "BOOL";
    case ST_DTYPE_COUNT: break;
    }
    return "?";
}

size_t st_dtype_size(st_dtype d) {
    switch (d) {
    case ST_F64: case ST_I64: return 8;
    case ST_F32: case ST_I32: return 4;
    case ST_F16: case ST_BF16: case ST_I16: return 2;
    case ST_I8: case ST_U8: case ST_BOOL: return 1;
    case ST_DTYPE_COUNT: break;
    }
    return 0;
}

/* Valid safetensors dtypes that lorajit has no use for: refused as unsupported
 * rather than malformed. */
static const char *const other_dtypes[] = {
    "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

/* Reads a JSON number that must be an integer in 0..2^53 into *out. */
static bool json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d > (double)ST_MAX_INT || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

/* Fills t from the header entry e of the tensor named t->name. data_size is the
 * length of the data section, which starts at file byte data_start. */
static lorajit_status parse_entry(const cJSON *e, const char *path, uint64_t data_start,
                                  uint64_t data_size, st_tensor *t, lj_err *err) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor \"%s\": header entry is not an object",
                       path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor \"%s\": \"dtype\" is missing or not a string",
                       path, nm);
    int d = 0;
    while (d < ST_DTYPE_COUNT && strcmp(dt->valuestring, st_dtype_name((st_dtype)d)) != 0) d++;
    if (d == ST_DTYPE_COUNT) {
        for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
            if (strcmp(dt->valuestring, other_dtypes[i]) == 0)
                return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: tensor \"%s\": dtype %s is unsupported",
                               path, nm, dt->valuestring);
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.16s%s\"", path, nm,
                       dt->valuestring, strlen(dt->valuestring) > 16 ? "..." : "");
    }
    t->dtype = (st_dtype)d;

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor \"%s\": \"shape\" is missing or not a list",
                       path, nm);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > 8)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor \"%s\": shape has %d dimensions; at most 8",
                       path, nm, ndim);
    uint64_t count = 1;
    bool overflow = false;
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, sh) {
        uint64_t dim;
        if (!json_u64(x, &dim))
            return lj_fail(err, LORAJIT_E_FORMAT,
                           "%s: tensor \"%s\": shape entry %d is not a non-negative integer", path,
                           nm, k);
        t->shape[k++] = (int64_t)dim;
        overflow |= __builtin_mul_overflow(count, dim, &count);
    }
    t->ndim = ndim;
    uint64_t bytes = 0;
    overflow |= __builtin_mul_overflow(count, (uint64_t)st_dtype_size(t->dtype), &bytes);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_u64(off->child, &b) ||
        !json_u64(off->child->next, &en))
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: tensor \"%s\": \"data_offsets\" must be [begin, end], two "
                       "non-negative integers",
                       path, nm);
    if (b > en)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: tensor \"%s\": data_offsets begin %llu > end %llu (file byte %llu)",
                       path, nm, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(data_start + b));
    if (en > data_size)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%llu, %llu] end at file byte %llu, past "
                       "the end of the data section (%llu bytes from byte %llu)",
                       path, nm, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(data_start + en), (unsigned long long)data_size,
                       (unsigned long long)data_start);
    if (overflow)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: tensor \"%s\": the byte size of its shape overflows 64 bits", path, nm);
    if (bytes != en - b)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: tensor \"%s\": shape and dtype %s make %llu bytes, but data_offsets "
                       "[%llu, %llu] hold %llu (file byte %llu)",
                       path, nm, st_dtype_name(t->dtype), (unsigned long long)bytes,
                       (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(en - b), (unsigned long long)(data_start + b));
    t->begin = b;
    t->end = en;
    return LORAJIT_OK;
}

/* "__metadata__" must be an object of strings; its content is not used. */
static lorajit_status check_metadata(const cJSON *m, const char *path, lj_err *err) {
    if (!cJSON_IsObject(m))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: \"__metadata__\" is not an object", path);
    const cJSON *v;
    int i = 0;
    cJSON_ArrayForEach(v, m) {
        if (!cJSON_IsString(v))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: \"__metadata__\" entry %d is not a string", path, i);
        i++;
    }
    return LORAJIT_OK;
}

/* A tensor name goes into messages: at most ST_MAX_NAME bytes and no control
 * characters (a name is never printed before it passed this). */
static lorajit_status check_name(const char *name, int index, const char *path, lj_err *err) {
    size_t n = 0;
    for (; name[n]; n++)
        if ((unsigned char)name[n] < 0x20 || name[n] == 0x7f)
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor %d of the header: its name holds a control "
                           "character", path, index);
    if (n > ST_MAX_NAME)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor %d of the header: its name is %zu bytes, over "
                       "the limit of %d", path, index, n, ST_MAX_NAME);
    return LORAJIT_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Tensors sorted by name: refuses duplicate names and overlapping data ranges. */
static lorajit_status check_tensors(st_file *f, lj_err *err) {
    for (int i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: tensor \"%s\" appears twice in the header",
                           f->path, f->tensors[i].name);
    const st_tensor **by_begin = lj_calloc((size_t)f->n_tensors, sizeof *by_begin);
    if (!by_begin) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", f->path);
    for (int i = 0; i < f->n_tensors; i++) by_begin[i] = &f->tensors[i];
    qsort(by_begin, (size_t)f->n_tensors, sizeof *by_begin, cmp_begin);
    const st_tensor *last = NULL; /* the tensor reaching furthest so far */
    lorajit_status s = LORAJIT_OK;
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = by_begin[i];
        if (t->begin == t->end) continue; /* empty tensors occupy no bytes */
        if (last && t->begin < last->end) {
            s = lj_fail(err, LORAJIT_E_FORMAT,
                        "%s: tensor \"%s\" data [%llu, %llu] overlaps tensor \"%s\" data [%llu, "
                        "%llu] (file byte %llu)",
                        f->path, t->name, (unsigned long long)t->begin,
                        (unsigned long long)t->end, last->name, (unsigned long long)last->begin,
                        (unsigned long long)last->end,
                        (unsigned long long)(f->data_start + t->begin));
            break;
        }
        if (!last || t->end > last->end) last = t;
    }
    free(by_begin);
    return s;
}

/* Frees f's own allocations; the mapping is st_close's business. */
static void st_free_parts(st_file *f) {
    if (f->tensors)
        for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->path);
    free(f);
}

/* Caller owns *out; free with st_close() (which leaves buf alone). buf is
 * borrowed and must outlive *out. On failure *out is NULL. */
lorajit_status st_open_buffer(const void *buf, size_t size, const char *name, st_file **out,
                              lj_err *err) {
    *out = NULL;
    const char *path = name ? name : "<buffer>";
    const unsigned char *p = buf;
    if (size < 8)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: file is %zu bytes, too short for the 8-byte header length", path, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | p[i];
    /* n is the file's first 8 bytes: the messages never print it (a file that is
     * not safetensors would have its first bytes echoed). */
    if (n > size - 8)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: the header length (byte 0) runs past the end of the file (%zu bytes)",
                       path, size);
    if (n > ST_MAX_HEADER)
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: the header length (byte 0) is over the limit of %llu MiB (a corrupt file, "
                       "or not safetensors)", path, (unsigned long long)(ST_MAX_HEADER >> 20));
    cJSON *j = NULL;
    lorajit_status s = lj_json_parse((const char *)p + 8, (size_t)n, path, 8, &j, err);
    if (s) return s;
    st_file *f = NULL;
    if (!cJSON_IsObject(j)) {
        s = lj_fail(err, LORAJIT_E_FORMAT, "%s: header (byte 8) is not a JSON object", path);
        goto fail;
    }
    int count = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        if ((s = check_name(e->string, count, path, err))) goto fail;
        if (++count > ST_MAX_TENSORS) {
            s = lj_fail(err, LORAJIT_E_FORMAT, "%s: header lists more than %d tensors", path,
                        ST_MAX_TENSORS);
            goto fail;
        }
    }
    f = lj_calloc(1, sizeof *f);
    if (!f || !(f->path = lj_strdup(path)) ||
        !(f->tensors = lj_calloc((size_t)count, sizeof(st_tensor)))) {
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory for %d tensors", path, count);
        goto fail;
    }
    f->map = (void *)buf;
    f->size = size;
    f->fd = -1;
    f->data_start = (size_t)(8 + n);
    uint64_t data_size = size - f->data_start;
    cJSON_ArrayForEach(e, j) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if ((s = check_metadata(e, path, err))) goto fail;
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = lj_strdup(e->string))) {
            s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        f->n_tensors++;
        if ((s = parse_entry(e, path, f->data_start, data_size, t, err))) goto fail;
        t->data = p + f->data_start + t->begin;
    }
    qsort(f->tensors, (size_t)f->n_tensors, sizeof(st_tensor), cmp_name);
    if ((s = check_tensors(f, err))) goto fail;
    cJSON_Delete(j);
    *out = f;
    return LORAJIT_OK;
fail:
    cJSON_Delete(j);
    if (f) st_free_parts(f);
    return s;
}

/* Maps path read-only (MAP_PRIVATE plus map_flags) and validates its header; keeps
 * the descriptor in f->fd when keep_fd. */
static lorajit_status open_mapped(const char *path, int map_flags, bool keep_fd, st_file **out, lj_err *err) {
    *out = NULL;
    int fd;
    size_t size;
    lorajit_status os = lj_open_regular(path, &fd, &size, err);
    if (os) return os;
    if (size < 8) {
        close(fd);
        return lj_fail(err, LORAJIT_E_FORMAT,
                       "%s: file is %zu bytes, too short for the 8-byte header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | map_flags, fd, 0);
    int map_errno = errno;
    if (!keep_fd || map == MAP_FAILED) close(fd); /* the mapping stays valid without the descriptor */
    if (map == MAP_FAILED)
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot map %zu bytes: %s", path, size,
                       strerror(map_errno));
    st_file *f;
    lorajit_status s = st_open_buffer(map, size, path, &f, err);
    if (s) {
        munmap(map, size);
        if (keep_fd) close(fd);
        return s;
    }
    f->mapped = true;
    f->fd = keep_fd ? fd : -1;
    *out = f;
    return LORAJIT_OK;
}

/* Caller owns *out; free with st_close(). On failure *out is NULL. */
lorajit_status st_open(const char *path, st_file **out, lj_err *err) {
    return open_mapped(path, 0, false, out, err);
}

lorajit_status st_open_pread(const char *path, st_file **out, lj_err *err) {
    return open_mapped(path, 0, true, out, err);
}

/* As st_open, but the kernel maps every page at once (MAP_POPULATE): for a file
 * that is read whole right away (an adapter), a page fault per 4 KiB page costs
 * more than copying the page. Caller owns *out; free with st_close(). */
lorajit_status st_open_whole(const char *path, st_file **out, lj_err *err) {
#ifdef MAP_POPULATE
    return open_mapped(path, MAP_POPULATE, false, out, err);
#else
    return open_mapped(path, 0, false, out, err);
#endif
}

void st_close(st_file *f) {
    if (!f) return;
    if (f->mapped) munmap(f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    st_free_parts(f);
}

static int cmp_key(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const st_tensor *)elem)->name);
}

/* Borrowed; valid until st_close(f). NULL if absent. */
const st_tensor *st_find(const st_file *f, const char *name) {
    if (!f || !name || f->n_tensors == 0) return NULL;
    return bsearch(name, f->tensors, (size_t)f->n_tensors, sizeof(st_tensor), cmp_key);
}

/* IEEE half -> single, exact for every input: subnormals are normalised, inf
 * stays inf and a NaN keeps its sign and payload. Branch-free so that the loop
 * over a tensor vectorises: the magnitude shifted into f32's place, times 2^112,
 * rebiases normals and normalises subnormals in one exact multiply; exponent 31
 * (inf, NaN) is set to 255 directly. */
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t mag = (uint32_t)(h & 0x7fffu) << 13;
    float f;
    memcpy(&f, &mag, sizeof f);
    f *= 0x1p112f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint32_t special = (uint32_t)0 - (uint32_t)((h & 0x7c00u) == 0x7c00u); /* all ones: inf/NaN */
    bits = (bits & ~special) | ((0x7f800000u | mag) & special);
    bits |= sign;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Values per inner loop of a conversion: a constant trip count is what gcc -O2's
 * cheap vectoriser needs to vectorise a loop. */
#define ST_CONVERT_BLOCK 64

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* dst[k] = widen(src[k]) for n 16-bit values at src (any alignment). Inlined with
 * a constant n and widen, it is the vectorised inner loop of st_convert_f32. */
static inline __attribute__((always_inline)) void convert16_block(const unsigned char *restrict src, size_t n,
                                                                  float *restrict dst, float (*widen)(uint16_t)) {
    for (size_t k = 0; k < n; k++) {
        uint16_t h;
        memcpy(&h, src + 2 * k, 2);
        dst[k] = widen(h);
    }
}

LJ_SIMD_CLONES void st_convert_f32(st_dtype d, const void *src, size_t n, float *restrict dst) {
    const unsigned char *restrict p = src; /* never dst: a mapping or a file buffer */
    size_t i = 0;
    switch (d) {
    case ST_F32:
        if (n) memcpy(dst, p, n * sizeof(float)); /* src may be unaligned */
        return;
    case ST_F16:
    case ST_BF16:
        for (; i + ST_CONVERT_BLOCK <= n; i += ST_CONVERT_BLOCK) /* one branch per block, not per value */
            if (d == ST_F16) convert16_block(p + 2 * i, ST_CONVERT_BLOCK, dst + i, f16_to_f32);
            else convert16_block(p + 2 * i, ST_CONVERT_BLOCK, dst + i, bf16_to_f32);
        if (d == ST_F16) convert16_block(p + 2 * i, n - i, dst + i, f16_to_f32);
        else convert16_block(p + 2 * i, n - i, dst + i, bf16_to_f32);
        return;
    case ST_F64: case ST_I64: case ST_I32: case ST_I16: case ST_I8: case ST_U8: case ST_BOOL:
    case ST_DTYPE_COUNT:
        break;
    }
    LJ_ASSERT(!"st_convert_f32: not a float dtype");
}

/* dst[k] = widen(src[k]) for n 16-bit values, returning the OR of lj_nonfinite_bit
 * over the written floats (0: all finite). Inlined with a constant n, vectorised. */
static inline __attribute__((always_inline)) uint32_t check16_block(const unsigned char *restrict src, size_t n,
                                                                    float *restrict dst, float (*widen)(uint16_t)) {
    uint32_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint16_t h;
        memcpy(&h, src + 2 * k, 2);
        float f = widen(h);
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        bad |= lj_nonfinite_bit(bits);
        dst[k] = f;
    }
    return bad;
}

/* As check16_block for n f32 values (src any alignment): a copy and the test. */
static inline __attribute__((always_inline)) uint32_t check32_block(const unsigned char *restrict src, size_t n,
                                                                    float *restrict dst) {
    uint32_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t bits;
        memcpy(&bits, src + 4 * k, sizeof bits);
        bad |= lj_nonfinite_bit(bits);
        memcpy(dst + k, &bits, sizeof bits);
    }
    return bad;
}

static inline __attribute__((always_inline)) uint32_t check_block(st_dtype d, const unsigned char *restrict src,
                                                                  size_t n, float *restrict dst) {
    if (d == ST_F32) return check32_block(src, n, dst);
    if (d == ST_F16) return check16_block(src, n, dst, f16_to_f32);
    return check16_block(src, n, dst, bf16_to_f32);
}

/* st_convert_f32_finite for one dtype d (a constant once inlined). */
static inline __attribute__((always_inline)) size_t convert_finite(st_dtype d, const unsigned char *restrict p,
                                                                   size_t n, float *restrict dst) {
    size_t es = d == ST_F32 ? 4 : 2, i = 0;
    for (; i + ST_CONVERT_BLOCK <= n; i += ST_CONVERT_BLOCK) /* one branch per block */
        if (check_block(d, p + es * i, ST_CONVERT_BLOCK, dst + i))
            return i + lj_nonfinite_find(dst + i, ST_CONVERT_BLOCK);
    for (; i + 16 <= n; i += 16) /* the rows of a rank-16 B land here: vectorised too */
        if (check_block(d, p + es * i, 16, dst + i)) return i + lj_nonfinite_find(dst + i, 16);
    if (check_block(d, p + es * i, n - i, dst + i)) return i + lj_nonfinite_find(dst + i, n - i);
    return n;
}

LJ_SIMD_CLONES size_t st_convert_f32_finite(st_dtype d, const void *src, size_t n, float *restrict dst) {
    switch (d) {
    case ST_F32: return convert_finite(ST_F32, src, n, dst);
    case ST_F16: return convert_finite(ST_F16, src, n, dst);
    case ST_BF16: return convert_finite(ST_BF16, src, n, dst);
    case ST_F64: case ST_I64: case ST_I32: case ST_I16: case ST_I8: case ST_U8: case ST_BOOL:
    case ST_DTYPE_COUNT:
        break;
    }
    LJ_ASSERT(!"st_convert_f32_finite: not a float dtype");
    return 0;
}

lorajit_status st_to_f32(const st_file *f, const st_tensor *t, float *dst, lj_err *err) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i]; /* checked by the header parse */
    if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) {
        st_convert_f32(t->dtype, t->data, n, dst);
        return LORAJIT_OK;
    }
    return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                   "%s: tensor \"%s\": dtype %s cannot be read as float (F32, F16 or BF16 only)",
                   f ? f->path : "<buffer>", t->name, st_dtype_name(t->dtype));
}
