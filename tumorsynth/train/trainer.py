r"""The training run as a class whose steps are hooks: :class:`Trainer`.

:meth:`Trainer.fit` owns what every run needs and no method should write again: the device and the
``torchrun`` process group, the run folder and its refusal to overwrite a run, seeding, the
optimiser and its schedule, checkpoints (``last.pt`` every ``save_every`` steps and on Ctrl-C,
``best.pt`` at the best validation score), ``--resume``, ``metrics.csv`` mirrored to TensorBoard and
the progress bar. What is learnt, from what and how it is scored are hooks, each a method to
override:

=========================  ==============================================================
hook                       default
=========================  ==============================================================
:meth:`build_data`         nothing (load hosts, datasets, validation cases here)
:meth:`build_network`      must be given
:meth:`build_loss`         must be given
:meth:`build_optimizer`    AdamW over the network's parameters (``lr``, ``weight_decay``)
:meth:`build_scheduler`    linear warm-up (``warmup_steps``), cosine decay to 0 at ``steps``
:meth:`build_loader`       must be given: an iterable of training batches
:meth:`prepare_batch`      the batch as it comes
:meth:`compute_loss`       ``loss_fn(net(batch["input"]), batch["target"])``
:meth:`train_step`         forward (bf16 autocast on CUDA), backward, optimiser and schedule
:meth:`after_step`         nothing (e.g. an EMA teacher, a replay log)
:meth:`validate`           no validation
:meth:`checkpoint_meta`    nothing beyond weights, optimiser, schedule and step
=========================  ==============================================================

A config is any object with the fields ``out_dir``, ``steps``, ``lr``, ``weight_decay``,
``warmup_steps``, ``seed``, ``device``, ``threads``, ``amp``, ``val_every`` and ``save_every``
(:class:`~tumorsynth.train.config.TrainConfig` has them); a method's config adds its own. A
method that runs several Trainers from one config of its own gives each a :class:`RunSettings`.

Examples
--------
>>> class Restorer(Trainer):                                            # doctest: +SKIP
...     metric_columns = ("loss", "lr", "mse")
...     def build_network(self):
...         return monai.networks.nets.BasicUNet(3, 1, 1)
...     def build_loss(self):
...         return torch.nn.MSELoss()
...     def build_loader(self):
...         return corrupted_crops(self.config)       # yields {"input": x, "target": y}
>>> Restorer(config).fit().out_dir                                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from tumorsynth.engine.serialization import to_jsonable
from tumorsynth.errors import ConfigError
from tumorsynth.io.volume import write_atomic, write_text_atomic
from tumorsynth.segment.checkpoint import load_checkpoint, save_checkpoint
from tumorsynth.train.logs import MetricsLog
from tumorsynth.train.runtime import start_runtime

__all__ = ["RunSettings", "TrainResult", "Trainer"]

log = logging.getLogger("tumorsynth.train")


@dataclass(frozen=True)
class RunSettings:
    """Exactly the fields a :class:`Trainer` reads from its config: one run's settings, for a
    method that makes several runs (stages, rounds) from a config of its own."""

    out_dir: str
    steps: int
    lr: float
    weight_decay: float
    warmup_steps: int
    seed: int
    device: str
    threads: int | None
    amp: bool
    val_every: int
    save_every: int


@dataclass(frozen=True)
class TrainResult:
    """What a run produced (on rank 0; other ranks get the same paths).

    Attributes
    ----------
    out_dir : Path
    step : int
        Steps done in all (a resumed run counts the earlier ones).
    best_score : float or None
        Best validation score (:attr:`Trainer.best_metric`; None without validation).
    best_metric : str
        The name of that score.
    last_loss : float
        Training loss of the last step.
    """

    out_dir: Path
    step: int
    best_score: float | None
    best_metric: str
    last_loss: float


class Trainer:
    """A training run: :meth:`fit` runs the loop, the hooks say what it learns (see the module).

    Parameters
    ----------
    config
        The run's settings (see the module for the fields every config has).
    resume : bool
        Continue the run in ``config.out_dir`` from ``checkpoints/last.pt``.
    overwrite : bool
        Start again in an ``out_dir`` that holds a run (its checkpoints and logs go).
    progress : bool
        Show a progress bar (rank 0).

    Attributes
    ----------
    runtime : Runtime
        Device and rank, set by :meth:`fit` before any hook runs.
    network, net : torch.nn.Module
        The network, and what the step calls (the network wrapped for DistributedDataParallel).
    step : int
        Optimiser steps done.
    """

    metric_columns: tuple[str, ...] = ("loss", "lr", "data_s", "step_s")
    """Columns of ``metrics.csv`` after ``step`` and ``split``."""
    best_metric: str = "loss"
    """The validation score that picks ``best.pt``."""
    higher_is_better: bool = True
    run_folders: tuple[str, ...] = ("checkpoints", "tensorboard")
    """What ``overwrite`` removes from a used run folder (with ``metrics.csv``)."""
    architecture_keys: tuple[str, ...] = ()
    """Entries of :meth:`checkpoint_meta` a resumed run must keep unchanged."""

    def __init__(
        self, config: Any, *, resume: bool = False, overwrite: bool = False, progress: bool = True
    ) -> None:
        self.config = config
        self.resume, self.overwrite, self.progress = resume, overwrite, progress
        self.out_dir = Path(config.out_dir)
        self.step = 0
        self.best: float | None = None
        self.last_loss = math.nan

    # ---- hooks: what is built ------------------------------------------------------------------
    def build_data(self) -> None:
        """Load what the run reads (hosts, datasets, validation cases); runs before the network."""

    def build_network(self) -> nn.Module:
        """The network to train (on the CPU; :meth:`fit` moves it)."""
        raise NotImplementedError(f"{type(self).__name__} must define build_network")

    def build_loss(self) -> Callable[..., torch.Tensor]:
        """The loss :meth:`compute_loss` applies."""
        raise NotImplementedError(f"{type(self).__name__} must define build_loss")

    def build_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        """AdamW over ``network``'s parameters."""
        cfg = self.config
        return torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def build_scheduler(self, optimizer: torch.optim.Optimizer):
        """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``steps`` (MONAI's)."""
        from monai.optimizers import WarmupCosineSchedule

        cfg = self.config
        return WarmupCosineSchedule(
            optimizer, warmup_steps=min(cfg.warmup_steps, cfg.steps), t_total=cfg.steps, end_lr=0.0
        )

    def build_loader(self) -> Iterable[Any]:
        """Training batches, endless (or at least ``steps`` of them)."""
        raise NotImplementedError(f"{type(self).__name__} must define build_loader")

    # ---- hooks: one step -----------------------------------------------------------------------
    def prepare_batch(self, batch: Any) -> Any:
        """The batch as the step uses it (moved to the device, augmented, ...)."""
        return batch

    def compute_loss(self, batch: Any) -> torch.Tensor:
        """The loss of one prepared batch (runs under autocast)."""
        return self.loss_fn(self.net(batch["input"]), batch["target"])

    def train_step(self, batch: Any) -> dict[str, float]:
        """Forward, backward and one optimiser step; returns values for ``metrics.csv``."""
        self.net.train()
        with self.autocast():
            loss = self.compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": float(loss.detach()), "lr": self.optimizer.param_groups[0]["lr"]}

    def after_step(self, batch: Any, values: Mapping[str, float]) -> None:
        """Called after each step (``self.step`` already counts it)."""

    # ---- hooks: validation and checkpoints -----------------------------------------------------
    def validate(self) -> dict[str, float] | None:
        """Validation scores (every rank calls it: share the work and sum with
        ``self.runtime.sum``), or None when the run has no validation."""
        return None

    def should_validate(self) -> bool:
        """Whether to validate after this step (every ``val_every`` steps and at the end)."""
        return self.step % self.config.val_every == 0 or self.step == self.config.steps

    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint records besides the training state (e.g. how to rebuild the
        network); fixed for a run."""
        return {}

    def autocast(self):
        """bfloat16 autocast on CUDA when the config asks for ``amp`` (no loss scaling needed)."""
        if self.config.amp and self.runtime.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    # ---- the run -------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Run the training to ``config.steps`` and return what it produced.

        Raises
        ------
        ConfigError, InputError
            At start-up, before any step: a bad config, missing or unreadable files, an
            ``out_dir`` that holds a run without ``resume`` / ``overwrite``.
        """
        self.runtime = start_runtime(self.config.device, self.config.threads)
        try:
            self._start()
            self._loop()
            self._finish()
        finally:
            self.runtime.close()
        return TrainResult(self.out_dir, self.step, self.best, self.best_metric, self.last_loss)

    def _start(self) -> None:
        self._check_out_dir()
        self.build_data()
        if self.runtime.main:
            self._prepare_out_dir()
        self.runtime.barrier()
        torch.manual_seed(self.config.seed)  # the same initial weights on every rank
        self.network = self.build_network().to(self.runtime.device)
        self.optimizer = self.build_optimizer(self.network)
        self.scheduler = self.build_scheduler(self.optimizer)
        self.loss_fn = self.build_loss()
        self.meta = self.checkpoint_meta()
        if self.resume:
            self._restore(load_checkpoint(self.last_path, map_location=self.runtime.device))
        self.net = self.network
        if self.runtime.world > 1:
            dev = self.runtime.device
            ids = [dev.index] if dev.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)
        self.loader = self.build_loader()
        self.open_logs(self.step if self.resume else None)

    @property
    def last_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    def _check_out_dir(self) -> None:
        if self.resume and not self.last_path.is_file():
            raise ConfigError(f"--resume: {self.last_path} does not exist (nothing to resume)")
        if not self.resume and not self.overwrite and self.last_path.exists():
            raise ConfigError(
                f"{self.out_dir} holds a run already: pass --resume to continue it or --overwrite "
                "to start again"
            )

    def _prepare_out_dir(self) -> None:
        if self.overwrite and not self.resume:
            for sub in self.run_folders:
                shutil.rmtree(self.out_dir / sub, ignore_errors=True)
            (self.out_dir / "metrics.csv").unlink(missing_ok=True)
        (self.out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.out_dir / "config.json", self.config_json() + "\n")

    def config_json(self) -> str:
        """The run's config as ``config.json`` holds it."""
        return json.dumps(to_jsonable(dataclasses.asdict(self.config)), indent=2)

    def check_resumable(self, state: dict[str, Any]) -> None:
        """Refuse a ``--resume`` from a checkpoint this config cannot continue: by default one
        whose :attr:`architecture_keys` entries differ from :meth:`checkpoint_meta`'s."""
        have = {k: state.get(k) for k in self.architecture_keys}
        want = {k: self.meta.get(k) for k in self.architecture_keys}
        if have != want:
            raise ConfigError(f"--resume: the checkpoint's {have} differs from the config's {want}")

    def _restore(self, state: dict[str, Any]) -> None:
        """Load a checkpoint for ``--resume``; the config, not the checkpoint, sets the learning
        rate, weight decay and schedule from here on (so ``--set steps=...`` extends it)."""
        self.check_resumable(state)
        cfg, sched = self.config, self.scheduler
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sched.t_total = cfg.steps
        sched.warmup_steps = min(cfg.warmup_steps, cfg.steps)
        sched.base_lrs = [cfg.lr for _ in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            group["initial_lr"], group["weight_decay"] = cfg.lr, cfg.weight_decay
            group["lr"] = cfg.lr * sched.lr_lambda(sched.last_epoch)
        self.step, self.best = int(state["step"]), state.get("best_score", state.get("best_dice"))

    def save(self, name: str) -> Path:
        """Write ``checkpoints/<name>``: the meta, weights, optimiser, schedule, step and best."""
        state = {
            **self.meta,
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "best_score": self.best,
            "best_metric": self.best_metric,
        }
        return save_checkpoint(self.out_dir / "checkpoints" / name, state)

    def _loop(self) -> None:
        bar = tqdm(
            total=self.config.steps, initial=self.step, desc="train", unit="step",
            disable=not (self.progress and self.runtime.main), dynamic_ncols=True,
        )  # fmt: skip
        batches = iter(self.loader)
        try:
            while self.step < self.config.steps:
                values = self._one_step(batches)
                bar.update(1)
                bar.set_postfix(self._postfix(values))
                self._validate_and_save()
        except KeyboardInterrupt:
            if self.runtime.main and self.step:
                self.save("last.pt")
                log.info("interrupted at step %d: saved %s (continue with --resume)", self.step,
                         self.out_dir)  # fmt: skip
            raise
        finally:
            bar.close()
            self.close_logs()

    def _one_step(self, batches) -> dict[str, float]:
        t0 = time.perf_counter()
        batch = self.prepare_batch(next(batches))
        t_data = time.perf_counter() - t0
        values = self.train_step(batch)
        self.step += 1
        self.last_loss = values["loss"]
        values = {**values, "data_s": t_data, "step_s": time.perf_counter() - t0}
        self.after_step(batch, values)
        self.metrics.write(self.step, "train", **_known(values, self.metric_columns))
        return values

    def _postfix(self, values: Mapping[str, float]) -> dict[str, str]:
        best = "-" if self.best is None else f"{self.best:.3f}"
        return {"loss": f"{values['loss']:.3f}", "lr": f"{values.get('lr', math.nan):.1e}",
                "best": best}  # fmt: skip

    def _validate_and_save(self) -> None:
        main = self.runtime.main
        if self.should_validate():
            scores = self.validate()
            if scores is not None:
                self.metrics.write(self.step, "val", **_known(scores, self.metric_columns))
                if self._improves(scores[self.best_metric]):  # the same on every rank
                    self.best = scores[self.best_metric]
                    if main:
                        self.save("best.pt")
        if main and (self.step % self.config.save_every == 0 or self.step == self.config.steps):
            self.save("last.pt")

    def _improves(self, score: float) -> bool:
        if self.best is None:
            return True
        return score > self.best if self.higher_is_better else score < self.best

    def open_logs(self, resume_step: int | None) -> None:
        """Open what the run writes as it goes: ``metrics.csv`` (and TensorBoard) on rank 0;
        ``resume_step``: the step a resumed run continues from (later rows are dropped)."""
        self.metrics = MetricsLog(
            self.out_dir, self.metric_columns, enabled=self.runtime.main, resume_step=resume_step
        )

    def close_logs(self) -> None:
        """Close what :meth:`open_logs` opened."""
        self.metrics.close()

    def _finish(self) -> None:
        if self.runtime.main and self.best is None:  # no validation: the last weights are the best
            best_path = self.out_dir / "checkpoints" / "best.pt"
            write_atomic(best_path, lambda tmp: shutil.copyfile(self.last_path, tmp))
        self.runtime.barrier()


def _known(values: Mapping[str, float], columns: tuple[str, ...]) -> dict[str, float]:
    """The entries of ``values`` that ``metrics.csv`` has columns for."""
    return {k: float(v) for k, v in values.items() if k in columns}
