"""Input discovery: which CTs and organ masks a ``generate`` run reads, and how they pair up.

A :class:`Source` is one host CT (a file or DICOM series folder) with its organ mask, or one
built-in phantom. Sources come from paths (files, folders, glob patterns), from an MSD or nnU-Net
``dataset.json``, or from the phantom. Their order and names are deterministic: they decide the
case identifiers, hence the seeds, of everything generated from them.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tumorsynth.engine.case import Case
from tumorsynth.engine.label_maps import OrganSelection
from tumorsynth.errors import InputError
from tumorsynth.io.case import OrganLabel, read_case
from tumorsynth.io.volume import image_suffix, source_sha256

__all__ = [
    "LoadedSource",
    "Source",
    "case_name",
    "case_names",
    "dataset_json_sources",
    "expand_paths",
    "label_record",
    "load_source",
    "pair_sources",
    "phantom_sources",
    "source_from_record",
]


@dataclass(frozen=True)
class Source:
    """One host volume.

    Attributes
    ----------
    name : str
        Identifier (letters, digits, ``_`` and ``-``), unique within a run; case ids derive from it.
    image, mask : str or None
        Absolute paths of the CT (file or DICOM folder) and organ mask; None for a phantom.
    organ_label : int, tuple of int, OrganSelection or None
        The organ's value(s) in a label-map mask, or the organ by name
        (:func:`~tumorsynth.engine.label_maps.select_organ`); None for a 0/1 mask.
    phantom_seed : int or None
        Seed of the built-in phantom, for a phantom source.
    spacing_mm : tuple of float or None
        Phantom voxel size, mm.
    organ : str
        The phantom's host organ (:data:`tumorsynth.phantom.HOST_ORGANS`).
    """

    name: str
    image: str | None = None
    mask: str | None = None
    organ_label: OrganLabel = None
    phantom_seed: int | None = None
    spacing_mm: tuple[float, float, float] | None = None
    organ: str = "liver"

    @property
    def is_phantom(self) -> bool:
        return self.phantom_seed is not None

    def describe(self) -> str:
        """The source as a person would name it in a message."""
        if not self.is_phantom:
            return str(self.image)
        organ = "" if self.organ == "liver" else f", {self.organ}"
        return f"phantom(seed={self.phantom_seed}{organ})"


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _folder_contents(folder: Path) -> list[Path]:
    """Image files in a folder; else the folder itself (a DICOM series); else DICOM subfolders.
    Hidden files are left out (e.g. the ``._case.nii.gz`` resource forks of macOS archives, which
    MSD's tarballs hold)."""
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and image_suffix(p) and not p.name.startswith(".")
    )
    if files:
        return files
    if any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir()):
        return [folder]  # read as a DICOM series (read_image says so if it is not one)
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise InputError(f"{folder}: an empty folder (no images, no DICOM series)")
    return subs


def expand_paths(entries: Sequence[str | Path], what: str = "images") -> list[Path]:
    """Expand files, folders and glob patterns into a list of volumes (files or DICOM folders).

    A folder holding image files (``.nii.gz``, ``.nrrd``, ``.mha``, ...) gives those files; a folder
    of other files is one DICOM series; a folder of folders gives each subfolder (a series). Glob
    matches and folder contents are sorted by name; entries keep the order given.

    Raises
    ------
    InputError
        A path that does not exist or a pattern that matches nothing.
    """
    out: list[Path] = []
    for entry in entries:
        text = str(entry)
        if _is_glob(text) and not Path(text).exists():
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise InputError(f"--{what} {text}: the pattern matches no file")
            paths = [Path(m) for m in matches]
        else:
            paths = [Path(text)]
        for path in paths:
            if not path.exists():
                raise InputError(f"{path}: no such file or folder")
            out.extend(_folder_contents(path) if path.is_dir() else [path])
    return [Path(os.path.abspath(p)) for p in out]  # absolute, '..' folded, links kept


def _stem(path: Path) -> str:
    suffix = image_suffix(path) or ""
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "case"


def case_names(paths: Sequence[Path], strip_channel: bool) -> list[str]:
    """Unique names: the file stem (without nnU-Net's ``_0000``), prefixed by as many parent
    folders as it takes to tell equal stems apart."""

    def name(path: Path, depth: int) -> str:
        stem = _stem(path)
        if strip_channel:
            stem = re.sub(r"_0000$", "", stem)
        return _clean("_".join([*path.parent.parts[len(path.parent.parts) - depth + 1 :], stem]))

    for depth in range(1, max((len(p.parts) for p in paths), default=1) + 1):
        names = [name(p, depth) for p in paths]
        if len(set(names)) == len(names):
            return names
    dupes = sorted({str(p) for p, n in zip(paths, names, strict=True) if names.count(n) > 1})
    raise InputError(f"inputs appear twice: {', '.join(dupes[:4])}")


def case_name(path: str | Path, strip_channel: bool = True) -> str:
    """The case name of one file, as ``tumorsynth predict`` and ``generate`` name it: the stem
    without its image ending (and nnU-Net's ``_0000``), other characters than letters, digits,
    ``_`` and ``-`` replaced by ``_``.

    >>> case_name("imagesTs/case.01_0000.nii.gz")
    'case_01'
    """
    return case_names([Path(path)], strip_channel)[0]


def pair_sources(
    images: Sequence[Path],
    masks: Sequence[Path],
    organ_label: OrganLabel = None,
    options: tuple[str, str] = ("--images", "--masks"),
) -> tuple[list[Source], str]:
    """Pair CTs with their masks: by name when every image has a mask of the same name (as in
    ``imagesTr/x_0000.nii.gz`` and ``labelsTr/x.nii.gz``), else in order.

    Parameters
    ----------
    images, masks : sequence of Path
    organ_label : int, tuple of int or OrganSelection, optional
        The organ's value(s) in label-map masks, or the organ by name.
    options : tuple of 2 str
        How the command names its image and mask options, for the messages.

    Returns
    -------
    sources : list of Source
    how : str
        ``"by name"`` or ``"in order"``.

    Raises
    ------
    InputError
        No masks, or counts that differ without matching names.
    """
    if not images:
        raise InputError("no input images")
    if not masks:
        raise InputError(
            f"{options[0]} needs {options[1]}: one organ mask (or label map) per image"
        )
    names = case_names(images, strip_channel=True)
    mask_names = case_names(masks, strip_channel=False)
    by_name = dict(zip(mask_names, masks, strict=True))
    if len(masks) == len(images) and set(names) == set(mask_names):
        pairs, how = [(img, by_name[n]) for img, n in zip(images, names, strict=True)], "by name"
    elif len(masks) == len(images):
        pairs, how = list(zip(images, masks, strict=True)), "in order"
    else:
        raise InputError(
            f"{len(images)} images but {len(masks)} masks, and their names do not match: "
            "give one mask per image"
        )
    sources = [
        Source(n, str(img), str(mask), organ_label)
        for n, (img, mask) in zip(names, pairs, strict=True)
    ]
    return sources, how


def _organ_label_from(labels: Any, where: Path, organ: str = "liver") -> OrganLabel:
    """The organ's value in an nnU-Net (name -> value) or MSD (value -> name) label table (for
    ``kidney``: the ``kidney`` label, or ``kidney_left`` and ``kidney_right`` / ``left kidney``
    and ``right kidney``); a table without the organ is refused (its one foreground label may be
    another organ)."""
    table: dict[str, int] = {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            if isinstance(value, int) and not isinstance(value, bool):
                table[str(key).lower()] = value
            elif isinstance(value, str) and str(key).lstrip("-").isdigit():
                table[value.lower()] = int(key)
    table = {re.sub(r"[\s-]+", "_", k): v for k, v in table.items()}
    if organ in table:
        return table[organ] if organ == "liver" else OrganSelection((table[organ],), organ)
    sides = [v for k, v in sorted(table.items()) if k in (f"{organ}_left", f"{organ}_right",
             f"left_{organ}", f"right_{organ}")]  # fmt: skip
    if sides:
        return OrganSelection(tuple(sorted(sides)), organ)
    if table:
        named = ", ".join(f"{k} = {v}" for k, v in sorted(table.items(), key=lambda x: x[1]))
        raise InputError(
            f"{where}: its labels ({named}) have no '{organ}'; pass the organ's value with "
            "--organ-label"
        )
    raise InputError(
        f"{where}: cannot tell the organ's label from its labels {labels!r}; pass --organ-label"
    )


def _resolve(base: Path, entry: Any, where: Path) -> Path:
    if isinstance(entry, list) and entry:
        entry = entry[0]  # the first channel: the CT
    if not isinstance(entry, str):
        raise InputError(f"{where}: expected a file path, got {entry!r}")
    path = Path(entry)
    return path if path.is_absolute() else (base / path).resolve()


def dataset_json_sources(
    path: str | Path, organ_label: OrganLabel = None, organ: str = "liver"
) -> list[Source]:
    """Sources listed by an MSD (``training`` list) or nnU-Net v2 ``dataset.json``.

    The organ is ``organ_label`` if given, else the label named ``organ`` in the file's
    ``labels`` (a file without one is refused: its labels name other organs). nnU-Net v2
    datasets without an explicit list are read from ``imagesTr/*_0000{file_ending}`` and
    ``labelsTr/*{file_ending}``.

    Raises
    ------
    InputError
        Missing or malformed file, no ``liver`` label (without ``organ_label``), or a listed
        file that does not exist.
    """
    path = Path(path).absolute()
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a dataset.json (expected a JSON object)")
    base = path.parent
    label = organ_label
    if label is None:
        label = _organ_label_from(data.get("labels"), path, organ)
    pairs: list[tuple[str | None, Path, Path]] = []
    if isinstance(data.get("training"), list):  # MSD, MONAI
        for item in data["training"]:
            if not isinstance(item, dict) or "image" not in item or "label" not in item:
                raise InputError(f"{path}: each training entry needs 'image' and 'label'")
            pairs.append(
                (None, _resolve(base, item["image"], path), _resolve(base, item["label"], path))
            )
    elif isinstance(data.get("dataset"), dict):  # nnU-Net v2, explicit
        for case, item in sorted(data["dataset"].items()):
            if not isinstance(item, dict) or "images" not in item or "label" not in item:
                raise InputError(f"{path}: dataset entry {case!r} needs 'images' and 'label'")
            pairs.append(
                (case, _resolve(base, item["images"], path), _resolve(base, item["label"], path))
            )
    else:  # nnU-Net v2: scan the folders
        ending = data.get("file_ending", ".nii.gz")
        for image in sorted((base / "imagesTr").glob(f"*_0000{ending}")):
            case = image.name[: -len(f"_0000{ending}")]
            pairs.append((case, image, base / "labelsTr" / f"{case}{ending}"))
    if not pairs:
        raise InputError(f"{path}: lists no training cases")
    for _, image, mask in pairs:
        for p in (image, mask):
            if not p.exists():
                raise InputError(f"{p}: no such file (listed in {path})")
    derived = case_names([image for _, image, _ in pairs], strip_channel=True)
    names = [_clean(case) if case else d for (case, _, _), d in zip(pairs, derived, strict=True)]
    if len(set(names)) != len(names):
        raise InputError(f"{path}: lists the same case twice")
    return [
        Source(n, str(img), str(mask), label)
        for n, (_, img, mask) in zip(names, pairs, strict=True)
    ]


def phantom_sources(
    n_phantoms: int, spacing_mm: float | Sequence[float], organ: str = "liver"
) -> list[Source]:
    """The built-in phantoms with seeds ``0 .. n_phantoms - 1`` at ``spacing_mm``, hosting
    tumours in ``organ``."""
    spacing = (
        (float(spacing_mm),) * 3
        if isinstance(spacing_mm, (int, float))
        else tuple(float(s) for s in spacing_mm)
    )
    return [
        Source(f"phantom{k}", phantom_seed=k, spacing_mm=spacing, organ=organ)
        for k in range(n_phantoms)
    ]


def label_record(organ_label: OrganLabel) -> Any:
    """What a manifest records of ``organ_label``: the value as given (an int, or a list), or
    the selection's fields."""
    if isinstance(organ_label, OrganSelection):
        return organ_label.to_record()
    if isinstance(organ_label, tuple):
        return list(organ_label)
    return organ_label


def source_from_record(record: dict[str, Any]) -> Source:
    """The :class:`Source` a manifest line's ``source`` field describes."""
    if record.get("kind") == "phantom":
        return Source(
            record.get("name", f"phantom{record['seed']}"),
            phantom_seed=int(record["seed"]),
            spacing_mm=tuple(float(s) for s in record["spacing_mm"]),
            organ=record.get("organ", "liver"),
        )
    label = record.get("organ_label")
    if isinstance(label, (dict, list)):
        label = OrganSelection.from_record(label)
    return Source(record["name"], record["image"], record["mask"], label)


@dataclass(frozen=True, eq=False)
class LoadedSource:
    """A source read into memory, with what the manifest records about it.

    Attributes
    ----------
    case : Case
        The host volume (geometry included for files; a phantom is centred, RAS).
    record : dict
        The manifest's ``source`` field: kind, name, paths and sha256 (files) or seed and spacing
        (phantom).
    notes : tuple of str
        What was done to the inputs on the way in (e.g. a resampled mask).
    integral : bool
        Whether the image holds whole HU within the int16 range.
    """

    case: Case
    record: dict[str, Any]
    notes: tuple[str, ...]
    integral: bool


def load_source(source: Source) -> LoadedSource:
    """Read (or render, for the phantom) a source.

    Raises
    ------
    InputError
        Any problem with the files, naming the file (see :func:`tumorsynth.io.case.read_case`).
    """
    if source.is_phantom:
        from tumorsynth.phantom import make_phantom

        case = make_phantom(
            seed=source.phantom_seed, spacing_mm=source.spacing_mm, organ=source.organ
        )
        record = {
            "kind": "phantom",
            "name": source.name,
            "seed": source.phantom_seed,
            "spacing_mm": list(case.spacing_mm),
        }
        if source.organ != "liver":
            record["organ"] = source.organ
        return LoadedSource(case, record, (), True)  # the phantom holds whole HU in [-1024, 3071]
    loaded = read_case(source.image, source.mask, source.organ_label)
    record = {
        "kind": "files",
        "name": source.name,
        "image": source.image,
        "image_sha256": source_sha256(source.image),
        "mask": source.mask,
        "mask_sha256": source_sha256(source.mask),
        "organ_label": label_record(source.organ_label),
    }
    return LoadedSource(loaded.case, record, loaded.notes, loaded.integral)
