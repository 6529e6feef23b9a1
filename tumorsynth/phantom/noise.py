"""CT noise of the built-in phantom: correlated Gaussian noise, deterministic from the seed."""

from __future__ import annotations

import numpy as np

from tumorsynth.phantom.kernels import noise as phantom_noise

__all__ = ["NOISE_CORRELATION_MM", "NOISE_SIGMA_HU", "add_noise"]

#: Standard deviation (HU) of the CT noise added to every voxel.
NOISE_SIGMA_HU = 13.0
#: Correlation length of the noise: sigma (mm) of the Gaussian that smooths white noise.
NOISE_CORRELATION_MM = 0.7


def _gaussian_taps(sigma_vox: float) -> np.ndarray:
    radius = max(1, int(np.ceil(2.5 * sigma_vox)))
    t = np.arange(-radius, radius + 1, dtype=float)
    w = np.exp(-0.5 * (t / max(sigma_vox, 1e-3)) ** 2)
    return w / w.sum()


def add_noise(image: np.ndarray, spacing, seed: int) -> None:
    """Add correlated noise (sigma NOISE_SIGMA_HU), round to integers and clip to [-1024, 3071]."""
    taps = [_gaussian_taps(NOISE_CORRELATION_MM / s) for s in spacing]
    gain = NOISE_SIGMA_HU / np.sqrt(np.prod([np.sum(w**2) for w in taps]))
    key = np.random.SeedSequence([seed, 0x6E6F697365]).generate_state(1, np.uint64)[0]
    buf = np.empty(image.shape, np.float32)
    phantom_noise.noise_planes(buf, key, taps[1], taps[2])
    phantom_noise.noise_finish(image, buf, taps[0], gain, -1024.0, 3071.0)
