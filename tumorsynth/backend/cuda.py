"""Crossing onto the GPU: CuPy arrays and CUDA torch tensors in, the same type out, no copies.

Torch tensors cross by DLPack, without a copy, and CuPy work runs on PyTorch's current stream, so a
call inside a training step is ordered with the step's own work and never waits on the host. CuPy
and torch are imported on first use only.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

__all__ = ["as_cupy", "like_input", "stream_of"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def as_cupy(x: Any):
    """A C-contiguous CuPy array of ``x``: zero-copy for CuPy arrays and CUDA torch tensors (DLPack),
    an upload for host arrays. Bool arrays are viewed as uint8."""
    import cupy

    if _is_torch(x):
        x = x.detach()
        x = cupy.from_dlpack(x) if x.is_cuda else cupy.asarray(x.numpy())
    elif not isinstance(x, cupy.ndarray):
        x = cupy.asarray(np.asarray(x))
    if x.dtype == cupy.bool_:
        x = x.view(cupy.uint8)
    return cupy.ascontiguousarray(x)


def like_input(x: Any, like: Any):
    """``x`` (a CuPy or NumPy array) as the type of ``like``: a torch tensor on ``like``'s device
    (zero-copy from CuPy by DLPack), a CuPy array, or a NumPy array."""
    import cupy

    if _is_torch(like):
        import torch

        if like.is_cuda:
            return torch.from_dlpack(cupy.asarray(x))
        return torch.from_numpy(cupy.asnumpy(x))
    if isinstance(like, cupy.ndarray):
        return cupy.asarray(x)
    return cupy.asnumpy(x)


def stream_of(like: Any):
    """Context that runs CuPy work on ``like``'s device and, for a CUDA torch tensor, on PyTorch's
    current stream (no synchronisation is needed either way)."""
    import cupy

    if _is_torch(like) and like.is_cuda:
        import torch

        stream = torch.cuda.current_stream(like.device)
        stack = contextlib.ExitStack()
        stack.enter_context(cupy.cuda.Device(like.device.index))
        stack.enter_context(_external(cupy, stream, like.device.index))
        return stack
    if isinstance(like, cupy.ndarray):
        return cupy.cuda.Device(like.device.id)
    return contextlib.nullcontext()


def _external(cupy, stream, device: int):
    """A CuPy view of a torch stream (``Stream.from_external`` where CuPy has it)."""
    try:
        return cupy.cuda.Stream.from_external(stream)
    except (AttributeError, TypeError, ValueError):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return cupy.cuda.ExternalStream(stream.cuda_stream, device)
