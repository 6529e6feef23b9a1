r"""SPARS: tumour localisation from image-level labels by self-play reinforcement learning.

After Tan, Hu and Saeed (MIUA 2025): a presence classifier learns "tumour in this window: yes /
no" from image-level labels; two agents move 3-D windows over the liver and compete for its score;
the scores the learner collects form a map, thresholded into the tumour mask. Here the labels
come from the synthetic stream (each positive crop paired with the same crop before insertion),
optionally with the user's scans labelled per scan, and the agents learn with stable-baselines3
PPO in a gymnasium environment. See ``docs/spars.md``.

- :func:`train_spars` (``tumorsynth spars train``): the classifier, then the agents;
- :func:`segment_files` (``tumorsynth spars segment``): label maps of CTs in their geometry;
- :func:`load_run`, :class:`SparsModel`: a trained run, SPARS and its baselines on a volume;
- :func:`compare_methods`: SPARS and the baselines in one evaluation (the results table);
- :class:`SelfPlayWindowEnv`, :class:`ScoredVecEnv`, :class:`SelfPlayWrapper`: the game.

Needs the ``train`` and ``spars`` extras (torch, MONAI, stable-baselines3, gymnasium).
"""

from tumorsynth.methods.spars.compare import compare_methods, ct_cases, phantom_cases
from tumorsynth.methods.spars.config import SparsConfig, load_spars_config
from tumorsynth.methods.spars.env import SelfPlayWindowEnv, mask_from_maps
from tumorsynth.methods.spars.model import METHODS, SparsModel, load_run
from tumorsynth.methods.spars.run import SparsRun, train_spars
from tumorsynth.methods.spars.segment import segment_files, segment_volume
from tumorsynth.methods.spars.vec import ScoredVecEnv, SelfPlayWrapper

__all__ = [
    "METHODS",
    "ScoredVecEnv",
    "SelfPlayWindowEnv",
    "SelfPlayWrapper",
    "SparsConfig",
    "SparsModel",
    "SparsRun",
    "compare_methods",
    "ct_cases",
    "load_run",
    "load_spars_config",
    "mask_from_maps",
    "phantom_cases",
    "segment_files",
    "segment_volume",
    "train_spars",
]
