"""Leveugle sample sizes (DATE 2009) at network / layer / bit granularity, Wilson intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dse.resilience.stats import (
    bit_wise,
    fault_unit_interval,
    layer_wise,
    network_wise,
    sample_size,
    stratified,
    wilson,
    z_value,
)


def test_leveugle_infinite_population_1pct_99pct_is_16641():
    assert sample_size(math.inf, 0.01, 0.99) == 16641


def test_infinite_population_sizes_are_whole_numbers_rounded_up():
    n = sample_size(math.inf, 0.1, 0.95)  # 1.96^2 * 0.25 / 0.01 = 96.04
    assert n == 97 and isinstance(n, int)


def test_leveugle_finite_populations():
    # n = N / (1 + e^2 (N-1) / (t^2 p (1-p))) by hand: N=1000, e=5%, 95% -> 277.7 -> 278
    assert sample_size(1000, 0.05, 0.95) == 278
    assert sample_size(10, 0.01, 0.99) == 10  # never more than the population
    assert sample_size(1e12, 0.01, 0.99) == 16641  # large N tends to the limit


def test_granularities_follow_date2023():
    weights = {"conv1": 432, "fc": 640}
    assert network_wise(weights, 32, 0.01, 0.99) == sample_size(1072 * 32, 0.01, 0.99)
    assert layer_wise(weights, 32, 0.05, 0.95) == {"conv1": sample_size(432 * 32, 0.05, 0.95),
                                                    "fc": sample_size(640 * 32, 0.05, 0.95)}
    bw = bit_wise(weights, 8, 0.05, 0.95)
    assert len(bw) == 16 and bw[("fc", 3)] == sample_size(640, 0.05, 0.95)


def test_wilson_interval_contains_rate_and_matches_reference_value():
    lo, hi = wilson(10, 100, z_value(0.95))
    assert lo == pytest.approx(0.0552, abs=1e-4) and hi == pytest.approx(0.1744, abs=1e-4)
    lo, hi = wilson(0, 50, z_value(0.99))
    assert lo == 0.0 and 0 < hi < 0.15


def test_fault_unit_interval_is_about_wilson_for_one_pair_per_fault_and_wider_when_faults_cluster():
    z = z_value(0.95)
    # one pair per fault: independent trials, Wilson's interval (widened by m / (m - 1), the
    # unbiased variance over m faults)
    k = np.array([1] * 10 + [0] * 90)
    assert fault_unit_interval(k, np.ones(100), z) == pytest.approx(wilson(10, 100, z), rel=0.01)
    # the same 10 % of 1000 pairs, all from 1 of 10 faults: the fault is the unit, so the
    # interval is much wider than Wilson's on 1000 pairs
    clustered = fault_unit_interval(np.array([100] + [0] * 9), np.full(10, 100), z)
    assert clustered[0] <= 0.1 <= clustered[1]
    assert clustered[1] - clustered[0] > 3 * np.subtract(*wilson(100, 1000, z)[::-1])
    # equal faults (every fault fails 30 % of its images) behave like independent pairs
    assert fault_unit_interval(np.full(10, 30), np.full(10, 100), z) == pytest.approx(
        wilson(300, 1000, z), abs=1e-9)


def test_fault_unit_interval_covers_the_true_rate_at_its_confidence():
    """Simulated campaigns with a known rate: per-fault failure probabilities drawn from a
    beta distribution (mean 0.2), 40 faults x 25 images; the 95 % interval must cover 0.2 in
    about 95 % of 400 campaigns (binomial tolerance: at least 90 %)."""
    rng = np.random.default_rng(0)
    z = z_value(0.95)
    hits = 0
    for _ in range(400):
        p = rng.beta(0.5, 2.0, size=40)  # mean 0.2, strongly clustered
        k = rng.binomial(25, p)
        lo, hi = fault_unit_interval(k, np.full(40, 25), z)
        hits += lo <= 0.2 <= hi
    assert hits / 400 >= 0.90


def test_stratified_rate_is_the_share_weighted_sum_inside_its_interval():
    rate, (lo, hi) = stratified([0.75, 0.25], [0.1, 0.0], [(0.05, 0.15), (0.0, 0.04)])
    assert rate == pytest.approx(0.075) and lo < rate < hi
