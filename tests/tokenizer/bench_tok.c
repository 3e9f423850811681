/* bench_tok.c — lorajit's tokenizer load time and encode throughput, the numbers
 * bench_hf.js gives for Hugging Face tokenizers on the same files:
 *   cmake --build build --target tok_bench
 *   build/tok_bench DIR_OR_TOKENIZER_JSON TEXT_FILE
 * Load: best of 5 opens. Encode: one call on the whole text, no special tokens,
 * best of 3, single thread; MB/s = text bytes / time. Public API only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lorajit.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tok_bench TOKENIZER TEXT_FILE\n");
        return 2;
    }
    double load = 1e30;
    lorajit_tokenizer *t = NULL;
    for (int r = 0; r < 5; r++) {
        lorajit_tokenizer_free(t);
        double a = now_ms();
        if (lorajit_tokenizer_open(&t, argv[1]) != LORAJIT_OK) {
            fprintf(stderr, "tok_bench: %s\n", lorajit_tokenizer_errmsg(t));
            return 1;
        }
        double ms = now_ms() - a;
        if (ms < load) load = ms;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);
    double best = 1e30;
    int n_ids = 0;
    for (int r = 0; r < 3; r++) {
        int32_t *ids;
        double a = now_ms();
        if (lorajit_tokenizer_encode(t, text, (size_t)n, 0, &ids, &n_ids) != LORAJIT_OK) {
            fprintf(stderr, "tok_bench: %s\n", lorajit_tokenizer_errmsg(t));
            return 1;
        }
        double ms = now_ms() - a;
        if (ms < best) best = ms;
        lorajit_free(ids);
    }
    printf("lorajit: load %.1f ms (%d tokens); %ld bytes -> %d ids in %.1f ms = %.2f MB/s\n", load,
           lorajit_tokenizer_vocab_size(t), n, n_ids, best, n / 1e6 / (best / 1e3));
    free(text);
    lorajit_tokenizer_free(t);
    return 0;
}
