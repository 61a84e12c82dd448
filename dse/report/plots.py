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

from dse.report.analysis import (  # noqa: E402
    Row,
    energy_breakdown,
    layer_table,
    network_points,
    pareto_front,
)

_MARKERS = {"min-EDP": "o", "min-SDC": "D"}


def save_figure(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def colors_for(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def pareto_plot(rows: Sequence[Row], out_dir: Path, stem: str = "pareto") -> list[Path]:
    """Network EDP vs SDC rate for every design point, model and mapping policy; front highlighted.

    Returns no paths when nothing has an SDC rate (energy-only sweeps have no second axis).
    """
    pts = [p for p in network_points(rows) if p.sdc_rate is not None]
    if not pts:
        return []
    colors = colors_for(sorted({p.point for p in pts}))
    xy = [(p.edp, p.sdc_rate) for p in pts]
    front = pareto_front(xy)
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for p in pts:
        err = [[p.sdc_rate - p.sdc_lo], [p.sdc_hi - p.sdc_rate]]
        ax.errorbar(p.edp, p.sdc_rate, yerr=err, fmt=_MARKERS.get(p.policy, "o"),
                    color=colors[p.point], ms=7, capsize=3, alpha=0.85)
    fx = [xy[i] for i in sorted(front, key=lambda i: xy[i][0])]
    ax.plot([x for x, _ in fx], [y for _, y in fx], "-", color="crimson", lw=2, zorder=0,
            label="Pareto front")
    ax.scatter([x for x, _ in fx], [y for _, y in fx], s=180, facecolors="none",
               edgecolors="crimson", lw=2, zorder=3)
    _scale_sdc_axis(ax, [y for _, y in xy])
    for i, p, dy in zip(range(len(pts)), pts, _label_offsets(ax, xy), strict=True):
        ax.annotate(p.label if len({q.model for q in pts}) > 1 else f"{p.point} · {p.policy}",
                    xy[i], textcoords="offset points", xytext=(6, 6 + dy), fontsize=7.5,
                    fontweight="bold" if i in front else "normal")
    xs = [x for x, _ in xy]
    wide = max(xs) > 10 * min(xs) > 0  # log scale only pays off over a decade or more
    if wide:
        ax.set_xscale("log")
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3), useOffset=False)
    ax.set_xlabel("network EDP (J·cycles" + (", log scale" if wide else "")
                  + ") — lower is better")
    ax.set_ylabel("SDC rate (cycle-weighted over layers) — lower is better")
    ax.set_title("Efficiency vs resilience: network EDP vs SDC rate")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=n) for n, c in colors.items()]
    handles += [plt.Line2D([], [], color="grey", marker=m, ls="", label=f"{k} mappings")
                for k, m in _MARKERS.items()]
    handles.append(plt.Line2D([], [], color="crimson", lw=2, label="Pareto front"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, out_dir, stem)


def _scale_sdc_axis(ax: plt.Axes, ys: Sequence[float]) -> None:
    """Symmetric-log SDC axis when rates span over two decades (one fragile design would
    otherwise squash every other point onto zero)."""
    positive = [y for y in ys if y > 0]
    if positive and max(positive) > 100 * min(positive):
        ax.set_yscale("symlog", linthresh=min(positive))


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


def layer_bars(rows: Sequence[Row], out_dir: Path, stem: str = "layers") -> list[Path]:
    """Per-layer energy and cycles (min-EDP mapping, x repeat count) side by side per design."""
    table = layer_table(rows)
    points = list(table)
    layers = [f"{r['layer']}×{r['count']}" if r["count"] > 1 else r["layer"]
              for r in table[points[0]]]
    colors = colors_for(points)
    width = 0.8 / len(points)
    x = np.arange(len(layers))
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.45 * len(layers) * len(points) + 3), 7),
                             sharex=True)
    for j, point in enumerate(points):
        energy = [r["energy_pJ"] * r["count"] * 1e-6 for r in table[point]]
        cycles = [r["cycles"] * r["count"] for r in table[point]]
        n = min(len(energy), len(x))
        axes[0].bar(x[:n] + j * width, energy[:n], width, color=colors[point], label=point)
        axes[1].bar(x[:n] + j * width, cycles[:n], width, color=colors[point], label=point)
    axes[0].set_ylabel("energy (µJ)")
    axes[1].set_ylabel("cycles")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Per-layer energy and cycles (best mapping by the mapper's objective)")
    axes[1].set_xticks(x + width * (len(points) - 1) / 2, layers, rotation=60, ha="right",
                       fontsize=7)
    return save_figure(fig, out_dir, stem)


def breakdown_plot(rows: Sequence[Row], out_dir: Path, stem: str = "breakdown") -> list[Path]:
    """Energy per component in fJ per MAC, stacked per design point (the seed pipeline's plot)."""
    data = energy_breakdown(rows)
    points = list(data)
    comps: list[str] = []
    for per in data.values():  # the model's order: mac, then levels outermost first
        comps.extend(c for c in per if c not in comps)
    comps = [c for c in comps if c == "mac"] + [c for c in reversed(comps) if c != "mac"]
    colors = colors_for(comps)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(points) + 3), 5))
    bottom = np.zeros(len(points))
    for comp in comps:
        vals = np.array([data[p].get(comp, 0.0) for p in points])
        ax.bar(points, vals, bottom=bottom, color=colors[comp], label=comp)
        bottom += vals
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("energy per MAC (fJ/compute)")
    ax.set_title("Energy breakdown per component (whole network)")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.tick_params(axis="x", labelrotation=20)
    return save_figure(fig, out_dir, stem)


def efficiency_plot(rows: Sequence[Row], out_dir: Path, stem: str = "efficiency") -> list[Path]:
    """Network utilization of the MAC array and GFLOPs at 1 GHz per design point and model."""
    pts = [p for p in network_points(rows) if p.policy == "min-EDP"]
    table = layer_table(rows)
    labels = [f"{p.point}\n{p.model}" for p in pts]
    util = []
    for p in pts:
        mine = [r for r in table[p.point] if r["model"] == p.model]
        util.append(sum(r["utilization"] * r["cycles"] * r["count"] for r in mine)
                    / sum(r["cycles"] * r["count"] for r in mine))
    gflops = [2.0 * p.macs / p.cycles for p in pts]
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.6 * len(pts) + 4), 4.5))
    axes[0].bar(labels, [100 * u for u in util], color="tab:blue", width=0.6)
    axes[0].set_ylabel("MAC utilization (%)")
    axes[0].set_ylim(0, 100)
    axes[1].bar(labels, gflops, color="tab:green", width=0.6)
    axes[1].set_ylabel("GFLOPs @ 1 GHz")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Utilization and throughput (cycle-weighted over layers)")
    fig.tight_layout()
    return save_figure(fig, out_dir, stem)
