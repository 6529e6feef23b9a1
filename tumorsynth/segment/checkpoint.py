"""Checkpoints: what a run saves, how it resumes, and how ``predict`` rebuilds the network.

A checkpoint is one ``torch.save`` file holding the network's weights, the architecture
(:func:`~tumorsynth.segment.networks.network_spec`), the preprocessing (HU window, spacing of the
training data) and, for resuming, the optimiser and schedule states with the step. It is
written under a temporary name, checked (its zip directory, written last, must be there) and
renamed, so a crash or a full disk never leaves half a checkpoint. Loading refuses, in one line
naming the file, a file that is not a checkpoint, weights that are NaN or infinite, and weights
that do not fit the network the checkpoint's header describes.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tumorsynth.errors import InputError, TumorSynthError
from tumorsynth.io.verify import write_failure_cause
from tumorsynth.io.volume import write_atomic
from tumorsynth.segment.networks import build_network
from tumorsynth.version import __version__

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "load_model", "save_checkpoint"]

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format and tumorsynth version) to ``path`` atomically.

    Raises
    ------
    InputError
        The write failed (a full disk, a file-size limit, a read-only file system): one line
        naming ``path`` and the likely cause; nothing is left under ``path``'s name.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{path}: cannot write the checkpoint ({err.strerror})") from None
    state = {"format": CHECKPOINT_FORMAT, "tumorsynth": __version__, **state}

    def save(tmp: Path) -> None:
        try:
            torch.save(state, tmp)
        except RuntimeError as err:  # torch's stream writer: "unexpected pos 640 vs 534"
            raise InputError(
                f"{path}: cannot write the checkpoint ({_first_line(err)}); likely cause: "
                f"{write_failure_cause(path.parent)}"
            ) from None

    def verify(tmp: Path) -> None:
        if not zipfile.is_zipfile(tmp):  # its directory, written last, is missing
            raise InputError(
                f"{path}: the write was cut short; likely cause: {write_failure_cause(path.parent)}"
            )

    return write_atomic(path, save, verify)


def _first_line(err: BaseException) -> str:
    """The first line of an error, without torch's ``[enforce fail at ...]`` prefix."""
    line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", line).strip() or type(err).__name__


def _unreadable(path: Path, err: Exception) -> InputError:
    """One line for a file ``torch.load`` refused (never torch's advice to load it unsafely)."""
    if not zipfile.is_zipfile(path):
        why = "not a zip archive, as torch.save writes: another kind of file, or one cut short"
    elif isinstance(err, pickle.UnpicklingError):
        why = "it holds Python objects besides weights and plain values, which are not loaded"
    else:
        why = f"a damaged or foreign archive: {_first_line(err)}"
    return InputError(f"{path}: cannot read the checkpoint ({why})")


def _tensors(value: Any, name: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts and lists, with its dotted name."""
    if torch.is_tensor(value):
        yield name, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensors(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{name}.{i}" if name else str(i))


def _check_finite(path: Path, weights: Any) -> None:
    """Refuse NaN or infinite weights (a run that diverged): they give no labels, or all 0."""
    bad = [
        (name, int((~torch.isfinite(t)).sum()))
        for name, t in _tensors(weights)
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())
    ]
    if bad:
        total = sum(n for _, n in bad)
        raise InputError(
            f"{path}: {total} NaN or infinite weights (in {len(bad)} tensors, the first "
            f"{bad[0][0]}): the training diverged; use an earlier checkpoint"
        )


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by a :class:`~tumorsynth.train.Trainer` (``tumorsynth train``
    or a method's).

    Raises
    ------
    InputError
        The file is missing, unreadable, not a tumorsynth checkpoint, or its weights hold NaN or
        infinite values (the message says which).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise _unreadable(path, err) from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"{path}: not a tumorsynth checkpoint (no weights in it)")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            f"{path}: checkpoint format {state.get('format')!r}, this tumorsynth reads "
            f"{CHECKPOINT_FORMAT}"
        )
    _check_finite(path, state["model"])
    return state


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The trained network of a checkpoint, in eval mode on ``device``, with the checkpoint's
    metadata (``network``, ``window_hu``, ``spacing_mm``, ``step``, ...; weights dropped).

    Raises
    ------
    InputError
        As :func:`load_checkpoint`, a checkpoint that holds no segmentation network (e.g. a
        method's), or weights that do not fit the network its header describes.
    """
    state = load_checkpoint(path)
    if "network" not in state:
        raise InputError(f"{path}: not a segmentation checkpoint (no network in it)")
    try:
        model = build_network(state["network"])
    except TumorSynthError as err:
        raise InputError(f"{path}: {err}") from None
    except Exception as err:
        raise InputError(
            f"{path}: its header does not describe a network this tumorsynth builds "
            f"({type(err).__name__}: {err})"
        ) from None
    mismatch = _mismatch(model.state_dict(), state["model"])
    if mismatch:
        raise InputError(
            f"{path}: its weights do not fit the network its header describes ({mismatch})"
        )
    model.load_state_dict(state["model"])
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler")}
    return model, meta


def _mismatch(want: Mapping[str, torch.Tensor], have: Any) -> str:
    """How the weights ``have`` differ from the network's ``want`` (names and shapes), in a
    few words; empty when they fit."""
    if not isinstance(have, Mapping):
        return f"the weights are a {type(have).__name__}, not a state dict"
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    shapes = [
        f"{k}: {tuple(have[k].shape)} in the file, {tuple(want[k].shape)} in the network"
        for k in want
        if k in have and torch.is_tensor(have[k]) and have[k].shape != want[k].shape
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} not in the network, e.g. {extra[0]}")
    if shapes:
        parts.append(f"{len(shapes)} of another shape, e.g. {shapes[0]}")
    return "; ".join(parts)
