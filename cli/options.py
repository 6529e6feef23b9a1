"""Option types the commands share."""

from __future__ import annotations

import click

from tumorsynth.engine.label_maps import LABEL_MAPS, LABEL_SCHEMES, ORGAN_LABELS
from tumorsynth.engine.rng import check_seed

__all__ = ["LABEL_MAP", "LABEL_SCHEME", "ORGAN", "SEED", "host_organ"]


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


ORGAN = click.option(
    "--organ",
    type=click.Choice(list(ORGAN_LABELS)),
    help="The host organ: picks its mask from label maps (with --label-map), its preset "
    "(liver, pancreas, kidney) and, for the phantom, the organ that hosts  [default: liver]",
)
LABEL_MAP = click.option(
    "--label-map",
    default="totalsegmentator",
    show_default=True,
    type=click.Choice(list(LABEL_MAPS)),
    help="Whose label values --organ reads: TotalSegmentator (v2, total task; pancreas 7, "
    "kidneys 2 and 3), its v1, BTCV or AMOS.",
)
LABEL_SCHEME = click.option(
    "--label-scheme",
    default="shared",
    show_default=True,
    type=click.Choice(list(LABEL_SCHEMES)),
    help="Label values: shared (1 organ, 2 tumour, whichever the organ) or per_organ (liver 1/2, "
    "pancreas 3/4, kidney 5/6).",
)


def host_organ(organ: str) -> str:
    """The preset of a host organ (``kidney_left`` -> ``kidney``)."""
    return "kidney" if organ.startswith("kidney") else organ
