r"""``tumorsynth bench transfer``: does a change to the synthesis help a segmenter find tumours?

The same training recipe is run under two or more synthesis configs (``syntumor`` against
``liver``, or a config against its calibrated twin), several seeds each; every model segments the
same test scans (:mod:`~tumorsynth.bench.transfer_sets`: held-out phantoms and healthy CT with test
tumours, labelled real scans), is scored as ``tumorsynth predict`` is used (its post-processing),
and the configs are compared per score, paired by seed and by test case
(:mod:`~tumorsynth.bench.transfer_stats`).

**Resumable.** Each run is a ``tumorsynth train`` run folder, ``<out>/runs/<config>_seed<seed>/``:
a finished run is kept, an interrupted one resumes from its ``last.pt`` (the run's own config
must be the recipe's), and a run's scores are kept in ``transfer_eval.json`` beside its
checkpoints for as long as the checkpoint and the test settings stay the same. Running the same
command again after a crash (or Ctrl-C) only does what is missing.

Examples
--------
>>> report = run_transfer("examples/configs/transfer_cpu.yaml", "transfer")  # doctest: +SKIP
>>> report.result["comparison"]["liver"]["phantom/liver"]["dice"]["mean_diff"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tumorsynth.bench.transfer_config import TransferConfig, load_transfer_config
from tumorsynth.bench.transfer_report import write_transfer_reports
from tumorsynth.bench.transfer_sets import EvalScan, load_eval_sets
from tumorsynth.bench.transfer_stats import aggregate, case_row, compare, score_set
from tumorsynth.errors import ConfigError
from tumorsynth.evaluate.figure import require_matplotlib
from tumorsynth.evaluate.metrics import detection, evaluate_case
from tumorsynth.io.volume import write_text_atomic
from tumorsynth.segment.checkpoint import load_checkpoint
from tumorsynth.segment.predict import Predictor
from tumorsynth.train.config import TrainConfig, load_train_config
from tumorsynth.train.segmentation import train
from tumorsynth.version import __version__

__all__ = ["TransferReport", "run_transfer"]

log = logging.getLogger("tumorsynth.bench")

EVAL_FILE = "transfer_eval.json"


@dataclass(frozen=True)
class TransferReport:
    """What :func:`run_transfer` measured and wrote.

    Attributes
    ----------
    result : dict
        The content of ``transfer.json``: ``settings``, ``test_sets``, ``runs`` (a row per run
        and test set), ``scores``, ``summary`` (per test set and config, over seeds),
        ``comparison`` (each config against the first).
    files : dict of str to Path
    """

    result: dict
    files: dict[str, Path]


def _cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (DataLoader workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _same_recipe(folder: Path, wanted: TrainConfig) -> None:
    """Refuse to resume a run folder whose run had another config (but for ``steps``)."""
    path = folder / "config.json"
    if not path.is_file():
        return
    have = load_train_config(json.loads(path.read_text())).to_dict()
    want = wanted.to_dict()
    diff = sorted(k for k in want if k != "steps" and have.get(k) != want.get(k))
    if diff:
        raise ConfigError(
            f"{folder} holds a run of another recipe (it differs in {', '.join(diff)}): choose "
            "another --out, or remove that run folder"
        )


def train_run(tc: TrainConfig, progress: bool) -> dict[str, Any]:
    """Train one run to ``tc.steps``, resuming or skipping as its folder says; returns what was
    done (``"done"``, ``"resumed"`` or ``"trained"``) and the CPU and wall seconds it took."""
    folder = Path(tc.out_dir)
    _same_recipe(folder, tc)
    last = folder / "checkpoints" / "last.pt"
    t_cpu, t_wall = _cpu_s(), time.perf_counter()
    if last.is_file() and int(load_checkpoint(last)["step"]) >= tc.steps:
        return {"status": "done"}
    if last.is_file():
        status = "resumed"
        train(tc, resume=True, progress=progress)
    else:  # a folder without a checkpoint holds nothing worth keeping
        status = "trained"
        train(tc, overwrite=(folder / "config.json").exists(), progress=progress)
    return {"status": status, "cpu_s": _cpu_s() - t_cpu, "wall_s": time.perf_counter() - t_wall}


def _fingerprint(cfg: TransferConfig, sets: Mapping[str, list[EvalScan]], ckpt: Path) -> str:
    """What a run's stored scores depend on: the checkpoint's bytes, the test scans and settings,
    the sliding windows' overlap."""
    digest = hashlib.sha256()
    with ckpt.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    key = {
        "checkpoint": digest.hexdigest(),
        "sets": {k: [(s.name, s.seed, list(s.image.shape)) for s in v] for k, v in sets.items()},
        "settings": {k: cfg.to_dict()[k] for k in (
            "test_synthesis", "test_phantoms", "test_ct", "test_ct_masks", "organ_label",
            "test_cases_per_host", "labelled_images", "labelled_labels", "test_seed",
            "crop_margin_mm", "postprocess", "tolerance_mm", "configs",
        )},
        "overlap": cfg.train_config(next(iter(cfg.configs)), 0, ".").sw_overlap,
        "version": 1,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def evaluate_run(
    cfg: TransferConfig,
    folder: Path,
    sets: Mapping[str, list[EvalScan]],
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Score one run's checkpoint on every test set (kept in ``<run>/transfer_eval.json``), by
    sliding windows with the recipe's overlap, as its validation segments."""
    ckpt = folder / "checkpoints" / f"{cfg.checkpoint}.pt"
    fingerprint = _fingerprint(cfg, sets, ckpt)
    cache = folder / EVAL_FILE
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("fingerprint") == fingerprint:
            return stored
    t_cpu = _cpu_s()
    recipe = cfg.train_config(next(iter(cfg.configs)), 0, folder)
    predictor = Predictor.from_checkpoint(
        ckpt, device, overlap=recipe.sw_overlap, sw_batch_size=recipe.sw_batch_size,
        postprocess=None,
    )  # fmt: skip
    total = sum(len(v) for v in sets.values())
    out: dict[str, Any] = {"fingerprint": fingerprint, "checkpoint": str(ckpt), "sets": {}}
    with tqdm(total=total, desc=f"score {folder.name}", disable=not progress, leave=False) as bar:
        for set_name, scans in sets.items():
            rows, metrics = [], []
            for scan in scans:
                raw = predictor(scan.image, scan.spacing_mm)
                post = cfg.postprocess(raw, scan.spacing_mm)
                m = evaluate_case(post, scan.label, scan.spacing_mm, tolerance_mm=cfg.tolerance_mm)
                raw_det = detection(raw == 2, scan.label == 2, scan.spacing_mm)
                rows.append(case_row(scan.name, m, raw_det))
                metrics.append(m)
                bar.update()
            out["sets"][set_name] = {"scores": score_set(rows, metrics), "cases": rows}
    out["eval_cpu_s"] = _cpu_s() - t_cpu
    write_text_atomic(cache, json.dumps(out, indent=1, allow_nan=False) + "\n")
    return out


def _test_sets_info(sets: Mapping[str, list[EvalScan]]) -> dict:
    from tumorsynth.evaluate.metrics import lesions

    return {
        name: {
            "n_cases": len(scans),
            "n_lesions": sum(len(lesions(s.label == 2, s.spacing_mm)[1]) for s in scans),
            "cases": [
                {"name": s.name, "seed": s.seed, "spacing_mm": list(s.spacing_mm)} for s in scans
            ],
        }
        for name, scans in sets.items()
    }


def run_transfer(
    config: str | Path | Mapping[str, Any] | TransferConfig | None,
    out_dir: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    device: str = "auto",
    progress: bool = True,
) -> TransferReport:
    """Train every (config, seed) run of the experiment, score each on the same test scans and
    write the comparison.

    Parameters
    ----------
    config : path, dict, TransferConfig or None
        The settings (:class:`~tumorsynth.bench.transfer_config.TransferConfig`).
    out_dir : str or Path
        Folder of ``runs/<config>_seed<seed>/`` (``tumorsynth train`` run folders) and of
        ``transfer.md``, ``transfer.png``, ``runs.csv`` and ``transfer.json``; a folder that
        holds some of it is continued (see the module).
    overrides : dict, optional
        Fields set on top of ``config`` (``recipe.<field>`` sets a recipe field).
    device : str
        Where the models segment the test scans: ``auto``, ``cpu`` or ``cuda[:N]`` (the
        recipe's ``device`` trains).
    progress : bool
        Show progress bars.

    Raises
    ------
    ConfigError, InputError, PlacementError
        Bad settings, missing or unreadable test files, a run folder of another recipe, before
        anything is trained.
    """
    require_matplotlib("the transfer plot")  # before the work, not after it
    cfg = load_transfer_config(config, overrides)
    out = Path(out_dir)
    sets = load_eval_sets(cfg, progress)  # bad test files stop the run before any training
    plan = [(name, seed) for seed in cfg.seeds for name in cfg.configs]
    runs = {key: cfg.train_config(*key, out / "runs" / f"{key[0]}_seed{key[1]}") for key in plan}
    for tc in runs.values():
        _same_recipe(Path(tc.out_dir), tc)
    scores: dict = {n: {} for n in cfg.configs}
    cases: dict = {n: {} for n in cfg.configs}
    rows, timing = [], {}
    for k, (name, seed) in enumerate(plan, start=1):
        tc = runs[(name, seed)]
        log.info("run %d of %d: %s, seed %d -> %s", k, len(plan), name, seed, tc.out_dir)
        done = train_run(tc, progress)
        evaluated = evaluate_run(cfg, Path(tc.out_dir), sets, device, progress)
        timing[f"{name}_seed{seed}"] = {**done, "eval_cpu_s": evaluated.get("eval_cpu_s")}
        scores[name][seed] = {s: v["scores"] for s, v in evaluated["sets"].items()}
        cases[name][seed] = {s: v["cases"] for s, v in evaluated["sets"].items()}
        for set_name, v in evaluated["sets"].items():
            rows.append({"config": name, "seed": seed, "set": set_name, **v["scores"]})
    result = {
        "tumorsynth": __version__,
        "settings": cfg.to_dict(),
        "postprocess": cfg.postprocess.describe(),
        "test_sets": _test_sets_info(sets),
        "runs": [{k: v for k, v in r.items() if k != "detection"} for r in rows],
        "detection": [{k: r[k] for k in ("config", "seed", "set", "detection")} for r in rows],
        "timing": timing,
        "summary": aggregate(scores),
        "comparison": compare(scores, cases, next(iter(cfg.configs)), cfg.bootstrap_seed),
    }
    return TransferReport(result, write_transfer_reports(out, result))
