"""Numbers behind the plots: network totals per mapping policy, Pareto fronts, energy breakdowns.

Pure functions over the store's ``results`` rows (dicts), so they are unit-testable on small
hand-made rows and the plots only draw what these return.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass
class NetworkPoint:
    """One way of running a whole network on one design point."""

    point: str
    model: str
    policy: str  # "min-EDP" (the mapper's best per layer) or "min-SDC" (most resilient kept)
    energy_pJ: float
    cycles: float
    macs: float
    sdc_rate: float | None
    sdc_lo: float | None
    sdc_hi: float | None
    layers: int
    layers_scored: int
    # the chip's network SDC FIT and its interval (adaptive campaigns; docs/resilience.md)
    fit: float | None = None
    fit_lo: float | None = None
    fit_hi: float | None = None

    @property
    def sdc_axis(self) -> tuple[str, float | None, float | None, float | None]:
        """(name with unit, value, lo, hi) of the resilience figure to compare points on: the
        network SDC FIT when the strata give one, else the cycle-weighted SDC rate."""
        if self.fit is not None:
            return "network SDC FIT (failures / 1e9 h)", self.fit, self.fit_lo, self.fit_hi
        return ("SDC rate (cycle-weighted over layers)", self.sdc_rate, self.sdc_lo,
                self.sdc_hi)

    @property
    def edp(self) -> float:
        return self.energy_pJ * 1e-12 * self.cycles

    @property
    def label(self) -> str:
        return f"{self.point} · {self.model} · {self.policy}"


def group(rows: Iterable[Row], *keys: str) -> dict[tuple[Any, ...], list[Row]]:
    out: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        out[tuple(row[k] for k in keys)].append(row)
    return dict(out)


def _pick_per_layer(rows: Sequence[Row], choose: Callable[[list[Row]], Row]) -> list[Row]:
    return [choose(layer_rows) for _, layer_rows in sorted(group(rows, "layer_index").items())]


def _min_edp(layer_rows: list[Row]) -> Row:
    return min(layer_rows, key=lambda r: r["rank"])


def _min_sdc(layer_rows: list[Row]) -> Row:
    """The kept mapping with the lowest SDC upper bound, if it is statistically better than the
    min-EDP one (its upper bound below that one's lower bound); else the min-EDP mapping, whose
    SDC rate is not distinguishable from it. So a min-SDC choice is never statistically worse."""
    base = _min_edp(layer_rows)
    scored = [r for r in layer_rows if r["sdc_rate"] is not None]
    if not scored or base["sdc_rate"] is None:
        return base
    best = min(scored, key=lambda r: (r["sdc_hi"], r["sdc_rate"], r["edp"], r["rank"]))
    return best if best["sdc_hi"] < base["sdc_lo"] else base


def network_point(rows: Sequence[Row], policy: str) -> NetworkPoint:
    """Whole-network totals when each layer uses the mapping ``policy`` picks.

    Layer values are multiplied by the layer's repeat count; the SDC rate is weighted by cycles (a
    fault at a uniformly random time hits the layer running then), over the scored layers only.
    """
    chosen = _pick_per_layer(rows, _min_edp if policy == "min-EDP" else _min_sdc)
    energy = sum(r["energy_pJ"] * r["count"] for r in chosen)
    cycles = sum(r["cycles"] * r["count"] for r in chosen)
    macs = sum(r["macs"] * r["count"] for r in chosen)
    scored = [r for r in chosen if r["sdc_rate"] is not None]
    weight = sum(r["cycles"] * r["count"] for r in scored)

    def weighted(col: str) -> float | None:
        return sum(r[col] * r["cycles"] * r["count"] for r in scored) / weight if weight else None

    first = rows[0]
    point = NetworkPoint(first["point"], first["model"], policy, energy, cycles, macs,
                         weighted("sdc_rate"), weighted("sdc_lo"), weighted("sdc_hi"),
                         len(chosen), len(scored))
    if scored and all(r.get("strata") for r in scored):
        _physical(point, scored, cycles)
    return point


def _physical(point: NetworkPoint, scored: Sequence[Row], cycles: float) -> None:
    """The chip's network SDC figures from the chosen layers' strata (one interval for the
    whole sum, :func:`dse.resilience.network.network_sdc`)."""
    from dse.resilience.network import network_sdc

    fig = network_sdc([(r["cycles"] * r["count"] / cycles, r["strata"]) for r in scored],
                      fit_per_mbit=scored[0]["fit_per_mbit"], confidence=scored[0]["confidence"],
                      seconds_per_inference=cycles / 1e9)
    e = fig.per_fault
    point.sdc_rate, point.sdc_lo, point.sdc_hi = e.value, e.lo, e.hi
    point.fit, point.fit_lo, point.fit_hi = fig.fit.value, fig.fit.lo, fig.fit.hi


def network_points(rows: Sequence[Row]) -> list[NetworkPoint]:
    """Per design point x model: the min-EDP network, and (when scored) the min-SDC one."""
    out: list[NetworkPoint] = []
    for _, sub in sorted(group(rows, "point", "model").items()):
        best = network_point(sub, "min-EDP")
        out.append(best)
        if best.sdc_rate is not None:
            alt = network_point(sub, "min-SDC")
            if (alt.energy_pJ, alt.cycles, alt.sdc_rate) != (best.energy_pJ, best.cycles,
                                                             best.sdc_rate):
                out.append(alt)
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (both minimised)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best_y = float("inf")
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def pareto_uncertain(points: Sequence[tuple[float, float, float]]) -> list[int]:
    """Indices of the points no other point dominates under uncertainty, each point being
    (EDP, SDC lower bound, SDC upper bound): j dominates i only if j is no worse in EDP and j's
    SDC upper bound is below i's lower bound (resolved apart, not just a lower estimate)."""
    return [i for i, (edp, lo, _) in enumerate(points)
            if not any(j != i and points[j][0] <= edp and points[j][2] < lo
                       for j in range(len(points)))]


def overlapping(points: Sequence[tuple[float, float, float]], members: Sequence[int]
                ) -> list[list[int]]:
    """Groups of ``members`` whose SDC intervals chain-overlap: statistically indistinguishable
    on the SDC axis (a point alone in its group is resolved apart from the others)."""
    order = sorted(members, key=lambda i: points[i][1])
    groups: list[list[int]] = []
    top = -float("inf")
    for i in order:
        if groups and points[i][1] <= top:
            groups[-1].append(i)
            top = max(top, points[i][2])
        else:
            groups.append([i])
            top = points[i][2]
    return groups


def resolution_line(pts: Sequence[NetworkPoint]) -> str:
    """One line saying which design points' network SDC figures are resolved apart (95%
    intervals disjoint) and which are not."""
    scored = [p for p in pts if p.policy == "min-EDP" and p.sdc_axis[1] is not None]
    if len(scored) < 2:
        return ""
    xs = [(p.edp, p.sdc_axis[2], p.sdc_axis[3]) for p in scored]
    groups = overlapping(xs, range(len(scored)))
    name = scored[0].sdc_axis[0].split(" (")[0]
    text = " < ".join(" ~ ".join(f"{scored[i].point}" for i in g) for g in groups)
    together = [g for g in groups if len(g) > 1]
    verdict = ("all resolved apart" if not together else
               "'~' = intervals overlap, not resolved apart")
    return f"{name}, 95% intervals: {text} ({verdict})"


def energy_breakdown(rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """fJ per MAC of each component, per design point, for the min-EDP mapping of each layer.

    Components with zero energy everywhere (timeloopfe's dummy spatial levels) are dropped.
    """
    out: dict[str, dict[str, float]] = {}
    for (point,), sub in sorted(group(rows, "point").items()):
        totals: dict[str, float] = defaultdict(float)
        macs = 0.0
        for (_model,), model_rows in sorted(group(sub, "model").items()):
            for r in _pick_per_layer(model_rows, _min_edp):
                comps = r["components"]
                comps = json.loads(comps) if isinstance(comps, str) else comps
                for name, pj in comps.items():
                    totals[name] += pj * r["count"]
                macs += r["macs"] * r["count"]
        out[point] = {k: v * 1000.0 / macs for k, v in totals.items() if v > 0 and macs}
    return out


def layer_table(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Per design point: the min-EDP row of every layer (all models), in layer order."""
    out: dict[str, list[Row]] = {}
    for (point,), sub in sorted(group(rows, "point").items()):
        chosen: list[Row] = []
        for (_model,), model_rows in sorted(group(sub, "model").items()):
            chosen.extend(_pick_per_layer(model_rows, _min_edp))
        out[point] = chosen
    return out
