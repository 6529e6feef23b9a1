"""CuPy texture lattices: all lesions of a volume or batch in six launches.

.. seealso:: :func:`tumorsynth.kernels.cpu.texture.texture_grid`, the numba twin (same values, bit
   for bit, where both use IEEE double arithmetic without fused multiply-add).
"""

from __future__ import annotations

from types import SimpleNamespace

import cupy
import numpy as np

from tumorsynth.kernels.cuda._compile import blocks, function
from tumorsynth.kernels.cuda.hostpack import N_STAGES, pack_textures
from tumorsynth.kernels.cuda.transfer import DevicePack, upload

__all__ = ["build_textures", "texture_grid"]

THREADS = 128


def _buffer(workspace, name: str, size: int, dtype) -> cupy.ndarray:
    size = max(int(size), 1)
    if workspace is None:
        return cupy.empty(size, dtype)
    held = workspace.get(name)
    if held is None or held.size < size:
        held = workspace[name] = cupy.empty(size, dtype)
    return held[:size]


def build_textures(pack: DevicePack, workspace: dict | None = None) -> cupy.ndarray:
    """The flat float32 texture lattices of every lesion of an uploaded pack (offsets in the rows'
    ``TEX_OFFSET`` field).

    ``workspace`` (a dict) keeps the scratch and lattice buffers between calls: reused, and alive
    as long as the dict, as a CUDA graph that replays these launches needs.
    """
    host = pack.host
    scratch = _buffer(workspace, "scratch", host.scratch_size, cupy.float64)
    tex = _buffer(workspace, "tex", host.tex_size, cupy.float32)
    if host.n_lesions == 0:
        return tex
    kernel = function("texture", "ts_texture_stage")
    args = (pack["tm"], pack["prefix"], pack["stage_base"], pack["w"], scratch, tex)
    for stage in range(N_STAGES):
        total = host.stage_total[stage]
        kernel(
            (blocks(total, THREADS),),
            (THREADS,),
            (np.int32(stage), np.int32(host.n_lesions), np.int64(total), *args),
        )
    return tex


def _ints(values) -> list[int]:
    return [int(v) for v in (values.get() if isinstance(values, cupy.ndarray) else values)]


def texture_grid(seed, density_sigma_mm, grain_sigma_mm, base, scale, density_std, mean, lo, shape):
    """Texture values at lattice nodes ``lo + (0..shape-1)``: a float32 CuPy array of ``shape``.

    Same signature and values as :func:`tumorsynth.kernels.cpu.texture_grid`; ``lo`` and ``shape``
    are small host arrays (a CuPy array is read back).
    """
    params = SimpleNamespace(
        seed=int(seed),
        density_sigma_mm=float(density_sigma_mm),
        grain_sigma_mm=float(grain_sigma_mm),
        base=float(base),
        scale=float(scale),
        density_std=float(density_std),
        mean=float(mean),
    )
    lo, shape = _ints(lo), _ints(shape)
    tex = build_textures(upload(pack_textures([(params, lo, shape)])))
    return tex[: int(np.prod(shape))].reshape(shape)
