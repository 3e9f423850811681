/* test_swap_mapped.c — issue 16: a hotswap reads adapter_model.safetensors by mapping
 * it and converts straight into the slot, so a bad file must be refused before any
 * slot is written. From the tiny model's a_qv (F32), this writes BF16 and F16 copies
 * (the values rounded to bf16, those outside f16's normal range to zero, so both
 * are exact) and broken files: cut in the data section, a NaN in the last value
 * of the last tensor (F32, BF16, F16). Each broken hotswap
 * must fail naming the file or the tensor and leave the served logits
 * byte-identical; the BF16 and F16 copies must give the same logits as each other.
 * All of it in f32, bf16 and f16 slots (a 16-bit file into slots of its dtype is
 * copied and tested as it lands: the NaN still refused, named).
 * Scratch folder: argv[1]/tmp_swap_mapped. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "rt_formats_fixture.h"
#include "lorajit.h"

#define TINY_ADAPTER "conformance/adapters/llama-tiny/a_qv"
#define N_TOK 4

static const int32_t tokens[N_TOK] = {1, 5, 9, 3};

static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out, "copy %s -> %s", src, dst);
    char buf[4096];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    if (in) fclose(in);
    if (out) fclose(out);
}

static uint16_t to_bf16(float v) { uint32_t b; memcpy(&b, &v, 4); return (uint16_t)(b >> 16); }

/* bf16 bits -> f16 bits for the values a_qv holds (normal, |v| well inside f16's range). */
static uint16_t bf16_to_f16(uint16_t h) {
    uint32_t sign = (h >> 15) & 1u, exp = (h >> 7) & 0xffu, mant = h & 0x7fu;
    if (exp == 0) return (uint16_t)(sign << 15);
    int e = (int)exp - 127 + 15;
    CHECK(e > 0 && e < 31, "value in f16's normal range");
    return (uint16_t)((sign << 15) | ((uint32_t)e << 10) | (mant << 3));
}

/* dir/adapter_model.safetensors: a_qv's tensors as dtype (ST_BF16 or ST_F16), the
 * last value of the last tensor replaced by a NaN when nan is set. */
static void write_16bit(const st_file *f, const char *dir, st_dtype dtype, bool nan) {
    char path[2048], *hdr = malloc(1 << 16);
    size_t len = 0, off = 0;
    len += (size_t)snprintf(hdr + len, 65536 - len, "{");
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        size_t n = (t->end - t->begin) / 4;
        len += (size_t)snprintf(hdr + len, 65536 - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],"
                                "\"data_offsets\":[%zu,%zu]}", i ? "," : "", t->name, st_dtype_name(dtype),
                                (long long)t->shape[0], (long long)t->shape[1], off, off + 2 * n);
        off += 2 * n;
    }
    len += (size_t)snprintf(hdr + len, 65536 - len, "}");
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    FILE *out = fopen(path, "wb");
    CHECK(out != NULL, "write %s", path);
    uint64_t n64 = len;
    fwrite(&n64, 8, 1, out);
    fwrite(hdr, 1, len, out);
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        size_t n = (t->end - t->begin) / 4;
        for (size_t k = 0; k < n; k++) {
            float v;
            memcpy(&v, (const unsigned char *)t->data + 4 * k, 4);
            uint16_t h = to_bf16(v);
            int e = (int)((h >> 7) & 0xffu) - 127 + 15;
            if (e <= 0 || e >= 31) h &= 0x8000u; /* outside f16's normals: a signed zero in both */
            if (dtype == ST_F16) h = bf16_to_f16(h);
            if (nan && i == f->n_tensors - 1 && k == n - 1) h = dtype == ST_F16 ? 0x7e00 : 0x7fc0;
            fwrite(&h, 2, 1, out);
        }
    }
    fclose(out);
    free(hdr);
}

static void make_dir(const char *dir, const char *config_src) {
    mkdir(dir, 0755);
    char src[2048], dst[2048];
    snprintf(src, sizeof src, "%s/adapter_config.json", config_src);
    snprintf(dst, sizeof dst, "%s/adapter_config.json", dir);
    copy_file(src, dst);
}

static void forward(lorajit_engine *e, float *logits, int vocab) {
    memset(logits, 0, sizeof(float) * N_TOK * (size_t)vocab);
    CHECK(lorajit_forward(e, tokens, N_TOK, logits) == LORAJIT_OK, "forward: %s", lorajit_errmsg(e));
}

/* A hotswap of "qv" to dir must fail naming want (and want2 unless NULL), the logits unchanged. */
static void refused2(lorajit_engine *e, const char *dir, const char *want, const char *want2, const float *before,
                     int vocab) {
    lorajit_status st = lorajit_hotswap_adapter(e, "qv", dir);
    CHECK(st != LORAJIT_OK, "%s: hotswap refused", dir);
    CHECK(strstr(lorajit_errmsg(e), want) != NULL, "%s: message names '%s': %s", dir, want, lorajit_errmsg(e));
    if (want2)
        CHECK(strstr(lorajit_errmsg(e), want2) != NULL, "%s: message names '%s': %s", dir, want2, lorajit_errmsg(e));
    float *after = malloc(sizeof(float) * N_TOK * (size_t)vocab);
    forward(e, after, vocab);
    CHECK(memcmp(before, after, sizeof(float) * N_TOK * (size_t)vocab) == 0, "%s: logits byte-identical", dir);
    free(after);
    n_malformed++;
}

static void refused(lorajit_engine *e, const char *dir, const char *want, const float *before, int vocab) {
    refused2(e, dir, want, NULL, before, vocab);
}

int main(int argc, char **argv) {
    check_enter_tests_dir();
    if (fixture_tmp_setup(argc, argv, "swap_mapped")) return 2;
    (void)expect_err, (void)write_text; /* the fixture's, unused here */
    char src[2048], d_bf16[2048], d_f16[2048], d_cut[2048], d_nan[3][2048];
    snprintf(src, sizeof src, "%s/adapter_model.safetensors", TINY_ADAPTER);
    lj_err err;
    st_file *f = NULL;
    CHECK(st_open(src, &f, &err) == LORAJIT_OK, "open %s", src);
    if (!f) return check_summary("swap_mapped");
    tpath(d_bf16, "bf16"), tpath(d_f16, "f16"), tpath(d_cut, "cut");
    tpath(d_nan[0], "nan_f32"), tpath(d_nan[1], "nan_bf16"), tpath(d_nan[2], "nan_f16");
    make_dir(d_bf16, TINY_ADAPTER), make_dir(d_f16, TINY_ADAPTER), make_dir(d_cut, TINY_ADAPTER);
    for (int i = 0; i < 3; i++) make_dir(d_nan[i], TINY_ADAPTER);
    write_16bit(f, d_bf16, ST_BF16, false);
    write_16bit(f, d_f16, ST_F16, false);
    write_16bit(f, d_nan[1], ST_BF16, true);
    write_16bit(f, d_nan[2], ST_F16, true);
    { /* F32 with a NaN last, and a file cut short in the data section */
        char p[2100];
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", d_nan[0]);
        unsigned char *buf = malloc(f->size);
        memcpy(buf, f->map, f->size);
        const st_tensor *last = &f->tensors[f->n_tensors - 1];
        float nanv = __builtin_nanf("");
        memcpy(buf + f->data_start + last->end - 4, &nanv, 4);
        write_bytes(p, buf, f->size);
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", d_cut);
        write_bytes(p, buf, f->size - 6);
        free(buf);
    }
    const char *last_name = lj_strdup(f->tensors[f->n_tensors - 1].name);
    char nan_at[64]; /* the message's words for the NaN: the last element of the last tensor */
    size_t n_last = (size_t)(f->tensors[f->n_tensors - 1].end - f->tensors[f->n_tensors - 1].begin) / 4;
    snprintf(nan_at, sizeof nan_at, "holds NaN at element %zu ", n_last - 1);
    st_close(f);

    static const char *const slot_dtypes[3] = {NULL, "bf16", "f16"}; /* NULL: f32 */
    for (int k = 0; k < 3; k++) { /* 16-bit files into slots of their own dtype are copied, not converted */
        lorajit_options o = {.lora_dtype = slot_dtypes[k]};
        lorajit_engine *e = NULL;
        lorajit_status st = lorajit_engine_open(&e, TINY, &o);
        CHECK(st == LORAJIT_OK, "open (lora_dtype %s): %s", k ? slot_dtypes[k] : "f32", lorajit_errmsg(e));
        if (st == LORAJIT_OK) {
            int vocab = lorajit_vocab_size(e);
            size_t bytes = sizeof(float) * N_TOK * (size_t)vocab;
            float *l_bf16 = malloc(bytes), *l_f16 = malloc(bytes), *l_f32 = malloc(bytes);
            const char *names[1] = {"qv"};
            CHECK(lorajit_load_adapter(e, "qv", TINY_ADAPTER) == LORAJIT_OK, "load: %s", lorajit_errmsg(e));
            CHECK(lorajit_set_adapter(e, names, NULL, 1) == LORAJIT_OK, "set: %s", lorajit_errmsg(e));
            forward(e, l_f32, vocab);
            refused(e, d_cut, "adapter_model.safetensors", l_f32, vocab);
            refused(e, d_nan[0], last_name, l_f32, vocab);
            CHECK(lorajit_hotswap_adapter(e, "qv", d_bf16) == LORAJIT_OK, "hotswap bf16: %s", lorajit_errmsg(e));
            forward(e, l_bf16, vocab);
            for (int i = 1; i < 3; i++) refused2(e, d_nan[i], last_name, nan_at, l_bf16, vocab);
            refused(e, d_cut, "adapter_model.safetensors", l_bf16, vocab);
            CHECK(lorajit_hotswap_adapter(e, "qv", d_f16) == LORAJIT_OK, "hotswap f16: %s", lorajit_errmsg(e));
            forward(e, l_f16, vocab);
            CHECK(memcmp(l_bf16, l_f16, bytes) == 0, "slots %s: BF16 and F16 copies of the same values: same logits",
                  k ? slot_dtypes[k] : "f32");
            CHECK(memcmp(l_bf16, l_f32, bytes) != 0, "the bf16-cut adapter changes the logits a little");
            CHECK(lorajit_hotswap_adapter(e, "qv", TINY_ADAPTER) == LORAJIT_OK, "hotswap back: %s",
                  lorajit_errmsg(e));
            forward(e, l_f16, vocab);
            CHECK(memcmp(l_f32, l_f16, bytes) == 0, "hotswap back to F32: the first logits again");
            free(l_bf16), free(l_f16), free(l_f32);
        }
        lorajit_engine_free(e);
    }
    free((void *)last_name);
    printf("swap mapped: %d broken files refused, slots unchanged\n", n_malformed);
    return check_summary("swap_mapped");
}
