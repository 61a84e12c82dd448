"""The searches: better than Timeloop's mapper on every reference case, reproducible, objectives."""

from __future__ import annotations

import csv
import math

import pytest
from conftest import CASES, REFERENCE, needs_shared
from test_mapper_space import load_case, tiny_arch

from dse.mapper import MapperResult, search
from dse.model import evaluate, read_mapping, write_mapping
from dse.problems.problem import conv_problem

# Per-case budget: a fixed number of model evaluations (not seconds) keeps the result the same
# on a loaded machine; the time limit is only a safety net.
BUDGET = dict(search="hybrid", workers=1, max_evals=2500, victory=10**9, time_limit=30.0, seed=0)


def reference_rows() -> dict[str, dict[str, str]]:
    with open(REFERENCE / "summary.csv") as fh:
        return {r["case"]: r for r in csv.DictReader(fh) if r["tool"] == "mapper"}


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_edp_is_no_worse_than_timeloops_mapper(case: str) -> None:
    problem, arch, root = load_case(case)
    ref_mapping = read_mapping(root / "mapper" / "timeloop-mapper.map.yaml", arch, problem)
    ref = evaluate(problem, arch, ref_mapping)
    # our model scores the reference mapping as Timeloop did (so the comparison is fair)
    assert ref.edp == pytest.approx(float(reference_rows()[case]["EDP_J_cycle"]), rel=1e-5)
    result = search(problem, arch, **BUDGET)
    assert result.best_stats.edp <= ref.edp * (1 + 1e-9)
    assert evaluate(problem, arch, result.best).edp == result.best_stats.edp


def test_same_seed_same_result_and_workers_split_the_work() -> None:
    problem, arch = conv_problem(C=8, M=8, R=3, S=3, P=8, Q=8), tiny_arch(buffer_depth=256)
    runs = [search(problem, arch, search="hybrid", max_evals=300, time_limit=60, seed=7,
                   workers=w) for w in (1, 1, 2, 2)]
    assert runs[0].best == runs[1].best and runs[0].evaluated == runs[1].evaluated
    assert runs[2].best == runs[3].best and runs[2].evaluated == runs[3].evaluated
    assert runs[2].evaluated > runs[0].evaluated  # two workers, two streams
    other = search(problem, arch, search="hybrid", max_evals=300, time_limit=60, seed=8,
                   workers=1)
    assert other.visited != runs[0].visited or other.best != runs[0].best


def _small_run(**kw) -> MapperResult:
    problem, arch = conv_problem(C=8, M=16, R=3, P=16, Q=4), tiny_arch(buffer_depth=512)
    return search(problem, arch, search="hybrid", max_evals=600, time_limit=60, workers=1,
                  seed=1, **kw)


def test_objectives_pick_what_they_optimise() -> None:
    """Exhaustive on a small space, so each objective's winner is the true optimum."""
    problem, arch = conv_problem(C=2, M=4, P=4), tiny_arch(buffer_depth=16)

    def run(objective) -> MapperResult:
        return search(problem, arch, objective=objective, search="exhaustive", workers=1,
                      time_limit=60)

    edp, energy, delay = run("edp"), run("energy"), run("delay")
    assert energy.best_stats.energy_pJ <= edp.best_stats.energy_pJ
    assert energy.best_stats.energy_pJ == min(s.energy_pJ for _, s in edp.pareto)
    assert delay.best_stats.cycles == min(s.cycles for _, s in edp.pareto)
    assert edp.best_stats.edp <= min(energy.best_stats.edp, delay.best_stats.edp)
    weighted = run({"kind": "product", "energy": 1.0, "delay": 2.0})
    assert weighted.best_stats.energy_pJ * weighted.best_stats.cycles ** 2 == \
        min(s.energy_pJ * s.cycles ** 2 for _, s in edp.pareto)


def test_extra_metric_hook_receives_mapping_and_stats_and_steers_the_search() -> None:
    seen = []

    def cycles_metric(mapping, stats) -> float:
        seen.append(mapping)
        return float(stats.cycles)

    hooked = _small_run(objective={"kind": "sum", "extra": 1.0}, extra_metric=cycles_metric)
    delay = _small_run(objective="delay")
    assert len(seen) == hooked.valid
    assert hooked.best_stats.cycles == delay.best_stats.cycles


def test_pareto_set_is_non_dominated_and_holds_the_best_edp() -> None:
    result = _small_run()
    pts = [(s.energy_pJ, s.cycles) for _, s in result.pareto]
    assert pts == sorted(pts)
    for (e1, c1), (e2, c2) in zip(pts, pts[1:], strict=False):
        assert e1 <= e2 and c1 > c2
    best = (result.best_stats.energy_pJ, result.best_stats.cycles)
    assert any(math.isclose(e, best[0]) and c == best[1] for e, c in pts)
    assert 0 < result.valid <= result.evaluated <= result.visited


def test_best_mapping_round_trips_through_a_timeloop_map_yaml(tmp_path) -> None:
    problem, arch = conv_problem(C=8, M=16, R=3, P=16, Q=4), tiny_arch(buffer_depth=512)
    result = search(problem, arch, search="hybrid", max_evals=200, time_limit=60, workers=1)
    path = write_mapping(result.best, tmp_path / "map.yaml", problem)
    again = evaluate(problem, arch, read_mapping(path, arch, problem))
    assert (again.energy_pJ, again.cycles) == (result.best_stats.energy_pJ,
                                               result.best_stats.cycles)


def test_auto_is_exhaustive_on_a_small_space_and_random_never_beats_it() -> None:
    problem, arch = conv_problem(C=2, M=4, P=4), tiny_arch(buffer_depth=16)
    auto = search(problem, arch, search="auto", workers=2, time_limit=60)
    assert auto.search == "exhaustive" and auto.space["exact"] and auto.complete
    assert auto.evaluated == auto.space["pruned"]  # every pruned point, split over 2 workers
    rnd = search(problem, arch, search="random", workers=1, time_limit=60, victory=300)
    assert rnd.search == "random" and rnd.valid > 0 and not rnd.complete
    assert auto.best_stats.edp <= rnd.best_stats.edp


def test_top_k_from_the_batched_path_equals_an_observer_on_the_scalar_path() -> None:
    """The top-K by EDP is collected from the vectorized results: the same K mappings (and the
    same best) as a per-mapping observer sees when the search runs on the scalar model."""
    seen: list[tuple[float, float, str]] = []

    def observe(mapping, stats) -> float:
        seen.append((stats.edp, stats.energy_pJ, repr(mapping)))
        return 0.0

    scalar = _small_run(extra_metric=observe)
    batched = _small_run(top_k=5)
    assert batched.best == scalar.best and batched.evaluated == scalar.evaluated
    expected = sorted(seen)[:5]
    got = [(s.edp, s.energy_pJ) for _, s in batched.top]
    assert got == pytest.approx([(e, n) for e, n, _ in expected], rel=1e-12)
    assert len({repr(m) for m, _ in batched.top}) == 5
    assert batched.top[0][1].edp == batched.best_stats.edp


def test_inlined_draws_are_random_choice_and_randrange() -> None:
    """The edits draw with ``seq[rng._randbelow(len(seq))]`` and ``rng._randbelow(n)``: the
    same numbers as ``rng.choice`` / ``rng.randrange`` / ``rng.sample`` on this Python (else every search's
    stream, and so its results, would silently change)."""
    import random

    seqs = [list(range(n)) for n in (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100)]
    a, b = random.Random(12345), random.Random(12345)
    for _ in range(200):
        for seq in seqs:
            assert a.choice(seq) == seq[b._randbelow(len(seq))]
            assert a.randrange(len(seq)) == b._randbelow(len(seq))
    for n in range(2, 22):  # swap_factors' two slots: rng.sample(range(n), 2), inlined
        src, j = b._randbelow(n), b._randbelow(n - 1)
        assert a.sample(range(n), 2) == [src, n - 1 if j == src else j]
    a.sample([1], 1)  # _sample_factors' nothing-to-place path: sample + choice of [1]
    a.choice([1])
    b._randbelow(1)
    b._randbelow(1)
    assert a.random() == b.random()
