"""Training campaigns' statistics: Wilson interval coverage with the experiment as the sampling
unit, the degradation slope, the head-to-head optimizer comparison, and the default plan."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dse.cli import build_parser
from dse.resilience.training import campaign as tc
from dse.resilience.training.outcome import GROUPS, OUTCOMES, degradation_slope

RATES = {"Masked": 0.90, "Recovered": 0.05, "SharpDegrade": 0.03, "ShortTermInfNaN": 0.02}


def _campaign(rng: np.random.Generator, n: int) -> list[dict]:
    names = list(RATES)
    drawn = rng.choice(len(names), size=n, p=list(RATES.values()))
    return [{"optimizer": "adam", "mitigation": "none", "experiment": str(i),
             "outcome": names[k], "detections": "0", "acc_drop": "0.0", "slope": "nan"}
            for i, k in enumerate(drawn)]


def test_wilson_intervals_of_outcome_and_group_rates_cover_the_true_rate():
    # 500 simulated campaigns of 200 experiments with known outcome rates; the experiment is
    # the sampling unit: every 95% interval must cover its true rate in >= 93% of campaigns
    rng = np.random.default_rng(2024)
    truth = {**{o: RATES.get(o, 0.0) for o in OUTCOMES},
             **{g: sum(RATES.get(o, 0.0) for o in names) for g, names in GROUPS.items()}}
    covered = dict.fromkeys(truth, 0)
    width = dict.fromkeys(truth, 0.0)
    runs = 500
    for _ in range(runs):
        block = tc.summarize(_campaign(rng, 200))["adam/none"]
        for name, p in truth.items():
            lo, hi = block[name]["ci"]
            covered[name] += lo <= p <= hi
            width[name] += (hi - lo) / runs
    for name, p in truth.items():
        assert covered[name] / runs >= 0.93, (name, covered[name] / runs)
        if 0 < p < 1:  # informative, not [0, 1]: within 1.5x the normal interval's width
            assert width[name] < 1.5 * 2 * 1.96 * np.sqrt(p * (1 - p) / 200) + 0.01, name


def test_degradation_slope_is_the_fitted_gap_per_100_steps_over_the_last_window():
    golden = SimpleNamespace(curve=SimpleNamespace(test_acc={g: 0.9 for g in range(0, 101, 5)}))
    # the gap grows by 0.01 per 5 steps = 0.2 per 100 steps after step 60, 0 before
    acc = {g: 0.9 - max(0, g - 60) * 0.002 for g in range(0, 101, 5)}
    exp = SimpleNamespace(curve=SimpleNamespace(test_acc=acc, nonfinite=None), inject=10, end=100)
    assert degradation_slope(exp, golden, 20) == pytest.approx(0.2)
    assert degradation_slope(exp, golden, 40) == pytest.approx(0.2)
    flat = SimpleNamespace(curve=SimpleNamespace(test_acc=dict(golden.curve.test_acc),
                                                 nonfinite=None), inject=10, end=100)
    assert degradation_slope(flat, golden, 20) == pytest.approx(0.0)
    diverged = SimpleNamespace(curve=SimpleNamespace(test_acc=acc, nonfinite=70), inject=10,
                               end=100)
    assert np.isnan(degradation_slope(diverged, golden, 20))


def test_head_to_head_counts_worse_and_better_outcome_groups_on_the_same_faults():
    outcomes = {"adam": ["Masked", "SlowDegrade", "ShortTermInfNaN", "Masked"],
                "sgd": ["SharpDegrade", "Masked", "ShortTermInfNaN", "Recovered"]}
    drops = {"adam": ["0.0", "0.1", "nan", "0.0"], "sgd": ["0.2", "0.0", "nan", "0.01"]}
    rows = [{"optimizer": o, "mitigation": "none", "experiment": str(i), "outcome": out,
             "acc_drop": drops[o][i]}
            for o in ("adam", "sgd") for i, out in enumerate(outcomes[o])]
    v = tc.head_to_head(rows)["sgd vs adam/none"]
    assert v["experiments"] == 4
    assert v["worse"]["count"] == 1 and v["better"]["count"] == 1  # exp 0 worse, exp 1 better
    d = v["drop_difference"]
    assert d["n"] == 3 and d["mean"] == pytest.approx((0.2 - 0.1 + 0.01) / 3)


def test_cli_defaults_are_the_campaign_plan_defaults():
    args = build_parser().parse_args(["train-inject"])
    assert args.epochs == tc.DEFAULT_EPOCHS and args.steps_after == tc.Plan.steps_after
    assert args.experiments == tc.Plan.experiments >= 200

