/* test_rt_safetensors.c — runtime/'s tensor-file readers on valid and hostile input:
 * safetensors.c (truncated / oversized / malformed headers, each refused naming the
 * file and tensor; the tiny model's tensors and F16/BF16/unaligned F32 conversion)
 * and weights.c (binding a layout to one file or to shards through
 * model.safetensors.index.json, index and layout faults, mixed and 16-bit dtypes,
 * an allocation-failure sweep). Same recipe as test_rt_formats.c, under
 * argv[1]/tmp_rt_safetensors. Expected values of the conformance model were read
 * once with Python's struct module and are hard-coded as bit patterns. */
#define _XOPEN_SOURCE 700 /* nftw, strdup */
#include "rt_formats_fixture.h"

/* header length + header + data (zeros when data is NULL) */
static void write_st(const char *path, const char *header, const void *data, size_t data_len) {
    size_t hl = strlen(header);
    unsigned char *buf = calloc(1, 8 + hl + data_len);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data) memcpy(buf + 8 + hl, data, data_len);
    write_bytes(path, buf, 8 + hl + data_len);
    free(buf);
}

static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- safetensors.c ---- */
#define ENT(name, dt, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_safetensors_malformed(void) {
    char p[2048];
    lj_err err;
    st_file *f;
    write_bytes(tpath(p, "empty.safetensors"), "", 0);
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "empty.safetensors", "0 bytes");
    write_bytes(tpath(p, "short.safetensors"), "\x10\x00\x00", 3);
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "short.safetensors", "3 bytes");
    unsigned char past[8 + 10] = {0xe8, 0x03}; /* header length 1000, 10 bytes follow */
    write_bytes(tpath(p, "past.safetensors"), past, sizeof past);
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "past.safetensors", "runs past");
    CHECK(!strstr(err.msg, "1000"), "the header length (the file's first bytes) is echoed: %s", err.msg);
    /* a header cut short: length says 60, file holds 20 bytes of it */
    unsigned char cut[8 + 20] = {60};
    memcpy(cut + 8, "{\"w\":{\"dtype\":\"F32\",", 20);
    write_bytes(tpath(p, "cut.safetensors"), cut, sizeof cut);
    expect_err(__LINE__, st_open(p, &f, &err), &err, LORAJIT_E_FORMAT, "cut.safetensors", "runs past");
    expect_err(__LINE__, st_open(tpath(p, "absent.safetensors"), &f, &err), &err, LORAJIT_E_IO,
               "absent.safetensors", NULL);

    /* header length over the 16 MiB cap, inside a (lazily zeroed) buffer that large */
    size_t big = ((size_t)16 << 20) + 16;
    unsigned char *huge = calloc(1, big);
    uint64_t hl = ((size_t)16 << 20) + 1;
    for (int i = 0; i < 8; i++) huge[i] = (unsigned char)(hl >> (8 * i));
    expect_err(__LINE__, st_open_buffer(huge, big, "huge.safetensors", &f, &err), &err,
               LORAJIT_E_FORMAT, "huge.safetensors", "16 MiB");
    free(huge);

    static const struct {
        int line;
        const char *file, *header;
        size_t data_len;
        lorajit_status want;
        const char *n1, *n2;
    } bad[] = {
        {__LINE__, "badjson", "{\"w\":{\"dtype\":\"F32\"", 0, LORAJIT_E_FORMAT, "byte 27", NULL},
        {__LINE__, "array", "[1, 2, 3]", 0, LORAJIT_E_FORMAT, "not a JSON object", NULL},
        {__LINE__, "notobj", "{\"w.weight\": 5}", 0, LORAJIT_E_FORMAT, "w.weight", "not an object"},
        {__LINE__, "dtype", "{" ENT("w.d", "F99", "[1]", 0, 4) "}", 4, LORAJIT_E_FORMAT, "w.d", "F99"},
        {__LINE__, "dtype8", "{" ENT("w.8", "F8_E4M3", "[4]", 0, 4) "}", 4, LORAJIT_E_UNSUPPORTED, "w.8", NULL},
        {__LINE__, "nodtype", "{\"w.n\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LORAJIT_E_FORMAT,
         "w.n", "dtype"},
        {__LINE__, "size", "{" ENT("w.size", "F32", "[2,2]", 0, 8) "}", 16, LORAJIT_E_FORMAT, "w.size", "16 bytes"},
        {__LINE__, "ndim", "{" ENT("w.ndim", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, LORAJIT_E_FORMAT,
         "w.ndim", "9 dimensions"},
        {__LINE__, "neg", "{" ENT("w.neg", "F32", "[-1,4]", 0, 16) "}", 16, LORAJIT_E_FORMAT, "w.neg", "shape"},
        {__LINE__, "shapestr", "{" ENT("w.s", "F32", "3", 0, 12) "}", 12, LORAJIT_E_FORMAT, "w.s", "shape"},
        {__LINE__, "overflow", "{" ENT("w.big", "F32", "[4294967296,4294967296,16]", 0, 4) "}", 4,
         LORAJIT_E_FORMAT, "w.big", "overflows"},
        {__LINE__, "beginend", "{" ENT("w.be", "F32", "[1]", 8, 4) "}", 16, LORAJIT_E_FORMAT, "w.be", "begin 8"},
        {__LINE__, "range", "{" ENT("w.far", "F32", "[100]", 0, 400) "}", 16, LORAJIT_E_FORMAT, "w.far",
         "file byte"},
        {__LINE__, "offs", "{\"w.o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
         LORAJIT_E_FORMAT, "w.o", "data_offsets"},
        {__LINE__, "overlap", "{" ENT("a.first", "F32", "[2]", 0, 8) "," ENT("b.second", "F32", "[2]", 4, 12) "}",
         12, LORAJIT_E_FORMAT, "a.first", "b.second"},
        {__LINE__, "dup", "{" ENT("w.dup", "F32", "[1]", 0, 4) "," ENT("w.dup", "F32", "[1]", 4, 8) "}", 8,
         LORAJIT_E_FORMAT, "w.dup", "twice"},
        {__LINE__, "meta", "{\"__metadata__\": 7," ENT("w", "F32", "[1]", 0, 4) "}", 4, LORAJIT_E_FORMAT,
         "__metadata__", NULL},
        {__LINE__, "trail", "{" ENT("w", "F32", "[1]", 0, 4) "}xyz", 4, LORAJIT_E_FORMAT, "byte", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.safetensors", bad[i].file);
        write_st(tpath(p, name), bad[i].header, NULL, bad[i].data_len);
        lj_err_clear(&err);
        f = (st_file *)1;
        lorajit_status s = st_open(p, &f, &err);
        expect_err(bad[i].line, s, &err, bad[i].want, name, bad[i].n1);
        expect_err(bad[i].line, s, &err, bad[i].want, bad[i].n2, NULL);
        n_malformed--; /* one case, two checks */
        CHECK(f == NULL, "line %d: *out not NULL on failure", bad[i].line);
    }
}

/* F16 bit patterns and the f32 bits they must become (checked with Python's struct 'e'). */
static const uint16_t f16_in[11] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400,
                                    0x7c00, 0xfc00, 0x7e00, 0x8000, 0x8001};
static const uint32_t f16_out[11] = {0x3f800000, 0xc0000000, 0x477fe000, 0x33800000,
                                     0x387fc000, 0x38800000, 0x7f800000, 0xff800000,
                                     0x7fc00000, 0x80000000, 0xb3800000};
static const uint16_t bf16_in[5] = {0x3f80, 0xc049, 0x7f80, 0x0001, 0xff7f};
static const uint32_t f32_odd[3] = {0x3fc00000, 0xbe800000, 0x00000001};

/* A small mixed file: F16 [11] at 0, BF16 [5] at 22, I8 [1] at 32, F32 [3] at 33
 * (unaligned), F32 [2,2] at 48 (aligned when the data section is). */
#define MIXED_HEADER                                                                         \
    "{\"__metadata__\":{\"format\":\"pt\"}," ENT("h16", "F16", "[11]", 0, 22) "," ENT(      \
        "b16", "BF16", "[5]", 22, 32) "," ENT("i8", "I8", "[1]", 32, 33) "," ENT("odd", "F32", \
        "[3]", 33, 45) "," ENT("sq", "F32", "[2,2]", 48, 64) "}"

static void write_mixed(const char *path) {
    unsigned char data[64] = {0};
    memcpy(data, f16_in, sizeof f16_in);
    memcpy(data + 22, bf16_in, sizeof bf16_in);
    data[32] = 0x7f;
    memcpy(data + 33, f32_odd, sizeof f32_odd);
    float sq[4] = {1, 2, 3, 4};
    memcpy(data + 48, sq, sizeof sq);
    /* pad the header with spaces to a multiple of 8, as writers do */
    char header[1024];
    snprintf(header, sizeof header, "%s", MIXED_HEADER);
    while (strlen(header) % 8) strcat(header, " ");
    write_st(path, header, data, sizeof data);
}

/* 16-bit matrices: F16 [2,3] at 0, BF16 [2,2] at 13 (odd: must be widened), BF16
 * [1,2] at 22. */
static void write_mat16(const char *path) {
    unsigned char data[32] = {0};
    memcpy(data, f16_in, 12);
    memcpy(data + 13, bf16_in, 8);
    memcpy(data + 22, bf16_in, 4);
    char header[1024];
    snprintf(header, sizeof header, "%s",
             "{" ENT("h", "F16", "[2,3]", 0, 12) "," ENT("b_odd", "BF16", "[2,2]", 13, 21) ","
             ENT("b", "BF16", "[1,2]", 22, 26) "}");
    while (strlen(header) % 8) strcat(header, " ");
    write_st(path, header, data, sizeof data);
}

static void test_safetensors_valid(void) {
    lj_err err;
    st_file *f = NULL;
    CHECK(st_open(TINY "/model.safetensors", &f, &err) == LORAJIT_OK, "tiny: %s", err.msg);
    if (!f) return;
    CHECK(f->n_tensors == 21 && f->data_start == 2144 && f->size == 478560, "tiny n %d", f->n_tensors);
    for (int i = 1; i < f->n_tensors; i++)
        CHECK(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0, "sorted at %d", i);
    const st_tensor *k = st_find(f, "model.layers.0.self_attn.k_proj.weight");
    CHECK(k && k->dtype == ST_F32 && k->ndim == 2 && k->shape[0] == 32 && k->shape[1] == 64 &&
              k->begin == 254464 && k->end == 262656,
          "k_proj");
    if (k) {
        float v[32 * 64];
        CHECK(st_to_f32(f, k, v, &err) == LORAJIT_OK, "%s", err.msg);
        CHECK(bits_of(v[0]) == 0x3d8791f6 && bits_of(v[1]) == 0xbd73d654 && bits_of(v[2]) == 0xbe035880,
              "k_proj values %08x", bits_of(v[0]));
        CHECK(v[32 * 64 - 1] == 0.18644925951957703f, "k_proj last %g", v[32 * 64 - 1]);
    }
    const st_tensor *n = st_find(f, "model.norm.weight");
    CHECK(n && n->ndim == 1 && n->shape[0] == 64 && bits_of(((const float *)n->data)[0]) == 0x3f8b4315,
          "norm");
    CHECK(st_find(f, "lm_head.weight") == &f->tensors[0], "first");
    CHECK(st_find(f, "model.norm.weight.x") == NULL && st_find(f, "__metadata__") == NULL &&
              st_find(f, "") == NULL,
          "absent names");
    st_close(f);

    CHECK(!strcmp(st_dtype_name(ST_BF16), "BF16") && st_dtype_size(ST_BF16) == 2 &&
              st_dtype_size(ST_I64) == 8 && st_dtype_size(ST_BOOL) == 1,
          "dtype table");
    char p[2048];
    write_mixed(tpath(p, "mixed.safetensors"));
    CHECK(st_open(p, &f, &err) == LORAJIT_OK, "mixed: %s", err.msg);
    if (!f) return;
    float out[11];
    const st_tensor *t = st_find(f, "h16");
    CHECK(t && st_to_f32(f, t, out, &err) == LORAJIT_OK, "h16");
    for (int i = 0; i < 11; i++)
        CHECK(bits_of(out[i]) == f16_out[i], "f16 %04x -> %08x want %08x", f16_in[i], bits_of(out[i]),
              f16_out[i]);
    t = st_find(f, "b16");
    CHECK(t && st_to_f32(f, t, out, &err) == LORAJIT_OK, "b16");
    for (int i = 0; i < 5; i++)
        CHECK(bits_of(out[i]) == (uint32_t)bf16_in[i] << 16, "bf16 %04x -> %08x", bf16_in[i], bits_of(out[i]));
    t = st_find(f, "odd");
    CHECK(t && ((uintptr_t)t->data & 3) != 0, "odd is unaligned");
    CHECK(t && st_to_f32(f, t, out, &err) == LORAJIT_OK, "odd");
    for (int i = 0; i < 3; i++) CHECK(bits_of(out[i]) == f32_odd[i], "unaligned f32 %d", i);
    t = st_find(f, "i8");
    lorajit_status s = t ? st_to_f32(f, t, out, &err) : LORAJIT_E_NOT_FOUND;
    expect_err(__LINE__, s, &err, LORAJIT_E_UNSUPPORTED, "\"i8\"", "I8");
    st_close(f);

#ifdef __FLT16_MAX__
    /* Every half-precision value against the compiler's own conversion. */
    uint16_t *all = malloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    write_st(tpath(p, "all16.safetensors"), "{" ENT("all", "F16", "[65536]", 0, 131072) "}", all, 131072);
    float *conv = malloc(65536 * sizeof(float));
    CHECK(st_open(p, &f, &err) == LORAJIT_OK && st_to_f32(f, &f->tensors[0], conv, &err) == LORAJIT_OK,
          "all16: %s", err.msg);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        _Float16 h;
        memcpy(&h, &all[i], 2);
        float want = (float)h;
        if (want != want ? !(conv[i] != conv[i] && signbit(conv[i]) == signbit(want))
                         : bits_of(conv[i]) != bits_of(want))
            bad++;
    }
    CHECK(bad == 0, "%d half values convert wrongly", bad);
    st_close(f);
    free(conv);
    free(all);
#endif
}

/* ---- weights.c ---- */
static void add_weight(lj_layout *L, const char *name, int64_t rows, int64_t cols) {
    lj_weight_desc *d = &L->weights[L->n_weights++];
    d->name = strdup(name);
    d->rows = rows;
    d->cols = cols;
}

/* Every tensor of the tiny model, in the front end's order. Caller owns the result;
 * free with lj_layout_free(). */
static lj_layout *tiny_layout(void) {
    lj_layout *L = lj_layout_new();
    L->weights = calloc(32, sizeof *L->weights);
    add_weight(L, "model.embed_tokens.weight", 256, 64);
    for (int l = 0; l < 2; l++) {
        static const struct { const char *n; int64_t r, c; } w[] = {
            {"input_layernorm", 64, 0},     {"self_attn.q_proj", 64, 64},   {"self_attn.k_proj", 32, 64},
            {"self_attn.v_proj", 32, 64},   {"self_attn.o_proj", 64, 64},   {"post_attention_layernorm", 64, 0},
            {"mlp.gate_proj", 160, 64},     {"mlp.up_proj", 160, 64},       {"mlp.down_proj", 64, 160},
        };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, w[i].n);
            add_weight(L, name, w[i].r, w[i].c);
        }
    }
    add_weight(L, "model.norm.weight", 64, 0);
    add_weight(L, "lm_head.weight", 256, 64);
    return L;
}

/* Writes tensors [from, to) of src as one safetensors file; pad makes the header
 * length pad mod 8 (pad != 0 misaligns the F32 data). */
static void write_shard(const char *path, const st_file *src, int from, int to, int pad) {
    size_t cap = 16384, at = 0, off = 0;
    char *h = malloc(cap);
    at += (size_t)snprintf(h, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = from; i < to; i++) {
        const st_tensor *t = &src->tensors[i];
        size_t n = t->end - t->begin;
        at += (size_t)snprintf(h + at, cap - at, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld", t->name,
                               (long long)t->shape[0]);
        if (t->ndim == 2) at += (size_t)snprintf(h + at, cap - at, ",%lld", (long long)t->shape[1]);
        at += (size_t)snprintf(h + at, cap - at, "],\"data_offsets\":[%zu,%zu]}", off, off + n);
        off += n;
    }
    at += (size_t)snprintf(h + at, cap - at, "}");
    while (at % 8 != (size_t)pad) h[at++] = ' ';
    h[at] = 0;
    unsigned char *data = malloc(off ? off : 1);
    off = 0;
    for (int i = from; i < to; i++) {
        const st_tensor *t = &src->tensors[i];
        memcpy(data + off, t->data, t->end - t->begin);
        off += t->end - t->begin;
    }
    write_st(path, h, data, off);
    free(data);
    free(h);
}

/* Element k of weight i, which must be read as F32. */
static float fval(const lj_weights *w, int i, size_t k) {
    CHECK(w->dtype[i] == LJ_DTYPE_F32, "weight %d is F32", i);
    return ((const float *)w->data[i])[k];
}

static void test_weights(void) {
    lj_err err;
    lj_layout *L = tiny_layout();
    lj_weights *w = NULL, *ws = NULL;
    CHECK(lj_weights_open(TINY, L, &w, &err) == LORAJIT_OK, "tiny weights: %s", err.msg);
    if (!w) { lj_layout_free(L); return; }
    CHECK(w->n == 21 && w->n_files == 1, "n %d files %d", w->n, w->n_files);
    for (int i = 0; i < w->n; i++) CHECK(w->data[i] && !w->owned[i], "weight %d mapped", i);
    CHECK(bits_of(fval(w, 3, 0)) == 0x3d8791f6, "k_proj via weights");  /* layers.0.k_proj */
    CHECK(bits_of(fval(w, 20, 0)) == 0x3e0bc375, "lm_head via weights");

    /* Two shards written from C: the second misaligned, so its tensors are copied. */
    char dir[2048], p[4096], q[4096];
    tpath(dir, "sharded");
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    write_shard(p, w->files[0], 0, 10, 0);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    write_shard(p, w->files[0], 10, 21, 1);
    char *idx = malloc(16384);
    size_t at = (size_t)snprintf(idx, 16384, "{\"metadata\":{\"total_size\":476416},\"weight_map\":{");
    for (int i = 0; i < 21; i++)
        at += (size_t)snprintf(idx + at, 16384 - at, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"",
                               i ? "," : "", w->files[0]->tensors[i].name, i < 10 ? 1 : 2);
    snprintf(idx + at, 16384 - at, "}}");
    snprintf(q, sizeof q, "%s/model.safetensors.index.json", dir);
    write_text(q, idx);
    free(idx);
    CHECK(lj_weights_open(dir, L, &ws, &err) == LORAJIT_OK, "sharded: %s", err.msg);
    if (ws) {
        CHECK(ws->n_files == 2, "two shards");
        int owned = 0;
        for (int i = 0; i < ws->n; i++) {
            size_t n = (size_t)L->weights[i].rows * (size_t)(L->weights[i].cols ? L->weights[i].cols : 1);
            CHECK(memcmp(ws->data[i], w->data[i], n * 4) == 0, "shard weight %d differs", i);
            owned += ws->owned[i] != NULL;
        }
        CHECK(owned == 11, "misaligned shard converted: %d owned", owned);
    }
    lj_weights_free(ws);

    /* Index faults: a missing shard, names with '/' and '..', broken JSON, no weight_map. */
    static const struct { int line; const char *sub, *index, *n1; lorajit_status want; } bad[] = {
        {__LINE__, "ix_missing", "{\"weight_map\":{\"lm_head.weight\":\"gone-00003.safetensors\"}}",
         "gone-00003.safetensors", LORAJIT_E_IO},
        {__LINE__, "ix_slash", "{\"weight_map\":{\"lm_head.weight\":\"sub/x.safetensors\"}}",
         "sub/x.safetensors", LORAJIT_E_FORMAT},
        {__LINE__, "ix_dots", "{\"weight_map\":{\"lm_head.weight\":\"..\"}}", "\"..\"", LORAJIT_E_FORMAT},
        {__LINE__, "ix_json", "{\"weight_map\":{\"lm_head.weight\" \"a\"}}", "byte 32", LORAJIT_E_FORMAT},
        {__LINE__, "ix_nomap", "{\"metadata\":{}}", "weight_map", LORAJIT_E_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tpath(dir, bad[i].sub);
        mkdir(dir, 0755);
        snprintf(q, sizeof q, "%s/model.safetensors.index.json", dir);
        write_text(q, bad[i].index);
        lj_weights *x = (lj_weights *)1;
        lj_err_clear(&err);
        lorajit_status s = lj_weights_open(dir, L, &x, &err);
        expect_err(bad[i].line, s, &err, bad[i].want, "model.safetensors.index.json", bad[i].n1);
        CHECK(x == NULL, "line %d: *out not NULL", bad[i].line);
    }

    /* Layout faults against the tiny model: a missing tensor, a wrong shape. */
    lj_layout *L2 = tiny_layout();
    add_weight(L2, "model.layers.2.self_attn.q_proj.weight", 64, 64);
    lj_weights *x = (lj_weights *)1;
    expect_err(__LINE__, lj_weights_open(TINY, L2, &x, &err), &err, LORAJIT_E_NOT_FOUND,
               "model.layers.2.self_attn.q_proj.weight", "llama-tiny/model.safetensors");
    CHECK(x == NULL, "missing: *out");
    tpath(dir, "sharded");
    expect_err(__LINE__, lj_weights_open(dir, L2, &x, &err), &err, LORAJIT_E_NOT_FOUND,
               "model.layers.2.self_attn.q_proj.weight", "model-00002-of-00002.safetensors");
    L2->weights[3].cols = 32; /* k_proj [32, 64] asked as [32, 32] */
    expect_err(__LINE__, lj_weights_open(TINY, L2, &x, &err), &err, LORAJIT_E_SHAPE,
               "model.layers.0.self_attn.k_proj.weight", "expected shape [32, 32], got [32, 64]");
    L2->weights[3].cols = 0; /* asked as 1-D */
    expect_err(__LINE__, lj_weights_open(TINY, L2, &x, &err), &err, LORAJIT_E_SHAPE,
               "expected shape [32], got [32, 64]", NULL);
    lj_layout_free(L2);
    tpath(dir, "empty_model");
    mkdir(dir, 0755);
    expect_err(__LINE__, lj_weights_open(dir, L, &x, &err), &err, LORAJIT_E_IO,
               "empty_model/model.safetensors", NULL);

    /* Mixed dtypes: F16/BF16/unaligned F32 are converted, aligned F32 is mapped, I8 refused. */
    tpath(dir, "mixed_model");
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_mixed(p);
    lj_layout *L3 = lj_layout_new();
    L3->weights = calloc(8, sizeof *L3->weights);
    add_weight(L3, "h16", 11, 0);
    add_weight(L3, "b16", 5, 0);
    add_weight(L3, "odd", 3, 0);
    add_weight(L3, "sq", 2, 2);
    CHECK(lj_weights_open(dir, L3, &x, &err) == LORAJIT_OK, "mixed: %s", err.msg);
    if (x) {
        CHECK(x->owned[0] && x->owned[1] && x->owned[2] && !x->owned[3], "owned flags");
        CHECK(bits_of(fval(x, 0, 4)) == 0x387fc000 && bits_of(fval(x, 1, 1)) == 0xc0490000 &&
                  bits_of(fval(x, 2, 2)) == 1 && fval(x, 3, 3) == 4.0f,
              "mixed values");
        for (int i = 0; i < 4; i++) CHECK(x->dtype[i] == LJ_DTYPE_F32, "1-D and F32 tensors are read as F32");
        lj_weights_free(x);
    }
    /* Code compiled for 16-bit matrices reads them from the mapping when 2-byte
     * aligned, from an aligned 16-bit copy otherwise; f32 code gets them widened;
     * 16-bit code refuses another dtype by name. */
    char m16[2048];
    snprintf(m16, sizeof m16, "%s/mat16", tmp_root);
    mkdir(m16, 0755);
    snprintf(q, sizeof q, "%s/model.safetensors", m16);
    write_mat16(q);
    lj_layout *L4 = lj_layout_new();
    L4->weights = calloc(4, sizeof *L4->weights);
    add_weight(L4, "h", 2, 3);
    add_weight(L4, "b_odd", 2, 2);
    add_weight(L4, "b", 1, 2);
    L4->weights[0].dtype = LJ_DTYPE_F16;
    L4->weights[1].dtype = LJ_DTYPE_BF16;
    lj_weights *m = NULL;
    CHECK(lj_weights_open(m16, L4, &m, &err) == LORAJIT_OK, "mat16: %s", err.msg);
    if (m) {
        CHECK(m->dtype[0] == LJ_DTYPE_F16 && !m->owned[0] && m->dtype[1] == LJ_DTYPE_BF16 && m->owned[1] &&
                  m->dtype[2] == LJ_DTYPE_F32 && m->owned[2],
              "mat16 dtypes %d %d %d", m->dtype[0], m->dtype[1], m->dtype[2]);
        const uint16_t *h = m->data[0], *bo = m->data[1];
        CHECK(h[5] == f16_in[5] && bo[3] == bf16_in[3] && (uintptr_t)bo % 2 == 0, "mat16 16-bit reads");
        CHECK(bits_of(fval(m, 2, 1)) == (uint32_t)bf16_in[1] << 16, "mat16 BF16 widened for f32 code");
        lj_weights_free(m);
    }
    lj_weight_desc probe[3] = {{"h", 2, 3, 0}, {"b_odd", 2, 2, 0}, {"b", 1, 2, 0}};
    CHECK(lj_weights_probe(m16, probe, 3, &err) == LORAJIT_OK && probe[0].dtype == LJ_DTYPE_F16 &&
              probe[1].dtype == LJ_DTYPE_BF16 && probe[2].dtype == LJ_DTYPE_BF16,
          "probe: %d %d %d", probe[0].dtype, probe[1].dtype, probe[2].dtype);
    probe[2].cols = 0; /* asked as 1-D: a shape error, found before any code is made */
    expect_err(__LINE__, lj_weights_probe(m16, probe, 3, &err), &err, LORAJIT_E_SHAPE, "\"b\"", "[1]");
    probe[2].name = "nope"; /* missing: named, and counted */
    expect_err(__LINE__, lj_weights_probe(m16, probe, 3, &err), &err, LORAJIT_E_NOT_FOUND, "\"nope\"",
               "1 of the 3 tensors");
    CHECK(lj_weights_probe(tmp_root, probe, 3, &err) == LORAJIT_OK && probe[0].dtype == LJ_DTYPE_F32,
          "probe of a folder without weights: all F32");
    L4->weights[2].dtype = LJ_DTYPE_F16; /* the file holds BF16 */
    expect_err(__LINE__, lj_weights_open(m16, L4, &m, &err), &err, LORAJIT_E_SHAPE, "\"b\"",
               "compiled for F16 weights, the file holds BF16");
    lj_layout_free(L4);
    add_weight(L3, "i8", 1, 0);
    expect_err(__LINE__, lj_weights_open(dir, L3, &x, &err), &err, LORAJIT_E_UNSUPPORTED, "\"i8\"", "I8");
    lj_layout_free(L3);

    /* Allocation failure at every lj_malloc/lj_calloc: fails cleanly, then succeeds. */
    tpath(dir, "sharded");
    int k, fails = 0;
    for (k = 1; k < 1000; k++) {
        lj_alloc_fail_after(k);
        lorajit_status s = lj_weights_open(dir, L, &ws, &err);
        if (s == LORAJIT_OK) break;
        fails += s == LORAJIT_E_NOMEM && ws == NULL;
    }
    lj_alloc_fail_after(0);
    CHECK(k > 1 && fails == k - 1 && ws, "alloc sweep: %d of %d failures were clean", fails, k - 1);
    lj_weights_free(ws);
    lj_weights_free(w);
    lj_layout_free(L);
}

int main(int argc, char **argv) {
    if (fixture_tmp_setup(argc, argv, "rt_safetensors") != 0) return 2;
    test_safetensors_malformed();
    test_safetensors_valid();
    test_weights();
    CHECK(n_malformed >= 20, "only %d malformed-input cases", n_malformed);
    printf("malformed-input cases: %d\n", n_malformed);
    return check_summary("rt_safetensors");
}
