"""The render against an oracle that starts from the params themselves.

The oracle reads each :class:`~tumorsynth.LesionParams` and derives what the kernels need without the
engine's packing: its own rotation (SciPy's), its own volume normalisation (a dense Gauss-Legendre
quadrature over the sphere instead of the engine's 3000-point lattice), no acceleration bounds (every
lesion evaluated at every voxel) and its own texture lattices (a larger box, built by the NumPy
texture oracle). It then renders with ``kernels.reference.render_lesions``. So a mistake in packing
(a transposed matrix, a wrong coefficient scale or normalisation, a texture lattice placed wrong)
shows here, where comparing with rows made by the same packing code could not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from toy import toy_volume

import tumorsynth as ts
from tumorsynth.engine.packing import GRAIN_SMOOTH_STREAM, GRAIN_WHITE_STREAM
from tumorsynth.engine.stages.shape import MIN_RADIAL, sh_basis
from tumorsynth.kernels import layout as L
from tumorsynth.kernels import reference
from tumorsynth.kernels.hashing import derive_seed

# the monomials kernels.reference._radial multiplies the row's coefficients with, in sh_basis order
MONOMIALS = (
    lambda x, y, z: x, lambda x, y, z: y, lambda x, y, z: z, lambda x, y, z: x * y,
    lambda x, y, z: y * z, lambda x, y, z: x * z, lambda x, y, z: 3 * z * z - 1,
    lambda x, y, z: x * x - y * y, lambda x, y, z: y * (3 * x * x - y * y),
    lambda x, y, z: x * y * z, lambda x, y, z: y * (5 * z * z - 1),
    lambda x, y, z: z * (5 * z * z - 3), lambda x, y, z: x * (5 * z * z - 1),
    lambda x, y, z: z * (x * x - y * y), lambda x, y, z: x * (x * x - 3 * y * y),
)  # fmt: skip


def _sphere(n_theta: int = 96, n_phi: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and weights (summing to 1) of a Gauss-Legendre x uniform product rule."""
    cos_t, w_t = np.polynomial.legendre.leggauss(n_theta)
    phi = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
    c, p = np.meshgrid(cos_t, phi, indexing="ij")
    s = np.sqrt(1 - c * c)
    u = np.stack([s * np.cos(p), s * np.sin(p), c], -1).reshape(-1, 3)
    w = np.repeat(w_t / 2, n_phi) / n_phi
    return u, w


def oracle_row(lesion: ts.LesionParams, params: ts.TumorParams) -> np.ndarray:
    """The reference's per-lesion row, derived from the params with no engine code but the
    spherical-harmonic basis that defines ``ShapeParams.deform`` and the grain's seed streams."""
    shape, ip, organ_hu = lesion.shape, lesion.intensity, params.organ_hu
    axes = np.asarray(shape.semi_axes_mm)
    w, x, y, z = shape.rotation
    rotation = Rotation.from_quat([x, y, z, w]).as_matrix()
    u, weights = _sphere()
    radial = np.maximum(1.0 + sh_basis(u) @ np.asarray(shape.deform), MIN_RADIAL)
    kappa = float(weights @ radial**3) ** (-1.0 / 3.0)  # the deformed solid keeps the volume
    spread = float(radial.max() - radial.min())
    r_lo = kappa * max(float(radial.min()) - 0.05 * spread - 0.01, MIN_RADIAL)
    probe = np.array([0.48, -0.6, 0.64])  # monomial k times norm[k] is basis function k
    norm = sh_basis(probe) / np.array([m(*probe) for m in MONOMIALS])
    row = np.zeros(L.N_FIELDS)
    row[L.CENTER : L.CENTER + 3] = lesion.center_mm
    row[L.TO_UNIT : L.TO_UNIT + 9] = (np.diag(1.0 / axes) @ rotation.T).ravel()
    row[L.KAPPA] = kappa
    row[L.DEFORM : L.DEFORM + 15] = kappa * np.asarray(shape.deform) * norm
    row[L.EDGE_SIGMA], row[L.DELTA_HU] = ip.edge_sigma_mm, ip.delta_hu
    row[L.NECRO_RHO] = ip.necrosis_core * r_lo
    row[L.NECRO_DELTA] = ip.necrosis_hu - organ_hu
    row[L.MASS_K], row[L.MASS_REACH] = lesion.mass_effect.strength, lesion.mass_effect.reach_mm
    row[L.CAPS_T], row[L.CAPS_HU] = lesion.capsule.thickness_mm, lesion.capsule.contrast_hu
    row[L.FAR_RHO] = np.inf  # no bounds: the fields themselves end where the effects do
    if ip.replace:  # the grain: neighbours correlate noise_corr = mix^2 / 2
        mix = np.sqrt(2.0 * params.noise_corr)
        row[L.REPLACE], row[L.ORGAN_HU], row[L.GRAIN_HU] = 1.0, organ_hu, params.noise_hu
        row[L.GRAIN_WHITE], row[L.GRAIN_MIX] = np.sqrt(1.0 - mix**2), mix
        seeds = (
            derive_seed(lesion.texture.seed, s) for s in (GRAIN_WHITE_STREAM, GRAIN_SMOOTH_STREAM)
        )
        row[L.GRAIN_SEED : L.GRAIN_SEED + 2] = list(seeds)
    return row


def oracle_rows_and_textures(params: ts.TumorParams) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every lesion and one flat buffer of texture lattices, each lattice a box of nodes
    (spacing: the grain sigma) around the lesion's centre that reaches well beyond its effects."""
    rows, textures, offset = [], [], 0
    for lesion in params.lesions:
        row = oracle_row(lesion, params)
        tp = lesion.texture
        reach_mm = 2.0 * max(lesion.shape.semi_axes_mm) + lesion.mass_effect.reach_mm + 10.0
        half = math.ceil(reach_mm / tp.grain_sigma_mm)
        lo, n = np.full(3, -half), np.full(3, 2 * half + 1)
        grid = reference.texture_grid(
            tp.seed, tp.density_sigma_mm, tp.grain_sigma_mm, tp.base, tp.scale, tp.density_std,
            tp.mean, lo, n,
        )  # fmt: skip
        row[L.TEX_H], row[L.TEX_LO : L.TEX_LO + 3], row[L.TEX_N : L.TEX_N + 3] = (
            tp.grain_sigma_mm, lo, n,
        )  # fmt: skip
        row[L.TEX_OFFSET] = offset
        offset += grid.size
        rows.append(row)
        textures.append(grid.ravel())
    return np.array(rows), np.concatenate(textures).astype(np.float32)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.9, 1.7)])
@pytest.mark.parametrize(
    "config",
    [
        {"preset": "syntumor", "size_class": "small"},
        {
            "preset": "liver",
            "size_class": "small",
            "location": {"avoid_vessels": False, "if_no_room": "skip"},
            "intensity": {"necrosis_probability": 1.0, "necrosis_min_radius_mm": 0.0},
            "capsule": {"min_radius_mm": 0.0},
        },
    ],
)
def test_render_matches_an_oracle_that_starts_from_the_params(spacing, config):
    image, organ = toy_volume(spacing=spacing)
    params = ts.sample_params(image, organ, spacing, config=config, rng=5)
    assert len(params.lesions) >= 2
    replace = config["preset"] == "liver"  # the liver preset's tissue replaces the host's
    assert all(lesion.intensity.replace == replace for lesion in params.lesions)
    assert (params.noise_hu > 5.0) == replace
    got = ts.render(image, organ, spacing, params)
    rows, tex = oracle_rows_and_textures(params)
    want_image, want_label = reference.render_lesions(image, organ, spacing, rows, tex)
    tumour = want_label == 2
    assert tumour.sum() > 200
    # the oracle's volume normalisation is a different quadrature, so a voxel whose centre lies
    # within a hair of a surface may fall on the other side; no more than that may differ
    assert np.count_nonzero(got.label != want_label) <= 2
    diff = np.abs(got.image.astype(np.float64) - want_image)
    assert np.quantile(diff, 0.999) < 0.01, np.quantile(diff, 0.999)
    assert diff.max() < 1.0, diff.max()
    changed = got.image != image
    assert changed.sum() > tumour.sum()  # the edge, capsule and mass effect reach beyond it
