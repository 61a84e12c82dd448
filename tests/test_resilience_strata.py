"""Stratified intervals with the fault as the unit: coverage by simulation with known rates,
bounded (not dropped) unsampled strata, deterministic Neyman allocation, stopping rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dse.errors import InputError
from dse.resilience.stats import fault_unit_interval, wilson, z_value
from dse.resilience.strata import Estimate, Plan, Stratum, allocate, combine, run_adaptive

Z95 = z_value(0.95)


def _simulated_campaign(seed: int, plan: Plan, images: int = 32) -> tuple[Estimate, float]:
    """One adaptive campaign on strata with known rates: ~40% of strata never fail, ~40% are
    rare (a bad fault once in 30 to 3000), the rest common; weights spread over decades; a bad
    fault fails a stratum-specific share of the images (binomially) or, in half the campaigns,
    all of them (the worst case for correlated images)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(4, 40))
    w = rng.lognormal(0, 2, k)
    w /= w.sum()
    kind = rng.random(k)
    q = np.where(kind < 0.4, 0.0,
                 np.where(kind < 0.8, 10 ** rng.uniform(-3.5, -1.5, k), rng.uniform(0.05, 0.6, k)))
    f = np.ones(k) if seed % 2 else rng.uniform(0.05, 1, k)
    truth = float(np.sum(w * q * f))
    strata = [Stratum(float(x)) for x in w]

    def measure(add: list[int]) -> list[np.ndarray]:
        return [np.where(rng.random(n) < q[h], rng.binomial(images, f[h], n) / images, 0.0)
                for h, n in enumerate(add)]

    return run_adaptive(strata, measure, plan, Z95), truth


def test_95pct_interval_covers_the_true_rate_in_at_least_93pct_of_600_simulated_campaigns():
    plan = Plan(precision=0.3, floor=1e-3, max_faults=2000)
    hits, resolved = 0, 0
    for seed in range(600):
        est, truth = _simulated_campaign(seed, plan)
        hits += est.lo <= truth <= est.hi
        resolved += est.resolved(plan.precision, plan.floor)
    assert hits / 600 >= 0.93
    assert resolved > 300  # the campaigns mostly stop on the rule, not on the cap


def test_single_stratum_of_all_or_nothing_faults_is_wilson_over_faults_not_pairs():
    s = Stratum(1.0)
    s.add([1.0] * 10 + [0.0] * 90)  # 10 of 100 faults fail every image
    est = combine([s], Z95)
    # the interval of ~100 samples (99: the sample variance's n - 1), whatever the image count
    lo, hi = wilson(9.9, 99, Z95)
    assert est.value == pytest.approx(0.1)
    assert (est.lo, est.hi) == pytest.approx((lo, hi))


def test_unsampled_stratum_is_bounded_by_its_whole_share_not_dropped():
    seen = Stratum(0.9)
    seen.add([0.0] * 50 + [1.0] * 50)
    unseen = Stratum(0.1)
    with_unseen = combine([seen, unseen], Z95)
    alone = combine([seen], Z95)
    assert with_unseen.value == pytest.approx(alone.value) == pytest.approx(0.45)
    assert with_unseen.hi == pytest.approx(alone.hi + 0.1)
    assert with_unseen.lo == pytest.approx(alone.lo)


def test_a_stratum_that_showed_zero_still_widens_the_interval():
    common = Stratum(0.5)
    common.add([0.0, 1.0] * 500)
    rare = Stratum(0.5)
    rare.add([0.0] * 10)
    wide = combine([common, rare], Z95)
    rare.add([0.0] * 990)
    narrow = combine([common, rare], Z95)
    assert wide.hi > narrow.hi and wide.value == narrow.value


def test_allocation_follows_weight_times_spread_and_is_deterministic():
    a, b, c = Stratum(0.5), Stratum(0.5), Stratum(0.0)
    a.add([0.0, 1.0] * 10)  # spread 0.5
    b.add([0.0] * 19 + [1.0])  # spread ~0.22
    first = allocate([a, b, c], 100)
    assert sum(first) == 100 and first[2] == 0
    assert first[0] > first[1] > 0
    assert allocate([a, b, c], 100) == first


def test_allocation_respects_caps():
    a, b = Stratum(0.9), Stratum(0.1)
    a.add([0.0, 1.0])
    b.add([0.0, 1.0])
    assert allocate([a, b], 50, cap=[10, 100]) == [8, 42]


def test_campaign_stops_at_max_faults_and_reports_what_it_reached():
    s = Stratum(1.0)

    def one_in_100(add: list[int]) -> list[np.ndarray]:
        return [(np.arange(s.n, s.n + add[0]) % 100 == 0).astype(float)]

    est = run_adaptive([s], one_in_100, Plan(0.01, 0.0, 500), Z95)
    assert est.n == 500 and not est.resolved(0.01, 0.0)
    assert 0 < est.lo < est.value < est.hi


def test_floor_stops_a_campaign_that_sees_nothing():
    s = Stratum(1.0)
    est = run_adaptive([s], lambda add: [np.zeros(add[0])], Plan(0.2, 1e-2, 10 ** 6), Z95)
    assert est.hi < 1e-2 and est.n < 1000  # rule of three: ~3.8 / n


@pytest.mark.parametrize("kw, field", [({"precision": 0}, "--precision"),
                                       ({"precision": 1.5}, "--precision"),
                                       ({"floor": -1e-4}, "--floor"),
                                       ({"max_faults": 0}, "--max-faults")])
def test_bad_settings_raise_one_input_error_naming_the_flag(kw, field):
    with pytest.raises(InputError) as err:
        Plan(**kw)
    assert err.value.field == field


def test_relative_half_width_is_infinite_at_zero():
    assert math.isinf(Estimate(0.0, 0.0, 0.1, 10).relative)


def test_inject_interval_of_a_campaign_that_saw_nothing_is_over_faults_not_pairs():
    # dse inject's interval (outcome specs): 100 faults x 100 images, none failing, is bounded
    # like 100 samples (~3.8 %), not like 10,000 pairs (~0.04 %)
    lo, hi = fault_unit_interval(np.zeros(100), np.full(100, 100), Z95)
    assert lo == 0 and hi == pytest.approx(wilson(0, 100, Z95)[1])
