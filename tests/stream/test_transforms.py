"""MONAI adapters: RandTumorSynth (array) and RandTumorSynthd (dictionary)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

torch = pytest.importorskip("torch", reason="the MONAI adapters need torch (the train extra)")
monai = pytest.importorskip("monai", reason="the MONAI adapters need monai (the train extra)")

from monai.data import MetaTensor  # noqa: E402

import tumorsynth as ts  # noqa: E402
from tumorsynth.transforms import RandTumorSynth, RandTumorSynthd  # noqa: E402

SPACING = 3.0


@pytest.fixture(scope="module")
def host() -> ts.Case:
    """The phantom at 3 mm (107 x 107 x 80); one synthesis compiles the kernels before any fork."""
    from tumorsynth.phantom import make_phantom

    case = make_phantom(seed=0, spacing_mm=SPACING)
    ts.synthesize(case, seed=0)
    return case


def _meta(x: np.ndarray, spacing: float = SPACING) -> MetaTensor:
    return MetaTensor(
        torch.from_numpy(np.ascontiguousarray(x))[None], affine=np.diag([spacing] * 3 + [1.0])
    )


def _sample(case: ts.Case, label_dtype=np.float32) -> dict:
    return {"image": _meta(case.image), "label": _meta(case.organ.astype(label_dtype))}


def _crop(case: ts.Case, size: int = 48) -> dict:
    """A size^3 crop centred on the organ, as (1, X, Y, Z) MetaTensors."""
    lo, hi = np.array(case.organ_stats.bbox_lo), np.array(case.organ_stats.bbox_hi)
    start = np.clip((lo + hi) // 2 - size // 2, 0, np.array(case.shape) - size)
    box = tuple(slice(a, a + size) for a in start)
    return {"image": _meta(case.image[box]), "label": _meta(case.organ[box].astype(np.float32))}


def test_inserts_tumours_only_inside_the_organ(host):
    data = _sample(host)
    out = RandTumorSynthd("image", prob=1.0).set_random_state(0)(data)
    image, label = out["image"], out["label"]
    assert isinstance(image, MetaTensor) and isinstance(label, MetaTensor)
    assert image.shape == data["image"].shape and image.dtype == torch.float32
    assert label.dtype == data["label"].dtype  # a float label stays float
    organ = data["label"] == 1
    changed = image != data["image"]
    assert changed.any()
    assert not (changed & ~organ).any(), "a voxel outside the organ changed"
    tumour = label == 2
    assert tumour.any() and not (tumour & ~organ).any(), "label 2 outside the organ"
    assert torch.equal(label[~tumour], data["label"][~tumour])
    assert torch.equal(image.affine, data["image"].affine)
    # the params: spacing read from the affine, recorded in the dict and in both metas
    params = ts.TumorParams.from_dict(out["tumorsynth_params"])
    assert params.spacing_mm == (SPACING,) * 3 and params.lesions
    assert image.meta["tumorsynth"] == label.meta["tumorsynth"] == out["tumorsynth_params"]


def test_array_transform_keeps_numpy_and_tensor_types(host):
    t = RandTumorSynth(prob=1.0, spacing_mm=SPACING).set_random_state(3)
    img, lab = t(host.image[None], host.organ[None])
    assert isinstance(img, np.ndarray) and img.dtype == np.float32 and lab.dtype == np.uint8
    assert lab.max() == 2 and t.last_params is not None
    img_t, lab_t = t(torch.from_numpy(host.image)[None], torch.from_numpy(host.organ)[None])
    assert isinstance(img_t, torch.Tensor) and lab_t.dtype == torch.uint8 and int(lab_t.max()) == 2
    with pytest.raises(ts.InputError, match="channel-first"):
        t(host.image, host.organ)


def test_prob_zero_is_identity(host):
    data = _sample(host)
    t = RandTumorSynthd("image", prob=0.0).set_random_state(0)
    for _ in range(3):
        out = t(data)
        assert torch.equal(out["image"], data["image"]) and torch.equal(out["label"], data["label"])
        assert out["tumorsynth_params"] == "" and t.last_params is None


def test_existing_tumour_passes_through(host):
    data = _sample(host)
    label = data["label"].clone()
    label[0, 60, 50, 40] = 2  # an annotated tumour: the reference gates on label.max() <= 1
    out = RandTumorSynthd("image", prob=1.0).set_random_state(0)({**data, "label": label})
    assert torch.equal(out["image"], data["image"]) and torch.equal(out["label"], label)
    assert out["tumorsynth_params"] == ""


def test_random_state_reproduces_and_seeds_differ(host):
    data = _crop(host, 64)

    def run(seed):
        return RandTumorSynthd("image", prob=1.0).set_random_state(seed)(data)

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert a["tumorsynth_params"] == b["tumorsynth_params"]
    assert not torch.equal(a["image"], c["image"])


def test_replay_of_recorded_params_is_identical(host):
    data = _crop(host, 64)
    t = RandTumorSynthd("image", prob=1.0).set_random_state(11)
    out = t(data)
    params = ts.TumorParams.from_dict(out["image"].meta["tumorsynth"])
    assert params == t.last_params
    organ = data["label"][0].numpy().astype(np.uint8)
    again = ts.render(data["image"][0].numpy(), organ, SPACING, params=params)
    np.testing.assert_array_equal(again.image, out["image"][0].numpy())
    np.testing.assert_array_equal(again.label, out["label"][0].numpy())


@pytest.mark.parametrize("preset", ["syntumor", "liver"])
def test_every_image_key_gets_the_same_tumour(host, preset):
    """A second image of the same grid (here the CT 37 HU brighter) gets the very same tumour, not
    a copy of the first image's output: the same voxels change, by the same amounts where the
    contrast is added to the host (``syntumor``), to the same tissue in the tumour where it
    replaces the host's (``liver``)."""
    data = _crop(host, 64)
    data["image2"] = data["image"] + 37.0
    t = RandTumorSynthd(["image", "image2"], prob=1.0, config=preset).set_random_state(5)
    out = t(data)
    change = out["image"] - data["image"]
    assert (change != 0).sum() > 100
    assert not torch.equal(out["image2"], out["image"])
    np.testing.assert_array_equal(out["image2"] - data["image2"] != 0, change != 0)
    if preset == "syntumor":
        np.testing.assert_allclose(out["image2"] - data["image2"], change, atol=1e-3)
    else:
        core = torch.from_numpy(ndimage.binary_erosion(out["label"][0].numpy() == 2, iterations=4))
        assert core.sum() > 50
        np.testing.assert_allclose(out["image2"][0][core], out["image"][0][core], atol=1e-3)


def test_crop_without_room_passes_through(host):
    """A crop whose organ cannot hold the drawn tumour (PlacementError) is returned unchanged."""
    img = host.image[None]
    organ = np.zeros_like(host.organ)[None]
    organ[0, 50, 50, 40] = 1  # one voxel of organ: no large tumour fits, whatever the draw
    large = {"preset": "liver", "size_class": "large"}
    t = RandTumorSynth(prob=1.0, spacing_mm=SPACING, config=large)
    no_room = 0
    for state in range(12):
        t.set_random_state(state)
        t.randomize()
        try:
            ts.sample_params(img[0], organ[0], SPACING, config=large, rng=t.seed)
        except ts.PlacementError:
            no_room += 1
            out, lab = t(img, organ, randomize=False)
            np.testing.assert_array_equal(out, img)
            np.testing.assert_array_equal(lab, organ)
            assert t.last_params is None
    assert no_room > 0, "no draw hit PlacementError: the pass-through was not exercised"
    empty = np.zeros_like(organ)  # a crop with no organ at all
    out, lab = t(img, empty)
    assert out is img and lab is empty


def test_determinism_and_distinct_dataloader_workers(host):
    from monai.data import DataLoader, Dataset
    from monai.utils import set_determinism

    items = [_crop(host, 48) for _ in range(4)]
    transform = RandTumorSynthd("image", prob=1.0)

    def epoch():
        set_determinism(seed=0)
        # spawn: numba's GNU OpenMP threading layer aborts a process forked after it ran
        loader = DataLoader(
            Dataset(items, transform), batch_size=1, num_workers=2, multiprocessing_context="spawn"
        )
        return [(b["image"][0].clone(), b["tumorsynth_params"][0]) for b in loader]

    try:
        first, second = epoch(), epoch()
    finally:
        set_determinism(seed=None)
    for (img1, p1), (img2, p2) in zip(first, second, strict=True):
        assert torch.equal(img1, img2) and p1 == p2
    texts = [p for _, p in first]
    assert all(texts), "every sample should hold a tumour"
    assert len(set(texts)) == len(texts), "two samples (two workers?) drew the same tumour"
    centres = [tuple(ts.TumorParams.from_dict(p).lesions[0].center_mm) for p in texts]
    assert len(set(centres)) == len(centres)


def test_config_preset_and_dict(host):
    data = _crop(host, 64)
    out = RandTumorSynthd("image", prob=1.0, config="syntumor").set_random_state(0)(data)
    assert ts.TumorParams.from_dict(out["tumorsynth_params"]).config == "syntumor"
    with pytest.raises(ts.ConfigError):
        RandTumorSynthd("image", config="no-such-preset")


def test_importing_tumorsynth_imports_neither_torch_nor_monai():
    code = (
        "import sys, tumorsynth, tumorsynth.transforms\n"
        "bad = [m for m in ('torch', 'monai') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_cuda_tensor_stays_on_the_gpu(host):
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    data = {k: v.cuda() for k, v in _crop(host, 64).items()}
    out = RandTumorSynthd("image", prob=1.0).set_random_state(0)(data)
    assert out["image"].is_cuda and out["label"].is_cuda and int(out["label"].max()) == 2
    cpu = RandTumorSynthd("image", prob=1.0).set_random_state(0)(
        {k: v.cpu() for k, v in data.items()}
    )
    assert out["tumorsynth_params"] == cpu["tumorsynth_params"]
    assert (out["image"].cpu() - cpu["image"]).abs().max() < 1e-3


def test_torchio_twin(host):
    tio = pytest.importorskip("torchio", reason="torchio is not installed (optional)")
    from tumorsynth.transforms.torchio import RandomTumorSynth

    affine = np.diag([SPACING] * 3 + [1.0])
    subject = tio.Subject(
        image=tio.ScalarImage(tensor=torch.from_numpy(host.image)[None], affine=affine),
        label=tio.LabelMap(tensor=torch.from_numpy(host.organ)[None], affine=affine),
    )
    torch.manual_seed(0)
    out = RandomTumorSynth(p=1.0)(subject)
    torch.manual_seed(0)
    again = RandomTumorSynth(p=1.0)(subject)
    assert torch.equal(out["image"].data, again["image"].data)
    params = ts.TumorParams.from_dict(out["tumorsynth_params"])
    assert params.spacing_mm == (SPACING,) * 3
    organ = torch.from_numpy(host.organ)[None] == 1
    changed = out["image"].data != subject["image"].data
    assert changed.any() and not (changed & ~organ).any()
    assert int(out["label"].data.max()) == 2
    replay = ts.render(host.image, host.organ, SPACING, params=params)
    np.testing.assert_array_equal(replay.image, out["image"].data[0].numpy())
