"""Seeds a user gives (``--seed``, ``seed=``): whole numbers from 0 to :data:`MAX_SEED`, checked
where they come in, so that a bad one gets a line that names it rather than NumPy's error."""

from __future__ import annotations

import numbers
from typing import Any

from tumorsynth.errors import InputError

__all__ = ["MAX_SEED", "check_seed"]

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
