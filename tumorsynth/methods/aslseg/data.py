r"""ASLseg's data: the labelled slices (synthetic stream), the unlabelled ones (real CT, phantoms)
and the held-out volumes.

- **Labelled set** :math:`L_0`: liver-box crops of healthy hosts from
  :class:`~tumorsynth.stream.TumorStream` (exact tumour masks), sliced; ``tumour_fraction`` of the
  slices hold tumour, the others liver only, all from the same synthetic pipeline (no
  synthetic-versus-real shortcut between positives and negatives).
- **Unlabelled set** :math:`U`: every ``slice_stride``-th liver slice of real CTs (with liver
  masks) and of phantoms with tumours; the tumour masks of phantoms, and of CTs with
  ``unlabelled_labels``, are kept as hidden labels for reports, never trained on.
- **Held-out volumes**: phantoms with tumours, or CTs with label maps (0/1/2), scored in 3-D.

Phantom seeds: hosts 0, 1, ...; unlabelled 100, 101, ...; held-out 200, 201, ... Tumour seeds
derive from the config's seed, so a run's data are the same on resume.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tumorsynth.dataset.sources import case_names, expand_paths, pair_sources
from tumorsynth.engine.case import Case
from tumorsynth.errors import InputError
from tumorsynth.io.case import read_case, read_pair
from tumorsynth.methods.aslseg.config import ASLsegConfig
from tumorsynth.methods.aslseg.slices import SliceBox, Slices, cut, liver_box, window_hu

__all__ = [
    "TEST_SEED",
    "UNLABELLED_SEED",
    "Volume",
    "file_volumes",
    "hosts",
    "labelled_slices",
    "phantom_volumes",
    "test_volumes",
    "unlabelled_slices",
    "unlabelled_volumes",
    "volume_slices",
]

log = logging.getLogger("tumorsynth.aslseg")

UNLABELLED_SEED = 100
"""Seed of the first unlabelled phantom."""
TEST_SEED = 200
"""Seed of the first held-out phantom."""


@dataclass(frozen=True, eq=False)
class Volume:
    """A CT with its liver and, where known, its tumours, in its own geometry.

    Attributes
    ----------
    name : str
    image_hu : (X, Y, Z) float32
    liver : (X, Y, Z) bool
        The liver including its tumours.
    tumour : (X, Y, Z) bool or None
        Ground truth (held-out) or hidden label (unlabelled); None when unknown.
    spacing_mm, origin_mm : 3 floats
    direction : 9 floats
    source : str
        The file or phantom it came from.
    """

    name: str
    image_hu: np.ndarray
    liver: np.ndarray
    tumour: np.ndarray | None
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]
    source: str


def hosts(config: ASLsegConfig) -> list[Case]:
    """The healthy hosts of the labelled set: the config's CTs, or phantoms (seeds 0, 1, ...)."""
    if config.host_images:
        images = expand_paths(config.host_images, "host_images")
        masks = expand_paths(config.host_masks, "host_masks")
        sources, _ = pair_sources(images, masks, config.organ_label)
        return [read_case(s.image, s.mask, s.organ_label).case for s in sources]
    from tumorsynth.phantom import make_phantom

    return [make_phantom(seed=k, spacing_mm=config.phantom_spacing_mm)
            for k in range(config.n_host_phantoms)]  # fmt: skip


def phantom_volumes(
    seeds: Sequence[int], spacing_mm: float, synth_config, tumour_seed: int, prefix: str
) -> list[Volume]:
    """Phantoms with synthetic tumours (their masks kept as ``tumour``).

    Parameters
    ----------
    seeds : sequence of int
        Phantom seeds.
    spacing_mm : float
        Voxel size, mm.
    synth_config
        Synthesis config of the tumours.
    tumour_seed : int
        Base seed of the tumours (phantom ``k`` gets ``[tumour_seed, k]``).
    prefix : str
        Names are ``<prefix><seed>``.
    """
    from tumorsynth.engine.pipeline import synthesize
    from tumorsynth.phantom import make_phantom

    out = []
    for seed in seeds:
        case = make_phantom(seed=int(seed), spacing_mm=spacing_mm)
        draw = int(np.random.SeedSequence([tumour_seed, int(seed)]).generate_state(1)[0])
        result = synthesize(case, config=synth_config, seed=draw)
        label = np.asarray(result.label)
        out.append(Volume(
            f"{prefix}{seed}", np.asarray(result.image, np.float32), label > 0, label == 2,
            case.spacing_mm, case.origin_mm, case.direction, case.source,
        ))  # fmt: skip
    return out


def _labelled_file(name: str, ct: Path, label_path: Path) -> Volume:
    """A CT whose label map (0 background, 1 liver, 2 tumour) gives its liver and tumours."""
    volume, label, _ = read_pair(ct, label_path)
    label = np.asarray(label)
    if not (label >= 1).any():
        raise InputError(f"{label_path}: the label map has no liver (no voxel >= 1)")
    geometry = (volume.spacing_mm, volume.origin_mm, volume.direction)
    return Volume(name, volume.array.astype(np.float32), label >= 1, label == 2, *geometry, str(ct))


def _masked_file(source, label_path: Path | None) -> Volume:
    """A CT with its liver mask (and, where given, a label map whose 2 is tumour)."""
    case = read_case(source.image, source.mask, source.organ_label).case
    liver = np.asarray(case.organ, bool)
    tumour = None
    if label_path is not None:
        tumour = np.asarray(read_pair(source.image, label_path)[1]) == 2
        liver = liver | tumour
    geometry = (case.spacing_mm, case.origin_mm, case.direction)
    return Volume(source.name, np.asarray(case.image, np.float32), liver, tumour, *geometry,
                  source.image)  # fmt: skip


def file_volumes(
    images: Sequence[str],
    masks: Sequence[str] | None,
    labels: Sequence[str] | None,
    organ_label: int | None,
    what: str,
) -> list[Volume]:
    """CTs with their liver (a mask per CT, or the label map's values >= 1 when ``masks`` is
    None) and tumours (``labels == 2``, where label maps are given).

    Raises
    ------
    InputError
        A CT without a liver mask, unreadable files, a mask on another region, an empty liver;
        the message names the file.
    """
    paths = expand_paths(images, what)
    if not paths:
        raise InputError(f"{what}: no CT found")
    label_paths = expand_paths(labels, f"{what} labels") if labels else []
    if label_paths and len(label_paths) != len(paths):
        raise InputError(f"{what}: {len(paths)} CTs but {len(label_paths)} label maps")
    if masks is None:
        names = case_names(paths, strip_channel=True)
        return [
            _labelled_file(n, ct, lab) for n, ct, lab in zip(names, paths, label_paths, strict=True)
        ]
    sources, _ = pair_sources(paths, expand_paths(masks, f"{what} masks"), organ_label)
    return [_masked_file(s, label_paths[k] if label_paths else None) for k, s in enumerate(sources)]


def unlabelled_volumes(config: ASLsegConfig) -> list[Volume]:
    """The unlabelled set's volumes: the config's CTs, then its phantoms."""
    out = []
    if config.unlabelled_images:
        labels = config.unlabelled_labels or None
        out += file_volumes(config.unlabelled_images, config.unlabelled_masks, labels,
                            config.organ_label, "unlabelled_images")  # fmt: skip
    seeds = range(UNLABELLED_SEED, UNLABELLED_SEED + config.n_unlabelled_phantoms)
    out += phantom_volumes(seeds, config.phantom_spacing_mm, config.phantom_synth_config,
                           config.seed + 1, "unlabelled_phantom")  # fmt: skip
    if not out:
        raise InputError("no unlabelled scans: set unlabelled_images or n_unlabelled_phantoms")
    return out


def test_volumes(config: ASLsegConfig) -> list[Volume]:
    """The held-out volumes of the ablation: the config's labelled CTs, then its phantoms."""
    out = []
    if config.test_images:
        out += file_volumes(config.test_images, None, config.test_labels, None, "test_images")
    seeds = range(TEST_SEED, TEST_SEED + config.n_test_phantoms)
    out += phantom_volumes(seeds, config.phantom_spacing_mm, config.phantom_synth_config,
                           config.seed + 2, "test_phantom")  # fmt: skip
    return out


def volume_slices(
    volume: Volume, config: ASLsegConfig, *, min_liver_px: int = 1, stride: int = 1
) -> tuple[Slices, SliceBox]:
    """A volume's liver slices (every ``stride``-th of those with ``min_liver_px`` liver pixels at
    ``slice_size``) and the box they were cut from."""
    box = liver_box(volume.liver, volume.spacing_mm, margin_mm=config.margin_mm,
                    source=volume.source)  # fmt: skip
    size = config.slice_size
    liver = cut(volume.liver, box, size, mask=True)
    keep = np.flatnonzero(liver.sum(axis=(1, 2)) >= min_liver_px)[::stride]
    if not keep.size:
        raise InputError(f"{volume.source}: no slice holds {min_liver_px} liver pixels")
    box = SliceBox(box.lo_vox, box.size_vox, tuple(box.z[k] for k in keep))
    image = window_hu(cut(volume.image_hu, box, size), config.window_hu)
    known = volume.tumour is not None
    tumour = cut(volume.tumour, box, size, mask=True) if known else np.zeros_like(liver[keep])
    ids = np.array([f"{volume.name}:{z}" for z in box.z])
    slices = Slices(image, liver[keep], tumour & liver[keep], np.full(len(keep), known), ids)
    return slices, box


def unlabelled_slices(config: ASLsegConfig, volumes: Sequence[Volume]) -> Slices:
    """The unlabelled set :math:`U` (hidden labels kept in ``tumour`` where known)."""
    parts = [volume_slices(v, config, min_liver_px=config.min_liver_px,
                           stride=config.slice_stride)[0] for v in volumes]  # fmt: skip
    return Slices.concat(parts, config.slice_size)


def _stream_volume(host: Case, config: ASLsegConfig, seed: int, index: int) -> Volume:
    """The host's liver box (whole liver in z) with tumours, through the synthetic stream."""
    from tumorsynth.stream import TumorStream

    organ = np.asarray(host.organ, bool)
    box = liver_box(organ, host.spacing_mm, margin_mm=config.margin_mm, source=str(host.source))
    lo = (*box.lo_vox, box.z[0])
    size = (*box.size_vox, box.z[-1] - box.z[0] + 1)
    stream = TumorStream([host], patch_size=size, config=config.synth_config, seed=config.seed)
    item = stream.replay(0, lo, seed)
    label = item["label"][0].numpy()
    return Volume(
        f"synthetic{index}", item["image"][0].numpy(), label > 0, label == 2, host.spacing_mm,
        host.origin_mm, host.direction, f"{host.source} crop {lo} tumour seed {seed}",
    )  # fmt: skip


def labelled_slices(config: ASLsegConfig, host_cases: Sequence[Case]) -> tuple[Slices, list[dict]]:
    """The labelled set :math:`L_0`: ``n_labelled_slices`` slices of ``n_labelled_volumes``
    synthetic liver boxes, ``tumour_fraction`` of them with tumour.

    Returns
    -------
    slices : Slices
    record : list of dict
        Per synthetic volume: host, crop position and tumour seed (replayable with
        :meth:`TumorStream.replay <tumorsynth.stream.TumorStream.replay>`).
    """
    rng = np.random.default_rng([config.seed, 7])
    parts, record = [], []
    for k in range(config.n_labelled_volumes):
        host = k % len(host_cases)
        seed = int(rng.integers(2**63))
        volume = _stream_volume(host_cases[host], config, seed, k)
        parts.append(volume_slices(volume, config, min_liver_px=config.min_liver_px)[0])
        record.append({"volume": volume.name, "host": host, "source": volume.source, "seed": seed})
    pool = Slices.concat(parts, config.slice_size)
    has = pool.tumour.any(axis=(1, 2))
    n_pos = min(round(config.tumour_fraction * config.n_labelled_slices), int(has.sum()))
    n_neg = min(config.n_labelled_slices - n_pos, int((~has).sum()))
    if n_pos + n_neg < config.n_labelled_slices:
        log.warning("labelled set: %d of %d slices (%d with tumour): the synthetic volumes hold "
                    "no more; raise n_labelled_volumes", n_pos + n_neg,
                    config.n_labelled_slices, n_pos)  # fmt: skip
    pick = np.concatenate([rng.choice(np.flatnonzero(has), n_pos, replace=False),
                           rng.choice(np.flatnonzero(~has), n_neg, replace=False)])  # fmt: skip
    return pool.take(np.sort(pick)), record
