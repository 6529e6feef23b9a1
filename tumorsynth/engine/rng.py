"""Random generators: never a global RNG; every draw comes from an explicit ``Generator``."""

from __future__ import annotations

import numpy as np

from tumorsynth.errors import InputError

__all__ = ["as_generator", "fresh_seed"]


def fresh_seed() -> int:
    """A new seed from the operating system's entropy, to record when the user gave none."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``np.random.default_rng`` semantics: a Generator is used as is, an int seeds a new one.

    Raises
    ------
    InputError
        A seed that is not a non-negative integer.
    """
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
        raise InputError(f"seed must be a non-negative integer, got {rng!r}")
    return np.random.default_rng(int(rng))
