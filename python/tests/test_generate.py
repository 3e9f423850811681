"""Generation: stream == generate (ids and text), greedy == argmax of the full
forward, per-request adapters == the engine's set, batches == single requests,
stops, seeds; the text path through a stand-in tokenizer (the real one is in
test_tokenizer.py)."""
import numpy as np
import pytest

import lorajit
from conftest import TOKS7, adapter


@pytest.fixture
def gen_engine(engine):
    engine.load_adapter(adapter("a_qv"), "qv")
    engine.load_adapter(adapter("a_all"), "all")
    return engine


def test_stream_ids_equal_generate_ids(gen_engine):
    e = gen_engine
    for kw in (dict(), dict(adapter="qv"), dict(temperature=0.9, top_k=20, top_p=0.9, seed=5),
               dict(adapter={"qv": 1.0, "all": 0.5}, temperature=1.0, seed=1, repetition_penalty=1.3)):
        ids = e.generate(TOKS7, max_new_tokens=12, **kw)
        assert len(ids) == 12 and all(isinstance(t, int) for t in ids)
        assert list(e.stream(TOKS7, max_new_tokens=12, **kw)) == ids, kw


def test_greedy_is_argmax_of_forward(gen_engine):
    e = gen_engine
    e.set_adapter("qv")
    ids = e.generate(TOKS7, max_new_tokens=5)
    for i in range(5):
        assert int(np.argmax(e.forward(TOKS7 + ids[:i])[-1])) == ids[i]


def test_adapter_per_request(gen_engine):
    e = gen_engine
    base = e.generate(TOKS7, max_new_tokens=8)
    e.set_adapter("qv")
    qv = e.generate(TOKS7, max_new_tokens=8)
    assert e.generate(TOKS7, adapter="", max_new_tokens=8) == base  # "" is the base model
    e.set_adapter(["qv", "all"], weights=[1.0, 0.5])
    mixed = e.generate(TOKS7, max_new_tokens=8)
    e.set_adapter([])
    assert e.generate(TOKS7, adapter="qv", max_new_tokens=8) == qv
    assert e.generate(TOKS7, adapter=["qv"], max_new_tokens=8) == qv
    assert e.generate(TOKS7, adapter={"qv": 1.0, "all": 0.5}, max_new_tokens=8) == mixed
    assert e.generate(TOKS7, adapter="qv:1,all:0.5", max_new_tokens=8) == mixed
    # a batch, each request with its own adapters (PEFT's adapter_names=)
    short = [9, 8, 7]
    want = [e.generate(TOKS7, adapter="qv", max_new_tokens=8), e.generate(short, adapter="", max_new_tokens=8),
            e.generate(short, adapter={"qv": 1.0, "all": 0.5}, max_new_tokens=8)]
    got = e.generate([TOKS7, short, short], adapter=["qv", "", {"qv": 1.0, "all": 0.5}], max_new_tokens=8)
    assert got == want
    # disabled: every request runs the base model (PEFT: disable wins over adapter_names)
    e.disable_adapters()
    assert e.generate(TOKS7, adapter="qv", max_new_tokens=8) == base


def test_stop_ids_and_seeds(gen_engine):
    e = gen_engine
    ids = e.generate(TOKS7, max_new_tokens=16, temperature=1.0, seed=3)
    assert ids == e.generate(TOKS7, max_new_tokens=16, temperature=1.0, seed=3)
    k = 5
    stop = ids[k]
    cut = ids[:ids.index(stop) + 1]
    assert e.generate(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=stop) == cut
    assert list(e.stream(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=[stop])) == cut
    other = next(t for t in range(256) if t not in ids)
    # a second stop id stops in the library (lorajit_sampling.eos_more)
    assert e.generate(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=[other, stop]) == cut
    # past eos_id + 8 eos_more the rest are cut in Python: the same result
    others = [t for t in range(256) if t not in ids][:11]
    assert e.generate(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=others + [stop]) == cut
    assert list(e.stream(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=others + [stop])) == cut


def test_stream_error_reaches_the_consumer(gen_engine):
    with pytest.raises(lorajit.NotFoundError, match="nosuch"):
        list(gen_engine.stream(TOKS7, adapter="nosuch", max_new_tokens=4))


class CharTokenizer:
    """A stand-in with lorajit.Tokenizer's methods: id = a character's code (0..255)."""
    bos_token_id = None

    def __init__(self, eos=()):
        self.eos_token_ids = list(eos)

    def encode(self, text, add_special_tokens=True):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)

    def stream_decoder(self, skip_special_tokens=False):
        class D:
            def push(self, i):
                return chr(i)

            def flush(self):
                return ""
        return D()


def test_text_generate_and_stream_agree(gen_engine):
    e = gen_engine
    e.tokenizer = CharTokenizer()
    prompt = "".join(chr(t) for t in TOKS7)
    ids = e.generate(TOKS7, max_new_tokens=20, temperature=0.8, seed=11)
    text = e.generate(prompt, max_new_tokens=20, temperature=0.8, seed=11)
    assert text == "".join(chr(t) for t in ids)
    assert "".join(e.stream(prompt, max_new_tokens=20, temperature=0.8, seed=11)) == text
    # a stop string: cut before its first occurrence, in both
    s = text[6:8]
    want = text[:text.index(s)]
    assert e.generate(prompt, max_new_tokens=20, temperature=0.8, seed=11, stop=s) == want
    assert "".join(e.stream(prompt, max_new_tokens=20, temperature=0.8, seed=11, stop=[s])) == want
    # the tokenizer's EOS ids stop a text generation (the EOS itself is not text)
    e.tokenizer = CharTokenizer(eos=[ids[4]])
    cut = text[:ids.index(ids[4])]
    assert e.generate(prompt, max_new_tokens=20, temperature=0.8, seed=11) == cut
    assert "".join(e.stream(prompt, max_new_tokens=20, temperature=0.8, seed=11)) == cut
    # a batch of texts (greedy: with sampling, request i draws from its own stream of the seed)
    e.tokenizer = CharTokenizer()
    one = e.generate(prompt, max_new_tokens=20)
    assert one == "".join(chr(t) for t in e.generate(TOKS7, max_new_tokens=20))
    assert e.generate([prompt, prompt[:3]], max_new_tokens=20) == [one, e.generate(prompt[:3], max_new_tokens=20)]


def test_stop_text_holds_back_prefixes():
    from lorajit.generation import _StopText
    st = _StopText(["END", "xy"])
    out = "".join(st.feed(p) for p in ["ab", "cE", "N", "x", "q", "EN", "Dzz"])
    assert out == "abcENxq" and st.done and st.finish() == ""
    st = _StopText(["END"])
    assert st.feed("abE") == "ab" and st.feed("N") == "" and st.finish() == "EN"
