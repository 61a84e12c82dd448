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
    scored = [r for r in layer_rows if r["sdc_rate"] is not None]
    if not scored:
        return _min_edp(layer_rows)
    return min(scored, key=lambda r: (r["sdc_rate"], r["edp"], r["rank"]))


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
    return NetworkPoint(first["point"], first["model"], policy, energy, cycles, macs,
                        weighted("sdc_rate"), weighted("sdc_lo"), weighted("sdc_hi"),
                        len(chosen), len(scored))


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
