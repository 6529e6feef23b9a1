"""Synthesis configuration: one frozen dataclass per stage, composed in :class:`SynthConfig`.

Presets are data (``tumorsynth/engine/presets/*.json``): a preset, a user's JSON/YAML file and a dict all
have the same form, may name a ``preset`` to start from, and override any field::

    {"preset": "syntumor", "size_class": "mix", "intensity": {"edge_sigma_mm": [1.5, 2.5]}}
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.engine.stages.capsule import CapsuleConfig
from tumorsynth.engine.stages.intensity import IntensityConfig
from tumorsynth.engine.stages.location import LocationConfig
from tumorsynth.engine.stages.mass_effect import MassEffectConfig
from tumorsynth.engine.stages.shape import SIZE_CLASSES, ShapeConfig
from tumorsynth.engine.stages.texture import TextureConfig
from tumorsynth.errors import ConfigError

__all__ = ["PRESETS", "SynthConfig", "load_config", "read_config_file"]

PRESETS = ("liver", "syntumor", "pancreas", "kidney")
"""The presets, by name; ``pancreas`` and ``kidney`` are documented number by number, with their
sources, in ``docs/organs.md``."""
_REFERENCE_MIX = {"tiny": 0.2, "small": 0.2, "medium": 0.2, "large": 0.2, "mix": 0.2}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that governs how tumour params are drawn.

    Attributes
    ----------
    name : str
        Preset or file the config came from (recorded in manifests).
    description : str
    organ : str
        The organ whose tumours the config models (``liver``, ``pancreas``, ``kidney``): the
        organ tools select from label maps and name in datasets by default.
    size_class : dict of str to float
        Probability of each size class per call (``tiny``, ``small``, ``medium``, ``large``, ``mix``);
        a single name means probability 1. Reference: 0.2 each.
    location, shape, texture, intensity, mass_effect, capsule
        The stages' configs.
    """

    name: str = "custom"
    description: str = ""
    organ: str = "liver"
    size_class: dict[str, float] = field(default_factory=lambda: dict(_REFERENCE_MIX))
    location: LocationConfig = field(default_factory=LocationConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    texture: TextureConfig = field(default_factory=TextureConfig)
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    mass_effect: MassEffectConfig = field(default_factory=MassEffectConfig)
    capsule: CapsuleConfig = field(default_factory=CapsuleConfig)

    def __post_init__(self) -> None:
        if isinstance(self.size_class, str):
            object.__setattr__(self, "size_class", {self.size_class: 1.0})
        known = (*self.shape.classes, "mix")
        bad = set(self.size_class) - set(known)
        if bad:
            raise ConfigError(f"size_class: unknown classes {sorted(bad)}; choose from {known}")
        probs = list(self.size_class.values())
        if min(probs) < 0 or sum(probs) <= 0:
            raise ConfigError("size_class: probabilities must be >= 0 with a positive sum")
        if self.location.exophytic_probability > 0 and not self.intensity.replace:
            raise ConfigError(
                "location.exophytic_probability needs intensity.replace: an exophytic tumour's "
                "tissue must replace the fat it grows into, not add its contrast to it"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`load_config` turns back into an equal config."""
        return to_jsonable(dataclasses.asdict(self))


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of fields")
    return data


def _preset_dict(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    text = resources.files("tumorsynth.engine.presets").joinpath(f"{name}.json").read_text()
    return {"name": name, **json.loads(text)}


def _resolve(data: Mapping[str, Any], where: str, depth: int = 0) -> dict[str, Any]:
    """Expand ``preset`` keys recursively and merge the overrides on top."""
    data = dict(data)
    base_name = data.pop("preset", None)
    if base_name is None:
        return data
    if depth > 8:
        raise ConfigError(f"{where}: presets nest too deeply")
    base = _resolve(_preset_dict(str(base_name)), f"preset {base_name}", depth + 1)
    return _merge(base, data)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "size_class":
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load_config(config: str | Path | Mapping[str, Any] | SynthConfig = "liver") -> SynthConfig:
    """Resolve a preset name, a JSON/YAML file, a dict or a :class:`SynthConfig`.

    Parameters
    ----------
    config : str, Path, dict or SynthConfig
        ``"liver"`` (default, every effect on), ``"syntumor"`` (the released reference code's
        behaviour), ``"pancreas"`` (ductal adenocarcinoma) or ``"kidney"`` (renal cell
        carcinoma, exophytic); a path to a ``.json``/``.yaml`` file; or a dict. Files and dicts may name a
        ``preset`` to start from and override any field.

    Returns
    -------
    SynthConfig

    Raises
    ------
    ConfigError
        Unknown preset, unreadable file, unknown field, or a value of the wrong type or range.

    Examples
    --------
    >>> load_config({"preset": "syntumor", "size_class": "mix"}).size_class
    {'mix': 1.0}
    """
    if isinstance(config, SynthConfig):
        return config
    if isinstance(config, Mapping):
        data, where = _resolve(config, "config"), ""
    elif isinstance(config, (str, Path)):
        path = Path(config)
        if isinstance(config, str) and config in PRESETS:
            data, where = _resolve({"preset": config}, config), ""
        elif path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
            raw = read_config_file(path)
            data = {**_resolve(raw, str(path)), "name": raw.get("name", path.stem)}
            where = ""
        else:
            raise ConfigError(
                f"config {config!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON/YAML file"
            )
    else:
        raise ConfigError(
            f"config must be a preset name, a file, a dict or a SynthConfig: {config!r}"
        )
    try:
        return build_dataclass(SynthConfig, data, where)
    except ConfigError as err:
        source = f"{config}" if isinstance(config, (str, Path)) else "config"
        raise ConfigError(f"{source}: {err}") from None


def size_class_names() -> tuple[str, ...]:
    """All size-class names a config may use by default."""
    return (*SIZE_CLASSES, "mix")
