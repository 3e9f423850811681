/* tk_steps.c — reads tokenizer.json's normalizer, pre_tokenizer, decoder and
 * post_processor into flat chains of steps (a Sequence, nested or not, becomes
 * its members in order). Only the types lorajit implements are accepted; any other
 * is refused by name with its JSON path, never replaced by another. Field names
 * and defaults follow huggingface/tokenizers' serde of normalizers/,
 * pre_tokenizers/, decoders/ and processors/template.rs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tokenizer.h"

enum { ROLE_NORM, ROLE_PRETOK, ROLE_DECODER, ROLE_POST };
static const char *const seq_key[] = {"normalizers", "pretokenizers", "decoders", "processors"};

void tk_chain_free(tk_chain *c) {
    for (int i = 0; i < c->n; i++) {
        tk_pattern_free(&c->step[i].pat);
        free(c->step[i].text);
        free(c->step[i].tmpl);
    }
    memset(c, 0, sizeof *c);
}

static lorajit_status read_text(const lj_json_at *at, const cJSON *o, const char *key, bool required,
                                const char *dflt, tk_step *s) {
    const char *v = dflt;
    lorajit_status st = lj_json_string(at, o, key, required ? LJ_JSON_REQUIRED : LJ_JSON_OPTIONAL, &v);
    if (st) return st;
    s->text_len = strlen(v);
    s->text = lj_strdup(v);
    return s->text ? LORAJIT_OK : lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
}

/* TemplateProcessing's "single": the ids it writes, -1 for the sequence ($A). */
static lorajit_status read_template(const lj_json_at *at, const cJSON *o, tk_step *s) {
    const cJSON *single = NULL, *specials = NULL;
    lorajit_status st;
    if ((st = lj_json_array(at, o, "single", LJ_JSON_REQUIRED, &single)) ||
        (st = lj_json_object(at, o, "special_tokens", LJ_JSON_OPTIONAL, &specials)))
        return st;
    int cap = 0, i = 0;
    const cJSON *item, *e;
    cJSON_ArrayForEach(item, single) cap++;
    cJSON_ArrayForEach(item, specials) {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(item, "ids");
        cap += cJSON_GetArraySize(ids) * cJSON_GetArraySize(single);
    }
    s->tmpl = malloc(((size_t)cap + 1) * sizeof *s->tmpl);
    if (!s->tmpl) return lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
    const char *pre = at->prefix ? at->prefix : "";
    cJSON_ArrayForEach(item, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp ? sp : sq, "id");
        if (!cJSON_IsString(name))
            return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%ssingle[%d]\" must be {\"SpecialToken\": {\"id\": "
                           "...}} or {\"Sequence\": {\"id\": \"A\"}}", at->path, pre, i);
        if (sq) {
            if (strcmp(name->valuestring, "A") != 0)
                return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%ssingle[%d].Sequence.id\" must be \"A\"",
                               at->path, pre, i);
            s->tmpl[s->tmpl_n++] = -1;
        } else {
            const cJSON *tok = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(tok, "ids");
            if (!cJSON_IsArray(ids))
                return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%ssingle[%d]\" names special token \"%.64s\", "
                               "which is not in %sspecial_tokens (with its ids)", at->path, pre, i,
                               name->valuestring, pre);
            cJSON_ArrayForEach(e, ids) {
                if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= TK_MAX_VOCAB ||
                    e->valuedouble != (double)(int32_t)e->valuedouble)
                    return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%sspecial_tokens.%.64s.ids\" must be "
                                   "token ids", at->path, pre, name->valuestring);
                if (s->tmpl_n >= cap) return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: bad template", at->path);
                s->tmpl[s->tmpl_n++] = (int32_t)e->valuedouble;
            }
        }
        i++;
    }
    return LORAJIT_OK;
}

static lorajit_status read_step(const lj_json_at *at, const cJSON *o, int role, tk_chain *c, int depth);

/* One component at o (at->prefix is its JSON path plus "."), appended to c. */
static lorajit_status read_one(const lj_json_at *at, const cJSON *o, const char *type, int role, tk_chain *c) {
    static const char *const role_name[] = {"normalizer", "pre-tokenizer", "decoder", "post-processor"};
    lorajit_status st = LORAJIT_OK;
    if (c->n >= TK_MAX_STEPS)
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%stype\": more than %d steps, over the limit",
                       at->path, at->prefix, TK_MAX_STEPS);
    tk_step *s = &c->step[c->n];
    memset(s, 0, sizeof *s);
    const char *scheme = NULL, *behavior = "Isolated";
    bool ok = true;
    if (role == ROLE_NORM && !strcmp(type, "NFC")) s->kind = TK_NFC;
    else if (role == ROLE_NORM && !strcmp(type, "NFD")) s->kind = TK_NFD;
    else if (role == ROLE_NORM && !strcmp(type, "NFKC")) s->kind = TK_NFKC;
    else if (role == ROLE_NORM && !strcmp(type, "NFKD")) s->kind = TK_NFKD;
    else if (role == ROLE_NORM && !strcmp(type, "Prepend")) {
        s->kind = TK_PREPEND;
        st = read_text(at, o, "prepend", true, "", s);
    } else if ((role == ROLE_NORM || role == ROLE_DECODER) && !strcmp(type, "Replace")) {
        s->kind = TK_REPLACE;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
        if (!(st = tk_pattern_read(at, pat, "pattern", &s->pat))) st = read_text(at, o, "content", true, "", s);
    } else if (role == ROLE_PRETOK && !strcmp(type, "Split")) {
        s->kind = TK_SPLIT;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
        if (!(st = tk_pattern_read(at, pat, "pattern", &s->pat)) &&
            !(st = lj_json_string(at, o, "behavior", LJ_JSON_REQUIRED, &behavior)))
            st = lj_json_bool(at, o, "invert", LJ_JSON_OPTIONAL, &s->invert);
        static const char *const names[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext",
                                            "Contiguous"};
        s->behavior = -1;
        for (int k = 0; k < 5 && !st; k++)
            if (!strcmp(behavior, names[k])) s->behavior = k;
        if (!st && s->behavior < 0)
            st = lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%sbehavior\": \"%.32s\" is not a split "
                         "behavior lorajit implements", at->path, at->prefix, behavior);
    } else if (role != ROLE_NORM && !strcmp(type, "ByteLevel")) {
        s->kind = TK_BYTELEVEL;
        s->prefix_space = true;
        s->use_regex = true;
        if (!(st = lj_json_bool(at, o, "add_prefix_space", LJ_JSON_OPTIONAL, &s->prefix_space)))
            st = lj_json_bool(at, o, "use_regex", LJ_JSON_OPTIONAL, &s->use_regex);
        if (!st && s->use_regex && role == ROLE_PRETOK) {
            cJSON *p = cJSON_CreateObject();
            if (!p || !cJSON_AddStringToObject(p, "Regex", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}"
                                               "\\p{N}]+|\\s+(?!\\S)|\\s+"))
                st = lj_fail(at->err, LORAJIT_E_NOMEM, "%s: out of memory", at->path);
            else
                st = tk_pattern_read(at, p, "use_regex", &s->pat);
            cJSON_Delete(p);
        }
    } else if ((role == ROLE_PRETOK || role == ROLE_DECODER) && !strcmp(type, "Metaspace")) {
        s->kind = TK_METASPACE;
        bool prefix = true;
        s->split = true;
        if (!(st = read_text(at, o, "replacement", false, "\xE2\x96\x81", s)) &&
            !(st = lj_json_bool(at, o, "add_prefix_space", LJ_JSON_OPTIONAL, &prefix)) &&
            !(st = lj_json_string(at, o, "prepend_scheme", LJ_JSON_OPTIONAL, &scheme)))
            st = lj_json_bool(at, o, "split", LJ_JSON_OPTIONAL, &s->split);
        s->prepend_scheme = prefix ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
        if (!st && scheme) {
            s->prepend_scheme = !strcmp(scheme, "always") ? TK_PREPEND_ALWAYS : !strcmp(scheme, "first")
                ? TK_PREPEND_FIRST : !strcmp(scheme, "never") ? TK_PREPEND_NEVER : -1;
            if (s->prepend_scheme < 0)
                st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%sprepend_scheme\" must be always, first or never",
                             at->path, at->prefix);
        }
        if (!st && (s->text_len == 0 || tk_utf8_invalid_at(s->text, s->text_len) != s->text_len ||
                    (size_t)tk_utf8_len((unsigned char)s->text[0]) != s->text_len))
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%sreplacement\" must be one character", at->path,
                         at->prefix);
    } else if (role == ROLE_DECODER && !strcmp(type, "ByteFallback")) s->kind = TK_BYTEFALLBACK;
    else if (role == ROLE_DECODER && !strcmp(type, "Fuse")) s->kind = TK_FUSE;
    else if (role == ROLE_DECODER && !strcmp(type, "Strip")) {
        s->kind = TK_STRIP;
        int64_t a = 0, b = 0;
        if (!(st = read_text(at, o, "content", true, " ", s)) &&
            !(st = lj_json_int(at, o, "start", LJ_JSON_OPTIONAL, 0, 1 << 20, &a)))
            st = lj_json_int(at, o, "stop", LJ_JSON_OPTIONAL, 0, 1 << 20, &b);
        s->strip_start = (int)a;
        s->strip_stop = (int)b;
        if (!st && (s->text_len == 0 || tk_utf8_invalid_at(s->text, s->text_len) != s->text_len ||
                    (size_t)tk_utf8_len((unsigned char)s->text[0]) != s->text_len))
            st = lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%scontent\" must be one character", at->path,
                         at->prefix);
    } else if (role == ROLE_POST && !strcmp(type, "TemplateProcessing")) {
        s->kind = TK_TEMPLATE;
        st = read_template(at, o, s);
    } else {
        ok = false;
    }
    if (!ok) {
        tk_step tmp = *s;
        c->step[c->n++] = tmp; /* freed with the chain */
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%stype\": %s \"%.48s\" is not implemented by "
                       "lorajit (it refuses rather than tokenise differently)", at->path, at->prefix,
                       role_name[role], type);
    }
    c->n++; /* owned by the chain even on failure */
    return st;
}

static lorajit_status read_step(const lj_json_at *at, const cJSON *o, int role, tk_chain *c, int depth) {
    const char *type;
    lorajit_status st;
    if (!cJSON_IsObject(o))
        return lj_fail(at->err, LORAJIT_E_FORMAT, "%s: field \"%.*s\" must be an object", at->path,
                       (int)strlen(at->prefix) - 1, at->prefix);
    if ((st = lj_json_string(at, o, "type", LJ_JSON_REQUIRED, &type))) return st;
    if (strcmp(type, "Sequence") != 0) return read_one(at, o, type, role, c);
    const cJSON *list = NULL;
    if (depth > 4)
        return lj_fail(at->err, LORAJIT_E_UNSUPPORTED, "%s: field \"%stype\": Sequences nested over 4 deep",
                       at->path, at->prefix);
    if ((st = lj_json_array(at, o, seq_key[role], LJ_JSON_REQUIRED, &list))) return st;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, list) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s%s[%d].", at->prefix, seq_key[role], i++);
        lj_json_at sub = {at->path, prefix, at->err};
        if ((st = read_step(&sub, e, role, c, depth + 1))) return st;
    }
    return LORAJIT_OK;
}

lorajit_status tk_chain_read(const lj_json_at *at, const cJSON *root, const char *key, tk_chain *c) {
    static const char *const keys[] = {"normalizer", "pre_tokenizer", "decoder", "post_processor"};
    int role = 0;
    while (strcmp(keys[role], key) != 0) role++;
    memset(c, 0, sizeof *c);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!o || cJSON_IsNull(o)) return LORAJIT_OK;
    c->present = true;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", key);
    lj_json_at sub = {at->path, prefix, at->err};
    return read_step(&sub, o, role, c, 0);
}
