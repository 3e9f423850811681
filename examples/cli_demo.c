/* cli_demo.c — `lorajit demo`: compile once, swap many. Opens one engine on the
 * conformance model (or --model), loads its adapters, then for --cycles rounds
 * hotswaps, sets, disables and enables them, checking after every change that the
 * logits equal those first seen for the same adapter state (and the base model's
 * when disabled) and that the engine compiled exactly once; prints the timings.
 * Uses only lorajit.h and libc. Exit status: 0 ok, 1 a failed check, 2 usage. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DEMO_MAX 3    /* adapters the demo cycles through */
#define DEMO_PROMPT 7 /* tokens of the fixed prompt */

/* Logits seen for one adapter state, keyed by a text description of the state. */
typedef struct demo_state {
    char key[256];
    float *logits; /* [n_prompt, vocab_size] */
} demo_state;

typedef struct demo {
    lorajit_engine *e;
    int n_ad;                      /* adapters in use, 1..DEMO_MAX */
    char names[DEMO_MAX][64];      /* adapter names = their folder names */
    char dirs[DEMO_MAX][4400];     /* their folders */
    int32_t prompt[DEMO_PROMPT];
    size_t n_logits;               /* n_prompt * vocab_size */
    float *base, *got;             /* [n_prompt, vocab_size] */
    demo_state *states;
    int n_states, n_recur, n_disabled, n_fail;
    double *swap_ms, *fwd_ms;      /* one entry per hotswap / forward */
    int n_swaps, n_fwd;
} demo;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Finds the conformance set: $LORAJIT_DATA, else <exe dir>/../tests/conformance. */
static int find_data_dir(char *out, size_t cap) {
    const char *env = getenv("LORAJIT_DATA");
    if (env && *env) return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    return snprintf(out, cap, "%s/../tests/conformance", exe) < (int)cap ? 0 : -1;
}

/* Writes the adapters' folder for model_dir: DIR/../../adapters/<basename DIR>. */
static int adapters_for_model(const char *model_dir, char *out, size_t cap) {
    char m[4096];
    if (snprintf(m, sizeof m, "%s", model_dir) >= (int)sizeof m) return -1;
    size_t len = strlen(m);
    while (len > 1 && m[len - 1] == '/') m[--len] = '\0';
    const char *base = strrchr(m, '/') ? strrchr(m, '/') + 1 : m;
    return snprintf(out, cap, "%s/../../adapters/%s", m, base) < (int)cap ? 0 : -1;
}

static int is_adapter_dir(const char *root, const char *name) {
    char path[4400];
    if (snprintf(path, sizeof path, "%s/%s/adapter_config.json", root, name) >= (int)sizeof path) return 0;
    return access(path, R_OK) == 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Picks the demo's adapters under root: a_qv, a_all and a_mlp when all three are
 * there, else the first DEMO_MAX adapter folders in name order. */
static int demo_find_adapters(demo *d, const char *root) {
    static const char *const preferred[DEMO_MAX] = {"a_qv", "a_all", "a_mlp"};
    d->n_ad = 0;
    int all = 1;
    for (int k = 0; k < DEMO_MAX; k++) all &= is_adapter_dir(root, preferred[k]);
    if (all) {
        for (int k = 0; k < DEMO_MAX; k++) snprintf(d->names[k], sizeof d->names[k], "%s", preferred[k]);
        d->n_ad = DEMO_MAX;
    } else {
        DIR *dir = opendir(root);
        char found[64][64];
        int n = 0;
        for (struct dirent *ent; dir && n < 64 && (ent = readdir(dir));)
            if (ent->d_name[0] != '.' && strlen(ent->d_name) < 64 && is_adapter_dir(root, ent->d_name))
                strcpy(found[n++], ent->d_name);
        if (dir) closedir(dir);
        qsort(found, n, sizeof found[0], cmp_name);
        for (; d->n_ad < n && d->n_ad < DEMO_MAX; d->n_ad++) strcpy(d->names[d->n_ad], found[d->n_ad]);
    }
    for (int k = 0; k < d->n_ad; k++)
        if (snprintf(d->dirs[k], sizeof d->dirs[k], "%s/%s", root, d->names[k]) >= (int)sizeof d->dirs[k]) return -1;
    return d->n_ad ? 0 : -1;
}

/* Forwards the prompt into out and times it. */
static int demo_forward(demo *d, float *out) {
    double t0 = now_ms();
    if (lorajit_forward(d->e, d->prompt, DEMO_PROMPT, out) != LORAJIT_OK) {
        fprintf(stderr, "demo: forward: %s\n", lorajit_errmsg(d->e));
        return -1;
    }
    d->fwd_ms[d->n_fwd++] = now_ms() - t0;
    return 0;
}

/* Checks d->got for the adapter state key: it differs from the base logits, and
 * it is bit-identical to what the same state gave before. */
static int demo_check_state(demo *d, const char *key) {
    size_t bytes = d->n_logits * sizeof(float);
    if (!memcmp(d->got, d->base, bytes)) {
        fprintf(stderr, "demo: FAIL state %s gives the base logits\n", key);
        d->n_fail++;
    }
    for (int s = 0; s < d->n_states; s++) {
        if (strcmp(d->states[s].key, key)) continue;
        d->n_recur++;
        if (memcmp(d->got, d->states[s].logits, bytes)) {
            fprintf(stderr, "demo: FAIL state %s gave different logits when it recurred\n", key);
            d->n_fail++;
        }
        return 0;
    }
    demo_state *more = realloc(d->states, (d->n_states + 1) * sizeof *more);
    if (!more) return -1;
    d->states = more;
    demo_state *st = &d->states[d->n_states];
    if (!(st->logits = malloc(bytes))) return -1;
    memcpy(st->logits, d->got, bytes);
    snprintf(st->key, sizeof st->key, "%s", key);
    d->n_states++;
    return 0;
}

/* The cycles: each round hotswaps every name to the next adapter folder (timed),
 * activates a subset with weights after each swap and checks it, then checks that
 * disabled adapters give the base logits bit for bit. */
static int demo_cycles(demo *d, long cycles) {
    int holds[DEMO_MAX], masks[1 << DEMO_MAX], n_masks = 0;
    for (int k = 0; k < d->n_ad; k++) holds[k] = k; /* which folder name k holds now */
    for (int bits = 1; bits <= d->n_ad; bits++)     /* non-empty subsets, singles first */
        for (int m = 1; m < 1 << d->n_ad; m++)
            if (__builtin_popcount(m) == bits) masks[n_masks++] = m;
    static const float weights[] = {1.0f, 0.5f, 1.0f, 0.25f};
    long step = 0;
    for (long cyc = 0; cyc < cycles; cyc++) {
        for (int j = 0; j < d->n_ad; j++, step++) {
            int next = (holds[j] + 1) % d->n_ad;
            double t0 = now_ms();
            if (lorajit_hotswap_adapter(d->e, d->names[j], d->dirs[next]) != LORAJIT_OK) {
                fprintf(stderr, "demo: hotswap %s <- %s: %s\n", d->names[j], d->dirs[next], lorajit_errmsg(d->e));
                return -1;
            }
            d->swap_ms[d->n_swaps++] = now_ms() - t0;
            holds[j] = next;
            int mask = masks[step % n_masks], n = 0;
            const char *names[DEMO_MAX];
            float w[DEMO_MAX];
            char key[256] = "";
            for (int k = 0; k < d->n_ad; k++) {
                if (!(mask & (1 << k))) continue;
                names[n] = d->names[k];
                w[n] = weights[(step / n_masks + k) % 4];
                size_t kl = strlen(key);
                snprintf(key + kl, sizeof key - kl, "%s=%s*%g;", d->names[k], d->names[holds[k]], w[n]);
                n++;
            }
            if (lorajit_set_adapter(d->e, names, w, n) != LORAJIT_OK) {
                fprintf(stderr, "demo: set_adapter: %s\n", lorajit_errmsg(d->e));
                return -1;
            }
            if (demo_forward(d, d->got) || demo_check_state(d, key)) return -1;
        }
        if (lorajit_disable_adapters(d->e) != LORAJIT_OK || demo_forward(d, d->got)) return -1;
        d->n_disabled++;
        if (memcmp(d->got, d->base, d->n_logits * sizeof(float))) {
            fprintf(stderr, "demo: FAIL disabled logits differ from the base logits (cycle %ld)\n", cyc);
            d->n_fail++;
        }
        if (lorajit_enable_adapters(d->e) != LORAJIT_OK) return -1;
    }
    return 0;
}

/* The headline figure: hotswap of a rank-16 adapter on all seven
 * projections, alternating between two such adapters (examples/data, made by
 * lorajit_gen) so that every swap writes all of its bytes. Skipped (returns 0
 * with *n = 0) when they are not there, e.g. for another --model. */
static int demo_r16(demo *d, const char *data, const char *model_dir, double *med, int *n) {
    char dirs[2][4600], base[4096];
    const char *slash = strrchr(model_dir, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : model_dir);
    *n = 0;
    for (int k = 0; k < 2; k++) {
        if (snprintf(dirs[k], sizeof dirs[k], "%s/../../examples/data/adapters/%s/r16_all_%d", data, base, k + 1) >=
            (int)sizeof dirs[k])
            return 0;
        if (!is_adapter_dir(dirs[k], ".")) return 0;
    }
    const char *name = "r16_all";
    if (lorajit_load_adapter(d->e, name, dirs[0]) != LORAJIT_OK) {
        fprintf(stderr, "demo: load %s: %s\n", dirs[0], lorajit_errmsg(d->e));
        return -1;
    }
    enum { SWAPS = 200 };
    double ms[SWAPS];
    for (int i = 0; i < SWAPS; i++) {
        double t0 = now_ms();
        if (lorajit_hotswap_adapter(d->e, name, dirs[(i + 1) % 2]) != LORAJIT_OK) {
            fprintf(stderr, "demo: hotswap %s: %s\n", name, lorajit_errmsg(d->e));
            return -1;
        }
        ms[i] = now_ms() - t0;
    }
    *med = median(ms, SWAPS);
    *n = SWAPS;
    return lorajit_delete_adapter(d->e, name) == LORAJIT_OK ? 0 : -1;
}

int cmd_demo(int argc, char **argv) {
    const char *model = NULL;
    long cycles = 200;
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) return help("demo");
        if (i + 1 < argc && !strcmp(argv[i], "--model")) model = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--cycles")) {
            if (parse_int(argv[++i], 1, 100000000, &cycles)) {
                fprintf(stderr, "lorajit demo: --cycles wants a positive integer\n");
                return usage();
            }
        } else { fprintf(stderr, "lorajit demo: bad argument '%s'\n", argv[i]); return usage(); }
    }
    char data[4096], model_dir[4096], root[4200], real[PATH_MAX];
    if (!model && find_data_dir(data, sizeof data)) {
        fprintf(stderr, "lorajit demo: cannot find the conformance data; set LORAJIT_DATA\n");
        return 1;
    }
    int too_long = model ? snprintf(model_dir, sizeof model_dir, "%s", model) >= (int)sizeof model_dir
                         : snprintf(model_dir, sizeof model_dir, "%s/models/llama-tiny", data) >= (int)sizeof model_dir;
    if (!too_long && realpath(model_dir, real)) snprintf(model_dir, sizeof model_dir, "%s", real);
    too_long |= adapters_for_model(model_dir, root, sizeof root);
    if (!too_long && realpath(root, real)) snprintf(root, sizeof root, "%s", real);
    demo *d = calloc(1, sizeof *d);
    if (!d) { fprintf(stderr, "demo: out of memory\n"); return 1; }
    int rc = 1;
    if (too_long || demo_find_adapters(d, root)) {
        fprintf(stderr, "lorajit demo: no adapters found under %s\n", root);
        goto done;
    }
    printf("demo: model %s\ndemo: adapters in %s:", model_dir, root);
    for (int k = 0; k < d->n_ad; k++) printf(" %s", d->names[k]);
    printf("\n");

    cli_common c = {.model = model_dir};
    double t0 = now_ms();
    if (!(d->e = open_engine(&c))) goto done;
    double open_ms = now_ms() - t0;
    lorajit_stats st;
    lorajit_get_stats(d->e, &st);
    printf("demo: compiled once in %.1f ms (engine open %.1f ms)\n", st.compile_ms, open_ms);

    int vocab = lorajit_vocab_size(d->e);
    static const int32_t prompt[DEMO_PROMPT] = {175, 196, 25, 246, 67, 211, 151};
    for (int i = 0; i < DEMO_PROMPT; i++) d->prompt[i] = prompt[i] % (vocab > 0 ? vocab : 1);
    d->n_logits = (size_t)DEMO_PROMPT * (size_t)(vocab > 0 ? vocab : 1);
    d->base = malloc(d->n_logits * sizeof(float));
    d->got = malloc(d->n_logits * sizeof(float));
    d->swap_ms = malloc(sizeof(double) * cycles * d->n_ad);
    d->fwd_ms = malloc(sizeof(double) * (cycles * (d->n_ad + 1) + 1));
    if (!d->base || !d->got || !d->swap_ms || !d->fwd_ms) { fprintf(stderr, "demo: out of memory\n"); goto done; }
    if (demo_forward(d, d->base)) goto done;
    for (int k = 0; k < d->n_ad; k++) {
        if (lorajit_load_adapter(d->e, d->names[k], d->dirs[k]) != LORAJIT_OK) {
            fprintf(stderr, "demo: load %s: %s\n", d->names[k], lorajit_errmsg(d->e));
            goto done;
        }
    }
    if (demo_cycles(d, cycles)) {
        fprintf(stderr, "demo: stopped: %s\n", lorajit_errmsg(d->e));
        goto done;
    }

    double r16_med = 0;
    int r16_n = 0;
    if (demo_r16(d, model ? "" : data, model_dir, &r16_med, &r16_n)) goto done;
    lorajit_get_stats(d->e, &st);
    double swap_min = d->swap_ms[0], swap_max = d->swap_ms[0];
    for (int i = 1; i < d->n_swaps; i++) {
        if (d->swap_ms[i] < swap_min) swap_min = d->swap_ms[i];
        if (d->swap_ms[i] > swap_max) swap_max = d->swap_ms[i];
    }
    double swap_med = median(d->swap_ms, d->n_swaps), fwd_med = median(d->fwd_ms, d->n_fwd);
    printf("demo: compile %.1f ms once; %d hotswaps: median %.3f ms, min %.3f ms, max %.3f ms\n",
           st.compile_ms, d->n_swaps, swap_med, swap_min, swap_max);
    if (r16_n)
        printf("demo: rank-16 adapter on all seven projections: %d hotswaps, median %.3f ms\n", r16_n, r16_med);
    printf("demo: %d forwards of %d tokens: median %.3f ms\n", d->n_fwd, DEMO_PROMPT, fwd_med);
    printf("demo: checks: %d adapter states differ from base, %d recurrences bit-identical, "
           "%d disabled == base\n", d->n_states, d->n_recur, d->n_disabled);
    printf("demo: stats: ");
    print_stats(d->e);
    if (st.compiles != 1) {
        fprintf(stderr, "demo: FAIL compiles=%lld, want 1\n", (long long)st.compiles);
        d->n_fail++;
    }
    printf("demo: %s compiles=%lld swaps=%d swap_median_ms=%.3f forward_median_ms=%.3f "
           "compile_ms=%.1f states=%d failed_checks=%d\n",
           d->n_fail ? "FAIL" : "OK", (long long)st.compiles, d->n_swaps, swap_med, fwd_med, st.compile_ms,
           d->n_states, d->n_fail);
    rc = d->n_fail ? 1 : 0;
done:
    for (int s = 0; s < d->n_states; s++) free(d->states[s].logits);
    free(d->states);
    free(d->base);
    free(d->got);
    free(d->swap_ms);
    free(d->fwd_ms);
    lorajit_engine_free(d->e);
    free(d);
    return rc;
}

