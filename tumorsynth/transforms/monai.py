r"""MONAI adapters: tumour synthesis as a random transform in a MONAI training chain.

The adapters hold no maths: each call draws one seed from MONAI's ``self.R``, samples
:class:`~tumorsynth.TumorParams` with it (:func:`tumorsynth.sample_params`) and renders them
(:func:`tumorsynth.render`) on the device where the image is. ``set_random_state``,
``monai.utils.set_determinism`` and the DataLoader's per-worker seeding therefore control every
draw, and the recorded params replay a result voxel for voxel.

Place the transform where the reference does (Hu et al., CVPR 2023): after ``Orientationd(RAS)``
and ``Spacingd``, before intensity windowing (it works in HU), with ``prob=0.9``. It works on whole
volumes and on crops; the spacing comes from the MetaTensor's affine, so no resampling to 1 mm is
needed.

Examples
--------
>>> from monai.transforms import Compose, LoadImaged, EnsureChannelFirstd    # doctest: +SKIP
>>> from tumorsynth.transforms import RandTumorSynthd                        # doctest: +SKIP
>>> train = Compose([LoadImaged(["image", "label"]), EnsureChannelFirstd(["image", "label"]),
...                  RandTumorSynthd("image", label_key="label", prob=0.9)])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import MAX_SEED, TransformBackends, convert_to_dst_type

from tumorsynth.engine.case import as_case
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.params import TumorParams
from tumorsynth.engine.pipeline import render, sample_params
from tumorsynth.errors import InputError, PlacementError
from tumorsynth.transforms.organs import LabelSpec, default_config, label_spec

__all__ = ["META_KEY", "PARAMS_KEY", "RandTumorSynth", "RandTumorSynthd"]

META_KEY = "tumorsynth"
"""Key of the params' JSON text in ``MetaTensor.meta`` ("" when nothing was inserted)."""

PARAMS_KEY = "tumorsynth_params"
"""Default dictionary key of the params' JSON text ("" when nothing was inserted)."""

ConfigLike = str | Path | Mapping[str, Any] | SynthConfig
ZERO_ONE = LabelSpec(None, 2)  # a 0/1 organ label, the tumour 2


def _spacing_of(img: Any, spacing_mm: Any) -> tuple[float, float, float]:
    """``spacing_mm`` if given, else the MetaTensor's ``pixdim`` (from its affine), else 1 mm."""
    if spacing_mm is not None:
        values = np.broadcast_to(np.asarray(spacing_mm, dtype=float).reshape(-1), (3,))
    elif isinstance(img, MetaTensor):
        values = np.asarray(img.pixdim, dtype=float).reshape(-1)[:3]
    else:
        values = np.ones(3)
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def _direction_of(img: Any) -> tuple[float, ...] | None:
    """The array axes' directions in LPS world space, from a MetaTensor's (RAS) affine; None for a
    plain array (taken as RAS where it matters: a config's ``location.lateral_band``)."""
    if not isinstance(img, MetaTensor):
        return None
    ras = np.asarray(img.affine, dtype=float)[:3, :3]
    norms = np.linalg.norm(ras, axis=0)
    if not np.all(norms > 0):
        return None
    lps = np.diag([-1.0, -1.0, 1.0]) @ (ras / norms)
    return tuple(float(v) for v in lps.ravel())


def _channel(x: Any, name: str) -> Any:
    """The (X, Y, Z) volume of a (1, X, Y, Z) array or tensor: a NumPy view for a CPU tensor, a plain
    CUDA tensor for a CUDA (Meta)Tensor."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise InputError(
            f"RandTumorSynth: {name} must be channel-first (1, X, Y, Z), got shape {tuple(x.shape)}"
        )
    x = x.as_tensor() if isinstance(x, MetaTensor) else x
    if isinstance(x, torch.Tensor) and not x.is_cuda:
        # CPU tensors cross as NumPy views (no copy); CUDA tensors are passed as they are and
        # rendered on their GPU
        x = x.detach().numpy()
    return x[0]


def _record(x: Any, text: str) -> Any:
    if isinstance(x, MetaTensor):
        x.meta[META_KEY] = text
    return x


def _insert(
    images: Sequence[Any],
    label: Any,
    config: SynthConfig,
    seed: int,
    spacing_mm: Any,
    spec: LabelSpec = ZERO_ONE,
) -> tuple[list[Any], Any, TumorParams | None]:
    """Sample params for ``images[0]`` from ``seed`` and render them into every image.

    Returns the new (1, X, Y, Z) images and label, of the inputs' types, dtypes and devices, and the
    params; the inputs unchanged and None when the label is not eligible (``spec``: a 0/1 mask
    that already holds a tumour, a map that holds the tumour's value, no organ voxel) or no tumour
    fits.
    """
    lab = _channel(label, "label")
    organ = spec.organ_of(lab)
    if organ is None:
        return list(images), label, None
    spacing = _spacing_of(images[0], spacing_mm)
    first = _channel(images[0], "image")
    try:
        case = as_case(first, organ, spacing, direction=_direction_of(images[0]))
        params = sample_params(case, config=config, rng=seed)
    except PlacementError:  # a crop with too little organ: documented pass-through
        return list(images), label, None
    out_images, out_label = [], label
    for i, img in enumerate(images):
        result = render(_channel(img, "image"), organ, spacing, params=params)
        out_images.append(convert_to_dst_type(result.image[None], dst=img)[0])
        if i == 0:
            out_label = convert_to_dst_type(spec.merged(lab, result.label)[None], dst=label)[0]
    return out_images, out_label, params


class RandTumorSynth(RandomizableTransform):
    r"""Insert synthetic tumours into a channel-first CT and its organ label, with probability ``prob``.

    Parameters
    ----------
    prob : float, optional
        Probability of inserting tumours on a call (0.9, as in the reference's training).
    config : str, path, dict or SynthConfig, optional
        Synthesis config (by default the organ's preset, ``"liver"``; see
        :func:`tumorsynth.load_config`).
    spacing_mm : float or sequence of 3 floats, optional
        Voxel size along (X, Y, Z) in mm. By default the image's ``pixdim`` (from its affine) for a
        MetaTensor, 1 mm for a plain tensor or array.
    organ, label_map, organ_label, tumour_label : optional
        For a multi-label map instead of a 0/1 label: the organ by name (``"pancreas"``, in
        ``label_map``, TotalSegmentator's by default) or by value(s), and the tumour's value on
        output (see :mod:`tumorsynth.transforms.organs`).

    Notes
    -----
    ``__call__(img, label)`` takes a (1, X, Y, Z) image in HU and a (1, X, Y, Z) label (0
    background, 1 organ; or a multi-label map, with ``organ``) as NumPy arrays or torch tensors
    (MetaTensors, CPU or CUDA; a CUDA tensor is rendered on its GPU by CuPy and stays there) and
    returns ``(img, label)`` of the same types, dtypes and devices, with tumour voxels labelled 2
    (``tumour_label`` in a map); only organ voxels of the image change, but for an exophytic
    tumour's (the ``kidney`` preset), within its bounded margin. The
    pair passes through unchanged (and ``last_params`` is None) when the call draws no insertion,
    when the label already holds a tumour (``label.max() > 1``, as the reference gates) or no
    organ, and when no tumour fits (a crop with too little organ:
    :class:`~tumorsynth.PlacementError` is caught). On insertion the params' JSON text (of
    :meth:`TumorParams.to_dict`; a string so that batches collate) is stored in both MetaTensors'
    ``meta["tumorsynth"]``; :meth:`TumorParams.from_dict` reads it back for replay with
    :func:`tumorsynth.render`.

    Randomness comes only from MONAI's ``self.R``: each call draws the apply/skip decision and one
    seed, ``self.R.randint(MAX_SEED)``, from which the params are sampled.

    Examples
    --------
    >>> import numpy as np                                              # doctest: +SKIP
    >>> t = RandTumorSynth(prob=1.0).set_random_state(0)                 # doctest: +SKIP
    >>> img, lab = t(case.image[None], case.organ[None])                 # doctest: +SKIP
    >>> int(lab.max()), t.last_params.seed is not None                   # doctest: +SKIP
    (2, True)
    """

    backend = (TransformBackends.TORCH, TransformBackends.NUMPY)

    def __init__(
        self,
        prob: float = 0.9,
        config: ConfigLike | None = None,
        spacing_mm: Any = None,
        *,
        organ: str | None = None,
        label_map: str = "totalsegmentator",
        organ_label: int | Sequence[int] | None = None,
        tumour_label: int | None = None,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.label_spec = label_spec(organ, label_map, organ_label, tumour_label)
        self.config = load_config(config or default_config(self.label_spec))
        self.spacing_mm = spacing_mm
        self.seed = 0
        self.last_params: TumorParams | None = None

    def randomize(self, data: Any = None) -> None:
        """Draw the apply/skip decision and the seed of the params from ``self.R``."""
        super().randomize(None)
        self.seed = int(self.R.randint(MAX_SEED))

    def __call__(self, img: Any, label: Any, randomize: bool = True) -> tuple[Any, Any]:
        """Insert tumours (see the class notes); ``img`` and ``label`` are (1, X, Y, Z)."""
        if randomize:
            self.randomize()
        self.last_params = None
        if not self._do_transform:
            return _record(img, ""), _record(label, "")
        (out,), lab, params = _insert(
            [img], label, self.config, self.seed, self.spacing_mm, self.label_spec
        )
        self.last_params = params
        text = "" if params is None else params.to_json()
        return _record(out, text), _record(lab, text)


class RandTumorSynthd(RandomizableTransform, MapTransform):
    r"""Dictionary version of :class:`RandTumorSynth`: one draw, rendered into every image key.

    Parameters
    ----------
    keys : str or sequence of str
        Keys of the (1, X, Y, Z) CT images in HU; the params are drawn for the first and rendered
        into each (co-registered images of the same patient get the same tumour).
    label_key : str, optional
        Key of the (1, X, Y, Z) label: 0 background, 1 organ; on output 2 marks the tumour. A label
        with a value above 1 (an existing tumour) makes the sample pass through unchanged.
    prob : float, optional
        Probability of inserting tumours (0.9, as in the reference's training).
    config : str, path, dict or SynthConfig, optional
        Synthesis config (by default the organ's preset, ``"liver"``).
    spacing_mm : float or sequence of 3 floats, optional
        Voxel size in mm; by default the first image's ``pixdim`` (MetaTensor), else 1 mm.
    organ, label_map, organ_label, tumour_label : optional
        As :class:`RandTumorSynth`: a multi-label map's organ and the tumour's value in it.
    params_key : str or None, optional
        Key under which the params' JSON text is stored ("" when nothing was inserted, so that
        every sample has it and batches collate); None to store nothing in the dictionary. The
        MetaTensors' ``meta["tumorsynth"]`` holds the same text.
    allow_missing_keys : bool, optional
        Skip image keys that are missing (the label and the first image must be present).

    Notes
    -----
    Passing through (no draw, existing tumour, no organ, no room for a tumour) follows
    :class:`RandTumorSynth`. Randomness comes only from ``self.R``.
    """

    backend = RandTumorSynth.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        label_key: str = "label",
        prob: float = 0.9,
        config: ConfigLike | None = None,
        spacing_mm: Any = None,
        params_key: str | None = PARAMS_KEY,
        allow_missing_keys: bool = False,
        *,
        organ: str | None = None,
        label_map: str = "totalsegmentator",
        organ_label: int | Sequence[int] | None = None,
        tumour_label: int | None = None,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.label_key = label_key
        self.label_spec = label_spec(organ, label_map, organ_label, tumour_label)
        self.config = load_config(config or default_config(self.label_spec))
        self.spacing_mm = spacing_mm
        self.params_key = params_key
        self.seed = 0
        self.last_params: TumorParams | None = None

    def randomize(self, data: Any = None) -> None:
        """Draw the apply/skip decision and the seed of the params from ``self.R``."""
        super().randomize(None)
        self.seed = int(self.R.randint(MAX_SEED))

    def __call__(self, data: Mapping[Hashable, Any], randomize: bool = True) -> dict[Hashable, Any]:
        """Insert tumours into ``data`` (a shallow copy is returned)."""
        d = dict(data)
        if randomize:
            self.randomize()
        self.last_params = None
        keys = list(self.key_iterator(d))
        params = None
        if self._do_transform and keys:
            images = [d[k] for k in keys]
            images, d[self.label_key], params = _insert(
                images, d[self.label_key], self.config, self.seed, self.spacing_mm, self.label_spec
            )
            d.update(zip(keys, images, strict=True))
        self.last_params = params
        text = "" if params is None else params.to_json()
        for key in [*keys, self.label_key]:
            _record(d[key], text)
        if self.params_key is not None:
            d[self.params_key] = text
        return d
