"""Training: the :class:`Trainer` and its hooks, and ``tumorsynth train``'s segmenter.

- :class:`Trainer`: a training run whose steps are methods to override (network, loss, data,
  one step, validation, checkpoints, logs); the methods of :mod:`tumorsynth.methods` train on it;
- :class:`SegmentationTrainer` / :func:`train`: a label-free segmenter trained on healthy CT with
  tumours synthesised on the fly (one process, or one rank under ``torchrun``);
- :func:`load_train_config` / :class:`TrainConfig`: its settings (YAML/JSON, overridable).

Needs the ``train`` extra (torch, MONAI).
"""

from tumorsynth.segment.networks import NETWORKS
from tumorsynth.train.config import TrainConfig, load_train_config
from tumorsynth.train.runtime import Runtime, start_runtime
from tumorsynth.train.segmentation import SegmentationTrainer, train
from tumorsynth.train.trainer import Trainer, TrainResult

__all__ = [
    "NETWORKS",
    "Runtime",
    "SegmentationTrainer",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "load_train_config",
    "start_runtime",
    "train",
]
