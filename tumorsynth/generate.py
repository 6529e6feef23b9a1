"""Synthetic datasets on disk, in the nnU-Net v2 layout, with a manifest that replays every case."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.case import Case
from tumorsynth.config import SynthConfig, load_config
from tumorsynth.errors import InputError
from tumorsynth.io import atomic_path, write_volume
from tumorsynth.pipeline import synthesize

__all__ = ["GenerateSummary", "case_seed", "generate_dataset", "to_int16"]

LABELS = {"background": 0, "liver": 1, "tumor": 2}


@dataclass(frozen=True)
class GenerateSummary:
    """What a :func:`generate_dataset` run wrote."""

    out_dir: Path
    n_cases: int
    n_tumours: int
    seconds: float


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` in a run seeded with ``seed``: independent of how many cases a run
    makes and of the order they are made in."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])


def to_int16(image: np.ndarray) -> np.ndarray:
    """Round HU to the nearest integer and store as int16, as CT is usually stored."""
    return np.clip(np.rint(image), -32768, 32767).astype(np.int16)


def _write_json(path: Path, data: Any) -> None:
    tmp = atomic_path(path)
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _prepare(out_dir: Path, overwrite: bool) -> None:
    if (out_dir / "dataset.json").exists() or (out_dir / "manifest.jsonl").exists():
        if not overwrite:
            raise InputError(
                f"{out_dir}: already holds a dataset (dataset.json / manifest.jsonl); "
                "choose another folder or pass overwrite"
            )
        for sub in ("imagesTr", "labelsTr"):
            for f in (out_dir / sub).glob("*.nii.gz"):
                f.unlink()
        (out_dir / "manifest.jsonl").unlink(missing_ok=True)
    try:
        for sub in ("imagesTr", "labelsTr"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise InputError(f"{out_dir}: cannot write the output folder ({err.strerror})") from None


def generate_dataset(
    out_dir: str | Path,
    n_cases: int,
    *,
    config: str | Path | Mapping[str, Any] | SynthConfig = "liver",
    seed: int = 0,
    n_phantoms: int = 1,
    spacing_mm: float | tuple[float, float, float] = 1.0,
    dtype: str = "int16",
    prefix: str = "liver",
    overwrite: bool = False,
    progress: bool = True,
) -> GenerateSummary:
    """Synthesise ``n_cases`` tumour cases on the built-in phantom and write an nnU-Net v2 dataset.

    Writes ``imagesTr/{prefix}_{i:04d}_0000.nii.gz``, ``labelsTr/{prefix}_{i:04d}.nii.gz``,
    ``dataset.json`` and ``manifest.jsonl`` (one line per case: seed, source, config and the full
    params, enough to regenerate it with :func:`tumorsynth.render`).

    Parameters
    ----------
    out_dir : str or Path
        Destination folder (created; e.g. ``Dataset501_SynthLiver``).
    n_cases : int
        Number of cases.
    config : str, path, dict or SynthConfig
        Synthesis config (preset name, file, dict).
    seed : int
        Run seed; case ``i`` uses :func:`case_seed` ``(seed, i)``.
    n_phantoms : int
        Distinct phantom anatomies (phantom seeds 0..n-1), used in turn.
    spacing_mm : float or tuple of float
        Phantom voxel size, mm.
    dtype : {"int16", "float32"}
        Image dtype on disk (int16 rounds to whole HU).
    prefix : str
        Case identifier prefix.
    overwrite : bool
        Replace a dataset already in ``out_dir``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    GenerateSummary
    """
    from tumorsynth import __version__
    from tumorsynth.phantom import make_phantom

    if n_cases < 1 or n_phantoms < 1:
        raise InputError("n_cases and n_phantoms must be at least 1")
    if dtype not in ("int16", "float32"):
        raise InputError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
    cfg = load_config(config)
    out = Path(out_dir)
    _prepare(out, overwrite)
    phantoms: dict[int, Case] = {}
    lines = []
    n_tumours = 0
    start = time.perf_counter()
    bar = tqdm(range(n_cases), unit="case", disable=not progress, desc="generate")
    for i in bar:
        k = i % n_phantoms
        if k not in phantoms:
            phantoms[k] = make_phantom(seed=k, spacing_mm=spacing_mm)
        host = phantoms[k]
        s = case_seed(seed, i)
        result = synthesize(host, config=cfg, seed=s)
        case_id = f"{prefix}_{i:04d}"
        image = to_int16(result.image) if dtype == "int16" else result.image
        write_volume(out / "imagesTr" / f"{case_id}_0000.nii.gz", image, host.spacing_mm)
        write_volume(out / "labelsTr" / f"{case_id}.nii.gz", result.label, host.spacing_mm)
        n_tumours += len(result.params.lesions)
        line = {
            "case_id": case_id,
            "image": f"imagesTr/{case_id}_0000.nii.gz",
            "label": f"labelsTr/{case_id}.nii.gz",
            "seed": s,
            "source": {"kind": "phantom", "seed": k, "spacing_mm": list(host.spacing_mm)},
            "dtype": dtype,
            "config": cfg.to_dict(),
            "params": result.params.to_dict(),
            "tumorsynth_version": __version__,
        }
        lines.append(json.dumps(line, separators=(",", ":")))
        bar.set_postfix(tumours=n_tumours)
    tmp = atomic_path(out / "manifest.jsonl")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out / "manifest.jsonl")
    _write_json(
        out / "dataset.json",
        {
            "name": out.name,
            "description": f"Synthetic liver tumours made by tumorsynth {__version__} "
            f"(config {cfg.name}, seed {seed}) on the built-in phantom.",
            "channel_names": {"0": "CT"},
            "labels": LABELS,
            "numTraining": n_cases,
            "file_ending": ".nii.gz",
            "tumorsynth": {"version": __version__, "config": cfg.name, "seed": seed},
        },
    )
    return GenerateSummary(out, n_cases, n_tumours, time.perf_counter() - start)
