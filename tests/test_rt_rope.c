/* test_rt_rope.c — rope_scaling without the compiler (runtime/formats/rope.c):
 *  - the files of tests/configs/real/ (published checkpoints) accepted or refused as
 *    tests/configs/real/expect.txt says, naming the field; Phi-3-128k's longrope
 *    block parses (model_type phi3, issue 13);
 *  - each type's tables at seq_len 8, 16, 17, 40 equal make_rope_fixtures.py's
 *    (tests/golden/rope/expected/tables.json) within 1e-6 relative;
 *  - refusals name the type or the field (rope_config_validation's rules);
 *  - the manifest form (lj_rope_write) reads back the same (lj_rope_same). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "formats.h"

#define REAL "configs/real"

static void test_real_configs(void) {
    char *text = check_read_file(REAL "/expect.txt", NULL);
    CHECK(text, "expect.txt");
    if (!text) return;
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0]) continue;
        char file[128], verdict[16], arg[64] = "";
        if (sscanf(line, "%127s %15s %63s", file, verdict, arg) < 2) continue;
        char path[256];
        snprintf(path, sizeof path, REAL "/%s", file);
        lj_config c;
        lj_err err = {0};
        lorajit_status s = lj_config_read(path, &c, &err);
        n++;
        if (!strcmp(verdict, "accept")) {
            CHECK(s == LORAJIT_OK, "%s: refused: %s", file, err.msg);
            if (!s && arg[0])
                CHECK(!strcmp(lj_rope_type_name(c.rope.type), arg), "%s: rope type %s, want %s", file,
                      lj_rope_type_name(c.rope.type), arg);
        } else {
            char needle[80];
            snprintf(needle, sizeof needle, "\"%s", arg);
            CHECK(s != LORAJIT_OK && strstr(err.msg, needle), "%s: want refused naming %s, got %d: %s", file, arg,
                  (int)s, err.msg);
        }
    }
    CHECK(n == 10, "expect.txt lists %d files", n);
    free(text);
}

/* Phi-3-mini-128k's config as it is (model_type phi3). */
static void test_phi3_longrope(void) {
    lj_config c;
    lj_err err = {0};
    CHECK(lj_config_read(REAL "/Phi-3-mini-128k-instruct.json", &c, &err) == LORAJIT_OK, "%s", err.msg);
    CHECK(!strcmp(lj_arch_get(c.arch)->model_type, "phi3") && c.sliding_window == 262144, "phi3 entry");
    CHECK(c.rope.type == LJ_ROPE_LONGROPE && c.rope.n_factors == 48 && c.rope.top_original_max == 4096 &&
              c.rope.long_factor[47] > 64.7f && c.rope.short_factor[0] == 1.1f, "phi3 longrope fields");
    float row[49];
    lj_rope_table(&c, 4096, row);
    CHECK(row[0] == 1.0f / 1.1f, "short at 4096: %g", row[0]);
    double want = sqrt(1 + log(131072.0 / 4096) / log(4096.0));
    CHECK(fabs(row[48] - want) < 1e-6, "attention factor %g want %g", row[48], want);
    lj_rope_table(&c, 4097, row);
    CHECK(fabsf(row[0] - 1.0f / 1.0700000524520874f) < 1e-7f, "long at 4097: %g", row[0]);
}

static void test_tables(void) {
    char *text = check_read_file("golden/rope/expected/tables.json", NULL);
    cJSON *t = text ? cJSON_Parse(text) : NULL;
    CHECK(t, "tables.json");
    const cJSON *ty;
    int n = 0;
    cJSON_ArrayForEach(ty, t) {
        char path[256];
        snprintf(path, sizeof path, "golden/rope/models/%s/config.json", ty->string);
        lj_config c;
        lj_err err = {0};
        if (lj_config_read(path, &c, &err) != LORAJIT_OK) {
            CHECK(0, "%s: %s", path, err.msg);
            continue;
        }
        CHECK(!strcmp(lj_rope_type_name(c.rope.type), ty->string), "%s parsed as %s", ty->string,
              lj_rope_type_name(c.rope.type));
        const cJSON *at;
        cJSON_ArrayForEach(at, ty) {
            float row[LJ_ROPE_MAX_HALF + 1];
            lj_rope_table(&c, atoi(at->string), row);
            const cJSON *inv = cJSON_GetObjectItem(at, "inv_freq");
            int half = cJSON_GetArraySize(inv);
            CHECK(half == c.head_size / 2, "half");
            for (int i = 0; i < half; i++) {
                double w = cJSON_GetArrayItem(inv, i)->valuedouble;
                CHECK(fabs(row[i] - w) <= 1e-6 * fabs(w), "%s seq %s inv_freq[%d] %.9g want %.9g", ty->string,
                      at->string, i, row[i], w);
            }
            double ws = cJSON_GetObjectItem(at, "scale")->valuedouble;
            CHECK(fabs(row[half] - ws) <= 1e-6 * ws, "%s scale %g want %g", ty->string, row[half], ws);
            n++;
        }
        /* the manifest's form reads back the same */
        cJSON *o = cJSON_CreateObject();
        CHECK(lj_rope_write(o, &c.rope), "write");
        lj_config back = c;
        memset(&back.rope, 0, sizeof back.rope);
        CHECK(lj_rope_read(&(lj_json_at){"manifest", "config.", &err}, o, &back) == LORAJIT_OK, "%s", err.msg);
        CHECK(lj_rope_same(&c.rope, &back.rope), "%s: manifest round trip differs", ty->string);
        back.rope.factor += 1;
        CHECK(c.rope.type == LJ_ROPE_DEFAULT || c.rope.type == LJ_ROPE_LONGROPE || !lj_rope_same(&c.rope, &back.rope),
              "%s: a changed factor compares equal", ty->string);
        cJSON_Delete(o);
    }
    CHECK(n == 24, "%d tables", n);
    cJSON_Delete(t);
    free(text);
}

static void test_refusals(void) {
    static const struct {
        const char *rope, *extra, *needle;
        lorajit_status want;
    } bad[] = {
        {"{\"rope_type\":\"ntk\",\"factor\":2}", "", "\"rope_scaling.rope_type\" is \"ntk\"", LORAJIT_E_UNSUPPORTED},
        {"{\"type\":\"mrope\"}", "", "\"rope_scaling.type\" is \"mrope\"", LORAJIT_E_UNSUPPORTED},
        {"{\"factor\":2}", "", "\"rope_scaling.rope_type\" is missing", LORAJIT_E_FORMAT},
        {"3", "", "\"rope_scaling\" must be an object", LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"linear\"}", "", "\"rope_scaling.factor\" is missing", LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"linear\",\"factor\":0.5}", "", "\"rope_scaling.factor\" is 0.5", LORAJIT_E_FORMAT},
        {"{\"type\":\"dynamic\",\"factor\":\"2\"}", "", "rope_scaling.factor", LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"llama3\",\"factor\":8,\"high_freq_factor\":4,\"original_max_position_embeddings\":16}", "",
         "\"rope_scaling.low_freq_factor\" is missing", LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,\"high_freq_factor\":4,"
         "\"original_max_position_embeddings\":16}", "", "rope_scaling.high_freq_factor", LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4,"
         "\"original_max_position_embeddings\":64}", "", "rope_scaling.original_max_position_embeddings",
         LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"yarn\",\"factor\":4,\"attention_factor\":-1}", "", "rope_scaling.attention_factor",
         LORAJIT_E_FORMAT},
        {"{\"rope_type\":\"yarn\",\"factor\":4,\"beta_fast\":1,\"beta_slow\":2}", "", "rope_scaling.beta_fast",
         LORAJIT_E_FORMAT},
        {"{\"type\":\"su\",\"short_factor\":[1,1,1],\"long_factor\":[1,1,1,1,1,1,1,1],\"factor\":2}", "",
         "\"rope_scaling.short_factor\" has 3 numbers; it must have 8", LORAJIT_E_FORMAT},
        {"{\"type\":\"longrope\",\"short_factor\":[1,1,1,1,1,1,1,1],\"factor\":2}", "",
         "\"rope_scaling.long_factor\" is missing", LORAJIT_E_FORMAT},
        {"{\"type\":\"longrope\",\"short_factor\":[1,1,1,1,1,1,1,1],\"long_factor\":[1,1,1,1,1,1,1,\"x\"],\"factor\":2}",
         "", "\"rope_scaling.long_factor[7]\"", LORAJIT_E_FORMAT},
        {"{\"type\":\"longrope\",\"short_factor\":[1,1,1,1,1,1,1,1],\"long_factor\":[1,1,1,1,1,1,1,1]}", "",
         "\"rope_scaling.factor\" is missing", LORAJIT_E_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[1024];
        snprintf(json, sizeof json, "{\"hidden_size\":64,\"intermediate_size\":8,\"num_hidden_layers\":1,"
                 "\"num_attention_heads\":4,\"vocab_size\":8,\"max_position_embeddings\":64,%s\"rope_scaling\":%s}",
                 bad[i].extra, bad[i].rope);
        lj_config c;
        lj_err err = {0};
        lorajit_status s = lj_config_parse(json, strlen(json), "c.json", &c, &err);
        CHECK(s == bad[i].want && strstr(err.msg, bad[i].needle), "case %zu: status %d, msg %s (want %s)", i,
              (int)s, err.msg, bad[i].needle);
    }
    /* accepted: legacy "type", "su", longrope with a top-level original max and no factor */
    const char *ok = "{\"hidden_size\":64,\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
                     "\"vocab_size\":8,\"max_position_embeddings\":64,\"original_max_position_embeddings\":16,"
                     "\"rope_scaling\":{\"type\":\"su\",\"short_factor\":[1,1,1,1,1,1,1,1],"
                     "\"long_factor\":[2,2,2,2,2,2,2,2]}}";
    lj_config c;
    lj_err err = {0};
    CHECK(lj_config_parse(ok, strlen(ok), "ok.json", &c, &err) == LORAJIT_OK && c.rope.type == LJ_ROPE_LONGROPE &&
              lj_rope_varies(&c) && lj_rope_extends(&c), "su: %s", err.msg);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    test_real_configs();
    test_phi3_longrope();
    test_tables();
    test_refusals();
    return check_summary("rt_rope");
}
