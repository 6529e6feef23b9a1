"""Vectorised self-play: one classifier call per step, the learner's view, the competitor's
schedule, and stable-baselines3 seeing float32 observations."""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import pytest
import torch
from spars_helpers import CountingScorer, box_volume, mean_scorer, one_thread, tiny_config  # noqa: F401 (one_thread: a fixture)
from stable_baselines3.common.callbacks import BaseCallback

from tumorsynth.methods.spars.agents import train_agents
from tumorsynth.methods.spars.env import SelfPlayWindowEnv
from tumorsynth.methods.spars.selfplay import CompetitorSchedule, pfsp_index
from tumorsynth.methods.spars.vec import ScoredVecEnv, make_scored_vec_env

W = (6, 5, 4)


def env_fn(**kw):
    args = {"tau": 0.6, "t_max": 4, "start": "random", "obs_scores": True, **kw}
    return partial(SelfPlayWindowEnv, [box_volume(seed=0), box_volume(seed=1)], W, 2, **args)


def test_every_step_scores_all_windows_in_one_classifier_call():
    scorer = CountingScorer()
    wrapper = make_scored_vec_env([env_fn()] * 4, scorer, seed=0)
    wrapper.reset()
    for _ in range(10):
        wrapper.step(np.zeros(4, dtype=np.int64))
    assert scorer.sizes == [4 * 14] * 10  # 4 envs x (2 windows + 2 x 6 neighbours), one call each


def test_the_batched_step_matches_each_env_stepping_alone():
    venv = ScoredVecEnv([env_fn()] * 3, mean_scorer)
    venv.seed(5)
    venv.reset()
    alone = [env_fn(scorer=mean_scorer)() for _ in range(3)]
    for k, env in enumerate(alone):
        env.reset(seed=5 + k)
    rng = np.random.default_rng(0)
    for _ in range(12):
        actions = rng.integers(0, 6, size=(3, 2))
        venv.step_async(actions)
        _, rewards, dones, _ = venv.step_wait()
        for k, env in enumerate(alone):
            _, r, term, trunc, _ = env.step(actions[k])
            assert r == rewards[k] and (term or trunc) == dones[k]
            if term or trunc:
                env.reset()
    for env, batched in zip(alone, venv.envs, strict=True):
        np.testing.assert_array_equal(env.map_sum, batched.unwrapped.map_sum)


def test_the_learner_sees_only_its_own_view_even_in_terminal_observations():
    wrapper = make_scored_vec_env([env_fn(t_max=2)] * 2, mean_scorer, seed=0)
    obs = wrapper.reset()
    assert set(obs) == {"crop", "pos", "nbr"} and set(wrapper.observation_space.spaces) == set(obs)
    infos = []
    for _ in range(2):
        *_, step_infos = wrapper.step(np.zeros(2, dtype=np.int64))
        infos += step_infos
    terminal = [i["terminal_observation"] for i in infos if "terminal_observation" in i]
    assert len(terminal) == 2 and all(set(t) == {"crop", "pos", "nbr"} for t in terminal)


class _Record(BaseCallback):
    """Which competitor played each step."""

    def __init__(self):
        super().__init__()
        self.versions: list[tuple[int, int]] = []

    def _on_step(self) -> bool:
        self.versions.append((self.num_timesteps, self.training_env.version))
        return True


@pytest.mark.parametrize("mode", ["latest", "pool"])
def test_the_competitor_changes_only_between_rollouts(tmp_path, mode):
    cfg = tiny_config(
        tmp_path, n_envs=2, ppo_n_steps=8, ppo_batch_size=16, ppo_epochs=1, ppo_steps=96,
        competitor=mode, competitor_every=16, pool_size=3, window_vox=list(W), t_max=5,
    )  # fmt: skip
    record = _Record()
    agents = train_agents(cfg, mean_scorer, [box_volume()], progress=False, callbacks=[record])
    steps = record.versions
    rollout = cfg.ppo_n_steps * cfg.n_envs
    changes = [t for (t, v), (_, w) in itertools.pairwise(steps) if w != v]
    assert len(changes) >= 2, "the competitor hardly changed"
    assert all(t % rollout == 0 for t in changes), changes  # only across a rollout boundary
    assert agents.model.num_timesteps == 96
    if mode == "pool":
        assert 1 <= len(agents.schedule.pool) <= 3


def test_sb3_stores_the_observations_as_float32_without_rounding(tmp_path):
    cfg = tiny_config(
        tmp_path, n_envs=2, ppo_n_steps=8, ppo_batch_size=16, ppo_epochs=1, ppo_steps=16,
        window_vox=list(W), t_max=5,
    )  # fmt: skip
    agents = train_agents(cfg, mean_scorer, [box_volume()], progress=False)
    stored = agents.model.rollout_buffer.observations
    assert all(v.dtype == np.float32 for v in stored.values())
    crops = stored["crop"]
    assert np.any(
        (crops > 0.01) & (crops < 0.99) & (np.abs(crops * 255 - np.round(crops * 255)) > 1e-3)
    )
    space = agents.model.observation_space
    assert all(s.dtype == np.float32 for s in space.spaces.values())


def test_pfsp_draws_mid_aged_opponents_most_and_stays_in_the_pool():
    rng = np.random.default_rng(0)
    draws = np.array([pfsp_index(8, rng) for _ in range(4000)])
    counts = np.bincount(draws, minlength=8)
    assert draws.min() >= 0 and draws.max() <= 7
    assert counts.argmax() in (3, 4) and counts[3] + counts[4] > counts[0] + counts[7]
    assert pfsp_index(1, rng) == 0


def test_the_schedule_refreshes_after_every_steps_and_keeps_the_last_snapshots():
    state = {"w": torch.zeros(1)}
    latest = CompetitorSchedule("latest", every=10, pool_size=2, seed=0)
    assert latest.at_rollout_end(8, state) is None
    assert latest.at_rollout_end(12, state) is not None and latest.at_rollout_end(16, state) is None
    pool = CompetitorSchedule("pool", every=4, pool_size=2, seed=0)
    assert pool.at_rollout_start() is None
    for t in (4, 8, 12):
        assert pool.at_rollout_end(t, {"w": torch.full((1,), float(t))}) is None
    assert [float(s["w"]) for s in pool.pool] == [8.0, 12.0]
    assert float(pool.at_rollout_start()["w"]) in (8.0, 12.0)
