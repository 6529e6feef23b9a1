"""The kernels against their NumPy oracles (``tumorsynth.kernels.reference``), on every backend: the
``be`` fixture runs a test on the CPU (numba) and, where CUDA is present, on the GPU (CuPy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from toy import toy_volume

import tumorsynth as ts
from tumorsynth.backend.copies import copy_outputs
from tumorsynth.engine.packing import pack, shape_row
from tumorsynth.engine.stages.shape import N_HARMONICS, sh_basis, shape_geometry
from tumorsynth.kernels import cpu, reference
from tumorsynth.kernels.hashing import hash_u32, hash_u32_np, normal_at, normal_np
from tumorsynth.kernels.layout import FAR_RHO, INNER_RHO


def test_hash_numba_matches_numpy_including_negative_coordinates():
    coords = [(0, 0, 0, 0), (1, 2, 3, 4), (2**31 - 1, -1, -5, 7), (123456, -300, 400, -(2**20))]
    for seed, i, j, k in coords:
        assert hash_u32(seed, i, j, k) == int(hash_u32_np(seed, i, j, k))
        assert normal_at(seed, i, j, k) == pytest.approx(float(normal_np(seed, i, j, k)), abs=1e-12)
    values = hash_u32_np(7, np.arange(10000), 3, 4)
    assert len(np.unique(values)) == 10000  # no collisions on a line
    u = (values >> np.uint64(8)).astype(float) / 2**24
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.std() - 12**-0.5) < 0.01


def test_spherical_harmonics_are_orthonormal():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((200_000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    basis = sh_basis(u)
    gram = basis.T @ basis / len(u)
    assert basis.shape[1] == N_HARMONICS
    np.testing.assert_allclose(gram, np.eye(N_HARMONICS), atol=0.02)


@pytest.mark.parametrize("seed", [0, 1])
def test_texture_grid_matches_reference(seed, be):
    args = (seed, 6.0, 4.0, 0.05, 0.2, 0.09, 0.52, np.array([-5, -4, -6]), np.array([11, 9, 13]))
    got = be.to_host(be.kernels.texture_grid(*args))
    np.testing.assert_allclose(got, reference.texture_grid(*args), atol=1e-5)


def test_texture_grids_batch_equals_one_lattice_at_a_time():
    rng = np.random.default_rng(0)
    n = 7
    seeds = rng.integers(0, 2**31, n)
    values = np.column_stack(
        [
            rng.uniform(3, 15, n),
            rng.uniform(3, 6, n),
            np.full(n, 0.05),
            np.full(n, 0.2),
            np.full(n, 0.09),
            rng.uniform(0.4, 0.6, n),
        ]
    )
    lo = rng.integers(-12, -3, (n, 3))
    shape = rng.integers(4, 25, (n, 3))
    tex, offsets = cpu.texture_grids(seeds, values, lo, shape)
    assert offsets[-1] == tex.size == int(np.prod(shape, axis=1).sum())
    for i in range(n):
        want = cpu.texture_grid(seeds[i], *values[i], lo[i], shape[i])
        np.testing.assert_array_equal(tex[offsets[i] : offsets[i + 1]], want.ravel())


def test_texture_statistics_match_the_reference_bank():
    """Mean ~ u0 and a voxel standard deviation in the reference bank's 0.016-0.069 range."""
    stds = []
    for sa, sb in [(3.0, 7.0), (9.0, 4.0), (15.0, 4.0)]:
        grid = cpu.texture_grid(
            3, sa, sb, 0.05, 0.2, 0.09, 0.52, np.array([-8] * 3), np.array([17] * 3)
        )
        assert abs(grid.mean() - 0.52) < 0.04
        stds.append(grid.std())
    assert min(stds) > 0.01 and max(stds) < 0.09
    assert stds[0] < stds[2]  # smoother density field -> stronger, larger blotches


def _params(image, organ, spacing, config, seed, n=3):
    p = ts.sample_params(image, organ, spacing, config=config, rng=seed)
    return dataclasses.replace(p, lesions=p.lesions[:n])


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.9, 1.7)])
@pytest.mark.parametrize(
    "config",
    [
        {"preset": "syntumor", "size_class": "small"},
        {
            "preset": "liver",
            "size_class": "small",
            "location": {"avoid_vessels": False, "if_no_room": "skip"},
            "intensity": {"necrosis_probability": 1.0, "necrosis_min_radius_mm": 0.0},
            "capsule": {"min_radius_mm": 0.0},
        },
        {  # exophytic, with mass effect and necrosis: the render also writes outside the organ
            "preset": "kidney",
            "size_class": "small",
            "location": {"exophytic_probability": 1.0},
            "intensity": {"necrosis_probability": 1.0, "necrosis_min_radius_mm": 0.0},
        },
    ],
)
def test_render_matches_reference_on_the_same_rows(spacing, config, be):
    """The render kernel against the oracle fed the very rows it reads (the packing itself is
    checked against an oracle that starts from the params: ``tests/engine/test_render_oracle.py``)."""
    image, organ = toy_volume(spacing=spacing)
    params = _params(image, organ, spacing, config, seed=5)
    assert params.lesions
    got = ts.render(be.asarray(image), be.asarray(organ), spacing, params)
    got = ts.Synthesis(be.to_host(got.image), be.to_host(got.label), got.params)
    packed = pack(params, cpu.texture_grids)
    want_image, want_label = reference.render_lesions(
        image, organ, spacing, packed.rows, packed.tex
    )
    np.testing.assert_array_equal(got.label, want_label)
    np.testing.assert_allclose(got.image, want_image, atol=2e-3)
    outside = organ == 0
    exophytic = any(lesion.exophytic for lesion in params.lesions)
    assert exophytic == config["preset"].startswith("kidney")
    assert bool((got.label[outside] == 2).any()) == exophytic  # labelled beyond the organ
    assert bool((got.image[outside] != image[outside]).any()) == exophytic


def test_organ_queries_match_reference(be):
    image, organ = toy_volume()
    spacing = (1.0, 1.0, 1.0)
    rng = np.random.default_rng(0)
    answers = set()
    for _ in range(20):
        centre = rng.uniform(5, 40, 3)
        radius = rng.uniform(1, 12)
        got = be.kernels.ball_inside_organ(be.asarray(organ), np.ones(3), centre, radius)
        assert got == reference.ball_inside_organ(organ, spacing, centre, radius)
        answers.add(bool(got))
    assert answers == {True, False}
    image[20:28, 20:23, :] += 120.0  # a bright tube
    shape = ts.sample_params(image, organ, spacing, "syntumor", rng=1).lesions[0].shape
    geom = shape_geometry(shape)
    answers = set()
    for centre in [(24.0, 21.0, 20.0), (12.0, 30.0, 20.0), (30.0, 12.0, 22.0)]:
        row = shape_row(centre, geom, shape.deform)
        box = (np.zeros(3, np.int64), np.array(organ.shape))
        vols = (be.asarray(image), be.asarray(organ))
        for threshold in (140.0, 215.0):
            got = be.kernels.vessel_overlap(*vols, np.ones(3), row, *box, threshold, 1.0)
            assert got == reference.vessel_overlap(image, organ, spacing, row, threshold, 1.0)
            answers.add(bool(got))
    assert answers == {True, False}


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 0.9, 1.7)])
def test_vessel_overlap_matches_reference_in_lesion_boxes(spacing, be):
    """The slab-by-slab check, in each candidate's own box (clipped at the volume's faces), gives
    the whole-volume oracle's answer, hits and misses alike."""
    from tumorsynth.engine.packing import lesion_box

    image, organ = toy_volume(spacing=spacing, seed=3)
    image[:, 20:22, 12:14] += 150.0  # a vessel along x, one across, and one up z
    image[30:32, :, 25:27] += 150.0
    image[10:12, 30:32, :] += 150.0
    config = {"preset": "syntumor", "size_class": "tiny"}
    shape = ts.sample_params(image, organ, spacing, config, rng=4).lesions[0].shape
    geom = shape_geometry(shape)
    voxels = np.argwhere(organ > 0)
    rng = np.random.default_rng(5)
    answers = []
    for _ in range(40):
        centre = (voxels[rng.integers(len(voxels))] + rng.uniform(-0.5, 0.5, 3)) * spacing
        row = shape_row(centre, geom, shape.deform)
        box = lesion_box(centre, geom.extent_mm(geom.r_hi), spacing, organ.shape)
        vols = (be.asarray(image), be.asarray(organ))
        got = be.kernels.vessel_overlap(*vols, np.array(spacing), row, box[:3], box[3:], 160.0, 1.0)
        assert got == reference.vessel_overlap(image, organ, spacing, row, 160.0, 1.0), centre
        answers.append(got)
    assert 5 <= sum(answers) <= 35  # both answers are exercised


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_measure_organ_matches_numpy(dtype, be):
    image, organ = toy_volume()
    rng = np.random.default_rng(0)
    image = (image + rng.uniform(-0.5, 0.5, image.shape)).astype(dtype)  # fractions: floor
    inside = np.flatnonzero(organ)
    flat_image, flat_organ = image.reshape(-1), organ.reshape(-1)
    flat_image[rng.choice(inside, 20)] = -3000  # clipped into the first bin
    flat_image[rng.choice(inside, 20)] = 5000  # and into the last
    flat_organ[rng.choice(inside, 30)] = 0  # holes inside rows
    if dtype != np.int16:
        flat_image[rng.choice(inside, 7)] = np.nan
        flat_image[inside[:3]] = np.inf
    organ[5, 5, :] = 3  # a row of another label, and such voxels at rows' ends
    organ[organ.shape[0] // 2, organ.shape[1] // 2, [0, -1]] = 3
    scan = be.kernels.measure_organ_arrays(be.asarray(image), be.asarray(organ))
    lo, hi, count, not_binary, not_finite, hist = (be.to_host(v) for v in scan)
    idx = np.argwhere(organ == 1)
    np.testing.assert_array_equal(lo, idx.min(0))
    np.testing.assert_array_equal(hi, idx.max(0) + 1)
    values = image[organ == 1].astype(np.float64)
    finite = values[np.isfinite(values)]
    assert count == len(values) and not_binary == (organ > 1).sum()
    assert not_finite == len(values) - len(finite)
    expected = np.bincount(np.clip(np.floor(finite) + 1024, 0, 4095).astype(int), minlength=4096)
    np.testing.assert_array_equal(hist, expected)


def test_median_hu_of_the_organ():
    image, organ = toy_volume()
    assert ts.as_case(image, organ, 1.0).organ_stats.median_hu == pytest.approx(
        np.median(np.floor(image[organ == 1])), abs=1.0
    )


def test_screen_centres_matches_its_definition(be):
    _, organ = toy_volume()
    spacing = np.ones(3)
    rng = np.random.default_rng(3)
    voxels = rng.integers(0, organ.shape, size=(200, 3))
    centres = voxels + rng.uniform(-0.5, 0.5, size=(200, 3))
    placed = np.array([[24.0, 22.0, 20.0, 6.0], [10.0, 30.0, 18.0, 3.0]])
    got = be.kernels.screen_centres(be.asarray(organ), spacing, voxels, centres, 4.0, placed, 5.0)
    got = be.to_host(got)
    for n in range(200):
        in_organ = organ[tuple(voxels[n])] == 1
        clear = all(np.linalg.norm(centres[n] - p[:3]) >= 5.0 + p[3] for p in placed)
        deep = reference.ball_inside_organ(organ, spacing, centres[n], 4.0)
        assert got[n] == (0 if not in_organ else 2 if clear and deep else 1)
    assert set(np.unique(got)) == {0, 1, 2}


@pytest.mark.parametrize("preset", ["syntumor", "liver"])
def test_direction_bounds_hold_for_every_direction(preset):
    """The cube-map bounds that let the render kernel skip the shape's evaluation never cut into a
    lesion's surface band: checked on 20 000 random directions of strongly deformed lesions."""
    from tumorsynth.kernels.cpu.bounds import CURVATURE, cell_of, radial_bounds
    from tumorsynth.kernels.layout import A_MIN, CAPS_T, EDGE_SIGMA, MASS_K, MASS_REACH

    image, organ = toy_volume((64, 60, 56))
    config = {"preset": preset, "size_class": "medium", "location": {"if_no_room": "skip"}}
    rows = np.concatenate(
        [pack(_params(image, organ, 1.0, config, seed=s), cpu.texture_grids).rows for s in range(4)]
    )
    bounds = radial_bounds(rows, CURVATURE)
    u = np.random.default_rng(0).normal(size=(20_000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    for i, row in enumerate(rows):
        big_r = reference._radial(row, u)
        # mm per unit of unit-ball radius along each direction (at least the smallest semi-axis)
        scale = np.linalg.norm(u @ np.linalg.inv(row[3:12].reshape(3, 3)).T, axis=1)
        assert (scale >= row[A_MIN] * (1 - 1e-9)).all()
        inward = max(3 * row[EDGE_SIGMA], 2.5 * row[CAPS_T]) / scale
        outward = max(3 * row[EDGE_SIGMA], 1.5 * row[CAPS_T])
        outward = max(outward, row[MASS_REACH] if row[MASS_K] > 0 else 0.0) / scale
        cells = np.array([cell_of(*v) for v in u])
        inner, far = bounds[i, cells[:, 0], cells[:, 1], cells[:, 2]].T
        # never tighter than the exact surface band (nor than the global bounds, which win)
        assert (inner <= np.maximum(big_r - inward, row[INNER_RHO]) + 1e-12).all()
        assert (far >= np.minimum(big_r + outward, row[FAR_RHO]) - 1e-12).all()
        assert np.median(far - inner) < 0.8 * (row[FAR_RHO] - row[INNER_RHO]), "bounds too loose"


def test_curvature_constants_bound_each_basis_function_on_every_face():
    """CURVATURE[k] bounds the second derivative of the k-th radial term along a cube-map face's
    coordinate lines (finite differences at 5 000 random points per face)."""
    from tumorsynth.kernels.cpu.bounds import CURVATURE, _direction
    from tumorsynth.kernels.layout import DEFORM, KAPPA, N_FIELDS

    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, size=(5_000, 2))
    h = 1e-3
    rows = np.zeros((15, N_FIELDS))
    rows[:, KAPPA] = 100.0  # R = 100 + one term: the floor is never reached
    rows[:, DEFORM : DEFORM + 15] = np.eye(15)
    worst = np.zeros(15)
    for face in range(6):

        def terms(da, db, face=face):
            u = np.array([_direction(face, a + da, b + db) for a, b in points])
            return np.array([reference._radial(row, u) - 100.0 for row in rows])

        f0 = terms(0, 0)
        d_aa = (terms(h, 0) - 2 * f0 + terms(-h, 0)) / h**2
        d_bb = (terms(0, h) - 2 * f0 + terms(0, -h)) / h**2
        worst = np.maximum(worst, np.maximum(np.abs(d_aa), np.abs(d_bb)).max(axis=1))
    assert (worst <= CURVATURE).all(), worst
    assert (worst >= 0.8 * CURVATURE).all(), worst  # and not far above it


def test_edge_weight_table_is_phi_within_1e_10():
    """The render's edge weight (cubic pieces of EDGE_TABLE) against erfc, and the CUDA copy of the
    table holds the very same doubles."""
    from numba import njit

    from tumorsynth.kernels.cpu.effects import edge_weight
    from tumorsynth.kernels.edge import EDGE_TABLE, cuda_table, edge_weight_reference

    @njit
    def weights(sd, sigma):
        return np.array([edge_weight(d, sigma) for d in sd])

    u = np.linspace(-3.5, 3.5, 70_001)
    for sigma in (0.3, 1.0, 2.7):
        got = weights(u * sigma, sigma)
        assert np.abs(got - edge_weight_reference(u)).max() < 1e-10
        assert (np.diff(got) <= 0).all()  # monotone, from exactly 1 to exactly 0
        assert got[0] == 1.0 and got[-1] == 0.0
    body = cuda_table().split("{", 1)[1].rsplit("}", 1)[0]
    values = [
        float.fromhex(v) for v in body.replace("{", " ").replace("}", " ").replace(",", " ").split()
    ]
    np.testing.assert_array_equal(np.reshape(values, EDGE_TABLE.shape), EDGE_TABLE)
    assert f"TS_EDGE_PIECES {len(EDGE_TABLE)}" in cuda_table()


@pytest.mark.parametrize("tile", [16, (8, 32, 256), (3, 5, 7)])
def test_render_is_the_same_for_any_tiling_and_with_or_without_bounds(tile):
    from tumorsynth.kernels.cpu.bounds import CURVATURE, radial_bounds
    from tumorsynth.kernels.cpu.render import _render_tiles

    image, organ = toy_volume((64, 60, 56), spacing=(0.8, 0.9, 1.7))
    config = {"preset": "liver", "size_class": "mix", "location": {"if_no_room": "skip"}}
    params = _params(image, organ, (0.8, 0.9, 1.7), config, seed=2)
    want = ts.render(image, organ, (0.8, 0.9, 1.7), params)
    packed = pack(params, cpu.texture_grids, tile=tile)
    tight = radial_bounds(packed.rows, CURVATURE)
    loose = tight.copy()
    loose[..., 0], loose[..., 1] = -1.0, np.inf  # the global bounds only
    for bounds, reach in [
        (tight, tight[..., 1].max(axis=(1, 2, 3))),
        (loose, packed.rows[:, FAR_RHO]),
    ]:
        assert (reach <= packed.rows[:, FAR_RHO]).all()
        out, label = copy_outputs(image, organ)
        args = (packed.rows, bounds, reach, packed.tiles, packed.tile_ptr, packed.tile_lesions)
        spacing = np.array([0.8, 0.9, 1.7])
        _render_tiles(image, organ, out, label, spacing, *args, packed.tex, 3)  # 3 workers
        np.testing.assert_array_equal(out, want.image)
        np.testing.assert_array_equal(label, want.label)


def test_render_is_the_same_with_one_thread():
    import numba

    image, organ = toy_volume((64, 60, 56), spacing=(0.8, 0.9, 1.7))
    config = {"preset": "liver", "size_class": "mix", "location": {"if_no_room": "skip"}}
    params = _params(image, organ, (0.8, 0.9, 1.7), config, seed=4)
    want = ts.render(image, organ, (0.8, 0.9, 1.7), params)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        got = ts.render(image, organ, (0.8, 0.9, 1.7), params)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(got.image, want.image)
    np.testing.assert_array_equal(got.label, want.label)
