"""Threads: ctypes releases the GIL for every call into lorajit (the library is a
CDLL, not a PyDLL), so Python threads run forward/generate on one engine at the
same time, with the results of a single thread."""
import ctypes
import threading

import numpy as np

import lorajit
from conftest import TOKS7, adapter


def test_calls_release_the_gil():
    """ctypes drops the GIL around a foreign call unless the function carries
    FUNCFLAG_PYTHONAPI (PyDLL); none of lorajit's does."""
    lib = lorajit._lib.load()
    assert type(lib) is ctypes.CDLL
    for name in ("lorajit_forward", "lorajit_generate", "lorajit_load_adapter", "lorajit_set_adapter"):
        f = lorajit._lib.get(name)
        assert not (f._flags_ & ctypes._FUNCFLAG_PYTHONAPI), name


def _run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    if errors:
        raise errors[0]


def test_two_threads_forward_concurrently(engine):
    engine.load_adapter(adapter("a_qv"), "qv")
    engine.set_adapter("qv")
    inputs = [TOKS7, [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]]
    want = [engine.forward(x) for x in inputs]
    go = threading.Barrier(2)

    def work(i):
        go.wait()
        for _ in range(40):
            assert engine.forward(inputs[i]).tobytes() == want[i].tobytes()
    _run_threads(2, work)
    assert engine.stats["forwards"] == 2 + 80


def test_forward_while_generate_is_in_flight(engine):
    """A generate is held inside lorajit_generate (its on_token callback waits);
    meanwhile another thread's forward runs to the end with the right logits."""
    base = engine.forward(TOKS7)
    inside, release = threading.Event(), threading.Event()
    got = {}

    def on_token(request, token):
        if not inside.is_set():
            inside.set()
            release.wait(60)

    def gen():
        s = engine._sampling(0.0, 1.0, 0, 0, 1.0, [])
        got["ids"] = engine._run_generate([TOKS7], [None], 6, s, on_token)
    t = threading.Thread(target=gen)
    t.start()
    assert inside.wait(60)
    assert engine.forward(TOKS7).tobytes() == base.tobytes()  # the generate is still in flight
    assert t.is_alive()
    release.set()
    t.join(60)
    assert got["ids"] == [engine.generate(TOKS7, max_new_tokens=6)]


def test_readers_while_a_writer_swaps(engine):
    """Readers see one published state at a time: each result is the base's or the
    adapter's logits, bit for bit, while a writer flips between them."""
    engine.load_adapter(adapter("a_all"), "all")
    base = engine.forward(TOKS7).tobytes()
    engine.set_adapter("all")
    with_all = engine.forward(TOKS7).tobytes()
    assert base != with_all
    stop = threading.Event()
    seen = {base: 0, with_all: 0}

    def work(i):
        if i == 0:  # the writer
            try:
                for k in range(60):
                    [engine.set_adapter([]), engine.set_adapter("all"), engine.disable_adapters(),
                     engine.enable_adapters()][k % 4]
            finally:
                stop.set()
        else:
            while not stop.is_set():
                r = engine.forward(TOKS7).tobytes()
                assert r in seen, "a reader saw a state that was never published"
                seen[r] += 1
    _run_threads(3, work)
    assert engine.stats["compiles"] == 1


def test_threads_option_sizes_the_pool(tmp_path):
    """Engine(threads=N) is options.threads: the pool has N threads (stats), the
    logits do not depend on it, and a bad count is refused before anything opens."""
    from conftest import MODEL
    with lorajit.Engine(MODEL, max_rank=16, threads=1) as one, lorajit.Engine(MODEL, max_rank=16, threads=2) as two:
        assert one.stats["threads"] == 1 and two.stats["threads"] == 2
        assert np.array_equal(one.forward(TOKS7), two.forward(TOKS7))
    for bad in (0, -1, True, 1.5):
        try:
            lorajit.Engine(MODEL, threads=bad)
        except lorajit.ArgumentError as e:
            assert "threads" in str(e)
        else:
            raise AssertionError("threads=%r was accepted" % (bad,))
