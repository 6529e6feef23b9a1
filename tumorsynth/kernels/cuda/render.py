"""CuPy render: every stage of every lesion of a volume (or of a batch of volumes) in one launch.

.. seealso:: :func:`tumorsynth.kernels.cpu.render_lesions`, the numba twin.
"""

from __future__ import annotations

import cupy
import numpy as np

from tumorsynth.kernels.cuda._compile import blocks, function
from tumorsynth.kernels.cuda.hostpack import tile_dims
from tumorsynth.kernels.cuda.texture import build_textures
from tumorsynth.kernels.cuda.transfer import DevicePack

__all__ = [
    "copy_into",
    "copy_outputs",
    "render_lesions",
    "render_pack",
    "start_copy",
    "synthesize_pack",
]

THREADS = 128  # render threads per block
COPY = "memcpy"  # how float32 images are copied: "memcpy" or "kernel"
_NULL = np.uint64(0)  # a null pointer argument


def copy_into(image, organ, out, label) -> None:
    """``out[...] = float32(image)``, ``label[...] = organ`` (C-contiguous device arrays).

    float32 images: two device-to-device copies (``COPY = "memcpy"``, the copy engine's rate) or
    one coalesced kernel (``"kernel"``); other dtypes: one converting kernel.
    """
    n = int(image.size)
    if n == 0:
        return
    if image.dtype == cupy.float32 and COPY == "memcpy":
        out.data.copy_from_device_async(image.data, image.nbytes)
        if label.data.ptr != organ.data.ptr:  # labels may be written into the mask itself
            label.data.copy_from_device_async(organ.data, organ.nbytes)
        return
    aligned = all(a.data.ptr % 16 == 0 for a in (image, organ, out, label))
    if image.dtype == cupy.float32 and n % 4 == 0 and aligned:
        kernel = function("render", "ts_copy_f32x4")
        grid = min(blocks(n // 4, 256), 8 * _sm_count())
        kernel((grid,), (256,), (image, organ, out, label, np.int64(n // 4)))
    else:
        kernel = function("render", "ts_copy", image.dtype)
        kernel((min(blocks(n, 256), 1 << 16),), (256,), (image, organ, out, label, np.int64(n)))


@cupy.memoize(for_each_device=True)
def _sm_count() -> int:
    return int(cupy.cuda.Device().attributes["MultiProcessorCount"])


def copy_outputs(image, organ):
    """Fresh float32 copy of the image and uint8 copy of the mask (device arrays)."""
    out = cupy.empty(image.shape, cupy.float32)
    label = cupy.empty(organ.shape, cupy.uint8)
    copy_into(image, organ, out, label)
    return out, label


def start_copy(image, organ):
    """:func:`copy_outputs`, queued on the current stream (device copies are asynchronous already);
    returns ``finish()`` giving ``(out, label)``, as the numba twin does."""
    out, label = copy_outputs(image, organ)
    return lambda: (out, label)


def _launch(
    image,
    organ,
    out,
    label,
    spacing,
    item_spacing,
    rows,
    tiles,
    tile_ptr,
    tile_lesions,
    tile_item,
    tex,
    tile: tuple[int, int, int],
) -> None:
    n_tiles = int(tiles.shape[0])
    if n_tiles == 0:
        return
    n0, n1, n2 = (int(n) for n in image.shape[-3:])
    log2 = [int(t).bit_length() - 1 for t in tile]
    per_tile = blocks(tile[0] * tile[1] * tile[2], THREADS)
    kernel = function("render", "ts_render", image.dtype)
    kernel(
        (n_tiles * per_tile,),
        (THREADS,),
        (
            image, organ, out, label,
            np.int32(n0), np.int32(n1), np.int32(n2),
            *(np.float64(s) for s in spacing),
            item_spacing, rows, tiles, tile_ptr, tile_lesions, tile_item, tex,
            *(np.int32(v) for v in log2), np.int32(per_tile),
        ),
    )  # fmt: skip


def render_lesions(image, organ, out, label, spacing, rows, tiles, tile_ptr, tile_lesions, tex):
    """Render packed lesions into ``out`` (float32) and ``label`` (uint8), in place, on the GPU.

    Same signature and semantics as :func:`tumorsynth.kernels.cpu.render_lesions`: ``image``,
    ``organ``, ``out`` and ``label`` are (X, Y, Z) C-contiguous CuPy arrays; ``spacing`` is (3,)
    host floats; the packed arrays may be CuPy arrays (see
    :func:`tumorsynth.engine.batch.pack_on_device`) or host arrays, uploaded here. Tiles must be at
    most ``kernels.layout.TILE`` voxels per axis (as ``pack_on_device`` and
    ``packing.tile_boxes(..., tile=TILE)`` cut them; the CPU's ``packing.pack`` cuts longer tiles,
    ``kernels.layout.CPU_TILE``, which this kernel cannot take).
    """
    as_dev = cupy.asarray
    _launch(
        image, organ, out, label, [float(s) for s in spacing], _NULL,
        as_dev(rows, cupy.float64), as_dev(tiles, cupy.int64), as_dev(tile_ptr, cupy.int64),
        as_dev(tile_lesions, cupy.int64), _NULL, as_dev(tex, cupy.float32), tile_dims(),
    )  # fmt: skip


def render_pack(images, organs, out, labels, pack: DevicePack, workspace: dict | None = None):
    """Render an uploaded batch pack into ``out`` / ``labels`` (B, X, Y, Z), which already hold
    copies of ``images`` / ``organs``: the texture passes and one render launch (``workspace``: see
    :func:`~tumorsynth.kernels.cuda.texture.build_textures`)."""
    host = pack.host
    if host.n_lesions == 0:
        return
    _render_pack(images, organs, out, labels, pack, build_textures(pack, workspace))


def _render_pack(images, organs, out, labels, pack: DevicePack, tex) -> None:
    _launch(
        images, organs, out, labels, (0.0, 0.0, 0.0), pack["spacing"], pack["rows"],
        pack["tiles"], pack["tile_ptr"], pack["tile_lesions"], pack["tile_item"], tex,
        pack.host.tile,
    )  # fmt: skip


@cupy.memoize(for_each_device=True)
def _side_stream() -> cupy.cuda.Stream:
    return cupy.cuda.Stream(non_blocking=True)


def synthesize_pack(images, organs, out, labels, pack: DevicePack, workspace=None) -> None:
    """Copy ``images`` / ``organs`` into ``out`` / ``labels`` and render an uploaded pack into them.

    The texture passes, which need only the pack, run on a side stream while the copy runs on the
    current one; the render launch waits for both (event fork and join: no host synchronisation,
    and capturable in a CUDA graph).
    """
    if pack.host.n_lesions == 0:
        copy_into(images, organs, out, labels)
        return
    main, side = cupy.cuda.get_current_stream(), _side_stream()
    fork = cupy.cuda.Event(block=False, disable_timing=True)
    fork.record(main)
    side.wait_event(fork)
    with side:
        tex = build_textures(pack, workspace)
        join = cupy.cuda.Event(block=False, disable_timing=True)
        join.record(side)
    copy_into(images, organs, out, labels)
    main.wait_event(join)
    _render_pack(images, organs, out, labels, pack, tex)
