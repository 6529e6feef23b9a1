r"""SPARS and its baselines in one run and one evaluation: the results table.

:func:`compare_methods` segments labelled volumes with SPARS, each baseline of the same classifier
(random-walk agents, the exhaustive sliding-window map, Grad-CAM) and, when a checkpoint is given,
the supervised segmenter of ``tumorsynth train``; every method gets the same liver mask and the
same volumes, and is scored by :func:`tumorsynth.evaluate.evaluate_case` (tumour Dice, lesion
sensitivity, false positives per case). :func:`write_comparison` writes ``results.json``,
``results.md`` and ``results.png``.

The labelled volumes are synthetic tumours in held-out phantoms (:func:`phantom_cases`) or in
real CTs with liver masks (:func:`ct_cases`): the tumour masks are known, none was used to learn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.engine.pipeline import synthesize
from tumorsynth.evaluate.metrics import CaseMetrics, evaluate_case
from tumorsynth.evaluate.summary import summarise
from tumorsynth.io.case import read_case
from tumorsynth.io.volume import write_atomic, write_text_atomic
from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.methods.spars.model import METHODS, SparsModel
from tumorsynth.methods.spars.segment import segment_volume

__all__ = [
    "EVAL_PHANTOM_SEED",
    "LabelledCT",
    "compare_methods",
    "ct_cases",
    "phantom_cases",
    "table",
    "write_comparison",
]

EVAL_PHANTOM_SEED = 1100
"""First phantom seed of the evaluation volumes (training hosts use 0, 1, ...; the classifier's
validation 1000, 1001)."""

SEGMENTER = "supervised"
"""The name of the ``tumorsynth train`` baseline in the results."""


@dataclass(frozen=True, eq=False)
class LabelledCT:
    """A CT with known labels: (X, Y, Z) float32 HU ``image``, uint8 ``label`` (0, 1 liver,
    2 tumour), ``spacing_mm``."""

    name: str
    image: np.ndarray
    label: np.ndarray
    spacing_mm: tuple[float, float, float]


def phantom_cases(
    config: SparsConfig, n: int, seed: int, spacing_mm: float | None = None
) -> list[LabelledCT]:
    """``n`` held-out phantoms (seeds 1100, ...; neither hosts nor validation) at ``spacing_mm``
    (default the run's voxel size), with the tumours of ``config.synth_config`` from ``seed``."""
    from tumorsynth.phantom import make_phantom

    out = []
    for k in range(n):
        host = make_phantom(seed=EVAL_PHANTOM_SEED + k, spacing_mm=spacing_mm or config.spacing_mm)
        result = synthesize(host, config=config.synth_config, seed=seed + k)
        name = f"phantom{EVAL_PHANTOM_SEED + k}"
        out.append(LabelledCT(name, np.asarray(result.image), np.asarray(result.label),
                              host.spacing_mm))  # fmt: skip
    return out


def ct_cases(
    config: SparsConfig,
    images: Sequence[str | Path],
    masks: Sequence[str | Path],
    seed: int,
    organ_label: int | None = None,
) -> list[LabelledCT]:
    """Real CTs with their liver masks and synthetic tumours (``config.synth_config``, seed
    ``seed + k``) inserted on their own grid."""
    out = []
    for k, (image, mask) in enumerate(zip(images, masks, strict=True)):
        case = read_case(image, mask, organ_label).case
        result = synthesize(case, config=config.synth_config, seed=seed + k)
        name = Path(image).name.split(".")[0]
        out.append(LabelledCT(name, np.asarray(result.image), np.asarray(result.label),
                              case.spacing_mm))  # fmt: skip
    return out


def _segmenter_labels(predictor, case: LabelledCT) -> np.ndarray:
    """The supervised segmenter's tumour inside the given liver (as every method gets it)."""
    liver = case.label > 0
    pred = predictor(case.image, case.spacing_mm)
    return np.where(liver, np.where(pred == 2, 2, 1), 0).astype(np.uint8)


def compare_methods(
    model: SparsModel,
    cases: Sequence[LabelledCT],
    *,
    methods: Sequence[str] = METHODS,
    segmenter: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Segment ``cases`` with each method and score them (see the module).

    Returns
    -------
    dict
        Per method: ``cases`` (name -> :class:`~tumorsynth.evaluate.CaseMetrics`), ``summary``
        (:func:`~tumorsynth.evaluate.summarise`), ``seconds_per_case``.
    """
    predictor = None
    names = list(methods)
    if segmenter is not None:
        from tumorsynth.segment.predict import Predictor

        predictor = Predictor.from_checkpoint(segmenter, str(model.device))
        names.append(SEGMENTER)
    results: dict[str, dict] = {m: {"cases": {}, "seconds": 0.0} for m in names}
    jobs = [(c, m) for c in cases for m in names]
    for case, method in tqdm(jobs, desc="compare", unit="run", disable=not progress):
        t0 = time.perf_counter()
        if method == SEGMENTER:
            labels = _segmenter_labels(predictor, case)
        else:
            labels = segment_volume(model, case.image, case.label > 0, case.spacing_mm,
                                    method=method, name=case.name, seed=seed)  # fmt: skip
        results[method]["seconds"] += time.perf_counter() - t0
        results[method]["cases"][case.name] = evaluate_case(labels, case.label, case.spacing_mm)
    for entry in results.values():
        metrics: list[CaseMetrics] = list(entry["cases"].values())
        entry["summary"] = summarise(metrics)
        entry["dice_sd"] = float(np.std([m.dice for m in metrics]))
        entry["seconds_per_case"] = entry.pop("seconds") / max(len(cases), 1)
    return results


def table(results: dict[str, dict]) -> str:
    """The results as a Markdown table: tumour Dice (mean +- SD), lesion sensitivity, false
    positives per case, seconds per case."""
    lines = [
        "| method | tumour Dice (mean ± SD) | lesion sensitivity | false positives / case | s / case |",
        "|---|---|---|---|---|",
    ]
    for method, entry in results.items():
        s = entry["summary"]
        det = s["detection"]
        sens = det["all"]["sensitivity"]
        lines.append(
            f"| {method} | {s['dice']['mean']:.3f} ± {entry['dice_sd']:.3f} | "
            f"{'-' if sens is None else f'{sens:.2f}'} ({det['all']['n_detected']}/"
            f"{det['all']['n_lesions']}) | {det['false_positives']['per_case']:.2f} | "
            f"{entry['seconds_per_case']:.2f} |"
        )
    return "\n".join(lines)


def write_comparison(out_dir: str | Path, results: dict[str, dict], note: str = "") -> list[Path]:
    """Write ``results.json`` (every case's metrics), ``results.md`` (:func:`table` and ``note``)
    and ``results.png`` (Dice per case and method) atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {
        m: {
            "summary": e["summary"],
            "dice_sd": e["dice_sd"],
            "seconds_per_case": e["seconds_per_case"],
            "cases": {name: c.to_dict() for name, c in e["cases"].items()},
        }
        for m, e in results.items()
    }
    paths = [
        write_text_atomic(out / "results.json", json.dumps(data, indent=2) + "\n"),
        write_text_atomic(
            out / "results.md", table(results) + ("\n\n" + note if note else "") + "\n"
        ),
    ]
    paths.append(write_atomic(out / "results.png", lambda tmp: _figure(tmp, results)))
    return paths


def _figure(path: Path, results: dict[str, dict]) -> None:
    from tumorsynth.evaluate.figure import require_matplotlib

    figure = require_matplotlib("the comparison figure")
    fig = figure(figsize=(1.6 + 1.3 * len(results), 3.2), dpi=120)
    ax = fig.subplots()
    for k, entry in enumerate(results.values()):
        dice = [c.dice for c in entry["cases"].values()]
        ax.scatter(np.full(len(dice), k) + np.linspace(-0.15, 0.15, len(dice)), dice, s=14)
        ax.hlines(np.mean(dice), k - 0.3, k + 0.3, color="k")
    ax.set_xticks(range(len(results)), list(results), rotation=20)
    ax.set_ylabel("tumour Dice per case")
    ax.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    fig.savefig(path, format="png")
