"""Mapping-aware fault sites: which outputs one corrupted stored word reaches, and how exposed each
buffer is (exposures: :mod:`dse.resilience.mapped.exposure`).

A mapping fixes, for every storage level, the tile of each dataspace it keeps and how long that tile
stays (the FIdelity idea). A word corrupted in level L at step t0 is read by

* the MACs below that L instance (spatial multicast: every PE under it) that use the element while
  the corrupted copy is still resident — up to the first outer-loop step whose tile no longer
  contains the element (temporal residency: loops above L that are irrelevant to the dataspace keep
  it, relevant ones slide or replace it);
* and only through children that fetch the element *after* t0: a child that already holds a clean
  copy keeps using it (it is not re-fetched while it stays in the child's tile).

Partial sums are added up level by level, so a corrupted partial sum reaches exactly its own output
(with every later accumulation carrying it). A transient MAC fault corrupts one product; a stuck PE
every product it computes under this mapping.

Nothing is simulated: the MACs that use an element come from inverting its projection (the use
set) and the mixed-radix loop numbering, residencies from the tile box at each outer step of the
level in question, all in numpy; :mod:`dse.resilience.oracles.loopsim` checks the result against a literal
step-by-step simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dse.model.mapping import Mapping
from dse.problems.problem import Problem

Element = tuple[int, ...]
MAC_SITE = "MAC"
TABLE_LIMIT = 1 << 22  # coordinate-table entries a nest may keep (8 bytes each: 32 MiB)
USERS_CACHE = 1 << 15  # use sets a nest keeps (a campaign strikes the same elements again and again)


@dataclass(frozen=True)
class Readers:
    """The MACs (step, PE) that consume a corrupted value; ``outputs`` are the outputs they write
    (for a partial sum: its own output, with no MAC involved)."""

    nest: Nest
    steps: np.ndarray
    pes: np.ndarray
    own: Element | None = None

    @property
    def outputs(self) -> frozenset[Element]:
        if self.own is not None:
            return frozenset({self.own})
        if not len(self.steps):
            return frozenset()
        ranks = self.nest.project(self.nest.problem.output.name,
                                  self.nest.coords(self.steps, self.pes))
        return frozenset(zip(*(r.tolist() for r in ranks), strict=True))


class Nest:
    """The loop nest of one mapping of one problem, with per-MAC coordinates as numpy arrays.

    Loops are ordered outermost first: per level its temporal loops, then its spatial loops (which
    fan out to the levels below). Unit loops are dropped. Step ``t`` and PE ``s`` are mixed-radix
    numbers over the temporal and spatial loops (outermost most significant), so the instance of
    level L serving PE s is ``s // pes_below[L]`` and the outer step of L at step t is
    ``t // steps_below[L]``.
    """

    def __init__(self, problem: Problem, mapping: Mapping):
        self.problem = problem
        self.mapping = mapping
        self.nlev = len(mapping.levels)
        self.keep = [frozenset(lm.keep) for lm in mapping.levels]
        loops: list[tuple[int, str, int, bool]] = []
        for i, lm in enumerate(mapping.levels):
            loops += [(i, lp.dim, lp.factor, False) for lp in lm.temporal if lp.factor > 1]
            loops += [(i, lp.dim, lp.factor, True) for lp in lm.spatial if lp.factor > 1]
        self.loops = loops
        temporal = [lp for lp in loops if not lp[3]]
        spatial = [lp for lp in loops if lp[3]]
        self.steps = math.prod(lp[2] for lp in temporal)
        self.pes = math.prod(lp[2] for lp in spatial)
        self.steps_below = [
            math.prod(lp[2] for lp in temporal if lp[0] >= i) for i in range(self.nlev)
        ]
        self.pes_below = [
            math.prod(lp[2] for lp in spatial if lp[0] >= i) for i in range(self.nlev)
        ]
        # stride of each loop in its dimension = product of the bounds of same-dim loops inside it
        strides = []
        for k, (_, dim, _, _) in enumerate(loops):
            strides.append(math.prod(lp[2] for lp in loops[k + 1 :] if lp[1] == dim))
        self._tterms = self._terms([k for k, lp in enumerate(loops) if not lp[3]], strides)
        self._sterms = self._terms([k for k, lp in enumerate(loops) if lp[3]], strides)
        self.extent = [
            {
                d: math.prod(lp[2] for lp in loops if lp[0] >= i and lp[1] == d)
                for d in problem.dimensions
            }
            for i in range(self.nlev)
        ]

    def _terms(self, ks: list[int], strides: list[int]) -> dict[str, list[tuple[int, int, int]]]:
        """Per dimension, (radix, bound, stride) of each of loops ``ks`` (a mixed-radix number,
        first loop most significant): coordinate = Σ (number // radix % bound) × stride. Kept as
        terms, not tables, because a real layer has millions of steps."""
        terms: dict[str, list[tuple[int, int, int]]] = {d: [] for d in self.problem.dimensions}
        radix = math.prod(self.loops[k][2] for k in ks)
        for k in ks:
            _, dim, bound, _ = self.loops[k]
            radix //= bound
            terms[dim].append((radix, bound, strides[k]))
        return terms

    @staticmethod
    def _coord(terms: list[tuple[int, int, int]], number: np.ndarray) -> np.ndarray:
        out = np.zeros(np.shape(number), dtype=np.int64)
        for radix, bound, stride in terms:
            out += (number // radix) % bound * stride
        return out

    # --- projections ------------------------------------------------------------------------------
    def project(self, ds: str, coords: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Rank coordinates of ``ds`` at problem points given per dimension."""
        space = self.problem.dataspace(ds)
        return [
            sum(self.problem.coefficient(c) * coords[d] for d, c in rank)
            for rank in space.projection
        ]

    def coords(self, steps: np.ndarray, pes: np.ndarray) -> dict[str, np.ndarray]:
        """Problem point of each (step, PE) pair (arrays broadcast)."""
        tables = self._tables()
        if tables is not None:  # a lookup instead of one divide-and-modulo per loop
            t, s = tables
            return {d: t[d][steps] + s[d][pes] for d in self.problem.dimensions}
        return {
            d: self._coord(self._tterms[d], steps) + self._coord(self._sterms[d], pes)
            for d in self.problem.dimensions
        }

    def _tables(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """Every step's and every PE's coordinate per dimension, built once per nest when they
        fit in ``TABLE_LIMIT`` entries (a fault campaign asks for them thousands of times)."""
        if not hasattr(self, "_table_cache"):
            size = (self.steps + self.pes) * len(self.problem.dimensions)
            self._table_cache = None if size > TABLE_LIMIT else (
                {d: self._coord(self._tterms[d], np.arange(self.steps))
                 for d in self.problem.dimensions},
                {d: self._coord(self._sterms[d], np.arange(self.pes))
                 for d in self.problem.dimensions})
        return self._table_cache

    def tile_box(self, level: int, ds: str, taus: np.ndarray, instance) -> list[tuple]:
        """Per rank, (low, high) of the tile of ``level`` instance ``instance`` at outer steps
        ``taus``: loops above fixed, loops at and below sweeping their full range (Timeloop's
        box)."""
        fixed = self.coords(taus * self.steps_below[level],
                            np.asarray(instance) * self.pes_below[level])
        boxes = []
        for rank in self.problem.dataspace(ds).projection:
            low = sum(self.problem.coefficient(c) * fixed[d] for d, c in rank)
            span = sum(self.problem.coefficient(c) * (self.extent[level][d] - 1) for d, c in rank)
            boxes.append((low, low + span))
        return boxes

    def tile_words(self, level: int, ds: str) -> int:
        space = self.problem.dataspace(ds)
        return math.prod(self.problem.rank_extent(r, self.extent[level]) for r in space.projection)

    def child(self, level: int, ds: str) -> int | None:
        return next((c for c in range(level + 1, self.nlev) if ds in self.keep[c]), None)

    def instances(self, level: int) -> int:
        return self.pes // self.pes_below[level]


def _step_of(terms: dict[str, list[tuple[int, int, int]]], point: dict[str, np.ndarray]):
    """Inverse of :meth:`Nest._coord`: the mixed-radix number whose loops produce ``point``."""
    out = np.zeros(len(next(iter(point.values()))), dtype=np.int64)
    for d, dim_terms in terms.items():
        for radix, bound, stride in dim_terms:
            out = out + (point[d] // stride) % bound * radix
    return out


def users(nest: Nest, ds: str, element: Element) -> tuple[np.ndarray, np.ndarray]:
    """(step, PE) of every MAC whose ``ds`` operand is ``element``, in no particular order.

    Dims of a single-term rank are fixed by the element; the dims of a sliding-window rank
    (e.g. R and P for an input column) take every combination that lands on it; the dims ``ds``
    does not depend on are free. Their product is the element's whole use set.
    """
    cache = nest.__dict__.setdefault("_users", {})
    hit = cache.get((ds, element))
    if hit is not None:
        return hit
    ranks, free = _rank_tables(nest, ds)
    axes = [(dims, by_value.get(int(want), np.zeros((0, len(dims)), dtype=np.int64)))
            for (dims, by_value), want in zip(ranks, element, strict=True)] + free
    picks = np.meshgrid(*(np.arange(len(combos)) for _, combos in axes), indexing="ij")
    point: dict[str, np.ndarray] = {}
    for (dims, combos), pick in zip(axes, picks, strict=True):
        for k, d in enumerate(dims):
            point[d] = combos[pick.ravel(), k]
    out = _step_of(nest._tterms, point), _step_of(nest._sterms, point)
    for arr in out:
        arr.flags.writeable = False  # shared by every fault on this element
    if len(cache) < USERS_CACHE:
        cache[(ds, element)] = out
    return out


def _rank_tables(nest: Nest, ds: str) -> tuple[list[tuple[tuple[str, ...], dict]], list]:
    """Per rank of ``ds``: its dims and, for each rank coordinate, the dim combinations that land
    on it; and the dims ``ds`` does not depend on, with all their values. Element-independent,
    so built once per nest and dataspace."""
    cache = nest.__dict__.setdefault("_ranks", {})
    if ds in cache:
        return cache[ds]
    inst = nest.problem.instance
    ranks, used = [], set()
    for rank in nest.problem.dataspace(ds).projection:
        dims = tuple(d for d, _ in rank)
        grids = np.meshgrid(*(np.arange(inst[d]) for d in dims), indexing="ij")
        flat = np.stack([g.ravel() for g in grids], axis=1)
        value = flat @ np.array([nest.problem.coefficient(c) for _, c in rank])
        order = np.argsort(value, kind="stable")
        keys, starts = np.unique(value[order], return_index=True)
        groups = np.split(flat[order], starts[1:])
        ranks.append((dims, {int(k): g for k, g in zip(keys, groups, strict=True)}))
        used.update(dims)
    free = [((d,), np.arange(inst[d])[:, None]) for d in nest.problem.dimensions if d not in used]
    cache[ds] = ranks, free
    return cache[ds]


def _window(nest: Nest, level: int, ds: str, element: Element, taus: np.ndarray,
            instances: np.ndarray) -> np.ndarray:
    """Whether ``element`` is in the tile of each instance (columns) at each outer step (rows)."""
    inside = np.ones((len(taus), len(instances)), dtype=bool)
    every = _all_boxes(nest, level, ds)
    if every is not None:
        rows, cols = np.ix_(taus, instances)
        boxes = [(low[rows, cols], high[rows, cols]) for low, high in every]
    else:
        boxes = nest.tile_box(level, ds, taus[:, None], instances[None, :])
    for (low, high), x in zip(boxes, element, strict=True):
        inside &= (low <= x) & (x <= high)
    return inside


def _all_boxes(nest: Nest, level: int, ds: str) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The tile box of ``level`` at every outer step of every instance (element-independent:
    built once per nest when it fits in ``TABLE_LIMIT`` entries, else None)."""
    cache = nest.__dict__.setdefault("_boxes", {})
    if (level, ds) not in cache:
        taus, insts = nest.steps // nest.steps_below[level], nest.instances(level)
        rank_count = len(nest.problem.dataspace(ds).projection)
        cache[(level, ds)] = None if 2 * taus * insts * rank_count > TABLE_LIMIT else [
            (np.broadcast_to(low, (taus, insts)), np.broadcast_to(high, (taus, insts)))
            for low, high in nest.tile_box(
                level, ds, np.arange(taus)[:, None], np.arange(insts)[None, :])]
    return cache[(level, ds)]


def residency(nest: Nest, level: int, ds: str, instance: int, element: Element,
              time: int) -> tuple[int, int]:
    """[start, end) steps of the residency of ``element`` in one level instance around ``time``:
    it was fetched at ``start`` and is evicted at ``end``."""
    below = nest.steps_below[level]
    tau = time // below
    inside = _window(nest, level, ds, element, np.arange(nest.steps // below),
                     np.array([instance]))[:, 0]
    if not inside[tau]:
        raise ValueError(f"element {element} is not resident in level {level} at step {time}")
    before = np.flatnonzero(~inside[:tau])
    after = np.flatnonzero(~inside[tau:])
    start = before[-1] + 1 if len(before) else 0
    end = tau + after[0] if len(after) else len(inside)
    return int(start * below), int(end * below)


def _gap(nest: Nest, level: int, ds: str, element: Element, steps: np.ndarray,
         pes: np.ndarray, first: int, last: int, *, before: bool) -> np.ndarray:
    """Per MAC, whether ``element`` left the tile of ``level`` on its path between outer step
    ``first`` and the MAC's own outer step (``before``), or between the MAC and ``last``."""
    below = nest.steps_below[level]
    taus = np.arange(first, last + 1)
    inst = pes // nest.pes_below[level]
    cols, col = np.unique(inst, return_inverse=True)
    out = ~_window(nest, level, ds, element, taus, cols)
    row = steps // below - first
    if before:
        seen = np.logical_or.accumulate(out, axis=0)
        return seen[row, col]
    seen = np.logical_or.accumulate(out[::-1], axis=0)[::-1]
    nxt = np.minimum(row + 1, len(taus) - 1)
    return seen[nxt, col] & (row + 1 < len(taus))


def storage_readers(
    nest: Nest, level: int, ds: str, instance: int, element: Element, time: int
) -> Readers:
    """MACs that consume the word ``element`` of ``ds`` held by ``level``/``instance`` if it is
    corrupted at step ``time`` (after that step's fills): the users of the element under this
    instance during the rest of the residency whose own copy below (if any) was fetched after
    the fault. A corrupted partial sum reaches its own output only."""
    _, end = residency(nest, level, ds, instance, element, time)
    if ds == nest.problem.output.name:
        empty = np.zeros(0, dtype=np.int64)
        return Readers(nest, empty, empty, tuple(int(x) for x in element))
    steps, pes = users(nest, ds, element)
    sel = (pes // nest.pes_below[level] == instance) & (steps >= time) & (steps < end)
    steps, pes = steps[sel], pes[sel]
    child = nest.child(level, ds)
    if child is not None and len(steps):
        below = nest.steps_below[child]
        fresh = _gap(nest, child, ds, element, steps, pes, time // below,
                     int(steps.max()) // below, before=True)
        steps, pes = steps[fresh], pes[fresh]
    return Readers(nest, steps, pes)


def accumulated(nest: Nest, level: int, instance: int, element: Element,
                time: int) -> tuple[np.ndarray, np.ndarray]:
    """MACs whose products a partial-sum copy holds when a fault strikes at step ``time``: those
    under this instance since the copy was started whose copy one Outputs level down has already
    been evicted (added up) — at the innermost Outputs level, every product so far."""
    out = nest.problem.output.name
    start, _ = residency(nest, level, out, instance, element, time)
    steps, pes = users(nest, out, element)
    sel = (pes // nest.pes_below[level] == instance) & (steps >= start) & (steps < time)
    steps, pes = steps[sel], pes[sel]
    child = nest.child(level, out)
    if child is not None and len(steps):
        below = nest.steps_below[child]
        flushed = _gap(nest, child, out, element, steps, pes, int(steps.min()) // below,
                       time // below, before=False)
        steps, pes = steps[flushed], pes[flushed]
    return steps, pes


def mac_readers(nest: Nest, pe: int, time: int | None) -> Readers:
    """A transient fault in one MAC at one step corrupts one product; a stuck PE (``time`` None)
    corrupts every product that PE computes under this mapping."""
    steps = np.arange(nest.steps) if time is None else np.array([time])
    return Readers(nest, steps, np.full(len(steps), pe))


def footprint(nest: Nest, level: int, ds: str, instance: int, element: Element, time: int):
    """Output elements a word corrupted at (level, instance, ds, element, step) reaches."""
    return storage_readers(nest, level, ds, instance, element, time).outputs
