r"""Learning the agents with stable-baselines3 PPO, in one ``learn()`` call for the whole run.

:func:`train_agents` builds ``n_envs`` :class:`~tumorsynth.methods.spars.env.SelfPlayWindowEnv`
over the given volumes in a :class:`~tumorsynth.methods.spars.vec.ScoredVecEnv` (one classifier
call per step), the :class:`~tumorsynth.methods.spars.vec.SelfPlayWrapper` (one competitor call
per step) and ``VecMonitor`` outermost, then PPO with the 3-D CNN policy
(:mod:`~tumorsynth.methods.spars.policy`) learns for ``ppo_steps`` environment steps. The
competitor follows the config's schedule (:mod:`~tumorsynth.methods.spars.selfplay`).

A run folder (``<out_dir>/agents``) gets ``last.zip`` (the SB3 model) and ``selfplay.pt`` (the
competitor's weights, the pool, the draws' states) every ``agent_save_every`` steps, at the end
and on Ctrl-C, and ``tensorboard/``; ``resume`` continues from them with
``learn(reset_num_timesteps=False)`` (a second ``learn()`` with the default would reset the
environments and the schedules: library-fit.md §1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecMonitor
from tqdm.auto import tqdm

from tumorsynth.io.volume import write_atomic
from tumorsynth.methods.spars.config import SparsConfig
from tumorsynth.methods.spars.env import SelfPlayWindowEnv
from tumorsynth.methods.spars.policy import policy_kwargs
from tumorsynth.methods.spars.selfplay import CompetitorSchedule, SelfPlayCallback
from tumorsynth.methods.spars.vec import SelfPlayWrapper, make_scored_vec_env
from tumorsynth.methods.spars.volumes import WorkVolume

__all__ = [
    "Agents",
    "build_envs",
    "load_agents",
    "torch_device",
    "train_agents",
    "use_threads",
]

log = logging.getLogger("tumorsynth.methods.spars")

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class Agents:
    """A PPO model with its self-play state.

    Attributes
    ----------
    model : PPO
    wrapper : SelfPlayWrapper or None
        The environments it learnt on (None for a loaded model).
    schedule : CompetitorSchedule or None
    """

    model: PPO
    wrapper: SelfPlayWrapper | None = None
    schedule: CompetitorSchedule | None = None


def use_threads(config: SparsConfig) -> None:
    """Set torch's CPU threads to ``config.threads`` when it is given (on a shared CPU, one thread
    per process avoids oversubscription: library-fit.md §1)."""
    if config.threads:
        torch.set_num_threads(config.threads)


def torch_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else the CPU; other names as they are."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_envs(
    volumes: Sequence[WorkVolume], config: SparsConfig, scorer: Scorer, seed: int
) -> SelfPlayWrapper:
    """``n_envs`` environments over ``volumes``, scored in one call per step, with self-play."""
    make = partial(
        SelfPlayWindowEnv, list(volumes), config.window_vox, config.step_vox, config.tau,
        config.t_max, config.start, obs_context=config.obs_context, obs_scores=config.obs_scores,
    )  # fmt: skip
    return make_scored_vec_env([make] * config.n_envs, scorer, seed)


def _new_model(config: SparsConfig, env, device: torch.device, tensorboard: Path | None) -> PPO:
    return PPO(
        "MultiInputPolicy", env,
        learning_rate=config.ppo_lr, n_steps=config.ppo_n_steps,
        batch_size=config.ppo_batch_size, n_epochs=config.ppo_epochs, gamma=config.ppo_gamma,
        gae_lambda=config.ppo_gae_lambda, clip_range=config.ppo_clip_range,
        ent_coef=config.ppo_ent_coef, policy_kwargs=policy_kwargs(config),
        tensorboard_log=None if tensorboard is None else str(tensorboard),
        seed=config.seed, device=device, verbose=0,
    )  # fmt: skip


class _Progress(BaseCallback):
    """A tqdm bar over the run's environment steps."""

    def __init__(self, total: int, enabled: bool) -> None:
        super().__init__()
        self.total, self.enabled = total, enabled

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, initial=self.model.num_timesteps, desc="agents", unit="step",
                        disable=not self.enabled, dynamic_ncols=True)  # fmt: skip

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class _Saver(BaseCallback):
    """Saves the agents every ``every`` environment steps (at a rollout's end)."""

    def __init__(self, save: Callable[[], None], every: int) -> None:
        super().__init__()
        self.save, self.every, self.last = save, every, 0

    def _on_training_start(self) -> None:
        self.last = self.model.num_timesteps

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self.last >= self.every:
            self.save()
            self.last = self.num_timesteps

    def _on_step(self) -> bool:
        return True


def save_agents(folder: Path, agents: Agents) -> None:
    """Write ``last.zip`` and ``selfplay.pt`` in ``folder``, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "last.zip", lambda tmp: agents.model.save(tmp))
    wrapper, schedule = agents.wrapper, agents.schedule
    state = {
        "schedule": schedule.state_dict() if schedule else None,
        "competitor": None if wrapper is None or wrapper.competitor is None
        else {k: v.cpu() for k, v in wrapper.competitor.state_dict().items()},
        "generator": None if wrapper is None else wrapper.generator.get_state(),
        "num_timesteps": int(agents.model.num_timesteps),
    }  # fmt: skip
    write_atomic(folder / "selfplay.pt", lambda tmp: torch.save(state, tmp))


def _restore(folder: Path, agents: Agents) -> None:
    state = torch.load(folder / "selfplay.pt", map_location="cpu", weights_only=False)
    if agents.schedule is not None and state["schedule"] is not None:
        agents.schedule.load_state_dict(state["schedule"])
    if agents.wrapper is not None:
        if state["competitor"] is not None:
            device = agents.model.policy.device
            comp = {k: v.to(device) for k, v in state["competitor"].items()}
            agents.wrapper.set_competitor(agents.model.policy, comp)
        if state["generator"] is not None:
            agents.wrapper.generator.set_state(state["generator"])


def train_agents(
    config: SparsConfig,
    scorer: Scorer,
    volumes: Sequence[WorkVolume],
    *,
    steps: int | None = None,
    folder: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[BaseCallback] = (),
) -> Agents:
    """Learn the agents on ``volumes`` with PPO (see the module).

    Parameters
    ----------
    config : SparsConfig
    scorer : callable
        The classifier's :class:`~tumorsynth.methods.spars.classifier.WindowScorer`.
    volumes : sequence of WorkVolume
    steps : int, optional
        Environment steps (default ``config.ppo_steps``).
    folder : Path, optional
        Where the agents are saved (None: nowhere, e.g. per-volume learning).
    resume : bool
        Continue from ``folder``'s ``last.zip`` and ``selfplay.pt``.
    progress : bool
        Show a progress bar.
    callbacks : sequence of BaseCallback
        More SB3 callbacks, run after the self-play schedule's.
    """
    total = config.ppo_steps if steps is None else int(steps)
    use_threads(config)
    resume = resume and folder is not None
    agents = _build(config, scorer, volumes, folder, resume)
    hooks: list[BaseCallback] = [
        SelfPlayCallback(agents.wrapper, agents.schedule),
        _Progress(total, progress),
    ]
    if folder is not None:
        hooks.append(_Saver(partial(save_agents, folder, agents), config.agent_save_every))
    model = agents.model
    remaining = total - int(model.num_timesteps)
    try:
        if remaining > 0:
            model.learn(remaining, callback=CallbackList([*hooks, *callbacks]),
                        reset_num_timesteps=not resume, tb_log_name="ppo")  # fmt: skip
    except KeyboardInterrupt:
        if folder is not None and model.num_timesteps:
            save_agents(folder, agents)
            log.info("interrupted at step %d: saved %s (continue with --resume)",
                     model.num_timesteps, folder)  # fmt: skip
        raise
    if folder is not None:
        save_agents(folder, agents)
    return agents


def _build(
    config: SparsConfig,
    scorer: Scorer,
    volumes: Sequence[WorkVolume],
    folder: Path | None,
    resume: bool,
) -> Agents:
    """The environments, a new PPO model (or the saved one, with its self-play state) and the
    competitor's schedule."""
    device = torch_device(config.device)
    wrapper = build_envs(volumes, config, scorer, config.seed)
    env = VecMonitor(wrapper)
    if resume and folder is not None:
        model = PPO.load(folder / "last.zip", env=env, device=device)
    else:
        tensorboard = None if folder is None else folder / "tensorboard"
        model = _new_model(config, env, device, tensorboard)
    schedule = CompetitorSchedule(
        config.competitor, config.competitor_every, config.pool_size, config.seed
    )
    agents = Agents(model, wrapper, schedule)
    if resume and folder is not None:
        _restore(folder, agents)
    return agents


def load_agents(path: Path, device: str | torch.device = "cpu") -> Agents:
    """The trained agents of ``agents/last.zip`` (no environment attached)."""
    from tumorsynth.errors import InputError

    if not Path(path).is_file():
        raise InputError(f"{path}: no such agents file (train them with tumorsynth spars train)")
    try:
        model = PPO.load(path, device=device)
    except Exception as err:  # SB3 raises many types for a damaged or foreign file
        raise InputError(f"{path}: cannot read the agents ({type(err).__name__}: {err})") from None
    return Agents(model)
