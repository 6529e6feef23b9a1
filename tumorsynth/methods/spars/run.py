r"""``tumorsynth spars train``: the classifier, then the agents, in one resumable run folder.

::

    <out_dir>/
      config.json                 the SparsConfig (segment reads it)
      classifier/                 the Trainer's run: checkpoints/{best,last}.pt, metrics.csv,
                                  tensorboard/, config.json
      agents/                     last.zip (SB3 PPO), selfplay.pt, tensorboard/ (amortised protocol)
      run.json                    what was done: the classifier's AUC, the agents' steps

``resume`` skips the classifier when its ``last.pt`` has reached ``clf_steps`` (else continues it
from there), then continues the agents from ``agents/last.zip``. Under the ``per_volume``
protocol only the classifier is trained here; the agents learn on each scan at segmentation.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from tumorsynth.errors import ConfigError
from tumorsynth.io.volume import write_text_atomic
from tumorsynth.methods.spars.agents import torch_device, train_agents
from tumorsynth.methods.spars.classifier import WindowScorer, load_classifier
from tumorsynth.methods.spars.config import SparsConfig, dumps
from tumorsynth.methods.spars.presence import train_classifier
from tumorsynth.methods.spars.volumes import load_hosts, synthetic_volumes
from tumorsynth.segment.checkpoint import load_checkpoint

__all__ = ["SparsRun", "train_spars"]

log = logging.getLogger("tumorsynth.methods.spars")

AGENT_VOLUME_SEED = 7
"""Offset of the seed of the agents' training volumes (other tumours than the classifier's)."""


@dataclass(frozen=True)
class SparsRun:
    """What ``tumorsynth spars train`` produced.

    Attributes
    ----------
    out_dir : Path
    classifier_auc : float or None
        Best held-out AUC of the classifier.
    agent_steps : int
        Environment steps the agents learnt for (0 under ``per_volume``).
    """

    out_dir: Path
    classifier_auc: float | None
    agent_steps: int


def _classifier_done(out: Path, config: SparsConfig) -> bool:
    last = out / "classifier" / "checkpoints" / "last.pt"
    return last.is_file() and int(load_checkpoint(last)["step"]) >= config.clf_steps


def _check_out_dir(out: Path, config: SparsConfig, resume: bool, overwrite: bool) -> None:
    saved = out / "config.json"
    if resume:
        if not saved.is_file():
            raise ConfigError(f"--resume: {out} holds no SPARS run (no config.json)")
        return
    if saved.exists() and not overwrite:
        raise ConfigError(
            f"{out} holds a run already: pass --resume to continue it or --overwrite to start again"
        )
    if overwrite:
        for sub in ("classifier", "agents"):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "run.json").unlink(missing_ok=True)


def train_spars(
    config: SparsConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> SparsRun:
    """Train the presence classifier, then (amortised protocol) the agents.

    Parameters
    ----------
    config : SparsConfig
        See :func:`~tumorsynth.methods.spars.config.load_spars_config`.
    resume : bool
        Continue the run in ``config.out_dir`` (the classifier is skipped when complete).
    overwrite : bool
        Start again in an ``out_dir`` that holds a run (its classifier and agents go).
    progress : bool
        Progress bars.

    Raises
    ------
    ConfigError, InputError
        At start-up: a bad config, unreadable inputs, a window larger than a liver's box, an
        ``out_dir`` that holds a run without ``resume`` / ``overwrite``.
    """
    out = Path(config.out_dir)
    _check_out_dir(out, config, resume, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.json", dumps(config) + "\n")
    if resume and _classifier_done(out, config):
        log.info("classifier complete in %s: skipped", out / "classifier")
    else:
        clf_resume = resume and (out / "classifier" / "checkpoints" / "last.pt").is_file()
        train_classifier(config, resume=clf_resume, overwrite=not clf_resume, progress=progress)
    best = out / "classifier" / "checkpoints" / "best.pt"
    auc = load_checkpoint(best).get("best_score")
    steps = 0
    if config.protocol == "amortised":
        device = torch_device(config.device)
        net, _ = load_classifier(best, config, device=device)
        hosts = load_hosts(config, progress=progress)
        volumes = synthetic_volumes(
            config, hosts, config.n_volumes, config.seed + AGENT_VOLUME_SEED, progress
        )
        folder = out / "agents"
        agents = train_agents(
            config, WindowScorer(net, device), volumes, folder=folder,
            resume=resume and (folder / "last.zip").is_file(), progress=progress,
        )  # fmt: skip
        steps = int(agents.model.num_timesteps)
    summary = {"classifier_auc": auc, "agent_steps": steps, "protocol": config.protocol}
    write_text_atomic(out / "run.json", json.dumps(summary, indent=2) + "\n")
    return SparsRun(out, None if auc is None else float(auc), steps)
