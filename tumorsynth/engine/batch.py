r"""Batched synthesis on the GPU: many volumes (or crops) in a handful of launches.

CuPy arrays and CUDA torch tensors come in and go out as the same type, crossing by DLPack
(:mod:`tumorsynth.backend.cuda`), on PyTorch's current stream. The pieces are

- :func:`pack_batch` (host, pure NumPy, cheap): the params of every volume in one buffer; it may run
  ahead, e.g. in DataLoader workers (nothing here imports CuPy until a batch is rendered);
- :func:`render_batch` (device): one upload, six texture launches (on a side stream, overlapping
  the output copy), the copy and one render launch for all tumours of all volumes; no device-to-host
  traffic, so it can be captured in a CUDA graph;
- :func:`synthesize_batch`: both, drawing the params first when none are given.

Examples
--------
>>> import torch, tumorsynth as ts                                      # doctest: +SKIP
>>> from tumorsynth.engine.batch import synthesize_batch                # doctest: +SKIP
>>> images, organs = batch["image"].cuda(), batch["liver"].cuda()       # (B, X, Y, Z)
>>> params = [ts.sample_params(c, config="liver", rng=s) for c, s in ...]  # host side, cheap
>>> out = synthesize_batch(images, organs, params_list=params)          # torch in, torch out
>>> out.images.shape, out.labels.dtype
(torch.Size([16, 96, 96, 96]), torch.uint8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tumorsynth.backend.cuda import as_cupy, like_input, stream_of
from tumorsynth.engine.gpu_pack import pack_batch
from tumorsynth.engine.params import TumorParams
from tumorsynth.engine.pipeline import sample_params
from tumorsynth.engine.rng import fresh_seed
from tumorsynth.errors import InputError
from tumorsynth.kernels.cuda.hostpack import HostPack

__all__ = ["BatchSynthesis", "HostPack", "pack_batch", "render_batch", "synthesize_batch"]


@dataclass(frozen=True, eq=False)
class BatchSynthesis:
    """Result of :func:`synthesize_batch`.

    Attributes
    ----------
    images : array
        (B, X, Y, Z) float32 HU with the tumours, of the input type (CuPy or torch).
    labels : array
        (B, X, Y, Z) uint8: 0 background, 1 organ, 2 tumour.
    params : list of TumorParams
        What was rendered into each volume (replayable with :func:`tumorsynth.render`).
    """

    images: Any
    labels: Any
    params: list


def _check_batch(images, organs, pack: HostPack) -> None:
    if images.ndim != 4 or organs.shape != images.shape:
        raise InputError(
            f"batched synthesis needs (B, X, Y, Z) images and organs of one shape, got "
            f"{tuple(images.shape)} and {tuple(organs.shape)}"
        )
    if images.dtype.kind not in "fiu":
        raise InputError(f"images must hold real numbers (HU), got dtype {images.dtype}")
    if organs.dtype.kind not in "biu" or organs.dtype.itemsize != 1:
        raise InputError(f"organs must be 0/1 uint8 or bool masks, got dtype {organs.dtype}")
    batch, shape = int(images.shape[0]), tuple(int(n) for n in images.shape[1:])
    if pack.n_items != batch or tuple(pack.volume_shape) != shape:
        raise InputError(
            f"the params describe {pack.n_items} volumes of {tuple(pack.volume_shape)}, the batch "
            f"holds {batch} of {shape}"
        )


def render_batch(images, organs, pack: HostPack | Sequence[TumorParams], *, out=None, labels=None):
    """Render packed tumours into a batch of volumes on the GPU.

    Parameters
    ----------
    images : (B, X, Y, Z) CuPy array or CUDA torch tensor
        CT in HU (any real dtype).
    organs : (B, X, Y, Z) CuPy array or CUDA torch tensor
        0/1 organ masks (uint8 or bool); not checked here.
    pack : HostPack or sequence of TumorParams
        From :func:`pack_batch` (one params per volume, drawn for (X, Y, Z)).
    out, labels : (B, X, Y, Z) arrays, optional
        float32 / uint8 buffers to write into (``labels`` may be ``organs`` itself; ``out`` must not
        overlap ``images``).

    Returns
    -------
    (images, labels)
        Of the type of ``images``; zero-copy views of ``out`` / ``labels`` when given.
    """
    import cupy

    from tumorsynth.kernels.cuda.render import synthesize_pack
    from tumorsynth.kernels.cuda.transfer import upload

    if not isinstance(pack, HostPack):
        pack = pack_batch(list(pack))
    with stream_of(images):
        img, org = as_cupy(images), as_cupy(organs)
        _check_batch(img, org, pack)
        dst = cupy.empty(img.shape, cupy.float32) if out is None else as_cupy(out)
        lab = cupy.empty(org.shape, cupy.uint8) if labels is None else as_cupy(labels)
        if dst.shape != img.shape or dst.dtype != cupy.float32 or lab.shape != img.shape:
            raise InputError("out / labels must be float32 / uint8 arrays of the batch's shape")
        synthesize_pack(img, org, dst, lab, upload(pack))
        return like_input(dst, images), like_input(lab, images)


def synthesize_batch(
    images,
    organs,
    spacing_mm: Any = None,
    params_list: Sequence[TumorParams] | None = None,
    *,
    config: Any = "liver",
    seeds: Sequence[int] | None = None,
    tile=8,
    out=None,
    labels=None,
) -> BatchSynthesis:
    """Synthesise tumours into a batch of volumes (or crops) already on the GPU.

    Parameters
    ----------
    images, organs : (B, X, Y, Z) CuPy arrays or CUDA torch tensors
        CT in HU and 0/1 organ masks.
    spacing_mm : float, sequence of 3, or (B, 3), optional
        Voxel size; needed only to draw params (given params carry their own).
    params_list : sequence of TumorParams, optional
        One per volume (e.g. drawn ahead on the host). Drawn here when omitted: per volume, with
        cheap device queries for placement (a few small reads each).
    config : see :func:`tumorsynth.load_config`
        Used when drawing params.
    seeds : sequence of int, optional
        Seeds of the draws (fresh ones when omitted).
    tile : int or 3 ints
        Render tile size, voxels (rounded up to powers of two; 8 measured fastest for 96^3 crops).
    out, labels : optional
        Output buffers, as in :func:`render_batch`.

    Returns
    -------
    BatchSynthesis
    """
    if params_list is None:
        params_list = _sample_batch(images, organs, spacing_mm, config, seeds)
    params_list = list(params_list)
    pack = pack_batch(params_list, tile=tile)
    result_images, result_labels = render_batch(images, organs, pack, out=out, labels=labels)
    return BatchSynthesis(result_images, result_labels, params_list)


def _sample_batch(images, organs, spacing_mm, config, seeds) -> list[TumorParams]:
    if spacing_mm is None:
        raise InputError("synthesize_batch needs spacing_mm to draw params (or pass params_list)")
    with stream_of(images):
        img, org = as_cupy(images), as_cupy(organs)
        n = int(img.shape[0])
        spacing = np.asarray(spacing_mm, float).reshape(-1)
        spacing = np.repeat(spacing, 3) if spacing.size == 1 else spacing
        try:
            spacing = np.broadcast_to(spacing.reshape(-1, 3), (n, 3))
        except ValueError:
            raise InputError(
                f"spacing_mm must be one value, 3, or ({n}, 3), got {spacing_mm!r}"
            ) from None
        seeds = [fresh_seed() for _ in range(n)] if seeds is None else list(seeds)
        if len(seeds) != n:
            raise InputError(f"{len(seeds)} seeds for a batch of {n} volumes")
        return [
            sample_params(img[b], org[b], tuple(spacing[b]), config=config, rng=int(seeds[b]))
            for b in range(n)
        ]
