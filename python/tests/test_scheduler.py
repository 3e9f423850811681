"""The scheduler from Python (lorajit.Scheduler over lorajit_sched_*): requests run
together give what each gives alone through Engine.generate (greedy and sampled,
mixed adapters), cancellation, streaming from threads, errors, finish reasons,
lifetimes (engine closed first, a scheduler dropped while its driver runs).

Prompts here are at most 8 tokens: the scheduler's prefill chunks and
lorajit_generate's prefill then run the same row loop, so the logits, and so the
tokens, are bit for bit the same (lorajit_serving.h, lorajit_step)."""
import gc
import os
import threading
import time
import weakref

import pytest

import lorajit
from conftest import MODEL, OPTS, ROOT, TOKS7, adapter

PROMPTS = [TOKS7, [9, 8, 7], [3, 1, 4, 1, 5, 9, 2, 6], [200], [17, 17, 17, 17], [5, 250, 6]]
STORIES = os.path.join(ROOT, "tests", "models", "stories260K")


@pytest.fixture(scope="module")
def eng():
    e = lorajit.Engine(MODEL, **OPTS)
    e.load_adapter(adapter("a_qv"), "qv")
    e.load_adapter(adapter("a_all"), "all")
    yield e
    e.close()


def solo(e, prompt, **kw):
    return e.generate(prompt, **kw)


@pytest.mark.parametrize("sampling", [dict(), dict(temperature=0.9, top_k=40, top_p=0.95),
                                      dict(temperature=1.2, repetition_penalty=1.2)])
def test_batch_equals_solo_generate(eng, sampling):
    reqs = [dict(prompt_or_ids=p, seed=11 + i, max_new_tokens=6 + 2 * i, **sampling) for i, p in enumerate(PROMPTS)]
    got = eng.generate_batch(reqs)
    for kw, r in zip(reqs, got):
        kw = dict(kw)
        want = solo(eng, kw.pop("prompt_or_ids"), **kw)
        assert r.tokens == want, kw
        assert r.finish_reason == "length" and r.error == "" and r.text is None
        assert r.n_prompt == len(PROMPTS[got.index(r)])
        assert len(r.token_ms) == len(want) and r.token_ms == sorted(r.token_ms)
        assert 0 <= r.queue_ms <= r.ttft_ms <= r.total_ms
    if sampling:  # the seeds matter: another seed gives other tokens somewhere
        other = eng.generate_batch([dict(r, seed=r["seed"] + 100) for r in reqs])
        assert [r.tokens for r in other] != [r.tokens for r in got]


def test_batch_larger_than_max_batch_queues(eng):
    """More requests than sequences (max_batch 4): the rest wait and still equal solo runs."""
    prompts = PROMPTS + PROMPTS[:3]
    assert len(prompts) > eng.max_batch
    got = eng.generate_batch(prompts, max_new_tokens=5, temperature=0.7, seed=2)
    assert [r.tokens for r in got] == [solo(eng, p, max_new_tokens=5, temperature=0.7, seed=2) for p in prompts]
    assert max(r.queue_ms for r in got) > 0


def test_mixed_adapters_each_equal_their_solo_run(eng):
    specs = [("", ""), ("qv", "qv"), ("all", "all"), ({"qv": 1.0, "all": 0.5}, {"qv": 1.0, "all": 0.5}),
             ([("qv", 0.7)], {"qv": 0.7}), ("qv:1,all:0.5", "qv:1,all:0.5"), (["all"], "all")]
    with eng.scheduler(max_running=4, token_budget=8) as s:
        reqs = [s.submit(PROMPTS[i % len(PROMPTS)], adapter=a, max_new_tokens=8, temperature=0.8, seed=i)
                for i, (a, _) in enumerate(specs)]
        s.run_until_idle()
        got = [r.result().tokens for r in reqs]
    want = [solo(eng, PROMPTS[i % len(PROMPTS)], adapter=g, max_new_tokens=8, temperature=0.8, seed=i)
            for i, (_, g) in enumerate(specs)]
    assert got == want
    assert len({tuple(t) for t in got[:3]}) == 3  # base, qv and all differ: the adapters were applied
    # adapter=None follows the engine's active set, as generate does
    eng.set_adapter("qv")
    try:
        assert eng.generate_batch([TOKS7], max_new_tokens=8)[0].tokens == solo(eng, TOKS7, adapter="qv",
                                                                               max_new_tokens=8)
    finally:
        eng.set_adapter([])


def test_cancel_running_and_queued(eng):
    with eng.scheduler(max_running=2) as s:
        a = s.submit(TOKS7, max_new_tokens=40)
        b = s.submit([9, 8, 7], adapter="qv", max_new_tokens=40)
        c = s.submit([1, 2, 3], max_new_tokens=10)  # queued behind a and b
        for _ in range(4):
            s.step()
        assert not a.done() and len(a.tokens) > 0
        s.cancel(a)
        c.cancel()
        assert c.done()  # queued: finished at once
        s.run_until_idle()
        ra, rb, rc = a.result(), b.result(), c.result()
        s.cancel(b)  # finished already: nothing happens
    full_a = solo(eng, TOKS7, max_new_tokens=40)
    assert ra.finish_reason == "cancelled" and 0 < len(ra.tokens) < 40 and ra.tokens == full_a[:len(ra.tokens)]
    assert rb.finish_reason == "length" and rb.tokens == solo(eng, [9, 8, 7], adapter="qv", max_new_tokens=40)
    assert rc.finish_reason == "cancelled" and rc.tokens == [] and rc.queue_ms == -1 and rc.ttft_ms == -1


@pytest.mark.parametrize("driver", [True, False])
def test_streaming_from_four_threads(eng, driver):
    """Four threads submit and stream while the background driver steps (or, without
    it, while the waiting consumers take turns stepping); each gets, token by token,
    what its request gives alone. A fifth consumer stops reading early (an exception
    in its loop): the others are not disturbed."""
    kws = [dict(adapter=["", "qv", "all", {"qv": 1.0, "all": 0.5}][i], temperature=0.9 if i % 2 else 0.0,
                seed=i, max_new_tokens=12 + i) for i in range(4)]
    want = [solo(eng, PROMPTS[i], **kws[i]) for i in range(4)]
    got, errors, go = {}, [], threading.Barrier(5)
    with eng.scheduler(start=driver) as s:
        def consume(i):
            try:
                go.wait()
                if i == 4:  # a consumer whose own code raises mid-stream
                    try:
                        for t in s.submit(TOKS7, max_new_tokens=30):
                            raise KeyError("consumer bug")
                    except KeyError:
                        return
                req = s.submit(PROMPTS[i], **kws[i])
                got[i] = list(req.stream())
                assert req.result().tokens == got[i]
            except BaseException as e:
                errors.append(e)
        ts = [threading.Thread(target=consume, args=(i,)) for i in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert s.driving == driver
    assert not any(t.is_alive() for t in ts) and not errors, errors
    assert [got[i] for i in range(4)] == want


def test_text_results_and_stop_reasons(eng):
    e = eng
    ids = solo(e, TOKS7, max_new_tokens=16, temperature=1.0, seed=3)
    stop = ids[5]
    cut = ids[:ids.index(stop) + 1]
    with e.scheduler() as s:
        r_len = s.submit(TOKS7, max_new_tokens=16, temperature=1.0, seed=3)
        r_stop = s.submit(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=stop)
        r_eos = s.submit(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, eos_token_id=stop)
        r_seq = s.submit(TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=[ids[2:4]])
        s.run_until_idle()
    assert (r_len.result().finish_reason, r_len.result().tokens) == ("length", ids)
    assert (r_stop.result().finish_reason, r_stop.result().tokens) == ("stop", cut)
    assert cut == solo(e, TOKS7, max_new_tokens=16, temperature=1.0, seed=3, stop=stop)
    assert (r_eos.result().finish_reason, r_eos.result().tokens) == ("eos", cut)
    assert r_seq.result().finish_reason == "stop" and r_seq.result().tokens == ids[:4]


@pytest.mark.skipif(not os.path.isdir(STORIES) or not lorajit.has_symbol("lorajit_tokenizer_open"),
                    reason="no stories260K model or no tokenizer API")
def test_text_prompts_with_a_tokenizer():
    with lorajit.Engine(STORIES, max_rank=8, max_loras=1) as e:
        prompts = ["Once upon a time", "The cat", "Lily and Tom"]
        want = [e.generate(p, max_new_tokens=40) for p in prompts]
        got = e.generate_batch(prompts, max_new_tokens=40)
        assert [r.text for r in got] == want
        for r in got:
            assert r.finish_reason in ("eos", "length")
            if r.finish_reason == "eos":
                assert r.tokens[-1] in e.tokenizer.eos_token_ids
        # a stop string (the C detokenizer checks it): finish "stop", the text cut before it
        text = want[0]
        word = text.split()[3]
        with e.scheduler() as s:
            req = s.submit(prompts[0], max_new_tokens=40, stop=word)
            pieces = list(req.stream_text())
            r = req.result()
        assert r.finish_reason == "stop" and r.text == "".join(pieces) == e.generate(prompts[0], max_new_tokens=40,
                                                                                      stop=word)
        assert word not in r.text and text.startswith(r.text)


def test_errors_carry_the_message(eng):
    with eng.scheduler() as s:
        bad = s.submit(TOKS7, adapter="nosuch", max_new_tokens=4)
        ok = s.submit(TOKS7, max_new_tokens=4)
        s.run_until_idle()
        with pytest.raises(lorajit.RequestError, match="nosuch") as ei:
            bad.result()
        assert ei.value.result.finish_reason == "error"
        with pytest.raises(lorajit.RequestError, match="nosuch"):
            list(bad.stream())
        assert ok.result().tokens == solo(eng, TOKS7, max_new_tokens=4)
        for kw, msg in ((dict(prompt_or_ids=[]), "empty"), (dict(prompt_or_ids=[1, 999]), "vocabulary"),
                        (dict(prompt_or_ids=TOKS7, max_new_tokens=0), "max_new"),
                        (dict(prompt_or_ids=TOKS7, max_new_tokens=10 ** 6), "max_seq_len"),
                        (dict(prompt_or_ids=TOKS7, temperature="hot"), "temperature"),
                        (dict(prompt_or_ids=TOKS7, top_p=2.0), "top_p"),
                        (dict(prompt_or_ids=TOKS7, adapter=[3]), "adapter"),
                        (dict(prompt_or_ids=TOKS7, stop="END"), "tokenizer"),
                        (dict(prompt_or_ids=TOKS7, eos_token_id=list(range(10))), "eos_token_id"),
                        (dict(prompt_or_ids=[1, "x"]), "prompt_or_ids")):
            with pytest.raises(lorajit.ArgumentError, match=msg):
                s.submit(**kw)
        s.start()
        with pytest.raises(lorajit.ArgumentError, match="driver"):
            s.step()
    with pytest.raises(lorajit.LorajitError, match="closed"):
        s.submit(TOKS7)
    with pytest.raises(lorajit.RequestError, match="request 1 of the batch: .*nosuch"):
        eng.generate_batch([TOKS7, dict(prompt_or_ids=[1, 2], adapter="nosuch")], max_new_tokens=3)
    res = eng.generate_batch([TOKS7, dict(prompt_or_ids=[1, 2], adapter="nosuch")], max_new_tokens=3,
                             return_errors=True)
    assert [r.finish_reason for r in res] == ["length", "error"] and "nosuch" in res[1].error
    with pytest.raises(lorajit.ArgumentError, match="max_running"):
        eng.scheduler(max_running=eng.max_batch + 1)
    with pytest.raises(lorajit.ArgumentError, match="token_budget"):
        eng.scheduler(token_budget=0)


def test_a_failing_callback_does_not_reach_c(eng):
    """An exception while the on_token callback records a token is swallowed there:
    the request still finishes with every token (read from the library's result)."""
    class Broken(list):
        def append(self, x):
            raise RuntimeError("broken")
    with eng.scheduler() as s:
        req = s.submit(TOKS7, max_new_tokens=5)
        req._tokens = Broken()
        s.run_until_idle()
        assert req.result().tokens == solo(eng, TOKS7, max_new_tokens=5)


def test_engine_closed_first_and_dropped_scheduler(eng):
    want = solo(eng, TOKS7, max_new_tokens=60)
    e = lorajit.Engine(MODEL, **OPTS)
    s = e.scheduler()
    req = s.submit(TOKS7, max_new_tokens=60)
    for _ in range(3):
        s.step()
    e.close()  # closes the scheduler first: the request ends "cancelled", nothing crashes
    r = req.result()
    assert r.finish_reason == "cancelled" and r.tokens == want[:3]
    with pytest.raises(lorajit.LorajitError, match="closed"):
        s.submit(TOKS7)
    # the same while a driver thread steps: whatever the timing, it ends cleanly
    e = lorajit.Engine(MODEL, **OPTS)
    s = e.scheduler(start=True)
    req = s.submit(TOKS7, max_new_tokens=60)
    while not req.tokens and not req.done():
        time.sleep(0.001)
    e.close()
    r = req.result()
    assert not s.driving and r.tokens == want[:len(r.tokens)]
    assert r.finish_reason == ("length" if len(r.tokens) == 60 else "cancelled")
    # a scheduler dropped while its driver runs is collected and closed
    with lorajit.Engine(MODEL, **OPTS) as e2:
        s2 = e2.scheduler(start=True)
        assert s2.submit(TOKS7, max_new_tokens=3).result().finish_reason == "length"
        ref, thread = weakref.ref(s2), s2._thread
        del s2
        for _ in range(100):
            gc.collect()
            if ref() is None:
                break
            time.sleep(0.05)
        assert ref() is None
        thread.join(5)
        assert not thread.is_alive()


def _log_softmax(row):
    import math
    m = max(row)
    s = math.log(sum(math.exp(v - m) for v in row)) + m
    return [v - s for v in row]


@pytest.mark.parametrize("adapter_spec", ["", "qv"])
def test_prompt_logprobs_equal_forward(eng, adapter_spec):
    """submit(prompt_logprobs=N): vLLM's layout (None first, then {id: logprob} with the
    prompt's own token and the N most likely), each within 1e-4 of the log-softmax of
    Engine.forward's logits at that position; the generated ids are those without it."""
    prompt = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    eng.set_adapter(adapter_spec) if adapter_spec else eng.disable_adapters()
    try:
        logits = eng.forward(prompt)
    finally:
        eng.enable_adapters()
    with eng.scheduler() as sched:
        r = sched.submit(prompt, adapter=adapter_spec, max_new_tokens=3, prompt_logprobs=4).result()
        plain = sched.submit(prompt, adapter=adapter_spec, max_new_tokens=3).result()
    assert plain.prompt_logprobs is None
    assert r.tokens == plain.tokens
    plp = r.prompt_logprobs
    assert len(plp) == len(prompt) and plp[0] is None
    for k in range(1, len(prompt)):
        want = _log_softmax([float(v) for v in logits[k - 1]])
        top = sorted(range(len(want)), key=lambda i: -want[i])[:4]
        assert set(top) | {prompt[k]} == set(plp[k]), k
        for i, lp in plp[k].items():
            assert abs(lp - want[i]) <= 1e-4, (k, i, lp, want[i])


def test_prompt_logprobs_bad_n(eng):
    with eng.scheduler() as sched:
        with pytest.raises(lorajit.ArgumentError, match="prompt_top_n"):
            sched.submit([1, 2, 3], max_new_tokens=1, prompt_logprobs=21)
