"""Searching the mapspace: exhaustive where the pruned space fits, else random + local search.

Why a local search beats Timeloop's random sampler here: good mappings are clustered (move one
factor between neighbouring levels, reorder the loops of one level), and random sampling rarely
hits the points that fill the PE array *and* the buffers at the same time. We seed with random
points biased towards full buffers and arrays, then hill-climb from an elite pool with batched
neighbour evaluation, restarting from fresh samples now and then.

Every candidate is checked for capacity / fanout / constraints from its factors alone before the
model sees it; equivalent loop orders (see :mod:`dse.mapper.mapspace`) are evaluated once.
"""

from __future__ import annotations

import functools
import itertools
import math
import multiprocessing as mp
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dse.arch.spec import Arch
from dse.errors import InvalidMapping
from dse.frames import Framed
from dse.mapper.mapspace import MapSpace, Point, S, T, divisors, signature
from dse.model import BatchResult, MappingArrays, evaluate, evaluate_arrays
from dse.model.mapping import Mapping
from dse.model.stats import Stats
from dse.problems.problem import Problem

ExtraMetric = Callable[[Mapping, Stats], float]
#: A metric over a whole batch (array form + the model's batched results) -> one value per
#: mapping, so a search that optimises it stays on the vectorized path (e.g. an SDC-FIT
#: estimate from ``dse.resilience.mapped``: the mapper only knows it as "metric").
BatchMetric = Callable[[MappingArrays, BatchResult], np.ndarray]

#: The one registry of objective names (mapper, CLI, sweep config). ``metric`` is whatever
#: batched metric the caller supplies; ``sdc_fit`` names it for the resilience-aware search.
OBJECTIVES: dict[str, tuple[tuple[str, float], ...]] = {
    "edp": (("delay", 1.0), ("energy", 1.0)),
    "energy": (("energy", 1.0),),
    "delay": (("delay", 1.0),),
    "sdc_fit": (("extra", 1.0),),
    "edp_sdc_fit": (("delay", 1.0), ("energy", 1.0), ("extra", 1.0)),
}
#: Objectives that need a metric (``batch_metric`` or ``extra_metric``).
NEEDS_METRIC = frozenset(name for name, w in OBJECTIVES.items() if dict(w).get("extra"))


@dataclass(frozen=True)
class Objective:
    """What to minimise: ``kind="product"``: energy^a · cycles^b · extra^c, or ``kind="sum"``:
    a·energy_pJ + b·cycles + c·extra, with ``weights = {"energy": a, "delay": b, "extra": c}``."""

    kind: str = "product"
    weights: tuple[tuple[str, float], ...] = (("energy", 1.0), ("delay", 1.0))

    def score(self, energy_pJ: float, cycles: float, extra: float | None = None) -> float:
        vals = (energy_pJ, float(cycles), extra or 0.0)
        if self.kind == "sum":
            return sum(w * v for w, v in zip(self._all_weights, vals, strict=True))
        return math.exp(sum(w * math.log(max(vals[i], 1e-300)) for i, w in self._log_terms))

    @functools.cached_property
    def _all_weights(self) -> tuple[float, float, float]:
        """The weights of energy, delay and extra, in that order (0 where not given)."""
        w = dict(self.weights)
        return (w.get("energy", 0.0), w.get("delay", 0.0), w.get("extra", 0.0))

    @functools.cached_property
    def _log_terms(self) -> tuple[tuple[int, float], ...]:
        """(index into (energy, delay, extra), weight) of the non-zero weights, in that order:
        the product's log-sum adds the same terms in the same order for every mapping."""
        return tuple((i, w) for i, w in enumerate(self._all_weights) if w)


def make_objective(objective: str | Objective | dict) -> Objective:
    """``"edp"``, ``"energy"``, ``"delay"``, an :class:`Objective`, or a dict
    ``{"kind": "product"|"sum", "energy": a, "delay": b, "extra": c}``."""
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, dict):
        d = dict(objective)
        kind = d.pop("kind", "product")
        return Objective(kind, tuple(sorted((k, float(v)) for k, v in d.items())))
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} ({', '.join(OBJECTIVES)} or weights)")
    return Objective("product", OBJECTIVES[objective])


@dataclass
class MapperResult(Framed):
    """The search's answer. ``visited``: candidates generated (including ones rejected by the
    constraint / capacity pre-checks and repeats of equivalent mappings); ``evaluated``: sent
    to the model; ``valid``: the model accepted. ``pareto``: the energy × cycles Pareto set of
    all valid mappings seen, by increasing energy."""

    best: Mapping
    best_stats: Stats
    pareto: list[tuple[Mapping, Stats]]
    visited: int
    valid: int
    evaluated: int
    wall_s: float
    best_score: float = 0.0
    search: str = ""
    space: dict[str, float] = field(default_factory=dict)
    complete: bool = False  # exhaustive search saw every pruned point (best is the optimum)
    top: list[tuple[Mapping, Stats]] = field(default_factory=list)  # ``top_k`` lowest EDP
    # EDP x batched-metric Pareto set, by increasing EDP: (mapping, stats, metric value)
    front: list[tuple[Mapping, Stats, float]] = field(default_factory=list)

    def frame_rows(self) -> list[dict]:
        """``to_frame()``: the best mapping, then the Pareto set, then the lowest-EDP ones (a
        mapping in several sets appears once per set, ``kept`` says which)."""
        sets = [("best", [(self.best, self.best_stats)]), ("pareto", self.pareto),
                ("topk", self.top)]
        return [{"kept": kept, "energy_pJ": s.energy_pJ, "cycles": s.cycles,
                 "edp_J_cycles": s.edp, "utilization": s.utilization, "macs": s.macs}
                for kept, pairs in sets for _, s in pairs]


@dataclass
class _Found:
    """One evaluated candidate, kept small so workers can ship it back."""

    score: float
    energy: float
    cycles: int
    point: Point
    extra: float = 0.0  # the batched metric's value (0 without one)


class _Evaluator:
    """Runs the model on points, remembers equivalent ones, counts, keeps the Pareto set and
    the ``top_k`` lowest-EDP mappings (both from the batched results: no per-mapping Python)."""

    def __init__(self, space: MapSpace, objective: Objective, extra: ExtraMetric | None,
                 top_k: int = 0, metric: BatchMetric | None = None):
        self.space, self.objective, self.extra, self.metric = space, objective, extra, metric
        self.front: list[_Found] = []  # EDP x metric Pareto set (with a batched metric)
        self.seen: set = set()
        self.visited = self.valid = self.evaluated = self.rejected = 0
        self.pareto: list[_Found] = []
        self.top_k = top_k
        self.top: list[_Found] = []
        self._cut = math.inf
        self.best: _Found | None = None
        self._sigs: dict[tuple, int] = {}
        self._sig_ids: dict[tuple, int] = {}
        self._asked: dict[int, tuple[Point, tuple]] = {}  # keys is_seen built, for run()

    def key(self, p: Point) -> tuple:
        """Equal keys = equal access counts (same factors, axes, keeps and order classes)."""
        live = self.space._live_memo.get(p.factors) or self.space.live_all(p.factors)
        # the levels' class ids looked up without a Python loop (ids are >= 1: None = new)
        sig = tuple(map(self._sigs.get, zip(p.orders, live, strict=True)))
        if None in sig:
            sig = tuple([self._sig(o, lv) for o, lv in zip(p.orders, live, strict=True)])
        return (p.factors, p.axes, p.keeps, sig)

    def is_seen(self, p: Point) -> bool:
        """Whether an equivalent point was evaluated; the key is kept for :meth:`run`, which
        would otherwise build it again for every new neighbour."""
        k = self.key(p)
        self._asked[id(p)] = (p, k)
        return k in self.seen

    def _key_once(self, p: Point) -> tuple:
        asked = self._asked.get(id(p))
        return asked[1] if asked is not None and asked[0] is p else self.key(p)

    def _sig(self, order: tuple[str, ...], live: frozenset[str]) -> int:
        """The order's class as a small int: equal ids = equal signatures (interned, so the
        seen-set hashes a few ints per level, not the nested signature tuples)."""
        sig = self._sigs.get((order, live))
        if sig is None:
            full = signature(self.space, order, live)
            sig = self._sigs[(order, live)] = self._sig_ids.setdefault(full,
                                                                       len(self._sig_ids) + 1)
        return sig

    def run(self, points: Iterable[Point], prechecked: bool = False) -> list[_Found]:
        """Evaluate the points not seen before (equivalent orders count as seen); returns the
        valid ones. Without an extra metric the whole batch goes through the model's vectorized
        path; with one, each mapping's full Stats are needed, so the scalar path."""
        fresh = []
        for p in points:
            self.visited += 1
            k = self._key_once(p)
            if k in self.seen:
                continue
            self.seen.add(k)
            if prechecked or self.space.problem_with(p) is None:
                fresh.append(p)
        self._asked.clear()
        self.evaluated += len(fresh)
        out = self._vectorized(fresh) if self.extra is None else self._scalar(fresh)
        self.valid += len(out)
        for f in out:
            self._record(f)
        if self.metric is not None:
            self.front = edp_metric_front([*self.front, *out])
        if self.top_k:
            self._keep_top(out)
        return out

    def _keep_top(self, found: list[_Found]) -> None:
        """Add a batch to the top-K by EDP; trimmed (with the canonical tie-break) only when the
        list doubles, so the cost per batch stays about a comparison per mapping."""
        self.top.extend(f for f in found if f.energy * f.cycles <= self._cut)
        if len(self.top) >= 2 * self.top_k:
            self.top = top_by_edp(self.top, self.top_k)
            self._cut = self.top[-1].energy * self.top[-1].cycles  # K kept at or below it

    def _vectorized(self, points: list[Point]) -> list[_Found]:
        if not points:
            return []
        arrays = to_arrays(self.space, points)
        res = evaluate_arrays(self.space.problem, self.space.arch, arrays)
        extra = ([0.0] * len(points) if self.metric is None
                 else np.asarray(self.metric(arrays, res), dtype=float).tolist())
        score = self.objective.score
        # tolist(): the same values as Python floats / ints, without a numpy scalar per item
        return [_Found(score(e, c, x), e, c, p, x)
                for p, e, c, x, ok in zip(points, res.energy_pJ.tolist(), res.cycles.tolist(),
                                          extra, res.valid.tolist(), strict=True) if ok]

    def _scalar(self, points: list[Point]) -> list[_Found]:
        out = []
        for p in points:
            mapping = self.space.to_mapping(p)
            try:
                st = evaluate(self.space.problem, self.space.arch, mapping)
            except InvalidMapping:
                continue
            extra = self.extra(mapping, st) if self.extra else None
            out.append(_Found(self.objective.score(st.energy_pJ, st.cycles, extra),
                              st.energy_pJ, st.cycles, p))
        return out

    def _record(self, f: _Found) -> None:
        """Keep the best and the Pareto set. Ties (equal score and energy; equal energy and
        cycles) go to the smaller :func:`canonical_key`, never to whichever came first, so the
        answer does not depend on enumeration order, batch order or the worker split."""
        if self.best is None or _better(f, self.best):
            self.best = f
        for q in self.pareto:
            if q.energy <= f.energy and q.cycles <= f.cycles:
                if (q.energy, q.cycles) != (f.energy, f.cycles) \
                        or canonical_key(q.point) <= canonical_key(f.point):
                    return
        self.pareto = [q for q in self.pareto
                       if not (f.energy <= q.energy and f.cycles <= q.cycles)]
        self.pareto.append(f)


def canonical_key(p: Point) -> tuple:
    """A total order on points that does not depend on hashing (keep sets as sorted tuples):
    the last tie-breaker wherever two mappings score the same."""
    return (p.factors, p.axes, p.orders, tuple(tuple(sorted(k)) for k in p.keeps))


def edp_metric_front(found: Iterable[_Found]) -> list[_Found]:
    """Mappings no other one beats in both EDP and the batched metric (ties: canonical key),
    by increasing EDP."""
    ranked = sorted(found, key=lambda f: (f.energy * f.cycles, f.extra, canonical_key(f.point)))
    front: list[_Found] = []
    for f in ranked:
        if not front or f.extra < front[-1].extra:
            front.append(f)
    return front


def select(front: Sequence[tuple[Mapping, Stats, float]], minimize: str = "metric", *,
           edp_slack: float | None = None, metric_max: float | None = None
           ) -> tuple[Mapping, Stats, float] | None:
    """A constrained pick from an EDP x metric front (``MapperResult.front``): minimise
    ``metric`` subject to EDP <= (1 + ``edp_slack``) x the front's best EDP, or ``edp`` subject
    to metric <= ``metric_max``. None when no visited mapping meets the constraint."""
    if not front:
        return None
    best_edp = min(st.energy_pJ * st.cycles for _, st, _ in front)
    ok = [t for t in front
          if (edp_slack is None or t[1].energy_pJ * t[1].cycles <= (1 + edp_slack) * best_edp)
          and (metric_max is None or t[2] <= metric_max)]
    if not ok:
        return None
    if minimize == "metric":
        return min(ok, key=lambda t: (t[2], t[1].energy_pJ * t[1].cycles))
    return min(ok, key=lambda t: (t[1].energy_pJ * t[1].cycles, t[2]))


def top_by_edp(found: Iterable[_Found], k: int) -> list[_Found]:
    """The ``k`` lowest-EDP mappings; ties by energy, then :func:`canonical_key` (so the set
    does not depend on evaluation order or the worker split)."""
    return sorted(found, key=lambda f: (f.energy * f.cycles, f.energy, canonical_key(f.point)))[:k]


def _rank(f: _Found) -> tuple:
    """Sort key of a found mapping: score, then energy, then the canonical key."""
    return (f.score, f.energy, canonical_key(f.point))


def _better(f: _Found, g: _Found) -> bool:
    """``f`` ranks before ``g`` (the canonical key is built only on an exact tie)."""
    if (f.score, f.energy) != (g.score, g.energy):
        return (f.score, f.energy) < (g.score, g.energy)
    return canonical_key(f.point) < canonical_key(g.point)


# ---- neighbourhood -------------------------------------------------------------------------

def to_arrays(space: MapSpace, points: Sequence[Point]) -> MappingArrays:
    """The model's array form of a batch of points (no Mapping objects on the hot path). X flags
    and keep flags are flat rows memoized on the space by a point's whole axes and keeps (few
    distinct ones in a search), order ranks by each level's order (whole orders rarely repeat),
    so a batch is a few lookups per point and one numpy call per field."""
    b, n_l, n_d = len(points), space.nlev, len(space.dims)
    memo = space.__dict__.setdefault("_array_rows", ({}, {}, {}))
    x_rows, order_rows, keep_rows = memo
    flat = itertools.chain.from_iterable
    f = np.fromiter(flat(flat(p.factors for p in points)), dtype=np.int64,
                    count=b * 2 * n_l * n_d).reshape(b, n_l, 2, n_d)
    on_x = np.array([x_rows.get(p.axes) or _x_row(x_rows, p.axes) for p in points],
                    dtype=bool).reshape(b, n_l, n_d)
    order = np.fromiter(flat(order_rows.get(o) or _order_row(space, order_rows, o)
                             for p in points for o in p.orders), dtype=np.int64,
                        count=b * n_l * n_d).reshape(b, n_l, n_d)
    keep = np.array([keep_rows.get(p.keeps) or _keep_row(space, keep_rows, p.keeps)
                     for p in points], dtype=bool).reshape(b, n_l, len(space.ds_names))
    spatial = f[:, :, S, :]
    return MappingArrays(f[:, :, T, :].copy(), np.where(on_x, spatial, 1),
                         np.where(on_x, 1, spatial), order, keep)


def _x_row(rows: dict, axes: tuple[tuple[str, ...], ...]) -> tuple[bool, ...]:
    row = rows[axes] = tuple(a == "X" for level in axes for a in level)
    return row


def _order_row(space: MapSpace, rows: dict, order: tuple[str, ...]) -> tuple[int, ...]:
    """Rank per dim: the order's dims first (outermost = 0), then the others in dims order."""
    ranked = [*order, *(d for d in space.dims if d not in order)]
    row = rows[order] = tuple(ranked.index(d) for d in space.dims)
    return row


def _keep_row(space: MapSpace, rows: dict, keeps: tuple[frozenset[str], ...]
              ) -> tuple[bool, ...]:
    row = rows[keeps] = tuple(name in keep for keep in keeps for name in space.ds_names)
    return row


def _with(p: Point, **kw) -> Point:
    return Point(kw.get("factors", p.factors), kw.get("axes", p.axes), kw.get("orders", p.orders),
                 kw.get("keeps", p.keeps))


# Draws in the edits: ``seq[rng._randbelow(len(seq))]`` is what ``rng.choice(seq)`` does and
# ``rng._randbelow(n)`` what ``rng.randrange(n)`` does for n > 0: the same draws, one Python call
# cheaper each (a search makes millions); tests/test_mapper_search.py checks the identity.


def _insert_dim(space: MapSpace, i: int, order: tuple[str, ...], dim: str,
                rng: random.Random) -> tuple[str, ...]:
    """Put a newly non-unit dim into level i's order where the permutation constraint allows."""
    for _ in range(8):
        pos = rng._randbelow(len(order) + 1)
        cand = order[:pos] + (dim,) + order[pos:]
        if space.order_allowed(i, cand):
            return cand
    for pos in range(len(order) + 1):
        cand = order[:pos] + (dim,) + order[pos:]
        if space.order_allowed(i, cand):
            return cand
    return order + (dim,)


def move_factor(space: MapSpace, p: Point, rng: random.Random) -> Point | None:
    """Move one prime factor of one dim from one slot to another."""
    k = rng._randbelow(len(space.dims))
    holders = [s for s, f in enumerate(p.factors) if f[k] > 1]
    if not holders:
        return None
    src = holders[rng._randbelow(len(holders))]
    ps = primes(p.factors[src][k])
    prime = ps[rng._randbelow(len(ps))]
    dsts = [s for s, (hi, f) in enumerate(zip(space.slot_hi[k], p.factors, strict=True))
            if s != src and hi >= f[k] * prime]
    if not dsts:
        return None
    dst = dsts[rng._randbelow(len(dsts))]
    return _apply_factor_moves(space, p, [(k, src, dst, prime)], rng)


def _apply_factor_moves(space: MapSpace, p: Point, moves: list[tuple[int, int, int, int]],
                       rng: random.Random) -> Point | None:
    """Apply (dim, src slot, dst slot, amount) factor moves, then repair orders and axes (only
    the touched slots are rebuilt; the random draws are those of a full repair)."""
    factors = list(p.factors)
    bounds = space.bounds
    for k, src, dst, amount in moves:
        fs = factors[src]
        if fs[k] % amount or bounds[dst][k][1] < factors[dst][k] * amount:
            return None
        factors[src] = (*fs[:k], fs[k] // amount, *fs[k + 1:])
        fd = factors[dst]
        factors[dst] = (*fd[:k], fd[k] * amount, *fd[k + 1:])
    new_f = tuple(factors)
    orders = list(p.orders)
    axes = None
    for k, src, dst, _ in moves:
        for slot in (src, dst):
            i, kind = divmod(slot, 2)
            if kind == T:
                nonunit = space.nonunit(new_f, i)
                cur = orders[i]
                if len(cur) == len(nonunit) and all(map(nonunit.__contains__, cur)):
                    continue  # same loops (orders never repeat a dim): nothing to repair or draw
                live = set(nonunit)
                order = tuple(filter(live.__contains__, cur))
                for d in sorted(live.difference(order)):
                    order = _insert_dim(space, i, order, d, rng)
                orders[i] = order
            elif slot == dst and p.factors[slot][k] == 1:
                if axes is None:
                    axes = [list(a) for a in p.axes]
                axes[i][k] = "XY"[rng._randbelow(2)]
    return Point(new_f, p.axes if axes is None else tuple(tuple(a) for a in axes),
                 tuple(orders), p.keeps)


def swap_factors(space: MapSpace, p: Point, rng: random.Random) -> Point | None:
    """Trade primes between two slots (two dims, or two different primes of one dim): keeps
    both slots' sizes similar, so a full PE array or buffer stays full."""
    n = len(p.factors)
    if n <= 21:  # what rng.sample(range(n), 2) draws for a population this small
        src, j = rng._randbelow(n), rng._randbelow(n - 1)
        dst = n - 1 if j == src else j
    else:
        src, dst = rng.sample(range(n), 2)
    ks = [k for k, v in enumerate(p.factors[src]) if v > 1]
    js = [j for j, v in enumerate(p.factors[dst]) if v > 1]
    if not ks or not js:
        return None
    k = ks[rng._randbelow(len(ks))]
    j = js[rng._randbelow(len(js))]
    pks, pjs = primes(p.factors[src][k]), primes(p.factors[dst][j])
    pk = pks[rng._randbelow(len(pks))]
    pj = pjs[rng._randbelow(len(pjs))]
    if k == j and pk == pj:
        return None
    return _apply_factor_moves(space, p, [(k, src, dst, pk), (j, dst, src, pj)], rng)


def move_whole(space: MapSpace, p: Point, rng: random.Random) -> Point | None:
    """Move all of one dim's factor at one slot to another slot."""
    k = rng._randbelow(len(space.dims))
    holders = [s for s, f in enumerate(p.factors) if f[k] > 1]
    if not holders:
        return None
    src = holders[rng._randbelow(len(holders))]
    dst = rng._randbelow(len(p.factors))
    if dst == src:
        return None
    return _apply_factor_moves(space, p, [(k, src, dst, p.factors[src][k])], rng)


def reorder(space: MapSpace, p: Point, rng: random.Random) -> Point | None:
    """Move one loop of one level to another position (adjacent swap or to an end)."""
    levels = [i for i, o in enumerate(p.orders) if len(o) > 1]
    if not levels:
        return None
    i = levels[rng._randbelow(len(levels))]
    order = list(p.orders[i])
    a = rng._randbelow(len(order))
    d = order.pop(a)
    b = (max(a - 1, 0), min(a + 1, len(order)), 0, len(order))[rng._randbelow(4)]
    order.insert(b, d)
    if not space.order_allowed(i, order):
        return None
    orders = list(p.orders)
    orders[i] = tuple(order)
    return Point(p.factors, p.axes, tuple(orders), p.keeps)


def flip_keep(space: MapSpace, p: Point, rng: random.Random) -> Point | None:
    levels = [i for i, o in enumerate(space.keep_options) if len(o) > 1]
    if not levels:
        return None
    i = levels[rng._randbelow(len(levels))]
    keeps = list(p.keeps)
    options = space.keep_options[i]
    keeps[i] = options[rng._randbelow(len(options))]
    return Point(p.factors, p.axes, p.orders, tuple(keeps))


def flip_axis(space: MapSpace, p: Point, rng: random.Random) -> Point | None:
    levels = [i for i in space.spatial_levels if max(p.factors[2 * i + S]) > 1]
    if not levels:
        return None
    i = levels[rng._randbelow(len(levels))]
    ks = [k for k, v in enumerate(p.factors[2 * i + S]) if v > 1]
    k = ks[rng._randbelow(len(ks))]
    axes = [list(a) for a in p.axes]
    axes[i][k] = "Y" if axes[i][k] == "X" else "X"
    return Point(p.factors, tuple(tuple(a) for a in axes), p.orders, p.keeps)


MOVES = ((move_factor, 6), (swap_factors, 3), (move_whole, 1), (reorder, 3), (flip_keep, 1),
         (flip_axis, 1))
_FUNCS = tuple(f for f, w in MOVES for _ in range(w))  # one entry per unit of weight


def neighbours(space: MapSpace, p: Point, rng: random.Random, n: int,
               ev: _Evaluator) -> list[Point]:
    """Up to ``n`` valid, not yet seen single (sometimes double) edits of ``p``; edits that
    break a constraint count as visited (rejected before the model)."""
    funcs = _FUNCS
    draw = rng._randbelow
    out: list[Point] = []
    for _ in range(n * 6):
        if len(out) >= n:
            break
        q = funcs[draw(len(funcs))](space, p, rng)
        if q is not None and rng.random() < 0.3:
            q = funcs[draw(len(funcs))](space, q, rng)
        if q is None or q in out or ev.is_seen(q):
            continue
        if not space.quick_ok(q):
            ev.rejected += 1
            continue
        out.append(q)
    return out


# ---- the two searches --------------------------------------------------------------------

def _hybrid(space: MapSpace, ev: _Evaluator, rng: random.Random, deadline: float,
            victory: int, max_evals: int | None, tick: Callable[[int], None],
            climbers: int = 4, patience: int = 3) -> None:
    """Several hill climbers in lock-step: each round every climber's neighbours are evaluated
    in one batch and each climber moves to its best improving neighbour; a climber stuck for
    ``patience`` rounds restarts from a fresh sample, or from a kick (a few random edits) of
    the best point so far, which is first polished by steepest descent if it is new. Stops
    after ``victory`` evaluations without a new overall best, at
    the deadline, or after ``max_evals`` evaluations."""
    since_best = 0
    seeds = [q for q in (space.sample(rng, greedy=g) for g in (1.0, 0.8, 0.6, 0.4) * 4)
             if q is not None]
    found = ev.run(seeds, prechecked=True)
    tick(len(found))
    if not found:
        return
    _polish(space, ev, deadline, tick)  # systematic descent first: cheap in one batch
    polished = ev.best.point
    found.sort(key=_rank)
    current = [found[k % len(found)] for k in range(climbers)]
    stuck = [0] * climbers

    def fresh(k: int) -> _Found | None:
        if k % 2 == 0 and ev.best is not None:
            q = ev.best.point
            for _ in range(rng.randint(2, 5)):
                q = rng.choice((move_factor, reorder, flip_axis))(space, q, rng) or q
            start = [q] if space.quick_ok(q) else []
        else:
            start = [q for q in (space.sample(rng, greedy=rng.random()) for _ in range(2)) if q]
        got = ev.run(start, prechecked=True)
        return min(got, key=_rank) if got else None

    while time.monotonic() < deadline and since_best < victory:
        if max_evals is not None and ev.evaluated >= max_evals:
            break
        best_before = ev.best.score
        batches = [neighbours(space, c.point, rng, 8, ev) for c in current]
        flat = [q for b in batches for q in b]
        if not flat and all(s >= patience for s in stuck):
            break
        results = {f.point: f for f in ev.run(flat, prechecked=True)}
        tick(len(results))
        for k, batch in enumerate(batches):
            cands = [results[q] for q in batch if q in results]
            top = min(cands, key=_rank, default=None)
            if top is not None and top.score < current[k].score:
                current[k], stuck[k] = top, 0
            else:  # an exhausted neighbourhood (no new points) restarts at once
                stuck[k] += 1 if batch else patience
            if stuck[k] >= patience:
                if ev.best.point != polished:  # a new best: finish it off before moving on
                    _polish(space, ev, deadline, tick)
                    polished = ev.best.point
                new = fresh(k)
                if new is not None:
                    current[k], stuck[k] = new, 0
        improved = ev.best.score < best_before * (1 - 1e-12)
        since_best = 0 if improved else since_best + max(len(flat), 1)


@functools.cache
def primes(n: int) -> list[int]:
    """Distinct prime factors of n (cached: the edits ask for the same few sizes all the time;
    callers only read the list)."""
    return [d for d in divisors(n) if d > 1 and all(d % q for q in range(2, math.isqrt(d) + 1))]


def all_neighbours(space: MapSpace, p: Point) -> list[Point]:
    """Every single edit of ``p``: each prime factor moved to each other slot, each exchange of
    two different primes of one dim between two slots, each level's order replaced by each
    other order class, each free keep choice, each spatial axis flip."""
    out: list[Point] = []
    for k in range(len(space.dims)):
        holders = [s for s, f in enumerate(p.factors) if f[k] > 1]
        for src in holders:
            for prime in primes(p.factors[src][k]):
                for dst in range(len(p.factors)):
                    if dst != src:
                        out += _moved(space, p, [(k, src, dst, prime)])
                for dst in holders:
                    for back in primes(p.factors[dst][k]):
                        if dst != src and back != prime:
                            out += _moved(space, p, [(k, src, dst, prime), (k, dst, src, back)])
    for i in range(space.nlev):
        for o in space.order_classes(i, p.orders[i], space.live_dims(p.factors, i)):
            if o != p.orders[i]:
                out.append(_with(p, orders=p.orders[:i] + (o,) + p.orders[i + 1:]))
        for keep in space.keep_options[i]:
            if keep != p.keeps[i]:
                out.append(_with(p, keeps=p.keeps[:i] + (keep,) + p.keeps[i + 1:]))
        for k, v in enumerate(p.factors[2 * i + S]):
            if v > 1:
                flip = "Y" if p.axes[i][k] == "X" else "X"
                out.append(_with(p, axes=_set_axis(p.axes, i, k, flip)))
    return [q for q in out if space.quick_ok(q)]


def _moved(space: MapSpace, p: Point, moves: list[tuple[int, int, int, int]]) -> list[Point]:
    """``p`` with (dim, src slot, dst slot, amount) factor moves; orders keep their loops and
    place new ones innermost-legal; a new spatial factor gets each axis in turn."""
    factors = [list(x) for x in p.factors]
    for k, src, dst, amount in moves:
        if factors[src][k] % amount or space.bounds[dst][k][1] < factors[dst][k] * amount:
            return []
        factors[src][k] //= amount
        factors[dst][k] *= amount
    new_f = tuple(tuple(x) for x in factors)
    orders = list(p.orders)
    axes_opts = [p.axes]
    for k, src, dst, _ in moves:
        for slot in (src, dst):
            i, kind = divmod(slot, 2)
            if kind == T:
                orders[i] = _fix_order(space, i, orders[i], new_f)
        if dst % 2 == S and p.factors[dst][k] == 1:
            axes_opts = [_set_axis(ax, dst // 2, k, a) for ax in axes_opts for a in "XY"]
    return [Point(new_f, ax, tuple(orders), p.keeps) for ax in axes_opts]


def _fix_order(space: MapSpace, i: int, order: tuple[str, ...], factors) -> tuple[str, ...]:
    """Keep level i's order for loops that stay, drop unit ones, add new ones innermost-legal."""
    nonunit = space.nonunit(factors, i)
    kept = tuple(d for d in order if d in nonunit)
    for d in nonunit:
        if d not in kept:
            kept = next((c for c in (kept[:j] + (d,) + kept[j:] for j in range(len(kept), -1, -1))
                         if space.order_allowed(i, c)), kept + (d,))
    return kept


def _set_axis(axes, i: int, k: int, a: str):
    row = list(axes[i])
    row[k] = a
    return axes[:i] + (tuple(row),) + axes[i + 1:]


def _polish(space: MapSpace, ev: _Evaluator, deadline: float,
            tick: Callable[[int], None]) -> None:
    """Steepest descent over :func:`all_neighbours` from the best point, until no single edit
    improves it (a local optimum the random search may have stepped past) or the deadline."""
    while ev.best is not None and time.monotonic() < deadline:
        before = ev.best.score
        cands = [q for q in all_neighbours(space, ev.best.point) if not ev.is_seen(q)]
        for start in range(0, len(cands), 256):
            if time.monotonic() >= deadline:
                return
            tick(len(ev.run(cands[start:start + 256], prechecked=True)))
        if not ev.best.score < before * (1 - 1e-12):
            return


def _random(space: MapSpace, ev: _Evaluator, rng: random.Random, deadline: float,
            victory: int, max_evals: int | None, tick: Callable[[int], None]) -> None:
    """Timeloop-style random sampling: independent points until ``victory`` evaluations bring
    no better mapping, the deadline, or ``max_evals``."""
    since_best = 0
    while time.monotonic() < deadline and since_best < victory:
        if max_evals is not None and ev.evaluated >= max_evals:
            break
        before = ev.best.score if ev.best else math.inf
        batch = [q for q in (space.sample(rng, greedy=rng.random()) for _ in range(64)) if q]
        if not batch:
            break
        tick(len(ev.run(batch, prechecked=True)))
        improved = ev.best is not None and ev.best.score < before * (1 - 1e-12)
        since_best = 0 if improved else since_best + len(batch)


def _exhaustive(space: MapSpace, ev: _Evaluator, deadline: float, part: int, parts: int,
                tick: Callable[[int], None]) -> bool:
    """Every pruned point (this worker's share); False if the deadline cut it short."""
    batch = []
    for p in space.iter_points(pruned=True, part=part, parts=parts):
        batch.append(p)
        if len(batch) == 256:
            tick(len(ev.run(batch, prechecked=True)))
            batch = []
            if time.monotonic() > deadline:
                return False
    tick(len(ev.run(batch, prechecked=True)))
    return True


# ---- entry point -------------------------------------------------------------------------

_SHARED: dict = {}


def _worker(args: tuple) -> tuple:
    part, parts, mode, seed, deadline, victory, max_evals = args
    problem, arch, objective, extra, top_k, metric = _SHARED["job"]
    space = MapSpace(problem, arch)
    ev = _Evaluator(space, objective, extra, top_k, metric)
    tick = _SHARED.get("tick") or (lambda n: None)
    complete = False
    if mode == "exhaustive":
        complete = _exhaustive(space, ev, deadline, part, parts, tick)
    elif mode == "random":
        _random(space, ev, random.Random(seed * 7919 + part), deadline, victory, max_evals, tick)
    else:
        _hybrid(space, ev, random.Random(seed * 7919 + part), deadline, victory, max_evals, tick)
        _polish(space, ev, deadline, tick)
    return (ev.best, ev.pareto, ev.visited + ev.rejected, ev.valid, ev.evaluated, complete,
            ev.top, ev.front)


EXHAUSTIVE_RATE = 5000.0  # pruned mappings per second assumed by ``auto`` (a constant, never measured)


def choose_mode(space: MapSpace, search: str, time_limit: float | None, workers: int = 1,
                rate: float = EXHAUSTIVE_RATE) -> tuple[str, dict[str, float]]:
    """``auto``: exhaustive when the exact pruned size is at most ``rate × time_limit``
    (``time_limit`` None: 20 s), else hybrid.

    The choice depends on counts only: the pruned size (exact enumeration, or a seeded
    estimate, which is never "exact" and so never picks exhaustive) against a budget derived
    from the *given* time limit with a fixed ``rate``. No throughput is measured, and the
    budget does not depend on ``workers``, so the same inputs pick the same mode on any machine,
    under any load and with any worker count (``workers`` is kept for compatibility). The rate
    is conservative (enumeration + the vectorized model sustain several times more on one
    core), so a chosen exhaustive search normally completes; if a slow machine still hits the
    deadline, the result says so with ``complete=False`` and is then timing-dependent.
    """
    if search in ("random", "hybrid", "exhaustive"):
        return search, {}
    if search != "auto":
        raise ValueError(f"unknown search {search!r} (auto, exhaustive, random, hybrid)")
    sizes = space.size_report(samples=200)
    budget = rate * (time_limit if time_limit else 20.0)
    fits = sizes["exact"] and sizes["pruned"] <= budget
    return ("exhaustive" if fits else "hybrid"), sizes


def search(problem: Problem, arch: Arch, objective: str | Objective | dict = "edp",
           search: str = "auto", time_limit: float | None = 30.0, seed: int = 0,
           victory: int = 1500, extra_metric: ExtraMetric | None = None, workers: int = 2,
           max_evals: int | None = None, progress: Callable[[int], None] | None = None,
           top_k: int = 0, batch_metric: BatchMetric | None = None) -> MapperResult:
    """Find the best mapping of ``problem`` on ``arch``.

    ``search``: ``exhaustive`` (every pruned point), ``random`` / ``hybrid`` (seeded random +
    local search, stopping after ``victory`` evaluations without improvement, at
    ``time_limit`` seconds or at ``max_evals`` per worker), or ``auto`` (see
    :func:`choose_mode`: by counts, not by measured speed). ``workers`` processes search in
    parallel (different random streams, or shares of the exhaustive list). ``top_k``: also
    return the K lowest-EDP valid mappings seen (``MapperResult.top``), taken from the batched
    evaluation; ``extra_metric`` is the only thing that needs the per-mapping scalar path.
    ``batch_metric`` scores whole batches on the vectorized path (objectives ``sdc_fit`` and
    ``edp_sdc_fit`` use it) and the result carries the EDP x metric Pareto set
    (``MapperResult.front``; pick from it with :func:`select`).

    Reproducibility: with the same inputs and seed, and a stop by ``victory``/``max_evals`` or
    a complete exhaustive search (not by the wall-clock ``time_limit``), the result is the same
    whatever ``PYTHONHASHSEED``, machine speed or worker arrival order. Ties in score are
    broken by energy, then by :func:`canonical_key` of the mapping (also in the Pareto set), so
    a complete exhaustive search returns the same best mapping for every worker count; random
    and hybrid results depend on ``workers`` (one random stream per worker).
    Raises :class:`InvalidMapping` naming the binding constraint when nothing is valid.
    """
    t0 = time.monotonic()
    obj = make_objective(objective)
    if dict(obj.weights).get("extra") and batch_metric is None and extra_metric is None:
        raise ValueError(f"objective {objective!r} needs a metric (batch_metric or extra_metric)")
    space = MapSpace(problem, arch)
    explain_empty(space)
    mode, sizes = choose_mode(space, search, time_limit, workers)
    if mode == "random":
        victory = max(victory, 1)
    deadline = _deadline(t0, time_limit)
    jobs = [(w, workers, mode, seed, deadline, victory, max_evals) for w in range(workers)]
    _SHARED["job"] = (problem, arch, obj, extra_metric, top_k, batch_metric)
    try:
        if workers > 1 and not mp.current_process().daemon:  # pool workers cannot fork
            results = _run_pool(jobs, progress)
        else:
            _SHARED["tick"] = progress
            results = [_worker(job) for job in jobs]
    finally:
        _SHARED.clear()
    bests = [r[0] for r in results if r[0] is not None]
    if not bests:
        raise InvalidMapping(f"no valid mapping found ({sum(r[2] for r in results)} candidates "
                             f"visited); {_first_failure(space)}")
    best = min(bests, key=_rank)  # not the first worker's on a tie: same for any split
    pareto = _merge_pareto(f for r in results for f in r[1])
    best_map = space.to_mapping(best.point)
    best_stats = evaluate(problem, arch, best_map)
    top = top_by_edp((f for r in results for f in r[6]), top_k)
    front = edp_metric_front(f for r in results for f in r[7]) if batch_metric else []
    return MapperResult(
        best=best_map, best_stats=best_stats,
        pareto=[_full(space, f) for f in pareto], top=[_full(space, f) for f in top],
        front=[(*_full(space, f), f.extra) for f in front],
        visited=sum(r[2] for r in results), valid=sum(r[3] for r in results),
        evaluated=sum(r[4] for r in results), wall_s=time.monotonic() - t0,
        best_score=best.score, search=mode, space=sizes,
        complete=all(r[5] for r in results))


def _full(space: MapSpace, f: _Found) -> tuple[Mapping, Stats]:
    """A kept mapping with the model's full stats (per level), for the few mappings returned."""
    mapping = space.to_mapping(f.point)
    return mapping, evaluate(space.problem, space.arch, mapping)


def _deadline(t0: float, time_limit: float | None) -> float:
    """When the workers must stop so that the whole call ends within ``time_limit``: a share
    is kept for process start-up and for merging (monotonic time is system-wide, so forked
    workers can share the absolute value)."""
    if not time_limit:
        return math.inf
    spent = time.monotonic() - t0
    return t0 + max(time_limit * 0.92 - 0.05, spent + time_limit * 0.5)


def _run_pool(jobs: list[tuple], progress: Callable[[int], None] | None) -> list[tuple]:
    """Run the workers in forked processes; a shared counter feeds the progress callback."""
    ctx = mp.get_context("fork")
    counter = ctx.Value("q", 0)

    def tick(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    _SHARED["tick"] = tick
    with ctx.Pool(len(jobs), initializer=_one_thread) as pool:
        pending = pool.map_async(_worker, jobs)
        shown = 0
        while not pending.ready():
            pending.wait(0.02 if progress is not None else None)  # short: a search may end any moment
            if progress is not None and counter.value > shown:
                progress(counter.value - shown)
                shown = counter.value
        return pending.get()


def _one_thread() -> None:
    """Workers share two cores: one thread per numeric library (torch only if the caller
    already loaded it; the mapper itself does not need it, and importing it costs seconds)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _merge_pareto(found: Iterable[_Found]) -> list[_Found]:
    out: list[_Found] = []
    for f in sorted(found, key=lambda f: (f.energy, f.cycles, canonical_key(f.point))):
        if not out or f.cycles < out[-1].cycles:
            out.append(f)
    return out


# ---- explaining an empty space -------------------------------------------------------------

def explain_empty(space: MapSpace) -> None:
    """Raise :class:`InvalidMapping` naming the binding constraint if no mapping can exist:
    a dim whose factor constraints cannot multiply to its size, a level whose smallest possible
    tiles overflow it, or a utilization minimum above what the array can reach."""
    for k, d in enumerate(space.dims):
        if not space.dim_options(k):
            fixed = [(space.arch.levels[s // 2].name, "temporal" if s % 2 == T else "spatial",
                      lo, hi) for s, b in enumerate(space.bounds) for lo, hi in [b[k]]
                     if lo > 1 or 1 < hi < space.sizes[k]]
            text = ", ".join(f"{n} {kind} {d}" + (f"={lo}" if lo == hi else f" in [{lo},{hi}]")
                             for n, kind, lo, hi in fixed)
            raise InvalidMapping(f"dim {d}={space.sizes[k]} cannot be factored under the "
                                 f"constraints ({text or 'none'})")
    smallest = _smallest_factors(space)
    for i, lvl in enumerate(space.arch.levels):
        cap = space.capacity[i]
        least = min(space.keep_options[i], key=len)
        if cap is None or not least:
            continue
        sizes = space.tile_sizes(smallest, i)
        need = sum(space.problem.tile_size(d, sizes) for d in least) * space.buffering[i]
        if need > cap:
            raise InvalidMapping(f"even the smallest tiles of {sorted(least)} need {need:g} "
                                 f"words, capacity {cap}", level=lvl.name)
    most = math.prod(min(space.sizes[k], max(space.fanout_xy[i])) for i in range(space.nlev)
                     for k in range(len(space.dims)) if space.fanout[i] > 1)
    if space.min_util and most < space.min_util * space.arch.compute.instances:
        raise InvalidMapping(f"minimum utilization {space.min_util} cannot be reached")


def _smallest_factors(space: MapSpace) -> list[list[int]]:
    """Per slot the smallest factor each dim must take there (inner tiles as small as allowed)."""
    out = [[lo for lo, _ in b] for b in space.bounds]
    for k in range(len(space.dims)):
        rest = space.sizes[k] // math.prod(out[s][k] for s in range(1, len(out)))
        out[0][k] = max(rest, 1)
    return out


def _first_failure(space: MapSpace) -> str:
    """The most common reason random constructions fail (for the error message)."""
    rng = random.Random(0)
    reasons: dict[str, int] = {}
    opts = [space.dim_options(k) for k in range(len(space.dims))]
    for _ in range(300):
        pick = [rng.choice(o) for o in opts]
        f = tuple(tuple(pick[k][s] for k in range(len(space.dims)))
                  for s in range(2 * space.nlev))
        keeps = tuple(rng.choice(o) for o in space.keep_options)
        axes = tuple(tuple("X" for _ in space.dims) for _ in range(space.nlev))
        why = space.capacity_problem(f, keeps) or space.fanout_problem(f, axes)
        if why:
            key = why.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    if not reasons:
        return "every sampled factorization fits; the model rejected them"
    worst = max(reasons, key=lambda r: reasons[r])
    return f"most candidates fail at {worst}"
