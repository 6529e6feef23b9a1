r"""The self-play environment: two windows on a liver, competing for the classifier's score.

:class:`SelfPlayWindowEnv` is a :class:`gymnasium.Env`. Two cursors (the learner *m* and the
competitor *n*) are the first voxels of two windows of ``window_vox`` inside the liver's box;
each step moves both by ``step_vox`` along one of six directions (+x, -x, +y, -y, +z, -z),
clamped so the windows stay in the box. The classifier scores both windows,
:math:`s_m, s_n \in [0, 1]`, and

- the learner's reward is :math:`+1` if :math:`s_m \ge s_n` (ties go to the learner, as in the
  authors' code), else :math:`-1`;
- the learner's score is added to every voxel of its window in the summed map
  :math:`M \leftarrow M + s_m \mathbb{1}_{W_m}`, kept per voxel in the maximum map, and the
  window's voxels are counted as visited once more;
- the episode ends (``terminated``) when :math:`\max(s_m, s_n) > \tau`, or is cut
  (``truncated``) after ``t_max`` steps.

A step is three parts, so that many environments can share one batched classifier call
(:class:`~tumorsynth.methods.spars.vec.ScoredVecEnv`): :meth:`~SelfPlayWindowEnv.move`,
:meth:`~SelfPlayWindowEnv.to_score` (the crops to score: the two windows, and with
``obs_scores`` the windows one move away) and :meth:`~SelfPlayWindowEnv.settle` (reward, map,
end); :meth:`~SelfPlayWindowEnv.step` does the three with the env's own ``scorer``.

Observations are float32 end to end (stable-baselines3 stores them in the declared dtype):
``crop`` (1, X, Y, Z) in [0, 1] and ``pos`` (3,) the cursor over the box's free range, for each
agent (the competitor's under ``c_crop`` and ``c_pos``). The action is one move per agent,
``MultiDiscrete([6, 6])``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tumorsynth.errors import InputError
from tumorsynth.methods.spars.volumes import WorkVolume

__all__ = ["MOVES", "SelfPlayWindowEnv", "mask_from_maps", "neighbour_gains"]

MOVES = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.int64
)
"""The six moves (unit steps along X, Y, Z), in action order."""

Scorer = Callable[[np.ndarray], np.ndarray]


def mask_from_maps(
    map_sum: np.ndarray,
    map_max: np.ndarray,
    map_count: np.ndarray,
    liver: np.ndarray,
    rule: str,
    threshold: float,
) -> np.ndarray:
    r"""The tumour mask of the maps, restricted to the liver: (X, Y, Z) uint8.

    ``rule``: ``"sum"`` (the paper: the summed scores :math:`M > t`), ``"max"`` (the highest score
    of a voxel's windows :math:`> t`) or ``"mean"`` (their mean score, :math:`M / n > t`, over the
    :math:`n` visits of the voxel).
    """
    if rule == "sum":
        chosen = map_sum
    elif rule == "max":
        chosen = map_max
    elif rule == "mean":
        chosen = map_sum / np.maximum(map_count, 1)
    else:
        raise ValueError(f"mask rule must be 'sum', 'max' or 'mean', got {rule!r}")
    return ((chosen > threshold) & (liver > 0)).astype(np.uint8)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(p) - np.log1p(-p)


def neighbour_gains(own: np.ndarray, near: np.ndarray, scale: float = 5.0) -> np.ndarray:
    r"""What each move would gain, as the agents observe it: the log-odds of each window one move
    away minus that of the agent's own window, over ``scale``, clipped to [-1, 1]:
    :math:`\mathrm{clip}((\mathrm{logit}\,s_k - \mathrm{logit}\,s) / 5, -1, 1)`. Scores far from any
    tumour are all near 0; their log-odds still tell which way is less unlike one.

    Parameters
    ----------
    own : (A,) array
        Each agent's window score.
    near : (A, 6) array
        The scores of the windows one move away, in :data:`MOVES` order.
    """
    gain = (_logit(np.asarray(near)) - _logit(np.asarray(own))[:, None]) / scale
    return np.clip(gain, -1.0, 1.0).astype(np.float32)


class SelfPlayWindowEnv(gym.Env):
    """Two windows moving over liver volumes (see the module).

    Parameters
    ----------
    volumes : sequence of WorkVolume
        One is drawn per episode (``reset(options={"volume": k})`` picks one).
    window_vox : 3 ints
        Window size, voxels.
    step_vox : int
        Voxels per move.
    tau : float
        Score that ends the episode (strictly above it).
    t_max : int
        Steps after which the episode is cut.
    start : str
        ``"random"`` (a random liver voxel, as the window's centre) or ``"centroid"``.
    scorer : callable, optional
        (N, 1, X, Y, Z) float32 crops -> (N,) scores; needed by :meth:`step` only.
    obs_context : int
        Odd factor: each agent observes ``obs_context`` windows' worth of volume per axis around
        its window, averaged down to the window's shape (1: the window itself, as the paper).
        What the classifier scores is always the window itself.
    obs_scores : bool
        Each agent also observes ``nbr``: what each of the six moves would gain in the classifier's
        log-odds (:func:`neighbour_gains`; the windows one move away are scored in the same call
        as the step's two windows; zeros right after a reset).
    end_on_competitor : bool
        Whether the competitor's score passing ``tau`` ends the episode too (the game: True; at
        segmentation only the learner's windows make the map, so only its score ends an
        episode there).

    Raises
    ------
    InputError
        No volume, or a volume whose box is smaller than the window.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        volumes: Sequence[WorkVolume],
        window_vox: Sequence[int],
        step_vox: int,
        tau: float,
        t_max: int,
        start: str = "random",
        scorer: Scorer | None = None,
        obs_context: int = 1,
        obs_scores: bool = False,
        end_on_competitor: bool = True,
    ) -> None:
        super().__init__()
        if obs_context < 1 or obs_context % 2 == 0:
            raise ValueError(f"obs_context must be odd and positive, got {obs_context}")
        if not volumes:
            raise InputError("SelfPlayWindowEnv: no volumes")
        self.window = np.asarray(window_vox, dtype=np.int64)
        for v in volumes:
            if np.any(self.window > np.asarray(v.shape)):
                raise InputError(
                    f"{v.name}: the window {self.window.tolist()} voxels is larger than the "
                    f"liver's box {list(v.shape)}"
                )
        if start not in ("random", "centroid"):
            raise ValueError(f"start must be 'random' or 'centroid', got {start!r}")
        self.volumes = list(volumes)
        self.step_vox, self.tau, self.t_max = int(step_vox), float(tau), int(t_max)
        self.start, self.scorer, self.context = start, scorer, int(obs_context)
        self.obs_scores = bool(obs_scores)
        self.end_on_competitor = bool(end_on_competitor)
        self._padded: dict[int, np.ndarray] = {}
        one = {
            "crop": spaces.Box(0.0, 1.0, (1, *self.window.tolist()), dtype=np.float32),
            "pos": spaces.Box(0.0, 1.0, (3,), dtype=np.float32),
        }
        if self.obs_scores:
            one["nbr"] = spaces.Box(-1.0, 1.0, (len(MOVES),), dtype=np.float32)
        self.observation_space = spaces.Dict({**one, **{f"c_{k}": v for k, v in one.items()}})
        self.action_space = spaces.MultiDiscrete([len(MOVES), len(MOVES)])
        self.volume_index = -1
        self.cursors = np.zeros((2, 3), np.int64)
        self.nbr = np.zeros((2, len(MOVES)), np.float32)
        self.t = 0

    # ---- state -----------------------------------------------------------------------------
    @property
    def volume(self) -> WorkVolume:
        """The current episode's volume."""
        return self.volumes[self.volume_index]

    @property
    def high(self) -> np.ndarray:
        """Largest cursor per axis (the window then ends at the box's last voxel)."""
        return np.asarray(self.volume.shape) - self.window

    def _slices(self, cursor: np.ndarray) -> tuple[slice, ...]:
        return tuple(slice(int(a), int(a + w)) for a, w in zip(cursor, self.window, strict=True))

    def windows(self) -> np.ndarray:
        """The learner's and the competitor's crops: (2, 1, X, Y, Z) float32."""
        image = self.volume.image
        return np.stack([image[self._slices(c)] for c in self.cursors])[:, None]

    def to_score(self) -> np.ndarray:
        """The crops a step scores: the learner's and the competitor's windows, then (with
        ``obs_scores``) the six windows one move away from each; (K, 1, X, Y, Z) float32."""
        if not self.obs_scores:
            return self.windows()
        near = np.clip(self.cursors[:, None] + self.step_vox * MOVES[None], 0, self.high)
        cursors = np.concatenate([self.cursors, near.reshape(-1, 3)])
        image = self.volume.image
        return np.stack([image[self._slices(c)] for c in cursors])[:, None]

    def _views(self) -> np.ndarray:
        """What the agents see: their windows with ``obs_context`` x their size of surroundings
        (zero outside the box), averaged down to the window's shape; (2, 1, X, Y, Z) float32."""
        if self.context == 1:
            return self.windows()
        c, w = self.context, self.window
        if self.volume_index not in self._padded:
            pad = [(int(n), int(n)) for n in (c - 1) // 2 * w]
            self._padded[self.volume_index] = np.pad(self.volume.image, pad)
        padded = self._padded[self.volume_index]
        views = []
        for cursor in self.cursors:  # the cursor is the context's first voxel in the padded volume
            big = padded[
                tuple(slice(int(a), int(a + c * n)) for a, n in zip(cursor, w, strict=True))
            ]
            views.append(big.reshape(w[0], c, w[1], c, w[2], c).mean(axis=(1, 3, 5)))
        return np.stack(views)[:, None].astype(np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        crops = self._views()
        pos = (self.cursors / np.maximum(self.high, 1)).astype(np.float32)
        obs = {"crop": crops[0], "pos": pos[0], "c_crop": crops[1], "c_pos": pos[1]}
        if self.obs_scores:
            obs["nbr"], obs["c_nbr"] = self.nbr[0].copy(), self.nbr[1].copy()
        return obs

    def _start_cursor(self) -> np.ndarray:
        liver = np.argwhere(self.volume.liver > 0)
        if self.start == "centroid":
            centre = np.rint(liver.mean(axis=0)).astype(np.int64)
        else:
            centre = liver[int(self.np_random.integers(len(liver)))]
        return np.clip(centre - self.window // 2, 0, self.high)

    # ---- gymnasium -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: both cursors at one start, step 0.

        ``options``: ``volume`` (index; default a random one), ``keep_map`` (keep the maps of the
        same volume: several episodes add to one map, as at segmentation), ``start`` (a cursor,
        3 ints, instead of the config's rule).
        """
        super().reset(seed=seed)
        options = dict(options or {})
        index = options.get("volume")
        if index is None:
            index = int(self.np_random.integers(len(self.volumes)))
        keep = bool(options.get("keep_map")) and index == self.volume_index
        self.volume_index = int(index)
        if not keep:
            self.map_sum = np.zeros(self.volume.shape, np.float32)
            self.map_max = np.zeros(self.volume.shape, np.float32)
            self.map_count = np.zeros(self.volume.shape, np.float32)
        if options.get("start") is not None:
            cursor = np.clip(np.asarray(options["start"], np.int64), 0, self.high)
        else:
            cursor = self._start_cursor()
        self.cursors = np.stack([cursor, cursor]).astype(np.int64)
        self.nbr = np.zeros((2, len(MOVES)), np.float32)
        self.t = 0
        return self._obs(), {"volume": self.volume_index}

    def move(self, action: Sequence[int]) -> None:
        """Move the learner by ``action[0]`` and the competitor by ``action[1]``, clamped."""
        moves = MOVES[np.asarray(action, dtype=np.int64).reshape(2)]
        self.cursors = np.clip(self.cursors + self.step_vox * moves, 0, self.high)

    def settle(
        self, scores: Sequence[float]
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Reward, map and end of the step whose :meth:`to_score` crops scored ``scores`` (the
        learner's window first, then the competitor's, then the neighbours):
        ``(obs, reward, terminated, truncated, info)``."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        s_m, s_n = float(scores[0]), float(scores[1])
        if self.obs_scores:
            self.nbr = neighbour_gains(scores[:2], scores[2:].reshape(2, len(MOVES)))
        window = self._slices(self.cursors[0])
        self.map_sum[window] += s_m
        self.map_count[window] += 1
        np.maximum(self.map_max[window], s_m, out=self.map_max[window])
        self.t += 1
        reward = 1.0 if s_m >= s_n else -1.0
        terminated = (max(s_m, s_n) if self.end_on_competitor else s_m) > self.tau
        truncated = not terminated and self.t >= self.t_max
        info = {"score": s_m, "competitor_score": s_n, "t": self.t}
        return self._obs(), reward, terminated, truncated, info

    def step(self, action: Sequence[int]):
        """:meth:`move`, score both windows with ``scorer``, :meth:`settle`."""
        if self.scorer is None:
            raise RuntimeError("SelfPlayWindowEnv.step needs a scorer (or use ScoredVecEnv)")
        self.move(action)
        return self.settle(self.scorer(self.to_score()))

    def mask(self, rule: str, threshold: float) -> np.ndarray:
        """The current map's tumour mask on the box (see :func:`mask_from_maps`)."""
        return mask_from_maps(
            self.map_sum, self.map_max, self.map_count, self.volume.liver, rule, threshold
        )
