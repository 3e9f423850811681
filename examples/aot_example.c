/* aot_example.c — serve a model from an ahead-of-time artifact, without LLVM.
 *
 * Links only the runtime library (liblorajit_runtime.so) and include/lorajit.h; the
 * compiled model comes from the artifact (made by `lorajit compile`), which the
 * runtime loads with dlopen. Loads two PEFT adapters, switches between them, and
 * checks that each state gives the same logits every time it recurs and that
 * disabling adapters gives the base logits. Prints the time to be ready to serve.
 * usage: aot_example ARTIFACT_DIR MODEL_DIR ADAPTER_DIR_A ADAPTER_DIR_B
 * Exit status: 0 ok, 1 a failure, 2 usage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lorajit.h"

#define N_PROMPT 5

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int argmax(const float *row, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* Activates `name` (NULL: disable adapters), runs the prompt, prints the last argmax. */
static int serve(lorajit_engine *e, const char *name, const int32_t *prompt, float *logits, int vocab) {
    lorajit_status s = name ? lorajit_set_adapter(e, &name, NULL, 1) : lorajit_disable_adapters(e);
    if (!s && name) s = lorajit_enable_adapters(e);
    if (!s) s = lorajit_forward(e, prompt, N_PROMPT, logits);
    if (s) {
        fprintf(stderr, "aot_example: %s: %s\n", name ? name : "disable", lorajit_errmsg(e));
        return -1;
    }
    printf("aot_example: %-8s next token %d\n", name ? name : "(base)",
           argmax(logits + (size_t)(N_PROMPT - 1) * vocab, vocab));
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: aot_example ARTIFACT_DIR MODEL_DIR ADAPTER_DIR_A ADAPTER_DIR_B\n");
        return 2;
    }
    const char *artifact = argv[1], *model = argv[2], *dirs[2] = {argv[3], argv[4]}, *names[2] = {"a", "b"};
    double t0 = now_ms();
    lorajit_engine *e = NULL;
    if (lorajit_engine_open_artifact(&e, artifact, model, NULL) != LORAJIT_OK) {
        fprintf(stderr, "aot_example: %s\n", e ? lorajit_errmsg(e) : "out of memory");
        lorajit_engine_free(e);
        return 1;
    }
    printf("aot_example: artifact %s opened with %s, ready in %.2f ms\n", artifact, model, now_ms() - t0);
    int vocab = lorajit_vocab_size(e), rc = 1;
    size_t n = (size_t)N_PROMPT * vocab;
    int32_t prompt[N_PROMPT] = {1, 17, 42, 99, 7};
    for (int i = 0; i < N_PROMPT; i++) prompt[i] %= vocab;
    float *base = malloc(n * sizeof(float)), *first[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    float *got = malloc(n * sizeof(float));
    if (!base || !first[0] || !first[1] || !got) goto done;
    for (int k = 0; k < 2; k++) {
        double t = now_ms();
        if (lorajit_load_adapter(e, names[k], dirs[k]) != LORAJIT_OK) {
            fprintf(stderr, "aot_example: load %s: %s\n", dirs[k], lorajit_errmsg(e));
            goto done;
        }
        printf("aot_example: loaded %s from %s in %.3f ms\n", names[k], dirs[k], now_ms() - t);
    }
    if (serve(e, NULL, prompt, base, vocab) || serve(e, names[0], prompt, first[0], vocab) ||
        serve(e, names[1], prompt, first[1], vocab))
        goto done;
    int fails = !memcmp(first[0], base, n * sizeof(float)) + !memcmp(first[1], first[0], n * sizeof(float));
    for (int round = 0; round < 4; round++) { /* switch back and forth: same logits each time */
        int k = round % 2;
        if (serve(e, names[k], prompt, got, vocab)) goto done;
        fails += memcmp(got, first[k], n * sizeof(float)) != 0;
    }
    if (serve(e, NULL, prompt, got, vocab)) goto done;
    fails += memcmp(got, base, n * sizeof(float)) != 0;
    printf("aot_example: %s (%d failed checks)\n", fails ? "FAIL" : "OK", fails);
    rc = fails ? 1 : 0;
done:
    free(base);
    free(first[0]);
    free(first[1]);
    free(got);
    lorajit_engine_free(e);
    return rc;
}
