/* hello.c: compile a model once, load a LoRA adapter, forward without and with it.
 *   cc hello.c -o hello $(pkg-config --cflags --libs lorajit)
 *   ./hello MODEL_DIR ADAPTER_DIR     (a HF LLaMA folder, a PEFT LoRA folder) */
#include <lorajit.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs tokens through e; prints the most likely next token (argmax of the last row). */
static int next_token(lorajit_engine *e, const char *label, const int32_t *tokens, int n) {
    int vocab = lorajit_vocab_size(e);
    float *logits = malloc(sizeof *logits * (size_t)n * (size_t)vocab); /* [n, vocab] */
    if (!logits || lorajit_forward(e, tokens, n, logits) != LORAJIT_OK) {
        fprintf(stderr, "forward: %s\n", logits ? lorajit_errmsg(e) : "out of memory");
        free(logits);
        return -1;
    }
    const float *last = logits + (size_t)(n - 1) * vocab;
    int best = 0;
    for (int v = 1; v < vocab; v++)
        if (last[v] > last[best]) best = v;
    printf("%s: argmax %d logit %.6f\n", label, best, last[best]);
    free(logits);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: %s MODEL_DIR ADAPTER_DIR\n", argv[0]), 2;
    printf("lorajit %s (header %s)\n", lorajit_version(), LORAJIT_VERSION_STRING);
    lorajit_options opts = {.max_rank = 16, .max_adapters = 4}; /* zero fields: defaults */
    lorajit_engine *e = NULL;
    const int32_t tokens[] = {175, 196, 25, 246, 67, 211, 151};
    const char *names[] = {"mine"};
    int rc = 1;
    if (lorajit_engine_open(&e, argv[1], &opts) != LORAJIT_OK || /* compiles, once */
        next_token(e, "base", tokens, 7) ||
        lorajit_load_adapter(e, "mine", argv[2]) != LORAJIT_OK || /* into a free slot */
        lorajit_set_adapter(e, names, NULL, 1) != LORAJIT_OK ||   /* active: {mine}, weight 1 */
        next_token(e, "adapter", tokens, 7)) {
        fprintf(stderr, "hello: %s\n", lorajit_errmsg(e));
        goto done;
    }
    lorajit_stats st;
    lorajit_get_stats(e, &st);
    printf("compiles=%lld loads=%lld forwards=%lld adapters=%lld active=%lld compile_ms=%.1f\n",
           (long long)st.compiles, (long long)st.loads, (long long)st.forwards,
           (long long)st.adapters, (long long)st.active, st.compile_ms);
    rc = 0;
done:
    lorajit_engine_free(e); /* NULL-safe */
    return rc;
}
