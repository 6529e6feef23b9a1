r"""Who the competitor is: the latest learner (SPARS) or a draw from a pool of past ones (RLSP).

- ``"latest"`` (the paper): a frozen copy of the learner, refreshed at the end of a rollout once
  ``every`` environment steps have passed since the last refresh (the paper refreshes every 32).
- ``"pool"`` (RLSP's prioritised fictitious self-play): at the end of a rollout, once ``every``
  steps have passed, the learner's weights join a pool of the last ``pool_size`` snapshots
  (oldest first); at the start of each rollout the competitor is snapshot
  :math:`h = \mathrm{clip}(\lfloor \mathcal{N}(H/2, H/4) \rfloor, 0, H - 1)` of the :math:`H` held,
  so mid-aged opponents are met most.

Changes happen only between rollouts (:class:`SelfPlayCallback` acts in ``_on_rollout_start`` and
``_on_rollout_end``), so one PPO update never mixes two competitors. The competitor starts as a
copy of the untrained learner (the authors' code starts with a dummy that always moves the same
way).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from tumorsynth.methods.spars.vec import SelfPlayWrapper

__all__ = ["CompetitorSchedule", "SelfPlayCallback", "pfsp_index"]


def pfsp_index(pool_size: int, rng: np.random.Generator) -> int:
    r"""RLSP's draw of an opponent among ``pool_size`` snapshots (oldest first):
    :math:`\mathrm{clip}(\lfloor \mathcal{N}(H/2, H/4) \rfloor, 0, H - 1)`."""
    if pool_size < 1:
        raise ValueError("pfsp_index: the pool is empty")
    draw = np.floor(rng.normal(pool_size / 2, pool_size / 4))
    return int(np.clip(draw, 0, pool_size - 1))


class CompetitorSchedule:
    """When the competitor changes, and to what (see the module); plain data, saved with the agents.

    Parameters
    ----------
    mode : str
        ``"latest"`` or ``"pool"``.
    every : int
        Environment steps between refreshes (or snapshots).
    pool_size : int
        Snapshots kept (``"pool"``).
    seed : int
        Seed of the pool draws.
    """

    def __init__(self, mode: str, every: int, pool_size: int, seed: int) -> None:
        if mode not in ("latest", "pool"):
            raise ValueError(f"competitor must be 'latest' or 'pool', got {mode!r}")
        self.mode, self.every, self.pool_size = mode, int(every), int(pool_size)
        self.rng = np.random.default_rng(seed)
        self.last_timestep = 0
        self.pool: list[dict[str, torch.Tensor]] = []

    def at_rollout_end(
        self, num_timesteps: int, learner_state: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor] | None:
        """The weights the competitor takes now (``"latest"``), or None; a pool snapshot is taken
        here when one is due."""
        if num_timesteps - self.last_timestep < self.every:
            return None
        self.last_timestep = num_timesteps
        snapshot = {k: v.detach().clone().cpu() for k, v in learner_state.items()}
        if self.mode == "latest":
            return snapshot
        self.pool = [*self.pool, snapshot][-self.pool_size :]
        return None

    def at_rollout_start(self) -> dict[str, torch.Tensor] | None:
        """The weights the competitor takes for this rollout (``"pool"`` with a pool), or None."""
        if self.mode != "pool" or not self.pool:
            return None
        return self.pool[pfsp_index(len(self.pool), self.rng)]

    def state_dict(self) -> dict[str, Any]:
        """What resuming needs (the pool's weights included)."""
        return {
            "mode": self.mode,
            "last_timestep": self.last_timestep,
            "pool": self.pool,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_timestep = int(state["last_timestep"])
        self.pool = list(state["pool"])
        self.rng.bit_generator.state = state["rng"]


class SelfPlayCallback(BaseCallback):
    """Applies a :class:`CompetitorSchedule` to a :class:`SelfPlayWrapper` between rollouts.

    Attributes
    ----------
    changes : list of int
        ``num_timesteps`` at each change of the competitor.
    """

    def __init__(self, wrapper: SelfPlayWrapper, schedule: CompetitorSchedule) -> None:
        super().__init__()
        self.wrapper, self.schedule = wrapper, schedule
        self.changes: list[int] = []

    def _init_callback(self) -> None:
        if self.wrapper.competitor is None:  # the untrained learner, until the first refresh
            self.wrapper.set_competitor(self.model.policy)

    def _set(self, state: dict[str, torch.Tensor] | None) -> None:
        if state is not None:
            device = self.model.policy.device
            self.wrapper.set_competitor(
                self.model.policy, {k: v.to(device) for k, v in copy.copy(state).items()}
            )
            self.changes.append(self.num_timesteps)

    def _on_rollout_start(self) -> None:
        self._set(self.schedule.at_rollout_start())

    def _on_rollout_end(self) -> None:
        self._set(self.schedule.at_rollout_end(self.num_timesteps, self.model.policy.state_dict()))

    def _on_step(self) -> bool:
        return True
