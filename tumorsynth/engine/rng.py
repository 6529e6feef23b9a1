"""Random generators: never a global RNG; every draw comes from an explicit ``Generator``."""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "fresh_seed"]


def fresh_seed() -> int:
    """A new seed from the operating system's entropy, to record when the user gave none."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``np.random.default_rng`` semantics: a Generator is used as is, an int seeds a new one."""
    return np.random.default_rng(rng)
