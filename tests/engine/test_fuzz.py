"""Invariants over random hosts: random volumes and masks (specks, holes, masks touching the border),
random spacings and configs. Each draw ends in a documented error (``InputError``,
``PlacementError``, ``ConfigError``) or in a result that keeps every invariant
(``toy.check_invariants``) and replays identically from its params."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from toy import check_invariants

import tumorsynth as ts

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible and bounded in time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def hosts(draw):
    """An (image, organ, spacing) triple: a blob organ of a random size and place (it may touch
    the border), with optional holes and specks, in noisy HU."""
    shape = tuple(draw(st.integers(12, 32)) for _ in range(3))
    spacing = tuple(draw(st.sampled_from([0.5, 0.8, 1.0, 1.5, 2.5, 4.0])) for _ in range(3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    centre = [draw(st.floats(0.0, 1.0)) * n for n in shape]
    radius = [draw(st.floats(0.2, 0.9)) * n for n in shape]
    organ = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True)) <= 1
    if draw(st.booleans()):  # holes
        organ &= ~ndimage.binary_dilation(rng.random(shape) < 0.002, iterations=1)
    if draw(st.booleans()):  # specks: single voxels away from the blob
        organ |= rng.random(shape) < 0.001
    organ_hu = draw(st.floats(-20.0, 180.0))
    image = np.where(organ, organ_hu, -100.0) + rng.normal(0, draw(st.floats(3.0, 30.0)), shape)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16]))
    return image.astype(dtype), organ.astype(np.uint8), spacing


configs = st.fixed_dictionaries(
    {
        "preset": st.sampled_from(["liver", "syntumor"]),
        "size_class": st.sampled_from(["tiny", "small", "medium", "large", "mix"]),
        "location": st.fixed_dictionaries(
            {
                "min_depth_mm": st.sampled_from([0.0, 0.5, 2.0]),
                "depth_fraction": st.sampled_from([0.0, 0.3, 0.6]),
            }
        ),
    }
)


@FUZZ
@given(host=hosts(), config=configs, seed=st.integers(0, 2**63 - 1))
def test_random_hosts_give_a_documented_error_or_a_result_that_keeps_the_invariants(
    host, config, seed
):
    image, organ, spacing = host
    try:
        case = ts.as_case(image, organ, spacing)
        result = ts.synthesize(case, config=config, seed=seed)
    except (ts.InputError, ts.PlacementError, ts.ConfigError) as err:
        event(type(err).__name__)
        assert str(err)  # a documented error, with a message
        return
    event(f"synthesised (draw {result.params.draw})")
    assert result.params.lesions  # a result without a tumour is a PlacementError
    check_invariants(case, result)
    params = ts.TumorParams.from_dict(json.loads(json.dumps(result.params.to_dict())))
    replay = ts.render(image, organ, spacing, params)
    np.testing.assert_array_equal(replay.image, result.image)
    np.testing.assert_array_equal(replay.label, result.label)
    again = ts.sample_params(case, config=config, rng=seed)
    assert again == result.params  # the seed alone draws the same params (redraws included)


@FUZZ
@given(host=hosts(), data=st.data())
def test_inputs_that_are_not_a_host_are_refused_with_a_message(host, data):
    image, organ, spacing = host
    broken = data.draw(
        st.sampled_from(["empty", "labels", "nan", "shape", "spacing", "normalised", "2d"])
    )
    if broken == "empty":
        organ = np.zeros_like(organ)
    elif broken == "labels":
        organ = organ * 3
    elif broken == "nan":
        image = image.astype(np.float32)
        image[tuple(np.argwhere(organ)[0])] = np.nan if organ.any() else image.flat[0]
        organ = organ if organ.any() else np.ones_like(organ)
    elif broken == "shape":
        organ = organ[:-1]
    elif broken == "spacing":
        spacing = (spacing[0], 0.0, spacing[2])
    elif broken == "normalised":
        image = (image.astype(np.float32) + 1024.0) / 4096.0
    elif broken == "2d":
        image, organ = image[..., 0], organ[..., 0]
    try:
        ts.synthesize(image, organ, spacing, seed=0)
    except ts.InputError as err:
        assert str(err).startswith("array: ")
    else:
        raise AssertionError(f"{broken}: accepted")
