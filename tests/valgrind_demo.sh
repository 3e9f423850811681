#!/usr/bin/env bash
# Runs `lorajit demo --cycles N` (default 3) under valgrind memcheck: any error or
# definite leak fails (exit 1). tests/valgrind.supp lists the reports from outside
# lorajit (LLVM, OpenBLAS, the loader) that are suppressed, each with its reason.
# Usage: tests/valgrind_demo.sh BUILD_DIR [CYCLES]. Needs the Debian package valgrind.
# Slow (the JIT compile runs under valgrind): outside ctest; see docs/reliability.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-$here/../build}"; cycles="${2:-3}"
command -v valgrind >/dev/null || { echo "valgrind_demo: valgrind is not installed (apt-get install valgrind)"; exit 2; }
export OPENBLAS_NUM_THREADS=1   # fewer threads: faster under valgrind, same code paths
valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --track-origins=yes --num-callers=30 --suppressions="$here/valgrind.supp" \
  "$build/lorajit" demo --cycles "$cycles"
