/* cli_tokenize.c — `lorajit tokenize` and `lorajit detokenize`, and the text side
 * of `lorajit generate` (--text, --chat): a tokenizer opened from --tokenizer FILE
 * or --model DIR, encoding text to ids, rendering a user turn with the model's
 * chat template, and printing generated text as it streams.
 * Input: command-line arguments; --jsonl FILE holds one JSON string a line (texts
 * may contain newlines). Output on stdout: comma-separated ids a line per input
 * (tokenize), the text (detokenize). Uses lorajit.h, libc and cJSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_file.h"

lorajit_tokenizer *cli_tokenizer_open(const char *verb, const char *path) {
    lorajit_tokenizer *t = NULL;
    if (lorajit_tokenizer_open(&t, path) != LORAJIT_OK) {
        fprintf(stderr, "lorajit %s: %s\n", verb, t ? lorajit_tokenizer_errmsg(t) : "out of memory");
        lorajit_tokenizer_free(t);
        return NULL;
    }
    return t;
}

int cli_encode_prompt(const char *verb, const lorajit_tokenizer *t, const char *text, int chat, int32_t **ids,
                      int *n) {
    char *rendered = NULL;
    if (chat) {
        cJSON *msgs = cJSON_CreateArray(), *m = cJSON_CreateObject();
        char *json = NULL;
        if (msgs && m) {
            cJSON_AddItemToArray(msgs, m);
            if (cJSON_AddStringToObject(m, "role", "user") && cJSON_AddStringToObject(m, "content", text))
                json = cJSON_PrintUnformatted(msgs);
        } else {
            cJSON_Delete(m);
        }
        cJSON_Delete(msgs);
        if (!json) { fprintf(stderr, "lorajit %s: out of memory\n", verb); return -1; }
        lorajit_status st = lorajit_tokenizer_apply_chat_template(t, json, 1, &rendered);
        cJSON_free(json);
        if (st != LORAJIT_OK) {
            fprintf(stderr, "lorajit %s: --chat: %s\n", verb, lorajit_tokenizer_errmsg(t));
            return -1;
        }
        text = rendered;
    }
    /* a rendered template carries its own BOS, as transformers' apply_chat_template(tokenize=True) */
    int32_t *got = NULL;
    lorajit_status st = lorajit_tokenizer_encode(t, text, strlen(text), !chat, &got, n);
    lorajit_free(rendered);
    if (st != LORAJIT_OK) {
        fprintf(stderr, "lorajit %s: %s\n", verb, lorajit_tokenizer_errmsg(t));
        return -1;
    }
    /* the caller's own copy, freed with free() like the --prompt ids */
    *ids = malloc(sizeof **ids * (size_t)(*n ? *n : 1));
    if (*ids) memcpy(*ids, got, sizeof **ids * (size_t)*n);
    lorajit_free(got);
    if (!*ids) { fprintf(stderr, "lorajit %s: out of memory\n", verb); return -1; }
    return 0;
}

/* Prints one line of comma-separated ids for text. 0, or prints why and -1. */
static int print_encoded(const lorajit_tokenizer *t, const char *text, size_t len, int special) {
    int32_t *ids = NULL;
    int n = 0;
    if (lorajit_tokenizer_encode(t, text, len, special, &ids, &n) != LORAJIT_OK) {
        fprintf(stderr, "lorajit tokenize: %s\n", lorajit_tokenizer_errmsg(t));
        return -1;
    }
    for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)ids[i]);
    putchar('\n');
    lorajit_free(ids);
    return 0;
}

/* --jsonl FILE: one JSON string a line; blank lines are skipped. */
static int encode_jsonl(const lorajit_tokenizer *t, const char *path, int special) {
    char why[4400];
    FILE *f = cli_open_read("--jsonl", path, 1, why, sizeof why);
    if (!f) { fprintf(stderr, "lorajit tokenize: %s\n", why); return -1; }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)got) continue;
        cJSON *v = cJSON_ParseWithLength(line, (size_t)got);
        if (!cJSON_IsString(v)) {
            fprintf(stderr, "lorajit tokenize: %s: line %ld: not a JSON string\n", path, lineno);
            rc = -1;
        } else {
            rc = print_encoded(t, v->valuestring, strlen(v->valuestring), special);
        }
        cJSON_Delete(v);
    }
    if (rc == 0 && ferror(f)) { fprintf(stderr, "lorajit tokenize: %s: read error\n", path); rc = -1; }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* The options both verbs share: --tokenizer FILE | --model DIR, --no-special.
 * 1 taken, 0 not one of them, -1 usage error. */
static int take_source(const char *verb, int argc, char **argv, int *i, const char **src, int *special) {
    const char *a = argv[*i];
    if (!strcmp(a, "--no-special")) { *special = 0; return 1; }
    if (strcmp(a, "--tokenizer") && strcmp(a, "--model")) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "lorajit %s: %s needs a value\n", verb, a); return -1; }
    if (*src) { fprintf(stderr, "lorajit %s: give one of --tokenizer or --model\n", verb); return -1; }
    *src = argv[++*i];
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    const char *src = NULL, *text = NULL, *jsonl = NULL;
    int special = 1;
    for (int i = 2; i < argc; i++) {
        int k = take_source("tokenize", argc, argv, &i, &src, &special);
        if (k < 0) return usage();
        if (k) continue;
        const char *a = argv[i];
        if (is_help(a)) return help("tokenize");
        if ((strcmp(a, "--text") && strcmp(a, "--jsonl")) || i + 1 >= argc) {
            fprintf(stderr, "lorajit tokenize: unknown argument or missing value '%s'\n", a);
            return usage();
        }
        if (!strcmp(a, "--text")) text = argv[++i];
        else jsonl = argv[++i];
    }
    if (!src || !text == !jsonl) {
        fprintf(stderr, "lorajit tokenize: --tokenizer or --model, and one of --text or --jsonl, are required\n");
        return usage();
    }
    lorajit_tokenizer *t = cli_tokenizer_open("tokenize", src);
    if (!t) return 1;
    int rc = text ? print_encoded(t, text, strlen(text), special) : encode_jsonl(t, jsonl, special);
    lorajit_tokenizer_free(t);
    return rc ? 1 : 0;
}

int cmd_detokenize(int argc, char **argv) {
    const char *src = NULL, *ids_arg = NULL;
    int special = 1;
    for (int i = 2; i < argc; i++) {
        int k = take_source("detokenize", argc, argv, &i, &src, &special);
        if (k < 0) return usage();
        if (k) continue;
        const char *a = argv[i];
        if (is_help(a)) return help("detokenize");
        if (strcmp(a, "--ids") || i + 1 >= argc) {
            fprintf(stderr, "lorajit detokenize: unknown argument or missing value '%s'\n", a);
            return usage();
        }
        ids_arg = argv[++i];
    }
    if (!src || !ids_arg) {
        fprintf(stderr, "lorajit detokenize: --tokenizer or --model, and --ids, are required\n");
        return usage();
    }
    int32_t *ids = NULL;
    int n = 0;
    char why[512];
    if (parse_tokens(ids_arg, &ids, &n, why, sizeof why)) {
        fprintf(stderr, "lorajit detokenize: --ids: %s\n", why);
        return 1;
    }
    lorajit_tokenizer *t = cli_tokenizer_open("detokenize", src);
    int rc = 1;
    char *text = NULL;
    size_t len = 0;
    if (t && lorajit_tokenizer_decode(t, ids, n, !special, &text, &len) == LORAJIT_OK) {
        fwrite(text, 1, len, stdout);
        putchar('\n');
        rc = 0;
    } else if (t) {
        fprintf(stderr, "lorajit detokenize: %s\n", lorajit_tokenizer_errmsg(t));
    }
    lorajit_free(text);
    free(ids);
    lorajit_tokenizer_free(t);
    return rc;
}
