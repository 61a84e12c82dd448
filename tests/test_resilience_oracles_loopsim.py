"""The analytical fault footprints agree exactly with a literal loop-nest simulation."""

from __future__ import annotations

import itertools
import random

from _sites_designs import DESIGNS, random_mapping, random_problem

from dse.arch import load_arch
from dse.mapper import MapSpace
from dse.problems.problem import conv_problem
from dse.resilience.mapped.sites import Nest, footprint, mac_readers
from dse.resilience.oracles.loopsim import LoopSim, MacFault, StorageFault


def _direct_conv(problem, weights, inputs):
    """Output values of a conv_problem computed straight from the definition."""
    n, c, m, r, s, p, q = (problem.instance[d] for d in "NCMRSPQ")
    ws, wd = problem.coefficients["Wstride"], problem.coefficients["Wdilation"]
    hs, hd = problem.coefficients["Hstride"], problem.coefficients["Hdilation"]
    out = {}
    for nn, mm, qq, pp in itertools.product(range(n), range(m), range(q), range(p)):
        out[(nn, mm, qq, pp, 0)] = sum(
            weights[(cc, mm, rr, ss, 0)] * inputs[(nn, cc, rr * wd + pp * ws, ss * hd + qq * hs, 0)]
            for cc in range(c)
            for rr in range(r)
            for ss in range(s)
        )
    return out


def _tensor(problem, ds, rng):
    shape = [
        problem.rank_extent(rank, problem.instance) for rank in problem.dataspace(ds).projection
    ]
    return {e: float(rng.randint(-4, 4)) for e in itertools.product(*map(range, shape))}


def test_loop_simulator_computes_the_convolution_for_random_mappings():
    rng = random.Random(7)
    for k in range(12):
        problem = random_problem(rng)
        mapping = random_mapping(problem, list(DESIGNS)[k % 4], rng)
        tensors = {ds: _tensor(problem, ds, rng) for ds in ("Weights", "Inputs")}
        result = LoopSim(problem, mapping).run(tensors)
        assert result.outputs == _direct_conv(problem, tensors["Weights"], tensors["Inputs"])
        assert not result.tainted


def test_analytical_footprint_equals_simulated_footprint_on_240_random_draws():
    rng = random.Random(2026)
    mismatches, sizes, draws = [], [], 240
    for k in range(draws):
        design = list(DESIGNS)[k % 4]
        problem = random_problem(rng)
        mapping = random_mapping(problem, design, rng)
        sim, nest = LoopSim(problem, mapping), Nest(problem, mapping)
        level, ds = rng.choice([(i, d) for i, lm in enumerate(mapping.levels) for d in lm.keep])
        inst, t = rng.randrange(nest.instances(level)), rng.randrange(nest.steps)
        element = rng.choice(sorted(sim.resident(level, inst, ds, t)))
        simulated = sim.run(fault=StorageFault(level, inst, ds, element, t)).tainted
        analytical = footprint(nest, level, ds, inst, element, t)
        sizes.append(len(simulated))
        if set(analytical) != simulated:
            mismatches.append((design, mapping, level, ds, inst, element, t))
    assert not mismatches, mismatches[:3]
    # the draws exercise empty (overwritten / unread), single and multicast footprints
    assert sizes.count(0) > 10 and sizes.count(1) > 10 and sum(s > 1 for s in sizes) > 30


def test_mac_transient_hits_one_output_and_stuck_pe_hits_all_it_computes():
    rng = random.Random(3)
    for k in range(20):
        problem = random_problem(rng)
        mapping = random_mapping(problem, list(DESIGNS)[k % 4], rng)
        sim, nest = LoopSim(problem, mapping), Nest(problem, mapping)
        pe, t = rng.randrange(nest.pes), rng.randrange(nest.steps)
        transient = sim.run(fault=MacFault(pe, t)).tainted
        assert len(transient) == 1 and transient == set(mac_readers(nest, pe, t).outputs)
        stuck = sim.run(fault=MacFault(pe, None)).tainted
        assert stuck == set(mac_readers(nest, pe, None).outputs)
        assert transient <= stuck


def test_footprints_match_simulation_for_mappings_from_the_real_designs_mapspaces():
    """Same check, with mappings sampled by the mapper from the shipped designs themselves
    (their fanouts, capacities, constraints and bypass choices)."""
    rng = random.Random(0)
    draws, multi = 0, 0
    for design in sorted(DESIGNS):
        arch = load_arch(design)
        for _ in range(10):
            problem = conv_problem(
                C=rng.choice([1, 2, 4]), M=rng.choice([2, 4]), R=rng.choice([1, 3]),
                S=rng.choice([1, 2]), P=rng.choice([2, 4]), Q=rng.choice([1, 2]),
                Wstride=rng.choice([1, 2]),
            )
            space = MapSpace(problem, arch)
            mapping = space.to_mapping(space.sample(rng))
            sim, nest = LoopSim(problem, mapping), Nest(problem, mapping)
            sites = [(i, d) for i, lm in enumerate(mapping.levels) for d in lm.keep]
            for _ in range(3):
                level, ds = rng.choice(sites)
                inst, t = rng.randrange(nest.instances(level)), rng.randrange(nest.steps)
                element = rng.choice(sorted(sim.resident(level, inst, ds, t)))
                simulated = sim.run(fault=StorageFault(level, inst, ds, element, t)).tainted
                assert set(footprint(nest, level, ds, inst, element, t)) == simulated
                draws += 1
                multi += len(simulated) > 1
    assert draws == 120 and multi > 10
