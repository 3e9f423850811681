/* test_api_nolora.c — a model compiled with no LoRA sites (targets "none").
 *
 * The tiny conformance model is compiled three ways: options.targets = "none", a
 * schema file with "target_modules": "none", and the default schema (all seven
 * projections) with adapters disabled. All must give the same logits (|diff| <=
 * 1e-6) for 1, 7 and 33 tokens. A no-slot engine refuses adapters by name, and
 * "none" mixed with module names, or an empty list, is refused.
 * Recipe: add a case to the loop in main(); run from tests/ (argv[1] unused). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"

#define TINY_MODEL "conformance/models/llama-tiny"
#define TINY_ADAPTERS "conformance/adapters/llama-tiny"

/* Runs tokens 0..n) through e. Caller owns the result; free with free(). */
static float *logits_of(lorajit_engine *e, int n) {
    int vocab = lorajit_vocab_size(e);
    int32_t tokens[64];
    for (int i = 0; i < n; i++) tokens[i] = (int32_t)((i * 37 + 11) % vocab);
    float *out = calloc((size_t)n * (size_t)vocab, sizeof(float));
    lorajit_status st = lorajit_forward(e, tokens, n, out);
    CHECK(st == LORAJIT_OK, "forward %d tokens: %s", n, lorajit_errmsg(e));
    return out;
}

static double max_abs_diff(const float *a, const float *b, long n) {
    double m = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN wins */
    }
    return m;
}

/* Opens TINY_MODEL with o; the test fails (and returns NULL) if it does not start. */
static lorajit_engine *open_tiny(const lorajit_options *o, const char *what) {
    lorajit_engine *e = NULL;
    lorajit_status st = lorajit_engine_open(&e, TINY_MODEL, o);
    CHECK(st == LORAJIT_OK, "%s: %s", what, lorajit_errmsg(e));
    if (st != LORAJIT_OK) {
        lorajit_engine_free(e);
        return NULL;
    }
    return e;
}

int main(void) {
    lorajit_options none_opt = {.targets = "none"};
    lorajit_engine *plain = open_tiny(&none_opt, "targets \"none\"");

    char schema_path[] = "/tmp/lorajit_nolora_XXXXXX";
    int fd = mkstemp(schema_path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    fputs("{\"max_rank\": 8, \"target_modules\": \"none\", \"max_adapters\": 2}\n", f);
    fclose(f);
    lorajit_options schema_opt = {.schema_path = schema_path};
    lorajit_engine *plain2 = open_tiny(&schema_opt, "schema \"target_modules\": \"none\"");

    lorajit_engine *slotted = open_tiny(NULL, "default schema");
    if (!plain || !plain2 || !slotted) return check_summary("test_api_nolora");
    CHECK(lorajit_load_adapter(slotted, "a_all", TINY_ADAPTERS "/a_all") == LORAJIT_OK, "%s",
          lorajit_errmsg(slotted));
    const char *names[] = {"a_all"};
    CHECK(lorajit_set_adapter(slotted, names, NULL, 1) == LORAJIT_OK, "%s", lorajit_errmsg(slotted));
    CHECK(lorajit_disable_adapters(slotted) == LORAJIT_OK, "%s", lorajit_errmsg(slotted));

    static const int counts[] = {1, 7, 33};
    for (int i = 0; i < 3; i++) {
        int n = counts[i];
        long len = (long)n * lorajit_vocab_size(plain);
        float *a = logits_of(plain, n), *b = logits_of(plain2, n), *c = logits_of(slotted, n);
        double d_ab = max_abs_diff(a, b, len), d_ac = max_abs_diff(a, c, len);
        CHECK(d_ab <= 1e-6, "%d tokens: targets \"none\" vs schema \"none\" differ by %g", n, d_ab);
        CHECK(d_ac <= 1e-6, "%d tokens: no slots vs slots disabled differ by %g", n, d_ac);
        free(a);
        free(b);
        free(c);
    }

    /* a model without slots takes no adapter, and says which module it refused */
    lorajit_status st = lorajit_load_adapter(plain, "a_qv", TINY_ADAPTERS "/a_qv");
    CHECK(st != LORAJIT_OK, "loading an adapter into a no-slot engine succeeded");
    CHECK(strstr(lorajit_errmsg(plain), "q_proj") != NULL, "message: %s", lorajit_errmsg(plain));
    lorajit_stats stats;
    CHECK(lorajit_get_stats(plain, &stats) == LORAJIT_OK && stats.compiles == 1 &&
              stats.adapters == 0, "stats after a refused load");

    /* "none" is the only way to ask for no sites */
    lorajit_options mixed = {.targets = "none,q_proj"};
    lorajit_engine *bad = NULL;
    CHECK(lorajit_engine_open(&bad, TINY_MODEL, &mixed) == LORAJIT_E_ARG, "none,q_proj accepted");
    CHECK(strstr(lorajit_errmsg(bad), "none") != NULL, "message: %s", lorajit_errmsg(bad));
    lorajit_engine_free(bad);
    f = fopen(schema_path, "w");
    fputs("{\"target_modules\": []}\n", f);
    fclose(f);
    bad = NULL;
    CHECK(lorajit_engine_open(&bad, TINY_MODEL, &schema_opt) == LORAJIT_E_FORMAT, "[] accepted");
    CHECK(strstr(lorajit_errmsg(bad), "target_modules") != NULL, "message: %s", lorajit_errmsg(bad));
    lorajit_engine_free(bad);

    remove(schema_path);
    lorajit_engine_free(plain);
    lorajit_engine_free(plain2);
    lorajit_engine_free(slotted);
    return check_summary("test_api_nolora");
}
