"""Finding liblorajit.so and binding its ``lorajit_*`` functions through ctypes.

Lookup order: the environment variable ``LORAJIT_LIBRARY`` (a path to the
library), then ``pkg-config --variable=libdir lorajit`` (``LIBDIR/liblorajit.so``),
then ``ctypes.util.find_library("lorajit")``. The first that loads is used; when
none does, ``OSError`` names every place that was tried.

Functions are looked up on first use (:func:`get`), so a library that lacks some
symbol (an older build, or ``liblorajit_runtime.so``, which has no compiler) still
loads, and a call to the missing function raises
:class:`lorajit.MissingSymbolError` naming it.

The library is opened with :class:`ctypes.CDLL`, so ctypes releases the GIL for
the whole of every foreign call (forward, generate, ...) and other Python threads
run meanwhile; a ctypes callback (generate's ``on_token``) takes the GIL back
while its Python code runs.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
from typing import Any, Dict, List, Optional, Tuple, TypeVar

c_int = ctypes.c_int
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_float = ctypes.c_float
c_size_t = ctypes.c_size_t
c_int32 = ctypes.c_int32
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
c_double = ctypes.c_double
P = ctypes.POINTER


class Options(ctypes.Structure):
    """``lorajit_options`` (lorajit.h)."""
    _fields_ = [
        ("schema_path", c_char_p),
        ("max_rank", c_int),
        ("targets", c_char_p),
        ("max_adapters", c_int),
        ("max_tokens", c_int),
        ("max_batch", c_int),
        ("max_seq_len", c_int),
        ("kv_cache_mb", c_int),
        ("kv_block_size", c_int),
        ("threads", c_int),  # 0: OpenBLAS's count at open
        ("kv_dtype", c_char_p),  # None: "f32"; "f16", "bf16"
        ("lora_dtype", c_char_p),  # None: "f32"; "bf16", "f16"
    ]


class Stats(ctypes.Structure):
    """``lorajit_stats`` (lorajit.h)."""
    _fields_ = [
        ("compiles", c_int64), ("loads", c_int64), ("hotswaps", c_int64), ("deletes", c_int64),
        ("forwards", c_int64), ("failed_calls", c_int64), ("adapters", c_int64), ("active", c_int64),
        ("enabled", c_int), ("compile_ms", c_double),
        ("prefill_tokens", c_int64), ("decode_tokens", c_int64),
        ("prefill_ms", c_double), ("decode_ms", c_double),
        ("frontend_ms", c_double), ("plan_ms", c_double), ("codegen_ms", c_double),
        ("optimize_ms", c_double), ("jit_ms", c_double),
        ("jit_loads", c_int64), ("evictions", c_int64), ("host_hits", c_int64),
        ("threads", c_int),
    ]


class Sampling(ctypes.Structure):
    """``lorajit_sampling`` (lorajit.h), followed by zeroed spare bytes: a later
    library that appends fields whose zero means "off" reads zeros there."""
    _fields_ = [
        ("temperature", c_float), ("top_k", c_int), ("top_p", c_float),
        ("repetition_penalty", c_float), ("seed", c_uint64), ("eos_id", c_int),
        ("n_eos_more", c_int), ("eos_more", c_int32 * 8),
        ("_spare", ctypes.c_ubyte * 256),
    ]


class Request(ctypes.Structure):
    """``lorajit_request`` (lorajit.h)."""
    _fields_ = [
        ("prompt", P(c_int32)), ("n_prompt", c_int), ("adapter", c_char_p),
        ("max_new", c_int), ("out", P(c_int32)), ("n_out", c_int), ("stop", c_int),
    ]


TOKEN_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_int32)

# ---- the scheduler (lorajit_serving.h) ----
# lorajit_sched_token_fn: (user, request id, token) -> non-zero cancels the request
SCHED_TOKEN_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_int32)
# lorajit_sched_prompt_fn(user, id, n, lp, top_id, top_lp, top_n)
SCHED_PROMPT_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_int, P(c_float), P(c_int32), P(c_float), c_int)


class SchedOptions(ctypes.Structure):
    """``lorajit_sched_options`` (lorajit_serving.h); the admit hook stays NULL."""
    _fields_ = [
        ("token_budget", c_int), ("min_chunk", c_int), ("max_running", c_int),
        ("tokenizer", c_void_p), ("admit", c_void_p), ("admit_user", c_void_p),
    ]


class SchedRequest(ctypes.Structure):
    """``lorajit_sched_request`` (lorajit_serving.h); copied by lorajit_sched_submit."""
    _fields_ = [
        ("prompt", P(c_int32)), ("n_prompt", c_int),
        ("adapters", P(c_char_p)), ("weights", P(c_float)), ("n_adapters", c_int),
        ("max_new", c_int), ("sampling", P(Sampling)),
        ("stop_seqs", P(P(c_int32))), ("stop_lens", P(c_int)), ("n_stop_seqs", c_int),
        ("stop_strings", P(c_char_p)), ("n_stop_strings", c_int),
        ("on_token", SCHED_TOKEN_FN), ("user", c_void_p),
        ("prompt_logprobs", c_int), ("prompt_top_n", c_int), ("on_prompt", SCHED_PROMPT_FN),
    ]


class SchedResult(ctypes.Structure):
    """``lorajit_sched_result`` (lorajit_serving.h); tokens and token_ms are freed
    with lorajit_free by the taker."""
    _fields_ = [
        ("id", c_int64), ("finish", c_int), ("error", ctypes.c_char * 512),
        ("n_prompt", c_int), ("n_tokens", c_int),
        ("tokens", P(c_int32)), ("token_ms", P(c_double)),
        ("queue_ms", c_double), ("ttft_ms", c_double), ("total_ms", c_double),
    ]

# name -> (restype, argtypes)
_SIGS: Dict[str, Tuple[Any, List[Any]]] = {
    "lorajit_version": (c_char_p, []),
    "lorajit_status_str": (c_char_p, [c_int]),
    "lorajit_engine_open": (c_int, [P(c_void_p), c_char_p, P(Options)]),
    "lorajit_engine_open_artifact": (c_int, [P(c_void_p), c_char_p, c_char_p, P(Options)]),
    "lorajit_engine_free": (None, [c_void_p]),
    "lorajit_errmsg": (c_char_p, [c_void_p]),
    "lorajit_compiles_total": (c_int64, []),
    "lorajit_vocab_size": (c_int, [c_void_p]),
    "lorajit_max_tokens": (c_int, [c_void_p]),
    "lorajit_max_batch": (c_int, [c_void_p]),
    "lorajit_load_adapter": (c_int, [c_void_p, c_char_p, c_char_p]),
    "lorajit_register_adapter": (c_int, [c_void_p, c_char_p, c_char_p]),
    "lorajit_check_adapter": (c_int, [c_void_p, c_char_p, c_char_p]),
    "lorajit_set_adapter_dir": (c_int, [c_void_p, c_char_p]),
    "lorajit_set_adapter_cache": (c_int, [c_void_p, ctypes.c_size_t]),
    "lorajit_hotswap_adapter": (c_int, [c_void_p, c_char_p, c_char_p]),
    "lorajit_delete_adapter": (c_int, [c_void_p, c_char_p]),
    "lorajit_set_adapter": (c_int, [c_void_p, P(c_char_p), P(c_float), c_int]),
    "lorajit_enable_adapters": (c_int, [c_void_p]),
    "lorajit_disable_adapters": (c_int, [c_void_p]),
    "lorajit_forward": (c_int, [c_void_p, P(c_int32), c_int, P(c_float)]),
    "lorajit_get_stats": (c_int, [c_void_p, P(Stats)]),
    "lorajit_list_adapters": (c_int, [c_void_p, P(c_char_p), c_int]),
    "lorajit_generate": (c_int, [c_void_p, P(Request), c_int, P(Sampling), TOKEN_FN, c_void_p]),
    # text (issue 12)
    "lorajit_free": (None, [c_void_p]),
    "lorajit_tokenizer_open": (c_int, [P(c_void_p), c_char_p]),
    "lorajit_tokenizer_free": (None, [c_void_p]),
    "lorajit_tokenizer_errmsg": (c_char_p, [c_void_p]),
    "lorajit_tokenizer_encode": (c_int, [c_void_p, c_char_p, c_size_t, c_int, P(P(c_int32)), P(c_int)]),
    "lorajit_tokenizer_decode": (c_int, [c_void_p, P(c_int32), c_int, c_int, P(c_void_p), P(c_size_t)]),
    "lorajit_tokenizer_vocab_size": (c_int, [c_void_p]),
    "lorajit_tokenizer_token_id": (c_int32, [c_void_p, c_char_p]),
    "lorajit_tokenizer_bos_id": (c_int32, [c_void_p]),
    "lorajit_tokenizer_eos_ids": (c_int, [c_void_p, P(P(c_int32))]),
    "lorajit_detokenizer_open": (c_int, [P(c_void_p), c_void_p, c_int]),
    "lorajit_detokenizer_push": (c_int, [c_void_p, c_int32, P(c_void_p), P(c_size_t)]),
    "lorajit_detokenizer_flush": (c_int, [c_void_p, P(c_void_p), P(c_size_t)]),
    "lorajit_detokenizer_errmsg": (c_char_p, [c_void_p]),
    "lorajit_detokenizer_free": (None, [c_void_p]),
    "lorajit_tokenizer_apply_chat_template": (c_int, [c_void_p, c_char_p, c_int, P(c_void_p)]),
    "lorajit_tokenizer_apply_chat_template_vars": (c_int, [c_void_p, c_char_p, c_char_p, c_int, P(c_void_p)]),
    # the scheduler (issue 14)
    "lorajit_sched_open": (c_int, [c_void_p, P(SchedOptions), P(c_void_p)]),
    "lorajit_sched_free": (None, [c_void_p]),
    "lorajit_sched_submit": (c_int, [c_void_p, P(SchedRequest), P(c_int64)]),
    "lorajit_sched_cancel": (c_int, [c_void_p, c_int64]),
    "lorajit_sched_step": (c_int, [c_void_p, P(c_int)]),
    "lorajit_sched_run_until_idle": (c_int, [c_void_p]),
    "lorajit_sched_take": (c_int, [c_void_p, c_int64, P(SchedResult)]),
    "lorajit_finish_str": (c_char_p, [c_int]),
    "lorajit_sched_errmsg": (c_char_p, [c_void_p]),
}

_lock = threading.Lock()
_cdll: Optional[ctypes.CDLL] = None
_path: Optional[str] = None
_funcs: Dict[str, Any] = {}


def _candidates() -> List[Tuple[str, Optional[str]]]:
    """(description, path or None) for each place the library may be, in order."""
    out: List[Tuple[str, Optional[str]]] = []
    env = os.environ.get("LORAJIT_LIBRARY")
    out.append(("LORAJIT_LIBRARY=" + (env if env else "(unset)"), env or None))
    pc = shutil.which("pkg-config")
    if pc:
        try:
            r = subprocess.run([pc, "--variable=libdir", "lorajit"], capture_output=True, text=True, timeout=30)
            libdir = r.stdout.strip() if r.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            libdir = ""
        p = os.path.join(libdir, "liblorajit.so") if libdir else None
        out.append(("pkg-config lorajit (libdir %s)" % (p or "not found: is lorajit.pc on PKG_CONFIG_PATH?"), p))
    else:
        out.append(("pkg-config (not installed)", None))
    fl = ctypes.util.find_library("lorajit")
    out.append(("ctypes.util.find_library('lorajit') -> %s" % (fl or "None"), fl))
    return out


def load() -> ctypes.CDLL:
    """Returns the loaded library, loading it on first use (see the module doc)."""
    global _cdll, _path
    with _lock:
        if _cdll is not None:
            return _cdll
        tried = []
        for desc, path in _candidates():
            if not path:
                tried.append(desc)
                continue
            try:
                _cdll = ctypes.CDLL(path)
                _path = path
                return _cdll
            except OSError as e:
                tried.append("%s: %s" % (desc, e))
                if desc.startswith("LORAJIT_LIBRARY"):
                    # An explicit path that does not load is an error, not a hint.
                    break
        raise OSError("lorajit: cannot load liblorajit.so; tried:\n  " + "\n  ".join(tried)
                      + "\nSet LORAJIT_LIBRARY to the library's path (e.g. build/liblorajit.so).")


def library_path() -> str:
    """The path of the loaded library."""
    load()
    assert _path is not None
    return _path


def has(name: str) -> bool:
    """Whether the loaded library exports ``name``."""
    try:
        get(name)
        return True
    except AttributeError:
        return False


def get(name: str) -> Any:
    """The ctypes function ``name`` with its signature set. Raises
    :class:`lorajit.MissingSymbolError` (an AttributeError) when the library lacks it."""
    f = _funcs.get(name)
    if f is not None:
        return f
    lib = load()
    try:
        f = getattr(lib, name)
    except AttributeError:
        from .errors import MissingSymbolError
        hint = " (the tokenizer API came with issue 12)" if "tokenizer" in name or name == "lorajit_free" else ""
        raise MissingSymbolError("%s is not in %s: this build of lorajit lacks it%s" % (name, _path, hint)) from None
    restype, argtypes = _SIGS[name]
    f.restype = restype
    f.argtypes = argtypes
    _funcs[name] = f
    return f


def text(b: Optional[bytes]) -> str:
    """C text (UTF-8, may be NULL) as str."""
    return b.decode("utf-8", "replace") if b else ""


def fsencode(path: "os.PathLike[str] | str") -> bytes:
    """A path argument as bytes for C."""
    return os.fsencode(os.fspath(path))


_C = TypeVar("_C", bound="Closing")


class Closing:
    """A lorajit handle: freed by ``close()`` (the subclass's), also at the end of
    a ``with`` block and when the object is collected."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
