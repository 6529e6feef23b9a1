"""Checkpoints: what a run saves, how it resumes, and how ``predict`` rebuilds the network.

A checkpoint is one ``torch.save`` file holding the network's weights, the architecture
(:func:`~tumorsynth.segment.networks.network_spec`), the preprocessing (HU window, spacing of the
training data) and, for resuming, the optimiser and schedule states with the step. It is
written under a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from tumorsynth.errors import InputError
from tumorsynth.io.volume import write_atomic
from tumorsynth.segment.networks import build_network
from tumorsynth.version import __version__

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "load_model", "save_checkpoint"]

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format and tumorsynth version) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, "tumorsynth": __version__, **state}
    return write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by a :class:`~tumorsynth.train.Trainer` (``tumorsynth train``
    or a method's).

    Raises
    ------
    InputError
        The file is missing, unreadable, or not a tumorsynth checkpoint (the message says which).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise InputError(f"{path}: cannot read the checkpoint ({err})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"{path}: not a tumorsynth checkpoint (no weights in it)")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            f"{path}: checkpoint format {state.get('format')!r}, this tumorsynth reads "
            f"{CHECKPOINT_FORMAT}"
        )
    return state


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The trained network of a checkpoint, in eval mode on ``device``, with the checkpoint's
    metadata (``network``, ``window_hu``, ``spacing_mm``, ``step``, ...; weights dropped).

    Raises
    ------
    InputError
        As :func:`load_checkpoint`, or a checkpoint that holds no segmentation network (e.g. a
        method's).
    """
    state = load_checkpoint(path)
    if "network" not in state:
        raise InputError(f"{path}: not a segmentation checkpoint (no network in it)")
    model = build_network(state["network"])
    model.load_state_dict(state["model"])
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler")}
    return model, meta
