r"""``tumorsynth predict``: a trained checkpoint's label maps for any CT, in the CT's exact geometry.

A CT is read with its geometry (:func:`tumorsynth.io.volume.read_image`: NIfTI, NRRD, MHA, DICOM series),
resampled to the voxel size the model was trained at (recorded in the checkpoint; ``native`` keeps
the CT's own), segmented by sliding windows with Gaussian blending, resampled back onto the CT's
grid (nearest neighbour) and written with the CT's origin, spacing and direction, so the labels
overlay the CT in any viewer. Labels: 0 background, 1 organ, 2 tumour.

Examples
--------
>>> from tumorsynth.segment.predict import Predictor                        # doctest: +SKIP
>>> predictor = Predictor.from_checkpoint("runs/train/checkpoints/best.pt")
>>> labels = predictor(ct_hu, spacing_mm=(0.8, 0.8, 2.5))          # (X, Y, Z) uint8
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tumorsynth.engine.label_maps import PER_ORGAN_CODES
from tumorsynth.errors import InputError
from tumorsynth.io.volume import (
    geometry_of,
    read_image,
    resample_to_spacing,
    to_array,
    write_volume,
)
from tumorsynth.segment.postprocess import (
    DEFAULT_POSTPROCESS,
    SHARED_CODES,
    PostProcess,
    keep_largest_organ,
)

__all__ = ["Predictor", "keep_largest_organ", "predict_files", "predict_volume", "window"]


@torch.no_grad()
def predict_volume(
    model: torch.nn.Module,
    image_hu: np.ndarray | torch.Tensor,
    *,
    patch_size: Sequence[int],
    window_hu: Sequence[float],
    device: torch.device | str = "cpu",
    overlap: float = 0.5,
    sw_batch_size: int = 4,
    amp: bool = False,
    name: str = "the network",
) -> torch.Tensor:
    """Labels (0 background, 1 organ, 2 tumour) of one (X, Y, Z) CT in HU, as it is (no
    resampling), by sliding windows of ``patch_size`` with Gaussian blending: a (X, Y, Z) uint8
    tensor on the CPU. ``amp``: bfloat16 autocast on CUDA.

    Raises
    ------
    InputError
        The network's output holds NaN or infinite values (whose argmax would be a label map of
        zeros); the message starts with ``name``.
    """
    from monai.inferers import sliding_window_inference

    x = window(torch.as_tensor(image_hu)[None, None].to(device), tuple(window_hu))
    model.eval()
    with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
        logits = sliding_window_inference(
            x, tuple(patch_size), sw_batch_size, model, overlap=overlap, mode="gaussian"
        )
    n_bad = int((~torch.isfinite(logits)).sum())
    if n_bad:
        raise InputError(
            f"{name}: {n_bad} of its {logits.numel()} output values are NaN or infinite; its "
            "weights or its input are broken (no labels written)"
        )
    return logits.argmax(1)[0].to(torch.uint8).cpu()


def window(hu: torch.Tensor, window_hu: tuple[float, float]) -> torch.Tensor:
    """HU -> [0, 1]: ``window_hu`` mapped linearly, clipped outside (the networks' input)."""
    lo, hi = window_hu
    return ((hu.float() - lo) / (hi - lo)).clamp_(0.0, 1.0)


@dataclass
class Predictor:
    """A trained network with its preprocessing: CT in HU in, labels out.

    Attributes
    ----------
    model : torch.nn.Module
    patch_size : tuple of 3 int
        Sliding-window size, voxels.
    window_hu : tuple of 2 float
    spacing_mm : tuple of 3 float or None
        Voxel size the model was trained at (None: use each CT's own).
    device : torch.device
    overlap : float
    sw_batch_size : int
    amp : bool
        bfloat16 autocast on CUDA.
    name : str
        How messages name the model (its checkpoint).
    label_scheme : str
        The codes of its labels: ``shared`` (1 organ, 2 tumour) or ``per_organ``
        (:data:`tumorsynth.engine.label_maps.PER_ORGAN_CODES`), as the checkpoint records.
    postprocess : PostProcess or None
        Applied to the labels on the CT's own grid (tumour specks and tumours off the organ go;
        :mod:`tumorsynth.segment.postprocess`); None gives the network's labels as they are.
        :meth:`from_checkpoint` sets ``tumorsynth predict``'s defaults.
    """

    model: torch.nn.Module
    patch_size: tuple[int, int, int]
    window_hu: tuple[float, float]
    spacing_mm: tuple[float, float, float] | None
    device: torch.device
    overlap: float = 0.5
    sw_batch_size: int = 4
    amp: bool = True
    name: str = "the network"
    label_scheme: str = "shared"
    postprocess: PostProcess | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        *,
        spacing: str = "model",
        overlap: float = 0.5,
        sw_batch_size: int = 4,
        postprocess: PostProcess | None = DEFAULT_POSTPROCESS,
    ) -> Predictor:
        """Load a ``tumorsynth train`` checkpoint.

        Parameters
        ----------
        path : str or Path
        device : str
            ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
        spacing : str
            ``"model"``: resample each CT to the checkpoint's training voxel size (when it has
            one); ``"native"``: segment at the CT's own.
        postprocess : PostProcess or None
            The post-processing of the labels (``tumorsynth predict``'s defaults,
            :data:`~tumorsynth.segment.postprocess.DEFAULT_POSTPROCESS`; None: raw labels).
        """
        from tumorsynth.segment.checkpoint import load_model

        if spacing not in ("model", "native"):
            raise InputError(f"spacing must be 'model' or 'native', got {spacing!r}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, meta = load_model(path, device)
        target = meta.get("spacing_mm") if spacing == "model" else None
        return cls(
            model=model,
            patch_size=tuple(meta["network"]["patch_size"]),
            window_hu=tuple(meta["window_hu"]),
            spacing_mm=None if target is None else tuple(float(s) for s in target),
            device=torch.device(device),
            overlap=overlap,
            sw_batch_size=sw_batch_size,
            name=str(path),
            label_scheme=str(meta.get("label_scheme", "shared")),
            postprocess=postprocess,
        )

    def __call__(self, image_hu: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
        """Labels of one (X, Y, Z) CT in HU at ``spacing_mm``: (X, Y, Z) uint8 on its grid."""
        image = np.asarray(image_hu, dtype=np.float32)
        if image.ndim != 3:
            raise InputError(f"predict needs a 3-D (X, Y, Z) CT, got shape {image.shape}")
        spacing = tuple(float(s) for s in spacing_mm)
        target = self.spacing_mm
        if target is not None and np.allclose(target, spacing, rtol=1e-3, atol=0):
            target = None
        work = image if target is None else resample_to_spacing(image, spacing, target)
        labels = predict_volume(
            self.model, work, patch_size=self.patch_size, window_hu=self.window_hu,
            device=self.device, overlap=self.overlap, sw_batch_size=self.sw_batch_size,
            amp=self.amp and self.device.type == "cuda", name=self.name,
        ).numpy()  # fmt: skip
        if target is not None:
            labels = resample_to_spacing(labels, target, spacing, shape=image.shape)
        labels = labels.astype(np.uint8)
        if self.postprocess is not None and not self.postprocess.is_identity:
            labels = self.postprocess(labels, spacing, self.codes)
        return labels

    @property
    def codes(self) -> tuple[tuple[int, int], ...]:
        """The (organ code, tumour code) pairs of its labels: ``((1, 2),)`` in the ``shared``
        scheme, one pair per organ in ``per_organ``."""
        if self.label_scheme == "shared":
            return SHARED_CODES
        return tuple(PER_ORGAN_CODES.values())


def _output_names(paths: Sequence[Path]) -> list[str]:
    from tumorsynth.dataset.sources import case_names

    return [f"{name}.nii.gz" for name in case_names(paths, strip_channel=True)]


def _check_inputs_kept(inputs: Sequence[Path], targets: Sequence[Path]) -> None:
    """Refuse a label map that would replace an input CT, or land in a DICOM series folder."""
    files = {p.resolve(): p for p in inputs if not p.is_dir()}
    folders = {p.resolve(): p for p in inputs if p.is_dir()}
    for target in targets:
        where = target.resolve()
        if where in files:
            raise InputError(
                f"{target}: would replace the input CT {files[where]}; choose another --out"
            )
        if where.parent in folders:
            raise InputError(
                f"{target}: would be written into the input DICOM series {folders[where.parent]}; "
                "choose another --out"
            )


def predict_files(
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    device: str = "auto",
    spacing: str = "model",
    largest_organ: bool = False,
    postprocess: PostProcess | None = DEFAULT_POSTPROCESS,
    overlap: float = 0.5,
    sw_batch_size: int = 4,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Segment CT files and write one label map per CT, in its geometry.

    Parameters
    ----------
    checkpoint : str or Path
        ``best.pt`` or ``last.pt`` of ``tumorsynth train``.
    inputs : sequence of str or Path
        CT files, DICOM series folders, folders of them or glob patterns.
    out_dir : str or Path
        Where ``<case>.nii.gz`` go (the case name without a ``_0000`` channel suffix).
    device, spacing, overlap, sw_batch_size
        See :meth:`Predictor.from_checkpoint`.
    largest_organ : bool
        Keep only the largest connected organ with its tumours (:func:`keep_largest_organ`), on
        top of ``postprocess``.
    postprocess : PostProcess or None
        Tumour specks and tumours off the organ removed (:mod:`tumorsynth.segment.postprocess`;
        by default ``tumorsynth predict``'s measured defaults); None writes the raw labels.
    overwrite : bool
        Replace label maps that exist (else they are an error, before anything is computed).
        An input CT is never replaced (an error, whatever ``overwrite``).

    Returns
    -------
    list of Path
        The written label maps, in input order.
    """
    from tumorsynth.dataset.sources import expand_paths

    paths = expand_paths(inputs, "inputs")
    if not paths:
        raise InputError("predict: no input CT")
    out_dir = Path(out_dir)
    targets = [out_dir / name for name in _output_names(paths)]
    _check_inputs_kept(paths, targets)
    taken = [str(t) for t in targets if t.exists()]
    if taken and not overwrite:
        raise InputError(f"{taken[0]} exists ({len(taken)} outputs do): pass --overwrite")
    rules = postprocess or PostProcess()
    if largest_organ:
        rules = dataclasses.replace(rules, largest_organ=True)
    predictor = Predictor.from_checkpoint(
        checkpoint, device, spacing=spacing, overlap=overlap, sw_batch_size=sw_batch_size,
        postprocess=rules,
    )  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = list(zip(paths, targets, strict=True))
    for path, target in tqdm(pairs, desc="predict", unit="case", disable=not progress):
        image = read_image(path)
        spacing_mm, origin, direction = geometry_of(image)
        array = to_array(image).astype(np.float32)
        if not np.isfinite(array).all():
            raise InputError(f"{path}: the CT holds NaN or infinite values")
        labels = predictor(array, spacing_mm)
        write_volume(target, labels, spacing_mm, origin, direction)
    return targets
