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

lorajit_status lorajit_tokenizer_apply_chat_template(const lorajit_tokenizer *t, const char *messages_json,
                                                     int add_generation_prompt, char **text) {
    if (text) *text = NULL;
    if (!t) return LORAJIT_E_ARG;
    if (!messages_json || !text) return tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: NULL argument");
    if (!t->ready) return tk_fail(t, LORAJIT_E_ARG, "apply_chat_template: the tokenizer failed to open: %s", t->open_msg);
    if (!t->chat_template)
        return tk_fail(t, LORAJIT_E_UNSUPPORTED,
                       "apply_chat_template: the tokenizer has no chat template (neither chat_template.jinja nor a "
                       "\"chat_template\" in tokenizer_config.json; a list of templates needs one named \"default\")");
    size_t len = strlen(messages_json);
    if (len > TK_MAX_MESSAGES)
        return tk_fail(t, LORAJIT_E_UNSUPPORTED, "apply_chat_template: messages of %zu bytes, over the %u MiB limit", len,
                       TK_MAX_MESSAGES >> 20);
    lj_err err = {0};
    cJSON *messages = NULL, *vars = NULL;
    if (lj_json_parse(messages_json, len, "messages", 0, &messages, &err))
        return tk_fail(t, err.status == LORAJIT_E_FORMAT ? LORAJIT_E_ARG : err.status, "apply_chat_template: %s", err.msg);
    lorajit_status st = check_messages(t, messages);
    if (st) {
        cJSON_Delete(messages);
        return st;
    }
    if (!(vars = cJSON_CreateObject()) || !cJSON_AddItemToObject(vars, "messages", messages)) {
        cJSON_Delete(messages);
        cJSON_Delete(vars);
        return tk_fail(t, LORAJIT_E_NOMEM, "apply_chat_template: out of memory");
    }
    bool ok = cJSON_AddBoolToObject(vars, "add_generation_prompt", add_generation_prompt != 0) != NULL;
    for (int i = 0; ok && i < TK_N_SPECIAL; i++)
        if (t->special_text[i]) ok = cJSON_AddStringToObject(vars, tk_special_names[i], t->special_text[i]) != NULL;
    char *out = NULL;
    size_t out_len = 0;
    if (!ok)
        st = tk_fail(t, LORAJIT_E_NOMEM, "apply_chat_template: out of memory");
    else if ((st = jj_render(t->chat_template, t->chat_template_len, vars, &out, &out_len, &err)) != LORAJIT_OK)
        st = tk_fail(t, st, "%s: %s", t->chat_template_from, err.msg);
    else
        tk_ok(t);
    cJSON_Delete(vars);
    *text = out;
    return st;
}
