"""The batched (array) model equals the scalar model exactly, valid or not."""

from __future__ import annotations

import random

import numpy as np
import pytest
from _model_random import random_mapping, valid_mapping

from dse.arch import list_designs, load_arch
from dse.errors import InvalidMapping
from dse.model import evaluate, evaluate_arrays, evaluate_batch
from dse.model.batch import arrays_to_mapping, mappings_to_arrays
from dse.model.mapping import Loop
from dse.problems.problem import conv_problem

LAYERS = [
    conv_problem(C=64, M=64, R=3, S=3, P=56, Q=56),
    conv_problem(C=3, M=64, R=7, S=7, P=112, Q=112, Wstride=2, Hstride=2),
    conv_problem(G=32, C=1, M=1, R=3, S=3, P=28, Q=28),
    conv_problem(C=64, M=32, R=3, S=3, P=14, Q=14, Wdilation=4, Hdilation=4),
]


@pytest.mark.parametrize("design", list_designs())
def test_batch_equals_scalar_on_random_mappings(design):
    arch = load_arch(design)
    rng = random.Random(11)
    n_valid = 0
    for problem in LAYERS:
        mappings = [random_mapping(problem, arch, rng) for _ in range(20)]
        mappings += [valid_mapping(problem, arch, rng) for _ in range(20)]
        batch = evaluate_batch(problem, arch, mappings)
        for i, m in enumerate(mappings):
            try:
                stats = evaluate(problem, arch, m)
            except InvalidMapping as exc:
                assert not batch.valid[i]
                assert batch.reason[i].split(":")[0] == exc.level
                assert np.isnan(batch.energy_pJ[i]) and batch.cycles[i] == 0
                continue
            n_valid += 1
            assert batch.valid[i] and batch.reason[i] is None
            assert batch.energy_pJ[i] == stats.energy_pJ  # bit for bit
            assert batch.cycles[i] == stats.cycles
            assert batch.utilization[i] == stats.utilization
    assert n_valid >= 4 * 20


def test_batch_equals_scalar_with_exact_walk():
    arch = load_arch("eyeriss_like")
    rng = random.Random(13)
    for problem in LAYERS:
        mappings = [valid_mapping(problem, arch, rng) for _ in range(10)]
        batch = evaluate_batch(problem, arch, mappings, extrapolate=False)
        for i, m in enumerate(mappings):
            assert batch.energy_pJ[i] == evaluate(problem, arch, m, extrapolate=False).energy_pJ


def test_rank_by_rank_comparison_equals_the_integer_keys(monkeypatch):
    """The fallback for problems whose translations could overflow one int64 key."""
    import dse.model.batch as batch_module

    arch = load_arch("nvdla_like")
    rng = random.Random(17)
    problem = LAYERS[3]
    mappings = [valid_mapping(problem, arch, rng) for _ in range(20)]
    keyed = evaluate_batch(problem, arch, mappings)
    monkeypatch.setattr(batch_module, "_key_radix", lambda coef, sizes: None)
    ranked = evaluate_batch(problem, arch, mappings)
    np.testing.assert_array_equal(keyed.energy_pJ, ranked.energy_pJ)
    np.testing.assert_array_equal(keyed.cycles, ranked.cycles)


def test_array_form_round_trips_to_the_same_numbers():
    arch = load_arch(list_designs()[0])
    problem = LAYERS[0]
    rng = random.Random(3)
    mappings = [random_mapping(problem, arch, rng) for _ in range(30)]
    arrays, fallback = mappings_to_arrays(problem, arch, mappings)
    assert fallback == []
    direct = evaluate_arrays(problem, arch, arrays)
    again = evaluate_batch(problem, arch, [arrays_to_mapping(problem, arch, arrays, i)
                                           for i in range(len(arrays))])
    np.testing.assert_array_equal(direct.valid, again.valid)
    np.testing.assert_array_equal(direct.cycles, again.cycles)
    np.testing.assert_array_equal(direct.energy_pJ, again.energy_pJ)


def test_mapping_the_array_form_cannot_hold_goes_through_the_scalar_model():
    arch = load_arch(list_designs()[0])
    problem = LAYERS[0]
    rng = random.Random(5)
    m = random_mapping(problem, arch, rng, outer_bias=1.0)
    dram = m.levels[0]
    p = next(lp for lp in dram.temporal if lp.dim == "P")
    dram.temporal = [lp for lp in dram.temporal if lp.dim != "P"] + [Loop("P", 2),
                                                                      Loop("P", p.factor // 2)]
    _, fallback = mappings_to_arrays(problem, arch, [m])
    assert fallback == [0]
    batch = evaluate_batch(problem, arch, [m])
    assert batch.valid[0] and batch.energy_pJ[0] == evaluate(problem, arch, m).energy_pJ


def test_empty_batch():
    arch = load_arch(list_designs()[0])
    result = evaluate_batch(LAYERS[0], arch, [])
    assert len(result.energy_pJ) == 0 and result.reason == []


@pytest.mark.parametrize("defect", ["dim", "fanout", "outer_keep", "capacity"])
def test_one_defect_in_a_valid_batch_is_caught_and_leaves_the_others_unchanged(defect):
    """A batch of valid mappings skips the per-check messages (one test for the whole batch);
    one broken mapping must still be caught, with the scalar model's level, and the valid ones
    must get the numbers they get in an all-valid batch."""
    arch = load_arch("eyeriss_like")
    problem = LAYERS[0]
    rng = random.Random(23)
    arrays, _ = mappings_to_arrays(problem, arch, [valid_mapping(problem, arch, rng)
                                                   for _ in range(8)])
    clean = evaluate_arrays(problem, arch, arrays)
    assert clean.valid.all()
    broken = arrays.take(slice(None))
    b, n_l = 3, len(arch.levels)
    if defect == "dim":
        broken.temporal[b, 0, 0] *= 2
    elif defect == "fanout":
        lv = next(i for i in range(n_l) if arch.fanout_xy(i)[0] > 1)
        broken.spatial_x[b, lv, 0] = arch.fanout_xy(lv)[0] + 1
    elif defect == "outer_keep":
        broken.keep[b, 0, 1] = False
    else:  # every outer temporal factor moved into the innermost buffer that keeps data
        inner = max(i for i in range(n_l) if arch.levels[i].capacity_words and broken.keep[b, i].any())
        broken.temporal[b, inner] *= broken.temporal[b, 0]
        broken.temporal[b, 0] = 1
    got = evaluate_arrays(problem, arch, broken)
    with pytest.raises(InvalidMapping) as exc:
        evaluate(problem, arch, arrays_to_mapping(problem, arch, broken, b))
    assert not got.valid[b] and got.reason[b].split(":")[0] == exc.value.level
    others = np.arange(len(arrays)) != b
    assert got.valid[others].all() and all(got.reason[i] is None for i in np.nonzero(others)[0])
    np.testing.assert_array_equal(got.energy_pJ[others], clean.energy_pJ[others])
    np.testing.assert_array_equal(got.cycles[others], clean.cycles[others])
    np.testing.assert_array_equal(got.utilization[others], clean.utilization[others])
