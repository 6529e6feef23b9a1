"""An ASLseg run folder: what it holds, when it may be reused, what ``--overwrite`` removes.

::

    DIR/config.json           the run's config (a resumed run must have the same one)
    DIR/sam_init.pt           the tiny SAM's random weights (when no sam_checkpoint is given)
    DIR/labelled.json         the synthetic volumes of the labelled set (host, crop, tumour seed)
    DIR/round{r}/ssl|sam|adapt/   stage I, II and III of round r (Trainer runs: checkpoints/, metrics.csv)
    DIR/round{r}/selection.npz    every candidate's scores and refined pseudo-label, what was accepted
    DIR/round{r}/selection.json   the round's record
    DIR/final/ssl/            stage I on the last labelled set (the deliverable)
    DIR/no_selection/ssl/     stage I on every refined pseudo-label of round 0 (ablation)
    DIR/rounds.json|csv|png, DIR/ablation.json|csv|md|png, DIR/montage.png, DIR/model.json

Nothing outside these names is ever removed, and the inputs are only read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tumorsynth.errors import ConfigError
from tumorsynth.methods.aslseg.config import ASLsegConfig

__all__ = ["OUTPUTS", "RUNTIME_FIELDS", "check_run_dir", "clear_run_dir"]

OUTPUTS = (
    "config.json", "sam_init.pt", "labelled.json", "final", "no_selection", "rounds.json",
    "rounds.csv", "rounds.png", "ablation.json", "ablation.csv", "ablation.md", "ablation.png",
    "montage.png", "model.json",
)  # fmt: skip
"""What a run writes at the top of its folder (besides ``round{r}/``)."""

RUNTIME_FIELDS = ("out_dir", "device", "threads", "save_every")
"""Config fields a resumed run may change (they do not change what is learnt)."""


def check_run_dir(out_dir: Path, config: ASLsegConfig, resume: bool, overwrite: bool) -> None:
    """Refuse a folder that holds a run unless ``resume`` (with the same config) or ``overwrite``.

    Raises
    ------
    ConfigError
        ``--resume`` without a run, a run without ``--resume`` / ``--overwrite``, both flags, or a
        resumed run whose config differs (the message names the fields).
    """
    saved = out_dir / "config.json"
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: pass one of them")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: a file, not a run folder")
    if resume and not saved.is_file():
        raise ConfigError(f"--resume: {out_dir} holds no ASLseg run (no config.json)")
    if not resume and not overwrite and saved.exists():
        raise ConfigError(
            f"{out_dir} holds an ASLseg run already: pass --resume to continue it or "
            "--overwrite to start again"
        )
    if resume:
        before = json.loads(saved.read_text())
        now = config.to_dict()
        differ = sorted(k for k in set(before) | set(now)
                        if k not in RUNTIME_FIELDS and before.get(k) != now.get(k))  # fmt: skip
        if differ:
            raise ConfigError(
                f"--resume: {out_dir} was run with another config ({', '.join(differ)} differ); "
                "resume with the same config or start again with --overwrite"
            )


def clear_run_dir(out_dir: Path) -> None:
    """Remove what a run wrote in ``out_dir`` (:data:`OUTPUTS` and ``round*/``), nothing else."""
    if not out_dir.is_dir():
        return
    for entry in out_dir.iterdir():
        ours = entry.name in OUTPUTS or (
            entry.is_dir() and entry.name.startswith("round") and entry.name[5:].isdigit()
        )
        if not ours:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
