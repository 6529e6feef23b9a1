r"""``tumorsynth bench robustness``: segmenters scored on tumours whose attributes leave the
training distribution one at a time (the controllable benchmark of Hu et al., CVPR 2023, Fig. 6).

For each attribute (shape, size, texture, intensity, location; :mod:`~tumorsynth.bench.attributes`)
and each shell :math:`k = 1, 2, 3` of its distribution (:mod:`~tumorsynth.bench.shells`), test
tumours are synthesised with that attribute in the shell and everything else drawn by the
synthesis config (:mod:`~tumorsynth.bench.cases`), one per case, in fixed hosts from fixed seeds.
Every model segments every case; the tumour Dice, NSD, lesion sensitivity and false positives are
pooled per shell with bootstrap intervals (:mod:`~tumorsynth.bench.summary`). A size x intensity
grid does the same for both attributes at once. The same settings, seed, hosts and models give
the same tables.

References
----------
Hu Q. et al., "Label-Free Liver Tumor Segmentation", CVPR 2023, Fig. 6.
https://doi.org/10.1109/CVPR52729.2023.00719
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.bench.cases import (
    Host,
    TestCase,
    load_bench_hosts,
    make_host,
    single_tumour_config,
)
from tumorsynth.bench.cases import synthesize_case as _synthesize_case
from tumorsynth.bench.config import BenchConfig, load_bench_config
from tumorsynth.bench.models import Model, load_segmenters, run_model
from tumorsynth.bench.report import write_reports
from tumorsynth.bench.shells import SIGNED_SHELLS, grid_plan, shell_label, shell_plan, shell_range
from tumorsynth.bench.stats import (
    LOCATION_STATS,
    AttributeStats,
    measure_location_stats,
    resolve_stats,
)
from tumorsynth.bench.summary import summarise_grid, summarise_shells
from tumorsynth.dataset.sources import Source
from tumorsynth.engine.case import Case
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.label_maps import label_codes
from tumorsynth.errors import ConfigError
from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.evaluate.metrics import equivalent_radius_mm, evaluate_case
from tumorsynth.segment.postprocess import PostProcess
from tumorsynth.version import __version__

__all__ = ["RobustnessReport", "run_robustness"]

log = logging.getLogger("tumorsynth.bench")


@dataclass(frozen=True)
class RobustnessReport:
    """What :func:`run_robustness` measured and wrote.

    Attributes
    ----------
    result : dict
        The content of ``robustness.json``: ``settings``, ``stats``, ``shell_ranges``,
        ``summary`` (per model, attribute and shell), ``grid_summary``, ``cases``, ``grid_cases``.
    files : dict of str to Path
        The written files.
    """

    result: dict
    files: dict[str, Path]


def _hosts(hosts: Any, cfg: BenchConfig, organ: str = "liver") -> list[Host]:
    if hosts is None or (isinstance(hosts, str) and hosts == "phantom"):
        return load_bench_hosts(
            None,
            margin_mm=cfg.crop_margin_mm,
            phantom_seeds=cfg.phantom_seeds,
            phantom_spacing_mm=cfg.phantom_spacing_mm,
            phantom_organ=organ,
        )
    out = []
    for h in hosts:
        if isinstance(h, Host):
            out.append(h)
        elif isinstance(h, Case):
            out.append(make_host(h.source, h, cfg.crop_margin_mm))
        elif isinstance(h, Source):
            out += load_bench_hosts([h], margin_mm=cfg.crop_margin_mm)
        else:
            raise TypeError(f"a host is a Source, a Case or a Host, got {type(h).__name__}")
    return out


def _stats(
    cfg: BenchConfig, synth: SynthConfig, single: SynthConfig, hosts: Sequence[Host]
) -> dict[str, AttributeStats]:
    """μ and σ per attribute: the config's ``stats``, else derived from the synthesis config; the
    location measured on the hosts when any is not a phantom (the preset's value describes the
    phantoms)."""
    overrides = {
        k: v if v.source else dataclasses.replace(v, source="config") for k, v in cfg.stats.items()
    }
    on_preset = all(h.is_phantom for h in hosts) and synth.name in LOCATION_STATS
    if "location" not in overrides and not on_preset:
        location = measure_location_stats(hosts, single, cfg.location_draws)
        log.info(
            "note: the location's mu and sigma were measured on the %d host(s): %.3g +- %.3g mm "
            "(%d tumours; set stats.location to give them)",
            len(hosts), location.mu, location.sigma, location.n,
        )  # fmt: skip
        overrides["location"] = location
    return resolve_stats(synth, overrides)


def _synthesis(cfg: BenchConfig, organ: str | None) -> SynthConfig:
    """The synthesis config: the organ's preset where the bench config keeps the default
    (``liver``), else the config's own, which must model that organ's tumours."""
    if organ is None:
        return load_config(cfg.synthesis)
    preset = "kidney" if organ.startswith("kidney") else organ
    synth = load_config(preset if cfg.synthesis == "liver" else cfg.synthesis)
    if synth.organ != preset:
        raise ConfigError(
            f"the benchmark's synthesis config {synth.name!r} models {synth.organ} tumours, not "
            f"{organ} ones: remove it from the config, or choose the organ it models"
        )
    return synth


def _where(case: TestCase) -> str:
    what = ", ".join(f"{d.attribute} shell {shell_label(d.shell, d.side)}" for d in case.spec.draws)
    return f"case (host {case.host}, {what}, seed {case.seed})"


def _score(
    model: Model, case: TestCase, tolerance_mm: float, rules: PostProcess, organ: str = "liver"
) -> dict:
    pred = run_model(model, case.image, case.spacing_mm, _where(case))
    # a model of per-organ codes is scored on this organ's codes (the test labels are 1 and 2)
    organ_code, tumour_code = label_codes(organ, getattr(model.predict, "label_scheme", "shared"))
    if not rules.is_identity:
        pred = rules(pred, case.spacing_mm, ((organ_code, tumour_code),))
    gt = np.array([0, organ_code, tumour_code], np.uint8)[case.label]
    m = evaluate_case(
        pred, gt, case.spacing_mm, tumour_label=tumour_code, organ_label=organ_code,
        tolerance_mm=tolerance_mm,
    )  # fmt: skip
    n_voxels = int(np.count_nonzero(case.label == 2))
    return {
        "model": model.name,
        "case": case.spec.index,
        "host": case.host,
        "seed": case.seed,
        "dice": m.dice,
        "nsd": m.nsd,
        "detected": m.detection.n_detected > 0,
        "fp": m.detection.n_false_positives,
        "tumour_voxels": n_voxels,
        "tumour_radius_mm": equivalent_radius_mm(n_voxels * float(np.prod(case.spacing_mm))),
    }


def _shell_row(case: TestCase, score: dict) -> dict:
    (d,) = case.spec.draws
    value = case.values[d.attribute]
    # clipped by the host or the tumour: a location further than half a voxel from its target (no
    # organ voxel that deep), an elongation above it (the deformation's own is larger)
    if d.attribute == "location":
        tolerance = 0.5 * max(case.spacing_mm) + 1e-6
    else:
        tolerance = 1e-6 * max(1.0, abs(d.value))
    moved = abs(value - d.value) > tolerance
    return {
        **score,
        "attribute": d.attribute,
        "shell": d.shell,
        "side": d.side,
        "signed_shell": d.signed_shell,
        "value": value,
        "target": d.target,
        "clipped": bool(d.clipped or moved),
    }


def _grid_row(case: TestCase, score: dict) -> dict:
    size, intensity = case.spec.draws
    return {
        **score,
        "size_shell": size.signed_shell,
        "intensity_shell": intensity.signed_shell,
        "size": case.values["size"],
        "intensity": case.values["intensity"],
    }


def run_robustness(
    models: Sequence[Any] | Mapping[str, Any],
    out_dir: str | Path,
    *,
    hosts: Sequence[Source | Case | Host] | str | None = None,
    config: str | Path | Mapping[str, Any] | BenchConfig | None = None,
    cases_per_shell: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    organ: str | None = None,
) -> RobustnessReport:
    """Run the robustness benchmark and write its reports.

    Parameters
    ----------
    models : sequence or dict
        Checkpoints, TorchScript files, ``module:function`` strings or callables
        (:func:`~tumorsynth.bench.models.load_segmenter`); a dict names them.
    out_dir : str or Path
        Folder for ``cases.csv``, ``grid.csv``, ``robustness.json``, ``robustness.md``,
        ``heatmap_<model>.png`` and ``grid_<model>.png``; written only when every case is scored.
    hosts : sequence, "phantom" or None
        Healthy hosts: :class:`~tumorsynth.dataset.sources.Source` objects (CT with organ mask), cases, or
        the built-in phantoms of the config (default). Unless the config's ``stats`` sets the
        location, its μ and σ are measured on CT hosts (``location_draws`` tumours per host,
        source ``measured`` in ``robustness.json`` and ``robustness.md``); the phantoms use the
        preset's (:data:`~tumorsynth.bench.stats.LOCATION_STATS`).
    config : str, Path, dict, BenchConfig or None
        Benchmark settings (:class:`~tumorsynth.bench.config.BenchConfig`).
    cases_per_shell : int, optional
        Overrides the config's.
    seed : int
        Seed of the test tumours.
    device : str
        For checkpoints and TorchScript models: ``auto``, ``cpu`` or ``cuda[:N]``.
    progress : bool
        Show a progress bar.
    organ : str, optional
        The host organ (``liver``, ``pancreas``, ``kidney``): the phantoms' (CT hosts name theirs
        in their masks) and the synthesis preset, unless the config names another synthesis than
        ``liver``; by default the synthesis config's organ.

    Returns
    -------
    RobustnessReport

    Raises
    ------
    BenchmarkError
        A model raised or returned bad labels (naming the model and the case); nothing is written.
    InputError, ConfigError, PlacementError
        Bad models, hosts or settings, or hosts with no room for the test tumours.
    """
    require_matplotlib("the heat map")  # before the work, not after it
    cfg = load_bench_config(config)
    if cases_per_shell is not None:
        cfg = dataclasses.replace(cfg, cases_per_shell=int(cases_per_shell))
    synth = _synthesis(cfg, organ)
    organ = organ or synth.organ
    single = single_tumour_config(synth, cfg.size_class)
    loaded = load_segmenters(models, device=device, torchscript=cfg.torchscript)
    host_list = _hosts(hosts, cfg, organ)
    stats = _stats(cfg, synth, single, host_list)
    plan = shell_plan(stats, cfg.cases_per_shell, seed, cfg.attributes)
    grid = grid_plan(stats, cfg.grid_cases_per_cell, seed)
    rows, grid_rows = [], []
    total = (len(plan) + len(grid)) * len(loaded)
    with tqdm(total=total, desc="robustness", unit="case", disable=not progress) as bar:
        for spec in [*plan, *grid]:
            case = _synthesize_case(host_list[spec.index % len(host_list)], single, spec, seed)
            for model in loaded:
                score = _score(model, case, cfg.tolerance_mm, cfg.postprocess, organ)
                if spec.kind == "shell":
                    rows.append(_shell_row(case, score))
                else:
                    grid_rows.append(_grid_row(case, score))
                bar.update()
    names = [m.name for m in loaded]
    boot = (cfg.bootstrap_resamples, cfg.bootstrap_seed)
    result = {
        "tumorsynth": __version__,
        "settings": {
            **cfg.to_dict(),
            "seed": seed,
            "synthesis_name": synth.name,
            "synthesis_config": synth.to_dict(),
            "hosts": [
                {
                    "name": h.name,
                    "source": h.case.source,
                    "spacing_mm": list(h.case.spacing_mm),
                    "crop": [[s.start, s.stop] for s in h.box],
                }
                for h in host_list
            ],
            "models": [{"name": m.name, "kind": m.kind, "source": m.source} for m in loaded],
        },
        "stats": {k: dataclasses.asdict(v) for k, v in stats.items()},
        "shell_ranges": {
            a: {f"{s:+d}": list(shell_range(stats[a], a, s)) for s in SIGNED_SHELLS}
            for a in cfg.attributes
        },
        "summary": summarise_shells(rows, names, cfg.attributes, *boot),
        "grid_summary": summarise_grid(grid_rows, names, *boot) if grid_rows else {},
        "cases": rows,
        "grid_cases": grid_rows,
    }
    files = write_reports(Path(out_dir), result, stats)
    return RobustnessReport(result, files)
