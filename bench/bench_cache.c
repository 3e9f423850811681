/* bench_cache.c — section 8 of `lorajit bench`: many adapters through few slots (the
 * adapter cache, issue 14). On the forward model, with 8 slots of rank 64 on every
 * linear: the same run of generate calls (one request each: a 16-token prompt, 8 new
 * tokens) timed three ways, round-robin in one run:
 *   one   every request uses one adapter, loaded once (no swaps: the baseline);
 *   zipf  each request names one of N registered adapters drawn Zipf(1.0) (N = 1000;
 *         the names share the folders of the bench's adapters, 17 of them, of ranks 4
 *         to 64): misses load just in time, evicting the least recently used;
 *   cold  the same draws with the host copies turned off (every miss reads its folder).
 * Throughput is requests / time; zipf / one and cold / one are the figures (goal of
 * issue 14, with continuous batching: 1000 Zipf / 1 adapter >= 0.8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum { BC_NAMES = 1000, BC_QUICK_NAMES = 200, BC_SLOTS = 8, BC_PROMPT = 16, BC_NEW = 8 };

typedef struct bc_arg {
    lorajit_engine *e;
    int n_req;
    char (*names)[16];    /* [n_req] the adapter of each request */
    int32_t prompt[BC_PROMPT], out[BC_NEW];
} bc_arg;

static void run(void *p) {
    bc_arg *a = p;
    for (int i = 0; i < a->n_req; i++) {
        lorajit_request r = {.prompt = a->prompt, .n_prompt = BC_PROMPT, .adapter = a->names[i], .max_new = BC_NEW,
                             .out = a->out};
        bench_must(lorajit_generate(a->e, &r, 1, NULL, NULL, NULL), a->e, "generate");
    }
}

void bench_cache(bench_result *r, const char *model_dir, const char *const *folders, int n_folders) {
    bench_cache_result *c = &r->cache;
    *c = (bench_cache_result){.n_names = r->quick ? BC_QUICK_NAMES : BC_NAMES, .n_folders = n_folders,
                              .n_slots = BC_SLOTS, .prompt = BC_PROMPT, .new_tokens = BC_NEW,
                              .n_req = r->quick ? 24 : 96};
    bench_progress("adapter cache: %d adapters registered, %d slots", c->n_names, c->n_slots);
    lorajit_options o = {.max_rank = 64, .targets = "all-linear", .max_adapters = BC_SLOTS, .max_tokens = BC_PROMPT,
                         .max_batch = 1, .max_seq_len = BC_PROMPT + BC_NEW};
    lorajit_engine *e[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        lorajit_status st = lorajit_engine_open(&e[k], model_dir, &o);
        bench_must(st, e[k], model_dir);
    }
    bench_must(lorajit_load_adapter(e[0], "one", folders[0]), e[0], folders[0]);
    for (int k = 1; k < 3; k++)
        for (int i = 0; i < c->n_names; i++) {
            char name[16];
            snprintf(name, sizeof name, "n%04d", i);
            bench_must(lorajit_register_adapter(e[k], name, folders[i % n_folders]), e[k], "register");
        }
    bench_must(lorajit_set_adapter_cache(e[2], 0), e[2], "set_adapter_cache");
    int *draw = malloc(sizeof *draw * (size_t)c->n_req);
    char (*one)[16] = malloc(sizeof *one * (size_t)c->n_req), (*zn)[16] = malloc(sizeof *zn * (size_t)c->n_req);
    if (!draw || !one || !zn) bench_die("out of memory");
    bench_zipf(c->n_names, c->n_req, draw);
    int distinct = 0;
    for (int i = 0; i < c->n_req; i++) {
        snprintf(one[i], sizeof one[i], "one");
        snprintf(zn[i], sizeof zn[i], "n%04d", draw[i]);
        bool seen = false;
        for (int j = 0; j < i; j++) seen |= draw[j] == draw[i];
        distinct += !seen;
    }
    c->distinct = distinct;
    bc_arg a[3] = {{.e = e[0], .n_req = c->n_req, .names = one}, {.e = e[1], .n_req = c->n_req, .names = zn},
                   {.e = e[2], .n_req = c->n_req, .names = zn}};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < BC_PROMPT; i++) a[k].prompt[i] = (int32_t)((i * 131 + 7) % r->vocab);
    bench_job jobs[3] = {{NULL, run, NULL, &a[0], &c->one}, {NULL, run, NULL, &a[1], &c->zipf},
                         {NULL, run, NULL, &a[2], &c->cold}};
    lorajit_stats s0, s1;
    lorajit_get_stats(e[1], &s0);
    bench_measure_jobs(jobs, 3, r->quick ? 2 : 5);
    lorajit_get_stats(e[1], &s1);
    int runs = (r->quick ? 2 : 5) + 1;
    c->jit_loads = (double)(s1.jit_loads - s0.jit_loads) / runs;
    c->evictions = (double)(s1.evictions - s0.evictions) / runs;
    c->host_hits = (double)(s1.host_hits - s0.host_hits) / runs;
    c->compiles = s1.compiles;
    for (int k = 0; k < 3; k++) lorajit_engine_free(e[k]);
    free(draw), free(one), free(zn);
}

void bench_cache_print(const bench_result *r, FILE *f) {
    const bench_cache_result *c = &r->cache;
    if (!c->one.reps) return;
    double one = c->n_req / (c->one.median / 1e3), z = c->n_req / (c->zipf.median / 1e3),
           cold = c->n_req / (c->cold.median / 1e3);
    fprintf(f, "\n8. Many adapters through %d slots (the adapter cache): %d generate calls of %d + %d tokens\n",
            c->n_slots, c->n_req, c->prompt, c->new_tokens);
    fprintf(f, "   %d names registered over %d adapter folders (ranks 4-64), drawn Zipf(1.0): %d distinct\n",
            c->n_names, c->n_folders, c->distinct);
    fprintf(f, "   one adapter      %8.1f requests/s\n", one);
    fprintf(f, "   Zipf, host copies %7.1f requests/s  = %.2f x one  (per run: %.1f just-in-time loads, %.1f "
            "evictions, %.1f from host copies)\n", z, z / one, c->jit_loads, c->evictions, c->host_hits);
    fprintf(f, "   Zipf, no copies   %7.1f requests/s  = %.2f x one  (every miss reads its folder)\n", cold, cold / one);
    fprintf(f, "   compiles: %lld (the code never changes)\n", (long long)c->compiles);
}

struct cJSON *bench_cache_json(const bench_result *r) {
    const bench_cache_result *c = &r->cache;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "registered", c->n_names);
    cJSON_AddNumberToObject(j, "folders", c->n_folders);
    cJSON_AddNumberToObject(j, "slots", c->n_slots);
    cJSON_AddNumberToObject(j, "requests", c->n_req);
    cJSON_AddNumberToObject(j, "distinct", c->distinct);
    cJSON_AddItemToObject(j, "one_ms", bench_stat_json(c->one));
    cJSON_AddItemToObject(j, "zipf_ms", bench_stat_json(c->zipf));
    cJSON_AddItemToObject(j, "cold_ms", bench_stat_json(c->cold));
    cJSON_AddNumberToObject(j, "zipf_over_one", c->zipf.median > 0 ? c->one.median / c->zipf.median : 0);
    cJSON_AddNumberToObject(j, "cold_over_one", c->cold.median > 0 ? c->one.median / c->cold.median : 0);
    cJSON_AddNumberToObject(j, "jit_loads_per_run", c->jit_loads);
    cJSON_AddNumberToObject(j, "evictions_per_run", c->evictions);
    cJSON_AddNumberToObject(j, "host_hits_per_run", c->host_hits);
    cJSON_AddNumberToObject(j, "compiles", (double)c->compiles);
    return j;
}
