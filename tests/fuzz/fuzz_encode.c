/* fuzz_encode.c — libFuzzer harness for encode and decode on real tokenizers.
 *
 * Input: byte 0 picks the tokenizer (stories260K: Replace/Prepend normalizers and
 * byte fallback; the metaspace variant: Metaspace pre-tokenizer and decoder and an
 * lstrip/rstrip added token), the rest is the text, valid UTF-8 or not. Invalid
 * UTF-8 must be refused with the offset of its first bad byte; valid text must
 * encode, decode, stream to the same text as decode, and, for the metaspace
 * tokenizer, round-trip when it holds no U+2581, no added token and no leading
 * space. FUZZ_TOKENIZER_DIR (set by fuzz.cmake) is tests/tokenizer. */
#include <string.h>

#include "fuzz.h"
#include "tokenizer.h"

static lorajit_tokenizer *open_one(int which) {
    static lorajit_tokenizer *t[2]; /* opened once per process, read-only after */
    if (!t[which]) {
        if (lorajit_tokenizer_open(&t[which], which ? FUZZ_TOKENIZER_DIR "/metaspace"
                                                    : FUZZ_TOKENIZER_DIR "/stories260K") != LORAJIT_OK) {
            fprintf(stderr, "fuzz_encode: %s\n", lorajit_tokenizer_errmsg(t[which]));
            abort();
        }
    }
    return t[which];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
    lorajit_tokenizer *t = open_one(data[0] & 1);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL;
    int n = 0;
    lorajit_status st = lorajit_tokenizer_encode(t, text, len, data[0] & 2, &ids, &n);
    size_t bad = tk_utf8_invalid_at(text, len);
    if (bad < len) {
        char want[64];
        snprintf(want, sizeof want, "at byte %zu ", bad);
        FUZZ_CHECK(st == LORAJIT_E_ARG && strstr(lorajit_tokenizer_errmsg(t), want));
        return 0;
    }
    FUZZ_CHECK(st == LORAJIT_OK);
    char *whole = NULL;
    size_t wl = 0;
    FUZZ_CHECK(lorajit_tokenizer_decode(t, ids, n, 1, &whole, &wl) == LORAJIT_OK);
    FUZZ_CHECK(tk_utf8_invalid_at(whole, wl) == wl);
    lorajit_detokenizer *d;
    FUZZ_CHECK(lorajit_detokenizer_open(&d, t, 1) == LORAJIT_OK);
    size_t at = 0;
    for (int k = 0; k <= n; k++) {
        const char *p;
        size_t pl;
        FUZZ_CHECK((k < n ? lorajit_detokenizer_push(d, ids[k], &p, &pl) : lorajit_detokenizer_flush(d, &p, &pl)) ==
                   LORAJIT_OK);
        FUZZ_CHECK(at + pl <= wl && memcmp(whole + at, p, pl) == 0);
        at += pl;
    }
    FUZZ_CHECK(at == wl);
    lorajit_detokenizer_free(d);
    if ((data[0] & 1) && !memmem(text, len, "\xE2\x96\x81", 3) && !memmem(text, len, "<", 1) &&
        !(len && text[0] == ' '))
        FUZZ_CHECK(wl == len && memcmp(whole, text, len) == 0);
    lorajit_free(whole);
    lorajit_free(ids);
    return 0;
}
