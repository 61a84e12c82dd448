"""The mapper's SDC-FIT estimate: equal to the campaign's FIT on the calibration mapping, driven by
exposure on other mappings, and usable as the mapper's batched metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_resilience_mapped_campaign import eyeriss_mapping

from dse.arch import load_arch
from dse.mapper import search, select
from dse.model.batch import mappings_to_arrays
from dse.problems.models import DigitsCNN
from dse.problems.problem import conv_problem
from dse.resilience.mapped import mapping_resilience
from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric

PROBLEM = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)


@pytest.fixture(scope="module")
def calibrated():
    torch.manual_seed(1)
    model = DigitsCNN().eval()
    images = torch.randn(8, 1, 8, 8)
    arch = load_arch("eyeriss_like")
    result = mapping_resilience(PROBLEM, arch, eyeriss_mapping(), model, "features.2", images,
                                n_faults=12, seed=3, fmt="bf16")
    return arch, result, Sensitivity.from_sites(result.per_site, 1000.0)


def test_estimate_of_the_calibration_mapping_equals_the_campaign_fit(calibrated) -> None:
    arch, result, sens = calibrated
    assert result.fit > 0  # the untrained model does fail on some bf16 faults
    arrays, _ = mappings_to_arrays(PROBLEM, arch, [eyeriss_mapping()])
    est = sdc_fit_metric(PROBLEM, arch, sens, word_bits=16)(arrays)
    assert est[0] == pytest.approx(result.fit, rel=1e-9)
    # with the live fraction: P(SDC | live fault) x the same mapping's live fraction
    live = sens.with_liveness(PROBLEM, arch, eyeriss_mapping(), word_bits=16)
    est = sdc_fit_metric(PROBLEM, arch, live, word_bits=16)(arrays)
    assert est[0] == pytest.approx(result.fit, rel=1e-9)


def test_resilience_aware_search_trades_edp_for_estimated_fit(calibrated) -> None:
    arch, _, sens = calibrated
    metric = sdc_fit_metric(PROBLEM, arch, sens, word_bits=16)
    res = search(PROBLEM, arch, "edp", batch_metric=metric, search="hybrid", max_evals=600,
                 workers=1, time_limit=None, seed=0)
    assert res.front, "the search keeps the EDP x SDC-FIT front it visited"
    fits = np.array([m for _, _, m in res.front])
    assert np.all(np.diff(fits) < 0)
    low = select(res.front, "metric")
    assert low[2] == fits.min()


def test_sensitivity_from_adaptive_strata_reproduces_the_campaign_fit() -> None:
    from dse.resilience.mapped.adaptive import LayerCampaign, adaptive_resilience
    from dse.resilience.strata import Plan

    torch.manual_seed(1)
    model = DigitsCNN().eval()
    images = torch.randn(6, 1, 8, 8)
    arch = load_arch("eyeriss_like")
    campaign = LayerCampaign(PROBLEM, arch, eyeriss_mapping(), model, "features.2", images,
                             None, seed=2, fmt="bf16")
    result = adaptive_resilience(campaign, Plan(0.9, 0.0, 500))
    assert result.fit.value > 0
    sens = Sensitivity.from_strata(result.to_dict()["strata"], 1000.0)
    per_class = result.breakdown(lambda r: (r.level, r.dataspace))
    assert sens.rates == pytest.approx({k: v.value for k, v in per_class.items()})
    # a class the calibration did not expose takes the layer-wide P(SDC | fault)
    assert sens.default == pytest.approx(result.sdc.value, rel=1e-9)
    assert sens.rate("shared_glb", "no such dataspace") == sens.default
    arrays, _ = mappings_to_arrays(PROBLEM, arch, [eyeriss_mapping()])
    est = sdc_fit_metric(PROBLEM, arch, sens, word_bits=16)(arrays)
    assert est[0] == pytest.approx(result.fit.value, rel=1e-9)
