"""SAR learns: after a short pre-training on phantom crops, the held-out restoration error has
fallen and the scale of crops from a phantom it never saw is told well above chance.

About a minute on a 2-core CPU (``pytest -s`` prints the numbers)."""

from __future__ import annotations

import csv

import pytest
import torch

from tumorsynth.methods.sar.config import load_sar_config
from tumorsynth.methods.sar.crops import SarCrops, fixed_crops
from tumorsynth.methods.sar.domains import load_domains
from tumorsynth.methods.sar.losses import SarLoss
from tumorsynth.methods.sar.network import SarNet
from tumorsynth.methods.sar.trainer import backbone_spec, pretrain

RECIPE = [
    "pretrain.phantom_spacing_mm=3.0",
    "pretrain.crop_sizes_mm=[[48,48,48],[96,96,96],[144,144,144]]",
    "pretrain.input_size=[16,16,16]",
    "pretrain.shuffle_blocks=300",
    "pretrain.network=unet",
    "pretrain.channels=[8,16,32]",
    "pretrain.scale_weight=1.0",
    "pretrain.batch_size=4",
    "pretrain.steps=260",
    "pretrain.lr=1e-3",
    "pretrain.warmup_steps=10",
    "pretrain.val_every=65",
    "pretrain.save_every=260",
    "pretrain.n_val_crops=48",
    "pretrain.num_workers=1",
    "pretrain.device=cpu",
    "pretrain.amp=false",
    "pretrain.threads=1",
]
UNSEEN = ("pretrain.domains=[{name: phantom, n_phantoms: 1, phantom_seed: 7}, "
          "{name: synthetic, n_phantoms: 1, phantom_seed: 8, tumours: true}]")  # fmt: skip
CHANCE = 1 / 3


@torch.no_grad()
def scale_accuracy(network: SarNet, batch) -> float:
    network.eval()
    logits = network(batch["input"], batch["target"]).scale_logits
    return float((logits.argmax(1) == batch["scale"]).float().mean())


@pytest.mark.slow
def test_restoration_improves_and_scale_is_told_on_held_out_crops(tmp_path):
    cfg = load_sar_config(None, [*RECIPE, f"pretrain.out_dir={tmp_path / 'run'}"]).pretrain
    unseen_cfg = load_sar_config(None, [*RECIPE, UNSEEN]).pretrain
    unseen = fixed_crops(SarCrops(load_domains(unseen_cfg, False), unseen_cfg, 0), 60, seed=0)
    torch.manual_seed(cfg.seed)
    untrained = SarNet(backbone_spec(cfg), 3, 2)
    _, before = SarLoss(1, 1, 1)(untrained.eval()(unseen["input"], unseen["target"]), unseen)
    pretrain(cfg, progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    trained = SarNet(backbone_spec(cfg), 3, 2)
    trained.load_state_dict(state["model"])
    _, after = SarLoss(1, 1, 1)(trained.eval()(unseen["input"], unseen["target"]), unseen)
    after["scale_acc"] = scale_accuracy(trained, unseen)
    rows = [
        r for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open()) if r["split"] == "val"
    ]
    val = [(int(r["step"]), float(r["restore_mse"]), float(r["scale_acc"])) for r in rows]
    print(f"\nheld-out crops (this run's phantoms), step, MSE, scale accuracy: {val}"
          f"\nunseen phantom: MSE {before['restore_mse']:.4f} -> {after['restore_mse']:.4f}, "
          f"scale accuracy {before['scale_acc']:.2f} -> {after['scale_acc']:.2f}")  # fmt: skip
    assert val[-1][1] < val[0][1]  # restoration error falls along the run
    assert after["restore_mse"] < 0.8 * before["restore_mse"]  # and from the untrained network
    assert val[-1][2] > 1.6 * CHANCE
    assert after["scale_acc"] > 1.6 * CHANCE  # 0.53; chance is 1/3
