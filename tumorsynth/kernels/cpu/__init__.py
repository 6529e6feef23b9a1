"""numba kernels (CPU). Public names and signatures match ``kernels.reference``.

``import tumorsynth`` selects numba's fork-safe threading layer (see ``tumorsynth/__init__.py``).
"""

from tumorsynth.kernels.cpu.organ import (
    ball_inside_organ,
    measure_organ_arrays,
    screen_centres,
    vessel_overlap,
)
from tumorsynth.kernels.cpu.render import render_lesions
from tumorsynth.kernels.cpu.texture import texture_grid, texture_grids

__all__ = [
    "ball_inside_organ",
    "measure_organ_arrays",
    "render_lesions",
    "screen_centres",
    "texture_grid",
    "texture_grids",
    "vessel_overlap",
]
