"""The point of it all: a small UNet trained on phantom crops with on-the-fly tumours, and no
tumour label drawn by anyone, segments held-out synthetic tumours (another phantom, other seeds).

About two minutes on a 2-core CPU. The Dice per size class is printed (``pytest -s``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tumorsynth import synthesize
from tumorsynth.evaluate import dice
from tumorsynth.phantom import make_phantom
from tumorsynth.segment.networks import build_network
from tumorsynth.segment.predict import Predictor
from tumorsynth.train import load_train_config, train

RECIPE = [
    "phantom_spacing_mm=2.0",
    "patch_size=[48,48,48]",
    "channels=[8,16,32,64]",
    "batch_size=4",
    "steps=500",
    "lr=3e-3",
    "warmup_steps=20",
    "synth_prob=0.8",
    "pos_fraction=0.5",
    "num_workers=1",
    "val_every=500",
    "save_every=500",
]
HELD_OUT_PHANTOM = 1001  # training uses phantom 0
HELD_OUT_SEEDS = (100, 101, 102)


def held_out_dice(predictor: Predictor) -> dict[str, float]:
    """Mean tumour Dice per size class on held-out synthetic cases (the liver's box + 16 mm)."""
    case = make_phantom(seed=HELD_OUT_PHANTOM, spacing_mm=2.0)
    where = np.argwhere(case.organ)
    box = tuple(
        slice(max(lo - 8, 0), hi + 9) for lo, hi in zip(where.min(0), where.max(0), strict=True)
    )
    scores = {}
    for size in ("small", "medium", "large"):
        values = []
        for seed in HELD_OUT_SEEDS:
            result = synthesize(case, config={"preset": "liver", "size_class": size}, seed=seed)
            labels = predictor(result.image[box], case.spacing_mm)
            values.append(dice(labels == 2, result.label[box] == 2))
        scores[size] = float(np.mean(values))
    return scores


@pytest.mark.slow
def test_label_free_training_segments_held_out_tumours(tmp_path):
    torch.manual_seed(0)
    cfg = load_train_config(None, [*RECIPE, f"out_dir={tmp_path / 'run'}"])
    untrained = Predictor(
        build_network(cfg).eval(), cfg.patch_size, cfg.window_hu, None, torch.device("cpu")
    )
    before = held_out_dice(untrained)
    train(cfg, progress=False)
    trained = Predictor.from_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", "cpu")
    after = held_out_dice(trained)
    report = ", ".join(f"{k} {before[k]:.3f} -> {after[k]:.3f}" for k in after)
    print(f"\nheld-out tumour Dice, untrained -> trained: {report}")
    for size in ("medium", "large"):
        assert after[size] > 0.5, report
        assert after[size] > before[size] + 0.3, report
    assert after["small"] > before["small"], report
