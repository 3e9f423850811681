/* test_bench_quick.c — CI smoke test of `lorajit bench --quick`.
 *
 * Runs BUILD/lorajit_bench --quick --out TMP (work dir BUILD/bench-work, reused) and
 * checks that bench.json holds every figure: each compile row, swap row, forward
 * configuration and token count, the GEMM bound, the summary ratios, and the decode
 * section (bandwidth, prefill, five decode configurations against their bandwidth
 * bound, mixed / shared), as finite positive numbers (median, min, max, reps). The PyTorch rows must be numbers when
 * /usr/bin/python3 can import torch, and "unavailable: ..." otherwise; lorajit and
 * torch logits must agree. The tokenizer section: lorajit's figures, HF's when node finds
 * the npm package tokenizers ("unavailable: ..." otherwise), ids that agree. PNGs must
 * exist when gnuplot is installed. Section 10 (threads): every run timed, the ratios, the
 * same bits on 1 and 2 threads. Section 11 (continuous batching): each configuration's
 * figures and the ratios. Section 12 (HTTP against the C API, three scenarios): every
 * figure, and the same greedy ids both ways. Never a speed.
 * Recipe: a new figure in bench.json gets a need_* line below. */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "check.h"

static bool have_torch, have_hf;

static const cJSON *get(const cJSON *o, const char *key, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK(v != NULL, "%s: no \"%s\"", where, key);
    return v;
}

static void need_number(const cJSON *o, const char *key, const char *where) {
    const cJSON *v = get(o, key, where);
    CHECK(cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble > 0,
          "%s.%s is not a finite positive number", where, key);
}

static void need_finite(const cJSON *o, const char *key, const char *where) {
    const cJSON *v = get(o, key, where);
    CHECK(cJSON_IsNumber(v) && isfinite(v->valuedouble), "%s.%s is not a finite number", where, key);
}

static void need_stat(const cJSON *o, const char *key, const char *where) {
    char w[256];
    snprintf(w, sizeof w, "%s.%s", where, key);
    const cJSON *s = get(o, key, where);
    CHECK(cJSON_IsObject(s), "%s is not an object", w);
    if (!cJSON_IsObject(s)) return;
    need_number(s, "median", w);
    need_number(s, "min", w);
    need_number(s, "max", w);
    need_number(s, "reps", w);
    const cJSON *lo = cJSON_GetObjectItem(s, "min"), *m = cJSON_GetObjectItem(s, "median"),
                *hi = cJSON_GetObjectItem(s, "max");
    if (lo && m && hi)
        CHECK(lo->valuedouble <= m->valuedouble && m->valuedouble <= hi->valuedouble,
              "%s: min <= median <= max fails", w);
}

/* A figure whose peer is missing: "unavailable: why". */
static void need_unavailable(const cJSON *o, const char *key, const char *where) {
    const cJSON *v = get(o, key, where);
    CHECK(cJSON_IsString(v) && strncmp(v->valuestring, "unavailable", 11) == 0, "%s.%s should say unavailable",
          where, key);
}

/* A figure of the peer: a number/stat with torch, "unavailable: why" without. */
static void need_peer(const cJSON *o, const char *key, const char *where, bool stat) {
    if (!have_torch) {
        need_unavailable(o, key, where);
    } else if (stat) {
        need_stat(o, key, where);
    } else {
        need_number(o, key, where);
    }
}

static void check_json(const cJSON *j) {
    const cJSON *meta = get(j, "meta", "bench.json");
    const cJSON *cpu = get(meta, "cpu", "meta"), *th = get(meta, "threads", "meta");
    CHECK(cJSON_IsString(cpu) && cpu->valuestring[0], "meta.cpu is empty");
    need_number(th, "openblas", "meta.threads");
    const cJSON *ver = get(meta, "versions", "meta");
    const cJSON *llvm = get(ver, "llvm", "meta.versions"), *ob = get(ver, "openblas", "meta.versions");
    CHECK(cJSON_IsString(llvm) && cJSON_IsString(ob), "meta.versions");
    const cJSON *peer = get(meta, "peer", "meta");
    CHECK(cJSON_IsBool(get(peer, "available", "meta.peer")) &&
              cJSON_IsTrue(cJSON_GetObjectItem(peer, "available")) == have_torch,
          "meta.peer.available should be %d (python3-torch importable)", have_torch);

    static const char *const stages[] = {"ir_ms", "llvm_ir_ms", "opt_ms", "jit_ms", "total_ms"};
    const cJSON *comp = get(j, "compile", "bench.json");
    CHECK(cJSON_GetArraySize(comp) == 6, "compile: %d rows, want 6", cJSON_GetArraySize(comp));
    const cJSON *row;
    cJSON_ArrayForEach(row, comp) {
        need_number(row, "dim", "compile[]");
        need_number(row, "n_layers", "compile[]");
        for (int s = 0; s < 5; s++) need_stat(row, stages[s], "compile[]");
    }
    const cJSON *eng = get(j, "engine_compile_ms", "bench.json");
    need_number(eng, "no_slots", "engine_compile_ms");
    need_number(eng, "r_max_64", "engine_compile_ms");
    need_number(eng, "r_max_4", "engine_compile_ms");

    const cJSON *sw = get(j, "swap", "bench.json");
    CHECK(cJSON_GetArraySize(sw) == 6, "swap: %d rows, want 6", cJSON_GetArraySize(sw));
    cJSON_ArrayForEach(row, sw) {
        need_number(row, "rank", "swap[]");
        need_number(row, "bytes", "swap[]");
        need_number(row, "copy_gb_per_s", "swap[]");
        need_stat(row, "copy_ms", "swap[]");
        need_stat(row, "load_file_ms", "swap[]");
        need_stat(row, "hotswap_file_ms", "swap[]");
        need_stat(row, "hotswap_mem_ms", "swap[]");
        need_peer(row, "torch_copy_ms", "swap[]", true);
        const cJSON *q = get(row, "ratios", "swap[]");
        need_number(q, "load_file_over_copy", "swap[].ratios");
        need_number(q, "hotswap_file_over_copy", "swap[].ratios");
        need_number(q, "hotswap_mem_over_copy", "swap[].ratios");
        need_number(q, "hotswap_file_over_compile", "swap[].ratios");
        need_peer(q, "hotswap_mem_over_torch", "swap[].ratios", false);
        need_peer(q, "hotswap_file_over_torch", "swap[].ratios", false);
    }

    static const char *const toks[] = {"1", "16", "128"};
    const cJSON *gb = get(j, "gemm_bound_ms", "bench.json");
    for (int t = 0; t < 3; t++) need_stat(gb, toks[t], "gemm_bound_ms");
    static const char *const cfgs[] = {"base", "slots_idle", "one_adapter", "four_adapters",
                                       "r4_max64", "r4_max4"};
    const cJSON *fw = get(j, "forward", "bench.json");
    CHECK(cJSON_GetArraySize(fw) == 6, "forward: %d rows, want 6", cJSON_GetArraySize(fw));
    for (int c = 0; c < 6 && c < cJSON_GetArraySize(fw); c++) {
        char w[64];
        row = cJSON_GetArrayItem(fw, c);
        const cJSON *name = get(row, "name", "forward[]");
        CHECK(cJSON_IsString(name) && !strcmp(name->valuestring, cfgs[c]), "forward[%d] is not %s", c, cfgs[c]);
        snprintf(w, sizeof w, "forward.%s", cfgs[c]);
        const cJSON *tk = get(row, "tokens", w);
        for (int t = 0; t < 3; t++) {
            char wt[96];
            snprintf(wt, sizeof wt, "%s.%s", w, toks[t]);
            const cJSON *x = get(tk, toks[t], w);
            need_stat(x, "lorajit_ms", wt);
            need_number(x, "over_gemm", wt);
            need_peer(x, "torch_ms", wt, true);
            need_peer(x, "over_torch", wt, false);
        }
        const cJSON *agree = cJSON_GetObjectItem(row, "agree_max_abs");
        if (have_torch && c < 5)
            CHECK(cJSON_IsNumber(agree) && agree->valuedouble >= 0 && agree->valuedouble < 1e-3,
                  "%s: lorajit and PyTorch logits differ (agree_max_abs)", w);
    }

    const cJSON *sum = get(j, "summary", "bench.json");
    const cJSON *soc = get(sum, "swap_over_copy", "summary");
    static const char *const kinds[] = {"hotswap_mem", "hotswap_file", "load_file"};
    for (int k = 0; k < 3; k++) {
        const cJSON *rg = get(soc, kinds[k], "summary.swap_over_copy");
        need_number(rg, "min", "summary.swap_over_copy");
        need_number(rg, "max", "summary.swap_over_copy");
    }
    need_number(get(sum, "hotswap_file_over_compile", "summary"), "max", "summary.hotswap_file_over_compile");
    if (have_torch) {
        const cJSON *lt = get(sum, "lorajit_over_torch_swap", "summary");
        need_number(get(lt, "hotswap_mem", "summary.lorajit_over_torch_swap"), "max", "summary");
    }
    const cJSON *fg = get(sum, "forward_over_gemm", "summary"), *ft = get(sum, "lorajit_over_torch_forward", "summary");
    for (int c = 0; c < 6; c++)
        for (int t = 0; t < 3; t++) {
            need_number(get(fg, cfgs[c], "summary.forward_over_gemm"), toks[t], cfgs[c]);
            need_peer(get(ft, cfgs[c], "summary.lorajit_over_torch_forward"), toks[t], cfgs[c], false);
        }
    for (int t = 0; t < 3; t++) {
        need_number(get(sum, "slots_idle_over_no_slots", "summary"), toks[t], "summary.slots_idle_over_no_slots");
        need_number(get(sum, "padding_r4_max64_over_max4", "summary"), toks[t], "summary.padding");
    }
    const cJSON *cg = get(sum, "compile_growth", "summary"), *w;
    CHECK(cJSON_GetArraySize(cg) == 2, "summary.compile_growth: want two widths");
    cJSON_ArrayForEach(w, cg) {
        need_number(w, "l32_over_l2", "summary.compile_growth");
        /* a difference of two timings: on a loaded 2-core machine it may come out
         * negative, so only its presence is checked (this test asserts no speed) */
        need_finite(w, "ms_per_layer", "summary.compile_growth");
    }
}

static void check_decode(const cJSON *j) {
    const cJSON *dec = get(j, "decode", "bench.json");
    const cJSON *m = get(dec, "model", "decode");
    static const char *const dims[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                       "tensor_bytes", "adapters", "adapter_rank", "adapter_bytes"};
    for (int i = 0; i < 10; i++) need_number(m, dims[i], "decode.model");
    need_number(dec, "compile_ms", "decode");
    need_number(dec, "openblas_threads", "decode");
    const cJSON *bw = get(dec, "bandwidth", "decode");
    need_number(bw, "buffer_bytes", "decode.bandwidth");
    need_number(bw, "threads", "decode.bandwidth");
    need_stat(bw, "read_ms", "decode.bandwidth");
    need_number(bw, "read_gb_per_s", "decode.bandwidth");
    need_stat(bw, "copy_ms", "decode.bandwidth");
    need_number(bw, "copy_gb_per_s", "decode.bandwidth");
    const cJSON *pf = get(dec, "prefill", "decode");
    need_number(pf, "tokens", "decode.prefill");
    need_stat(pf, "ms", "decode.prefill");
    need_number(pf, "tokens_per_s", "decode.prefill");
    CHECK(cJSON_IsTrue(get(dec, "logits_finite", "decode")), "decode: the last step's logits are not finite");
    const cJSON *gm = get(dec, "gemm_ms", "decode");
    need_stat(gm, "1", "decode.gemm_ms");
    need_stat(gm, "8", "decode.gemm_ms");
    static const char *const cfgs[] = {"b1_base", "b1_one_adapter", "b8_base", "b8_shared", "b8_mixed"};
    static const int batch[] = {1, 1, 8, 8, 8}, distinct[] = {0, 1, 0, 1, 8};
    const cJSON *cf = get(dec, "configs", "decode");
    for (int c = 0; c < 5; c++) {
        char w[64];
        snprintf(w, sizeof w, "decode.configs.%s", cfgs[c]);
        const cJSON *x = get(cf, cfgs[c], "decode.configs");
        const cJSON *b = get(x, "batch", w), *n = get(x, "distinct_adapters", w);
        CHECK(cJSON_IsNumber(b) && b->valueint == batch[c], "%s.batch should be %d", w, batch[c]);
        CHECK(cJSON_IsNumber(n) && n->valueint == distinct[c], "%s.distinct_adapters should be %d", w, distinct[c]);
        need_number(x, "bytes_per_step", w);
        need_stat(x, "step_ms", w);
        need_number(x, "steps_per_s", w);
        need_number(x, "tokens_per_s", w);
        need_number(x, "bound_ms", w);
        need_number(x, "over_bound", w);
        need_number(x, "over_bound_min", w);
        need_number(x, "over_gemm", w);
        need_number(x, "over_copy_bound", w);
    }
    const cJSON *q = get(dec, "ratios", "decode");
    need_number(q, "b8_mixed_over_shared", "decode.ratios");
    need_number(q, "b8_shared_over_base", "decode.ratios");
    need_number(q, "b1_one_adapter_over_base", "decode.ratios");
    need_number(q, "b8_over_b1_base", "decode.ratios");
}

/* Section 10: decode at 1 and 2 threads, idle and next to a busy process, and a prefill
 * at 1 and 2 threads: every run timed, the ratios, the same bits on 1 and 2 threads,
 * the busy process alive until it was killed. */
static void check_threads(const cJSON *j) {
    const cJSON *th = get(j, "threads", "bench.json");
    static const char *const nums[] = {"steps", "prompt", "rounds"}, *const runs[] = {"t1_idle", "t1_busy", "t2_idle",
                                                                                      "t2_busy"};
    for (int k = 0; k < 3; k++) need_number(th, nums[k], "threads");
    const cJSON *d = get(th, "decode", "threads");
    for (int k = 0; k < 4; k++) {
        const cJSON *x = get(d, runs[k], "threads.decode");
        need_stat(x, "run_ms", runs[k]);
        need_number(x, "tokens_per_s", runs[k]);
    }
    const cJSON *p = get(th, "prefill", "threads");
    need_stat(p, "t1_ms", "threads.prefill");
    need_stat(p, "t2_ms", "threads.prefill");
    const cJSON *q = get(th, "ratios", "threads");
    const cJSON *st = get(th, "first_step", "threads");
    static const char *const steps[] = {"t1_first_ms", "t1_second_ms", "t2_first_ms", "t2_second_ms"};
    for (int k = 0; k < 4; k++) need_stat(st, steps[k], "threads.first_step");
    static const char *const ratios[] = {"busy_over_idle_t2", "busy_t2_over_busy_t1", "prefill_t2_over_t1",
                                         "first_over_second_t1", "first_over_second_t2"};
    for (int k = 0; k < 5; k++) need_number(q, ratios[k], "threads.ratios");
    CHECK(cJSON_IsTrue(get(th, "same_bits", "threads")), "threads: 1 and 2 threads gave different logits");
    CHECK(cJSON_IsTrue(get(th, "busy_process_ran", "threads")), "threads: the busy process did not run");
}

/* Section 11: continuous batching: four configurations with throughput and latency
 * percentiles (p50 <= p99), and the three ratios. */
static void check_sched(const cJSON *j) {
    static const char *const cfg[4] = {"alone", "one_adapter", "distinct", "zipf"};
    const cJSON *sc = get(j, "sched", "bench.json");
    const cJSON *rows = get(sc, "configs", "sched");
    for (int k = 0; k < 4; k++) {
        char w[64];
        snprintf(w, sizeof w, "sched.configs.%s", cfg[k]);
        const cJSON *row = get(rows, cfg[k], "sched.configs");
        need_stat(row, "run_ms", w);
        static const char *const fields[] = {"requests", "tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms",
                                             "itl_p99_ms"};
        for (int f = 0; f < 6; f++) need_number(row, fields[f], w);
        const cJSON *p50 = cJSON_GetObjectItem(row, "ttft_p50_ms"), *p99 = cJSON_GetObjectItem(row, "ttft_p99_ms");
        if (p50 && p99) CHECK(p50->valuedouble <= p99->valuedouble, "%s: ttft p50 > p99", w);
    }
    static const char *const ratios[] = {"distinct_over_one", "zipf_over_one", "concurrent_over_alone"};
    for (int f = 0; f < 3; f++) need_number(sc, ratios[f], "sched");
    need_number(sc, "zipf_jit_loads_per_run", "sched");
}

/* Section 12 (serve): each scenario's figures for the C API and HTTP, the ratio and
 * differences (finite: HTTP may come out either side), and the same greedy ids on both
 * paths (closed loop and paced); the paced runs' rate and latencies; the Zipf scenario
 * names 1000 adapters through 8 slots. */
static void check_serve(const cJSON *j) {
    static const char *const sc[3] = {"one_adapter", "adapters16", "zipf1000"}, *const paths[2] = {"c_api", "http"};
    static const char *const fields[] = {"tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms",
                                         "itl_mean_ms"};
    const cJSON *sv = get(j, "serve", "bench.json"), *rows = get(sv, "scenarios", "serve");
    need_number(sv, "requests_per_run", "serve");
    need_number(sv, "rounds", "serve");
    for (int k = 0; k < 3; k++) {
        char w[64];
        snprintf(w, sizeof w, "serve.scenarios.%s", sc[k]);
        const cJSON *row = get(rows, sc[k], "serve.scenarios");
        for (int p = 0; p < 2; p++) {
            const cJSON *o = get(row, paths[p], w);
            for (int f = 0; f < 6; f++) need_number(o, fields[f], w);
        }
        need_number(row, "http_over_c_api_tokens_per_s", w);
        need_number(row, "paired_http_over_c_api_tokens_per_s", w);
        const cJSON *d = get(row, "http_minus_c_api_ttft_p50_ms", w);
        CHECK(cJSON_IsNumber(d) && isfinite(d->valuedouble), "%s: TTFT difference is not a number", w);
        CHECK(cJSON_IsTrue(get(row, "same_tokens", w)), "%s: HTTP and the C API gave different greedy ids", w);
        char wp[80];
        snprintf(wp, sizeof wp, "%s.paced", w);
        const cJSON *pc = get(row, "paced", w);
        need_number(pc, "requests", wp);
        need_number(pc, "requests_per_s", wp);
        for (int p = 0; p < 2; p++) /* its latencies (no tokens/s: the arrivals set it) */
            for (int f = 1; f < 6; f++) need_number(get(pc, paths[p], wp), fields[f], wp);
    }
    const cJSON *z = get(rows, "zipf1000", "serve.scenarios");
    const cJSON *n = get(z, "adapters", "serve.scenarios.zipf1000"), *slots = get(z, "slots", "serve.scenarios.zipf1000");
    CHECK(cJSON_IsNumber(n) && n->valueint == 1000 && cJSON_IsNumber(slots) && slots->valueint == 8,
          "serve.scenarios.zipf1000: not 1000 adapters through 8 slots");
}

/* Section 7: both tokenizers' load and encode; HF's figures when node can require the
 * npm package tokenizers (NODE_PATH as inherited), "unavailable: ..." otherwise; the
 * two encodes' ids must agree. */
static void check_tokenizer(const cJSON *j) {
    const cJSON *tk = get(j, "tokenizer", "bench.json"), *row;
    need_number(tk, "text_bytes", "tokenizer");
    const cJSON *fam = get(tk, "families", "tokenizer");
    CHECK(cJSON_GetArraySize(fam) == 2, "tokenizer.families: %d rows, want 2", cJSON_GetArraySize(fam));
    static const char *const nums[] = {"vocab", "file_bytes", "ids", "encode_mb_s"},
                             *const stats[] = {"load_ms", "encode_ms"},
                             *const hf_stats[] = {"hf_load_ms", "hf_encode_ms"},
                             *const hf_nums[] = {"hf_encode_mb_s", "load_speedup_vs_hf", "encode_speedup_vs_hf"};
    const char *w = "tokenizer.families[]";
    cJSON_ArrayForEach(row, fam) {
        for (int k = 0; k < 4; k++) need_number(row, nums[k], w);
        for (int k = 0; k < 2; k++) need_stat(row, stats[k], w);
        for (int k = 0; k < 2; k++) have_hf ? need_stat(row, hf_stats[k], w) : need_unavailable(row, hf_stats[k], w);
        for (int k = 0; k < 3; k++) have_hf ? need_number(row, hf_nums[k], w) : need_unavailable(row, hf_nums[k], w);
        const cJSON *agree = get(row, "ids_agree", "tokenizer.families[]");
        CHECK(have_hf ? cJSON_IsTrue(agree) : cJSON_IsString(agree), "tokenizer: lorajit's and HF's ids differ");
    }
}

/* Section 9: the paged KV cache's bytes and the decode step with blocks against one
 * block a sequence; the two steps' logits must be the same bits. */
static void check_kv(const cJSON *j) {
    const cJSON *kv = get(j, "kv_cache", "bench.json");
    static const char *const nums[] = {"used_bytes", "need_bytes", "used_over_need", "pool_bytes", "old_layout_bytes",
                                       "paged_over_one_block"};
    for (int k = 0; k < 6; k++) need_number(kv, nums[k], "kv_cache");
    need_stat(kv, "decode_paged_ms", "kv_cache");
    need_stat(kv, "decode_one_block_ms", "kv_cache");
    CHECK(cJSON_IsTrue(get(kv, "same_logits", "kv_cache")), "kv_cache: paged and one-block logits differ");
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    char out[] = "/tmp/lorajit_bench_quick_XXXXXX", cmd[8400], path[4200];
    CHECK(mkdtemp(out) != NULL, "mkdtemp");
    have_torch = system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
    have_hf = system("node -e \"require('tokenizers')\" >/dev/null 2>&1") == 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(cmd, sizeof cmd, "'%s/lorajit_bench' --quick --out '%s' --work '%s/bench-work' >'%s/stdout.txt' 2>&1",
             build, out, build, out);
    int rc = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("lorajit_bench --quick: exit %d in %.1f s (torch %s, HF tokenizers %s)\n", rc,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, have_torch ? "present" : "absent",
           have_hf ? "present" : "absent");
    snprintf(path, sizeof path, "%s/stdout.txt", out);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -30 '%s' >&2", path);
        if (system(cmd) != 0) fprintf(stderr, "(no output)\n");
    }
    CHECK(rc == 0, "lorajit_bench --quick failed");

    snprintf(path, sizeof path, "%s/bench.json", out);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "no %s", path);
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *text = malloc((size_t)n + 1);
        size_t got = fread(text, 1, (size_t)n, f);
        text[got] = '\0';
        fclose(f);
        cJSON *j = cJSON_Parse(text);
        CHECK(j != NULL, "%s is not JSON", path);
        if (j) check_json(j);
        if (j) check_decode(j);
        if (j) check_tokenizer(j);
        if (j) check_kv(j);
        if (j) check_threads(j);
        if (j) check_sched(j);
        if (j) check_serve(j);
        cJSON_Delete(j);
        free(text);
    }
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        static const char *const pngs[] = {"bench_compile.png", "bench_swap.png", "bench_forward.png"};
        for (int i = 0; i < 3; i++) {
            struct stat sb;
            snprintf(path, sizeof path, "%s/%s", out, pngs[i]);
            CHECK(stat(path, &sb) == 0 && sb.st_size > 1000, "no plot %s", path);
        }
    }
    if (check_fail_count == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", out);
    } else {
        fprintf(stderr, "outputs kept in %s\n", out);
    }
    return check_summary("test_bench_quick");
}
