r"""Shells of an attribute's distribution, and the plan of test cases that samples them.

Shell :math:`k` (:math:`k = 1, 2, 3`) holds the values between :math:`(k-1)\sigma` and
:math:`k\sigma` from :math:`\mu`, on both sides: the reference's "μ ± kσ" (Hu et al., CVPR 2023,
Fig. 6), read as bands, so that shell 1 is in distribution and shells 2 and 3 are increasingly out
of it. Case :math:`j` of a shell lies below :math:`\mu` when :math:`j` is even and above when it is
odd (half the cases on each side), at :math:`\mu \pm \sigma (k - 1 + u_j)` with :math:`u_j`
uniform in [0, 1). A value below the attribute's floor
(:data:`~tumorsynth.bench.attributes.FLOORS`) is clipped to it, and the case says so.

Every test tumour :math:`j` of every attribute and shell starts from the same draw of the synthesis
config (seed and host depend on :math:`j` only), and :math:`u_j` depends on :math:`j` and the
attribute only: shells differ in the one attribute and nothing else (a paired design).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorsynth.bench.attributes import ATTRIBUTES, FLOORS
from tumorsynth.bench.stats import AttributeStats

__all__ = [
    "SHELLS",
    "SIGNED_SHELLS",
    "CaseSpec",
    "ShellDraw",
    "grid_plan",
    "shell_label",
    "shell_plan",
    "shell_range",
    "shell_value",
]

#: The shells, 1 (in distribution) to 3.
SHELLS = (1, 2, 3)
#: Shells with their side: -3 is the band from 3 sigma to 2 sigma below mu, +1 from mu to 1 sigma
#: above it, and so on.
SIGNED_SHELLS = (-3, -2, -1, 1, 2, 3)


@dataclass(frozen=True)
class ShellDraw:
    """One attribute value of one test tumour.

    Attributes
    ----------
    attribute : str
    shell : int
        1, 2 or 3.
    side : int
        -1 below :math:`\\mu`, +1 above.
    u : float
        Position within the band, in [0, 1).
    target : float
        :math:`\\mu + \\text{side} \\cdot \\sigma (\\text{shell} - 1 + u)`, in the attribute's unit.
    value : float
        ``target`` clipped to the attribute's floor.
    """

    attribute: str
    shell: int
    side: int
    u: float
    target: float
    value: float

    @property
    def signed_shell(self) -> int:
        return self.side * self.shell

    @property
    def clipped(self) -> bool:
        return self.value != self.target


@dataclass(frozen=True)
class CaseSpec:
    """One test case: the attribute value(s) to set on base draw ``index``.

    Attributes
    ----------
    kind : str
        ``"shell"`` (one attribute in a shell) or ``"grid"`` (size and intensity together).
    index : int
        The base draw: its seed and host depend on it alone.
    draws : tuple of ShellDraw
    """

    kind: str
    index: int
    draws: tuple[ShellDraw, ...]


def shell_label(shell: int, side: int = 0) -> str:
    """``"μ±2σ"`` for shell 2 (both sides), ``"μ-2σ"`` / ``"μ+2σ"`` for one side."""
    sign = {0: "±", -1: "-", 1: "+"}[side]
    return f"μ{sign}{'' if shell == 1 else shell}σ"


def shell_value(
    stats: AttributeStats, attribute: str, shell: int, side: int, u: float
) -> ShellDraw:
    """The value at position ``u`` of a shell's band on one side, clipped to the floor."""
    if shell not in SHELLS or side not in (-1, 1) or not 0.0 <= u <= 1.0:
        raise ValueError(f"bad shell {shell}, side {side} or position {u}")
    target = stats.mu + side * stats.sigma * (shell - 1 + u)
    floor = FLOORS[attribute]
    value = target if floor is None else max(target, floor)
    return ShellDraw(attribute, shell, side, float(u), float(target), float(value))


def shell_range(stats: AttributeStats, attribute: str, signed_shell: int) -> tuple[float, float]:
    """The values (low, high) of one side of a shell after clipping to the floor."""
    side, shell = (1 if signed_shell > 0 else -1), abs(signed_shell)
    ends = [shell_value(stats, attribute, shell, side, u).value for u in (0.0, 1.0)]
    return min(ends), max(ends)


def _position(seed: int, index: int, attribute: str) -> float:
    rng = np.random.default_rng([seed, index, 1 + ATTRIBUTES.index(attribute)])
    return float(rng.random())


def shell_plan(
    stats: dict[str, AttributeStats],
    cases_per_shell: int,
    seed: int,
    attributes: tuple[str, ...] = ATTRIBUTES,
) -> list[CaseSpec]:
    """Test cases for every attribute and shell: ``cases_per_shell`` each, sides alternating."""
    plan = []
    for attribute in attributes:
        for shell in SHELLS:
            for j in range(cases_per_shell):
                side = -1 if j % 2 == 0 else 1
                u = _position(seed, j, attribute)
                draw = shell_value(stats[attribute], attribute, shell, side, u)
                plan.append(CaseSpec("shell", j, (draw,)))
    return plan


def grid_plan(stats: dict[str, AttributeStats], cases_per_cell: int, seed: int) -> list[CaseSpec]:
    """Test cases over size x intensity: every signed shell of one with every signed shell of the
    other, ``cases_per_cell`` each (the shells' base draws and band positions)."""
    plan = []
    for size_shell in SIGNED_SHELLS:
        for intensity_shell in SIGNED_SHELLS:
            for j in range(cases_per_cell):
                draws = tuple(
                    shell_value(
                        stats[name], name, abs(s), 1 if s > 0 else -1, _position(seed, j, name)
                    )
                    for name, s in (("size", size_shell), ("intensity", intensity_shell))
                )
                plan.append(CaseSpec("grid", j, draws))
    return plan
