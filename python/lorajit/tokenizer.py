"""Hugging Face tokenizers and chat templates through lorajit's tokenizer API
(``lorajit_tokenizer_*``, ``lorajit_detokenizer_*``).

The functions are bound when first used: with a liblorajit.so that lacks them,
opening a :class:`Tokenizer` raises :class:`lorajit.MissingSymbolError`.
"""
from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _lib
from .errors import LorajitError, error_for


def _ids_array(ids: Sequence[int]) -> "ctypes.Array[ctypes.c_int32]":
    return (ctypes.c_int32 * len(ids))(*[int(i) for i in ids])


class Tokenizer(_lib.Closing):
    """A Hugging Face tokenizer (``tokenizer.json`` and its companion files).

    Encodes and decodes as Hugging Face ``tokenizers`` does, and renders the
    chat template of ``tokenizer_config.json`` as ``transformers``'
    ``apply_chat_template`` does. Any number of threads may use one tokenizer.

    Args:
        path: a model folder holding ``tokenizer.json`` (with
            ``tokenizer_config.json``, ``generation_config.json`` and
            ``special_tokens_map.json`` when present), or a ``tokenizer.json`` file.

    Raises:
        LorajitIOError, FormatError: the files cannot be read or are malformed.
        UnsupportedError: a model type or component lorajit does not implement
            (named in the message).
        MissingSymbolError: the loaded liblorajit.so has no tokenizer API.

    Example::

        >>> tok = lorajit.Tokenizer("models/stories260K")
        >>> ids = tok.encode("Once upon a time")
        >>> tok.decode(ids, skip_special_tokens=True)
        'Once upon a time'
    """

    def __init__(self, path: "Union[str, os.PathLike[str]]") -> None:
        self._h: Optional[int] = None
        self.path = os.fspath(path)
        open_ = _lib.get("lorajit_tokenizer_open")
        h = ctypes.c_void_p()
        st = open_(ctypes.byref(h), _lib.fsencode(path))
        if st != 0:
            msg = _lib.text(_lib.get("lorajit_tokenizer_errmsg")(h)) if h.value else "out of memory"
            _lib.get("lorajit_tokenizer_free")(h)
            raise error_for(st, msg)
        self._h = h.value

    # -- plumbing --
    def _handle(self) -> int:
        if self._h is None:
            raise LorajitError("the tokenizer is closed")
        return self._h

    def _check(self, st: int) -> None:
        if st != 0:
            raise error_for(st, _lib.text(_lib.get("lorajit_tokenizer_errmsg")(self._h)))

    def close(self) -> None:
        """Frees the tokenizer (``lorajit_tokenizer_free``). Idempotent."""
        h, self._h = self._h, None
        if h is not None:
            _lib.get("lorajit_tokenizer_free")(h)

    # -- text --
    def encode(self, text: str, add_special_tokens: bool = True) -> List[int]:
        """Token ids of ``text``.

        Args:
            text: the text.
            add_special_tokens: add what the post-processor adds (BOS/EOS as the
                tokenizer's files say), as Hugging Face's argument of that name.

        Returns:
            list of int: the ids.
        """
        b = text.encode("utf-8")
        ids = ctypes.POINTER(ctypes.c_int32)()
        n = ctypes.c_int()
        self._check(_lib.get("lorajit_tokenizer_encode")(self._handle(), b, len(b), int(bool(add_special_tokens)),
                                                         ctypes.byref(ids), ctypes.byref(n)))
        try:
            return [int(ids[i]) for i in range(n.value)]
        finally:
            _lib.get("lorajit_free")(ctypes.cast(ids, ctypes.c_void_p))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids``, as Hugging Face's ``decode(ids, skip_special_tokens)``.

        Raises:
            ArgumentError: an id outside the vocabulary (named).
        """
        arr = _ids_array(ids)
        p = ctypes.c_void_p()
        n = ctypes.c_size_t()
        self._check(_lib.get("lorajit_tokenizer_decode")(self._handle(), arr, len(arr), int(bool(skip_special_tokens)),
                                                         ctypes.byref(p), ctypes.byref(n)))
        try:
            return ctypes.string_at(p.value, n.value).decode("utf-8", "replace") if n.value else ""
        finally:
            _lib.get("lorajit_free")(p)

    def apply_chat_template(self, messages: Sequence[Dict[str, Any]], add_generation_prompt: bool = False,
                            tokenize: bool = False, tools: Optional[Sequence[Dict[str, Any]]] = None,
                            **kwargs: Any) -> Union[str, List[int]]:
        """Renders the tokenizer's chat template for ``messages``, as
        ``transformers``' ``apply_chat_template``.

        Args:
            messages: a list of ``{"role": ..., "content": ...}`` dicts (OpenAI's form).
            add_generation_prompt: end with the template's assistant header.
            tokenize: return ids (``encode(text, add_special_tokens=False)``, as
                transformers does) instead of the text.
            tools: JSON-schema tool descriptions, passed to the template as ``tools``.
            **kwargs: more template variables (``enable_thinking=False``, ``documents``,
                ...), as transformers passes them; JSON-serialisable values.

        Returns:
            str, or list of int when ``tokenize``.

        Raises:
            UnsupportedError: the template uses a construct lorajit does not implement.
            ArgumentError: the template called ``raise_exception`` (its message).
        """
        js = json.dumps(list(messages), ensure_ascii=False).encode("utf-8")
        if tools is not None:
            kwargs["tools"] = list(tools)
        vs = json.dumps(kwargs, ensure_ascii=False).encode("utf-8") if kwargs else None
        p = ctypes.c_void_p()
        self._check(_lib.get("lorajit_tokenizer_apply_chat_template_vars")(self._handle(), js, vs,
                                                                           int(bool(add_generation_prompt)),
                                                                           ctypes.byref(p)))
        try:
            text = ctypes.string_at(p.value).decode("utf-8", "replace")
        finally:
            _lib.get("lorajit_free")(p)
        return self.encode(text, add_special_tokens=False) if tokenize else text

    # -- facts --
    @property
    def vocab_size(self) -> int:
        """Highest id + 1, added tokens included."""
        return int(_lib.get("lorajit_tokenizer_vocab_size")(self._handle()))

    def token_to_id(self, token: str) -> Optional[int]:
        """The id of a token's text, or None."""
        i = int(_lib.get("lorajit_tokenizer_token_id")(self._handle(), token.encode("utf-8")))
        return None if i < 0 else i

    @property
    def bos_token_id(self) -> Optional[int]:
        """The BOS id, or None when the tokenizer has none."""
        i = int(_lib.get("lorajit_tokenizer_bos_id")(self._handle()))
        return None if i < 0 else i

    @property
    def eos_token_ids(self) -> List[int]:
        """The ids that end a generation (generation_config.json's
        ``eos_token_id``, else tokenizer_config.json's ``eos_token``)."""
        p = ctypes.POINTER(ctypes.c_int32)()
        n = int(_lib.get("lorajit_tokenizer_eos_ids")(self._handle(), ctypes.byref(p)))
        return [int(p[i]) for i in range(n)]

    def stream_decoder(self, skip_special_tokens: bool = False) -> "StreamDecoder":
        """A :class:`StreamDecoder` for this tokenizer."""
        return StreamDecoder(self, skip_special_tokens)


class StreamDecoder(_lib.Closing):
    """Streaming decode (``lorajit_detokenizer``): push ids as they come, get the
    text that became complete (never half a UTF-8 character). The pieces and the
    final :meth:`flush` add up to ``Tokenizer.decode`` of all the ids.
    Used by one thread at a time; its tokenizer must stay open."""

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = False) -> None:
        self._h: Optional[int] = None
        self._tok = tokenizer  # keeps it alive
        h = ctypes.c_void_p()
        st = _lib.get("lorajit_detokenizer_open")(ctypes.byref(h), tokenizer._handle(), int(bool(skip_special_tokens)))
        if st != 0:
            msg = _lib.text(_lib.get("lorajit_detokenizer_errmsg")(h)) if h.value else "out of memory"
            _lib.get("lorajit_detokenizer_free")(h)
            raise error_for(st, msg)
        self._h = h.value

    def _text(self, st: int, p: ctypes.c_void_p, n: ctypes.c_size_t) -> str:
        if st != 0:
            raise error_for(st, _lib.text(_lib.get("lorajit_detokenizer_errmsg")(self._h)))
        return ctypes.string_at(p.value, n.value).decode("utf-8", "replace") if n.value else ""

    def push(self, token_id: int) -> str:
        """Adds one id; returns the text it completed (may be "")."""
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        st = _lib.get("lorajit_detokenizer_push")(self._h, int(token_id), ctypes.byref(p), ctypes.byref(n))
        return self._text(st, p, n)

    def flush(self) -> str:
        """The rest; the decoder is then ready for a new sequence."""
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        st = _lib.get("lorajit_detokenizer_flush")(self._h, ctypes.byref(p), ctypes.byref(n))
        return self._text(st, p, n)

    def close(self) -> None:
        h, self._h = self._h, None
        if h is not None:
            _lib.get("lorajit_detokenizer_free")(h)
