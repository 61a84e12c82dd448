"""Leveugle sample sizes (DATE 2009) at network / layer / bit granularity, Wilson intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dse.resilience.outcomes import classify, summarize
from dse.resilience.stats import bit_wise, layer_wise, network_wise, sample_size, wilson, z_value


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


def test_classify_outcomes_and_sdc_buckets():
    import torch

    golden = torch.tensor([[4.0, 1.0, 0.0]] * 5)
    faulty = torch.tensor([[4.0, 1.0, 0.0],  # masked
                           [4.0, 1.0, 1e-3],  # changed, same top-1, small drop
                           [0.0, 1.0, 0.0],  # top-1 changed
                           [float("nan"), 1.0, 0.0],  # NaN
                           [1.5, 1.0, 0.0]])  # same top-1, large drop
    codes, buckets = classify(golden, faulty)
    assert codes.tolist() == [0, 1, 2, 3, 1]
    assert buckets.tolist()[0] == -1 and buckets.tolist()[1] == 0 and buckets.tolist()[4] == 3
    s = summarize(codes[None, :], buckets[None, :])
    assert (s["masked"], s["non_critical"], s["critical"], s["inf_nan"]) == (1, 2, 1, 1)
    assert s["sdc1_rate"] == pytest.approx(0.2) and s["sdc1_ci"][0] < 0.2 < s["sdc1_ci"][1]
    assert np.isclose(sum(s[b] for b in ("sdc_0_5", "sdc_5_10", "sdc_10_20", "sdc_20")), 3)
