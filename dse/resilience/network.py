"""The SDC rate of a chip running a whole network back to back, with its interval.

A raw upset strikes the chip's on-chip storage and MACs at ``fit_per_mbit`` FIT per exposed Mbit.
While layer l runs (a share ``c_l`` of the inference's cycles: its cycles x repeat count over the
network's), the exposed storage is that layer's mapping's site classes s, each holding ``M_ls``
Mbit and failing silently with probability ``P_ls`` per fault. So

    SDC FIT = fit_per_mbit x sum_l c_l x sum_s M_ls x P_ls

and SDC per inference = SDC FIT x (cycles / clock) / 1e9 h. The per-fault figure
``P(SDC | fault) = sum_l c_l sum_s M_ls P_ls / sum_l c_l sum_s M_ls`` is what ``floor`` is compared
with. Every (layer, site class, bit group) stratum keeps its counts, so the interval of the whole is
:func:`dse.resilience.strata.combine` over all of them with weights ``c_l x M_lsg``: one interval
for the sum, not a sum of intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dse.frames import Framed
from dse.resilience.stats import z_value
from dse.resilience.strata import Estimate, Plan, Stratum, combine, next_additions

HOURS_PER_FIT = 1e9  # FIT = failures per 1e9 device-hours


@dataclass(frozen=True)
class NetworkSDC(Framed):
    """Whole-network figures of one design point (mapping per layer chosen by the caller).
    ``to_frame()``: one row."""

    per_fault: Estimate  # P(SDC-1 | a raw fault in exposed on-chip storage or MACs)
    due_per_fault: Estimate  # P(INF/NaN | fault)
    fit: Estimate  # SDC FIT of the chip running the network back to back
    due_fit: Estimate
    per_inference: Estimate  # SDC-1 probability per inference at ``clock_hz``
    exposed_mbit: float  # cycle-weighted exposed Mbit
    faults: int

    def resolved(self, precision: float, floor: float) -> bool:
        return self.per_fault.resolved(precision, floor)

    def frame_rows(self) -> list[dict]:
        e, f = self.per_fault, self.fit
        return [{"sdc_per_fault": e.value, "sdc_per_fault_lo": e.lo, "sdc_per_fault_hi": e.hi,
                 "sdc_FIT": f.value, "sdc_FIT_lo": f.lo, "sdc_FIT_hi": f.hi,
                 "sdc_per_inference": self.per_inference.value,
                 "sdc_per_inference_hi": self.per_inference.hi,
                 "due_per_fault": self.due_per_fault.value, "due_FIT": self.due_fit.value,
                 "exposed_Mbit": self.exposed_mbit, "faults": self.faults}]


def stratum_of(d: dict, weight: float, kind: str = "sdc") -> Stratum:
    """A stored stratum (:meth:`dse.resilience.mapped.adaptive.StratumRecord.to_dict`), weighted."""
    total, total_sq = d[kind]
    return Stratum(weight, int(d["n"]), float(total), float(total_sq), int(d.get(f"{kind}_hits",
                                                                              d["n"])))


def network_sdc(layers: Sequence[tuple[float, Sequence[dict]]], *, fit_per_mbit: float,
                confidence: float, seconds_per_inference: float) -> NetworkSDC:
    """``layers``: (cycle share c_l, stored strata of the layer's mapping) for every scored
    layer."""
    z = z_value(confidence)
    parts = {kind: [stratum_of(d, share * d["mbit"], kind) for share, strata in layers
                    for d in strata] for kind in ("sdc", "due")}
    mbit = sum(s.weight for s in parts["sdc"])
    if mbit <= 0:
        empty = Estimate(0.0, 0.0, 0.0, 0)
        return NetworkSDC(empty, empty, empty, empty, empty, 0.0, 0)
    weighted = combine(parts["sdc"], z)  # Mbit x probability
    due = combine(parts["due"], z)
    fit = weighted.scaled(fit_per_mbit)
    per_inference = fit.scaled(seconds_per_inference / 3600 / HOURS_PER_FIT)
    return NetworkSDC(weighted.scaled(1 / mbit), due.scaled(1 / mbit), fit,
                      due.scaled(fit_per_mbit), per_inference, mbit, weighted.n)


def network_additions(layers: Sequence[tuple[float, Sequence[dict]]],
                      plan: Plan) -> list[list[int]] | None:
    """Faults to add next to every stratum of every layer (same shape as ``layers``' strata), or
    None when the network figure is resolved or ``plan.max_faults`` faults have run.

    One allocation for the whole network: the strata of all layers compete for the round's faults
    by their weight in the network figure (``c_l x Mbit``), so a light layer whose strata never
    fail is bounded with few faults while the layers that carry the failures get the rest (a
    per-layer stopping rule spends as much on the lightest layer as on the heaviest). A pure
    function of the stored counts, so rounds decided by the sweep's driver, or in one process by
    :func:`dse.resilience.mapped.adaptive.network_resilience`, are the same."""
    flat = [(share * d["mbit"], d) for share, ss in layers for d in ss]
    total = sum(w for w, _ in flat) or 1.0  # shares of the exposed Mbit: the rule is on P(SDC|fault)
    strata = [stratum_of(d, w / total) for w, d in flat]
    add = next_additions(strata, plan, z_value(plan.confidence))
    if add is None:
        return None
    out, at = [], 0
    for _, ss in layers:
        out.append(add[at : at + len(ss)])
        at += len(ss)
    return out


def network_breakdown(layers: Sequence[tuple[str, float, Sequence[dict]]], key, *,
                      fit_per_mbit: float, confidence: float) -> dict[str, Estimate]:
    """Each group's share of the network SDC FIT, with its interval: ``layers`` are (name, cycle
    share c_l, stored strata); ``key(name, stratum)`` names a stratum's group (the layer, the site
    class ``level:dataspace``, the bit group, ...). The groups' estimates add up to the network
    figure; their intervals are each group's own (not a split of the network interval)."""
    z = z_value(confidence)
    groups: dict[str, list[Stratum]] = {}
    for name, share, strata in layers:
        for d in strata:
            groups.setdefault(key(name, d), []).append(stratum_of(d, share * d["mbit"]))
    return {k: combine(v, z).scaled(fit_per_mbit) for k, v in groups.items()}
