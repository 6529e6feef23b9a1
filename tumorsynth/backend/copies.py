"""The outputs' starting point: copies of the image (float32) and of the organ mask (uint8).

A copy of a CT is bound by memory bandwidth (and, into fresh memory, by the kernel zeroing the new
pages), not by arithmetic, so it can run beside work that needs little memory: :func:`start_copy`
hands it to two background threads, one per array, while the caller draws and packs the params.

Each array is copied by one ``np.copyto``, which holds no GIL from start to end, so Python work on
the calling thread does not stall it (a thread that has to take the GIL back between steps waits up
to the interpreter's 5 ms switch interval each time). glibc's ``memcpy`` behind it streams into the
outputs faster than a compiled loop does. The outputs come from :mod:`tumorsynth.backend.pool`: memory
of earlier outputs that the caller has dropped, whose pages are mapped and zeroed already.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tumorsynth.backend.pool import RECYCLER

__all__ = ["copy_outputs", "start_copy"]


def start_copy(image: np.ndarray, organ: np.ndarray) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """Start copying ``image`` to float32 and ``organ`` to uint8 in the background; returns
    ``finish()``, which waits for both copies and returns ``(out, label)``.

    Call ``finish()`` once, also when the work in between fails, so that no copy is left running.
    """
    out = RECYCLER.empty(image.shape, np.float32)
    label = RECYCLER.empty(organ.shape, np.uint8)
    pool = _copier(os.getpid())
    jobs = [pool.submit(np.copyto, out, image), pool.submit(np.copyto, label, organ)]
    for _ in jobs:
        time.sleep(0)  # let go of the GIL, so that each copy thread starts now

    def finish() -> tuple[np.ndarray, np.ndarray]:
        for job in jobs:
            job.result()
        return out, label

    return finish


def copy_outputs(image: np.ndarray, organ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fresh float32 copy of the image and uint8 copy of the mask."""
    return start_copy(image, organ)()


@functools.cache
def _copier(pid: int) -> ThreadPoolExecutor:
    """This process's copy threads (keyed by process id: a forked child makes its own)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"tumorsynth-copy-{pid}")
