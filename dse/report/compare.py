"""Model variants side by side on every design (e.g. DeepLabv3 dilated vs undilated).

Totals are exact network sums (layer values x repeat count). The per-layer view is *unfolded*:
the profiler folds identical layers into their first occurrence, which would leave the undilated
variant's later layers without bars and pile their repeats onto one; here every module path gets
its own line (the values of the unique layer it is an occurrence of), and the variants are
compared by their ratio per layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    EngFormatter,
    FixedLocator,
    FormatStrFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
)

from dse.figures import palette, save_figure  # noqa: E402
from dse.report.analysis import Row, layer_table, network_points  # noqa: E402
from dse.report.html import figure_html, table_html, write_page  # noqa: E402
from dse.report.plots import add_key, point_keys  # noqa: E402
from dse.units import energy_unit, num  # noqa: E402

# (key in the rows, label, unit) of the figures compared
FIGURES = (("energy_pJ", "energy", "pJ"), ("cycles", "cycles", "cycles"),
           ("edp", "EDP", "J x cycles"))
Occurrences = Mapping[str, Mapping[int, Sequence[str]]]


def short_names(variants: Sequence[str]) -> dict[str, str]:
    """``deeplabv3[dilated]`` -> ``dilated`` when every variant has the same model prefix."""
    inner = [re.fullmatch(r"(.*)\[(.*)\]", v) for v in variants]
    if all(inner) and len({m.group(1) for m in inner if m}) == 1:
        return {v: m.group(2) for v, m in zip(variants, inner, strict=True) if m}
    return {v: v for v in variants}


def compare_totals(rows: Sequence[Row], variants: Sequence[str]) -> list[dict[str, Any]]:
    """One row per design point x variant: network energy (pJ), cycles, EDP, SDC per fault."""
    out = []
    for p in network_points(rows):
        if p.policy != "min-EDP" or p.model not in variants:
            continue
        tech = next((r.get("technology") for r in rows if r["point"] == p.point), None)
        out.append({"design point": p.point, "technology": tech, "variant": p.model,
                    "energy_pJ": p.energy_pJ, "cycles": p.cycles, "edp": p.edp,
                    "sdc_rate": p.sdc_rate, "sdc_lo": p.sdc_lo, "sdc_hi": p.sdc_hi})
    return sorted(out, key=lambda r: (r["design point"], variants.index(r["variant"])))


def _figure_name(label: str, unit: str) -> str:
    """``energy (mJ)``; ``cycles`` (a count is its own unit: not ``cycles (cycles)``)."""
    return label if label == unit else f"{label} ({unit})"


def totals_table(totals: Sequence[Row], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Totals pivoted for reading: one line per design point x figure, variants as columns and
    the ratio of the first two variants last."""
    names = short_names(variants)
    unit, scale = energy_unit(t["energy_pJ"] for t in totals)
    by = {(t["design point"], t["variant"]): t for t in totals}
    out = []
    for point in dict.fromkeys(t["design point"] for t in totals):
        node = by.get((point, variants[0]), {}).get("technology") or "-"
        for key, label, fig_unit in FIGURES:
            div = scale if key == "energy_pJ" else 1.0
            row: dict[str, Any] = {"design point": point, "node": node,
                                   "figure": _figure_name(label, unit if key == "energy_pJ"
                                                          else fig_unit)}
            for v in variants:
                t = by.get((point, v))
                row[names[v]] = t[key] / div if t else None
            row[ratio_name(variants)] = _ratio(by.get((point, variants[0])),
                                               by.get((point, variants[1])), key)
            out.append(row)
    return out


def ratio_name(variants: Sequence[str]) -> str:
    names = short_names(variants)
    return f"{names[variants[0]]}/{names[variants[1]]}"


def _ratio(a: Row | None, b: Row | None, key: str) -> float | None:
    return a[key] / b[key] if a and b and b[key] else None


def _natural(path: str) -> list[Any]:
    """Sort key that orders ``layer10`` after ``layer9`` (module paths in execution order)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def unfolded_layers(rows: Sequence[Row], variants: Sequence[str], point: str,
                    occurrences: Occurrences | None = None) -> list[dict[str, Any]]:
    """One design point: every module path of every variant with its per-instance energy (pJ)
    and cycles, and the ratio of the first two variants where both run that path.

    ``occurrences`` (model -> layer index -> module paths, from the sweep's profile) unfolds
    repeated layers; without it each unique layer stands for its first occurrence only.
    """
    per_path: dict[str, dict[str, Row]] = {}
    for r in layer_table(rows).get(point, []):
        if r["model"] not in variants:
            continue
        paths = (occurrences or {}).get(r["model"], {}).get(r["layer_index"]) or [r["layer_path"]]
        for path in paths:
            per_path.setdefault(path, {})[r["model"]] = r
    out = []
    for path in sorted(per_path, key=_natural):
        row: dict[str, Any] = {"layer": path}
        for v in variants:
            r = per_path[path].get(v)
            row[v] = {"energy_pJ": r["energy_pJ"], "cycles": r["cycles"],
                      "edp": r["energy_pJ"] * 1e-12 * r["cycles"]} if r else None
        a, b = row[variants[0]], row[variants[1]]
        row["ratio"] = {k: _ratio(a, b, k) for k in ("energy_pJ", "cycles", "edp")}
        out.append(row)
    return out


def layers_table(layers: Sequence[Row], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Unfolded layers for reading: energy of the first two variants, energy and cycle ratios."""
    names = short_names(variants)
    a, b = variants[0], variants[1]
    unit, scale = energy_unit(r[v]["energy_pJ"] for r in layers for v in (a, b) if r[v])
    return [{"layer": r["layer"],
             f"E {names[a]} ({unit})": r[a]["energy_pJ"] / scale if r[a] else None,
             f"E {names[b]} ({unit})": r[b]["energy_pJ"] / scale if r[b] else None,
             "E ratio": r["ratio"]["energy_pJ"], "cycles ratio": r["ratio"]["cycles"],
             "EDP ratio": r["ratio"]["edp"]} for r in layers]


def totals_plot(totals: Sequence[Row], variants: Sequence[str], points: Sequence[str],
                out_dir: Path) -> list[Path]:
    """Network energy, cycles and EDP per design, variants side by side, ratio annotated."""
    names = short_names(variants)
    colors = palette(list(variants))
    by = {(t["design point"], t["variant"]): t for t in totals}
    x = np.arange(len(points))
    width = 0.8 / len(variants)
    fig, axes = plt.subplots(1, 3, figsize=(max(11.0, 1.9 * len(points) * 3), 4.8))
    unit, scale = energy_unit(t["energy_pJ"] for t in totals)
    keys = point_keys(points, totals)
    for ax, (key, label, fig_unit) in zip(axes, FIGURES, strict=True):
        div = scale if key == "energy_pJ" else 1.0
        tops = []
        for j, v in enumerate(variants):
            vals = [by[(p, v)][key] / div if (p, v) in by else 0 for p in points]
            ax.bar(x + j * width, vals, width, color=colors[v], label=names[v])
            tops.append(vals)
        for i, p in enumerate(points):
            r = _ratio(by.get((p, variants[0])), by.get((p, variants[1])), key)
            if r is not None:
                ax.annotate(f"x{num(r)}", (x[i] + width * (len(variants) - 1) / 2,
                                           max(t[i] for t in tops)),
                            xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
        vals = [t[key] / div for t in totals if t[key]]
        log = bool(vals) and max(vals) > 10 * min(vals)
        if log:
            ax.set_yscale("log")
        ax.set_ylim(top=max(max(t) for t in tops) * (3 if log else 1.15))
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xticks(x + width * (len(variants) - 1) / 2, [keys[p] for p in points],
                      rotation=90 if len(points) > 2 else 0, fontsize=8)
        ax.set_ylabel(f"network {label} ({unit if key == 'energy_pJ' else fig_unit})")
        ax.grid(True, axis="y", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper right", fontsize=8, ncol=2)
    fig.suptitle(f"Network totals per design; annotation: ratio {ratio_name(variants)}",
                 x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    add_key(fig, keys)
    return save_figure(fig, out_dir, "compare_totals")


def layer_ratio_plot(rows: Sequence[Row], variants: Sequence[str], points: Sequence[str],
                     out_dir: Path, occurrences: Occurrences | None = None) -> list[Path]:
    """Per unfolded layer, energy and cycles of variant 1 / variant 2 on a log axis around 1
    (markers on stems from 1, so a ratio of exactly 1 still shows)."""
    per_point = {p: unfolded_layers(rows, variants, p, occurrences) for p in points}
    n = max((len(v) for v in per_point.values()), default=1)
    fig, axes = plt.subplots(len(points), 1, figsize=(max(9.0, 0.16 * n + 2.5),
                                                      3.4 * len(points) + 1.6), squeeze=False)
    series = (("energy_pJ", "energy", "tab:blue", "o", -0.15),
              ("cycles", "cycles", "tab:orange", "s", 0.15))
    for ax, point in zip(axes[:, 0], points, strict=True):
        layers = per_point[point]
        lx = np.arange(len(layers))
        spread = [1.0]
        for key, label, color, marker, dx in series:
            vals = np.array([r["ratio"][key] or np.nan for r in layers], dtype=float)
            ax.vlines(lx + dx, 1.0, vals, color=color, lw=1.5)
            ax.plot(lx + dx, vals, marker, color=color, ms=3.5, label=f"{label} ratio")
            spread += [v for v in vals if np.isfinite(v)]
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        lim = max(max(spread), 1 / min(spread), 1.1) * 1.15
        ax.set_ylim(1 / lim, lim)
        _ratio_ticks(ax, lim)
        ax.set_title(f"{point}: per layer instance {ratio_name(variants)} (1 = equal; no marker:"
                     " layer in one variant only)", fontsize=9)
        ax.set_ylabel(f"ratio {ratio_name(variants)} (log)")
        ax.set_xticks(lx, [r["layer"] for r in layers], rotation=90, fontsize=6)
        ax.set_xlim(-0.7, len(layers) - 0.3)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, out_dir, "compare_layers")


def _ratio_ticks(ax: plt.Axes, lim: float) -> None:
    """Readable ticks on a log ratio axis from 1/lim to lim: powers of 2 over wide ranges,
    steps of 10-25% over narrow ones (never a crowd of minor labels)."""
    if lim > 2.2:
        ax.yaxis.set_major_locator(LogLocator(base=2, numticks=12))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ticks = [t for t in (0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0) if 1 / lim <= t <= lim]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))


def write_compare_report(rows: Sequence[Row], variants: Sequence[str], out_dir: Path, *,
                         title: str, settings: Mapping[str, Any], notes: Sequence[str] = (),
                         occurrences: Occurrences | None = None) -> Path:
    """Figures plus ``compare.html``: totals, the unfolded per-layer table per design, figures."""
    totals = compare_totals(rows, variants)
    points = list(dict.fromkeys(t["design point"] for t in totals))
    body = [f"<h2>Network totals (ratio {ratio_name(variants)})</h2>",
            table_html(totals_table(totals, variants))]
    body.append(figure_html("Network totals per design", totals_plot(totals, variants, points,
                                                                      out_dir),
                            f"Bars: the variants; annotation: ratio {ratio_name(variants)}."))
    body.append(figure_html(
        "Per-layer ratios over unfolded layers",
        layer_ratio_plot(rows, variants, points, out_dir, occurrences),
        "Every module path on its own (repeated identical layers unfolded); bars grow from 1."))
    for point in points:
        body += [f"<h2>{point}: per layer (unfolded, per instance)</h2>",
                 table_html(layers_table(unfolded_layers(rows, variants, point, occurrences),
                                         variants))]
    return write_page(out_dir / "compare.html", title, body, settings, notes)
