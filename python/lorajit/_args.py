"""Arguments of Scheduler.submit as the C request wants them: ints, numbers,
stop sequences and strings, and adapter choices as (names, weights)."""
from __future__ import annotations

from typing import Any, List, Mapping, Sequence, Tuple, Union

from .errors import ArgumentError

Prompt = Union[str, Sequence[int]]
Adapters = Union[None, str, Mapping[str, float], Sequence[Union[str, Tuple[str, float]]]]
StopSpec = Union[None, int, str, Sequence[Union[int, str, Sequence[int]]]]


def as_int(v: Any, name: str) -> int:
    """v as an int (numpy ints too); ArgumentError naming ``name`` otherwise."""
    try:
        if isinstance(v, (bool, str, bytes)) or int(v) != v:
            raise ValueError
    except (TypeError, ValueError):
        raise ArgumentError("submit: %s must be an int, got %r" % (name, v)) from None
    return int(v)


def as_number(v: Any, name: str) -> float:
    """v as a float; ArgumentError naming ``name`` otherwise."""
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ArgumentError("submit: %s must be a number, got %r" % (name, v)) from None


def as_ints(vals: Any, name: str) -> List[int]:
    """A sequence of ints as a list; ArgumentError naming ``name`` otherwise."""
    try:
        return [as_int(v, name) for v in vals]
    except TypeError:
        raise ArgumentError("submit: %s must be a list of ints, got %r" % (name, vals)) from None


def stop_list(stop: StopSpec) -> Tuple[List[List[int]], List[str]]:
    """stop= as (token sequences, strings): an id is a sequence of one."""
    if stop is None:
        return [], []
    items = [stop] if isinstance(stop, (int, str)) else list(stop)
    seqs: List[List[int]] = []
    strs: List[str] = []
    for s in items:
        if isinstance(s, str):
            strs.append(s)
        elif isinstance(s, int) and not isinstance(s, bool):
            seqs.append([s])
        else:
            seqs.append(as_ints(s, "stop"))
    return seqs, strs


def adapter_list(spec: Adapters, engine: Any) -> Tuple[List[str], List[float]]:
    """adapter= as (names, weights); see Scheduler.submit."""
    if spec is None:
        pairs = list(engine.active_adapter_weights.items())
    elif isinstance(spec, str):
        pairs = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, w = part.rpartition(":")
            pairs.append((name, as_number(w, "adapter weight")) if name else (part, 1.0))
    elif isinstance(spec, Mapping):
        pairs = [(str(k), as_number(w, "adapter weight")) for k, w in spec.items()]
    else:
        pairs = []
        for a in spec:
            if isinstance(a, str):
                pairs.append((a, 1.0))
            elif isinstance(a, (tuple, list)) and len(a) == 2 and isinstance(a[0], str):
                pairs.append((a[0], as_number(a[1], "adapter weight")))
            else:
                raise ArgumentError("submit: adapter entries are names or (name, weight) pairs, got %r" % (a,))
    return [n for n, _ in pairs], [w for _, w in pairs]
