"""The engine: a model compiled once, PEFT adapters loaded and swapped in its
slots, forward and generation. One method per C call (include/lorajit.h)."""
from __future__ import annotations

import ctypes
import json
import os
import queue
import threading
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union)

from . import _lib
from .errors import ArgumentError, LorajitError, error_for

try:  # numpy is optional: forward returns nested lists without it
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

PathLike = Union[str, "os.PathLike[str]"]
AdapterSpec = Union[None, str, Sequence[str], Mapping[str, float]]
Stop = Union[None, int, str, Sequence[Union[int, str]]]


def _int32s(ids: Sequence[int]) -> "ctypes.Array[ctypes.c_int32]":
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


def _read_adapter_config(path: str) -> Dict[str, Any]:
    """What peft_config shows of an adapter: adapter_config.json's fields, as
    Python read them after lorajit accepted the folder."""
    try:
        with open(os.path.join(path, "adapter_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        cfg = {}
    keep = ("r", "lora_alpha", "use_rslora", "target_modules", "rank_pattern", "alpha_pattern",
            "layers_to_transform", "layers_pattern", "peft_type", "base_model_name_or_path")
    out: Dict[str, Any] = {"path": path}
    out.update({k: cfg[k] for k in keep if k in cfg})
    return out


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


class Engine(_lib.Closing):
    """A LLaMA-family model compiled once, serving PEFT LoRA adapters.

    The model in ``model_dir`` (Hugging Face layout: ``config.json`` and
    ``model.safetensors`` or a sharded set) is compiled once with LLVM, with LoRA
    slots of rank ``max_rank`` on ``target_modules``. Adapters saved by PEFT's
    ``save_pretrained`` are then loaded, activated, combined, disabled, hot-swapped
    and deleted with PEFT's verbs, which only write the slots: nothing is ever
    recompiled (``stats["compiles"]`` stays 1).

    Args:
        model_dir: the model folder.
        max_rank: the highest LoRA rank an adapter may have (None: the schema's,
            else 64).
        target_modules: the projections that carry LoRA slots, a list such as
            ``["q_proj", "v_proj"]`` or a comma string (None: the schema's, else
            every linear of the architecture: LLaMA's seven, Phi-3's four).
        max_loras: adapters resident at once (slots; None: the schema's, else 8;
            at most 64).
        max_batch: sequences that can generate at once (None: 4).
        max_seq_len: KV-cache positions per sequence (None:
            min(max_position_embeddings, 4096)).
        max_tokens: tokens per forward call (None: min(max_position_embeddings, 4096)).
        kv_cache_mb: MiB for the paged KV cache's blocks (None: what max_batch
            sequences of max_seq_len positions take).
        kv_block_size: positions per KV cache block, a power of two (None: 16).
        kv_dtype: how the KV cache stores keys and values: "f32" (None), "f16" or
            "bf16" (half the bytes: the same kv_cache_mb holds twice the blocks).
        threads: compute threads of the engine's pool, 1..256 (None: OpenBLAS's
            count at open: ``OPENBLAS_NUM_THREADS``, else every core).
        schema: an adapter schema JSON file (``{"max_rank", "target_modules",
            "max_adapters"}``); the arguments above override it.

    Raises:
        LorajitIOError, FormatError, ShapeError: the model's files (named).
        UnsupportedError: a config lorajit does not serve (the field is named).
        CompileError: LLVM failed.

    Example::

        >>> import lorajit
        >>> with lorajit.Engine("models/llama", max_rank=16, target_modules=["q_proj", "v_proj"]) as model:
        ...     model.load_adapter("adapters/sql", adapter_name="sql")
        ...     model.set_adapter("sql")
        ...     logits = model.forward([1, 2, 3])        # numpy float32 [3, vocab]

    Threads: any number of threads may call :meth:`forward`, :meth:`generate` and
    :meth:`stream` at once, while another loads or swaps adapters; the GIL is
    released for the whole of each call into lorajit. Call :meth:`close` after
    every other thread is done.
    """

    def __init__(self, model_dir: PathLike, max_rank: Optional[int] = None,
                 target_modules: Union[None, str, Sequence[str]] = None, max_loras: Optional[int] = None,
                 max_batch: Optional[int] = None, max_seq_len: Optional[int] = None,
                 max_tokens: Optional[int] = None, schema: Optional[PathLike] = None,
                 kv_cache_mb: Optional[int] = None, kv_block_size: Optional[int] = None,
                 threads: Optional[int] = None, kv_dtype: Optional[str] = None) -> None:
        self._setup(os.fspath(model_dir))
        opts = self._options(max_rank, target_modules, max_loras, max_batch, max_seq_len, max_tokens, schema,
                             kv_cache_mb, kv_block_size, threads, kv_dtype)
        h = ctypes.c_void_p()
        st = _lib.get("lorajit_engine_open")(ctypes.byref(h), _lib.fsencode(model_dir), ctypes.byref(opts))
        self._adopt(h, st)

    @classmethod
    def from_artifact(cls, artifact_dir: PathLike, model_dir: PathLike) -> "Engine":
        """Opens an artifact made by ``lorajit compile`` (C:
        ``lorajit_compile_artifact``) with the weights of ``model_dir``, without
        compiling (``stats["compiles"]`` is 0). The schema is the artifact's.

        Raises:
            FormatError, UnsupportedError, ...: a manifest, library, config or CPU
                that does not match (the message names what differs).
        """
        self = cls.__new__(cls)
        self._setup(os.fspath(model_dir))
        h = ctypes.c_void_p()
        st = _lib.get("lorajit_engine_open_artifact")(ctypes.byref(h), _lib.fsencode(artifact_dir),
                                                       _lib.fsencode(model_dir), None)
        self._adopt(h, st)
        return self

    # ---- plumbing ----
    def _setup(self, model_dir: str) -> None:
        self._h: Optional[int] = None
        self.model_dir = model_dir
        self._wlock = threading.RLock()  # writer calls and the Python view of the adapter state
        self._paths: Dict[str, str] = {}
        self._configs: Dict[str, Dict[str, Any]] = {}
        self._active: List[Tuple[str, float]] = []
        self._tokenizer: Any = None

    @staticmethod
    def _options(max_rank: Optional[int], target_modules: Union[None, str, Sequence[str]], max_loras: Optional[int],
                 max_batch: Optional[int], max_seq_len: Optional[int], max_tokens: Optional[int],
                 schema: Optional[PathLike], kv_cache_mb: Optional[int] = None,
                 kv_block_size: Optional[int] = None, threads: Optional[int] = None,
                 kv_dtype: Optional[str] = None) -> _lib.Options:
        o = _lib.Options()
        for field, v in (("max_rank", max_rank), ("max_adapters", max_loras), ("max_batch", max_batch),
                         ("max_seq_len", max_seq_len), ("max_tokens", max_tokens), ("kv_cache_mb", kv_cache_mb),
                         ("kv_block_size", kv_block_size), ("threads", threads)):
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ArgumentError("%s must be a positive int, got %r"
                                        % ({"max_adapters": "max_loras"}.get(field, field), v))
                setattr(o, field, v)
        if target_modules is not None:
            t = target_modules if isinstance(target_modules, str) else ",".join(target_modules)
            o.targets = t.encode("utf-8")
        if schema is not None:
            o.schema_path = _lib.fsencode(schema)
        if kv_dtype is not None:
            o.kv_dtype = kv_dtype.encode("utf-8")  # checked by the library (options.kv_dtype)
        o._keep = (o.targets, o.schema_path, o.kv_dtype)  # type: ignore[attr-defined]
        return o

    def _adopt(self, h: ctypes.c_void_p, st: int) -> None:
        if st != 0:
            msg = _lib.text(_lib.get("lorajit_errmsg")(h)) if h.value else "out of memory"
            _lib.get("lorajit_engine_free")(h)
            raise error_for(st, msg)
        self._h = h.value

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise LorajitError("the engine is closed")
        return h

    def _check(self, st: int) -> None:
        """Raises for a failed call; run on the thread that made it (lorajit's
        messages are per thread)."""
        if st != 0:
            raise error_for(st, _lib.text(_lib.get("lorajit_errmsg")(self._h)))

    def close(self) -> None:
        """Frees the engine (``lorajit_engine_free``) and its tokenizer. Idempotent.
        No other thread may be using the engine."""
        with self._wlock:
            h, self._h = self._h, None
            tok, self._tokenizer = self._tokenizer, None
        if h is not None:
            _lib.get("lorajit_engine_free")(h)
        if tok is not None and hasattr(tok, "close"):
            tok.close()

    def __repr__(self) -> str:
        state = "closed" if self._h is None else "vocab=%d, adapters=%s" % (self.vocab_size, list(self._paths))
        return "lorajit.Engine(%r, %s)" % (self.model_dir, state)

    # ---- model facts ----
    @property
    def vocab_size(self) -> int:
        """The vocabulary size (the logits' last dimension)."""
        return int(_lib.get("lorajit_vocab_size")(self._handle()))

    @property
    def max_tokens(self) -> int:
        """Tokens per forward call."""
        return int(_lib.get("lorajit_max_tokens")(self._handle()))

    @property
    def max_batch(self) -> int:
        """Sequences (requests) that can generate at once."""
        return int(_lib.get("lorajit_max_batch")(self._handle()))

    # ---- PEFT's verbs ----
    def load_adapter(self, model_id: PathLike, adapter_name: str, is_trainable: bool = False) -> None:
        """Loads the PEFT adapter saved in folder ``model_id``
        (``adapter_config.json`` + ``adapter_model.safetensors``) under
        ``adapter_name``, into a free slot. It is not activated (as PEFT's
        ``PeftModel.load_adapter``): call :meth:`set_adapter`.

        Args:
            model_id: the adapter folder (a local path; nothing is downloaded).
            adapter_name: the name to load it under.
            is_trainable: must be False (lorajit serves; it does not train).

        Raises:
            ExistsError: ``adapter_name`` is already loaded.
            FullError: every slot holds an adapter (see ``max_loras``).
            LorajitIOError, FormatError, ShapeError, UnsupportedError: the folder
                (the file, tensor or field is named). Nothing changes on failure.

        Example::

            >>> model.load_adapter("adapters/sql", adapter_name="sql")
        """
        if is_trainable:
            raise ArgumentError("is_trainable=True: lorajit serves adapters; it does not train them")
        path = os.fspath(model_id)
        with self._wlock:
            self._check(_lib.get("lorajit_load_adapter")(self._handle(), adapter_name.encode("utf-8"),
                                                         _lib.fsencode(path)))
            self._paths[adapter_name] = path
            self._configs[adapter_name] = _read_adapter_config(path)

    def register_adapter(self, model_id: PathLike, adapter_name: str) -> None:
        """Makes ``adapter_name`` known as the adapter in folder ``model_id``
        without loading it: it is loaded just in time when a call names it
        (:meth:`set_adapter`, a :meth:`generate` request), evicting the least
        recently used adapter loaded that way when every slot is taken. Adapters
        loaded with :meth:`load_adapter` are never evicted.

        Raises:
            ExistsError: the name is loaded or registered already.
            NotFoundError: ``model_id`` is not a directory.
        """
        with self._wlock:
            self._check(_lib.get("lorajit_register_adapter")(self._handle(), adapter_name.encode("utf-8"),
                                                             _lib.fsencode(os.fspath(model_id))))

    def set_adapter_dir(self, root: Optional[PathLike]) -> None:
        """Any adapter name that is neither loaded nor registered means the folder
        ``root/NAME``, loaded just in time (as :meth:`register_adapter`). None: no folder."""
        with self._wlock:
            self._check(_lib.get("lorajit_set_adapter_dir")(self._handle(),
                                                            None if root is None else _lib.fsencode(os.fspath(root))))

    def set_adapter_cache(self, host_bytes: int) -> None:
        """Host memory (bytes) for parsed copies of adapters read lately, so that a
        re-load after an eviction is a copy, not a file read (default 256 MiB)."""
        self._check(_lib.get("lorajit_set_adapter_cache")(self._handle(), int(host_bytes)))

    def hotswap_adapter(self, model_id: PathLike, adapter_name: str) -> None:
        """Replaces the weights of the loaded adapter ``adapter_name`` with those
        in folder ``model_id`` (as ``peft.utils.hotswap.hotswap_adapter(model,
        model_id, adapter_name)``). Rank, alpha and target modules may differ
        (within the schema); an active adapter stays active with its new weights.

        Raises:
            NotFoundError: no adapter of that name is loaded.
            FormatError, ShapeError, UnsupportedError, LorajitIOError: the folder.
                Nothing changes on failure.
        """
        path = os.fspath(model_id)
        with self._wlock:
            self._check(_lib.get("lorajit_hotswap_adapter")(self._handle(), adapter_name.encode("utf-8"),
                                                            _lib.fsencode(path)))
            self._paths[adapter_name] = path
            self._configs[adapter_name] = _read_adapter_config(path)

    def set_adapter(self, adapter_name: Union[str, Sequence[str]], weights: Optional[Sequence[float]] = None) -> None:
        """Makes ``adapter_name`` (a name or a list of names) the active set.

        With several names their terms add up: ``y = W x + sum_i weights[i] *
        scale_i * B_i A_i x`` (PEFT's ``set_adapter([...])`` with weights all 1).
        Weights give PEFT's ``add_weighted_adapter(names, weights, "combo",
        combination_type="cat")`` followed by ``set_adapter("combo")`` without
        making a new adapter (for "cat" the combined adapter's term is exactly
        that sum).

        Args:
            adapter_name: one name, or a list of names (an empty list: none).
            weights: one float per name (None: all 1).

        Raises:
            NotFoundError: a name is not loaded (named); nothing changes.
            ArgumentError: weights do not match the names.

        Example::

            >>> model.set_adapter(["sql", "chat"], weights=[1.0, 0.5])
        """
        names = [adapter_name] if isinstance(adapter_name, str) else [str(n) for n in adapter_name]
        if weights is None:
            ws = [1.0] * len(names)
        else:
            ws = [float(w) for w in weights]
            if len(ws) != len(names):
                raise ArgumentError("set_adapter: %d weights for %d adapters" % (len(ws), len(names)))
        c_names = (ctypes.c_char_p * max(1, len(names)))(*[n.encode("utf-8") for n in names])
        c_w = (ctypes.c_float * max(1, len(ws)))(*ws)
        with self._wlock:
            self._check(_lib.get("lorajit_set_adapter")(self._handle(), c_names,
                                                        c_w if weights is not None else None, len(names)))
            self._active = list(zip(names, ws))

    def enable_adapters(self) -> None:
        """The active set applies again after :meth:`disable_adapters`."""
        with self._wlock:
            self._check(_lib.get("lorajit_enable_adapters")(self._handle()))

    def disable_adapters(self) -> None:
        """Forward and generation give exactly the base model (bit for bit),
        whatever is loaded or active, until :meth:`enable_adapters`."""
        with self._wlock:
            self._check(_lib.get("lorajit_disable_adapters")(self._handle()))

    def delete_adapter(self, adapter_name: str) -> None:
        """Unloads ``adapter_name`` and frees its slot; it leaves the active set.

        Raises:
            NotFoundError: no adapter of that name is loaded.
        """
        with self._wlock:
            self._check(_lib.get("lorajit_delete_adapter")(self._handle(), adapter_name.encode("utf-8")))
            self._paths.pop(adapter_name, None)
            self._configs.pop(adapter_name, None)
            self._active = [(n, w) for n, w in self._active if n != adapter_name]

    @property
    def active_adapters(self) -> List[str]:
        """The names in the active set (as set by :meth:`set_adapter`; still listed
        while adapters are disabled, as in PEFT)."""
        with self._wlock:
            return [n for n, _ in self._active]

    @property
    def active_adapter_weights(self) -> Dict[str, float]:
        """The active set with each name's weight."""
        with self._wlock:
            return dict(self._active)

    @property
    def adapters_enabled(self) -> bool:
        """False after :meth:`disable_adapters` until :meth:`enable_adapters`."""
        return bool(self.stats["enabled"])

    @property
    def peft_config(self) -> Dict[str, Dict[str, Any]]:
        """Resident adapters, name -> info (read-only copy, like PEFT's
        ``peft_config``): ``path`` (the folder it was loaded or hot-swapped from)
        and ``r``, ``lora_alpha``, ``use_rslora``, ``target_modules``... from that
        folder's ``adapter_config.json``. The names come from
        ``lorajit_list_adapters``; the C API does not report rank or alpha."""
        with self._wlock:
            n = int(_lib.get("lorajit_list_adapters")(self._handle(), None, 0))
            arr = (ctypes.c_char_p * max(1, n))()
            n = min(n, int(_lib.get("lorajit_list_adapters")(self._handle(), arr, n)))
            names = [_lib.text(arr[i]) for i in range(n)]
            return {name: dict(self._configs.get(name, {"path": self._paths.get(name)})) for name in names}

    # ---- compute ----
    def forward(self, input_ids: Sequence[int]) -> Any:
        """Logits of every position of ``input_ids`` (from position 0) with the
        active adapters (``lorajit_forward``).

        Args:
            input_ids: token ids (a list or a 1-D array), at most :attr:`max_tokens`.

        Returns:
            numpy.ndarray float32 of shape ``[len(input_ids), vocab_size]`` (a list
            of lists of floats when numpy is not installed).

        Raises:
            ArgumentError: no ids, too many, or an id outside the vocabulary.
            FormatError: the logits came out NaN or Inf (the position is named).
        """
        ids = _int32s(input_ids)
        n, vocab = len(ids), self.vocab_size
        f = _lib.get("lorajit_forward")
        if _np is not None:
            out = _np.empty((n, vocab), dtype=_np.float32)
            self._check(f(self._handle(), ids, n, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
            return out
        buf = (ctypes.c_float * max(1, n * vocab))()
        self._check(f(self._handle(), ids, n, buf))
        return [list(buf[r * vocab:(r + 1) * vocab]) for r in range(n)]

    @property
    def stats(self) -> Dict[str, Any]:
        """The engine's counters (``lorajit_get_stats``): compiles, loads,
        hotswaps, deletes, forwards, failed_calls, adapters, active, enabled,
        compile_ms, prefill/decode tokens and ms, and the compile stage times."""
        st = _lib.Stats()
        self._check(_lib.get("lorajit_get_stats")(self._handle(), ctypes.byref(st)))
        return {name: getattr(st, name) for name, _ in _lib.Stats._fields_}

    # ---- tokenizer ----
    @property
    def tokenizer(self) -> Any:
        """The model folder's :class:`lorajit.Tokenizer`, opened on first use.
        May be replaced by assigning any object with the same methods."""
        with self._wlock:
            if self._tokenizer is None:
                from .tokenizer import Tokenizer
                self._tokenizer = Tokenizer(self.model_dir)
            return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tok: Any) -> None:
        with self._wlock:
            self._tokenizer = tok

    # ---- generation ----
    def _run_generate(self, prompts: List[List[int]], adapters: List[Optional[bytes]], max_new_tokens: int,
                      sampling: _lib.Sampling, on_token: Optional[Callable[[int, int], None]]) -> List[List[int]]:
        """One lorajit_generate over the requests; the ids each produced."""
        n = len(prompts)
        reqs = (_lib.Request * max(1, n))()
        keep = []
        for i, (p, a) in enumerate(zip(prompts, adapters)):
            parr = _int32s(p)
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


def version() -> str:
    """The running library's version (``lorajit_version``)."""
    return _lib.text(_lib.get("lorajit_version")())


def compiles_total() -> int:
    """Machine-code generations in this process so far (``lorajit_compiles_total``)."""
    return int(_lib.get("lorajit_compiles_total")())
