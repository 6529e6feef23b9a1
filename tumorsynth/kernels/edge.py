"""The blurred edge's weight, Phi(-u) at u = signed distance / edge sigma, as a table of cubics.

``math.erfc`` (and the ``exp`` inside it) took a sixth of the CPU render kernel's time. Both kernels
(numba and CUDA) instead evaluate one cubic piece of :data:`EDGE_TABLE`: each piece is the Hermite
cubic through Phi(-u) and its slope at the ends of a 1/64-sigma interval, so the curve is continuous
with a continuous slope, and it is within h**4 / 384 * max|Phi''''| < 1e-10 of Phi (2e-8 HU under a
200 HU contrast). The two kernels read the same table with the same operations, so the weight is the
same bit for bit on CPU and GPU. Beyond ``EDGE_REACH`` sigmas the weight is exactly 1 or 0.
"""

from __future__ import annotations

import math

import numpy as np

from tumorsynth.kernels.layout import EDGE_REACH, EDGE_STEPS

__all__ = ["EDGE_TABLE", "cuda_table", "edge_table", "edge_weight_reference"]


def _upper_tail(u: float) -> float:
    """Phi(-u), the standard normal's upper tail at ``u``, from ``math.erfc``."""
    return 0.5 * math.erfc(u / math.sqrt(2.0))


def edge_weight_reference(u):
    """Phi(-u), exactly 1 / 0 beyond ``EDGE_REACH``, from ``math.erfc`` (array in, array out)."""
    u = np.asarray(u, dtype=np.float64)
    phi = np.vectorize(_upper_tail, otypes=[np.float64])(u)
    return np.where(u <= -EDGE_REACH, 1.0, np.where(u >= EDGE_REACH, 0.0, phi))


def edge_table(steps_per_sigma: int = EDGE_STEPS) -> np.ndarray:
    """(2 * EDGE_REACH * steps_per_sigma, 4) coefficients: row k holds (c0, c1, c2, c3) of the
    piece ``c0 + t * (c1 + t * (c2 + t * c3))``, t in [0, 1], at
    ``u = -EDGE_REACH + (k + t) / steps_per_sigma``."""
    h = 1.0 / steps_per_sigma
    u = np.linspace(-EDGE_REACH, EDGE_REACH, round(2 * EDGE_REACH * steps_per_sigma) + 1)
    value = np.array([_upper_tail(x) for x in u])
    slope = -h * np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)  # d/dt, t in interval units
    v0, v1, s0, s1 = value[:-1], value[1:], slope[:-1], slope[1:]
    table = np.stack([v0, s0, 3.0 * (v1 - v0) - 2.0 * s0 - s1, 2.0 * (v0 - v1) + s0 + s1], axis=1)
    table.setflags(write=False)
    return table


EDGE_TABLE = edge_table()


def cuda_table() -> str:
    """:data:`EDGE_TABLE` as the CUDA device array ``TS_EDGE_TABLE`` (``TS_EDGE_PIECES`` rows), its
    values written as hexadecimal literals so that the GPU reads the very doubles the CPU does."""
    pieces = ",\n".join("{" + ", ".join(float(c).hex() for c in row) + "}" for row in EDGE_TABLE)
    return (
        f"#define TS_EDGE_PIECES {len(EDGE_TABLE)}\n"
        "[[maybe_unused]] __device__ const double TS_EDGE_TABLE[TS_EDGE_PIECES][4] = {\n"
        f"{pieces}\n}};"
    )
