#!/usr/bin/env bash
# Installs lorajit's build dependencies from Debian 12 when they are missing, then
# configures and builds into ${BUILD_DIR:-build}. Used by examples/demo.sh,
# tests/run.sh and .ci/run. Needs root (or sudo) only when something is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config llvm-19-dev libopenblas-dev libcjson-dev libssl-dev libpcre2-dev libutf8proc-dev gnuplot-nox valgrind
      libmicrohttpd-dev  # lorajit serve (server/)
      curl  # the README's serve demo (tests/serve_demo_test.sh)
      python3-requests   # tests/serve_test.py (the server's HTTP tests)
      python3-jinja2  # tests/chat/render_expected.py --check (chat templates vs jinja2)
      python3-venv python3-pip python3-setuptools python3-wheel python3-pytest python3-numpy)  # python/ (the python test)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_EXTRA:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
# The official OpenAI client (npm `openai`) for the serve_openai test, into the build
# dir (never the repo), when Node's npm is here and the package is not yet; the npm
# registry is the one network source besides Debian. Without it the test says SKIP.
if command -v npm >/dev/null 2>&1 && [ ! -d "$build/node/node_modules/openai" ]; then
  npm install --prefix "$build/node" --no-audit --no-fund --silent openai@4 >/dev/null 2>&1 ||
    echo "warning: npm could not install openai@4; the serve_openai test will be skipped"
fi
