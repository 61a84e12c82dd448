"""``dse sweep``: designs x variants x models x layers x mappings, both axes, stored and plotted.

Every experiment YAML key has a flag here; flags override the file. With no file and no flags but
``--arch``, the shipped default runs: the digits ResNet-20 (trained on first use) on that design.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from dse import validate as check
from dse.cli._common import deprecated_alias, golden_line, parse_shape, print_json
from dse.errors import InputError
from dse.sweep.config import (
    BACKENDS,
    EXECUTORS,
    OBJECTIVES,
    WORD_FORMATS,
    ModelSpec,
    SweepConfig,
    read_config,
)
from dse.units import half_width


def add_sweep_flags(p: argparse.ArgumentParser, *, models: bool = True) -> None:
    """The flags shared by ``sweep`` and ``compare`` (one per experiment key).

    Design variants are ``--design-variant`` in both (``compare`` also has model variants);
    ``sweep --variant`` is the old, deprecated spelling. Flags default to None so a YAML's keys
    stand unless a flag is given; the help shows the built-in default of each key.
    """
    d = SweepConfig()

    def default(value: Any) -> str:
        return f" (default: {value})"

    p.add_argument("--config", metavar="YAML", help="experiment file; flags override its keys")
    p.add_argument("--name", help="sweep name in the store (default: the YAML's stem or 'default')")
    p.add_argument("--arch", nargs="+", metavar="DESIGN",
                   help="designs (names from `dse designs`, paths, or 'all')")
    p.add_argument("--design-variant", dest="variant", action="append", metavar="K=V[,K=V]",
                   help="one design variant (make_variant parameters); repeat for more;"
                        " 'base' = the design as shipped")
    p.add_argument("--grid", action="append", metavar="K=V1,V2",
                   help="cross every variant with these values of K; repeatable")
    p.add_argument("--pe", nargs="+", metavar="XxY", help="PE array sizes to sweep (variants)")
    p.add_argument("--word-bits", nargs="+", type=check.positive_int, metavar="N",
                   help="word widths to sweep")
    p.add_argument("--technology", nargs="+", metavar="NODE", help="technology nodes, e.g. 45nm")
    p.add_argument("--depth", action="append", metavar="LEVEL=N1,N2",
                   help="buffer depths of one level to sweep; repeatable")
    p.add_argument("--protect", action="append", metavar="LEVEL=SCHEME[,LEVEL=SCHEME]",
                   help="a protection variant beside the unprotected design (parity, secded, "
                   "secded_block, tmr; energy and area re-estimated, faults screened by the "
                   "code); repeatable. 'auto': per design, SEC-DED on the level with the "
                   "largest measured SDC FIT share, swept as a variant")
    if models:
        p.add_argument("--model", nargs="+", metavar="NAME", help="models (zoo names)")
    p.add_argument("--input", metavar="SHAPE", help="input shape for --model, e.g. 1x3x224x224")
    p.add_argument("--checkpoint", help="state_dict for --model (enables the resilience side)")
    p.add_argument("--dataset", help=".pt/.npz with images + labels for --model")
    p.add_argument("--backend", choices=BACKENDS, help="layer evaluator" + default(d.backend))
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="mapper objective" + default(d.mapper.objective) + "; sdc_fit and "
                   "edp_sdc_fit search each layer again with the SDC-FIT estimate (calibrated on "
                   "its min-EDP campaign) and score the estimate's EDP x SDC-FIT front by "
                   "injection")
    p.add_argument("--edp-slack", type=check.non_negative_float, metavar="S",
                   help="resilience-aware pick per layer: the lowest estimated SDC FIT with EDP <="
                   " (1 + S) x the front's best" + default(d.mapper.edp_slack))
    p.add_argument("--sdc-fit-max", type=check.positive_float, metavar="FIT",
                   help="... or instead the lowest EDP whose estimated SDC FIT is <= FIT")
    p.add_argument("--front", type=check.positive_int, metavar="N",
                   help="front mappings per layer scored by injection" + default(d.resilience.front))
    p.add_argument("--search", help="mapper search strategy" + default(d.mapper.search))
    p.add_argument("--time-limit", type=check.positive_float,
                   help="mapper seconds per layer" + default(d.mapper.time_limit))
    p.add_argument("--budget", type=check.positive_int,
                   help="mapper evaluations per layer (repeatable results)"
                   + default(d.mapper.budget))
    p.add_argument("--no-resilience", action="store_true", help="energy side only")
    p.add_argument("--no-pareto", action="store_true",
                   help="do not score the mapper's energy x delay Pareto set")
    p.add_argument("--top-k", type=check.non_negative_int,
                   help="also score the K best mappings by EDP" + default(d.resilience.top_k))
    p.add_argument("--precision", type=check.fraction_arg,
                   help="adaptive sampling until the SDC interval's half-width <= this x the "
                        "estimate" + default(d.resilience.precision))
    p.add_argument("--floor", type=check.non_negative_float,
                   help="... or until its upper bound on P(SDC | fault) is under this"
                        + default(d.resilience.floor))
    p.add_argument("--max-faults", type=check.positive_int,
                   help="cap on the faults of each design point's network campaign (its layers'"
                        " min-EDP mappings); a figure not resolved by then is reported as "
                        "reached so far" + default(d.resilience.max_faults))
    p.add_argument("--mapping-max-faults", type=check.positive_int,
                   help="cap on each other kept mapping's layer campaign (Pareto set, top-K)"
                        + default(d.resilience.mapping_max_faults))
    p.add_argument("--format", dest="word_format", choices=WORD_FORMATS,
                   help="how fault injection stores words: 'int' = fixed point at each level's "
                   "own width from the design; or one format in every buffer and the MAC "
                   "register" + default(d.resilience.format))
    p.add_argument("--clock-ghz", type=check.positive_float,
                   help="clock for SDC per inference" + default(d.resilience.clock_ghz))
    p.add_argument("--faults-per-class", dest="faults", type=check.positive_int, metavar="N",
                   help="classic sampling: this many faults in EACH fault-site class of each "
                   "mapping (default: adaptive, see --precision)")
    deprecated_alias(p, "--faults", "--faults-per-class", dest="faults", type=check.positive_int)
    p.add_argument("--margin", type=check.fraction_arg,
                   help="error margin of the SDC estimate" + default(d.resilience.margin))
    p.add_argument("--confidence", type=check.fraction_arg,
                   help="confidence of the SDC interval" + default(d.resilience.confidence))
    p.add_argument("--fit-per-mbit", type=check.positive_float,
                   help="raw fault rate (FIT per Mbit)" + default(d.resilience.fit_per_mbit))
    p.add_argument("--images", type=check.positive_int,
                   help="test images per injection" + default(d.resilience.images))
    p.add_argument("--device", help="where fault injection runs the network: cpu or cuda[:N]"
                   " (default: cpu)")
    p.add_argument("--seed", type=check.non_negative_int,
                   help="seed of mapper and faults" + default(d.seed))
    p.add_argument("--executor", choices=EXECUTORS, help="where tasks run" + default(d.executor))
    p.add_argument("--workers", type=check.positive_int,
                   help="local worker processes" + default(d.workers))
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Dask scheduler to use")
    p.add_argument("--dask-local", type=check.positive_int, metavar="N",
                   help="start a Dask LocalCluster of N")
    p.add_argument("--out", help="output directory (store, figures, report) (default: runs/NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the network rows as JSON")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sweep", help="run a design-space sweep (energy + resilience)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_flags(p)
    deprecated_alias(p, "--variant", "--design-variant", dest="variant", append=True)
    p.add_argument("--wide", action="store_true", help="print the table at full width")
    p.add_argument("--no-report", action="store_true", help="skip figures and report.html")
    p.set_defaults(func=run)


def _kv(text: str, flag: str) -> dict[str, Any]:
    """``a=1,b=x`` -> {"a": 1, "b": "x"} (values parsed as YAML scalars)."""
    if text == "base":
        return {}
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise InputError(f"expected KEY=VALUE, got {part!r}", field=flag)
        out[key.strip()] = yaml.safe_load(value)
    return out


def config_from_args(args: argparse.Namespace, *, models: list[ModelSpec] | None = None,
                     protect_auto: bool = False) -> SweepConfig:
    """The YAML (if any) with every given flag applied on top (``--protect auto`` only where
    the caller runs :func:`dse.sweep.protect_auto.run_protect_auto`)."""
    config = read_config(args.config) if args.config else SweepConfig(source="command line")
    set_if = _setter(config)
    set_if("name", args.name)
    set_if("designs", args.arch)
    if args.variant:
        config.variants = [_kv(v, "--design-variant") for v in args.variant]
    for g in args.grid or ():
        key, sep, values = g.partition("=")
        if not sep:
            raise InputError(f"expected KEY=V1,V2, got {g!r}", field="--grid")
        config.grid[key] = [yaml.safe_load(v) for v in values.split(",")]
    _shorthand_grid(config, args, protect_auto)
    if models is None and getattr(args, "model", None):
        models = [ModelSpec(m) for m in args.model]
    if models is not None:
        config.models = models
    for spec in config.models if (args.input or args.checkpoint or args.dataset) else ():
        if args.input:
            spec.input_shape = parse_shape(args.input)
        spec.checkpoint = args.checkpoint or spec.checkpoint
        spec.dataset = args.dataset or spec.dataset
    set_if("backend", args.backend)
    set_if("mapper.objective", args.objective)
    set_if("mapper.search", args.search)
    set_if("mapper.time_limit", args.time_limit)
    set_if("mapper.budget", args.budget)
    set_if("mapper.edp_slack", args.edp_slack)
    set_if("mapper.sdc_fit_max", args.sdc_fit_max)
    set_if("resilience.front", args.front)
    set_if("resilience.format", args.word_format)
    if args.no_resilience:
        config.resilience.enabled = False
    if args.no_pareto:
        config.resilience.pareto = False
    set_if("resilience.top_k", args.top_k)
    set_if("resilience.precision", args.precision)
    set_if("resilience.floor", args.floor)
    set_if("resilience.max_faults", args.max_faults)
    set_if("resilience.mapping_max_faults", args.mapping_max_faults)
    set_if("resilience.clock_ghz", args.clock_ghz)
    set_if("resilience.faults", args.faults)
    set_if("resilience.margin", args.margin)
    set_if("resilience.confidence", args.confidence)
    set_if("resilience.fit_per_mbit", args.fit_per_mbit)
    set_if("resilience.images", args.images)
    set_if("resilience.device", args.device)
    set_if("seed", args.seed)
    set_if("executor", args.executor)
    set_if("workers", args.workers)
    set_if("scheduler", args.scheduler)
    set_if("dask_local", args.dask_local)
    set_if("output", args.out)
    if args.out is None and not args.config and args.name:
        config.output = str(Path("runs") / args.name)
    return config


def _shorthand_grid(config: SweepConfig, args: argparse.Namespace, protect_auto: bool) -> None:
    """``--pe/--word-bits/--technology/--depth/--protect``: the common variant axes without
    YAML."""
    if args.pe:
        sizes = [parse_shape(pe, field="--pe") for pe in args.pe]
        if any(len(s) != 2 for s in sizes):
            raise InputError("expected XxY, e.g. 14x12", field="--pe")
        config.variants = [{**v, "pe_x": x, "pe_y": y} for v in config.variants or [{}]
                           for x, y in sizes]
    if args.word_bits:
        config.grid["word_bits"] = list(args.word_bits)
    if args.technology:
        config.grid["technology"] = list(args.technology)
    if args.protect and "auto" in args.protect:
        if not protect_auto:
            raise InputError("'auto' is a `dse sweep` option", field="--protect")
        if len(args.protect) > 1:
            raise InputError("'auto' chooses the protection itself: give it alone",
                             field="--protect")
    elif args.protect:
        config.grid["protect"] = ["none", *args.protect]
    for d in args.depth or ():
        level, sep, values = d.partition("=")
        if not sep:
            raise InputError(f"expected LEVEL=N1,N2, got {d!r}", field="--depth")
        config.grid[f"depth.{level}"] = [yaml.safe_load(v) for v in values.split(",")]


def _setter(config: SweepConfig) -> Any:
    def set_if(dotted: str, value: Any) -> None:
        if value is None:
            return
        target: Any = config
        *path, leaf = dotted.split(".")
        for part in path:
            target = getattr(target, part)
        setattr(target, leaf, value)

    return set_if


def report_run(result: Any, *, json_out: bool, report: bool, wide: bool = False) -> int:
    """Print the final per-design table (or JSON) and write the figures and HTML page."""
    from dse.report import network_rows, text_table, write_report
    from dse.report.html import sweep_settings
    from dse.report.tables import note_lines
    from dse.sweep.hashing import code_version

    out_dir = Path(result.config.output)
    page = None
    cost = cost_section(result, out_dir if report else None)
    if report and result.rows:
        sections = [(COST_FIGURE, cost[1], COST_TABLE, cost[0])] if cost else []
        page = write_report(result.rows_with_strata(), result.network, out_dir,
                            title=f"dse sweep: {result.config.name}", notes=result.notes,
                            settings=sweep_settings(result.config.to_dict(), code_version()),
                            sections=sections)
    golden = golden_by_model(result)
    if json_out:
        from dse.report.estimate_check import agreement, estimate_rows, front_pairs

        fit = result.config.resilience.fit_per_mbit
        pairs = estimate_rows(result.rows_with_strata(), fit)
        fronts = front_pairs(result.fronts, fit)
        print_json(dict(network=result.network, golden=golden, notes=result.notes,
                        estimate_vs_measured=dict(agreement=agreement(pairs), mappings=pairs),
                        fronts=dict(agreement=agreement(fronts), mappings=fronts),
                        pick_networks=result.picks,
                        db=str(result.db_path),
                        report=str(page) if page else None, computed=result.computed,
                        reused=result.reused, failed=result.failed, wall_s=result.wall_s))
        return 0
    if result.notes:
        print(note_lines(result.notes))
    print(text_table(network_rows(result.network), wide=wide))
    for line in sdc_lines(result):
        print(line)
    for label, gold in golden.items():
        print(f"{label}: {golden_line(gold['accuracy'], gold['images'])}, the images each "
              "fault strikes")
    print_cost(cost, wide=wide)
    for line in pick_lines(result, wide=wide):
        print(line)
    print(f"\n{len(result.rows)} result rows in {result.db_path} (sweep {result.config.name!r});"
          f" computed {result.computed['map']} layer mappings + {result.computed['resilience']}"
          f" resilience scores, reused {result.reused['map']} + {result.reused['resilience']};"
          f" {result.wall_s:.1f} s")
    if page:
        print(f"report: {page}")
    return 0


def pick_lines(result: Any, *, wide: bool = False) -> list[str]:
    """Resilience-aware objectives: per design, the pick network against the min-EDP one (both
    measured by injection), then how the estimate ranked the front mappings it picked from."""
    import textwrap

    from dse.report import text_table
    from dse.report.estimate_check import agreement_text, front_pairs

    if not result.picks:
        return []
    m, res = result.config.mapper, result.config.resilience
    rule = (f"the lowest EDP with estimated SDC FIT <= {m.sdc_fit_max:g}" if m.sdc_fit_max
            is not None else f"the lowest estimated SDC FIT within {m.edp_slack:.0%} of the "
            "layer's best EDP, its min-EDP mapping included")
    head = (f"Resilience-aware mapping (objective {m.objective}; per layer {rule}), measured by "
            f"injection against the min-EDP mappings. SDC FIT: failures per 1e9 h at "
            f"{res.fit_per_mbit:g} FIT/Mbit raw, [{res.confidence:.0%} interval]; EDP cost = pick"
            " network EDP / min-EDP network EDP - 1; cut = min-EDP FIT / pick FIT; apart = the "
            "intervals do not overlap (a cut without it is not a measured difference).")
    many = len({p["model"] for p in result.picks}) > 1
    table = [{"design": p["point"] + (f" / {p['model']}" if many else ""),
              "EDP cost": f"{p['edp_cost'] - 1:+.1%}" if p["edp_cost"] else "-",
              "SDC FIT min-EDP": _fit(p.get("min_edp_fit"), p.get("min_edp_fit_lo"),
                                      p.get("min_edp_fit_hi")),
              "SDC FIT pick": _fit(p.get("fit"), p.get("fit_lo"), p.get("fit_hi")),
              "cut": f"{p['fit_cut']:.2f}x" if p["fit_cut"] else "-",
              "apart": "same mappings" if p["same_as_min_edp"] else
              "yes" if p["apart"] else "no"} for p in result.picks]
    lines = ["", *textwrap.wrap(head, 100), text_table(table, wide=wide)]
    found = agreement_text(front_pairs(result.fronts, res.fit_per_mbit),
                           "the front mappings (calibrated on each layer's min-EDP campaign)")
    return lines + (textwrap.wrap(found, 100, subsequent_indent="    ") if found else [])


def _fit(value: float | None, lo: float | None, hi: float | None) -> str:
    if value is None or hi is None:
        return "-"
    return f"< {hi:.2g}" if value == 0 else f"{value:.3g} [{lo:.2g}, {hi:.2g}]"


COST_TABLE = ("Cheapest way to SDC FIT <= target (default: half the min-EDP network's), by "
              "remapping among the measured mappings or by a protected variant")
COST_FIGURE = "EDP vs SDC FIT: remapping, the estimate's pick and protection"


def cost_section(result: Any, out_dir: Path | None) -> tuple[list[dict], list[Path]] | None:
    """With protected variants or resilience-aware fronts in the sweep: the cheapest way per
    design to halve its network SDC FIT (remapping among every measured mapping, front ones
    included, or protection) and, with ``out_dir``, the EDP vs SDC FIT figure
    (:mod:`dse.report.resilience_cost`); None when there is nothing to weigh."""
    if not (result.fronts or any("protect=" in n["point"] for n in result.network)):
        return None
    from dse.report.resilience_cost import cheapest_table, cost_plot, cost_points

    settings = result.config.resilience
    groups = cost_points(result.rows_with_strata() + result.fronts, result.network, settings,
                         result.picks)
    if not groups:
        return None
    paths = (cost_plot(groups, out_dir, confidence=settings.confidence,
                       fit_per_mbit=settings.fit_per_mbit) if out_dir is not None else [])
    return cheapest_table(groups), paths


def print_cost(cost: tuple[list[dict], list[Path]] | None, *, wide: bool = False) -> None:
    from dse.report import text_table

    if cost is None:
        return
    import textwrap

    table, paths = cost
    print("\n" + "\n".join(textwrap.wrap(COST_TABLE + ":", 100)))
    print(text_table(table, wide=wide))
    if paths:
        print(f"{COST_FIGURE}: {paths[0]}")


def golden_by_model(result: Any) -> dict[str, dict[str, Any]]:
    """Per model with SDC figures in the sweep: its fault-free top-1 accuracy on the images
    the faults strike (loaded as the resilience tasks load it, cached per process), the
    baseline an SDC rate is read against."""
    from dse.sweep.tasks import load_model_and_data

    scored = {n["model"] for n in result.network if n.get("sdc_rate") is not None}
    out = {}
    for spec in result.config.models:
        if spec.label in scored:
            import torch

            model, images, labels = load_model_and_data(spec, result.config.resilience.images)
            with torch.no_grad():
                hits = int((model(images).argmax(1) == labels).sum())
            out[spec.label] = {"accuracy": hits / len(labels), "images": len(labels)}
    return out


def sdc_lines(result: Any) -> list[str]:
    """Per design point: the network SDC FIT with its 95% interval and whether the precision
    was reached; then one line on which designs are resolved apart."""
    import textwrap

    from dse.report.analysis import network_points, resolution_line

    res = result.config.resilience
    lines = []
    for r in result.network:
        if r.get("fit_lo") is None:
            continue
        state = (f"resolved ({_reached(r, res.floor)}, {r['faults']} faults)" if r["resolved"]
                 else f"NOT resolved: reached {_reached(r, None)} after {r['faults']} "
                 "faults (raise --max-faults)")
        sites = (r.get("breakdown") or {}).get("site", {})
        top = max(sites.items(), key=lambda kv: kv[1][0], default=None)
        largest = (f"; largest site class {top[0]} {top[1][0]:.3g} [{top[1][1]:.3g}, "
                   f"{top[1][2]:.3g}] FIT" if top and top[1][0] > 0 else "")
        fit = (f"< {r['fit_hi']:.3g} (no fault failed)" if r["fit"] == 0 else
               f"{r['fit']:.3g} [{r['fit_lo']:.3g}, {r['fit_hi']:.3g}]")
        text = (f"{r['point']}: SDC FIT {fit} "
                f"(failures per 1e9 h at {res.fit_per_mbit:g} FIT/Mbit raw), {state}; "
                f"P(SDC|fault) {r['sdc_rate']:.3g} [{r['sdc_lo']:.3g}, {r['sdc_hi']:.3g}]; "
                f"DUE per fault {r['due_rate']:.2g}; SDC per inference "
                f"{r['sdc_per_inference']:.3g} at {res.clock_ghz:g} GHz{largest}")
        lines += textwrap.wrap(text, 100, subsequent_indent="    ")
    from dse.report.estimate_check import agreement_line

    rows = result.rows_with_strata()
    line = resolution_line(network_points(rows))
    lines += textwrap.wrap(line, 100, subsequent_indent="    ")
    check = agreement_line(rows, res.fit_per_mbit)
    return lines + (textwrap.wrap(check, 100, subsequent_indent="    ") if check else [])


def _reached(r: dict[str, Any], floor: float | None) -> str:
    """What stopped the campaign: the interval's relative half-width, or (a rate too small to
    pin down relatively) its upper bound under the floor; ``floor`` None: not resolved."""
    if floor is not None and r["sdc_hi"] <= floor:
        return f"upper bound {r['sdc_hi']:.3g} on P(SDC|fault) <= --floor {floor:g}"
    if r["sdc_rate"] > 0:
        return half_width(r["relative_half_width"])
    return f"upper bound {r['sdc_hi']:.2g} on P(SDC|fault)"


def run(args: argparse.Namespace) -> int:
    from dse.sweep import run_sweep

    config = config_from_args(args, protect_auto=True)
    if args.protect == ["auto"]:
        from dse.sweep.protect_auto import run_protect_auto

        result = run_protect_auto(config, progress=not args.quiet)
    else:
        result = run_sweep(config, progress=not args.quiet)
    code = report_run(result, json_out=args.json, report=not args.no_report, wide=args.wide)
    return 1 if result.failed else code  # partial: the failed units are recorded, rerun retries
