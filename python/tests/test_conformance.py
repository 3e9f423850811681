"""Logits through Python equal the PEFT references (tests/conformance/expected,
within the C tests' tolerance) and equal the C API's (`lorajit script`) bit for bit."""
import numpy as np
import pytest

import lorajit
from conftest import MODEL, OPTS, adapter, assert_close, cases, expected, run_script

CASES = cases()


def apply_state(e: lorajit.Engine, state) -> None:
    for name in state.get("loaded", []) + state.get("deleted", []):
        e.load_adapter(adapter(name), adapter_name=name)
    for name in state.get("deleted", []):
        e.delete_adapter(name)
    e.set_adapter(state.get("active", []))
    if state.get("disabled"):
        e.disable_adapters()


def clear_state(e: lorajit.Engine) -> None:
    e.enable_adapters()
    for name in list(e.peft_config):
        e.delete_adapter(name)
    assert e.active_adapters == [] and e.peft_config == {}


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_matches_peft_reference(shared_engine, case):
    """Every conformance case: same state built with PEFT's verbs, logits within
    |got - want| <= 2e-4 + 2e-4 |want| of PEFT's."""
    e = shared_engine
    apply_state(e, case["state"])
    try:
        got = e.forward(case["tokens"])
        assert got.dtype == np.float32 and got.shape == tuple(case["shape"])
        assert_close(got, expected(case), case["case"])
    finally:
        clear_state(e)
    assert e.stats["compiles"] == 1


def test_bit_for_bit_with_c_api(shared_engine, cli, tmp_path):
    """Every conformance case run by `lorajit script` (the C API) and by Python on
    engines with the same options: the logits are identical bit for bit."""
    lines, k = [], 0
    for c in CASES:
        st = c["state"]
        for name in st.get("loaded", []) + st.get("deleted", []):
            lines.append("load %s %s" % (name, adapter(name)))
        for name in st.get("deleted", []):
            lines.append("delete %s" % name)
        lines.append("set " + ",".join(st.get("active", [])) if st.get("active") else "set")
        if st.get("disabled"):
            lines.append("disable")
        lines.append("forward %s {%d}" % (",".join(map(str, c["tokens"])), k))
        k += 1
        lines.append("enable")
        for name in st.get("loaded", []):
            lines.append("delete %s" % name)
    # `set` with no names is not a script command; drop those lines (nothing is active then)
    lines = [l for l in lines if l != "set"]
    want = run_script(cli, tmp_path, lines, k)
    e = shared_engine
    for c, w in zip(CASES, want):
        apply_state(e, c["state"])
        try:
            got = e.forward(c["tokens"])
        finally:
            clear_state(e)
        assert got.tobytes() == w.tobytes(), c["case"]


def test_forward_without_numpy_gives_lists(shared_engine, monkeypatch):
    """Without numpy, forward returns a list of rows of floats with the same values."""
    from lorajit import engine as eng
    want = shared_engine.forward([5, 6, 7])
    monkeypatch.setattr(eng, "_np", None)
    got = shared_engine.forward([5, 6, 7])
    assert isinstance(got, list) and len(got) == 3 and len(got[0]) == shared_engine.vocab_size
    assert np.array(got, dtype=np.float32).tobytes() == want.tobytes()


def test_facts_and_version():
    """vocab_size, max_tokens, max_batch, version and compiles_total through the C API."""
    before = lorajit.compiles_total()
    with lorajit.Engine(MODEL, max_batch=3, max_seq_len=64, max_tokens=32, **OPTS) as e:
        assert (e.vocab_size, e.max_batch, e.max_tokens) == (256, 3, 32)
        assert e.stats["compiles"] == 1
    assert lorajit.compiles_total() == before + 1
    assert lorajit.version() == lorajit.__version__


def test_from_artifact_equals_jit(shared_engine, cli, tmp_path):
    """An artifact made by `lorajit compile` (native CPU) opens without compiling
    and gives the JIT engine's logits bit for bit, base and with an adapter."""
    import subprocess
    out = tmp_path / "art"
    r = subprocess.run([cli, "compile", "--model", MODEL, "--max-rank", str(OPTS["max_rank"]), "--slots",
                        str(OPTS["max_loras"]), "--no-progress", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "cc" in r.stderr and "not found" in r.stderr:
        pytest.skip("no system C compiler for `lorajit compile`: " + r.stderr)
    assert r.returncode == 0, r.stderr
    toks = [175, 196, 25, 246, 67, 211, 151]
    with lorajit.Engine.from_artifact(str(out), MODEL) as a:
        assert a.stats["compiles"] == 0
        assert a.forward(toks).tobytes() == shared_engine.forward(toks).tobytes()
        for e in (a, shared_engine):
            e.load_adapter(adapter("a_all"), "all")
            e.set_adapter("all")
        try:
            assert a.forward(toks).tobytes() == shared_engine.forward(toks).tobytes()
        finally:
            shared_engine.delete_adapter("all")
    with pytest.raises(lorajit.LorajitError) as ei:
        lorajit.Engine.from_artifact(str(tmp_path / "none"), MODEL)
    assert str(tmp_path / "none") in str(ei.value)
