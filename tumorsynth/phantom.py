"""The built-in abdominal CT phantom: the default host when the user has no CT.

:func:`make_phantom` renders a synthetic contrast-enhanced (portal venous phase) abdominal CT with a
liver, its portal and hepatic vein trees and the surrounding anatomy (body wall, spine and ribs, lung
bases, heart, aorta and IVC, kidneys, spleen, pancreas, stomach, bowel, gallbladder). The anatomy is
defined in millimetres (:mod:`tumorsynth.phantom_anatomy`) and evaluated at voxel centres, so one
seed gives the same patient at any spacing. Edges have partial volume; the noise is correlated.
"""

from __future__ import annotations

import functools
import numbers
import threading
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import map_coordinates

from tumorsynth.case import Case
from tumorsynth.errors import InputError
from tumorsynth.kernels import phantom_kernels as pk
from tumorsynth.phantom_anatomy import (
    Blob,
    Body,
    BodyLayer,
    Cached,
    Csg,
    Cylinders,
    Dome,
    Grid,
    HalfSpace,
    Shape,
    Tubes,
    body_points,
    bowel_walk,
    ellipsoid,
    path_tubes,
    plane_waves,
    rotation,
    vessel_tree,
    wall_point,
)

__all__ = ["DEFAULT_FOV_MM", "LABELS", "NOISE_SIGMA_HU", "make_phantom"]

#: Default field of view (x, y, z) in mm, centred on the phantom's origin.
DEFAULT_FOV_MM = (320.0, 320.0, 240.0)
#: Standard deviation (HU) of the CT noise added to every voxel.
NOISE_SIGMA_HU = 13.0
#: Correlation length of the noise: sigma (mm) of the Gaussian that smooths white noise.
NOISE_CORRELATION_MM = 0.7
#: Radius (mm) of the vessel-free zones kept in the liver for tumours (up to 2 per phantom).
VESSEL_FREE_RADIUS_MM = 22.0
#: Margin (mm) kept between the liver and the edge of the field of view.
LIVER_MARGIN_MM = 5.0

#: Values of ``extras["labels"]``. ``liver`` is the parenchyma and ``liver_vessels`` the intrahepatic
#: portal and hepatic veins: together they are the organ mask. ``portal_vein`` holds the extrahepatic
#: portal, splenic and superior mesenteric veins; ``other_vessels`` the renal veins and the visceral
#: arteries; ``bowel`` the oesophagus, stomach, duodenum, small bowel and colon with their contents;
#: ``bone`` the vertebrae and ribs; ``muscle`` the wall, paraspinal, psoas and diaphragm muscles;
#: ``visceral_fat`` every fat inside the wall muscles (including the renal sinus).
LABELS: dict[str, int] = {
    "background": 0,
    "liver": 1,
    "liver_vessels": 2,
    "spleen": 3,
    "kidney_right": 4,
    "kidney_left": 5,
    "bone": 6,
    "bowel": 7,
    "aorta": 8,
    "ivc": 9,
    "portal_vein": 10,
    "gallbladder": 11,
    "pancreas": 12,
    "muscle": 13,
    "subcutaneous_fat": 14,
    "visceral_fat": 15,
    "lung": 16,
    "heart": 17,
    "skin": 18,
    "spinal_canal": 19,
    "intervertebral_disc": 20,
    "other_vessels": 21,
}

_L = LABELS
_HU = {
    "air": -1000.0, "skin": 20.0, "fat": -100.0, "muscle": 50.0, "visceral_fat": -90.0,
    "lung": -860.0, "cortex": 750.0, "cancellous": 260.0, "disc": 90.0, "csf": 20.0,
    "portal": 195.0, "hepatic": 185.0, "aorta": 180.0, "ivc": 140.0, "renal_vein": 160.0,
    "spleen": 115.0, "kidney_cortex": 170.0, "medulla": 120.0, "urine": 10.0, "pancreas": 100.0,
    "bowel_wall": 60.0, "fluid": 18.0, "bile": 8.0, "myocardium": 105.0, "blood": 165.0,
}  # fmt: skip


@dataclass
class Coat:
    """One layer painted from a structure's SDF: the region ``sdf + inset_mm < 0`` (and ``clip``)."""

    inset_mm: float
    hu: float
    label: int
    texture: np.ndarray | None = None
    clip: Shape | None = None


@dataclass
class Step:
    """A structure to paint: its shape, its coats (painted in order) and an optional box (mm)."""

    shape: Shape
    coats: list[Coat]
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


@dataclass
class Patient:
    """Everything needed to render one seed's phantom at any grid."""

    body: Body
    steps: list[Step]
    liver: Cached
    liver_coat: Coat
    trees: list[tuple[Tubes, float, int]]  # (tubes, HU, label outside the liver)
    liver_lo_mm: np.ndarray
    liver_hi_mm: np.ndarray
    liver_volume_ml: float
    extra: dict = field(default_factory=dict)


def _spine(rng, body, z_rib12: float):
    """Vertebrae, discs, canal, posterior elements and ribs (the 12th rib's head at ``z_rib12``).

    Returns (steps, x0, y(z), scale(z), column): the spine's midline x, the centre y of the
    vertebral bodies and their size factor as functions of z (mm), and a tube around the column.
    """
    steps: list[Step] = []
    level_mm = rng.uniform(29, 32)
    zv = z_rib12 + level_mm * np.arange(-12, 13)
    x0, y0 = rng.uniform(-2, 2), rng.uniform(-45, -39)

    def yb(z):
        return y0 + 4 * np.cos(np.pi * np.asarray(z) / 260)

    def fz(z):
        return 1 - 0.08 * np.asarray(z) / 120

    near = zv[np.abs(zv) < 200]
    half = (level_mm - 7.0) / 2
    bodies = [[x0, yb(z), z, 22.5 * fz(z), 16 * fz(z), half, 2.5] for z in near]
    discs = [[x0, yb(z), z + level_mm / 2, 22.5 * fz(z), 16 * fz(z), 4.2, 1.5] for z in near]
    zc = np.linspace(-220, 220, 23)
    canal = Tubes(path_tubes(np.stack([zc * 0 + x0, yb(zc) - 26 * fz(zc), zc], 1), 9 * fz(zc)))
    column = Tubes(path_tubes(np.stack([zc * 0 + x0, yb(zc) - 4, zc], 1), 25 * fz(zc)))
    bone = [Coat(0.0, _HU["cortex"], _L["bone"]), Coat(1.5, _HU["cancellous"], _L["bone"])]
    steps.append(Step(Csg(Cylinders(bodies), carves=[(canal, 1.0)]), bone))
    steps.append(Step(Csg(Cylinders(discs), carves=[(canal, 1.0)]), [
        Coat(0.0, _HU["disc"], _L["intervertebral_disc"])]))  # fmt: skip
    for z in near:
        f, yc = fz(z), yb(z) - 26 * fz(z)
        rows = [ellipsoid((x0, yc - 22 * f, z - 5), (3.0, 10 * f, 10), (15, 0, 0))]
        for s in (1, -1):
            rows += [
                ellipsoid((x0 + s * 13 * f, yb(z) - 16 * f - 5, z + 3), (4.5, 6.5, 7)),
                ellipsoid((x0 + s * 7 * f, yc - 10, z - 2), (9 * f, 3.5, 10), (0, 0, s * 35)),
                ellipsoid((x0 + s * 25 * f, yc, z + 2), (13 * f, 4, 5), (0, 0, -s * 10)),
                ellipsoid((x0 + s * 13 * f, yc - 5, z), (4.5, 6, 12)),
            ]
        steps.append(Step(Csg(Blob(rows, 2.5), carves=[(canal, 1.0)]), [
            Coat(0.0, 700.0, _L["bone"]), Coat(2.0, 300.0, _L["bone"])]))  # fmt: skip
    steps.append(Step(canal, [Coat(0.0, _HU["csf"], _L["spinal_canal"])]))
    # ribs 12 (floating, short) upward: the lower ones end at the side, lowest; the upper ones reach
    # the front, descending less (the costal margin rises toward the xiphoid)
    reach = [80.0, 110.0, 140.0, 150.0, 156.0] + [160.0] * 8
    for s in (1, -1):
        segs = []
        for n, z in enumerate(zv[zv >= z_rib12 - 1]):
            drop_mm = 150.0 - 15.0 * max(n - 2, 0)
            if z - drop_mm > 200:
                break
            f, yc = fz(z), yb(z) - 26 * fz(z)
            phi = np.linspace(26, reach[n], 12)
            drop = drop_mm * ((phi - 26) / (reach[n] - 26)) ** 0.9 * (reach[n] - 26) / 134
            depth = rng.uniform(4.5, 7.5)
            pts = [np.array([x0 + s * 28 * f, yc + 2, z])]
            pts += [
                wall_point(body, -90 + s * p, z - dz, depth, True)
                for p, dz in zip(phi, drop, strict=True)
            ]
            segs.append(path_tubes(np.array(pts), rng.uniform(3.6, 4.4), 5.0))
        steps.append(Step(Tubes(np.vstack(segs)), [
            Coat(0.0, 650.0, _L["bone"]), Coat(1.5, 220.0, _L["bone"])]))  # fmt: skip
    return steps, x0, yb, fz, column


def _kidney(rng, side, centre):
    """A kidney (cortex, medullary pyramids, sinus fat, pelvis): (steps, kidney blob, hilum)."""
    steps: list[Step] = []
    s = 1.0 if side == "right" else -1.0
    semi = np.array([27, 22, 52]) * rng.uniform(0.93, 1.07)
    ang = (0.0, -s * 12 + rng.normal(0, 3), -s * 35 + rng.normal(0, 5))
    rot = rotation(ang)

    def at(local):
        return centre + rot @ np.asarray(local, float)

    kidney = Blob([ellipsoid(centre, semi, ang)], warp=plane_waves(rng, 4, (60, 120), 1.0))
    lab = _L["kidney_" + side]
    pyr = [
        ellipsoid(at((s * 13, y, z)), (6, 6, 8), ang) for z in (-32, -12, 8, 28) for y in (-9, 9)
    ]
    pyr += [ellipsoid(at((-s * 4, y, z)), (5, 6, 7), ang) for z in (-38, 38) for y in (-8, 8)]
    sinus = Blob([ellipsoid(at((-s * 16, 0, 0)), (12, 10, 30), ang)], 0.0)
    pelvis = Blob([ellipsoid(at((-s * 18, 0, -4)), (6, 5, 14), ang)])
    steps.append(Step(kidney, [Coat(0.0, _HU["kidney_cortex"], lab)]))
    steps.append(Step(Blob(pyr), [Coat(0.0, _HU["medulla"], lab)]))
    steps.append(Step(sinus, [Coat(0.0, -80.0, _L["visceral_fat"])]))
    steps.append(Step(pelvis, [Coat(0.0, _HU["urine"], lab)]))
    return steps, kidney, at((-s * 26, 0, 0))


# Lobes of the liver: centre (x, y, z below the right dome's top), semi-axes, angles (degrees).
_LIVER_PARTS = (
    ((72, -2, -70), (52, 68, 62), (0, 8, 0)),  # right lobe
    ((52, -4, -30), (66, 72, 40), (0, 0, 0)),  # dome under the right hemidiaphragm
    ((82, 6, -106), (38, 46, 36), (0, -10, 0)),  # inferior tip of the right lobe
    ((-5, 30, -40), (62, 38, 26), (0, 12, -20)),  # left lobe
    ((25, 28, -58), (40, 40, 32), (0, 0, 0)),  # medial (quadrate) segment
    ((8, -15, -55), (16, 18, 28), (0, 0, 0)),  # caudate lobe
)


def _tube(points, radii, step_mm=4.0):
    return Tubes(path_tubes(np.asarray(points, float), radii, step_mm))


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


@functools.lru_cache(maxsize=4)
def _patient(seed: int) -> Patient:
    """Draw one patient's anatomy from ``seed`` (cached: it does not depend on the grid)."""
    rng = np.random.default_rng(seed)
    body, dome = Body(rng), Dome(rng)
    above = dome.flipped()
    zr, zl = dome.right[2], dome.left[2]
    cavity, fat_in = BodyLayer(body, "cavity"), BodyLayer(body, "fat")

    def jit(p, sd=3.0):
        return np.asarray(p, float) + rng.normal(0, sd, 3)

    def tex(n, wavelength_mm, amp_hu):
        return plane_waves(rng, n, wavelength_mm, amp_hu)

    def coat(name, label, inset=0.0, **kw):
        return Coat(inset, _HU.get(name, 0.0) if isinstance(name, str) else name, _L[label], **kw)

    # thorax: diaphragm, lung bases with their vessels, heart
    gxy = np.stack(np.meshgrid(np.arange(-150, 151, 5.0), np.arange(-130, 131, 5.0)), -1)
    gxy = gxy.reshape(-1, 2)
    gxy = gxy[body_points(body, np.hstack([gxy, np.full((len(gxy), 1), zr)]), "cavity") < 0]
    t_lo = np.array([*gxy.min(0) - 8, dome.height(gxy[:, 0], gxy[:, 1]).min() - 6])
    t_hi = np.array([*gxy.max(0) + 8, 400.0])
    mediastinum = Cylinders([[-6, -20, 0, 21, 110, 500, 5]])
    thorax = Csg(cavity, clips=[(above, 0.0)], carves=[(mediastinum, 0.0)])
    starts = rng.uniform((-130, -100, t_lo[2]), (130, 60, 160), (70, 3))
    ends = starts + rng.normal(0, 1, (70, 3)) * rng.uniform(8, 25, (70, 1))
    radii = np.hstack([rng.uniform(1.2, 2.4, (70, 1)), np.ones((70, 1))])
    lung_vessels = Tubes(np.hstack([starts, ends, radii]))
    hc = np.array([-12.0, 28.0, 0.0])
    hc[2] = dome.height(hc[0], hc[1]) + 44
    heart = Csg(Blob([ellipsoid(hc, (58, 45, 55), (0, 0, 35))]), clips=[(above, 4.0)])
    steps = [
        Step(thorax, [coat("muscle", "muscle"),
                      coat("lung", "lung", 4.0, texture=tex(8, (15, 40), 15)),
                      coat(110.0, "lung", 4.0, clip=lung_vessels)], t_lo, t_hi),
        Step(heart, [coat("visceral_fat", "visceral_fat", -3.0), coat("myocardium", "heart"),
                     coat("blood", "heart", 9.0)]),
    ]  # fmt: skip

    # muscles of the back and the spine
    spine_steps, x0, yb, fz, column = _spine(rng, body, zr - rng.uniform(60, 75))
    ycan = yb(0.0) - 26
    para = Cylinders([[x0 + s * 30, ycan - 22, 0, 27, 23, 500, 6] for s in (1, -1)])
    muscle_tex = tex(6, (20, 50), 3.0)
    steps.append(Step(Csg(para, clips=[(fat_in, 1.0)]), [coat(55.0, "muscle", texture=muscle_tex)]))
    zp, rp = np.array([30, -20, -80, -140, -220.0]), np.array([3, 9, 16, 21, 23.0])
    rq = np.array([3, 8, 12, 13, 13.0])
    psoas = []
    for s in (1, -1):
        psoas.append(
            _tube(np.stack([x0 + s * (22.5 * fz(zp) + 0.8 * rp + 2), yb(zp) + 4, zp], 1), rp)
        )
        ql = np.stack([x0 + s * 62 + 0 * zp, yb(zp) - 20, zp - 20], 1)
        steps += [
            Step(psoas[-1], [coat("muscle", "muscle")]),
            Step(_tube(ql, rq), [coat("muscle", "muscle")]),
        ]
    steps += spine_steps

    # kidneys, great vessels
    zk_r, zk_l = zr - 128 + rng.normal(0, 5), zr - 118 + rng.normal(0, 5)
    k_steps_r, kid_r, hilum_r = _kidney(rng, "right", jit((68, yb(zk_r) - 12, zk_r)))
    k_steps_l, kid_l, hilum_l = _kidney(rng, "left", jit((-66, yb(zk_l) - 10, zk_l)))
    za = np.array([-220, -60, 30, 100, 220.0])
    ax_a = x0 + np.array([-14, -16, -16, -20, -25])
    ay_a = yb(za) + np.array([16 * fz(za[0]) + 12, 16 * fz(za[1]) + 12, 28, 14, 8])
    aorta = _tube(np.stack([ax_a, ay_a, za], 1), [10, 10.5, 11, 11, 11])

    def a_at(z):
        return np.array([np.interp(z, za, ax_a), np.interp(z, za, ay_a), z])

    ivc_pts = np.array([(24, yb(-220) + 24, -220), (24, yb(-40) + 24, -40), (22, -20, zr - 100),
                        (20, -28, zr - 50), (14, -26, zr - 12), (10, -14, zr + 10),
                        (8, 0, zr + 40)])  # fmt: skip
    ivc = _tube(ivc_pts, [10.5, 10.5, 11, 11.5, 12, 12, 12])

    # liver, sized to 1.3-1.8 L on a 3 mm planning grid, with its gallbladder
    parts = [(jit(c, 4) + np.array([0, 0, zr]), np.array(a) * rng.uniform(0.93, 1.07, 3),
              np.array(g) + rng.normal(0, 4, 3)) for c, a, g in _LIVER_PARTS]  # fmt: skip
    warp = tex(6, (60, 140), 3.0)
    ref, scale = np.array([50, 0, zr - 60]), rng.uniform(0.94, 1.06)
    gb_rel, gb_semi = jit((38, 32, zr - 108)), np.array([15, 17, 36]) * rng.uniform(0.85, 1.1)
    gb_ang = (50 + rng.normal(0, 8), 0, 15 + rng.normal(0, 8))
    for _ in range(8):
        lobes = Blob([ellipsoid(ref + scale * (c - ref), scale * a, g) for c, a, g in parts],
                     18 * scale, warp, band_mm=(-np.inf, np.inf))  # fmt: skip
        gb = Blob([ellipsoid(ref + scale * (gb_rel - ref), gb_semi, gb_ang)])
        liver = Csg(lobes, clips=[(cavity, 1.0), (dome, 0.5)],
                    carves=[(gb, 0.8), (ivc, 0.5), (kid_r, 3.0), (aorta, 3.0), (column, 4.0),
                            (para, 3.0)])  # fmt: skip
        plan = Grid.box(liver.lo, liver.hi, 3.0)
        d_plan = liver.sdf(plan)
        volume_ml = float((d_plan < 0).sum()) * 27e-3
        if 1280 <= volume_ml <= 1800:
            break
        scale *= (1500 / volume_ml) ** (1 / 3)
    inner = np.argwhere(d_plan < 0)
    liver_lo, liver_hi = plan.origin + inner.min(0) * 3 - 3, plan.origin + inner.max(0) * 3 + 3
    lobes.band_mm = (-1.0, 4.0)  # from now on only the surface matters (and carves up to 4 mm)
    liver = Cached(liver)
    liver.lo, liver.hi = liver_lo - 5, liver_hi + 5  # the SDF is needed only near the liver

    # portal and hepatic vein trees grown in the planning grid's liver
    def in_liver(p):
        q = ((np.atleast_2d(p) - plan.origin) / 3.0).T
        return map_coordinates(d_plan, q, order=1, mode="nearest")

    pts = plan.origin + np.argwhere(d_plan < -4) * 3.0
    pts = pts[rng.choice(len(pts), min(3000, len(pts)), replace=False)]
    pts = pts + rng.uniform(-1.5, 1.5, pts.shape)
    deep = pts[in_liver(pts) < -9]
    hilum = ref + scale * (jit((34, 4, zr - 92)) - ref)
    entry = deep[np.argmin(np.linalg.norm(deep - hilum, axis=1))]
    ostium = np.array([np.interp(zr - 18, ivc_pts[:, 2], ivc_pts[:, a]) for a in (0, 1, 2)])
    # vessel-free zones: room for tumours of up to 2 * VESSEL_FREE_RADIUS_MM away from every vessel
    zones: list[np.ndarray] = []
    cand = plan.origin + np.argwhere(d_plan < -(VESSEL_FREE_RADIUS_MM + 6)) * 3.0
    for _ in range(2):
        ok = np.linalg.norm(cand - entry, axis=1) > VESSEL_FREE_RADIUS_MM + 35
        ok &= np.linalg.norm(cand[:, :2] - ostium[:2], axis=1) > VESSEL_FREE_RADIUS_MM + 20
        for c in zones:
            ok &= np.linalg.norm(cand - c, axis=1) > 2 * VESSEL_FREE_RADIUS_MM + 10
        if not ok.any():
            break
        zones.append(cand[rng.choice(np.flatnonzero(ok))])

    def inside(p):
        d = in_liver(p)
        for c in zones:
            d = np.maximum(d, VESSEL_FREE_RADIUS_MM - np.linalg.norm(np.atleast_2d(p) - c, axis=1))
        return d

    pts = pts[inside(pts) < -2]
    confluence = jit((6, 8, zr - 115), 2)
    r_pv = rng.uniform(6.5, 7.5)
    normal = np.array([1, 0.3, 0]) + rng.normal(0, 0.1, 3)
    proj = pts @ normal
    cut = np.quantile(proj, rng.uniform(0.3, 0.4))
    idx = np.arange(len(pts))
    roots = [(entry, h, 0.95 * r_pv * (len(h) / len(pts)) ** (1 / 3), 0.0)
             for h in (idx[proj >= cut], idx[proj < cut])]  # fmt: skip
    portal = vessel_tree(rng, inside, pts, roots, generations=6)
    trunk = path_tubes([confluence, entry], [r_pv, 0.95 * r_pv], smooth=False)
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

    # stomach, spleen, pancreas, bowel
    st_pts = np.array([jit(p) for p in [(-52, -10, zl - 36), (-46, 16, zl - 70), (-28, 40, zl - 98),
                                        (2, 50, zl - 110), (22, 44, zl - 108)]])  # fmt: skip
    stomach_t = _tube(st_pts, np.array([32, 29, 24, 18, 12]) * rng.uniform(0.85, 1.1))
    stomach = Csg(stomach_t, clips=[(dome, 3.0), (cavity, 2.0)], carves=[(liver, 2.0)])
    spleen_c = jit((-84, -32, zl - 48))
    spleen_semi = np.array([22, 40, 55]) * rng.uniform(0.9, 1.1)
    spleen_lobe = ellipsoid(spleen_c + np.array([8, 20, -25]), (16, 22, 25), (37, 0, 31))
    spleen_rows = [ellipsoid(spleen_c, spleen_semi, (37, 0, 31)), spleen_lobe]
    spleen_b = Blob(spleen_rows, 10.0, tex(5, (50, 100), 2.0))
    spleen = Csg(spleen_b, clips=[(cavity, 1.0), (dome, 1.0)],
                 carves=[(kid_l, 4.0), (stomach_t, 3.0)])  # fmt: skip
    panc_pts = [(38, 10, zr - 142), (30, 16, zr - 125), (8, 18, zr - 110), (-25, 8, zr - 100),
                (-58, -12, zr - 90), (-72, -22, zr - 84)]  # fmt: skip
    panc = _tube([jit(p, 2) for p in panc_pts], [14, 13, 11, 11, 9, 8])
    duo_pts = [st_pts[-1]] + [jit(p, 2) for p in [
        (40, 30, zr - 118), (52, 8, zr - 128), (53, 0, zr - 150), (48, 2, zr - 172),
        (22, 10, zr - 182), (-12, 12, zr - 180), (-30, 14, zr - 162), (-40, 18, zr - 150),
    ]]  # fmt: skip
    duo = _tube(duo_pts, 12.0)
    colon_parts = [
        ([(88, -15, -230), (90, -10, -100), (86, 0, zr - 165), (78, 18, zr - 160)], 22, -5),
        ([(78, 18, zr - 160), (55, 52, zr - 165), (15, 68, -85), (-30, 64, -75),
          (-65, 45, zl - 140), (-85, 15, zl - 95)], 20, 48),
        ([(-85, 15, zl - 95), (-96, -15, zl - 140), (-95, -22, -100), (-95, -22, -230)], 18, -15),
    ]  # fmt: skip
    colon, colon_steps = [], []
    for pts_c, r_c, level in colon_parts:
        segs = _haustra(
            path_tubes([jit(p, 3) for p in pts_c], r_c * rng.uniform(0.9, 1.1)), 24, 0.1
        )
        colon.append(Tubes(segs))
        gas = _bubbles(rng, segs, 25, (1.5, 4.5))
        colon_steps.append(Step(Csg(colon[-1], clips=[(cavity, 2.0)], carves=[(liver, 3.0)]), [
            coat(45.0, "bowel"), coat(15.0, "bowel", 3.0, texture=tex(10, (6, 14), 25)),
            coat("air", "bowel", 3.0, clip=HalfSpace(1, level + rng.normal(0, 4), -1.0)),
            coat("air", "bowel", 3.0, clip=gas)]))  # fmt: skip
    obstacles = [stomach_t, spleen_b, panc, duo, aorta, ivc, column, kid_r, kid_l, gb]
    obstacles += psoas + colon

    # distance (mm) to the other organs, tabulated every 4 mm over the small bowel's box
    walk_lo, walk_hi = np.array([-95.0, -25.0, -135.0]), np.array([60.0, 90.0, zr - 140])
    walk = Grid.box(walk_lo - 8, walk_hi + 8, 4.0)
    gp = np.stack(np.meshgrid(walk.xs, walk.ys, walk.zs, indexing="ij"), -1).reshape(-1, 3)
    room = np.minimum(in_liver(gp), -body_points(body, gp, "cavity")).reshape(walk.shape)
    for o in obstacles:
        np.minimum(room, o.sdf(walk, reach_mm=30.0), out=room)

    def clearance(p):
        return map_coordinates(room, ((p - walk.origin) / 4.0).T, order=1, mode="nearest")

    r_sb = rng.uniform(10, 12.5)
    loops = bowel_walk(rng, duo_pts[-1], walk_lo, walk_hi, clearance, r_sb, 1500)
    sb = Tubes(np.vstack([path_tubes(p, r_sb, 4.0) for p in loops]))
    sb_gas = _bubbles(rng, sb.segs, 12, (2.0, 5.0), (0, 0.6, 0))

    # veins and arteries outside the liver
    spleen_hilum = spleen_c + np.array([18, 14, -12])
    portal_sys = np.vstack([
        path_tubes([confluence, jit((10, 16, zr - 140), 2), (14, 26, -230)], [6, 5.5, 5]),
        path_tubes([confluence, jit((-25, -3, zr - 103)), jit((-58, -20, zr - 92)), spleen_hilum],
                   [5, 4.5, 4.5, 4]),
    ])  # fmt: skip
    cel, sma = a_at(zr - 88), a_at(zr - 105)
    trifurcation = cel + np.array([3, 15, 2])
    arteries = np.vstack([
        path_tubes([sma, sma + np.array([4, 16, -14]), (x0 - 6, 22, -230)], [3.5, 3.5, 3]),
        path_tubes([cel, trifurcation, jit((15, 10, zr - 88)), entry - np.array([8, 0, 8])],
                   [3, 3, 2.5, 2.2]),
        path_tubes([trifurcation, jit((-30, 5, zr - 80)), jit((-55, -10, zr - 78)), spleen_hilum],
                   [2.8, 2.5, 2.5, 2.3]),
        path_tubes([a_at(zk_r + 8), hilum_r - np.array([0, 5, 0])], 3.0, smooth=False),
        path_tubes([a_at(zk_l + 8), hilum_l - np.array([0, 5, 0])], 3.0, smooth=False),
    ])  # fmt: skip
    renal_v = np.vstack([
        path_tubes([hilum_r, (22, yb(zk_r) + 24, zk_r + 5)], 5.0, smooth=False),
        path_tubes([hilum_l, (-12, yb(zk_l) + 42, zk_l + 8), (22, yb(zk_l) + 24, zk_l + 10)], 5.0),
    ])  # fmt: skip
    cardia = st_pts[0] + np.array([20, 0, 8])
    oes = _tube([(x0 - 6, -32, 230), (x0 - 10, -26, zl + 10), (-22, -12, zl - 20), cardia], 8.0)

    steps += k_steps_r + k_steps_l
    steps += [
        Step(spleen, [coat("spleen", "spleen", texture=tex(6, (40, 90), 3.0))]),
        Step(panc, [coat("pancreas", "pancreas", texture=tex(10, (6, 16), 10))]),
        *colon_steps,
        Step(Csg(sb, clips=[(cavity, 2.0)]), [coat(70.0, "bowel"), coat("fluid", "bowel", 2.5),
                                              coat("air", "bowel", 2.5, clip=sb_gas)]),
        Step(Csg(duo, carves=[(liver, 2.0)]), [coat(70.0, "bowel"), coat("fluid", "bowel", 2.5)]),
        Step(oes, [coat(45.0, "bowel"), coat(30.0, "bowel", 4.0)]),
        Step(stomach, [coat("bowel_wall", "bowel"),
                       coat("fluid", "bowel", 4.0, texture=tex(8, (8, 30), 8)),
                       coat("air", "bowel", 4.0, clip=HalfSpace(1, rng.uniform(28, 38), -1.0))]),
        Step(aorta, [coat("aorta", "aorta")]),
        Step(ivc, [coat("ivc", "ivc")]),
        Step(Tubes(portal_sys), [coat("portal", "portal_vein")]),
        Step(Tubes(arteries), [coat("aorta", "other_vessels")]),
        Step(Tubes(renal_v), [coat("renal_vein", "other_vessels")]),
        Step(gb, [coat(50.0, "gallbladder"), coat("bile", "gallbladder", 2.5)]),
    ]  # fmt: skip
    liver_coat = coat(rng.uniform(100, 110), "liver", texture=tex(8, (40, 100), 3.5))
    trees = [
        (Tubes(np.vstack([trunk, portal])), _HU["portal"], _L["portal_vein"]),
        (Tubes(np.vstack([np.array(ostia), hepatic])), _HU["hepatic"], _L["ivc"]),
    ]
    extra = {"vessel_free_zones_mm": np.array(zones).reshape(-1, 3)}
    return Patient(body, steps, liver, liver_coat, trees, liver_lo, liver_hi, volume_ml, extra)


_NO_TEXTURE = np.zeros((0, 5))
_RENDER_LOCK = threading.Lock()
_RAS_LPS = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # array axes R, A, S in LPS world space
_WALL_HU = np.array([_HU["air"], _HU["skin"], _HU["fat"], _HU["muscle"], _HU["visceral_fat"]])
_WALL_LABELS = np.array([_L[k] for k in ("background", "skin", "subcutaneous_fat", "muscle",
                                         "visceral_fat")], np.int64)  # fmt: skip


def _paint(image, labels, grid: Grid, step: Step):
    """Paint one step's coats; return (sub-grid, SDF) or None when it misses the volume."""
    lo = step.shape.lo if step.lo is None else step.lo
    hi = step.shape.hi if step.hi is None else step.hi
    pad = max(0.0, -min(c.inset_mm for c in step.coats)) + sum(grid.spacing) + 1.0
    sub = grid.sub(np.maximum(lo - pad, -1e4), np.minimum(hi + pad, 1e4))
    if sub is None:
        return None
    d = step.shape.sdf(sub)
    spacing = np.asarray(grid.spacing, float)
    offset = np.asarray(sub.offset, np.int64)
    for c in step.coats:
        dd, inset = d, c.inset_mm
        if c.clip is not None:
            dd, inset = np.maximum(d + np.float32(inset), c.clip.sdf(sub)), 0.0
        waves = _NO_TEXTURE if c.texture is None else c.texture
        texture = pk.wave_tables(waves, sub.xs, sub.ys, sub.zs)
        dd = np.ascontiguousarray(dd, dtype=np.float32)
        pk.paint(image, labels, dd, inset, offset, spacing, c.hu, c.label, 1.0, texture)
    return sub, d


def _render(patient: Patient, grid: Grid):
    """Noise-free HU image, label map, liver mask and vessel mask of ``patient`` on ``grid``."""
    image = np.empty(grid.shape, np.float32)
    labels = np.empty(grid.shape, np.uint8)
    radius, bins, width = patient.body.columns(grid.xs, grid.ys, grid.spacing[:2])
    with _RENDER_LOCK:  # the cached liver SDF lives on the (shared) patient during a render
        try:
            tables = patient.body.tables(grid.zs)
            pk.body_layers(
                image, labels, radius, bins, width, grid.zs, tables, _WALL_HU, _WALL_LABELS
            )
            patient.liver.prime(grid, sum(grid.spacing) + 1.0)
            for step in patient.steps:
                _paint(image, labels, grid, step)
            sub, d_liver = _paint(image, labels, grid, Step(patient.liver, [patient.liver_coat]))
        finally:
            patient.liver.prime(None)
            patient.body.forget()
    box = sub.slices(grid)
    organ = np.zeros(grid.shape, np.uint8)
    organ[box] = d_liver < 0
    for tubes, hu, outside_label in patient.trees:
        painted = _paint(image, labels, grid, Step(tubes, [Coat(0.0, hu, _L["liver_vessels"])]))
        if painted is not None:
            vsub, dv = painted
            region = labels[vsub.slices(grid)]
            region[(dv < 0) & (organ[vsub.slices(grid)] == 0)] = outside_label
    vessels = np.zeros(grid.shape, np.uint8)
    vessels[box] = labels[box] == _L["liver_vessels"]
    return image, labels, organ, vessels


def _gaussian_taps(sigma_vox: float) -> np.ndarray:
    radius = max(1, int(np.ceil(2.5 * sigma_vox)))
    t = np.arange(-radius, radius + 1, dtype=float)
    w = np.exp(-0.5 * (t / max(sigma_vox, 1e-3)) ** 2)
    return w / w.sum()


def _add_noise(image: np.ndarray, spacing, seed: int) -> None:
    """Add correlated noise (sigma NOISE_SIGMA_HU), round to integers and clip to [-1024, 3071]."""
    taps = [_gaussian_taps(NOISE_CORRELATION_MM / s) for s in spacing]
    gain = NOISE_SIGMA_HU / np.sqrt(np.prod([np.sum(w**2) for w in taps]))
    key = np.random.SeedSequence([seed, 0x6E6F697365]).generate_state(1, np.uint64)[0]
    buf = np.empty(image.shape, np.float32)
    pk.noise_planes(buf, key, taps[1], taps[2])
    pk.noise_finish(image, buf, taps[0], gain, -1024.0, 3071.0)


def _check_args(seed, shape, spacing_mm):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"phantom: seed must be a non-negative integer, got {seed!r}")
    try:
        spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
    except (TypeError, ValueError):
        msg = f"phantom: spacing_mm must be a number or 3 numbers (mm), got {spacing_mm!r}"
        raise InputError(msg) from None
    if not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise InputError(f"phantom: spacing_mm must be positive and finite, got {spacing_mm!r}")
    spacing = tuple(float(s) for s in spacing)
    if shape is None:
        shape = tuple(max(1, round(f / s)) for f, s in zip(DEFAULT_FOV_MM, spacing, strict=True))
    if isinstance(shape, np.ndarray):
        shape = tuple(shape.tolist())
    ok = isinstance(shape, (tuple, list)) and len(shape) == 3
    if not ok or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0
                         for n in shape):  # fmt: skip
        raise InputError(f"phantom: shape must be 3 positive integers (X, Y, Z), got {shape!r}")
    return int(seed), tuple(int(n) for n in shape), spacing


def make_phantom(
    seed: int = 0,
    shape: tuple[int, int, int] | None = None,
    spacing_mm: float | tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Case:
    """Render the built-in abdominal CT phantom (portal venous phase) as a :class:`Case`.

    Parameters
    ----------
    seed : int, optional
        Patient seed: the same seed gives bit-identical arrays, another seed other anatomy and noise.
    shape : tuple of 3 int, optional
        Volume size (X, Y, Z) in voxels. The field of view ``shape * spacing_mm`` is centred on the
        phantom's origin; by default it is ``DEFAULT_FOV_MM`` (320 x 320 x 240 mm).
    spacing_mm : float or tuple of 3 float, optional
        Voxel size along (X, Y, Z) in mm. The anatomy is the same at any spacing (no resampling).

    Returns
    -------
    Case
        ``image``: float32 (X, Y, Z) HU, integral values in [-1024, 3071], RAS (x toward the
        patient's right, y anterior, z superior). ``organ``: uint8 liver mask including its
        intrahepatic vessels. ``extras["vessels"]``: uint8 mask of the intrahepatic vessel tree;
        ``extras["labels"]``: uint8 label map with the values of :data:`LABELS`. ``origin_mm``
        and ``direction`` place it in LPS world space with the field of view centred on (0, 0, 0).

    Raises
    ------
    InputError
        If the seed is not a non-negative integer, the spacing is not positive, the shape is not 3
        positive integers, or the field of view does not contain the whole liver with a margin.
    """
    seed, shape, spacing = _check_args(seed, shape, spacing_mm)
    patient = _patient(seed)
    fov = np.array(shape) * np.array(spacing)
    need = 2 * (
        np.maximum(np.abs(patient.liver_lo_mm), np.abs(patient.liver_hi_mm)) + LIVER_MARGIN_MM
    )
    if np.any(fov < need):
        raise InputError(
            f"phantom(seed={seed}): the field of view {' x '.join(f'{f:.1f}' for f in fov)} mm "
            f"(shape {shape} at spacing {spacing} mm) does not contain the whole liver with a "
            f"{LIVER_MARGIN_MM:g} mm margin; the minimum field of view is "
            f"{' x '.join(f'{n:.0f}' for n in np.ceil(need))} mm"
        )
    axes = [(np.arange(n) + 0.5 - n / 2) * s for n, s in zip(shape, spacing, strict=True)]
    grid = Grid(*axes, spacing=spacing)
    image, labels, organ, vessels = _render(patient, grid)
    _add_noise(image, spacing, seed)
    extras = {"vessels": vessels, "labels": labels}
    # world geometry (LPS, as SimpleITK): RAS axes, the centre of the field of view at the origin
    origin = (-float(grid.xs[0]), -float(grid.ys[0]), float(grid.zs[0]))
    source = f"phantom(seed={seed})"
    return Case(image, organ, spacing, source, extras, origin_mm=origin, direction=_RAS_LPS)
