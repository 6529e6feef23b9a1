"""The Trainer's hooks: a method that overrides only what it learns gets the loop, checkpoints,
resume and logs."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tumorsynth.errors import ConfigError
from tumorsynth.segment import load_checkpoint
from tumorsynth.train import Trainer


@dataclass(frozen=True)
class DenoiseConfig:
    out_dir: str
    steps: int = 6
    lr: float = 3e-2
    weight_decay: float = 0.0
    warmup_steps: int = 1
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    amp: bool = False
    val_every: int = 2
    save_every: int = 3
    width: int = 4


class Denoiser(Trainer):
    """Learns to remove noise from 1-D signals: every hook a method could override, overridden."""

    metric_columns = ("loss", "lr", "data_s", "step_s", "val_mse")
    best_metric = "val_mse"
    higher_is_better = False
    architecture_keys = ("width",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def build_data(self):
        self.calls.append("data")
        gen = torch.Generator().manual_seed(1)
        self.clean = torch.sin(torch.linspace(0, 6, 32))[None, None].repeat(8, 1, 1)
        self.noisy = self.clean + 0.3 * torch.randn(self.clean.shape, generator=gen)

    def build_network(self):
        self.calls.append("network")
        w = self.config.width
        return torch.nn.Sequential(
            torch.nn.Conv1d(1, w, 5, padding=2),
            torch.nn.ReLU(),
            torch.nn.Conv1d(w, 1, 5, padding=2),
        )

    def build_loss(self):
        return torch.nn.MSELoss()

    def build_loader(self):
        self.calls.append("loader")
        while True:
            yield {"input": self.noisy, "target": self.clean}

    def prepare_batch(self, batch):
        return {k: v.to(self.runtime.device) for k, v in batch.items()}

    def after_step(self, batch, values):
        self.calls.append(f"step{self.step}")

    def validate(self):
        with torch.no_grad():
            mse = float(torch.mean((self.network(self.noisy) - self.clean) ** 2))
        return {"val_mse": mse}

    def checkpoint_meta(self):
        return {"width": self.config.width}


def test_a_trainer_of_a_method_gets_the_loop_checkpoints_and_logs(tmp_path):
    trainer = Denoiser(DenoiseConfig(str(tmp_path / "run")), progress=False)
    result = trainer.fit()
    assert trainer.calls[:3] == ["data", "network", "loader"]
    assert trainer.calls[3:] == [f"step{s}" for s in range(1, 7)]
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert list(rows[0]) == ["step", "split", "loss", "lr", "data_s", "step_s", "val_mse"]
    val = [float(r["val_mse"]) for r in rows if r["split"] == "val"]
    assert [int(r["step"]) for r in rows if r["split"] == "val"] == [2, 4, 6]
    assert result.best_metric == "val_mse" and result.best_score == min(val)  # lower is better
    train_loss = [float(r["loss"]) for r in rows if r["split"] == "train"]
    assert train_loss[-1] < train_loss[0]  # it learns
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert last["step"] == 6 and last["width"] == 4 and best["best_score"] == result.best_score
    assert (tmp_path / "run" / "config.json").read_text().startswith("{")


def test_resume_continues_and_refuses_another_architecture(tmp_path):
    out = str(tmp_path / "run")
    Denoiser(DenoiseConfig(out, steps=3), progress=False).fit()
    with pytest.raises(ConfigError, match="holds a run already"):
        Denoiser(DenoiseConfig(out, steps=3), progress=False).fit()
    with pytest.raises(ConfigError, match="differs from the config's"):
        Denoiser(DenoiseConfig(out, steps=5, width=8), resume=True, progress=False).fit()
    again = Denoiser(DenoiseConfig(out, steps=5), resume=True, progress=False)
    result = again.fit()
    assert result.step == 5 and again.calls[3:] == ["step4", "step5"]
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open())]
    assert steps == sorted(steps) and np.unique([s for s in steps]).size <= len(steps)
    assert [s for s in steps if s <= 3] == [1, 2, 2, 3, 3]  # train, val at 2, train, val at 3
