"""Outcome specs: top-1 classes and score buckets, counts with intervals, specs by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dse.errors import InputError
from dse.resilience import outcomes
from dse.resilience.outcomes import NOT_RUN, TOP1, OutcomeSpec, score_bucket


def test_top1_classes_and_sdc_buckets():
    golden = torch.tensor([[4.0, 1.0, 0.0]] * 5)
    faulty = torch.tensor([[4.0, 1.0, 0.0],  # masked
                           [4.0, 1.0, 1e-3],  # changed, same top-1, small drop
                           [0.0, 1.0, 0.0],  # top-1 changed
                           [float("nan"), 1.0, 0.0],  # NaN
                           [1.5, 1.0, 0.0]])  # same top-1, large drop
    labels = TOP1.classify(golden, faulty)
    assert labels[:, 0].tolist() == [0, 1, 2, 3, 1]
    assert labels[:, 1].tolist() == [-1, 0, 3, -1, 3]
    counts = TOP1.tally(labels[None])
    s = TOP1.summarize(counts)
    assert TOP1.columns[:5] == ("n_injections", "masked", "non_critical", "critical", "inf_nan")
    assert (s["masked"]["count"], s["non_critical"]["count"], s["critical"]["count"],
            s["inf_nan"]["count"]) == (1, 2, 1, 1)
    assert s["critical"]["rate"] == pytest.approx(0.2)
    assert s["critical"]["ci"][0] < 0.2 < s["critical"]["ci"][1]
    assert sum(s[b]["count"] for b in ("sdc_0_5", "sdc_5_10", "sdc_10_20", "sdc_20")) == 3
    for cls in TOP1.classes:  # every count has an interval containing its rate
        assert s[cls]["ci"][0] <= s[cls]["rate"] <= s[cls]["ci"][1]


def test_each_bucket_boundary_belongs_to_exactly_one_bucket():
    drops = np.array([0.0, 0.04999999, 0.05, 0.0999999, 0.10, 0.1999999, 0.20, 0.5, 1.0])
    assert score_bucket(drops).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    # through the classifier: a golden top score of 0.5 falling to exactly 0.45 is a 10 % drop
    golden = torch.log(torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64))
    faulty = torch.log(torch.tensor([[0.45, 0.275, 0.275]], dtype=torch.float64))
    drop = (0.5 - torch.softmax(faulty, 1)[0, 0].item()) / 0.5
    assert TOP1.classify(golden, faulty)[0, 1] == score_bucket(np.array([drop]))[0]


def test_pairs_not_run_do_not_count():
    labels = np.full((1, 4, 2), NOT_RUN, dtype=np.int8)
    labels[0, 1] = (2, 3)
    counts = TOP1.tally(labels)
    assert counts[0, 0] == 1 and counts[0, TOP1.columns.index("critical")] == 1
    assert counts[0].sum() == 3  # n, critical, sdc_20


def test_a_new_spec_registers_by_name_and_campaign_code_counts_it():
    def classify(golden, faulty):
        err = (faulty - golden).abs().amax(dim=1)
        return np.stack([np.where(err.numpy() > 0.1, 1, 0)], axis=1).astype(np.int8)

    spec = outcomes.register(OutcomeSpec("max_error", (("error", ("small", "large")),),
                                         classify, identical=(0,), headline="large"))
    try:
        assert outcomes.get("max_error") is spec
        labels = spec.classify(torch.zeros(3, 2), torch.tensor([[0.0, 0.0], [0.5, 0], [0, 0.05]]))
        s = spec.summarize(spec.tally(labels[None]))
        assert s["large"]["count"] == 1 and s["small"]["count"] == 2
        assert spec.columns == ("n_injections", "small", "large")
    finally:
        outcomes.SPECS.pop("max_error")
    with pytest.raises(InputError, match="unknown outcome spec"):
        outcomes.get("max_error")
