"""``tumorsynth sar compare``: does SAR pre-training help the label-free segmenter, and when?

One command runs the whole comparison in an output folder:

1. pre-training twice (:func:`~tumorsynth.methods.sar.trainer.pretrain`): ``restoration`` (Models
   Genesis: the ``pretrain`` section with ``scale_weight = domain_weight = 0``) and ``sar``;
2. fine-tuning on the synthetic stream (``tumorsynth train`` with the ``finetune`` section) from
   each initialisation (``scratch``, ``restoration``, ``sar``), for each budget (a fraction of
   ``finetune.steps``, each run with its own schedule) and seed;
3. scoring every fine-tuned segmenter at its last step on the validation cases (held-out
   phantoms with synthetic tumours, or the user's labelled CT) with
   :func:`~tumorsynth.evaluate.evaluate_case`: tumour Dice, NSD, lesion sensitivity.

It writes ``results.csv`` (one row per run), ``curves.csv`` (validation Dice along every run),
``pretraining.csv`` (held-out restoration error, scale and domain accuracy along both
pre-trainings), ``results.md`` (the table: mean and SD over seeds, and the steps the largest
budget took to reach 95 % of its final Dice) and ``comparison.png``. Finished runs are kept:
``resume`` reuses them and continues an interrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tumorsynth.errors import ConfigError
from tumorsynth.evaluate import evaluate_case, summarise
from tumorsynth.io.volume import write_text_atomic
from tumorsynth.methods.sar.config import SarConfig, finetune_config
from tumorsynth.methods.sar.figures import write_comparison
from tumorsynth.methods.sar.trainer import pretrain
from tumorsynth.segment.checkpoint import load_checkpoint
from tumorsynth.segment.predict import Predictor
from tumorsynth.train import TrainConfig, train
from tumorsynth.train.data import load_val_cases

__all__ = ["CompareResult", "budget_steps", "compare", "steps_to_fraction"]

log = logging.getLogger("tumorsynth.sar")

RESULT_COLUMNS = ("init", "budget", "steps", "seed", "dice", "nsd", "organ_dice",
                  "sensitivity", "fp_per_case", "run")  # fmt: skip
OWN = ("config.json", "pretrain", "finetune", "results.csv", "curves.csv", "pretraining.csv",
       "results.md", "comparison.png")  # fmt: skip
"""What a comparison writes in its folder (and all that ``overwrite`` removes)."""


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` produced.

    Attributes
    ----------
    out_dir : Path
    results : list of dict
        One row per fine-tuning run (the columns of ``results.csv``).
    table : str
        ``results.md``: the comparison as a Markdown table.
    """

    out_dir: Path
    results: list[dict[str, Any]]
    table: str


def budget_steps(budget: float, steps: int) -> int:
    """Steps of a run with ``budget`` (a fraction) of ``steps``: at least 1.

    >>> budget_steps(0.25, 300), budget_steps(0.001, 300)
    (75, 1)
    """
    return max(1, round(budget * steps))


def steps_to_fraction(curve: Sequence[tuple[int, float]], fraction: float = 0.95) -> int | None:
    """The first step of ``curve`` ((step, score) pairs) whose score reaches ``fraction`` of the
    last score; None for an empty curve or a last score of 0.

    >>> steps_to_fraction([(10, 0.2), (20, 0.58), (30, 0.6)])
    20
    """
    if not curve or curve[-1][1] <= 0:
        return None
    goal = fraction * curve[-1][1]
    return next(step for step, score in curve if score >= goal)


def _finished(run: Path, steps: int) -> bool:
    last = run / "checkpoints" / "last.pt"
    return last.is_file() and int(load_checkpoint(last)["step"]) >= steps


def _run(fit, config: Any, resume: bool, progress: bool) -> None:
    """``fit(config)`` (``pretrain`` or ``train``) in ``config.out_dir`` unless that run has
    finished: continued on ``resume`` where it has a checkpoint, else started afresh."""
    run = Path(config.out_dir)
    if _finished(run, config.steps):
        log.info("%s: finished, kept", run)
        return
    again = resume and (run / "checkpoints" / "last.pt").is_file()
    fit(config, resume=again, overwrite=True, progress=progress)


def _prepare(out_dir: Path, config: SarConfig, resume: bool, overwrite: bool) -> None:
    record = out_dir / "config.json"
    if record.exists() and not (resume or overwrite):
        raise ConfigError(f"{out_dir} holds a comparison already: pass --resume to continue it or "
                          "--overwrite to start again")  # fmt: skip
    if resume and record.exists():
        earlier, now = json.loads(record.read_text()), config.to_dict()
        for section in ("pretrain", "finetune"):  # compare may grow: more seeds, budgets
            if earlier.get(section) != now[section]:
                raise ConfigError(f"--resume: the {section} section differs from {record}'s; use "
                                  "another --out or --overwrite")  # fmt: skip
    if overwrite and not resume:
        for name in OWN:
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record, json.dumps(config.to_dict(), indent=2) + "\n")


def _pretrain_all(
    config: SarConfig, out_dir: Path, resume: bool, progress: bool
) -> dict[str, Path]:
    """Pre-train what the initialisations need; their ``best.pt`` by name."""
    pre, checkpoints = config.pretrain, {}
    variants = {"restoration": {"scale_weight": 0.0, "domain_weight": 0.0}, "sar": {}}
    for init in config.compare.inits:
        if init == "scratch":
            continue
        run = out_dir / "pretrain" / init
        cfg = dataclasses.replace(pre, out_dir=str(run), **variants[init])
        log.info("pre-training %s (%d steps) in %s", init, cfg.steps, run)
        _run(pretrain, cfg, resume, progress)
        checkpoints[init] = run / "checkpoints" / "best.pt"
    return checkpoints


def _score(run: Path, cases, device: str) -> dict[str, float | None]:
    """Tumour Dice, NSD, organ Dice, lesion sensitivity and false positives of the last weights."""
    predictor = Predictor.from_checkpoint(run / "checkpoints" / "last.pt", device)
    metrics = [
        evaluate_case(predictor(c.image, c.spacing_mm), c.label, c.spacing_mm) for c in cases
    ]
    summary = summarise(metrics)
    detection = summary["detection"]
    return {
        "dice": summary["dice"]["mean"],
        "nsd": summary["nsd"]["mean"],
        "organ_dice": summary["organ_dice"]["mean"],
        "sensitivity": detection["all"]["sensitivity"],
        "fp_per_case": detection["false_positives"]["per_case"],
    }


def _val_rows(run: Path, keys: Sequence[str]) -> list[dict[str, float]]:
    with (run / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    return [{"step": int(r["step"]), **{k: float(r[k]) for k in keys if r.get(k)}} for r in rows]


def _finetune_runs(config: SarConfig) -> list[tuple[str, float, int]]:
    cmp = config.compare
    return [(init, b, s) for s in cmp.seeds for b in sorted(cmp.budgets) for init in cmp.inits]


def _finetune_all(
    config: SarConfig, base: TrainConfig, out_dir: Path, checkpoints: dict[str, Path],
    resume: bool, progress: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """Fine-tune and score every (init, budget, seed): the rows of ``results.csv`` and
    ``curves.csv``."""
    cases = load_val_cases(base, progress=False)
    device = "cuda" if base.device != "cpu" and _cuda() else "cpu"
    results, curves = [], []
    for init, budget, seed in _finetune_runs(config):
        run = out_dir / "finetune" / init / f"b{budget:g}_s{seed}"
        steps = budget_steps(budget, base.steps)
        init_from = str(checkpoints[init]) if init in checkpoints else None
        cfg = finetune_config(config, out_dir=str(run), steps=steps, seed=seed, init_from=init_from)
        log.info("fine-tuning from %s, %d steps (budget %g), seed %d", init, steps, budget, seed)
        _run(train, cfg, resume, progress)
        scores = _score(run, cases, device)
        results.append({"init": init, "budget": budget, "steps": steps, "seed": seed, **scores,
                        "run": str(run.relative_to(out_dir))})  # fmt: skip
        for row in _val_rows(run, ("tumour_dice", "organ_dice")):
            curves.append({"init": init, "budget": budget, "seed": seed, **row})
    return results, curves


def _check_validation(cfg: TrainConfig) -> None:
    if not (cfg.val_images or cfg.n_val_synthetic):
        raise ConfigError("finetune: compare scores every segmenter on validation cases: set "
                          "n_val_synthetic (held-out phantoms) or val_images and val_labels")  # fmt: skip


def compare(
    config: SarConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> CompareResult:
    """Fine-tune from scratch, from restoration-only pre-training and from SAR, at every budget
    and seed of ``config.compare``, and compare them (see the module for what is written).

    Parameters
    ----------
    config : SarConfig
    out_dir : str or Path
        The comparison's folder: ``pretrain/<init>/``, ``finetune/<init>/b<budget>_s<seed>/``
        (run folders of ``tumorsynth train``) and the results.
    resume : bool
        Keep the finished runs of an earlier call with the same ``pretrain`` and ``finetune``
        sections (``compare`` may differ: more seeds or budgets) and continue the others.
    overwrite : bool
        Start again in a folder that holds a comparison (only what a comparison writes goes).
    progress : bool
        Show progress bars.

    Returns
    -------
    CompareResult

    Raises
    ------
    ConfigError, InputError
        Before any step: a bad config, no validation cases, a folder that holds a comparison
        without ``resume`` / ``overwrite``, and everything ``pretrain`` and ``train`` check.
    """
    out_dir = Path(out_dir)
    base = finetune_config(config, out_dir=str(out_dir / "finetune"))
    _check_validation(base)
    _prepare(out_dir, config, resume, overwrite)
    checkpoints = _pretrain_all(config, out_dir, resume, progress)
    results, curves = _finetune_all(config, base, out_dir, checkpoints, resume, progress)
    pretraining = [
        {"init": init, **row}
        for init in checkpoints
        for row in _val_rows(
            out_dir / "pretrain" / init, ("restore_mse", "scale_acc", "domain_acc")
        )
    ]
    table = results_table(results, curves)
    _write(out_dir, results, curves, pretraining, table)
    return CompareResult(out_dir, results, table)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


def _write(out_dir: Path, results, curves, pretraining, table: str) -> None:
    write_text_atomic(out_dir / "results.csv", _csv(results, RESULT_COLUMNS))
    write_text_atomic(out_dir / "curves.csv", _csv(curves, ("init", "budget", "seed", "step",
                                                            "tumour_dice", "organ_dice")))  # fmt: skip
    write_text_atomic(out_dir / "pretraining.csv", _csv(pretraining, ("init", "step", "restore_mse",
                                                                      "scale_acc", "domain_acc")))  # fmt: skip
    write_text_atomic(out_dir / "results.md", table)
    largest = max(r["budget"] for r in results)
    write_comparison(out_dir / "comparison.png", results,
                     [c for c in curves if c["budget"] == largest], pretraining)  # fmt: skip


def _cell(values: Sequence[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def results_table(results: Sequence[Mapping[str, Any]], curves: Sequence[Mapping[str, Any]]) -> str:
    """The comparison as Markdown: held-out tumour Dice per initialisation (rows) and budget
    (columns; mean ± SD over seeds), the NSD and lesion sensitivity at the largest budget, and
    the steps its validation Dice took to reach 95 % of its last value (mean over seeds)."""
    budgets = sorted({r["budget"] for r in results})
    largest = budgets[-1]
    steps = {b: next(r["steps"] for r in results if r["budget"] == b) for b in budgets}
    head = ["initialisation", *[f"Dice @ {b:.0%} ({steps[b]} steps)" for b in budgets],
            "NSD @ 100 %", "sensitivity @ 100 %", "steps to 95 % of final Dice"]  # fmt: skip
    if largest != 1.0:
        head[-3:-1] = [f"NSD @ {largest:.0%}", f"sensitivity @ {largest:.0%}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for init in dict.fromkeys(r["init"] for r in results):
        mine = [r for r in results if r["init"] == init]
        top = [r for r in mine if r["budget"] == largest]
        reach = []
        for seed in sorted({r["seed"] for r in top}):
            curve = [(c["step"], c["tumour_dice"]) for c in curves
                     if c["init"] == init and c["budget"] == largest and c["seed"] == seed]  # fmt: skip
            reach.append(steps_to_fraction(sorted(curve)))
        reached = [r for r in reach if r is not None]
        cells = [_cell([r["dice"] for r in mine if r["budget"] == b]) for b in budgets]
        cells += [_cell([r["nsd"] for r in top]), _cell([r["sensitivity"] for r in top]),
                  f"{np.mean(reached):.0f}" if reached else "-"]  # fmt: skip
        lines.append("| " + " | ".join([init, *cells]) + " |")
    return "\n".join(lines) + "\n"
