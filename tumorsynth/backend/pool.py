"""Recycled output memory for CPU renders.

Fresh memory costs more than filling it: the operating system maps and zeroes every new page on
first touch, which takes about half as long again as copying a CT into it. So, as CuPy's and
PyTorch's memory pools do on a GPU, the CPU render takes its outputs from a :class:`Recycler`, which
keeps the last few arrays it made and hands one out again once nothing outside it refers to that
memory any more (the caller has dropped every view of it): exactly when ``free`` would have given it
back to the system. :func:`empty_cache` lets go of them.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

__all__ = ["RECYCLER", "Recycler", "empty_cache"]


def _refcount(held: list[np.ndarray], k: int) -> int:
    return sys.getrefcount(held[k])


class Recycler:
    """Output arrays whose memory is reused once the caller has dropped them.

    Parameters
    ----------
    keep : int
        Arrays held per dtype (the most recently made); two let a loop that keeps one result while
        it makes the next reuse memory every time.

    Notes
    -----
    Every array handed out is a view of an array the recycler holds, so each view (and each view
    of it, a torch tensor made by ``torch.from_numpy``, a memoryview...) keeps a reference to that
    owner; the owner is free when the recycler's own references are the only ones. That count is
    measured once, on this interpreter, rather than assumed. On a free-threaded Python build
    reference counts are not exact, and the recycler hands out fresh arrays only.
    """

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._held: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
        self._free_count = _refcount([np.empty(0)], 0)  # an array nothing else refers to

    def empty(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised C-contiguous array: recycled memory where some is free, else new."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        if not self._enabled:
            return np.empty(shape, dtype)
        with self._lock:
            for k in range(len(self._held)):  # by index: a loop variable would count as a user
                fits = self._held[k].shape == shape and self._held[k].dtype == dtype
                if fits and _refcount(self._held, k) == self._free_count:
                    self._held.append(self._held.pop(k))  # most recently used last
                    return self._held[-1].view()
            self._held.append(np.empty(shape, dtype))
            same = [k for k, a in enumerate(self._held) if a.dtype == dtype]
            if len(same) > self.keep:
                del self._held[same[0]]  # the oldest of this dtype: its users keep it alive
            return self._held[-1].view()

    def clear(self) -> None:
        """Let go of every held array (memory still in use stays with its users)."""
        with self._lock:
            self._held.clear()


RECYCLER = Recycler()  # the process's recycler of CPU render outputs


def empty_cache() -> None:
    """Release the output memory kept for reuse by CPU syntheses (see :class:`Recycler`).

    A process that synthesises volumes in a loop keeps up to two images (float32) and two labels
    (uint8) of the latest shape after its last result is dropped: about 250 MB at
    320 x 320 x 240. Call this to hand that memory back to the system.
    """
    RECYCLER.clear()
