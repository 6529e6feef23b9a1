"""``tumorsynth aslseg segment``: label maps of a finished run for CT files, in each CT's geometry.

Each CT is read with its liver mask (a 0/1 mask or a label map with ``organ_label``), cut into the
liver-box slices the run was trained on, segmented, and assembled back onto the CT's grid: 0
background, 1 liver (the given mask), 2 tumour (inside the liver), written with the CT's origin,
spacing and direction so that ``tumorsynth evaluate`` scores it against a reference label map.

``use`` picks the pipeline: ``segmenter`` (stage I after the last round, the deliverable),
``sam`` (the last round's tuned SAM prompted by it) or ``refined`` (its adaptation network on top).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tumorsynth.dataset.sources import expand_paths, pair_sources
from tumorsynth.errors import ConfigError, InputError
from tumorsynth.io.case import read_case
from tumorsynth.io.volume import write_volume
from tumorsynth.methods.aslseg.ablation import segment_volume
from tumorsynth.methods.aslseg.adapt import load_adapter
from tumorsynth.methods.aslseg.config import ASLsegConfig, load_aslseg_config
from tumorsynth.methods.aslseg.data import Volume
from tumorsynth.methods.aslseg.pseudo import Models
from tumorsynth.methods.aslseg.sam_tune import load_tuned_sam, prompter_for
from tumorsynth.methods.aslseg.ssl import load_segmenter

__all__ = ["USES", "load_run", "segment_files"]

USES = ("segmenter", "sam", "refined")
"""What ``segment`` can use: stage I alone, + SAM, + the adaptation network."""


def load_run(
    run_dir: str | Path, use: str = "segmenter", device: str = "auto"
) -> tuple[ASLsegConfig, Models]:
    """The config and networks of a finished run (``model.json``).

    Raises
    ------
    InputError
        A folder that holds no finished run, or missing checkpoints.
    """
    if use not in USES:
        raise ConfigError(f"use: {use!r}; choose from {', '.join(USES)}")
    run_dir = Path(run_dir)
    model_file = run_dir / "model.json"
    if not model_file.is_file() or not (run_dir / "config.json").is_file():
        raise InputError(f"{run_dir}: not a finished ASLseg run (no model.json and config.json)")
    config = load_aslseg_config(json.loads((run_dir / "config.json").read_text()))
    paths = json.loads(model_file.read_text())
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)  # fmt: skip
    segmenter = load_segmenter(run_dir / paths["segmenter"], dev)
    if use == "segmenter":
        return config, Models(segmenter, None, None, dev)
    sam = load_tuned_sam(config, run_dir / paths["sam_base"], run_dir / paths["sam_head"], dev)
    adapter = load_adapter(run_dir / paths["adapter"], dev)
    return config, Models(segmenter, prompter_for(config, sam, dev), adapter, dev)


def _plan(images, masks, organ_label: int | None, out_dir: Path, overwrite: bool):
    """The (CT, liver mask) sources and their output paths, checked before any work: every CT
    has its mask, no output is an input, and none exists unless ``overwrite``."""
    paths = expand_paths(images, "images")
    if not paths:
        raise InputError("segment: no input CT")
    if not masks:
        raise InputError(f"{paths[0]}: no liver mask given; pass --masks (one per CT)")
    sources, _ = pair_sources(paths, expand_paths(masks, "masks"), organ_label)
    targets = [out_dir / f"{s.name}.nii.gz" for s in sources]
    inputs = {Path(p).resolve() for s in sources for p in (s.image, s.mask)}
    clash = [t for t in targets if t.resolve() in inputs]
    if clash:
        raise InputError(f"{clash[0]}: is an input; choose another --out")
    taken = [str(t) for t in targets if t.exists()]
    if taken and not overwrite:
        raise InputError(f"{taken[0]} exists ({len(taken)} outputs do): pass --overwrite")
    return sources, targets


def segment_files(
    run_dir: str | Path,
    images: Sequence[str | Path],
    masks: Sequence[str | Path],
    out_dir: str | Path,
    *,
    organ_label: int | None = None,
    use: str = "segmenter",
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Segment CTs with a finished run and write one label map per CT, in its geometry.

    Parameters
    ----------
    run_dir : str or Path
        The folder of ``tumorsynth aslseg run``.
    images : sequence of str or Path
        CT files, DICOM folders, folders of them or glob patterns.
    masks : sequence of str or Path
        Their liver masks, paired by name or in order (one per CT).
    out_dir : str or Path
        Where ``<case>.nii.gz`` go.
    organ_label : int, optional
        The liver's value in label-map masks (5 in TotalSegmentator).
    use : str
        ``segmenter``, ``sam`` or ``refined`` (see the module).
    device : str
    overwrite : bool
        Replace label maps that exist (else they are an error, before anything is computed).
    progress : bool

    Returns
    -------
    list of Path
        The label maps, in input order.

    Raises
    ------
    InputError
        No CT, a CT without a liver mask, unreadable files, an empty liver, outputs that exist.
    """
    sources, targets = _plan(images, masks, organ_label, Path(out_dir), overwrite)
    config, models = load_run(run_dir, use, device)
    key = {"segmenter": "stage1", "sam": "sam", "refined": "refined"}[use]
    for source, target in tqdm(list(zip(sources, targets, strict=True)), desc="segment",
                               unit="case", disable=not progress):  # fmt: skip
        case = read_case(source.image, source.mask, source.organ_label).case
        liver = np.asarray(case.organ, bool)
        volume = Volume(source.name, np.asarray(case.image, np.float32), liver, None,
                        case.spacing_mm, case.origin_mm, case.direction, source.image)  # fmt: skip
        tumour = segment_volume(models, volume, config)[key]
        labels = liver.astype(np.uint8) + tumour.astype(np.uint8)
        target.parent.mkdir(parents=True, exist_ok=True)  # only once there is something to write
        write_volume(target, labels, case.spacing_mm, case.origin_mm, case.direction)
    return targets
