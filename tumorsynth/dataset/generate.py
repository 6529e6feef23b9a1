"""Synthetic datasets on disk: real CT (or the phantom) in, an nnU-Net v2 dataset out, with a
manifest that replays every case.

The work is a list of cases, each fully determined by its source, its case id and the run seed, so
that a run can be split across processes (``workers``) and machines (``shard``), interrupted and
resumed, and still give the same files as one uninterrupted run. See :mod:`tumorsynth.dataset.layout` for
the folder layout.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.dataset import layout
from tumorsynth.dataset.casework import (
    Job,
    Result,
    Spec,
    clear_cache,
    init_worker,
    make_case,
    pool_job,
    to_int16,
)
from tumorsynth.dataset.sources import Source, phantom_sources
from tumorsynth.engine.config import SynthConfig, load_config
from tumorsynth.engine.label_maps import label_codes
from tumorsynth.engine.rng import check_seed
from tumorsynth.errors import InputError, TumorSynthError
from tumorsynth.io.case import as_selection

__all__ = [
    "GenerateSummary",
    "Job",
    "case_seed",
    "generate_dataset",
    "parse_shard",
    "plan_jobs",
    "to_int16",
]

log = logging.getLogger("tumorsynth.dataset.generate")


@dataclass(frozen=True)
class GenerateSummary:
    """What a :func:`generate_dataset` run did.

    Attributes
    ----------
    out_dir : Path
    n_cases : int
        Cases written by this run.
    n_tumours : int
        Tumours in them.
    seconds : float
        Wall time of the run, s.
    n_skipped : int
        Cases of this run (or shard) found already finished.
    n_failed : int
        Cases that failed (reported in ``failures``).
    n_total : int
        Cases in the dataset folder after the run (all shards so far).
    first_case_seconds : float or None
        Time until the first case was written (start-up: reading inputs, starting workers), s.
    failures : tuple of str
        One message per distinct problem.
    """

    out_dir: Path
    n_cases: int
    n_tumours: int
    seconds: float
    n_skipped: int = 0
    n_failed: int = 0
    n_total: int = 0
    first_case_seconds: float | None = None
    failures: tuple[str, ...] = field(default=())


def case_seed(seed: int, key: int | str) -> int:
    """The seed of a case: a hash of the run seed and the case's identity (its index for the
    phantom, its case id for files), so it does not depend on how many cases a run makes, in which
    order, on how many workers or shards."""
    if isinstance(key, str):
        words = np.frombuffer(hashlib.sha256(key.encode()).digest()[:16], dtype="<u4")
        entropy = [int(seed), *(int(w) for w in words)]
    else:
        entropy = [int(seed), int(key)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (1 <= K <= N) as ``(K, N)``; None stays None."""
    if text is None:
        return None
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise InputError(f"--shard {text!r}: need 1 <= K <= N")
    return k, n


def plan_jobs(
    sources: Sequence[Source],
    *,
    seed: int,
    n_per_case: int = 1,
    n_cases: int | None = None,
    prefix: str | None = None,
    phantom_prefix: str = "liver",
) -> list[Job]:
    """Every case of a run, in the order that defines shards.

    For phantoms, case ``i`` of ``n_cases`` (id ``{prefix}_{i:04d}``, ``prefix`` by default
    ``phantom_prefix``, the host organ) uses phantom ``i % len``; for files, each source gives
    ``n_per_case`` cases ``{prefix_}{name}_{k:03d}``.

    Raises
    ------
    InputError
        A prefix or source name that is not a plain name (letters, digits, ``_``, ``-``): case
        ids name files, and must not lead out of the dataset folder.
    """
    if prefix is not None:
        layout.check_plain_name(prefix, "--prefix")
    for source in sources:
        layout.check_plain_name(source.name, f"{source.describe()}: source name")
    if all(s.is_phantom for s in sources) and n_cases is not None:
        pre = prefix or phantom_prefix
        return [
            Job(f"{pre}_{i:04d}", i % len(sources), i // len(sources), case_seed(seed, i))
            for i in range(n_cases)
        ]
    pre = f"{prefix}_" if prefix else ""
    jobs = []
    for s, source in enumerate(sources):
        for k in range(n_per_case):
            case_id = f"{pre}{source.name}_{k:03d}"
            jobs.append(Job(case_id, s, k, case_seed(seed, case_id)))
    return jobs


def _settings(cfg: SynthConfig, sources, seed, dtype, fmt, prefix, codes) -> dict[str, Any]:
    from tumorsynth.version import __version__

    phantom = all(s.is_phantom for s in sources)
    settings = {
        "tumorsynth_version": __version__,
        "config": cfg.to_dict(),
        "seed": seed,
        "dtype": dtype,
        "format": fmt,
        "prefix": prefix,
        "input": "phantom" if phantom else "files",
    }
    if phantom:
        settings["phantom_spacing_mm"] = list(sources[0].spacing_mm)
        settings["phantoms"] = len(sources)
        if sources[0].organ != "liver":
            settings["phantom_organ"] = sources[0].organ
    else:
        values: set[int] = set()
        for source in sources:
            selection = as_selection(source.organ_label)
            values.update(selection.values if selection is not None else ())
        settings["organ_label"] = sorted(values)
    if codes != (1, 2):
        settings["label_codes"] = list(codes)
    return settings


def generate_dataset(
    out_dir: str | Path,
    n_cases: int | None = None,
    *,
    sources: Sequence[Source] | None = None,
    n_per_case: int = 1,
    config: str | Path | Mapping[str, Any] | SynthConfig = "liver",
    seed: int = 0,
    n_phantoms: int = 1,
    spacing_mm: float | tuple[float, float, float] = 1.0,
    dtype: str = "auto",
    fmt: str = "nii.gz",
    prefix: str | None = None,
    workers: int = 1,
    shard: str | tuple[int, int] | None = None,
    device: str = "cpu",
    preview: bool = False,
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    organ: str | None = None,
    label_scheme: str = "shared",
) -> GenerateSummary:
    """Synthesise tumours into host CTs (or the built-in phantom) and write an nnU-Net v2 dataset.

    Writes ``imagesTr/{case_id}_0000{ext}``, ``labelsTr/{case_id}{ext}`` (0 background, 1 organ,
    2 tumour; other codes with ``label_scheme="per_organ"``), ``dataset.json`` and
    ``manifest.jsonl`` (one line per case: source and its sha256,
    seed, config, full params, tool version; :func:`tumorsynth.dataset.replay.replay_case` regenerates any
    line bit for bit). Images keep the geometry (origin, spacing, direction) of their source.

    Parameters
    ----------
    out_dir : str or Path
        Dataset folder (created), e.g. ``Dataset501_SynthLiver``. A folder holding a run with the
        same settings is resumed: finished cases (a record, and files of the sizes it notes) are
        skipped. Runs with the same settings (shards) may share it at the same time; a run with
        other settings is refused while another is active. No input may lie inside it.
    n_cases : int, optional
        Phantom only: number of cases (default 10), ids ``{prefix}_{i:04d}``.
    sources : sequence of Source, optional
        Host CTs with masks (see :mod:`tumorsynth.dataset.sources`); default: the phantom.
    n_per_case : int
        Cases per source (files), ids ``{name}_{k:03d}``.
    config : str, path, dict or SynthConfig
        Synthesis config (preset name, file, dict).
    seed : int
        Run seed, 0 to 2**63 - 1; each case's seed is :func:`case_seed` of it and the case's
        identity.
    n_phantoms : int
        Distinct phantom anatomies (seeds 0..n-1), used in turn.
    spacing_mm : float or tuple of float
        Phantom voxel size, mm.
    dtype : {"auto", "int16", "float32"}
        Image dtype on disk; ``auto``: int16 when the source holds whole HU in int16's range, else
        float32. ``int16`` refuses NaN, infinite and out-of-range values (never zeroes or clips
        them).
    fmt : {"nii.gz", "nrrd", "mha"}
        File format (NIfTI keeps the geometry to float32 precision, NRRD and MHA exactly).
    prefix : str, optional
        Case id prefix (phantom default ``liver``; files default none): letters, digits, ``_``
        and ``-`` only.
    workers : int
        Processes on this machine.
    shard : "K/N" or (K, N), optional
        Make only the cases ``j`` with ``j % N == K - 1`` (job arrays on many machines); the shards
        together make exactly the cases of one unsharded run.
    device : str
        Passed to :func:`tumorsynth.synthesize` (``"cpu"``, ``"cuda"``).
    preview : bool
        Also write ``previews/{case_id}.png`` (see :mod:`tumorsynth.dataset.preview`).
    strict : bool
        Stop at the first failing case (raise); by default failures are reported and skipped.
    overwrite : bool
        Delete a dataset that ``generate`` made in ``out_dir`` first: the files its records
        list, its state, ``manifest.jsonl`` and ``dataset.json``, nothing else. Refused while
        another run is active; a dataset ``generate`` did not make is never deleted.
    progress : bool
        Show a progress bar (cases/s, ETA).
    organ : str, optional
        The host organ: the phantom's (``liver``, ``pancreas``, ``kidney``, ...; the sources of
        files name theirs in their masks), the default ``prefix`` and the organ ``dataset.json``
        names; by default the config's (``SynthConfig.organ``).
    label_scheme : {"shared", "per_organ"}
        ``shared``: 1 organ, 2 tumour; ``per_organ``: the organ's codes of
        :data:`~tumorsynth.engine.label_maps.PER_ORGAN_CODES` (pancreas 3 and 4, say), so that
        datasets of several organs can be pooled.

    Returns
    -------
    GenerateSummary

    Raises
    ------
    InputError, ConfigError
        Bad options (a seed or prefix), an input inside the output folder, an output folder that
        cannot be written, that holds another dataset or that another run with other settings
        is writing into, an unknown device; with ``strict``, the first failing case.

    Examples
    --------
    >>> from tumorsynth.dataset.sources import expand_paths, pair_sources
    >>> sources, _ = pair_sources(expand_paths(["ct/*.nii.gz"]), expand_paths(["seg/*.nii.gz"]), 5)
    >>> generate_dataset("Dataset501_SynthLiver", sources=sources, n_per_case=4)  # doctest: +SKIP
    """
    from tumorsynth.backend import get_backend

    start = time.perf_counter()
    if dtype not in ("auto", "int16", "float32"):
        raise InputError(f"dtype must be 'auto', 'int16' or 'float32', got {dtype!r}")
    if fmt not in layout.FORMATS:
        raise InputError(f"format must be one of {', '.join(layout.FORMATS)}, got {fmt!r}")
    if workers < 1 or n_per_case < 1 or n_phantoms < 1 or (n_cases is not None and n_cases < 1):
        raise InputError("workers, n_cases, n_per_case and n_phantoms must be at least 1")
    seed = check_seed(seed, "--seed")
    shard = parse_shard(shard) if isinstance(shard, str) or shard is None else tuple(shard)
    if shard is not None and overwrite:
        raise InputError("--overwrite cannot be combined with --shard (it would delete the others)")
    cfg = load_config(config)
    organ = organ or cfg.organ
    codes = label_codes(organ, label_scheme)
    get_backend(device)  # an unknown device fails here, once, before any work
    if sources is None:
        sources = phantom_sources(n_phantoms, spacing_mm, organ)
        n_cases = 10 if n_cases is None else n_cases
    elif n_cases is not None:
        raise InputError("n_cases is for the phantom; with input files use n_per_case")
    sources = tuple(sources)
    if not sources:
        raise InputError("no input cases")
    jobs = plan_jobs(
        sources, seed=seed, n_per_case=n_per_case, n_cases=n_cases, prefix=prefix,
        phantom_prefix=organ,
    )  # fmt: skip
    if shard is not None:
        jobs = [j for i, j in enumerate(jobs) if i % shard[1] == shard[0] - 1]
    out = Path(out_dir).absolute()
    _check_inputs_outside(out, sources)
    spec = Spec(out, sources, cfg, dtype, fmt, device, preview, codes, organ)
    settings = _settings(cfg, sources, seed, dtype, fmt, prefix, codes)
    with layout.open_run(out, settings, overwrite=overwrite):
        return _generate(spec, jobs, seed, workers, strict, progress, start)


def _check_inputs_outside(out: Path, sources: Sequence[Source]) -> None:
    """Refuse inputs inside the output folder: ``overwrite`` and the files a run writes must
    never touch them."""
    root = out.resolve()
    for source in sources:
        for entry in (source.image, source.mask):
            if entry is None:
                continue
            path = Path(entry).resolve()
            if path == root or root in path.parents:
                raise InputError(
                    f"{entry}: an input lies inside the output folder {out}; choose another --out"
                )


def _done(spec: Spec, job: Job) -> bool:
    paths = layout.case_paths(spec.out, job.case_id, spec.fmt)
    return layout.is_done(paths, job.seed, spec.sources[job.source].name, spec.preview)


def _generate(
    spec: Spec,
    jobs: list[Job],
    seed: int,
    workers: int,
    strict: bool,
    progress: bool,
    start: float,
) -> GenerateSummary:
    """Make the cases of ``jobs`` that are not done yet, then rebuild the manifest and
    ``dataset.json`` from every finished case."""
    out, sources = spec.out, spec.sources
    pending = [j for j in jobs if not _done(spec, j)]
    pending.sort(key=lambda j: (j.source, j.k, j.case_id))  # one source after the other
    clear_cache()  # files may have changed since an earlier run in this process
    state = _Progress(len(pending), progress, strict, start)
    try:
        _run(spec, pending, workers, state)
    finally:
        phantom = all(s.is_phantom for s in sources)
        from tumorsynth.version import __version__

        what = "the built-in phantom" if phantom else f"{len(sources)} CT volumes"
        name = spec.config.name
        n_total = layout.finalize(
            out,
            {
                "name": out.name,
                "description": f"Synthetic {spec.organ} tumours made by tumorsynth "
                f"{__version__} (config {name}, seed {seed}) on {what}.",
                "tumorsynth": {"version": __version__, "config": name, "seed": seed},
                "labels": layout.dataset_labels(spec.organ, spec.codes),
            },
            spec.fmt,
        )
        state.close()
    if strict and state.failures:
        raise InputError(state.failures[0])
    return GenerateSummary(
        out,
        state.n_done,
        state.n_tumours,
        time.perf_counter() - start,
        n_skipped=len(jobs) - len(pending),
        n_failed=state.n_failed,
        n_total=n_total,
        first_case_seconds=state.first,
        failures=tuple(state.failures),
    )


class _Progress:
    """Collects results: progress bar, notes and errors (each distinct line logged once)."""

    def __init__(self, total: int, show: bool, strict: bool, start: float):
        self.bar = tqdm(
            total=total,
            unit="case",
            desc="generate",
            disable=not show,
            smoothing=0.1,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
            "[{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]",
        )
        self.strict, self.start = strict, start
        self.n_done = self.n_tumours = self.n_failed = 0
        self.failures: list[str] = []
        self.seen: set[str] = set()
        self.first: float | None = None

    def add(self, result: Result) -> bool:
        """Record a result; False when the run must stop (strict and failed)."""
        for note in result.notes:
            if note not in self.seen:
                self.seen.add(note)
                log.info("note: %s", note)
        if result.error is not None:
            self.n_failed += 1
            if result.error not in self.seen:
                self.seen.add(result.error)
                self.failures.append(result.error)
                if not self.strict:  # strict: the run raises it
                    log.error("error: %s", result.error)
        else:
            self.n_done += 1
            self.n_tumours += result.n_tumours
            if self.first is None:
                self.first = time.perf_counter() - self.start
        self.bar.update(1)
        self.bar.set_postfix(tumours=self.n_tumours, failed=self.n_failed, refresh=False)
        return not (self.strict and result.error is not None)

    def close(self) -> None:
        self.bar.close()


def _run(spec: Spec, jobs: list[Job], workers: int, state: _Progress) -> None:
    if workers == 1 or len(jobs) <= 1:
        try:
            for job in jobs:
                if not state.add(make_case(spec, job)):
                    return
        finally:
            clear_cache()  # do not hold volumes in memory after the run
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),  # numba's thread pools do not survive fork
        initializer=init_worker,
        initargs=(spec, threads),
    )
    try:
        todo = {pool.submit(pool_job, job) for job in jobs}
        while todo:
            done, todo = wait(todo, return_when=FIRST_COMPLETED)
            for future in done:
                if not state.add(future.result()):
                    for f in todo:
                        f.cancel()
                    return
    except BrokenProcessPool:
        raise TumorSynthError(
            "a worker process died (out of memory?); the finished cases are kept: re-run the "
            "same command to make the rest"
        ) from None
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
