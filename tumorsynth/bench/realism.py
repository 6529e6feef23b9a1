r"""``tumorsynth realism``: synthetic tumours compared with a user's labelled real ones, attribute
by attribute, and (``--calibrate``) a synthesis config that matches them.

Both sides are measured by the same code (:mod:`~tumorsynth.bench.realism_measure`): the real
tumours of labelled scans, and tumours a synthesis config draws on healthy hosts (the user's CT
with organ masks, or the built-in phantom), ``scans_per_host`` scans per host. Per attribute
(size, contrast, texture's spread and grain, elongation, depth, tumours per scan) the report
gives each side's median and 10th-90th percentiles and two distances from SciPy:

- the two-sample **Kolmogorov-Smirnov** statistic (``scipy.stats.ks_2samp``, 0 to 1: the largest
  gap between the two cumulative distributions) with its p-value;
- the **1-Wasserstein** distance (``scipy.stats.wasserstein_distance``, in the attribute's unit:
  how far, on average, one distribution's values must move to become the other's), and the same
  over the real values' standard deviation, comparable across attributes.

With ``calibrate``, :func:`~tumorsynth.bench.calibrate.calibrate_config` writes a config fitted to
the real tumours and the report adds its tumours, drawn on the same hosts with the same seeds.

Texture and grain depend on the voxel size and the scanner's noise: compare hosts and real scans
of like voxel size (the report notes a difference of more than 25 %).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tumorsynth.bench.calibrate import calibrate_config
from tumorsynth.bench.cases import load_bench_hosts
from tumorsynth.bench.realism_measure import (
    ATTRIBUTES,
    Side,
    measure_synthetic,
    read_real,
    summarise,
)
from tumorsynth.bench.realism_report import output_paths, write_realism
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.errors import InputError
from tumorsynth.version import __version__

__all__ = [
    "FEW_TUMOURS",
    "MARGIN_MM",
    "PHANTOM_SEEDS",
    "RealismReport",
    "compare_sides",
    "distances",
    "host_sources",
    "run_realism",
]

#: Hosts are cropped to their organ's box grown by this much (the ring reaches 10 mm out).
MARGIN_MM = 20.0
#: The built-in phantoms used as hosts when none are given.
PHANTOM_SEEDS = (2000, 2001)
#: A side with fewer tumours than this gets a note: its distances are noisy.
FEW_TUMOURS = 30
_SPACING_NOTE = 1.25


@dataclass(frozen=True)
class RealismReport:
    """What ``tumorsynth realism`` found and wrote.

    Attributes
    ----------
    result : dict
        The content of ``realism.json``.
    files : dict of str to Path
        The files written.
    sides : dict of str to Side
        ``real``, ``synthetic`` and, with calibration, ``calibrated``.
    calibrated : SynthConfig or None
    """

    result: dict[str, Any]
    files: dict[str, Path]
    sides: dict[str, Side]
    calibrated: SynthConfig | None = None


def distances(real: np.ndarray, synthetic: np.ndarray) -> dict[str, float | None]:
    """Kolmogorov-Smirnov statistic and p-value, 1-Wasserstein distance, and that over the real
    values' standard deviation (None where a side has no value, or the real ones no spread).

    >>> d = distances(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]))
    >>> d["ks"], d["wasserstein"]
    (0.3333333333333333, 1.0)
    """
    out: dict[str, float | None] = dict.fromkeys(("ks", "ks_p", "wasserstein", "relative"))
    if real.size == 0 or synthetic.size == 0:
        return out
    test = stats.ks_2samp(real, synthetic)
    w1 = float(stats.wasserstein_distance(real, synthetic))
    scale = float(real.std(ddof=1)) if real.size > 1 else 0.0
    out.update(ks=float(test.statistic), ks_p=float(test.pvalue), wasserstein=w1,
               relative=w1 / scale if scale > 0 else None)  # fmt: skip
    return out


def compare_sides(real: Side, synthetic: Side) -> dict[str, dict]:
    """Per attribute: the synthetic side's summary (:func:`summarise`) and its :func:`distances`
    to the real side."""
    out = {}
    for attribute in ATTRIBUTES:
        values = synthetic.values(attribute)
        out[attribute] = {**summarise(values), **distances(real.values(attribute), values)}
    return out


def host_sources(hosts: Sequence[str], masks: Sequence[str], organ_label: int | None):
    """None for the built-in phantoms (no ``hosts``, or ``["phantom"]``), else the host
    :class:`~tumorsynth.dataset.sources.Source` list: CT files, folders or globs paired with their
    organ masks, or one ``dataset.json``."""
    from tumorsynth.dataset.sources import dataset_json_sources, expand_paths, pair_sources

    if not hosts or tuple(hosts) == ("phantom",):
        if masks:
            raise InputError("--host-masks needs --hosts (the CTs they belong to)")
        return None
    if len(hosts) == 1 and str(hosts[0]).endswith(".json") and not masks:
        return dataset_json_sources(hosts[0], organ_label)
    images = expand_paths(hosts, "hosts")
    sources, _ = pair_sources(
        images, expand_paths(masks, "host-masks"), organ_label, ("--hosts", "--host-masks")
    )
    return sources


def _inputs_of(real: Sequence, images: Sequence | None, config: Any, sources) -> list[Path]:
    paths = [Path(p) for p in (*real, *(images or ()))]
    if isinstance(config, (str, Path)) and Path(config).exists():
        paths.append(Path(config))
    for s in sources or ():
        paths += [Path(p) for p in (s.image, s.mask) if p]
    return paths


def _refuse_overwriting_inputs(outputs: Mapping[str, Path], inputs: Sequence[Path]) -> None:
    taken = {p.resolve() for p in inputs}
    for path in outputs.values():
        if path.resolve() in taken:
            raise InputError(f"{path}: an input of this run; choose another --out folder")


def _notes(real: Side, sides: Mapping[str, Side]) -> list[str]:
    notes = []
    real_mm = float(np.median([np.prod(s) ** (1 / 3) for s in real.spacings_mm]))
    host_mm = float(np.median([np.prod(s) ** (1 / 3) for s in sides["synthetic"].spacings_mm]))
    if max(real_mm, host_mm) / min(real_mm, host_mm) > _SPACING_NOTE:
        notes.append(
            f"the real scans' voxels ({real_mm:.2g} mm, median cube root of their volume) and the "
            f"hosts' ({host_mm:.2g} mm) differ: texture and grain depend on the voxel size"
        )
    if real.values("contrast_hu").size == 0:
        notes.append("no CT given with the real labels: contrast and texture are not compared")
    for name, side in sides.items():
        if side.no_room:
            notes.append(f"{name}: {side.no_room} scans found no room for any tumour")
        if len(side.tumours) < FEW_TUMOURS:
            notes.append(
                f"{name}: only {len(side.tumours)} tumours: the distances are noisy (raise "
                "--scans-per-host or give more hosts)"
            )
    return notes


def _settings(**kwargs) -> dict[str, Any]:
    return {"tumorsynth": __version__, **kwargs}


def run_realism(
    real: Sequence[str | Path],
    out_dir: str | Path,
    *,
    images: Sequence[str | Path] | None = None,
    hosts: Sequence[Any] | None = None,
    config: Any = "liver",
    scans_per_host: int = 4,
    seed: int = 0,
    calibrate: bool = False,
    tumour_label: int = 2,
    organ_label: int = 1,
    min_voxels: int = 5,
    phantom_seeds: Sequence[int] = PHANTOM_SEEDS,
    phantom_spacing_mm: float = 2.0,
    progress: bool = True,
) -> RealismReport:
    """Compare a config's synthetic tumours with labelled real ones (see the module's notes).

    Parameters
    ----------
    real : sequence of str or Path
        Label maps of real tumours (files, folders, globs), or one nnU-Net / MSD dataset folder.
    out_dir : str or Path
        Folder for ``realism.json``, ``realism.md``, ``tumours.csv``, ``realism.png`` and, with
        ``calibrate``, ``calibrated_config.json``.
    images : sequence of str or Path, optional
        The real label maps' CTs (paired by name or order); contrast and texture need them.
    hosts : sequence of Source, optional
        Healthy hosts (:func:`host_sources`); None: the phantoms ``phantom_seeds`` at
        ``phantom_spacing_mm``.
    config : str, path, dict or SynthConfig
        The synthesis config compared (see :func:`tumorsynth.load_config`).
    scans_per_host : int
        Synthetic scans drawn on each host.
    seed : int
        Seed of the synthetic scans (the calibrated side uses the same ones).
    calibrate : bool
        Also fit a config to the real tumours, write it and compare its tumours.
    tumour_label, organ_label, min_voxels : int
        The real label maps' values; smaller tumour components are left out (both sides).
    phantom_seeds, phantom_spacing_mm
        The phantom hosts when ``hosts`` is None.
    progress : bool

    Returns
    -------
    RealismReport

    Raises
    ------
    InputError
        Unreadable or unpaired inputs, no real tumour, or an output that is an input.
    ConfigError
        A bad synthesis config.
    """
    cfg = load_config(config)
    if scans_per_host < 1:
        raise InputError(f"scans_per_host must be at least 1, got {scans_per_host}")
    out_dir = Path(out_dir)
    outputs = output_paths(out_dir, calibrate)
    _refuse_overwriting_inputs(outputs, _inputs_of(real, images, config, hosts))
    real_side = read_real(real, images, tumour_label=tumour_label, organ_label=organ_label,
                          min_voxels=min_voxels, progress=progress)  # fmt: skip
    if not real_side.tumours:
        raise InputError(
            f"realism: no tumour (label {tumour_label}, {min_voxels} voxels or more) in "
            f"{len(real_side.counts)} label maps"
        )
    host_list = load_bench_hosts(hosts, margin_mm=MARGIN_MM, phantom_seeds=phantom_seeds,
                                 phantom_spacing_mm=phantom_spacing_mm)  # fmt: skip
    run = {"scans_per_host": scans_per_host, "seed": seed, "min_voxels": min_voxels}
    sides = {"real": real_side, "synthetic": measure_synthetic(host_list, cfg, **run,
                                                               progress=progress)}  # fmt: skip
    calibration = None
    if calibrate:
        calibration = calibrate_config(cfg, real_side, sides["synthetic"], host_list, **run,
                                       progress=progress)  # fmt: skip
        sides["calibrated"] = calibration.side
    result = {
        "settings": _settings(
            config=cfg.name, scans_per_host=scans_per_host, seed=seed, calibrate=calibrate,
            hosts=[h.name for h in host_list], real_scans=len(real_side.counts),
            tumour_label=tumour_label, organ_label=organ_label, min_voxels=min_voxels,
        ),
        "notes": _notes(real_side, {k: v for k, v in sides.items() if k != "real"}),
        "real": {a: summarise(real_side.values(a)) for a in ATTRIBUTES},
        "compared": {k: compare_sides(real_side, v) for k, v in sides.items() if k != "real"},
        "config": cfg.to_dict(),
    }  # fmt: skip
    if calibration is not None:
        result["calibration"] = calibration.steps
        result["calibrated_config"] = calibration.config.to_dict()
    files = write_realism(outputs, result, sides)
    return RealismReport(result, files, sides, calibration.config if calibration else None)
