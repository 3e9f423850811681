#!/usr/bin/env bash
# CLI test of text in, text out on a real trained model (tests/models/stories260K,
# Karpathy's stories260K, MIT): `lorajit tokenize`, `detokenize`, `generate --text`
# (streamed text, EOS from the model's files) and the same run by ids.
# Usage: cli_text_test.sh BUILD_DIR (run from tests/). Exits non-zero on the first failure.
# Expected values: models/stories260K/expected.json, made by make_stories_fixture.py
# (prompt ids and text from Hugging Face tokenizers, greedy ids from the PyTorch reference).
set -u
bin="$1/lorajit"; m=models/stories260K
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# one JSON field of expected.json: a list becomes "a,b,c", a string its text
field() { tr -d '\n' < $m/expected.json | sed -E "s/.*\"$1\": *(\[[^]]*\]|\"([^\"\\\\]|\\\\.)*\").*/\1/" |
          sed -E 's/^\[|\]$//g; s/^"|"$//g; s/ //g'; }
prompt_ids=$(field prompt_ids); greedy=$(field greedy_ids)
text=$(tr -d '\n' < $m/expected.json | sed -E 's/.*"text": *"(([^"\\]|\\.)*)".*/\1/')
[ -n "$prompt_ids" ] && [ -n "$greedy" ] && [ -n "$text" ] || fail "cannot read $m/expected.json"

# tokenize / detokenize agree with HF tokenizers
got=$("$bin" tokenize --model $m --text "Once upon a time") || fail "tokenize exited $?"
[ "$got" = "$prompt_ids" ] || fail "tokenize: $got, want $prompt_ids"
got=$("$bin" tokenize --tokenizer $m/tokenizer.json --no-special --text "Once upon a time") || fail "tokenize --no-special"
[ "$got" = "${prompt_ids#1,}" ] || fail "tokenize --no-special: $got, want ${prompt_ids#1,}"
printf '"Once upon a time"\n\n"two\\nlines"\n' > "$tmp/in.jsonl"
"$bin" tokenize --model $m --jsonl "$tmp/in.jsonl" > "$tmp/jsonl.out" || fail "tokenize --jsonl exited $?"
[ "$(wc -l < "$tmp/jsonl.out")" = 2 ] && [ "$(head -1 "$tmp/jsonl.out")" = "$prompt_ids" ] || fail "--jsonl output"
got=$("$bin" detokenize --model $m --no-special --ids "$prompt_ids,$greedy") || fail "detokenize exited $?"
[ "$got" = "$text" ] || fail "detokenize --no-special: '$got', want '$text'"
# HF's decode keeps special tokens unless asked (skip_special_tokens=False): "<s> Once ..."
got=$("$bin" detokenize --model $m --ids "$prompt_ids,$greedy") || fail "detokenize exited $?"
[ "$got" = "<s> $text" ] || fail "detokenize: '$got', want '<s> $text'"

# generate --text: the story streamed as text, then the ids
"$bin" generate --model $m --text "Once upon a time" --max-new 40 --print-ids > "$tmp/gen" 2> "$tmp/gen.err" ||
  fail "generate --text exited $?: $(cat "$tmp/gen.err")"
[ "$(head -1 "$tmp/gen")" = "$text" ] || fail "generate --text printed '$(head -1 "$tmp/gen")', want '$text'"
grep -qx "ids: $greedy" "$tmp/gen" || fail "generate --text ids: $(grep '^ids:' "$tmp/gen"), want $greedy"
# the same run by ids gives the same ids
"$bin" generate --model $m --prompt "$prompt_ids" --max-new 40 > "$tmp/ids" || fail "generate --prompt exited $?"
[ "$(head -1 "$tmp/ids")" = "$greedy" ] || fail "generate --prompt: $(head -1 "$tmp/ids"), want $greedy"

# EOS from the model's files (generation_config.json: 2) unless --eos overrides it:
# with --eos set to the 3rd generated id, generation stops right after it
third=$(echo "$greedy" | cut -d, -f3)
"$bin" generate --model $m --prompt "$prompt_ids" --max-new 40 --eos "$third" > "$tmp/eos" || fail "--eos exited $?"
[ "$(head -1 "$tmp/eos")" = "$(echo "$greedy" | cut -d, -f1-3)" ] || fail "--eos $third: $(head -1 "$tmp/eos")"

# --chat renders the folder's chat template (here one that writes BOS and the user's
# text, so the prompt is the --text one) and gives the same ids; without a template
# --chat is refused by name
mkdir "$tmp/chat"
cp $m/* "$tmp/chat/"
printf '%s' "{{ bos_token }}{{ messages[0]['content'] }}{% if add_generation_prompt %}{% endif %}" > "$tmp/chat/chat_template.jinja"
"$bin" generate --model "$tmp/chat" --chat "Once upon a time" --max-new 40 --print-ids > "$tmp/chatgen" 2> "$tmp/err" ||
  fail "generate --chat exited $?: $(cat "$tmp/err")"
grep -qx "ids: $greedy" "$tmp/chatgen" || fail "generate --chat ids: $(grep '^ids:' "$tmp/chatgen"), want $greedy"
"$bin" generate --model $m --chat "hi" --max-new 4 > /dev/null 2> "$tmp/err" && fail "--chat without a template succeeded"
grep -q "no chat template" "$tmp/err" || fail "--chat without a template: $(cat "$tmp/err")"

# errors name what is wrong
"$bin" tokenize --model "$tmp" --text x > /dev/null 2> "$tmp/err" && fail "tokenize without tokenizer.json succeeded"
grep -q "tokenizer.json" "$tmp/err" || fail "missing tokenizer.json not named: $(cat "$tmp/err")"
"$bin" detokenize --model $m --ids 1,99999 > /dev/null 2> "$tmp/err" && fail "detokenize of id 99999 succeeded"
grep -q "99999" "$tmp/err" || fail "bad id not named: $(cat "$tmp/err")"
echo "cli_text: ok"
