"""Dataclasses to and from JSON-like data, with errors that name the offending field."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from tumorsynth.errors import ConfigError

__all__ = ["build_dataclass", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def build_dataclass(tp: Any, value: Any, where: str) -> Any:
    """Convert JSON-like ``value`` to type ``tp`` (dataclasses, dicts, tuples, unions, scalars).

    A mapping given for a field whose default is a mapping of dataclasses (a size class, say)
    overrides the fields it names in the default's entry of the same key and keeps the rest.
    """
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build_fields(tp, value, where)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return build_dataclass(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: must be one of {typing.get_args(tp)}, got {value!r}")
        return value
    if origin in (dict, Mapping):
        key_tp, val_tp = typing.get_args(tp)
        if isinstance(value, str) and where.endswith("size_class"):
            value = {value: 1.0}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            build_dataclass(key_tp, k, where): build_dataclass(val_tp, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [build_dataclass(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: expected a list, got {value!r}")
            return tuple(build_dataclass(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(build_dataclass(a, v, where) for a, v in zip(args, value, strict=True))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp}")  # pragma: no cover


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _with_defaults(value: Any, default: Any) -> Any:
    """``value`` (a mapping) over ``default`` when that is a mapping of dataclasses: the default's
    entries are kept, and an entry ``value`` names keeps the fields it does not override
    (``{"small": {"radius_mm": 10}}`` changes one field of one size class)."""
    if not isinstance(value, Mapping) or not isinstance(default, Mapping) or not default:
        return value
    if not all(dataclasses.is_dataclass(entry) for entry in default.values()):
        return value
    out = {key: to_jsonable(dataclasses.asdict(entry)) for key, entry in default.items()}
    for key, entry in value.items():
        out[key] = {**out[key], **entry} if key in out and isinstance(entry, Mapping) else entry
    return out


def _build_fields(tp: Any, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of fields, got {value!r}")
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp)}
    unknown = set(value) - set(fields)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {sorted(unknown)}; valid fields: {sorted(fields)}"
        )
    missing = [n for n, f in fields.items() if n not in value and _field_default(f) is _REQUIRED]
    if missing:
        raise ConfigError(
            f"{where or 'config'}: missing field(s) {', '.join(missing)} (needed: "
            f"{', '.join(n for n, f in fields.items() if _field_default(f) is _REQUIRED)})"
        )
    kwargs = {}
    for k, v in value.items():
        default = _field_default(fields[k])
        kwargs[k] = build_dataclass(
            hints[k], _with_defaults(v, default), f"{where}.{k}" if where else k
        )
    try:
        return tp(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where or 'config'}: {err}") from None


_REQUIRED = dataclasses.MISSING
