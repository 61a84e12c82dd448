"""The scalar model: (problem, arch, mapping) -> :class:`Stats`, as ``timeloop-model`` reports it.

Counts per level × dataspace (per instance, Timeloop's ``tiling.cpp`` rules):

* read-only data at a kept level K whose next kept level inward is J (or the MACs):
  ``reads = traffic(J) * groups``, ``fills = deltas(K)`` (0 at the outermost level), where
  ``traffic(J)`` is J's per-instance deltas (or the MACs' operand count) and ``groups`` the product
  of multicast groups over the fanouts between K and J (bypassed levels forward their children);
* outputs: ``updates = traffic(J) * groups`` (spatial reduction), with first-read elision
  ``reads = updates - partition`` and ``fills = deltas - partition`` (0 at the outermost level).

Energy: ``ceil(count / block)`` vector accesses per action, per instance, times the ERT energy
(reads at ``read``; fills *and* updates at ``write``: Timeloop never uses ``update``), times the
utilized instances; plus MACs × ``compute``. Cycles: compute cycles (product of temporal factors)
slowed by the tightest per-instance read / write / shared bandwidth at any level.

Left out (as in the reference runs): sparsity and compression, leakage energy, network / wire
hop energy and link transfers between neighbours, Timeloop's own address-generation and
temporal-reduction energies (0 in v3.0.3 with the ERT folding them into read/write),
imperfect factorization, and ``min_utilization`` constraints (constraints only validate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from dse.arch.spec import Arch, StorageLevel
from dse.model.mapping import Mapping
from dse.model.nest import NestAnalysis, analyze
from dse.model.stats import LevelStats, Stats
from dse.problems.problem import Problem

Counts = dict[tuple[str, str], tuple[int, int, int]]  # (level, ds) -> (reads, updates, fills)


def access_counts(problem: Problem, nest: NestAnalysis) -> Counts:
    """Per-instance scalar (reads, updates, fills) of every kept level × dataspace."""
    out: Counts = {}
    index = {name: i for i, name in enumerate(nest.levels)}
    for ds in problem.dataspaces:
        keepers = nest.keepers(ds.name)
        for pos, level in enumerate(keepers):
            child = keepers[pos + 1] if pos + 1 < len(keepers) else None
            stop = index[child] if child else len(nest.levels)
            groups = math.prod(nest.multicast_groups[(nest.levels[s], ds.name)]
                               for s in range(index[level], stop))
            traffic = (nest.deltas[(child, ds.name)] if child else nest.compute_cycles) * groups
            own = 0 if pos == 0 else nest.deltas[(level, ds.name)]
            if ds.read_write:
                part = nest.partitions[(level, ds.name)]
                out[(level, ds.name)] = (traffic - part, traffic, own - part if pos else 0)
            else:
                out[(level, ds.name)] = (traffic, 0, own)
    return out


def _energies(lvl: StorageLevel) -> tuple[float, float]:
    e = lvl.energy
    read = float(e.get("read", 0.0))
    write = float(e.get("write", e.get("update", 0.0)))
    return read, write


def level_energy(lvl: StorageLevel, reads: int, updates: int, fills: int) -> float:
    """Per-instance energy: vector accesses (ceil per action) × ERT read / write energy."""
    block = lvl.block_size
    e_read, e_write = _energies(lvl)
    return (-(-reads // block) * e_read + -(-fills // block) * e_write
            + -(-updates // block) * e_write)


def level_cycles(lvl: StorageLevel, compute_cycles: ArrayLike, reads: Sequence[ArrayLike],
                 writes: Sequence[ArrayLike]) -> np.ndarray:
    """A level's cycles: compute cycles, or longer if its per-instance traffic exceeds bandwidth.

    ``reads`` / ``writes`` hold one entry (int or int array) per dataspace in problem order. The
    arithmetic is Timeloop's own, in IEEE doubles and in its order (buffer.cpp ComputePerformance):
    demand = sum over dataspaces of words / compute cycles, slowdown = min(1, bandwidth / demand)
    for each bandwidth below its demand, cycles = ceil(compute cycles / slowdown). Exact fractions
    would differ by one cycle whenever the double quotient rounds up past an integer (e.g.
    ceil(12800 / (16 / (514560 / 12800))) = 32161, not 514560 / 16 = 32160). Scalar and batched
    models both call this, so they agree bit for bit. ``shared_bandwidth`` (read + write) is a dse
    extension checked the same way.
    """
    cc = np.asarray(compute_cycles, dtype=np.float64)
    read_demand = sum((np.asarray(r, dtype=np.float64) / cc for r in reads), 0.0)
    write_demand = sum((np.asarray(w, dtype=np.float64) / cc for w in writes), 0.0)
    shared = lvl.attributes.get("shared_bandwidth")
    slowdown = np.ones_like(cc)
    with np.errstate(divide="ignore", invalid="ignore"):
        for bandwidth, demand in ((lvl.read_bandwidth, read_demand),
                                  (lvl.write_bandwidth, write_demand),
                                  (float(shared) if shared else None, read_demand + write_demand)):
            if bandwidth:
                slowdown = np.where(bandwidth < demand, np.minimum(slowdown, bandwidth / demand),
                                    slowdown)
    return np.ceil(cc / slowdown).astype(np.int64)


def mac_energy_per_compute(arch: Arch) -> float:
    e = arch.compute.energy
    for key in ("compute", "mac_random", "multiply_add", "mac"):
        if key in e:
            return float(e[key])
    return 0.0


def evaluate(problem: Problem, arch: Arch, mapping: Mapping, *, extrapolate: bool = True
             ) -> Stats:
    """Timeloop-model's numbers for one mapping; raises InvalidMapping naming the level.

    ``extrapolate=False`` counts deltas with the exact loop walk, i.e. what Timeloop reports with
    ``TIMELOOP_DISABLE_TEMPORAL_EXTRAPOLATION=1`` (the default, True, is Timeloop's default).
    """
    nest = analyze(problem, arch, mapping, extrapolate=extrapolate)
    counts = access_counts(problem, nest)
    levels: list[LevelStats] = []
    cycles = nest.compute_cycles
    for lvl in arch.levels:
        rows = [(ds.name, counts[(lvl.name, ds.name)]) for ds in problem.dataspaces
                if (lvl.name, ds.name) in counts]
        inst = nest.instances[lvl.name]
        for ds_name, (r, u, f) in rows:
            levels.append(LevelStats(lvl.name, ds_name, inst, r * inst, u * inst, f * inst,
                                     level_energy(lvl, r, u, f) * inst))
        if rows:
            cycles = max(cycles, int(level_cycles(lvl, nest.compute_cycles,
                                                  [c[0] for _, c in rows],
                                                  [c[1] + c[2] for _, c in rows])))
    macs = problem.macs
    mac_energy = macs * mac_energy_per_compute(arch)
    return Stats(
        energy_pJ=mac_energy + sum(ls.energy_pJ for ls in levels),
        cycles=cycles,
        utilization=macs / (cycles * arch.compute.instances),
        macs=macs,
        mac_energy_pJ=mac_energy,
        levels=levels,
        mac_instances=nest.mac_instances,
    )
