/* test_tok_chat.c — lorajit_tokenizer_apply_chat_template(_vars) through real tokenizer
 * folders (TinyLlama-1.1B-Chat-v1.0 and Qwen3, tests/tokenizer/), whose
 * tokenizer_config.json carries the chat template:
 *  - every case of tests/chat/cases.json on those templates gives jinja2's text
 *    (tests/chat/expected/, made by render_expected.py with transformers' settings)
 *    byte for byte, the special tokens coming from the folder's own files and any
 *    other variable (tools, enable_thinking) through vars_json; a case jinja2 refused
 *    (.err) is refused too;
 *  - where the template comes from: chat_template.jinja wins over tokenizer_config.json,
 *    a list of templates gives the one named "default", none at all is E_UNSUPPORTED,
 *    a malformed field fails the open naming it, a pipe as chat_template.jinja is
 *    refused at once;
 *  - bad messages or vars are E_ARG naming what is wrong, *text NULL. */
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "lorajit.h"

/* Text of tests/chat/expected/NAME.EXT or NULL. */
static char *expected(const char *name, const char *ext) {
    char p[512];
    snprintf(p, sizeof p, "chat/expected/%s.%s", name, ext);
    struct stat sb;
    return stat(p, &sb) == 0 ? check_read_file(p, NULL) : NULL;
}

/* The cases of cases.json whose template is templates/TMPL.jinja, through tokenizer t. */
static void run_cases(const lorajit_tokenizer *t, const cJSON *cases, const char *tmpl) {
    char want_tmpl[128];
    snprintf(want_tmpl, sizeof want_tmpl, "templates/%s.jinja", tmpl);
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *file = cJSON_GetObjectItem(c, "template"), *ctx = cJSON_GetObjectItem(c, "context");
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        if (!cJSON_IsString(file) || strcmp(file->valuestring, want_tmpl) != 0) continue;
        cJSON *vars = cJSON_Duplicate(ctx, 1);
        cJSON *messages = cJSON_DetachItemFromObject(vars, "messages");
        cJSON *gen = cJSON_DetachItemFromObject(vars, "add_generation_prompt");
        /* the special tokens must be the folder's own: leave them to the tokenizer */
        const char *specials[] = {"bos_token", "eos_token"};
        for (int i = 0; i < 2; i++) {
            cJSON *s = cJSON_DetachItemFromObject(vars, specials[i]);
            int32_t id = s ? lorajit_tokenizer_token_id(t, s->valuestring) : -1;
            CHECK(!s || (i == 0 ? id == lorajit_tokenizer_bos_id(t) : id >= 0), "%s: %s is not the tokenizer's", name,
                  specials[i]);
            cJSON_Delete(s);
        }
        char *msgs = cJSON_PrintUnformatted(messages);
        char *vs = vars->child ? cJSON_PrintUnformatted(vars) : NULL;
        char *text = (char *)"unset";
        lorajit_status st = vs ? lorajit_tokenizer_apply_chat_template_vars(t, msgs, vs, cJSON_IsTrue(gen), &text)
                               : lorajit_tokenizer_apply_chat_template(t, msgs, cJSON_IsTrue(gen), &text);
        char *want = expected(name, "txt"), *why = want ? NULL : expected(name, "err");
        if (want)
            CHECK(st == LORAJIT_OK && text && strcmp(text, want) == 0, "%s: got %s \"%.200s\", want \"%.200s\"", name,
                  st ? lorajit_tokenizer_errmsg(t) : "", text ? text : "(null)", want);
        else
            CHECK(why && st == LORAJIT_E_ARG && !text, "%s: a refused case gave status %d", name, st);
        n++;
        if (st == LORAJIT_OK) lorajit_free(text);
        free(want);
        free(why);
        free(msgs);
        free(vs);
        cJSON_Delete(messages);
        cJSON_Delete(gen);
        cJSON_Delete(vars);
    }
    CHECK(n >= 14, "%s: only %d cases", tmpl, n);
    printf("%s: %d chat cases\n", tmpl, n);
}

/* Makes BUILD/tok/chat_NAME with stories260K's tokenizer.json and config (a JSON text
 * written as tokenizer_config.json, NULL: none) and jinja (chat_template.jinja, NULL: none). */
static void make_dir(const char *build, const char *name, const char *config, const char *jinja, char *dir,
                     size_t cap) {
    char cmd[2048], p[1100];
    snprintf(dir, cap, "%s/tok/chat_%s", build, name);
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cp models/stories260K/tokenizer.json %s/", dir, dir, dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    if (config) {
        snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
        CHECK(check_write_file(p, config, (long)strlen(config)) == 0, "%s", p);
    }
    if (jinja) {
        snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
        CHECK(check_write_file(p, jinja, (long)strlen(jinja)) == 0, "%s", p);
    }
}

/* Renders [{"role":"user","content":"hi"}] through the folder; returns the text (caller frees) or NULL. */
static char *render_hi(const char *dir, lorajit_status *st) {
    lorajit_tokenizer *t;
    char *text = NULL;
    *st = lorajit_tokenizer_open(&t, dir);
    if (*st == LORAJIT_OK)
        *st = lorajit_tokenizer_apply_chat_template(t, "[{\"role\":\"user\",\"content\":\"hi\"}]", 1, &text);
    lorajit_tokenizer_free(t);
    return text;
}

static void test_sources(const char *build) {
    char dir[1024];
    lorajit_status st;
    const char *cfg_str = "{\"bos_token\":\"<s>\",\"chat_template\":\"cfg:{{ bos_token }}{{ messages[0].content }}\"}";
    make_dir(build, "cfg", cfg_str, NULL, dir, sizeof dir);
    char *s = render_hi(dir, &st);
    CHECK(st == LORAJIT_OK && s && strcmp(s, "cfg:<s>hi") == 0, "tokenizer_config.json's template: %s", s ? s : "(null)");
    lorajit_free(s);

    make_dir(build, "file", cfg_str, "file:{{ messages|length }}{% if add_generation_prompt %}+{% endif %}", dir,
             sizeof dir);
    s = render_hi(dir, &st);
    CHECK(st == LORAJIT_OK && s && strcmp(s, "file:1+") == 0, "chat_template.jinja wins: %s", s ? s : "(null)");
    lorajit_free(s);

    make_dir(build, "list",
             "{\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"tools\"},{\"name\":\"default\",\"template\":\"dflt\"}]}",
             NULL, dir, sizeof dir);
    s = render_hi(dir, &st);
    CHECK(st == LORAJIT_OK && s && strcmp(s, "dflt") == 0, "the default of a list: %s", s ? s : "(null)");
    lorajit_free(s);

    lorajit_tokenizer *t;
    const char *none[][2] = {{"nodefault", "{\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"tools\"}]}"},
                             {"none", "{\"bos_token\":\"<s>\"}"}};
    for (int i = 0; i < 2; i++) {
        make_dir(build, none[i][0], none[i][1], NULL, dir, sizeof dir);
        s = render_hi(dir, &st);
        CHECK(st == LORAJIT_E_UNSUPPORTED && !s, "%s: status %d", none[i][0], st);
        CHECK(lorajit_tokenizer_open(&t, dir) == LORAJIT_OK, "%s opens", none[i][0]);
        char *text = (char *)"x";
        lorajit_tokenizer_apply_chat_template(t, "[]", 0, &text);
        CHECK(!text && strstr(lorajit_tokenizer_errmsg(t), "no chat template"), "%s: %s", none[i][0],
              lorajit_tokenizer_errmsg(t));
        lorajit_tokenizer_free(t);
    }

    const char *bad[][3] = {{"num", "{\"chat_template\":7}", "\"chat_template\""},
                            {"item", "{\"chat_template\":[{\"name\":\"default\"}]}", "\"chat_template\"[0]"},
                            {"unk", "{\"unk_token\":[1]}", "unk_token"}};
    for (int i = 0; i < 3; i++) {
        make_dir(build, bad[i][0], bad[i][1], NULL, dir, sizeof dir);
        st = lorajit_tokenizer_open(&t, dir);
        CHECK(st == LORAJIT_E_FORMAT && strstr(lorajit_tokenizer_errmsg(t), bad[i][2]) &&
                  strstr(lorajit_tokenizer_errmsg(t), "tokenizer_config.json"),
              "%s: %d %s", bad[i][0], st, lorajit_tokenizer_errmsg(t));
        lorajit_tokenizer_free(t);
    }

    /* the template's raise_exception is E_ARG with its message and the file */
    make_dir(build, "raise", "{\"chat_template\":\"{{ raise_exception('Conversation roles must alternate') }}\"}",
             NULL, dir, sizeof dir);
    CHECK(lorajit_tokenizer_open(&t, dir) == LORAJIT_OK, "raise opens");
    char *text = (char *)"x";
    st = lorajit_tokenizer_apply_chat_template(t, "[]", 1, &text);
    CHECK(st == LORAJIT_E_ARG && !text && strstr(lorajit_tokenizer_errmsg(t), "Conversation roles must alternate") &&
              strstr(lorajit_tokenizer_errmsg(t), "tokenizer_config.json"),
          "raise_exception: %d %s", st, lorajit_tokenizer_errmsg(t));
    lorajit_tokenizer_free(t);

    make_dir(build, "fifo", NULL, NULL, dir, sizeof dir);
    char p[1100];
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo %s", p);
    double t0 = check_wall_s();
    st = lorajit_tokenizer_open(&t, dir);
    CHECK(st != LORAJIT_OK && strstr(lorajit_tokenizer_errmsg(t), "chat_template.jinja") && check_wall_s() - t0 < 5,
          "a pipe as chat_template.jinja: %d %s", st, lorajit_tokenizer_errmsg(t));
    lorajit_tokenizer_free(t);
}

static void test_bad_args(const lorajit_tokenizer *t) {
    static const struct {
        const char *messages, *vars, *needle;
    } bad[] = {
        {"{\"role\":\"user\"}", NULL, "JSON list"},
        {"[{\"role\":\"user\",\"content\":\"a\"},{\"content\":\"b\"}]", NULL, "messages[1]"},
        {"[{\"role\":\"user\",\"content\":\"a\"}", NULL, "messages"},
        {"[{\"role\":\"user\",\"content\":\"a\",\"role\":\"x\"}]", NULL, "role"},
        {"[]", "[1]", "vars must be a JSON object"},
        {"[]", "{\"messages\":[]}", "may not set"},
        {"[]", "{\"x\":", "vars"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *text = (char *)"x";
        lorajit_status st = lorajit_tokenizer_apply_chat_template_vars(t, bad[i].messages, bad[i].vars, 1, &text);
        CHECK(st == LORAJIT_E_ARG && !text && strstr(lorajit_tokenizer_errmsg(t), bad[i].needle),
              "bad %zu: %d %s", i, st, lorajit_tokenizer_errmsg(t));
    }
    CHECK(lorajit_tokenizer_apply_chat_template(t, NULL, 1, NULL) == LORAJIT_E_ARG, "NULL arguments");
    CHECK(lorajit_tokenizer_apply_chat_template(NULL, "[]", 1, NULL) == LORAJIT_E_ARG, "NULL tokenizer");
}

int main(int argc, char **argv) {
    const char *build = argc > 1 ? argv[1] : "../build";
    check_enter_tests_dir();
    char *cases_text = check_read_file("chat/cases.json", NULL);
    cJSON *cases = cases_text ? cJSON_Parse(cases_text) : NULL;
    CHECK(cJSON_IsArray(cases), "chat/cases.json");
    const char *names[][2] = {{"tinyllama", "tinyllama"}, {"qwen3", "qwen3"}};
    for (int i = 0; i < 2 && cases; i++) {
        char dir[1024];
        CHECK(check_unpack_tokenizer(build, names[i][0], dir, sizeof dir) == 0, "unpack %s", names[i][0]);
        lorajit_tokenizer *t;
        lorajit_status st = lorajit_tokenizer_open(&t, dir);
        CHECK(st == LORAJIT_OK, "open %s: %s", dir, lorajit_tokenizer_errmsg(t));
        if (st == LORAJIT_OK) run_cases(t, cases, names[i][1]);
        if (st == LORAJIT_OK && i == 0) test_bad_args(t);
        lorajit_tokenizer_free(t);
    }
    test_sources(build);
    cJSON_Delete(cases);
    free(cases_text);
    return check_summary("tok_chat");
}
