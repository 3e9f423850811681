#!/usr/bin/env bash
# The main job: install what is missing, build, and run the compile-once-swap-many
# demo on the built-in tiny model (tests/conformance/models/llama-tiny).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/examples/install_deps.sh"
exec "${BUILD_DIR:-$root/build}/lorajit" demo "$@"
