"""Making one case of a ``generate`` run: read its source (once per process), synthesise, write the
image, label, preview and, last, the record that marks the case done. Runs in the main process or
in worker processes (:func:`init_worker`, :func:`pool_job`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tumorsynth.dataset import layout
from tumorsynth.dataset.sources import LoadedSource, Source, load_source
from tumorsynth.engine.config import SynthConfig
from tumorsynth.engine.pipeline import synthesize
from tumorsynth.errors import InputError, TumorSynthError
from tumorsynth.io.volume import write_volume

__all__ = [
    "INT16_RANGE",
    "Job",
    "Result",
    "Spec",
    "clear_cache",
    "init_worker",
    "make_case",
    "pool_job",
    "to_int16",
]


@dataclass(frozen=True)
class Job:
    """One case to make: ``source`` indexes the run's sources; ``k`` counts cases per source."""

    case_id: str
    source: int
    k: int
    seed: int


INT16_RANGE = (-32768, 32767)


def to_int16(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Round HU to the nearest integer and store as int16, as CT is usually stored.

    Raises
    ------
    InputError
        NaN or infinite values, or values outside int16's range once rounded (they would become
        0 or be clipped); the message names ``source`` and counts them.
    """
    rounded = np.rint(image)
    n_bad = int(rounded.size - np.count_nonzero(np.isfinite(rounded)))
    if n_bad:
        raise InputError(
            f"{source}: {n_bad} NaN or infinite voxels cannot be stored as int16; write float32 "
            "(--dtype float32 or auto)"
        )
    lo, hi = INT16_RANGE
    if rounded.size and (rounded.min() < lo or rounded.max() > hi):
        n_out = int(np.count_nonzero((rounded < lo) | (rounded > hi)))
        raise InputError(
            f"{source}: {n_out} voxels outside int16's range ({lo} to {hi}; the image spans "
            f"{float(rounded.min()):g} to {float(rounded.max()):g}) cannot be stored as int16; "
            "write float32 (--dtype float32 or auto)"
        )
    return rounded.astype(np.int16)


@dataclass(frozen=True)
class Spec:
    """What a worker needs to make any case of the run."""

    out: Path
    sources: tuple[Source, ...]
    config: SynthConfig
    dtype: str
    fmt: str
    device: str
    preview: bool
    codes: tuple[int, int] = (1, 2)  # the label values written for the organ and the tumour
    organ: str = "liver"


@dataclass(frozen=True)
class Result:
    """What making a case gave: its tumour count and input notes, or the error that stopped it."""

    case_id: str
    n_tumours: int = 0
    notes: tuple[str, ...] = ()
    error: str | None = None


_SPEC: Spec | None = None
_CACHE: dict[Source, LoadedSource | TumorSynthError] = {}


def _loaded(spec: Spec, index: int) -> LoadedSource:
    """The source, read once per run and process (the latest one is kept: cases come source after
    source)."""
    source = spec.sources[index]
    if source not in _CACHE:
        try:
            _CACHE[source] = load_source(source)
        except TumorSynthError as err:
            _CACHE[source] = err
        while len(_CACHE) > 1:
            del _CACHE[next(iter(_CACHE))]
    value = _CACHE[source]
    if isinstance(value, TumorSynthError):
        raise value
    return value


def _host(array: Any) -> np.ndarray:
    return array.get() if hasattr(array, "get") else np.asarray(array)  # CuPy -> NumPy


def _write_case(spec: Spec, job: Job, src: LoadedSource, result: Any, written: list) -> str:
    """Write the case's image, label and preview (each checked), noting each file in
    ``written`` as it lands; returns the image dtype."""
    case = src.case
    dtype = spec.dtype if spec.dtype != "auto" else ("int16" if src.integral else "float32")
    image = _host(result.image)
    source = spec.sources[job.source].describe()
    image = to_int16(image, source) if dtype == "int16" else image.astype(np.float32, copy=False)
    raw = _host(result.label)  # 1 organ, 2 tumour
    label = raw if tuple(spec.codes) == (1, 2) else np.array([0, *spec.codes], np.uint8)[raw]
    paths = layout.case_paths(spec.out, job.case_id, spec.fmt)
    geometry = (case.spacing_mm, case.origin_mm, case.direction)
    written.append(write_volume(paths.image, image, *geometry))
    written.append(write_volume(paths.label, label, *geometry))
    if spec.preview:
        from tumorsynth.dataset.preview import write_preview

        written.append(write_preview(paths.preview, image, raw, case.spacing_mm, case.direction))
    return dtype


def make_case(spec: Spec, job: Job) -> Result:
    """Synthesise one case and write its image, label, preview and (last) record, which notes
    the files' sizes. A case that fails leaves none of its files and no record."""
    from tumorsynth.version import __version__

    written: list[Path] = []
    try:
        paths = layout.case_paths(spec.out, job.case_id, spec.fmt)
        paths.record.unlink(missing_ok=True)  # a stale record: this case is being made again
        src = _loaded(spec, job.source)
        result = synthesize(src.case, config=spec.config, seed=job.seed, device=spec.device)
        dtype = _write_case(spec, job, src, result, written)
        record = {
            "case_id": job.case_id,
            **layout.record_files(spec.out, paths, spec.preview),
            "source": src.record,
            "seed": job.seed,
            "dtype": dtype,
            "device": spec.device,
            "notes": list(src.notes),
            "config": spec.config.to_dict(),
            "params": result.params.to_dict(),
            "tumorsynth_version": __version__,
        }
        if tuple(spec.codes) != (1, 2):
            record["label_codes"] = list(spec.codes)
        layout.write_record(paths, record)
        return Result(job.case_id, len(result.params.lesions), src.notes)
    except Exception as err:
        for path in written:
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)
        return Result(job.case_id, error=_error_line(spec, job, err))


def _error_line(spec: Spec, job: Job, err: Exception) -> str:
    if isinstance(err, TumorSynthError):
        return str(err)
    if isinstance(err, OSError):
        where = err.filename or spec.out
        return f"{where}: cannot write ({err.strerror or err})"
    # a bug or an exotic input: report it with the case, go on
    source = spec.sources[job.source].describe()
    return f"{source}: case {job.case_id}: {type(err).__name__}: {err}"


def init_worker(spec: Spec, threads: int) -> None:
    """Worker-process initializer: keep the run's spec, and share the cores among the workers
    (``threads`` numba threads each)."""
    global _SPEC
    _SPEC = spec
    try:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # numba missing or refusing: its default is fine
        pass


def pool_job(job: Job) -> Result:
    """:func:`make_case` in a worker process set up by :func:`init_worker`."""
    assert _SPEC is not None
    return make_case(_SPEC, job)


def clear_cache() -> None:
    """Forget the sources read by this process (they may change on disk between runs)."""
    _CACHE.clear()
