"""Random (mostly valid) mappings for model tests: every dim's prime factors scattered over the
levels' temporal loops and the X / Y fanouts, random loop orders and keep sets."""

from __future__ import annotations

import random

from dse.arch.spec import Arch
from dse.mapper.mapspace import prime_factors
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.problems.problem import Problem


def random_mapping(problem: Problem, arch: Arch, rng: random.Random, outer_bias: float = 0.5
                   ) -> Mapping:
    """A mapping whose factor products are right; capacity / fanout may still be exceeded.

    ``outer_bias`` is the chance that a prime factor goes to the outermost level (which has no
    capacity limit), so that a useful share of the draws is valid.
    """
    n_levels = len(arch.levels)
    factors: dict[tuple[int, str, str], int] = {}
    slots = [(i, "T") for i in range(n_levels)]
    slots += [(i, "X") for i in range(n_levels) if arch.fanout_xy(i)[0] > 1]
    slots += [(i, "Y") for i in range(n_levels) if arch.fanout_xy(i)[1] > 1]
    for dim in problem.dimensions:
        for p in prime_factors(problem.instance[dim]):
            lv, kind = (0, "T") if rng.random() < outer_bias else rng.choice(slots)
            factors[(lv, kind, dim)] = factors.get((lv, kind, dim), 1) * p
    levels = []
    all_ds = frozenset(ds.name for ds in problem.dataspaces)
    for i, lvl in enumerate(arch.levels):
        temporal = [Loop(d, f) for (lv, k, d), f in factors.items() if lv == i and k == "T"]
        rng.shuffle(temporal)
        spatial = [Loop(d, f, True, k) for (lv, k, d), f in factors.items() if lv == i and k != "T"]
        if i == 0:
            keep = all_ds
        elif lvl.dummy:
            keep = frozenset()
        else:
            keep = frozenset(d for d in sorted(all_ds) if rng.random() < 0.6)
        levels.append(LevelMapping(lvl.name, temporal, spatial, keep))
    return Mapping(levels)


def _keep(lvl, all_ds: frozenset[str], rng: random.Random, outermost: bool) -> frozenset[str]:
    if outermost:
        return all_ds
    if lvl.dummy:
        return frozenset()
    if lvl.constraints.keep is not None:
        return frozenset(lvl.constraints.keep) & all_ds
    bypass = set(lvl.constraints.bypass or ())
    return frozenset(d for d in sorted(all_ds - bypass) if rng.random() < 0.7)


def valid_mapping(problem: Problem, arch: Arch, rng: random.Random) -> Mapping:
    """A random mapping that passes every check: all factors start at the outermost level, then
    each prime factor moves to a random temporal / X / Y slot if the result is still valid."""
    from dse.errors import InvalidMapping
    from dse.model.nest import analyze

    all_ds = frozenset(ds.name for ds in problem.dataspaces)
    n_levels = len(arch.levels)
    slots = [(i, "T") for i in range(n_levels)]
    slots += [(i, "X") for i in range(n_levels) if arch.fanout_xy(i)[0] > 1]
    slots += [(i, "Y") for i in range(n_levels) if arch.fanout_xy(i)[1] > 1]
    primes = [(d, p) for d in problem.dimensions for p in prime_factors(problem.instance[d])]
    rng.shuffle(primes)
    where = {k: (0, "T") for k in range(len(primes))}
    keeps = [_keep(lvl, all_ds, rng, i == 0) for i, lvl in enumerate(arch.levels)]
    orders = {i: rng.sample(problem.dimensions, len(problem.dimensions)) for i in range(n_levels)}

    def build() -> Mapping:
        factors: dict[tuple[int, str, str], int] = {}
        for k, (d, p) in enumerate(primes):
            lv, kind = where[k]
            factors[(lv, kind, d)] = factors.get((lv, kind, d), 1) * p
        levels = []
        for i, lvl in enumerate(arch.levels):
            temporal = [Loop(d, factors[(i, "T", d)]) for d in orders[i] if (i, "T", d) in factors]
            spatial = [Loop(d, f, True, k) for (lv, k, d), f in factors.items()
                       if lv == i and k != "T"]
            levels.append(LevelMapping(lvl.name, temporal, spatial, keeps[i]))
        return Mapping(levels)

    for k in range(len(primes)):
        where[k] = rng.choice(slots)
        lv, kind = where[k]
        other = {"X": "Y", "Y": "X"}.get(kind)
        if other and any(where[j] == (lv, other) and primes[j][0] == primes[k][0]
                         for j in range(len(primes))):
            where[k] = (0, "T")  # map.yaml cannot put one dim on both axes of a fanout
            continue
        try:
            analyze(problem, arch, build())
        except InvalidMapping:
            where[k] = (0, "T")
    return build()
