r"""``tumorsynth fit-stats``: the benchmark's :math:`\mu` and :math:`\sigma` measured on labelled CT.

Each tumour is a connected component (26-connectivity) of ``label == tumour_label`` with at least
``min_voxels`` voxels; the organ is ``organ_label`` and the tumours together (the organ before the
tumours grew in it, as the engine's host mask). Per tumour:

- **size**: equivalent radius :math:`(3V / 4\pi)^{1/3}`, mm;
- **shape**: elongation :math:`\sqrt{\lambda_\max / \lambda_\min}` of the covariance of its voxel
  positions in mm (minus the :math:`s^2/12` a voxel of side :math:`s` adds), which is
  :math:`a_\max / a_\min` for a solid ellipsoid; only tumours of at least 30 voxels;
- **location**: depth of its centroid's voxel below the organ's surface, mm
  (:func:`~tumorsynth.bench.attributes.organ_depth_mm`);
- **intensity** (when the CTs are given): mean HU of its core (the voxels at least 5 mm inside
  it, or at least half its greatest inner depth when it is thinner) minus the median HU of the
  organ, without tumour, 3 to 10 mm outside it; the core leaves out the blurred edge (and a
  capsule), as the engine's core contrast does;
- **texture** (the grain of the tumour's texture) is not measured: in a real tumour it cannot be
  told apart from the scanner's noise and reconstruction kernel, so the synthesis config's value is
  kept.

:math:`\mu` and :math:`\sigma` are the mean and sample standard deviation over all tumours of all
files. The output is a benchmark config (``{"stats": ...}``) for ``tumorsynth bench robustness
--config``, and a CSV of every tumour's values beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from tqdm.auto import tqdm

from tumorsynth.bench.attributes import ATTRIBUTES, UNITS, organ_depth_mm
from tumorsynth.bench.tissue import grain_mm, std_ratio
from tumorsynth.errors import InputError
from tumorsynth.evaluate.metrics import lesions
from tumorsynth.evaluate.report import csv_text
from tumorsynth.io.case import grid_text, same_grid
from tumorsynth.io.volume import read_image, to_array, write_text_atomic
from tumorsynth.version import __version__

__all__ = ["MEASURED", "fit_stats", "labelled_pairs", "measure_tumours", "read_labelled"]

#: The attributes fit-stats measures (texture is not; see the module's notes).
MEASURED = ("size", "shape", "location", "intensity")
SHAPE_MIN_VOXELS = 30
CORE_DEPTH_MM = 5.0
RING_MM = (3.0, 10.0)


def _grow(box: tuple[slice, ...], grow: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(max(s.start - int(g), 0), min(s.stop + int(g), n))
        for s, g, n in zip(box, grow, shape, strict=True)
    )


def _elongation(coords_mm: np.ndarray, spacing: np.ndarray) -> float:
    cov = np.cov(coords_mm, rowvar=False) - np.diag(spacing**2 / 12.0)
    eig = np.clip(np.linalg.eigvalsh(cov), 1e-12, None)
    return float(np.sqrt(eig[-1] / eig[0]))


def _core_ring(component, organ_only, spacing) -> tuple[np.ndarray, np.ndarray]:
    """The tumour's core (voxels at least CORE_DEPTH_MM inside it, or half its greatest inner
    depth) and its ring (organ without tumour, RING_MM outside it)."""
    inner = ndimage.distance_transform_edt(component, sampling=spacing)
    core = inner >= min(CORE_DEPTH_MM, 0.5 * float(inner.max()))
    outer = ndimage.distance_transform_edt(~component, sampling=spacing)
    ring = organ_only & (outer > RING_MM[0]) & (outer <= RING_MM[1])
    return core, ring


def _tissue(image, component, organ_only, spacing, texture: bool) -> dict:
    """The intensity (core mean minus ring median, HU) and, with ``texture``, the std ratio and
    grain of :mod:`~tumorsynth.bench.tissue`; None where a region is empty."""
    core, ring = _core_ring(component, organ_only, spacing)
    out: dict = {"intensity": None}
    if texture:
        out["std_ratio"] = out["grain_mm"] = None
    if not core.any() or not ring.any():
        return out
    out["intensity"] = float(image[core].mean() - np.median(image[ring]))
    if texture:
        out["std_ratio"] = std_ratio(image[core], image[ring])
        out["grain_mm"] = grain_mm(image, core, spacing)
    return out


def measure_tumours(
    label: np.ndarray,
    spacing_mm: Sequence[float],
    image: np.ndarray | None = None,
    *,
    tumour_label: int = 2,
    organ_label: int = 1,
    min_voxels: int = 5,
    texture: bool = False,
) -> list[dict]:
    """The attributes of every tumour in one label map.

    Parameters
    ----------
    label : (X, Y, Z) array
        Label map (e.g. 0 background, 1 organ, 2 tumour).
    spacing_mm : sequence of 3 float
        Voxel size, mm.
    image : (X, Y, Z) array, optional
        The CT in HU, for the intensity.
    tumour_label, organ_label : int
    min_voxels : int
        Smaller components are left out.
    texture : bool
        Also measure the texture of the tumour's core (with ``image``): ``std_ratio`` and
        ``grain_mm`` (:mod:`~tumorsynth.bench.tissue`), as ``tumorsynth realism`` does.

    Returns
    -------
    list of dict
        Per tumour: ``component``, ``n_voxels``, ``centroid_vox`` and the values of
        :data:`MEASURED` (None where not measured), and with ``texture`` ``std_ratio`` and
        ``grain_mm``.
    """
    label = np.asarray(label)
    spacing = np.asarray([float(s) for s in spacing_mm])
    tumour = label == tumour_label
    if not tumour.any():
        return []
    organ = (label == organ_label) | tumour
    reach = np.ceil((RING_MM[1] + 2 * max(spacing)) / spacing).astype(int)
    (obox,) = ndimage.find_objects(organ.astype(np.uint8))
    obox = _grow(obox, np.ones(3, int), label.shape)
    depth = np.zeros(label.shape, np.float32)
    depth[obox] = organ_depth_mm(organ[obox], tuple(spacing))
    components, found = lesions(tumour, spacing)
    boxes = ndimage.find_objects(components)
    out = []
    for lesion in found:
        if lesion.n_voxels < min_voxels:
            continue
        box = _grow(boxes[lesion.index - 1], reach, label.shape)
        comp = components[box] == lesion.index
        offset = np.array([s.start for s in box])
        coords = (np.argwhere(comp) + offset) * spacing
        centroid = np.rint(np.asarray(lesion.centroid_vox)).astype(int)
        record = {
            "component": lesion.index,
            "n_voxels": lesion.n_voxels,
            "centroid_vox": [round(c, 2) for c in lesion.centroid_vox],
            "size": lesion.radius_mm,
            "shape": _elongation(coords, spacing) if lesion.n_voxels >= SHAPE_MIN_VOXELS else None,
            "location": float(depth[tuple(np.clip(centroid, 0, np.array(label.shape) - 1))]),
            "intensity": None,
        }
        if texture:
            record["std_ratio"] = record["grain_mm"] = None
        if image is not None:
            organ_only = label[box] == organ_label
            values = np.asarray(image[box], np.float64)
            record.update(_tissue(values, comp, organ_only, spacing, texture))
        out.append(record)
    return out


def _grid(image: sitk.Image) -> str:
    origin = ", ".join(f"{o:.1f}" for o in image.GetOrigin())
    return f"{grid_text(image)}, origin ({origin}) mm"


def labelled_pairs(
    labels: Sequence[str | Path],
    images: Sequence[str | Path] | None,
    command: str = "fit-stats",
) -> list[tuple[Path, Path | None]]:
    """(label path, image path or None) pairs: an nnU-Net or MSD dataset folder (``labelsTr``,
    ``imagesTr``), or label files with optional CTs paired by name or order. ``command`` names
    the caller in the message when there is no label map."""
    from tumorsynth.dataset.sources import expand_paths, pair_sources

    if len(labels) == 1 and (Path(labels[0]) / "labelsTr").is_dir():
        root = Path(labels[0])
        labels = [root / "labelsTr"]
        if images is None and (root / "imagesTr").is_dir():
            images = [root / "imagesTr"]
    label_paths = expand_paths(labels, "labels")
    if not label_paths:
        raise InputError(f"{command}: no label maps")
    if not images:
        return [(p, None) for p in label_paths]
    sources, _ = pair_sources(expand_paths(images, "images"), label_paths)
    return [(Path(s.mask), Path(s.image)) for s in sources]


def read_labelled(
    label_path: str | Path, image_path: str | Path | None = None
) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray | None]:
    """A label map (on its own grid), its voxel size in mm and its CT (None without one).

    Raises
    ------
    InputError
        An unreadable file, or a CT on another grid than its label map (another size, voxel
        size, origin or orientation).
    """
    label_image = read_image(label_path)
    image = None
    if image_path is not None:
        ct = read_image(image_path)
        if not same_grid(ct, label_image):  # size, spacing, origin and direction
            raise InputError(
                f"{image_path} ({_grid(ct)}) and its label map {label_path} "
                f"({_grid(label_image)}) are not on one grid; resample one onto the other"
            )
        image = to_array(ct)
    spacing = tuple(float(v) for v in label_image.GetSpacing())
    return to_array(label_image), spacing, image


def _summary(values: list[float], name: str) -> dict | None:
    if len(values) < 2 or float(np.std(values, ddof=1)) <= 0:
        return None
    v = np.asarray(values)
    return {"mu": float(v.mean()), "sigma": float(v.std(ddof=1)), "n": int(v.size),
            "unit": UNITS[name], "source": "fitted"}  # fmt: skip


def fit_stats(
    labels: Sequence[str | Path],
    out: str | Path,
    *,
    images: Sequence[str | Path] | None = None,
    tumour_label: int = 2,
    organ_label: int = 1,
    min_voxels: int = 5,
    progress: bool = True,
) -> dict:
    """Measure the tumours of labelled CT and write their :math:`\\mu`, :math:`\\sigma` per attribute.

    Parameters
    ----------
    labels : sequence of str or Path
        Label maps (files, folders, globs), or one nnU-Net / MSD dataset folder (its ``labelsTr``
        and, unless ``images`` is given, its ``imagesTr``).
    out : str or Path
        The stats file (JSON), a benchmark config; ``<stem>_tumours.csv`` is written beside it.
    images : sequence of str or Path, optional
        The CTs, paired with the labels by name (``case_0000.nii.gz`` with ``case.nii.gz``) or in
        order, each on the grid of its label map (size, voxel size, origin and orientation);
        without them the intensity is not measured.
    tumour_label, organ_label : int
    min_voxels : int
        Smaller components are left out.
    progress : bool

    Returns
    -------
    dict
        The written document.

    Raises
    ------
    InputError
        Unreadable or unpaired files, a CT on another grid than its label map (another size,
        voxel size, origin or orientation), or no tumour.
    """
    pairs = labelled_pairs(labels, images)
    rows: list[dict] = []
    for label_path, image_path in tqdm(pairs, desc="fit-stats", unit="file", disable=not progress):
        label, spacing, image = read_labelled(label_path, image_path)
        found = measure_tumours(
            label, spacing, image,
            tumour_label=tumour_label, organ_label=organ_label, min_voxels=min_voxels,
        )  # fmt: skip
        rows += [{"file": str(label_path), **r} for r in found]
    if not rows:
        raise InputError(f"fit-stats: no tumour (label {tumour_label}) in {len(pairs)} label maps")
    stats = {}
    for name in MEASURED:
        entry = _summary([r[name] for r in rows if r[name] is not None], name)
        if entry is not None:
            stats[name] = entry
    n_files = len({r["file"] for r in rows})
    doc = {
        "description": f"tumour attributes measured by tumorsynth fit-stats on {len(rows)} "
        f"tumours in {n_files} of {len(pairs)} label maps",
        "stats": stats,
        "fitted_from": {
            "tumorsynth": __version__,
            "labels": [str(p) for p, _ in pairs],
            "images": [str(i) for _, i in pairs if i is not None],
            "n_tumours": len(rows),
            "tumour_label": tumour_label,
            "organ_label": organ_label,
            "min_voxels": min_voxels,
            "not_fitted": [a for a in ATTRIBUTES if a not in stats],
        },
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["file", "component", "n_voxels", *MEASURED]
    write_text_atomic(out.with_name(f"{out.stem}_tumours.csv"), csv_text(rows, columns))
    write_text_atomic(out, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return doc
