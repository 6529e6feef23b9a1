"""Packing params into the flat arrays the kernels read (``tumorsynth.kernels.layout``).

Everything here is host-side, cheap and pure: the same params always give the same arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from tumorsynth.engine.params import LesionParams, TumorParams
from tumorsynth.engine.stages.shape import ShapeGeometry, shape_geometry
from tumorsynth.engine.stages.texture import texture_lattice
from tumorsynth.kernels import layout as L
from tumorsynth.kernels.hashing import derive_seed
from tumorsynth.kernels.layout import CPU_TILE, TILE

__all__ = ["Packed", "lesion_box", "pack", "pack_lesion", "shape_row", "tile_boxes"]


# sub-streams of a lesion's texture seed that seed its grain's two parts
GRAIN_WHITE_STREAM, GRAIN_SMOOTH_STREAM = 3, 4

# normalisation of the 15 real spherical harmonics (see stages.shape.sh_basis), folded into the row
_SH_SCALE = np.array(
    [3**0.5] * 3
    + [15**0.5] * 3
    + [0.5 * 5**0.5, 0.5 * 15**0.5, 0.5 * 17.5**0.5, 105**0.5, 0.5 * 10.5**0.5, 0.5 * 7**0.5]
    + [0.5 * 10.5**0.5, 0.5 * 105**0.5, 0.5 * 17.5**0.5]
)


@dataclass(frozen=True)
class Packed:
    """Kernel inputs for a set of lesions: see ``kernels.cpu.render.render_lesions``."""

    rows: np.ndarray
    tiles: np.ndarray
    tile_ptr: np.ndarray
    tile_lesions: np.ndarray
    tex: np.ndarray


def shape_row(center_mm, geom: ShapeGeometry, deform) -> np.ndarray:
    """A row with the shape fields set (enough for ``lesion_at``: inside / outside queries)."""
    row = np.zeros(L.N_FIELDS)
    row[L.CENTER : L.CENTER + 3] = center_mm
    row[L.TO_UNIT : L.TO_UNIT + 9] = geom.to_unit.ravel()
    row[L.KAPPA] = geom.kappa
    row[L.DEFORM : L.DEFORM + 15] = geom.kappa * np.asarray(deform) * _SH_SCALE
    row[L.R_LO], row[L.R_HI], row[L.A_MIN] = geom.r_lo, geom.r_hi, geom.a_min_mm
    row[L.INNER_RHO] = geom.r_lo * 0.999
    row[L.FAR_RHO] = geom.r_hi * 1.001
    return row


def pack_lesion(
    lesion: LesionParams, organ_hu: float, noise_hu: float = 0.0, noise_corr: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row of one lesion (texture fields left 0), the half extent (mm) of the region where it shows,
    and that of everything it changes (its mass effect included). ``noise_hu`` and ``noise_corr``:
    the scan's noise (``TumorParams``), the grain a replacing tumour's tissue gets."""
    geom = shape_geometry(lesion.shape)
    row = shape_row(lesion.center_mm, geom, lesion.shape.deform)
    ip, mp, cp = lesion.intensity, lesion.mass_effect, lesion.capsule
    if ip.replace:
        mix = math.sqrt(2.0 * min(max(noise_corr, 0.0), 0.5))  # the smooth part's weight
        row[L.REPLACE], row[L.ORGAN_HU], row[L.GRAIN_HU] = 1.0, organ_hu, noise_hu
        row[L.GRAIN_WHITE], row[L.GRAIN_MIX] = math.sqrt(1.0 - mix * mix), mix
        row[L.GRAIN_SEED] = derive_seed(lesion.texture.seed, GRAIN_WHITE_STREAM)
        row[L.GRAIN_SEED + 1] = derive_seed(lesion.texture.seed, GRAIN_SMOOTH_STREAM)
    row[L.EDGE_SIGMA] = ip.edge_sigma_mm
    row[L.DELTA_HU] = ip.delta_hu
    row[L.NECRO_RHO] = ip.necrosis_core * geom.r_lo
    row[L.NECRO_DELTA] = ip.necrosis_hu - organ_hu
    row[L.MASS_K], row[L.MASS_REACH] = mp.strength, mp.reach_mm
    row[L.CAPS_T], row[L.CAPS_HU] = cp.thickness_mm, cp.contrast_hu
    row[L.EXOPHYTIC] = 1.0 if lesion.exophytic else 0.0
    inward_mm = max(L.EDGE_REACH * ip.edge_sigma_mm, L.CAPS_IN * cp.thickness_mm)
    outward_mm = max(L.EDGE_REACH * ip.edge_sigma_mm, L.CAPS_OUT * cp.thickness_mm)
    row[L.INNER_RHO] = max(geom.r_lo - inward_mm / geom.a_min_mm, 0.0)
    visible_rho = geom.r_hi + outward_mm / geom.a_min_mm  # where the lesion's appearance can show
    if mp.strength > 0:
        outward_mm = max(outward_mm, mp.reach_mm)
    row[L.FAR_RHO] = geom.r_hi + outward_mm / geom.a_min_mm
    return row, geom.extent_mm(visible_rho), geom.extent_mm(row[L.FAR_RHO])


def lesion_box(center_mm, half_extent_mm, spacing_mm, volume_shape) -> np.ndarray:
    """Voxel box [lo, hi) holding a region of ``half_extent_mm`` around ``center_mm`` (plain float
    arithmetic: NumPy's per-call overhead on three numbers cost more than the sums)."""
    lo, hi = [], []
    for c, e, s, n in zip(center_mm, half_extent_mm, spacing_mm, volume_shape, strict=True):
        c, e, s, n = float(c), float(e), float(s), int(n)
        a = min(max(math.floor((c - e) / s), 0), n)
        lo.append(a)
        hi.append(max(min(max(math.ceil((c + e) / s) + 1, 0), n), a))
    return np.array(lo + hi, np.int64)


def pack(params: TumorParams, texture_grids, tile=CPU_TILE) -> Packed:
    """Pack all lesions of ``params``; ``texture_grids`` is the backend's batch lattice generator
    (``kernels.cpu.texture_grids``) and ``tile`` the render tile (voxels, one or 3 ints)."""
    n = len(params.lesions)
    rows = np.zeros((n, L.N_FIELDS))
    boxes = np.zeros((n, 6), np.int64)
    seeds = np.zeros(n, np.int64)
    values = np.zeros((n, 6))
    lattice_lo = np.zeros((n, 3), np.int64)
    lattice_shape = np.zeros((n, 3), np.int64)
    for i, lesion in enumerate(params.lesions):
        row, visible, extent = pack_lesion(
            lesion, params.organ_hu, params.noise_hu, params.noise_corr
        )
        tp = lesion.texture
        lattice = texture_lattice(tp, visible)
        seeds[i] = tp.seed
        values[i] = (
            tp.density_sigma_mm,
            tp.grain_sigma_mm,
            tp.base,
            tp.scale,
            tp.density_std,
            tp.mean,
        )
        lattice_lo[i], lattice_shape[i] = lattice.lo, lattice.shape
        row[L.TEX_H] = lattice.spacing_mm
        row[L.TEX_LO : L.TEX_LO + 3] = lattice.lo
        row[L.TEX_N : L.TEX_N + 3] = lattice.shape
        rows[i] = row
        boxes[i] = lesion_box(lesion.center_mm, extent, params.spacing_mm, params.volume_shape)
    tex, offsets = texture_grids(seeds, values, lattice_lo, lattice_shape)
    rows[:, L.TEX_OFFSET] = offsets[:-1]
    tiles, tile_ptr, tile_lesions = tile_boxes(boxes, params.volume_shape, tile)
    return Packed(rows, tiles, tile_ptr, tile_lesions, tex.astype(np.float32, copy=False))


def tile_boxes(boxes: np.ndarray, volume_shape, tile=TILE) -> tuple[np.ndarray, ...]:
    """Cut the union of ``boxes`` into disjoint tiles of ``tile`` voxels per axis (one or 3 ints).

    Returns the tiles' voxel boxes (T, 6), and in CSR form (``ptr``, ``lesions``) the boxes that
    intersect each tile, in increasing order.
    """
    sizes = np.broadcast_to(np.asarray(tile, np.int64), (3,)).copy()
    return _tile_boxes(np.asarray(boxes, np.int64), np.asarray(volume_shape, np.int64), sizes)


@njit(cache=True)
def _tile_boxes(boxes, shape, tile):
    n_tiles = (shape + tile - 1) // tile
    stride = np.array([n_tiles[1] * n_tiles[2], n_tiles[2], 1])
    ids = []
    owners = []
    for i in range(boxes.shape[0]):
        t_lo = boxes[i, :3] // tile
        t_hi = (boxes[i, 3:] + tile - 1) // tile
        for a in range(t_lo[0], t_hi[0]):
            for b in range(t_lo[1], t_hi[1]):
                for c in range(t_lo[2], t_hi[2]):
                    ids.append(a * stride[0] + b * stride[1] + c)
                    owners.append(i)
    flat = np.array(ids, np.int64)
    lesions = np.array(owners, np.int64)
    order = np.argsort(flat * boxes.shape[0] + lesions)
    flat, lesions = flat[order], lesions[order]
    tiles = []
    ptr = [0]
    for k in range(flat.size):
        if k == 0 or flat[k] != flat[k - 1]:
            if k > 0:
                ptr.append(k)
            f = flat[k]
            lo = np.array([f // stride[0], (f // stride[1]) % n_tiles[1], f % n_tiles[2]]) * tile
            tiles.append(np.concatenate((lo, np.minimum(lo + tile, shape))))
    ptr.append(flat.size)
    out = np.zeros((len(tiles), 6), np.int64)
    for k in range(len(tiles)):
        out[k] = tiles[k]
    return out, np.array(ptr, np.int64), lesions
