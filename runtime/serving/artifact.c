/* artifact.c — lorajit_engine_open_artifact: an engine from a compiled artifact,
 * without LLVM. In order: read and verify manifest.json (its SHA-256 seal, ABI
 * version, fields; every size recomputed from its config and schema) -> the model's
 * config.json must agree with the compiled config -> run-time options must agree
 * with the compiled schema -> this CPU must have the compiled features -> before
 * loading the library: its SHA-256, and its ELF exports (entry points, ABI version,
 * code hash, scratch sizes, layout digest) against the manifest -> dlopen (RTLD_NOW |
 * RTLD_LOCAL; this runs the library's code: only trusted artifacts may be served)
 * and the same constants once loaded -> lj_engine_start, which binds the weights by
 * name and shape, as the JIT path does. Each refusal names the file, field, tensor
 * or CPU feature. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serving.h"

/* ---- CPU features ---- */

int lj_cpu_has(const char *f) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
#define LJ_FEATURE(name) \
    if (strcmp(f, name) == 0) return __builtin_cpu_supports(name) ? 1 : 0;
    LJ_FEATURE("sse3") LJ_FEATURE("ssse3") LJ_FEATURE("sse4.1") LJ_FEATURE("sse4.2") LJ_FEATURE("popcnt")
    LJ_FEATURE("avx") LJ_FEATURE("avx2") LJ_FEATURE("fma") LJ_FEATURE("bmi") LJ_FEATURE("bmi2")
    LJ_FEATURE("avx512f") LJ_FEATURE("avx512bw") LJ_FEATURE("avx512dq") LJ_FEATURE("avx512vl")
    LJ_FEATURE("avx512cd") LJ_FEATURE("avx512bf16") LJ_FEATURE("avx512vnni") LJ_FEATURE("avx512vbmi")
    LJ_FEATURE("avx512vbmi2") LJ_FEATURE("avx512ifma") LJ_FEATURE("avx512bitalg")
    LJ_FEATURE("avx512vpopcntdq") LJ_FEATURE("avx512vp2intersect") LJ_FEATURE("sse4a") LJ_FEATURE("fma4")
    LJ_FEATURE("xop") LJ_FEATURE("aes") LJ_FEATURE("pclmul") LJ_FEATURE("gfni") LJ_FEATURE("vpclmulqdq")
#if !defined(__clang__) /* names GCC 12 knows and clang 14 does not */
    LJ_FEATURE("f16c") LJ_FEATURE("lzcnt") LJ_FEATURE("movbe") LJ_FEATURE("avxvnni")
    LJ_FEATURE("avx512fp16") LJ_FEATURE("amx-tile") LJ_FEATURE("amx-bf16") LJ_FEATURE("amx-int8")
    LJ_FEATURE("x86-64-v2") LJ_FEATURE("x86-64-v3") LJ_FEATURE("x86-64-v4")
#endif
#undef LJ_FEATURE
#endif
    (void)f;
    return -1;
}

/* The architecture this runtime was built for, as a triple starts. */
static const char *host_arch(void) {
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "unknown";
#endif
}

/* Refuses an artifact for another architecture, or one whose features (or x86-64
 * level) this CPU lacks; every missing feature is named. */
static lorajit_status check_cpu(const lj_manifest *m, const char *dir, lj_err *err) {
    const char *arch = host_arch();
    size_t n = strlen(arch);
    if (strncmp(m->triple, arch, n) != 0 || m->triple[n] != '-')
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "artifact %s was compiled for %s; this runtime runs on %s", dir,
                       m->triple, arch);
    char missing[512] = "";
    size_t at = 0;
    int n_missing = 0;
    if (lj_cpu_has(m->cpu) == 0) /* an x86-64 level name */
        at += (size_t)snprintf(missing, sizeof missing, "%s", m->cpu), n_missing++;
    for (const char *p = m->features; *p;) {
        size_t len = strcspn(p, ",");
        char name[64];
        if (p[0] == '+' && len - 1 < sizeof name) {
            memcpy(name, p + 1, len - 1);
            name[len - 1] = '\0';
            if (lj_cpu_has(name) == 0 && at < sizeof missing) {
                at += (size_t)snprintf(missing + at, sizeof missing - at, "%s%s", n_missing ? ", " : "", name);
                n_missing++;
            }
        }
        p += len;
        if (*p == ',') p++;
    }
    if (n_missing)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "artifact %s was compiled for CPU %s; this CPU lacks %s %s "
                       "(compile an artifact for it: lorajit compile --target-cpu native, or an older level such "
                       "as x86-64-v2)", dir, m->cpu, n_missing > 1 ? "the features" : "the feature", missing);
    return LORAJIT_OK;
}

/* ---- options ---- */

/* One schema field: the option's value (0: not given) against the compiled one. */
static lorajit_status same(const char *field, int64_t given, int64_t compiled, const char *dir, lj_err *err) {
    if (given == 0 || given == compiled) return LORAJIT_OK;
    return lj_fail(err, LORAJIT_E_ARG, "options.%s is %lld, but artifact %s was compiled with %lld (the schema is "
                   "fixed when the artifact is compiled)", field, (long long)given, dir, (long long)compiled);
}

/* One dtype field (kv_dtype, lora_dtype): the dtype the options ask for against the
 * compiled one. */
static lorajit_status same_dtype(const char *field, int given, int compiled, const char *dir, lj_err *err) {
    if (given == compiled) return LORAJIT_OK;
    return lj_fail(err, LORAJIT_E_ARG, "options.%s: the options ask for \"%s\" (options.%s, else the schema file's, "
                   "else f32), but artifact %s was compiled with \"%s\" (the schema is fixed when the artifact is "
                   "compiled)", field, lj_kv_dtype_name(given), field, dir, lj_kv_dtype_name(compiled));
}

/* opts (may be NULL) must agree with the compiled schema: its numeric fields when
 * set, and with schema_path or targets, the whole schema they resolve to. */
static lorajit_status check_options(const lorajit_options *o, const lj_layout *L, const char *dir, lj_err *err) {
    if (!o) return LORAJIT_OK;
    const lj_schema *c = &L->schema;
    lorajit_status s;
    if (o->schema_path || o->targets) {
        lj_schema r;
        if ((s = lj_schema_resolve(o, &L->cfg, &r, err))) return s;
        if (r.target_mask != c->target_mask)
            return lj_fail(err, LORAJIT_E_ARG, "the target modules of the options differ from those artifact %s "
                           "was compiled with (the schema is fixed when the artifact is compiled)", dir);
        if ((s = same("max_rank", r.r_max, c->r_max, dir, err)) ||
            (s = same("max_adapters", r.n_slots, c->n_slots, dir, err)) ||
            (s = same("max_tokens", r.max_tokens, c->max_tokens, dir, err)) ||
            (s = same("max_seq_len", r.seq_len, c->seq_len, dir, err)) ||
            (s = same("max_batch", r.max_batch, c->max_batch, dir, err)))
            return s;
        if ((s = same_dtype("kv_dtype", r.kv_dtype, c->kv_dtype, dir, err)) ||
            (s = same_dtype("lora_dtype", r.lora_dtype, c->lora_dtype, dir, err)))
            return s;
    }
    int kv = c->kv_dtype, lora = c->lora_dtype; /* an option not given asks for the compiled dtype */
    if ((s = lj_dtype_option("kv_dtype", o->kv_dtype, &kv, err)) ||
        (s = lj_dtype_option("lora_dtype", o->lora_dtype, &lora, err)) ||
        (s = same_dtype("kv_dtype", kv, c->kv_dtype, dir, err)) ||
        (s = same_dtype("lora_dtype", lora, c->lora_dtype, dir, err)))
        return s;
    if ((s = same("max_rank", o->max_rank, c->r_max, dir, err)) ||
        (s = same("max_adapters", o->max_adapters, c->n_slots, dir, err)) ||
        (s = same("max_tokens", o->max_tokens, c->max_tokens, dir, err)) ||
        (s = same("max_seq_len", o->max_seq_len, c->seq_len, dir, err)) ||
        (s = same("max_batch", o->max_batch, c->max_batch, dir, err)))
        return s;
    return LORAJIT_OK;
}

/* The paged KV cache's block size and budget (not compiled in): those of the schema
 * file when opts names one, then opts' own fields. */
static lorajit_status kv_options(const lorajit_options *o, lj_layout *L, lj_err *err) {
    if (!o) return LORAJIT_OK;
    lorajit_status s;
    if (o->schema_path) {
        lj_schema r;
        if ((s = lj_schema_resolve(o, &L->cfg, &r, err))) return s;
        L->schema.kv_block_size = r.kv_block_size;
        L->schema.kv_cache_mb = r.kv_cache_mb;
        return LORAJIT_OK; /* r applied opts' fields already */
    }
    return lj_schema_kv(o, &L->schema, err);
}

/* ---- the library ---- */

static void release_library(void *handle) {
    if (handle) dlclose(handle);
}

/* Reads the library's bytes from fd (size bytes); checks its SHA-256 and its ELF
 * exports (entry points, ABI version, code identity, the scratch sizes and layout it
 * was compiled for) against the manifest, all before anything in it runs. */
static lorajit_status check_library_file(const char *dir, const char *path, int fd, size_t size,
                                         const lj_manifest *m, lj_err *err) {
    char *data = NULL, hex[LJ_SHA256_HEX];
    size_t len;
    lj_library_consts k;
    uint8_t want[LJ_SHA256_BYTES];
    const lj_layout *L = m->L;
    lorajit_status s = lj_read_fd(fd, size, path, &data, &len, err);
    if (s) return s;
    if (!lj_sha256_hex(data, len, hex)) s = lj_fail(err, LORAJIT_E_NOMEM, "%s: cannot compute its SHA-256", path);
    else if (strcmp(hex, m->library_sha256) != 0)
        s = lj_fail(err, LORAJIT_E_FORMAT, "%s: the file does not match the manifest's \"library_sha256\" (it "
                    "was replaced or is corrupt; compile the artifact again)", path);
    if (!s) s = lj_library_consts_read(data, len, path, &k, err);
    free(data);
    if (!s) s = lj_layout_digest(L, want, err);
    if (s) return s;
    if (k.abi != LJ_ABI_VERSION)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "%s: ABI version %d; this runtime reads version %d", path,
                       (int)k.abi, LJ_ABI_VERSION);
    if (k.code_hash != m->code_hash)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: its %s is not the manifest's \"code_hash\"", path,
                       LJ_CODE_HASH_SYMBOL);
    bool per = k.scratch_per_token != L->scratch_per_token;
    if (per || k.scratch_fixed != L->scratch_fixed)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s/" LJ_ARTIFACT_MANIFEST ": field \"scratch_floats.%s\" is %lld, but "
                       "the library was compiled for %lld (the manifest was forged or belongs to another library)", dir,
                       per ? "per_token" : "fixed", (long long)(per ? L->scratch_per_token : L->scratch_fixed),
                       (long long)(per ? k.scratch_per_token : k.scratch_fixed));
    if (memcmp(k.layout_sha256, want, sizeof want) != 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s/" LJ_ARTIFACT_MANIFEST ": the layout (config, schema, weights, "
                       "lora_sites, scratch_floats) differs from the one %s was compiled for (%s): the manifest was "
                       "forged or belongs to another library", dir, path, LJ_LAYOUT_DIGEST_SYMBOL);
    return LORAJIT_OK;
}

/* Checks the library file (check_library_file), then opens it and finds its
 * symbols. Fills code (forward, decode, rows_exact, owner = the dlopen handle,
 * release = dlclose). dlopen runs the library's constructors: only trusted artifacts. The
 * file checked is the file loaded: dlopen reads it through the same descriptor
 * (/proc/self/fd/N), so renaming another file over the path in between changes
 * nothing. */
static lorajit_status load_library(const char *dir, const lj_manifest *m, lj_code *code, lj_err *err) {
    char path[4096], by_fd[64];
    int fd = -1;
    size_t size = 0;
    lorajit_status s = lj_path_join(path, sizeof path, dir, LJ_ARTIFACT_LIBRARY, err);
    if (!s) s = lj_open_regular(path, &fd, &size, err);
    if (!s) s = check_library_file(dir, path, fd, size, m, err);
    if (s) {
        if (fd >= 0) close(fd);
        return s;
    }
    snprintf(by_fd, sizeof by_fd, "/proc/self/fd/%d", fd);
    void *lib = dlopen(by_fd, RTLD_NOW | RTLD_LOCAL);
    close(fd);
    if (!lib) {
        const char *why = dlerror();
        return lj_fail(err, LORAJIT_E_IO, "%s: cannot load: %s", path, why ? why : "dlopen failed");
    }
    code->owner = lib; /* from here on code_release closes it */
    code->release = release_library;
    const int32_t *abi = dlsym(lib, LJ_ABI_SYMBOL);
    const uint64_t *code_hash = dlsym(lib, LJ_CODE_HASH_SYMBOL);
    const int64_t *per_token = dlsym(lib, LJ_SCRATCH_PER_TOKEN_SYMBOL), *fixed = dlsym(lib, LJ_SCRATCH_FIXED_SYMBOL);
    code->forward = (lj_forward_fn)(uintptr_t)dlsym(lib, LJ_FORWARD_SYMBOL);
    code->decode = (lj_decode_fn)(uintptr_t)dlsym(lib, LJ_DECODE_SYMBOL);
    const int32_t *rows_exact = dlsym(lib, LJ_ROWS_EXACT_SYMBOL); /* optional: older artifacts lack it */
    code->rows_exact = rows_exact && *rows_exact == 1;
    if (!abi || !code_hash || !per_token || !fixed || !code->forward || !code->decode)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: a symbol is missing once loaded (want %s, %s, %s, %s)", path,
                       LJ_ABI_SYMBOL, LJ_CODE_HASH_SYMBOL, LJ_FORWARD_SYMBOL, LJ_DECODE_SYMBOL);
    /* the loaded code is the file checked above (not another one loaded earlier from this path) */
    if (*abi != LJ_ABI_VERSION || *code_hash != m->code_hash || *per_token != m->L->scratch_per_token ||
        *fixed != m->L->scratch_fixed)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: the loaded code is not the manifest's (lj_code_hash or the "
                       "scratch sizes differ; another library of this path was already loaded by this process?)", path);
    return LORAJIT_OK;
}

/* Reads model.ir (for lorajit_engine_print_ir) and checks it against ir_sha256. */
static lorajit_status load_ir_text(const char *dir, const lj_manifest *m, lj_code *code, lj_err *err) {
    char path[4096], hex[LJ_SHA256_HEX];
    size_t len;
    lorajit_status s = lj_path_join(path, sizeof path, dir, LJ_ARTIFACT_IR, err);
    if (!s) s = lj_read_file(path, &code->ir_text, &len, err);
    if (s) return s;
    if (!lj_sha256_hex(code->ir_text, len, hex) || strcmp(hex, m->ir_sha256) != 0)
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: the file does not match the manifest's \"ir_sha256\"", path);
    return LORAJIT_OK;
}

lorajit_status lorajit_engine_open_artifact(lorajit_engine **out, const char *artifact_dir, const char *model_dir,
                                            const lorajit_options *opts) {
    if (!out) return LORAJIT_E_ARG;
    lorajit_engine *e = *out = lj_engine_alloc();
    if (!e) return LORAJIT_E_NOMEM;
    lj_err *err = lj_engine_err(e);
    if (!artifact_dir || !model_dir)
        return lj_fail(err, LORAJIT_E_ARG, "lorajit_engine_open_artifact: artifact_dir or model_dir is NULL");
    if (lj_engine_threads(e, opts)) return LORAJIT_E_ARG; /* the message is on e */
    lj_manifest m;
    lj_config cfg;
    lj_code code = {0};
    char path[4096];
    lorajit_status s = lj_manifest_read(artifact_dir, &m, err);          /* hash, ABI, fields */
    if (!s) s = lj_path_join(path, sizeof path, artifact_dir, LJ_ARTIFACT_MANIFEST, err);
    if (!s) s = lj_manifest_check_sizes(m.L, path, err);                 /* sizes from config + schema */
    if (!s) s = lj_path_join(path, sizeof path, model_dir, "config.json", err);
    if (!s) s = lj_config_read(path, &cfg, err);
    if (!s) s = lj_config_compare(&m.L->cfg, &cfg, path, artifact_dir, err); /* the same model */
    if (!s) s = check_options(opts, m.L, artifact_dir, err);                 /* the same schema */
    if (!s) s = kv_options(opts, m.L, err);                                  /* the KV cache: not compiled in */
    if (!s) s = check_cpu(&m, artifact_dir, err);                             /* the features it needs */
    if (!s) s = load_library(artifact_dir, &m, &code, err);
    if (!s) s = load_ir_text(artifact_dir, &m, &code, err);
    if (s) {
        if (code.release) code.release(code.owner);
        free(code.ir_text);
        lj_manifest_clear(&m);
        return s;
    }
    lj_layout *L = m.L;
    m.L = NULL;
    lj_manifest_clear(&m);
    return lj_engine_start(e, model_dir, L, code); /* ownership of L, code -> engine */
}
