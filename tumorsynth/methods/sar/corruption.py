r"""Models Genesis' corruptions of a crop, as MONAI dictionary transforms.

The restoration task learns to undo :func:`models_genesis`: flips (of the input and its target
together), local pixel shuffling, a non-linear intensity curve, and in- or out-painting, applied to
``"image"`` after its clean copy ``"target"`` is taken (MONAI's ``RandCoarseShuffle`` and in-painting
``RandCoarseDropout`` change their input in place, so the target is a copy made before them).

==========================  ===================================  ====================================
Models Genesis (pytorch/)   here                                 difference
==========================  ===================================  ====================================
flip, p 0.4, up to 3 times  ``RandAxisFlipd(prob=flip_prob)``    one flip at most (MG: a 2nd w.p. 0.16)
local shuffle, 10 000       ``RandCoarseShuffled``, blocks of    blocks compound (MG shuffles each from
blocks of 1..dim/10, p 0.5  1..dim/10, ``shuffle_blocks``        the original); the count is ours
Bezier curve, half of the   :class:`RandBezierIntensityd`        1000 points on the curve, not 100 000
time inverted, p 0.9
in-painting (1..5 boxes of  ``RandCoarseDropoutd(dropout_holes   1..5 boxes drawn uniformly (MG: each
dim/6..dim/3, U(0, 1))      =True, fill_value=(0, 1))``          next one w.p. 0.95); no 3-voxel margin
out-painting (keep 1..5     ``RandCoarseDropoutd(dropout_holes   as in-painting
boxes of dim - 4/7..3/7     =False, fill_value=(0, 1))``
dim, noise elsewhere)
paint p 0.9; in 0.2, out    ``OneOf`` weights 0.2 / 0.8, each   none
0.8                         applied w.p. ``paint_prob``
==========================  ===================================  ====================================

Every transform draws from its MONAI random state: seed the pipeline with
``Compose.set_random_state(seed=...)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform, RandomizableTransform
from scipy.special import comb

__all__ = ["RandBezierIntensityd", "bezier_curve", "models_genesis"]

BEZIER_SAMPLES = 1000
"""Points on the curve that the intensities are interpolated on (Models Genesis samples 100 000;
over 200 random curves, either branch, the mapping differs from that by at most 8e-5 on [0, 1],
and sorts a hundredth of the points)."""


def bezier_curve(
    points: np.ndarray, n_samples: int = BEZIER_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    r"""The cubic (or any degree) Bézier curve through the control ``points``, as Models Genesis
    samples it: :math:`B(t) = \sum_i \binom{n}{i} t^{n-i} (1-t)^i P_i`, :math:`t` from 0 to 1, so
    the curve runs from the last control point (t = 0) to the first (t = 1).

    Parameters
    ----------
    points : (n + 1, 2) array
        Control points (x, y).
    n_samples : int
        Values of :math:`t`.

    Returns
    -------
    xs, ys : (n_samples,) arrays
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points) - 1
    t = np.linspace(0.0, 1.0, n_samples)
    basis = np.stack([comb(n, i) * t ** (n - i) * (1.0 - t) ** i for i in range(n + 1)])
    return points[:, 0] @ basis, points[:, 1] @ basis


class RandBezierIntensityd(RandomizableTransform, MapTransform):
    r"""Models Genesis' non-linear intensity transform of images in [0, 1].

    With probability ``prob``, intensities are mapped through a Bézier curve from (0, 0) to
    (1, 1) with two control points drawn uniformly in the unit square; in half of the draws only
    the curve's x values are sorted, which maps the intensities onto a falling curve (the "flip":
    dark becomes bright), else both are sorted (a rising curve). One curve is drawn per call and
    applied to every key.

    Parameters
    ----------
    keys : str or sequence of str
    prob : float
        Probability of transforming (Models Genesis: 0.9).
    allow_missing_keys : bool
    """

    def __init__(self, keys: Any, prob: float = 0.9, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.curve: tuple[np.ndarray, np.ndarray] | None = None
        self.inverted = False

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        inner = self.R.random_sample(4)
        points = [(0.0, 0.0), (inner[0], inner[1]), (inner[2], inner[3]), (1.0, 1.0)]
        xs, ys = bezier_curve(np.array(points))
        self.inverted = bool(self.R.random_sample() < 0.5)
        self.curve = (np.sort(xs), ys) if self.inverted else (np.sort(xs), np.sort(ys))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        xs, ys = self.curve
        for key in self.key_iterator(d):
            image = torch.as_tensor(d[key])
            mapped = np.interp(image.detach().cpu().numpy(), xs, ys)
            d[key] = torch.as_tensor(mapped, dtype=image.dtype, device=image.device)
        return d


def models_genesis(
    input_size: Sequence[int],
    *,
    flip_prob: float = 0.4,
    shuffle_prob: float = 0.5,
    shuffle_blocks: int = 10_000,
    nonlinear_prob: float = 0.9,
    paint_prob: float = 0.9,
    inpaint_fraction: float = 0.2,
):
    """The corruption pipeline for (1, X, Y, Z) crops in [0, 1] of ``input_size`` voxels.

    Takes ``{"image": crop}`` and returns ``{"image": corrupted, "target": clean}``, both flipped
    alike (see the module for each step and how it differs from Models Genesis).

    Parameters
    ----------
    input_size : 3 ints
        Crop size (X, Y, Z), voxels: the shuffled blocks, the painted boxes scale with it.
    flip_prob, shuffle_prob, nonlinear_prob, paint_prob : float
        Probabilities of each step (Models Genesis: 0.4, 0.5, 0.9, 0.9).
    shuffle_blocks : int
        Blocks shuffled (Models Genesis: 10 000 in 64 x 64 x 32).
    inpaint_fraction : float
        Share of the painting that is in-painting (Models Genesis: 0.2; the rest out-painting).

    Returns
    -------
    monai.transforms.Compose
    """
    from monai.transforms import (
        Compose,
        CopyItemsd,
        OneOf,
        RandAxisFlipd,
        RandCoarseDropoutd,
        RandCoarseShuffled,
    )

    size = np.asarray(input_size, dtype=int)
    block = [int(v) for v in np.maximum(size // 10, 1)]
    inner = [[int(v) for v in np.maximum(size // k, 1)] for k in (6, 3)]
    outer = [[int(v) for v in size - size * k // 7] for k in (4, 3)]

    def paint(sizes: list[list[int]], inside: bool):
        return RandCoarseDropoutd(
            keys="image", holes=1, max_holes=5, spatial_size=sizes[0], max_spatial_size=sizes[1],
            dropout_holes=inside, fill_value=(0.0, 1.0), prob=paint_prob,
        )  # fmt: skip

    return Compose(
        [
            RandAxisFlipd(keys="image", prob=flip_prob),
            CopyItemsd(keys="image", names="target"),
            RandCoarseShuffled(
                keys="image",
                holes=max(int(shuffle_blocks), 1),
                spatial_size=1,
                max_spatial_size=block,
                prob=shuffle_prob,
            ),
            RandBezierIntensityd(keys="image", prob=nonlinear_prob),
            OneOf(
                [paint(inner, inside=True), paint(outer, inside=False)],
                weights=[inpaint_fraction, 1.0 - inpaint_fraction],
            ),
        ]
    )
