"""Slow, obviously correct NumPy versions of the kernels, used by the tests as oracles.

Each function mirrors the numba kernel of the same name (``tumorsynth.kernels.cpu``), vectorised over
voxels instead of looped, with no fast paths: every lesion is evaluated at every voxel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import erfc

from tumorsynth.kernels import layout as L
from tumorsynth.kernels.hashing import hash_u32_np, mix_u32_np, unit_noise_np

__all__ = [
    "ball_inside_organ",
    "grain",
    "lesion_fields",
    "render_lesions",
    "texture_grid",
    "vessel_map",
    "vessel_overlap",
]

_CELLS_PER_SIGMA = 1.0
_RADIUS = 3


def _blur_valid(a: np.ndarray) -> np.ndarray:
    k = np.arange(-_RADIUS, _RADIUS + 1)
    w = np.exp(-0.5 * (k / _CELLS_PER_SIGMA) ** 2)
    w /= w.sum()
    for axis in range(3):
        a = ndimage.correlate1d(a, w, axis=axis, mode="constant")
        a = np.take(a, np.arange(_RADIUS, a.shape[axis] - _RADIUS), axis=axis)
    return a, float(np.sum(w * w) ** 1.5)


def _white(seed: int, lo, n) -> np.ndarray:
    i, j, k = np.meshgrid(
        *[np.arange(a, a + m) for a, m in zip(lo, n, strict=False)], indexing="ij"
    )
    return unit_noise_np(seed, i, j, k)


def _trilinear(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``a`` at fractional indices ``g`` (..., 3), clamped to the edges."""
    n = np.asarray(a.shape)
    g = np.clip(g, 0.0, n - 1.000001)
    i = g.astype(np.int64)
    f = g - i
    out = 0.0
    for corner in np.ndindex(2, 2, 2):
        c = np.asarray(corner)
        weight = np.prod(np.where(c == 1, f, 1.0 - f), axis=-1)
        out = out + weight * a[i[..., 0] + c[0], i[..., 1] + c[1], i[..., 2] + c[2]]
    return out


def texture_grid(seed, density_sigma_mm, grain_sigma_mm, base, scale, density_std, mean, lo, shape):
    """NumPy twin of ``kernels.cpu.texture_grid``."""
    h = grain_sigma_mm / _CELLS_PER_SIGMA
    ha = density_sigma_mm / _CELLS_PER_SIGMA
    r = _RADIUS
    lo, shape = np.asarray(lo), np.asarray(shape)
    seed_a, seed_c = int(hash_u32_np(seed, 1, 0, 0)), int(hash_u32_np(seed, 2, 0, 0))
    a_lo = np.floor((lo - r) * h / ha).astype(np.int64)
    a_n = np.floor((lo + shape + r - 1) * h / ha).astype(np.int64) + 2 - a_lo
    za, var = _blur_valid(_white(seed_a, a_lo - r, a_n + 2 * r))
    za = za / np.sqrt(var)
    idx = np.stack(
        np.meshgrid(
            *[np.arange(a - r, a + m + r) for a, m in zip(lo, shape, strict=False)], indexing="ij"
        ),
        -1,
    )
    d = np.clip(0.5 + density_std * _trilinear(za, idx * h / ha - a_lo), 0.0, 1.0)
    p = base + scale * d
    lam = p * h**3
    counts = lam + np.sqrt(lam * (1.0 - p)) * _white(seed_c, lo - r, shape + 2 * r)
    s, _ = _blur_valid(counts)
    return np.clip(mean * s / ((base + 0.5 * scale) * h**3), 0.0, 1.0).astype(np.float32)


def _radial(row: np.ndarray, u: np.ndarray) -> np.ndarray:
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    c = row[L.DEFORM : L.DEFORM + 15]
    poly = np.stack(
        [
            x,
            y,
            z,
            x * y,
            y * z,
            x * z,
            3 * z * z - 1,
            x * x - y * y,
            y * (3 * x * x - y * y),
            x * y * z,
            y * (5 * z * z - 1),
            z * (5 * z * z - 3),
            x * (5 * z * z - 1),
            z * (x * x - y * y),
            x * (x * x - 3 * y * y),
        ],
        axis=-1,
    )
    kappa = row[L.KAPPA]
    return np.maximum(kappa + poly @ c, 0.2 * kappa)


def lesion_fields(row: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    """Per-voxel quantities of one lesion at offsets ``d`` (..., 3) mm, with no fast paths."""
    q = d @ row[L.TO_UNIT : L.TO_UNIT + 9].reshape(3, 3).T
    rho = np.linalg.norm(q, axis=-1)
    safe = np.maximum(rho, 1e-12)
    big_r = _radial(row, q / safe[..., None])
    r_mm = np.linalg.norm(d, axis=-1)
    sd = np.where(rho > 1e-12, r_mm * (1.0 - big_r / safe), -np.inf)
    inside = rho <= big_r
    sigma = row[L.EDGE_SIGMA]
    w = 0.5 * erfc(sd / (sigma * np.sqrt(2.0))) if sigma > 0 else (sd <= 0).astype(float)
    w = np.where(sd <= -L.EDGE_REACH * sigma, 1.0, np.where(sd >= L.EDGE_REACH * sigma, 0.0, w))
    t = row[L.CAPS_T]
    cap = np.zeros_like(rho)
    if t > 0:
        span = (sd > -L.CAPS_IN * t) & (sd < L.CAPS_OUT * t)
        cap = np.where(span, np.exp(-0.5 * ((sd + 0.5 * t) / (0.5 * t)) ** 2), 0.0)
    k, reach = row[L.MASS_K], row[L.MASS_REACH]
    factor = np.ones_like(rho)
    if k > 0:
        rn = safe / big_r
        taper = np.clip(1.0 - (sd / reach) ** 2, 0.0, None) ** 2
        outside = rn - (rn - np.cbrt(rn**3 - k)) * taper
        factor = np.where(inside, np.cbrt(1.0 - k), np.where(sd < reach, outside / rn, 1.0))
    reached = rho < row[L.FAR_RHO]
    return {
        "rho": rho,
        "sd": sd,
        "inside": inside,
        "w": w,
        "cap": cap,
        "factor": factor,
        "reached": reached,
    }


def _uniform_unit(h: np.ndarray) -> np.ndarray:
    """``hashing.unit_noise`` of hashes ``h``."""
    return ((h >> np.uint64(8)).astype(np.float64) / 16777216.0 - 0.5) * 3.4641016151377544


def grain(row: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """NumPy twin of ``kernels.cpu.effects.grain`` at integer voxel coordinates ``grid`` (..., 3)."""
    x, y, z = grid[..., 0], grid[..., 1], grid[..., 2]
    h = hash_u32_np(int(row[L.GRAIN_SEED]), x, y, z)
    parts = (_uniform_unit(h), _uniform_unit(mix_u32_np(h, 1)), _uniform_unit(mix_u32_np(h, 2)))
    white = (parts[0] + parts[1] + parts[2]) * (1.0 / np.sqrt(3.0))
    mix = row[L.GRAIN_MIX]
    if mix == 0.0:
        return row[L.GRAIN_HU] * (row[L.GRAIN_WHITE] * white)
    s = np.zeros(x.shape)
    for a, b, c in np.ndindex(2, 2, 2):
        s = s + unit_noise_np(int(row[L.GRAIN_SEED + 1]), x + a, y + b, z + c)
    return row[L.GRAIN_HU] * (row[L.GRAIN_WHITE] * white + mix * (s * (1.0 / np.sqrt(8.0))))


def render_lesions(image, organ, spacing, rows, tex):
    """NumPy twin of ``kernels.cpu.render_lesions`` over the whole volume (returns out, label)."""
    image = np.asarray(image)
    shape = image.shape
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    pos = grid * np.asarray(spacing)
    disp = np.zeros((*shape, 3))
    best_key = np.zeros(shape)
    best_d = np.zeros(shape)
    best_hold = np.zeros(shape)
    tumour = np.zeros(shape, bool)
    in_organ = np.asarray(organ) > 0
    touched = in_organ.copy()  # voxels the render may write: the organ, and exophytic reach
    for row in rows:
        d = pos - row[L.CENTER : L.CENTER + 3]
        f = lesion_fields(row, d)
        reached = f["reached"] & (in_organ | (row[L.EXOPHYTIC] != 0.0))
        touched |= reached
        disp += np.where(reached[..., None], d * (f["factor"] - 1.0)[..., None], 0.0)
        tumour |= reached & f["inside"]
        key = np.where(reached, np.maximum(f["w"], f["cap"]), 0.0)
        n = row[L.TEX_N : L.TEX_N + 3].astype(int)
        off = int(row[L.TEX_OFFSET])
        tgrid = tex[off : off + n.prod()].reshape(n)
        texture = _trilinear(tgrid, d / row[L.TEX_H] - row[L.TEX_LO : L.TEX_LO + 3])
        necro = np.zeros(shape)
        if row[L.NECRO_RHO] > 0:
            necro = 0.5 * erfc((f["rho"] - row[L.NECRO_RHO]) / (L.NECRO_SOFT * np.sqrt(2)))
        if row[L.REPLACE]:
            delta, hold = _replace_terms(row, f, texture, necro, grain(row, grid))
        else:
            delta = f["w"] * row[L.DELTA_HU] * texture
            delta = delta + necro * f["w"] * (row[L.NECRO_DELTA] - delta)
            delta, hold = delta + f["cap"] * (row[L.CAPS_HU] - delta), np.zeros(shape)
        better = key > best_key
        best_key = np.where(better, key, best_key)
        best_d = np.where(better, delta, best_d)
        best_hold = np.where(better, hold, best_hold)
    src = grid + disp / np.asarray(spacing)
    clipped = np.clip(src, 0, np.asarray(shape) - 1.0)
    near = np.floor(clipped + 0.5).astype(int)
    src_in_organ = organ[near[..., 0], near[..., 1], near[..., 2]] > 0
    moved = np.any(disp != 0, axis=-1) & src_in_organ & in_organ  # tissue moves only in the organ
    base = np.where(moved, _trilinear(image.astype(np.float64), clipped), image)
    value = np.where(best_hold == 0.0, base + best_d, base + (best_d - best_hold * base))
    out = np.where(touched, value, image).astype(np.float32)
    label = np.where(touched & tumour, 2, organ).astype(np.uint8)
    return out, label


def _replace_terms(row, f, texture, necro, grain_hu):
    """``(a, b)`` of a replacing lesion (its HU change is ``a - b * base``; see
    ``kernels.cpu.effects.blend_replace``)."""
    w, cap = f["w"], f["cap"]
    level = row[L.ORGAN_HU] + grain_hu
    a = w * (level + row[L.DELTA_HU] * texture)
    b = w
    nw = necro * w
    a = a + nw * (level + row[L.NECRO_DELTA] - a)
    b = b + nw * (1.0 - b)
    a = a + cap * (level + row[L.CAPS_HU] - a)
    b = b + cap * (1.0 - b)
    return a, b


def ball_inside_organ(organ, spacing, center_mm, radius_mm) -> bool:
    """NumPy twin of ``kernels.cpu.ball_inside_organ``."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in organ.shape], indexing="ij"), -1)
    dist = np.linalg.norm(grid * np.asarray(spacing) - np.asarray(center_mm), axis=-1)
    ball = dist <= radius_mm
    lo = np.ceil((np.asarray(center_mm) - radius_mm) / np.asarray(spacing))
    hi = np.floor((np.asarray(center_mm) + radius_mm) / np.asarray(spacing))
    if np.any(lo < 0) or np.any(hi >= organ.shape):
        return False
    return bool(np.all(organ[ball] > 0))


def vessel_map(
    image: np.ndarray,
    organ: np.ndarray,
    spacing_mm: tuple[float, float, float],
    threshold_hu: float,
    sigma_mm: float = 1.0,
) -> np.ndarray:
    """The vessel map that placement avoids: organ voxels whose smoothed HU exceeds a threshold.

    Parameters
    ----------
    image : (X, Y, Z) array
        CT in HU.
    organ : (X, Y, Z) array
        0/1 organ mask.
    spacing_mm : tuple of float
        Voxel size, mm.
    threshold_hu : float
        HU threshold (placement uses the organ's median plus ``vessel_offset_hu``).
    sigma_mm : float
        Gaussian smoothing, mm (truncated at 3 sigma).

    Returns
    -------
    numpy.ndarray
        (X, Y, Z) bool.
    """
    sigma_vox = [sigma_mm / s for s in spacing_mm]
    smooth = ndimage.gaussian_filter(
        np.asarray(image, dtype=np.float32), sigma_vox, mode="nearest", truncate=3.0
    )
    return (smooth > threshold_hu) & (np.asarray(organ) > 0)


def vessel_overlap(image, organ, spacing, row, threshold_hu, sigma_mm) -> bool:
    """NumPy twin of ``kernels.cpu.vessel_overlap`` over the whole volume."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij"), -1)
    d = grid * np.asarray(spacing) - row[L.CENTER : L.CENTER + 3]
    inside = lesion_fields(row, d)["inside"]
    vessels = vessel_map(image, organ, spacing, threshold_hu, sigma_mm)
    return bool(np.any(inside & vessels))
