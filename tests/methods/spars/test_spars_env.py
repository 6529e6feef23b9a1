"""The self-play environment: reward, termination, map, clamping, masks, observations."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from spars_helpers import box_volume, mean_scorer, one_thread  # noqa: F401 (one_thread: a fixture)

from tumorsynth.errors import InputError
from tumorsynth.methods.spars.env import MOVES, SelfPlayWindowEnv, mask_from_maps, neighbour_gains

W = (6, 5, 4)


def make_env(**kw) -> SelfPlayWindowEnv:
    args = {"tau": 0.5, "t_max": 5, "start": "centroid", "scorer": mean_scorer, **kw}
    return SelfPlayWindowEnv([box_volume()], W, 2, **args)


@pytest.mark.parametrize(
    ("scores", "reward"),
    [((0.3, 0.3), 1.0), ((0.0, 0.0), 1.0), ((0.31, 0.3), 1.0), ((0.29, 0.3), -1.0)],
)
def test_the_reward_is_plus_one_when_the_learner_scores_at_least_the_competitor(scores, reward):
    env = make_env()
    env.reset(seed=0)
    _, r, *_ = env.settle(scores)
    assert r == reward  # ties go to the learner


def test_the_episode_ends_when_a_score_passes_tau_and_is_cut_at_t_max():
    env = make_env(tau=0.5, t_max=3)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.settle((0.5, 0.1))  # equal to tau: not past it
    assert not terminated and not truncated
    _, _, terminated, truncated, _ = env.settle((0.1, 0.51))  # the competitor's score counts too
    assert terminated and not truncated
    env.reset(seed=0)
    ends = [env.settle((0.2, 0.3))[2:4] for _ in range(3)]
    assert ends == [(False, False), (False, False), (False, True)]
    env.reset(seed=0)
    env.settle((0.1, 0.1))
    env.settle((0.1, 0.1))
    assert env.settle((0.9, 0.1))[2:4] == (True, False)  # tau at T_max: terminated, not cut


def test_the_map_adds_exactly_the_learners_score_over_its_window():
    env = make_env()
    env.reset(seed=0, options={"start": (3, 4, 5)})
    env.cursors[1] = (0, 0, 0)  # the competitor elsewhere: it never writes the map
    env.settle((0.37, 0.9))
    inside = np.zeros(env.volume.shape, bool)
    inside[3:9, 4:9, 5:9] = True
    assert np.all(env.map_sum[inside] == np.float32(0.37)) and not env.map_sum[~inside].any()
    env.settle((0.25, 0.0))
    np.testing.assert_allclose(env.map_sum[inside], 0.62, rtol=1e-6)
    assert np.all(env.map_max[inside] == np.float32(0.37)) and np.all(env.map_count[inside] == 2)
    env.reset(options={"volume": 0, "keep_map": True, "start": (0, 0, 0)})
    assert env.map_sum[inside].max() > 0.6  # kept across episodes of one volume
    env.reset(options={"volume": 0})
    assert not env.map_sum.any()


@pytest.mark.parametrize("move", range(6))
def test_cursors_are_clamped_at_every_face(move):
    env = make_env()
    high = np.asarray(env.volume.shape) - np.asarray(W)
    axis = move // 2
    start = high // 2
    start[axis] = high[axis] if MOVES[move][axis] > 0 else 0  # at the face the move pushes on
    env.reset(seed=0, options={"start": start})
    for _ in range(3):
        env.move((move, move))
    assert np.array_equal(env.cursors[0], start) and np.array_equal(env.cursors[1], start)
    env.reset(seed=0, options={"start": start})
    for _ in range(50):  # from the middle of the free range: it stops at the face, exactly
        env.move((move ^ 1, move ^ 1))
    assert env.cursors[0][axis] == (0 if MOVES[move][axis] > 0 else high[axis])
    assert env.windows().shape == (2, 1, *W)


def test_observations_are_float32_and_in_their_spaces():
    env = make_env(obs_scores=True, obs_context=3)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    for _ in range(4):
        obs, *_ = env.step((0, 3))
        assert all(v.dtype == np.float32 for v in obs.values())
        assert env.observation_space.contains(obs)
    assert obs["crop"].shape == (1, *W) and obs["nbr"].shape == (6,)


def test_neighbour_scores_are_scored_with_the_step_and_tell_which_move_gains():
    env = make_env(obs_scores=True)
    env.reset(seed=0)
    crops = env.to_score()
    assert crops.shape == (14, 1, *W)  # 2 windows + 6 neighbours of each
    obs, *_ = env.settle(mean_scorer(crops))
    want = neighbour_gains(mean_scorer(crops[:2]), mean_scorer(crops[2:]).reshape(2, 6))
    np.testing.assert_array_equal(obs["nbr"], want[0])
    np.testing.assert_array_equal(obs["c_nbr"], want[1])
    gains = neighbour_gains(np.array([0.1]), np.array([[0.1, 0.5, 0.01, 1e-9, 0.1, 0.2]]))
    assert gains[0, 0] == 0 and gains[0, 1] > gains[0, 5] > 0 > gains[0, 2] > gains[0, 3] >= -1


def test_mask_rules_sum_max_and_mean_stay_inside_the_liver():
    liver = np.ones((4, 1, 1), np.uint8)
    liver[3] = 0
    total = np.array([0.9, 0.6, 0.3, 0.9], np.float32).reshape(4, 1, 1)
    top = np.array([0.3, 0.6, 0.3, 0.9], np.float32).reshape(4, 1, 1)
    count = np.array([3, 1, 1, 1], np.float32).reshape(4, 1, 1)
    rules = {r: mask_from_maps(total, top, count, liver, r, 0.5).ravel().tolist() for r in
             ("sum", "max", "mean")}  # fmt: skip
    assert rules == {"sum": [1, 1, 0, 0], "max": [0, 1, 0, 0], "mean": [0, 1, 0, 0]}


def test_a_window_larger_than_the_liver_box_is_refused():
    with pytest.raises(InputError, match=r"box: the window \[6, 5, 40\] voxels is larger"):
        SelfPlayWindowEnv([box_volume()], (6, 5, 40), 2, 0.5, 5)
