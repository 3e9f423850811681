#!/usr/bin/env bash
# CLI test of issue 11's class 10 (quiet no-ops) and newcomer rough edges:
#  - every file the CLI reads or writes itself (script FILE, --batch, --schema,
#    --logits, a script's forward/generate outputs, lorajit_gen's MODELDIR/config.json)
#    is refused when it is a directory, a FIFO (without blocking) or missing, with a
#    message naming the argument and the path; '-' (stdin) still works;
#  - `lorajit VERB --help` (every verb) and `lorajit_gen model|adapter --help`: usage on
#    stdout, exit 0;
#  - --progress: stage lines on stderr; without it (stderr not a terminal) none;
#  - a folder with only pytorch_model.bin: says pickle is not read and how to convert;
#  - run --logits and lorajit_gen say what they wrote.
# Usage: cli_hostile_test.sh BUILD_DIR (run from tests/). Exits non-zero on the first failure.
set -u
b="$1"; bin="$1/lorajit"; gen="$1/lorajit_gen"; m=conformance/models/llama-tiny; a=conformance/adapters/llama-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkfifo "$tmp/fifo" || fail "mkfifo"
mkdir "$tmp/dir"
T="timeout 60"
# refused ARG PATH RC-WANT CMD...: runs CMD (never waiting on a FIFO), wants exit RC-WANT
# and a stderr line naming ARG, PATH and what is wrong.
refused() {
  local arg="$1" path="$2" want="$3"; shift 3
  $T "$@" > "$tmp/out" 2> "$tmp/err"; local rc=$?
  [ $rc != 124 ] || fail "$* hung on $path"
  [ $rc = "$want" ] || fail "$*: exit $rc, want $want ($(cat "$tmp/err"))"
  grep -F -- "$arg" "$tmp/err" | grep -F -- "$path" | grep -Eq 'is a directory|is a FIFO|No such file|character device' \
    || fail "$*: message does not name $arg and $path: $(cat "$tmp/err")"
}

# ---- 1. quiet no-ops: what is not a readable regular file ----
for p in "$tmp/dir" "$tmp/dir/" "$tmp/fifo" "$tmp/nosuch"; do
  refused "script FILE" "$p" 1 "$bin" script --model $m "$p"
  refused "--batch" "$p" 1 "$bin" generate --model $m --batch "$p"
  refused "--schema" "$p" 1 "$bin" run --model $m --schema "$p" --tokens 1
done
for p in "$tmp/dir" "$tmp/fifo" /dev/null; do
  refused "--logits" "$p" 1 "$bin" run --model $m --tokens 1,2 --logits "$p" --progress
  grep -q compiling "$tmp/err" && fail "--logits $p refused only after compiling"
done
[ -p "$tmp/fifo" ] || fail "the FIFO was replaced"
printf 'forward 1,2 %s\ngenerate - 1,2 2 %s\nforward 1,2 %s\n' "$tmp/fifo" "$tmp/dir" "$tmp/ok.bin" > "$tmp/s.txt"
$T "$bin" script --model $m "$tmp/s.txt" > /dev/null 2> "$tmp/err"; rc=$?
[ $rc = 1 ] || fail "script writing to a FIFO and a directory exited $rc, want 1"
grep -q "^error: line 1: forward FILE $tmp/fifo: is a FIFO" "$tmp/err" || fail "forward to a FIFO: $(cat "$tmp/err")"
grep -q "^error: line 2: generate OUTFILE $tmp/dir: is a directory" "$tmp/err" || fail "generate to a dir: $(cat "$tmp/err")"
[ "$(stat -c %s "$tmp/ok.bin")" = $((2 * 256 * 4)) ] || fail "line 3 after the refusals did not run"
echo "forward 1,2 $tmp/stdin.bin" | $T "$bin" script --model $m - > /dev/null || fail "script - (stdin)"
[ -s "$tmp/stdin.bin" ] || fail "script - wrote nothing"
mkdir "$tmp/mf"; mkfifo "$tmp/mf/config.json"
refused "--model" "$tmp/mf/config.json" 2 "$gen" adapter "$tmp/ad" --model "$tmp/mf"
mkdir "$tmp/od"; mkfifo "$tmp/od/config.json"
refused "OUTDIR" "$tmp/od/config.json" 2 "$gen" model "$tmp/od"

# ---- 2. --help on every verb ----
for v in run script inspect demo bench compile generate; do
  for h in --help -h; do
    "$bin" $v $h > "$tmp/out" 2> "$tmp/err"; rc=$?
    [ $rc = 0 ] || fail "lorajit $v $h exited $rc: $(cat "$tmp/err")"
    grep -q "lorajit $v" "$tmp/out" || fail "lorajit $v $h: no usage of $v on stdout: $(cat "$tmp/out")"
    [ -s "$tmp/err" ] && fail "lorajit $v $h wrote to stderr: $(cat "$tmp/err")"
  done
done
"$bin" run --model $m --help | grep -q 'lorajit run' || fail "run --model M --help"
"$bin" script --help | grep -q 'lorajit generate' && fail "script --help shows other verbs"
"$bin" help compile | grep -q 'lorajit compile' || fail "lorajit help compile"
for v in model adapter; do
  "$gen" $v --help > "$tmp/out" 2> "$tmp/err" || fail "lorajit_gen $v --help exited $?"
  grep -q "lorajit_gen $v OUTDIR" "$tmp/out" || fail "lorajit_gen $v --help: $(cat "$tmp/out")"
done
"$bin" run --bogus > /dev/null 2>&1; [ $? = 2 ] || fail "an unknown argument should still exit 2"

# ---- 3. progress: with --progress, stage lines on stderr; without, nothing extra ----
"$bin" run --model $m --adapter qv=$a/a_qv --active qv --tokens 1,2 --progress > /dev/null 2> "$tmp/err" \
  || fail "run --progress"
grep -Eq "^lorajit: compiling model $m \.\.\. done in [0-9.]+ ms$" "$tmp/err" || fail "no compile line: $(cat "$tmp/err")"
grep -Eq "^lorajit:   config \+ front end [0-9.]+ ms, plan .* jit [0-9.]+ ms$" "$tmp/err" || fail "no stages line"
grep -Eq "^lorajit: loading adapter qv from $a/a_qv \.\.\. done in [0-9.]+ ms$" "$tmp/err" || fail "no load line"
"$bin" run --model $m --adapter qv=$a/a_qv --active qv --tokens 1,2 > /dev/null 2> "$tmp/err" || fail "run"
[ -s "$tmp/err" ] && fail "run without --progress wrote to stderr: $(cat "$tmp/err")"
"$bin" generate --model $m --prompt 1,2 --max-new 10 --progress > "$tmp/out" 2> "$tmp/err" || fail "generate --progress"
grep -q '^lorajit: generate: 10/10 tokens$' "$tmp/err" || fail "no token counter: $(cat "$tmp/err")"
grep -Eq '^lorajit: generate: 10 tokens for 1 request in [0-9.]+ ms$' "$tmp/err" || fail "no generate summary"
grep -q 'lorajit:' "$tmp/out" && fail "progress went to stdout"
"$bin" generate --model $m --prompt 1,2 --max-new 10 > /dev/null 2> "$tmp/err" || fail "generate"
[ -s "$tmp/err" ] && fail "generate without --progress wrote to stderr: $(cat "$tmp/err")"
printf 'load qv %s\nhotswap qv %s\n' "$a/a_qv" "$a/a_all" | "$bin" script --model $m --progress - 2> "$tmp/err" \
  > /dev/null || fail "script --progress"
grep -q "^lorajit: hotswapping adapter qv from $a/a_all ... done in" "$tmp/err" || fail "no hotswap line: $(cat "$tmp/err")"
"$bin" compile --model $m --progress -o "$tmp/art" > /dev/null 2> "$tmp/err" || fail "compile --progress"
grep -Eq "^lorajit: compiling model $m for CPU native into $tmp/art \.\.\. done in" "$tmp/err" || fail "compile line"
"$bin" run --model $m --artifact "$tmp/art" --tokens 1 --progress > /dev/null 2> "$tmp/err" || fail "run --artifact"
grep -q "^lorajit: opening artifact $tmp/art (weights $m) ... done in" "$tmp/err" || fail "artifact line: $(cat "$tmp/err")"

# on by default when stderr is a terminal (util-linux `script` gives the command a tty)
if command -v script > /dev/null; then
  script -qec "$bin run --model $m --tokens 1 > $tmp/out" /dev/null > "$tmp/tty" < /dev/null || fail "run on a tty"
  grep -q "lorajit: compiling model $m ... done in" "$tmp/tty" || fail "no progress on a terminal: $(cat "$tmp/tty")"
  script -qec "$bin run --model $m --tokens 1 --no-progress > $tmp/out" /dev/null > "$tmp/tty" < /dev/null
  [ -s "$tmp/tty" ] && fail "--no-progress on a terminal printed: $(cat "$tmp/tty")"
  script -qec "$bin generate --model $m --prompt 1 --max-new 4 > $tmp/out" /dev/null > "$tmp/tty" < /dev/null
  grep -q $'\rlorajit: generate: 4/4 tokens' "$tmp/tty" || fail "no rewritten token counter: $(cat -A "$tmp/tty")"
fi

# ---- 4. a folder of PyTorch pickle checkpoints ----
for files in pytorch_model.bin "pytorch_model.bin.index.json pytorch_model-00001-of-00002.bin"; do
  rm -rf "$tmp/pt"; mkdir "$tmp/pt"; cp $m/config.json "$tmp/pt/"
  for f in $files; do : > "$tmp/pt/$f"; done
  "$bin" run --model "$tmp/pt" --tokens 1 > /dev/null 2> "$tmp/err"; [ $? = 1 ] || fail "pickle folder should exit 1"
  grep -q 'pickle' "$tmp/err" && grep -q 'save_pretrained(D, safe_serialization=True)' "$tmp/err" \
    || fail "pickle folder ($files): $(cat "$tmp/err")"
done

# ---- 5. success says what it wrote ----
"$bin" run --model $m --tokens 1,2,3 --logits "$tmp/l.bin" > "$tmp/out" || fail "run --logits"
grep -qx "lorajit run: wrote $tmp/l.bin: logits \[3, 256\] float32 little-endian, 3072 bytes" "$tmp/out" \
  || fail "run --logits line: $(cat "$tmp/out")"
[ "$(stat -c %s "$tmp/l.bin")" = 3072 ] || fail "logits size"
"$gen" model "$tmp/gm" --layers 1 --shards 2 > "$tmp/out" || fail "lorajit_gen model"
grep -q "^lorajit_gen: wrote $tmp/gm: config.json, 2 shards .*model.safetensors.index.json ([0-9]* tensors, [0-9]* bytes of F32)$" \
  "$tmp/out" || fail "lorajit_gen model line: $(cat "$tmp/out")"
"$gen" adapter "$tmp/ga" --model "$tmp/gm" --r 4 > "$tmp/out" || fail "lorajit_gen adapter"
grep -q "^lorajit_gen: wrote $tmp/ga: adapter_config.json, adapter_model.safetensors (4 tensors, [0-9]* bytes of F32)$" \
  "$tmp/out" || fail "lorajit_gen adapter line: $(cat "$tmp/out")"
echo "cli_hostile_test: 1 passed, 0 failed"
