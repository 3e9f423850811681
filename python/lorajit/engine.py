"""The engine: a model compiled once, PEFT adapters loaded and swapped in its
slots, forward and generation. One method per C call (include/lorajit.h)."""
from __future__ import annotations

import ctypes
import json
import os
import threading
import weakref
from typing import (Any, Dict, List, Optional, Sequence, Tuple, Union)

from . import _lib
from .errors import ArgumentError, LorajitError, error_for
from .generation import GenerationMixin, int32s

try:  # numpy is optional: forward returns nested lists without it
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

PathLike = Union[str, "os.PathLike[str]"]


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


class Engine(_lib.Closing, GenerationMixin):
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
        lora_dtype: how the LoRA slots store A and B: "f32" (None: the adapter's
            values exactly, as PEFT), "bf16" or "f16" (rounded to nearest even as an
            adapter is written into a slot, widened to f32 as read: half the bytes a
            decode step reads per distinct adapter and a swap writes).
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
                 threads: Optional[int] = None, kv_dtype: Optional[str] = None,
                 lora_dtype: Optional[str] = None) -> None:
        self._setup(os.fspath(model_dir))
        opts = self._options(max_rank, target_modules, max_loras, max_batch, max_seq_len, max_tokens, schema,
                             kv_cache_mb, kv_block_size, threads, kv_dtype, lora_dtype)
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
        self._schedulers: "weakref.WeakSet[Any]" = weakref.WeakSet()  # closed before the engine

    @staticmethod
    def _options(max_rank: Optional[int], target_modules: Union[None, str, Sequence[str]], max_loras: Optional[int],
                 max_batch: Optional[int], max_seq_len: Optional[int], max_tokens: Optional[int],
                 schema: Optional[PathLike], kv_cache_mb: Optional[int] = None,
                 kv_block_size: Optional[int] = None, threads: Optional[int] = None,
                 kv_dtype: Optional[str] = None, lora_dtype: Optional[str] = None) -> _lib.Options:
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
        if lora_dtype is not None:
            o.lora_dtype = lora_dtype.encode("utf-8")  # checked by the library (options.lora_dtype)
        o._keep = (o.targets, o.schema_path, o.kv_dtype, o.lora_dtype)  # type: ignore[attr-defined]
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
        No other thread may be using the engine. Its schedulers are closed first."""
        for sched in list(getattr(self, "_schedulers", ())):
            sched.close()
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

    def check_adapter(self, model_id: PathLike, adapter_name: Optional[str] = None) -> None:
        """Reads the adapter folder ``model_id`` and checks it as :meth:`load_adapter`
        would, without taking a slot: nothing resident changes. When ``adapter_name``
        is registered (:meth:`register_adapter`) and not resident, the parsed copy is
        kept in host memory, so its first use is a copy, not a file read.

        Raises:
            FormatError, NotFoundError, ...: the folder does not hold an adapter this
            engine can take; the message names the file, tensor or field.
        """
        name = None if adapter_name is None else adapter_name.encode("utf-8")
        self._check(_lib.get("lorajit_check_adapter")(self._handle(), name, _lib.fsencode(os.fspath(model_id))))

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
        ids = int32s(input_ids)
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

    # ---- continuous batching (scheduler.py) ----
    def scheduler(self, max_running: Optional[int] = None, token_budget: Optional[int] = None,
                  min_chunk: Optional[int] = None, tokenizer: Any = None, start: bool = False) -> Any:
        """A :class:`lorajit.Scheduler` over this engine (``lorajit_sched_open``):
        requests submitted at any time share decode steps. ``start=True`` starts
        its background driver thread. Close it (or use ``with``) before the engine."""
        from .scheduler import Scheduler
        s = Scheduler(self, max_running=max_running, token_budget=token_budget, min_chunk=min_chunk,
                      tokenizer=tokenizer)
        return s.start() if start else s

    def generate_batch(self, requests: Sequence[Any], return_errors: bool = False, **defaults: Any) -> List[Any]:
        """Runs requests together through one scheduler; their :class:`lorajit.Result`
        list, in order. Each request is a prompt (text or ids) or a dict of
        :meth:`Scheduler.submit` arguments (``prompt_or_ids`` and any others);
        ``defaults`` are submit arguments for all (``adapter=["a", "b"]`` there is
        one set for every request; give per-request adapters in the dicts). A
        failed request raises :class:`lorajit.RequestError` (after all finished),
        unless ``return_errors``."""
        from .scheduler import run_batch
        return run_batch(self, requests, return_errors, defaults)

def version() -> str:
    """The running library's version (``lorajit_version``)."""
    return _lib.text(_lib.get("lorajit_version")())


def compiles_total() -> int:
    """Machine-code generations in this process so far (``lorajit_compiles_total``)."""
    return int(_lib.get("lorajit_compiles_total")())
