"""TumorStream: endless (healthy, tumour) training crops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the stream needs torch (the train extra)")

import tumorsynth as ts  # noqa: E402
import tumorsynth.stream.crops as stream_module  # noqa: E402
from tumorsynth.stream.crops import AIR_HU, TumorStream, collate  # noqa: E402

SPACING = 3.0
PATCH = (40, 40, 32)


@pytest.fixture(scope="module")
def host() -> ts.Case:
    from tumorsynth.phantom import make_phantom

    case = make_phantom(seed=0, spacing_mm=SPACING)
    ts.synthesize(case, seed=0)  # compile the kernels once
    return case


def _take(stream: TumorStream, n: int) -> list[dict]:
    return list(itertools.islice(iter(stream), n))


def test_items_have_the_documented_keys_shapes_and_dtypes(host):
    stream = TumorStream([host], patch_size=PATCH, pos_fraction=1.0, seed=0)
    for item in _take(stream, 4):
        assert set(item) == {"image", "label", "healthy_image", "params", "case", "crop_lo_vox"}
        for key in ("image", "healthy_image"):
            assert item[key].shape == (1, *PATCH) and item[key].dtype == torch.float32
        assert item["label"].shape == (1, *PATCH) and item["label"].dtype == torch.uint8
        assert item["crop_lo_vox"].shape == (3,) and item["case"] == 0
        assert isinstance(item["params"], dict)
        organ = item["label"] > 0
        assert organ.any(), "pos_fraction=1 must centre every crop on the organ"
        changed = item["image"] != item["healthy_image"]
        assert not (changed & ~organ).any(), "healthy and tumour images differ outside the organ"
        lo = item["crop_lo_vox"].numpy()
        box = tuple(slice(a, a + s) for a, s in zip(lo, PATCH, strict=True))
        np.testing.assert_array_equal(item["healthy_image"][0].numpy(), host.image[box])
        np.testing.assert_array_equal(organ[0].numpy(), host.organ[box] == 1)
        if item["params"]:
            assert (item["label"] == 2).any() and changed.any()


def test_params_replay_the_crop(host):
    stream = TumorStream([host], patch_size=PATCH, pos_fraction=1.0, seed=3)
    item = next(i for i in _take(stream, 6) if i["params"])
    params = ts.TumorParams.from_dict(item["params"])
    organ = (item["label"][0] > 0).numpy().astype(np.uint8)
    again = ts.render(item["healthy_image"][0].numpy(), organ, SPACING, params=params)
    np.testing.assert_array_equal(again.image, item["image"][0].numpy())
    np.testing.assert_array_equal(again.label, item["label"][0].numpy())


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(
        torch.equal(x["image"], y["image"]) and x["params"] == y["params"]
        for x, y in zip(a, b, strict=True)
    )


def test_reproducible_from_the_base_seed_and_distinct_per_rank(host, monkeypatch):
    def make(seed):
        return TumorStream([host], patch_size=PATCH, seed=seed)

    first = _take(make(1), 2)
    assert _same(first, _take(make(1), 2))
    assert not _same(first, _take(make(2), 2))
    monkeypatch.setattr(stream_module, "stream_rank", lambda default: (1, 2, 0, 1))  # rank 1 of 2
    other_rank = _take(make(1), 2)
    assert not any(
        torch.equal(a["image"], b["image"]) for a, b in zip(first, other_rank, strict=True)
    )


def test_dataloader_workers_draw_distinct_reproducible_streams(host, monkeypatch):
    from torch.utils.data import DataLoader

    stream = TumorStream([host], patch_size=PATCH, pos_fraction=1.0, seed=5)
    loader = DataLoader(
        stream,
        batch_size=1,
        num_workers=2,
        prefetch_factor=1,
        collate_fn=collate,
        multiprocessing_context="spawn",  # numba's OpenMP layer aborts forked processes
    )
    batches = list(itertools.islice(iter(loader), 2))  # worker 0's first item, then worker 1's
    assert batches[0]["image"].shape == (1, 1, *PATCH) and batches[0]["case"].shape == (1,)
    assert isinstance(batches[0]["params"], list) and len(batches[0]["params"]) == 1
    assert not torch.equal(batches[0]["image"], batches[1]["image"]), "the workers yielded the same"
    assert not torch.equal(batches[0]["crop_lo_vox"], batches[1]["crop_lo_vox"])
    for worker, batch in enumerate(batches):  # the same stream, drawn here as that worker would
        monkeypatch.setattr(stream_module, "stream_rank", lambda default, w=worker: (0, 1, w, 2))
        item = stream.sample(stream.generator())
        assert (
            torch.equal(item["image"], batch["image"][0]) and item["params"] == batch["params"][0]
        )


def test_crops_without_room_pass_through(host):
    organ = np.zeros_like(host.organ)
    organ[50, 50, 40] = 1  # one voxel of organ: no large tumour fits, whatever the draw
    tiny = ts.as_case(host.image, organ, SPACING)
    large = {"preset": "liver", "size_class": "large"}
    stream = TumorStream(
        [tiny], patch_size=(16, 16, 16), pos_fraction=1.0, prob=1.0, config=large, seed=0
    )
    items = _take(stream, 12)
    passed = [i for i in items if not i["params"]]
    assert passed, "no draw hit PlacementError: the pass-through was not exercised"
    for item in passed:
        assert torch.equal(item["image"], item["healthy_image"])
        assert int(item["label"].max()) == 1


def test_patch_larger_than_the_case_is_padded_with_air(host):
    small = ts.as_case(host.image[20:90, 20:90, 10:70], host.organ[20:90, 20:90, 10:70], SPACING)
    item = _take(TumorStream([small], patch_size=(80, 72, 64), pos_fraction=0.0, seed=0), 1)[0]
    assert item["image"].shape == (1, 80, 72, 64)
    assert float(item["healthy_image"][0, 0, 0, 0]) == AIR_HU
    assert item["crop_lo_vox"].tolist() == [-5, -1, -2]


def test_bad_arguments_are_rejected(host):
    with pytest.raises(ts.InputError, match="patch_size"):
        TumorStream([host], patch_size=(0, 8, 8))
    with pytest.raises(ts.InputError, match="pos_fraction"):
        TumorStream([host], pos_fraction=1.5)
    with pytest.raises(ts.InputError, match="empty"):
        TumorStream([])


def test_the_rank_is_read_when_the_stream_is_made(host, monkeypatch):
    """Workers started by spawn do not join the process group: the stream keeps its rank."""
    monkeypatch.setattr(stream_module, "_distributed_rank", lambda: (1, 2))
    made_on_rank_1 = TumorStream([host], patch_size=PATCH, seed=5)
    monkeypatch.setattr(stream_module, "_distributed_rank", lambda: None)  # as in such a worker
    assert made_on_rank_1.rank == (1, 2)
    other = TumorStream([host], patch_size=PATCH, seed=5)
    a, b = made_on_rank_1.generator().random(4), other.generator().random(4)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, np.random.default_rng([5, 1, 2, 0, 1]).random(4))


def test_replay_of_a_logged_item_is_identical(host):
    stream = TumorStream([host], patch_size=PATCH, pos_fraction=1.0, seed=9)
    rng = stream.generator()
    for _ in range(3):
        item = stream.sample(rng)
        seed = item["params"].get("seed") if item["params"] else None
        again = stream.replay(item["case"], item["crop_lo_vox"].tolist(), seed)
        assert again["params"] == item["params"]
        for key in ("image", "label", "healthy_image"):
            assert torch.equal(again[key], item[key])
