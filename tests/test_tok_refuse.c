/* test_tok_refuse.c — what the tokenizer refuses, and that it says so by name.
 * Small handcrafted tokenizer.json files (written into BUILD/tok/bad/) for each
 * malformed class: truncated JSON, a model type other than BPE, merges naming
 * missing tokens, vocab ids out of range or given twice, a file over the 64 MiB cap,
 * unimplemented normalizer / pre-tokenizer / decoder / post-processor types (with
 * their JSON path), a regex PCRE2 cannot compile, BPE dropout, an added token whose
 * id disagrees with the vocab; then bad calls: invalid UTF-8 (byte offset), an id
 * outside the vocabulary, and big inputs that must neither crash nor hang.
 * Recipe: add {name, json, status, words...} to CASES. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "lorajit.h"

#define VOCAB "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"<unk>\": 3}"
#define MODEL(extra) "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\"]" extra "}"
typedef struct bad {
    const char *name, *json;
    lorajit_status status;
    const char *words[3]; /* each must be in the message */
} bad;
static const bad CASES[] = {
    {"truncated", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", LORAJIT_E_FORMAT,
     {"truncated.json", "invalid JSON at byte", NULL}},
    {"wordpiece", "{\"model\": {\"type\": \"WordPiece\", " VOCAB "}}", LORAJIT_E_UNSUPPORTED,
     {"model.type", "WordPiece", NULL}},
    {"unigram", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", LORAJIT_E_UNSUPPORTED, {"Unigram", NULL}},
    {"merge_missing", "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\", \"a zz\"]}}",
     LORAJIT_E_FORMAT, {"model.merges[1]", "\"zz\"", NULL}},
    {"merge_result_missing", "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"b a\"]}}", LORAJIT_E_FORMAT,
     {"model.merges[0]", "\"ba\"", NULL}},
    {"merge_shape", "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b c\"]}}", LORAJIT_E_FORMAT,
     {"model.merges[0]", NULL}},
    {"id_negative", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", LORAJIT_E_FORMAT,
     {"model.vocab.a", NULL}},
    {"id_huge", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999}, \"merges\": []}}", LORAJIT_E_FORMAT,
     {"model.vocab.a", NULL}},
    {"id_twice", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
     LORAJIT_E_FORMAT, {"model.vocab.b", "two tokens", NULL}},
    {"key_twice", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": []}}",
     LORAJIT_E_FORMAT, {"appears twice", NULL}},
    {"normalizer", MODEL("") ", \"normalizer\": {\"type\": \"Lowercase\"}}", LORAJIT_E_UNSUPPORTED,
     {"normalizer.type", "Lowercase", NULL}},
    {"pretok_in_seq", MODEL("") ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
     "\"ByteLevel\"}, {\"type\": \"Whitespace\"}]}}", LORAJIT_E_UNSUPPORTED,
     {"pre_tokenizer.pretokenizers[1].type", "Whitespace", NULL}},
    {"decoder", MODEL("") ", \"decoder\": {\"type\": \"WordPiece\"}}", LORAJIT_E_UNSUPPORTED,
     {"decoder.type", "WordPiece", NULL}},
    {"post", MODEL("") ", \"post_processor\": {\"type\": \"RobertaProcessing\"}}", LORAJIT_E_UNSUPPORTED,
     {"post_processor.type", "RobertaProcessing", NULL}},
    {"template_unknown", MODEL("") ", \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": "
     "[{\"SpecialToken\": {\"id\": \"<s>\"}}], \"special_tokens\": {}}}", LORAJIT_E_FORMAT,
     {"post_processor.single[0]", "<s>", NULL}},
    {"regex", MODEL("") ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, "
     "\"behavior\": \"Isolated\"}}", LORAJIT_E_UNSUPPORTED, {"pre_tokenizer.pattern", "PCRE2", NULL}},
    {"dropout", MODEL(", \"dropout\": 0.1") "}", LORAJIT_E_UNSUPPORTED, {"model.dropout", NULL}},
    {"unk_missing", MODEL(", \"unk_token\": \"<nope>\"") "}", LORAJIT_E_FORMAT, {"model.unk_token", NULL}},
    {"added_conflict", MODEL("") ", \"added_tokens\": [{\"id\": 5, \"content\": \"ab\"}]}", LORAJIT_E_FORMAT,
     {"added_tokens[0].id", NULL}},
    {"added_twice", MODEL("") ", \"added_tokens\": [{\"id\": 5, \"content\": \"x\"}, {\"id\": 6, \"content\": "
     "\"x\"}]}", LORAJIT_E_FORMAT, {"added_tokens[1].content", "twice", NULL}},
    {"not_object", "[1, 2]", LORAJIT_E_FORMAT, {"not a JSON object", NULL}},
    {"vocab_string_id", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}, \"merges\": []}}",
     LORAJIT_E_FORMAT, {"model.vocab.a", "integer id", NULL}},
    {"vocab_fraction", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0.5}, \"merges\": []}}",
     LORAJIT_E_FORMAT, {"model.vocab.a", NULL}},
    {"vocab_nul", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\\u0000b\": 0}, \"merges\": []}}",
     LORAJIT_E_FORMAT, {"\\u0000", NULL}},
    {"merge_number", "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [\"a b\", 7]}}", LORAJIT_E_FORMAT,
     {"model.merges[1]", NULL}},
    {"merge_triple", "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": [[\"a\", \"b\", \"c\"]]}}",
     LORAJIT_E_FORMAT, {"model.merges[0]", NULL}},
    {"vocab_list", "{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", LORAJIT_E_FORMAT,
     {"model.vocab", NULL}},
};

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    char dir[1024], path[1200], cmd[1400];
    snprintf(dir, sizeof dir, "%s/tok/bad", build);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0, "mkdir");
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const bad *c = &CASES[i];
        snprintf(path, sizeof path, "%s/%s.json", dir, c->name);
        write_file(path, c->json);
        lorajit_tokenizer *t;
        lorajit_status st = lorajit_tokenizer_open(&t, path);
        const char *msg = lorajit_tokenizer_errmsg(t);
        CHECK(st == c->status, "%s: status %d, want %d (%s)", c->name, st, c->status, msg);
        for (int k = 0; k < 3 && c->words[k]; k++)
            CHECK(strstr(msg, c->words[k]) != NULL, "%s: \"%s\" not in \"%s\"", c->name, c->words[k], msg);
        CHECK(strstr(msg, "tokenizer.json") || strstr(msg, c->name), "%s: the file is named: %s", c->name, msg);
        int32_t *ids = NULL;
        int n = 0;
        CHECK(lorajit_tokenizer_encode(t, "a", 1, 0, &ids, &n) != LORAJIT_OK, "%s: encode on a failed open", c->name);
        lorajit_tokenizer_free(t);
    }
    /* escapes in vocab keys and merges are read as JSON says */
    snprintf(path, sizeof path, "%s/escapes.json", dir);
    write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\u00e9\": 0, \"\\ud83d\\ude00\": 1, "
                     "\"\\u00e9\\ud83d\\ude00\": 2, \"\\\"\\n\": 3}, \"merges\": [[\"\\u00e9\", \"\\ud83d\\ude00\"]]}}");
    lorajit_tokenizer *e;
    CHECK(lorajit_tokenizer_open(&e, path) == LORAJIT_OK, "escapes: %s", lorajit_tokenizer_errmsg(e));
    CHECK(lorajit_tokenizer_token_id(e, "\xC3\xA9\xF0\x9F\x98\x80") == 2 && lorajit_tokenizer_token_id(e, "\"\n") == 3,
          "escaped keys");
    int32_t *eids = NULL;
    int en = 0;
    CHECK(lorajit_tokenizer_encode(e, "\xC3\xA9\xF0\x9F\x98\x80", 6, 0, &eids, &en) == LORAJIT_OK && en == 1 &&
          eids[0] == 2, "the escaped merge applies");
    lorajit_free(eids);
    lorajit_tokenizer_free(e);
    /* over the size cap: a sparse file of 65 MiB */
    snprintf(path, sizeof path, "%s/huge.json", dir);
    snprintf(cmd, sizeof cmd, "truncate -s 65M %s", path);
    CHECK(system(cmd) == 0, "truncate");
    lorajit_tokenizer *t;
    CHECK(lorajit_tokenizer_open(&t, path) == LORAJIT_E_UNSUPPORTED && strstr(lorajit_tokenizer_errmsg(t), "over the limit"),
          "huge: %s", lorajit_tokenizer_errmsg(t));
    lorajit_tokenizer_free(t);
    snprintf(path, sizeof path, "%s/missing-folder", dir);
    CHECK(lorajit_tokenizer_open(&t, path) == LORAJIT_E_IO && strstr(lorajit_tokenizer_errmsg(t), "missing-folder"),
          "missing: %s", lorajit_tokenizer_errmsg(t));
    lorajit_tokenizer_free(t);

    /* bad calls on a good tokenizer (test_tok_exact unpacks it; do it here too) */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/tok/q && xz -dc tokenizer/gpt2bl/tokenizer.json.xz > %s/tok/q/tokenizer.json",
             build, build);
    CHECK(system(cmd) == 0, "unpack gpt2bl");
    snprintf(path, sizeof path, "%s/tok/q", build);
    CHECK(lorajit_tokenizer_open(&t, path) == LORAJIT_OK, "gpt2bl: %s", lorajit_tokenizer_errmsg(t));
    int32_t *ids = NULL;
    int n = 0;
    CHECK(lorajit_tokenizer_encode(t, "abc\xC3(x", 6, 0, &ids, &n) == LORAJIT_E_ARG &&
          strstr(lorajit_tokenizer_errmsg(t), "byte 3"), "invalid UTF-8: %s", lorajit_tokenizer_errmsg(t));
    CHECK(lorajit_tokenizer_encode(t, "\xF4\x90\x80\x80", 4, 0, &ids, &n) == LORAJIT_E_ARG, "above U+10FFFF");
    CHECK(lorajit_tokenizer_encode(t, "\xED\xA0\x80", 3, 0, &ids, &n) == LORAJIT_E_ARG, "a surrogate");
    CHECK(lorajit_tokenizer_encode(t, "ok", 2, 0, &ids, &n) == LORAJIT_OK && lorajit_tokenizer_errmsg(t)[0] == 0,
          "the message clears after a success");
    lorajit_free(ids);
    int32_t bad_ids[] = {1, 99999999};
    char *text = NULL;
    CHECK(lorajit_tokenizer_decode(t, bad_ids, 2, 0, &text, NULL) == LORAJIT_E_ARG &&
          strstr(lorajit_tokenizer_errmsg(t), "99999999"), "decode bad id: %s", lorajit_tokenizer_errmsg(t));
    lorajit_detokenizer *d;
    const char *piece;
    CHECK(lorajit_detokenizer_open(&d, t, 0) == LORAJIT_OK, "detok");
    CHECK(lorajit_detokenizer_push(d, -5, &piece, NULL) == LORAJIT_E_ARG && strstr(lorajit_detokenizer_errmsg(d), "-5"),
          "push bad id");
    lorajit_detokenizer_free(d);
    /* big inputs: 4 MiB of spaces, of one letter, of newlines, of one emoji */
    const char *fills[] = {" ", "a", "\n", "\xF0\x9F\x98\x80", "1"};
    size_t big = (size_t)4 << 20;
    char *buf = malloc(big + 1);
    for (size_t f = 0; f < sizeof fills / sizeof *fills; f++) {
        size_t fl = strlen(fills[f]), len = big / fl * fl;
        for (size_t k = 0; k < len; k += fl) memcpy(buf + k, fills[f], fl);
        lorajit_status st = lorajit_tokenizer_encode(t, buf, len, 0, &ids, &n);
        CHECK(st == LORAJIT_OK || st == LORAJIT_E_UNSUPPORTED, "big input %zu: %s", f, lorajit_tokenizer_errmsg(t));
        if (st == LORAJIT_OK) {
            CHECK(lorajit_tokenizer_decode(t, ids, n, 0, &text, NULL) == LORAJIT_OK && strlen(text) == len &&
                  memcmp(text, buf, len) == 0, "big input %zu round trip", f);
            lorajit_free(text);
        }
        lorajit_free(ids);
    }
    free(buf);
    lorajit_tokenizer_free(t);
    return check_summary("tok_refuse");
}
