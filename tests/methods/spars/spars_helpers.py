"""Small volumes, scorers and configs for the SPARS tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tumorsynth.methods.spars.config import load_spars_config
from tumorsynth.methods.spars.volumes import WorkVolume


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread for the module's tests (2 shared cores: oversubscription makes each
    convolution many times slower), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def untrained_run(tmp_path, **fields):
    """A run folder as ``tumorsynth spars train`` leaves it, with untrained weights (fast)."""
    from stable_baselines3 import PPO

    from tumorsynth.io.volume import write_text_atomic
    from tumorsynth.methods.spars.classifier import build_classifier, classifier_spec
    from tumorsynth.methods.spars.config import dumps
    from tumorsynth.methods.spars.policy import policy_kwargs
    from tumorsynth.methods.spars.vec import make_scored_vec_env
    from tumorsynth.segment.checkpoint import save_checkpoint

    cfg = tiny_config(tmp_path, **fields)
    out = tmp_path / "run"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.json", dumps(cfg))
    torch.manual_seed(0)
    net = build_classifier(classifier_spec(cfg))
    state = {"classifier": classifier_spec(cfg), "model": net.state_dict(), "step": 0}
    save_checkpoint(out / "classifier" / "checkpoints" / "best.pt", state)
    from functools import partial

    from tumorsynth.methods.spars.env import SelfPlayWindowEnv

    make = partial(SelfPlayWindowEnv, [box_volume((24, 24, 24))], cfg.window_vox, 2, 0.9, 4,
                   obs_scores=cfg.obs_scores, obs_context=cfg.obs_context)  # fmt: skip
    env = make_scored_vec_env([make], mean_scorer, seed=0)
    model = PPO("MultiInputPolicy", env, n_steps=8, batch_size=8, policy_kwargs=policy_kwargs(cfg),
                device="cpu", seed=0)  # fmt: skip
    (out / "agents").mkdir(exist_ok=True)
    model.save(out / "agents" / "last.zip")
    return cfg, out
