"""The closed-form deltas equal a literal re-run of Timeloop's extrapolated loop walk.

The oracle below walks the loops above a level the way nest-analysis.cpp does (iterations 0 and 1
of each loop, iteration 1 weighted n - 1), projects the tile's low / high corners per rank, and
subtracts consecutive boxes with the AAHR rules of point-set-aahr.cpp under
SaveAndSubtractIfSameStride (operation-space.cpp): a delta is taken while the translation repeats
(or none is remembered), else the whole box is new and the remembered translation is cleared.
"""

from __future__ import annotations

import math
import random

import pytest
from _model_random import random_mapping

from dse.arch.spec import Arch, ComputeLevel, StorageLevel
from dse.model import analyze
from dse.model.nest import flatten
from dse.problems.problem import Problem, conv_problem


def _box(problem: Problem, ds: str, origin: dict[str, int], size: dict[str, int]):
    lo, hi = [], []
    for rank in problem.dataspace(ds).projection:
        base = sum(problem.coefficient(c) * origin.get(d, 0) for d, c in rank)
        lo.append(base)
        hi.append(base + sum(problem.coefficient(c) * (size.get(d, 1) - 1) for d, c in rank) + 1)
    return lo, hi


def _subtract(new, old) -> int:
    """|new - old| with Timeloop's AAHR rules (boxes of equal shape)."""
    (nlo, nhi), (olo, ohi) = new, old
    volume = math.prod(h - lo for lo, h in zip(nlo, nhi, strict=True))
    if (nlo, nhi) == (olo, ohi):
        return 0
    if any(ohi[r] <= nlo[r] or olo[r] >= nhi[r] for r in range(len(nlo))):
        return volume
    differ = [r for r in range(len(nlo)) if (nlo[r], nhi[r]) != (olo[r], ohi[r])]
    if len(differ) > 1:
        return volume
    r = differ[0]
    overlap = min(nhi[r], ohi[r]) - max(nlo[r], olo[r])
    return volume // (nhi[r] - nlo[r]) * (nhi[r] - nlo[r] - overlap)


def walk_deltas(problem: Problem, arch: Arch, mapping, level: int, ds: str,
                extrapolate: bool = True) -> int:
    loops = flatten(arch, mapping)
    size = dict.fromkeys(problem.dimensions, 1)
    for lp in loops:
        if lp.level_index >= level:
            size[lp.dim] *= lp.factor
    above = [(k, lp) for k, lp in enumerate(loops) if lp.level_index < level and not lp.spatial]
    stride = {}
    for k, lp in above:
        stride[k] = math.prod(q.factor for q in loops[k + 1:] if q.dim == lp.dim)
    state = {"prev": None, "move": None, "total": 0}
    index = {k: 0 for k, _ in above}

    def visit(weight: int) -> None:
        origin = dict.fromkeys(problem.dimensions, 0)
        for k, lp in above:
            origin[lp.dim] += index[k] * stride[k]
        box = _box(problem, ds, origin, size)
        prev, move = state["prev"], state["move"]
        trans = None if prev is None else tuple(a - b for a, b in zip(box[0], prev[0],
                                                                       strict=True))
        if prev is None:
            delta = math.prod(h - lo for lo, h in zip(*box, strict=True))
            state["move"] = trans
        elif move is None or trans == move:
            delta = _subtract(box, prev)
            state["move"] = trans if move is None else move
        else:
            delta = math.prod(h - lo for lo, h in zip(*box, strict=True))
            state["move"] = None
        state["prev"] = box
        state["total"] += weight * delta

    def run(pos: int, weight: int) -> None:
        if pos == len(above):
            visit(weight)
            return
        k, lp = above[pos]
        if extrapolate:  # iterations 0 and 1, the second standing for the other n - 1
            index[k] = 0
            run(pos + 1, weight)
            index[k] = 1
            run(pos + 1, weight * (lp.factor - 1))
        else:
            for it in range(lp.factor):
                index[k] = it
                run(pos + 1, weight)
        index[k] = 0

    run(0, 1)
    return state["total"]


def _toy_arch() -> Arch:
    levels = [StorageLevel("DRAM", "DRAM"),
              StorageLevel("glb", "SRAM", depth=4096, width=64, word_bits=8),
              StorageLevel("spad", "regfile", instances=4, mesh_x=2, mesh_y=2, depth=64,
                           width=8, word_bits=8),
              StorageLevel("reg", "regfile", instances=16, mesh_x=4, mesh_y=4, depth=8,
                           width=8, word_bits=8)]
    return Arch("toy", levels, ComputeLevel("mac", "intmac", instances=16, mesh_x=4, mesh_y=4))


PROBLEMS = [
    conv_problem(C=4, M=2, R=3, S=2, P=6, Q=4),
    conv_problem(C=2, M=4, R=3, S=3, P=4, Q=4, Wstride=2, Hdilation=2),
    conv_problem(C=2, M=2, R=2, S=3, P=8, Q=3, Wdilation=3, Hstride=2, N=2),
    conv_problem(G=4, C=1, M=1, R=3, S=3, P=4, Q=6),
]


@pytest.mark.parametrize("extrapolate", [True, False], ids=["extrapolated", "exact"])
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: "x".join(map(str, p.instance.values())))
def test_closed_form_deltas_equal_the_literal_walk(problem, extrapolate):
    arch = _toy_arch()
    rng = random.Random(7)
    checked = partial = 0
    for _ in range(40):
        mapping = random_mapping(problem, arch, rng, outer_bias=0.2)
        nest = analyze(problem, arch, mapping, check=False, all_deltas=True,
                       extrapolate=extrapolate)
        for i, name in enumerate(nest.levels):
            for ds in problem.dataspaces:
                want = walk_deltas(problem, arch, mapping, i, ds.name, extrapolate)
                assert nest.deltas[(name, ds.name)] == want, (mapping, name, ds)
                checked += 1
                partial += nest.deltas[(name, ds.name)] % nest.tiles[(name, ds.name)] != 0
    assert checked == 40 * 4 * 3
    assert partial > 0  # the draws do exercise halo (partial-overlap) steps
