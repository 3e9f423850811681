/* jinja_render.c — jj_render: the chat-template pipeline in one function.
 *
 * source -> jj_lex (tokens) -> jj_parse (AST) -> variables from ctx (jj_from_json)
 * -> jj_eval_template (text). Everything made on the way lives in one arena freed
 * here; only the output buffer leaves, and only on success. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jinja.h"

lorajit_status jj_render(const char *src, size_t len, const struct cJSON *ctx, char **out, size_t *out_len,
                         lj_err *err) {
    *out = NULL;
    *out_len = 0;
    lj_err_clear(err);
    jj_state st = {.err = err, .line = 1};
    jj_token *toks;
    size_t n_toks;
    jj_node *body;
    if (!src || (ctx && !cJSON_IsObject(ctx)))
        return lj_fail(err, LORAJIT_E_ARG, "chat template: %s", !src ? "no template text" : "the variables are not a JSON object");
    if (len > JJ_MAX_SOURCE)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED, "chat template: %zu bytes, over the %u MiB limit", len, JJ_MAX_SOURCE >> 20);
    if (jj_lex(&st, src, len, &toks, &n_toks) == 0 && jj_parse(&st, toks, n_toks, &body) == 0 &&
        (st.root = jj_frame_push(&st, NULL)) != NULL) {
        for (const cJSON *c = ctx ? ctx->child : NULL; c && !st.failed; c = c->next) {
            jj_value v;
            if (c->string && jj_from_json(&st, c, &v) == 0) jj_frame_set(&st, st.root, c->string, v);
        }
        if (!st.failed) {
            st.depth = 0;
            jj_eval_template(&st, body);
        }
    }
    if (!st.failed && !st.buf && jj_emit(&st, "", 0) == 0 && !st.buf) jj_fail(&st, LORAJIT_E_NOMEM, "out of memory");
    jj_arena_free(&st);
    if (st.failed) {
        free(st.buf);
        return (lorajit_status)st.failed;
    }
    *out = st.buf;
    *out_len = st.buf_len;
    return LORAJIT_OK;
}
