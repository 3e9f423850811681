#!/usr/bin/env bash
# tree_check.sh BUILD_DIR — the shape of the tree (issue 10), checked on every run:
#  1. no .c or .h file of ours over 600 lines;
#  2. the rooms include only what their layering allows: ir/ nothing outside ir/,
#     runtime/formats/ no threads, no engine, no LLVM; runtime/ no compiler/ or
#     LLVM; examples/ only include/ (and their own headers); bench/ only include/
#     and the one documented hook (runtime/serving/bench_hook.h); server/ only include/
#     and its own headers; tokenizer/ its own
#     headers, formats.h (as "formats.h" or "runtime/formats/formats.h"), lorajit.h and
#     system headers (PCRE2, utf8proc, cJSON);
#  3. no cycle among the object files' calls (file A calls B and B calls A, or a
#     longer ring), found with tsort over nm's defined/undefined symbols. The one
#     allowed pair is ir/graph.c <-> ir/verify.c: a builder checks each node as it
#     is added (ir_check_node) and the verifier re-runs those checks over the graph;
#  4. every non-static function is declared in its room's header (style habit 13).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: tree_check.sh BUILD_DIR}"
cd "$root"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# 1. sizes
while read -r n f; do
  [ "$f" = total ] && continue
  [ "$n" -gt 600 ] && bad "$f has $n lines (at most 600)"
done < <(git ls-files '*.c' '*.h' | xargs wc -l)

# 2. includes per room ("x.h" names; <...> system headers checked by name)
includes() { grep -ho '#include [<"][^>"]*[>"]' "$@" 2>/dev/null | sed 's/#include //' | sort -u; }
check_room() { # room allowed-regex
  local room="$1" allow="$2" inc
  while read -r inc; do
    [[ "$inc" =~ $allow ]] || bad "$room includes $inc"
  done < <(includes $room)
}
check_room "ir/*.c ir/*.h" '^(<[a-z/]+\.h>|"(ir|ops|lorajit)\.h")$'
check_room "runtime/formats/*.c runtime/formats/*.h runtime/ctx.h" \
  '^(<(assert|ctype|dirent|errno|fcntl|float|inttypes|limits|math|regex|stdarg|stdbool|stddef|stdint|stdio|stdlib|string|strings|time|unistd|sys/mman|sys/stat|sys/types|cjson/cJSON|elf|openssl/evp)\.h>|"(formats|ctx|lorajit|rope|arch|peft)\.h")$'
check_room "runtime/serving/*.c runtime/serving/*.h runtime/code.h" \
  '^(<[a-z0-9_/]+\.h>|"(serving|engine|code|formats|ctx|lorajit|bench_hook)\.h")$'
# tokenizer/ (issue 12): its own headers, the public header, the formats layer (lj_err,
# cJSON), system headers (C11, PCRE2, utf8proc); no engine, no compiler, no LLVM.
check_room "tokenizer/*.c tokenizer/*.h" \
  '^(<[a-zA-Z0-9_/]+\.h>|"(jinja|tokenizer|formats|lorajit)\.h"|"runtime/formats/formats\.h")$'
check_room "bench/*.c bench/*.h" '^(<[a-zA-Z0-9_/-]+\.h>|"(lorajit|bench|bench_hook|bench_serve)\.h")$' # public API + the one hook
grep -rlE 'llvm-c/|LLVM[A-Za-z]*Ref' ir runtime tokenizer include >/dev/null && bad "LLVM named in ir/, runtime/, tokenizer/ or include/"
for f in examples/*.c examples/*.h; do
  while read -r inc; do
    [[ "$inc" =~ ^(\<.*\>|\"(lorajit|cli|cli_file|script_parse|gen|serve)\.h\")$ ]] || bad "$f includes $inc (examples see include/ only, and server/serve.h)"
  done < <(includes "$f")
done
# server/ (issue 15, `lorajit serve`): the public header, its own headers, system headers
# (libmicrohttpd, cJSON, libc); never the library's internals
check_room "server/*.c server/*.h" '^(<[a-zA-Z0-9_/]+\.h>|"(lorajit|server|backend|session|serve)\.h")$'

# 3. call cycles between object files of the library (one object per source file)
pairs=$(mktemp)
trap 'rm -f "$pairs" "$pairs.d" "$pairs.u"' EXIT
: > "$pairs.d"; : > "$pairs.u"
seen=" "
while read -r o; do
  src=${o#*.dir/}; src=${src%.o}
  case "$src" in ir/*|compiler/*|runtime/*|tokenizer/*|bench/*|server/*) ;; *) continue ;; esac
  case "$seen" in *" $src "*) continue ;; esac
  seen="$seen$src "
  nm "$o" | awk -v f="$src" '$2 ~ /^[TDBR]$/ {print $3, f}' >> "$pairs.d"
  nm "$o" | awk -v f="$src" '$1 == "U" {print $2, f}' >> "$pairs.u"
done < <(find "$build/CMakeFiles" -name '*.c.o' | sort)
# "caller callee" for every symbol one file uses and another defines
awk 'NR == FNR {def[$1] = $2; next} ($1 in def) && def[$1] != $2 {print $2, def[$1]}' \
  "$pairs.d" "$pairs.u" | sort -u | grep -v -e '^ir/verify.c ir/graph.c$' -e '^ir/graph.c ir/verify.c$' > "$pairs"
if ! tsort "$pairs" > /dev/null 2> "$pairs.d"; then
  bad "call cycle among files: $(grep -v 'input contains a loop' "$pairs.d" | sed 's/^tsort: //' | tr '\n' ' ')"
fi
[ -s "$pairs" ] || bad "no call edges found under $build (not built?)"

# 4. every non-static function of a room is declared in that room's headers
for d in ir compiler runtime/formats runtime/serving tokenizer server; do
  for f in "$d"/*.c; do
    o=$(find "$build/CMakeFiles" -path "*/$f.o" -printf '%T@ %p\n' | sort -rn | head -n 1 | cut -d' ' -f2-)
    [ -n "$o" ] || { bad "$f: no object under $build"; continue; }
    for sym in $(nm --defined-only "$o" | awk '$2 == "T" {print $3}'); do
      grep -qw "$sym" "$d"/*.h runtime/*.h include/*.h || bad "$f: $sym is not in a header of $d"
    done
  done
done

[ "$fail" = 0 ] && echo "tree_check: sizes, includes and call graph OK ($(wc -l < "$pairs") file-to-file call edges)"
exit "$fail"
