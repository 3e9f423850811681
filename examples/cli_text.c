/* cli_text.c — what the `lorajit` command says besides its results: the usage of
 * every verb (all of them on a usage error or `lorajit --help`, one on
 * `lorajit VERB --help`) and the progress lines on stderr (stages with their
 * time, shown when stderr is a terminal or with --progress). Input: a verb, the
 * common options. Output: text on stdout (help) or stderr (usage errors,
 * progress). Uses only lorajit.h (through cli.h) and libc. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct verb_usage {
    const char *verb;
    int common;       /* takes the schema options, --artifact and --progress */
    const char *text;
} verb_usage;

static const verb_usage verbs[] = {
    {"run", 1,
     "  lorajit run    --model DIR [schema options] [--adapter NAME=DIR]...\n"
     "                 [--active NAME[:W][,NAME[:W]...]] [--disable] --tokens 1,2,3 [--logits FILE]\n"
     "    One forward pass. Prints a line a position (its argmax), or with --logits FILE\n"
     "    writes raw little-endian float32 [tokens, vocab] to FILE and says what it wrote.\n"},
    {"script", 1,
     "  lorajit script --model DIR [schema options] FILE|-\n"
     "    Runs a script ('-': stdin), one command a line ('#' starts a comment):\n"
     "      load NAME DIR | hotswap NAME DIR | set NAME[:W][,NAME[:W]...] | enable | disable\n"
     "      delete NAME | forward TOKENS FILE | stats\n"
     "      generate ADAPTER|- PROMPT N OUTFILE   (greedy; '-': the engine's active set)\n"
     "    A failing line prints 'error: line N: ...' and the script goes on (exit 1).\n"},
    {"inspect", 1,
     "  lorajit inspect --model DIR [schema options]\n"
     "    Prints the compiled graph (IR) to stdout.\n"},
    {"demo", 0,
     "  lorajit demo   [--model DIR] [--cycles N]\n"
     "    Compile once, swap many: checks the logits after every swap. Without --model it\n"
     "    uses the conformance model and adapters found at $LORAJIT_DATA or\n"
     "    <exe dir>/../tests/conformance; with --model DIR it loads a_qv, a_all and a_mlp\n"
     "    from DIR/../../adapters/<basename of DIR>/.\n"},
    {"bench", 0,
     "  lorajit bench  [--quick] [--out DIR] ...\n"
     "    Runs lorajit_bench (bench/); `lorajit bench --help` lists its options.\n"},
    {"compile", 1,
     "  lorajit compile --model DIR [schema options] [--target-cpu CPU] -o OUT\n"
     "    Writes an artifact to OUT (CPU: native (default), x86-64, x86-64-v2, x86-64-v3,\n"
     "    x86-64-v4); run, script, inspect and generate serve it with --artifact OUT.\n"},
    {"generate", 1,
     "  lorajit generate --model DIR [schema options] [--adapter NAME=DIR]... [--adapter-dir ROOT]\n"
     "                 ((--prompt 1,2,3 | --text STR | --chat STR) [--use NAME[:W][,NAME[:W]...]]\n"
     "                  | --batch FILE|-) [--tokenizer FILE] [--print-ids]\n"
     "                 [--max-new N] [--temperature T] [--top-k K] [--top-p P]\n"
     "                 [--repetition-penalty R] [--seed S] [--eos ID]\n"
     "    --text: encode with the model's tokenizer.json (BOS/EOS as it says), print the\n"
     "    prompt and then the text as it is generated; --chat: a user turn rendered with\n"
     "    the chat template of tokenizer_config.json, then the answer as it is generated;\n"
     "    --print-ids: then a line 'ids: ' with the generated ids. EOS comes\n"
     "    from the model's files (generation_config.json, tokenizer_config.json) when it\n"
     "    has a tokenizer.json, unless --eos ID overrides it.\n"
     "    --batch FILE: one request a line, ADAPTER|- PROMPT [MAX_NEW], all in one batch\n"
     "    (ADAPTER: NAME[:W][,NAME[:W]...], '-' the base model). A JSONL FILE (first\n"
     "    character '{') runs through the scheduler (continuous batching, --max-batch at\n"
     "    once): a line {\"prompt\": [ids] | \"text\" | \"chat\": STR, \"adapter\": SPEC |\n"
     "    [names] (\"weights\": [..]), \"max_new\", \"temperature\", \"top_k\", \"top_p\",\n"
     "    \"repetition_penalty\", \"seed\", \"eos\", \"stop\": [STR | [ids]], \"id\"}; prints a\n"
     "    JSON line per request: index, id, tokens, text, finish, error, times.\n"
     "    --adapter-dir ROOT: a NAME not loaded with --adapter is ROOT/NAME, loaded when a\n"
     "    request names it (more adapters than --slots: the least recently used is evicted).\n"},
    {"serve", 1,
     "  lorajit serve  --model DIR [schema options] [--adapter NAME=DIR]... [--adapter-dir ROOT]\n"
     "                 [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--served-model-name NAME]\n"
     "                 [--tokenizer PATH] [--max-body-bytes N] [--idle-timeout S] [--max-waiting N]\n"
     "                 [--max-logprobs N]\n"
     "    An OpenAI/vLLM-compatible HTTP server (server/): /v1/completions,\n"
     "    /v1/chat/completions, /v1/models, /v1/load_lora_adapter, /v1/unload_lora_adapter,\n"
     "    /health, /metrics; a request's \"model\" names the base model or an adapter.\n"
     "    Runs until SIGINT/SIGTERM; one log line per request on stderr. --max-logprobs N:\n"
     "    logprobs up to top-N (not streamed), computed in a sequence kept for them.\n"},
    {"tokenize", 0,
     "  lorajit tokenize (--tokenizer FILE | --model DIR) [--no-special] (--text STR | --jsonl FILE|-)\n"
     "    Prints the ids of each text, comma-separated, a line each (--jsonl: one JSON string\n"
     "    a line); --no-special: without the post-processor's BOS/EOS.\n"},
    {"detokenize", 0,
     "  lorajit detokenize (--tokenizer FILE | --model DIR) [--no-special] --ids 1,2,3\n"
     "    Prints the text of the ids; --no-special: skips special tokens.\n"},
};
#define N_VERBS (int)(sizeof verbs / sizeof verbs[0])

static const char common_text[] =
    "schema options: --schema FILE --max-rank N --targets a,b,.. --slots N --max-batch N\n"
    "  --max-seq-len N --lora-dtype f32|bf16|f16 (how the LoRA slots store A and B: f32\n"
    "  exactly; 16 bits rounded to nearest even, half the bytes a step reads; compiled in)\n"
    "KV cache: --kv-cache-mb N (MiB for its blocks; default: max-batch sequences of\n"
    "  max-seq-len positions) --kv-block-size N (positions per block, a power of two; 16)\n"
    "  --kv-dtype f32|f16|bf16 (how K and V are stored; 16 bits: twice the blocks, compiled in)\n"
    "--threads N: compute threads of the engine (1..256; default: OpenBLAS's count,\n"
    "  OPENBLAS_NUM_THREADS or every core)\n"
    "--artifact OUT (run, script, inspect, generate): serve the artifact that `lorajit\n"
    "  compile` wrote to OUT instead of compiling; --model still names the weights\n"
    "--progress, --no-progress: stage lines (compile, load, generate's token count) on\n"
    "  stderr; the default is on when stderr is a terminal, off otherwise\n"
    "-h, --help after a command: that command's usage on stdout\n";

static void print_usage(FILE *f, const char *verb) {
    int known = 0;
    for (int k = 0; verb && k < N_VERBS; k++) known |= !strcmp(verb, verbs[k].verb);
    if (!known) verb = NULL;
    fputs("usage:\n", f);
    int common = verb == NULL;
    for (int k = 0; k < N_VERBS; k++)
        if (!verb || !strcmp(verb, verbs[k].verb)) {
            fputs(verbs[k].text, f);
            common |= verbs[k].common;
        }
    if (common) fputs(common_text, f);
}

int usage(void) {
    print_usage(stderr, NULL);
    return 2;
}

int help(const char *verb) {
    print_usage(stdout, verb);
    return 0;
}

int is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

/* ---- progress ---- */

int progress_on(const cli_common *c) { return c->progress > 0 || (c->progress == 0 && isatty(2)); }

double progress_begin(const cli_common *c, const char *fmt, ...) {
    if (progress_on(c)) {
        va_list ap;
        va_start(ap, fmt);
        fputs("lorajit: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs(" ...", stderr);
        fflush(stderr);
        va_end(ap);
    }
    return now_ms();
}

void progress_end(const cli_common *c, double t0, int ok) {
    if (!progress_on(c)) return;
    if (ok) fprintf(stderr, " done in %.1f ms\n", now_ms() - t0);
    else fputs(" failed\n", stderr);
}
