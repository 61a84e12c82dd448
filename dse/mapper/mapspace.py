"""The mapspace of one (problem, arch): every mapping the design's constraints allow.

A point of the space is an index factorization (each dim's size split over one temporal and one
spatial slot per storage level), an X/Y axis per spatial factor, a loop order per level and a keep
set per level. The constraints (factor ``=``/``<=``/``>=``, permutations, spatial split,
keep/bypass, minimum utilization, max temporal loops) cut it down; then pruning that cannot lose
the optimum cuts it further:

* tiles follow from factors alone, so capacity, fanout and utilization failures are rejected
  before any model call (and while a factorization is being built, since tiles only grow);
* loops of bound 1 have no order, so orders are over the non-unit loops of a level only;
* orders that give every dataspace the same "reuse head" are one class
  (see :func:`order_signature`);
* spatial loops of one axis have no order (only the axis and the product count), so they are a set.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from functools import cache
from typing import NamedTuple

from dse.arch.spec import Arch
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.problems.problem import Problem

T, S = 0, 1  # slot kinds: temporal loops of a level, spatial fanout below it


class Point(NamedTuple):
    """One mapping in compact form (a named tuple: the search builds hundreds of thousands, and
    a frozen dataclass costs several times more to construct; equality and hash are the same
    as the dataclass's, those of the tuple of the four fields).

    ``factors[2*i + T]`` / ``factors[2*i + S]`` hold level i's temporal / spatial factor per dim
    (in ``problem.dimensions`` order); ``axes[i]`` the axis ("X"/"Y") of each spatial factor;
    ``orders[i]`` the non-unit temporal dims of level i, outermost first; ``keeps[i]`` the
    dataspaces level i keeps.
    """

    factors: tuple[tuple[int, ...], ...]
    axes: tuple[tuple[str, ...], ...]
    orders: tuple[tuple[str, ...], ...]
    keeps: tuple[frozenset[str], ...]


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def prime_factors(n: int) -> list[int]:
    """Prime factors of n with multiplicity, ascending (12 -> [2, 2, 3]): the units a random
    mapping scatters over the levels."""
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def _bounds(spec: tuple[str, int] | None, size: int) -> tuple[int, int]:
    """(lo, hi) allowed for one factor from a Timeloop factor constraint (``=0`` = full size)."""
    if spec is None:
        return 1, size
    op, value = spec
    value = size if value == 0 else min(value, size)  # Timeloop clamps to the dim size
    if op == "=":
        return value, value
    if op == "<=":
        return 1, value
    return value, size


def _axis_ok(listed: Sequence[str], free: Sequence[str], split: int | None,
             x_dims: set[str], y_dims: set[str]) -> bool:
    """Can the spatial dims ``x_dims``/``y_dims`` sit on X/Y under a Timeloop permutation whose
    innermost positions are ``listed`` (fixed order) followed by the ``free`` dims (any order),
    where the first ``split`` positions are X (``None``: any split)?"""
    n = len(listed) + len(free)
    for sp in ([split] if split is not None else range(n + 1)):
        sp = min(sp, n)
        if any((i < sp) != (d in x_dims) for i, d in enumerate(listed) if d in x_dims | y_dims):
            continue
        free_x = max(0, sp - len(listed))
        if len(x_dims & set(free)) <= free_x and len(y_dims & set(free)) <= len(free) - free_x:
            return True
    return False


class MapSpace:
    """The constrained mapspace of ``problem`` on ``arch``, with sampling, enumeration,
    membership and conversion to :class:`Mapping`."""

    def __init__(self, problem: Problem, arch: Arch):
        self.problem = problem
        self.arch = arch
        self.dims = tuple(problem.dimensions)
        self.sizes = tuple(problem.instance[d] for d in self.dims)
        self.nlev = len(arch.levels)
        self.ds_names = tuple(ds.name for ds in problem.dataspaces)
        self.fanout = [arch.fanout(i) for i in range(self.nlev)]
        self.fanout_xy = [self._xy(i) for i in range(self.nlev)]
        self.bounds = [self._slot_bounds(s) for s in range(2 * self.nlev)]
        self.keep_options = [self._keep_options(i) for i in range(self.nlev)]
        self.capacity = [lvl.capacity_words for lvl in arch.levels]
        self.buffering = [max(lvl.multiple_buffering, 1e-9) for lvl in arch.levels]
        self.min_util = max((lvl.constraints.min_utilization for lvl in arch.levels), default=0.0)
        self.rank_sets = _rank_sets(problem)
        # rank_sets as a hashable value (dataspace order kept): the key of the signature and
        # order-class caches shared by every space of one process (a sweep worker maps many
        # layers of one shape family on one design)
        self.rank_key = tuple((name, tuple((d, tuple(sorted(rs))) for d, rs in ranks.items()))
                              for name, ranks in self.rank_sets.items())
        self.min_outer = self._min_outer()
        self._bounded = [i for i in range(self.nlev) if self.capacity[i] is not None
                         and any(self.keep_options[i])]
        index = {d: k for k, d in enumerate(self.dims)}
        self._ranks = {ds.name: [[(index[d], problem.coefficient(c)) for d, c in rank]
                                 for rank in ds.projection] for ds in problem.dataspaces}
        # Memos of pure checks: a search re-checks the same factors / orders thousands of times
        # (edits change one part of a point), and these checks cost more than the model's
        # batched evaluation of the point. Keys are the exact inputs, so answers are unchanged.
        self._allowed: list[dict[tuple[str, ...], bool]] = [{} for _ in range(self.nlev)]
        self._nonunit: dict[tuple[int, ...], tuple[str, ...]] = {}  # by temporal row
        self._live_memo: dict[tuple, tuple[frozenset[str], ...]] = {}
        self._live_sets: dict[tuple[bool, ...], frozenset[str]] = {}
        self._live_steps: dict[tuple, tuple[tuple[bool, ...], frozenset[str]]] = {}
        self._cands: dict[tuple[int, int, int], list[int]] = {}
        self._orders_ok: dict[tuple, bool] = {}
        self._slot_ok: list[dict[tuple[int, ...], bool]] = [{} for _ in range(2 * self.nlev)]
        self._level_ok: list[dict[tuple, bool]] = [{} for _ in range(self.nlev)]
        # levels whose mesh check can fail: any fanout; a 1x1 level takes only unit factors
        # (its bounds), which any axes and any split rule accept
        self.spatial_levels = [i for i in range(self.nlev) if self.fanout[i] > 1]
        # per dim, the upper bound of its factor in every slot (the edits' destination test)
        self.slot_hi = [tuple(b[k][1] for b in self.bounds) for k in range(len(self.dims))]
        self._fits_memo: dict[tuple, bool] = {}
        self._fit_steps: dict[tuple, tuple[tuple[int, ...], bool]] = {}
        self._fits_at: dict[tuple, bool] = {}

    # ---- construction helpers -----------------------------------------------------------
    def _xy(self, i: int) -> tuple[int, int]:
        fx, fy = self.arch.fanout_xy(i)
        if fx * fy != self.fanout[i]:
            return self.fanout[i], 1
        return fx, fy

    def _slot_bounds(self, slot: int) -> tuple[tuple[int, int], ...]:
        i, kind = divmod(slot, 2)
        c = self.arch.levels[i].constraints
        out = []
        for d, size in zip(self.dims, self.sizes, strict=False):
            if kind == T:
                lo, hi = _bounds(c.temporal_factors.get(d), size)
            elif self.fanout[i] == 1:
                lo, hi = 1, 1
            else:
                lo, hi = _bounds(c.spatial_factors.get(d), size)
                hi = min(hi, max(self.fanout_xy[i]))
            out.append((lo, hi))
        return tuple(out)

    def _keep_options(self, i: int) -> list[frozenset[str]]:
        """Keep sets allowed at level i: constrained dataspaces fixed, the others free; the
        outermost level keeps everything (it is the backing store); dummy levels keep nothing."""
        lvl = self.arch.levels[i]
        if i == 0:
            return [frozenset(self.ds_names)]
        if lvl.dummy:
            return [frozenset()]
        c = lvl.constraints
        keep = set(c.keep or ()) & set(self.ds_names)
        bypass = set(c.bypass or ()) & set(self.ds_names)
        free = [d for d in self.ds_names if d not in keep and d not in bypass]
        return [frozenset(keep | set(sub)) for r in range(len(free) + 1)
                for sub in itertools.combinations(free, r)]

    # ---- checks on factors ---------------------------------------------------------------
    def tile_sizes(self, factors: Sequence[Sequence[int]], i: int) -> dict[str, int]:
        """Dim ranges covered by level i's tile: all loops at and below level i."""
        out = {}
        for k, d in enumerate(self.dims):
            out[d] = math.prod(factors[s][k] for s in range(2 * i, 2 * self.nlev))
        return out

    def capacity_problem(self, factors: Sequence[Sequence[int]], keeps: Sequence[frozenset[str]]
                         ) -> str | None:
        """None if every level's kept tiles fit, else which level overflows and by how much."""
        for i in range(self.nlev):
            cap = self.capacity[i]
            if cap is None or not keeps[i]:
                continue
            sizes = self.tile_sizes(factors, i)
            need = sum(self.problem.tile_size(d, sizes) for d in keeps[i]) * self.buffering[i]
            if need > cap:
                return (f"level {self.arch.levels[i].name} overflows: kept tiles need "
                        f"{need:g} words, capacity {cap}")
        return None

    def fanout_problem(self, factors: Sequence[Sequence[int]], axes: Sequence[Sequence[str]]
                       ) -> str | None:
        """None if every spatial level's X and Y products fit its mesh and the split rules."""
        for i in range(self.nlev):
            f = factors[2 * i + S]
            x = math.prod(v for v, a in zip(f, axes[i], strict=False) if a == "X")
            y = math.prod(v for v, a in zip(f, axes[i], strict=False) if a == "Y")
            fx, fy = self.fanout_xy[i]
            name = self.arch.levels[i].name
            if x > fx or y > fy:
                return f"level {name}: spatial X×Y = {x}×{y} exceeds the fanout {fx}×{fy}"
            if not self.axes_allowed(i, f, axes[i]):
                return f"level {name}: spatial X/Y assignment violates the split constraint"
        util = math.prod(math.prod(factors[2 * i + S]) for i in range(self.nlev))
        if util < self.min_util * self.arch.compute.instances:
            return (f"spatial utilization {util}/{self.arch.compute.instances} below the minimum "
                    f"{self.min_util}")
        return None

    def axes_allowed(self, i: int, f: Sequence[int], axes: Sequence[str]) -> bool:
        """X/Y assignment check under two readings of Timeloop's ``split``: literally (as the
        mapper reads its native input, where timeloopfe has pinned unit dims innermost, which
        shifts the split) or as the designer meant it (split counted over the dims that can be
        non-unit). A mapping passing either is in the space, so the reference mapper's own
        mappings are members and the designer's intended X/Y use is reachable."""
        x = {d for d, v, a in zip(self.dims, f, axes, strict=False) if v > 1 and a == "X"}
        y = {d for d, v, a in zip(self.dims, f, axes, strict=False) if v > 1 and a == "Y"}
        if not x and not y:
            return True
        c = self.arch.levels[i].constraints
        listed = list(reversed(c.spatial_permutation))  # innermost first, as Timeloop writes it
        free = [d for d in self.dims if d not in listed]
        if _axis_ok(listed, free, c.spatial_split, x, y):
            return True
        bounds = self.bounds[2 * i + S]
        unit = {d for d, (_, hi) in zip(self.dims, bounds, strict=True) if hi == 1}
        return _axis_ok([d for d in listed if d not in unit], [d for d in free if d not in unit],
                        c.spatial_split, x, y)

    def order_allowed(self, i: int, order: Sequence[str]) -> bool:
        """Non-unit temporal dims (outermost first) respect level i's permutation constraint:
        listed dims innermost in the listed order, free dims outside them."""
        order = tuple(order)
        got = self._allowed[i].get(order)
        if got is None:
            got = self._allowed[i][order] = self._order_allowed(i, order)
        return got

    def _order_allowed(self, i: int, order: Sequence[str]) -> bool:
        listed = self.arch.levels[i].constraints.temporal_permutation
        if not listed:
            return True
        ls = [d for d in order if d in listed]
        if ls != [d for d in listed if d in ls]:
            return False
        first_listed = next((k for k, d in enumerate(order) if d in listed), len(order))
        return all(d in listed for d in order[first_listed:])

    def max_loops_ok(self, i: int, order: Sequence[str]) -> bool:
        m = self.arch.levels[i].constraints.max_temporal_loops
        return m is None or len(order) <= m

    # ---- orders ----------------------------------------------------------------------------
    def order_classes(self, i: int, dims: tuple[str, ...], live: frozenset[str] | None = None
                      ) -> list[tuple[str, ...]]:
        """One representative order (outermost first) per class of orders of the non-unit dims
        ``dims`` at level i that give identical access counts (``live``: see
        :func:`order_signature`; :meth:`live_dims` gives it for a factorization)."""
        return _order_classes(self, i, tuple(sorted(dims)), live)

    def live_dims(self, factors: Sequence[Sequence[int]], i: int) -> frozenset[str]:
        """Dims whose sliding can continue into level i's loops from below: the nearest
        temporal loop of the dim below level i has bound 2 and no spatial factor of the dim
        sits between (see :func:`order_signature`)."""
        return self.live_all(tuple(map(tuple, factors)))[i]

    def live_all(self, factors: tuple[tuple[int, ...], ...]) -> tuple[frozenset[str], ...]:
        """:meth:`live_dims` of every level, in one pass from the innermost level outward
        (level i's answer per dim is level i+1's unless a loop of the dim sits in between);
        memoized by the factors, the sets interned so equal answers are one object."""
        got = self._live_memo.get(factors)
        if got is None:
            steps = self._live_steps
            live = (False,) * len(self.dims)
            out = [self._live_set(live)]
            for i in range(self.nlev - 2, -1, -1):
                key = (factors[2 * i + S], factors[2 * i + 2 + T], live)
                step = steps.get(key)  # one level's step, memoized: edits change few slots
                if step is None:
                    flags = tuple([False if sp > 1 else (t == 2 if t > 1 else lv)
                                   for sp, t, lv in zip(*key, strict=True)])
                    step = steps[key] = (flags, self._live_set(flags))
                live = step[0]
                out.append(step[1])
            got = self._live_memo[factors] = tuple(reversed(out))
        return got

    def _live_set(self, flags: tuple[bool, ...]) -> frozenset[str]:
        got = self._live_sets.get(flags)
        if got is None:
            got = self._live_sets[flags] = frozenset(d for d, f in zip(self.dims, flags,
                                                                       strict=True) if f)
        return got

    def all_orders(self, i: int, dims: Sequence[str]) -> list[tuple[str, ...]]:
        """Every constraint-respecting order of ``dims`` (no pruning)."""
        c = self.arch.levels[i].constraints
        listed = [d for d in c.temporal_permutation if d in dims]
        free = [d for d in dims if d not in listed]
        return [tuple(p) + tuple(listed) for p in itertools.permutations(free)]

    # ---- factor enumeration ------------------------------------------------------------------
    def dim_options(self, k: int) -> list[tuple[int, ...]]:
        """Every split of dim k's size over the 2*nlev slots within the per-slot bounds."""
        return _dim_options(self.sizes[k], tuple(b[k] for b in self.bounds))

    def iter_factorizations(self, keeps: Sequence[frozenset[str]], check_capacity: bool = True
                            ) -> Iterator[tuple]:
        """All factorizations whose tiles fit, built innermost slot first so a level that
        overflows cuts the whole subtree (``check_capacity=False``: every factorization)."""
        nslot = 2 * self.nlev
        factors = [[1] * len(self.dims) for _ in range(nslot)]
        remaining = list(self.sizes)
        min_outer = self.min_outer

        def rec(slot: int, k: int) -> Iterator[tuple]:
            if slot < 0:
                if all(r == 1 for r in remaining):
                    yield tuple(tuple(f) for f in factors)
                return
            if k == len(self.dims):
                i, kind = divmod(slot, 2)
                if check_capacity and kind == T and not self._level_fits(factors, keeps, i):
                    return
                if kind == S and math.prod(factors[slot]) > self.fanout[i]:
                    return
                yield from rec(slot - 1, 0)
                return
            lo, hi = self.bounds[slot][k]
            rem = remaining[k]
            for v in divisors(rem):
                if v < lo or v > hi or (rem // v) % min_outer[slot][k]:
                    continue
                if slot == 0 and v != rem:
                    continue
                factors[slot][k] = v
                remaining[k] = rem // v
                yield from rec(slot, k + 1)
                remaining[k] = rem
            factors[slot][k] = 1

        yield from rec(nslot - 1, 0)

    def _min_outer(self) -> list[list[int]]:
        """Product of the lower bounds of all slots outside each slot, per dim (pruning: the
        remainder must stay divisible by what the outer slots must take)."""
        out = []
        for slot in range(2 * self.nlev):
            out.append([math.prod(self.bounds[s][k][0] for s in range(slot))
                        for k in range(len(self.dims))])
        return out

    def _level_fits(self, factors, keeps, i: int) -> bool:
        cap = self.capacity[i]
        if cap is None or not keeps[i]:
            return True
        return self._sizes_fit([math.prod(col) for col in zip(*factors[2 * i:], strict=True)],
                               keeps[i], i)

    def _all_fit(self, factors, keeps) -> bool:
        """Every bounded level's kept tiles fit: tile sizes built outward one level at a time
        (one pass over the factors, not one per level). A level's step (the sizes below it, its
        two slots and keep set -> its sizes and whether they fit) is memoized: an edit changes
        one or two slots, so most steps of a new factorization were taken before."""
        bounded = self._bounded
        if not bounded:
            return True
        steps = self._fit_steps
        sizes = (1,) * len(self.dims)
        for i in range(self.nlev - 1, bounded[0] - 1, -1):
            key = (i, sizes, factors[2 * i], factors[2 * i + 1], keeps[i])
            got = steps.get(key)
            if got is None:
                new = tuple([a * t * sp for a, t, sp in zip(sizes, factors[2 * i],
                                                            factors[2 * i + 1], strict=True)])
                got = steps[key] = (new, not keeps[i] or self.capacity[i] is None
                                    or self._sizes_fit(new, keeps[i], i))
            sizes, fits = got
            if not fits:
                return False
        return True

    def _sizes_fit(self, sizes, keep: frozenset[str], i: int) -> bool:
        """Level i's kept tiles, for dim ranges ``sizes``, fit its capacity."""
        cap = self.capacity[i]
        need = 0
        for name in keep:
            tile = 1
            for rank in self._ranks[name]:
                if len(rank) == 1:  # most ranks are one dim with coefficient 1
                    (k, c), = rank
                    tile *= 1 + c * (sizes[k] - 1)
                else:
                    tile *= 1 + sum(c * (sizes[k] - 1) for k, c in rank)
            need += tile
        return need * self.buffering[i] <= cap

    def _fits_outward(self, sizes: list[int], keeps, i: int) -> bool:
        """Level i and every level outside it still fit (tiles only grow outward, so a level
        that overflows now will overflow whatever the outer slots take). ``sizes``: the dim
        ranges of everything placed so far; slots are filled innermost first, so the slots
        outside the one being filled are still 1 and every level j <= i has exactly these
        tile sizes."""
        key = tuple(sizes)
        memo = self._fits_at
        for j in self._bounded:
            if j > i or not keeps[j]:
                continue
            fits = memo.get((j, keeps[j], key))
            if fits is None:  # memoized: samples try the same sizes over and over
                fits = memo[(j, keeps[j], key)] = self._sizes_fit(key, keeps[j], j)
            if not fits:
                return False
        return True

    def axis_choices(self, factors: Sequence[Sequence[int]]) -> list[tuple[tuple[str, ...], ...]]:
        """Every allowed X/Y assignment of the spatial factors (one tuple per level)."""
        per_level = []
        for i in range(self.nlev):
            f = factors[2 * i + S]
            nonunit = [k for k, v in enumerate(f) if v > 1]
            opts = []
            fx, fy = self.fanout_xy[i]
            for bits in itertools.product("XY", repeat=len(nonunit)):
                axes = ["X"] * len(self.dims)
                for k, a in zip(nonunit, bits, strict=False):
                    axes[k] = a
                x = math.prod(f[k] for k, a in zip(nonunit, bits, strict=False) if a == "X")
                y = math.prod(f[k] for k, a in zip(nonunit, bits, strict=False) if a == "Y")
                if x <= fx and y <= fy and self.axes_allowed(i, f, axes):
                    opts.append(tuple(axes))
            if not opts:
                return []
            per_level.append(opts)
        return [tuple(c) for c in itertools.product(*per_level)]

    def nonunit(self, factors: Sequence[Sequence[int]], i: int) -> tuple[str, ...]:
        f = tuple(factors[2 * i + T])
        got = self._nonunit.get(f)
        if got is None:
            got = self._nonunit[f] = tuple(d for d, v in zip(self.dims, f, strict=False) if v > 1)
        return got

    def iter_points(self, pruned: bool = True, part: int = 0, parts: int = 1
                    ) -> Iterator[Point]:
        """Every point (exhaustive). ``pruned``: capacity failures cut while factors are built
        and one order per equivalence class; else every factorization and every order (the
        model rejects what does not fit), to check that pruning loses nothing. ``part`` of
        ``parts``: only every parts-th factorization, so workers split the enumeration too."""
        n = -1
        for keeps in itertools.product(*self.keep_options):
            for factors in self.iter_factorizations(keeps, check_capacity=pruned):
                n += 1
                if n % parts != part or self._util_low(factors):
                    continue
                axes_opts = self.axis_choices(factors)
                if not axes_opts:
                    continue
                per_level = []
                for i in range(self.nlev):
                    dims = self.nonunit(factors, i)
                    orders = (self.order_classes(i, dims, self.live_dims(factors, i)) if pruned
                              else self.all_orders(i, dims))
                    per_level.append([o for o in orders if self.max_loops_ok(i, o)])
                for orders in itertools.product(*per_level):
                    for axes in axes_opts:
                        yield Point(factors, axes, orders, keeps)

    def _util_low(self, factors) -> bool:
        floor = self.min_util * self.arch.compute.instances
        if floor <= 1:  # factors are >= 1, so every mapping uses at least one PE
            return False
        used = math.prod(math.prod(factors[2 * i + S]) for i in range(self.nlev))
        return used < floor

    # ---- random sampling -------------------------------------------------------------------
    def sample(self, rng: random.Random, greedy: float = 0.5, tries: int = 200) -> Point | None:
        """A random valid point, or None after ``tries`` failed constructions. Factors are
        placed innermost slot first; with probability ``greedy`` a slot takes the largest
        divisor that still fits (fills buffers and the array), else a uniform one."""
        for _ in range(tries):
            keeps = tuple(rng.choice(opts) for opts in self.keep_options)
            built = self._sample_factors(rng, keeps, greedy)
            if built is None:
                continue
            factors, axes = built
            # = fanout_problem(): levels without fanout got unit spatial factors (their bounds)
            if self._util_low(factors) or not self._meshes_ok(factors, axes):
                continue
            live = self.live_all(factors)
            orders = tuple(rng.choice(self.order_classes(i, self.nonunit(factors, i), live[i]))
                           for i in range(self.nlev))
            if all(self.max_loops_ok(i, o) for i, o in enumerate(orders)):
                return Point(factors, axes, orders, keeps)
        return None

    def _sample_factors(self, rng: random.Random, keeps, greedy: float):
        """Factors and spatial axes built slot by slot from the innermost, each choice checked
        against the level's capacity (tiles only grow outward) and the mesh (X, Y budgets)."""
        nslot, ndim = 2 * self.nlev, len(self.dims)
        factors = [[1] * ndim for _ in range(nslot)]
        axes = [["X"] * ndim for _ in range(self.nlev)]
        remaining = list(self.sizes)
        placed = [1] * ndim  # product of the factors placed so far, per dim
        for slot in range(nslot - 1, -1, -1):
            i, kind = divmod(slot, 2)
            order = list(range(ndim))
            rng.shuffle(order)
            big = rng.random() < greedy
            budget = {"X": self.fanout_xy[i][0], "Y": self.fanout_xy[i][1]}
            for k in order:
                lo, hi = self.bounds[slot][k]
                rem = remaining[k]
                if slot == 0:
                    cands = [rem] if lo <= rem <= hi else []
                elif hi == 1:
                    cands = [1] if lo == 1 else []
                else:
                    cands = self._cands.get((slot, k, rem))
                    if cands is None:  # shared: only read below
                        cands = self._cands[(slot, k, rem)] = [
                            v for v in divisors(rem)
                            if lo <= v <= hi and (rem // v) % self.min_outer[slot][k] == 0]
                if cands == [1]:  # nothing to place (budgets stay >= 1, so the mesh takes 1)
                    if not big:  # the draws the general path below makes: sample, then choice
                        rng._randbelow(1)
                        rng._randbelow(1)
                    continue
                if kind == S:
                    cands = [v for v in cands if v <= max(budget.values())]
                if not cands:
                    return None
                ok = []
                before = placed[k]
                for v in (sorted(cands, reverse=True) if big else rng.sample(cands, len(cands))):
                    placed[k] = before * v
                    if v == 1 or self._fits_outward(placed, keeps, i):
                        ok.append(v)
                        if big or len(ok) > 3:
                            break
                if not ok:
                    return None
                v = ok[0] if big else rng.choice(ok)
                factors[slot][k] = v
                placed[k] = before * v
                remaining[k] = rem // v
                if kind == S and v > 1:
                    fit = [a for a in ("X", "Y") if v <= budget[a]]
                    a = rng.choice(fit)
                    axes[i][k] = a
                    budget[a] //= v
        if any(r != 1 for r in remaining):
            return None
        return tuple(tuple(f) for f in factors), tuple(tuple(a) for a in axes)

    # ---- validity, membership, conversion ---------------------------------------------------
    def problem_with(self, p: Point) -> str | None:
        """None if ``p`` is in the space, else the first constraint it breaks."""
        for k, d in enumerate(self.dims):
            prod = math.prod(f[k] for f in p.factors)
            if prod != self.sizes[k]:
                return f"dim {d}: factors multiply to {prod}, not {self.sizes[k]}"
        for slot, f in enumerate(p.factors):
            i, kind = divmod(slot, 2)
            for k, v in enumerate(f):
                lo, hi = self.bounds[slot][k]
                if not lo <= v <= hi:
                    what = "temporal" if kind == T else "spatial"
                    return (f"level {self.arch.levels[i].name}: {what} factor "
                            f"{self.dims[k]}={v} outside the allowed [{lo}, {hi}]")
        for i, keep in enumerate(p.keeps):
            if keep not in self.keep_options[i]:
                return f"level {self.arch.levels[i].name}: keep set {sorted(keep)} not allowed"
            if set(p.orders[i]) != set(self.nonunit(p.factors, i)):
                return f"level {self.arch.levels[i].name}: order does not list the non-unit loops"
            if not self.order_allowed(i, p.orders[i]):
                return f"level {self.arch.levels[i].name}: loop order violates the permutation"
            if not self.max_loops_ok(i, p.orders[i]):
                return f"level {self.arch.levels[i].name}: too many temporal loops"
        return self.fanout_problem(p.factors, p.axes) or self.capacity_problem(p.factors, p.keeps)

    def quick_ok(self, p: Point, capacity: bool = True) -> bool:
        """Fast validity for points built by the search's edits (which keep factor products
        and list every non-unit loop). ``capacity=False`` leaves the capacity check to the
        model's vectorized path, which does it for a batch faster than Python per point."""
        if capacity:
            key = (p.factors, p.keeps)
            fits = self._fits_memo.get(key)
            if fits is None:
                fits = self._fits_memo[key] = self._all_fit(p.factors, p.keeps)
            if not fits:
                return False
        if not self._factors_ok(p.factors, p.axes):
            return False
        ok = self._orders_ok.get(p.orders)
        if ok is None:
            ok = self._orders_ok[p.orders] = all(
                self.order_allowed(i, o) and self.max_loops_ok(i, o)
                for i, o in enumerate(p.orders))
        return ok

    def _factors_ok(self, factors, axes) -> bool:
        """Factor bounds, utilization and fanout of a point (its orders and keeps aside).

        The checks split by slot (bounds) and by level (X/Y products, split rule), and an edit
        changes one or two slots, so each part is memoized on its own rows: the same answer
        as :meth:`fanout_problem` plus the bounds, with a few lookups instead of the loops."""
        slot_ok = self._slot_ok
        if not all(map(dict.get, slot_ok, factors)):  # a slot new or out of bounds (C loop)
            for slot, f in enumerate(factors):
                ok = slot_ok[slot].get(f)
                if ok is None:
                    ok = slot_ok[slot][f] = all(lo <= v <= hi for (lo, hi), v
                                                in zip(self.bounds[slot], f, strict=True))
                if not ok:
                    return False
        return not self._util_low(factors) and self._meshes_ok(factors, axes)

    def _meshes_ok(self, factors, axes) -> bool:
        """Every level with a fanout: its X and Y products fit the mesh and the split rules
        (memoized per level on its spatial factors and axes)."""
        level_ok = self._level_ok
        for i in self.spatial_levels:
            f, a = factors[2 * i + S], axes[i]
            ok = level_ok[i].get((f, a))
            if ok is None:
                ok = level_ok[i][(f, a)] = self._mesh_ok(i, f, a)
            if not ok:
                return False
        return True

    def _mesh_ok(self, i: int, f: Sequence[int], axes: Sequence[str]) -> bool:
        """Level i's spatial factors ``f`` on ``axes`` fit its X and Y and the split rules (the
        per-level part of :meth:`fanout_problem`)."""
        x = math.prod(v for v, a in zip(f, axes, strict=False) if a == "X")
        y = math.prod(v for v, a in zip(f, axes, strict=False) if a == "Y")
        fx, fy = self.fanout_xy[i]
        return x <= fx and y <= fy and self.axes_allowed(i, f, axes)

    def to_mapping(self, p: Point) -> Mapping:
        levels = []
        for i, lvl in enumerate(self.arch.levels):
            tf = dict(zip(self.dims, p.factors[2 * i + T], strict=False))
            sf = p.factors[2 * i + S]
            temporal = [Loop(d, tf[d]) for d in p.orders[i]]
            listed = list(lvl.constraints.spatial_permutation)
            spatial = []
            for axis in ("X", "Y"):
                ds = [d for d, v, a in zip(self.dims, sf, p.axes[i], strict=True)
                      if v > 1 and a == axis]
                ds.sort(key=lambda d: listed.index(d) if d in listed else -1)
                spatial += [Loop(d, sf[self.dims.index(d)], True, axis) for d in ds]
            levels.append(LevelMapping(lvl.name, temporal, spatial, p.keeps[i]))
        return Mapping(levels)

    def from_mapping(self, m: Mapping) -> Point:
        """The point of a mapping (e.g. one read from a Timeloop map.yaml)."""
        factors, axes, orders, keeps = [], [], [], []
        for _i, lvl in enumerate(self.arch.levels):
            lm = m.level(lvl.name)
            factors.append(tuple(lm.temporal_factor(d) for d in self.dims))
            factors.append(tuple(lm.spatial_factor(d) for d in self.dims))
            ax = []
            for d in self.dims:
                loops = [lp for lp in lm.spatial if lp.dim == d and lp.factor > 1]
                ax.append(loops[0].axis or "X" if loops else "X")
            axes.append(tuple(ax))
            orders.append(tuple(lp.dim for lp in lm.temporal if lp.factor > 1))
            keeps.append(frozenset(lm.keep))
        return Point(tuple(factors), tuple(axes), tuple(orders), tuple(keeps))

    # ---- sizes -----------------------------------------------------------------------------
    def size_report(self, samples: int = 2000, seed: int = 0) -> dict[str, float]:
        """Mapspace sizes before and after pruning.

        ``raw``: Timeloop's count (factorizations within per-slot bounds × every order of the
        dims each level leaves free, unit loops included × X/Y splits × keep choices).
        ``pruned``: valid factorizations (capacity, fanout, utilization) × order classes ×
        allowed X/Y assignments × keep choices; exact by enumeration when the factorization
        space is small, else estimated from ``samples`` uniform draws.
        """
        fact = math.prod(len(self.dim_options(k)) for k in range(len(self.dims)))
        perms = math.prod(math.factorial(sum(1 for d in self.dims
                                             if d not in self.arch.levels[i].constraints
                                             .temporal_permutation))
                          for i in range(self.nlev))
        splits = math.prod(len(self.dims) + 1 for i in range(self.nlev) if self.fanout[i] > 1)
        keeps = math.prod(len(o) for o in self.keep_options)
        raw = fact * perms * splits * keeps
        if fact <= 30_000:
            pruned = sum(self._point_count(f, k) for k in itertools.product(*self.keep_options)
                         for f in self.iter_factorizations(k))
            exact = True
        else:
            rng = random.Random(seed)
            opts = [self.dim_options(k) for k in range(len(self.dims))]
            total = 0.0
            for _ in range(samples):
                keep = tuple(rng.choice(o) for o in self.keep_options)
                pick = [rng.choice(o) for o in opts]
                f = tuple(tuple(pick[k][s] for k in range(len(self.dims)))
                          for s in range(2 * self.nlev))
                if self.capacity_problem(f, keep) is None:
                    total += self._point_count(f, keep)
            pruned = total / samples * fact * keeps
            exact = False
        return {"raw": float(raw), "factorizations": float(fact), "pruned": float(pruned),
                "exact": exact}

    def _point_count(self, factors, keeps) -> int:
        if self._util_low(factors):
            return 0
        n_axes = len(self.axis_choices(factors))
        if not n_axes:
            return 0
        return n_axes * math.prod(len(self.order_classes(i, self.nonunit(factors, i),
                                                         self.live_dims(factors, i)))
                                  for i in range(self.nlev))


@cache
def _dim_options(size: int, bounds: tuple[tuple[int, int], ...]) -> list[tuple[int, ...]]:
    if not bounds:
        return [()] if size == 1 else []
    lo, hi = bounds[0]
    out = []
    for v in divisors(size):
        if lo <= v <= hi:
            out += [(v,) + rest for rest in _dim_options(size // v, bounds[1:])]
    return out


def _rank_sets(problem: Problem) -> dict[str, dict[str, frozenset[int]]]:
    """Per dataspace, the ranks (tensor axes) each dim moves."""
    out = {}
    for ds in problem.dataspaces:
        ranks: dict[str, set[int]] = {}
        for r, rank in enumerate(ds.projection):
            for d, coef in rank:
                if problem.coefficient(coef) != 0:
                    ranks.setdefault(d, set()).add(r)
        out[ds.name] = {d: frozenset(v) for d, v in ranks.items()}
    return out


def order_signature(rank_sets: dict[str, dict[str, frozenset[int]]],
                    inner_first: Sequence[str], live: frozenset[str] | None = None) -> tuple:
    """What of a level's loop order (innermost first) can reach any access count.

    Timeloop's delta walk (WORKED_EXAMPLE A3; the closed form in :mod:`dse.model.batch`): for a
    tile below, with the loops above it innermost first, step k brings only the non-overlapping
    part iff its translation ``s_k - sum(s_j, a <= j < k)`` equals that of the first loop ``a``;
    every other step a full tile, each weighted by the bounds outside it. Consequences used here:

    * irrelevant loops before the first relevant loop ℓ telescope: only their set counts;
    * an axis moved by one dim only (C, M, N, G; R, S of Weights; P, Q of Outputs) has one loop
      per level, so after ℓ nothing at this level can match: (irrelevant set, ℓ) is all;
    * an axis moved by several dims (Inputs' W by P and R, H by Q and S) can slide on through
      later loops of that axis: keep the run of same-axis/irrelevant loops after ℓ;
    * a slide started below this level continues here only along one axis, and for a one-dim
      axis only if that dim's nearest loop below has bound 2 with no spatial factor between
      (else the step is at least 3× the sum of the steps below): ``live`` lists such dims
      (``None``: assume all); for live and several-dim axes keep the innermost run of loops
      that move only that axis or nothing.

    Orders with equal signatures give equal counts in every context (tested against the model);
    dataspaces with a dim in several axes keep the full order.
    """
    sig = []
    for _name, ranks in rank_sets.items():
        if any(len(r) > 1 for r in ranks.values()):
            sig.append(tuple(inner_first))
            continue
        movers: dict[int, set[str]] = {}
        for d, rs in ranks.items():
            for r in rs:
                movers.setdefault(r, set()).add(d)
        moves = [ranks.get(d, frozenset()) for d in inner_first]
        first = next((k for k, m in enumerate(moves) if m), len(moves))
        head = tuple(sorted(inner_first[:first]))
        chain: tuple[str, ...] = ()
        if first < len(moves):
            run = [inner_first[first]]
            (rank,) = moves[first]
            if len(movers[rank]) > 1:
                for d, m in zip(inner_first[first + 1:], moves[first + 1:], strict=True):
                    if m and m != moves[first]:
                        break
                    run.append(d)
            chain = tuple(run)
        prefixes = []
        for r in sorted(movers):
            if len(movers[r]) == 1 and live is not None and not movers[r] & live:
                prefixes.append(None)
                continue
            run = []
            for d, m in zip(inner_first, moves, strict=True):
                if m and m != frozenset({r}):
                    break
                run.append(d)
            prefixes.append(tuple(run))
        sig.append((head, chain, tuple(prefixes)))
    return tuple(sig)


_SIGNATURES: dict[tuple, tuple] = {}
_CLASSES: dict[tuple, list[tuple[str, ...]]] = {}


def signature(space: MapSpace, order: tuple[str, ...], live: frozenset[str] | None) -> tuple:
    """:func:`order_signature` of level order ``order`` (outermost first) in ``space``, cached
    per process by the space's rank sets (the signature depends on nothing else)."""
    key = (space.rank_key, order, live)
    got = _SIGNATURES.get(key)
    if got is None:
        got = _SIGNATURES[key] = order_signature(space.rank_sets, tuple(reversed(order)), live)
    return got


def _order_classes(space: MapSpace, i: int, dims: tuple[str, ...],
                   live: frozenset[str] | None) -> list[tuple[str, ...]]:
    """Cached per process by what the classes depend on: the rank sets and level i's
    permutation constraint (callers only read the list)."""
    key = (space.rank_key, tuple(space.arch.levels[i].constraints.temporal_permutation), dims,
           live)
    got = _CLASSES.get(key)
    if got is None:
        seen: dict[tuple, tuple[str, ...]] = {}
        for order in space.all_orders(i, dims):
            seen.setdefault(signature(space, order, live), order)
        got = _CLASSES[key] = list(seen.values())
    return got
