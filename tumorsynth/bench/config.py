"""The robustness benchmark's settings: a dataclass, read from JSON/YAML files or dicts.

Every field has a default, so a file holds only what it changes. The output of
``tumorsynth fit-stats`` is itself such a file (its ``stats`` replace the derived ones), and
``stats`` may also name such a file::

    # bench.yaml
    synthesis: liver          # the engine's config: a preset, a file, or a dict
    stats: fitted_stats.json  # or {size: {mu: 12.0, sigma: 6.0}, ...}
    cases_per_shell: 20
    torchscript: {input: hu}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumorsynth.bench.attributes import ATTRIBUTES
from tumorsynth.bench.cases import PHANTOM_SEED
from tumorsynth.bench.models import TorchScriptConfig
from tumorsynth.bench.stats import AttributeStats
from tumorsynth.engine.config import read_config_file
from tumorsynth.engine.config_files import relative_to_config
from tumorsynth.engine.serialization import build_dataclass, to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.segment.postprocess import DEFAULT_POSTPROCESS, PostProcess

__all__ = ["BenchConfig", "load_bench_config"]


@dataclass(frozen=True)
class BenchConfig:
    """Settings of ``tumorsynth bench robustness``.

    Attributes
    ----------
    synthesis : str or dict
        The engine's config the test tumours are drawn from (preset name, file or dict).
    size_class : str
        Size class of the one in-distribution tumour per case.
    stats : dict of str to AttributeStats
        :math:`\\mu` and :math:`\\sigma` per attribute, replacing those derived from ``synthesis``
        (see :mod:`tumorsynth.bench.stats`) or, for the location, measured on CT hosts.
    location_draws : int
        Tumours drawn per host to measure the location's :math:`\\mu` and :math:`\\sigma` on CT
        hosts (not on the phantoms, nor when ``stats`` sets the location).
    attributes : tuple of str
        The attributes to vary (all five by default).
    cases_per_shell : int
        Test tumours per attribute and shell (half below, half above :math:`\\mu`).
    grid_cases_per_cell : int
        Test tumours per cell of the size x intensity grid (6 x 6 signed shells); 0 skips it.
    crop_margin_mm : float or None
        Hosts are cropped to the organ's box plus this margin, mm (None: whole volumes).
    tolerance_mm : float
        Tolerance of the normalised surface Dice, mm.
    largest_organ : bool
        Keep only the largest connected organ (with its tumours) of every prediction before
        scoring, as the reference's evaluation does (:func:`tumorsynth.segment.predict.keep_largest_organ`).
    min_organ_contact : float or None
        Keep a predicted tumour component only when at least this fraction of the voxels
        bordering it is organ (None: keep every one); ``tumorsynth predict``'s default.
    min_tumour_mm3 : float
        Drop predicted tumour components smaller than this, mm³ (0: keep all);
        ``tumorsynth predict``'s default. Both rules: :mod:`tumorsynth.segment.postprocess`.
    bootstrap_resamples, bootstrap_seed : int
        The 95 % bootstrap intervals.
    phantom_seeds : tuple of int
        Built-in phantom hosts, when no CT is given.
    phantom_spacing_mm : float
        Their voxel size, mm.
    torchscript : TorchScriptConfig
        How TorchScript models are fed.
    description : str
        Free text.
    fitted_from : dict
        Where fitted stats came from (written by ``tumorsynth fit-stats``; informational).
    """

    synthesis: str | dict[str, Any] = "liver"
    size_class: str = "medium"
    stats: dict[str, AttributeStats] = field(default_factory=dict)
    location_draws: int = 200
    attributes: tuple[str, ...] = ATTRIBUTES
    cases_per_shell: int = 10
    grid_cases_per_cell: int = 1
    crop_margin_mm: float | None = 20.0
    tolerance_mm: float = 2.0
    largest_organ: bool = False
    min_organ_contact: float | None = DEFAULT_POSTPROCESS.min_organ_contact
    min_tumour_mm3: float = DEFAULT_POSTPROCESS.min_tumour_mm3
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0
    phantom_seeds: tuple[int, ...] = tuple(PHANTOM_SEED + k for k in range(4))
    phantom_spacing_mm: float = 1.0
    torchscript: TorchScriptConfig = field(default_factory=TorchScriptConfig)
    description: str = ""
    fitted_from: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [a for a in (*self.attributes, *self.stats) if a not in ATTRIBUTES]
        if bad:
            raise ConfigError(f"unknown attribute(s) {bad}; the attributes are {ATTRIBUTES}")
        if self.cases_per_shell < 1 or self.grid_cases_per_cell < 0:
            raise ConfigError("cases_per_shell must be >= 1 and grid_cases_per_cell >= 0")
        if self.location_draws < 1:
            raise ConfigError("location_draws must be >= 1")
        if not self.phantom_seeds or self.phantom_spacing_mm <= 0:
            raise ConfigError("phantom_seeds must not be empty and phantom_spacing_mm positive")
        if self.tolerance_mm < 0 or self.bootstrap_resamples < 0:
            raise ConfigError("tolerance_mm and bootstrap_resamples must be >= 0")
        if self.crop_margin_mm is not None and self.crop_margin_mm < 0:
            raise ConfigError("crop_margin_mm must be >= 0 (or null: no crop)")
        contact = self.min_organ_contact
        if (contact is not None and not 0 <= contact <= 1) or not self.min_tumour_mm3 >= 0:
            raise ConfigError("min_organ_contact must be in [0, 1] (or null), min_tumour_mm3 >= 0")

    @property
    def postprocess(self) -> PostProcess:
        """The post-processing of every prediction before it is scored."""
        return PostProcess(self.largest_organ, self.min_organ_contact, self.min_tumour_mm3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        import dataclasses

        return to_jsonable(dataclasses.asdict(self))


def load_bench_config(config: str | Path | Mapping[str, Any] | BenchConfig | None) -> BenchConfig:
    """Read benchmark settings from a JSON/YAML file, a dict, or None (every default).

    Raises
    ------
    ConfigError
        An unreadable file, an unknown field or a bad value (named).
    """
    if isinstance(config, BenchConfig):
        return config
    if config is None:
        return BenchConfig()
    base, where = Path.cwd(), "bench config"
    if isinstance(config, (str, Path)):
        path = Path(config)
        data, base, where = read_config_file(path), path.parent, str(path)
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise ConfigError(f"a benchmark config is a file or a dict, got {config!r}")
    data = dict(data)
    if "synthesis" in data:
        data["synthesis"] = relative_to_config(base, data["synthesis"])
    stats = data.get("stats")
    if isinstance(stats, str):
        stats_path = Path(relative_to_config(base, stats))
        stats = read_config_file(stats_path).get("stats")
        if not isinstance(stats, Mapping):
            raise ConfigError(f"{stats_path}: holds no 'stats' mapping")
        data["stats"] = stats
    try:
        return build_dataclass(BenchConfig, data, "")
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
