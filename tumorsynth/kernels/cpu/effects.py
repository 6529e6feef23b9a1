"""The per-voxel model of each stage, as small inline numba functions the render kernel composes.

Every function is the formula documented in its stage module (``tumorsynth.engine.stages.*``); distances are
signed distances to the tumour surface along the ray from its centre, mm (negative inside).
"""

from __future__ import annotations

import math

from numba import njit

from tumorsynth.kernels.cpu.shape import cbrt
from tumorsynth.kernels.edge import EDGE_TABLE
from tumorsynth.kernels.hashing import hash_u32, mix_u32, unit_noise
from tumorsynth.kernels.layout import (
    CAPS_IN,
    CAPS_OUT,
    EDGE_REACH,
    EDGE_STEPS,
    GRAIN_HU,
    GRAIN_MIX,
    GRAIN_SEED,
    GRAIN_WHITE,
    NECRO_SOFT,
)

SQRT2 = math.sqrt(2.0)
INV_SQRT3 = 1.0 / math.sqrt(3.0)
INV_SQRT8 = 1.0 / math.sqrt(8.0)
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


@njit(cache=True, inline="always")
def blend_replace(w, delta_hu, texture, necrosis, core_delta_hu, cap, capsule_hu, level_hu):
    """HU change of a replacing lesion as ``a - b * base`` (returns ``a, b``): the host's value
    ``base`` is pulled, by the edge weight, toward the tumour's tissue (``level_hu``, the organ's
    level with the scan's grain, plus the textured contrast); then toward the core's and the
    capsule's levels, as :func:`blend` pulls its change. Affine in ``base``, which the caller knows
    only once every lesion's displacement is summed."""
    a = w * (level_hu + delta_hu * texture)
    b = w
    if necrosis > 0.0:
        nw = necrosis * w
        a += nw * (level_hu + core_delta_hu - a)
        b += nw * (1.0 - b)
    if cap > 0.0:
        a += cap * (level_hu + capsule_hu - a)
        b += cap * (1.0 - b)
    return a, b


@njit(cache=True, inline="always")
def grain(rows, i, x, y, z):
    """The scan's noise grain given to replacing lesion ``i``'s tissue at voxel (x, y, z), HU.

    A white part (three unit-variance uniforms of the voxel's hash, summed and scaled back to unit
    variance: near normal) and a smooth part (the mean of unit-variance lattice values at the
    voxel's eight corners, scaled to unit variance: neighbours share half of it), weighted so that
    the grain's standard deviation is ``GRAIN_HU`` and neighbours correlate ``GRAIN_MIX^2 / 2``.
    Integer hashes, sums and products only: the GPU gives the same doubles.
    """
    h = hash_u32(int(rows[i, GRAIN_SEED]), x, y, z)
    white = (unit_noise(h) + unit_noise(mix_u32(h, 1)) + unit_noise(mix_u32(h, 2))) * INV_SQRT3
    mix = rows[i, GRAIN_MIX]
    if mix == 0.0:
        return rows[i, GRAIN_HU] * (rows[i, GRAIN_WHITE] * white)
    seed = int(rows[i, GRAIN_SEED + 1])
    s = 0.0
    for a in range(2):
        for b in range(2):
            for c in range(2):
                s += unit_noise(hash_u32(seed, x + a, y + b, z + c))
    return rows[i, GRAIN_HU] * (rows[i, GRAIN_WHITE] * white + mix * (s * INV_SQRT8))
