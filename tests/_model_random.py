"""Random (mostly valid) mappings for model tests: every dim's prime factors scattered over the
levels' temporal loops and the X / Y fanouts, random loop orders and keep sets."""

from __future__ import annotations

import random

from dse.arch.spec import Arch
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.problems.problem import Problem


def _primes(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


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
        for p in _primes(problem.instance[dim]):
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
