/* test_tok_threads.c — one tokenizer shared by threads (lorajit.h: read-only after
 * open). Four threads encode and decode the same texts many times with the Qwen3-
 * derived gpt2bl tokenizer and must get the single-threaded ids and texts; two of
 * them also fail calls on purpose (invalid UTF-8) and each thread's
 * lorajit_tokenizer_errmsg must show only its own last call. Run it under TSan with
 * the sanitizer builds to check for races. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"

static const char *const TEXTS[] = {"Hello world, it's 2026!", "  spaces\tand\nlines  ", "中文 and emoji 😀",
                                    "<|endoftext|> special", "def f(x):\n    return x\n"};
#define NT (sizeof TEXTS / sizeof *TEXTS)
static lorajit_tokenizer *tok;
static int32_t *want[NT];
static int want_n[NT];

static void *worker(void *arg) {
    long me = (long)arg, bad = 0;
    for (int r = 0; r < 300; r++) {
        for (size_t i = 0; i < NT; i++) {
            int32_t *ids;
            int n;
            if (lorajit_tokenizer_encode(tok, TEXTS[i], strlen(TEXTS[i]), 1, &ids, &n) != LORAJIT_OK) { bad++; continue; }
            bad += n != want_n[i] || memcmp(ids, want[i], (size_t)n * sizeof *ids) != 0;
            bad += lorajit_tokenizer_errmsg(tok)[0] != 0;
            char *text;
            if (lorajit_tokenizer_decode(tok, ids, n, 1, &text, NULL) == LORAJIT_OK) {
                bad += strstr(text, TEXTS[i] + (i == 3 ? 14 : 0)) == NULL;
                lorajit_free(text);
            }
            lorajit_free(ids);
            if (me % 2) { /* a failing call: this thread's message, no one else's */
                bad += lorajit_tokenizer_encode(tok, "x\xFF", 2, 0, &ids, &n) != LORAJIT_E_ARG;
                bad += strstr(lorajit_tokenizer_errmsg(tok), "byte 1") == NULL;
            }
        }
    }
    return (void *)bad;
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    char cmd[1024], dir[1024];
    snprintf(dir, sizeof dir, "%s/tok/threads", build);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && xz -dc tokenizer/gpt2bl/tokenizer.json.xz > %s/tokenizer.json", dir, dir);
    CHECK(system(cmd) == 0, "unpack");
    CHECK(lorajit_tokenizer_open(&tok, dir) == LORAJIT_OK, "open: %s", lorajit_tokenizer_errmsg(tok));
    for (size_t i = 0; i < NT; i++)
        CHECK(lorajit_tokenizer_encode(tok, TEXTS[i], strlen(TEXTS[i]), 1, &want[i], &want_n[i]) == LORAJIT_OK, "%zu", i);
    pthread_t th[4];
    for (long k = 0; k < 4; k++) pthread_create(&th[k], NULL, worker, (void *)k);
    for (long k = 0; k < 4; k++) {
        void *bad;
        pthread_join(th[k], &bad);
        CHECK(bad == NULL, "thread %ld: %ld mismatches", k, (long)bad);
    }
    for (size_t i = 0; i < NT; i++) lorajit_free(want[i]);
    lorajit_tokenizer_free(tok);
    return check_summary("tok_threads");
}
