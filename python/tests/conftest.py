"""Fixtures for the lorajit Python tests.

Paths: the conformance set in tests/conformance (a tiny LLaMA, three PEFT adapters,
reference logits). The C CLI (for bit-for-bit comparisons with the C API) is
LORAJIT_CLI, else the `lorajit` next to the loaded liblorajit.so (a build folder);
tests that need it are skipped without it.
"""
import json
import os
import shutil
import subprocess
from typing import Dict, List, Optional

import numpy as np
import pytest

import lorajit

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONF = os.path.join(ROOT, "tests", "conformance")
MODEL = os.path.join(CONF, "models", "llama-tiny")
ADAPTERS = os.path.join(CONF, "adapters", "llama-tiny")
TOKS7 = [175, 196, 25, 246, 67, 211, 151]
# Engine options used everywhere (the CLI gets the same: --max-rank 16 --slots 4)
OPTS = dict(max_rank=16, max_loras=4)
ATOL = RTOL = 2e-4  # tests/conformance/README.md


def adapter(name: str) -> str:
    return os.path.join(ADAPTERS, name)


def cases() -> List[Dict]:
    with open(os.path.join(CONF, "expected", "index.json")) as f:
        return json.load(f)["cases"]


def expected(case: Dict) -> np.ndarray:
    a = np.fromfile(os.path.join(CONF, "expected", case["file"]), dtype="<f4")
    return a.reshape(case["shape"])


def assert_close(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    assert got.shape == want.shape, what
    err = np.abs(got.astype(np.float64) - want) / (ATOL + RTOL * np.abs(want))
    i = np.unravel_index(int(np.argmax(err)), err.shape)
    assert err[i] <= 1.0, "%s: %.3g x tolerance at %s: got %.7g want %.7g" % (what, err[i], i, got[i], want[i])


@pytest.fixture(scope="session")
def cli() -> str:
    p = os.environ.get("LORAJIT_CLI") or os.path.join(os.path.dirname(lorajit.library_path()), "lorajit")
    if not os.path.isfile(p):
        pytest.skip("no lorajit CLI (set LORAJIT_CLI) for bit-for-bit checks against the C API")
    return p


def run_script(cli: str, tmp_path, lines: List[str], n_out: int) -> List[np.ndarray]:
    """Runs `lorajit script` (the C API through the CLI) on lines whose forward
    outputs are OUT0..OUT{n_out-1}; returns their logits [n, 256]."""
    outs = [str(tmp_path / ("c_out%d.bin" % i)) for i in range(n_out)]
    text = "\n".join(lines).format(*outs) + "\n"
    script = tmp_path / "s.txt"
    script.write_text(text)
    r = subprocess.run([cli, "script", "--model", MODEL, "--max-rank", str(OPTS["max_rank"]),
                        "--slots", str(OPTS["max_loras"]), "--no-progress", str(script)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "lorajit script failed: %s\n%s" % (r.stderr, text)
    return [np.fromfile(o, dtype="<f4").reshape(-1, 256) for o in outs]


@pytest.fixture
def engine():
    e = lorajit.Engine(MODEL, **OPTS)
    yield e
    e.close()


@pytest.fixture(scope="module")
def shared_engine():
    """One engine for a module's read-mostly tests (each test leaves no adapter)."""
    e = lorajit.Engine(MODEL, **OPTS)
    yield e
    e.close()


def copy_adapter(tmp_path, name: str, dst: str, edit: Optional[Dict] = None) -> str:
    """A copy of a conformance adapter, its adapter_config.json updated with edit."""
    d = tmp_path / dst
    shutil.copytree(adapter(name), d)
    if edit:
        p = d / "adapter_config.json"
        cfg = json.loads(p.read_text())
        cfg.update(edit)
        p.write_text(json.dumps(cfg))
    return str(d)
