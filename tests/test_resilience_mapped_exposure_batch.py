"""The batched exposure matrix equals the per-mapping loop-nest exposure on random mappings."""

from __future__ import annotations

import random

import numpy as np
import pytest
from _model_random import random_mapping

from dse.arch import load_arch
from dse.model.batch import mappings_to_arrays
from dse.problems.problem import conv_problem
from dse.resilience.mapped.exposure import exposures
from dse.resilience.mapped.exposure_batch import batch_exposure
from dse.resilience.mapped.sites import Nest


@pytest.mark.parametrize("design", ["eyeriss_like", "nvdla_like", "simple_weight_stationary",
                                    "simple_output_stationary"])
def test_batch_exposure_equals_nest_exposure_per_mapping(design: str) -> None:
    arch = load_arch(design)
    problem = conv_problem(C=6, M=8, R=3, S=3, P=6, Q=4, N=2, Hstride=2, Wdilation=2)
    rng = random.Random(7)
    mappings = [random_mapping(problem, arch, rng) for _ in range(40)]
    arrays, fallback = mappings_to_arrays(problem, arch, mappings)
    assert not fallback
    got = batch_exposure(problem, arch, arrays, word_bits=None)
    index = {(c.level, c.dataspace): j for j, c in enumerate(got.classes)}
    for b, m in enumerate(mappings):
        want = np.zeros(len(got.classes))
        for s in exposures(Nest(problem, m), arch):
            want[index[(s.level, s.dataspace)]] = s.exposure
        np.testing.assert_allclose(got.exposure[b], want, rtol=1e-12)
