/* bench_serve_report.c — section 12's table and JSON object (`lorajit bench --serve`):
 * what bench_serve.c measured, as bench.txt prints it and as bench.json and
 * OUT/bench_serve.json keep it. */
#include <stdio.h>

#include <cjson/cJSON.h>

#include "bench.h"

/* HTTP / C API of the median tokens/s; 0 when the C API's is 0. */
static double tps_ratio(const bench_serve_row *w) {
    return w->path[0].tokens_per_s > 0 ? w->path[1].tokens_per_s / w->path[0].tokens_per_s : 0;
}

void bench_serve_print(const bench_result *r, FILE *f) {
    const bench_serve_result *v = &r->serve;
    if (!v->rounds) return;
    fprintf(f, "\n12. `lorajit serve` over HTTP against the C API: %d clients at once, %d requests of %d + %d tokens "
            "(greedy) a run;\n   rank-8 q,v adapters, --max-batch %d, %d thread%s both ways; the small model: 4 layers, "
            "dim 256, vocab 2048, F32;\n   the dim-1024 one: 8 layers, hidden 2816, vocab 32000, BF16. C API = the "
            "clients submit to one lorajit_sched\n   stepped by one driver thread (as the server's backend); HTTP = a "
            "`lorajit serve` child (SSE), its clients on one\n   thread over epoll, each on a kept-alive connection. "
            "tokens/s: median of %d alternating rounds; latencies over\n   all of them; CPU/tok: both processes' CPU "
            "time a token (pool threads' polling included), server: the child's part\n",
            v->clients, v->requests, v->prompt, v->new_tokens, v->max_batch, v->threads, v->threads == 1 ? "" : "s",
            v->rounds);
    fprintf(f, "   %-34s %-6s %10s %10s %10s %10s %10s %10s %9s %9s\n", "scenario", "path", "tokens/s", "TTFT p50",
            "TTFT p99", "ITL p50", "ITL p99", "ITL mean", "CPU/tok", "server");
    for (int s = 0; s < v->scenarios; s++) {
        const bench_serve_row *w = &v->rows[s];
        for (int p = 0; p < 2; p++) {
            const bench_serve_path *o = &w->path[p];
            fprintf(f, "   %-34s %-6s %10.1f %8.2fms %8.2fms %8.2fms %8.2fms %8.2fms %7.0fus %7.0fus\n",
                    p ? "" : w->what, p ? "HTTP" : "C API", o->tokens_per_s, o->ttft_p50, o->ttft_p99, o->itl_p50,
                    o->itl_p99, o->itl_mean, o->cpu_us_per_token, o->server_us_per_token);
        }
        fprintf(f, "   %-34s HTTP / C API: throughput %.3f, TTFT p50 %+.2f ms, p99 %+.2f ms, ITL p50 %+.2f ms%s\n", "",
                tps_ratio(w), w->path[1].ttft_p50 - w->path[0].ttft_p50, w->path[1].ttft_p99 - w->path[0].ttft_p99,
                w->path[1].itl_p50 - w->path[0].itl_p50, w->same_tokens ? "" : "; token ids DIFFER");
        fprintf(f, "   %-34s   median of the rounds' pairs: throughput %.3f, TTFT p50 %+.2f ms\n", "", w->pair_tps_ratio,
                w->pair_ttft_p50_diff);
        const bench_serve_path *pc = &w->paced[0], *ph = &w->paced[1];
        fprintf(f, "   %-34s paced, %d requests a run at %.1f/s: TTFT p50 %.2f -> %.2f ms (%+.2f), p99 %+.2f ms, "
                "ITL p50 %+.2f ms\n", "", w->paced_requests, w->paced_rate, pc->ttft_p50, ph->ttft_p50,
                ph->ttft_p50 - pc->ttft_p50, ph->ttft_p99 - pc->ttft_p99, ph->itl_p50 - pc->itl_p50);
    }
    fprintf(f, "   paced: the same requests (half as many) sent at Poisson arrival times at half the C API's "
            "closed-loop\n   rate, the same times both ways (open loop, as vLLM's benchmark_serving --request-rate): "
            "C API -> HTTP\n");
    fprintf(f, "   goal (issue 15): HTTP throughput >= 0.95 of the C API's, TTFT p50 <= +2 ms\n");
}

/* {ttft_p50_ms, ...}: one path's latencies. */
static cJSON *latency_json(const bench_serve_path *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "ttft_p50_ms", o->ttft_p50);
    cJSON_AddNumberToObject(j, "ttft_p99_ms", o->ttft_p99);
    cJSON_AddNumberToObject(j, "itl_p50_ms", o->itl_p50);
    cJSON_AddNumberToObject(j, "itl_p99_ms", o->itl_p99);
    cJSON_AddNumberToObject(j, "itl_mean_ms", o->itl_mean);
    return j;
}

/* {tokens_per_s, ttft_p50_ms, ...}: one path's closed-loop figures. */
static cJSON *path_json(const bench_serve_path *o) {
    cJSON *j = latency_json(o);
    cJSON_AddNumberToObject(j, "tokens_per_s", o->tokens_per_s);
    cJSON_AddNumberToObject(j, "cpu_us_per_token", o->cpu_us_per_token);
    cJSON_AddNumberToObject(j, "server_cpu_us_per_token", o->server_us_per_token);
    return j;
}

struct cJSON *bench_serve_json(const bench_result *r) {
    const bench_serve_result *v = &r->serve;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "clients", v->clients);
    cJSON_AddNumberToObject(j, "requests_per_run", v->requests);
    cJSON_AddNumberToObject(j, "prompt", v->prompt);
    cJSON_AddNumberToObject(j, "new_tokens", v->new_tokens);
    cJSON_AddNumberToObject(j, "rounds", v->rounds);
    cJSON_AddNumberToObject(j, "threads", v->threads);
    cJSON_AddNumberToObject(j, "max_batch", v->max_batch);
    cJSON_AddNumberToObject(j, "registered", v->names);
    cJSON *sc = cJSON_AddObjectToObject(j, "scenarios");
    for (int s = 0; s < v->scenarios && v->rounds; s++) {
        const bench_serve_row *w = &v->rows[s];
        cJSON *o = cJSON_AddObjectToObject(sc, w->name);
        cJSON_AddStringToObject(o, "what", w->what);
        cJSON_AddNumberToObject(o, "adapters", w->adapters);
        cJSON_AddNumberToObject(o, "slots", w->slots);
        cJSON_AddItemToObject(o, "c_api", path_json(&w->path[0]));
        cJSON_AddItemToObject(o, "http", path_json(&w->path[1]));
        cJSON_AddNumberToObject(o, "http_over_c_api_tokens_per_s", tps_ratio(w));
        cJSON_AddNumberToObject(o, "http_minus_c_api_ttft_p50_ms", w->path[1].ttft_p50 - w->path[0].ttft_p50);
        cJSON_AddNumberToObject(o, "http_minus_c_api_itl_p50_ms", w->path[1].itl_p50 - w->path[0].itl_p50);
        cJSON_AddNumberToObject(o, "paired_http_over_c_api_tokens_per_s", w->pair_tps_ratio);
        cJSON_AddNumberToObject(o, "paired_http_minus_c_api_ttft_p50_ms", w->pair_ttft_p50_diff);
        cJSON_AddBoolToObject(o, "same_tokens", w->same_tokens);
        cJSON *pc = cJSON_AddObjectToObject(o, "paced");
        cJSON_AddNumberToObject(pc, "requests", w->paced_requests);
        cJSON_AddNumberToObject(pc, "requests_per_s", w->paced_rate);
        cJSON_AddItemToObject(pc, "c_api", latency_json(&w->paced[0]));
        cJSON_AddItemToObject(pc, "http", latency_json(&w->paced[1]));
        cJSON_AddNumberToObject(pc, "http_minus_c_api_ttft_p50_ms", w->paced[1].ttft_p50 - w->paced[0].ttft_p50);
        cJSON_AddNumberToObject(pc, "http_minus_c_api_itl_p50_ms", w->paced[1].itl_p50 - w->paced[0].itl_p50);
    }
    return j;
}
