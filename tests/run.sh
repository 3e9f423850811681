#!/usr/bin/env bash
# The test command: install what is missing, build, run the whole suite with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/examples/install_deps.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure -j2 "$@"
