r"""Segmenting a volume with agents: episodes that add to one map, then the mask rule.

On a new volume the learner and the competitor play ``rollouts`` episodes, the first from the
liver's centroid and the others from random liver voxels, each until the learner's score passes
:math:`\tau` or ``t_max`` steps (in training the competitor's score ends an episode too; here
only the learner's windows make the map, so a competitor that finds a tumour first would end the
learner's search). The map is kept across the episodes and thresholded by the config's rule
inside the liver. The random-walk baseline plays the same episodes with uniformly random moves for
both agents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3.common.policies import BasePolicy

from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.methods.spars.env import MOVES, SelfPlayWindowEnv
from tumorsynth.methods.spars.vec import learner_obs
from tumorsynth.methods.spars.volumes import WorkVolume

__all__ = ["Actor", "play", "policy_actor", "random_actor"]

Actor = Callable[[dict[str, np.ndarray]], int]
"""A move (0-5) for one agent's observation (``crop``, ``pos``)."""


def policy_actor(policy: BasePolicy, generator: torch.Generator) -> Actor:
    """Moves sampled from ``policy``'s distribution with ``generator`` (not torch's global one)."""
    policy.set_training_mode(False)

    @torch.no_grad()
    def act(obs: dict[str, np.ndarray]) -> int:
        tensor, _ = policy.obs_to_tensor(obs)
        probs = policy.get_distribution(tensor).distribution.probs.float().cpu()
        return int(torch.multinomial(probs.reshape(1, -1), 1, generator=generator))

    return act


def random_actor(rng: np.random.Generator) -> Actor:
    """Uniformly random moves."""
    return lambda obs: int(rng.integers(len(MOVES)))


def play(
    volume: WorkVolume,
    config: SparsConfig,
    scorer: Callable[[np.ndarray], np.ndarray],
    learner: Actor,
    competitor: Actor,
    seed: int,
) -> SelfPlayWindowEnv:
    """Play ``config.rollouts`` episodes on ``volume`` into one map (see the module).

    Returns
    -------
    SelfPlayWindowEnv
        Its ``map_sum`` and ``map_max`` hold the maps; :meth:`~SelfPlayWindowEnv.mask` the mask.
    """
    env = SelfPlayWindowEnv(
        [volume],
        config.window_vox,
        config.step_vox,
        config.tau,
        config.t_max,
        "centroid",
        scorer,
        obs_context=config.obs_context,
        obs_scores=config.obs_scores,
        end_on_competitor=False,
    )
    env.reset(seed=seed)  # seeds the random starts
    for episode in range(config.rollouts):
        env.start = "centroid" if episode == 0 else "random"
        obs, _ = env.reset(options={"volume": 0, "keep_map": episode > 0})
        done = False
        while not done:
            action = [learner(learner_obs(obs)), competitor(learner_obs(obs, competitor=True))]
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    return env
