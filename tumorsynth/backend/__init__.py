"""The compute backend, chosen once at the public boundary and passed down.

Below :func:`get_backend` nothing asks which device it runs on: code calls ``be.kernels.<name>``,
whose CPU (numba) and GPU (CuPy) modules have the same functions with the same signatures,
``be.start_copy`` for the outputs' first copy, and ``be.asarray`` / ``be.to_host`` / ``be.restore``
to cross between array types. This package is the one place that inspects array types
(:func:`device_of`); it imports neither CuPy nor PyTorch until an array of theirs, or
``device="cuda"``, is seen.

- :mod:`~tumorsynth.backend.cuda`: CuPy arrays and CUDA torch tensors across, by DLPack;
- :mod:`~tumorsynth.backend.pool`: the CPU outputs' recycled memory (:func:`empty_cache`);
- :mod:`~tumorsynth.backend.copies`: the CPU outputs' first copy, on background threads.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tumorsynth.backend.copies import start_copy
from tumorsynth.backend.pool import empty_cache
from tumorsynth.errors import InputError

__all__ = ["Backend", "device_of", "empty_cache", "get_backend", "to_numpy"]

_KERNELS = {"cpu": "tumorsynth.kernels.cpu", "cuda": "tumorsynth.kernels.cuda"}


def _library(x: Any) -> str:
    return type(x).__module__.split(".", 1)[0]


def device_of(x: Any) -> str:
    """``"cuda"`` for CuPy arrays and CUDA torch tensors, ``"cpu"`` for anything else."""
    lib = _library(x)
    if lib == "cupy":
        return "cuda"
    if lib == "torch" and getattr(x, "is_cuda", False):
        return "cuda"
    return "cpu"


def to_numpy(x: Any):
    """A NumPy array of ``x`` (a copy from the device for CuPy arrays and CUDA tensors)."""
    import numpy

    lib = _library(x)
    if lib == "cupy":
        return x.get()
    if lib == "torch":
        return x.detach().cpu().numpy()
    return numpy.asarray(x)


@dataclass(frozen=True)
class Backend:
    """A device and its modules.

    Attributes
    ----------
    name : str
        ``"cpu"`` or ``"cuda"``.
    xp : module
        The array module (``numpy`` or ``cupy``).
    kernels : module
        The kernel module (``tumorsynth.kernels.cpu`` or ``.cuda``).
    start_copy : callable
        ``start_copy(image, organ)`` begins copying the image (to float32) and the mask (to uint8)
        into fresh outputs and returns ``finish()``, which gives them: on background threads from
        recycled memory on the CPU (:mod:`tumorsynth.backend.copies`), queued on the stream on the
        GPU.
    """

    name: str
    xp: ModuleType
    kernels: ModuleType
    start_copy: Callable[[Any, Any], Callable[[], tuple[Any, Any]]]

    def asarray(self, x: Any):
        """``x`` as this backend's array (zero-copy when it is already on this device)."""
        if self.name == "cuda":
            from tumorsynth.backend.cuda import as_cupy

            return as_cupy(x)
        return to_numpy(x)

    def to_host(self, x: Any):
        """A NumPy array of ``x`` (for the few small values the host must read)."""
        return to_numpy(x)

    def restore(self, x: Any, like: Any):
        """``x`` converted to the array type (and device) of ``like``: the type the caller gave."""
        if _library(like) == "torch" and not like.is_cuda:
            import torch

            return torch.from_numpy(to_numpy(x))
        if _library(like) in ("cupy", "torch"):
            from tumorsynth.backend.cuda import like_input

            return like_input(x, like)
        return to_numpy(x)

    def stream_of(self, like: Any):
        """Context in which this backend's work is ordered with the caller's (for a CUDA torch
        tensor: PyTorch's current stream; for a CuPy array: its device)."""
        if self.name == "cuda":
            from tumorsynth.backend.cuda import stream_of

            return stream_of(like)
        return contextlib.nullcontext()


def get_backend(device: str | None = None, *, like: Any = None) -> Backend:
    """Resolve a device name: ``"cpu"`` (numba) or ``"cuda"`` (CuPy; ``"cuda:N"`` is accepted and
    the work runs on the inputs' device). ``None`` takes the device of ``like`` (CPU without one).

    Raises
    ------
    InputError
        Unknown device, or ``"cuda"`` without CuPy or without a CUDA GPU.
    """
    if device is None:
        device = "cpu" if like is None else device_of(like)
    name = str(device).split(":")[0].lower()
    if name not in _KERNELS:
        available = ", ".join(sorted(_KERNELS))
        raise InputError(f"device {device!r} is not available; choose from: {available}")
    return _load(name)


@functools.cache
def _load(name: str) -> Backend:
    if name == "cuda":
        try:
            import cupy
        except ImportError as err:
            raise InputError(
                f"device 'cuda' needs CuPy, which is not importable ({err}); install the build for "
                "your CUDA version, e.g. `pip install cupy-cuda12x`"
            ) from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
            reason = "no CUDA device"
        except Exception as err:  # CUDARuntimeError without a driver
            count, reason = 0, f"{type(err).__name__}: {err}"
        if count == 0:
            raise InputError(f"device 'cuda': CuPy sees no usable CUDA GPU ({reason})")
        kernels = importlib.import_module(_KERNELS["cuda"])
        return Backend("cuda", cupy, kernels, kernels.start_copy)
    import numpy

    return Backend("cpu", numpy, importlib.import_module(_KERNELS["cpu"]), start_copy)
