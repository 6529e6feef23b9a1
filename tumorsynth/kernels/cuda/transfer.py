"""Uploading a :class:`~tumorsynth.kernels.cuda.hostpack.HostPack`: one asynchronous copy.

The host buffer is first copied into pinned (page-locked) staging memory, so that the upload is a
true ``cudaMemcpyAsync`` that neither waits for the device nor is waited for: the host can pack and
enqueue the next batch while the GPU renders this one. A staging buffer is reused once the event
recorded behind its last copy has completed (a query, not a wait); while all are in flight a new one
is taken from CuPy's pinned memory pool, and only past ``_SLOTS`` of them does the host wait.
"""

from __future__ import annotations

from dataclasses import dataclass

import cupy
import numpy as np

from tumorsynth.kernels.cuda.hostpack import HostPack

__all__ = ["DevicePack", "upload"]

_SLOTS = 16


@dataclass(frozen=True)
class DevicePack:
    """A :class:`HostPack` on the device: ``pack["rows"]`` etc. are views of one device buffer."""

    host: HostPack
    buffer: cupy.ndarray

    def __getitem__(self, name: str) -> cupy.ndarray:
        offset, dtype, shape = self.host.fields[name]
        return cupy.ndarray(shape, dtype, memptr=self.buffer.data + offset)


class _Staging:
    def __init__(self) -> None:
        self.slots: list[list] = []  # [pinned memory, capacity, event of its last copy, age]

    def _slot(self, nbytes: int) -> list:
        for slot in self.slots:
            if slot[1] >= nbytes and slot[2].done:
                return slot
        if len(self.slots) >= _SLOTS:  # every buffer busy: wait for the oldest copy
            slot = min(self.slots, key=lambda s: s[3])
            slot[2].synchronize()
            if slot[1] >= nbytes:
                return slot
            self.slots.remove(slot)
        size = max(nbytes, 1 << 16)
        slot = [cupy.cuda.alloc_pinned_memory(size), size, None, 0]
        self.slots.append(slot)
        return slot

    def copy(self, host: np.ndarray, device: cupy.ndarray) -> None:
        slot = self._slot(host.nbytes)
        staged = np.frombuffer(slot[0], np.uint8, host.nbytes)
        staged[:] = host
        stream = cupy.cuda.get_current_stream()
        device.set(staged, stream=stream)
        slot[2] = cupy.cuda.Event(block=False, disable_timing=True)
        slot[2].record(stream)
        slot[3] = max((s[3] for s in self.slots), default=0) + 1


@cupy.memoize(for_each_device=True)
def _staging() -> _Staging:
    return _Staging()


def upload(pack: HostPack) -> DevicePack:
    """Copy a host pack to the current device, on the current stream (asynchronously)."""
    buffer = cupy.empty(pack.buffer.nbytes, cupy.uint8)
    _staging().copy(pack.buffer, buffer)
    return DevicePack(pack, buffer)
