r"""``tumorsynth aslseg run``: ASLseg's loop, stage by stage and round by round, resumable.

Round :math:`r = 0 \dots R-1`, on the labelled set :math:`L_r` and unlabelled set :math:`U_r`:

1. stage I: the semi-supervised segmenter :math:`f_r` (:mod:`~tumorsynth.methods.aslseg.ssl`);
2. stage II: SAM's mask decoder tuned on :math:`L_r` (:mod:`~tumorsynth.methods.aslseg.sam_tune`);
3. stage III: the adaptation network on synthetic pseudo-labels of :math:`L_r`
   (:mod:`~tumorsynth.methods.aslseg.adapt`);
4. pseudo-labels of :math:`U_r` through the three (:mod:`~tumorsynth.methods.aslseg.pseudo`), the
   reliable ones moved into the labelled set (:mod:`~tumorsynth.methods.aslseg.select`).

Then :math:`f_R` is trained on the last labelled set (the deliverable), and the ablation is scored
on the held-out volumes (:mod:`~tumorsynth.methods.aslseg.ablation`). Every stage is a
:class:`~tumorsynth.train.Trainer` run in its own folder (see
:mod:`~tumorsynth.methods.aslseg.rundir`): an interrupted run resumes from the stage and step it
reached, and finished stages and selections are read back, not redone.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tumorsynth.errors import ConfigError, InputError
from tumorsynth.io.volume import write_atomic, write_text_atomic
from tumorsynth.methods.aslseg import ablation, data, figures
from tumorsynth.methods.aslseg.adapt import AdaptTrainer, load_adapter
from tumorsynth.methods.aslseg.config import ASLsegConfig, stage_config
from tumorsynth.methods.aslseg.pseudo import Models, pseudo_labels
from tumorsynth.methods.aslseg.rundir import check_run_dir, clear_run_dir
from tumorsynth.methods.aslseg.sam import build_sam, load_sam, save_sam
from tumorsynth.methods.aslseg.sam_tune import SamTuner, load_tuned_sam, prompter_for
from tumorsynth.methods.aslseg.select import Selection, grow, select
from tumorsynth.methods.aslseg.slices import Slices, cut
from tumorsynth.methods.aslseg.ssl import SemiSupervisedTrainer, load_segmenter
from tumorsynth.train.runtime import start_runtime

__all__ = ["RunResult", "run_aslseg"]

log = logging.getLogger("tumorsynth.aslseg")

BEST = Path("checkpoints") / "best.pt"


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    Attributes
    ----------
    out_dir : Path
    rounds : list of dict
        Per round: the sets' sizes and the selection's record.
    ablation : list of dict or None
        The ablation's rows (None without held-out volumes).
    """

    out_dir: Path
    rounds: list[dict[str, Any]]
    ablation: list[dict[str, Any]] | None


def _check_sam(config: ASLsegConfig) -> Path | None:
    """The SAM checkpoint, checked by loading it once on the CPU (None: tiny, random)."""
    if config.sam_checkpoint is None:
        return None
    path = Path(config.sam_checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: no such SAM checkpoint (sam_checkpoint)")
    load_sam(config.sam_model, path, "cpu")
    return path


def _load_data(config: ASLsegConfig) -> tuple[Slices, Slices, list, list[dict]]:
    log.info("reading the data: hosts, unlabelled and held-out volumes")
    labelled, record = data.labelled_slices(config, data.hosts(config))
    unlabelled = data.unlabelled_slices(config, data.unlabelled_volumes(config))
    test = data.test_volumes(config)
    log.info("labelled set: %d slices (%d with tumour); unlabelled: %d slices; held out: %d "
             "volumes", len(labelled), int(labelled.tumour.any(axis=(1, 2)).sum()),
             len(unlabelled), len(test))  # fmt: skip
    return labelled, unlabelled, test, record


def run_aslseg(
    config: ASLsegConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> RunResult:
    """Run ASLseg (see the module) in ``config.out_dir``.

    Parameters
    ----------
    config : ASLsegConfig
    resume : bool
        Continue the run in the folder (same config).
    overwrite : bool
        Start again in a folder that holds a run (only the run's own files go).
    progress : bool
        Progress bars.

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError, InputError
        Before anything is written: a folder that holds a run, a missing or mismatched SAM
        checkpoint, unreadable CTs, a CT without a liver mask, an empty liver, no unlabelled
        slices.
    """
    out = Path(config.out_dir)
    check_run_dir(out, config, resume, overwrite)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("ASLseg runs in one process: start it without torchrun")
    base = _check_sam(config)
    labelled, unlabelled, test, record = _load_data(config)
    if overwrite:
        clear_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
    write_text_atomic(out / "labelled.json", json.dumps(record, indent=2) + "\n")
    if base is None:
        base = out / "sam_init.pt"
        if not base.exists():
            log.warning("no sam_checkpoint: a tiny SAM with random weights (tests and demos only)")
            save_sam(build_sam("tiny", seed=config.seed), base)
    runtime = start_runtime(config.device, config.threads)
    try:
        loop = _Loop(config, out, base, runtime.device, progress)
        return loop.run(labelled, unlabelled, test)
    finally:
        runtime.close()


def _save_npz(path: Path, **arrays: np.ndarray) -> Path:
    """``arrays`` in a compressed ``.npz`` at ``path``, written atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return write_atomic(path, write)


class _Loop:
    """The rounds of one run (see :func:`run_aslseg`)."""

    def __init__(self, config: ASLsegConfig, out: Path, base: Path, device, progress: bool):
        self.config, self.out, self.base = config, out, base
        self.device, self.progress = torch.device(device), progress

    def train(self, stage: str, folder: Path, round_index: int, **kwargs: Any) -> Path:
        """Train (or resume, or skip when done) one stage in ``folder``; its ``best.pt``."""
        if (folder / BEST).is_file():
            return folder / BEST
        cls = {"ssl": SemiSupervisedTrainer, "sam": SamTuner, "adapt": AdaptTrainer}[stage]
        resume = (folder / "checkpoints" / "last.pt").is_file()
        name = {"ssl": f"stage I ({self.config.ssl_method})", "sam": "stage II (SAM decoder)",
                "adapt": "stage III (adaptation network)"}[stage]  # fmt: skip
        log.info("%s: %s%s", folder.relative_to(self.out), name, " (resumed)" if resume else "")
        cfg = stage_config(self.config, stage, folder, round_index)
        cls(cfg, self.config, resume=resume, overwrite=not resume, progress=self.progress,
            **kwargs).fit()  # fmt: skip
        return folder / BEST

    def models(self, folder: Path, full: bool = True) -> Models:
        """The networks trained in ``folder`` (a round's three, or stage I alone)."""
        f = load_segmenter(folder / "ssl" / BEST, self.device)
        if not full:
            return Models(f, None, None, self.device)
        sam = load_tuned_sam(self.config, self.base, folder / "sam" / BEST, self.device)
        g = load_adapter(folder / "adapt" / BEST, self.device)
        return Models(f, prompter_for(self.config, sam, self.device), g, self.device)

    def warm(self, folder: Path, stage: str) -> Path | None:
        """The checkpoint a stage starts from: ``folder``'s (a previous round) under
        ``warm_start``, else None (from scratch)."""
        return folder / stage / BEST if self.config.warm_start else None

    def one_round(
        self, r: int, labelled: Slices, unlabelled: Slices
    ) -> tuple[Models, Selection, np.ndarray]:
        folder, before = self.out / f"round{r}", self.out / f"round{r - 1}"
        init = {k: self.warm(before, k) if r else None for k in ("ssl", "sam", "adapt")}
        self.train("ssl", folder / "ssl", r, labelled=labelled, unlabelled=unlabelled,
                   init=init["ssl"])  # fmt: skip
        self.train("sam", folder / "sam", r, labelled=labelled, sam_checkpoint=self.base,
                   init=init["sam"])  # fmt: skip
        sam = load_tuned_sam(self.config, self.base, folder / "sam" / BEST, self.device)
        prompter = prompter_for(self.config, sam, self.device)
        self.train("adapt", folder / "adapt", r, labelled=labelled, prompter=prompter,
                   init=init["adapt"])  # fmt: skip
        models = self.models(folder)
        selection, refined = self.select(folder, models, labelled, unlabelled)
        return models, selection, refined

    def select(
        self, folder: Path, models: Models, labelled: Slices, unlabelled: Slices
    ) -> tuple[Selection, np.ndarray]:
        """The round's selection and every candidate's refined pseudo-label, read back when the
        round made them before."""
        path, cfg = folder / "selection.npz", self.config
        if path.is_file():
            with np.load(path) as saved:
                if saved["ids"].tolist() != unlabelled.ids.tolist():
                    raise InputError(
                        f"{path}: made from another unlabelled set; start again with --overwrite"
                    )
                shape = unlabelled.tumour.shape
                refined = np.unpackbits(saved["refined"], count=int(np.prod(shape)))
                accepted = saved["accepted"].astype(bool)
            record = json.loads((folder / "selection.json").read_text())
            return Selection(accepted, record), refined.reshape(shape).astype(bool)
        pseudo = pseudo_labels(models, unlabelled, cfg.min_area_px, progress=self.progress)
        has = labelled.tumour.any(axis=(1, 2))
        ratio = float((~has).sum()) / max(int(has.sum()), 1)
        sel = select(pseudo, unlabelled, agreement_min=cfg.agreement_min,
                     confidence_min=cfg.confidence_min, empty_ratio=ratio)  # fmt: skip
        record = {**sel.record, "n_labelled": len(labelled), "n_unlabelled": len(unlabelled)}
        if cfg.ablation_no_selection and folder.name == "round0":
            every = select(pseudo, unlabelled, agreement_min=0.0, confidence_min=0.0,
                           empty_ratio=ratio)  # fmt: skip
            _save_npz(folder / "no_selection.npz", accepted=every.accepted)
        write_text_atomic(folder / "selection.json", json.dumps(record, indent=2) + "\n")
        # written last: its presence marks the round's selection as made
        _save_npz(path, ids=unlabelled.ids, accepted=sel.accepted, agreement=pseudo.agreement,
                  confidence=pseudo.confidence, refined=np.packbits(pseudo.refined))  # fmt: skip
        return Selection(sel.accepted, record), pseudo.refined

    def run(self, labelled: Slices, unlabelled: Slices, test: list) -> RunResult:
        cfg, records, segmenters = self.config, [], {}
        start = (labelled, unlabelled)
        for r in range(cfg.rounds):
            models, sel, refined = self.one_round(r, labelled, unlabelled)
            if r == 0:
                round0, refined0 = models, refined
            elif r == 1:
                segmenters["selection"] = Models(models.segmenter, None, None, self.device)
            n = int(sel.accepted.sum())
            records.append({"round": r, **sel.record, "n_labelled_after": len(labelled) + n})
            log.info("round %d: accepted %d of %d unlabelled slices (%d with tumour)", r, n,
                     len(unlabelled), sel.record["n_accepted_tumour"])  # fmt: skip
            labelled, unlabelled = grow(labelled, unlabelled, sel.accepted, refined)
            if n < cfg.min_added or not len(unlabelled):
                log.info("round %d accepted %d slices (min_added %d), %d left: the loop stops",
                         r, n, cfg.min_added, len(unlabelled))  # fmt: skip
                break
        final = self.out / "final"
        pool = unlabelled if len(unlabelled) else labelled  # consistency on labelled slices
        last = self.warm(self.out / f"round{len(records) - 1}", "ssl")
        self.train("ssl", final / "ssl", len(records), labelled=labelled, unlabelled=pool,
                   init=last)  # fmt: skip
        segmenters["rounds" if segmenters else "selection"] = self.models(final, full=False)
        if cfg.ablation_no_selection:
            segmenters["no_selection"] = self.no_selection(*start, refined0)
        self.write_rounds(records)
        rows = self.write_ablation(round0, segmenters, test) if test else None
        self.write_model(len(records))
        return RunResult(self.out, records, rows)

    def no_selection(self, labelled: Slices, unlabelled: Slices, refined: np.ndarray) -> Models:
        """Stage I retrained with round 0's refined pseudo-labels, without the reliability test."""
        with np.load(self.out / "round0" / "no_selection.npz") as saved:
            accepted = saved["accepted"].astype(bool)
        grown, rest = grow(labelled, unlabelled, accepted, refined)
        folder = self.out / "no_selection"
        self.train("ssl", folder / "ssl", 1, labelled=grown,
                   unlabelled=rest if len(rest) else grown,
                   init=self.warm(self.out / "round0", "ssl"))  # fmt: skip
        return self.models(folder, full=False)

    def write_rounds(self, records: list[dict[str, Any]]) -> None:
        write_text_atomic(self.out / "rounds.json", json.dumps(records, indent=2) + "\n")
        flat = [{k: v for k, v in rec.items() if not isinstance(v, dict)}
                | {f"{k}_{q}": v for k in ("accepted", "rejected") for q, v in rec[k].items()}
                for rec in records]  # fmt: skip
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(flat[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        write_text_atomic(self.out / "rounds.csv", buffer.getvalue())
        figures.rounds_figure(records, self.out / "rounds.png")

    def write_ablation(self, round0: Models, segmenters: dict[str, Models], test: list) -> list:
        cfg = self.config
        rows, per_case, first = ablation.run_ablation(round0, segmenters, test, cfg,
                                                      progress=self.progress)  # fmt: skip
        note = (f"{len(test)} held-out volumes; {cfg.ssl_method}, SAM {cfg.sam_model}, "
                f"{cfg.rounds} rounds; slices {cfg.slice_size} px")  # fmt: skip
        ablation.write_ablation(rows, per_case, self.out, note)
        volume = test[0]
        slices, box = data.volume_slices(volume, cfg)
        order = np.argsort(-slices.tumour.sum(axis=(1, 2)), kind="stable")[:4]
        columns = {"truth": slices.tumour[order]}
        for key, label in ablation.ROWS.items():
            if key in first:
                columns[label] = cut(first[key], box, cfg.slice_size, mask=True)[order]
        figures.montage_figure(slices.image[order], columns, self.out / "montage.png")
        return rows

    def write_model(self, n_rounds: int) -> None:
        """``model.json``: the checkpoints ``tumorsynth aslseg segment`` uses."""
        last = f"round{n_rounds - 1}"
        inside = self.base.parent.resolve() == self.out.resolve()
        model = {
            "segmenter": "final/ssl/checkpoints/best.pt",
            "sam_base": self.base.name if inside else str(self.base.resolve()),
            "sam_head": f"{last}/sam/checkpoints/best.pt",
            "adapter": f"{last}/adapt/checkpoints/best.pt",
        }
        write_text_atomic(self.out / "model.json", json.dumps(model, indent=2) + "\n")
