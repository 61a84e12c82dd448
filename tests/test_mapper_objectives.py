"""The objective registry and the batched metric: a metric on the vectorized path gives the same
answer as the scalar path, the EDP x metric front is a real Pareto set, constrained picks."""

from __future__ import annotations

import numpy as np
import pytest

from dse.arch import load_arch
from dse.mapper import OBJECTIVES, search, select
from dse.mapper.search import NEEDS_METRIC
from dse.problems.problem import conv_problem

PROBLEM = conv_problem(C=2, M=4, P=2, Q=2)


def _buffer_words(arrays, res) -> np.ndarray:
    """A stand-in metric that depends on the mapping, not only on energy and cycles, and pulls
    against EDP: 1 / (the DRAM level's temporal iterations)."""
    return 1.0 / arrays.temporal[:, 0, :].prod(axis=1)


def _scalar(mapping, stats) -> float:
    return 1.0 / float(np.prod([lp.factor for lp in mapping.levels[0].temporal]))


def test_registry_names_the_objectives_and_which_need_a_metric() -> None:
    assert {"edp", "energy", "delay", "sdc_fit"} <= set(OBJECTIVES)
    assert "sdc_fit" in NEEDS_METRIC and "edp" not in NEEDS_METRIC
    with pytest.raises(ValueError, match="needs a metric"):
        search(PROBLEM, load_arch("simple_weight_stationary"), "sdc_fit", workers=1)


def test_batched_metric_search_equals_the_scalar_metric_search() -> None:
    arch = load_arch("simple_weight_stationary")
    kw = dict(search="exhaustive", workers=1, time_limit=None)
    fast = search(PROBLEM, arch, "edp_sdc_fit", batch_metric=_buffer_words, **kw)
    slow = search(PROBLEM, arch, "edp_sdc_fit", extra_metric=_scalar, **kw)
    assert fast.complete and slow.complete
    assert fast.best_score == pytest.approx(slow.best_score)
    assert _scalar(fast.best, fast.best_stats) * fast.best_stats.energy_pJ * fast.best_stats.cycles \
        == pytest.approx(fast.best_score)


def test_front_is_pareto_in_edp_and_metric_and_select_honours_constraints() -> None:
    arch = load_arch("simple_weight_stationary")
    res = search(PROBLEM, arch, "edp", batch_metric=_buffer_words, search="exhaustive", workers=1,
                 time_limit=None)
    front = res.front
    edps = [st.energy_pJ * st.cycles for _, st, _ in front]
    metrics = [m for _, _, m in front]
    assert len(front) >= 2 and edps == sorted(edps)
    assert all(a > b for a, b in zip(metrics, metrics[1:], strict=False))  # strictly better metric
    assert edps[0] == pytest.approx(res.best_stats.energy_pJ * res.best_stats.cycles)
    pick = select(front, "metric", edp_slack=0.1)
    assert pick is not None and pick[1].energy_pJ * pick[1].cycles <= 1.1 * edps[0] * (1 + 1e-12)
    assert all(m >= pick[2] for (_, st, m) in front if st.energy_pJ * st.cycles <= 1.1 * edps[0])
    assert select(front, "edp", metric_max=min(metrics) / 2) is None  # reported empty, no error
