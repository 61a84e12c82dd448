"""The mapspace: constraints, membership of Timeloop's own mappings, pruning that loses nothing."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import CASES, REFERENCE, needs_shared

from dse.arch import apply_ert, load_arch, read_ert
from dse.arch.spec import Arch, ComputeLevel, Constraints, StorageLevel
from dse.errors import InvalidMapping
from dse.mapper import MapSpace, search
from dse.mapper.mapspace import Point, order_signature
from dse.mapper.search import explain_empty, to_arrays
from dse.model import evaluate, evaluate_arrays, read_mapping
from dse.problems import read_problem
from dse.problems.problem import Problem, conv_problem


def load_case(case: str) -> tuple[Problem, Arch, Path]:
    """Problem, arch (with the run's ERT) and directory of one reference mapper run."""
    root = REFERENCE / "cases" / case
    arch = load_arch(root / "mapper" / "timeloop_input.yaml")
    arch = apply_ert(arch, read_ert(root / "mapper" / "timeloop-mapper.ERT.yaml"))
    return read_problem(root / "inputs" / "problem.yaml"), arch, root


def tiny_arch(*, buffer_depth: int = 64, pe_x: int = 2, pe_y: int = 2,
              buffer: Constraints | None = None) -> Arch:
    """DRAM -> buffer -> 2x2 PEs with one register each for weights and outputs."""
    energy = {"read": 1.0, "write": 1.0, "update": 1.0}
    pes = pe_x * pe_y
    return Arch("tiny", [
        StorageLevel("DRAM", "DRAM", width=8, word_bits=8, energy={"read": 100.0,
                                                                     "write": 100.0}),
        StorageLevel("buf", "SRAM", depth=buffer_depth, width=8, word_bits=8, energy=energy,
                     constraints=buffer or Constraints()),
        StorageLevel("inter_PE_spatial", "dummy", dummy=True, depth=1,
                     constraints=Constraints(
                         temporal_factors={d: ("=", 1) for d in "CMRSNPQG"},
                         bypass=("Weights", "Inputs", "Outputs"))),
        StorageLevel("reg", "regfile", instances=pes, mesh_x=pe_x, mesh_y=pe_y, depth=2,
                     width=8, word_bits=8, energy={"read": 0.1, "write": 0.1},
                     constraints=Constraints(keep=("Weights", "Outputs"), bypass=("Inputs",))),
    ], ComputeLevel("mac", "intmac", instances=pes, mesh_x=pe_x, mesh_y=pe_y,
                    energy={"compute": 0.5}))


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_reference_mapper_best_mapping_is_inside_the_mapspace(case: str) -> None:
    problem, arch, root = load_case(case)
    space = MapSpace(problem, arch)
    mapping = read_mapping(root / "mapper" / "timeloop-mapper.map.yaml", arch, problem)
    point = space.from_mapping(mapping)
    assert space.problem_with(point) is None
    # and the space gives back the same mapping (same counts as the reference run)
    assert evaluate(problem, arch, space.to_mapping(point)).cycles == \
        evaluate(problem, arch, mapping).cycles


@needs_shared
@pytest.mark.parametrize("case", CASES[::4])
def test_pruned_space_is_smaller_than_timeloops_count(case: str) -> None:
    problem, arch, _ = load_case(case)
    sizes = MapSpace(problem, arch).size_report(samples=200)
    assert 0 < sizes["pruned"] < sizes["raw"]


@needs_shared
def test_split_constraint_allows_both_timeloops_reading_and_the_designers() -> None:
    problem, arch, _ = load_case("simple_weight_stationary__fc_512x1000")
    space = MapSpace(problem, arch)
    i = arch.level_index("inter_PE_spatial")
    f = [1] * len(space.dims)
    f[space.dims.index("C")], f[space.dims.index("M")] = 16, 16

    def axes(c: str, m: str) -> list[str]:
        out = ["X"] * len(space.dims)
        out[space.dims.index("C")], out[space.dims.index("M")] = c, m
        return out

    assert space.axes_allowed(i, f, axes("X", "Y"))  # the design's intent: C on X, M on Y
    assert not space.axes_allowed(i, f, axes("Y", "X"))
    f[space.dims.index("M")] = 1
    assert space.axes_allowed(i, f, axes("Y", "X"))  # Timeloop's own reading: all on Y


@pytest.mark.parametrize("design", ["tiny", "eyeriss_like", "nvdla_like"])
def test_equivalent_loop_orders_give_identical_counts(design: str) -> None:
    """Every order in one class gives the same model result (strided, dilated, depthwise)."""
    rng = random.Random(3)
    arch = tiny_arch(buffer_depth=4096) if design == "tiny" else load_arch(design)
    checked = merged = 0
    for problem in (conv_problem(C=4, M=2, R=3, S=2, P=6, Q=4, Wstride=2, Hstride=1),
                    conv_problem(C=2, M=4, R=3, S=3, P=4, Q=2, Wdilation=2, Hstride=2),
                    conv_problem(C=1, M=1, G=8, R=3, S=3, P=4, Q=4)):
        space = MapSpace(problem, arch)
        for _ in range(40):
            p = space.sample(rng, greedy=0.0)
            levels = [i for i in range(space.nlev) if p is not None and len(p.orders[i]) >= 3]
            if not levels:
                continue
            i = rng.choice(levels)
            live = space.live_dims(p.factors, i)
            orders = space.all_orders(i, p.orders[i])
            points = [Point(p.factors, p.axes, p.orders[:i] + (o,) + p.orders[i + 1:], p.keeps)
                      for o in orders]
            res = evaluate_arrays(problem, arch, to_arrays(space, points))
            classes: dict[tuple, set] = {}
            for o, e, c, ok in zip(orders, res.energy_pJ, res.cycles, res.valid, strict=True):
                sig = order_signature(space.rank_sets, tuple(reversed(o)), live)
                classes.setdefault(sig, set()).add((round(float(e), 6), int(c)) if ok else None)
            assert all(len(v) == 1 for v in classes.values())
            assert len(space.order_classes(i, p.orders[i], live)) == len(classes)
            checked += 1
            merged += len(orders) - len(classes)
    assert checked >= 20 and merged > 0


@pytest.mark.parametrize("problem", [
    conv_problem(C=2, M=2, R=3, P=2, Wstride=2),
    conv_problem(C=2, M=2, R=2, P=3, Wdilation=2),
])
def test_pruning_keeps_the_optimum_of_the_full_space(problem: Problem) -> None:
    arch = tiny_arch(buffer_depth=24)
    space = MapSpace(problem, arch)

    def best(points) -> float:
        res = evaluate_arrays(problem, arch, to_arrays(space, points))
        return float(np.nanmin(np.where(res.valid, res.edp, np.nan)))

    full = list(space.iter_points(pruned=False))
    pruned = list(space.iter_points(pruned=True))
    assert len(pruned) < len(full) <= 10000
    assert best(pruned) == pytest.approx(best(full), rel=1e-12)
    # and the exhaustive search reports that same optimum
    result = search(problem, arch, search="exhaustive", workers=1, time_limit=60)
    assert result.best_stats.edp == pytest.approx(best(full), rel=1e-12)
    assert result.search == "exhaustive"


def test_factorizations_respect_factor_constraints() -> None:
    arch = tiny_arch(buffer=Constraints(temporal_factors={"M": ("=", 2), "C": ("<=", 2)}))
    problem = conv_problem(C=4, M=4, P=2)
    space = MapSpace(problem, arch)
    points = list(itertools.islice(space.iter_points(), 2000))
    assert points
    m, c = space.dims.index("M"), space.dims.index("C")
    for p in points:
        assert p.factors[2][m] == 2 and p.factors[2][c] <= 2
        assert space.problem_with(p) is None


def test_unmeetable_factor_constraint_names_the_dim_and_level() -> None:
    arch = tiny_arch(buffer=Constraints(temporal_factors={"M": ("=", 3)}))
    with pytest.raises(InvalidMapping, match=r"dim M=4 .*buf temporal M=3"):
        explain_empty(MapSpace(conv_problem(C=2, M=4), arch))


def test_buffer_too_small_for_any_tile_names_the_level() -> None:
    arch = tiny_arch()
    arch.levels[3].depth = 1  # reg keeps Weights and Outputs: 2 words at least
    with pytest.raises(InvalidMapping, match=r"^reg: .*capacity 1"):
        search(conv_problem(C=2, M=2), arch, workers=1, time_limit=5)


def test_min_utilization_and_max_temporal_loops_restrict_every_point() -> None:
    buffer = Constraints(max_temporal_loops=1)
    arch = tiny_arch(buffer_depth=64, buffer=buffer)
    arch.levels[3].constraints.min_utilization = 1.0  # all 4 PEs busy
    problem = conv_problem(C=4, M=4, P=4)
    space = MapSpace(problem, arch)
    points = list(space.iter_points())
    assert points
    for p in points:
        assert math.prod(math.prod(p.factors[2 * i + 1]) for i in range(space.nlev)) == 4
        assert len(p.orders[1]) <= 1
    free = MapSpace(problem, tiny_arch(buffer_depth=64))
    assert len(points) < sum(1 for _ in free.iter_points())
    result = search(problem, arch, search="hybrid", workers=1, max_evals=200, time_limit=30)
    assert result.best_stats.utilization == 1.0
    assert space.problem_with(space.from_mapping(result.best)) is None


@pytest.mark.parametrize("design", ["eyeriss_like", "nvdla_like", "simple_weight_stationary"])
def test_sampling_mesh_check_agrees_with_fanout_problem(design: str) -> None:
    """``sample`` checks only the levels with a fanout (memoized): on every constructed
    factorization, accepted or not, that says the same as the full :meth:`fanout_problem`."""
    space = MapSpace(conv_problem(C=32, M=64, R=3, S=3, P=28, Q=28), load_arch(design))
    rng = random.Random(5)
    rejected = 0
    for n in range(300):
        keeps = tuple(rng.choice(o) for o in space.keep_options)
        built = space._sample_factors(rng, keeps, greedy=(n % 4) / 3)
        if built is None:
            continue
        factors, axes = built
        if n % 3 == 0:  # some axes the construction would not pick, so some meshes overflow
            axes = tuple(tuple(rng.choice("XY") for _ in a) for a in axes)
        fast = not space._util_low(factors) and space._meshes_ok(factors, axes)
        assert fast == (space.fanout_problem(factors, axes) is None)
        rejected += not fast
    assert rejected > 0
