/* tk_chat.c — lorajit_tokenizer_apply_chat_template: the messages (OpenAI's JSON) and the
 * tokenizer's special tokens become the template's variables, as transformers'
 * apply_chat_template passes them (src/transformers/utils/chat_template_utils.py,
 * render_jinja_template: messages, add_generation_prompt, **special_tokens_map), then
 * jj_render (jinja_render.c) renders the template tk_extras.c read. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jinja.h"
#include "tokenizer.h"

/* The messages text is bounded like the rendered output. */
#define TK_MAX_MESSAGES JJ_MAX_OUTPUT

/* Checks messages (parsed) is a list of objects each with a string "role"; E_ARG naming
 * the first message that is not. */
static lorajit_status check_messages(const lorajit_tokenizer *t, const cJSON *messages) {
    if (!cJSON_IsArray(messages))
        return tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: messages must be a JSON list of {\"role\", \"content\"}");
    int i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: messages[%d] must be an object with a string \"role\"", i);
    }
    return LORAJIT_OK;
}

/* Parses text (named what) as JSON into *out; E_ARG naming what on a syntax error. */
static lorajit_status parse_arg(const lorajit_tokenizer *t, const char *text, const char *what, cJSON **out) {
    size_t len = strlen(text);
    if (len > TK_MAX_MESSAGES)
        return tk_fail(t, LORAJIT_E_UNSUPPORTED, "apply_chat_template: %s of %zu bytes, over the %u MiB limit", what,
                       len, TK_MAX_MESSAGES >> 20);
    lj_err err = {0};
    if (lj_json_parse(text, len, what, 0, out, &err))
        return tk_fail(t, err.status == LORAJIT_E_FORMAT ? LORAJIT_E_ARG : err.status, "apply_chat_template: %s", err.msg);
    return LORAJIT_OK;
}

/* The template's variables: the special tokens, then vars (its keys win), then messages
 * and add_generation_prompt. Takes messages and vars (either may be NULL) into *out,
 * also on failure. */
static lorajit_status build_vars(const lorajit_tokenizer *t, cJSON *messages, cJSON *vars, int add_generation_prompt,
                                 cJSON **out) {
    cJSON *all = cJSON_CreateObject();
    bool ok = all != NULL;
    for (int i = 0; ok && i < TK_N_SPECIAL; i++)
        if (t->special_text[i] && !cJSON_GetObjectItemCaseSensitive(vars, tk_special_names[i]))
            ok = cJSON_AddStringToObject(all, tk_special_names[i], t->special_text[i]) != NULL;
    while (ok && vars && vars->child) {
        cJSON *v = cJSON_DetachItemViaPointer(vars, vars->child);
        ok = cJSON_AddItemToObject(all, v->string, v);
        if (!ok) cJSON_Delete(v);
    }
    cJSON_Delete(vars);
    if (ok) ok = cJSON_AddItemToObject(all, "messages", messages);
    else cJSON_Delete(messages);
    if (ok) ok = cJSON_AddBoolToObject(all, "add_generation_prompt", add_generation_prompt != 0) != NULL;
    *out = all;
    return ok ? LORAJIT_OK : tk_fail(t, LORAJIT_E_NOMEM, "apply_chat_template: out of memory");
}

lorajit_status lorajit_tokenizer_apply_chat_template_vars(const lorajit_tokenizer *t, const char *messages_json,
                                                          const char *vars_json, int add_generation_prompt,
                                                          char **text) {
    if (text) *text = NULL;
    if (!t) return LORAJIT_E_ARG;
    if (!messages_json || !text) return tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: NULL argument");
    if (!t->ready) return tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: the tokenizer failed to open: %s", t->open_msg);
    if (!t->chat_template)
        return tk_fail(t, LORAJIT_E_UNSUPPORTED,
                       "apply_chat_template: the tokenizer has no chat template (neither chat_template.jinja nor a "
                       "\"chat_template\" in tokenizer_config.json; of a list of templates the one named \"default\" is used)");
    cJSON *messages = NULL, *vars = NULL, *all = NULL;
    lorajit_status st = parse_arg(t, messages_json, "messages", &messages);
    if (!st) st = check_messages(t, messages);
    if (!st && vars_json) st = parse_arg(t, vars_json, "vars", &vars);
    if (!st && vars && !cJSON_IsObject(vars))
        st = tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: vars must be a JSON object");
    if (!st && vars && (cJSON_GetObjectItemCaseSensitive(vars, "messages") ||
                        cJSON_GetObjectItemCaseSensitive(vars, "add_generation_prompt")))
        st = tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: vars may not set \"messages\" or \"add_generation_prompt\"");
    if (st) {
        cJSON_Delete(messages);
        cJSON_Delete(vars);
        return st;
    }
    char *out = NULL;
    size_t out_len = 0;
    lj_err err = {0};
    if (!(st = build_vars(t, messages, vars, add_generation_prompt, &all))) {
        if ((st = jj_render(t->chat_template, t->chat_template_len, all, &out, &out_len, &err)) != LORAJIT_OK)
            st = tk_fail(t, st, "%s: %s", t->chat_template_from, err.msg);
        else
            tk_ok(t);
    }
    cJSON_Delete(all);
    *text = out;
    return st;
}

lorajit_status lorajit_tokenizer_apply_chat_template(const lorajit_tokenizer *t, const char *messages_json,
                                                     int add_generation_prompt, char **text) {
    return lorajit_tokenizer_apply_chat_template_vars(t, messages_json, NULL, add_generation_prompt, text);
}
