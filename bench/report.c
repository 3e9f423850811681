/* report.c — the bench's outputs: a table on the terminal, every figure as JSON,
 * and PNG plots through gnuplot (Debian's gnuplot-nox).
 *
 * Input: a filled bench_result. Outputs: the table (stdout), OUT/bench.json
 * (median/min/max/reps of every time, the ratios, thread counts, CPU, versions),
 * OUT/bench_{compile,swap,forward}.png with the data and script beside them
 * (bench_*.dat, bench_plots.gp). Ratios use medians; a ratio needing a missing
 * peer figure is written as the string "unavailable: <why>". */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"

static const char *const stage_names[5] = {"ir_ms", "llvm_ir_ms", "opt_ms", "jit_ms", "total_ms"};

static double ratio(bench_stat a, bench_stat b) {
    return a.reps > 0 && b.reps > 0 && b.median > 0 ? a.median / b.median : NAN;
}

/* Ratio of the fastest runs: less sensitive to other processes than the medians. */
static double ratio_min(bench_stat a, bench_stat b) {
    return a.reps > 0 && b.reps > 0 && b.min > 0 ? a.min / b.min : NAN;
}

static const bench_stat *stage(const bench_compile_row *c, int s) {
    const bench_stat *v[5] = {&c->ir, &c->llvm_ir, &c->opt, &c->jit, &c->total};
    return v[s];
}

static const bench_fwd_row *fwd_row(const bench_result *r, const char *name) {
    for (int c = 0; c < BENCH_FWD_CONFIGS; c++)
        if (!strcmp(r->fwd[c].name, name)) return &r->fwd[c];
    return NULL;
}

/* The compile row of width w with the most / fewest layers: growth 2 -> 32 layers. */
static double growth(const bench_result *r, int w) {
    return ratio(r->compile[w * BENCH_LAYER_SETS + BENCH_LAYER_SETS - 1].total,
                 r->compile[w * BENCH_LAYER_SETS].total);
}

/* Milliseconds per added layer between the smallest and the largest layer count. */
static double ms_per_layer(const bench_result *r, int w) {
    const bench_compile_row *a = &r->compile[w * BENCH_LAYER_SETS],
                            *b = &r->compile[w * BENCH_LAYER_SETS + BENCH_LAYER_SETS - 1];
    return (b->total.median - a->total.median) / (b->n_layers - a->n_layers);
}

// ----------------------------------------------------------------------------
// table

static void fmt_ratio(char *buf, size_t cap, double x) {
    if (isnan(x)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.2f", x);
}

void bench_swaps_print(const bench_result *r, FILE *f) {
    char a[32], b[32], c[32];
    fprintf(f, "\n2. Swap on dim %d, %d layers (%.0f MiB F32), slots r_max %d; compile of that engine %.0f ms\n",
            r->dim, r->n_layers, r->model_mib, r->r_max, r->open_ms[1]);
    fprintf(f, "  %-5s %4s %8s %8s %8s %8s %8s %8s | %6s %6s %6s | %7s %7s | %9s\n", "tgt", "rank", "MiB",
            "memcpy", "load", "hotswap", "hs(mem)", "torch", "ld/cp", "hs/cp", "mem/cp", "hs/trch",
            "mem/trc", "hs/compl");
    for (int i = 0; i < BENCH_SWAPS; i++) {
        const bench_swap_row *s = &r->swap[i];
        fmt_ratio(a, sizeof a, ratio(s->hotswap_file, s->torch));
        fmt_ratio(b, sizeof b, ratio(s->hotswap_mem, s->torch));
        if (s->torch.reps) snprintf(c, sizeof c, "%.3f", s->torch.median);
        else snprintf(c, sizeof c, "-");
        fprintf(f, "  %-5s %4d %8.2f %8.3f %8.3f %8.3f %8.3f %8s | %6.2f %6.2f %6.2f | %7s %7s | %9.5f\n",
                s->targets, s->rank, s->bytes / 1048576.0, s->copy.median, s->load_file.median,
                s->hotswap_file.median, s->hotswap_mem.median, c, ratio(s->load_file, s->copy),
                ratio(s->hotswap_file, s->copy), ratio(s->hotswap_mem, s->copy), a, b,
                s->hotswap_file.median / r->open_ms[1]);
    }
    const bench_swap16_result *h = &r->swap16;
    if (!h->copy_file.reps) return;
    fprintf(f, "  BF16 rank-16 adapter on all seven projections, %s model (%d layers): %.1f MiB of BF16, "
            "%.1f MiB as f32\n", r->dec.dtype, r->dec.n_layers, h->file_bytes / 1048576.0, h->f32_bytes / 1048576.0);
    fprintf(f, "  %-10s %8s %8s %8s %8s | %7s %7s %7s %7s\n", "slots", "cp file", "cp f32", "load", "hotswap",
            "ld/cpf", "ld/cp32", "hs/cpf", "hs/cp32");
    for (int k = 0; k < 2; k++)
        fprintf(f, "  %-10s %8.3f %8.3f %8.3f %8.3f | %7.2f %7.2f %7.2f %7.2f\n", k ? "bf16" : "f32",
                h->copy_file.median, h->copy_f32.median, h->load[k].median, h->hotswap[k].median,
                ratio(h->load[k], h->copy_file), ratio(h->load[k], h->copy_f32), ratio(h->hotswap[k], h->copy_file),
                ratio(h->hotswap[k], h->copy_f32));
    fprintf(f, "  cp file / cp f32 = memcpy of the file's bytes / of the same values as f32 (what f32 slots "
               "receive); load is followed by an untimed delete\n");
}

void bench_print_table(const bench_result *r, FILE *f) {
    char a[32], b[32], d[32];
    fprintf(f, "\nlorajit bench%s — %s (%d CPUs), %s\n", r->quick ? " --quick" : "", r->cpu, r->n_cpus,
            r->date);
    fprintf(f, "OpenBLAS threads %d (OPENBLAS_NUM_THREADS=%s); LLVM %s; %s\n", r->threads,
            r->threads_env[0] ? r->threads_env : "unset", r->llvm, r->openblas);
    if (r->peer_ok)
        fprintf(f, "peer: PyTorch %s eager (python %s), torch threads %d, OPENBLAS_NUM_THREADS=%d\n",
                r->torch, r->python, r->torch_threads, r->threads);
    else
        fprintf(f, "peer: PyTorch rows unavailable: %s\n", r->peer_reason);
    fprintf(f, "times in ms, medians after one warm-up (min, max, reps in the JSON); wall %.1f s; "
               "load average %.2f before, %.2f after\n", r->wall_s, r->load_start, r->load_end);

    fprintf(f, "\n1. Compile (one engine; config.json only)     reps %d\n", r->compile[0].total.reps);
    fprintf(f, "  %-16s %6s %9s %9s %9s %9s %10s\n", "width", "layers", "IR", "LLVM IR", "O3", "mcode", "total");
    for (int i = 0; i < BENCH_COMPILES; i++) {
        const bench_compile_row *row = &r->compile[i];
        snprintf(a, sizeof a, "%d/%d", row->w.dim, row->w.hidden_dim);
        fprintf(f, "  %-16s %6d %9.1f %9.1f %9.1f %9.1f %10.1f\n", a, row->n_layers, row->ir.median,
                row->llvm_ir.median, row->opt.median, row->jit.median, row->total.median);
    }
    for (int w = 0; w < BENCH_WIDTHS; w++)
        fprintf(f, "  dim %d: %d -> %d layers: x%.2f compile time (%.1f ms per added layer)\n",
                r->compile[w * BENCH_LAYER_SETS].w.dim, r->compile[w * BENCH_LAYER_SETS].n_layers,
                r->compile[w * BENCH_LAYER_SETS + BENCH_LAYER_SETS - 1].n_layers, growth(r, w),
                ms_per_layer(r, w));

    bench_swaps_print(r, f);

    fprintf(f, "\n3. Forward, prompt from position 0 (ms; x = ratio to the GEMM bound / to PyTorch)\n");
    fprintf(f, "  %-36s", "configuration");
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) fprintf(f, " | %4d tok: lorajit   xGEMM   torch  xtorch", r->tokens[t]);
    fputc('\n', f);
    fprintf(f, "  %-36s", "GEMMs alone, OpenBLAS (the bound)");
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) fprintf(f, " | %17.3f %7s %7s %7s", r->gemm[t].median, "", "", "");
    fputc('\n', f);
    for (int i = 0; i < BENCH_FWD_CONFIGS; i++) {
        const bench_fwd_row *row = &r->fwd[i];
        fprintf(f, "  %-36s", row->what);
        for (int t = 0; t < BENCH_TOKEN_SETS; t++) {
            fmt_ratio(a, sizeof a, ratio(row->lj[t], r->gemm[t]));
            fmt_ratio(b, sizeof b, ratio(row->lj[t], row->torch[t]));
            if (row->torch[t].reps) snprintf(d, sizeof d, "%.3f", row->torch[t].median);
            else snprintf(d, sizeof d, "-");
            fprintf(f, " | %17.3f %7s %7s %7s", row->lj[t].median, a, d, b);
        }
        fputc('\n', f);
    }
    const bench_fwd_row *base = fwd_row(r, "base"), *idle = fwd_row(r, "slots_idle"),
                        *p64 = fwd_row(r, "r4_max64"), *p4 = fwd_row(r, "r4_max4");
    fprintf(f, "  slots idle / no slots:");
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) fprintf(f, "  %d tok %.3f", r->tokens[t], ratio(idle->lj[t], base->lj[t]));
    fprintf(f, "\n  r4 in r_max 64 / r4 in r_max 4 (padding):");
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) fprintf(f, "  %d tok %.3f", r->tokens[t], ratio(p64->lj[t], p4->lj[t]));
    fputc('\n', f);
    if (r->peer_ok) {
        fprintf(f, "  lorajit vs PyTorch logits (16 tokens), max |diff|:");
        for (int i = 0; i < BENCH_FWD_CONFIGS; i++)
            if (r->fwd[i].agree >= 0) fprintf(f, " %s %.1e", r->fwd[i].name, r->fwd[i].agree);
        fputc('\n', f);
    }
    bench_decode_print(r, f);
    bench_shapes_print(r, f);
    bench_tok_print(r, f);
    bench_cache_print(r, f);
    bench_kv_print(r, f);
    bench_threads_print(r, f);
    bench_sched_print(r, f);
    bench_serve_print(r, f);
}

// ----------------------------------------------------------------------------
// JSON

/* A figure that needs the peer: the number, or "unavailable: why". */
static void add_peer_number(cJSON *o, const char *key, double v, const bench_result *r) {
    if (!isnan(v)) {
        cJSON_AddNumberToObject(o, key, v);
    } else {
        char why[300];
        snprintf(why, sizeof why, "unavailable: %s", r->peer_reason[0] ? r->peer_reason : "no peer figure");
        cJSON_AddStringToObject(o, key, why);
    }
}

static void add_peer_stat(cJSON *o, const char *key, bench_stat s, const bench_result *r) {
    if (s.reps > 0) cJSON_AddItemToObject(o, key, bench_stat_json(s));
    else add_peer_number(o, key, NAN, r);
}

/* {"min": .., "max": ..} of v[0..n) */
static cJSON *range_json(const double *v, int n) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "min", lo);
    cJSON_AddNumberToObject(o, "max", hi);
    return o;
}

static cJSON *meta_json(const bench_result *r) {
    cJSON *m = cJSON_CreateObject(), *th, *v, *p, *md;
    cJSON_AddStringToObject(m, "date", r->date);
    cJSON_AddBoolToObject(m, "quick", r->quick);
    cJSON_AddNumberToObject(m, "wall_s", r->wall_s);
    cJSON_AddStringToObject(m, "units", "ms");
    cJSON_AddStringToObject(m, "cpu", r->cpu);
    cJSON_AddNumberToObject(m, "n_cpus", r->n_cpus);
    cJSON_AddNumberToObject(m, "loadavg_start", r->load_start);
    cJSON_AddNumberToObject(m, "loadavg_end", r->load_end);
    th = cJSON_AddObjectToObject(m, "threads");
    cJSON_AddNumberToObject(th, "openblas", r->threads);
    cJSON_AddStringToObject(th, "OPENBLAS_NUM_THREADS_env", r->threads_env);
    cJSON_AddNumberToObject(th, "peer_openblas", r->threads);
    cJSON_AddNumberToObject(th, "peer_torch", r->torch_threads);
    v = cJSON_AddObjectToObject(m, "versions");
    cJSON_AddStringToObject(v, "llvm", r->llvm);
    cJSON_AddStringToObject(v, "openblas", r->openblas);
    cJSON_AddStringToObject(v, "torch", r->peer_ok ? r->torch : "unavailable");
    cJSON_AddStringToObject(v, "python", r->peer_ok ? r->python : "unavailable");
    p = cJSON_AddObjectToObject(m, "peer");
    cJSON_AddBoolToObject(p, "available", r->peer_ok);
    cJSON_AddStringToObject(p, "reason", r->peer_ok ? "" : r->peer_reason);
    cJSON_AddStringToObject(p, "method", "PyTorch eager, nn.Linear + PEFT LoRA (base(x) + lora_B(lora_A(x)) * "
                                         "scaling), swap = param.data.copy_; torch.set_num_threads(1)");
    md = cJSON_AddObjectToObject(m, "model");
    cJSON_AddNumberToObject(md, "dim", r->dim);
    cJSON_AddNumberToObject(md, "hidden_dim", r->hidden_dim);
    cJSON_AddNumberToObject(md, "n_layers", r->n_layers);
    cJSON_AddNumberToObject(md, "n_heads", r->n_heads);
    cJSON_AddNumberToObject(md, "vocab_size", r->vocab);
    cJSON_AddNumberToObject(md, "weights_mib", r->model_mib);
    cJSON_AddNumberToObject(md, "r_max", r->r_max);
    cJSON_AddNumberToObject(md, "n_slots", r->n_slots);
    return m;
}

static cJSON *summary_json(const bench_result *r) {
    cJSON *s = cJSON_CreateObject(), *o;
    double v[3][BENCH_SWAPS], sc[BENCH_SWAPS];
    for (int i = 0; i < BENCH_SWAPS; i++) {
        v[0][i] = ratio(r->swap[i].hotswap_mem, r->swap[i].copy);
        v[1][i] = ratio(r->swap[i].hotswap_file, r->swap[i].copy);
        v[2][i] = ratio(r->swap[i].load_file, r->swap[i].copy);
        sc[i] = r->swap[i].hotswap_file.median / r->open_ms[1];
    }
    o = cJSON_AddObjectToObject(s, "swap_over_copy");
    cJSON_AddItemToObject(o, "hotswap_mem", range_json(v[0], BENCH_SWAPS));
    cJSON_AddItemToObject(o, "hotswap_file", range_json(v[1], BENCH_SWAPS));
    cJSON_AddItemToObject(o, "load_file", range_json(v[2], BENCH_SWAPS));
    cJSON_AddItemToObject(s, "hotswap_file_over_compile", range_json(sc, BENCH_SWAPS));
    if (r->peer_ok) {
        for (int i = 0; i < BENCH_SWAPS; i++) {
            v[0][i] = ratio(r->swap[i].hotswap_mem, r->swap[i].torch);
            v[1][i] = ratio(r->swap[i].hotswap_file, r->swap[i].torch);
        }
        o = cJSON_AddObjectToObject(s, "lorajit_over_torch_swap");
        cJSON_AddItemToObject(o, "hotswap_mem", range_json(v[0], BENCH_SWAPS));
        cJSON_AddItemToObject(o, "hotswap_file", range_json(v[1], BENCH_SWAPS));
    } else {
        add_peer_number(s, "lorajit_over_torch_swap", NAN, r);
    }
    cJSON *g = cJSON_AddObjectToObject(s, "forward_over_gemm"), *t = cJSON_AddObjectToObject(s, "lorajit_over_torch_forward");
    cJSON *tm = cJSON_AddObjectToObject(s, "lorajit_over_torch_forward_min");
    for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
        cJSON *gc = cJSON_AddObjectToObject(g, r->fwd[c].name), *tc = cJSON_AddObjectToObject(t, r->fwd[c].name);
        cJSON *mc = cJSON_AddObjectToObject(tm, r->fwd[c].name);
        for (int k = 0; k < BENCH_TOKEN_SETS; k++) {
            char key[16];
            snprintf(key, sizeof key, "%d", r->tokens[k]);
            cJSON_AddNumberToObject(gc, key, ratio(r->fwd[c].lj[k], r->gemm[k]));
            add_peer_number(tc, key, ratio(r->fwd[c].lj[k], r->fwd[c].torch[k]), r);
            add_peer_number(mc, key, ratio_min(r->fwd[c].lj[k], r->fwd[c].torch[k]), r);
        }
    }
    const bench_fwd_row *base = fwd_row(r, "base"), *idle = fwd_row(r, "slots_idle"),
                        *p64 = fwd_row(r, "r4_max64"), *p4 = fwd_row(r, "r4_max4");
    cJSON *ic = cJSON_AddObjectToObject(s, "slots_idle_over_no_slots"), *pc = cJSON_AddObjectToObject(s, "padding_r4_max64_over_max4");
    for (int k = 0; k < BENCH_TOKEN_SETS; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", r->tokens[k]);
        cJSON_AddNumberToObject(ic, key, ratio(idle->lj[k], base->lj[k]));
        cJSON_AddNumberToObject(pc, key, ratio(p64->lj[k], p4->lj[k]));
    }
    cJSON *cg = cJSON_AddObjectToObject(s, "compile_growth");
    for (int w = 0; w < BENCH_WIDTHS; w++) {
        char key[32];
        snprintf(key, sizeof key, "dim_%d", r->compile[w * BENCH_LAYER_SETS].w.dim);
        cJSON *x = cJSON_AddObjectToObject(cg, key);
        cJSON_AddNumberToObject(x, "l32_over_l2", growth(r, w));
        cJSON_AddNumberToObject(x, "ms_per_layer", ms_per_layer(r, w));
    }
    return s;
}

int bench_write_json(const bench_result *r, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "meta", meta_json(r));
    cJSON *comp = cJSON_AddArrayToObject(root, "compile");
    for (int i = 0; i < BENCH_COMPILES; i++) {
        const bench_compile_row *c = &r->compile[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "dim", c->w.dim);
        cJSON_AddNumberToObject(o, "hidden_dim", c->w.hidden_dim);
        cJSON_AddNumberToObject(o, "n_layers", c->n_layers);
        for (int s = 0; s < 5; s++) cJSON_AddItemToObject(o, stage_names[s], bench_stat_json(*stage(c, s)));
        cJSON_AddItemToArray(comp, o);
    }
    cJSON *eng = cJSON_AddObjectToObject(root, "engine_compile_ms");
    cJSON_AddNumberToObject(eng, "no_slots", r->open_ms[0]);
    cJSON_AddNumberToObject(eng, "r_max_64", r->open_ms[1]);
    cJSON_AddNumberToObject(eng, "r_max_4", r->open_ms[2]);
    cJSON *sw = cJSON_AddArrayToObject(root, "swap");
    for (int i = 0; i < BENCH_SWAPS; i++) {
        const bench_swap_row *s = &r->swap[i];
        cJSON *o = cJSON_CreateObject(), *q;
        cJSON_AddStringToObject(o, "targets", s->targets);
        cJSON_AddNumberToObject(o, "rank", s->rank);
        cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
        cJSON_AddItemToObject(o, "copy_ms", bench_stat_json(s->copy));
        cJSON_AddNumberToObject(o, "copy_gb_per_s", s->bytes / (s->copy.median * 1e6));
        cJSON_AddItemToObject(o, "load_file_ms", bench_stat_json(s->load_file));
        cJSON_AddItemToObject(o, "hotswap_file_ms", bench_stat_json(s->hotswap_file));
        cJSON_AddItemToObject(o, "hotswap_mem_ms", bench_stat_json(s->hotswap_mem));
        add_peer_stat(o, "torch_copy_ms", s->torch, r);
        q = cJSON_AddObjectToObject(o, "ratios");
        cJSON_AddNumberToObject(q, "load_file_over_copy", ratio(s->load_file, s->copy));
        cJSON_AddNumberToObject(q, "hotswap_file_over_copy", ratio(s->hotswap_file, s->copy));
        cJSON_AddNumberToObject(q, "hotswap_mem_over_copy", ratio(s->hotswap_mem, s->copy));
        cJSON_AddNumberToObject(q, "hotswap_file_over_compile", s->hotswap_file.median / r->open_ms[1]);
        add_peer_number(q, "hotswap_mem_over_torch", ratio(s->hotswap_mem, s->torch), r);
        add_peer_number(q, "hotswap_file_over_torch", ratio(s->hotswap_file, s->torch), r);
        cJSON_AddItemToArray(sw, o);
    }
    if (r->swap16.copy_file.reps) {
        const bench_swap16_result *h = &r->swap16;
        cJSON *o = cJSON_AddObjectToObject(root, "swap_bf16_r16");
        cJSON_AddNumberToObject(o, "file_bytes", (double)h->file_bytes);
        cJSON_AddNumberToObject(o, "f32_bytes", (double)h->f32_bytes);
        cJSON_AddItemToObject(o, "copy_file_ms", bench_stat_json(h->copy_file));
        cJSON_AddItemToObject(o, "copy_f32_ms", bench_stat_json(h->copy_f32));
        for (int k = 0; k < 2; k++) {
            cJSON *q = cJSON_AddObjectToObject(o, k ? "bf16_slots" : "f32_slots");
            cJSON_AddItemToObject(q, "load_ms", bench_stat_json(h->load[k]));
            cJSON_AddItemToObject(q, "hotswap_ms", bench_stat_json(h->hotswap[k]));
            cJSON_AddNumberToObject(q, "load_over_copy_file", ratio(h->load[k], h->copy_file));
            cJSON_AddNumberToObject(q, "load_over_copy_f32", ratio(h->load[k], h->copy_f32));
            cJSON_AddNumberToObject(q, "hotswap_over_copy_file", ratio(h->hotswap[k], h->copy_file));
        }
    }
    cJSON *gb = cJSON_AddObjectToObject(root, "gemm_bound_ms");
    for (int k = 0; k < BENCH_TOKEN_SETS; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", r->tokens[k]);
        cJSON_AddItemToObject(gb, key, bench_stat_json(r->gemm[k]));
    }
    cJSON *fw = cJSON_AddArrayToObject(root, "forward");
    for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
        const bench_fwd_row *row = &r->fwd[c];
        cJSON *o = cJSON_CreateObject(), *toks;
        cJSON_AddStringToObject(o, "name", row->name);
        cJSON_AddStringToObject(o, "what", row->what);
        cJSON_AddStringToObject(o, "peer_config", row->peer);
        if (row->agree >= 0) cJSON_AddNumberToObject(o, "agree_max_abs", row->agree);
        else if (strcmp(row->peer, row->name) == 0) add_peer_number(o, "agree_max_abs", NAN, r);
        toks = cJSON_AddObjectToObject(o, "tokens");
        for (int k = 0; k < BENCH_TOKEN_SETS; k++) {
            char key[16];
            snprintf(key, sizeof key, "%d", r->tokens[k]);
            cJSON *x = cJSON_AddObjectToObject(toks, key);
            cJSON_AddItemToObject(x, "lorajit_ms", bench_stat_json(row->lj[k]));
            add_peer_stat(x, "torch_ms", row->torch[k], r);
            cJSON_AddNumberToObject(x, "over_gemm", ratio(row->lj[k], r->gemm[k]));
            add_peer_number(x, "over_torch", ratio(row->lj[k], row->torch[k]), r);
        }
        cJSON_AddItemToArray(fw, o);
    }
    cJSON_AddItemToObject(root, "decode", bench_decode_json(r));
    cJSON_AddItemToObject(root, "shapes", bench_shapes_json(r));
    cJSON_AddItemToObject(root, "tokenizer", bench_tok_json(r));
    cJSON_AddItemToObject(root, "cache", bench_cache_json(r));
    cJSON_AddItemToObject(root, "kv_cache", bench_kv_json(r));
    cJSON_AddItemToObject(root, "threads", bench_threads_json(r));
    cJSON_AddItemToObject(root, "sched", bench_sched_json(r));
    cJSON_AddItemToObject(root, "serve", bench_serve_json(r));
    cJSON_AddItemToObject(root, "summary", summary_json(r));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return errno = ENOMEM, -1;
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    return ok ? 0 : -1;
}

// ----------------------------------------------------------------------------
// plots (gnuplot)

static FILE *open_in(const char *dir, const char *name, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    return fopen(path, "w");
}

int bench_plot(const bench_result *r, const char *out_dir, char *msg, size_t cap) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        snprintf(msg, cap, "gnuplot is not installed (apt-get install gnuplot-nox)");
        return -1;
    }
    char p[4096];
    FILE *f = open_in(out_dir, "bench_compile.dat", p, sizeof p);
    if (!f) return snprintf(msg, cap, "cannot write %s", p), -1;
    fprintf(f, "# layers, then per width: total ir llvm_ir opt jit (ms, medians)\n");
    for (int l = 0; l < BENCH_LAYER_SETS; l++) {
        fprintf(f, "%d", r->compile[l].n_layers);
        for (int w = 0; w < BENCH_WIDTHS; w++) {
            const bench_compile_row *c = &r->compile[w * BENCH_LAYER_SETS + l];
            fprintf(f, " %g %g %g %g %g", c->total.median, c->ir.median, c->llvm_ir.median, c->opt.median,
                    c->jit.median);
        }
        fputc('\n', f);
    }
    fclose(f);

    /* swap rows in order of bytes */
    int order[BENCH_SWAPS];
    for (int i = 0; i < BENCH_SWAPS; i++) order[i] = i;
    for (int i = 1; i < BENCH_SWAPS; i++)
        for (int j = i; j > 0 && r->swap[order[j]].bytes < r->swap[order[j - 1]].bytes; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    f = open_in(out_dir, "bench_swap.dat", p, sizeof p);
    if (!f) return snprintf(msg, cap, "cannot write %s", p), -1;
    fprintf(f, "# MiB memcpy load hotswap hotswap_mem torch label (ms, medians)\n");
    for (int k = 0; k < BENCH_SWAPS; k++) {
        const bench_swap_row *s = &r->swap[order[k]];
        fprintf(f, "%g %g %g %g %g ", s->bytes / 1048576.0, s->copy.median, s->load_file.median,
                s->hotswap_file.median, s->hotswap_mem.median);
        if (s->torch.reps) fprintf(f, "%g", s->torch.median);
        else fputc('?', f);
        fprintf(f, " \"%s r%d\"\n", s->targets, s->rank);
    }
    fclose(f);

    f = open_in(out_dir, "bench_forward.dat", p, sizeof p);
    if (!f) return snprintf(msg, cap, "cannot write %s", p), -1;
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) {
        fprintf(f, "# %d tokens: config lorajit torch (ms, medians)\n", r->tokens[t]);
        for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
            const bench_fwd_row *row = &r->fwd[c];
            fprintf(f, "\"%s\" %g ", row->name, row->lj[t].median);
            if (row->torch[t].reps) fprintf(f, "%g\n", row->torch[t].median);
            else fputs("?\n", f);
        }
        fputs("\n\n", f);
    }
    fclose(f);

    f = open_in(out_dir, "bench_plots.gp", p, sizeof p);
    if (!f) return snprintf(msg, cap, "cannot write %s", p), -1;
    char sub[400];
    snprintf(sub, sizeof sub, "%s, %d OpenBLAS thread%s%s%s", r->cpu, r->threads, r->threads > 1 ? "s" : "",
             r->peer_ok ? ", PyTorch " : "", r->peer_ok ? r->torch : "");
    fprintf(f, "# made by lorajit bench; run from %s\n", out_dir);
    fprintf(f, "set datafile missing '?'\nset terminal pngcairo noenhanced size 1000,620 font ',10'\nset grid\n");
    /* compile */
    fprintf(f, "set output 'bench_compile.png'\nset multiplot layout 1,2 title \"Compile time against layers (%s)\"\n", sub);
    fprintf(f, "set xrange [0:34]\nset xtics (2, 8, 16, 24, 32)\nset xlabel 'layers'\nset ylabel 'ms (median)'\nset key top left\n");
    for (int w = 0; w < BENCH_WIDTHS; w++) {
        const bench_width *wd = &r->compile[w * BENCH_LAYER_SETS].w;
        int c0 = 2 + 5 * w;
        fprintf(f, "set title 'dim %d, hidden %d'\n", wd->dim, wd->hidden_dim);
        fprintf(f, "plot 'bench_compile.dat' u 1:%d w lp lw 3 pt 7 t 'total', '' u 1:%d w lp dt 2 t 'IR (front end, plan)', "
                   "'' u 1:%d w lp dt 2 t 'LLVM IR', '' u 1:%d w lp dt 2 t 'O3', '' u 1:%d w lp dt 2 t 'machine code (LLJIT)'\n",
                c0, c0 + 1, c0 + 2, c0 + 3, c0 + 4);
    }
    fprintf(f, "unset multiplot\nset xrange [*:*]\nset xtics autofreq\n");
    /* swap */
    fprintf(f, "set output 'bench_swap.png'\nset title \"Adapter swap time against adapter bytes (dim %d, %d layers; %s)\"\n",
            r->dim, r->n_layers, sub);
    fprintf(f, "set logscale xy\nset xlabel 'adapter A+B bytes (MiB, f32)'\nset ylabel 'ms (median)'\nset key top left\n");
    fprintf(f, "plot 'bench_swap.dat' u 1:2 w l lw 3 lc rgb 'black' t 'memcpy of the same bytes (copy bound)', "
               "'' u 1:3 w p pt 7 ps 1.5 t 'load from file (page cache)', '' u 1:4 w p pt 5 ps 1.5 t 'hotswap from file', "
               "'' u 1:5 w p pt 9 ps 1.5 t 'slot write from memory', '' u 1:6 w p pt 13 ps 1.5 t 'PyTorch param.data.copy_', "
               "'' u 1:3:7 w labels offset 0,1.2 font ',8' notitle\n");
    fprintf(f, "unset logscale\n");
    /* forward */
    fprintf(f, "set terminal pngcairo noenhanced size 1500,560 font ',10'\nset output 'bench_forward.png'\n");
    fprintf(f, "set multiplot layout 1,%d title \"Forward time per configuration against the GEMM bound (dim %d, %d layers; %s)\"\n",
            BENCH_TOKEN_SETS, r->dim, r->n_layers, sub);
    fprintf(f, "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
               "set xtics rotate by -35 scale 0 font ',9'\nset xlabel ''\nset ylabel 'ms (median)'\nset yrange [0:*]\nset key top left\n");
    for (int t = 0; t < BENCH_TOKEN_SETS; t++) {
        fprintf(f, "set title '%d token%s'\n", r->tokens[t], r->tokens[t] > 1 ? "s" : "");
        fprintf(f, "plot 'bench_forward.dat' index %d u 2:xtic(1) t 'lorajit', '' index %d u 3 t 'PyTorch eager', "
                   "%g w l lw 3 dt 2 lc rgb 'black' t 'GEMMs alone (OpenBLAS)'\n", t, t, r->gemm[t].median);
    }
    fprintf(f, "unset multiplot\n");
    fclose(f);
    const char *const argv[] = {"gnuplot", "bench_plots.gp", NULL};
    if (bench_run(argv, out_dir, NULL, -1, "bench_plots.log") != 0) {
        snprintf(msg, cap, "gnuplot failed; see %s/bench_plots.log", out_dir);
        return -1;
    }
    return 0;
}
