"""Adaptive spiking campaigns: add faults until the network's SDC-1 rate is known to a precision.

The population is split into strata (each ``layer.target``, or each ``layer.target`` and bit),
weighted by their share of the population (elements x bits), so the figure is the SDC-1 rate of a
fault drawn uniformly from the whole population, as the pooled list estimates it. Faults are added
in Neyman rounds (:func:`dse.resilience.strata.run_adaptive`) until the interval's half-width is at
most ``precision`` x the rate (or its upper end is below ``floor``), with the fault as the unit.

Each stratum draws its faults in a fixed seeded order, so a killed campaign rerun with the same
flags draws the same faults in the same rounds and finds the finished ones in ``results.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dse.resilience.snn import campaign, faultlist
from dse.resilience.snn.faultlist import Sites
from dse.resilience.snn.network import SnnFault
from dse.resilience.stats import z_value
from dse.resilience.strata import Estimate, Plan, Stratum, run_adaptive


def run(engine, sites: Sites, labels, out: Path, plan: Plan, *, kind: str, fmt: str, mode: str,
        transient: bool, steps: int, step: int | None, seed: int, workers: int = 1,
        progress: bool = False, model_spec: tuple[str, dict] | None = None
        ) -> tuple[list[SnnFault], np.ndarray, Estimate]:
    """(faults run, their counts, the SDC-1 estimate of the whole population)."""
    from dse.resilience.formats import word_bits

    bits = word_bits(fmt)
    random_step = steps if transient and step is None else None
    parts = faultlist.strata(sites, bits, "site" if mode == "pooled" else mode, random_step)
    pops = [faultlist.population(sites, m, b, random_step) for m, b in parts]
    strata = [Stratum(p / sum(pops)) for p in pops]
    faults: list[SnnFault] = []
    counts: list[np.ndarray] = []
    drawn = [0] * len(parts)
    orders: list[list[SnnFault] | None] = [None] * len(parts)

    def order(h: int) -> list[SnnFault]:
        if orders[h] is None:
            rng = np.random.default_rng([seed, h])
            members, bit_pool = parts[h]
            n = min(pops[h], plan.max_faults)
            picked = faultlist.draw(sites, members, bit_pool, n, rng, kind=kind, fmt=fmt,
                                    transient=transient, steps=steps, step=step)
            orders[h] = [picked[i] for i in rng.permutation(len(picked))]
        return orders[h]

    def measure(additions: list[int]) -> list[list[float]]:
        new = []
        for h, a in enumerate(additions):
            new += [(h, f) for f in order(h)[drawn[h]:drawn[h] + a]]
            drawn[h] += a
        start = len(faults)
        faults.extend(f for _, f in new)
        faultlist.save(faults, out / "faultlist.csv")
        got = campaign.run(engine, faults, labels, out, workers=workers, progress=progress,
                           ahead=True, model_spec=model_spec)
        counts[:] = list(got)
        images = engine.x.shape[1]
        out_fractions: list[list[float]] = [[] for _ in parts]
        for (h, _), c in zip(new, got[start:], strict=True):
            out_fractions[h].append(c[1] / images)
        return out_fractions

    estimate = run_adaptive(strata, measure, plan, z_value(plan.confidence))
    return faults, np.stack(counts) if counts else np.zeros((0, 7), dtype=np.int64), estimate
