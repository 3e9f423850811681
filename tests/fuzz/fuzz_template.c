/* fuzz_template.c — libFuzzer harness for the chat-template engine (tokenizer/jinja*.c).
 *
 * Input: a template (any bytes), rendered with a fixed set of variables (messages
 * with a system turn, tool calls and a tool response; tools; bos/eos; the generation
 * prompt). A success must give a NUL-terminated text within the output cap; a refusal
 * must say why in one clean line. The caps (steps, depth, output, arena) keep every
 * input bounded in time and memory. */
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "tokenizer/jinja.h"

static const char CONTEXT[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Weather in Paris? {{ x }} \\u00e9\\ud83c\\udf89\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>\\nok\\n</think>\\n\\n\", \"tool_calls\": [{\"id\": \"abc123XYZ\","
    " \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}]},"
    " {\"role\": \"tool\", \"content\": \"21 C\", \"tool_call_id\": \"abc123XYZ\"},"
    " {\"role\": \"assistant\", \"content\": \"It is 21 C.\", \"reasoning_content\": \"easy\"},"
    " {\"role\": \"user\", \"content\": \"\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}],"
    " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true, \"n\": 3, \"f\": 2.5}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *ctx = cJSON_Parse(CONTEXT);
    FUZZ_CHECK(ctx != NULL);
    char *out = NULL;
    size_t len = 0;
    lj_err err;
    lorajit_status st = jj_render((const char *)data, size, ctx, &out, &len, &err);
    if (st == LORAJIT_OK) {
        FUZZ_CHECK(out != NULL && out[len] == '\0' && len <= JJ_MAX_OUTPUT);
    } else {
        FUZZ_CHECK(out == NULL);
        FUZZ_CHECK(st == LORAJIT_E_FORMAT || st == LORAJIT_E_UNSUPPORTED || st == LORAJIT_E_ARG || st == LORAJIT_E_NOMEM);
        FUZZ_CHECK_REFUSAL(st, err);
    }
    free(out);
    cJSON_Delete(ctx);
    return 0;
}
