"""The front half of every command's config: the fields of a file, a dict, an instance or the
defaults, with ``key=value`` overrides on top and unknown fields named with the closest valid one.

``train``, the benchmarks and the methods read their dataclass configs through this module, then
coerce their own fields and build the dataclass with
:func:`~tumorsynth.engine.serialization.build_dataclass`.

Examples
--------
>>> parse_override("patch_size=[64, 64, 64]")
('patch_size', [64, 64, 64])
>>> as_number("1e-3")  # YAML 1.1 reads 1e-3 (no dot) as a string
0.001
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tumorsynth.engine.config import PRESETS, read_config_file
from tumorsynth.errors import ConfigError

__all__ = [
    "as_number",
    "check_fields",
    "overrides_dict",
    "parse_override",
    "read_fields",
    "read_source",
    "relative_to_config",
]


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value read as YAML (``steps=10``, ``lr=1e-3``,
    ``patch_size=[64,64,64]``, ``images=[a.nii.gz, b.nii.gz]``, ``dataset=null``)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected key=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: cannot read the value ({err})") from None
    return key.strip(), parsed


def as_number(value: Any, *, ints: bool = False) -> Any:
    """A string that reads as a number becomes a float (YAML 1.1 reads ``1e-3``, without a dot,
    as a string); with ``ints``, an int does too. Anything else is returned as it is."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if ints and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def read_source(source: Any, cls: type, what: str) -> tuple[dict[str, Any], str]:
    """The fields of ``source`` (an instance of ``cls``, None for the defaults, a mapping, or the
    path of a YAML / JSON file) and how messages name it (the file, else ``what``).

    Raises
    ------
    ConfigError
        A path that is not a file, or a file that cannot be read as a mapping.
    """
    if isinstance(source, cls):
        return source.to_dict(), what
    if source is None:
        return {}, what
    if isinstance(source, Mapping):
        return dict(source), what
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    return read_config_file(path), str(path)


def check_fields(
    keys: Iterable[str], names: Sequence[str], where: str, section: str | None = None
) -> None:
    """Refuse a key that is not among ``names``, naming the closest one (``section``: the
    dotted prefix messages give the key, e.g. ``pretrain``)."""
    for key in keys:
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            field = f"{section}.{key}" if section else repr(key)
            raise ConfigError(f"{where}: unknown field {field}{maybe}")


def read_fields(
    source: Any, overrides: Sequence[str] | Mapping[str, Any], cls: type, what: str
) -> tuple[dict[str, Any], str]:
    """:func:`read_source`, the overrides (``"key=value"`` strings or a mapping) on top, every
    field checked by :func:`check_fields` against ``cls``'s; returns the fields and their name."""
    data, where = read_source(source, cls, what)
    data.update(overrides_dict(overrides))
    check_fields(data, [f.name for f in dataclasses.fields(cls)], where)
    return data, where


def overrides_dict(overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Overrides as a dict: a mapping as it is, ``"key=value"`` strings by :func:`parse_override`."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    return dict(map(parse_override, overrides))


def relative_to_config(base: Path, value: Any) -> Any:
    """A file named in a config file is found relative to that file's folder ``base`` (a preset
    name, an absolute path or a name with no such file there is returned as it is)."""
    if isinstance(value, str) and value not in PRESETS and not Path(value).is_absolute():
        candidate = base / value
        if candidate.exists():
            return str(candidate)
    return value
