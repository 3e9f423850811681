/* fuzz.h — what every parser harness in tests/fuzz shares.
 *
 * A harness defines LLVMFuzzerTestOneInput(data, size): it runs one parser on the
 * bytes, checks the parser's promises on what it accepted (FUZZ_CHECK aborts, so
 * libFuzzer and the replay driver report it as a crash), checks that a refusal
 * came with a message, and frees everything (LeakSanitizer reports the rest).
 * Built with LORAJIT_FUZZ it links libFuzzer; otherwise replay.c supplies main(). */
#ifndef LORAJIT_FUZZ_H
#define LORAJIT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(x)                                                              \
    do {                                                                           \
        if (!(x)) {                                                                \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #x); \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* One line of printable text (bytes from a file never bring control characters
 * or terminal escapes into a message), NUL-terminated inside msg[cap]. */
static inline int fuzz_msg_clean(const char *msg, size_t cap) {
    for (size_t i = 0; i < cap; i++) {
        if (!msg[i]) return 1;
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) return 0;
    }
    return 0;
}

/* A failed parse must say why: a status and a non-empty, clean message. */
#define FUZZ_CHECK_REFUSAL(st, err)                                                  \
    FUZZ_CHECK((st) != LORAJIT_OK && (err).status == (st) && (err).msg[0] &&        \
               fuzz_msg_clean((err).msg, sizeof (err).msg))

#endif /* LORAJIT_FUZZ_H */
