"""``dse results``: print, query, export or re-plot a sweep store (read-only)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dse import validate as check
from dse.cli._common import print_json

DEFAULT_DB = "runs/sweep/sweep.sqlite"
# Columns of the per-mapping table that fit a terminal (the full rows go to --csv / --json).
_RESULT_COLUMNS = ("point", "model", "layer", "count", "rank", "roles", "energy_pJ", "cycles",
                   "utilization", "edp", "sdc_rate", "sdc_lo", "sdc_hi", "fit")
_PICK_COLUMNS = ("point", "model", "edp_cost", "min_edp_fit", "fit", "fit_lo", "fit_hi",
                 "fit_cut", "apart")
_FRONT_COLUMNS = ("point", "layer", "rank", "pick", "edp", "estimate_fit", "fit", "faults")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("results", help="print / query / export a sweep's stored results")
    p.add_argument("--db", default=DEFAULT_DB, help=f"sweep database (default {DEFAULT_DB})")
    p.add_argument("--sweep", help="sweep name (default: all sweeps in the store)")
    p.add_argument("--table", choices=("network", "results", "sweeps", "picks", "fronts"),
                   default="network",
                   help="network totals (default), one row per mapping, the sweeps; for sweeps "
                   "with a resilience-aware objective: the pick networks against the min-EDP "
                   "ones, or every front mapping (estimated and measured SDC FIT)")
    p.add_argument("--query", metavar="SQL", help="any read-only SQL over the tables and views")
    p.add_argument("--csv", metavar="OUT", help="write the rows as CSV")
    p.add_argument("--parquet", metavar="OUT", help="write the rows as Parquet (needs pyarrow)")
    p.add_argument("--report", metavar="DIR", help="redraw the figures and report.html into DIR")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--wide", action="store_true", help="print the table at full width")
    p.set_defaults(func=run)


def _rows(store: Any, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str] | None]:
    from dse.report import network_rows

    if args.query:
        return store.query(args.query), None
    if args.table == "sweeps":
        return store.query("SELECT sweep, settings_key, datetime(updated, 'unixepoch') AS updated"
                           " FROM sweeps ORDER BY updated"), None
    if args.table == "results":
        return store.results(args.sweep), list(_RESULT_COLUMNS)
    if args.table in ("picks", "fronts"):
        from dse.sweep.run import stored_picks

        fronts, picks = stored_picks(store, args.sweep)
        if args.table == "picks":
            return picks, None if args.json or args.csv or args.parquet else list(_PICK_COLUMNS)
        rows = [{k: v for k, v in r.items() if k not in ("strata", "mapping")} for r in fronts]
        return rows, None if args.json or args.csv or args.parquet else list(_FRONT_COLUMNS)
    from dse.sweep.run import stored_figures

    _, net = stored_figures(store, args.sweep)
    return (net, None) if args.json or args.csv or args.parquet else (network_rows(net), None)


def _settings(store: Any, sweep: str | None) -> dict[str, Any]:
    """The settings block of a redrawn report: the stored experiment of the (newest) sweep."""
    import json

    from dse.report.html import sweep_settings
    from dse.sweep.hashing import code_version

    name = sweep or next(iter(store.sweeps()), None)
    found = store.query("SELECT config FROM sweeps WHERE sweep = ?", (name,))
    config = json.loads(found[0]["config"]) if found else {}
    return {"sweep": name, **sweep_settings(config, code_version())}


def run(args: argparse.Namespace) -> int:
    from dse.report import text_table, write_report
    from dse.sweep.store import export_csv, export_parquet, open_existing

    for fld in ("csv", "parquet"):
        if getattr(args, fld):
            check.output_file(getattr(args, fld), f"--{fld}")
    if args.report:
        check.output_dir(args.report, "--report")
    with open_existing(args.db) as store:
        if args.sweep:
            check.resolve(args.sweep, store.sweeps(), "--sweep", file=args.db, what="sweep")
        rows, columns = _rows(store, args)
        if args.report:
            from dse.sweep.run import stored_figures

            rows_all, network = stored_figures(store, args.sweep)
            page = write_report(rows_all, network,
                                Path(args.report), title=f"dse sweep: {args.sweep or args.db}",
                                settings=_settings(store, args.sweep))
            print(f"report: {page}")
    if args.csv:
        export_csv(rows, args.csv)
    if args.parquet:
        export_parquet(rows, args.parquet)
    if args.json:
        print_json(rows)
    elif not (args.csv or args.parquet):
        print(text_table(rows, columns, wide=args.wide))
    else:
        print(f"wrote {len(rows)} rows to {args.csv or args.parquet}")
    return 0
