"""The test scans of ``tumorsynth bench transfer``: the same for every model of the experiment.

Three kinds of test set, each a list of :class:`EvalScan` (CT in HU, 0/1/2 labels, spacing):

- ``phantom/<config>``: held-out phantoms (``test_phantoms``, seeds no training or validation run
  uses) at the recipe's voxel size, with tumours drawn by synthesis config ``<config>``;
- ``ct/<config>``: healthy CT (``test_ct`` with ``test_ct_masks``) with tumours drawn by
  ``<config>``: real anatomy around the tumours;
- ``labelled``: labelled scans (``labelled_images`` with ``labelled_labels``), real tumours.

Hosts are cropped to the organ's box plus ``crop_margin_mm`` before the tumours go in (as the
robustness benchmark does); each case's tumours come from its own seed, drawn from
(``test_seed``, config, host, case), so adding a config or a host changes no other case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from tumorsynth.bench.cases import Host, load_bench_hosts
from tumorsynth.bench.transfer_config import TransferConfig
from tumorsynth.dataset.sources import expand_paths, pair_sources
from tumorsynth.engine.pipeline import synthesize
from tumorsynth.errors import InputError, PlacementError

__all__ = ["EvalScan", "load_eval_sets", "phantom_spacing_mm"]

#: Tumour draws tried per test case before a host with no room for them is an error.
MAX_DRAWS = 10


@dataclass(frozen=True, eq=False)
class EvalScan:
    """One test case: (X, Y, Z) float32 HU and uint8 labels (0, 1 organ, 2 tumour).

    Attributes
    ----------
    name : str
        ``<host>/<k>`` for synthetic tumours, the file's name for a labelled scan.
    image, label : numpy.ndarray
    spacing_mm : tuple of 3 float
    seed : int or None
        The seed of its tumours (None: real tumours).
    """

    name: str
    image: np.ndarray
    label: np.ndarray
    spacing_mm: tuple[float, float, float]
    seed: int | None = None


def phantom_spacing_mm(cfg: TransferConfig) -> float:
    """The voxel size of the test phantoms: the recipe's ``spacing_mm``, else its phantoms'."""
    recipe = cfg.train_config(next(iter(cfg.configs)), 0, ".")
    return float(recipe.spacing_mm or recipe.phantom_spacing_mm)


def _case_seed(test_seed: int, config_index: int, host_index: int, k: int) -> int:
    words = [test_seed, config_index, host_index, k]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _with_tumours(host: Host, config, seed: int, name: str) -> EvalScan:
    """The host with the tumours of ``seed`` (the next draws where one finds no room or covers
    no voxel)."""
    last: Exception | None = None
    for attempt in range(MAX_DRAWS):
        draw = int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])
        try:
            result = synthesize(host.case, config=config, seed=draw)
        except PlacementError as err:
            last = err
            continue
        if (result.label == 2).any():
            return EvalScan(name, result.image, result.label, host.case.spacing_mm, draw)
        last = PlacementError(f"{host.name}: the tumours cover no voxel centre")
    raise PlacementError(f"{host.name}: no test tumours after {MAX_DRAWS} draws ({last})")


def _synthetic_sets(cfg: TransferConfig, hosts: dict[str, list[Host]], progress: bool):
    sets: dict[str, list[EvalScan]] = {}
    names = list(cfg.configs)
    total = sum(len(h) for h in hosts.values()) * len(cfg.test_configs) * cfg.test_cases_per_host
    with tqdm(total=total, desc="test scans", unit="case", disable=not progress) as bar:
        for kind, host_list in hosts.items():
            for config_name in cfg.test_configs:
                scans = []
                for h, host in enumerate(host_list):
                    for k in range(cfg.test_cases_per_host):
                        seed = _case_seed(cfg.test_seed, names.index(config_name), h, k)
                        scans.append(
                            _with_tumours(host, cfg.configs[config_name], seed, f"{host.name}/{k}")
                        )
                        bar.update()
                sets[f"{kind}/{config_name}"] = scans
    return sets


def _labelled(cfg: TransferConfig) -> list[EvalScan]:
    from tumorsynth.io.case import read_pair

    images = expand_paths(cfg.labelled_images, "labelled_images")
    labels = expand_paths(cfg.labelled_labels, "labelled_labels")
    sources, _ = pair_sources(images, labels, None, ("labelled_images", "labelled_labels"))
    out = []
    for source in sources:
        volume, label, _ = read_pair(source.image, source.mask)
        values = set(np.unique(label).tolist())
        if not values <= {0, 1, 2}:
            raise InputError(
                f"{source.mask}: labelled scans need 0 background, 1 organ, 2 tumour; found "
                f"{sorted(values)[:8]}"
            )
        image = volume.array.astype(np.float32)
        out.append(EvalScan(source.name, image, label.astype(np.uint8), volume.spacing_mm))
    return out


def load_eval_sets(cfg: TransferConfig, progress: bool = True) -> dict[str, list[EvalScan]]:
    """Every test set of ``cfg``, by name (see the module), in a fixed order.

    Raises
    ------
    InputError
        Missing or unreadable files, labels other than 0, 1, 2 (naming the file).
    PlacementError
        A host with no room for its test tumours.
    """
    hosts: dict[str, list[Host]] = {}
    margin = cfg.crop_margin_mm
    if cfg.test_phantoms:
        hosts["phantom"] = load_bench_hosts(
            None, margin_mm=margin, phantom_seeds=cfg.test_phantoms,
            phantom_spacing_mm=phantom_spacing_mm(cfg),
        )  # fmt: skip
    if cfg.test_ct:
        images = expand_paths(cfg.test_ct, "test_ct")
        masks = expand_paths(cfg.test_ct_masks, "test_ct_masks")
        sources, _ = pair_sources(images, masks, cfg.organ_label, ("test_ct", "test_ct_masks"))
        hosts["ct"] = load_bench_hosts(sources, margin_mm=margin)
    sets = _synthetic_sets(cfg, hosts, progress)
    if cfg.labelled_images:
        sets["labelled"] = _labelled(cfg)
    return sets
