"""The per-voxel model of each stage, as small inline numba functions the render kernel composes.

Every function is the formula documented in its stage module (``tumorsynth.engine.stages.*``); distances are
signed distances to the tumour surface along the ray from its centre, mm (negative inside).
"""

from __future__ import annotations

import math

from numba import njit

from tumorsynth.kernels.cpu.shape import cbrt
from tumorsynth.kernels.edge import EDGE_TABLE
from tumorsynth.kernels.layout import CAPS_IN, CAPS_OUT, EDGE_REACH, EDGE_STEPS, NECRO_SOFT

SQRT2 = math.sqrt(2.0)
LAST_PIECE = EDGE_TABLE.shape[0] - 1


@njit(cache=True, inline="always")
def edge_weight(sd, sigma):
    """Blurred edge (intensity stage): Phi(-sd / sigma), exactly 1 / 0 beyond ``EDGE_REACH`` sigmas,
    from the cubic pieces of :data:`tumorsynth.kernels.edge.EDGE_TABLE` (a global array: numba
    compiles it in as a constant)."""
    if sd <= -EDGE_REACH * sigma:
        return 1.0
    if sd >= EDGE_REACH * sigma:
        return 0.0
    g = (sd / sigma + EDGE_REACH) * EDGE_STEPS
    k = min(int(g), LAST_PIECE)
    t = g - k
    return EDGE_TABLE[k, 0] + t * (EDGE_TABLE[k, 1] + t * (EDGE_TABLE[k, 2] + t * EDGE_TABLE[k, 3]))


@njit(cache=True, inline="always")
def capsule_profile(sd, thickness):
    """Capsule stage: a Gaussian rim of width ``thickness`` centred half a thickness inside."""
    if thickness <= 0.0 or not -CAPS_IN * thickness < sd < CAPS_OUT * thickness:
        return 0.0
    return math.exp(-0.5 * ((sd + 0.5 * thickness) / (0.5 * thickness)) ** 2)


@njit(cache=True, inline="always")
def necrosis_weight(rho, core):
    """Necrotic core (intensity stage): 1 well inside unit-ball radius ``core``, 0 outside."""
    if core <= 0.0:
        return 0.0
    return 0.5 * math.erfc((rho - core) / (NECRO_SOFT * SQRT2))


@njit(cache=True, inline="always")
def mass_factor(rho, big_r, sd, inside, k, reach):
    """Mass-effect stage: the tissue now at offset d from the centre came from offset f * d."""
    if k <= 0.0:
        return 1.0
    if inside:
        return cbrt(1.0 - k)
    if sd >= reach:
        return 1.0
    rn = rho / big_r
    u = rn - cbrt(rn * rn * rn - k)
    taper = 1.0 - (sd / reach) ** 2
    return (rn - u * taper * taper) / rn


@njit(cache=True, inline="always")
def blend(w, delta_hu, texture, necrosis, core_delta_hu, cap, capsule_hu):
    """HU change of one lesion: textured contrast under the edge weight, pulled toward the core's HU
    by the necrosis weight and toward the capsule's by its profile."""
    d = w * delta_hu * texture
    if necrosis > 0.0:
        d += necrosis * w * (core_delta_hu - d)
    if cap > 0.0:
        d += cap * (capsule_hu - d)
    return d
