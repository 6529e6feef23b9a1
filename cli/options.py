"""Option types the commands share."""

from __future__ import annotations

import click

from tumorsynth.engine.rng import check_seed

__all__ = ["SEED"]


class _Seed(click.ParamType):
    """``--seed``: a whole number from 0 to 2**63 - 1. A bad value raises our
    :class:`~tumorsynth.errors.InputError` (``error: --seed must be ...``), not NumPy's error or
    click's usage text."""

    name = "integer"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, str):
            text = value.strip()
            value = int(text) if text.lstrip("+-").isdigit() else text
        return check_seed(value, f"--{param.name}" if param is not None else "--seed")


SEED = _Seed()
