"""Regenerate one case of a dataset from its manifest line, bit for bit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tumorsynth.dataset.generate import to_int16
from tumorsynth.dataset.layout import read_manifest
from tumorsynth.dataset.sources import load_source, source_from_record
from tumorsynth.engine.params import TumorParams
from tumorsynth.engine.pipeline import render, sample_params
from tumorsynth.errors import InputError
from tumorsynth.io.volume import read_volume, write_volume

__all__ = ["ReplayResult", "replay_case"]


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay_case` wrote and found.

    Attributes
    ----------
    image, label : Path
        The regenerated files.
    identical : bool or None
        Whether they equal the dataset's own files voxel for voxel, with the same geometry and
        dtype (None if those files are not next to the manifest).
    params_from_seed : bool
        Whether drawing params from the recorded seed and config gives the recorded params again.
    """

    image: Path
    label: Path
    identical: bool | None
    params_from_seed: bool


def _same(a: Path, b: Path) -> bool:
    va, vb = read_volume(a), read_volume(b)
    return (
        va.array.dtype == vb.array.dtype
        and np.array_equal(va.array, vb.array)
        and (va.spacing_mm, va.origin_mm, va.direction)
        == (vb.spacing_mm, vb.origin_mm, vb.direction)
    )


def replay_case(
    manifest: str | Path, case_id: str, out_dir: str | Path = ".", device: str | None = None
) -> ReplayResult:
    """Regenerate case ``case_id`` of a dataset from its ``manifest.jsonl`` line.

    The source is read again (its sha256 must match the manifest's), the recorded params are
    rendered, and the image and label are written to ``out_dir`` under their dataset names.

    Parameters
    ----------
    manifest : str or Path
        ``manifest.jsonl``, or the dataset folder holding it.
    case_id : str
        The case to regenerate.
    out_dir : str or Path
        Where to write (created); must not be the dataset's own ``imagesTr``/``labelsTr``.
    device : str, optional
        Device to render on; default: the one the case was made on.

    Returns
    -------
    ReplayResult

    Raises
    ------
    InputError
        Unknown case, a source that is missing or changed since the dataset was made.
    """
    manifest = Path(manifest)
    records = read_manifest(manifest)
    root = manifest if manifest.is_dir() else manifest.parent
    record = next((r for r in records if r.get("case_id") == case_id), None)
    if record is None:
        known = ", ".join(r.get("case_id", "?") for r in records[:5])
        raise InputError(
            f"{manifest}: no case {case_id!r} (it has {known}{', ...' * (len(records) > 5)})"
        )
    source = source_from_record(record["source"])
    loaded = load_source(source)
    for key in ("image", "mask"):
        want = record["source"].get(f"{key}_sha256")
        have = loaded.record.get(f"{key}_sha256")
        if want is not None and want != have:
            raise InputError(
                f"{record['source'][key]}: changed since the dataset was made "
                f"(sha256 {have[:12]}..., manifest says {want[:12]}...); cannot replay"
            )
    params = TumorParams.from_dict(record["params"])
    result = render(loaded.case, params=params, device=device or record.get("device", "cpu"))
    image = result.image.get() if hasattr(result.image, "get") else np.asarray(result.image)
    label = result.label.get() if hasattr(result.label, "get") else np.asarray(result.label)
    if "label_codes" in record:  # a per-organ dataset: 1 organ, 2 tumour -> its codes
        label = np.array([0, *record["label_codes"]], np.uint8)[label]
    where = str(record["source"].get("image") or source.describe())
    image = to_int16(image, where) if record["dtype"] == "int16" else image.astype(np.float32)
    out = Path(out_dir)
    originals = (root / record["image"], root / record["label"])
    targets = (out / Path(record["image"]).name, out / Path(record["label"]).name)
    if any(t.absolute() == o.absolute() for t, o in zip(targets, originals, strict=True)):
        raise InputError(f"{out}: is the dataset's own folder; replay into another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot write the output folder ({err.strerror})") from None
    case = loaded.case
    geometry = (case.spacing_mm, case.origin_mm, case.direction)
    write_volume(targets[0], image, *geometry)
    write_volume(targets[1], label, *geometry)
    identical = None
    if all(o.exists() for o in originals):
        identical = all(_same(t, o) for t, o in zip(targets, originals, strict=True))
    drawn = sample_params(case, config=record["config"], rng=int(record["seed"]))
    return ReplayResult(targets[0], targets[1], identical, drawn.to_dict() == params.to_dict())
