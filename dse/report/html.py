"""One self-contained HTML page per sweep: the tables plus every figure.

The PNGs are embedded (base64), so the page can be mailed or archived on its own; each figure links
to its SVG next to the page for print quality.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dse.report.analysis import Row, layer_table
from dse.report.plots import breakdown_plot, efficiency_plot, layer_bars, pareto_plot
from dse.report.tables import fmt, network_rows, sdc_text

_CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#eee}figure{margin:1.5em 0}img{max-width:100%}.note{color:#a33}"""


def _table_html(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def layer_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One line per design point x model x layer: the min-EDP mapping and its SDC rate."""
    return [{"design point": r["point"], "model": r["model"], "layer": r["layer"],
             "count": r["count"], "energy (uJ)": r["energy_pJ"] * 1e-6, "cycles": r["cycles"],
             "util": r["utilization"], "EDP (J*cycle)": r["edp"],
             "SDC rate ± CI": sdc_text(r)}
            for table in layer_table(rows).values() for r in table]


def write_figures(rows: Sequence[Row], out_dir: Path) -> dict[str, list[Path]]:
    """Draw every figure for these rows; figures with nothing to show are left out."""
    figures = {
        "Pareto front: network EDP vs SDC rate": pareto_plot(rows, out_dir),
        "Per-layer energy and cycles": layer_bars(rows, out_dir),
        "Energy per component (fJ/compute)": breakdown_plot(rows, out_dir),
        "Utilization and GFLOPs @ 1 GHz": efficiency_plot(rows, out_dir),
    }
    return {title: paths for title, paths in figures.items() if paths}


def write_report(rows: Sequence[Row], network: Sequence[Row], out_dir: str | Path, *,
                 title: str, notes: Sequence[str] = ()) -> Path:
    """Write the figures and ``report.html`` into ``out_dir``; return the page's path."""
    out_dir = Path(out_dir)
    figures = write_figures(rows, out_dir)
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    parts += ["<h2>Network totals (best mapping per layer)</h2>",
              _table_html(network_rows(network))]
    parts += ["<h2>Per layer (best mapping; every kept mapping is in the store)</h2>",
              _table_html(layer_rows(rows))]
    for fig_title, paths in figures.items():
        png, svg = paths
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<figure><h2>{html.escape(fig_title)}</h2>"
                     f"<a href='{svg.name}'><img src='data:image/png;base64,{data}'"
                     f" alt='{html.escape(fig_title)}'></a>"
                     f"<figcaption><a href='{svg.name}'>SVG</a> · "
                     f"<a href='{png.name}'>PNG</a></figcaption></figure>")
    page = out_dir / "report.html"
    page.write_text("\n".join(parts) + "\n")
    return page
