"""Sample sizes for statistical fault injection and confidence intervals on rates.

Intervals take the *fault* as the sampling unit (:func:`fault_unit_interval`): the images one fault
runs on are not independent trials (an MSB flip fails on most of them, an LSB flip on none).

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
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np

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


def wilson(k: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials at normal quantile z."""
    if n <= 0:
        return (0.0, 1.0)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    # the interval contains phat; rounding can put a bound a hair past it at k = 0 or k = n
    return (max(0.0, min(phat, centre - half)), min(1.0, max(phat, centre + half)))


HITS_FOR_VARIANCE = 5  # failing faults below which a sample variance (design effect) is not trusted


def fault_unit_interval(k: Sequence[float] | np.ndarray, n: Sequence[float] | np.ndarray,
                        z: float) -> tuple[float, float]:
    """Interval of the rate sum(k) / sum(n) when fault i hit k[i] of its n[i] (fault, image)
    pairs. Pairs of one fault are correlated, so the Wilson interval is taken on the effective
    sample size sum(n) / design effect (Kish), the design effect being the ratio-estimator
    variance over the faults divided by the binomial variance of the pairs (at least 1). With one
    pair per fault this is the plain Wilson interval. Below ``HITS_FOR_VARIANCE`` failing faults
    the effective size is at most the number of faults."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    m, total = len(k), float(n.sum())
    if m == 0 or total <= 0:
        return (0.0, 1.0)
    p = float(k.sum()) / total
    binom = p * (1 - p) / total
    if m > 1:
        cluster = float(((k - p * n) ** 2).sum()) / (m * (m - 1) * (total / m) ** 2)
    else:
        cluster = binom
    deff = max(1.0, cluster / binom) if binom > 0 else 1.0
    n_eff = total / deff
    if int((k > 0).sum()) < HITS_FOR_VARIANCE:
        # too few failing faults to estimate the design effect: assume the worst (a fault fails
        # all its pairs or none), i.e. one sample per fault; an all-zero campaign of m faults is
        # bounded by ~3.8 / m, never by ~3.8 / pairs
        n_eff = min(n_eff, float(m))
    return wilson(p * n_eff, n_eff, z)  # real-valued k and n: the interval always contains p


def stratified(shares: Sequence[float], rates: Sequence[float],
               intervals: Sequence[tuple[float, float]]) -> tuple[float, tuple[float, float]]:
    """Sum of share x rate over strata, with a normal interval whose per-stratum variances are read
    back from the per-stratum intervals (half-width / z, squared; asymmetric intervals use each
    side)."""
    rate = sum(s * r for s, r in zip(shares, rates, strict=True))
    lo_var = sum((s * (r - lo)) ** 2 for s, r, (lo, _) in zip(shares, rates, intervals,
                                                              strict=True))
    hi_var = sum((s * (hi - r)) ** 2 for s, r, (_, hi) in zip(shares, rates, intervals,
                                                              strict=True))
    return rate, (max(0.0, rate - math.sqrt(lo_var)), min(1.0, rate + math.sqrt(hi_var)))
