r"""``tumorsynth spars segment``: label maps of CTs by a trained SPARS run, in each CT's exact geometry.

Each CT is read with its liver mask (the agents move inside the liver; a CT without one is an
error), resampled to the run's voxel size, segmented on its liver's box, and the tumour mask is
resampled back onto the CT's grid (nearest neighbour). The label map (0 background, 1 liver,
2 tumour inside the liver) is written with the CT's origin, spacing and direction, as
``tumorsynth predict`` writes its own, so ``tumorsynth evaluate`` scores it.

Every input is paired and checked before any CT is segmented, and each label map is written
atomically, so a bad input leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.dataset.sources import case_names, expand_paths, pair_sources
from tumorsynth.errors import InputError
from tumorsynth.io.case import read_case
from tumorsynth.io.volume import write_volume
from tumorsynth.methods.spars.model import METHODS, SparsModel, load_run
from tumorsynth.methods.spars.volumes import prepare_volume, to_input_grid

__all__ = ["segment_files", "segment_volume"]


def segment_volume(
    model: SparsModel,
    image_hu: np.ndarray,
    liver: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    method: str = "spars",
    name: str = "volume",
    seed: int = 0,
) -> np.ndarray:
    """Labels of one CT: 0 background, 1 liver, 2 tumour (inside the liver).

    Parameters
    ----------
    model : SparsModel
    image_hu : (X, Y, Z) array
        CT in HU.
    liver : (X, Y, Z) array
        0/1 liver mask on the CT's grid.
    spacing_mm : sequence of 3 float
    method : str
        ``"spars"`` or a baseline (:data:`~tumorsynth.methods.spars.model.METHODS`).
    name : str
        The CT's name in messages.
    seed : int
        Seed of the episodes' starts and moves.

    Returns
    -------
    numpy.ndarray
        (X, Y, Z) uint8 on the CT's grid.

    Raises
    ------
    InputError
        An empty liver, or a window larger than the liver's box.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    image = np.asarray(image_hu, np.float32)
    organ = (np.asarray(liver) > 0).astype(np.uint8)
    volume = prepare_volume(image, organ, spacing_mm, model.config, name)
    mask_box = model.tumour_mask(volume, method, seed)
    tumour = to_input_grid(mask_box, volume, image.shape, spacing_mm)
    return np.where(organ > 0, np.where(tumour > 0, 2, 1), 0).astype(np.uint8)


def _pairs(
    cts: Sequence[str | Path], masks: Sequence[str | Path], organ_label: int | None
) -> list[tuple[str, Path, Path]]:
    images = expand_paths(cts, "inputs")
    if not images:
        raise InputError("spars segment: no input CT")
    if not masks:
        raise InputError(
            f"{images[0]}: no liver mask: SPARS moves its windows inside the liver, so every CT "
            "needs one (--masks)"
        )
    sources = pair_sources(images, expand_paths(masks, "masks"), organ_label)[0]
    names = case_names(images, strip_channel=True)
    by_image = {str(s.image): s for s in sources}
    return [(n, Path(by_image[str(i)].image), Path(by_image[str(i)].mask))
            for n, i in zip(names, images, strict=True)]  # fmt: skip


def segment_files(
    run_dir: str | Path,
    cts: Sequence[str | Path],
    out_dir: str | Path,
    *,
    masks: Sequence[str | Path] = (),
    organ_label: int | None = None,
    method: str = "spars",
    device: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Segment CT files with a SPARS run and write one label map per CT, in its geometry.

    Parameters
    ----------
    run_dir : str or Path
        The folder of ``tumorsynth spars train``.
    cts : sequence of str or Path
        CT files, DICOM folders, folders of them or glob patterns.
    out_dir : str or Path
        Where ``<case>.nii.gz`` go (named as ``tumorsynth predict`` names them).
    masks : sequence of str or Path
        The liver masks (or label maps, with ``organ_label``), paired by name or in order.
    organ_label : int, optional
        The liver's value in label-map masks (5 in TotalSegmentator).
    method : str
        ``"spars"`` or a baseline.
    device : str
        ``"auto"`` (the run's), ``"cpu"``, ``"cuda"``.
    seed : int
        Seed of the episodes.
    overwrite : bool
        Replace label maps that exist (else they are an error, before anything is computed).

    Returns
    -------
    list of Path
        The written label maps, in input order.

    Raises
    ------
    InputError
        A CT without a liver mask, unpaired or unreadable files, an empty liver, a window larger
        than a liver's box, label maps that exist without ``overwrite``: all before anything is
        written, except a problem found only when a CT is read (its own map is then not written).
    """
    pairs = _pairs(cts, masks, organ_label)
    out_dir = Path(out_dir)
    targets = [out_dir / f"{name}.nii.gz" for name, _, _ in pairs]
    taken = [str(t) for t in targets if t.exists()]
    if taken and not overwrite:
        raise InputError(f"{taken[0]} exists ({len(taken)} outputs do): pass --overwrite")
    model = load_run(run_dir, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    rows = list(zip(pairs, targets, strict=True))
    for (_, image_path, mask_path), target in tqdm(
        rows, desc="spars segment", unit="case", disable=not progress
    ):
        case = read_case(image_path, mask_path, organ_label).case
        labels = segment_volume(
            model, np.asarray(case.image), np.asarray(case.organ), case.spacing_mm,
            method=method, name=str(image_path), seed=seed,
        )  # fmt: skip
        write_volume(target, labels, case.spacing_mm, case.origin_mm, case.direction)
        done.append(target)
    return done
