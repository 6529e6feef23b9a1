r"""Texture: procedural salt noise, smoothed and scaled, generated only around each tumour.

The reference code pre-computes a bank of ten 420 x 300 x 320 float64 textures (3 GB, 80 s at start-up)
and crops them. Each texture is a "salt" process whose density varies smoothly:

1. a density field :math:`D = 0.5 + s_D Z_a`, with :math:`Z_a` unit-variance Gaussian-smoothed noise at
   scale :math:`\sigma_a` (``density_sigma_mm``) and :math:`s_D` its spread (``density_std``);
2. salt with probability :math:`p = \text{base} + \text{scale} \cdot D` per 1 mm³;
3. Gaussian smoothing at :math:`\sigma_b` (``grain_sigma_mm``);
4. scaling to mean :math:`u_0` (``mean``), clipped to [0, 1].

Here the same process is generated on a coarse isotropic lattice around each tumour, in millimetres
(spacing :math:`\sigma_b`). Each cell's salt count has the mean and variance of the binomial count
of its 1 mm³ sub-cells (the smoothing makes its distribution Gaussian). Every random number comes
from the counter-based hash of (seed, lattice node), so the texture is a pure function of the params
and of the position in mm, at any voxel spacing and on any device. The kernel samples it
trilinearly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tumorsynth.errors import ConfigError

__all__ = ["TextureConfig", "TextureGrid", "TextureParams", "sample_texture", "texture_lattice"]

CELLS_PER_SIGMA = 1.0  # lattice spacing = sigma: the smoothing kernel is one cell wide


@dataclass(frozen=True)
class TextureConfig:
    """Ranges of the texture parameters (reference values by default).

    Attributes
    ----------
    density_sigma_mm : tuple of float
        :math:`\\sigma_a`, smoothness of the salt density (reference bank: 3-15).
    grain_sigma_mm : tuple of float
        :math:`\\sigma_b`, smoothing of the salt (reference bank: 4 and 7).
    base, scale : tuple of float
        Salt probability :math:`p = \text{base} + \text{scale} \\cdot D` (reference U(0.04, 0.06) and
        U(0.19, 0.21)).
    density_std : float
        Spread of the normalised density field :math:`D` around 0.5 (the min-max normalised field of the
        reference bank has a spread of about 1/11).
    mean : tuple of float
        Mean texture value :math:`u_0` (reference U(0.50, 0.55)).
    """

    density_sigma_mm: tuple[float, float] = (3.0, 15.0)
    grain_sigma_mm: tuple[float, float] = (4.0, 7.0)
    base: tuple[float, float] = (0.04, 0.06)
    scale: tuple[float, float] = (0.19, 0.21)
    density_std: float = 0.09
    mean: tuple[float, float] = (0.50, 0.55)

    def __post_init__(self) -> None:
        if min(self.density_sigma_mm) <= 0 or min(self.grain_sigma_mm) <= 0:
            raise ConfigError("texture: sigmas must be positive (mm)")


@dataclass(frozen=True)
class TextureParams:
    """The drawn texture of one tumour (the field itself is regenerated from ``seed``)."""

    seed: int
    density_sigma_mm: float
    grain_sigma_mm: float
    base: float
    scale: float
    density_std: float
    mean: float


@dataclass(frozen=True)
class TextureGrid:
    """Where a tumour's texture lattice lies: node ``lo + i`` sits at ``(lo + i) * spacing_mm`` mm
    from the tumour centre along each axis; ``shape`` nodes per axis."""

    spacing_mm: float
    lo: tuple[int, int, int]
    shape: tuple[int, int, int]


def sample_texture(rng: np.random.Generator, cfg: TextureConfig) -> TextureParams:
    """Draw the texture parameters of one tumour."""
    return TextureParams(
        seed=int(rng.integers(0, 2**31)),
        density_sigma_mm=float(rng.uniform(*cfg.density_sigma_mm)),
        grain_sigma_mm=float(rng.uniform(*cfg.grain_sigma_mm)),
        base=float(rng.uniform(*cfg.base)),
        scale=float(rng.uniform(*cfg.scale)),
        density_std=float(cfg.density_std),
        mean=float(rng.uniform(*cfg.mean)),
    )


def texture_lattice(p: TextureParams, half_extent_mm: np.ndarray) -> TextureGrid:
    """The lattice that covers a tumour whose effects reach ``half_extent_mm`` (X, Y, Z) from its
    centre."""
    h = p.grain_sigma_mm / CELLS_PER_SIGMA
    extent = [float(e) for e in half_extent_mm]
    lo = tuple(math.floor(-e / h) - 1 for e in extent)
    hi = tuple(math.ceil(e / h) + 1 for e in extent)
    return TextureGrid(float(h), lo, tuple(b - a + 1 for a, b in zip(lo, hi, strict=True)))
