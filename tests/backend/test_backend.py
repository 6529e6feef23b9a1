"""The backend layer: devices chosen at the boundary, the CPU outputs' first copy and their
recycled memory."""

from __future__ import annotations

import numpy as np
import pytest
from toy import toy_volume

import tumorsynth as ts
from tumorsynth.backend import device_of, get_backend
from tumorsynth.backend.copies import start_copy
from tumorsynth.errors import InputError


def test_devices_resolve_once_and_unknown_ones_are_named():
    be = get_backend("cpu")
    assert be.name == "cpu" and be.xp is np and be.start_copy is start_copy
    assert get_backend(None, like=np.zeros(3)) is be  # memoised: one object per device
    assert device_of(np.zeros(3)) == "cpu"
    with pytest.raises(InputError, match="'tpu' is not available; choose from: cpu, cuda"):
        get_backend("tpu")


def test_start_copy_gives_float32_and_uint8_copies_while_the_caller_works():
    rng = np.random.default_rng(3)
    image = rng.integers(-1024, 2000, (41, 30, 17)).astype(np.int16)  # cast to float32 on the way
    organ = (rng.random(image.shape) < 0.3).astype(np.uint8)
    finish = start_copy(image, organ)
    image_before = image.copy()
    out, label = finish()
    assert out.dtype == np.float32 and label.dtype == np.uint8
    np.testing.assert_array_equal(out, image_before.astype(np.float32))
    np.testing.assert_array_equal(label, organ)
    assert not np.shares_memory(out, image) and not np.shares_memory(label, organ)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_recycler_reuses_memory_only_once_every_view_is_gone():
    torch = pytest.importorskip("torch")
    from tumorsynth.backend.pool import Recycler

    pool = Recycler(keep=2)
    a = pool.empty((6, 5, 4), np.float32)
    b = pool.empty((6, 5, 4), np.float32)
    assert not np.shares_memory(a, b)
    first = _address(a)
    del a
    c = pool.empty((6, 5, 4), np.float32)
    assert _address(c) == first  # a was dropped: its memory comes back
    assert pool.empty((6, 5, 4), np.uint8).dtype == np.uint8  # another dtype: its own arrays
    view, tensor = c[2:], torch.from_numpy(b)
    del b, c
    d = pool.empty((6, 5, 4), np.float32)  # both held through a view / a tensor
    assert not np.shares_memory(d, view) and not np.shares_memory(d.ravel(), tensor.numpy())
    del view
    e = pool.empty((6, 5, 4), np.float32)  # the view is gone: a's memory comes back once more
    assert _address(e) == first and not np.shares_memory(e.ravel(), tensor.numpy())
    assert len(pool._held) == 3  # keep=2 per dtype: b's was let go (its tensor keeps it) for d
    pool.clear()
    assert pool.empty((2, 2), np.float32).shape == (2, 2)


def test_synthesize_reuses_dropped_outputs_and_never_live_ones():
    from tumorsynth.backend.pool import RECYCLER

    image, organ = toy_volume((48, 44, 40), spacing=(1.5, 1.5, 1.5))
    config = {"preset": "syntumor", "size_class": "small", "location": {"if_no_room": "skip"}}
    kept = ts.synthesize(image, organ, 1.5, config=config, seed=1)
    want = kept.image.copy(), kept.label.copy()
    address = _address(ts.synthesize(image, organ, 1.5, config=config, seed=2).image)
    again = ts.synthesize(image, organ, 1.5, config=config, seed=3)  # the dropped one's memory
    assert _address(again.image) == address
    assert not np.shares_memory(again.image, kept.image)
    np.testing.assert_array_equal(kept.image, want[0])  # a live result is never written over
    np.testing.assert_array_equal(kept.label, want[1])
    fresh = ts.render(image.copy(), organ.copy(), 1.5, again.params)
    np.testing.assert_array_equal(again.image, fresh.image)
    np.testing.assert_array_equal(again.label, fresh.label)
    del again, fresh
    ts.empty_cache()
    assert not RECYCLER._held  # the memory goes back to the system as the last users drop it
