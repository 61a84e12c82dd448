"""Batched model: many mappings of one layer at once, vectorized with numpy.

The mapper calls the model millions of times, so this path works on an array form of a batch of
mappings (:class:`MappingArrays`) that a search can produce directly, without building
:class:`Mapping` objects. For B mappings, L storage levels (``Arch.levels`` order, outermost
first), D problem dims (``Problem.dimensions`` order) and S dataspaces (``Problem.dataspaces``):

* ``temporal[b, l, d]``  temporal factor of dim d at level l (1 = no loop);
* ``spatial_x[b, l, d]``, ``spatial_y[b, l, d]``  spatial factors on X / Y of level l's fanout;
* ``order[b, l, d]``  rank of dim d among level l's temporal loops, smaller = outer (distinct
  per level; e.g. a permutation of 0..D-1; ranks of unit factors do not matter);
* ``keep[b, l, s]``  whether level l keeps dataspace s.

The numbers are the scalar model's (:mod:`dse.model.evaluate`), bit for bit: same closed forms,
same integer arithmetic, same order of floating-point additions. The per-level delta walk is
rewritten for arrays: with the non-unit temporal loops in innermost-first order, steps ``s_k`` and
exclusive prefix sums ``C_k``, a level whose loops above start at position ``a`` receives
``tile * prod(n_k, k >= a) - overlap(s_a) * sum(w_k : k >= a, s_k - C_k == s_a - C_a)`` with
``w_k = (n_k - 1) * prod(n_i, i > k)``: the steps Timeloop counts as partial are exactly those
whose translation equals that of the innermost loop (see :func:`dse.model.nest.tile_deltas`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from dse.arch.spec import Arch
from dse.errors import InvalidMapping
from dse.model.evaluate import _energies, evaluate, level_cycles, mac_energy_per_compute
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.model.nest import rank_coefficients
from dse.problems.problem import Problem

CHUNK = 2048  # mappings per vectorized pass (keeps temporaries in cache-friendly sizes)


@dataclass
class MappingArrays:
    """A batch of mappings of one layer in array form (see the module docstring)."""

    temporal: np.ndarray
    spatial_x: np.ndarray
    spatial_y: np.ndarray
    order: np.ndarray
    keep: np.ndarray

    def __len__(self) -> int:
        return int(self.temporal.shape[0])

    def take(self, index: np.ndarray | slice) -> MappingArrays:
        return MappingArrays(self.temporal[index], self.spatial_x[index], self.spatial_y[index],
                             self.order[index], self.keep[index])


@dataclass
class BatchResult:
    """Per-mapping results; invalid mappings have ``valid`` False, energy NaN, cycles 0."""

    energy_pJ: np.ndarray
    cycles: np.ndarray
    utilization: np.ndarray
    valid: np.ndarray
    reason: list[str | None] = field(default_factory=list)

    @property
    def edp(self) -> np.ndarray:
        """Energy-delay product in J x cycles (NaN where invalid)."""
        return self.energy_pJ * 1e-12 * self.cycles


def mappings_to_arrays(problem: Problem, arch: Arch, mappings: Sequence[Mapping]
                       ) -> tuple[MappingArrays, list[int]]:
    """Array form of ``mappings`` plus the indices that it cannot express (evaluate those
    with the scalar model): a level with two temporal loops over one dim, or misaligned levels."""
    dims = {d: i for i, d in enumerate(problem.dimensions)}
    dss = {ds.name: i for i, ds in enumerate(problem.dataspaces)}
    names = [lvl.name for lvl in arch.levels]
    b, n_l, n_d, n_s = len(mappings), len(names), len(dims), len(dss)
    # flat-index / value lists, written into the arrays once at the end (item writes are slow)
    t_at, t_val, x_at, x_val, y_at, y_val, o_at, o_val, k_at = ([] for _ in range(9))
    fallback: list[int] = []
    for i, m in enumerate(mappings):
        if [lm.level for lm in m.levels] != names:
            fallback.append(i)
            continue
        marks = (len(t_at), len(x_at), len(y_at), len(o_at), len(k_at))
        ok = True
        for l_idx, lm in enumerate(m.levels):
            base = (i * n_l + l_idx) * n_d
            seen = [lp.dim for lp in lm.temporal if lp.factor > 1]
            if len(set(seen)) != len(seen) or any(d not in dims for d in seen):
                ok = False
                break
            for pos, lp in enumerate(lp for lp in lm.temporal if lp.factor > 1):
                t_at.append(base + dims[lp.dim])
                t_val.append(lp.factor)
                o_at.append(base + dims[lp.dim])
                o_val.append(pos)
            for lp in lm.spatial:
                if lp.dim not in dims or lp.axis not in ("X", "Y"):
                    ok = False
                    break
                (x_at if lp.axis == "X" else y_at).append(base + dims[lp.dim])
                (x_val if lp.axis == "X" else y_val).append(lp.factor)
            k_at.extend((i * n_l + l_idx) * n_s + dss[d] for d in lm.keep if d in dss)
            if not ok:
                break
        if not ok:
            fallback.append(i)
            for lst, mark in zip((t_at, x_at, y_at, o_at, k_at), marks, strict=True):
                del lst[mark:]
            del t_val[marks[0]:], x_val[marks[1]:], y_val[marks[2]:], o_val[marks[3]:]
    temporal = np.ones(b * n_l * n_d, dtype=np.int64)
    temporal[t_at] = t_val
    sx = np.ones_like(temporal)
    np.multiply.at(sx, x_at, np.array(x_val, dtype=np.int64))
    sy = np.ones_like(temporal)
    np.multiply.at(sy, y_at, np.array(y_val, dtype=np.int64))
    order = np.tile(np.arange(n_d, 2 * n_d, dtype=np.int64), b * n_l)
    order[o_at] = o_val
    keep = np.zeros(b * n_l * n_s, dtype=bool)
    keep[k_at] = True
    shape = (b, n_l, n_d)
    return MappingArrays(temporal.reshape(shape), sx.reshape(shape), sy.reshape(shape),
                         order.reshape(shape), keep.reshape(b, n_l, n_s)), fallback


def arrays_to_mapping(problem: Problem, arch: Arch, arrays: MappingArrays, index: int) -> Mapping:
    """Mapping ``index`` of a batch as a :class:`Mapping` (for writing out or re-checking)."""
    levels = []
    for l_idx, lvl in enumerate(arch.levels):
        t = arrays.temporal[index, l_idx]
        pos = arrays.order[index, l_idx]
        temporal = [Loop(problem.dimensions[d], int(t[d]))
                    for d in np.argsort(pos, kind="stable") if t[d] > 1]
        spatial = [Loop(dim, int(arr[index, l_idx, d]), True, axis)
                   for axis, arr in (("Y", arrays.spatial_y), ("X", arrays.spatial_x))
                   for d, dim in enumerate(problem.dimensions) if arr[index, l_idx, d] > 1]
        keep = frozenset(ds.name for s, ds in enumerate(problem.dataspaces)
                         if arrays.keep[index, l_idx, s])
        levels.append(LevelMapping(lvl.name, temporal, spatial, keep))
    return Mapping(levels)


def evaluate_batch(problem: Problem, arch: Arch, mappings: Sequence[Mapping], *,
                   extrapolate: bool = True) -> BatchResult:
    """Evaluate many mappings of one layer; equal to :func:`dse.model.evaluate` on each."""
    arrays, fallback = mappings_to_arrays(problem, arch, mappings)
    result = evaluate_arrays(problem, arch, arrays, extrapolate=extrapolate)
    for i in fallback:
        try:
            st = evaluate(problem, arch, mappings[i], extrapolate=extrapolate)
        except InvalidMapping as exc:
            result.valid[i], result.reason[i] = False, str(exc)
            result.energy_pJ[i], result.cycles[i], result.utilization[i] = np.nan, 0, 0.0
        else:
            result.valid[i], result.reason[i] = True, None
            result.energy_pJ[i], result.cycles[i] = st.energy_pJ, st.cycles
            result.utilization[i] = st.utilization
    return result


def evaluate_arrays(problem: Problem, arch: Arch, arrays: MappingArrays, *,
                    extrapolate: bool = True) -> BatchResult:
    """Evaluate a batch given in array form (the mapper's entry point)."""
    n_l, n_d, n_s = len(arch.levels), len(problem.dimensions), len(problem.dataspaces)
    for name, arr, tail in (("temporal", arrays.temporal, (n_l, n_d)),
                            ("spatial_x", arrays.spatial_x, (n_l, n_d)),
                            ("spatial_y", arrays.spatial_y, (n_l, n_d)),
                            ("order", arrays.order, (n_l, n_d)), ("keep", arrays.keep, (n_l, n_s))):
        if arr.ndim != 3 or arr.shape[1:] != tail or arr.shape[0] != len(arrays):
            raise ValueError(f"MappingArrays.{name} has shape {arr.shape}, expected "
                             f"({len(arrays)}, {tail[0]}, {tail[1]})")
    ctx = _context(problem, arch)
    ctx.extrapolate = extrapolate
    if 0 < len(arrays) <= CHUNK:  # a mapper's batch: one chunk, nothing to split or join
        return _evaluate_chunk(ctx, arrays)
    parts = [_evaluate_chunk(ctx, arrays.take(slice(i, i + CHUNK)))
             for i in range(0, len(arrays), CHUNK)]
    if not parts:
        empty = np.zeros(0)
        return BatchResult(empty, empty.astype(np.int64), empty, empty.astype(bool), [])
    return BatchResult(
        np.concatenate([p.energy_pJ for p in parts]),
        np.concatenate([p.cycles for p in parts]),
        np.concatenate([p.utilization for p in parts]),
        np.concatenate([p.valid for p in parts]),
        [r for p in parts for r in p.reason])


_LAST: list = []  # the last (problem, arch, context): a search sends thousands of batches


def _context(problem: Problem, arch: Arch) -> _Context:
    """The constants of (problem, arch), rebuilt only when either object changes (they are
    read-only here; identity, not equality, so a caller's edited copy gets a fresh one)."""
    if _LAST and _LAST[0] is problem and _LAST[1] is arch:
        return _LAST[2]
    ctx = _Context(problem, arch)
    _LAST[:] = [problem, arch, ctx]
    return ctx


class _Context:
    """Per (problem, arch) constants shared by every chunk."""

    def __init__(self, problem: Problem, arch: Arch):
        self.problem, self.arch = problem, arch
        self.dims = problem.dimensions
        self.instance = np.array([problem.instance[d] for d in self.dims], dtype=np.int64)
        ranks = rank_coefficients(problem)
        self.coef = [np.array([[c.get(d, 0) for d in self.dims] for c in ranks[ds.name]],
                              dtype=np.int64) for ds in problem.dataspaces]
        # multicast groups factor over ranks when no dim feeds two ranks of one dataspace
        # dims of size 1 carry no loops in a valid mapping: the vectorized core skips them
        self.active = np.array([i for i, d in enumerate(self.dims) if problem.instance[d] > 1]
                               or [0], dtype=np.int64)
        self.coef_active = [c[:, self.active] for c in self.coef]
        self.coef_all_t = np.concatenate(self.coef_active, axis=0).T.copy()  # (D, R all)
        bounds = np.cumsum([0] + [len(c) for c in self.coef_active])
        self.rank_slices = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        self.rank_starts = bounds[:-1].astype(np.intp)
        self.separable = all(((c != 0).sum(axis=0) <= 1).all() for c in self.coef_active)
        self.key_radix = [_key_radix(c, self.instance[self.active]) for c in self.coef_active]
        # every dataspace has ranks (segmented sums see no empty segment) and an exact key:
        # the deltas of all dataspaces in one pass
        self.ranks_nonempty = all(len(c) for c in self.coef_active)
        self.fused = self.ranks_nonempty and all(r is not None for r in self.key_radix)
        self.fused_groups = self.ranks_nonempty and self.separable
        self.radix_all = (np.stack(self.key_radix, axis=1) if self.fused  # (D, S)
                          else None)
        self.read_write = [ds.read_write for ds in problem.dataspaces]
        self.rw_mask = np.array(self.read_write, dtype=bool)
        self.block_col = np.array([[lvl.block_size] for lvl in arch.levels], dtype=np.int64)
        self.e_read_col = np.array([[_energies(lvl)[0]] for lvl in arch.levels])
        self.e_write_col = np.array([[_energies(lvl)[1]] for lvl in arch.levels])
        self.bandwidth = [bool(lvl.read_bandwidth or lvl.write_bandwidth
                               or lvl.attributes.get("shared_bandwidth"))
                          for lvl in arch.levels]
        self.names = [lvl.name for lvl in arch.levels]
        self.fanout = [arch.fanout_xy(i) for i in range(len(arch.levels))]
        self.fan_levels = np.array([i for i, (fx, fy) in enumerate(self.fanout) if fx * fy > 1],
                                   dtype=np.int64)
        self.fan_x = np.array([fx for fx, _ in self.fanout], dtype=np.int64)
        self.fan_y = np.array([fy for _, fy in self.fanout], dtype=np.int64)
        self.level_ids = np.arange(len(arch.levels))[None, :, None]
        self.usable = [None if lvl.capacity_words is None
                       else math.floor(lvl.capacity_words / lvl.multiple_buffering)
                       for lvl in arch.levels]
        self.cap_levels = np.array([lv for lv, u in enumerate(self.usable) if u is not None],
                                   dtype=np.int64)
        self.cap_words = np.array([u for u in self.usable if u is not None], dtype=np.int64)
        self.block = [lvl.block_size for lvl in arch.levels]
        self.energy = [_energies(lvl) for lvl in arch.levels]
        self.mac_energy = problem.macs * mac_energy_per_compute(arch)
        self.extrapolate = True


def _key_radix(coef: np.ndarray, sizes: np.ndarray) -> np.ndarray | None:
    """Per-dim weights turning a rank-space translation into one exact int64 key.

    A translation's rank r component is bounded by ``span_r = sum_d |coef[r, d]| * 2 * size_d``
    (strides of nested loops over one dim at least double, and rewinds sum to under the size),
    so balanced digits of radix ``2 * span_r + 1`` make ``sum_r v_r * R_r`` injective. None when
    the key could overflow (then translations are compared rank by rank).
    """
    span = (np.abs(coef) * 2 * sizes[None, :]).sum(axis=1) + 1
    radix = 2 * span + 1
    if float(np.prod(radix.astype(float))) >= 2.0**62:
        return None
    weights = np.ones(len(radix), dtype=np.int64)
    for r in range(len(radix) - 2, -1, -1):
        weights[r] = weights[r + 1] * radix[r + 1]
    return (coef * weights[:, None]).sum(axis=0)


@lru_cache(maxsize=65536)
def _distinct(terms: tuple[int, ...]) -> int:
    """Distinct values of sum(k_i * v_i), 0 <= k_i < n_i, for terms (v_1, n_1, v_2, n_2, ...)."""
    values = {0}
    for v, n in zip(terms[::2], terms[1::2], strict=True):
        values = {x + k * v for x in values for k in range(n)}
    return len(values)


def _groups(ctx: _Context, coef: np.ndarray, fan: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """Multicast groups of dataspace s at every level: (B, L) distinct offsets over the fanout.

    ``fan[b, l, d]`` is level l's spatial factor of dim d, ``stride[b, l, d]`` the extent of d
    below it. When no dim feeds two ranks, the offsets factor over ranks; a rank with one
    spatial dim has that factor's number of offsets, one with several (a diagonal such as
    P and R in one fanout) is counted on the distinct (stride, factor) combinations only.
    """
    out = np.ones(fan.shape[:2], dtype=np.int64)
    if len(ctx.fan_levels):
        out[:, ctx.fan_levels] = _fanout_groups(ctx, coef, fan[:, ctx.fan_levels],
                                                stride[:, ctx.fan_levels])
    return out


def _groups_fused(ctx: _Context, fan: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """:func:`_groups` of every dataspace at once (B, L, S), for separable problems whose
    dataspaces all have ranks: the per-rank offset counts of all ranks side by side, then one
    segmented product per dataspace (integer products: the same numbers)."""
    out = np.ones(fan.shape[:2] + (len(ctx.rank_slices),), dtype=np.int64)
    if len(ctx.fan_levels):
        out[:, ctx.fan_levels] = np.multiply.reduceat(
            _rank_offsets(ctx.coef_all_t.T, fan[:, ctx.fan_levels], stride[:, ctx.fan_levels]),
            ctx.rank_starts, axis=2)
    return out


def _rank_offsets(coef: np.ndarray, fan: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """Distinct offsets per rank (B, L, R) over a separable fanout (see :func:`_groups`)."""
    rel = (fan > 1)[:, :, None, :] & (coef != 0)[None, None]  # (B, L, R, D)
    per_rank = np.where(rel, fan[:, :, None, :], 1).prod(axis=3)
    multi = np.argwhere(rel.sum(axis=3) > 1)
    if len(multi):
        vals = (coef[multi[:, 2]] * stride[multi[:, 0], multi[:, 1]])
        vals = np.where(rel[multi[:, 0], multi[:, 1], multi[:, 2]], vals, 0)
        facs = np.where(vals != 0, fan[multi[:, 0], multi[:, 1]], 1)
        keys = np.concatenate([vals, facs], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        n_d = vals.shape[1]
        counts = np.array([_distinct(tuple(int(x) for pair in zip(u[:n_d], u[n_d:], strict=True)
                                           for x in pair if pair[0]))
                           for u in uniq], dtype=np.int64)
        per_rank[multi[:, 0], multi[:, 1], multi[:, 2]] = counts[inverse.ravel()]
    return per_rank


def _fanout_groups(ctx: _Context, coef: np.ndarray, fan: np.ndarray, stride: np.ndarray
                   ) -> np.ndarray:
    varying = fan > 1
    if ctx.separable:
        return _rank_offsets(coef, fan, stride).prod(axis=2)
    out = np.ones(fan.shape[:2], dtype=np.int64)
    for b, lv in np.argwhere(varying.any(axis=2)):
        offsets = {tuple(0 for _ in range(coef.shape[0]))}
        for d in np.nonzero(varying[b, lv])[0]:
            vec = coef[:, d] * stride[b, lv, d]
            offsets = {tuple(o + k * v for o, v in zip(off, vec, strict=True))
                       for off in offsets for k in range(int(fan[b, lv, d]))}
        out[b, lv] = len(offsets)
    return out


def _project(sizes: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Rank extents (B, L, R) of boxes whose dims range over ``sizes`` (B, L, D) values."""
    out = np.ones(sizes.shape[:2] + (coef.shape[0],), dtype=np.int64)
    for r, d in zip(*np.nonzero(coef), strict=True):
        out[:, :, r] += coef[r, d] * (sizes[:, :, d] - 1)
    return out


def _per_dataspace(ctx: _Context, op: np.ufunc, values: np.ndarray) -> np.ndarray:
    """``op`` over each dataspace's ranks of ``values`` (B, L, R all) -> (B, L, S); a
    dataspace without ranks gets the identity (``reduceat`` would not give it)."""
    if ctx.ranks_nonempty:
        return op.reduceat(values, ctx.rank_starts, axis=2)
    return np.stack([op.reduce(values[:, :, lo:hi], axis=2) for lo, hi in ctx.rank_slices],
                    axis=2)


def _deltas_one(ctx: _Context, s: int, geometry: tuple, tile: np.ndarray, ext: np.ndarray
                ) -> np.ndarray:
    """Dataspace s's per-level deltas (B, L): the delta walk's closed form (module docstring)."""
    start, seg, n_above, start_dim, start_stride, stride, loop_dim, n, weight, count, _ = geometry
    rows = np.arange(len(start))[:, None]
    coef = ctx.coef_active[s]
    first = coef.T[start_dim] * start_stride[:, :, None]  # (B, L, R)
    radix = ctx.key_radix[s]
    if radix is not None:
        # translations as exact mixed-radix integers (injective under the span bound)
        step = radix[loop_dim] * stride
        rewind = step if ctx.extrapolate else step * (n - 1)
        key = step - (np.cumsum(rewind, axis=1) - rewind)
        same = key[:, None, :] == key[rows, start][:, :, None]
    else:
        step = coef.T[loop_dim] * stride[:, :, None]  # (B, K+1, R)
        rewind = step if ctx.extrapolate else step * (n - 1)[:, :, None]
        z = step - (np.cumsum(rewind, axis=1) - rewind)
        same = (z[:, None, :, :] == z[rows, start][:, :, None, :]).all(axis=3)
    w = np.einsum("blk,bk->bl", (same & seg).astype(np.int64), weight)
    moved = first != 0
    n_moved = moved.sum(axis=2)
    shift = np.abs(first).sum(axis=2)
    e_sel = np.where(moved, ext, 0).sum(axis=2)
    single = np.where(shift < e_sel, tile // np.maximum(e_sel, 1) * (e_sel - shift), 0)
    overlap = np.where(n_moved == 0, tile, np.where(n_moved == 1, single, 0))
    return np.where(start >= count[:, None], tile, tile * n_above - overlap * w)


def _deltas_fused(ctx: _Context, geometry: tuple, tile: np.ndarray, ext: np.ndarray
                  ) -> np.ndarray:
    """:func:`_deltas_one` of every dataspace at once (B, L, S): the same integer operations
    with the dataspaces (and their ranks, side by side) as a last axis; used when every
    dataspace has ranks and an exact translation key."""
    start, seg, n_above, start_dim, start_stride, stride, loop_dim, n, weight, count, _ = geometry
    first = ctx.coef_all_t[start_dim] * start_stride[:, :, None]  # (B, L, R all)
    step = ctx.radix_all[loop_dim] * stride[:, :, None]  # (B, K+1, S)
    rewind = step if ctx.extrapolate else step * (n - 1)[:, :, None]
    key = step - (np.cumsum(rewind, axis=1) - rewind)
    same = key[:, None, :, :] == key[np.arange(len(start))[:, None], start][:, :, None, :]
    w = np.einsum("blks,bk->bls", (same & seg[:, :, :, None]).astype(np.int64), weight)
    moved = first != 0
    starts = ctx.rank_starts
    n_moved = np.add.reduceat(moved.astype(np.int64), starts, axis=2)
    shift = np.add.reduceat(np.abs(first), starts, axis=2)
    e_sel = np.add.reduceat(np.where(moved, ext, 0), starts, axis=2)  # (fused: no empty rank)
    single = np.where(shift < e_sel, tile // np.maximum(e_sel, 1) * (e_sel - shift), 0)
    overlap = np.where(n_moved == 0, tile, np.where(n_moved == 1, single, 0))
    return np.where((start >= count[:, None])[:, :, None], tile,
                    tile * n_above[:, :, None] - overlap * w)


def _evaluate_chunk(ctx: _Context, a: MappingArrays) -> BatchResult:
    """One chunk. A mapper sends thousands of batches of ~15 mappings, so the cost is the number
    of numpy calls, not their size: running products are ``multiply.accumulate`` (integer
    products, so the numbers of a level-by-level loop) and gathers are plain fancy indexing."""
    n_b, n_l, n_d = a.temporal.shape
    sxy = a.spatial_x * a.spatial_y
    fac = a.temporal * sxy
    below = np.ones((n_b, n_l + 1, n_d), dtype=np.int64)  # extent of each dim at/below a level
    below[:, n_l - 1::-1] = np.multiply.accumulate(fac[:, ::-1], axis=1, dtype=np.int64)
    sbelow = below[:, 1:] * sxy

    # --- from here on only dims of size > 1 (unit dims are all-1 in a valid mapping)
    span = int(a.order.max()) + 1 if a.order.size else 1  # sort-key width per level
    act = ctx.active
    temporal, order = a.temporal[:, :, act], a.order[:, :, act]
    sxy, act_below, sbelow = sxy[:, :, act], below[:, :, act], sbelow[:, :, act]
    n_d = len(act)

    # --- tiles, partitions: the ranks of all dataspaces side by side (integer arithmetic,
    # so one matrix product and one segmented product give the per-dataspace loops' values)
    ext_all = 1 + (act_below[:, :n_l] - 1) @ ctx.coef_all_t  # (B, L, R over all dataspaces)
    tile_all = _per_dataspace(ctx, np.multiply, ext_all)  # (B, L, S)
    sp_tile_all = _per_dataspace(ctx, np.multiply, 1 + (sbelow - 1) @ ctx.coef_all_t)
    part_all = np.empty_like(tile_all)
    part_all[:, 0] = tile_all[:, 0]
    for lv in range(1, n_l):
        part_all[:, lv] = part_all[:, lv - 1] * tile_all[:, lv] // sp_tile_all[:, lv - 1]
    used_all = np.where(a.keep, tile_all, 0).sum(axis=2)  # (B, L) kept words
    invalid, reason = _validity(ctx, a, fac, below, used_all)

    # --- the rest only for valid mappings
    valid = ~invalid
    n_all = n_b
    if not valid.any():
        return BatchResult(np.full(n_all, np.nan), np.zeros(n_all, dtype=np.int64),
                           np.zeros(n_all), valid, reason)
    all_valid = bool(valid.all())
    if all_valid:
        keep = a.keep
    else:
        temporal, order, sxy, act_below, sbelow = (
            x[valid] for x in (temporal, order, sxy, act_below, sbelow))
        keep = a.keep[valid]
        tile_all, part_all, ext_all = (x[valid] for x in (tile_all, part_all, ext_all))
        n_b = int(valid.sum())
    geometry = _loops(ctx, temporal, order, sbelow, span)
    compute_cycles = geometry[-1]

    # --- per-level deltas (fills before elision) and multicast groups
    if ctx.fused:
        delta_all = _deltas_fused(ctx, geometry, tile_all, ext_all)
    else:
        delta_all = np.stack([_deltas_one(ctx, s, geometry, tile_all[:, :, s],
                                          ext_all[:, :, lo:hi])
                              for s, (lo, hi) in enumerate(ctx.rank_slices)], axis=2)
    if ctx.fused_groups:
        group_all = _groups_fused(ctx, sxy, act_below[:, 1:])
    else:
        group_all = np.stack([_groups(ctx, c, sxy, act_below[:, 1:]) for c in ctx.coef_active],
                             axis=2)

    # --- counts, energy, cycles: every dataspace at once per level (n_b, S arrays); the same
    # integer counts, the same float products, and the energy summed in the same order
    inst = np.ones((n_b, n_l), dtype=np.int64)  # instances of each level (fanouts above it)
    inst[:, 1:] = np.multiply.accumulate(sxy[:, :-1].prod(axis=2), axis=1)
    n_s = len(ctx.coef)
    traffic = np.empty_like(delta_all)
    child = np.repeat(compute_cycles[:, None], n_s, axis=1)
    grp = np.ones((n_b, n_s), dtype=np.int64)
    for lv in range(n_l - 1, -1, -1):  # what each level's child asks for, innermost first
        grp = grp * group_all[:, lv]
        kept = keep[:, lv]
        traffic[:, lv] = child * grp
        child = np.where(kept, delta_all[:, lv], child)
        grp = np.where(kept, 1, grp)
    rw = ctx.rw_mask
    reads = np.where(rw, traffic - part_all, traffic)
    updates = np.where(rw, traffic, 0)
    fills = np.where(rw, delta_all - part_all, delta_all)
    fills[:, 0] = 0  # the outermost level is never filled

    # energy: the same products per (level, dataspace), summed level by level, dataspace by
    # dataspace (add.accumulate is sequential, so the float sum is the scalar model's)
    e = ((-(-reads // ctx.block_col) * ctx.e_read_col + -(-fills // ctx.block_col)
          * ctx.e_write_col) + -(-updates // ctx.block_col) * ctx.e_write_col) * inst[:, :, None]
    e = np.where(keep, e, 0.0).reshape(n_b, -1)  # total + 0.0 == total: a skipped term
    total = np.add.accumulate(e, axis=1)[:, -1]
    cycles = compute_cycles.copy()
    plain = int(compute_cycles.max()) < 2**53  # cycles exact in doubles (level_cycles' math)
    kept_reads = np.where(keep, reads, 0)
    kept_writes = np.where(keep, updates + fills, 0)
    for lv in range(n_l):
        if plain and not ctx.bandwidth[lv]:
            continue  # no bandwidth limit: the level takes exactly the compute cycles
        cycles = np.maximum(cycles, level_cycles(ctx.arch.levels[lv], compute_cycles,
                                                 [kept_reads[:, lv, s] for s in range(n_s)],
                                                 [kept_writes[:, lv, s] for s in range(n_s)]))
    util = ctx.problem.macs / (cycles * ctx.arch.compute.instances)
    if all_valid:
        return BatchResult(ctx.mac_energy + total, cycles, util, valid, reason)
    energy = np.full(n_all, np.nan)
    energy[valid] = ctx.mac_energy + total
    all_cycles = np.zeros(n_all, dtype=np.int64)
    all_cycles[valid] = cycles
    all_util = np.zeros(n_all)
    all_util[valid] = util
    return BatchResult(energy, all_cycles, all_util, valid, reason)


def _loops(ctx: _Context, temporal: np.ndarray, order: np.ndarray, sbelow: np.ndarray,
           span: int) -> tuple:
    """The temporal loops of every mapping innermost first, non-unit ones compacted to the
    front and one unit loop padded (so "no loop above" gathers stay in bounds), and what the
    delta walk needs of them; the last item is the compute cycles (product of all bounds)."""
    n_b, n_l, n_d = temporal.shape
    key = ((n_l - 1 - np.arange(n_l))[None, :, None] * span + (span - 1 - order)
           ).reshape(n_b, -1)
    nonunit = (temporal > 1).reshape(n_b, -1)
    key = np.where(nonunit, key, key + n_l * span)
    idx = np.argsort(key, axis=1, kind="stable")
    n_k = int(nonunit.sum(axis=1).max()) if n_b else 0
    idx = idx[:, :n_k]
    rows = np.arange(n_b)[:, None]
    bound = temporal.reshape(n_b, -1)[rows, idx]
    real = bound > 1
    n = np.ones((n_b, n_k + 1), dtype=np.int64)
    np.copyto(n[:, :n_k], bound, where=real)
    stride = np.zeros((n_b, n_k + 1), dtype=np.int64)
    np.copyto(stride[:, :n_k], sbelow.reshape(n_b, -1)[rows, idx], where=real)
    loop_dim = np.zeros((n_b, n_k + 1), dtype=np.int64)
    loop_dim[:, :n_k] = idx % n_d
    suffix = np.ones((n_b, n_k + 2), dtype=np.int64)  # product of the bounds from k outward
    suffix[:, n_k::-1] = np.multiply.accumulate(n[:, ::-1], axis=1)
    weight = (n - 1) * suffix[:, 1:]
    count = real.sum(axis=1)
    # (B, L): first loop above each level (the loops at levels >= it come first)
    start = (real[:, None, :] & ((idx // n_d)[:, None, :] >= ctx.level_ids)).sum(axis=2)
    seg = np.arange(n_k + 1)[None, None, :] >= start[:, :, None]  # (B, L, K+1)
    return (start, seg, suffix[rows, start], loop_dim[rows, start], stride[rows, start],
            stride, loop_dim, n, weight, count, suffix[:, 0])


def _validity(ctx: _Context, a: MappingArrays, fac: np.ndarray, below: np.ndarray,
              used_all: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """The scalar model's checks in its order; each invalid mapping's reason is its first
    failing check. Every check is first made for the whole batch at once: a mapper's batches
    are pre-checked, so the per-check messages are built only when something fails."""
    n_b, n_l = used_all.shape
    reason: list[str | None] = [None] * n_b
    invalid = np.zeros(n_b, dtype=bool)
    bad_dim = below[:, 0] != ctx.instance
    used_x, used_y = a.spatial_x.prod(axis=2), a.spatial_y.prod(axis=2)  # (B, L)
    over_x, over_y = used_x > ctx.fan_x, used_y > ctx.fan_y
    over_cap = used_all[:, ctx.cap_levels] > ctx.cap_words
    if not (bad_dim.any() or over_x.any() or over_y.any() or not a.keep[:, 0].all()
            or over_cap.any()):
        return invalid, reason

    def flag(mask: np.ndarray, message) -> None:
        if not mask.any():
            return
        for b in np.nonzero(mask & ~invalid)[0]:
            reason[b] = message(b)
        invalid[:] |= mask

    if bad_dim.any():
        first_dim = np.argmax(bad_dim, axis=1)

        def dim_message(b: int) -> str:
            d = first_dim[b]
            holders = [ctx.names[lv] for lv in range(n_l) if fac[b, lv, d] > 1]
            where = holders[0] if holders else ctx.names[0]
            return (f"{where}: factors of {ctx.dims[d]} multiply to {below[b, 0, d]}, but "
                    f"{ctx.dims[d]} = {ctx.instance[d]} (loops over {ctx.dims[d]} at: "
                    f"{', '.join(holders) or 'none'})")
        flag(bad_dim.any(axis=1), dim_message)
    for lv in range(n_l):
        for axis, used, over, limit in (("X", used_x, over_x, ctx.fanout[lv][0]),
                                        ("Y", used_y, over_y, ctx.fanout[lv][1])):
            flag(over[:, lv], lambda b, lv=lv, axis=axis, used=used, limit=limit: (
                f"{ctx.names[lv]}: spatial {axis} factors use {used[b, lv]} but the fanout is "
                f"{limit}"))
    for s, ds in enumerate(ctx.problem.dataspaces):
        flag(~a.keep[:, 0, s], lambda b, ds=ds: (
            f"{ctx.names[0]}: the outermost level must keep {ds.name}"))
    for j, lv in enumerate(ctx.cap_levels.tolist()):
        flag(over_cap[:, j], lambda b, lv=lv: (
            f"{ctx.names[lv]}: kept tiles need {used_all[b, lv]} words but capacity is "
            f"{ctx.usable[lv]}"))
    return invalid, reason
