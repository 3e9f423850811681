/* fuzz_script.c — libFuzzer harness for the `lorajit script` language.
 *
 * Input: a script (any bytes). Each line goes through script_parse exactly as the
 * CLI reads it (examples/script_parse.c); an accepted command must be well formed
 * (names and paths non-empty, a set within MAX_ACTIVE, tokens present for
 * forward), a refusal must say why. The first line is also tried as a --tokens
 * and an --active value, as `lorajit run` parses them. */
#include <string.h>

#include "fuzz.h"
#include "script_parse.h"

static void check_line(char *line) {
    script_cmd c;
    char why[512] = "";
    if (script_parse(line, &c, why, sizeof why)) {
        FUZZ_CHECK(why[0] != '\0' && c.tokens == NULL);
        return;
    }
    switch (c.op) {
    case SCRIPT_LOAD: case SCRIPT_HOTSWAP:
        FUZZ_CHECK(c.name && c.name[0] && c.path && c.path[0]);
        break;
    case SCRIPT_DELETE:
        FUZZ_CHECK(c.name && c.name[0] && !strpbrk(c.name, " \t"));
        break;
    case SCRIPT_SET:
        FUZZ_CHECK(c.set.n >= 0 && c.set.n <= MAX_ACTIVE);
        for (int i = 0; i < c.set.n; i++) FUZZ_CHECK(c.set.names[i][0] && !strchr(c.set.names[i], ','));
        break;
    case SCRIPT_FORWARD:
        FUZZ_CHECK(c.tokens && c.n_tokens >= 1 && c.path && c.path[0]);
        break;
    case SCRIPT_GENERATE:
        FUZZ_CHECK(c.tokens && c.n_tokens >= 1 && c.max_new >= 1 && c.path && c.path[0] &&
                   (!c.name || c.name[0]));
        break;
    case SCRIPT_BLANK: case SCRIPT_ENABLE: case SCRIPT_DISABLE: case SCRIPT_STATS:
        break;
    }
    script_cmd_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    /* Lines as getline gives them: split at '\n' (a NUL ends the line's text). */
    for (char *line = text, *next; line; line = next) {
        next = memchr(line, '\n', (size_t)(text + size - line));
        if (next) *next++ = '\0';
        if (line == text) {
            int32_t *tokens = NULL;
            int n = 0;
            char why[512];
            active_spec a;
            long v;
            if (parse_tokens(line, &tokens, &n, why, sizeof why) == 0) FUZZ_CHECK(tokens && n >= 1);
            free(tokens);
            if (parse_active(line, &a, why, sizeof why) == 0) FUZZ_CHECK(a.n >= 0 && a.n <= MAX_ACTIVE);
            if (parse_int(line, 1, 1000, &v) == 0) FUZZ_CHECK(v >= 1 && v <= 1000);
        }
        check_line(line);
    }
    free(text);
    return 0;
}
