#!/usr/bin/env bash
# Install test: `cmake --install` into a temp prefix holds lorajit.h alone in include/,
# liblorajit.so + liblorajit_runtime.so (exporting only lorajit_*), the CLI and the
# .pc files; examples/hello.c (the README's example) builds with
# `cc hello.c $(pkg-config --cflags --libs lorajit)`, runs against the conformance
# model and an adapter, and prints what the installed CLI prints for the same input;
# the README's "Use it from C" block is that file.
# Usage (from tests/): install_test.sh BUILD_DIR CMAKE LIBDIR INCLUDEDIR CC [CFLAGS]
set -u
b="$1"; cmake="$2"; libdir="$3"; incdir="$4"; cc="$5"; cflags="${6:-}"
m=conformance/models/llama-tiny; a=conformance/adapters/llama-tiny/a_qv
toks=175,196,25,246,67,211,151 # hello.c's tokens
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
p="$tmp/prefix"

"$cmake" --install "$b" --prefix "$p" > "$tmp/install.out" 2>&1 || fail "cmake --install: $(cat "$tmp/install.out")"

# What is in the prefix.
[ "$(ls "$p/$incdir" | tr '\n' ' ')" = "lorajit.h lorajit_serving.h " ] ||
  fail "$incdir holds other than lorajit.h and lorajit_serving.h (which lorajit.h includes): $(ls "$p/$incdir")"
for f in "$p/bin/lorajit" "$p/$libdir/liblorajit.so" "$p/$libdir/liblorajit_runtime.so" \
         "$p/$libdir/pkgconfig/lorajit.pc" "$p/$libdir/pkgconfig/lorajit-runtime.pc"; do
  [ -e "$f" ] || fail "not installed: ${f#"$p"/}"
done
soname=$(readelf -d "$p/$libdir/liblorajit.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] && [ -e "$p/$libdir/$soname" ] || fail "liblorajit.so: soname '$soname' not installed"
for lib in liblorajit.so liblorajit_runtime.so; do
  syms=$(nm -D --defined-only "$p/$libdir/$lib" | awk '{print $3}')
  echo "$syms" | grep -qx lorajit_version || fail "$lib does not export lorajit_version"
  other=$(echo "$syms" | grep -v '^lorajit_' || true)
  [ -z "$other" ] || fail "$lib exports more than lorajit_*: $other"
done
ldd "$p/$libdir/liblorajit_runtime.so" | grep -qi llvm && fail "liblorajit_runtime.so links LLVM"
ldd "$p/$libdir/liblorajit.so" | grep -qi llvm || fail "liblorajit.so does not link LLVM"

# pkg-config finds both packages in the prefix, at the project's version.
export PKG_CONFIG_PATH="$p/$libdir/pkgconfig"
command -v pkg-config > /dev/null || fail "pkg-config is not installed (examples/install_deps.sh installs it)"
ver=$(pkg-config --modversion lorajit) || fail "pkg-config --modversion lorajit"
[ "$(pkg-config --modversion lorajit-runtime)" = "$ver" ] || fail "lorajit-runtime.pc has another version"
hdr=$(sed -n 's/^#define LORAJIT_VERSION_STRING "\(.*\)"$/\1/p' "$p/$incdir/lorajit.h")
[ "$ver" = "$hdr" ] || fail "lorajit.pc says $ver, lorajit.h says $hdr"
pkg-config --libs lorajit | grep -q -- '-llorajit' || fail "pkg-config --libs lorajit: $(pkg-config --libs lorajit)"
pkg-config --cflags lorajit | grep -q -- "-I$p" || fail "pkg-config --cflags lorajit: $(pkg-config --cflags lorajit)"

# The README's example is examples/hello.c, built the README's way (with the
# sanitizer flags in an ASan build).
awk '/^## Use it from C/ {s = 1} s && /^```c$/ {c = 1; next} c && /^```$/ {exit} c' ../README.md \
  > "$tmp/readme.c"
cmp -s "$tmp/readme.c" ../examples/hello.c || fail "README's C block differs from examples/hello.c:
$(diff "$tmp/readme.c" ../examples/hello.c | head -20)"
cp ../examples/hello.c "$tmp/hello.c"
# shellcheck disable=SC2046,SC2086
"$cc" $cflags "$tmp/hello.c" -o "$tmp/hello" $(pkg-config --cflags --libs lorajit) 2> "$tmp/cc.err" \
  || fail "cc hello.c \$(pkg-config --cflags --libs lorajit): $(cat "$tmp/cc.err")"
LD_LIBRARY_PATH="$p/$libdir" ldd "$tmp/hello" > "$tmp/ldd" || fail "ldd hello"
grep -q "=> $p/$libdir/liblorajit.so" "$tmp/ldd" || fail "hello does not use the installed library: $(cat "$tmp/ldd")"
LD_LIBRARY_PATH="$p/$libdir" "$tmp/hello" "$m" "$a" > "$tmp/hello.out" 2> "$tmp/hello.err" \
  || fail "hello exited $?: $(cat "$tmp/hello.err")"
cat "$tmp/hello.out"
grep -qx "lorajit $ver (header $ver)" "$tmp/hello.out" || fail "hello: version line"
grep -q '^compiles=1 loads=1 forwards=2 adapters=1 active=1 ' "$tmp/hello.out" || fail "hello: stats line"

# The installed CLI (it finds liblorajit.so through its RPATH) gives the same argmax
# and logit at the last position, without and with the adapter; and they differ.
run() { "$p/bin/lorajit" run --model $m --max-rank 16 --slots 4 --tokens $toks "$@" | tail -n 1 |
        sed -n 's/.* \(argmax [0-9]* logit [-0-9.]*\)$/\1/p'; }
base=$(run) && [ -n "$base" ] || fail "installed lorajit run (base)"
with=$(run --adapter mine=$a --active mine) && [ -n "$with" ] || fail "installed lorajit run (adapter)"
grep -qx "base: $base" "$tmp/hello.out" || fail "hello's base line differs from the CLI's '$base'"
grep -qx "adapter: $with" "$tmp/hello.out" || fail "hello's adapter line differs from the CLI's '$with'"
[ "$base" != "$with" ] || fail "the adapter changed nothing ('$base')"
echo "install: OK ($ver, $soname)"
