"""Matplotlib figures of a sweep, each written as PNG and SVG.

Every function takes the store's result rows, draws one figure and returns the paths it wrote; the
numbers come from :mod:`dse.report.analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dse.figures import palette, save_figure  # noqa: E402
from dse.report.analysis import (  # noqa: E402
    Row,
    energy_breakdown,
    layer_table,
    network_points,
    overlapping,
    pareto_front,
    pareto_uncertain,
)
from dse.units import energy_unit, num  # noqa: E402

_MARKERS = {"min-EDP": "o", "min-SDC": "D"}


def pareto_plot(rows: Sequence[Row], out_dir: Path, stem: str = "pareto", *,
                confidence: float | None = None) -> list[Path]:
    """Network EDP vs SDC rate for every design point, model and mapping policy; front highlighted.

    Returns no paths when nothing has an SDC rate (energy-only sweeps have no second axis).
    """
    pts = [p for p in network_points(rows) if p.sdc_rate is not None]
    if not pts:
        return []
    colors = palette(sorted({p.point for p in pts}))
    name = pts[0].sdc_axis[0]
    bounds = [(p.edp, p.sdc_axis[2], p.sdc_axis[3]) for p in pts]
    # a point that showed no SDC at all is drawn at its upper bound, as an upper limit (▼)
    xy = [(p.edp, p.sdc_axis[1] or p.sdc_axis[3]) for p in pts]
    front = pareto_uncertain(bounds)  # dominated only when resolved apart
    tied = {i for g in overlapping(bounds, front) if len(g) > 1 for i in g}
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for p, (x, y), (_, lo, hi) in zip(pts, xy, bounds, strict=True):
        if p.sdc_axis[1]:
            ax.errorbar(x, y, yerr=[[y - lo], [hi - y]], fmt=_MARKERS.get(p.policy, "o"),
                        color=colors[p.point], ms=7, capsize=3, alpha=0.85)
        else:
            ax.plot(x, y, marker="v", color=colors[p.point], ms=9, ls="")
    # the line joins the front of the estimates (monotone: a zigzag through points that merely
    # overlap would read as a trade-off); rings mark every point no other beats beyond its
    # interval, so an unresolved point is not dropped from the front
    fx = [xy[i] for i in pareto_front(xy)]
    ax.plot([x for x, _ in fx], [y for _, y in fx], "-", color="crimson", lw=2, zorder=0)
    ax.scatter([xy[i][0] for i in front], [xy[i][1] for i in front], s=180, facecolors="none",
               edgecolors="crimson", lw=2, zorder=3)
    positive = [v for _, lo, hi in bounds for v in (lo, hi) if v > 0]
    if positive:
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 2, max(positive) * 2)
    keys = point_keys(list(colors), rows)
    several = len({q.model for q in pts}) > 1
    on_front = [i for i in range(len(pts)) if i in front]  # only the front is named on the plot
    for i, dy in zip(on_front, _label_offsets(ax, [xy[i] for i in on_front]), strict=True):
        p = pts[i]
        ax.annotate(keys[p.point].split(" ")[0] + (f" {p.model}" if several else "")
                    + (" (≈)" if i in tied else ""),
                    xy[i], textcoords="offset points", xytext=(6, 6 + dy), fontsize=7.5)
    xs = [x for x, _ in xy]
    wide = max(xs) > 10 * min(xs) > 0  # log scale only pays off over a decade or more
    if wide:
        ax.set_xscale("log")
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3), useOffset=False)
    ax.set_xlabel("network EDP (J x cycles" + (", log scale" if wide else "")
                  + ") — lower is better")
    ax.set_ylabel(f"{name}, log scale — lower is better")
    level = f"{100 * confidence:g}% confidence" if confidence else "confidence"
    spans = [q.sdc_axis[3] / q.sdc_axis[1] for q in pts if q.sdc_axis[1]]
    reached = (f"widest: upper bound {num(max(spans))}x its estimate" if spans
               else "no SDC seen")
    ax.set_title(f"Network EDP vs SDC; {level} intervals ({reached})\n"
                 "rings: no other point better beyond the intervals; (≈) not resolved apart; "
                 "▼ none seen",
                 fontsize=8.5)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=keys[n])
               for n, c in colors.items()]
    handles += [plt.Line2D([], [], color="black", marker=m, ls="", mfc="none",
                           label=f"{k} mappings")
                for k, m in _MARKERS.items()]
    handles.append(plt.Line2D([], [], color="crimson", lw=2, label="front of the estimates"))
    handles.append(plt.Line2D([], [], color="crimson", marker="o", mfc="none", ms=11, ls="",
                              mew=2, label="not beaten beyond its interval"))
    ax.legend(handles=handles, fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    add_key(fig, keys)
    return save_figure(fig, out_dir, stem)


def _label_offsets(ax: plt.Axes, xy: Sequence[tuple[float, float]]) -> list[float]:
    """Vertical label offsets (points) that stack the labels of points drawn on top of each
    other, so near-identical points stay readable."""
    ax.figure.canvas.draw()
    screen = ax.transData.transform(xy)
    offsets: list[float] = []
    for i, (x, y) in enumerate(screen):
        near = sum(1 for j in range(i) if abs(screen[j][0] - x) < 230 and abs(screen[j][1] - y) < 12)
        offsets.append(-11.0 * near)
    return offsets


def point_keys(points: Sequence[str], rows: Sequence[Row] = ()) -> dict[str, str]:
    """Axis labels for design points: the label itself when all are short, else ``P1``, ``P2``..
    (named in full in the figure's key); the technology node is added when the rows carry it."""
    tech = {r.get("point", r.get("design point")): r.get("technology") for r in rows}
    short = all(len(p) <= 22 for p in points)
    return {p: (p if short else f"P{i + 1}") + (f" ({tech[p]})" if tech.get(p) else "")
            for i, p in enumerate(points)}


def add_key(fig: plt.Figure, keys: dict[str, str]) -> None:
    """The full design-point labels under the figure, when the axes show short keys."""
    lines = [f"{k.split(' ')[0]} = {p}" for p, k in keys.items() if not k.startswith(p)]
    if lines:
        fig.text(0.01, 0.0, "\n".join(lines), va="top", ha="left", fontsize=7,
                 family="monospace")


def layer_bars(rows: Sequence[Row], out_dir: Path, stem: str = "layers") -> list[Path]:
    """Per-layer energy and cycles (min-EDP mapping, x repeat count): one line per design point
    over the layers (log axes: layers differ by decades)."""
    table = layer_table(rows)
    points = list(table)
    first = table[points[0]]
    layers = [f"{r['model']}:{r['layer']}" + (f" x{r['count']}" if r["count"] > 1 else "")
              for r in first] if len({r["model"] for r in first}) > 1 else [
        r["layer"] + (f" x{r['count']}" if r["count"] > 1 else "") for r in first]
    keys = point_keys(points, rows)
    colors = palette(points)
    x = np.arange(len(layers))
    unit, scale = energy_unit(r["energy_pJ"] * r["count"] for t in table.values() for r in t)
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.3 * len(layers) + 4), 7.5), sharex=True)
    for j, point in enumerate(points):
        mine = table[point][:len(x)]
        style = dict(color=colors[point], marker="os^vD<>ph*"[j % 10], ms=4, lw=1)
        for m, model in enumerate(dict.fromkeys(r["model"] for r in mine)):  # no line across
            idx = [i for i, r in enumerate(mine) if r["model"] == model]   # models
            seg = [mine[i] for i in idx]
            label = {"label": keys[point]} if m == 0 else {}
            axes[0].plot(x[idx], [r["energy_pJ"] * r["count"] / scale for r in seg], **style,
                         **label)
            axes[1].plot(x[idx], [r["cycles"] * r["count"] for r in seg], **style)
    axes[0].set_ylabel(f"energy x count ({unit}, log)")
    axes[1].set_ylabel("cycles x count (log)")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    axes[0].set_title("Per-layer energy and cycles of the best mapping (x repeat count)")
    axes[1].set_xticks(x, layers, rotation=90, fontsize=7)
    fig.tight_layout()
    add_key(fig, keys)
    return save_figure(fig, out_dir, stem)


def breakdown_plot(rows: Sequence[Row], out_dir: Path, stem: str = "breakdown") -> list[Path]:
    """Energy per MAC of each design point (total, fJ) and each component's share (%), so
    designs whose totals differ by decades still show their breakdown."""
    data = energy_breakdown(rows)
    points = list(data)
    comps: list[str] = []
    for per in data.values():  # the model's order: mac, then levels outermost first
        comps.extend(c for c in per if c not in comps)
    comps = [c for c in comps if c == "mac"] + [c for c in reversed(comps) if c != "mac"]
    colors = palette(comps)
    keys = point_keys(points, rows)
    labels = [keys[p] for p in points]
    totals = np.array([sum(data[p].values()) for p in points])
    fig, (tot, share) = plt.subplots(1, 2, figsize=(max(9.0, 1.1 * len(points) * 2 + 4), 5),
                                     gridspec_kw={"width_ratios": [1, 1.6]})
    tot.bar(labels, totals, color="0.45", width=0.6)
    for i, t in enumerate(totals):
        tot.annotate(num(t), (i, t), xytext=(0, 2), textcoords="offset points", ha="center",
                     fontsize=7)
    if totals.max() > 10 * totals.min() > 0:
        tot.set_yscale("log")
        tot.set_ylabel("energy per MAC (fJ, log)")
    else:
        tot.set_ylabel("energy per MAC (fJ)")
    tot.set_ylim(top=totals.max() * (3 if tot.get_yscale() == "log" else 1.12))
    tot.set_title("Total", fontsize=10)
    bottom = np.zeros(len(points))
    for comp in comps:
        vals = np.array([data[p].get(comp, 0.0) for p in points]) / totals * 100
        share.bar(labels, vals, bottom=bottom, color=colors[comp], label=comp, width=0.6)
        bottom += vals
    share.set_ylabel("share of energy per MAC (%)")
    share.set_ylim(0, 100)
    share.set_title("Share per component (min-EDP mapping of every layer)", fontsize=10)
    share.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    for ax in (tot, share):
        ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    fig.suptitle("Energy breakdown per component (whole network)")
    fig.tight_layout()
    add_key(fig, keys)
    return save_figure(fig, out_dir, stem)


def efficiency_plot(rows: Sequence[Row], out_dir: Path, stem: str = "efficiency") -> list[Path]:
    """Network utilization of the MAC array and GOPS at 1 GHz per design point and model
    (integer MACs: operations, not FLOPs; 2 per MAC)."""
    pts = [p for p in network_points(rows) if p.policy == "min-EDP"]
    table = layer_table(rows)
    keys = point_keys(list(dict.fromkeys(p.point for p in pts)), rows)
    models = list(dict.fromkeys(p.model for p in pts))
    labels = [keys[p.point] + (f"\n{p.model}" if len(models) > 1 else "") for p in pts]
    util = []
    for p in pts:
        mine = [r for r in table[p.point] if r["model"] == p.model]
        util.append(sum(r["utilization"] * r["cycles"] * r["count"] for r in mine)
                    / sum(r["cycles"] * r["count"] for r in mine))
    gops = [2.0 * p.macs / p.cycles for p in pts]
    colors = palette(models)
    bar_colors = [colors[p.model] for p in pts]
    fig, axes = plt.subplots(1, 2, figsize=(max(9.0, 0.55 * len(pts) * 2 + 3), 4.8))
    axes[0].bar(range(len(pts)), [100 * u for u in util], color=bar_colors, width=0.6)
    axes[0].set_ylabel("MAC utilization (%)")
    axes[0].set_ylim(0, 100)
    axes[1].bar(range(len(pts)), gops, color=bar_colors, width=0.6)
    axes[1].set_ylabel("GOPS @ 1 GHz (2 ops per MAC)")
    if max(gops) > 10 * min(gops) > 0:
        axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xticks(range(len(pts)), labels, rotation=90, fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    if len(models) > 1:
        axes[1].legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colors[m]) for m in models],
                       labels=models, fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle("Utilization and throughput (cycle-weighted over layers)")
    fig.tight_layout()
    add_key(fig, keys)
    return save_figure(fig, out_dir, stem)
