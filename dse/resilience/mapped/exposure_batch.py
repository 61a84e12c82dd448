"""Exposure of every fault-site class for a whole batch of mappings at once.

The same quantity as ``sites.exposures`` (bits x utilized instances x tile words x steps, per
(level, kept dataspace) and the MAC product register), computed from the mapper's array form of
B mappings with numpy instead of one loop nest per mapping: the resilience-aware search scores
thousands of mappings per layer, and building a nest for each would cost more than the model.

Arrays (see ``dse.model.batch``): ``temporal``, ``spatial_x``, ``spatial_y`` are B x L x D
factors; ``keep`` is B x L x S. For level l, dims extent = product of all factors at levels >= l;
utilized instances = product of the spatial factors at levels < l; steps = product of every
temporal factor.
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


__all__ = ["BatchExposure", "MAC_SITE", "SiteClass", "batch_exposure", "site_classes"]
