"""Plain-text tables for the terminal (and the rows behind them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dse.report.analysis import Row


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Left-aligned text columns, one line per row; every value goes through :func:`fmt`."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def sdc_text(row: Row) -> str:
    """``0.123 ± 0.012`` (half-width of the CI), or why there is no number."""
    if row.get("sdc_rate") is None:
        return "not scored"
    half = (row["sdc_hi"] - row["sdc_lo"]) / 2
    scored = f" ({row['layers_scored']}/{row['layers']} layers)" if (
        "layers_scored" in row and row["layers_scored"] != row["layers"]) else ""
    return f"{row['sdc_rate']:.3g} ± {half:.2g}{scored}"


def network_rows(network: Sequence[Row]) -> list[dict[str, Any]]:
    """The final per-design table: network energy, cycles, EDP, SDC rate ± CI."""
    return [{
        "design point": r["point"], "model": r["model"],
        "energy (uJ)": r["energy_pJ"] * 1e-6, "cycles": int(r["cycles"]),
        "EDP (J*cycle)": r["edp"], "util": r["utilization"],
        "GFLOPs@1GHz": r["gflops_1ghz"], "SDC rate ± CI": sdc_text(r),
    } for r in network]
