"""Random generators: never a global RNG; every draw comes from an explicit ``Generator``, and every
seed a user gives (``--seed``, ``seed=``, ``rng=``) is checked where it comes in, so that a bad one
gets a line that names it rather than NumPy's error."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from tumorsynth.errors import InputError

__all__ = ["MAX_SEED", "as_generator", "check_seed", "fresh_seed"]


def fresh_seed() -> int:
    """A new seed from the operating system's entropy, to record when the user gave none."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``np.random.default_rng`` semantics: a Generator is used as is, an int seeds a new one.

    Raises
    ------
    InputError
        A seed that :func:`check_seed` refuses.
    """
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    return np.random.default_rng(check_seed(rng))


#: The largest seed: what an int64 holds, so that a seed survives JSON, NumPy and other tools.
MAX_SEED = 2**63 - 1


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as an int, if it is a whole number from 0 to :data:`MAX_SEED`.

    Parameters
    ----------
    seed : Any
        The value given.
    what : str
        How to name it in the message (``"--seed"``, ``"phantom: seed"``).

    Raises
    ------
    InputError
        Not an integer (a float, a string, a bool), negative, or above :data:`MAX_SEED`.

    Examples
    --------
    >>> check_seed(7)
    7
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"{what} must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise InputError(f"{what} must be a whole number from 0 to 2**63 - 1, got {int(seed)}")
    return int(seed)
