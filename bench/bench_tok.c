/* bench_tok.c — section 7 of `lorajit bench`: the tokenizer against Hugging Face
 * tokenizers (the Rust core through its Node binding), in the same run, on the same
 * files and the same text.
 *
 * Inputs: TinyLlama's tokenizer.json (SentencePiece-style BPE with byte fallback) and
 * Qwen3's (byte-level BPE, 151k tokens, 11 MiB) from tests/tokenizer/ (xz, unpacked
 * under work/tok once), and a text: the 1073 texts of tests/tokenizer/expected/
 * qwen3.json.xz joined by newlines (licences, Python sources, locale files in many
 * scripts, edge cases; ~190 kB). Measures, one thread each: load (lorajit_tokenizer_open
 * of the tokenizer.json against Tokenizer.fromFile) and encode of the whole text without
 * special tokens (MB/s of UTF-8 text). HF runs as `node tests/tokenizer/bench_hf.js`
 * with RAYON_NUM_THREADS=1; without node or the npm package its figures read
 * "unavailable: why" and nothing is made up. Both sides hash their ids (FNV-1a 32), so
 * the report also says whether the two encodes agree. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"

#ifndef LORAJIT_SOURCE_DIR
#define LORAJIT_SOURCE_DIR "."
#endif

static const struct {
    const char *name, *what;
} families[BENCH_TOK_FAMILIES] = {
    {"tinyllama", "TinyLlama: SentencePiece-style BPE, byte fallback"},
    {"qwen3", "Qwen3: byte-level BPE, NFC + regex Split"},
};

/* Whether dst exists and is not older than src. */
static bool fresh(const char *dst, const char *src) {
    struct stat d, s;
    return stat(dst, &d) == 0 && d.st_size > 0 && stat(src, &s) == 0 && d.st_mtime >= s.st_mtime;
}

/* xz -dc src > dst, unless dst is fresh. */
static void unpack(const char *src, const char *dst) {
    if (fresh(dst, src)) return;
    char tmp[PATH_MAX + 8];
    bench_fmt(tmp, sizeof tmp, "%s.part", dst);
    FILE *f = fopen(tmp, "wb");
    if (!f) bench_die("cannot write %s", tmp);
    const char *const argv[] = {"xz", "-dc", src, NULL};
    int rc = bench_run(argv, NULL, NULL, fileno(f), NULL);
    if (fclose(f) != 0 || rc != 0) bench_die("xz -dc %s failed (exit %d; is xz-utils installed?)", src, rc);
    if (rename(tmp, dst) != 0) bench_die("cannot rename %s", tmp);
}

/* work/tok/text.txt: the texts of expected/qwen3.json joined by '\n'. */
static void make_text(const char *dir, char *path, size_t cap) {
    const char *src = LORAJIT_SOURCE_DIR "/tests/tokenizer/expected/qwen3.json.xz";
    bench_fmt(path, cap, "%s/text.txt", dir);
    if (fresh(path, src)) return;
    char json[PATH_MAX + 32];
    bench_fmt(json, sizeof json, "%s/expected_qwen3.json", dir);
    unpack(src, json);
    char *s = bench_read_file(json, NULL);
    cJSON *j = cJSON_Parse(s), *c;
    free(s);
    const cJSON *cases = cJSON_GetObjectItem(j, "cases");
    if (!cJSON_IsArray(cases)) bench_die("%s: no \"cases\" list", json);
    char tmp[PATH_MAX + 8];
    bench_fmt(tmp, sizeof tmp, "%s.part", path);
    FILE *f = fopen(tmp, "wb");
    bool first = true;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *t = cJSON_GetObjectItem(c, "text");
        if (!f || !cJSON_IsString(t)) bench_die("%s: a case without text", json);
        if (!first) fputc('\n', f);
        fputs(t->valuestring, f);
        first = false;
    }
    if (!f || fclose(f) != 0 || rename(tmp, path) != 0) bench_die("cannot write %s", path);
    cJSON_Delete(j);
}

typedef struct tok_arg {
    const char *file;      /* tokenizer.json */
    lorajit_tokenizer *t;  /* the one encode uses */
    lorajit_tokenizer *tl; /* the one load makes */
    const char *text;
    size_t len;
    int32_t *ids;
    int n_ids;
} tok_arg;

/* lorajit_tokenizer_open(t, file), dying with its message when it fails. */
static void open_or_die(lorajit_tokenizer **t, const char *file) {
    if (lorajit_tokenizer_open(t, file) != LORAJIT_OK) bench_die("%s", lorajit_tokenizer_errmsg(*t));
}
/* bench_job runs: open, free, encode of the whole text. */
static void load_once(void *p) {
    tok_arg *a = p;
    open_or_die(&a->tl, a->file);
}
static void load_undo(void *p) {
    tok_arg *a = p;
    lorajit_tokenizer_free(a->tl);
    a->tl = NULL;
}
static void encode_once(void *p) {
    tok_arg *a = p;
    lorajit_free(a->ids);
    if (lorajit_tokenizer_encode(a->t, a->text, a->len, 0, &a->ids, &a->n_ids) != LORAJIT_OK)
        bench_die("encode: %s", lorajit_tokenizer_errmsg(a->t));
}

/* FNV-1a 32 over the ids, as bench_hf.js computes it. */
static unsigned fnv(const int32_t *ids, int n) {
    uint32_t h = 0x811c9dc5u;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)ids[i]) * 16777619u;
    return h;
}

/* Runs bench_hf.js on row's files; false (and r->tok.hf_reason) when HF is unavailable. */
static bool run_hf(bench_tok_result *r, bench_tok_row *row, const char *dir, const char *file, const char *text,
                   const char *node, const char *node_path, int loads, int reps) {
    char out[PATH_MAX + 32], err[PATH_MAX + 32], nl[16], nr[16], np[PATH_MAX + 16];
    bench_fmt(out, sizeof out, "%s/hf_%s.json", dir, row->name);
    bench_fmt(err, sizeof err, "%s/hf_%s.err", dir, row->name);
    bench_fmt(nl, sizeof nl, "%d", loads);
    bench_fmt(nr, sizeof nr, "%d", reps);
    bench_fmt(np, sizeof np, "NODE_PATH=%s", node_path ? node_path : "");
    const char *const argv[] = {node, LORAJIT_SOURCE_DIR "/tests/tokenizer/bench_hf.js", file, text,
                                "--loads", nl, "--reps", nr, "--json", NULL};
    const char *const env[] = {"RAYON_NUM_THREADS=1", node_path ? np : NULL, NULL};
    FILE *f = fopen(out, "wb");
    if (!f) bench_die("cannot write %s", out);
    int rc = bench_run(argv, NULL, env, fileno(f), err);
    fclose(f);
    if (rc < 0) {
        bench_fmt(r->hf_reason, sizeof r->hf_reason, "cannot run %s (no Node.js; --node PATH)", node);
        return false;
    }
    char *s = bench_read_file(out, NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    const cJSON *why = cJSON_GetObjectItem(j, "reason"), *v = cJSON_GetObjectItem(j, "version");
    if (rc != 0 || !cJSON_IsTrue(cJSON_GetObjectItem(j, "available"))) {
        if (cJSON_IsString(why))
            bench_fmt(r->hf_reason, sizeof r->hf_reason, "%.160s; --node-path DIR or NODE_PATH", why->valuestring);
        else
            bench_fmt(r->hf_reason, sizeof r->hf_reason, "%s bench_hf.js failed (exit %d): see %.150s", node, rc, err);
        cJSON_Delete(j);
        return false;
    }
    bench_fmt(r->hf_version, sizeof r->hf_version, "%.24s", cJSON_IsString(v) ? v->valuestring : "?");
    row->hf_load = bench_stat_from_json(cJSON_GetObjectItem(j, "load_ms"));
    row->hf_encode = bench_stat_from_json(cJSON_GetObjectItem(j, "encode_ms"));
    const cJSON *ids = cJSON_GetObjectItem(j, "ids"), *h = cJSON_GetObjectItem(j, "ids_fnv");
    row->hf_ids = cJSON_IsNumber(ids) ? ids->valueint : -1;
    row->hf_fnv = cJSON_IsNumber(h) ? (unsigned)h->valuedouble : 0;
    cJSON_Delete(j);
    if (!row->hf_load.reps || !row->hf_encode.reps) {
        bench_fmt(r->hf_reason, sizeof r->hf_reason, "bench_hf.js printed no figures (see %.150s)", out);
        return false;
    }
    return true;
}

void bench_tok(bench_result *r, const char *work, const char *node, const char *node_path) {
    bench_tok_result *k = &r->tok;
    char dir[PATH_MAX + 8], text_path[PATH_MAX + 32];
    bench_fmt(dir, sizeof dir, "%s/tok", work);
    bench_mkdirs(dir);
    make_text(dir, text_path, sizeof text_path);
    size_t len;
    char *text = bench_read_file(text_path, &len);
    k->text_bytes = (double)len;
    int loads = r->quick ? 3 : 7, reps = r->quick ? 3 : 7, hf_loads = r->quick ? 1 : 5, hf_reps = r->quick ? 2 : 5;
    if (!node) node = "node";
    bench_fmt(k->node, sizeof k->node, "%.60s", node);
    k->hf_ok = true;
    for (int i = 0; i < BENCH_TOK_FAMILIES; i++) {
        bench_tok_row *row = &k->rows[i];
        *row = (bench_tok_row){.name = families[i].name, .what = families[i].what};
        bench_progress("tokenizer: %s, lorajit and HF tokenizers (load, encode of %zu bytes)", row->name, len);
        char sub[PATH_MAX + 32], file[PATH_MAX + 64], src[PATH_MAX];
        bench_fmt(sub, sizeof sub, "%s/%s", dir, row->name);
        bench_mkdirs(sub);
        bench_fmt(file, sizeof file, "%s/tokenizer.json", sub);
        bench_fmt(src, sizeof src, "%s/tests/tokenizer/%s/tokenizer.json.xz", LORAJIT_SOURCE_DIR, row->name);
        unpack(src, file);
        struct stat sb;
        row->file_bytes = stat(file, &sb) == 0 ? (double)sb.st_size : 0;
        tok_arg a = {.file = file, .text = text, .len = len};
        open_or_die(&a.t, file);
        row->vocab = lorajit_tokenizer_vocab_size(a.t);
        bench_job lj = {NULL, load_once, load_undo, &a, &row->load};
        bench_measure_jobs(&lj, 1, loads);
        bench_job ej = {NULL, encode_once, NULL, &a, &row->encode};
        bench_measure_jobs(&ej, 1, reps);
        row->n_ids = a.n_ids;
        row->ids_fnv = fnv(a.ids, a.n_ids);
        lorajit_free(a.ids);
        lorajit_tokenizer_free(a.t);
        if (k->hf_ok) k->hf_ok = run_hf(k, row, dir, file, text_path, node, node_path, hf_loads, hf_reps);
    }
    if (!k->hf_ok)
        for (int i = 0; i < BENCH_TOK_FAMILIES; i++) k->rows[i].hf_load = k->rows[i].hf_encode = (bench_stat){0};
    free(text);
}

/* MB/s of bytes in s's median time (0 when s was not measured). */
static double mbs(double bytes, bench_stat s) { return s.reps ? bytes / 1e6 / (s.median / 1e3) : 0; }

void bench_tok_print(const bench_result *r, FILE *f) {
    const bench_tok_result *k = &r->tok;
    if (!k->text_bytes) return;
    fprintf(f, "\n7. Tokenizer: load of tokenizer.json, encode of %.0f bytes of text (tests/tokenizer/expected/"
            "qwen3.json's texts), one thread, medians; xHF = HF's time / lorajit's\n", k->text_bytes);
    if (k->hf_ok) fprintf(f, "  HF: tokenizers %s (npm, Rust core) under %s, RAYON_NUM_THREADS=1\n", k->hf_version, k->node);
    else fprintf(f, "  HF: unavailable: %s\n", k->hf_reason);
    fprintf(f, "  %-50s %7s %6s | %15s %15s %6s | %7s %7s %6s | %s\n", "tokenizer.json", "vocab", "MiB",
            "load ms (best)", "HF ms (best)", "xHF", "MB/s", "HF MB/s", "xHF", "ids (HF's agree)");
    for (int i = 0; i < BENCH_TOK_FAMILIES; i++) {
        const bench_tok_row *w = &k->rows[i];
        char hl[32] = "-", hx[16] = "-", hm[16] = "-", ex[16] = "-", ag[16] = "";
        if (!w->load.reps) continue;
        if (k->hf_ok) {
            snprintf(hl, sizeof hl, "%.1f (%.1f)", w->hf_load.median, w->hf_load.min);
            snprintf(hx, sizeof hx, "%.2f", w->hf_load.median / w->load.median);
            snprintf(hm, sizeof hm, "%.2f", mbs(k->text_bytes, w->hf_encode));
            snprintf(ex, sizeof ex, "%.2f", w->hf_encode.median / w->encode.median);
            snprintf(ag, sizeof ag, " (%s)", w->hf_ids == w->n_ids && w->hf_fnv == w->ids_fnv ? "yes" : "NO");
        }
        char ll[32];
        snprintf(ll, sizeof ll, "%.1f (%.1f)", w->load.median, w->load.min);
        fprintf(f, "  %-50s %7d %6.2f | %15s %15s %6s | %7.2f %7s %6s | %d%s\n", w->what, w->vocab,
                w->file_bytes / 1048576.0, ll, hl, hx, mbs(k->text_bytes, w->encode), hm, ex, w->n_ids, ag);
    }
}

/* A figure that needs HF: the value, or "unavailable: why". */
static void add_hf(cJSON *o, const char *key, cJSON *v, const bench_tok_result *k) {
    if (k->hf_ok) {
        cJSON_AddItemToObject(o, key, v);
        return;
    }
    cJSON_Delete(v);
    char why[300];
    snprintf(why, sizeof why, "unavailable: %s", k->hf_reason);
    cJSON_AddStringToObject(o, key, why);
}

cJSON *bench_tok_json(const bench_result *r) {
    const bench_tok_result *k = &r->tok;
    cJSON *o = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(o, "families");
    cJSON_AddNumberToObject(o, "text_bytes", k->text_bytes);
    cJSON_AddStringToObject(o, "text", "tests/tokenizer/expected/qwen3.json.xz: the cases' texts joined by newlines");
    add_hf(o, "hf_version", cJSON_CreateString(k->hf_version), k);
    for (int i = 0; i < BENCH_TOK_FAMILIES && k->text_bytes; i++) {
        const bench_tok_row *w = &k->rows[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", w->name);
        cJSON_AddStringToObject(x, "what", w->what);
        cJSON_AddNumberToObject(x, "vocab", w->vocab);
        cJSON_AddNumberToObject(x, "file_bytes", w->file_bytes);
        cJSON_AddItemToObject(x, "load_ms", bench_stat_json(w->load));
        cJSON_AddItemToObject(x, "encode_ms", bench_stat_json(w->encode));
        cJSON_AddNumberToObject(x, "encode_mb_s", mbs(k->text_bytes, w->encode));
        cJSON_AddNumberToObject(x, "ids", w->n_ids);
        add_hf(x, "hf_load_ms", bench_stat_json(w->hf_load), k);
        add_hf(x, "hf_encode_ms", bench_stat_json(w->hf_encode), k);
        add_hf(x, "hf_encode_mb_s", cJSON_CreateNumber(mbs(k->text_bytes, w->hf_encode)), k);
        add_hf(x, "load_speedup_vs_hf", cJSON_CreateNumber(w->hf_load.median / w->load.median), k);
        add_hf(x, "encode_speedup_vs_hf", cJSON_CreateNumber(w->hf_encode.median / w->encode.median), k);
        add_hf(x, "ids_agree", cJSON_CreateBool(w->hf_ids == w->n_ids && w->hf_fnv == w->ids_fnv), k);
        cJSON_AddItemToArray(rows, x);
    }
    return o;
}
