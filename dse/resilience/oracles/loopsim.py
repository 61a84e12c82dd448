"""A literal loop-nest simulator: the oracle for mapping-aware fault sites.

It executes a mapping step by step on a tiny layer, with the real contents of every buffer instance,
and answers "which outputs come out wrong if this one stored word is corrupted at time t?". It is
deliberately naive (plain Python, sets and dicts, no closed forms) so that the analytical footprints
in :mod:`dse.resilience.mapped.sites` can be checked against something that shares none of their reasoning.

Semantics (the same ones :mod:`dse.resilience.mapped.sites` derives in closed form):

* Time is the temporal iteration space of the whole nest, outermost loop most significant; at every
  step every spatial instance (PE) performs one MAC.
* A level instance holds, for each dataspace it keeps, the bounding box of the projection of the
  loops at and below it (Timeloop's tile). Its instances are the spatial coordinates of the loops
  above it.
* At each step, first elements that left a tile are evicted (innermost levels first; an evicted
  partial sum is *added* into the copy of the next level up that keeps Outputs), then elements that
  entered a tile are filled (outermost levels first) from the next level up that keeps the dataspace
  (bypassed levels pass through); a newly entered partial sum starts at 0. Elements that stay in the
  tile are kept, not re-fetched (Timeloop's delta rule).
* A fault strikes after the fills of its step and before that step's MACs.
* MACs read their operands from the innermost level on their path that keeps each dataspace and add
  their product into the innermost level that keeps Outputs. At the end everything is flushed up.

Every word carries a value and a taint bit, so one run gives both the exact faulty outputs and the
set of outputs a corrupted word reached.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from dse.model.mapping import Mapping
from dse.problems.problem import Problem

Element = tuple[int, ...]


@dataclass(frozen=True)
class StorageFault:
    """One stored word corrupted: level index (outermost = 0), instance number, dataspace, element
    (rank coordinates) and the step at which it strikes. ``corrupt`` maps the clean value to the
    faulty one (default: add 1, enough to see where it goes)."""

    level: int
    instance: int
    dataspace: str
    element: Element
    time: int
    corrupt: Callable[[float], float] | None = None


@dataclass(frozen=True)
class MacFault:
    """A faulty MAC unit (PE number ``pe``): at one step (transient) or at every step (``time``
    None, a stuck PE). ``corrupt`` maps the clean product to the faulty one."""

    pe: int
    time: int | None
    corrupt: Callable[[float], float] | None = None


@dataclass
class SimResult:
    outputs: dict[Element, float]
    tainted: set[Element]


class LoopSim:
    """Runs one mapping of one problem; reusable for many faults."""

    def __init__(self, problem: Problem, mapping: Mapping):
        self.problem = problem
        self.nlev = len(mapping.levels)
        self.keep = [set(lm.keep) for lm in mapping.levels]
        # The whole nest, outermost first: (level, dim, bound, spatial). Unit loops carry nothing.
        self.loops: list[tuple[int, str, int, bool]] = []
        for i, lm in enumerate(mapping.levels):
            self.loops += [(i, lp.dim, lp.factor, False) for lp in lm.temporal if lp.factor > 1]
            self.loops += [(i, lp.dim, lp.factor, True) for lp in lm.spatial if lp.factor > 1]
        self.temporal = [k for k, lp in enumerate(self.loops) if not lp[3]]
        self.spatial = [k for k, lp in enumerate(self.loops) if lp[3]]
        self.steps = math.prod(self.loops[k][2] for k in self.temporal)
        self.pes = math.prod(self.loops[k][2] for k in self.spatial)
        self.ds = {d.name: d for d in problem.dataspaces}
        self.out = problem.output.name
        self._boxes: dict[tuple[int, tuple[int, ...], str], frozenset[Element]] = {}

    # --- index helpers --------------------------------------------------------------------------
    def _digits(self, number: int, ks: list[int]) -> dict[int, int]:
        """Mixed-radix digits of ``number`` over loops ``ks`` (first = most significant)."""
        out = {}
        for k in reversed(ks):
            number, out[k] = divmod(number, self.loops[k][2])
        return out

    def _point(self, idx: dict[int, int]) -> dict[str, int]:
        """Problem point from loop indices: a loop's index counts in units of the loops of the same
        dimension nested inside it."""
        point = dict.fromkeys(self.problem.dimensions, 0)
        for k, (_, dim, bound, _) in enumerate(self.loops):
            point[dim] = point[dim] * bound + idx.get(k, 0)
        return point

    def _project(self, ds: str, point: dict[str, int]) -> Element:
        return tuple(
            sum(self.problem.coefficient(c) * point[d] for d, c in rank)
            for rank in self.ds[ds].projection
        )

    def _outer(self, level: int, idx: dict[int, int]) -> tuple[int, ...]:
        """Indices of the loops above ``level`` (they fix the tile of its instance)."""
        return tuple(idx[k] for k, lp in enumerate(self.loops) if lp[0] < level)

    def _box(self, level: int, idx: dict[int, int], ds: str) -> frozenset[Element]:
        """Bounding box of ``ds`` touched by all loops at and below ``level``, enumerated."""
        key = (level, self._outer(level, idx), ds)
        if key not in self._boxes:
            inner = [k for k, lp in enumerate(self.loops) if lp[0] >= level]
            pts = []
            for combo in itertools.product(*(range(self.loops[k][2]) for k in inner)):
                full = {k: v for k, v in idx.items() if self.loops[k][0] < level}
                full.update(zip(inner, combo, strict=True))
                pts.append(self._project(ds, self._point(full)))
            ranges = [range(min(c), max(c) + 1) for c in zip(*pts, strict=True)]
            self._boxes[key] = frozenset(itertools.product(*ranges))
        return self._boxes[key]

    def _parent(self, level: int, ds: str) -> int | None:
        return next((p for p in range(level - 1, -1, -1) if ds in self.keep[p]), None)

    def _innermost(self, ds: str) -> int:
        return max(i for i in range(self.nlev) if ds in self.keep[i])

    def instance(self, level: int, pe: int) -> int:
        """Instance number of ``level`` on the path of PE ``pe``."""
        below = math.prod(self.loops[k][2] for k in self.spatial if self.loops[k][0] >= level)
        return pe // below

    # --- the run ----------------------------------------------------------------------------------
    def run(
        self,
        tensors: dict[str, dict[Element, float]] | None = None,
        fault: StorageFault | MacFault | None = None,
    ) -> SimResult:
        """Execute the nest. ``tensors`` gives the read-only operands' values (default: 1.0)."""
        tensors = tensors or {}
        operands = [d for d in self.ds if d != self.out]
        # content[(level, instance, ds)] = {element: [value, taint]}
        content: dict[tuple[int, int, str], dict[Element, list]] = {}
        held: dict[tuple[int, int, str], frozenset[Element]] = {}
        order_in = sorted(range(self.nlev), reverse=True)
        for t in range(self.steps + 1):
            tidx = self._digits(t, self.temporal) if t < self.steps else None
            new: dict[tuple[int, int, str], frozenset[Element]] = {}
            for pe in range(self.pes):
                if tidx is None:
                    break
                idx = {**tidx, **self._digits(pe, self.spatial)}
                for lvl in range(self.nlev):
                    for ds in self.keep[lvl]:
                        key = (lvl, self.instance(lvl, pe), ds)
                        if key not in new:
                            new[key] = self._box(lvl, idx, ds)
            # evictions, innermost level first; partial sums are added into the parent's copy
            for lvl in order_in:
                for key in [k for k in held if k[0] == lvl]:
                    _, inst, ds = key
                    parent = self._parent(lvl, ds)
                    if parent is None:
                        continue  # the backing store keeps everything to the end
                    for e in held[key] - new.get(key, frozenset()):
                        value, taint = content[key].pop(e)
                        if ds == self.out:
                            pinst = self._parent_instance(lvl, inst, parent)
                            word = content[(parent, pinst, ds)][e]
                            word[0] += value
                            word[1] = word[1] or taint
            if tidx is None:
                break
            # fills, outermost level first
            for lvl in range(self.nlev):
                for key in [k for k in new if k[0] == lvl]:
                    _, inst, ds = key
                    box = content.setdefault(key, {})
                    parent = self._parent(lvl, ds)
                    for e in new[key] - held.get(key, frozenset()):
                        if ds == self.out:
                            box[e] = [0.0, False]
                        elif parent is None:
                            box[e] = [float(tensors.get(ds, {}).get(e, 1.0)), False]
                        else:
                            pinst = self._parent_instance(lvl, inst, parent)
                            box[e] = list(content[(parent, pinst, ds)][e])
            held = new
            if isinstance(fault, StorageFault) and fault.time == t:
                word = content[(fault.level, fault.instance, fault.dataspace)][fault.element]
                word[0] = fault.corrupt(word[0]) if fault.corrupt else word[0] + 1.0
                word[1] = True
            for pe in range(self.pes):
                point = self._point({**tidx, **self._digits(pe, self.spatial)})
                value, taint = 1.0, False
                for ds in operands:
                    lvl = self._innermost(ds)
                    word = content[(lvl, self.instance(lvl, pe), ds)][self._project(ds, point)]
                    value *= word[0]
                    taint = taint or word[1]
                if isinstance(fault, MacFault) and fault.pe == pe and fault.time in (None, t):
                    value = fault.corrupt(value) if fault.corrupt else value + 1.0
                    taint = True
                lvl = self._innermost(self.out)
                word = content[(lvl, self.instance(lvl, pe), self.out)][
                    self._project(self.out, point)
                ]
                word[0] += value
                word[1] = word[1] or taint
        top = content[(0, 0, self.out)]
        return SimResult({e: w[0] for e, w in top.items()}, {e for e, w in top.items() if w[1]})

    def _parent_instance(self, level: int, instance: int, parent: int) -> int:
        """Instance of ``parent`` above instance ``instance`` of ``level``."""
        fan = math.prod(
            self.loops[k][2] for k in self.spatial if parent <= self.loops[k][0] < level
        )
        return instance // fan

    def resident(self, level: int, instance: int, ds: str, time: int) -> frozenset[Element]:
        """Elements held by one level instance at step ``time`` (where faults may be placed)."""
        below = math.prod(self.loops[k][2] for k in self.spatial if self.loops[k][0] >= level)
        idx = {**self._digits(time, self.temporal), **self._digits(instance * below, self.spatial)}
        return self._box(level, idx, ds)
