"""tumorsynth in forked processes and with CPU torch tensors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tumorsynth as ts

_FORK = """
import multiprocessing as mp
import numpy as np
import tumorsynth as ts

image = np.full((40, 40, 30), 100.0, np.float32)
organ = np.zeros(image.shape, np.uint8)
organ[6:34, 6:34, 4:26] = 1
config = {"size_class": "tiny"}


def work(seed):
    return int((ts.synthesize(image, organ, 1.0, config=config, seed=seed).label == 2).sum())


work(0)  # the parent runs the parallel kernels first, as a training script would
with mp.get_context("fork").Pool(2) as pool:
    print(pool.map(work, [1, 2]))
"""


def test_fork_after_synthesis():
    """Forked children (DataLoader workers) can synthesise after their parent has (GNU OpenMP
    would abort them: ``import tumorsynth`` selects a fork-safe threading layer)."""
    out = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = eval(out.stdout.strip())
    assert len(counts) == 2 and min(counts) > 0


def test_cpu_torch_tensors_in_and_out():
    torch = pytest.importorskip("torch", reason="torch is in the 'train' extra")
    image = np.full((40, 40, 30), 100.0, np.float32)
    organ = np.zeros(image.shape, np.uint8)
    organ[6:34, 6:34, 4:26] = 1
    config = {"size_class": "tiny"}
    out = ts.synthesize(
        torch.from_numpy(image), torch.from_numpy(organ), 1.0, config=config, seed=0
    )
    assert isinstance(out.image, torch.Tensor) and isinstance(out.label, torch.Tensor)
    again = ts.synthesize(image, organ, 1.0, config=config, seed=0)
    np.testing.assert_array_equal(out.image.numpy(), again.image)
    np.testing.assert_array_equal(out.label.numpy(), again.label)
