r"""The agents' policy: stable-baselines3's ``MultiInputPolicy`` on a small 3-D CNN.

:class:`WindowExtractor` turns the learner's observation into features: its window ``crop`` through
two stride-2 3-D convolutions with ReLU and average pooling to 2 x 2 x 2 cells (which side of the
window holds what), with the cursor ``pos`` appended, through one linear layer with ReLU to
``features_dim``; with ``obs_scores``, the six moves' gains in the classifier's score ``nbr`` are
appended as they are, so the policy and value heads (SB3's, one hidden layer each) see them
directly. The authors' code feeds the flattened 256 x 256 x 180 window to an MLP (about 1.5
billion first-layer weights); this network has about thirty thousand.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from tumorsynth.methods.spars.config import SparsConfig

__all__ = ["WindowExtractor", "policy_kwargs"]


class WindowExtractor(BaseFeaturesExtractor):
    """3-D CNN features of a window and its cursor (see the module).

    Parameters
    ----------
    observation_space : gymnasium.spaces.Dict
        With ``crop`` (1, X, Y, Z) and ``pos`` (3,).
    features_dim : int
    """

    def __init__(self, observation_space: spaces.Dict, features_dim: int = 64) -> None:
        n_gains = int(observation_space["nbr"].shape[0]) if "nbr" in observation_space.spaces else 0
        super().__init__(observation_space, features_dim + n_gains)
        self.cnn = nn.Sequential(
            nn.Conv3d(1, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv3d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(2),
            nn.Flatten(),
        )
        n_pos = int(observation_space["pos"].shape[0])
        self.head = nn.Sequential(nn.Linear(32 * 8 + n_pos, features_dim), nn.ReLU())
        self.gains = n_gains > 0

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        seen = self.head(torch.cat([self.cnn(observations["crop"]), observations["pos"]], dim=1))
        return torch.cat([seen, observations["nbr"]], dim=1) if self.gains else seen


def policy_kwargs(config: SparsConfig) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` of the agents: the extractor and one hidden layer per head."""
    width = config.features_dim
    return {
        "features_extractor_class": WindowExtractor,
        "features_extractor_kwargs": {"features_dim": width},
        "net_arch": {"pi": [width], "vf": [width]},
    }
