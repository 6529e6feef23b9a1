"""Segmentation networks and their use: MONAI networks by name, checkpoints, and the
:class:`~tumorsynth.segment.predict.Predictor` that segments any CT by sliding windows, in its own
geometry. Needs the ``train`` extra (torch, MONAI)."""

from tumorsynth.segment.checkpoint import load_checkpoint, load_model, save_checkpoint
from tumorsynth.segment.networks import NETWORKS, build_network, network_spec
from tumorsynth.segment.predict import Predictor, predict_files, window

__all__ = [
    "NETWORKS",
    "Predictor",
    "build_network",
    "load_checkpoint",
    "load_model",
    "network_spec",
    "predict_files",
    "save_checkpoint",
    "window",
]
