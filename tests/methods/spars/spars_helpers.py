"""Small volumes, scorers and configs for the SPARS tests."""

from __future__ import annotations

import numpy as np

from tumorsynth.methods.spars.config import load_spars_config
from tumorsynth.methods.spars.volumes import WorkVolume


def box_volume(shape=(20, 18, 16), seed=0, name="box") -> WorkVolume:
    """A WorkVolume of random [0, 1] intensities, liver everywhere but a 1-voxel rim."""
    rng = np.random.default_rng(seed)
    image = rng.random(shape, dtype=np.float32)
    liver = np.zeros(shape, np.uint8)
    liver[1:-1, 1:-1, 1:-1] = 1
    return WorkVolume(name, image, liver, None, (0, 0, 0), tuple(shape), 4.0)


def mean_scorer(crops: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for the classifier: each window's mean intensity."""
    return crops.reshape(len(crops), -1).mean(axis=1).astype(np.float32)


class CountingScorer:
    """Counts its calls and the crops of each."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        self.sizes.append(len(crops))
        return mean_scorer(crops)


def tiny_config(tmp_path, **fields):
    """The default (tiny CPU) config on the CPU, one thread, in ``tmp_path / "run"``."""
    values = {"out_dir": str(tmp_path / "run"), "device": "cpu", "threads": 1, **fields}
    return load_spars_config(None, values)
