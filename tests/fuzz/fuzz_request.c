/* fuzz_request.c — libFuzzer harness for `lorajit serve`'s request parser
 * (server/request.c). Input: a request body (any bytes). The first byte picks the
 * parser: bit 0 completions / chat, bit 1 also the load/unload_lora_adapter body
 * parser on the same bytes. An accepted request must keep the parser's promises (a
 * prompt or messages, max_tokens and the sampling fields in range, at most 4 non-empty
 * stop strings, a valid adapter name); a refusal must say why in one clean line. */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int chat = data[0] & 1, lora = data[0] & 2;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    srv_request r;
    srv_parse_error err;
    if (srv_request_parse(body, len, chat, &r, &err) == 0) {
        FUZZ_CHECK(chat ? r.messages_json != NULL : (r.prompt != NULL) != (r.prompt_ids != NULL));
        FUZZ_CHECK(!r.prompt_ids || (r.n_prompt_ids >= 1 && r.n_prompt_ids <= SRV_MAX_PROMPT_IDS));
        for (int i = 0; r.prompt_ids && i < r.n_prompt_ids; i++) FUZZ_CHECK(r.prompt_ids[i] >= 0);
        FUZZ_CHECK(r.max_tokens >= 1 && r.max_tokens <= SRV_MAX_TOKENS);
        FUZZ_CHECK(isfinite(r.temperature) && r.temperature >= 0);
        FUZZ_CHECK(r.top_p > 0 && r.top_p <= 1 && r.top_k >= 0 && r.repetition_penalty > 0);
        FUZZ_CHECK(r.n_stop >= 0 && r.n_stop <= SRV_MAX_STOP);
        for (int i = 0; i < r.n_stop; i++) FUZZ_CHECK(r.stop[i][0] && strlen(r.stop[i]) <= SRV_MAX_STOP_LEN);
        FUZZ_CHECK(r.logprobs >= -1 && r.logprobs <= SRV_MAX_LOGPROBS);
        srv_request_free(&r);
    } else {
        FUZZ_CHECK(r.model == NULL && r.prompt == NULL && r.prompt_ids == NULL && r.messages_json == NULL);
        FUZZ_CHECK(err.message[0] && fuzz_msg_clean(err.message, sizeof err.message));
    }
    if (lora) {
        char name[SRV_MAX_NAME + 1], path[256];
        if (srv_lora_body_parse(body, len, data[0] & 4 ? 1 : 0, name, path, sizeof path, &err) == 0)
            FUZZ_CHECK(srv_name_ok(name));
        else
            FUZZ_CHECK(err.message[0] && fuzz_msg_clean(err.message, sizeof err.message));
    }
    return 0;
}
