"""An SDC-FIT estimate a mapper can afford: exposure computed per mapping, sensitivity measured once.

A measured campaign gives, for one mapping of a layer, P(SDC | fault) per site class c =
(level, dataspace) or the MAC register. Those probabilities depend mostly on *what* a word is (a
weight, an input, a partial sum, at that level's word width) and much less on the mapping, while
the exposed bits of each class change by orders of magnitude from mapping to mapping (tile sizes,
utilized instances). So, for any mapping m of the same layer on the same design,

    SDC FIT(m) ~= raw FIT/Mbit x sum_c Mbit_c(m) x P_c

with Mbit_c(m) from :func:`dse.resilience.mapped.exposure_batch.batch_exposure` (numpy over a
whole batch of mappings) and P_c from the calibration. For the calibration mapping itself the
estimate equals the campaign's own FIT figure. A class the calibration mapping did not expose (a
dataspace it bypassed at that level, e.g. weights parked in the global buffer by another mapping)
takes the calibration's layer-wide P(SDC | fault) (exposure-weighted over all its classes): on
the 120 measured mappings of ``bench/estimate.py`` that fallback ranks mappings far better than
borrowing another level's P for the same dataspace (a register class measured on few bits says
little about a large buffer; docs/resilience.md).

The figure is the FIT of the chip while it runs this layer (failures per 1e9 device-hours), the
quantity the campaign reports; a network's SDC FIT weights layers by their share of the cycles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dse.arch.spec import Arch
from dse.model.batch import BatchResult, MappingArrays
from dse.problems.problem import Problem
from dse.resilience.mapped.exposure_batch import batch_exposure, site_classes


@dataclass(frozen=True)
class Sensitivity:
    """P(SDC | a fault in class (level name, dataspace)), measured on one mapping of a layer."""

    rates: dict[tuple[str, str], float]
    fit_per_mbit: float
    default: float = 0.0  # P(SDC | fault) over the whole calibration: for unmeasured classes

    @classmethod
    def from_sites(cls, per_site: Iterable, fit_per_mbit: float) -> Sensitivity:
        """From a campaign's per-site results (anything with ``level``, ``dataspace`` and
        ``sdc1_rate``: :class:`dse.resilience.mapped.SiteResult`)."""
        sites = list(per_site)
        return cls({(s.level, s.dataspace): float(s.sdc1_rate) for s in sites}, fit_per_mbit,
                   float(sum(s.exposure_share * s.sdc1_rate for s in sites)))

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
                   sum(num.values()) / total if total > 0 else 0.0)

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
    p = np.array([sensitivity.rate(c.level_name, c.dataspace) for c in classes])

    def metric(arrays: MappingArrays, result: BatchResult | None = None) -> np.ndarray:
        exposure = batch_exposure(problem, arch, arrays, include_backing=include_backing,
                                  include_mac=include_mac, word_bits=word_bits)
        return sensitivity.fit_per_mbit * (exposure.bits / 1e6) @ p

    return metric


__all__ = ["Sensitivity", "sdc_fit_metric"]
