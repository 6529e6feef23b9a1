"""Voxel grids of the built-in phantom: the centres (mm) of a box of voxels and its sub-boxes.

The phantom's anatomy is defined in patient millimetres relative to the centre of the default field of
view (x toward the patient's right, y anterior, z superior); a :class:`Grid` says where the voxel
centres of a volume, or of a box inside it, lie in that frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """Voxel-centre coordinates (mm) of a regular box of voxels.

    Attributes
    ----------
    xs, ys, zs : ndarray of float64
        Coordinates of the voxel centres along x, y and z (mm).
    spacing : tuple of float
        Voxel size along x, y, z (mm).
    offset : tuple of int
        Index of the first voxel in the enclosing volume.
    """

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray
    spacing: tuple[float, float, float]
    offset: tuple[int, int, int] = (0, 0, 0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.xs.size, self.ys.size, self.zs.size)

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.xs[0], self.ys[0], self.zs[0]])

    @classmethod
    def box(cls, lo_mm, hi_mm, spacing_mm: float) -> Grid:
        """A grid of step ``spacing_mm`` covering the box [lo_mm, hi_mm]."""
        axes = [
            np.arange(lo, hi + spacing_mm, spacing_mm) for lo, hi in zip(lo_mm, hi_mm, strict=True)
        ]
        return cls(*axes, spacing=(spacing_mm,) * 3)

    def sub(self, lo_mm, hi_mm) -> Grid | None:
        """The part of this grid whose voxel centres lie in [lo_mm, hi_mm], or None if empty."""
        axes, first = [], []
        for a, c in enumerate((self.xs, self.ys, self.zs)):
            s = self.spacing[a]
            i0 = max(int(np.ceil((lo_mm[a] - c[0]) / s - 1e-9)), 0)
            i1 = min(int(np.floor((hi_mm[a] - c[0]) / s + 1e-9)) + 1, c.size)
            if i0 >= i1:
                return None
            axes.append(c[i0:i1])
            first.append(self.offset[a] + i0)
        return Grid(*axes, spacing=self.spacing, offset=tuple(first))

    def slices(self, outer: Grid) -> tuple[slice, slice, slice]:
        """Index slices of this grid inside ``outer`` (a grid that contains it)."""
        return tuple(
            slice(self.offset[a] - outer.offset[a], self.offset[a] - outer.offset[a] + n)
            for a, n in enumerate(self.shape)
        )  # type: ignore[return-value]

    def mesh(self, axis: int) -> np.ndarray:
        """Coordinates along ``axis`` broadcastable to the grid's shape."""
        c = (self.xs, self.ys, self.zs)[axis]
        shape = [1, 1, 1]
        shape[axis] = c.size
        return c.reshape(shape)
