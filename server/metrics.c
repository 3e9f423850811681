/* metrics.c — the server's counters and histograms (one struct, updated where the
 * event happens) and their Prometheus text for GET /metrics, under vLLM's metric
 * names so that existing dashboards and the Gateway API Inference Extension's
 * endpoint picker read them unchanged: vllm:num_requests_running / _waiting,
 * vllm:gpu_cache_usage_perc (blocks of the paged KV cache in use, 0..1),
 * vllm:lora_requests_info, token counters, TTFT / inter-token / e2e histograms, and
 * lorajit:scheduler_steps_total / _step_tokens_total (their ratio: the mean batch).
 * Also the clock and the one log line per request. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"

/* seconds: TTFT and end-to-end span ms to minutes; inter-token ms to seconds */
static const double LATENCY_BOUNDS[SRV_HIST_BUCKETS] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                                        0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0};

double srv_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

void srv_log_request(srv_server *s, unsigned long long id, const char *method, const char *path,
                     const srv_reply *r, double total_ms) {
    pthread_mutex_lock(&s->log_mu);
    fprintf(stderr, "lorajit serve: request %llu %s %s %d adapter=%s prompt_tokens=%d completion_tokens=%d "
            "finish=%s queue_ms=%.1f ttft_ms=%.1f total_ms=%.1f\n", id, method, path, r->status,
            r->adapter[0] ? r->adapter : "-", r->prompt_tokens, r->completion_tokens, r->finish ? r->finish : "-",
            r->queue_ms, r->ttft_ms, total_ms);
    pthread_mutex_unlock(&s->log_mu);
}

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->ttft.bounds = m->itl.bounds = m->e2e.bounds = m->queue.bounds = LATENCY_BOUNDS;
}

void srv_metrics_destroy(srv_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void srv_metrics_observe(srv_metrics *m, srv_histogram *h, double seconds) {
    pthread_mutex_lock(&m->mu);
    int b = 0;
    while (b < SRV_HIST_BUCKETS && seconds > h->bounds[b]) b++;
    h->counts[b]++;
    h->sum += seconds;
    h->n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_finished(srv_metrics *m, int prompt_tokens, int generation_tokens, int reason) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)prompt_tokens;
    m->generation_tokens += (uint64_t)generation_tokens;
    m->finished[reason & 3]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_http(srv_metrics *m, int status) {
    int k = status < 300 ? 0 : status == 400 ? 1 : status == 401 ? 2 : status == 404 ? 3
          : (status == 413 || status == 429 || status == 503) ? 4 : 5;
    pthread_mutex_lock(&m->mu);
    m->http_requests[k]++;
    pthread_mutex_unlock(&m->mu);
}

/* A growing text buffer; on out of memory it stays NULL. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (!t->s) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if ((size_t)k < t->cap - t->n) {
            t->n += (size_t)k;
            return;
        }
        char *more = realloc(t->s, t->cap * 2 + (size_t)k);
        if (!more) {
            free(t->s);
            t->s = NULL;
            return;
        }
        t->s = more;
        t->cap = t->cap * 2 + (size_t)k;
    }
}

static void put_histogram(text *t, const char *name, const char *help, const srv_histogram *h, const char *model) {
    put(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int b = 0; b < SRV_HIST_BUCKETS; b++) {
        cum += h->counts[b];
        put(t, "%s_bucket{le=\"%g\",model_name=\"%s\"} %llu\n", name, h->bounds[b], model, (unsigned long long)cum);
    }
    cum += h->counts[SRV_HIST_BUCKETS];
    put(t, "%s_bucket{le=\"+Inf\",model_name=\"%s\"} %llu\n", name, model, (unsigned long long)cum);
    put(t, "%s_sum{model_name=\"%s\"} %.6f\n%s_count{model_name=\"%s\"} %llu\n", name, model, h->sum, name, model,
        (unsigned long long)h->n);
}

static void put_counter(text *t, const char *name, const char *help, uint64_t v, const char *model) {
    put(t, "# HELP %s %s\n# TYPE %s counter\n%s{model_name=\"%s\"} %llu\n", name, help, name, name, model,
        (unsigned long long)v);
}

char *srv_metrics_text(srv_metrics *m, const srv_backend_load *load, const char *running_adapters,
                       const char *waiting_adapters, int max_lora, const char *model) {
    text t = {.s = malloc(8192), .cap = 8192};
    pthread_mutex_lock(&m->mu);
    srv_metrics c = *m; /* a consistent copy, formatted without the lock */
    pthread_mutex_unlock(&m->mu);
    put(&t, "# HELP vllm:num_requests_running Number of requests running (generating) now.\n"
            "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"%s\"} %d\n", model,
        load->running);
    put(&t, "# HELP vllm:num_requests_waiting Number of requests admitted and waiting for a sequence.\n"
            "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"%s\"} %d\n", model,
        load->waiting);
    put(&t, "# HELP vllm:gpu_cache_usage_perc KV-cache usage, 0..1 (blocks of the paged KV cache in use / blocks).\n"
            "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{model_name=\"%s\"} %.4f\n", model,
        load->kv_usage);
    put(&t, "# HELP vllm:lora_requests_info Running stats on LoRA requests.\n# TYPE vllm:lora_requests_info gauge\n"
            "vllm:lora_requests_info{max_lora=\"%d\",running_lora_adapters=\"%s\",waiting_lora_adapters=\"%s\"} %.1f\n",
        max_lora, running_adapters, waiting_adapters, (double)time(NULL));
    put_counter(&t, "lorajit:scheduler_steps_total", "Steps of the continuous-batching scheduler.", load->steps, model);
    put_counter(&t, "lorajit:scheduler_step_tokens_total", "Tokens sampled by those steps (over steps: the mean batch).",
                load->step_tokens, model);
    put_counter(&t, "vllm:prompt_tokens_total", "Prefill tokens processed.", c.prompt_tokens, model);
    put_counter(&t, "vllm:generation_tokens_total", "Generation tokens processed.", c.generation_tokens, model);
    static const char *const reasons[4] = {"stop", "length", "abort", "error"};
    put(&t, "# HELP vllm:request_success_total Finished requests by finish reason.\n"
            "# TYPE vllm:request_success_total counter\n");
    for (int r = 0; r < 4; r++)
        put(&t, "vllm:request_success_total{finished_reason=\"%s\",model_name=\"%s\"} %llu\n", reasons[r], model,
            (unsigned long long)c.finished[r]);
    static const char *const classes[6] = {"2xx", "400", "401", "404", "413_429_503", "5xx"};
    put(&t, "# HELP lorajit:http_requests_total HTTP requests by status.\n# TYPE lorajit:http_requests_total counter\n");
    for (int k = 0; k < 6; k++)
        put(&t, "lorajit:http_requests_total{status=\"%s\"} %llu\n", classes[k], (unsigned long long)c.http_requests[k]);
    put_histogram(&t, "vllm:time_to_first_token_seconds", "Time to first token in seconds.", &c.ttft, model);
    put_histogram(&t, "vllm:time_per_output_token_seconds", "Inter-token latency in seconds.", &c.itl, model);
    put_histogram(&t, "vllm:e2e_request_latency_seconds", "End-to-end request latency in seconds.", &c.e2e, model);
    put_histogram(&t, "vllm:request_queue_time_seconds", "Time spent waiting for a sequence.", &c.queue, model);
    return t.s;
}
