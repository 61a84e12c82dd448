"""Self-contained HTML pages: the sweep report and the variant comparison.

Everything a page shows is inside the file: figures as PNG data URIs, the settings and provenance
block, the glossary of every figure's definition and unit, and a few lines of inline JavaScript
that sort a table by the clicked column. Nothing is linked or fetched, so a page mailed, archived
or moved on its own still shows everything. (The SVGs for print are written next to the page and
named in each caption as text, never as a link.)
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dse.report.analysis import Row, layer_table, network_points
from dse.report.glossary import TERMS
from dse.report.plots import breakdown_plot, efficiency_plot, layer_bars, pareto_plot
from dse.report.tables import fmt, network_rows, sdc_text
from dse.units import energy_unit, is_numeric

_CSS = """body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;
padding:3px 8px;white-space:nowrap}td.w{white-space:normal;overflow-wrap:anywhere;min-width:14em}
th{white-space:normal;background:#eee;cursor:pointer;user-select:none}th:after{content:' \\2195';
color:#999}td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1.5em 0}
img{max-width:100%}.note{color:#a33}dl.settings{display:grid;grid-template-columns:max-content
auto;gap:2px 1em}dl.settings dt{font-weight:bold}dl.settings dd{margin:0;font-family:monospace}
dl.glossary dt{font-weight:bold;margin-top:.5em}figcaption{font-size:13px;color:#444}"""

# Sort the clicked column (numbers by value, text alphabetically); click again to reverse.
_JS = """document.querySelectorAll('table.sortable th').forEach((th,i)=>th.addEventListener(
'click',()=>{const b=th.closest('table').tBodies[0],up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';
const key=r=>{const c=r.cells[i],v=c.dataset.v!==undefined?c.dataset.v:c.textContent;
const f=parseFloat(v);return isNaN(f)?v:f};[...b.rows].sort((x,y)=>{const a=key(x),c=key(y);
const d=(typeof a==='number'&&typeof c==='number')?a-c:String(a).localeCompare(String(c));
return up?d:-d}).forEach(r=>b.appendChild(r))}));"""


def table_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """A sortable table; numbers right-aligned, each carrying its exact value for sorting."""
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)

    def cell(value: Any) -> str:
        if is_numeric(value):
            return f"<td class='n' data-v='{value!r}'>{html.escape(fmt(value))}</td>"
        text = fmt(value)  # long labels may wrap; numbers and intervals stay on one line
        wrap = " class='w'" if len(text) > 30 and not text[:1].isdigit() else ""
        return f"<td{wrap}>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    return f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def settings_html(settings: Mapping[str, Any]) -> str:
    """The settings and provenance block: every value that produced the numbers on the page."""
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(_setting(v))}</dd>"
                    for k, v in settings.items())
    return f"<h2>Settings and provenance</h2><dl class='settings'>{items}</dl>"


def _setting(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return fmt(value)


def sweep_settings(config: Mapping[str, Any], code_version: str,
                   scored: bool | None = None) -> dict[str, Any]:
    """The settings block of a sweep page from the experiment's keys (``SweepConfig.to_dict``).
    ``scored`` False (no model had weights and data to inject into): the fault settings are
    left out, so the page does not list settings that shaped no figure on it."""
    res = config.get("resilience", {})
    out: dict[str, Any] = {
        "designs": config.get("designs"),
        "design variants": [v or "base (as shipped)" for v in config.get("variants") or []],
        "grid": config.get("grid") or "none",
        "models": [m.get("label") or m.get("name") for m in config.get("models", [])],
        "backend": config.get("backend"), "mapper": config.get("mapper")}
    if scored is False or not res.get("enabled"):
        why = "disabled" if not res.get("enabled") else "no model had weights and data"
        return out | {"resilience scored": f"no ({why})", "seed": config.get("seed")} \
            | provenance(code_version)
    adaptive = res.get("precision") and not res.get("faults")
    sampling = ({"sampling": "adaptive, stratified (layer x site class x bit group) until "
                             "precision, floor or max_faults"} if adaptive else
                {"faults per site class": res.get("faults") or "Leveugle's, from the margin",
                 "error margin": res.get("margin")})
    out |= {
        "resilience scored": "yes", **sampling,
        "confidence (intervals)": res.get("confidence"),
        "raw FIT/Mbit": res.get("fit_per_mbit"), "images per fault": res.get("images"),
        "number format": res.get("fmt", "int (the design's fixed point, word width per point)"),
        "seed": config.get("seed")}
    out.update((k, v) for k, v in res.items() if k not in
               {"enabled", "faults", "margin", "confidence", "fit_per_mbit", "images", "fmt"}
               and not (k in ("precision", "floor", "max_faults") and not adaptive))
    return out | provenance(code_version)


def provenance(code_version: str) -> dict[str, Any]:
    """Which dse wrote the page, when, and from which command line."""
    import sys
    from datetime import datetime, timezone

    import dse

    return {"dse version": dse.__version__, "code version": code_version,
            "written (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(["dse", *sys.argv[1:]])}


def glossary_html() -> str:
    items = "".join(f"<dt>{html.escape(t.name)}" + (f" ({html.escape(t.unit)})" if t.unit else "")
                    + f"</dt><dd>{html.escape(t.definition)}</dd>" for t in TERMS)
    return f"<h2>Glossary: what each figure means</h2><dl class='glossary'>{items}</dl>"


def figure_html(title: str, paths: Sequence[Path], caption: str = "") -> str:
    """One figure embedded as a PNG data URI; the SVG beside the page is named, not linked."""
    png = next(p for p in paths if p.suffix == ".png")
    svg = [p.name for p in paths if p.suffix == ".svg"]
    data = base64.b64encode(png.read_bytes()).decode()
    note = f" Vector version: {svg[0]} (written next to this page)." if svg else ""
    return (f"<figure><h2>{html.escape(title)}</h2>"
            f"<img src='data:image/png;base64,{data}' alt='{html.escape(title)}'>"
            f"<figcaption>{html.escape(caption + note)}</figcaption></figure>")


def write_page(path: Path, title: str, body: Sequence[str], settings: Mapping[str, Any],
               notes: Sequence[str] = ()) -> Path:
    """Assemble one page: title, notes, settings, the body parts, glossary, sorting script."""
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    parts.append(settings_html(settings))
    parts += body
    parts.append(glossary_html())
    parts.append(f"<script>{_JS}</script></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts) + "\n")
    tmp.replace(path)
    return path


def layer_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One line per design point x model x layer: the min-EDP mapping and its SDC per fault."""
    chosen = [r for table in layer_table(rows).values() for r in table]
    unit, scale = energy_unit(r["energy_pJ"] * r["count"] for r in chosen)
    return [{"design point": r["point"], "model": r["model"], "layer": r["layer"],
             "count": r["count"], f"energy x count ({unit})": r["energy_pJ"] * r["count"] / scale,
             "cycles x count": r["cycles"] * r["count"], "util (%)": 100 * r["utilization"],
             "EDP (J x cycles)": r["edp"], "SDC per fault [CI]": sdc_text(r)}
            for r in chosen]


def write_figures(rows: Sequence[Row], out_dir: Path, confidence: float | None = None
                  ) -> dict[str, list[Path]]:
    """Draw every figure for these rows; figures with nothing to show are left out."""
    fit = any(p.fit is not None for p in network_points(rows))
    figures = {
        f"Pareto front: network EDP vs {'SDC FIT' if fit else 'SDC per fault'}":
            pareto_plot(rows, out_dir, confidence=confidence),
        "Per-layer energy and cycles": layer_bars(rows, out_dir),
        "Energy per component (fJ per MAC)": breakdown_plot(rows, out_dir),
        "Utilization and GOPS @ 1 GHz": efficiency_plot(rows, out_dir),
    }
    return {title: paths for title, paths in figures.items() if paths}


def write_report(rows: Sequence[Row], network: Sequence[Row], out_dir: str | Path, *,
                 title: str, notes: Sequence[str] = (),
                 settings: Mapping[str, Any] | None = None,
                 sections: Sequence[tuple[str, Sequence[Path], str, Sequence[Row]]] = ()
                 ) -> Path:
    """Write the figures and ``report.html`` into ``out_dir``; return the page's path.
    ``sections``: more (figure heading, its paths, table heading, table rows) the caller drew,
    e.g. the cost of resilience."""
    out_dir = Path(out_dir)
    figures = write_figures(rows, out_dir, (settings or {}).get("confidence (intervals)"))
    body = ["<h2>Network totals (best mapping per layer)</h2>",
            table_html(network_rows(network)),
            "<h2>Per layer (best mapping; every kept mapping is in the store)</h2>",
            table_html(layer_rows(rows))]
    body += [figure_html(t, paths) for t, paths in figures.items()]
    for heading, paths, table_heading, table in sections:
        body += [figure_html(heading, list(paths))] if paths else []
        body += [f"<h2>{html.escape(table_heading)}</h2>", table_html(list(table))]
    return write_page(out_dir / "report.html", title, body, settings or {}, notes)
