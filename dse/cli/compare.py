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

from dse.cli._common import print_json
from dse.cli.sweep import add_sweep_flags, config_from_args
from dse.errors import InputError
from dse.sweep.config import ModelSpec


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("compare", help="compare model variants side by side per design",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="zoo model name, e.g. deeplabv3")
    p.add_argument("--variants", "--variant", dest="model_variants", nargs="+", required=True,
                   metavar="VARIANT",
                   help="variants of the model: a name the zoo knows (dilated, undilated) or"
                        " K=V[,K=V] keyword arguments of the zoo model")
    add_sweep_flags(p, models=False, variant_flag="--design-variant")
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
    from dse.report.compare import compare_layers, compare_plots, compare_totals
    from dse.sweep import run_sweep

    if len(args.model_variants) < 2:
        raise InputError("need at least two variants to compare", field="--variant")
    specs = [variant_spec(args.model, v) for v in args.model_variants]
    if args.name is None:
        args.name = f"compare_{args.model}"
    config = config_from_args(args, models=specs)
    if args.out is None and not args.config:
        config.output = str(Path("runs") / config.name)
    result = run_sweep(config, progress=not args.quiet)
    labels = [s.label for s in specs]
    totals = compare_totals(result.rows, labels)
    points = [t["design point"] for t in totals]
    per_layer = {p: compare_layers(result.rows, labels, p) for p in points}
    plots = compare_plots(result.rows, labels, Path(config.output))
    if args.json:
        print_json(dict(totals=totals, layers=per_layer, notes=result.notes,
                        plots=[str(p) for p in plots], db=str(result.db_path)))
        return 0
    for note in result.notes:
        print(f"note: {note}")
    for point in points:
        print(f"\n== {point}: per layer ==")
        print(text_table(per_layer[point]))
    print("\n== network totals ==")
    print(text_table(totals))
    print("\nplots: " + ", ".join(str(p) for p in plots if p.suffix == ".png"))
    return 0
