"""The GPU batch hook: tumours rendered into a batch that is already on the device, in the step.

The DataLoader workers draw the params on the host (cheap: a few ms per crop) with
``TumorStream(render=False)``; the training step moves the healthy batch to the GPU and calls
:func:`insert_tumours`, which renders every tumour of every crop in one launch on PyTorch's current
stream (:func:`tumorsynth.engine.batch.render_batch`), without a host round trip. On the CPU it renders crop
by crop with the numba engine, so the result is the same voxel for voxel either way.

Examples
--------
>>> stream = TumorStream(cases, patch_size=(96, 96, 96), render=False)     # doctest: +SKIP
>>> for batch in DataLoader(stream, batch_size=2, collate_fn=collate):    # doctest: +SKIP
...     image, label = batch["image"].cuda(), batch["label"].cuda()
...     image, label = insert_tumours(image, label, batch["params"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tumorsynth.engine.params import TumorParams
from tumorsynth.errors import InputError

__all__ = ["insert_tumours"]


def _params(entry: Mapping[str, Any] | TumorParams | None, shape, spacing) -> TumorParams:
    if isinstance(entry, TumorParams):
        return entry
    if entry:
        return TumorParams.from_dict(dict(entry))
    # nothing drawn for this crop: no tumour (organ_hu is unused without lesions)
    return TumorParams(volume_shape=shape, spacing_mm=spacing, organ_hu=0.0)


def insert_tumours(
    images: torch.Tensor,
    labels: torch.Tensor,
    params: Sequence[Mapping[str, Any] | TumorParams | None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render drawn tumours into a batch where it is (CUDA: one batched launch; CPU: numba).

    Parameters
    ----------
    images : (B, 1, X, Y, Z) float tensor
        Healthy crops in HU (before windowing).
    labels : (B, 1, X, Y, Z) uint8 tensor
        0/1 organ masks (any value above 1 is treated as organ; 2 is kept: the tumours of a
        labelled scan's crop, whose params are empty, stay 2).
    params : sequence of B dicts or TumorParams
        ``batch["params"]`` of ``TumorStream(render=False)``; an empty dict renders nothing.

    Returns
    -------
    images, labels : tensors
        (B, 1, X, Y, Z) float32 HU with the tumours and uint8 labels (0, 1 organ, 2 tumour), on the
        input's device.
    """
    if images.ndim != 5 or images.shape[1] != 1 or labels.shape != images.shape:
        raise InputError(
            f"insert_tumours: images and labels must be (B, 1, X, Y, Z), got "
            f"{tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if len(params) != images.shape[0]:
        raise InputError(f"insert_tumours: {len(params)} params for a batch of {images.shape[0]}")
    shape = tuple(int(n) for n in images.shape[2:])
    organs = (labels[:, 0] > 0).to(torch.uint8)
    spacing = next(
        (tuple(p["spacing_mm"]) for p in params if isinstance(p, Mapping) and p),
        (1.0, 1.0, 1.0),
    )
    drawn = [_params(p, shape, spacing) for p in params]
    hu = images[:, 0].float().contiguous()
    if images.is_cuda:
        from tumorsynth.engine.batch import render_batch

        out, lab = render_batch(hu, organs.contiguous(), drawn)
        return out[:, None], _keep_tumours(lab[:, None], labels)
    from tumorsynth.engine.pipeline import render

    outs, labs = [], []
    for b, p in enumerate(drawn):
        result = render(hu[b], organs[b], p.spacing_mm, p)
        outs.append(result.image)
        labs.append(result.label)
    return torch.stack(outs)[:, None], _keep_tumours(torch.stack(labs)[:, None], labels)


def _keep_tumours(rendered: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """The rendered labels, with the tumour label (2) of the given ones kept."""
    return torch.where(given == 2, torch.full_like(rendered, 2), rendered)
