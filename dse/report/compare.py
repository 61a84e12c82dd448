"""Side-by-side comparison of model variants (e.g. DeepLabv3 dilated vs undilated) per design.

Layers are matched by module path (the same ``nn.Module`` in both variants); a layer that one
variant folded into an identical earlier one shows up only there, with its repeat count, so the
per-layer table never double counts and the totals are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dse.report.analysis import Row, layer_table, network_points  # noqa: E402
from dse.report.plots import colors_for, save_figure  # noqa: E402


def compare_totals(rows: Sequence[Row], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Per design point: network energy, cycles, EDP (and SDC when scored) of each variant."""
    pts = {(p.point, p.model): p for p in network_points(rows) if p.policy == "min-EDP"}
    out = []
    for point in sorted({p for p, _ in pts}):
        row: dict[str, Any] = {"design point": point}
        for v in variants:
            p = pts.get((point, v))
            row[f"{v} energy (uJ)"] = p.energy_pJ * 1e-6 if p else None
            row[f"{v} cycles"] = int(p.cycles) if p else None
            row[f"{v} EDP"] = p.edp if p else None
            if p and p.sdc_rate is not None:
                row[f"{v} SDC"] = p.sdc_rate
        if all(pts.get((point, v)) for v in variants[:2]) and len(variants) >= 2:
            a, b = pts[(point, variants[0])], pts[(point, variants[1])]
            row[f"EDP {variants[0]}/{variants[1]}"] = a.edp / b.edp
        out.append(row)
    return out


def compare_layers(rows: Sequence[Row], variants: Sequence[str], point: str
                   ) -> list[dict[str, Any]]:
    """One design point: per layer (by module path), energy / cycles / EDP x count per variant."""
    chosen = [r for r in layer_table(rows).get(point, []) if r["model"] in variants]
    order: list[str] = []
    by: dict[tuple[str, str], Row] = {}
    for r in chosen:
        if r["layer_path"] not in order:
            order.append(r["layer_path"])
        by[(r["layer_path"], r["model"])] = r
    out = []
    for path in order:
        row: dict[str, Any] = {"layer": path}
        for v in variants:
            r = by.get((path, v))
            row[f"{v} n"] = r["count"] if r else None
            row[f"{v} energy (uJ)"] = r["energy_pJ"] * r["count"] * 1e-6 if r else None
            row[f"{v} cycles"] = r["cycles"] * r["count"] if r else None
            row[f"{v} EDP"] = r["edp"] * r["count"] ** 2 if r else None
        out.append(row)
    return out


def compare_plots(rows: Sequence[Row], variants: Sequence[str], out_dir: Path) -> list[Path]:
    """Totals per design (energy, cycles, EDP; variants side by side) and per-layer energy."""
    totals = compare_totals(rows, variants)
    points = [t["design point"] for t in totals]
    colors = colors_for(list(variants))
    x = np.arange(len(points))
    width = 0.8 / len(variants)
    fig, axes = plt.subplots(1, 3, figsize=(max(10.0, 2.2 * len(points) + 4), 4.5))
    for ax, (metric, unit) in zip(axes, (("energy (uJ)", "µJ"), ("cycles", "cycles"),
                                         ("EDP", "J·cycles")), strict=True):
        for j, v in enumerate(variants):
            vals = [t.get(f"{v} {metric}") or 0 for t in totals]
            ax.bar(x + j * width, vals, width, color=colors[v], label=v)
        ax.set_xticks(x + width * (len(variants) - 1) / 2, points, rotation=25, ha="right",
                      fontsize=8)
        ax.set_title(f"network {metric.split(' ')[0]}")
        ax.set_ylabel(unit)  # linear: the totals differ by tens of percent, not decades
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "compare_totals")

    fig, axes = plt.subplots(len(points), 1, figsize=(12, 2.8 * len(points) + 1), squeeze=False)
    for ax, point in zip(axes[:, 0], points, strict=True):
        layers = compare_layers(rows, variants, point)
        lx = np.arange(len(layers))
        for j, v in enumerate(variants):
            vals = [row.get(f"{v} energy (uJ)") or 0 for row in layers]
            ax.bar(lx + j * width, vals, width, color=colors[v], label=v)
        ax.set_title(point, fontsize=9)
        ax.set_ylabel("energy (µJ)")
        ax.set_yscale("log")
        ax.set_xticks(lx + width * (len(variants) - 1) / 2, [row["layer"] for row in layers],
                      rotation=70, ha="right", fontsize=6)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return paths + save_figure(fig, out_dir, "compare_layers")
