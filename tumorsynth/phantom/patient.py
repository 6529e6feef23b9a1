"""One patient of the built-in phantom, drawn from its seed: the anatomy, in painting order.

:func:`draw_patient` draws every structure in turn from one random generator (the order of the draws
is part of the seed's meaning: changing it changes every patient) and lists their paint steps in the
order in which they are composited, later steps over earlier ones.
"""

from __future__ import annotations

import functools

import numpy as np

from tumorsynth.phantom.body import Body, BodyLayer
from tumorsynth.phantom.bowel import (
    colon,
    duodenum,
    duodenum_step,
    oesophagus,
    small_bowel,
    stomach,
    stomach_step,
)
from tumorsynth.phantom.liver import gallbladder_step, liver, liver_coat
from tumorsynth.phantom.organs import kidneys, pancreas, pancreas_step, spleen, spleen_step
from tumorsynth.phantom.pancreas import pancreas_parts
from tumorsynth.phantom.recipe import Patient
from tumorsynth.phantom.spine import back_muscles, spine
from tumorsynth.phantom.thorax import Dome, thorax
from tumorsynth.phantom.vessels import extrahepatic_vessels, great_vessels, liver_veins

__all__ = ["draw_patient"]


@functools.lru_cache(maxsize=4)
def draw_patient(seed: int) -> Patient:
    """Draw one patient's anatomy from ``seed`` (cached: it does not depend on the grid)."""
    rng = np.random.default_rng(seed)
    body, dome = Body(rng), Dome(rng)
    zr, zl = dome.right[2], dome.left[2]  # tops (mm) of the right and left domes of the diaphragm
    cavity, fat_in = BodyLayer(body, "cavity"), BodyLayer(body, "fat")
    steps = thorax(rng, body, dome, cavity)

    # the spine and the muscles of the back
    sp = spine(rng, body, zr - rng.uniform(60, 75))
    muscle_steps, para, psoas = back_muscles(rng, sp, fat_in)
    steps += muscle_steps + sp.steps

    # kidneys, great vessels, the liver and its vein trees
    kid_r, kid_l = kidneys(rng, zr, sp)
    great = great_vessels(sp, zr)
    carves = [
        (great.ivc, 0.5),
        (kid_r.shape, 3.0),
        (great.aorta, 3.0),
        (sp.column, 4.0),
        (para, 3.0),
    ]
    lv = liver(rng, zr, cavity, dome, carves)
    veins = liver_veins(rng, lv, great, zr)

    # stomach, spleen, pancreas, bowel
    st = stomach(rng, zl, dome, cavity, lv.shape)
    spl = spleen(rng, zl, cavity, dome, kid_l, st.tube)
    panc = pancreas(rng, zr)
    panc_parts = pancreas_parts(seed, zr, panc)  # a stream of its own: no other draw moves
    duo_pts, duo = duodenum(rng, zr, st)
    colon_tubes, colon_steps = colon(rng, zr, zl, cavity, lv.shape)
    obstacles = [st.tube, spl.blob, panc, duo, great.aorta, great.ivc, sp.column, kid_r.shape,
                 kid_l.shape, lv.gallbladder, *psoas, *colon_tubes]  # fmt: skip
    sb_step = small_bowel(rng, duo_pts[-1], zr, body, cavity, lv, obstacles)

    # veins and arteries outside the liver
    vessel_steps = extrahepatic_vessels(rng, sp, zr, great, veins, spl, (kid_r, kid_l))

    steps += kid_r.steps + kid_l.steps
    spl_step, panc_step = spleen_step(rng, spl), pancreas_step(rng, panc)
    steps += [
        spl_step,
        panc_step,
        *panc_parts.steps(panc_step.coats[0].texture, lv.shape),
        *colon_steps,
        sb_step,
        duodenum_step(duo, lv.shape),
        oesophagus(sp.x0, zl, st),
        stomach_step(rng, st),
        *vessel_steps,
        gallbladder_step(lv.gallbladder),
    ]
    extra = {"vessel_free_zones_mm": veins.zones, "pancreas_parts": panc_parts}
    return Patient(
        body=body,
        steps=steps,
        liver=lv.shape,
        liver_coat=liver_coat(rng),  # the last draw
        trees=veins.trees(),
        liver_lo_mm=lv.lo_mm,
        liver_hi_mm=lv.hi_mm,
        liver_volume_ml=lv.volume_ml,
        extra=extra,
    )
