"""Params packed for the GPU kernels: one host buffer per batch, uploaded with one copy.

Host side and pure NumPy (CuPy is imported only by :func:`pack_on_device`), so that DataLoader
workers on machines without a GPU can pack ahead of a training step. The rows are those of
:func:`tumorsynth.engine.packing.pack_lesion`, bit for bit; the texture lattices are described by
per-lesion metadata and built on the device (``tumorsynth/kernels/cuda/_src/texture.cu``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tumorsynth.engine.packing import Packed, lesion_box, pack_lesion, tile_boxes
from tumorsynth.engine.params import TumorParams
from tumorsynth.engine.stages.texture import texture_lattice
from tumorsynth.errors import InputError
from tumorsynth.kernels import layout as L
from tumorsynth.kernels.cuda.hostpack import (
    HostPack,
    assemble,
    texture_meta,
    texture_tables,
    texture_weights,
    tile_dims,
)

__all__ = ["pack_batch", "pack_on_device"]


def pack_batch(params_list: Sequence[TumorParams], tile=None) -> HostPack:
    """Pack the lesions of one params per volume of a batch (host side, pure).

    Parameters
    ----------
    params_list : sequence of TumorParams
        One per volume; all drawn for the same volume shape.
    tile : int or 3 ints, optional
        Render tile size, voxels (None: ``kernels.layout.TILE``); rounded up to powers of two.

    Returns
    -------
    HostPack
    """
    if not params_list:
        raise InputError("pack_batch needs at least one TumorParams")
    dims = tile_dims(tile)
    shape = tuple(int(n) for n in params_list[0].volume_shape)
    w, sqrt_norm = texture_weights()
    rows, metas, sizes, spacing = [], [], [], []
    tiles, ptrs, owners, items = [], [], [], []
    n_entries = 0
    for b, params in enumerate(params_list):
        if not isinstance(params, TumorParams):
            raise InputError(f"params_list[{b}] is a {type(params).__name__}, not TumorParams")
        if tuple(int(n) for n in params.volume_shape) != shape:
            raise InputError(
                f"params_list[{b}] was drawn for shape {tuple(params.volume_shape)}, not {shape}: "
                "a batch holds volumes of one shape"
            )
        spacing.append(params.spacing_mm)
        first = len(rows)
        boxes = []
        for lesion in params.lesions:
            row, visible, extent = pack_lesion(
                lesion, params.organ_hu, params.noise_hu, params.noise_corr
            )
            tp = lesion.texture
            lattice = texture_lattice(tp, visible)
            m, s = texture_meta(tp, lattice.lo, lattice.shape, sqrt_norm)
            row[L.TEX_H] = lattice.spacing_mm
            row[L.TEX_LO : L.TEX_LO + 3] = lattice.lo
            row[L.TEX_N : L.TEX_N + 3] = lattice.shape
            rows.append(row)
            metas.append(m)
            sizes.append(s)
            boxes.append(lesion_box(lesion.center_mm, extent, params.spacing_mm, shape))
        if not boxes:
            continue
        t, p, les = tile_boxes(np.array(boxes, np.int64), shape, np.array(dims, np.int64))
        tiles.append(t)
        ptrs.append(p[:-1] + n_entries)
        owners.append(les + first)
        items.append(np.full(len(t), b, np.int32))
        n_entries += int(p[-1])
    n_lesions = len(rows)
    if n_lesions:
        tm, prefix, totals, base = texture_tables(metas, sizes)
        row_array = np.array(rows, np.float64)
        row_array[:, L.TEX_OFFSET] = prefix[5, :-1]
        tile_array = np.concatenate(tiles).astype(np.int64)
        ptr = np.concatenate([*ptrs, [n_entries]]).astype(np.int64)
        lesions = np.concatenate(owners).astype(np.int64)
        item = np.concatenate(items)
    else:
        tm, prefix, totals, base = texture_tables([], [])
        row_array = np.zeros((0, L.N_FIELDS))
        tile_array = np.zeros((0, 6), np.int64)
        ptr = np.zeros(1, np.int64)
        lesions = np.zeros(0, np.int64)
        item = np.zeros(0, np.int32)
    arrays = {
        "rows": row_array,
        "tm": tm,
        "prefix": prefix,
        "stage_base": base[:5],
        "w": w,
        "spacing": np.array(spacing, np.float64).reshape(-1, 3),
        "tiles": tile_array,
        "tile_ptr": ptr,
        "tile_lesions": lesions,
        "tile_item": item,
    }
    buffer, fields = assemble(arrays)
    return HostPack(
        buffer,
        fields,
        len(params_list),
        n_lesions,
        len(tile_array),
        dims,
        shape,
        tuple(int(v) for v in base[:5]),
        totals,
        int(base[5]),
        totals[5],
    )


def pack_on_device(params: TumorParams) -> Packed:
    """Kernel inputs of one params on the GPU: one upload and six texture launches.

    The device twin of ``tumorsynth.engine.packing.pack(params, texture_grids)``: the same rows,
    tiles and lattices, as CuPy arrays (tiles of ``kernels.layout.TILE``, as the CUDA render takes).
    """
    from tumorsynth.kernels.cuda.texture import build_textures
    from tumorsynth.kernels.cuda.transfer import upload

    device = upload(pack_batch([params]))
    return Packed(
        device["rows"], device["tiles"], device["tile_ptr"], device["tile_lesions"],
        build_textures(device),
    )  # fmt: skip
