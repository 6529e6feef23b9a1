"""The settings of ``tumorsynth bench transfer``: a dataclass, read from a YAML/JSON file or a dict.

Every field has a default, so a file holds only what it changes::

    # transfer.yaml
    recipe: examples/train_phantom.yaml     # or a dict of TrainConfig fields
    configs: {syntumor: syntumor, liver: liver}
    seeds: [0, 1, 2]
    test_phantoms: [2000, 2001, 2002]
    test_ct: [ct/a.nii.gz]                   # healthy CT with inserted test tumours
    test_ct_masks: [seg/a.nii.gz]
    organ_label: 5
    labelled_images: [lits/imagesTs]         # real tumours, 0/1/2 label maps
    labelled_labels: [lits/labelsTs]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumorsynth.bench.cases import PHANTOM_SEED
from tumorsynth.engine.config import load_config, read_config_file
from tumorsynth.engine.config_files import read_source, relative_to_config
from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.segment.postprocess import DEFAULT_POSTPROCESS, PostProcess
from tumorsynth.train.config import TrainConfig, load_train_config

__all__ = ["RECIPE_FIXED", "TransferConfig", "load_transfer_config"]

RECIPE_FIXED = ("synth_config", "seed", "out_dir")
"""Recipe fields the benchmark sets per run (a recipe that sets them is refused)."""


@dataclass(frozen=True)
class TransferConfig:
    """Settings of ``tumorsynth bench transfer``.

    Attributes
    ----------
    recipe : str or dict
        The training recipe every run shares: a ``tumorsynth train`` config file or a dict of
        :class:`~tumorsynth.train.TrainConfig` fields (without ``synth_config``, ``seed`` and
        ``out_dir``, which the benchmark sets per run).
    configs : dict of str to (str or dict)
        The synthesis configs compared, by name (preset, file or dict); the first is the baseline
        of the paired comparisons.
    seeds : tuple of int
        Training seeds: each config trains once per seed (the same seed gives the same initial
        weights and the same crop positions under every config, so runs pair by seed).
    checkpoint : str
        ``"last"`` or ``"best"``: the checkpoint of each run that is evaluated.
    test_synthesis : tuple of str
        Names of ``configs`` whose tumours the synthetic test sets hold (empty: every config, a
        test set each).
    test_phantoms : tuple of int
        Held-out phantom hosts (seeds neither ``train`` nor its validation use), at the recipe's
        voxel size.
    test_ct, test_ct_masks : list of str
        Healthy CT hosts (files, folders, globs) and their organ masks, for test tumours inserted
        into real anatomy.
    organ_label : int, optional
        The organ's value in the ``test_ct_masks`` label maps (5: liver in TotalSegmentator).
    test_cases_per_host : int
        Test cases per host and test synthesis config.
    labelled_images, labelled_labels : list of str
        Labelled real scans (0 background, 1 organ, 2 tumour), scored as they are.
    test_seed : int
        Seed of the test tumours.
    crop_margin_mm : float or None
        Test hosts are cropped to the organ's box plus this margin, mm (false positives count in
        that region only); None keeps the whole volumes. Labelled scans are never cropped.
    postprocess : PostProcess
        Post-processing of every prediction before scoring (``tumorsynth predict``'s defaults);
        the raw predictions' detection is reported beside.
    tolerance_mm : float
        Surface Dice tolerance, mm.
    bootstrap_seed : int
        Seed of the comparison's bootstrap over test cases.
    description : str
        Free text.
    """

    recipe: str | dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(
        default_factory=lambda: {"syntumor": "syntumor", "liver": "liver"}
    )
    seeds: tuple[int, ...] = (0, 1, 2)
    checkpoint: str = "last"
    test_synthesis: tuple[str, ...] = ()
    test_phantoms: tuple[int, ...] = tuple(PHANTOM_SEED + k for k in range(3))
    test_ct: list[str] = field(default_factory=list)
    test_ct_masks: list[str] = field(default_factory=list)
    organ_label: int | None = None
    test_cases_per_host: int = 2
    labelled_images: list[str] = field(default_factory=list)
    labelled_labels: list[str] = field(default_factory=list)
    test_seed: int = 0
    crop_margin_mm: float | None = 20.0
    postprocess: PostProcess = DEFAULT_POSTPROCESS
    tolerance_mm: float = 2.0
    bootstrap_seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("transfer config: " + "; ".join(problems))

    def train_config(self, name: str, seed: int, out_dir: str | Path) -> TrainConfig:
        """The recipe with config ``name``'s synthesis, ``seed`` and ``out_dir``."""
        return load_train_config(
            self.recipe or None,
            {"synth_config": self.configs[name], "seed": int(seed), "out_dir": str(out_dir)},
        )

    @property
    def test_configs(self) -> tuple[str, ...]:
        """The configs whose tumours the synthetic test sets hold."""
        return self.test_synthesis or tuple(self.configs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return to_jsonable(dataclasses.asdict(self))


def _problems(c: TransferConfig) -> list[str]:
    out = []
    if len(c.configs) < 2:
        out.append(f"configs: at least two synthesis configs to compare, got {list(c.configs)}")
    for name, value in c.configs.items():
        try:
            load_config(value)
        except ConfigError as err:
            out.append(f"configs.{name}: {err}")
    if not c.seeds or len(set(c.seeds)) != len(c.seeds):
        out.append(f"seeds: at least one, each once, got {list(c.seeds)}")
    if c.checkpoint not in ("last", "best"):
        out.append(f"checkpoint: 'last' or 'best', got {c.checkpoint!r}")
    unknown = [n for n in c.test_synthesis if n not in c.configs]
    if unknown:
        out.append(f"test_synthesis: {unknown} are not among configs ({', '.join(c.configs)})")
    if c.test_ct_masks and not c.test_ct:
        out.append("test_ct_masks: given without test_ct")
    if c.labelled_labels and not c.labelled_images:
        out.append("labelled_labels: given without labelled_images")
    if not (c.test_phantoms or c.test_ct or c.labelled_images):
        out.append("no test scans: set test_phantoms, test_ct or labelled_images")
    if c.test_cases_per_host < 1:
        out.append(f"test_cases_per_host: at least 1, got {c.test_cases_per_host}")
    if c.crop_margin_mm is not None and c.crop_margin_mm < 0:
        out.append("crop_margin_mm: >= 0 mm, or null (no crop)")
    if isinstance(c.recipe, Mapping):
        fixed = [k for k in RECIPE_FIXED if k in c.recipe]
        if fixed:
            out.append(f"recipe: sets {fixed}, which the benchmark sets per run")
        try:
            load_train_config(dict(c.recipe) or None)
        except ConfigError as err:
            out.append(f"recipe: {err}")
    return out


def load_transfer_config(
    config: str | Path | Mapping[str, Any] | TransferConfig | None,
    overrides: Mapping[str, Any] | None = None,
) -> TransferConfig:
    """Read the settings from a YAML/JSON file, a dict or None (every default), then
    ``overrides`` (field by field; ``recipe.<field>`` sets one field of the recipe).

    A recipe given as a file is read here (relative to the config file), so the settings hold
    the recipe's fields.

    Raises
    ------
    ConfigError
        An unreadable file, an unknown field or a bad value (named).
    """
    data, where = read_source(config, TransferConfig, "transfer config")
    base = Path(config).parent if isinstance(config, (str, Path)) else Path.cwd()
    overrides = dict(overrides or {})
    recipe_overrides = {
        k.removeprefix("recipe."): overrides.pop(k) for k in list(overrides)
        if k.startswith("recipe.")
    }  # fmt: skip
    data.update(overrides)
    recipe = data.get("recipe")
    if isinstance(recipe, str):
        recipe_path = Path(relative_to_config(base, recipe))
        if not recipe_path.is_file():
            raise ConfigError(f"{where}: recipe {recipe}: no such file")
        recipe = dict(read_config_file(recipe_path))
    if recipe_overrides:
        recipe = {**(recipe or {}), **recipe_overrides}
    if recipe is not None:
        data["recipe"] = recipe
    if isinstance(data.get("configs"), Mapping):
        data["configs"] = {k: relative_to_config(base, v) for k, v in data["configs"].items()}
    if isinstance(data.get("postprocess"), Mapping):
        data["postprocess"] = {**DEFAULT_POSTPROCESS.to_dict(), **data["postprocess"]}
    try:
        return build_dataclass(TransferConfig, data, "")
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
