"""Loop-nest analysis: tiles, residency, per-instance deltas, multicast and partitions.

This is the part of Timeloop's model (``src/loop-analysis/nest-analysis.cpp``, ``tiling.cpp``)
that only depends on the problem and the mapping, not on energies. The rules, all matching
Timeloop v3.0.3 for dense tensors:

* A level's **tile** for a dataspace is the bounding box of the projection of every loop at and
  below that level (holes of strided / dilated windows included).
* A level's **deltas** (what one instance receives from its parent over the whole run) come from
  Timeloop's walk of the temporal loops above it. Timeloop evaluates only iterations 0 and 1 of each
  loop and counts iteration 1 ``n - 1`` times; a tile overlapping its predecessor brings only the
  new part, but only while it keeps moving by the same translation (else the whole tile is new).
  For the iteration sequence this produces (a binary counter over the non-unit loops), the walk has
  an exact closed form (:func:`tile_deltas`): the translation at an odd step is always that of the
  innermost loop, so every step either repeats it (partial delta) or resets (whole tile).
  Spatial loops are not time steps for one instance.
* Across a fanout, children whose deltas are identical sets (same offset in the dataspace) are
  served by one multicast read; for outputs they are one spatially reduced update. Partially
  overlapping children are not merged. :func:`distinct_offsets` counts the groups.
* The **partition** (the part of a tensor one instance ever touches) follows Timeloop's integer
  chain ``p(i) = p(i-1) * tile(i) // spatial_tile(i-1)``; outputs use it for first-read elision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.arch.spec import Arch
from dse.errors import InvalidMapping
from dse.model.mapping import Mapping
from dse.problems.problem import Problem


@dataclass(frozen=True)
class NestLoop:
    """One non-unit loop of the flattened nest (outermost first)."""

    level: str
    level_index: int  # index into Arch.levels (0 = outermost)
    dim: str
    factor: int
    spatial: bool = False
    axis: str | None = None


@dataclass
class NestAnalysis:
    """Everything about a mapping that does not depend on energy or bandwidth.

    Keys of the per level × dataspace dicts are ``(level name, dataspace name)``; all counts are
    per instance of the level. ``extents[level][dim]`` is how many values of ``dim`` one instance
    of the level covers (its tile in problem space); ``resident`` is the keep set per level.
    """

    levels: list[str]
    loops: list[NestLoop]
    extents: dict[str, dict[str, int]]
    tiles: dict[tuple[str, str], int]
    partitions: dict[tuple[str, str], int]
    deltas: dict[tuple[str, str], int]  # kept pairs (all with analyze(all_deltas=True))
    multicast_groups: dict[tuple[str, str], int]
    instances: dict[str, int]
    resident: dict[str, frozenset[str]]
    compute_cycles: int
    mac_instances: int

    def keepers(self, dataspace: str) -> list[str]:
        """Levels that hold ``dataspace``, outermost first."""
        return [lv for lv in self.levels if dataspace in self.resident[lv]]


def rank_coefficients(problem: Problem) -> dict[str, list[dict[str, int]]]:
    """Per dataspace, per rank: the coefficient each dim contributes to that rank."""
    out: dict[str, list[dict[str, int]]] = {}
    for ds in problem.dataspaces:
        ranks = []
        for rank in ds.projection:
            coef: dict[str, int] = {}
            for dim, name in rank:
                coef[dim] = coef.get(dim, 0) + problem.coefficient(name)
            ranks.append(coef)
        out[ds.name] = ranks
    return out


def box_extents(ranks: list[dict[str, int]], sizes: dict[str, int]) -> list[int]:
    """Bounding-box extent of every rank when each dim ranges over ``sizes[dim]`` values."""
    out = []
    for coef in ranks:
        extent = 1
        for d, c in coef.items():
            extent += c * (sizes.get(d, 1) - 1)
        out.append(extent)
    return out


def overlap_delta(extents: list[int], move: list[int]) -> int:
    """Points of a box not covered by the same box translated by ``-move`` (AAHR subtraction).

    Timeloop subtracts boxes only when they differ along one rank; otherwise (or with no
    overlap) the whole box counts as new.
    """
    volume = math.prod(extents)
    moved = [r for r, v in enumerate(move) if v]
    if not moved:
        return 0
    if len(moved) > 1:
        return volume
    r = moved[0]
    shift = abs(move[r])
    if shift >= extents[r]:
        return volume
    return volume // extents[r] * shift


def tile_deltas(extents: list[int], steps: list[tuple[int, list[int]]],
                extrapolate: bool = True) -> int:
    """Points a tile receives over Timeloop's extrapolated walk of the loops above it.

    ``steps`` lists (bound, translation of the tile when that loop advances by one) for the
    non-unit temporal loops above the tile, innermost first. Sum over the walk's calls: the first
    brings the whole tile; a call that advances loop j (inner loops back to 0) has weight
    ``(n_j - 1) * prod(n_i, i > j)`` and translation ``M_j = step_j - sum(step_i, i < j)``; it
    brings the new part if ``M_j`` equals ``M_1`` (the stride Timeloop remembers), else the tile.

    Timeloop only evaluates iterations 0 and 1 of each loop, so the inner loops it rewinds stand
    at index 1. With ``extrapolate=False`` the walk is the exact one (inner loops rewind from
    ``n_i - 1``: ``M_j = step_j - sum((n_i - 1) * step_i)``), which is what Timeloop prints with
    ``TIMELOOP_DISABLE_TEMPORAL_EXTRAPOLATION=1``; the rest of the argument is unchanged because
    every other step of the exact walk is again a step of the innermost loop.
    """
    volume = math.prod(extents)
    if not steps:
        return volume
    total = volume
    outer = [1] * (len(steps) + 1)
    for j in range(len(steps) - 1, -1, -1):
        outer[j] = outer[j + 1] * steps[j][0]
    first = steps[0][1]
    acc = [0] * len(extents)
    for j, (n, step) in enumerate(steps):
        move = [s - a for s, a in zip(step, acc, strict=True)]
        delta = overlap_delta(extents, move) if move == first else volume
        total += (n - 1) * outer[j + 1] * delta
        rewind = 1 if extrapolate else n - 1
        acc = [a + rewind * s for a, s in zip(acc, step, strict=True)]
    return total


def distinct_offsets(ranks: list[dict[str, int]], loops: list[tuple[str, int, int]]) -> int:
    """Number of distinct dataspace offsets over a fanout's spatial loops (multicast groups).

    ``loops`` holds (dim, bound, stride in problem space) for one level's spatial loops.
    """
    offsets = {tuple(0 for _ in ranks)}
    for dim, bound, stride in loops:
        vec = [coef.get(dim, 0) * stride for coef in ranks]
        if not any(vec):
            continue
        offsets = {tuple(o + k * v for o, v in zip(off, vec, strict=True))
                   for off in offsets for k in range(bound)}
    return len(offsets)


def flatten(arch: Arch, mapping: Mapping) -> list[NestLoop]:
    """The mapping's non-unit loops, outermost first (spatial loops inside the level's temporal)."""
    loops: list[NestLoop] = []
    for i, lm in enumerate(mapping.levels):
        for lp in lm.temporal:
            if lp.factor > 1:
                loops.append(NestLoop(lm.level, i, lp.dim, lp.factor))
        for lp in lm.spatial:
            if lp.factor > 1:
                loops.append(NestLoop(lm.level, i, lp.dim, lp.factor, True, lp.axis))
    return loops


def check_structure(problem: Problem, arch: Arch, mapping: Mapping) -> None:
    """Level alignment, factor products and fanout; raises :class:`InvalidMapping`."""
    names = [lvl.name for lvl in arch.levels]
    got = [lm.level for lm in mapping.levels]
    if got != names:
        pairs = zip(got, names, strict=False)
        bad = next((g for g, n in pairs if g != n), got[len(names):] or names[len(got):])
        raise InvalidMapping(f"mapping levels {got} do not match the architecture's {names}",
                             level=str(bad))
    for lm in mapping.levels:
        for lp in lm.temporal + lm.spatial:
            if lp.dim not in problem.instance:
                raise InvalidMapping(f"unknown dimension {lp.dim}", level=lm.level)
            if lp.factor < 1:
                raise InvalidMapping(f"factor {lp.dim}{lp.factor} must be >= 1", level=lm.level)
    for dim in problem.dimensions:
        prod = mapping.factor_product(dim)
        if prod != problem.instance[dim]:
            holders = [lm.level for lm in mapping.levels
                       if lm.temporal_factor(dim) * lm.spatial_factor(dim) > 1]
            raise InvalidMapping(
                f"factors of {dim} multiply to {prod}, but {dim} = {problem.instance[dim]}"
                f" (loops over {dim} at: {', '.join(holders) or 'none'})",
                level=holders[0] if holders else names[0])
    for i, lm in enumerate(mapping.levels):
        if not lm.spatial:
            continue
        fx, fy = arch.fanout_xy(i)
        for axis, limit in (("X", fx), ("Y", fy)):
            used = math.prod(lp.factor for lp in lm.spatial if lp.axis == axis)
            if used > limit:
                raise InvalidMapping(f"spatial {axis} factors use {used} but the fanout is {limit}",
                                     level=lm.level)
        if any(lp.axis not in ("X", "Y") for lp in lm.spatial if lp.factor > 1):
            raise InvalidMapping("spatial loop without axis X or Y", level=lm.level)
    for ds in problem.dataspaces:
        if ds.name not in mapping.levels[0].keep:
            raise InvalidMapping(f"the outermost level must keep {ds.name}",
                                 level=mapping.levels[0].level)


def check_capacity(arch: Arch, analysis: NestAnalysis) -> None:
    """Kept tiles must fit: sum of tiles <= floor(depth * block / multiple buffering)."""
    for lvl in arch.levels:
        cap = lvl.capacity_words
        if cap is None:
            continue
        usable = math.floor(cap / lvl.multiple_buffering)
        used = sum(analysis.tiles[(lvl.name, d)] for d in analysis.resident[lvl.name])
        if used > usable:
            raise InvalidMapping(f"kept tiles need {used} words but capacity is {usable}",
                                 level=lvl.name)


def analyze(problem: Problem, arch: Arch, mapping: Mapping, *, check: bool = True,
            all_deltas: bool = False, extrapolate: bool = True) -> NestAnalysis:
    """Tiles, residency, deltas, multicast groups and partitions of ``mapping``.

    With ``check`` (default) an invalid mapping (levels, factor products, fanout, capacity)
    raises :class:`InvalidMapping` naming the level. Deltas are computed for the level ×
    dataspace pairs the mapping keeps (the only ones the counts use), or all with ``all_deltas``;
    ``extrapolate=False`` counts them with the exact walk instead of Timeloop's default
    two-iteration extrapolation (see :func:`tile_deltas`).
    """
    if check:
        check_structure(problem, arch, mapping)
    names = [lm.level for lm in mapping.levels]
    n = len(names)
    dims = problem.dimensions
    ranks = rank_coefficients(problem)
    loops = flatten(arch, mapping)

    # inner[k][dim]: product of dim's factors strictly inside loop k
    inner: list[dict[str, int]] = [{} for _ in loops]
    acc = dict.fromkeys(dims, 1)
    for k in range(len(loops) - 1, -1, -1):
        inner[k] = dict(acc)
        acc[loops[k].dim] *= loops[k].factor

    # below[i]: dim extents at and below level i; spatial_below[i]: level i's spatial + below
    below = [dict.fromkeys(dims, 1) for _ in range(n + 1)]
    spatial_below = [dict.fromkeys(dims, 1) for _ in range(n)]
    for i in range(n - 1, -1, -1):
        lm = mapping.levels[i]
        sp = spatial_below[i] = dict(below[i + 1])
        for lp in lm.spatial:
            sp[lp.dim] *= lp.factor
        tm = below[i] = dict(sp)
        for lp in lm.temporal:
            tm[lp.dim] *= lp.factor

    instances: dict[str, int] = {}
    used = 1
    for lm in mapping.levels:
        instances[lm.level] = used
        used *= math.prod(lp.factor for lp in lm.spatial)
    compute_cycles = math.prod(lp.factor for lp in loops if not lp.spatial)

    tiles: dict[tuple[str, str], int] = {}
    partitions: dict[tuple[str, str], int] = {}
    deltas: dict[tuple[str, str], int] = {}
    groups: dict[tuple[str, str], int] = {}
    temporal = [(k, lp) for k, lp in enumerate(loops) if not lp.spatial]
    above = [sum(1 for _, lp in temporal if lp.level_index < i) for i in range(n)]
    spatial = [[(lp.dim, lp.factor, inner[k][lp.dim]) for k, lp in enumerate(loops)
                if lp.level_index == i and lp.spatial] for i in range(n)]
    for ds in problem.dataspaces:
        rk = ranks[ds.name]
        steps = [(lp.factor, [c.get(lp.dim, 0) * inner[k][lp.dim] for c in rk])
                 for k, lp in temporal]
        part = 0
        for i, name in enumerate(names):
            ext = box_extents(rk, below[i])
            tile = math.prod(ext)
            tiles[(name, ds.name)] = tile
            if i == 0:
                part = tile
            else:
                part = part * tile // math.prod(box_extents(rk, spatial_below[i - 1]))
            partitions[(name, ds.name)] = part
            if all_deltas or ds.name in mapping.levels[i].keep:
                deltas[(name, ds.name)] = tile_deltas(ext, steps[above[i] - 1::-1]
                                                      if above[i] else [], extrapolate)
            groups[(name, ds.name)] = distinct_offsets(rk, spatial[i]) if spatial[i] else 1

    analysis = NestAnalysis(
        levels=names, loops=loops,
        extents={name: dict(below[i]) for i, name in enumerate(names)},
        tiles=tiles, partitions=partitions, deltas=deltas, multicast_groups=groups,
        instances=instances,
        resident={lm.level: frozenset(lm.keep) & {d.name for d in problem.dataspaces}
                  for lm in mapping.levels},
        compute_cycles=compute_cycles, mac_instances=used)
    if check:
        check_capacity(arch, analysis)
    return analysis
