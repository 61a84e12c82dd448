"""Exposure of every fault-site class for a whole batch of mappings at once.

The same quantity as ``sites.exposures`` (bits x utilized instances x tile words x steps, per
(level, kept dataspace) and the MAC product register), computed from the mapper's array form of
B mappings with numpy instead of one loop nest per mapping: the resilience-aware search scores
thousands of mappings per layer, and building a nest for each would cost more than the model.

Arrays (see ``dse.model.batch``): ``temporal``, ``spatial_x``, ``spatial_y`` are B x L x D
factors; ``keep`` is B x L x S. For level l, dims extent = product of all factors at levels >= l;
utilized instances = product of the spatial factors at levels < l; steps = product of every
temporal factor.

:func:`batch_live` adds, per class, the fraction of its faults that are *live* -- still read after
the strike -- in closed form from the loop order (derivation in its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.arch.spec import Arch
from dse.model.batch import MappingArrays
from dse.problems.problem import Problem
from dse.resilience.mapped.sites import MAC_SITE


@dataclass(frozen=True)
class SiteClass:
    """One column of the exposure matrix: a (level, dataspace) pair or the MAC register."""

    level: int
    level_name: str
    dataspace: str
    bits: int


@dataclass
class BatchExposure:
    """``exposure[b, c]``: bit-steps of class ``classes[c]`` under mapping b (0 where the mapping
    does not keep that dataspace there); ``steps[b]`` the temporal steps of mapping b."""

    classes: list[SiteClass]
    exposure: np.ndarray
    steps: np.ndarray

    @property
    def bits(self) -> np.ndarray:
        """Exposed bits (exposure / steps): what a raw FIT/bit multiplies while the layer runs."""
        return self.exposure / self.steps[:, None]


def site_classes(problem: Problem, arch: Arch, *, include_backing: bool = False,
                 include_mac: bool = True, word_bits: int | None = None) -> list[SiteClass]:
    """Every class a mapping may expose, in ``sites.exposures`` order (level, then dataspace)."""
    out = []
    for i, lvl in enumerate(arch.levels):
        if (i == 0 and not include_backing) or lvl.dummy:
            continue
        bits = word_bits or lvl.word_bits
        out += [SiteClass(i, lvl.name, ds, bits) for ds in sorted(d.name for d in problem.dataspaces)]
    if include_mac:
        out.append(SiteClass(len(arch.levels), arch.compute.name, MAC_SITE,
                             word_bits or 2 * arch.compute.word_bits))
    return out


def batch_exposure(problem: Problem, arch: Arch, arrays: MappingArrays, *,
                   include_backing: bool = False, include_mac: bool = True,
                   word_bits: int | None = None) -> BatchExposure:
    """Exposure matrix of ``arrays`` (module docstring); equals ``sites.exposures`` per mapping."""
    classes = site_classes(problem, arch, include_backing=include_backing,
                           include_mac=include_mac, word_bits=word_bits)
    spatial = arrays.spatial_x * arrays.spatial_y  # B x L x D
    total = arrays.temporal * spatial
    # extent at and below level l: reverse cumulative product over levels
    extent = np.flip(np.cumprod(np.flip(total, axis=1), axis=1), axis=1)  # B x L x D
    sp_level = spatial.prod(axis=2)  # B x L
    instances = np.cumprod(np.concatenate([np.ones_like(sp_level[:, :1]), sp_level[:, :-1]],
                                          axis=1), axis=1)  # product of spatial factors above l
    steps = arrays.temporal.prod(axis=(1, 2)).astype(float)
    pes = sp_level.prod(axis=1).astype(float)
    dims = {d: i for i, d in enumerate(problem.dimensions)}
    dss = {ds.name: i for i, ds in enumerate(problem.dataspaces)}
    out = np.zeros((len(arrays), len(classes)))
    for c, sc in enumerate(classes):
        if sc.dataspace == MAC_SITE:
            out[:, c] = sc.bits * pes * steps
            continue
        words = np.ones(len(arrays))
        for rank in problem.dataspace(sc.dataspace).projection:
            words *= 1 + sum(problem.coefficient(coef) * (extent[:, sc.level, dims[d]] - 1)
                             for d, coef in rank)
        kept = arrays.keep[:, sc.level, dss[sc.dataspace]]
        out[:, c] = np.where(kept, float(sc.bits) * instances[:, sc.level] * words * steps, 0.0)
    return BatchExposure(classes, out, steps)


def batch_live(problem: Problem, arch: Arch, arrays: MappingArrays,
               classes: list[SiteClass]) -> np.ndarray:
    """``live[b, c]``: the fraction of faults of class c under mapping b that the fault injector
    (``sites.storage_readers`` / ``sites.accumulated``) finds live, when a fault strikes a uniform
    step, utilized instance and word of the resident tile, as ``campaign.draw_fault`` draws it.

    *Live* is the injector's own test. An operand word (Weights, Inputs) struck at level l at step
    t is live when some MAC reads it at a step s >= t before the tile leaves l, through a copy one
    level down (the *child*: the next level that keeps the dataspace) fetched after t. A partial
    sum is live when its copy has already absorbed a product (one the child has flushed up): a
    copy that has absorbed nothing holds 0, and a flipped bit of 0 is masked. The MAC register is
    always live (one product).

    Closed form. Write the temporal loops outermost first as digits of the step number. Within
    one residency of the tile at l, the digits that move are those inside the innermost loop above
    l over a dim the dataspace depends on (*relevant*): above l only irrelevant loops (the tile
    stays), at and below l all loops. The struck word fixes the digits of the relevant loops
    below l (a uniform value each, since the word is uniform in the tile); the other digits are
    free. With no child, an operand is live iff t <= the last read, i.e. the greatest step with
    those digits fixed: comparing digits outermost first, a digit of bound n decides "earlier"
    with probability (n-1)/n (free: the read takes n-1) or (n-1)/(2n) (fixed: two uniform digits)
    and ties with 1/n, so ``q = p_less + q_inner / n`` from the innermost digit out, starting from
    1 (t = the read itself still reads the word). With a child, a read through a copy fetched
    after t needs the child's tile to have changed in between, i.e. a digit at or outside the
    innermost relevant loop between l and the child to have advanced: the same recursion over the
    digits up to that loop, starting from 0 (no such loop: the child fetched the word with l's
    tile, and l's copy is never read again). A partial sum is the mirror image (some product at a
    step < t, i.e. t > the first one), the recursion starting from 0 in both cases.

    Exact when every rank of the dataspace is one dim (weights, outputs; inputs of a 1x1 conv or
    a fully-connected layer; tests check it against the injector's draws). A sliding-window rank
    (a conv's input row = P + R) lets a word stay resident across steps of an outer P or R loop
    and be read by several (P, R) pairs; the form counts the pair's digits as fixed, as if the
    word were one (P, R) point, and so undercounts: 0.50 against the injector's 0.80 for the
    global buffer's inputs of ``digits_cnn`` features.0 on simple_output_stationary. The
    estimate divides by the calibration mapping's own figure, so a bias shared by the mappings
    of a layer cancels.
    """
    n_b, n_l, n_d = arrays.temporal.shape
    n_p = n_l * n_d
    # digit positions, outermost first: level, then the level's loop order
    key = np.arange(n_l)[None, :, None] * (4 * n_d) + arrays.order
    pos = np.argsort(key.reshape(n_b, n_p), axis=1, kind="stable")
    bound = np.take_along_axis(arrays.temporal.reshape(n_b, n_p), pos, axis=1).astype(float)
    level_of, dim_of = pos // n_d, pos % n_d
    index = np.arange(n_p)
    live = np.ones((n_b, len(classes)))
    dss = {ds.name: i for i, ds in enumerate(problem.dataspaces)}
    out_name = problem.output.name
    for c, sc in enumerate(classes):
        if sc.dataspace == MAC_SITE:
            continue
        relevant = np.array([any(d == dim for rank in problem.dataspace(sc.dataspace).projection
                                 for dim, _ in rank) for d in problem.dimensions])
        rel = relevant[dim_of] & (bound > 1)  # B x P
        kept = arrays.keep[:, :, dss[sc.dataspace]] & (np.arange(n_l) > sc.level)
        has_child = kept.any(axis=1)
        child = np.where(has_child, kept.argmax(axis=1), n_l)
        above = level_of < sc.level
        first = np.where(rel & above, index, -1).max(axis=1)  # innermost relevant loop above l
        between = rel & ~above & (level_of < child[:, None])
        last = np.where(has_child, np.where(between, index, -1).max(axis=1), n_p - 1)
        fixed = relevant[dim_of] & ~above
        q = np.where(~has_child & (sc.dataspace != out_name), 1.0, 0.0)
        for p in range(n_p - 1, -1, -1):
            n = bound[:, p]
            step = (n - 1) / n * np.where(fixed[:, p], 0.5, 1.0) + q / n
            q = np.where((p > first) & (p <= last), step, q)
        live[:, c] = q
    return live


__all__ = ["BatchExposure", "MAC_SITE", "SiteClass", "batch_exposure", "batch_live",
           "site_classes"]
