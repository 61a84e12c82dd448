"""Adaptive stratified campaigns on a mapped layer, the network SDC FIT, and Pareto under
uncertainty: a finer precision only adds faults, the network figure follows its formula, a
min-SDC mapping is never statistically worse than the min-EDP one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.arch import load_arch
from dse.mapper import search
from dse.problems.models import DigitsCNN
from dse.problems.problem import conv_problem
from dse.report.analysis import network_points, overlapping, pareto_uncertain
from dse.resilience.mapped.adaptive import LayerCampaign, adaptive_resilience
from dse.resilience.network import network_sdc
from dse.resilience.strata import Plan, bit_groups


class _Recorded(LayerCampaign):
    """A campaign that remembers which fault indices it drew in each stratum."""

    drawn: list[tuple[int, int]]

    def measure(self, additions: list[int]) -> list[np.ndarray]:
        self.drawn = getattr(self, "drawn", [])
        self.drawn += [(h, j) for h, add in enumerate(additions)
                       for j in range(self.strata[h].sdc.n, self.strata[h].sdc.n + add)]
        return super().measure(additions)


def _campaign(cls=LayerCampaign) -> LayerCampaign:
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    images = torch.randn(4, 1, 8, 8)
    problem = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)
    arch = load_arch("eyeriss_like")
    mapping = search(problem, arch, objective="edp", time_limit=None, seed=0, workers=1,
                     max_evals=300).best
    return cls(problem, arch, mapping, model, "features.2", images, None, seed=3)


def test_finer_precision_continues_the_stored_campaign_and_redoes_no_fault():
    coarse = _campaign(_Recorded)
    first = adaptive_resilience(coarse, Plan(precision=0.5, floor=0.0, max_faults=250))
    stored = first.to_dict()["strata"]
    fine = _campaign(_Recorded)
    second = adaptive_resilience(fine, Plan(precision=0.2, floor=0.0, max_faults=500),
                                 stored=stored)
    assert second.sdc.n > first.sdc.n
    before = {i: d["n"] for i, d in enumerate(stored)}
    assert all(j >= before[h] for h, j in fine.drawn)  # only new fault indices were drawn
    assert len(set(fine.drawn)) == len(fine.drawn) == second.sdc.n - first.sdc.n
    # the union is exactly faults 0..n-1 of every stratum: a fresh campaign that draws those in
    # one go measures the same counts (same seed, same faults)
    fresh = _campaign()
    fractions = fresh.measure([r.sdc.n for r in fine.strata])
    for y, a, b in zip(fractions, fresh.strata, fine.strata, strict=True):
        assert (len(y), float(np.sum(y)), int(np.sum(y > 0))) == (b.sdc.n, b.sdc.total,
                                                                  b.sdc.hits)
        assert a.due.total == b.due.total


def test_bit_groups_cover_the_word_once():
    for bits in (8, 16, 24, 32):
        groups = bit_groups(bits)
        assert groups[0][0] == 0 and groups[-1][1] == bits and len(groups) <= 8
        assert all(a[1] == b[0] for a, b in zip(groups, groups[1:], strict=False))


def _stratum(mbit: float, n: int, failing: int) -> dict:
    """A stored stratum of all-or-nothing faults: ``failing`` of ``n`` fail every image."""
    return {"site": 0, "bits": [0, 1], "mbit": mbit, "n": n, "sdc": [failing, failing],
            "sdc_hits": failing, "due": [0.0, 0.0], "due_hits": 0}


def test_network_sdc_fit_is_raw_rate_times_cycle_shares_times_exposed_mbit_times_p():
    layers = [(0.75, [_stratum(2.0, 1000, 100), _stratum(6.0, 1000, 0)]),  # p = 0.1, 0
              (0.25, [_stratum(4.0, 1000, 500)])]  # p = 0.5
    fig = network_sdc(layers, fit_per_mbit=1000.0, confidence=0.95, seconds_per_inference=1e-3)
    expected = 1000.0 * (0.75 * (2.0 * 0.1 + 6.0 * 0) + 0.25 * 4.0 * 0.5)
    assert fig.fit.value == pytest.approx(expected)
    assert fig.fit.lo < expected < fig.fit.hi
    assert fig.per_fault.value == pytest.approx(expected / 1000.0 / (0.75 * 8.0 + 0.25 * 4.0))
    assert fig.per_inference.value == pytest.approx(expected * 1e-3 / 3600 / 1e9)


def _layer_rows(mappings: list[tuple[float, float, float]]) -> list[dict]:
    """One layer's kept mappings (rank 0 = min-EDP), each (sdc lo, rate, hi)."""
    return [{"point": "d", "model": "m", "layer_index": 0, "rank": k, "count": 1,
             "energy_pJ": 1e6 * (1 + k), "cycles": 1000 * (1 + k), "macs": 100,
             "edp": (1 + k) ** 2, "sdc_rate": rate, "sdc_lo": lo, "sdc_hi": hi}
            for k, (lo, rate, hi) in enumerate(mappings)]


_interval = st.tuples(st.floats(0, 0.5), st.floats(0, 0.2), st.floats(0, 0.3)).map(
    lambda t: (t[0], t[0] + t[1], t[0] + t[1] + t[2]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_interval, min_size=1, max_size=6))
def test_no_min_sdc_mapping_is_statistically_worse_than_the_min_edp_one(mappings):
    points = {p.policy: p for p in network_points(_layer_rows(mappings))}
    best, alt = points["min-EDP"], points.get("min-SDC", points["min-EDP"])
    assert not alt.sdc_lo > best.sdc_hi
    resolved_better = [m for m in mappings[1:] if m[2] < mappings[0][0]]
    if resolved_better:  # a mapping resolved apart below the min-EDP one is taken
        assert alt.sdc_hi < best.sdc_lo


def test_pareto_under_uncertainty_keeps_points_whose_intervals_overlap():
    # (EDP, SDC lo, SDC hi): b has the lower estimate but its interval overlaps a's
    a, b, c = (1.0, 0.10, 0.20), (2.0, 0.05, 0.15), (3.0, 0.30, 0.40)
    assert pareto_uncertain([a, b, c]) == [0, 1]  # c: a is cheaper and resolved below it
    assert overlapping([a, b, c], [0, 1]) == [[1, 0]]
    assert pareto_uncertain([a, (2.0, 0.01, 0.05)]) == [0, 1]  # resolved apart, both trade off
    assert pareto_uncertain([(1.0, 0.01, 0.02), (2.0, 0.05, 0.15)]) == [0]
