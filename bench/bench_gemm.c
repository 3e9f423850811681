/* bench_gemm.c — the GEMM bound: the model's projection matrices (q,k,v,o,gate,up,
 * down of every layer, and lm_head) through OpenBLAS alone, as lorajit calls them.
 *
 * Input: a model folder's model.safetensors, read here with nothing of lorajit's
 * (the public API has no tensor access): the file is mapped (the same page-cache
 * pages lorajit's engines map), its JSON header parsed with cJSON; F32 matrices are
 * used in place, F16/BF16 ones widened to f32 copies (sgemm reads only f32).
 * Output: a bench_gemm whose bench_gemm_once is a bench_job run. */
#define _GNU_SOURCE
#include <cblas.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"

/* Length of the JSON header that follows the 8-byte little-endian length. */
static uint64_t header_len(const unsigned char *p) {
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | p[k];
    return n;
}

double bench_st_data_bytes(const char *path) {
    unsigned char len[8];
    FILE *f = fopen(path, "rb");
    if (!f || fread(len, 1, 8, f) != 8 || fseek(f, 0, SEEK_END) != 0) bench_die("cannot read %s", path);
    double size = (double)ftell(f);
    fclose(f);
    return size - 8 - (double)header_len(len);
}

/* IEEE half -> float. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;                 /* inf, nan */
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | man << 13;           /* normal */
    } else if (man) {                                          /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    } else {
        bits = sign;                                           /* zero */
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* The matrix `name` of the mapped file as f32 [out, in]: in place for F32, else a
 * widened copy put in *owned. */
static const float *matrix(bench_gemm *a, const cJSON *hdr, const char *name, int *out, int *in, float **owned) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(hdr, name);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    const char *dtype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "dtype"));
    if (!dtype || cJSON_GetArraySize(shape) != 2 || cJSON_GetArraySize(offs) != 2)
        bench_die("%s: no matrix %s", a->path, name);
    *out = cJSON_GetArrayItem(shape, 0)->valueint, *in = cJSON_GetArrayItem(shape, 1)->valueint;
    size_t n = (size_t)*out * (size_t)*in, begin = (size_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
    size_t elem = !strcmp(dtype, "F32") ? 4 : !strcmp(dtype, "F16") || !strcmp(dtype, "BF16") ? 2 : 0;
    if (!elem || begin + n * elem > a->map_bytes - a->data_off) bench_die("%s: %s: %s data out of range", a->path, name, dtype);
    const unsigned char *p = a->map + a->data_off + begin;
    if (elem == 4) return (const float *)p;
    if (!(*owned = malloc(sizeof(float) * n))) bench_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        uint32_t bits = (uint32_t)h << 16;
        if (dtype[0] == 'B') memcpy(&(*owned)[i], &bits, 4);
        else (*owned)[i] = f16_to_f32(h);
    }
    return *owned;
}

void bench_gemm_open(bench_gemm *a, const char *model_dir, int n_layers) {
    static const char *const mods[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                        "mlp.down_proj"};
    char name[128];
    bench_fmt(a->path, sizeof a->path, "%s/model.safetensors", model_dir);
    int fd = open(a->path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size < 8) bench_die("cannot read %s", a->path);
    a->map_bytes = (size_t)sb.st_size;
    a->map = mmap(NULL, a->map_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (a->map == MAP_FAILED) bench_die("cannot map %s", a->path);
    uint64_t hlen = header_len(a->map);
    if (hlen > a->map_bytes - 8) bench_die("%s: header length %llu past the end", a->path, (unsigned long long)hlen);
    a->data_off = 8 + (size_t)hlen;
    cJSON *hdr = cJSON_ParseWithLength((const char *)a->map + 8, (size_t)hlen);
    if (!hdr) bench_die("%s: header is not JSON", a->path);
    int cap = n_layers * 7 + 1, max_in = 0, max_out = 0;
    a->w = calloc((size_t)cap, sizeof *a->w);
    a->owned = calloc((size_t)cap, sizeof *a->owned);
    a->out = calloc((size_t)cap, sizeof(int));
    a->in = calloc((size_t)cap, sizeof(int));
    if (!a->w || !a->owned || !a->out || !a->in) bench_die("out of memory");
    for (int i = 0; i < cap; i++) {
        if (i < cap - 1) bench_fmt(name, sizeof name, "model.layers.%d.%s.weight", i / 7, mods[i % 7]);
        else bench_fmt(name, sizeof name, "lm_head.weight");
        a->w[i] = matrix(a, hdr, name, &a->out[i], &a->in[i], &a->owned[i]);
        if (a->in[i] > max_in) max_in = a->in[i];
        if (a->out[i] > max_out) max_out = a->out[i];
    }
    cJSON_Delete(hdr);
    a->n_mats = cap;
    a->x = malloc(sizeof(float) * 128 * (size_t)max_in);
    a->y = calloc(128 * (size_t)max_out, sizeof(float));
    if (!a->x || !a->y) bench_die("out of memory");
    for (size_t i = 0; i < 128 * (size_t)max_in; i++)
        a->x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
}

void bench_gemm_once(void *p) {
    bench_gemm *a = p;
    int was = openblas_get_num_threads(); /* 1 once an engine pinned it */
    if (a->threads > 0 && a->threads != was) openblas_set_num_threads(a->threads);
    for (int i = 0; i < a->n_mats; i++) {
        if (a->n == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, a->out[i], a->in[i], 1.0f, a->w[i], a->in[i],
                        a->x, 1, 0.0f, a->y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->n, a->out[i], a->in[i], 1.0f,
                        a->x, a->in[i], a->w[i], a->in[i], 0.0f, a->y, a->out[i]);
    }
    if (a->threads > 0 && a->threads != was) openblas_set_num_threads(was);
}

void bench_gemm_close(bench_gemm *a) {
    for (int i = 0; i < a->n_mats; i++) free(a->owned[i]);
    free(a->x), free(a->y), free(a->w), free(a->owned), free(a->out), free(a->in);
    if (a->map) munmap(a->map, a->map_bytes);
}
