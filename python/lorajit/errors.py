"""Exceptions: one class per ``lorajit_status``, each carrying lorajit's message.

Every class derives from :class:`LorajitError` and also from the built-in
exception a Python caller would expect, so ``except KeyError`` catches an unknown
adapter name and ``except ValueError`` a malformed file or a bad argument.

==========================  =====================  ==========================
lorajit_status              class                  also a
==========================  =====================  ==========================
LORAJIT_E_IO                LorajitIOError         OSError
LORAJIT_E_FORMAT            FormatError            ValueError
LORAJIT_E_SHAPE             ShapeError             ValueError
LORAJIT_E_UNSUPPORTED       UnsupportedError       ValueError
LORAJIT_E_NOT_FOUND         NotFoundError          KeyError
LORAJIT_E_EXISTS            ExistsError            ValueError
LORAJIT_E_FULL              FullError              RuntimeError
LORAJIT_E_NOMEM             LorajitMemoryError     MemoryError
LORAJIT_E_ARG               ArgumentError          ValueError
LORAJIT_E_COMPILE           CompileError           RuntimeError
(symbol not in the library) MissingSymbolError     AttributeError
(a scheduled request ended  RequestError           -
 with finish "error")
==========================  =====================  ==========================
"""
from __future__ import annotations

from typing import Dict, Type

# lorajit_status values (lorajit.h)
OK = 0
E_IO, E_FORMAT, E_SHAPE, E_UNSUPPORTED, E_NOT_FOUND, E_EXISTS, E_FULL, E_NOMEM, E_ARG, E_COMPILE = range(1, 11)


class LorajitError(Exception):
    """Base of every lorajit error.

    Attributes:
        status: the ``lorajit_status`` code (an int; 0 for errors raised by the
            binding itself).
        message: lorajit's message (``lorajit_errmsg``), naming the file, tensor,
            field or adapter.
    """
    status: int = 0

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        if status:
            self.status = status

    def __str__(self) -> str:  # KeyError would quote it
        return self.message


class LorajitIOError(LorajitError, OSError):
    """A file could not be opened, read or mapped (LORAJIT_E_IO)."""
    status = E_IO


class FormatError(LorajitError, ValueError):
    """A file is malformed, or the logits came out NaN/Inf (LORAJIT_E_FORMAT)."""
    status = E_FORMAT


class ShapeError(LorajitError, ValueError):
    """A tensor's shape does not fit the model (LORAJIT_E_SHAPE)."""
    status = E_SHAPE


class UnsupportedError(LorajitError, ValueError):
    """Valid input that lorajit cannot represent (LORAJIT_E_UNSUPPORTED)."""
    status = E_UNSUPPORTED


class NotFoundError(LorajitError, KeyError):
    """A named adapter, tensor or file does not exist (LORAJIT_E_NOT_FOUND)."""
    status = E_NOT_FOUND


class ExistsError(LorajitError, ValueError):
    """An adapter of that name is already loaded (LORAJIT_E_EXISTS)."""
    status = E_EXISTS


class FullError(LorajitError, RuntimeError):
    """Every adapter slot is in use (LORAJIT_E_FULL): delete one first."""
    status = E_FULL


class LorajitMemoryError(LorajitError, MemoryError):
    """An allocation failed (LORAJIT_E_NOMEM)."""
    status = E_NOMEM


class ArgumentError(LorajitError, ValueError):
    """A bad argument: out of range, too many tokens, a sequence in use (LORAJIT_E_ARG)."""
    status = E_ARG


class CompileError(LorajitError, RuntimeError):
    """LLVM failed to build, optimise or JIT the model (LORAJIT_E_COMPILE)."""
    status = E_COMPILE


class MissingSymbolError(LorajitError, AttributeError):
    """The loaded liblorajit.so lacks a function this call needs (an older build,
    or the runtime-only library)."""


class RequestError(LorajitError):
    """A scheduled request finished with an error (its adapter failed to load, the
    logits came out NaN/Inf, ...): the scheduler reports a message, no status.

    Attributes:
        result: the request's :class:`lorajit.Result` (finish_reason "error", the
            tokens made before the error).
    """

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


BY_STATUS: Dict[int, Type[LorajitError]] = {
    c.status: c for c in (LorajitIOError, FormatError, ShapeError, UnsupportedError, NotFoundError,
                          ExistsError, FullError, LorajitMemoryError, ArgumentError, CompileError)
}


def error_for(status: int, message: str) -> LorajitError:
    """The exception for a failed call: its class from status, its text from message."""
    cls = BY_STATUS.get(status, LorajitError)
    if not message:
        message = "lorajit status %d" % status
    return cls(message, status)
