/* bench_threads.c — section 10 of `lorajit bench`: does throughput follow the cores a
 * process actually gets? Decode at 1 and 2 threads on the decode section's model
 * (TinyLlama's shape, BF16), on idle cores and next to one busy process, and a
 * 12-token prefill at 1 and 2 threads.
 *
 * Inputs: r->dec.model_dir (bench_decode made it). Two engines, options.threads 1
 * and 2, one sequence each. Round-robin, each round: a run of DECODE_STEPS decode
 * steps from position 0 on each engine, idle; the same with a child process that
 * spins (forked before the run, given 20 ms to be scheduled, killed after); a
 * prefill on each engine, idle; the first decode step right after an (untimed) prefill,
 * and the second step right after an untimed prefill and first step (nothing sleeps
 * between them, as in a request). Outputs: r->thr, its table lines and JSON; the
 * ratios busy / idle at 2 threads (goal >= 0.45), busy 2 threads / busy 1 thread
 * (goal >= 1), prefill 2 threads / 1 thread (time; goal <= 0.6), first step / second
 * step (issue 16's goal <= 1.1). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum {
    DECODE_STEPS = 8,   /* decode steps of one timed run */
    PREFILL = 12,       /* a chat turn's prompt */
    THR_SEQ_LEN = 64,
};

typedef struct thr_arg {
    lorajit_engine *e;
    bool busy, prefill;
    int step;           /* 0: a run of decode steps; 1: the first step after a prefill; 2: the second */
    pid_t child;        /* the busy process while a busy run is timed; 0 otherwise */
    bool child_ok;      /* every busy run had its child alive until the kill */
    int vocab;
    float *logits;      /* [vocab] the last step's, or [PREFILL, vocab] the prefill's */
} thr_arg;

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL); }

/* A child that spins until it is killed: one process competing for a core. */
static pid_t spawn_busy(void) {
    pid_t pid = fork();
    if (pid < 0) bench_die("fork failed");
    if (pid == 0) {
        volatile uint64_t x = 0;
        for (;;) x++;
    }
    return pid;
}

/* tok[PREFILL]: the prompt every run uses. */
static void prompt_tokens(int32_t *tok, int vocab) {
    for (int i = 0; i < PREFILL; i++) tok[i] = (int32_t)((i * 7919u + 13) % (unsigned)vocab);
}

/* Empties the sequence; for a busy run starts the child; for a step run prefills (and
 * for the second step decodes once) first. Untimed. */
static void thr_prep(void *p) {
    thr_arg *a = p;
    bench_must(lorajit_seq_reset(a->e, 0), a->e, "seq_reset");
    sleep_ms(30); /* every waiting thread of the last run asleep */
    if (a->step) { /* the request so far, untimed; the timed step follows at once */
        int32_t tok[PREFILL];
        prompt_tokens(tok, a->vocab);
        bench_must(lorajit_seq_prefill(a->e, 0, tok, PREFILL, NULL), a->e, "seq_prefill");
        int seq = 0;
        if (a->step == 2) bench_must(lorajit_decode(a->e, &seq, &tok[0], 1, a->logits), a->e, "decode");
    }
    if (a->busy) {
        a->child = spawn_busy();
        sleep_ms(20);
    }
}

static void thr_run(void *p) {
    thr_arg *a = p;
    int32_t tok[PREFILL];
    prompt_tokens(tok, a->vocab);
    if (a->step) {
        int seq = 0;
        bench_must(lorajit_decode(a->e, &seq, &tok[a->step], 1, a->logits), a->e, "decode");
        return;
    }
    if (a->prefill) {
        bench_must(lorajit_seq_prefill(a->e, 0, tok, PREFILL, a->logits), a->e, "seq_prefill");
        return;
    }
    int seq = 0;
    for (int s = 0; s < DECODE_STEPS; s++)
        bench_must(lorajit_decode(a->e, &seq, &tok[s % PREFILL], 1, a->logits), a->e, "decode");
}

/* Kills the child; it must still have been running (not exited on its own). */
static void thr_undo(void *p) {
    thr_arg *a = p;
    if (!a->child) return;
    int status = 0;
    bool alive = waitpid(a->child, &status, WNOHANG) == 0;
    kill(a->child, SIGKILL);
    waitpid(a->child, &status, 0);
    a->child_ok &= alive;
    a->child = 0;
}

static lorajit_engine *open_threads(const char *model_dir, int threads, double *ms) {
    lorajit_options o = {.targets = "none", .max_tokens = PREFILL, .max_batch = 1, .max_seq_len = THR_SEQ_LEN,
                         .threads = threads};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model_dir, &o), e, model_dir);
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    *ms = st.compile_ms;
    return e;
}

void bench_threads(bench_result *r) {
    bench_threads_result *t = &r->thr;
    *t = (bench_threads_result){.steps = DECODE_STEPS, .prompt = PREFILL, .rounds = r->quick ? 3 : 10};
    bench_progress("threads: compiling 1- and 2-thread engines on the decode model");
    lorajit_engine *e[2];
    for (int k = 0; k < 2; k++) e[k] = open_threads(r->dec.model_dir, k + 1, &t->open_ms[k]);
    int vocab = lorajit_vocab_size(e[0]);
    /* logits: 4 decode rows, 2 prefills, 4 step rows ([threads][first, second]) */
    size_t v = (size_t)vocab, pf = PREFILL * v;
    float *logits = calloc(8 * v + 2 * pf, sizeof(float));
    if (!logits) bench_die("out of memory");
    float *step_logits = logits + 4 * v + 2 * pf;
    /* jobs: [threads][idle, busy] decode, [threads] prefill, [threads][first, second] step */
    thr_arg args[10];
    bench_job jobs[10];
    for (int k = 0; k < 2; k++) {
        for (int b = 0; b < 2; b++) {
            args[2 * k + b] = (thr_arg){e[k], b == 1, false, 0, 0, true, vocab, logits + (size_t)(2 * k + b) * v};
            jobs[2 * k + b] = (bench_job){thr_prep, thr_run, thr_undo, &args[2 * k + b], &t->decode[k][b]};
        }
        args[4 + k] = (thr_arg){e[k], false, true, 0, 0, true, vocab, logits + 4 * v + (size_t)k * pf};
        jobs[4 + k] = (bench_job){thr_prep, thr_run, NULL, &args[4 + k], &t->prefill[k]};
        for (int s = 0; s < 2; s++) {
            thr_arg *a = &args[6 + 2 * k + s];
            *a = (thr_arg){e[k], false, false, s + 1, 0, true, vocab, step_logits + (size_t)(2 * k + s) * v};
            jobs[6 + 2 * k + s] = (bench_job){thr_prep, thr_run, NULL, a, s ? &t->second[k] : &t->first[k]};
        }
    }
    bench_progress("threads: %d rounds of %d decode steps at 1 and 2 threads, idle and with a busy process, "
                   "a %d-token prefill, and the first and second step after it", t->rounds, DECODE_STEPS, PREFILL);
    bench_measure_jobs(jobs, 10, t->rounds);
    t->busy_ok = args[1].child_ok && args[3].child_ok;
    /* the same steps on 1 and 2 threads, idle or busy: the same bits */
    t->same_bits = !memcmp(logits, logits + v, sizeof(float) * v) && !memcmp(logits, logits + 2 * v, sizeof(float) * v) &&
                   !memcmp(logits, logits + 3 * v, sizeof(float) * v) &&
                   !memcmp(logits + 4 * v, logits + 4 * v + pf, sizeof(float) * pf) &&
                   !memcmp(step_logits, step_logits + 2 * v, sizeof(float) * v) &&
                   !memcmp(step_logits + v, step_logits + 3 * v, sizeof(float) * v);
    free(logits);
    for (int k = 0; k < 2; k++) lorajit_engine_free(e[k]);
}

static double tokens_per_s(const bench_threads_result *t, bench_stat s) { return t->steps * 1e3 / s.median; }
static double busy_over_idle(const bench_threads_result *t) {
    return tokens_per_s(t, t->decode[1][1]) / tokens_per_s(t, t->decode[1][0]);
}
static double busy2_over_busy1(const bench_threads_result *t) {
    return tokens_per_s(t, t->decode[1][1]) / tokens_per_s(t, t->decode[0][1]);
}
static double prefill2_over_1(const bench_threads_result *t) { return t->prefill[1].median / t->prefill[0].median; }
static double first_over_second(const bench_threads_result *t, int k) {
    return t->first[k].median / t->second[k].median;
}

void bench_threads_print(const bench_result *r, FILE *f) {
    const bench_threads_result *t = &r->thr;
    fprintf(f, "\n10. Threads next to a busy process (%s model of section 4; OpenBLAS pinned to 1 thread, the "
               "engine's pool does the splitting)\n", r->dec.dtype);
    fprintf(f, "  %-32s %12s %12s %10s\n", "decode, batch 1", "1 thread", "2 threads", "2 / 1");
    const char *what[2] = {"idle (tokens/s)", "one busy process (tokens/s)"};
    for (int b = 0; b < 2; b++)
        fprintf(f, "  %-32s %12.2f %12.2f %10.2f\n", what[b], tokens_per_s(t, t->decode[0][b]),
                tokens_per_s(t, t->decode[1][b]), tokens_per_s(t, t->decode[1][b]) / tokens_per_s(t, t->decode[0][b]));
    fprintf(f, "  %-32s %12.1f %12.1f %10.2f\n", "prefill of 12 tokens (ms)", t->prefill[0].median,
            t->prefill[1].median, prefill2_over_1(t));
    fprintf(f, "  %-32s %12.1f %12.1f %10.2f\n", "first step after it (ms)", t->first[0].median,
            t->first[1].median, t->first[1].median / t->first[0].median);
    fprintf(f, "  %-32s %12.1f %12.1f %10.2f\n", "second step (ms)", t->second[0].median, t->second[1].median,
            t->second[1].median / t->second[0].median);
    fprintf(f, "  busy / idle at 2 threads %.2f (goal >= 0.45); busy: 2 threads / 1 thread %.2f (goal >= 1.0); "
               "prefill 12, 2 threads / 1 thread %.2f (time, goal <= 0.6); first step / second step %.2f at 1 "
               "thread, %.2f at 2 (goal <= 1.1)\n", busy_over_idle(t), busy2_over_busy1(t), prefill2_over_1(t),
            first_over_second(t, 0), first_over_second(t, 1));
    fprintf(f, "  %d rounds round-robin, %d steps a run from position 0; logits of 1 and 2 threads %s; busy process "
               "%s. Other processes on the machine count too (load average in the header).\n", t->rounds, t->steps,
            t->same_bits ? "the same bits" : "DIFFER", t->busy_ok ? "ran" : "DID NOT RUN");
}

cJSON *bench_threads_json(const bench_result *r) {
    const bench_threads_result *t = &r->thr;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "what", "decode (batch 1, a run of `steps` steps from position 0) and prefill on the "
                                       "decode section's model, engines of options.threads 1 and 2, idle and next "
                                       "to one spinning child process; OpenBLAS pinned to 1 thread");
    cJSON_AddNumberToObject(o, "steps", t->steps);
    cJSON_AddNumberToObject(o, "prompt", t->prompt);
    cJSON_AddNumberToObject(o, "rounds", t->rounds);
    cJSON_AddItemToObject(o, "compile_ms", cJSON_CreateDoubleArray(t->open_ms, 2));
    const char *keys[2][2] = {{"t1_idle", "t1_busy"}, {"t2_idle", "t2_busy"}};
    cJSON *d = cJSON_AddObjectToObject(o, "decode");
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < 2; b++) {
            cJSON *x = cJSON_AddObjectToObject(d, keys[k][b]);
            cJSON_AddItemToObject(x, "run_ms", bench_stat_json(t->decode[k][b]));
            cJSON_AddNumberToObject(x, "tokens_per_s", tokens_per_s(t, t->decode[k][b]));
        }
    cJSON *p = cJSON_AddObjectToObject(o, "prefill");
    cJSON_AddItemToObject(p, "t1_ms", bench_stat_json(t->prefill[0]));
    cJSON_AddItemToObject(p, "t2_ms", bench_stat_json(t->prefill[1]));
    cJSON *st = cJSON_AddObjectToObject(o, "first_step");
    cJSON_AddStringToObject(st, "what", "one decode step right after a prefill of `prompt` tokens (first), and the "
                                        "step after that first step (second); nothing sleeps between them");
    cJSON_AddItemToObject(st, "t1_first_ms", bench_stat_json(t->first[0]));
    cJSON_AddItemToObject(st, "t1_second_ms", bench_stat_json(t->second[0]));
    cJSON_AddItemToObject(st, "t2_first_ms", bench_stat_json(t->first[1]));
    cJSON_AddItemToObject(st, "t2_second_ms", bench_stat_json(t->second[1]));
    cJSON *q = cJSON_AddObjectToObject(o, "ratios");
    cJSON_AddNumberToObject(q, "busy_over_idle_t2", busy_over_idle(t));
    cJSON_AddNumberToObject(q, "busy_t2_over_busy_t1", busy2_over_busy1(t));
    cJSON_AddNumberToObject(q, "prefill_t2_over_t1", prefill2_over_1(t));
    cJSON_AddNumberToObject(q, "first_over_second_t1", first_over_second(t, 0));
    cJSON_AddNumberToObject(q, "first_over_second_t2", first_over_second(t, 1));
    cJSON_AddBoolToObject(o, "same_bits", t->same_bits);
    cJSON_AddBoolToObject(o, "busy_process_ran", t->busy_ok);
    return o;
}
