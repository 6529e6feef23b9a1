"""CuPy kernels against the numba ones, the array boundary, and batched synthesis (CUDA GPU only).

Every test is marked ``gpu``: ``conftest.py`` skips them, with the reason, where CuPy sees no GPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from toy import toy_volume

import tumorsynth as ts
from tumorsynth.engine.gpu_pack import pack_on_device
from tumorsynth.engine.packing import pack, shape_row
from tumorsynth.engine.stages.shape import shape_geometry
from tumorsynth.kernels import cpu
from tumorsynth.kernels.layout import TILE

pytestmark = pytest.mark.gpu

CONFIGS = [
    {"preset": "syntumor", "size_class": "small"},
    {
        "preset": "liver",
        "size_class": "small",
        "location": {"avoid_vessels": False},
        "intensity": {"necrosis_probability": 1.0, "necrosis_min_radius_mm": 0.0},
        "capsule": {"min_radius_mm": 0.0},
    },
    {"preset": "liver", "size_class": "mix"},
    {  # exophytic: the render also writes outside the organ
        "preset": "kidney",
        "size_class": "small",
        "location": {"exophytic_probability": 1.0},
        "intensity": {"necrosis_probability": 1.0, "necrosis_min_radius_mm": 0.0},
    },
]


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


@pytest.fixture(scope="module")
def gpu():
    from tumorsynth.backend import get_backend

    return get_backend("cuda")


def test_texture_grid_matches_cpu(gpu):
    for seed, sa, sb in [(0, 6.0, 4.0), (1, 3.0, 7.0), (3, 15.0, 4.0)]:
        args = (seed, sa, sb, 0.05, 0.2, 0.09, 0.52, np.array([-5, -4, -6]), np.array([11, 9, 13]))
        want = cpu.texture_grid(*args)
        got = gpu.kernels.texture_grid(*args).get()
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.9, 1.7)])
@pytest.mark.parametrize("config", CONFIGS)
def test_render_matches_cpu(cp, spacing, config):
    image, organ = toy_volume(spacing=spacing)
    params = ts.sample_params(image, organ, spacing, config=config, rng=5)
    assert params.lesions
    want = ts.render(image, organ, spacing, params)
    got = ts.render(cp.asarray(image), cp.asarray(organ), spacing, params)
    assert isinstance(got.image, cp.ndarray) and got.image.dtype == cp.float32
    np.testing.assert_array_equal(got.label.get(), want.label)
    np.testing.assert_allclose(got.image.get(), want.image, rtol=0, atol=1e-3)
    replay = ts.render(cp.asarray(image), cp.asarray(organ), spacing, params, device="cuda")
    assert bool((replay.image == got.image).all()) and bool((replay.label == got.label).all())


def test_device_pack_matches_cpu_pack():
    image, organ = toy_volume()
    params = ts.sample_params(image, organ, 1.0, config=CONFIGS[2], rng=3)
    want = pack(params, cpu.texture_grids, tile=TILE)  # the GPU's tiles
    got = pack_on_device(params)
    np.testing.assert_array_equal(got.rows.get(), want.rows)
    np.testing.assert_array_equal(got.tiles.get(), want.tiles)
    np.testing.assert_array_equal(got.tile_ptr.get(), want.tile_ptr)
    np.testing.assert_array_equal(got.tile_lesions.get(), want.tile_lesions)
    np.testing.assert_allclose(got.tex.get()[: want.tex.size], want.tex, rtol=0, atol=1e-6)


def test_organ_queries_match_cpu(cp, gpu):
    image, organ = toy_volume()
    g_image, g_organ = cp.asarray(image), cp.asarray(organ)
    for got, want in zip(
        gpu.kernels.measure_organ_arrays(g_image, g_organ),
        cpu.measure_organ_arrays(image, organ),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    rng = np.random.default_rng(0)
    for _ in range(30):
        centre, radius = rng.uniform(5, 40, 3), rng.uniform(1, 12)
        assert gpu.kernels.ball_inside_organ(g_organ, np.ones(3), centre, radius) == (
            cpu.ball_inside_organ(organ, np.ones(3), centre, radius)
        )
    image[20:28, 20:23, :] += 120.0
    g_image = cp.asarray(image)
    shape = ts.sample_params(image, organ, 1.0, "syntumor", rng=1).lesions[0].shape
    geom = shape_geometry(shape)
    answers = set()
    for spacing in [np.ones(3), np.array([0.75, 0.8, 2.5])]:
        for centre in [(24.0, 21.0, 20.0), (12.0, 30.0, 20.0), (30.0, 12.0, 22.0)]:
            for threshold in (140.0, 215.0):
                row = shape_row(centre, geom, shape.deform)
                box = (np.zeros(3, np.int64), np.array(organ.shape))
                want = cpu.vessel_overlap(image, organ, spacing, row, *box, threshold, 1.0)
                got = gpu.kernels.vessel_overlap(
                    g_image, g_organ, spacing, row, *box, threshold, 1.0
                )
                assert got == want
                answers.add(want)
    assert answers == {True, False}


def test_screen_centres_matches_cpu(cp, gpu):
    if not hasattr(cpu, "screen_centres"):
        pytest.skip("the CPU kernels have no screen_centres")
    _, organ = toy_volume()
    rng = np.random.default_rng(1)
    voxels = rng.integers(0, organ.shape, size=(200, 3))
    centres = (voxels + rng.uniform(-0.5, 0.5, (200, 3))) * np.array([1.0, 1.1, 0.9])
    spacing = np.array([1.0, 1.1, 0.9])
    for placed in (np.zeros((0, 4)), np.array([[24.0, 22.0, 18.0, 6.0], [10.0, 30.0, 20.0, 3.0]])):
        for depth in (0.0, 2.0, 7.5):
            want = cpu.screen_centres(organ, spacing, voxels, centres, depth, placed, 4.0)
            got = gpu.kernels.screen_centres(
                cp.asarray(organ), spacing, voxels, centres, depth, placed, 4.0
            )
            np.testing.assert_array_equal(got, want)
            assert set(np.unique(want)) == {0, 1, 2} or depth == 0.0


def test_invalid_masks_raise_the_cpu_errors(cp):
    image, organ = toy_volume()
    bad = organ.copy()
    bad[0, 0, 0] = 3
    for a, b in [(image, bad), (image, np.zeros_like(organ))]:
        with pytest.raises(ts.InputError) as cpu_err:
            ts.as_case(a, b, 1.0)
        with pytest.raises(ts.InputError) as gpu_err:
            ts.as_case(cp.asarray(a), cp.asarray(b), 1.0)
        assert str(gpu_err.value) == str(cpu_err.value)


def _forbid_cpu_kernels(monkeypatch):
    from tumorsynth.backend import copies
    from tumorsynth.engine import organ

    names = ("render_lesions", "texture_grid", "texture_grids", "measure_organ_arrays")
    for name in (*names, "ball_inside_organ", "vessel_overlap"):
        monkeypatch.setattr(cpu, name, _forbidden)
    for name in ("copy_outputs", "start_copy"):
        monkeypatch.setattr(copies, name, _forbidden)
    monkeypatch.setattr(organ, "measure_organ_arrays", _forbidden)


def test_sample_params_on_device_arrays_match_host(cp, monkeypatch):
    image, organ = toy_volume(shape=(64, 60, 48))
    image[20:28, 20:23, :] += 120.0  # a vessel that placement must avoid
    cfgs = [{"preset": "liver", "size_class": "small" if s % 2 else "tiny"} for s in range(4)]
    want = [ts.sample_params(image, organ, 1.0, config=cfgs[s], rng=s) for s in range(4)]
    _forbid_cpu_kernels(monkeypatch)  # the device case is measured and queried on the device
    case = ts.as_case(cp.asarray(image), cp.asarray(organ), 1.0)
    assert isinstance(case.image, cp.ndarray) and isinstance(case.organ, cp.ndarray)
    for seed in range(4):
        assert ts.sample_params(case, config=cfgs[seed], rng=seed) == want[seed]


def test_torch_tensors_in_torch_tensors_out(cp):
    torch = pytest.importorskip("torch")
    image, organ = toy_volume()
    params = ts.sample_params(image, organ, 1.0, config=CONFIGS[2], rng=2)
    t_image = torch.from_numpy(image).cuda()
    t_organ = torch.from_numpy(organ).cuda().bool()
    got = ts.render(t_image, t_organ, 1.0, params)
    assert isinstance(got.image, torch.Tensor) and got.image.is_cuda
    assert got.image.dtype == torch.float32 and got.label.dtype == torch.uint8
    want = ts.render(cp.asarray(image), cp.asarray(organ), 1.0, params)
    assert bool((cp.from_dlpack(got.image) == want.image).all())
    assert bool((cp.from_dlpack(got.label) == want.label).all())
    on_cpu = ts.render(image, organ, 1.0, params, device="cuda")  # NumPy in, NumPy out
    assert isinstance(on_cpu.image, np.ndarray)
    np.testing.assert_array_equal(on_cpu.image, want.image.get())


def test_batch_matches_single_volume_renders(cp):
    from tumorsynth.engine.batch import pack_batch, render_batch, synthesize_batch

    shape, spacing = (48, 44, 40), (0.8, 0.9, 1.7)
    items = [toy_volume(shape, spacing, seed=s) for s in range(4)]
    params = [
        ts.sample_params(im, org, spacing, config=CONFIGS[s % 3], rng=s)
        for s, (im, org) in enumerate(items)
    ]
    params[2] = dataclasses.replace(params[2], lesions=())  # a volume without tumours
    images = cp.asarray(np.stack([im for im, _ in items]))
    organs = cp.asarray(np.stack([org for _, org in items]))
    for tile in (8, 16):
        out, labels = render_batch(images, organs, pack_batch(params, tile=tile))
        for b, (im, org) in enumerate(items):
            single = ts.render(im, org, spacing, params[b], device="cuda")
            assert bool((out[b].get() == single.image).all())
            assert bool((labels[b].get() == single.label).all())
    cfg = {"preset": "syntumor", "size_class": "small"}
    drawn = synthesize_batch(images, organs, spacing, seeds=[7, 8, 9, 10], config=cfg)
    for b in range(4):
        assert drawn.params[b] == ts.sample_params(*items[b], spacing, config=cfg, rng=7 + b)
        single = ts.render(*items[b], spacing, drawn.params[b], device="cuda")
        assert bool((drawn.images[b].get() == single.image).all())


def test_render_path_stays_on_the_device(cp, monkeypatch):
    """No host round-trip: the device part can be captured in a CUDA graph (a sync or a copy to the
    host would break the capture), and no numba kernel runs."""
    from tumorsynth.engine.batch import pack_batch
    from tumorsynth.kernels import cuda

    image, organ = toy_volume()
    params = ts.sample_params(image, organ, 1.0, config=CONFIGS[2], rng=4)
    _forbid_cpu_kernels(monkeypatch)
    g_image, g_organ = cp.asarray(image)[None], cp.asarray(organ)[None]
    want = ts.render(g_image[0], g_organ[0], 1.0, params)
    device_pack = cuda.upload(pack_batch([params]))
    out, label = cp.empty_like(g_image), cp.empty_like(g_organ)
    workspace: dict = {}
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        cuda.synthesize_pack(g_image, g_organ, out, label, device_pack, workspace)  # warm-up
        stream.begin_capture()
        cuda.synthesize_pack(g_image, g_organ, out, label, device_pack, workspace)
        graph = stream.end_capture()
        out.fill(np.nan)
        graph.launch()
    stream.synchronize()
    assert bool((out[0] == want.image).all()) and bool((label[0] == want.label).all())


def _forbidden(*args, **kwargs):
    raise AssertionError("a CPU kernel ran inside the GPU path")


def test_training_hook_on_cuda_matches_the_cpu_hook(cp):
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    from tumorsynth.stream import insert_tumours
    from tumorsynth.stream.crops import TumorStream, collate

    image, organ = toy_volume((64, 60, 56))
    host = ts.as_case(image, organ, 1.0)
    stream = TumorStream([host], patch_size=(40, 40, 40), pos_fraction=1.0, seed=4, render=False)
    rng = stream.generator()
    batch = collate([stream.sample(rng) for _ in range(3)])
    assert any(batch["params"])
    want_image, want_label = insert_tumours(batch["image"], batch["label"], batch["params"])
    got_image, got_label = insert_tumours(
        batch["image"].cuda(), batch["label"].cuda(), batch["params"]
    )
    assert got_image.is_cuda and got_label.dtype == torch.uint8
    assert torch.equal(got_image.cpu(), want_image) and torch.equal(got_label.cpu(), want_label)
