"""PEFT's verbs in PEFT's order on one engine: load, set, combine with weights,
disable (== base bit for bit), enable, hotswap, delete; the Python view
(active_adapters, peft_config, stats) follows; nothing recompiles; each state's
logits equal the C API's (`lorajit script`) bit for bit."""
import pathlib

import numpy as np
import pytest

import lorajit
from conftest import MODEL, OPTS, TOKS7, adapter, assert_close, cases, expected, run_script

EXP = {c["case"]: c for c in cases()}


def exp(name: str) -> np.ndarray:
    return expected(EXP["llama-tiny__%s__s7" % name])


def test_peft_verbs_in_order(engine, cli, tmp_path):
    e = engine
    base = e.forward(TOKS7)
    assert_close(base, exp("base"), "base")
    assert e.active_adapters == [] and e.peft_config == {} and e.adapters_enabled

    # load (not activated, as PeftModel.load_adapter)
    e.load_adapter(adapter("a_qv"), adapter_name="qv")
    e.load_adapter(adapter("a_all"), "all")
    e.load_adapter(adapter("a_mlp"), "mlp")
    assert sorted(e.peft_config) == ["all", "mlp", "qv"]
    assert e.peft_config["qv"]["r"] == 8 and e.peft_config["qv"]["lora_alpha"] == 16
    assert e.peft_config["qv"]["path"] == adapter("a_qv")
    assert e.peft_config["all"]["r"] == 4
    assert e.forward(TOKS7).tobytes() == base.tobytes()

    # set one
    e.set_adapter("qv")
    assert e.active_adapters == ["qv"]
    qv = e.forward(TOKS7)
    assert_close(qv, exp("a_qv"), "qv")

    # combine: a list (PEFT: set_adapter([...]) sums), then weights
    e.set_adapter(["qv", "all"])
    assert e.active_adapters == ["qv", "all"]
    assert_close(e.forward(TOKS7), exp("multi_qv_all"), "qv+all")
    e.set_adapter(["qv", "all"], weights=[1.0, 1.0])
    assert_close(e.forward(TOKS7), exp("multi_qv_all"), "qv:1+all:1")
    e.set_adapter(["qv", "all", "mlp"], weights=[2.0, -0.5, 0.25])
    assert e.active_adapter_weights == {"qv": 2.0, "all": -0.5, "mlp": 0.25}
    weighted = e.forward(TOKS7)
    # its reference is the C API's `set qv:2,all:-0.5,mlp:0.25` (bit for bit, below)
    for other in ("a_qv", "multi_qv_all", "multi_three"):
        assert not np.allclose(weighted, exp(other), atol=1e-3)

    # disable: exactly the base model; enable: the weighted set again
    e.disable_adapters()
    assert not e.adapters_enabled
    assert e.active_adapters == ["qv", "all", "mlp"]  # still listed, as in PEFT
    assert e.forward(TOKS7).tobytes() == base.tobytes()
    e.enable_adapters()
    assert e.adapters_enabled
    assert e.forward(TOKS7).tobytes() == weighted.tobytes()

    # hotswap: qv's slot now holds a_mlp's weights (rank and targets differ)
    e.set_adapter("qv")
    e.hotswap_adapter(adapter("a_mlp"), adapter_name="qv")
    assert e.peft_config["qv"]["r"] == 2 and e.peft_config["qv"]["path"] == adapter("a_mlp")
    assert e.active_adapters == ["qv"]
    swapped = e.forward(TOKS7)
    assert_close(swapped, exp("a_mlp"), "hotswapped")

    # delete: leaves the set; the others stay
    e.set_adapter(["qv", "all"])
    e.delete_adapter("all")
    assert e.active_adapters == ["qv"] and sorted(e.peft_config) == ["mlp", "qv"]
    assert e.forward(TOKS7).tobytes() == swapped.tobytes()
    e.delete_adapter("qv")
    assert e.active_adapters == []
    assert e.forward(TOKS7).tobytes() == base.tobytes()

    st = e.stats
    assert (st["compiles"], st["loads"], st["hotswaps"], st["deletes"], st["adapters"]) == (1, 3, 1, 2, 1)

    # the same states through the C API (lorajit script): bit for bit
    c_base, c_qv, c_w, c_off, c_on, c_sw = run_script(cli, tmp_path, [
        "forward 175,196,25,246,67,211,151 {0}",
        "load qv %s" % adapter("a_qv"), "load all %s" % adapter("a_all"), "load mlp %s" % adapter("a_mlp"),
        "set qv", "forward 175,196,25,246,67,211,151 {1}",
        "set qv:2,all:-0.5,mlp:0.25", "forward 175,196,25,246,67,211,151 {2}",
        "disable", "forward 175,196,25,246,67,211,151 {3}",
        "enable", "forward 175,196,25,246,67,211,151 {4}",
        "set qv", "hotswap qv %s" % adapter("a_mlp"), "forward 175,196,25,246,67,211,151 {5}",
    ], 6)
    assert c_base.tobytes() == base.tobytes() and c_off.tobytes() == base.tobytes()
    assert c_qv.tobytes() == qv.tobytes()
    assert c_w.tobytes() == weighted.tobytes() and c_on.tobytes() == weighted.tobytes()
    assert c_sw.tobytes() == swapped.tobytes()


def test_failed_load_changes_nothing(engine, tmp_path):
    """A broken adapter raises (naming the file) and the served logits stay
    identical; the Python view is unchanged."""
    e = engine
    e.load_adapter(adapter("a_qv"), "qv")
    e.set_adapter("qv")
    before = e.forward(TOKS7)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(pathlib.Path(adapter("a_qv"), "adapter_config.json").read_text())
    (bad / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(lorajit.FormatError) as ei:
        e.load_adapter(str(bad), "bad")
    assert "adapter_model.safetensors" in str(ei.value)
    with pytest.raises(lorajit.FormatError):
        e.hotswap_adapter(str(bad), "qv")
    assert e.forward(TOKS7).tobytes() == before.tobytes()
    assert e.active_adapters == ["qv"] and list(e.peft_config) == ["qv"]
    assert e.peft_config["qv"]["path"] == adapter("a_qv")


def test_context_manager_closes():
    from conftest import MODEL, OPTS
    with lorajit.Engine(MODEL, **OPTS) as e:
        e.forward([1])
    with pytest.raises(lorajit.LorajitError, match="closed"):
        e.forward([1])
    e.close()  # idempotent


def test_more_adapters_than_slots(tmp_path):
    """The adapter cache: 3 adapters through 1 slot, named from an adapter folder or
    registered; each output equals the adapter loaded explicitly; stats count it."""
    root = tmp_path / "root"
    root.mkdir()
    for n in ("a_qv", "a_all", "a_mlp"):
        (root / n).symlink_to(adapter(n))  # the folder is found as ROOT/NAME
    with lorajit.Engine(MODEL, **dict(OPTS, max_loras=1, max_batch=2)) as e:
        e.set_adapter_dir(root)
        e.register_adapter(adapter("a_qv"), "qv")
        for name, case in [("a_qv", "a_qv"), ("a_all", "a_all"), ("a_mlp", "a_mlp"), ("qv", "a_qv"),
                           ("a_all", "a_all")]:
            e.set_adapter(name)
            assert_close(e.forward(TOKS7), exp(case), name)
            e.set_adapter([])
        s = e.stats
        assert s["jit_loads"] == 5 and s["evictions"] == 4 and s["host_hits"] == 1 and s["compiles"] == 1, s
        assert [x for x in e.generate([TOKS7, TOKS7], adapter=["a_mlp", "a_mlp"], max_new_tokens=3)][0]
        with pytest.raises(lorajit.FullError):
            e.generate([TOKS7, TOKS7], adapter=["a_qv", "a_mlp"], max_new_tokens=3)
        with pytest.raises(lorajit.ExistsError):
            e.register_adapter(adapter("a_mlp"), "qv")


def test_check_adapter(tmp_path):
    """check_adapter: no slot taken, a bad folder refused by file, and a registered
    name's first use served from the parsed copy."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text('{"r": "x"}')
    with lorajit.Engine(MODEL, **dict(OPTS, max_loras=1, max_batch=2)) as e:
        e.check_adapter(adapter("a_all"))
        assert e.stats["adapters"] == 0
        with pytest.raises(lorajit.LorajitError, match="adapter_config.json"):
            e.check_adapter(bad)
        e.register_adapter(adapter("a_mlp"), "m")
        e.check_adapter(adapter("a_mlp"), "m")
        e.set_adapter("m")
        assert_close(e.forward(TOKS7), exp("a_mlp"), "m")
        s = e.stats
        assert s["jit_loads"] == 1 and s["host_hits"] == 1, s
