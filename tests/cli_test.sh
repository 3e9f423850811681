#!/usr/bin/env bash
# CLI contract test: `lorajit script` and `lorajit run` as the README specifies.
# Usage: cli_test.sh BUILD_DIR (run from tests/). Exits non-zero on the first failure.
set -u
bin="$1/lorajit"; m=conformance/models/llama-tiny; a=conformance/adapters/llama-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
toks=175,196,25,246,67,211,151

cat > "$tmp/s.txt" <<EOS
# a comment, then a blank line

load qv $a/a_qv
load all $a/a_all
set qv:1,all:0.5
forward $toks $tmp/s_multi.bin
load qv $a/a_mlp
set nosuch
hotswap qv $a/a_mlp
set qv
forward $toks $tmp/s_mlp.bin
disable
forward $toks $tmp/s_off.bin
enable
delete all
stats
EOS
"$bin" script --model $m --max-rank 16 "$tmp/s.txt" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc = 1 ] || fail "script with failing lines exited $rc, want 1"
grep -q '^error: line 7: ' "$tmp/err" || fail "no 'error: line 7:' for the duplicate load: $(cat "$tmp/err")"
grep -q '^error: line 8: .*nosuch' "$tmp/err" || fail "no 'error: line 8:' naming nosuch"
[ "$(grep -c '^error: line' "$tmp/err")" = 2 ] || fail "want exactly 2 failing lines"
grep -Eq '^compiles=1( |$)' "$tmp/out" || fail "stats line does not start with compiles=1: $(cat "$tmp/out")"
[ "$(stat -c %s "$tmp/s_multi.bin")" = $((7 * 256 * 4)) ] || fail "logits file size"

"$bin" run --model $m --max-rank 16 --adapter qv=$a/a_qv --adapter all=$a/a_all --active qv:1,all:0.5 \
  --tokens $toks --logits "$tmp/r_multi.bin" > /dev/null || fail "run multi"
cmp -s "$tmp/s_multi.bin" "$tmp/r_multi.bin" || fail "script and run disagree (multi)"
"$bin" run --model $m --max-rank 16 --adapter qv=$a/a_mlp --active qv --tokens $toks --logits "$tmp/r_mlp.bin" > /dev/null
cmp -s "$tmp/s_mlp.bin" "$tmp/r_mlp.bin" || fail "hotswapped adapter differs from a fresh load"
"$bin" run --model $m --max-rank 16 --tokens $toks --logits "$tmp/r_base.bin" > /dev/null
cmp -s "$tmp/s_off.bin" "$tmp/r_base.bin" || fail "disabled != base"
for t in 1 2; do
  printf 'forward %s %s\nstats\n' $toks "$tmp/r_t$t.bin" > "$tmp/t.txt"
  "$bin" script --model $m --max-rank 16 --threads $t "$tmp/t.txt" > "$tmp/out_t$t" || fail "script --threads $t"
  grep -Eq "(^| )threads=$t( |\$)" "$tmp/out_t$t" || fail "--threads $t: stats do not say threads=$t: $(cat "$tmp/out_t$t")"
  cmp -s "$tmp/r_base.bin" "$tmp/r_t$t.bin" || fail "--threads $t changes the logits"
done
"$bin" run --model $m --threads 0 --tokens $toks > /dev/null 2> "$tmp/e_t" && fail "--threads 0 accepted"
grep -q -- '--threads' "$tmp/e_t" || fail "--threads 0: the flag is not named: $(cat "$tmp/e_t")"
# --kv-dtype: 16-bit K/V change the logits a little (a 7-token prompt: attention reads them);
# a bad value is refused naming options.kv_dtype
"$bin" run --model $m --max-rank 16 --kv-dtype bf16 --tokens $toks --logits "$tmp/r_kv.bin" > /dev/null ||
  fail "run --kv-dtype bf16"
[ "$(stat -c %s "$tmp/r_kv.bin")" = $((7 * 256 * 4)) ] || fail "--kv-dtype bf16: logits file size"
cmp -s "$tmp/r_kv.bin" "$tmp/r_base.bin" && fail "--kv-dtype bf16 gives the f32 cache's logits bit for bit"
"$bin" run --model $m --kv-dtype fp8 --tokens $toks > /dev/null 2> "$tmp/e_kv" && fail "--kv-dtype fp8 accepted"
grep -q 'kv_dtype.*fp8' "$tmp/e_kv" || fail "--kv-dtype fp8: the field is not named: $(cat "$tmp/e_kv")"
# --lora-dtype: bf16 slots round a_all's f32 values, so its logits move a little (and
# still differ from the base model's); a bad value is refused naming options.lora_dtype
"$bin" run --model $m --max-rank 16 --adapter all=$a/a_all --active all --tokens $toks --logits "$tmp/r_all.bin" \
  > /dev/null || fail "run a_all"
"$bin" run --model $m --max-rank 16 --lora-dtype bf16 --adapter all=$a/a_all --active all --tokens $toks \
  --logits "$tmp/r_lora.bin" > /dev/null || fail "run --lora-dtype bf16"
[ "$(stat -c %s "$tmp/r_lora.bin")" = $((7 * 256 * 4)) ] || fail "--lora-dtype bf16: logits file size"
cmp -s "$tmp/r_lora.bin" "$tmp/r_all.bin" && fail "--lora-dtype bf16 gives f32 slots' logits bit for bit"
cmp -s "$tmp/r_lora.bin" "$tmp/r_base.bin" && fail "--lora-dtype bf16: the adapter changes nothing"
"$bin" run --model $m --lora-dtype fp8 --tokens $toks > /dev/null 2> "$tmp/e_lora" && fail "--lora-dtype fp8 accepted"
grep -q 'lora_dtype.*fp8' "$tmp/e_lora" || fail "--lora-dtype fp8: the field is not named: $(cat "$tmp/e_lora")"
"$bin" run --model $m --adapter x=$a/a_qv --active x --disable --tokens $toks --logits "$tmp/r_dis.bin" > /dev/null
cmp -s "$tmp/r_dis.bin" "$tmp/r_base.bin" || fail "run --disable != base"
"$bin" run --model $m --tokens 1,2,999 > /dev/null 2> "$tmp/e2"; [ $? = 1 ] || fail "bad token should exit 1"
"$bin" run --model nosuchdir --tokens 1 > /dev/null 2> "$tmp/e3"; grep -q nosuchdir "$tmp/e3" || fail "missing model not named"
"$bin" inspect --model $m | grep -q 'lora' || fail "inspect shows no lora nodes"
"$bin" bogus > /dev/null 2>&1; [ $? = 2 ] || fail "unknown command should exit 2"
echo "cli_test: 1 passed, 0 failed"
