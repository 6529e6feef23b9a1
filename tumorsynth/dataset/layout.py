"""The dataset folder that ``generate`` writes: nnU-Net v2 layout, per-case records, manifest.

::

    Dataset501_SynthLiver/
      imagesTr/{case_id}_0000.nii.gz     CT with tumours
      labelsTr/{case_id}.nii.gz          0 background, 1 liver, 2 tumour
      previews/{case_id}.png             with --preview
      dataset.json                       nnU-Net v2 (and MONAI/MSD "training" list)
      manifest.jsonl                     one line per case: everything needed to replay it
      .tumorsynth/run.json               the settings every run into this folder must share
      .tumorsynth/cases/{case_id}.json   a case's manifest line, written last: the case is done

A case is finished when its record exists. ``manifest.jsonl`` and ``dataset.json`` are rebuilt from
all records at the end of every run (under a file lock, so shards sharing the folder can finish in
any order); they depend only on which cases are done, not on workers, shards or interruptions.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tumorsynth.errors import InputError
from tumorsynth.io.volume import remove_stale_temporaries, write_text_atomic

__all__ = [
    "FORMATS",
    "LABELS",
    "CasePaths",
    "case_paths",
    "finalize",
    "is_done",
    "prepare",
    "read_manifest",
    "write_record",
]

LABELS = {"background": 0, "liver": 1, "tumor": 2}
#: ``--format`` choices and their file endings (the formats nnU-Net's SimpleITK reader takes).
FORMATS = {"nii.gz": ".nii.gz", "nrrd": ".nrrd", "mha": ".mha"}
STATE = ".tumorsynth"
_SUBDIRS = ("imagesTr", "labelsTr", "previews")


@dataclass(frozen=True)
class CasePaths:
    """Where one case's files go."""

    image: Path
    label: Path
    preview: Path
    record: Path


def case_paths(out: Path, case_id: str, fmt: str) -> CasePaths:
    """The files of case ``case_id`` in dataset folder ``out`` for output format ``fmt``."""
    ext = FORMATS[fmt]
    return CasePaths(
        out / "imagesTr" / f"{case_id}_0000{ext}",
        out / "labelsTr" / f"{case_id}{ext}",
        out / "previews" / f"{case_id}.png",
        out / STATE / "cases" / f"{case_id}.json",
    )


def _clear(out: Path) -> None:
    for sub in _SUBDIRS:
        for f in (out / sub).glob("*"):
            if f.is_file():
                f.unlink()
    shutil.rmtree(out / STATE, ignore_errors=True)
    for name in ("manifest.jsonl", "dataset.json"):
        (out / name).unlink(missing_ok=True)


def prepare(out: Path, settings: dict[str, Any], *, overwrite: bool) -> None:
    """Create (or check) the dataset folder for a run with ``settings``.

    A folder holding a dataset made with the same settings is resumed; other settings, or a
    dataset not made by ``generate``, need ``overwrite`` (which deletes it first). Temporary files
    left by killed runs on this host are removed.

    Raises
    ------
    InputError
        The folder cannot be written, or holds another dataset and ``overwrite`` is false.
    """
    run_file = out / STATE / "run.json"
    has_dataset = (out / "dataset.json").exists() or (out / "manifest.jsonl").exists()
    if overwrite:
        _clear(out)
    elif run_file.exists():
        try:
            before = json.loads(run_file.read_text())
        except (OSError, json.JSONDecodeError):
            before = {}
        differ = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if differ and not any((out / STATE / "cases").glob("*.json")):
            run_file.unlink()  # nothing finished yet (say, every case failed): start afresh
        elif differ:
            raise InputError(
                f"{out}: already holds a dataset made with other settings ({', '.join(differ)}); "
                "re-run with the same options to finish it, pass --overwrite, or choose another "
                "folder"
            )
    elif has_dataset:
        raise InputError(
            f"{out}: already holds a dataset (dataset.json / manifest.jsonl) that this command "
            "did not make; choose another folder or pass --overwrite"
        )
    try:
        for sub in (*_SUBDIRS[:2], STATE, f"{STATE}/cases"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        if not run_file.exists():
            write_text_atomic(run_file, json.dumps(settings, indent=1, sort_keys=True) + "\n")
    except OSError as err:
        raise InputError(f"{out}: cannot write the output folder ({err.strerror or err})") from None
    for folder in (out, *(out / s for s in _SUBDIRS), out / STATE, out / STATE / "cases"):
        remove_stale_temporaries(folder)


def is_done(paths: CasePaths, seed: int, source_name: str, preview: bool) -> bool:
    """Whether a case's record and files exist and match this run's seed and source."""
    try:
        record = json.loads(paths.record.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (
        record.get("seed") == seed
        and record.get("source", {}).get("name") == source_name
        and paths.image.exists()
        and paths.label.exists()
        and (not preview or paths.preview.exists())
    )


def write_record(paths: CasePaths, record: dict[str, Any]) -> None:
    """Write a case's manifest line (its completion mark), atomically."""
    write_text_atomic(paths.record, json.dumps(record, separators=(",", ":")) + "\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (where the platform has ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # Windows: shards there must finish one at a time
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def finalize(out: Path, dataset: dict[str, Any], fmt: str) -> int:
    """Rebuild ``manifest.jsonl`` and ``dataset.json`` from every finished case's record.

    Parameters
    ----------
    out : Path
        Dataset folder.
    dataset : dict
        Fields of ``dataset.json`` other than the case list and count (name, description, ...).
    fmt : str
        Output format (``"nii.gz"``, ...).

    Returns
    -------
    int
        Number of cases in the dataset.
    """
    with _locked(out / STATE / "lock"):
        lines = []
        for path in sorted((out / STATE / "cases").glob("*.json")):
            text = path.read_text().strip()
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                continue
            paths = case_paths(out, record["case_id"], fmt)
            if paths.image.exists() and paths.label.exists():
                lines.append((record["case_id"], record, text))
        lines.sort(key=lambda x: x[0])
        write_text_atomic(out / "manifest.jsonl", "".join(f"{t}\n" for _, _, t in lines))
        meta = {
            **dataset,
            "channel_names": {"0": "CT"},
            "labels": LABELS,
            "numTraining": len(lines),
            "file_ending": FORMATS[fmt],
            "training": [
                {"image": f"./{r['image']}", "label": f"./{r['label']}"} for _, r, _ in lines
            ],
        }
        write_text_atomic(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
    return len(lines)


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``manifest.jsonl`` (or of the dataset folder holding it).

    Raises
    ------
    InputError
        Missing file or a line that is not JSON.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.jsonl"
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"{path}: cannot read the manifest ({err.strerror})") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{number}: not a JSON line ({err.msg})") from None
    return records
