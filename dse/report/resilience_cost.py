"""The cost of resilience, per design: by remapping (software) or by protecting a buffer (hardware).

Two ways to lower a design's network SDC FIT, both priced in network EDP:

* **Remapping** (same hardware): per layer, among the mappings the sweep kept and measured, the
  one with the lowest measured layer SDC FIT whose layer EDP is within ``(1 + s)`` of the layer's
  best kept EDP; ``s`` runs over :data:`SLACKS`, so the curve goes from the min-EDP network
  (``s = 0``) to the most resilient kept mappings (``s = inf``). Each point's network figure
  comes from the chosen mappings' strata (:func:`dse.resilience.network.network_sdc`: cycle
  shares as weights, one interval for the whole).
* **Protection** (hardware): every protected variant of the design (``--protect LEVEL=SCHEME``
  or ``--protect auto``) at its own min-EDP mappings, with its area.

Network EDP = total energy (J) x total cycles (J x cycles); SDC FIT = silent failures per 1e9
device-hours of the chip running the network back to back at the sweep's raw FIT/Mbit. Pure
functions over the sweep's rows (``SweepResult.rows_with_strata()``) and network rows, plus one
figure; the sweep CLI prints :func:`cheapest_table`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dse.figures import save_figure  # noqa: E402
from dse.resilience.network import network_sdc  # noqa: E402

Row = dict[str, Any]
#: EDP slack per layer of the remapping curve (0: min-EDP mappings; inf: most resilient kept).
SLACKS = (0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0, math.inf)


@dataclass(frozen=True)
class CostPoint:
    """One way to run the network on one design: its EDP, SDC FIT with interval, and area."""

    design: str  # the design point it starts from (unprotected)
    how: str  # "remap", "pick" (the SDC-FIT estimate's choice, measured after) or "protect"
    label: str  # e.g. "min-EDP", "remap <= +10% EDP/layer", "protect shared_glb=secded"
    edp: float  # J x cycles
    fit: float
    fit_lo: float
    fit_hi: float
    area_mm2: float | None = None


def _protected(point: str) -> bool:
    return "protect=" in point


def remap_curve(rows: Sequence[Row], point: str, model: str, settings: Any) -> list[CostPoint]:
    """The remapping curve of one design point and model (module docstring), min-EDP point
    first; points whose per-layer choices repeat an earlier slack's, or that another point
    beats in both EDP and SDC FIT, are left out. Empty without strata."""
    layers: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        if r["point"] == point and r["model"] == model:
            layers[r["layer_index"]].append(r)
    if not layers or not all(any(r.get("strata") for r in rs) for rs in layers.values()):
        return []
    area = next(iter(layers.values()))[0].get("area_mm2")
    out, seen = [], set()
    for slack in SLACKS:
        chosen = [_choose(rs, slack) for _, rs in sorted(layers.items())]
        key = tuple(r["row_key"] for r in chosen)
        if key in seen:
            continue
        seen.add(key)
        edp, fig = _network(chosen, settings)
        label = ("min-EDP" if slack == 0 else "remap, most resilient kept" if math.isinf(slack)
                 else f"remap <= +{slack:.0%} EDP/layer")
        out.append(CostPoint(point, "remap", label, edp, fig.fit.value, fig.fit.lo, fig.fit.hi,
                             area))
    # a larger slack can still cost EDP for nothing (a layer's cycle share grows with its
    # cycles): the curve keeps the points no other point beats in both EDP and SDC FIT
    return out[:1] + [p for p in out[1:] if not any(q.edp <= p.edp and q.fit < p.fit or
                                                    q.edp < p.edp and q.fit <= p.fit
                                                    for q in out)]


def _choose(layer_rows: list[Row], slack: float) -> Row:
    """The kept mapping with the lowest measured SDC FIT within ``(1 + slack)`` of the best
    kept EDP (unscored mappings only as the min-EDP fallback); at slack 0 the mapper's min-EDP
    mapping, the member of the network figure the sweep reports (a resilience-aware search's
    front, ``front_key``, may hold an EDP tie or a lower EDP the first search missed)."""
    if slack == 0:
        first = [r for r in layer_rows if r["rank"] == 0 and "front_key" not in r]
        if first:
            return first[0]
    best = min(r["edp"] for r in layer_rows)
    ok = [r for r in layer_rows if r.get("strata") and r["edp"] <= (1 + slack) * best]
    if not ok:
        return min(layer_rows, key=lambda r: (r["edp"], r["rank"]))
    return min(ok, key=lambda r: (r["fit"], r["edp"], r["rank"]))


def _network(chosen: list[Row], settings: Any):
    cycles = sum(r["cycles"] * r["count"] for r in chosen)
    energy = sum(r["energy_pJ"] * r["count"] for r in chosen)
    fig = network_sdc([(r["cycles"] * r["count"] / cycles, r["strata"]) for r in chosen
                       if r.get("strata")], fit_per_mbit=settings.fit_per_mbit,
                      confidence=settings.confidence,
                      seconds_per_inference=cycles / (settings.clock_ghz * 1e9))
    return energy * 1e-12 * cycles, fig


def protect_points(network: Sequence[Row], design: str, model: str) -> list[CostPoint]:
    """Every protected variant of ``design`` running ``model``, at its min-EDP mappings."""
    return [CostPoint(design, "protect", "protect " + n["point"].split("protect=", 1)[1]
                      .rstrip("]"), n["edp"], n["fit"], n["fit_lo"], n["fit_hi"],
                      n.get("area_mm2"))
            for n in network if n["design"] == design and n["model"] == model
            and _protected(n["point"]) and n.get("fit_lo") is not None]


def cost_points(rows: Sequence[Row], network: Sequence[Row], settings: Any,
                picks: Sequence[Row] = ()) -> dict[tuple[str, str], list[CostPoint]]:
    """Per (unprotected design point, model): its remapping curve, the resilience-aware pick
    network (``SweepResult.picks``: chosen by the estimate before any of it was measured, so
    its figure carries no selection bias, unlike the curve's choices by measured FIT), then its
    protected variants."""
    out: dict[tuple[str, str], list[CostPoint]] = {}
    for n in network:
        if _protected(n["point"]):
            continue
        curve = remap_curve(rows, n["point"], n["model"], settings)
        if curve:
            area = curve[0].area_mm2
            mine = [CostPoint(n["point"], "pick", "estimate's pick", p["edp"], p["fit"],
                              p["fit_lo"], p["fit_hi"], area) for p in picks
                    if p["point"] == n["point"] and p["model"] == n["model"]
                    and p.get("fit") is not None and not p.get("same_as_min_edp")]
            out[(n["point"], n["model"])] = curve + mine + protect_points(
                network, n["design"], n["model"])
    return out


def cheapest(points: Sequence[CostPoint], target: float) -> CostPoint | None:
    """The lowest-EDP way whose SDC FIT upper bound is at most ``target`` (ties: smaller area,
    then remapping before hardware); None when no measured option reaches it."""
    ok = [p for p in points if p.fit_hi <= target]
    return min(ok, key=lambda p: (p.edp, p.area_mm2 or 0.0, p.how == "protect"), default=None)


def cheapest_table(groups: dict[tuple[str, str], list[CostPoint]],
                   target: float | None = None) -> list[Row]:
    """One row per (design point, model): the cheapest way to SDC FIT <= target (default: half
    the min-EDP network's SDC FIT, "halve the silent failures"), its EDP and area cost."""
    out = []
    for (point, model), pts in groups.items():
        base = pts[0]
        goal = target if target is not None else base.fit / 2
        best = cheapest(pts, goal)
        row = {"design point": point, "model": model, "target SDC FIT": goal,
               "min-EDP SDC FIT": f"{base.fit:.3g} [{base.fit_lo:.3g}, {base.fit_hi:.3g}]"}
        if best is None:
            row.update({"cheapest way": "none measured reaches it", "EDP cost": None,
                        "area cost": None, "its SDC FIT": None})
        else:
            area = (f"{best.area_mm2 / base.area_mm2 - 1:+.1%}"
                    if best.area_mm2 and base.area_mm2 else None)
            row.update({"cheapest way": best.label, "EDP cost": f"{best.edp / base.edp - 1:+.1%}",
                        "area cost": area,
                        "its SDC FIT": f"{best.fit:.3g} [{best.fit_lo:.3g}, {best.fit_hi:.3g}]"})
        out.append(row)
    return out


def cost_plot(groups: dict[tuple[str, str], list[CostPoint]], out_dir: Path, *,
              confidence: float, fit_per_mbit: float, stem: str = "resilience_cost"
              ) -> list[Path]:
    """One panel per (design point, model): network EDP vs SDC FIT, the remapping curve and the
    protected variants, each point with its interval."""
    if not groups:
        return []
    n = len(groups)
    cols = min(n, 2)
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6.2 * cols, 4.4 * rows_n), squeeze=False)
    for ax, ((point, model), pts) in zip(axes.ravel(), groups.items(), strict=False):
        _panel(ax, point, model, pts)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles = {h.get_label(): h for ax in axes.ravel() for h in ax.get_legend_handles_labels()[0]}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles),
               fontsize=8, frameon=False)  # one legend, off the data
    picked = any(p.how == "pick" for pts in groups.values() for p in pts)
    fig.suptitle(f"Cost of resilience: remapping (line)"
                 f"{', the estimate’s pick (diamond)' if picked else ''} vs protection (squares); "
                 f"{100 * confidence:g}% intervals; SDC FIT at {fit_per_mbit:g} FIT/Mbit raw",
                 fontsize=9.5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, out_dir, stem)


def _panel(ax: plt.Axes, point: str, model: str, pts: list[CostPoint]) -> None:
    remap = [p for p in pts if p.how == "remap"]
    pick = [p for p in pts if p.how == "pick"]
    hw = [p for p in pts if p.how == "protect"]
    for group, style, color, name in (
            (remap, "o-", "tab:blue", "remapping (measured mappings, best by measured FIT)"),
            (pick, "D", "tab:green", "the SDC-FIT estimate's pick (measured after)"),
            (hw, "s", "tab:orange", "protection (min-EDP mappings)")):
        if not group:
            continue
        xs, ys = [p.edp for p in group], [p.fit for p in group]
        err = [[max(p.fit - p.fit_lo, 0.0) for p in group],
               [max(p.fit_hi - p.fit, 0.0) for p in group]]
        ax.errorbar(xs, ys, yerr=err, fmt=style, color=color, ms=6, capsize=3, label=name)
    lo_x, hi_x = min(p.edp for p in pts), max(p.edp for p in pts)
    for p in pts:
        if p.label in ("min-EDP",) or p.how == "protect":
            right = hi_x > lo_x and p.edp > (lo_x + hi_x) / 2  # label toward the middle
            ax.annotate(p.label, (p.edp, p.fit), textcoords="offset points",
                        xytext=(-6 if right else 6, 5), ha="right" if right else "left",
                        fontsize=7)
    ax.margins(x=0.25)
    positive = [v for p in pts for v in (p.fit_lo, p.fit_hi) if v > 0]
    if positive:
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 2, max(positive) * 2)
    xs = [p.edp for p in pts]
    wide = max(xs) > 10 * min(xs) > 0  # log scale only over a decade or more
    if wide:
        ax.set_xscale("log")
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3), useOffset=False)
    ax.set_xlabel("network EDP (J x cycles" + (", log scale" if wide else "")
                  + ") — lower is better", fontsize=8)
    ax.set_ylabel("network SDC FIT (failures / 1e9 h, log)", fontsize=8)
    ax.set_title(f"{point} · {model}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


__all__ = ["SLACKS", "CostPoint", "cheapest", "cheapest_table", "cost_plot", "cost_points",
           "protect_points", "remap_curve"]
