"""The dataset folder that ``generate`` writes: nnU-Net v2 layout, per-case records, manifest.

::

    Dataset501_SynthLiver/
      imagesTr/{case_id}_0000.nii.gz     CT with tumours
      labelsTr/{case_id}.nii.gz          0 background, 1 organ, 2 tumour (or per-organ codes)
      previews/{case_id}.png             with --preview
      dataset.json                       nnU-Net v2 (and MONAI/MSD "training" list)
      manifest.jsonl                     one line per case: everything needed to replay it
      .tumorsynth/run.json               the settings every run into this folder must share
      .tumorsynth/cases/{case_id}.json   a case's manifest line, written last: the case is done
      .tumorsynth/lock, active           the folder's locks (:mod:`tumorsynth.dataset.locks`)

A case is finished when its record exists and its files have the sizes the record notes (every
file is checked when written, before its record: :func:`tumorsynth.io.volume.write_volume`).
``manifest.jsonl`` and ``dataset.json`` are rebuilt from all finished cases at the end of every run
(under a file lock, so shards sharing the folder can finish in any order); they depend only on
which cases are done, not on workers, shards or interruptions.

Runs into one folder share it only when their settings agree (the shards of one run): the run
record is checked and written under the folder's lock, and a run with other settings, or one that
would delete the dataset (``overwrite``), is refused while another run is active. ``overwrite``
deletes only what ``generate`` wrote: the files its records list, its state, ``manifest.jsonl``
and ``dataset.json``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tumorsynth.dataset.locks import ActiveRun, exclusive
from tumorsynth.errors import InputError
from tumorsynth.io.verify import describe_os_error
from tumorsynth.io.volume import remove_stale_temporaries, write_text_atomic

__all__ = [
    "FORMATS",
    "LABELS",
    "CasePaths",
    "case_paths",
    "check_plain_name",
    "dataset_labels",
    "finalize",
    "is_done",
    "open_run",
    "read_manifest",
    "record_files",
    "write_record",
]

LABELS = {"background": 0, "liver": 1, "tumor": 2}


def dataset_labels(organ: str = "liver", codes: tuple[int, int] = (1, 2)) -> dict[str, int]:
    """The ``labels`` of ``dataset.json`` (name -> value, as nnU-Net v2 reads them) for tumours
    of ``organ`` labelled with ``codes`` (organ, tumour): :data:`LABELS` for the liver."""
    if (organ, tuple(codes)) == ("liver", (1, 2)):
        return dict(LABELS)
    return {"background": 0, organ: int(codes[0]), f"{organ}_tumor": int(codes[1])}


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


_PLAIN = re.compile(r"[A-Za-z0-9_-]+")


def check_plain_name(name: str, what: str = "case id") -> str:
    """``name`` if it is a plain file name: letters, digits, ``_`` and ``-`` only (so no path
    separator, no ``..``, nothing that leaves the folder).

    Raises
    ------
    InputError
        Any other name.
    """
    if not isinstance(name, str) or not _PLAIN.fullmatch(name):
        raise InputError(
            f"{what} {name!r}: use letters, digits, '_' and '-' only (a name, not a path)"
        )
    return name


def case_paths(out: Path, case_id: str, fmt: str) -> CasePaths:
    """The files of case ``case_id`` in dataset folder ``out`` for output format ``fmt``.

    Raises
    ------
    InputError
        A case id that is not a plain name (:func:`check_plain_name`).
    """
    check_plain_name(case_id)
    ext = FORMATS[fmt]
    return CasePaths(
        out / "imagesTr" / f"{case_id}_0000{ext}",
        out / "labelsTr" / f"{case_id}{ext}",
        out / "previews" / f"{case_id}.png",
        out / STATE / "cases" / f"{case_id}.json",
    )


def _inside(out: Path, relative: Any) -> Path | None:
    """``out / relative`` if it names a file in one of the dataset's subfolders, else None."""
    if not isinstance(relative, str):
        return None
    path = (out / relative).absolute()
    if path.parent.parent != out.absolute() or path.parent.name not in _SUBDIRS:
        return None
    return path


def _clear_own(out: Path) -> None:
    """Delete what ``generate`` wrote into ``out``: the files its records list, the records and
    run record, ``manifest.jsonl`` and ``dataset.json``; nothing else (not the locks)."""
    for path in sorted((out / STATE / "cases").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            record = {}
        for key in ("image", "label", "preview"):
            own = _inside(out, record.get(key)) if isinstance(record, dict) else None
            if own is not None:
                own.unlink(missing_ok=True)
        path.unlink()
    for name in ("manifest.jsonl", "dataset.json", f"{STATE}/run.json"):  # run.json last: a
        (out / name).unlink(missing_ok=True)  # crash before it leaves a folder still ours


def _has_foreign_dataset(out: Path) -> bool:
    made = (out / STATE / "run.json").exists() or any((out / STATE / "cases").glob("*.json"))
    return not made and ((out / "dataset.json").exists() or (out / "manifest.jsonl").exists())


def _check_settings(out: Path, settings: dict[str, Any], run: ActiveRun, overwrite: bool) -> None:
    """Refuse a run that may not start now (see :func:`open_run`); forget a run record with
    other settings when nothing of that run is finished and no run is active."""
    if _has_foreign_dataset(out):
        raise InputError(
            f"{out}: already holds a dataset (dataset.json / manifest.jsonl) that tumorsynth "
            "generate did not make; choose another folder"
        )
    run_file = out / STATE / "run.json"
    if overwrite:
        if not run.alone:
            raise InputError(
                f"{out}: another generate run is writing into this folder; --overwrite would "
                "delete its files: wait for it to finish, or choose another folder"
            )
        _clear_own(out)
        return
    if not run_file.exists():
        return
    try:
        before = json.loads(run_file.read_text())
    except (OSError, json.JSONDecodeError):
        before = {}
    differ = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
    if not differ:
        return
    if not run.alone:
        raise InputError(
            f"{out}: another generate run with other settings ({', '.join(differ)}) is writing "
            "into this folder; wait for it to finish, or choose another folder"
        )
    if any((out / STATE / "cases").glob("*.json")):
        raise InputError(
            f"{out}: already holds a dataset made with other settings ({', '.join(differ)}); "
            "re-run with the same options to finish it, pass --overwrite, or choose another "
            "folder"
        )
    run_file.unlink()  # nothing finished yet (say, every case failed): start afresh


@contextlib.contextmanager
def open_run(out: Path, settings: dict[str, Any], *, overwrite: bool) -> Iterator[None]:
    """Create (or check) the dataset folder for a run with ``settings`` and hold it for the
    ``with`` block.

    A folder holding a dataset made with the same settings is resumed (shards of one run may run
    at the same time). A run with other settings is refused while another run is active, and
    otherwise needs ``overwrite`` once any case of the earlier run is finished; ``overwrite``
    deletes what ``generate`` wrote (:func:`_clear_own`), and is refused while another run is
    active. A dataset that ``generate`` did not make is never deleted. Temporary files left by
    killed runs on this host are removed.

    Raises
    ------
    InputError
        The folder cannot be written (the message names the cause: a read-only file system, a
        full disk), holds a dataset ``generate`` did not make, holds a dataset with other
        settings and ``overwrite`` is false, or another run with other settings is active.
    """
    try:
        (out / STATE / "cases").mkdir(parents=True, exist_ok=True)
        run = _claim(out, settings, overwrite)
    except OSError as err:
        raise InputError(
            f"{out}: cannot write the output folder ({describe_os_error(err)})"
        ) from None
    with run:
        for folder in (out, *(out / s for s in _SUBDIRS), out / STATE, out / STATE / "cases"):
            remove_stale_temporaries(folder)
        yield


def _claim(out: Path, settings: dict[str, Any], overwrite: bool) -> ActiveRun:
    """Check the folder and write the run record, under the folder's lock; the run's claim."""
    with exclusive(out / STATE / "lock"):
        run = ActiveRun(out / STATE / "active")
        try:
            _check_settings(out, settings, run, overwrite)
            for sub in _SUBDIRS[:2]:
                (out / sub).mkdir(exist_ok=True)
            run_file = out / STATE / "run.json"
            if not run_file.exists():
                write_text_atomic(run_file, json.dumps(settings, indent=1, sort_keys=True) + "\n")
        except BaseException:
            run.close()
            raise
    return run


def record_files(out: Path, paths: CasePaths, preview: bool) -> dict[str, Any]:
    """The record fields naming a finished case's files (relative to ``out``) and their sizes
    in bytes, as :func:`is_done` checks them."""
    roles = {"image": paths.image, "label": paths.label}
    if preview:
        roles["preview"] = paths.preview
    fields: dict[str, Any] = {k: p.relative_to(out).as_posix() for k, p in roles.items()}
    fields["bytes"] = {k: p.stat().st_size for k, p in roles.items()}
    return fields


def _files_match(paths: CasePaths, record: dict[str, Any]) -> bool:
    """Whether the case's files have the sizes its record notes (a record without sizes, from
    an older version, never matches)."""
    sizes = record.get("bytes")
    if not isinstance(sizes, dict) or not {"image", "label"} <= set(sizes):
        return False
    for role, size in sizes.items():
        path = getattr(paths, role, None)
        try:
            if path is None or path.stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def is_done(paths: CasePaths, seed: int, source_name: str, preview: bool) -> bool:
    """Whether a case's record exists, matches this run's seed and source, and its files (the
    preview too, when asked for) have the sizes the record notes."""
    try:
        record = json.loads(paths.record.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (
        isinstance(record, dict)
        and record.get("seed") == seed
        and record.get("source", {}).get("name") == source_name
        and _files_match(paths, record)
        and (not preview or "preview" in record.get("bytes", {}))
    )


def write_record(paths: CasePaths, record: dict[str, Any]) -> None:
    """Write a case's manifest line (its completion mark), atomically."""
    write_text_atomic(paths.record, json.dumps(record, separators=(",", ":")) + "\n")


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
    try:
        return _rebuild(out, dataset, fmt)
    except OSError as err:
        raise InputError(
            f"{out}: cannot write the output folder ({describe_os_error(err)})"
        ) from None


def _rebuild(out: Path, dataset: dict[str, Any], fmt: str) -> int:
    with exclusive(out / STATE / "lock"):
        lines = []
        for path in sorted((out / STATE / "cases").glob("*.json")):
            text = path.read_text().strip()
            try:
                record = json.loads(text)
                paths = case_paths(out, record["case_id"], fmt)
            except (json.JSONDecodeError, InputError, KeyError, TypeError):
                continue
            if _files_match(paths, record):
                lines.append((record["case_id"], record, text))
        lines.sort(key=lambda x: x[0])
        write_text_atomic(out / "manifest.jsonl", "".join(f"{t}\n" for _, _, t in lines))
        meta = {
            **dataset,
            "channel_names": {"0": "CT"},
            "labels": dataset.get("labels", LABELS),
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
