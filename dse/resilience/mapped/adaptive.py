"""Adaptive stratified campaign on one mapped layer: strata = site class x bit group.

In fixed-point words nearly every SDC comes from a few high-order bits of a few site classes, so a
uniform draw (Leveugle's sizes) spends most faults where nothing happens and still leaves wide
intervals. Here every (site class, bit group) is a stratum whose weight is its exposed Mbit (the
class's bits x instances x resident words, times the group's share of the word's bits); each gets
a pilot, then faults go where they shrink the interval of the layer's P(SDC | fault) most
(:mod:`dse.resilience.strata`), in rounds, until the half-width is at most ``precision`` of the
estimate or the upper bound is under ``floor``, or ``max_faults`` have run.

Fault j of stratum h is drawn from its own random stream ``(seed, h, j)``: the faults of a campaign
do not depend on how they were split into rounds, so a rerun at a finer precision starts from the
stored counts and only adds faults ``j >= n_h`` (nothing is redone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from dse.arch.spec import Arch
from dse.errors import InputError
from dse.frames import Framed
from dse.model.mapping import Mapping
from dse.problems.problem import Problem
from dse.resilience.mapped.campaign import (
    DEFAULT_FIT_PER_MBIT,
    draw_fault,
    layer_setup,
    operand_bits,
    run_faults,
    site_scales,
)
from dse.resilience.mapped.ecc import screen
from dse.resilience.mapped.exposure import SiteExposure
from dse.resilience.network import NetworkSDC, network_additions, network_sdc
from dse.resilience.stats import z_value
from dse.resilience.strata import (
    Estimate,
    Plan,
    Stratum,
    bit_groups,
    combine,
    run_adaptive,
)


@dataclass
class StratumRecord:
    """One stratum and what was measured in it (the form the store keeps)."""

    site: int  # index into the layer's site classes
    level: str
    dataspace: str
    bits: tuple[int, int]  # bit positions lo..hi-1 of the word
    mbit: float  # exposed Mbit of this (class, bit group)
    sdc: Stratum
    due: Stratum  # INF / NaN outputs: detected, unrecoverable

    def to_dict(self) -> dict:
        return {"site": int(self.site), "level": self.level, "dataspace": self.dataspace,
                "bits": [int(b) for b in self.bits], "mbit": float(self.mbit), "n": self.sdc.n,
                "sdc": [self.sdc.total, self.sdc.total_sq], "sdc_hits": self.sdc.hits,
                "due": [self.due.total, self.due.total_sq], "due_hits": self.due.hits}


def layer_strata(sites: list[SiteExposure]) -> list[StratumRecord]:
    """Every (site class, bit group) with its exposed Mbit; the strata weigh their share of it."""
    out = []
    total = sum(s.bits * s.instances * s.words for s in sites) / 1e6
    for i, s in enumerate(sites):
        mbit = s.bits * s.instances * s.words / 1e6
        for lo, hi in bit_groups(s.bits):
            w = mbit * (hi - lo) / s.bits
            out.append(StratumRecord(i, s.level_name, s.dataspace, (lo, hi), w,
                                     Stratum(w / total), Stratum(w / total)))
    return out


def restore(records: list[StratumRecord], stored: list[dict]) -> None:
    """Put stored counts back into a fresh stratum list (same mapping, same site classes)."""
    if len(stored) != len(records):
        raise InputError("stored strata do not match this mapping's site classes", field="strata")
    for r, d in zip(records, stored, strict=True):
        if (r.site, list(r.bits)) != (d["site"], list(d["bits"])):
            raise InputError("stored strata do not match this mapping's site classes",
                             field="strata")
        r.sdc.n = r.due.n = int(d["n"])
        r.sdc.total, r.sdc.total_sq = (float(x) for x in d["sdc"])
        r.due.total, r.due.total_sq = (float(x) for x in d["due"])
        r.sdc.hits, r.due.hits = int(d["sdc_hits"]), int(d["due_hits"])


@dataclass
class AdaptiveResult(Framed):
    """P(SDC | fault) of one layer's mapping and its FIT, with breakdowns and the raw strata.
    ``to_frame()``: one row per stratum (site class x bit group) with its own interval."""

    sdc: Estimate  # P(SDC-1 | a fault in this layer's on-chip storage or MACs)
    due: Estimate  # P(INF/NaN | fault)
    fit: Estimate  # raw FIT/Mbit x exposed Mbit x P(SDC | fault)
    exposed_mbit: float
    resolved: bool
    precision: float
    floor: float
    strata: list[StratumRecord] = field(default_factory=list)
    fit_per_mbit: float = DEFAULT_FIT_PER_MBIT
    confidence: float = 0.95

    def breakdown(self, key) -> dict[str, Estimate]:
        """P(SDC | fault) per group of strata (``key(record)`` names the group)."""
        groups: dict[str, list[Stratum]] = {}
        for r in self.strata:
            groups.setdefault(key(r), []).append(r.sdc)
        z = z_value(self.confidence)
        return {k: combine(v, z).scaled(1 / sum(s.weight for s in v)) for k, v in groups.items()
                if sum(s.weight for s in v) > 0}

    def frame_rows(self) -> list[dict]:
        z = z_value(self.confidence)
        rows = []
        for r in self.strata:
            e = combine([r.sdc], z).scaled(1 / r.sdc.weight) if r.sdc.weight > 0 else None
            rows.append({"level": r.level, "dataspace": r.dataspace,
                         "bits": f"{r.bits[0]}-{r.bits[1] - 1}", "exposed_Mbit": r.mbit,
                         "faults": r.sdc.n, "sdc_per_fault": e and e.value,
                         "sdc_per_fault_lo": e and e.lo, "sdc_per_fault_hi": e and e.hi,
                         "sdc_FIT": e and e.value * self.fit_per_mbit * r.mbit})
        return rows

    def to_dict(self) -> dict:
        def est(e: Estimate) -> dict:
            return {"value": e.value, "lo": e.lo, "hi": e.hi}

        per_site = self.breakdown(lambda r: f"{r.level}:{r.dataspace}")
        per_bit = self.breakdown(lambda r: f"{r.level}:{r.dataspace} " + (
            f"bit {r.bits[0]}" if r.bits[1] - r.bits[0] == 1 else
            f"bits {r.bits[0]}-{r.bits[1] - 1}"))
        return {
            "sdc1_rate": self.sdc.value, "sdc1_ci": [self.sdc.lo, self.sdc.hi],
            "due_rate": self.due.value, "due_ci": [self.due.lo, self.due.hi],
            "fit": self.fit.value, "fit_ci": [self.fit.lo, self.fit.hi],
            "exposed_mbit": self.exposed_mbit, "n_faults": self.sdc.n,
            "resolved": self.resolved, "precision": self.precision, "floor": self.floor,
            "fit_per_mbit": self.fit_per_mbit, "confidence": self.confidence,
            "per_site": {k: est(v) for k, v in per_site.items()},
            "per_bit": {k: est(v) for k, v in per_bit.items()},
            "strata": [r.to_dict() for r in self.strata],
        }


class LayerCampaign:
    """Draws and runs faults of chosen strata of one mapped layer."""

    def __init__(self, problem: Problem, arch: Arch, mapping: Mapping, model: nn.Module,
                 layer_path: str, images: torch.Tensor, labels: torch.Tensor | None, *,
                 seed: int = 0, fmt: str = "int", include_mac: bool = True,
                 include_backing: bool = False, engine=None, device: str | torch.device = "cpu"):
        self.nest, self.sites, self.engine, self.capture = layer_setup(
            problem, arch, mapping, model, layer_path, images, labels, include_mac=include_mac,
            include_backing=include_backing, fmt=fmt, engine=engine, device=device)
        self.scales = site_scales(self.sites, self.capture.ops, operand_bits(arch, fmt))
        self.layer_path, self.seed, self.fmt, self.arch = layer_path, seed, fmt, arch
        self.strata = layer_strata(self.sites)
        self.protection: list[str] = []  # each run fault's status under the levels' protection

    def measure(self, additions: list[int]) -> list[np.ndarray]:
        """Run ``additions[h]`` new faults in stratum h (fault indices continue from its count);
        return their SDC fractions per stratum, and add SDC and DUE counts to the records."""
        faults, owner = [], []
        for h, add in enumerate(additions):
            rec = self.strata[h]
            site = self.sites[rec.site]
            for j in range(rec.sdc.n, rec.sdc.n + add):
                rng = np.random.default_rng([self.seed, h, j])
                bit = int(rng.integers(*rec.bits))
                faults.append(draw_fault(self.nest, site, rec.site, self.capture.ops,
                                         self.scales[rec.site], rng, self.fmt, bit=bit))
                owner.append(h)
        faults, status = screen(faults, self.sites, self.arch)
        self.protection += status
        sdc, due = run_faults(self.engine, self.layer_path, self.capture, faults, due=True)
        due[np.array([s == "detected" for s in status], dtype=bool)] = True  # parity: a DUE
        owner_a = np.array(owner, dtype=np.int64)
        out = []
        for h, rec in enumerate(self.strata):
            mine = owner_a == h
            rec.due.add(due[mine].mean(axis=1))
            out.append(sdc[mine].mean(axis=1))
        return out


def adaptive_resilience(campaign: LayerCampaign, plan: Plan, *,
                        fit_per_mbit: float = DEFAULT_FIT_PER_MBIT,
                        stored: list[dict] | None = None) -> AdaptiveResult:
    """Run (or continue, from ``stored`` strata counts) a layer's campaign to ``plan``."""
    if stored:
        restore(campaign.strata, stored)
    run_adaptive([r.sdc for r in campaign.strata], campaign.measure, plan,
                 z_value(plan.confidence))
    return layer_result(campaign.strata, plan, fit_per_mbit)


def layer_result(strata: list[StratumRecord], plan: Plan,
                 fit_per_mbit: float = DEFAULT_FIT_PER_MBIT) -> AdaptiveResult:
    """A layer's figures from its strata (weights: their shares of the layer's exposed Mbit)."""
    z = z_value(plan.confidence)
    mbit = sum(r.mbit for r in strata)
    sdc = combine([r.sdc for r in strata], z)
    due = combine([r.due for r in strata], z)
    return AdaptiveResult(sdc, due, sdc.scaled(fit_per_mbit * mbit), mbit,
                          sdc.resolved(plan.precision, plan.floor), plan.precision, plan.floor,
                          strata, fit_per_mbit, plan.confidence)


def extend(campaign: LayerCampaign, additions: list[int]) -> None:
    """Run ``additions[h]`` more faults in stratum h (fault indices continue from its count)."""
    if any(additions):
        for rec, fractions in zip(campaign.strata, campaign.measure(additions), strict=True):
            rec.sdc.add(fractions)


def pilot(campaign: LayerCampaign, plan: Plan) -> list[int]:
    """The pilot of a layer that is part of a network campaign: every stratum to ``plan.pilot``
    faults (run before any network round, whatever ``plan.max_faults`` says)."""
    return [max(0, plan.pilot - r.sdc.n) if r.mbit > 0 else 0 for r in campaign.strata]


def network_resilience(members: Sequence[tuple[float, LayerCampaign]], plan: Plan, *,
                       fit_per_mbit: float = DEFAULT_FIT_PER_MBIT,
                       seconds_per_inference: float = 0.0) -> tuple[NetworkSDC,
                                                                    list[AdaptiveResult]]:
    """One campaign for a whole network on one design point, in this process: ``members`` are
    (cycle share c_l, layer campaign of the layer's mapping). Every layer gets its pilot, then
    network rounds (:func:`dse.resilience.network.network_additions`) until the network
    P(SDC | fault) is resolved or ``plan.max_faults`` have run. The sweep runs the same rounds
    through its executor (one task per layer and round), with the same decisions."""
    for _, campaign in members:
        extend(campaign, pilot(campaign, plan))
    while (add := network_additions(
            [(share, [r.to_dict() for r in c.strata]) for share, c in members], plan)) is not None:
        for (_, campaign), layer_add in zip(members, add, strict=True):
            extend(campaign, layer_add)
    fig = network_sdc([(share, [r.to_dict() for r in c.strata]) for share, c in members],
                      fit_per_mbit=fit_per_mbit, confidence=plan.confidence,
                      seconds_per_inference=seconds_per_inference)
    return fig, [layer_result(c.strata, plan, fit_per_mbit) for _, c in members]
