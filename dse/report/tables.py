"""Plain-text tables for the terminal (and the rows behind them).

Every value goes through :func:`dse.units.num`; numbers are right-aligned, text left-aligned.
A table is kept within ``width`` columns (100 by default) by abbreviating long labels with a
legend and, if still too wide, printing the columns in blocks that each repeat the first
column; ``wide=True`` prints one line per row whatever its length.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from dse.report.analysis import Row
from dse.units import energy_unit, estimate, is_numeric, num

WIDTH = 100
_GAP = "  "
_LABEL_MAX = 40  # longer text cells are replaced by a short key and listed in a legend


def fmt(value: Any) -> str:
    """One cell: numbers with significant figures (never rounded to zero), text as is."""
    return num(value) if is_numeric(value) or value is None else str(value)


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, *,
               width: int = WIDTH, wide: bool = False) -> str:
    """Rows as an aligned text table that fits ``width`` columns unless ``wide``."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    right = [all(is_numeric(r.get(c)) or r.get(c) is None for r in rows) for c in columns]
    legend: list[str] = []
    if not wide:
        legend = _abbreviate(cells, columns, right, width)
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    blocks = [list(range(len(columns)))] if wide else _blocks(widths, width)
    out: list[str] = []
    for block in blocks:
        if out:
            out.append("")
        out += _render(columns, cells, widths, right, block)
    return "\n".join(out + legend)


def _render(columns: list[str], cells: list[list[str]], widths: list[int], right: list[bool],
            block: list[int]) -> list[str]:
    def line(values: Sequence[str]) -> str:
        return _GAP.join((values[i].rjust(widths[i]) if right[i] else values[i].ljust(widths[i]))
                         for i in block).rstrip()

    return [line(columns), _GAP.join("-" * widths[i] for i in block)] + [line(c) for c in cells]


def _abbreviate(cells: list[list[str]], columns: list[str], right: list[bool],
                width: int) -> list[str]:
    """Replace long text values by ``<letter><n>`` keys in place; return the legend lines."""
    total = sum(max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns))
    if total + len(_GAP) * (len(columns) - 1) <= width:
        return []
    legend: list[str] = []
    for i, col in enumerate(columns):
        if right[i] or max(len(line[i]) for line in cells) <= _LABEL_MAX:
            continue
        keys: dict[str, str] = {}
        prefix = col[:1].upper() or "K"
        for line in cells:
            keys.setdefault(line[i], f"{prefix}{len(keys) + 1}")
            line[i] = keys[line[i]]
        legend.append(f"\n{col}:")
        for value, key in keys.items():
            legend += textwrap.wrap(f"{key} = {value}", width, initial_indent="  ",
                                    subsequent_indent="       ")
    return legend


def _blocks(widths: list[int], width: int) -> list[list[int]]:
    """Column groups that each fit ``width``; every group after the first repeats column 0."""
    blocks: list[list[int]] = [[0]]
    used = widths[0]
    for i in range(1, len(widths)):
        if used + len(_GAP) + widths[i] > width and len(blocks[-1]) > 1:
            blocks.append([0])
            used = widths[0]
        blocks[-1].append(i)
        used += len(_GAP) + widths[i]
    return blocks


def note_lines(notes: Sequence[str], width: int = WIDTH) -> str:
    """``note: ...`` lines wrapped to ``width`` (continuations indented)."""
    return "\n".join(textwrap.fill(f"note: {n}", width, subsequent_indent="  ") for n in notes)


def sdc_text(row: Row) -> str:
    """``0.123 [0.101, 0.15]`` (the interval as stored), or why there is no number."""
    if row.get("sdc_rate") is None:
        return "not scored"
    scored = f" ({row['layers_scored']}/{row['layers']} layers)" if (
        "layers_scored" in row and row["layers_scored"] != row["layers"]) else ""
    return estimate(row["sdc_rate"], row["sdc_lo"], row["sdc_hi"]) + scored


def network_rows(network: Sequence[Row]) -> list[dict[str, Any]]:
    """The final per-design table: network energy, cycles, EDP, area, SDC per fault [CI] and
    (where the network campaign ran) SDC FIT [CI].

    Energy takes one unit for the whole column (pJ .. J by the median magnitude); every header
    names its unit or points to the glossary (``dse.report.glossary``).
    """
    unit, scale = energy_unit(r["energy_pJ"] for r in network)
    out = []
    for r in network:
        row = {"design point": r["point"], "node": r.get("technology") or "-",
               "model": r["model"], f"energy ({unit})": r["energy_pJ"] / scale, "cycles": int(r["cycles"]),
               "EDP (J x cycles)": r["edp"], "util (%)": 100 * r["utilization"],
               "GOPS @1GHz": r["gflops_1ghz"]}
        if r.get("area_mm2") is not None:
            row["area (mm2)"] = r["area_mm2"]
        row["SDC per fault [CI]"] = sdc_text(r)
        if r.get("fit") is not None:  # the network campaign's figure (raw FIT/Mbit: settings)
            row["SDC FIT [CI]"] = estimate(r["fit"], r.get("fit_lo"), r.get("fit_hi"))
        out.append(row)
    return out
