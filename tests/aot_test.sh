#!/usr/bin/env bash
# Ahead-of-time test: `lorajit compile` writes an artifact; liblorajit_runtime.so and
# aot_example do not link LLVM (ldd) and export only lorajit_*; aot_example serves the
# artifact with two adapters; `run`/`script`/`generate --artifact` match the JIT bit for bit.
# Usage: aot_test.sh BUILD_DIR (run from tests/). Exits non-zero on the first failure.
set -u
b="$1"; bin="$b/lorajit"; m=conformance/models/llama-tiny; a=conformance/adapters/llama-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
toks=175,196,25,246,67,211,151

# The runtime library and the example link no LLVM, and the library exports only the API.
for f in "$b/liblorajit_runtime.so" "$b/aot_example"; do
  [ -e "$f" ] || fail "$f was not built"
  ldd "$f" > "$tmp/ldd" || fail "ldd $f"
  ! grep -qi llvm "$tmp/ldd" || fail "$f links LLVM: $(grep -i llvm "$tmp/ldd")"
done
other=$(nm -D --defined-only "$b/liblorajit_runtime.so" | awk '{print $3}' | grep -v '^lorajit_' || true)
[ -z "$other" ] || fail "liblorajit_runtime.so exports more than lorajit_*: $other"

# Compile an artifact (and one for an older CPU level).
"$bin" compile --model $m --max-rank 16 --slots 4 -o "$tmp/art" > "$tmp/c.out" || fail "compile exited $?"
for f in manifest.json liblorajit_model.so model.o model.h model.ir; do
  [ -s "$tmp/art/$f" ] || fail "artifact lacks $f"
done
grep -q '"cpu"' "$tmp/art/manifest.json" || fail "manifest has no cpu"
"$bin" compile --model $m --max-rank 16 --slots 4 --target-cpu x86-64-v2 -o "$tmp/art2" > /dev/null \
  || fail "compile --target-cpu x86-64-v2 exited $?"
grep -q '"cpu":[[:space:]]*"x86-64-v2"' "$tmp/art2/manifest.json" || fail "x86-64-v2 manifest names another cpu"
"$bin" compile --model $m --target-cpu pentium9 -o "$tmp/art3" > /dev/null 2> "$tmp/e1"; [ $? = 1 ] \
  || fail "an unknown --target-cpu should exit 1"
grep -q pentium9 "$tmp/e1" || fail "unknown cpu not named: $(cat "$tmp/e1")"
PATH=/nonexistent "$bin" compile --model $m -o "$tmp/art4" > /dev/null 2> "$tmp/e4"; [ $? = 1 ] \
  || fail "compile without a C compiler on PATH should exit 1"
grep -q 'cannot run the C compiler' "$tmp/e4" || fail "missing cc not explained: $(cat "$tmp/e4")"
[ ! -e "$tmp/art4/manifest.json" ] || fail "a failed compile left a manifest"

# The example program: runtime library + artifact, two adapters, switching.
"$b/aot_example" "$tmp/art" $m $a/a_qv $a/a_all > "$tmp/ex.out" || fail "aot_example: $(cat "$tmp/ex.out")"
grep -q 'aot_example: OK' "$tmp/ex.out" || fail "aot_example did not report OK"
"$b/aot_example" "$tmp/art2" $m $a/a_qv $a/a_all > /dev/null || fail "aot_example on the x86-64-v2 artifact"

# run --artifact gives the JIT's logits bit for bit.
jit=(--model $m --max-rank 16 --slots 4); aot=(--artifact "$tmp/art" --model $m)
ad=(--adapter qv=$a/a_qv --adapter all=$a/a_all)
for state in "" "--active qv" "--active qv:1,all:0.5" "--active qv --disable"; do
  "$bin" run "${jit[@]}" "${ad[@]}" $state --tokens $toks --logits "$tmp/j.bin" > /dev/null || fail "jit run $state"
  "$bin" run "${aot[@]}" "${ad[@]}" $state --tokens $toks --logits "$tmp/a.bin" > /dev/null || fail "aot run $state"
  cmp -s "$tmp/j.bin" "$tmp/a.bin" || fail "run --artifact differs from the JIT (state '$state')"
done

# script --artifact: the same lines, the same files; stats say compiles=0.
cat > "$tmp/s.txt" <<EOS
load qv $a/a_qv
set qv
forward $toks OUT
stats
EOS
sed "s#OUT#$tmp/sj.bin#" "$tmp/s.txt" | "$bin" script "${jit[@]}" - > /dev/null || fail "jit script"
sed "s#OUT#$tmp/sa.bin#" "$tmp/s.txt" | "$bin" script "${aot[@]}" - > "$tmp/sa.out" || fail "aot script"
cmp -s "$tmp/sj.bin" "$tmp/sa.bin" || fail "script --artifact differs from the JIT"
grep -Eq '^compiles=0( |$)' "$tmp/sa.out" || fail "artifact stats: $(cat "$tmp/sa.out")"

# generate --artifact (when the CLI has generate): same tokens as the JIT.
if "$bin" help 2>/dev/null | grep -q 'lorajit generate'; then
  g=(--adapter qv=$a/a_qv --use qv --prompt 1,2,3 --max-new 6)
  "$bin" generate "${jit[@]}" "${g[@]}" | head -1 > "$tmp/gj" || fail "jit generate"
  "$bin" generate "${aot[@]}" "${g[@]}" | head -1 > "$tmp/ga" || fail "aot generate"
  cmp -s "$tmp/gj" "$tmp/ga" || fail "generate --artifact: $(cat "$tmp/ga"), JIT: $(cat "$tmp/gj")"
fi

# Refusals: schema options that disagree, another model.
"$bin" run "${aot[@]}" --max-rank 8 --tokens 1 > /dev/null 2> "$tmp/e2"; [ $? = 1 ] || fail "other max-rank should exit 1"
grep -q max_rank "$tmp/e2" || fail "max_rank not named: $(cat "$tmp/e2")"
"$bin" run --artifact "$tmp/art" --model golden/models/gqa --tokens 1 > /dev/null 2> "$tmp/e3"
grep -q intermediate_size "$tmp/e3" || fail "another model: field not named: $(cat "$tmp/e3")"
# A BF16 model: its matrices stay 16-bit in the compiled code, artifact and JIT agree
# bit for bit (decode rows too), and the same shape in F32 is refused by tensor name.
gen=(--dim 64 --hidden 160 --layers 2 --heads 4 --kv-heads 2 --vocab 128 --seed 3)
"$b/lorajit_gen" model "$tmp/bf16" "${gen[@]}" --dtype bf16 > /dev/null || fail "lorajit_gen bf16"
"$b/lorajit_gen" model "$tmp/f32" "${gen[@]}" --dtype f32 > /dev/null || fail "lorajit_gen f32"
"$bin" compile --model "$tmp/bf16" --max-rank 8 -o "$tmp/art16" > /dev/null || fail "compile bf16"
grep -q '"dtype":[[:space:]]*"BF16"' "$tmp/art16/manifest.json" || fail "bf16 manifest records no BF16 weight"
"$bin" run --model "$tmp/bf16" --max-rank 8 --tokens 5,6,7,8,9,10,11,12,13,14 --logits "$tmp/j16.bin" > /dev/null \
  || fail "jit run bf16"
"$bin" run --artifact "$tmp/art16" --model "$tmp/bf16" --tokens 5,6,7,8,9,10,11,12,13,14 --logits "$tmp/a16.bin" \
  > /dev/null || fail "aot run bf16"
cmp -s "$tmp/j16.bin" "$tmp/a16.bin" || fail "bf16: run --artifact differs from the JIT"
g16=(--prompt 1,2,3 --max-new 8)
"$bin" generate --model "$tmp/bf16" --max-rank 8 "${g16[@]}" | head -1 > "$tmp/gj16" || fail "jit generate bf16"
"$bin" generate --artifact "$tmp/art16" --model "$tmp/bf16" "${g16[@]}" | head -1 > "$tmp/ga16" || fail "aot generate bf16"
cmp -s "$tmp/gj16" "$tmp/ga16" || fail "bf16 generate --artifact: $(cat "$tmp/ga16"), JIT: $(cat "$tmp/gj16")"
"$bin" run --artifact "$tmp/art16" --model "$tmp/f32" --tokens 1 > /dev/null 2> "$tmp/e5"; [ $? = 1 ] \
  || fail "F32 weights for BF16 code should exit 1"
grep -q 'compiled for BF16 weights, the file holds F32' "$tmp/e5" || fail "dtype mismatch not explained: $(cat "$tmp/e5")"
# The families (issue 13): `run --artifact` == the JIT bit for bit, 20 tokens past the window (Mistral, Phi-3).
ft=3,14,15,92,65,35,89,79,32,38,46,26,43,38,32,79,50,28,84,19
for f in qwen2 qwen3 mistral phi3 gemma; do
  fm=golden/models/$f; fa=golden/adapters/$f
  "$bin" compile --model $fm --max-rank 16 --slots 4 -o "$tmp/art_$f" > /dev/null || fail "compile $f"
  grep -q "\"model_type\":[[:space:]]*\"$f\"" "$tmp/art_$f/manifest.json" || fail "$f manifest names another model_type"
  "$bin" run --model $fm --max-rank 16 --slots 4 --adapter a=$fa/r4_all --active a:0.75 --tokens $ft \
    --logits "$tmp/j_$f.bin" > /dev/null || fail "jit run $f"
  "$bin" run --artifact "$tmp/art_$f" --model $fm --adapter a=$fa/r4_all --active a:0.75 --tokens $ft \
    --logits "$tmp/a_$f.bin" > /dev/null || fail "aot run $f"
  cmp -s "$tmp/j_$f.bin" "$tmp/a_$f.bin" || fail "$f: run --artifact differs from the JIT"
done
echo "aot_test: 1 passed, 0 failed"
