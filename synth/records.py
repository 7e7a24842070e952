"""Frozen params records as plain JSON values and back.

`to_plain(record)` turns a dataclass record (nested records, tuples, numbers, strings, bools,
None) into plain dicts, tuples and leaves: what `dataclasses.asdict` gives, without its deep copies.
`from_plain(cls, value)` rebuilds the record from such a value, or from its JSON text read back
(where every tuple came back as a list), guided by the dataclass field types: a field typed as a
record becomes that record, `X | None` is None or an X, `tuple[X, ...]` a tuple of X, a bare
`tuple` a tuple with every nested list turned into a tuple. Anything else (an unknown or missing
field, a value of the wrong kind) is a RecordError naming where in the record it sits.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing

from synth.errors import RecordError

_LEAVES = (float, int, bool, str, type(None))


@functools.lru_cache(maxsize=None)
def _field_names(cls) -> tuple:
    return tuple(f.name for f in dataclasses.fields(cls))


def to_plain(obj):
    t = type(obj)
    if t in _LEAVES:
        return obj
    if t is tuple:
        return tuple([to_plain(v) for v in obj])
    if hasattr(t, "__dataclass_fields__"):
        return {name: to_plain(getattr(obj, name)) for name in _field_names(t)}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_plain(v) for v in obj)
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    return obj


@functools.lru_cache(maxsize=None)
def _field_types(cls) -> dict:
    """The resolved field types of a dataclass (its module's names, whatever its fields are called)."""
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]), localns={})
    return {f.name: (hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)}


def _deep_tuple(v):
    return tuple(_deep_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v


def _kind(v) -> str:
    return {dict: "an object", list: "a list", tuple: "a list", str: "a string", bool: "a bool",
            type(None): "null"}.get(type(v), type(v).__name__)


def from_plain(tp, value, where: str = "record"):
    """The value of type `tp` that `to_plain` turned into `value` (see the module docstring)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return from_plain(rest[0], value, where)
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object ({tp.__name__}), got {_kind(value)}")
        ftypes = _field_types(tp)
        unknown = sorted(set(value) - set(ftypes))
        if unknown:
            raise RecordError(f"{where}: unknown field(s) {unknown} for {tp.__name__}")
        missing = [n for n, (_, required) in ftypes.items() if required and n not in value]
        if missing:
            raise RecordError(f"{where}: {tp.__name__} field(s) {missing} missing")
        return tp(**{n: from_plain(ftypes[n][0], v, f"{where}.{n}") for n, v in value.items()})
    if tp is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RecordError(f"{where}: expected a list, got {_kind(value)}")
        args = typing.get_args(tp)
        if not args:
            return _deep_tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise RecordError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(from_plain(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {_kind(value)}")
        return dict(value)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise RecordError(f"{where}: expected {tp.__name__}, got {_kind(value)} {value!r}")
    return value
