"""The gut of the built-in phantom: oesophagus, stomach, duodenum, colon and small bowel.

Each part is a tube (a :class:`~tumorsynth.phantom.shapes.Tubes`) with a wall, fluid contents and gas:
the stomach and the colon have a fluid level, the colon haustra; the small bowel's loops are a
self-avoiding random walk (:func:`bowel_walk`) in the room that the other organs leave. All in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from tumorsynth.phantom.body import Body, BodyLayer, body_points
from tumorsynth.phantom.grid import Grid
from tumorsynth.phantom.liver import Liver
from tumorsynth.phantom.recipe import Step, coat, jitter
from tumorsynth.phantom.shapes import (
    Blob,
    Cached,
    Csg,
    HalfSpace,
    Tubes,
    path_tubes,
    plane_waves,
    tube,
)
from tumorsynth.phantom.thorax import Dome

__all__ = [
    "Stomach",
    "bowel_walk",
    "colon",
    "duodenum",
    "duodenum_step",
    "oesophagus",
    "small_bowel",
    "stomach",
    "stomach_step",
]


def _haustra(segs: np.ndarray, period_mm: float, depth: float) -> np.ndarray:
    """Modulate a tube's radius along its length (colonic haustra)."""
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(segs[:, 3:6] - segs[:, :3], axis=1))])
    m = 1 + depth * np.cos(2 * np.pi * s / period_mm)
    out = segs.copy()
    out[:, 6] *= m[:-1]
    out[:, 7] *= m[1:]
    return out


def _bubbles(rng, segs: np.ndarray, n: int, r_mm, shift=(0.0, 0.0, 0.0)) -> Tubes:
    """``n`` gas bubbles (spheres) scattered inside a tube, shifted by ``shift`` (fractions of r)."""
    pick = rng.integers(0, len(segs), n)
    r = segs[pick, 6:7]
    centre = segs[pick, :3] + r * (0.55 * rng.uniform(-1, 1, (n, 3)) + np.asarray(shift))
    radius = rng.uniform(*r_mm, size=(n, 1))
    return Tubes(np.hstack([centre, centre, radius, radius]))


def bowel_walk(rng, start, lo_mm, hi_mm, clearance, radius_mm, length_mm, step_mm=9.0):
    """Pieces of a self-avoiding random walk (loops of small bowel) in the box [lo_mm, hi_mm].

    ``clearance(points)`` is the distance (mm) from points to the other organs; the walk keeps a tube
    of ``radius_mm`` 3 mm away from them and from its own earlier loops.
    """
    lo, hi = np.asarray(lo_mm, float), np.asarray(hi_mm, float)
    pieces, current = [], [np.asarray(start, float)]
    done: list[np.ndarray] = []
    heading = rng.normal(size=3)
    total, failures = 0.0, 0

    def free(c, own):
        ok = np.all((c > lo) & (c < hi), axis=1) & (clearance(c) > radius_mm + 3.0)
        old = done + own
        if old:
            prev = np.asarray(old)
            gap = np.linalg.norm(c[:, None, :] - prev[None], axis=2).min(axis=1)
            ok &= gap > 2 * radius_mm + 4.0
        return ok

    while total < length_mm and failures < 40:
        u = heading / np.linalg.norm(heading) + 0.9 * rng.normal(size=(24, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        cand = current[-1] + step_mm * u
        ok = free(cand, current[:-3])
        if ok.any():
            pick = rng.choice(np.flatnonzero(ok))
            heading = cand[pick] - current[-1]
            current.append(cand[pick])
            total += step_mm
            continue
        failures += 1
        if len(current) > 2:
            pieces.append(np.asarray(current))
        done.extend(current)
        seeds = lo + rng.uniform(size=(300, 3)) * (hi - lo)
        ok = free(seeds, [])
        if not ok.any():
            break
        current = [seeds[np.flatnonzero(ok)[0]]]
        heading = rng.normal(size=3)
    if len(current) > 2:
        pieces.append(np.asarray(current))
    return pieces


@dataclass
class Stomach:
    """The stomach: its centre line (mm, cardia first), its tube (an obstacle) and the carved organ."""

    points: np.ndarray
    tube: Tubes
    shape: Csg


def stomach(
    rng: np.random.Generator, zl: float, dome: Dome, cavity: BodyLayer, liver: Cached
) -> Stomach:
    """The stomach from the cardia under the left dome (top at ``zl``, mm) to the pylorus."""
    pts = np.array([jitter(rng, p) for p in [(-52, -10, zl - 36), (-46, 16, zl - 70),
                                             (-28, 40, zl - 98), (2, 50, zl - 110),
                                             (22, 44, zl - 108)]])  # fmt: skip
    t = tube(pts, np.array([32, 29, 24, 18, 12]) * rng.uniform(0.85, 1.1))
    return Stomach(pts, t, Csg(t, clips=[(dome, 3.0), (cavity, 2.0)], carves=[(liver, 2.0)]))


def stomach_step(rng: np.random.Generator, st: Stomach) -> Step:
    """The stomach's paint step: wall, fluid (textured) and gas above a fluid level (drawn here)."""
    return Step(st.shape, [coat("bowel_wall", "bowel"),
                           coat("fluid", "bowel", 4.0, texture=plane_waves(rng, 8, (8, 30), 8)),
                           coat("air", "bowel", 4.0,
                                clip=HalfSpace(1, rng.uniform(28, 38), -1.0))])  # fmt: skip


def oesophagus(x0: float, zl: float, st: Stomach) -> Step:
    """The oesophagus from the chest (in front of the spine, midline ``x0``) to the cardia."""
    cardia = st.points[0] + np.array([20, 0, 8])
    oes = tube([(x0 - 6, -32, 230), (x0 - 10, -26, zl + 10), (-22, -12, zl - 20), cardia], 8.0)
    return Step(oes, [coat(45.0, "bowel"), coat(30.0, "bowel", 4.0)])


def duodenum(rng: np.random.Generator, zr: float, st: Stomach) -> tuple[np.ndarray, Tubes]:
    """The duodenum's C-loop from the pylorus: (centre-line points, tube)."""
    pts = [st.points[-1]] + [jitter(rng, p, 2) for p in [
        (40, 30, zr - 118), (52, 8, zr - 128), (53, 0, zr - 150), (48, 2, zr - 172),
        (22, 10, zr - 182), (-12, 12, zr - 180), (-30, 14, zr - 162), (-40, 18, zr - 150),
    ]]  # fmt: skip
    return np.asarray(pts), tube(pts, 12.0)


def duodenum_step(duo: Tubes, liver: Cached) -> Step:
    """The duodenum's paint step: wall and fluid."""
    return Step(Csg(duo, carves=[(liver, 2.0)]), [coat(70.0, "bowel"), coat("fluid", "bowel", 2.5)])


def colon(
    rng: np.random.Generator, zr: float, zl: float, cavity: BodyLayer, liver: Cached
) -> tuple[list[Tubes], list[Step]]:
    """The ascending, transverse and descending colon: (tubes, paint steps).

    Each part has haustra, a textured content, gas above its own fluid level and gas bubbles.
    """
    parts = [
        ([(88, -15, -230), (90, -10, -100), (86, 0, zr - 165), (78, 18, zr - 160)], 22, -5),
        ([(78, 18, zr - 160), (55, 52, zr - 165), (15, 68, -85), (-30, 64, -75),
          (-65, 45, zl - 140), (-85, 15, zl - 95)], 20, 48),
        ([(-85, 15, zl - 95), (-96, -15, zl - 140), (-95, -22, -100), (-95, -22, -230)], 18, -15),
    ]  # fmt: skip
    tubes, steps = [], []
    for pts_c, r_c, level in parts:
        segs = _haustra(
            path_tubes([jitter(rng, p, 3) for p in pts_c], r_c * rng.uniform(0.9, 1.1)), 24, 0.1
        )
        tubes.append(Tubes(segs))
        gas = _bubbles(rng, segs, 25, (1.5, 4.5))
        steps.append(Step(Csg(tubes[-1], clips=[(cavity, 2.0)], carves=[(liver, 3.0)]), [
            coat(45.0, "bowel"),
            coat(15.0, "bowel", 3.0, texture=plane_waves(rng, 10, (6, 14), 25)),
            coat("air", "bowel", 3.0, clip=HalfSpace(1, level + rng.normal(0, 4), -1.0)),
            coat("air", "bowel", 3.0, clip=gas)]))  # fmt: skip
    return tubes, steps


def small_bowel(
    rng: np.random.Generator,
    start,
    zr: float,
    body: Body,
    cavity: BodyLayer,
    liver: Liver,
    obstacles: list[Tubes | Blob],
) -> Step:
    """The small bowel's loops from ``start`` (the duodenojejunal flexure, mm): its paint step.

    The loops fill the lower abdomen (below ``zr - 140`` mm) away from the liver, the body wall and
    ``obstacles`` (the other organs), whose distances are tabulated every 4 mm over the walk's box.
    """
    walk_lo, walk_hi = np.array([-95.0, -25.0, -135.0]), np.array([60.0, 90.0, zr - 140])
    walk = Grid.box(walk_lo - 8, walk_hi + 8, 4.0)
    gp = np.stack(np.meshgrid(walk.xs, walk.ys, walk.zs, indexing="ij"), -1).reshape(-1, 3)
    room = np.minimum(liver.sdf_points(gp), -body_points(body, gp, "cavity")).reshape(walk.shape)
    for o in obstacles:
        np.minimum(room, o.sdf(walk, reach_mm=30.0), out=room)

    def clearance(p):
        return map_coordinates(room, ((p - walk.origin) / 4.0).T, order=1, mode="nearest")

    r_sb = rng.uniform(10, 12.5)
    loops = bowel_walk(rng, start, walk_lo, walk_hi, clearance, r_sb, 1500)
    sb = Tubes(np.vstack([path_tubes(p, r_sb, 4.0) for p in loops]))
    gas = _bubbles(rng, sb.segs, 12, (2.0, 5.0), (0, 0.6, 0))
    return Step(Csg(sb, clips=[(cavity, 2.0)]), [coat(70.0, "bowel"), coat("fluid", "bowel", 2.5),
                                                 coat("air", "bowel", 2.5, clip=gas)])  # fmt: skip
