"""Generation for :class:`lorajit.Engine` (a mixin, kept apart from engine.py to
keep each file short): ``generate`` and ``stream`` over ``lorajit_generate``, text in
and out through the engine's tokenizer, stop ids and stop strings."""
from __future__ import annotations

import ctypes
import queue
import threading
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _lib
from .errors import ArgumentError

AdapterSpec = Union[None, str, Sequence[str], Mapping[str, float]]
Stop = Union[None, int, str, Sequence[Union[int, str]]]


def int32s(ids: Sequence[int]) -> "ctypes.Array[ctypes.c_int32]":
    vals = [int(i) for i in ids]
    return (ctypes.c_int32 * len(vals))(*vals)


def _adapter_spec(adapter: AdapterSpec) -> Optional[bytes]:
    """generate's adapter= as lorajit_request.adapter: None follows the engine's
    active set, "" is the base model, "a" / "a:0.5,b:1" as lorajit writes it, a list
    of names (weight 1 each) or a dict name -> weight."""
    if adapter is None:
        return None
    if isinstance(adapter, str):
        return adapter.encode("utf-8")
    if isinstance(adapter, Mapping):
        return ",".join("%s:%r" % (k, float(w)) for k, w in adapter.items()).encode("utf-8")
    return ",".join(str(a) for a in adapter).encode("utf-8")


class _StopText:
    """Cuts streamed text at the first stop string, holding back a tail that could
    still become one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buf = ""
        self.done = False

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        self.buf += piece
        cut = min((i for i in (self.buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.buf, self.done = self.buf[:cut], "", True
            return out
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), 0, -1):
                if self.buf.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        out, self.buf = self.buf[:len(self.buf) - hold], self.buf[len(self.buf) - hold:]
        return out

    def finish(self) -> str:
        out, self.buf = ("" if self.done else self.buf), ""
        return out


class GenerationMixin:
    """generate / stream; the class using it provides _handle, _check and tokenizer."""

    # ---- generation ----
    def _run_generate(self, prompts: List[List[int]], adapters: List[Optional[bytes]], max_new_tokens: int,
                      sampling: _lib.Sampling, on_token: Optional[Callable[[int, int], None]]) -> List[List[int]]:
        """One lorajit_generate over the requests; the ids each produced."""
        n = len(prompts)
        reqs = (_lib.Request * max(1, n))()
        keep = []
        for i, (p, a) in enumerate(zip(prompts, adapters)):
            parr = int32s(p)
            out = (ctypes.c_int32 * max(1, max_new_tokens))()
            keep.append((parr, out, a))
            reqs[i].prompt, reqs[i].n_prompt, reqs[i].adapter = parr, len(parr), a
            reqs[i].max_new, reqs[i].out, reqs[i].n_out = max_new_tokens, out, 0
        cb = _lib.TOKEN_FN((lambda user, r, t: on_token(int(r), int(t))) if on_token else 0)
        self._check(_lib.get("lorajit_generate")(self._handle(), reqs, n, ctypes.byref(sampling), cb, None))
        return [list(keep[i][1][:reqs[i].n_out]) for i in range(n)]

    def _prepare(self, prompt_or_ids: Union[str, Sequence[int]], stop: Stop, text: bool
                 ) -> Tuple[List[int], List[int], List[str]]:
        """(prompt ids, stop ids, stop strings) for one request."""
        stops: List[Union[int, str]] = [] if stop is None else ([stop] if isinstance(stop, (int, str)) else list(stop))
        stop_ids = [int(s) for s in stops if not isinstance(s, str)]
        stop_strs = [s for s in stops if isinstance(s, str)]
        if text:
            tok = self.tokenizer
            ids = list(tok.encode(prompt_or_ids, add_special_tokens=True))
            stop_ids += [i for i in tok.eos_token_ids if i not in stop_ids]
        else:
            if stop_strs:
                raise ArgumentError("generate: stop strings need a text prompt (got ids)")
            ids = [int(i) for i in prompt_or_ids]  # type: ignore[union-attr]
        return ids, stop_ids, stop_strs

    @staticmethod
    def _sampling(temperature: float, top_p: float, top_k: int, seed: int, repetition_penalty: float,
                  stop_ids: List[int]) -> _lib.Sampling:
        s = _lib.Sampling()
        s.temperature, s.top_p, s.top_k = float(temperature), float(top_p), int(top_k)
        s.repetition_penalty, s.seed = float(repetition_penalty), int(seed)
        # lorajit stops at eos_id and up to 8 more (eos_more); any further stop id is cut afterwards.
        s.eos_id = stop_ids[0] if stop_ids else -1
        more = stop_ids[1:1 + len(s.eos_more)]
        s.n_eos_more = len(more)
        for i, v in enumerate(more):
            s.eos_more[i] = v
        return s

    def generate(self, prompt_or_ids: Union[str, Sequence[int], Sequence[str], Sequence[Sequence[int]]],
                 adapter: Union[AdapterSpec, Sequence[AdapterSpec]] = None, max_new_tokens: int = 64,
                 temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, seed: int = 0, stop: Stop = None,
                 repetition_penalty: float = 1.0) -> Any:
        """Generates a continuation (``lorajit_generate``: prefill, then batched
        decode steps with a KV cache).

        Args:
            prompt_or_ids: a text (encoded with :attr:`tokenizer`, special tokens
                added), or a list of token ids; or a list of either for a batch
                (at most :attr:`max_batch`), each request with its own adapters.
            adapter: which adapters this request uses, like PEFT's
                ``adapter_names=`` per row: None follows the engine's active set;
                ``""`` is the base model; ``"sql"``, ``"sql:1,chat:0.5"``, a list of
                names or a dict name -> weight. For a batch, a list with one of
                these per request (give a set shared by every request as a string
                or a dict).
            max_new_tokens: the most tokens to generate.
            temperature: 0 is greedy (ties to the lowest id).
            top_p, top_k: nucleus and top-k filtering (1 and 0: off).
            seed: the sampling seed (same seed, same tokens).
            stop: an id, a string (text prompts only) or a list of them; the
                tokenizer's EOS ids are added for a text prompt.
            repetition_penalty: CTRL-style (1: off).

        Returns:
            For a text prompt, the generated text (without the prompt, cut before
            a stop id or stop string). For ids, the generated ids (without the
            prompt; up to and including a stop id). A list of those for a batch.

        Raises:
            NotFoundError: an unknown adapter name. ArgumentError: a prompt too
            long for the KV cache, a bad id, more requests than ``max_batch``.

        Example::

            >>> model.generate("Once upon a time", max_new_tokens=40)
            ', there was a little girl named Lily...'
            >>> model.generate([1, 2, 3], adapter="sql", max_new_tokens=8)
            [17, 4, ...]
        """
        batch = (not isinstance(prompt_or_ids, str) and len(prompt_or_ids) > 0
                 and not isinstance(prompt_or_ids[0], int) and not _is_int(prompt_or_ids[0]))
        prompts = list(prompt_or_ids) if batch else [prompt_or_ids]
        if batch:
            # a list (not a tuple, str or dict) of len(prompts) gives each request its own
            adapters = list(adapter) if isinstance(adapter, list) and len(adapter) == len(prompts) \
                else [adapter] * len(prompts)
        else:
            adapters = [adapter]
        texts = [isinstance(p, str) for p in prompts]
        prepared = [self._prepare(p, stop, t) for p, t in zip(prompts, texts)]
        stop_ids = prepared[0][1]
        s = self._sampling(temperature, top_p, top_k, seed, repetition_penalty, stop_ids)
        outs = self._run_generate([p[0] for p in prepared], [_adapter_spec(a) for a in adapters],
                                  int(max_new_tokens), s, None)
        results = []
        for (ids, sids, sstrs), t, new in zip(prepared, texts, outs):
            if t:
                results.append("".join(self._text_pieces(ids, new, sids, sstrs)))
            else:
                results.append(_cut_ids(new, sids))
        return results if batch else results[0]

    def stream(self, prompt_or_ids: Union[str, Sequence[int]], adapter: AdapterSpec = None,
               max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0,
               seed: int = 0, stop: Stop = None, repetition_penalty: float = 1.0) -> Iterator[Union[str, int]]:
        """Like :meth:`generate` for one prompt, yielding as tokens are produced:
        text pieces for a text prompt (their concatenation is what
        :meth:`generate` returns), ids for ids.

        Generation runs in a worker thread; lorajit calls back for each token.
        Leaving the loop early stops the yielding; the worker still finishes its
        request (up to ``max_new_tokens``) before the iterator closes.

        Example::

            >>> for piece in model.stream("Once upon a time", max_new_tokens=40):
            ...     print(piece, end="", flush=True)
        """
        text = isinstance(prompt_or_ids, str)
        ids, stop_ids, stop_strs = self._prepare(prompt_or_ids, stop, text)
        s = self._sampling(temperature, top_p, top_k, seed, repetition_penalty, stop_ids)
        spec = _adapter_spec(adapter)
        q: "queue.Queue[Tuple[str, Any]]" = queue.Queue()

        def work() -> None:
            try:
                self._run_generate([ids], [spec], int(max_new_tokens), s, lambda r, t: q.put(("id", t)))
                q.put(("end", None))
            except BaseException as e:  # raised again in the consumer's thread
                q.put(("error", e))

        def token_ids() -> Iterator[int]:
            while True:
                kind, v = q.get()
                if kind == "id":
                    yield v
                elif kind == "error":
                    raise v
                else:
                    return

        worker = threading.Thread(target=work, name="lorajit-stream", daemon=True)
        worker.start()
        try:
            if text:
                yield from self._text_pieces(ids, token_ids(), stop_ids, stop_strs)
            else:
                for t in token_ids():
                    yield t
                    if t in stop_ids:
                        break
        finally:
            worker.join()

    def _text_pieces(self, prompt: List[int], new_ids: "Iterator[int] | List[int]", stop_ids: List[int],
                     stop_strs: List[str]) -> Iterator[str]:
        """The text of new_ids as a continuation of prompt, piece by piece: a
        streaming decoder is fed the prompt first (its text dropped), then each new
        id; stops at a stop id (not decoded) or before a stop string."""
        dec = self.tokenizer.stream_decoder(skip_special_tokens=True)
        try:
            for t in prompt:
                dec.push(t)
            cut = _StopText(stop_strs)
            for t in new_ids:
                if t in stop_ids:
                    break
                piece = cut.feed(dec.push(t))
                if piece:
                    yield piece
                if cut.done:
                    return
            piece = cut.feed(dec.flush())
            if piece:
                yield piece
            piece = cut.finish()
            if piece:
                yield piece
        finally:
            if hasattr(dec, "close"):
                dec.close()



def _is_int(x: Any) -> bool:
    try:
        return int(x) == x and not isinstance(x, (str, bytes, list, tuple))
    except (TypeError, ValueError):
        return False


def _cut_ids(ids: List[int], stop_ids: List[int]) -> List[int]:
    for i, t in enumerate(ids):
        if t in stop_ids:
            return ids[:i + 1]
    return ids
