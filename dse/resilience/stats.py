"""Sample sizes for statistical fault injection and confidence intervals on rates.

Leveugle et al., DATE 2009: to estimate a proportion p over a fault population of N faults with
error margin e at confidence level t (the normal quantile),
``n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))``; p = 0.5 is the worst case. Ruospo et al., DATE 2023
apply it to CNN weights at three granularities: network-wise (one population: every bit of every
weight), layer-wise (one per layer: its weights x bits) and bit-wise (one per layer and bit
position: its weights). The paper's tables use t rounded to two decimals (2.58 for 99 %), which is
what gives its 16,641 for e = 1 %, 99 %, N -> inf; :func:`t_value` does the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist

from dse.errors import InputError


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence`` (0.99 -> 2.5758...)."""
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}", field="confidence")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def t_value(confidence: float) -> float:
    """The quantile as Leveugle's tables print it: rounded to two decimals (0.99 -> 2.58)."""
    return round(z_value(confidence), 2)


def sample_size(population: float, margin: float = 0.01, confidence: float = 0.99,
                p: float = 0.5) -> int:
    """Leveugle's n for a population of ``population`` faults (``math.inf`` allowed), rounded up."""
    if not 0 < margin < 1:
        raise InputError(f"margin must be in (0, 1), got {margin}", field="margin")
    if not 0 < p < 1:
        raise InputError(f"p must be in (0, 1), got {p}", field="p")
    if population < 1:
        return 0
    t = t_value(confidence)
    base = t * t * p * (1 - p) / (margin * margin)
    n = base if math.isinf(population) else population / (1 + (population - 1) / base)
    n_int = math.ceil(round(n, 6))
    return n_int if math.isinf(population) else min(n_int, int(population))


def network_wise(weights: Mapping[str, int], bits: int, margin: float, confidence: float,
                 p: float = 0.5) -> int:
    """One sample size for the whole network (population: every bit of every weight)."""
    return sample_size(sum(weights.values()) * bits, margin, confidence, p)


def layer_wise(weights: Mapping[str, int], bits: int, margin: float, confidence: float,
               p: float = 0.5) -> dict[str, int]:
    """A sample size per layer (population: that layer's weights x bits)."""
    return {k: sample_size(n * bits, margin, confidence, p) for k, n in weights.items()}


def bit_wise(weights: Mapping[str, int], bits: int, margin: float, confidence: float,
             p: float = 0.5) -> dict[tuple[str, int], int]:
    """A sample size per (layer, bit position) (population: that layer's weights)."""
    return {(k, b): sample_size(n, margin, confidence, p)
            for k, n in weights.items() for b in range(bits)}


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials at normal quantile z."""
    if n <= 0:
        return (0.0, 1.0)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
