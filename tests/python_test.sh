#!/usr/bin/env bash
# The Python package as a user installs it: a venv in the build dir (with the system
# site packages: Debian's pytest and numpy), `pip install --no-build-isolation
# --no-index` of a copy of ./python (offline; the source tree stays clean), then
# `python -m pytest -q python/tests` and examples/python_quickstart.py against the
# built liblorajit.so (LORAJIT_LIBRARY), with the package imported from the venv.
# Usage: python_test.sh BUILD_DIR (run from the repository root).
set -u
b="$(cd "$1" && pwd)"; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3   # Debian's Python (pytest, numpy, setuptools from apt)
venv="$b/python-venv"; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rm -rf "$venv"
"$py" -m venv --system-site-packages "$venv" > "$tmp/venv.out" 2>&1 \
  || fail "python3 -m venv (is python3-venv installed?): $(cat "$tmp/venv.out")"
cp -r "$root/python" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
"$venv/bin/pip" install -q --no-build-isolation --no-index "$tmp/src" > "$tmp/pip.out" 2>&1 \
  || fail "pip install --no-build-isolation --no-index ./python: $(cat "$tmp/pip.out")"
export LORAJIT_LIBRARY="$b/liblorajit.so" LORAJIT_CLI="$b/lorajit" OPENBLAS_NUM_THREADS=1
where=$(cd "$tmp" && "$venv/bin/python" -c 'import lorajit; print(lorajit.__file__)') || fail "import lorajit"
case "$where" in "$venv"/*) ;; *) fail "lorajit imported from $where, not the venv";; esac
# From a folder outside the source tree, so that `import lorajit` is the installed copy.
(cd "$tmp" && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$root/python/tests") \
  || fail "pytest python/tests"
(cd "$tmp" && "$venv/bin/python" "$root/examples/python_quickstart.py") > "$tmp/qs.out" 2>&1 \
  || fail "examples/python_quickstart.py: $(cat "$tmp/qs.out")"
cat "$tmp/qs.out"
grep -q '^compiles=1 loads=2 hotswaps=1 deletes=1$' "$tmp/qs.out" || fail "quickstart: stats line"
echo "python: OK ($where)"
