"""Blood vessels of the built-in phantom: the liver's vein trees and the vessels outside the liver.

:func:`vessel_tree` grows a space-filling tree in an organ; :func:`liver_veins` grows the portal and
hepatic vein trees in the liver (leaving up to two vessel-free zones for tumours), :func:`great_vessels`
lays the aorta and the inferior vena cava along the spine, and :func:`extrahepatic_vessels` adds the
portal, splenic and mesenteric veins, the visceral arteries and the renal veins. All in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.phantom.liver import PLAN_MM, Liver
from tumorsynth.phantom.organs import Kidney, Spleen
from tumorsynth.phantom.recipe import Step, coat, jitter
from tumorsynth.phantom.shapes import Tubes, path_tubes, tube
from tumorsynth.phantom.spine import Spine
from tumorsynth.phantom.tissues import HU, LABELS

__all__ = [
    "VESSEL_FREE_RADIUS_MM",
    "GreatVessels",
    "LiverVeins",
    "extrahepatic_vessels",
    "great_vessels",
    "liver_veins",
    "vessel_tree",
]

#: Radius (mm) of the vessel-free zones kept in the liver for tumours (up to 2 per phantom).
VESSEL_FREE_RADIUS_MM = 22.0


def _segment_inside(inside, a, b, r_mm, skip_mm=0.0) -> bool:
    """Whether the tube from ``a`` to ``b`` (radius ``r_mm``) stays inside the organ (1 mm margin)."""
    length = float(np.linalg.norm(b - a))
    n = max(int(length / 1.5), 2)
    t = np.linspace(0.0, 1.0, n)
    t = t[t * length >= skip_mm]
    if t.size == 0:
        return True
    return bool(np.all(inside(a + t[:, None] * (b - a)) < -(r_mm + 1.0)))


def vessel_tree(rng, inside, points, roots, generations: int, weights=None) -> np.ndarray:
    """Grow a space-filling vessel tree in an organ; return its tube segments (M, 8) in mm.

    Each branch heads for the (weighted) centroid of its territory, a cloud of points sampled in the
    organ; at its end the territory is split in two across its longest axis and each half grows a
    child branch, whose radius follows the share of the territory it drains. Branches that would
    leave the organ (``inside(points)`` is the organ's SDF) are shortened or re-aimed.

    Parameters
    ----------
    rng : numpy.random.Generator
    inside : callable
        SDF (mm) of the organ at points (n, 3).
    points : ndarray, shape (n, 3)
        Points filling the organ (mm).
    roots : list of (start, point indices, radius_mm, skip_mm)
        One entry per trunk; ``skip_mm`` is the length at its start allowed outside the organ.
    generations : int
        Number of branching generations below each trunk.
    weights : ndarray, shape (n,), optional
        Point weights for the centroids (steers branches toward heavily weighted regions).
    """
    w_all = np.ones(len(points)) if weights is None else np.asarray(weights, float)
    segs: list[list[float]] = []

    def grow(start, idx, r, gen, skip):
        pts, w = points[idx], w_all[idx]
        centroid = (pts * w[:, None]).sum(0) / w.sum()
        leaf = gen >= generations or len(idx) < 12 or r < 1.4
        if leaf:
            u = centroid - start
            u /= max(np.linalg.norm(u), 1e-6)
            far = pts[np.argmax((pts - start) @ u)]
            targets = [centroid + 0.55 * (far - centroid), centroid]
        else:
            targets = [start + rng.uniform(0.45, 0.7) * (centroid - start)]
        near = idx[np.argsort(np.linalg.norm(pts - centroid, axis=1))[:12]]
        targets += [start + 0.6 * (points[i] - start) for i in near[::3]]
        r_end = max((0.6 if leaf else 0.95) * r, 0.8)
        end = None
        for target in targets:
            v = target - start
            if np.linalg.norm(v) < 4.0:
                continue
            side = np.cross(v, rng.normal(size=3))
            side *= 0.08 * np.linalg.norm(v) / max(np.linalg.norm(side), 1e-6)
            mid = start + 0.5 * v + side
            r_mid = 0.5 * (r + r_end)
            if _segment_inside(inside, start, mid, r, skip) and _segment_inside(
                inside, mid, target, r_end
            ):
                segs.append([*start, *mid, r, r_mid])
                segs.append([*mid, *target, r_mid, r_end])
                end, skip = target, 0.0
                break
        if leaf:
            return
        if end is None:  # no way through: the territory splits right here instead
            end, r_end = start, r
        c = pts - pts.mean(0)
        axis = np.linalg.eigh(c.T @ c)[1][:, -1] + rng.normal(0, 0.25, 3)
        proj = c @ axis
        cut = np.quantile(proj, rng.uniform(0.4, 0.6))
        for half in (idx[proj < cut], idx[proj >= cut]):
            if len(half):
                grow(end, half, r_end * (len(half) / len(idx)) ** (1 / 3), gen + 1, skip)

    for start, idx, r, skip in roots:
        grow(np.asarray(start, float), np.asarray(idx), r, 1, skip)
    return np.asarray(segs, float).reshape(-1, 8)


@dataclass
class GreatVessels:
    """The aorta and the inferior vena cava (IVC) with their centre lines (mm)."""

    aorta: Tubes
    ivc: Tubes
    aorta_pts: np.ndarray  # (5, 3) centre-line control points (x, y, z), z increasing
    ivc_pts: np.ndarray  # (7, 3) centre-line control points (x, y, z), z increasing

    def aorta_at(self, z: float) -> np.ndarray:
        """The point (mm) of the aorta's centre line at height ``z`` (mm), linearly interpolated."""
        ax_a, ay_a, za = self.aorta_pts.T
        return np.array([np.interp(z, za, ax_a), np.interp(z, za, ay_a), z])

    def ivc_at(self, z: float) -> np.ndarray:
        """The point (mm) of the IVC's centre line at height ``z`` (mm), linearly interpolated."""
        return np.array([np.interp(z, self.ivc_pts[:, 2], self.ivc_pts[:, a]) for a in (0, 1, 2)])


def great_vessels(sp: Spine, zr: float) -> GreatVessels:
    """The aorta left of and in front of the spine; the IVC on the right, up into the liver."""
    yb, fz = sp.y, sp.scale
    za = np.array([-220, -60, 30, 100, 220.0])
    ax_a = sp.x0 + np.array([-14, -16, -16, -20, -25])
    ay_a = yb(za) + np.array([16 * fz(za[0]) + 12, 16 * fz(za[1]) + 12, 28, 14, 8])
    aorta_pts = np.stack([ax_a, ay_a, za], 1)
    aorta = tube(aorta_pts, [10, 10.5, 11, 11, 11])
    ivc_pts = np.array([(24, yb(-220) + 24, -220), (24, yb(-40) + 24, -40), (22, -20, zr - 100),
                        (20, -28, zr - 50), (14, -26, zr - 12), (10, -14, zr + 10),
                        (8, 0, zr + 40)])  # fmt: skip
    ivc = tube(ivc_pts, [10.5, 10.5, 11, 11.5, 12, 12, 12])
    return GreatVessels(aorta, ivc, aorta_pts, ivc_pts)


@dataclass
class LiverVeins:
    """The liver's vein trees (tube segments, mm) and the landmarks other vessels connect to."""

    portal: np.ndarray  # the portal vein from the confluence to the hilum, then its tree
    hepatic: np.ndarray  # the hepatic veins' ostia in the IVC, then their trees
    zones: np.ndarray  # (n, 3) centres (mm) of the vessel-free zones (n <= 2)
    entry: np.ndarray  # where the portal vein enters the liver (mm)
    confluence: np.ndarray  # the splenic and superior mesenteric veins join here (mm)

    def trees(self) -> list[tuple[Tubes, float, int]]:
        """(tubes, HU, label outside the liver) of the portal and the hepatic trees."""
        return [
            (Tubes(self.portal), HU["portal"], LABELS["portal_vein"]),
            (Tubes(self.hepatic), HU["hepatic"], LABELS["ivc"]),
        ]


def _vessel_free_zones(rng, liver: Liver, entry, ostium) -> list[np.ndarray]:
    """Up to 2 centres (mm) of zones kept free of vessels, for tumours of up to 2 * VESSEL_FREE_RADIUS_MM.

    The zones lie deep in the liver, away from the portal vein's ``entry``, the hepatic veins'
    ``ostium`` and each other.
    """
    zones: list[np.ndarray] = []
    cand = liver.plan.origin + np.argwhere(liver.d_plan < -(VESSEL_FREE_RADIUS_MM + 6)) * PLAN_MM
    for _ in range(2):
        ok = np.linalg.norm(cand - entry, axis=1) > VESSEL_FREE_RADIUS_MM + 35
        ok &= np.linalg.norm(cand[:, :2] - ostium[:2], axis=1) > VESSEL_FREE_RADIUS_MM + 20
        for c in zones:
            ok &= np.linalg.norm(cand - c, axis=1) > 2 * VESSEL_FREE_RADIUS_MM + 10
        if not ok.any():
            break
        zones.append(cand[rng.choice(np.flatnonzero(ok))])
    return zones


def liver_veins(
    rng: np.random.Generator, liver: Liver, great: GreatVessels, zr: float
) -> LiverVeins:
    """Grow the portal and hepatic vein trees in the liver, around its vessel-free zones.

    Both trees fill the same cloud of points sampled in the liver (planning grid): the portal tree
    from the hilum in two main branches, the hepatic tree from three ostia in the IVC, drawn toward
    the parenchyma that the portal tree leaves empty.
    """
    pts = liver.plan.origin + np.argwhere(liver.d_plan < -4) * PLAN_MM
    pts = pts[rng.choice(len(pts), min(3000, len(pts)), replace=False)]
    pts = pts + rng.uniform(-1.5, 1.5, pts.shape)
    deep = pts[liver.sdf_points(pts) < -9]
    hilum = liver.place(jitter(rng, (34, 4, zr - 92)))
    entry = deep[np.argmin(np.linalg.norm(deep - hilum, axis=1))]
    ostium = great.ivc_at(zr - 18)
    zones = _vessel_free_zones(rng, liver, entry, ostium)

    def inside(p):
        d = liver.sdf_points(p)
        for c in zones:
            d = np.maximum(d, VESSEL_FREE_RADIUS_MM - np.linalg.norm(np.atleast_2d(p) - c, axis=1))
        return d

    pts = pts[inside(pts) < -2]
    # portal vein: from the confluence to the hilum, then two main branches (right, left)
    confluence = jitter(rng, (6, 8, zr - 115), 2)
    r_pv = rng.uniform(6.5, 7.5)
    normal = np.array([1, 0.3, 0]) + rng.normal(0, 0.1, 3)
    proj = pts @ normal
    cut = np.quantile(proj, rng.uniform(0.3, 0.4))
    idx = np.arange(len(pts))
    roots = [(entry, h, 0.95 * r_pv * (len(h) / len(pts)) ** (1 / 3), 0.0)
             for h in (idx[proj >= cut], idx[proj < cut])]  # fmt: skip
    portal = vessel_tree(rng, inside, pts, roots, generations=6)
    trunk = path_tubes([confluence, entry], [r_pv, 0.95 * r_pv], smooth=False)
    # hepatic veins: three trunks (right, middle, left) from the ostium, around the ostium's axis
    phi = np.degrees(np.arctan2(pts[:, 1] - ostium[1], pts[:, 0] - ostium[0]))
    phi = np.where(phi < -120, phi + 360, phi)
    q1, q2 = np.quantile(phi, [rng.uniform(0.4, 0.5), rng.uniform(0.7, 0.8)])
    weights = np.clip(Tubes(portal).sdf_points(pts) - 3.0, 0.5, 25.0) ** 2
    roots, ostia = [], []
    for group in (idx[phi < q1], idx[(phi >= q1) & (phi < q2)], idx[phi >= q2]):
        u = pts[group].mean(0) - ostium
        u[2] = 0
        start = ostium + 8.0 * u / np.linalg.norm(u)
        r = rng.uniform(5.5, 6.5)
        roots.append((start, group, r, 16.0))
        ostia.append([*ostium, *start, r, r])
    hepatic = vessel_tree(rng, inside, pts, roots, generations=5, weights=weights)
    return LiverVeins(
        np.vstack([trunk, portal]),
        np.vstack([np.array(ostia), hepatic]),
        np.array(zones).reshape(-1, 3),
        entry,
        confluence,
    )


def extrahepatic_vessels(
    rng: np.random.Generator,
    sp: Spine,
    zr: float,
    great: GreatVessels,
    veins: LiverVeins,
    spl: Spleen,
    kidneys: tuple[Kidney, Kidney],
) -> list[Step]:
    """Paint steps of the aorta, the IVC and the other vessels outside the liver.

    These are the extrahepatic portal system (portal, superior mesenteric and splenic veins), the
    visceral arteries (coeliac trunk with the hepatic and splenic arteries, superior mesenteric and
    renal arteries) and the renal veins.
    """
    x0, yb, a_at = sp.x0, sp.y, great.aorta_at
    kid_r, kid_l = kidneys
    zk_r, zk_l, hilum_r, hilum_l = kid_r.z_mm, kid_l.z_mm, kid_r.hilum, kid_l.hilum
    confluence, spleen_hilum = veins.confluence, spl.hilum
    portal_sys = np.vstack([
        path_tubes([confluence, jitter(rng, (10, 16, zr - 140), 2), (14, 26, -230)], [6, 5.5, 5]),
        path_tubes([confluence, jitter(rng, (-25, -3, zr - 103)),
                    jitter(rng, (-58, -20, zr - 92)), spleen_hilum], [5, 4.5, 4.5, 4]),
    ])  # fmt: skip
    cel, sma = a_at(zr - 88), a_at(zr - 105)
    trifurcation = cel + np.array([3, 15, 2])
    arteries = np.vstack([
        path_tubes([sma, sma + np.array([4, 16, -14]), (x0 - 6, 22, -230)], [3.5, 3.5, 3]),
        path_tubes([cel, trifurcation, jitter(rng, (15, 10, zr - 88)),
                    veins.entry - np.array([8, 0, 8])], [3, 3, 2.5, 2.2]),
        path_tubes([trifurcation, jitter(rng, (-30, 5, zr - 80)),
                    jitter(rng, (-55, -10, zr - 78)), spleen_hilum], [2.8, 2.5, 2.5, 2.3]),
        path_tubes([a_at(zk_r + 8), hilum_r - np.array([0, 5, 0])], 3.0, smooth=False),
        path_tubes([a_at(zk_l + 8), hilum_l - np.array([0, 5, 0])], 3.0, smooth=False),
    ])  # fmt: skip
    renal_v = np.vstack([
        path_tubes([hilum_r, (22, yb(zk_r) + 24, zk_r + 5)], 5.0, smooth=False),
        path_tubes([hilum_l, (-12, yb(zk_l) + 42, zk_l + 8), (22, yb(zk_l) + 24, zk_l + 10)], 5.0),
    ])  # fmt: skip
    return [
        Step(great.aorta, [coat("aorta", "aorta")]),
        Step(great.ivc, [coat("ivc", "ivc")]),
        Step(Tubes(portal_sys), [coat("portal", "portal_vein")]),
        Step(Tubes(arteries), [coat("aorta", "other_vessels")]),
        Step(Tubes(renal_v), [coat("renal_vein", "other_vessels")]),
    ]
