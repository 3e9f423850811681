"""Continuous batching from Python: lorajit's scheduler (``lorajit_sched_*``,
include/lorajit_serving.h), one method per C call.

Requests are submitted at any time and join the running batch between steps, each
with its own adapters, sampling and stops. One thread drives the steps: the caller
(:meth:`Scheduler.step`, :meth:`Scheduler.run_until_idle`, or a request's
:meth:`Request.result` / :meth:`Request.stream`, which step while they wait), or a
background thread started by :meth:`Scheduler.start` (as ``lorajit serve``'s
driver, server/backend_sched.c). The GIL is released for every step; the
scheduler's ``on_token`` callback takes it back only to append the token to the
request's list and queue, so streaming consumers in other threads see each token as
it is sampled.

Lifetimes: the scheduler holds its engine, and :meth:`Engine.close` closes its
schedulers first; the ctypes callback lives as long as the scheduler; a request
cancelled, or an exception in a consumer, never reaches C. Open schedulers are
closed at interpreter exit (their driver threads joined) before the engines go.
"""
from __future__ import annotations

import atexit
import ctypes
import itertools
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _lib
from ._args import Adapters, Prompt, StopSpec, adapter_list, as_int, as_ints, as_number, stop_list
from .errors import ArgumentError, LorajitError, RequestError, error_for


_open: "weakref.WeakSet[Scheduler]" = weakref.WeakSet()  # closed at exit, before any engine


@atexit.register
def _close_all() -> None:
    for s in list(_open):
        try:
            s.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


@dataclass(frozen=True)
class Result:
    """What a finished request did (``lorajit_sched_result``).

    Attributes:
        id: the scheduler's request number (from 1).
        tokens: the generated ids, stop and EOS ids included (as the library keeps them).
        finish_reason: "eos", "length", "stop", "cancelled" or "error"
            (``lorajit_finish_str``).
        error: the library's message when finish_reason is "error", else "".
        text: for a text prompt, the generated text as :meth:`Engine.generate`
            returns it (cut before an EOS id or stop string); None for ids.
        n_prompt: the prompt's token count.
        queue_ms, ttft_ms, total_ms: submit -> admitted, first token, finished
            (-1: never admitted / no token).
        token_ms: when each token was sampled, ms from submit.
        prompt_logprobs: with ``submit(prompt_logprobs=N)``, as vLLM gives them: one
            entry per prompt token, None for the first, else a dict token id ->
            log-probability holding the prompt's own token at that position and the
            N most likely ids there (under the request's adapters); None otherwise.
    """
    id: int
    tokens: List[int]
    finish_reason: str
    error: str = ""
    text: Optional[str] = None
    n_prompt: int = 0
    queue_ms: float = -1.0
    ttft_ms: float = -1.0
    total_ms: float = 0.0
    token_ms: List[float] = field(default_factory=list, repr=False)
    prompt_logprobs: Optional[List[Optional[Dict[int, float]]]] = field(default=None, repr=False)


class Request:
    """A submitted request (:meth:`Scheduler.submit`). Iterating it yields its token
    ids as they are sampled (:meth:`stream`)."""

    def __init__(self, sched: "Scheduler", key: int, prompt: List[int], text: bool, stop_ids: List[int],
                 stop_strs: List[str]) -> None:
        self.id = 0  # the scheduler's number, set by submit
        self._sched, self._key = sched, key
        self._lock = threading.Lock()
        self._prompt, self._text = prompt, text
        self._stop_ids, self._stop_strs = stop_ids, stop_strs  # what ends its text (see Result.text)
        self._tokens: List[int] = []
        self._q: "queue.Queue[Optional[int]]" = queue.Queue()
        self._done = threading.Event()
        self._raw: Optional[Dict[str, Any]] = None
        self._result: Optional[Result] = None
        self._cancelled = False
        self._plp: Optional[List[Optional[Dict[int, float]]]] = None  # from on_prompt, when asked

    def __repr__(self) -> str:
        state = self._raw["finish_reason"] if self._raw else "running"
        return "lorajit.Request(id=%d, %s, %d tokens)" % (self.id, state, len(self._tokens))

    @property
    def tokens(self) -> List[int]:
        """The ids sampled so far (a copy)."""
        return list(self._tokens)

    def done(self) -> bool:
        """Whether the request finished (its result was taken from the library)."""
        return self._done.is_set()

    def cancel(self) -> None:
        """:meth:`Scheduler.cancel` of this request."""
        self._sched.cancel(self)

    def _finish(self, raw: Dict[str, Any]) -> None:
        """Records the library's result (any thread; the first call wins) and ends the stream."""
        with self._lock:
            if self._raw is not None:
                return
            self._raw = raw
        self._q.put(None)
        self._done.set()

    def _wait(self, timeout: Optional[float]) -> None:
        """Waits until done: on the driver thread's progress, else stepping here."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            if self._sched.driving:
                self._done.wait(0.05)
            else:
                self._sched._step_for(self)
            if deadline is not None and not self._done.is_set() and time.monotonic() > deadline:
                raise TimeoutError("request %d did not finish in %s s" % (self.id, timeout))

    def result(self, timeout: Optional[float] = None) -> Result:
        """Waits for the request to finish and returns its :class:`Result`.

        Without a background driver (:meth:`Scheduler.start`) this thread steps the
        scheduler until the request is done (other requests advance too).

        Raises:
            RequestError: the request finished with an error (the library's message;
                ``e.result`` holds the result).
            TimeoutError: ``timeout`` seconds passed (checked between steps).
        """
        r = self.result_or_error(timeout)
        if r.finish_reason == "error":
            raise RequestError(r.error, r)
        return r

    def result_or_error(self, timeout: Optional[float] = None) -> Result:
        """As :meth:`result`, but a request that failed is returned (finish_reason
        "error", the message in ``error``), not raised."""
        self._wait(timeout)
        if self._result is None:
            raw = self._raw or {}
            text = None
            if self._text:
                eng = self._sched.engine
                text = "".join(eng._text_pieces(self._prompt, list(raw["tokens"]), self._stop_ids, self._stop_strs))
            self._result = Result(text=text, prompt_logprobs=self._plp, **raw)
        return self._result

    def stream(self) -> Iterator[int]:
        """Yields the request's ids as they are sampled, ending when it finishes.
        Safe from any thread; several threads may stream their own requests at
        once. Without a background driver the consumer steps the scheduler itself.

        Raises:
            RequestError: after the last id, when the request finished with an error.
        """
        while True:
            try:
                t = self._q.get_nowait() if not self._sched.driving else self._q.get(timeout=0.05)
            except queue.Empty:
                if not self._sched.driving and not self._done.is_set():
                    self._sched._step_for(self)
                continue
            if t is None:
                self._q.put(None)  # a second stream() of a finished request ends too
                break
            yield t
        raw = self._raw or {}
        if raw.get("finish_reason") == "error":
            raise RequestError(raw.get("error", ""), self.result_or_error())

    def __iter__(self) -> Iterator[int]:
        return self.stream()

    def stream_text(self) -> Iterator[str]:
        """Yields text pieces as tokens come (a text prompt only); their
        concatenation is :attr:`Result.text`."""
        if not self._text:
            raise ArgumentError("stream_text: request %d has an ids prompt; use stream() for ids" % self.id)
        yield from self._sched.engine._text_pieces(self._prompt, self.stream(), self._stop_ids, self._stop_strs)


class Scheduler(_lib.Closing):
    """Continuous batching over an engine (``lorajit_sched_open``).

    Args:
        engine: the :class:`lorajit.Engine` (held until :meth:`close`).
        max_running: requests running at once (None: the engine's max_batch).
        token_budget: tokens a step runs, decode rows plus prefill chunks (None:
            the engine's max_tokens).
        min_chunk: prefill tokens a step runs at least (None: 16).
        tokenizer: a :class:`lorajit.Tokenizer` for stop strings (None: the
            engine's, when the model folder has ``tokenizer.json``).

    Raises:
        ArgumentError: an option out of range (the library's message).

    Example::

        >>> with model.scheduler(max_running=4) as sched:
        ...     reqs = [sched.submit(p, adapter="sql", max_new_tokens=32) for p in prompts]
        ...     sched.run_until_idle()
        ...     texts = [r.result().text for r in reqs]
    """

    def __init__(self, engine: Any, max_running: Optional[int] = None, token_budget: Optional[int] = None,
                 min_chunk: Optional[int] = None, tokenizer: Any = None) -> None:
        self._h: Optional[int] = None
        self.engine = engine
        self._lock = threading.Lock()          # the handle's life, submit/cancel/take, request results
        self._drive = threading.Lock()         # one stepping thread at a time
        self._cv = threading.Condition(threading.RLock())  # the driver sleeps here (RLock: a close() from gc)
        self._reqs: Dict[int, Request] = {}    # key (the C `user`) -> request not yet finished
        self._keys = itertools.count(1)
        self._thread: Optional[threading.Thread] = None
        self._quit = False
        self.last_error: Optional[LorajitError] = None  # the driver thread's last failed step
        self._cb = _lib.SCHED_TOKEN_FN(self._on_token)  # referenced as long as the scheduler lives
        self._prompt_cb = _lib.SCHED_PROMPT_FN(self._on_prompt)
        o = _lib.SchedOptions()
        for name, v in (("max_running", max_running), ("token_budget", token_budget), ("min_chunk", min_chunk)):
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ArgumentError("scheduler: %s must be a positive int, got %r" % (name, v))
                setattr(o, name, v)
        self._tokenizer = tokenizer if tokenizer is not None else _engine_tokenizer(engine)
        th = getattr(self._tokenizer, "_h", None)
        o.tokenizer = th if isinstance(th, int) else None
        h = ctypes.c_void_p()
        self._call("lorajit_sched_open", engine._handle(), ctypes.byref(o), ctypes.byref(h))
        self._h = h.value
        engine._schedulers.add(self)
        _open.add(self)

    # ---- plumbing ----
    def _call(self, name: str, *args: Any) -> int:
        """Calls name; a failure raises with the calling thread's message
        (lorajit_sched_errmsg is per thread)."""
        st = int(_lib.get(name)(*args))
        if st != 0:
            msg = _lib.text(_lib.get("lorajit_sched_errmsg")(self._h))
            raise error_for(st, msg or "%s failed" % name)
        return st

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise LorajitError("the scheduler is closed")
        return h

    def _on_token(self, user: Optional[int], rid: int, token: int) -> int:
        """The C on_token (the stepping thread, GIL taken back): queues the token.
        Never raises into C; non-zero cancels the request."""
        try:
            req = self._reqs.get(user or 0)
            if req is None:
                return 0
            req._tokens.append(int(token))
            req._q.put(int(token))
            return 1 if req._cancelled else 0
        except BaseException:  # pragma: no cover - nothing may unwind into C
            return 0

    def _on_prompt(self, user: Optional[int], rid: int, n: int, lp: Any, top_id: Any, top_lp: Any,
                   top_n: int) -> int:
        """The C on_prompt (the stepping thread): keeps the prompt's log-probabilities
        as vLLM's prompt_logprobs. Never raises into C; non-zero cancels."""
        try:
            req = self._reqs.get(user or 0)
            if req is None:
                return 0
            out: List[Optional[Dict[int, float]]] = [None]
            for k in range(n):
                d = {int(top_id[k * top_n + j]): float(top_lp[k * top_n + j]) for j in range(top_n)}
                d[int(req._prompt[k + 1])] = float(lp[k])
                out.append(d)
            req._plp = out
            return 1 if req._cancelled else 0
        except BaseException:  # pragma: no cover - nothing may unwind into C
            return 0

    def _take(self, req: Request) -> bool:
        """lorajit_sched_take of req; True when it finished (its result recorded)."""
        r = _lib.SchedResult()
        with self._lock:
            if self._h is None or not req.id or req.done():
                return req.done()
            if _lib.get("lorajit_sched_take")(self._h, req.id, ctypes.byref(r)) != 0:
                return False
            self._reqs.pop(req._key, None)
        n = r.n_tokens
        raw = dict(id=int(r.id), tokens=[int(r.tokens[i]) for i in range(n)],
                   finish_reason=_lib.text(_lib.get("lorajit_finish_str")(r.finish)),
                   error=_lib.text(r.error), n_prompt=int(r.n_prompt), queue_ms=float(r.queue_ms),
                   ttft_ms=float(r.ttft_ms), total_ms=float(r.total_ms),
                   token_ms=[float(r.token_ms[i]) for i in range(n)] if r.token_ms else [])
        free = _lib.get("lorajit_free")
        free(ctypes.cast(r.tokens, ctypes.c_void_p))
        free(ctypes.cast(r.token_ms, ctypes.c_void_p))
        req._finish(raw)
        return True

    def _collect(self) -> None:
        """Takes the result of every submitted request that finished."""
        for req in list(self._reqs.values()):
            self._take(req)

    def _step_locked(self) -> int:
        """One lorajit_sched_step and the collection of finished requests (the
        caller holds self._drive). Returns the requests queued or running."""
        busy = ctypes.c_int(-1)
        try:
            self._call("lorajit_sched_step", self._handle(), ctypes.byref(busy))
        finally:
            if busy.value < len(self._reqs):  # some finished (or the step failed): take them
                self._collect()
        return int(busy.value)

    def _step_for(self, req: Request) -> None:
        """Steps once for a waiting consumer (no background driver): whoever holds
        the drive lock steps; the others wait for it and look at their request again."""
        with self._drive:
            if self._h is None:  # closing: close() finishes req next
                time.sleep(0.001)
            elif not req.done() and not self.driving:
                self._step_locked()

    @property
    def driving(self) -> bool:
        """Whether a background driver thread (:meth:`start`) runs the steps."""
        t = self._thread
        return t is not None and t.is_alive()

    def _check_not_driving(self, what: str) -> None:
        if self.driving:
            raise ArgumentError("%s: the background driver (start()) runs the steps; call stop() first" % what)

    # ---- the C calls ----
    def submit(self, prompt_or_ids: Prompt, adapter: Adapters = None, max_new_tokens: int = 64,
               temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, seed: int = 0,
               stop: StopSpec = None, repetition_penalty: float = 1.0,
               eos_token_id: Union[None, int, Sequence[int]] = None,
               prompt_logprobs: Optional[int] = None) -> Request:
        """Queues a request (``lorajit_sched_submit``; any thread).

        Args:
            prompt_or_ids: a text (encoded with the engine's tokenizer, special
                tokens added) or a list of token ids.
            adapter: None follows the engine's active set (:meth:`Engine.set_adapter`),
                ``""`` or ``[]`` is the base model, ``"sql"`` or ``"sql:1,chat:0.5"``,
                a dict name -> weight, or a list of names or ``(name, weight)`` pairs.
                A name not resident is loaded just in time (registered adapters).
            max_new_tokens, temperature, top_p, top_k, seed, repetition_penalty: as
                :meth:`Engine.generate` (sampling draws from the seed's stream 0, as
                a single :meth:`Engine.generate`).
            stop: an id, a string, a list of ids (each one a stop: finish "stop"),
                or a list mixing ids, strings and lists of ids (token sequences).
                Strings need a :class:`lorajit.Tokenizer`.
            eos_token_id: ids that end the request with finish "eos" (at most 9).
                None: the tokenizer's EOS ids for a text prompt, none for ids.
            prompt_logprobs: None, or N in 0..20: :attr:`Result.prompt_logprobs`
                with the N most likely ids at each prompt position, computed by the
                prefill itself (its chunks keep every position's logits).

        Returns:
            The :class:`Request`.

        Raises:
            ArgumentError: a bad argument or request (the library's message: empty
                prompt, ids outside the vocabulary, too long for max_seq_len, ...).
            LorajitError: the scheduler is closed.
        """
        text = isinstance(prompt_or_ids, str)
        if text:
            tok = self.engine.tokenizer
            ids = [int(i) for i in tok.encode(prompt_or_ids, add_special_tokens=True)]
        else:
            ids = as_ints(prompt_or_ids, "prompt_or_ids")
        if eos_token_id is None:
            eos = [int(i) for i in self.engine.tokenizer.eos_token_ids] if text else []
        else:
            eos = as_ints([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id, "eos_token_id")
        if len(eos) > 9:
            raise ArgumentError("submit: %d eos_token_id values; lorajit_sampling holds 9 (eos_id + 8 eos_more)"
                                % len(eos))
        seqs, strs = stop_list(stop)
        names, weights = adapter_list(adapter, self.engine)
        samp = self.engine._sampling(as_number(temperature, "temperature"), as_number(top_p, "top_p"),
                                     as_int(top_k, "top_k"), as_int(seed, "seed"),
                                     as_number(repetition_penalty, "repetition_penalty"), eos)
        parr = (ctypes.c_int32 * max(1, len(ids)))(*ids)
        r = _lib.SchedRequest()
        r.prompt, r.n_prompt, r.max_new = parr, len(ids), as_int(max_new_tokens, "max_new_tokens")
        name_arr = (ctypes.c_char_p * max(1, len(names)))(*[n.encode("utf-8") for n in names])
        w_arr = (ctypes.c_float * max(1, len(weights)))(*weights)
        r.adapters, r.weights, r.n_adapters = name_arr, w_arr, len(names)
        r.sampling = ctypes.pointer(samp)
        seq_arrs = [(ctypes.c_int32 * len(s))(*s) for s in seqs]
        seq_ptrs = (ctypes.POINTER(ctypes.c_int32) * max(1, len(seqs)))(
            *[ctypes.cast(a, ctypes.POINTER(ctypes.c_int32)) for a in seq_arrs])
        lens = (ctypes.c_int * max(1, len(seqs)))(*[len(s) for s in seqs])
        r.stop_seqs, r.stop_lens, r.n_stop_seqs = seq_ptrs, lens, len(seqs)
        str_arr = (ctypes.c_char_p * max(1, len(strs)))(*[s.encode("utf-8") for s in strs])
        r.stop_strings, r.n_stop_strings = str_arr, len(strs)
        r.on_token = self._cb
        if prompt_logprobs is not None:
            r.prompt_logprobs, r.prompt_top_n = 1, as_int(prompt_logprobs, "prompt_logprobs")
            r.on_prompt = self._prompt_cb
        key = next(self._keys)
        r.user = key
        req = Request(self, key, ids, text, eos + [s[0] for s in seqs if len(s) == 1], strs)
        rid = ctypes.c_int64(0)
        with self._lock:
            self._reqs[key] = req  # before submit: a driver may sample its first token at once
            try:
                self._call("lorajit_sched_submit", self._handle(), ctypes.byref(r), ctypes.byref(rid))
            except BaseException:
                del self._reqs[key]
                raise
            req.id = int(rid.value)
        with self._cv:
            self._cv.notify_all()
        return req

    def cancel(self, request: Request) -> None:
        """Cancels a request (``lorajit_sched_cancel``; any thread): queued, it
        finishes at once; running, before the next step (finish "cancelled", the
        tokens so far kept). A request that already finished is left as it is."""
        if request._sched is not self:
            raise ArgumentError("cancel: request %d belongs to another scheduler" % request.id)
        request._cancelled = True
        with self._lock:
            if self._h is None or request.done():
                return
            st = int(_lib.get("lorajit_sched_cancel")(self._h, request.id))
            msg = _lib.text(_lib.get("lorajit_sched_errmsg")(self._h)) if st else ""
        if st and st != 5:  # LORAJIT_E_NOT_FOUND: it just finished
            raise error_for(st, msg)
        self._take(request)  # a queued one is finished now
        with self._cv:
            self._cv.notify_all()

    def step(self) -> int:
        """One step (``lorajit_sched_step``): admits, runs, samples, finishes; the
        results of finished requests are taken. Returns the requests queued or
        running after it.

        Raises:
            FullError: requests are queued and none can start (every sequence held
                elsewhere). ArgumentError: the background driver is running.
        """
        self._check_not_driving("step")
        with self._drive:
            return self._step_locked()

    def run_until_idle(self) -> None:
        """Steps until nothing is queued or running (``lorajit_sched_run_until_idle``);
        every request's result is then ready. With the background driver, waits
        for it to get there instead."""
        if self.driving:
            for req in list(self._reqs.values()):
                req._wait(None)
            return
        with self._drive:
            try:
                self._call("lorajit_sched_run_until_idle", self._handle())
            finally:
                self._collect()

    # ---- the background driver ----
    def _drive_once(self) -> bool:
        """Steps once when requests are live. False: stop driving."""
        with self._cv:
            if self._quit:
                return False
            if not self._reqs:
                return True
        try:
            with self._drive:
                if self._h is None:
                    return False
                self._step_locked()
        except LorajitError as e:  # none could start (sequences held elsewhere): wait, do not spin
            self.last_error = e
            with self._cv:
                self._cv.wait(0.02)
        return True

    def start(self) -> "Scheduler":
        """Starts a driver thread that steps while requests are live and sleeps
        otherwise (as ``lorajit serve``'s). Idempotent. Returns self."""
        with self._cv:
            self._handle()
            if self.driving:
                return self
            self._quit = False
            self._thread = threading.Thread(target=_drive, args=(weakref.ref(self), self._cv), name="lorajit-sched",
                                            daemon=True)  # holds the scheduler only during a step
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stops the driver thread after its current step (requests stay queued or
        running; step them yourself or :meth:`start` again)."""
        with self._cv:
            self._quit = True
            self._cv.notify_all()
            t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join()

    def close(self) -> None:
        """Stops the driver, frees the scheduler (``lorajit_sched_free``: every
        request not finished ends "cancelled") and lets go of the engine. Idempotent."""
        if getattr(self, "_h", None) is None:
            return
        self.stop()
        with self._drive:
            self._collect()  # results that are ready are kept
            with self._lock:
                h, self._h = self._h, None
                if h is not None:
                    _lib.get("lorajit_sched_free")(h)
        for req in list(self._reqs.values()):
            req._finish(dict(id=req.id, tokens=list(req._tokens), finish_reason="cancelled",
                             n_prompt=len(req._prompt)))
        self._reqs = {}
        eng = self.engine
        if eng is not None:
            eng._schedulers.discard(self)
        _open.discard(self)

    def __repr__(self) -> str:
        state = "closed" if self._h is None else "%d live, driver %s" % (len(self._reqs), "on" if self.driving
                                                                          else "off")
        return "lorajit.Scheduler(%s)" % state


def _drive(ref: "weakref.ref[Scheduler]", cv: threading.Condition) -> None:
    """The driver thread's loop. It holds the scheduler only while it looks at it
    or steps (it sleeps on cv without it), so a scheduler dropped without close()
    is still collected, and closed."""
    while True:
        with cv:
            s = ref()
            idle = s is not None and not s._quit and not s._reqs
            del s
            if idle:
                cv.wait(0.5)
        s = ref()
        if s is None or not s._drive_once():
            return
        del s


def _engine_tokenizer(engine: Any) -> Any:
    """The engine's tokenizer when it has one open or its folder has tokenizer.json, else None."""
    import os
    if engine._tokenizer is not None or os.path.isfile(os.path.join(engine.model_dir, "tokenizer.json")):
        try:
            return engine.tokenizer
        except LorajitError:
            return None
    return None


def run_batch(engine: Any, requests: Sequence[Any], return_errors: bool, defaults: Mapping[str, Any]) -> List[Result]:
    """Engine.generate_batch: the requests through one scheduler, run until idle."""
    with Scheduler(engine) as sched:
        reqs = []
        for item in requests:
            kw = dict(defaults)
            if isinstance(item, Mapping):
                kw.update(item)
            else:
                kw["prompt_or_ids"] = item
            reqs.append(sched.submit(**kw))
        sched.run_until_idle()
        results = [r.result_or_error() for r in reqs]
    for i, r in enumerate(results):
        if r.finish_reason == "error" and not return_errors:
            raise RequestError("request %d of the batch: %s" % (i, r.error), r)
    return results
