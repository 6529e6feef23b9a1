"""The compute backend, chosen once at the public boundary and passed down.

Below :func:`get_backend` nothing asks which device it runs on: code calls ``be.kernels.<name>``,
whose CPU (numba) and GPU (CuPy) modules have the same functions with the same signatures.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from tumorsynth.errors import InputError

__all__ = ["Backend", "get_backend"]

_KERNELS = {"cpu": "tumorsynth.kernels.cpu"}


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
    """

    name: str
    xp: ModuleType
    kernels: ModuleType


def get_backend(device: str = "cpu") -> Backend:
    """Resolve a device name (``"cpu"``; ``"cuda"`` once the GPU kernels are installed)."""
    name = str(device).split(":")[0].lower()
    if name not in _KERNELS:
        available = ", ".join(sorted(_KERNELS))
        raise InputError(f"device {device!r} is not available; choose from: {available}")
    import numpy

    return Backend(name, numpy, importlib.import_module(_KERNELS[name]))
