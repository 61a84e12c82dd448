"""Estimate vs measurement on the mappings a sweep scored by injection.

The mapper's SDC-FIT estimate (:mod:`dse.resilience.mapped.estimate`) calibrates P(SDC | fault)
per site class once per layer and multiplies it by each mapping's exposed Mbit. A sweep measures
every kept mapping (the min-EDP one in the network campaign, the energy x delay Pareto set and the
top-K by their own layer campaigns), so it can show, per design, where the estimate and the
measurement agree: the estimate of each other kept mapping, calibrated on the layer's min-EDP
campaign, against that mapping's measured FIT and interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from statistics import median
from typing import Any

from dse.resilience.mapped.estimate import Sensitivity

Row = dict[str, Any]


def estimate_rows(rows: Sequence[Row], fit_per_mbit: float) -> list[Row]:
    """Per kept mapping beyond the min-EDP one (rows with stored strata): its estimated and
    measured SDC FIT (failures per 1e9 h while the layer runs) and whether the estimate lies in
    the measured interval. The estimate is the row's ``estimate_fit`` (the sweep's, with the
    live fraction: ``SweepResult.rows_with_strata``), else the exposure-only one."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        if r.get("strata"):
            groups[(r["point"], r["model"], r["layer_path"])].append(r)
    out = []
    for (point, model, layer), members in groups.items():
        calib = next((r for r in members if r["rank"] == 0), None)
        if calib is None:
            continue
        sens = Sensitivity.from_strata(calib["strata"], fit_per_mbit)
        for r in members:
            if r["rank"] == 0:
                continue
            est = r.get("estimate_fit")
            if est is None:  # no sweep at hand (a stored store): the exposure-only estimate
                est = fit_per_mbit * sum(d["mbit"] * sens.rate(d["level"], d["dataspace"])
                                         for d in r["strata"])
            out.append({"point": point, "model": model, "layer": layer, "rank": r["rank"],
                        **_against(r, est, fit_per_mbit)})
    return out


def _against(r: Row, estimate: float, fit_per_mbit: float) -> Row:
    """An estimate beside the row's measured SDC FIT (layer exposure x P(SDC | fault)) and
    interval, and whether it lies inside."""
    mbit = sum(d["mbit"] for d in r["strata"])
    lo, hi = fit_per_mbit * mbit * r["sdc_lo"], fit_per_mbit * mbit * r["sdc_hi"]
    return {"estimate_FIT": estimate, "measured_FIT": fit_per_mbit * mbit * r["sdc_rate"],
            "measured_lo": lo, "measured_hi": hi, "inside": lo <= estimate <= hi}


def front_pairs(fronts: Sequence[Row], fit_per_mbit: float) -> list[Row]:
    """Per front mapping of a resilience-aware sweep that injection scored: the estimate the
    search used (calibrated on the layer's min-EDP campaign) against its measured SDC FIT (one
    equal to the min-EDP mapping is its calibration, so it is left out)."""
    out = []
    for r in fronts:
        if not r.get("strata"):
            continue
        out.append({"point": r["point"], "model": r["model"], "layer": r["layer_path"],
                    "front_rank": r["rank"], "pick": bool(r["pick"]), "edp": r["edp"],
                    **_against(r, r["estimate_fit"], fit_per_mbit), "faults": r["faults"]})
    return out


def agreement(pairs: Sequence[Row]) -> Row | None:
    """Spearman's rank correlation, median relative error and how many estimates lie inside the
    measured interval, over the pairs where either figure is non-zero (None with fewer than
    three). A count, not a rate: a handful of mappings gives no rate worth an interval."""
    from scipy.stats import spearmanr

    live = [p for p in pairs if p["estimate_FIT"] > 0 or p["measured_FIT"] > 0]
    if len(live) < 3:
        return None
    est = [p["estimate_FIT"] for p in live]
    meas = [p["measured_FIT"] for p in live]
    rho = float(spearmanr(est, meas).statistic)
    errors = [abs(e - m) / m for e, m in zip(est, meas, strict=True) if m > 0]
    return {"mappings": len(live), "spearman": rho,
            "median_rel_error": median(errors) if errors else None,
            "estimates_inside_interval": sum(p["inside"] for p in live)}


def agreement_line(rows: Sequence[Row], fit_per_mbit: float) -> str | None:
    """One line for the sweep's output (None when there is nothing to compare)."""
    return agreement_text(estimate_rows(rows, fit_per_mbit),
                          "the other kept mappings (calibrated on each layer's min-EDP campaign)")


def agreement_text(pairs: Sequence[Row], what: str) -> str | None:
    """``SDC-FIT estimate vs injection on <what>: ...`` (None with fewer than three pairs)."""
    found = agreement(pairs)
    if found is None:
        return None
    err = found["median_rel_error"]
    return (f"SDC-FIT estimate vs injection on {what}: {found['mappings']} mappings, Spearman "
            f"{found['spearman']:.2f}, median relative error "
            f"{'n/a' if err is None else f'{err:.0%}'}, {found['estimates_inside_interval']} of "
            f"{found['mappings']} estimates inside the measured 95% interval")
