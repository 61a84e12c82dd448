"""An SDC-FIT estimate a mapper can afford: exposure and liveness computed per mapping, sensitivity
measured once.

A measured campaign gives, for one mapping of a layer, P(SDC | fault) per site class c =
(level, dataspace) or the MAC register. A fault is either masked inside the accelerator because
nothing reads the struck word again (an operand no MAC reads after the strike, a partial sum that
has absorbed nothing yet) or *live*; the live fraction L_c(m) changes from mapping to mapping with
the loop order, and :func:`dse.resilience.mapped.exposure_batch.batch_live` gives it in closed
form. What a live fault does -- P(SDC | live fault in c) -- depends on *what* the word is (a
weight, an input, a partial sum, at that width) much more than on the mapping. So, for any
mapping m of the same layer on the same design,

    SDC FIT(m) ~= raw FIT/Mbit x sum_c Mbit_c(m) x L_c(m) x S_c,   S_c = P_c(cal) / L_c(cal)

with Mbit_c(m) from :func:`dse.resilience.mapped.exposure_batch.batch_exposure` (numpy over a
whole batch of mappings), L_c from ``batch_live`` on the same arrays, and P_c(cal), L_c(cal) from
the calibration mapping. For the calibration mapping itself the estimate equals the campaign's own
FIT figure. A class the calibration mapping did not expose (a dataspace it bypassed at that
level), or exposed only in words that are never live there, takes the calibration's layer-wide
P(SDC | live fault) (exposure-weighted over all its classes). Nothing in the estimate is fitted
to anything but the calibration campaign.

Without the calibration mapping (:meth:`Sensitivity.with_liveness` not called) the estimate
carries P_c(cal) per fault unchanged, as before the liveness term existed.

The figure is the FIT of the chip while it runs this layer (failures per 1e9 device-hours), the
quantity the campaign reports; a network's SDC FIT weights layers by their share of the cycles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from dse.arch.spec import Arch
from dse.errors import InputError
from dse.model.batch import BatchResult, MappingArrays, mappings_to_arrays
from dse.model.mapping import Mapping
from dse.problems.problem import Problem
from dse.resilience.mapped.exposure_batch import batch_exposure, batch_live, site_classes


@dataclass(frozen=True)
class Sensitivity:
    """P(SDC | a fault in class (level name, dataspace)), measured on one mapping of a layer."""

    rates: dict[tuple[str, str], float]
    fit_per_mbit: float
    default: float = 0.0  # P(SDC | fault) over the whole calibration: for unmeasured classes
    mbit: dict[tuple[str, str], float] | None = None  # calibration exposure per class (weights)
    live: dict[tuple[str, str], float] | None = None  # calibration live fraction per class

    @classmethod
    def from_sites(cls, per_site: Iterable, fit_per_mbit: float) -> Sensitivity:
        """From a campaign's per-site results (anything with ``level``, ``dataspace`` and
        ``sdc1_rate``: :class:`dse.resilience.mapped.SiteResult`)."""
        sites = list(per_site)
        return cls({(s.level, s.dataspace): float(s.sdc1_rate) for s in sites}, fit_per_mbit,
                   float(sum(s.exposure_share * s.sdc1_rate for s in sites)),
                   {(s.level, s.dataspace): float(s.exposure_share) for s in sites})

    @classmethod
    def from_strata(cls, strata: Iterable[dict], fit_per_mbit: float) -> Sensitivity:
        """From an adaptive campaign's stored strata (``AdaptiveResult.to_dict()["strata"]``, as
        the sweep store keeps them): per class, the exposure-weighted mean of its bit groups'
        P(SDC | fault). Bit groups share a class's exposure in fixed proportions (their bit
        counts) on every mapping of a design, so a per-bit profile gives the same estimate."""
        num: dict[tuple[str, str], float] = {}
        den: dict[tuple[str, str], float] = {}
        for d in strata:
            key = (d["level"], d["dataspace"])
            mean = d["sdc"][0] / d["n"] if d["n"] else 0.0
            num[key] = num.get(key, 0.0) + d["mbit"] * mean
            den[key] = den.get(key, 0.0) + d["mbit"]
        total = sum(den.values())
        return cls({k: num[k] / den[k] for k in num if den[k] > 0}, fit_per_mbit,
                   sum(num.values()) / total if total > 0 else 0.0, den)

    def with_liveness(self, problem: Problem, arch: Arch, mapping: Mapping, *,
                      include_backing: bool = False, include_mac: bool = True,
                      word_bits: int | None = None) -> Sensitivity:
        """The same figures plus the live fraction of each class on ``mapping``, the one the
        calibration campaign ran on: the estimate then scales each class by its live fraction
        under every other mapping (module docstring)."""
        arrays, scalar = mappings_to_arrays(problem, arch, [mapping])
        if scalar:
            raise InputError("the calibration mapping has two temporal loops over one dim at a "
                             "level; the batched estimate cannot express it", field="mapping")
        classes = site_classes(problem, arch, include_backing=include_backing,
                               include_mac=include_mac, word_bits=word_bits)
        live = batch_live(problem, arch, arrays, classes)[0]
        return replace(self, live={(c.level_name, c.dataspace): float(v)
                                   for c, v in zip(classes, live, strict=True)})

    def per_live(self) -> tuple[dict[tuple[str, str], float], float]:
        """P(SDC | live fault) per class the calibration measured with live words, capped at 1
        (a probability; only a sliding-window class, whose live fraction is approximate, can
        exceed it), and the layer-wide figure (exposure-weighted) for every other class."""
        live, mbit = self.live or {}, self.mbit or {}
        per = {k: min(1.0, p / live[k]) for k, p in self.rates.items() if live.get(k, 0.0) > 0}
        weight = sum(mbit.get(k, 0.0) * live.get(k, 0.0) for k in self.rates)
        default = (sum(mbit.get(k, 0.0) * p for k, p in self.rates.items()) / weight
                   if weight > 0 else self.default)
        return per, min(1.0, default)

    def rate(self, level: str, dataspace: str) -> float:
        """P(SDC | fault) of a class: measured, else the calibration's layer-wide figure."""
        return self.rates.get((level, dataspace), self.default)


def sdc_fit_metric(problem: Problem, arch: Arch, sensitivity: Sensitivity, *,
                   include_backing: bool = False, include_mac: bool = True,
                   word_bits: int | None = None):
    """A batched metric for :func:`dse.mapper.search` (``batch_metric=``): the estimated SDC FIT
    of every mapping of a batch (module docstring)."""
    classes = site_classes(problem, arch, include_backing=include_backing,
                           include_mac=include_mac, word_bits=word_bits)
    if sensitivity.live is None:
        p = np.array([sensitivity.rate(c.level_name, c.dataspace) for c in classes])
    else:
        per, default = sensitivity.per_live()
        p = np.array([per.get((c.level_name, c.dataspace), default) for c in classes])

    def metric(arrays: MappingArrays, result: BatchResult | None = None) -> np.ndarray:
        exposure = batch_exposure(problem, arch, arrays, include_backing=include_backing,
                                  include_mac=include_mac, word_bits=word_bits)
        bits = exposure.bits / 1e6
        if sensitivity.live is not None:
            bits = bits * batch_live(problem, arch, arrays, classes)
        return sensitivity.fit_per_mbit * bits @ p

    return metric


__all__ = ["Sensitivity", "sdc_fit_metric"]
