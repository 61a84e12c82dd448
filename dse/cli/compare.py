"""``dse compare``: model variants side by side on every design (e.g. dilated vs undilated).

Runs one sweep whose models are the variants of ``--model`` (stored like any sweep, so a rerun is
instant), then prints per-design totals and per-layer energy / cycles / EDP side by side and draws
the comparison plots. The SDC columns appear only where real weights and data exist.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from dse.cli._common import deprecated_alias, print_json
from dse.cli.sweep import add_sweep_flags, config_from_args
from dse.errors import InputError
from dse.sweep.config import ModelSpec


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("compare", help="compare model variants side by side per design",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="zoo model name, e.g. deeplabv3")
    p.add_argument("--model-variant", dest="model_variants", nargs="+", metavar="VARIANT",
                   help="variants of the model: a name the zoo knows (dilated, undilated) or"
                        " K=V[,K=V] keyword arguments of the zoo model")
    for old in ("--variant", "--variants"):
        deprecated_alias(p, old, "--model-variant", dest="model_variants", nargs="+")
    add_sweep_flags(p, models=False)
    p.add_argument("--wide", action="store_true", help="print the tables at full width")
    p.add_argument("--no-report", action="store_true", help="skip figures and compare.html")
    p.set_defaults(func=run)


def variant_spec(model: str, variant: str) -> ModelSpec:
    """A model variant as a ModelSpec: ``K=V,...`` keyword arguments, or a named zoo variant."""
    if "=" in variant:
        options: dict[str, Any] = {}
        for part in variant.split(","):
            key, _, value = part.partition("=")
            options[key.strip()] = yaml.safe_load(value)
        return ModelSpec(model, options=options, label=f"{model}[{variant}]")
    from dse.problems import zoo

    return ModelSpec(model, options={"variant": variant}, label=f"{model}[{variant}]") \
        if variant not in zoo.list_models() else ModelSpec(variant)


def run(args: argparse.Namespace) -> int:
    from dse.report import text_table
    from dse.report.compare import (
        compare_totals,
        layers_table,
        ratio_name,
        totals_table,
        unfolded_layers,
        write_compare_report,
    )
    from dse.report.html import sweep_settings
    from dse.report.tables import note_lines
    from dse.sweep import run_sweep
    from dse.sweep.hashing import code_version

    if len(args.model_variants or ()) < 2:
        raise InputError("need at least two variants to compare", field="--model-variant")
    specs = [variant_spec(args.model, v) for v in args.model_variants]
    if args.name is None:
        args.name = f"compare_{args.model}"
    config = config_from_args(args, models=specs)
    if args.out is None and not args.config:
        config.output = str(Path("runs") / config.name)
    result = run_sweep(config, progress=not args.quiet)
    labels = [s.label for s in specs]
    totals = compare_totals(result.rows, labels)
    points = list(dict.fromkeys(t["design point"] for t in totals))
    layers = {p: unfolded_layers(result.rows, labels, p, result.occurrences) for p in points}
    page = None
    if not args.no_report:
        page = write_compare_report(
            result.rows, labels, Path(config.output), title=f"dse compare: {args.model}",
            settings=sweep_settings(config.to_dict(), code_version(),
                                    scored=any(r.get("sdc_rate") is not None for r in result.rows)),
            notes=result.notes,
            occurrences=result.occurrences)
    if args.json:
        print_json(dict(totals=totals, layers=layers, notes=result.notes,
                        report=str(page) if page else None, db=str(result.db_path)))
        return 0
    if result.notes:
        print(note_lines(result.notes))
    for point in points:
        print(f"\n== {point}: per layer instance (unfolded), ratio {ratio_name(labels)} ==")
        print(text_table(layers_table(layers[point], labels), wide=args.wide))
    print("\n== network totals ==")
    print(text_table(totals_table(totals, labels), wide=args.wide))
    if page:
        print(f"\nreport: {page}")
    return 0
