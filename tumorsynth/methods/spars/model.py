r"""A trained SPARS run as one object: its config, classifier and agents, and the tumour mask of a
volume by SPARS or by any baseline.

:func:`load_run` reads a ``tumorsynth spars train`` folder (``config.json``,
``classifier/checkpoints/best.pt``, ``agents/last.zip``); :meth:`SparsModel.tumour_mask` gives the
mask of one :class:`~tumorsynth.methods.spars.volumes.WorkVolume` on its liver's box.

========================  ==========================================================================
method                    the mask
========================  ==========================================================================
``spars``                 the agents' map (amortised agents, or agents learnt on this volume alone
                          under the ``per_volume`` protocol), by the config's mask rule
``random_walk``           the same episodes with random moves, the same rule
``sliding_window``        the exhaustive map: its maximum (rule ``max``) or mean (else) per voxel
``gradcam``               score-weighted Grad-CAM of the classifier
========================  ==========================================================================

Every mask is thresholded at ``mask_threshold`` and restricted to the liver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tumorsynth.errors import InputError
from tumorsynth.methods.spars.agents import load_agents, torch_device, train_agents, use_threads
from tumorsynth.methods.spars.baselines import gradcam_map, sliding_window_map
from tumorsynth.methods.spars.classifier import WindowScorer, load_classifier
from tumorsynth.methods.spars.config import SparsConfig, load_spars_config
from tumorsynth.methods.spars.infer import play, policy_actor, random_actor
from tumorsynth.methods.spars.volumes import WorkVolume

__all__ = ["GRADCAM_LAYER", "METHODS", "SparsModel", "load_run"]

METHODS = ("spars", "random_walk", "sliding_window", "gradcam")
"""What :meth:`SparsModel.tumour_mask` can run."""

GRADCAM_LAYER = "net.layer_1"
"""The classifier's layer Grad-CAM weighs (the second block: windows / 4 per axis)."""


@dataclass
class SparsModel:
    """A trained run (see the module).

    Attributes
    ----------
    config : SparsConfig
    classifier : torch.nn.Module
    scorer : WindowScorer
    policy : stable_baselines3 policy or None
        The amortised agents' policy (None under the ``per_volume`` protocol).
    device : torch.device
    """

    config: SparsConfig
    classifier: nn.Module
    scorer: WindowScorer
    policy: object | None
    device: torch.device

    def tumour_mask(self, volume: WorkVolume, method: str = "spars", seed: int = 0) -> np.ndarray:
        """The tumour mask of ``volume`` on its box by ``method`` (see the module):
        (X, Y, Z) uint8, inside the liver."""
        cfg = self.config
        if method in ("spars", "random_walk"):
            if method == "spars":
                learner = self._policy_for(volume)
                actor = policy_actor(learner, torch.Generator().manual_seed(seed))
            else:
                actor = random_actor(np.random.default_rng(seed))
            env = play(volume, cfg, self.scorer, actor, actor, seed)
            return env.mask(cfg.mask_rule, cfg.mask_threshold)
        if method == "sliding_window":
            map_max, map_mean = sliding_window_map(
                volume, self.scorer, cfg.window_vox, cfg.step_vox
            )
            chosen = map_max if cfg.mask_rule == "max" else map_mean
        elif method == "gradcam":
            chosen = gradcam_map(
                volume, self.classifier, cfg.window_vox, GRADCAM_LAYER, self.device
            )
        else:
            raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        return ((chosen > cfg.mask_threshold) & (volume.liver > 0)).astype(np.uint8)

    def _policy_for(self, volume: WorkVolume):
        """The amortised policy, or (``per_volume``) one learnt on ``volume`` alone (seeded by the
        config's ``seed``, as in training)."""
        if self.config.protocol == "amortised":
            if self.policy is None:
                raise InputError("this run has no trained agents (agents/last.zip is missing)")
            return self.policy
        cfg = self.config
        agents = train_agents(
            cfg, self.scorer, [volume], steps=cfg.tt_steps, folder=None, progress=False
        )
        return agents.model.policy


def load_run(run_dir: str | Path, device: str = "auto") -> SparsModel:
    """Load a ``tumorsynth spars train`` run folder (torch's CPU threads set to the run's
    ``threads`` when it has them).

    Raises
    ------
    InputError
        A folder that holds no SPARS run, a classifier checkpoint of another architecture than
        the run's config, or (amortised protocol) missing agents.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise InputError(f"{run_dir}: not a SPARS run (no config.json; train one first)")
    config = load_spars_config(json.loads(config_path.read_text()))
    use_threads(config)
    dev = torch_device(device if device != "auto" else config.device)
    classifier, _ = load_classifier(
        run_dir / "classifier" / "checkpoints" / "best.pt", config, device=dev
    )
    policy = None
    if config.protocol == "amortised":
        policy = load_agents(run_dir / "agents" / "last.zip", device=dev).model.policy
    return SparsModel(config, classifier, WindowScorer(classifier, dev), policy, dev)
