r"""The two sides of ``tumorsynth realism``, measured with the same code: labelled real tumours
read from files, and tumours synthesised on healthy hosts.

Every tumour is a connected component of the tumour label (26-connectivity, at least
``min_voxels`` voxels), measured by :func:`tumorsynth.bench.fit.measure_tumours` (the code of
``tumorsynth fit-stats``) with the texture of :mod:`~tumorsynth.bench.tissue`. Per tumour:

=================  =========================================================================
``radius_mm``      size: equivalent radius :math:`(3V / 4\pi)^{1/3}`, mm
``contrast_hu``    mean HU of the core minus the median HU of the organ 3 to 10 mm around it
``std_ratio``      robust spread of the core's HU over that of the organ around it
``grain_mm``       lag at which the correlation of the core's HU falls to 1/2, mm
``elongation``     :math:`\sqrt{\lambda_\max / \lambda_\min}` of its voxel positions (30 voxels
                   or more)
``depth_mm``       depth of its centroid below the organ's surface, mm
=================  =========================================================================

and per scan ``count``, its number of tumours. A synthetic tumour that is the only one of its
scan's drawn tumours near its component's centroid is also paired with the values it was drawn
with (:func:`drawn_values`), which :mod:`~tumorsynth.bench.calibrate` uses to tell the measurement's
bias from the config's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.bench.attributes import core_contrast_hu, depth_at, elongation, shape_radius_mm
from tumorsynth.bench.cases import Host
from tumorsynth.bench.fit import labelled_pairs, measure_tumours, read_labelled
from tumorsynth.engine.config import SynthConfig
from tumorsynth.engine.params import LesionParams, TumorParams
from tumorsynth.engine.pipeline import render, sample_params
from tumorsynth.errors import PlacementError

__all__ = [
    "ATTRIBUTES",
    "DESCRIPTIONS",
    "DRAWN",
    "UNITS",
    "Side",
    "drawn_values",
    "measure_scan",
    "measure_synthetic",
    "read_real",
    "scan_seed",
    "summarise",
]

#: The compared attributes; ``count`` is per scan, the others per tumour.
ATTRIBUTES = (
    "radius_mm", "contrast_hu", "std_ratio", "grain_mm", "elongation", "depth_mm", "count",
)  # fmt: skip
UNITS = {
    "radius_mm": "mm", "contrast_hu": "HU", "std_ratio": "ratio", "grain_mm": "mm",
    "elongation": "ratio", "depth_mm": "mm", "count": "per scan",
}  # fmt: skip
DESCRIPTIONS = {
    "radius_mm": "size (equivalent radius)",
    "contrast_hu": "contrast to the organ around it",
    "std_ratio": "texture: spread over the organ's",
    "grain_mm": "texture: grain (half-correlation lag)",
    "elongation": "elongation",
    "depth_mm": "depth below the organ's surface",
    "count": "tumours per scan",
}
#: The attributes a drawn tumour's params give directly (:func:`drawn_values`).
DRAWN = ("radius_mm", "contrast_hu", "elongation", "depth_mm")
_FROM_FIT = {
    "radius_mm": "size", "contrast_hu": "intensity", "std_ratio": "std_ratio",
    "grain_mm": "grain_mm", "elongation": "shape", "depth_mm": "location",
}  # fmt: skip


@dataclass
class Side:
    """The measured tumours of one side.

    Attributes
    ----------
    name : str
        ``real``, ``synthetic`` or ``calibrated``.
    tumours : list of dict
        Per tumour: ``scan``, ``component``, ``n_voxels`` and the values of :data:`ATTRIBUTES`
        but ``count`` (None where not measured).
    counts : list of int
        Tumours per scan.
    spacings_mm : list of tuple of float
        Voxel size of each scan, mm.
    pairs : list of dict
        Synthetic sides: ``{"drawn": {...}, "measured": {...}}`` per paired tumour.
    drawn : int
        Synthetic sides: tumours drawn, over all scans (some merge, some are clipped away).
    no_room : int
        Synthetic sides: scans where the config found room for no tumour.
    """

    name: str
    tumours: list[dict] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    spacings_mm: list[tuple[float, float, float]] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    drawn: int = 0
    no_room: int = 0

    def values(self, attribute: str) -> np.ndarray:
        """The measured values of one attribute (those measured), float64."""
        if attribute == "count":
            return np.asarray(self.counts, np.float64)
        found = [t[attribute] for t in self.tumours if t.get(attribute) is not None]
        return np.asarray(found, np.float64)

    def add_scan(self, scan: str, found: list[dict], spacing_mm: Sequence[float]) -> None:
        """Append one scan's tumours (from :func:`measure_scan`)."""
        self.tumours += [{"scan": scan, **t} for t in found]
        self.counts.append(len(found))
        self.spacings_mm.append(tuple(float(s) for s in spacing_mm))


def measure_scan(
    label: np.ndarray,
    spacing_mm: Sequence[float],
    image: np.ndarray | None = None,
    *,
    tumour_label: int = 2,
    organ_label: int = 1,
    min_voxels: int = 5,
) -> list[dict]:
    """The attributes of every tumour of one scan (see the module's table).

    Parameters
    ----------
    label : (X, Y, Z) array
        Label map (``organ_label`` organ, ``tumour_label`` tumour).
    spacing_mm : sequence of 3 float
        Voxel size, mm.
    image : (X, Y, Z) array, optional
        The CT in HU; without it contrast and texture are None.
    tumour_label, organ_label, min_voxels : int
        As in :func:`tumorsynth.bench.fit.measure_tumours`.

    Returns
    -------
    list of dict
        Per tumour: ``component``, ``n_voxels``, ``centroid_vox`` and the attributes.
    """
    found = measure_tumours(
        label, spacing_mm, image, tumour_label=tumour_label, organ_label=organ_label,
        min_voxels=min_voxels, texture=True,
    )  # fmt: skip
    keep = ("component", "n_voxels", "centroid_vox")
    return [{**{k: r[k] for k in keep}, **{a: r[f] for a, f in _FROM_FIT.items()}} for r in found]


def read_real(
    labels: Sequence[str | Path],
    images: Sequence[str | Path] | None = None,
    *,
    tumour_label: int = 2,
    organ_label: int = 1,
    min_voxels: int = 5,
    progress: bool = True,
) -> Side:
    """Measure the labelled real tumours (label maps with their CTs, or an nnU-Net / MSD dataset
    folder), as ``tumorsynth fit-stats`` reads them.

    Raises
    ------
    InputError
        Unreadable or unpaired files, a CT on another grid than its label map.
    """
    side = Side("real")
    pairs = labelled_pairs(labels, images, command="realism")
    for label_path, image_path in tqdm(pairs, desc="real", unit="scan", disable=not progress):
        label, spacing, image = read_labelled(label_path, image_path)
        found = measure_scan(
            label, spacing, image, tumour_label=tumour_label, organ_label=organ_label,
            min_voxels=min_voxels,
        )  # fmt: skip
        side.add_scan(str(label_path), found, spacing)
    return side


def drawn_values(lesion: LesionParams, host: Host) -> dict[str, float]:
    """The values a synthetic tumour was drawn with, in the measured attributes' terms: radius
    :math:`(abc)^{1/3}`, core contrast :math:`\\delta u_0`, elongation of the deformed solid and
    the depth of its centre in the host (see :mod:`~tumorsynth.bench.attributes`)."""
    return {
        "radius_mm": shape_radius_mm(lesion.shape),
        "contrast_hu": core_contrast_hu(lesion),
        "elongation": elongation(lesion.shape),
        "depth_mm": depth_at(host.depth_mm, lesion.center_mm, host.case.spacing_mm),
    }


def _pair(params: TumorParams, found: list[dict], host: Host) -> list[dict]:
    """Drawn and measured values of the tumours that are alone in their component: each drawn
    tumour goes to the nearest component whose radius reaches its centre."""
    if not found or not params.lesions:
        return []
    spacing = np.asarray(host.case.spacing_mm)
    centroids = np.asarray([r["centroid_vox"] for r in found]) * spacing
    reach = np.asarray([r["radius_mm"] for r in found]) + float(np.linalg.norm(spacing))
    owner: dict[int, list[LesionParams]] = {}
    for lesion in params.lesions:
        dist = np.linalg.norm(centroids - np.asarray(lesion.center_mm), axis=1)
        k = int(np.argmin(dist))
        if dist[k] <= reach[k]:
            owner.setdefault(k, []).append(lesion)
    pairs = []
    for k, lesions in owner.items():
        if len(lesions) == 1:
            measured = {a: found[k][a] for a in DRAWN}
            pairs.append({"drawn": drawn_values(lesions[0], host), "measured": measured})
    return pairs


def scan_seed(seed: int, host_index: int, scan: int) -> int:
    """The seed of one synthetic scan: the same for every config, so that two configs are
    compared on the same random numbers."""
    return int(np.random.SeedSequence([int(seed), host_index, scan]).generate_state(1)[0])


def measure_synthetic(
    hosts: Sequence[Host],
    config: SynthConfig,
    *,
    scans_per_host: int,
    seed: int,
    name: str = "synthetic",
    min_voxels: int = 5,
    progress: bool = True,
) -> Side:
    """Synthesise ``scans_per_host`` scans on each host with ``config`` and measure them.

    Scan ``k`` of host ``h`` is drawn with :func:`scan_seed` ``(seed, h, k)``. A scan where the
    config finds no room for a tumour counts as a scan with none.

    Returns
    -------
    Side
        With ``pairs`` of drawn and measured values.
    """
    side = Side(name)
    total = len(hosts) * scans_per_host
    bar = tqdm(total=total, desc=name, unit="scan", disable=not progress)
    for h, host in enumerate(hosts):
        for k in range(scans_per_host):
            scan = f"{host.name}/{k}"
            try:
                params = sample_params(host.case, config=config, rng=scan_seed(seed, h, k))
            except PlacementError:
                side.add_scan(scan, [], host.case.spacing_mm)
                side.no_room += 1
                bar.update()
                continue
            out = render(host.case, params=params)
            found = measure_scan(out.label, host.case.spacing_mm, out.image, min_voxels=min_voxels)
            side.add_scan(scan, found, host.case.spacing_mm)
            side.drawn += len(params.lesions)
            side.pairs += _pair(params, found, host)
            bar.update()
    bar.close()
    return side


def summarise(values: np.ndarray) -> dict[str, Any]:
    """n, mean, standard deviation and the 10th, 50th and 90th percentiles (None when empty)."""
    if values.size == 0:
        return {"n": 0, "mean": None, "std": None, "q10": None, "median": None, "q90": None}
    q10, q50, q90 = np.percentile(values, [10, 50, 90])
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return {"n": int(values.size), "mean": float(values.mean()), "std": std,
            "q10": float(q10), "median": float(q50), "q90": float(q90)}  # fmt: skip
