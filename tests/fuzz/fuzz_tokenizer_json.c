/* fuzz_tokenizer_json.c — libFuzzer harness for tokenizer.json (tk_read_json).
 *
 * Input: the bytes of a tokenizer.json. A refusal must carry a clean message. An
 * accepted file must give a tokenizer that encodes a few texts (or refuses one
 * with a message, never crashes), whose ids are all inside the vocabulary and
 * decode, whole and streamed, to the same text. */
#include <string.h>

#include "fuzz.h"
#include "tokenizer.h"

static const char *const TEXTS[] = {"", "a", "hello world", " ab  ba\n\t", "<s>x</s>", "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lorajit_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return 0;
    tk_bytelevel_init(t);
    lj_err err = {0};
    lorajit_status st = tk_read_json(t, (const char *)data, size, "tokenizer.json", &err);
    if (st != LORAJIT_OK) {
        FUZZ_CHECK_REFUSAL(st, err);
        lorajit_tokenizer_free(t);
        return 0;
    }
    t->ready = true;
    for (size_t i = 0; i < sizeof TEXTS / sizeof *TEXTS; i++) {
        int32_t *ids = NULL;
        int n = 0;
        st = lorajit_tokenizer_encode(t, TEXTS[i], strlen(TEXTS[i]), (int)(i & 1), &ids, &n);
        if (st != LORAJIT_OK) {
            FUZZ_CHECK(lorajit_tokenizer_errmsg(t)[0]);
            continue;
        }
        for (int k = 0; k < n; k++) FUZZ_CHECK(ids[k] >= 0 && ids[k] < t->vocab_size);
        char *whole = NULL;
        size_t wl = 0;
        st = lorajit_tokenizer_decode(t, ids, n, 0, &whole, &wl);
        if (st == LORAJIT_OK) { /* holes in the vocab are refused; else the stream must agree */
            lorajit_detokenizer *d;
            FUZZ_CHECK(lorajit_detokenizer_open(&d, t, 0) == LORAJIT_OK);
            size_t at = 0;
            for (int k = 0; k <= n; k++) {
                const char *p;
                size_t pl;
                FUZZ_CHECK((k < n ? lorajit_detokenizer_push(d, ids[k], &p, &pl)
                                  : lorajit_detokenizer_flush(d, &p, &pl)) == LORAJIT_OK);
                FUZZ_CHECK(at + pl <= wl && memcmp(whole + at, p, pl) == 0);
                at += pl;
            }
            FUZZ_CHECK(at == wl);
            lorajit_detokenizer_free(d);
        }
        lorajit_free(whole);
        lorajit_free(ids);
    }
    lorajit_tokenizer_free(t);
    return 0;
}
