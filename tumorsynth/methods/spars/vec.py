r"""Vectorised self-play: one classifier call and one competitor call per step for all environments.

- :class:`ScoredVecEnv` is stable-baselines3's :class:`DummyVecEnv` whose step moves every
  environment's windows, scores all of them (2 per environment) in **one** classifier call, then
  settles each environment (reward, map, end, automatic reset).
- :class:`SelfPlayWrapper` is a :class:`VecEnvWrapper` that shows the learner only its own view
  (``crop``, ``pos``, ``nbr``; ``Discrete(6)``) and picks every competitor's move in **one** forward pass of
  a frozen copy of a policy. It rewrites ``terminal_observation`` to the learner's keys (PPO
  bootstraps cut episodes from it) and changes its competitor only when told to, between rollouts
  (:mod:`~tumorsynth.methods.spars.selfplay`).

Both live in the main process: the networks never travel to worker processes, and on a GPU each
step moves only the crops to the device (library-fit.md §1).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from copy import deepcopy

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from tumorsynth.methods.spars.env import MOVES

__all__ = [
    "COMPETITOR_PREFIX",
    "ScoredVecEnv",
    "SelfPlayWrapper",
    "learner_obs",
    "make_scored_vec_env",
]

COMPETITOR_PREFIX = "c_"
"""Base observation keys of the competitor's view start with this; the others are the learner's."""


def learner_obs(obs: dict[str, np.ndarray], competitor: bool = False) -> dict[str, np.ndarray]:
    """The learner's (or, with ``competitor``, the competitor's) view of a base observation."""
    keys = [k for k in obs if not k.startswith(COMPETITOR_PREFIX)]
    prefix = COMPETITOR_PREFIX if competitor else ""
    return {k: obs[prefix + k] for k in keys}


class ScoredVecEnv(DummyVecEnv):
    """Environments in this process whose windows are scored in one ``scorer`` call per step.

    Parameters
    ----------
    env_fns : list of callables
        Each makes one :class:`~tumorsynth.methods.spars.env.SelfPlayWindowEnv`.
    scorer : callable
        (2N, 1, X, Y, Z) float32 crops -> (2N,) scores.
    """

    def __init__(
        self, env_fns: list[Callable[[], gym.Env]], scorer: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        super().__init__(env_fns)
        self.scorer = scorer

    def step_wait(self):
        envs = [env.unwrapped for env in self.envs]
        for env, action in zip(envs, self.actions, strict=True):
            env.move(action)
        scores = np.asarray(self.scorer(np.concatenate([env.to_score() for env in envs])))
        scores = scores.reshape(self.num_envs, -1)
        for i, env in enumerate(envs):
            obs, reward, terminated, truncated, info = env.settle(scores[i])
            self.buf_rews[i], self.buf_infos[i] = reward, info
            self.buf_dones[i] = terminated or truncated
            self.buf_infos[i]["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                self.buf_infos[i]["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            self._save_obs(i, obs)
        return (
            self._obs_from_buf(),
            np.copy(self.buf_rews),
            np.copy(self.buf_dones),
            deepcopy(self.buf_infos),
        )


class SelfPlayWrapper(VecEnvWrapper):
    """The learner's side of the game, with the competitor played inside (see the module).

    Parameters
    ----------
    venv : VecEnv
        A :class:`ScoredVecEnv` (or any VecEnv of ``SelfPlayWindowEnv``).
    seed : int
        Seed of the competitor's action draws (its own generator, not torch's global one).

    Attributes
    ----------
    competitor : BasePolicy or None
        The frozen policy that plays the competitor (None: uniformly random moves).
    version : int
        How many times the competitor was set (tests check when it changes).
    """

    def __init__(self, venv: VecEnv, seed: int = 0) -> None:
        base = venv.observation_space
        obs_space = spaces.Dict(
            {k: v for k, v in base.spaces.items() if not k.startswith(COMPETITOR_PREFIX)}
        )
        super().__init__(
            venv, observation_space=obs_space, action_space=spaces.Discrete(len(MOVES))
        )
        self.generator = torch.Generator().manual_seed(int(seed))
        self.competitor: BasePolicy | None = None
        self.version = 0
        self._c_obs: dict[str, np.ndarray] | None = None

    def set_competitor(self, policy: BasePolicy, state: dict | None = None) -> None:
        """Play the competitor with a frozen copy of ``policy`` (with ``state``'s weights when
        given); call it between rollouts only."""
        if self.competitor is None or type(self.competitor) is not type(policy):
            self.competitor = copy.deepcopy(policy)
        self.competitor.load_state_dict(policy.state_dict() if state is None else state)
        self.competitor.set_training_mode(False)
        self.competitor.requires_grad_(False)
        self.version += 1

    @torch.no_grad()
    def competitor_actions(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Every environment's competitor move, in one batched forward pass (sampled)."""
        n = len(obs["pos"])
        if self.competitor is None:
            return torch.randint(len(MOVES), (n,), generator=self.generator).numpy()
        tensor, _ = self.competitor.obs_to_tensor(obs)
        probs = self.competitor.get_distribution(tensor).distribution.probs.float().cpu()
        return torch.multinomial(probs, 1, generator=self.generator).reshape(-1).numpy()

    def reset(self) -> dict[str, np.ndarray]:
        obs = self.venv.reset()
        self._c_obs = learner_obs(obs, competitor=True)
        return learner_obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        if self._c_obs is None:
            raise RuntimeError("SelfPlayWrapper: reset() before step()")
        theirs = self.competitor_actions(self._c_obs)
        both = np.stack([np.asarray(actions).reshape(-1), theirs], axis=1)
        self.venv.step_async(both)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = learner_obs(info["terminal_observation"])
        self._c_obs = learner_obs(obs, competitor=True)
        return learner_obs(obs), rewards, dones, infos


def make_scored_vec_env(
    env_fns: Sequence[Callable[[], gym.Env]],
    scorer: Callable[[np.ndarray], np.ndarray],
    seed: int,
) -> SelfPlayWrapper:
    """A :class:`SelfPlayWrapper` over a :class:`ScoredVecEnv` of ``env_fns``, seeded."""
    venv = ScoredVecEnv(list(env_fns), scorer)
    venv.seed(seed)
    return SelfPlayWrapper(venv, seed=seed)
