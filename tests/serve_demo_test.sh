#!/usr/bin/env bash
# serve_demo_test.sh BUILD_DIR — runs the README's `lorajit serve` demo (the block
# between <!-- serve-demo --> and <!-- /serve-demo -->) as written, with build/ meaning
# BUILD_DIR and port 8000 replaced by a free port, from the repository root; checks that
# the curl line streamed SSE chunks ending in data: [DONE] whose token_ids are the ids
# `lorajit generate` gives for the same request (greedy, adapter qv).
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -n '/^<!-- serve-demo -->$/,/^<!-- \/serve-demo -->$/p' "$root/README.md" | sed '/^<!--/d; /^```/d' > "$tmp/demo.sh"
[ "$(grep -c 'lorajit serve' "$tmp/demo.sh")" = 1 ] && grep -q 'curl -sN' "$tmp/demo.sh" || fail "no demo block in README.md"
sed -i "s|build/lorajit|$build/lorajit|; s|:8000/|:$port/|g; s|--port 8000|--port $port|" "$tmp/demo.sh"
cd "$root" && timeout 300 bash "$tmp/demo.sh" > "$tmp/out" 2> "$tmp/err" || fail "the demo exited $?: $(cat "$tmp/err")"
grep -q '^data: \[DONE\]$' "$tmp/out" || fail "no data: [DONE] in $(cat "$tmp/out")"
got=$(grep '^data: {' "$tmp/out" | python3 -c '
import json, sys
print(",".join(str(t) for l in sys.stdin for t in json.loads(l[6:])["choices"][0]["token_ids"]))')
want=$("$build/lorajit" generate --model tests/conformance/models/llama-tiny \
  --adapter qv=tests/conformance/adapters/llama-tiny/a_qv --use qv --prompt 1,2,3 --max-new 8 | head -1)
[ -n "$want" ] && [ "$got" = "$want" ] || fail "streamed ids '$got', lorajit generate '$want'"
grep -q 'request .* POST /v1/completions 200 adapter=qv prompt_tokens=3 completion_tokens=8' "$tmp/err" ||
  fail "no log line for the completion: $(cat "$tmp/err")"
echo "serve_demo: ok (streamed $got)"
