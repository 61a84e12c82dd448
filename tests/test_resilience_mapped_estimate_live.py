"""The estimate's live fraction: the closed form from the loop order equals the fraction of the
fault injector's own draws that some MAC still reads (operands) or that hold an absorbed product
(partial sums), and the estimate scales each class by it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from _model_random import random_mapping

from dse.arch import load_arch
from dse.model.batch import mappings_to_arrays
from dse.problems.problem import Problem, conv_problem
from dse.resilience.mapped.deltas import drawn_live_share
from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric
from dse.resilience.mapped.exposure import exposures
from dse.resilience.mapped.exposure_batch import batch_exposure, batch_live, site_classes
from dse.resilience.mapped.sites import MAC_SITE, Nest

DRAWS = 300  # faults per class and mapping: binomial standard error <= 0.03


def injector_live(nest: Nest, arch, rng: np.random.Generator) -> dict[tuple[str, str], float]:
    """Per class, the share of faults drawn as ``campaign.draw_fault`` draws them (uniform step,
    instance, resident word) that the injector's reader sets find live."""
    out = {}
    for site in exposures(nest, arch):
        if site.dataspace == MAC_SITE:
            continue
        out[(site.level_name, site.dataspace)] = drawn_live_share(nest, site, DRAWS, rng)
    return out


def compare(problem: Problem, design: str, count: int, seed: int, dataspaces: set[str]) -> int:
    """Assert closed form == injector within 4 standard errors on ``count`` random mappings, for
    the classes of ``dataspaces``; returns how many classes had a live fraction strictly between
    0 and 1 (so the check was not trivial)."""
    arch = load_arch(design)
    rng = random.Random(seed)
    mappings = [random_mapping(problem, arch, rng) for _ in range(count)]
    arrays, scalar = mappings_to_arrays(problem, arch, mappings)
    assert not scalar
    classes = site_classes(problem, arch)
    closed = batch_live(problem, arch, arrays, classes)
    column = {(c.level_name, c.dataspace): j for j, c in enumerate(classes)}
    draws, partial = np.random.default_rng(seed), 0
    for b, m in enumerate(mappings):
        for key, seen in injector_live(Nest(problem, m), arch, draws).items():
            if key[1] not in dataspaces:
                continue
            want = closed[b, column[key]]
            error = max(np.sqrt(want * (1 - want) / DRAWS), 1 / DRAWS)
            assert abs(seen - want) <= 4 * error, (design, b, key, seen, want)
            partial += 0.05 < want < 0.95
    return partial


@pytest.mark.parametrize("design", ["eyeriss_like", "simple_output_stationary"])
def test_closed_form_live_fraction_of_weights_and_partial_sums_equals_the_injectors(
        design: str) -> None:
    problem = conv_problem(C=4, M=6, R=3, S=3, P=4, Q=4, Hstride=2)
    assert compare(problem, design, 4, 11, {"Weights", "Outputs"}) >= 3


def test_closed_form_live_fraction_of_every_class_without_a_sliding_window() -> None:
    problem = conv_problem(C=8, M=6, R=1, S=1, P=4, Q=6)  # a 1x1 conv: inputs are not windows
    assert compare(problem, "nvdla_like", 4, 5, {"Weights", "Inputs", "Outputs"}) >= 3


def test_live_fractions_are_probabilities_and_a_struck_product_is_always_live() -> None:
    problem = conv_problem(C=4, M=6, R=3, S=3, P=4, Q=4)
    arch = load_arch("eyeriss_like")
    mappings = [random_mapping(problem, arch, random.Random(s)) for s in range(20)]
    arrays, _ = mappings_to_arrays(problem, arch, mappings)
    classes = site_classes(problem, arch)
    live = batch_live(problem, arch, arrays, classes)
    assert np.all((live >= 0) & (live <= 1))
    mac = [j for j, c in enumerate(classes) if c.dataspace == MAC_SITE]
    assert np.all(live[:, mac] == 1)  # a struck product is always added in


def test_estimate_scales_each_class_by_its_live_fraction_relative_to_the_calibration() -> None:
    problem = conv_problem(C=4, M=6, R=3, S=3, P=4, Q=4)
    arch = load_arch("simple_output_stationary")
    rng = random.Random(3)
    calib, other = random_mapping(problem, arch, rng), random_mapping(problem, arch, rng)
    classes = site_classes(problem, arch, word_bits=16)
    arrays, _ = mappings_to_arrays(problem, arch, [calib, other])
    live = batch_live(problem, arch, arrays, classes)
    rates = {(c.level_name, c.dataspace): 0.01 for c in classes}
    mbit = {k: 1.0 for k in rates}
    plain = Sensitivity(rates, 1000.0, 0.01, mbit)
    aware = plain.with_liveness(problem, arch, calib, word_bits=16)
    est_plain = sdc_fit_metric(problem, arch, plain, word_bits=16)(arrays)
    est_aware = sdc_fit_metric(problem, arch, aware, word_bits=16)(arrays)
    bits = batch_exposure(problem, arch, arrays, word_bits=16).bits / 1e6
    per, default = aware.per_live()
    p = np.array([per.get((c.level_name, c.dataspace), default) for c in classes])
    assert est_aware == pytest.approx(1000.0 * (bits * live) @ p, rel=1e-12)
    assert est_plain == pytest.approx(1000.0 * bits @ np.full(len(classes), 0.01), rel=1e-12)
    # a class live on the calibration keeps P(SDC | fault) / live there; one never live there
    # (nothing measured about its live faults) takes the layer-wide P(SDC | live fault)
    for j, c in enumerate(classes):
        key = (c.level_name, c.dataspace)
        if live[0, j] > 0:
            assert per[key] == pytest.approx(min(1.0, 0.01 / live[0, j]))
        else:
            assert key not in per
