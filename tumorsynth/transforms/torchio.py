r"""TorchIO adapter: :class:`RandomTumorSynth`, the twin of the MONAI ``RandTumorSynthd``.

TorchIO is not a dependency of tumorsynth: this module imports it when it is itself imported.

Examples
--------
>>> import torchio as tio                                              # doctest: +SKIP
>>> from tumorsynth.transforms.torchio import RandomTumorSynth          # doctest: +SKIP
>>> subject = tio.Subject(image=tio.ScalarImage(ct), label=tio.LabelMap(liver))  # doctest: +SKIP
>>> out = RandomTumorSynth(p=0.9)(subject)                              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchio.data.subject import Subject
from torchio.transforms.augmentation import RandomTransform

from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.params import TumorParams
from tumorsynth.engine.pipeline import render, sample_params
from tumorsynth.errors import PlacementError
from tumorsynth.transforms.organs import default_config, label_spec

__all__ = ["PARAMS_KEY", "RandomTumorSynth"]

PARAMS_KEY = "tumorsynth_params"
"""Subject key of the params' JSON text ("" when nothing was inserted)."""


class RandomTumorSynth(RandomTransform):
    r"""Insert synthetic tumours into a subject's CT and organ label (TorchIO).

    Parameters
    ----------
    image_name : str, optional
        Name of the (1, X, Y, Z) ``ScalarImage`` in HU; its spacing (mm) comes from its affine.
    label_name : str, optional
        Name of the (1, X, Y, Z) ``LabelMap``: 0 background, 1 organ; 2 marks the tumour on output.
        A label above 1 (an existing tumour) makes the subject pass through unchanged.
    config : str, path, dict or SynthConfig, optional
        Synthesis config (by default the organ's preset, ``"liver"``).
    organ, label_map, organ_label, tumour_label : optional
        For a multi-label map instead of a 0/1 label: the organ by name (in ``label_map``) or by
        value(s), and the tumour's value on output (see :mod:`tumorsynth.transforms.organs`).
    **kwargs
        TorchIO's transform arguments, e.g. ``p`` (probability of applying; 0.9 here, as in the
        reference's training) and ``copy``.

    Notes
    -----
    Following TorchIO's convention, the seed of the params is drawn from torch's random generator
    (``torch.manual_seed`` and the DataLoader's per-worker seeding control it). The params' JSON text
    is stored under ``subject["tumorsynth_params"]`` ("" when nothing was inserted: an existing
    tumour, no organ, or no room for a tumour, when :class:`~tumorsynth.PlacementError` is caught);
    :meth:`TumorParams.from_dict` reads it back for :func:`tumorsynth.render`.
    """

    def __init__(
        self,
        image_name: str = "image",
        label_name: str = "label",
        config: str | Path | Mapping[str, Any] | SynthConfig | None = None,
        *,
        organ: str | None = None,
        label_map: str = "totalsegmentator",
        organ_label: int | Sequence[int] | None = None,
        tumour_label: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("p", 0.9)
        super().__init__(**kwargs)
        self.image_name = image_name
        self.label_name = label_name
        self.label_spec = label_spec(organ, label_map, organ_label, tumour_label)
        self.config = load_config(config or default_config(self.label_spec))
        self.args_names = ["image_name", "label_name"]

    def apply_transform(self, subject: Subject) -> Subject:
        """Draw a seed from torch's generator and insert tumours (see the class notes)."""
        seed = int(torch.randint(0, 2**31, (1,)).item())
        subject[PARAMS_KEY] = ""
        image, label = subject[self.image_name], subject[self.label_name]
        lab = label.data[0].numpy()
        organ = self.label_spec.organ_of(lab)
        if organ is None:  # no organ, or a tumour already (see tumorsynth.transforms.organs)
            return subject
        ct = image.data[0].numpy()
        spacing = tuple(float(s) for s in image.spacing)
        try:
            params: TumorParams = sample_params(ct, organ, spacing, config=self.config, rng=seed)
        except PlacementError:  # a crop with too little organ: pass through
            return subject
        result = render(ct, organ, spacing, params=params)
        image.set_data(torch.from_numpy(result.image[None]).to(image.data.dtype))
        out = self.label_spec.merged(lab, result.label)
        label.set_data(torch.from_numpy(out[None].astype(np.int64)).to(label.data.dtype))
        subject[PARAMS_KEY] = params.to_json()
        return subject
