"""Failures raise the exception of their lorajit_status carrying lorajit's
message (naming the file, adapter or field), and also the built-in class a
Python caller expects (KeyError for an unknown name, ValueError for bad input)."""
import os
import subprocess
import sys

import pytest

import lorajit
from lorajit import errors
from conftest import MODEL, OPTS, TOKS7, adapter, copy_adapter


def test_every_status_has_a_class():
    want = {
        errors.E_IO: (lorajit.LorajitIOError, OSError), errors.E_FORMAT: (lorajit.FormatError, ValueError),
        errors.E_SHAPE: (lorajit.ShapeError, ValueError), errors.E_UNSUPPORTED: (lorajit.UnsupportedError, ValueError),
        errors.E_NOT_FOUND: (lorajit.NotFoundError, KeyError), errors.E_EXISTS: (lorajit.ExistsError, ValueError),
        errors.E_FULL: (lorajit.FullError, RuntimeError), errors.E_NOMEM: (lorajit.LorajitMemoryError, MemoryError),
        errors.E_ARG: (lorajit.ArgumentError, ValueError), errors.E_COMPILE: (lorajit.CompileError, RuntimeError),
    }
    status_str = lorajit._lib.get("lorajit_status_str")
    for status in range(1, 11):  # LORAJIT_E_IO .. LORAJIT_E_COMPILE (LORAJIT_STATUS_COUNT = 11)
        cls, builtin = want[status]
        e = errors.error_for(status, "msg %d" % status)
        assert type(e) is cls and isinstance(e, lorajit.LorajitError) and isinstance(e, builtin)
        assert e.status == status and str(e) == "msg %d" % status and e.message == str(e)
        assert status_str(status)  # the library knows the code too
    assert str(errors.error_for(99, "")) == "lorajit status 99"


def test_model_folder_errors():
    with pytest.raises(lorajit.LorajitError) as ei:
        lorajit.Engine("/nonexistent/model", **OPTS)
    assert "/nonexistent/model" in str(ei.value) and isinstance(ei.value, (KeyError, OSError))
    with pytest.raises(lorajit.ArgumentError, match="max_loras"):
        lorajit.Engine(MODEL, max_loras=0)
    with pytest.raises(lorajit.ArgumentError, match="kv_dtype.*fp8"):
        lorajit.Engine(MODEL, kv_dtype="fp8")
    with pytest.raises(lorajit.ArgumentError, match="lora_dtype.*fp8"):
        lorajit.Engine(MODEL, lora_dtype="fp8")


def test_kv_dtype_reaches_the_library():
    """kv_dtype="bf16": the cache holds K and V in 16 bits, so the logits move a little
    (within tests/test_kv16.c's bound: 32 u max|logit|, u = 2^-8)."""
    with lorajit.Engine(MODEL, **OPTS) as f32, lorajit.Engine(MODEL, kv_dtype="bf16", **OPTS) as b16:
        a, b = f32.forward(TOKS7), b16.forward(TOKS7)
    diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    top = max(abs(x) for ra in a for x in ra)
    assert 0 < diff <= 32 * 2**-8 * top


def test_lora_dtype_reaches_the_library():
    """lora_dtype="bf16": the slots hold A and B in 16 bits. a_all's values are f32
    (PEFT's init, not exact in bf16), so they are rounded as the adapter is written
    into a slot and the logits move a little: within tests/test_lora16.c's bound of
    32 u times the adapter's effect on the logits (u = 2^-8), never bit for bit."""
    with lorajit.Engine(MODEL, **OPTS) as f32, lorajit.Engine(MODEL, lora_dtype="bf16", **OPTS) as b16:
        base = f32.forward(TOKS7)
        for e in (f32, b16):
            e.load_adapter(adapter("a_all"), "a")
            e.set_adapter("a")
        a, b = f32.forward(TOKS7), b16.forward(TOKS7)
    diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    effect = max(abs(x - y) for ra, rb in zip(a, base) for x, y in zip(ra, rb))
    assert 0 < diff <= 32 * 2**-8 * effect


def test_adapter_errors(engine, tmp_path):
    e = engine
    with pytest.raises(lorajit.NotFoundError) as ei:
        e.load_adapter(str(tmp_path / "missing"), "x")
    assert str(tmp_path / "missing") in str(ei.value) and isinstance(ei.value, KeyError)
    e.load_adapter(adapter("a_qv"), "qv")
    with pytest.raises(lorajit.ExistsError, match="qv"):
        e.load_adapter(adapter("a_all"), "qv")
    with pytest.raises(KeyError, match="nosuch"):
        e.set_adapter(["qv", "nosuch"])
    assert e.active_adapters == []
    with pytest.raises(lorajit.NotFoundError, match="nosuch"):
        e.delete_adapter("nosuch")
    with pytest.raises(lorajit.NotFoundError, match="nosuch"):
        e.hotswap_adapter(adapter("a_all"), "nosuch")
    dora = copy_adapter(tmp_path, "a_all", "dora", {"use_dora": True})
    with pytest.raises(lorajit.UnsupportedError) as ei:
        e.load_adapter(dora, "dora")
    assert "use_dora" in str(ei.value)
    big = copy_adapter(tmp_path, "a_qv", "big", {"r": 32})
    with pytest.raises(lorajit.LorajitError) as ei:  # rank over max_rank
        e.load_adapter(big, "big")
    assert "adapter_config.json" in str(ei.value) or "rank" in str(ei.value)
    with pytest.raises(lorajit.ArgumentError, match="weights"):
        e.set_adapter(["qv"], weights=[1.0, 2.0])
    with pytest.raises(lorajit.ArgumentError):
        e.load_adapter(adapter("a_all"), "t", is_trainable=True)
    assert list(e.peft_config) == ["qv"]
    assert e.stats["failed_calls"] >= 6


def test_full(tmp_path):
    with lorajit.Engine(MODEL, max_rank=16, max_loras=1) as e:
        e.load_adapter(adapter("a_qv"), "one")
        with pytest.raises(lorajit.FullError):
            e.load_adapter(adapter("a_all"), "two")
        e.delete_adapter("one")
        e.load_adapter(adapter("a_all"), "two")


def test_forward_argument_errors(engine):
    with pytest.raises(lorajit.ArgumentError):
        engine.forward([])
    with pytest.raises(lorajit.ArgumentError, match="max_tokens"):
        engine.forward([1] * (engine.max_tokens + 1))
    with pytest.raises(ValueError):
        engine.forward([engine.vocab_size])
    with pytest.raises(lorajit.ArgumentError):
        engine.generate(TOKS7, max_new_tokens=10 ** 6)
    with pytest.raises(lorajit.NotFoundError, match="nosuch"):
        engine.generate(TOKS7, adapter="nosuch", max_new_tokens=2)
    with pytest.raises(lorajit.ArgumentError, match="stop strings"):
        engine.generate(TOKS7, stop=["x"])


def test_missing_symbol_is_clear():
    with pytest.raises(lorajit.MissingSymbolError) as ei:
        lorajit._lib.get("lorajit_no_such_function")
    assert "lorajit_no_such_function" in str(ei.value) and lorajit.library_path() in str(ei.value)
    assert isinstance(ei.value, AttributeError)
    assert not lorajit.has_symbol("lorajit_no_such_function") and lorajit.has_symbol("lorajit_forward")


def test_library_not_found_names_what_was_tried(tmp_path):
    env = dict(os.environ, LORAJIT_LIBRARY=str(tmp_path / "nope.so"),
               PYTHONPATH=os.path.dirname(os.path.dirname(lorajit.__file__)))
    code = "import lorajit\ntry:\n    lorajit.version()\nexcept OSError as e:\n    print(e)\n"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                       cwd=str(tmp_path))
    assert "LORAJIT_LIBRARY=" + str(tmp_path / "nope.so") in r.stdout, r.stdout + r.stderr
    assert "cannot load liblorajit.so" in r.stdout
