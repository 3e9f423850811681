/* test_chat_template.c — the chat-template engine (tokenizer/jinja*.c) against jinja2.
 *
 * 1. Every case of tests/chat/cases.json (real templates x message lists, and small
 *    inline templates for each feature of the subset) rendered by jj_render must equal
 *    tests/chat/expected/NAME.txt byte for byte, written by jinja2 with transformers'
 *    settings (tests/chat/render_expected.py). A NAME.err case must fail: raise_exception
 *    (TemplateError) with LORAJIT_E_ARG and the template's message, other runtime errors
 *    with LORAJIT_E_ARG, syntax errors with LORAJIT_E_FORMAT.
 * 2. Refusals: unsupported filters, tags, methods name themselves with a line number;
 *    unterminated blocks are syntax errors with their line; runaway recursion, loops,
 *    output and memory stop at their caps.
 * To add a case: add it to render_expected.py, run it, commit cases.json and expected/.
 * Run from tests/ (ctest does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "tokenizer/jinja.h"

#define EXPECT CHECK

static char *slurp(const char *path, size_t *len) {
    char *data = NULL;
    lj_err err;
    if (lj_read_file(path, &data, len, &err) != LORAJIT_OK) return NULL;
    return data;
}

/* Where two texts first differ, for the message. */
static void show_diff(const char *name, const char *got, size_t got_len, const char *want, size_t want_len) {
    size_t i = 0;
    while (i < got_len && i < want_len && got[i] == want[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  %s: first difference at byte %zu (got %zu bytes, want %zu)\n  got:  [%.*s]\n  want: [%.*s]\n",
            name, i, got_len, want_len, (int)((got_len - from) > 100 ? 100 : got_len - from), got + from,
            (int)((want_len - from) > 100 ? 100 : want_len - from), want + from);
}

static int run_case(const cJSON *c) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(c, "template"));
    const char *inl = cJSON_GetStringValue(cJSON_GetObjectItem(c, "inline"));
    const cJSON *ctx = cJSON_GetObjectItem(c, "context");
    char path[512], *src = NULL;
    size_t src_len = 0;
    if (file) {
        snprintf(path, sizeof path, "chat/%s", file);
        src = slurp(path, &src_len);
        if (!src) { fprintf(stderr, "FAIL %s: cannot read %s\n", name, path); return 1; }
    }
    char *out = NULL, *want;
    size_t out_len = 0, want_len;
    lj_err err;
    lorajit_status st = jj_render(file ? src : inl, file ? src_len : strlen(inl), ctx, &out, &out_len, &err);
    snprintf(path, sizeof path, "chat/expected/%s.txt", name);
    int bad = 0;
    if ((want = slurp(path, &want_len))) {
        if (st != LORAJIT_OK) { fprintf(stderr, "FAIL %s: status %d: %s\n", name, st, err.msg); bad = 1; }
        else if (out_len != want_len || memcmp(out, want, want_len) != 0) {
            fprintf(stderr, "FAIL %s: output differs from jinja2's\n", name);
            show_diff(name, out, out_len, want, want_len);
            bad = 1;
        }
    } else {
        snprintf(path, sizeof path, "chat/expected/%s.err", name);
        want = slurp(path, &want_len);
        if (!want) { fprintf(stderr, "FAIL %s: no expected output\n", name); free(src); free(out); return 1; }
        char *msg = strchr(want, '\n');
        *msg++ = '\0';
        msg[strcspn(msg, "\n")] = '\0';
        lorajit_status want_st = strcmp(want, "TemplateSyntaxError") == 0 ? LORAJIT_E_FORMAT : LORAJIT_E_ARG;
        if (st != want_st) { fprintf(stderr, "FAIL %s: status %d, want %d (%s: %s); message %s\n", name, st, want_st, want, msg, st ? err.msg : "-"); bad = 1; }
        else if (strcmp(want, "TemplateError") == 0 && !strstr(err.msg, msg)) {
            fprintf(stderr, "FAIL %s: message [%s] lacks the template's [%s]\n", name, err.msg, msg);
            bad = 1;
        } else if (out != NULL) { fprintf(stderr, "FAIL %s: output on failure\n", name); bad = 1; }
    }
    free(want);
    free(out);
    free(src);
    return bad;
}

/* The template must fail with status s and a message holding each of the words. */
static void refuse(const char *tpl, lorajit_status s, const char *word1, const char *word2) {
    cJSON *ctx = cJSON_Parse("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"x\": 1}");
    char *out = (char *)1;
    size_t len;
    lj_err err;
    lorajit_status st = jj_render(tpl, strlen(tpl), ctx, &out, &len, &err);
    EXPECT(st == s, "[%.60s]: status %d, want %d (%s)", tpl, st, s, st ? err.msg : "ok");
    EXPECT(st == LORAJIT_OK || out == NULL, "[%.60s]: output left on failure", tpl);
    EXPECT(st == LORAJIT_OK || err.status == st, "[%.60s]: err.status %d", tpl, err.status);
    EXPECT(!word1 || strstr(err.msg, word1), "[%.60s]: message [%s] lacks [%s]", tpl, err.msg, word1);
    EXPECT(!word2 || strstr(err.msg, word2), "[%.60s]: message [%s] lacks [%s]", tpl, err.msg, word2);
    if (st == LORAJIT_OK) free(out);
    cJSON_Delete(ctx);
}

static void test_refusals(void) {
    refuse("hello\n{{ x|wordcount }}", LORAJIT_E_UNSUPPORTED, "filter 'wordcount' is not supported", "line 2");
    refuse("{% if false %}{{ x|sort }}{% endif %}", LORAJIT_E_UNSUPPORTED, "filter 'sort'", NULL); /* even unreached */
    refuse("{{ x is escaped }}", LORAJIT_E_UNSUPPORTED, "test 'escaped' is not supported", NULL);
    refuse("a\nb\n{% include 'x.j2' %}", LORAJIT_E_UNSUPPORTED, "tag 'include' is not supported", "line 3");
    refuse("{% call m() %}x{% endcall %}", LORAJIT_E_UNSUPPORTED, "tag 'call'", NULL);
    refuse("{% raw %}{{ x }}{% endraw %}", LORAJIT_E_UNSUPPORTED, "tag 'raw'", NULL);
    refuse("{% extends 'base' %}", LORAJIT_E_UNSUPPORTED, "tag 'extends'", NULL);
    refuse("{% for x in y recursive %}{% endfor %}", LORAJIT_E_UNSUPPORTED, "recursive", NULL);
    refuse("{{ 'a'.zfill(3) }}", LORAJIT_E_UNSUPPORTED, "string method 'zfill' is not supported", NULL);
    refuse("{{ messages.append(1) }}", LORAJIT_E_UNSUPPORTED, "list method 'append'", NULL);
    refuse("{{ {}.update({}) }}", LORAJIT_E_UNSUPPORTED, "dict method 'update'", NULL);
    refuse("{% macro m() %}{% endmacro %}{{ m }}", LORAJIT_E_UNSUPPORTED, "printing a Macro", NULL);
    refuse("{{ range(3) }}", LORAJIT_E_UNSUPPORTED, "printing a range object", NULL);
    refuse("{{ {'a': 1}|items }}", LORAJIT_E_UNSUPPORTED, "printing a generator object", NULL);
    refuse("{{ cycler(1, 2) }}", LORAJIT_E_UNSUPPORTED, "function 'cycler'", NULL);
    refuse("{{ '%s' % x }}", LORAJIT_E_UNSUPPORTED, "string % operator", NULL);
    refuse("{{ 9223372036854775807 + 1 }}", LORAJIT_E_UNSUPPORTED, "64 bits", NULL);
    /* syntax errors, with their lines */
    refuse("line 1\n{% if x %}\nnever closed\n", LORAJIT_E_FORMAT, "expected 'endif'", "line 3");
    refuse("{% for m in messages %}\n{% endif %}", LORAJIT_E_FORMAT, "unknown tag 'endif'", "line 2");
    refuse("one\ntwo {{ x ", LORAJIT_E_FORMAT, "expected '}}'", "line 2");
    refuse("{{ 'unterminated }}", LORAJIT_E_FORMAT, "unterminated string", NULL);
    refuse("{# never closed", LORAJIT_E_FORMAT, "comment", NULL);
    refuse("{% frobnicate %}", LORAJIT_E_FORMAT, "unknown tag 'frobnicate'", NULL);
    refuse("{% break %}", LORAJIT_E_FORMAT, "outside of a loop", NULL);
    refuse("{{ x $ 1 }}", LORAJIT_E_FORMAT, "unexpected char '$'", NULL);
    /* runtime errors jinja2 also raises */
    refuse("\n\n{{ raise_exception('no system role') }}", LORAJIT_E_ARG, "no system role", "line 3");
    refuse("{{ nothing.attr }}", LORAJIT_E_ARG, "'nothing' is undefined", NULL);
    /* caps: a hostile template stops */
    refuse("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", LORAJIT_E_UNSUPPORTED, "nested deeper", NULL);
    refuse("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", LORAJIT_E_UNSUPPORTED,
           "step cap", NULL);
    refuse("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", LORAJIT_E_UNSUPPORTED, "output cap", NULL);
    refuse("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
           LORAJIT_E_UNSUPPORTED, "memory cap", NULL);
    refuse("{{ 'x' * 10000000000 }}", LORAJIT_E_UNSUPPORTED, "memory cap", NULL);
    refuse("{{ range(1000000000) }}", LORAJIT_E_UNSUPPORTED, "range()", NULL);
    char deep[4200];
    memset(deep, '(', 2000);
    memcpy(deep, "{{ ", 3);
    strcpy(deep + 2000, "1");
    memset(deep + 2001, ')', 1997);
    strcpy(deep + 3998, " }}");
    refuse(deep, LORAJIT_E_UNSUPPORTED, "nested deeper", NULL);
    /* no template, not an object */
    char *out;
    size_t len;
    lj_err err;
    EXPECT(jj_render(NULL, 0, NULL, &out, &len, &err) == LORAJIT_E_ARG && out == NULL, "NULL template");
    cJSON *arr = cJSON_CreateArray();
    EXPECT(jj_render("x", 1, arr, &out, &len, &err) == LORAJIT_E_ARG, "array context");
    cJSON_Delete(arr);
    EXPECT(jj_render("", 0, NULL, &out, &len, NULL) == LORAJIT_OK && out && len == 0 && out[0] == '\0', "empty template");
    free(out);
    EXPECT(jj_render("{{ x|nope }}", 12, NULL, &out, &len, NULL) == LORAJIT_E_UNSUPPORTED, "NULL err still gives status");
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    size_t len;
    char *text = slurp("chat/cases.json", &len);
    CHECK(text != NULL, "cannot read chat/cases.json (run from tests/)");
    if (!text) return 1;
    cJSON *cases = cJSON_Parse(text);
    CHECK(cJSON_IsArray(cases), "chat/cases.json is not a JSON array");
    if (!cases) return 1;
    int n = 0, bad = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n++) bad += run_case(c);
    CHECK(bad == 0, "%d of %d cases differ from jinja2", bad, n);
    printf("test_chat_template: %d cases against jinja2's output, %d failed\n", n, bad);
    cJSON_Delete(cases);
    free(text);
    test_refusals();
    return check_summary("chat_template");
}
