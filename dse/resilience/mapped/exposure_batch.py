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
    n_b, n_l, _ = arrays.temporal.shape
    bound, level_of, dim_of = _loops(arrays)
    live = np.ones((n_b, len(classes)))
    rows = np.arange(n_b)
    # prefix arrays over the loops, shifted by one (column k+1 covers loops 0..k):
    # tie[k] = P(two uniform step numbers tie on every digit before loop k)
    tie = np.concatenate([np.ones((n_b, 1)), np.cumprod(1 / bound, axis=1)], axis=1)
    gain = (bound - 1) / bound * tie[:, :-1]  # P(first difference at loop k, "earlier")
    # loops of the levels above l (they come first, in level order), for l = 0..L
    loops_above = np.stack([((level_of < lvl) & (bound > 1)).sum(axis=1)
                            for lvl in range(n_l + 1)], axis=1)
    dss = {ds.name: i for i, ds in enumerate(problem.dataspaces)}
    per_ds = {}
    for ds in problem.dataspaces:
        depends = np.array([any(d == dim for rank in ds.projection for dim, _ in rank)
                            for d in problem.dimensions])
        rel = depends[dim_of] & (bound > 1)
        last_rel = np.maximum.accumulate(np.where(rel, np.arange(rel.shape[1]), -1), axis=1)
        per_ds[ds.name] = (
            np.concatenate([np.full((n_b, 1), -1), last_rel], axis=1),
            np.concatenate([np.zeros((n_b, 1)), np.cumsum(gain, axis=1)], axis=1),
            np.concatenate([np.zeros((n_b, 1)), np.cumsum(gain * rel, axis=1)], axis=1))
    width = bound.shape[1]
    for c, sc in enumerate(classes):
        if sc.dataspace == MAC_SITE:
            continue
        last_rel, total, fixed = per_ds[sc.dataspace]
        kept = arrays.keep[:, :, dss[sc.dataspace]] & (np.arange(n_l) > sc.level)
        has_child = kept.any(axis=1)
        child = np.where(has_child, kept.argmax(axis=1), n_l)
        above = loops_above[:, sc.level]
        first = last_rel[rows, above]  # innermost relevant loop above l (-1: none)
        inner = last_rel[rows, loops_above[rows, child]]
        last = np.where(has_child, np.where(inner >= above, inner, first), width - 1)
        f, e = first + 1, last + 1
        sums = (total[rows, e] - total[rows, f]
                - 0.5 * (fixed[rows, e] - fixed[rows, f]))
        start = float(sc.dataspace != problem.output.name) * ~has_child
        # clipped: the differences of prefix sums round a certain read to 1 + 1e-14
        live[:, c] = np.clip((sums + start * tie[rows, e]) / tie[rows, f], 0.0, 1.0)
    return live


def _loops(arrays: MappingArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bound, level, dim) of every mapping's temporal loops, outermost first (level, then the
    level's loop order), B x K with K the most loops of any mapping; unit loops (bound 1, no
    digit) fill the tail of shorter rows."""
    n_b, n_l, n_d = arrays.temporal.shape
    flat = arrays.temporal.reshape(n_b, n_l * n_d)
    key = (np.arange(n_l)[None, :, None] * (4 * n_d) + arrays.order).reshape(n_b, n_l * n_d)
    key = np.where(flat > 1, key, key + n_l * 4 * n_d)
    width = int((flat > 1).sum(axis=1).max()) if n_b else 0
    pos = np.argsort(key, axis=1, kind="stable")[:, :width]
    return (np.take_along_axis(flat, pos, axis=1).astype(float), pos // n_d, pos % n_d)


__all__ = ["BatchExposure", "MAC_SITE", "SiteClass", "batch_exposure", "batch_live",
           "site_classes"]
