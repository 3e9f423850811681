#!/usr/bin/env bash
# `lorajit bench` from a fresh clone: installs what is missing and builds into build/
# (examples/install_deps.sh), then runs build/lorajit_bench with the arguments given
# (--quick, --out DIR, --threads N, ...; see build/lorajit_bench --help).
#   bash bench/run.sh --docs   full run whose table, JSON and plots go to docs/bench/
#                              (what README.md embeds)
# PyTorch rows need Debian's python3-torch; without it they say so. Nothing else is installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/examples/install_deps.sh"
bench="${BUILD_DIR:-$root/build}/lorajit_bench"
if [ "${1:-}" = "--docs" ]; then
  shift
  docs="$root/docs/bench"
  mkdir -p "$docs"
  "$bench" --out "$docs" "$@" | tee "$docs/bench.txt"
  rm -f "$docs"/bench_*.dat "$docs"/bench_plots.gp "$docs"/bench_plots.log
else
  exec "$bench" "$@"
fi
