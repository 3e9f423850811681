/* test_tok_exact.c — the tokenizer against Hugging Face tokenizers (Rust core).
 * For each tokenizer under tests/tokenizer/ (TinyLlama, Qwen3, stories260K, and three
 * variants: Metaspace pre-tokenizer/decoder; NFKC + Metaspace always + Strip; GPT-2 ByteLevel regex + ignore_merges +
 * a Sequence post-processor) and each case of tests/tokenizer/expected/NAME.json.xz
 * (made by make_expected.js): encode without and with special tokens gives HF's
 * ids; decode with and without skip_special gives HF's text; the streaming
 * detokenizer, pushed one id at a time, concatenates to the same text; and
 * decode(encode(text)) == text wherever HF's does. Also the facts (vocab size, BOS,
 * EOS) and a load time print. Recipe: add a folder and its name to NAMES, rerun
 * make_expected.js. Compressed files are unpacked into BUILD/tok/ with xz. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"

static const char *const NAMES[] = {"tinyllama", "qwen3", "stories260K", "metaspace", "gpt2bl", "msalways"};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static cJSON *load_expected(const char *build, const char *name) {
    char cmd[1024], out[1024];
    snprintf(out, sizeof out, "%s/tok/%s.expected.json", build, name);
    snprintf(cmd, sizeof cmd, "xz -dc tokenizer/expected/%s.json.xz > %s", name, out);
    if (system(cmd) != 0) return NULL;
    char *text = check_read_file(out, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static int ids_equal(const int32_t *got, int n, const cJSON *want) {
    if (n != cJSON_GetArraySize(want)) return 0;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, want) if (got[i++] != (int32_t)e->valuedouble) return 0;
    return 1;
}

/* The streamed text of ids (one push each, then flush); caller frees. */
static char *stream(const lorajit_tokenizer *t, const int32_t *ids, int n, int skip, size_t *len) {
    lorajit_detokenizer *d;
    if (lorajit_detokenizer_open(&d, t, skip) != LORAJIT_OK) return NULL;
    size_t cap = 256, used = 0;
    char *buf = malloc(cap);
    for (int i = 0; i <= n && buf; i++) {
        const char *piece;
        size_t pl;
        lorajit_status st = i < n ? lorajit_detokenizer_push(d, ids[i], &piece, &pl)
                                  : lorajit_detokenizer_flush(d, &piece, &pl);
        if (st != LORAJIT_OK) { free(buf); buf = NULL; break; }
        /* never half a UTF-8 character at the end of a piece */
        if (pl && (unsigned char)piece[pl - 1] >= 0xC0) { free(buf); buf = NULL; break; }
        if (used + pl + 1 > cap) {
            while (used + pl + 1 > cap) cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) break;
        }
        memcpy(buf + used, piece, pl);
        used += pl;
    }
    if (buf) buf[used] = '\0';
    *len = used;
    lorajit_detokenizer_free(d);
    return buf;
}

static void check_case(const lorajit_tokenizer *t, const char *name, int k, const cJSON *c) {
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    size_t tl = strlen(text);
    int32_t *ids = NULL, *ids_sp = NULL;
    int n = 0, n_sp = 0;
    lorajit_status st = lorajit_tokenizer_encode(t, text, tl, 0, &ids, &n);
    CHECK(st == LORAJIT_OK && ids_equal(ids, n, cJSON_GetObjectItem(c, "ids")), "%s case %d: ids differ from HF "
          "(%s) for \"%.80s\"", name, k, lorajit_tokenizer_errmsg(t), text);
    st = lorajit_tokenizer_encode(t, text, tl, 1, &ids_sp, &n_sp);
    CHECK(st == LORAJIT_OK && ids_equal(ids_sp, n_sp, cJSON_GetObjectItem(c, "ids_special")),
          "%s case %d: ids with special tokens differ from HF", name, k);
    for (int skip = 0; skip < 2 && st == LORAJIT_OK; skip++) {
        const char *want = cJSON_GetObjectItem(c, skip ? "decode_skip" : "decode")->valuestring;
        char *got = NULL, *streamed;
        size_t gl = 0, sl = 0;
        /* HF's ids are decoded (ours equal them when the check above passed) */
        const cJSON *w = cJSON_GetObjectItem(c, "ids_special");
        int nw = cJSON_GetArraySize(w), i = 0;
        int32_t *hf = malloc((size_t)(nw + 1) * sizeof *hf);
        const cJSON *e;
        cJSON_ArrayForEach(e, w) hf[i++] = (int32_t)e->valuedouble;
        st = lorajit_tokenizer_decode(t, hf, nw, skip, &got, &gl);
        CHECK(st == LORAJIT_OK && got && strcmp(got, want) == 0 && gl == strlen(want),
              "%s case %d: decode(skip=%d) \"%.80s\" != HF \"%.80s\"", name, k, skip, got ? got : "(null)", want);
        streamed = stream(t, hf, nw, skip, &sl);
        CHECK(streamed && strcmp(streamed, want) == 0, "%s case %d: streamed(skip=%d) \"%.80s\" != \"%.80s\"", name,
              k, skip, streamed ? streamed : "(failed)", want);
        if (skip && strcmp(want, text) == 0) CHECK(got && strcmp(got, text) == 0, "%s case %d: round trip", name, k);
        free(streamed);
        lorajit_free(got);
        free(hf);
    }
    lorajit_free(ids);
    lorajit_free(ids_sp);
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++) {
        char dir[1024];
        CHECK(check_unpack_tokenizer(build, NAMES[i], dir, sizeof dir) == 0, "unpack %s", NAMES[i]);
        lorajit_tokenizer *t;
        double t0 = now_ms();
        lorajit_status st = lorajit_tokenizer_open(&t, dir);
        double ms = now_ms() - t0;
        CHECK(st == LORAJIT_OK, "open %s: %s", NAMES[i], lorajit_tokenizer_errmsg(t));
        if (st) { lorajit_tokenizer_free(t); continue; }
        printf("%s: %d tokens, opened in %.1f ms\n", NAMES[i], lorajit_tokenizer_vocab_size(t), ms);
        cJSON *exp = load_expected(build, NAMES[i]);
        CHECK(exp != NULL, "expected ids of %s", NAMES[i]);
        int k = 0, before = check_fail_count;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(exp, "cases")) {
            check_case(t, NAMES[i], k++, c);
            if (check_fail_count - before > 20) break; /* enough to read */
        }
        printf("%s: %d cases\n", NAMES[i], k);
        cJSON_Delete(exp);
        lorajit_tokenizer_free(t);
    }
    /* facts */
    lorajit_tokenizer *t;
    char dir[1024];
    const int32_t *eos;
    snprintf(dir, sizeof dir, "%s/tok/tinyllama", build);
    CHECK(lorajit_tokenizer_open(&t, dir) == LORAJIT_OK, "tinyllama");
    CHECK(lorajit_tokenizer_vocab_size(t) == 32000 && lorajit_tokenizer_bos_id(t) == 1, "tinyllama facts");
    CHECK(lorajit_tokenizer_eos_ids(t, &eos) == 1 && eos[0] == 2, "tinyllama eos");
    CHECK(lorajit_tokenizer_token_id(t, "</s>") == 2 && lorajit_tokenizer_token_id(t, "nope-not-a-token") == -1, "ids");
    lorajit_tokenizer_free(t);
    snprintf(dir, sizeof dir, "%s/tok/qwen3/tokenizer.json", build);
    CHECK(lorajit_tokenizer_open(&t, dir) == LORAJIT_OK, "qwen3 by file");
    CHECK(lorajit_tokenizer_vocab_size(t) == 151669 && lorajit_tokenizer_bos_id(t) == -1, "qwen3 facts %d",
          lorajit_tokenizer_vocab_size(t));
    CHECK(lorajit_tokenizer_eos_ids(t, &eos) == 1 && eos[0] == 151645, "qwen3 eos (tokenizer_config's <|im_end|>)");
    lorajit_tokenizer_free(t);
    snprintf(dir, sizeof dir, "%s/tok/stories260K", build);
    CHECK(lorajit_tokenizer_open(&t, dir) == LORAJIT_OK, "stories260K");
    CHECK(lorajit_tokenizer_bos_id(t) == 1 && lorajit_tokenizer_eos_ids(t, &eos) == 1 && eos[0] == 2, "stories facts");
    lorajit_tokenizer_free(t);
    lorajit_tokenizer_free(NULL);
    lorajit_detokenizer_free(NULL);
    lorajit_free(NULL);
    return check_summary("tok_exact");
}
