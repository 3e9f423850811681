#!/usr/bin/env bash
# The test command: install what is missing, build, run the whole suite with ctest,
# then build again with ASan + UBSan (build-asan/) and run the suite there too.
# LORAJIT_NO_ASAN=1 skips the sanitizer pass (for a quick local run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/examples/install_deps.sh"
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure -j2 "$@")
if [ "${LORAJIT_NO_ASAN:-0}" != 1 ]; then
  echo "== again under AddressSanitizer + UndefinedBehaviorSanitizer =="
  BUILD_DIR="$root/build-asan" CMAKE_EXTRA="-DLORAJIT_SANITIZE=ON" bash "$root/examples/install_deps.sh"
  (cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j2 "$@")
fi
