"""Label-free training: a segmenter trained on healthy CT with tumours synthesised on the fly.

- :func:`load_train_config` / :class:`TrainConfig`: the run's settings (YAML/JSON, overridable);
- :func:`train`: the run (one process, or one rank under ``torchrun``);
- :func:`insert_tumours`: the GPU batch hook for a training step of your own;
- :func:`load_model`: a trained network from a checkpoint.

Needs the ``train`` extra (torch, MONAI).
"""

from tumorsynth.train.checkpoint import load_model
from tumorsynth.train.config import NETWORKS, TrainConfig, load_train_config
from tumorsynth.train.hooks import insert_tumours
from tumorsynth.train.loop import TrainResult, train

__all__ = [
    "NETWORKS",
    "TrainConfig",
    "TrainResult",
    "insert_tumours",
    "load_model",
    "load_train_config",
    "train",
]
