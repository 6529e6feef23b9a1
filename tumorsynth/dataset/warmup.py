"""Compile the CPU kernels ahead (``tumorsynth warmup``), so that the first real run starts at once.

numba compiles a kernel on its first call and caches the machine code on disk; a fresh install
therefore spends about a minute of CPU in its first synthesis and its first phantom. This module
makes that minute happen at set-up (``make`` runs it) instead of in a user's first command: it
runs the engine's kernels (both presets, every size class, float32 CT as the toolkit's readers and
the phantom give them) and the phantom's, in two processes at once.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["WarmupReport", "warm_up"]


@dataclass(frozen=True)
class WarmupReport:
    """What :func:`warm_up` did.

    Attributes
    ----------
    seconds : float
        Wall time, s.
    cpu_seconds : dict of str to float
        CPU time of each part (``engine``, ``phantom``), s: the compilation, where the caches were
        empty.
    """

    seconds: float
    cpu_seconds: dict[str, float]


def _toy_host(shape=(48, 44, 40), seed=0):
    """An ellipsoidal organ at 100 HU in -80 HU, with noise and two bright 'vessels' (float32)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    r2 = sum(((g - n / 2) / (0.42 * n)) ** 2 for g, n in zip(grid, shape, strict=True))
    organ = (r2 <= 1).astype(np.uint8)
    image = np.where(organ == 1, 100.0, -80.0) + rng.normal(0, 10, shape)
    image[:, 20:22, 18:20] += 150.0
    image[30:32, :, 12:14] += 150.0
    return image.astype(np.float32), organ


def warm_engine() -> float:
    """Run every engine kernel once (sampling and rendering, both presets); CPU seconds."""
    from tumorsynth.engine.pipeline import synthesize
    from tumorsynth.kernels.compile_notice import silence

    silence()  # warm_up's caller has said what is happening
    start = time.process_time()
    image, organ = _toy_host()
    for preset in ("liver", "syntumor"):
        for size in ("tiny", "mix"):
            config = {"preset": preset, "size_class": size, "location": {"if_no_room": "skip"}}
            synthesize(image, organ, 1.0, config=config, seed=0)
    return time.process_time() - start


def warm_phantom() -> float:
    """Make a coarse phantom (every phantom kernel runs whatever the spacing); CPU seconds."""
    from tumorsynth.kernels.compile_notice import silence
    from tumorsynth.phantom import make_phantom

    silence()
    start = time.process_time()
    make_phantom(seed=0, spacing_mm=8.0)
    return time.process_time() - start


def warm_up(parallel: bool = True) -> WarmupReport:
    """Compile and cache the engine's and the phantom's CPU kernels (a no-op's cost, about a second,
    where they are cached already).

    Parameters
    ----------
    parallel : bool
        Compile the two parts in two processes at once (each compilation uses one core).

    Returns
    -------
    WarmupReport
    """
    start = time.perf_counter()
    parts = {"engine": warm_engine, "phantom": warm_phantom}
    if parallel:
        context = multiprocessing.get_context("spawn")  # fresh processes: no forked numba state
        with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
            futures = {name: pool.submit(part) for name, part in parts.items()}
            cpu = {name: f.result() for name, f in futures.items()}
    else:
        cpu = {name: part() for name, part in parts.items()}
    return WarmupReport(time.perf_counter() - start, cpu)
