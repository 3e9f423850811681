#!/usr/bin/env bash
# CLI test of `lorajit generate` and the script's `generate` line.
# Usage: cli_generate_test.sh BUILD_DIR (run from tests/). Exits non-zero on the first failure.
# The expected ids are golden/expected/generate.json's case gqa__r8_qv (torch, greedy).
set -u
bin="$1/lorajit"; m=golden/models/gqa; a=golden/adapters/gqa
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
want=41,110,124,97,72,72,72,72,72,72,72,72

"$bin" generate --model $m --max-rank 16 --slots 4 --adapter r8=$a/r8_qv --use r8 \
  --prompt 109,78,43,47,74 --max-new 12 > "$tmp/one" || fail "generate exited $?"
[ "$(head -1 "$tmp/one")" = $want ] || fail "greedy ids $(head -1 "$tmp/one"), want $want"
grep -Eq '^prefill: 5 tokens in [0-9.]+ ms \([0-9.]+ tok/s\); decode: 11 tokens in [0-9.]+ ms \([0-9.]+ tok/s\)$' \
  "$tmp/one" || fail "summary line: $(tail -1 "$tmp/one")"

cat > "$tmp/batch" <<EOB
# adapter  prompt  max_new
r8 109,78,43,47,74 12
- 22,60,101,101,11 12
r8:0.5,r4:-1.25 44,109,48,17,4 6
EOB
"$bin" generate --model $m --max-rank 16 --slots 4 --adapter r8=$a/r8_qv --adapter r4=$a/r4_all \
  --batch "$tmp/batch" > "$tmp/batch.out" || fail "batch exited $?"
grep -q "^request 0 (r8): $want\$" "$tmp/batch.out" || fail "batch request 0: $(grep '^request 0' "$tmp/batch.out")"
grep -q '^request 1 (-): 78,8,7,45,71,45,71,62,38,62,38,62$' "$tmp/batch.out" || fail "batch request 1 (base)"
grep -q '^request 2 (r8:0.5,r4:-1.25): 63,0,24,44,70,101$' "$tmp/batch.out" || fail "batch request 2 (weighted)"
[ "$(grep -c '^2: ' "$tmp/batch.out")" = 6 ] || fail "request 2 printed $(grep -c '^2: ' "$tmp/batch.out") tokens, want 6"

cat > "$tmp/s.txt" <<EOS
load r8 $a/r8_qv
generate r8 109,78,43,47,74 12 $tmp/g_own.txt
set r8
generate - 109,78,43,47,74 12 $tmp/g_engine.txt
generate nosuch 1,2 3 $tmp/g_bad.txt
stats
EOS
"$bin" script --model $m --max-rank 16 --slots 4 "$tmp/s.txt" > "$tmp/s.out" 2> "$tmp/s.err"; rc=$?
[ $rc = 1 ] || fail "script with a failing generate exited $rc, want 1"
grep -q "^error: line 5: .*nosuch" "$tmp/s.err" || fail "no 'error: line 5:' naming nosuch: $(cat "$tmp/s.err")"
[ "$(cat "$tmp/g_own.txt")" = $want ] || fail "script generate (own set): $(cat "$tmp/g_own.txt")"
[ "$(cat "$tmp/g_engine.txt")" = $want ] || fail "script generate (engine's set): $(cat "$tmp/g_engine.txt")"
grep -Eq '^compiles=1 .*decode_tokens=22 threads=[0-9]+$' "$tmp/s.out" || fail "stats: $(cat "$tmp/s.out")"

sample="--temperature 0.9 --top-k 40 --top-p 0.95 --repetition-penalty 1.1"
"$bin" generate --model $m --prompt 1,2,3 --max-new 10 $sample --seed 5 | head -1 > "$tmp/s5a"
"$bin" generate --model $m --prompt 1,2,3 --max-new 10 $sample --seed 5 | head -1 > "$tmp/s5b"
cmp -s "$tmp/s5a" "$tmp/s5b" || fail "same seed, different ids"
"$bin" generate --model $m --prompt 1,2,3 --max-new 10 --eos "$(cut -d, -f3 "$tmp/s5a")" $sample --seed 5 \
  | head -1 > "$tmp/eos"
[ "$(cut -d, -f1-3 "$tmp/s5a")" = "$(cat "$tmp/eos")" ] || fail "--eos did not stop after 3 ids: $(cat "$tmp/eos")"

"$bin" generate --model $m --max-seq-len 8 --prompt 1,2,3,4,5 --max-new 5 > /dev/null 2> "$tmp/full"
[ $? = 1 ] && grep -q 'KV cache full' "$tmp/full" || fail "KV cache overflow: $(cat "$tmp/full")"
"$bin" generate --model $m --prompt 1,2 --top-p 2 > /dev/null 2>&1; [ $? = 2 ] || fail "--top-p 2 should exit 2"
"$bin" generate --model $m > /dev/null 2>&1; [ $? = 2 ] || fail "no --prompt should exit 2"
# --adapter-dir: names not loaded are ROOT/NAME, loaded when a request names them; with 2
# slots and batches of 2 the four adapters of the file are evicted and loaded in turn, and
# each request's ids equal those of the same adapter loaded with --adapter
mkdir "$tmp/root"
for n in r2_kou r2_mlp r4_all r8_qv rslora; do [ -d "$a/$n" ] && cp -r "$a/$n" "$tmp/root/$n"; done
names=$(ls "$tmp/root")
: > "$tmp/lazy_batch"
for n in $names; do echo "$n 109,78,43,47,74 6" >> "$tmp/lazy_batch"; done
[ "$(wc -l < "$tmp/lazy_batch")" -ge 3 ] || fail "fewer than 3 adapters in $a"
"$bin" generate --model $m --max-rank 16 --slots 2 --max-batch 2 --adapter-dir "$tmp/root" --batch "$tmp/lazy_batch" \
  > "$tmp/lazy" 2> "$tmp/err" || fail "generate --adapter-dir exited $?: $(cat "$tmp/err")"
i=0
for n in $names; do
  one=$("$bin" generate --model $m --max-rank 16 --adapter x="$tmp/root/$n" --use x --prompt 109,78,43,47,74 --max-new 6 | head -1)
  grep -qx "request $i ($n): $one" "$tmp/lazy" || fail "--adapter-dir request $i ($n): want $one, got: $(grep "request $i " "$tmp/lazy")"
  i=$((i + 1))
done
"$bin" generate --model $m --adapter-dir "$tmp/nonexistent" --prompt 1,2 > /dev/null 2> "$tmp/err"
[ $? = 1 ] && grep -q 'nonexistent' "$tmp/err" || fail "--adapter-dir of a missing folder: $(cat "$tmp/err")"
# a JSONL batch runs through the scheduler: the same adapters through 2 slots, 2 requests
# at a time joining as others finish; each line's ids equal the adapter loaded with
# --adapter; a name nobody knows finishes its own request with an error (exit 1)
: > "$tmp/lazy.jsonl"
for n in $names; do echo "{\"prompt\": [109,78,43,47,74], \"adapter\": \"$n\", \"max_new\": 6, \"id\": \"$n\"}" >> "$tmp/lazy.jsonl"; done
echo '{"prompt": [1, 2], "adapter": "nosuch", "max_new": 2}' >> "$tmp/lazy.jsonl"
"$bin" generate --model $m --max-rank 16 --slots 2 --max-batch 2 --adapter-dir "$tmp/root" --batch "$tmp/lazy.jsonl" \
  > "$tmp/jsonl" 2> "$tmp/err"
[ $? = 1 ] || fail "JSONL batch with an unknown adapter should exit 1: $(cat "$tmp/err")"
for n in $names; do
  one=$("$bin" generate --model $m --max-rank 16 --adapter x="$tmp/root/$n" --use x --prompt 109,78,43,47,74 --max-new 6 | head -1)
  grep -qF "\"id\":\"$n\",\"tokens\":[$one],\"finish\":\"length\"" "$tmp/jsonl" || fail "JSONL $n: want [$one]: $(cat "$tmp/jsonl")"
done
grep -q '"finish":"error","error":".*nosuch' "$tmp/jsonl" || fail "JSONL unknown adapter: $(cat "$tmp/jsonl")"
[ "$(wc -l < "$tmp/jsonl")" = $(( $(echo $names | wc -w) + 1 )) ] || fail "JSONL: one line per request: $(cat "$tmp/jsonl")"
printf '{"prompt": [1, 2]}\n{"prompt": 7}\n' > "$tmp/bad.jsonl"
"$bin" generate --model $m --batch "$tmp/bad.jsonl" > /dev/null 2> "$tmp/err"
[ $? = 1 ] && grep -q 'line 2: want a non-empty list' "$tmp/err" || fail "bad JSONL line: $(cat "$tmp/err")"
echo "cli_generate_test: 1 passed, 0 failed"
