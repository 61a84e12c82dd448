"""Numbers for people: significant figures, never rounded to zero, units picked per magnitude.

One place formats every figure dse prints, stores as text or draws, so a rate of 3.2e-6 never
reads ``0.0000`` in one command and ``3.2e-06`` in another. Pure functions of plain numbers; any
layer of dse may import this module (it imports nothing of dse).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

SIG = 3  # significant figures of a printed figure

# Energy units by magnitude (the stored unit is pJ everywhere).
_ENERGY = (("pJ", 1.0), ("nJ", 1e3), ("uJ", 1e6), ("mJ", 1e9), ("J", 1e12))


def num(value: Any, sig: int = SIG) -> str:
    """``value`` with ``sig`` significant figures; scientific below 1e-3 or from 1e6 on.

    Never rounds a non-zero value to zero, never pads with meaningless zeros; integers print in
    full below 10 million. ``None`` is ``-`` (no value), NaN is ``nan``.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value)) if abs(value) < 1e7 else _sci(float(value), sig)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e6:
        return _sci(x, sig)
    rounded = float(f"{x:.{sig - 1}e}")  # 99.95 -> 100: count digits after rounding
    digits = max(sig - 1 - math.floor(math.log10(abs(rounded))), 0)
    return f"{x:.{digits}f}"


def _sci(x: float, sig: int) -> str:
    mant, exp = f"{x:.{sig - 1}e}".split("e")
    return f"{mant}e{int(exp):+03d}"


def below(bound: float, sig: int = SIG) -> str:
    """``< bound``: how a zero estimate with a known upper bound is printed."""
    return f"< {num(bound, sig)}"


def interval(lo: float | None, hi: float | None, sig: int = SIG) -> str:
    """``[lo, hi]``: asymmetric intervals stay asymmetric (never ``±``)."""
    if lo is None or hi is None:
        return "-"
    return f"[{num(lo, sig)}, {num(hi, sig)}]"


def estimate(value: float | None, lo: float | None, hi: float | None, sig: int = SIG) -> str:
    """A rate and its interval: ``0.0123 [0.0101, 0.015]``; a zero count reads ``0 [0, 0.00034]``."""
    if value is None:
        return "-"
    return f"{num(value, sig)} {interval(lo, hi, sig)}"


def half_width(relative: float) -> str:
    """A relative half-width (half the interval over the estimate) as ``±25%``; past 10x the
    estimate a percentage stops being readable (``±1772379%``), so it reads ``±1.77e+04x``."""
    if relative >= 10:
        return f"±{num(relative)}x"
    return f"±{relative:.0%}"


def energy_unit(values_pJ: Iterable[float | None]) -> tuple[str, float]:
    """The unit (pJ .. J) that shows the typical value of a column between 1 and 1000.

    One unit per column (chosen by the median magnitude), so values in one column compare by eye.
    Returns ``(unit, pJ per unit)``.
    """
    vals = sorted(abs(v) for v in values_pJ if v)
    if not vals:
        return "pJ", 1.0
    mid = vals[len(vals) // 2]
    unit = _ENERGY[0]
    for name, scale in _ENERGY:
        if mid >= scale:
            unit = (name, scale)
    return unit


def energy(value_pJ: float | None, sig: int = SIG) -> str:
    """One energy with its own unit: ``4.31 mJ``."""
    if value_pJ is None:
        return "-"
    unit, scale = energy_unit([value_pJ])
    return f"{num(value_pJ / scale, sig)} {unit}"


def is_numeric(value: Any) -> bool:
    """True for numbers (numpy scalars included), False for bools, text and None."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
