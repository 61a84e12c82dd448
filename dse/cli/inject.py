"""``dse inject``: a statistical fault-injection campaign on a model's weights, biases or layer
outputs.

Writes ``faultlist.csv``, ``results.csv`` (resumable: run the same command again after a kill),
``summary.json`` / ``summary.txt`` (every outcome class with its rate and interval, per layer, per
bit, overall) and ``<headline class>.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from pathlib import Path

import torch

from dse import validate as check
from dse.cli._common import golden_line, print_json
from dse.devices import resolve_device
from dse.errors import InputError
from dse.problems.trained import load_model as load_trained
from dse.resilience import campaign, outcomes, sampling
from dse.resilience.fault import KINDS
from dse.resilience.formats import number_format
from dse.resilience.inference import ENGINES

# what --target accepts: the engines' tensor roles, and the older plural names
TARGETS = {"weight": "weight", "bias": "bias", "output": "output", "weights": "weight",
           "activations": "output"}


def register(subparsers) -> None:
    p = subparsers.add_parser("inject", help="statistical fault injection into a model",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="digits_cnn",
                   help="a zoo name (dse.problems.zoo); digits_cnn and digits_resnet20 are "
                        "trained on first use, others need --checkpoint")
    p.add_argument("--checkpoint", help="weights for --model (dse train's file or a state dict)")
    p.add_argument("--dataset", help="digits, fashion_mnist, cifar10, cifar100, gtsrb, "
                                     "imagefolder or a .pt/.npz file (default: the model's)")
    p.add_argument("--data", help="dataset root directory (nothing is downloaded)")
    p.add_argument("--num-classes", type=check.positive_int,
                   help="head size for a plain state dict (default: the dataset's)")
    p.add_argument("--target", choices=tuple(TARGETS), default="weight",
                   help="tensor role: weight, bias or output (weights / activations also work)")
    sampled = [k for k in KINDS.values() if k.word_from in (None, "draw")]
    p.add_argument("--fault", choices=tuple(k.name for k in sampled), default="bitflip",
                   help="; ".join(f"{k.name}: {k.doc}" for k in sampled))
    p.add_argument("--format", default="fp32",
                   help="one number format for the struck tensor: fp32, fp16, bf16 or intN "
                   "(N = 2..32, e.g. int8: signed N-bit fixed point, scale = max|x| / "
                   "(2^(N-1) - 1) per tensor); plain 'int' (each buffer level's own word "
                   "width) needs a design: dse resilience / sweep")
    p.add_argument("--per-channel", action="store_true", help="intN: one scale per channel")
    p.add_argument("--outcome", default="top1", help="outcome spec (default top1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--bits", default="all", help="'all' or a list like 0,7,23-30")
    p.add_argument("--n-bits", type=check.positive_int, default=1,
                   help="bits per fault (multi-bit faults)")
    p.add_argument("--margin", type=check.fraction_arg, default=0.01)
    p.add_argument("--confidence", type=check.fraction_arg, default=0.99)
    p.add_argument("--mode", choices=sampling.MODES, default="network",
                   help="sample size per network, per layer or per layer and bit (DATE 2023)")
    p.add_argument("--n-faults", type=check.positive_int, metavar="N",
                   help="this many faults in total over the network, instead of Leveugle's n "
                   "(and of --mode's strata); dse resilience / sweep take --faults-per-class")
    p.add_argument("--precision", type=check.fraction_arg,
                   help="adaptive stratified sampling (strata = layer x bit group) until the "
                        "interval of P(headline class | fault) has a half-width <= this x the "
                        "estimate (default: off, Leveugle's sizes from --margin)")
    p.add_argument("--floor", type=check.non_negative_float, default=1e-4,
                   help="with --precision: ... or until its upper bound is under this")
    p.add_argument("--max-faults", type=check.positive_int, default=20000,
                   help="with --precision: at most this many faults (a figure not resolved by "
                        "then is reported as reached so far)")
    p.add_argument("--faults", help="replay this fault-list CSV instead of generating one")
    p.add_argument("--engine", choices=tuple(ENGINES), default="fast")
    p.add_argument("--images", type=check.positive_int, default=100, help="images per injection")
    p.add_argument("--workers", type=check.positive_int, default=1,
                   help="processes that run chunks of the fault list (one torch thread each)")
    p.add_argument("--out", default="inject_out", help="campaign directory")
    p.add_argument("--seed", type=check.non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def parse_bits(text: str, fmt: str) -> list[int] | None:
    """``all`` -> None (every bit of the format); else a comma list with ranges ``a-b``."""
    if text.strip().lower() == "all":
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    except ValueError:
        raise InputError(f"malformed bit list {text!r}; expected 'all' or e.g. 0,7,23-30",
                         field="--bits") from None
    width = number_format(fmt).width
    bad = [b for b in out if not 0 <= b < width]
    if bad:
        raise InputError(f"bit {bad[0]} is outside the {width}-bit {fmt} word", field="--bits")
    return sorted(set(out))


def load_model(args) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Model and images from the flags, through the one loader every command uses."""
    if args.images < 1:
        raise InputError("--images must be >= 1", field="--images")
    if args.workers < 1:
        raise InputError("--workers must be >= 1", field="--workers")
    return load_trained(args.model, checkpoint=args.checkpoint, dataset=args.dataset,
                        data_root=args.data, limit=args.images, num_classes=args.num_classes,
                        progress=not args.json)


def _config(args) -> dict:
    """What the campaign's list depends on (an adaptive list does not depend on its stopping
    rule: a rerun with a finer --precision continues it)."""
    keys = ("model", "checkpoint", "target", "fault", "format", "per_channel", "bits", "n_bits",
            "margin", "confidence", "mode", "n_faults", "seed", "faults", "outcome")
    cfg = {k: getattr(args, k) for k in keys}
    cfg["target"] = TARGETS[args.target]
    if args.precision is not None:
        cfg["sampling"] = "adaptive"
        for k in ("margin", "mode", "n_faults", "bits", "n_bits"):
            cfg.pop(k)
    return cfg


def _format(args) -> str:
    if args.format.strip().lower() == "int":
        raise InputError("plain 'int' means each buffer level's own word width and needs a "
                         "design (dse resilience, dse sweep); here name a width, e.g. int8",
                         field="--format")
    form = number_format(args.format)
    if args.per_channel and not form.fixed:
        raise InputError(f"--per-channel is for intN formats, not {form}", field="--per-channel")
    return f"{form.name}:channel" if args.per_channel else str(form)


def fault_rows(args, model, images, out: Path) -> list[campaign.Row]:
    """The campaign's rows: a replayed list, the list of an interrupted run in ``out``, or a new
    seeded list (saved before anything runs). Columns a replayed list lacks (Role, Kind, Format)
    come from the flags."""
    role, fmt = TARGETS[args.target], _format(args)
    defaults = {"Role": role, "Kind": args.fault, "Format": fmt}
    listing, cfg_path = out / "faultlist.csv", out / "campaign.json"
    if args.faults:
        rows = campaign.load_list(args.faults, defaults)
        _check(rows, model, images, args.faults)
    elif listing.exists():
        old = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        if old != _config(args):
            raise InputError("this directory holds a different campaign; use another --out",
                             file=cfg_path, field="config")
        rows = campaign.load_list(listing, defaults)
        _check(rows, model, images, listing)
        return rows
    else:
        shapes = sampling.tensor_shapes(model, sampling.fault_layers(model), role, images)
        faults = sampling.generate(
            shapes, role=role, kind=args.fault, fmt=fmt, bits=parse_bits(args.bits, fmt),
            n_bits=args.n_bits, margin=args.margin, confidence=args.confidence, mode=args.mode,
            n_faults=args.n_faults, seed=args.seed, model=args.model)
        rows = campaign.numbered(faults)
    out.mkdir(parents=True, exist_ok=True)
    campaign.save_list(rows, listing)
    check.write_text(cfg_path, json.dumps(_config(args), indent=2), field="--out")
    return rows


def _check(rows: list[campaign.Row], model, images, path) -> None:
    """Every row's layer, index and run exist in the model (each against its own role's
    tensors)."""
    layers = sampling.fault_layers(model)
    by_role: dict[str, dict] = {}
    for r in rows:
        role = r.fault.where.role
        if role not in by_role:
            by_role[role] = sampling.tensor_shapes(model, layers, role, images)
    for role, role_shapes in by_role.items():
        mine = [r for r in rows if r.fault.where.role == role]
        sampling.check_against([r.fault for r in mine], role_shapes,
                               [r.injection for r in mine], str(path))


def summary_tables(summary: dict, spec, title: str) -> str:
    """summary.txt: per layer and per bit, every class count and the headline rate per (fault,
    image) pair with its [lo, hi] interval (significant figures, never rounded to zero)."""

    from dse.report.tables import text_table
    from dse.units import estimate

    cls = spec.headline
    lines = [title]
    if "golden_top1_accuracy" in summary:
        lines.append(golden_line(summary["golden_top1_accuracy"], summary["images"]))
    lines += [*textwrap.wrap(
        f"{cls} per (fault, image) pair: share of the pairs whose outcome is {cls}; intervals"
        f" at {100 * summary['overall']['confidence']:g}% with the fault as sampling unit", 100),
        ""]
    for key, name in (("per_layer", "layer"), ("per_bit", "bit")):
        rows = [{name: k, "faults": s["faults"], "fault x image pairs": s["fault_image_pairs"],
                 **{c: s[c]["count"] for c in spec.classes},
                 f"{cls} per pair [CI]": estimate(s[cls]["rate"], *s[cls]["ci"])}
                for k, s in summary[key].items()]
        lines += [text_table(rows), ""]
    return "\n".join(lines)


def write_summary(summary: dict, spec, out: Path, title: str) -> None:
    """summary.json, summary.txt (:func:`summary_tables`) and the headline plot."""
    check.write_text(out / "summary.json", json.dumps(summary, indent=2), field="--out")
    check.write_text(out / "summary.txt", summary_tables(summary, spec, title), field="--out")
    campaign.plot_summary(summary, spec, out / f"{spec.headline}.png", title)


def precise_rows(args, model, images, engine, out: Path) -> tuple[list[campaign.Row], dict]:
    """``--precision``: grow the fault list in rounds (:mod:`dse.resilience.precise`), each round
    saved before it runs; return the finished rows and the stratified figure of the headline
    class."""
    from dse.resilience import precise
    from dse.resilience.strata import Plan, check_settings
    from dse.units import half_width

    if args.faults or args.n_faults:
        raise InputError("--precision draws its own fault list; drop --faults / --n-faults",
                         field="--precision")
    if args.bits.strip().lower() != "all" or args.n_bits != 1:
        raise InputError("--precision strikes one bit of every position (strata = layer x bit "
                         "group); drop --bits / --n-bits", field="--precision")
    check_settings(args.precision, args.floor, args.max_faults)
    role, fmt, spec = TARGETS[args.target], _format(args), engine.spec
    shapes = sampling.tensor_shapes(model, sampling.fault_layers(model), role, images)
    cells = precise.cells(shapes, fmt, args.fault)
    plan = Plan(args.precision, args.floor, args.max_faults, confidence=args.confidence)
    listing, cfg_path = out / "faultlist.csv", out / "campaign.json"
    rows: list[campaign.Row] = []
    if listing.exists():
        old = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        if old != _config(args):
            raise InputError("this directory holds a different campaign; use another --out",
                             file=cfg_path, field="config")
        rows = campaign.load_list(listing, {"Role": role, "Kind": args.fault, "Format": fmt})
    out.mkdir(parents=True, exist_ok=True)
    check.write_text(cfg_path, json.dumps(_config(args), indent=2), field="--out")
    while True:
        done = campaign.run_campaign(engine, rows, out, progress=not args.json,
                                     workers=args.workers)
        strata, _ = precise.strata_of(cells, [r.fault for r in done],
                                      [precise.fraction(r.counts, spec) for r in done])
        new = precise.next_faults(cells, strata, plan, seed=args.seed, role=role,
                                  kind=args.fault, fmt=fmt, model=args.model)
        if not new:
            break
        rows = rows + [campaign.Row(len(rows) + i, f) for i, f in enumerate(new)]
        campaign.save_list(rows, listing)
    est = precise.estimate(strata, args.confidence)
    resolved = est.resolved(plan.precision, plan.floor)
    reached = (half_width(est.relative) if est.value > 0 else f"upper bound {est.hi:.2g}")
    figure = {"class": spec.headline, "rate": est.value, "ci": [est.lo, est.hi],
              "faults": est.n, "resolved": resolved, "reached": reached,
              "precision": plan.precision, "floor": plan.floor, "max_faults": plan.max_faults,
              "strata": len(cells), "confidence": args.confidence}
    return done, figure


def _figure_line(fig: dict) -> str:
    from dse.units import estimate

    state = (f"resolved ({fig['reached']})" if fig["resolved"] else
             f"NOT resolved within --max-faults {fig['max_faults']}: reached {fig['reached']}")
    return (f"P({fig['class']} | fault), stratified over {fig['strata']} layer x bit-group strata"
            f" (each fault = one sample, its images' share in the class): "
            f"{estimate(fig['rate'], *fig['ci'])} at {100 * fig['confidence']:g}%, "
            f"{fig['faults']} faults; {state}")


def run(args) -> int:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    device = resolve_device(args.device)
    spec = outcomes.get(args.outcome)
    out = check.output_dir(args.out, "--out")
    model, images, labels = load_model(args)
    engine = ENGINES[args.engine](model, images, labels, outcome=spec, device=device)
    figure = None
    if args.precision is not None:
        done, figure = precise_rows(args, model, images, engine, out)
    else:
        rows = fault_rows(args, model, images, out)
        done = campaign.run_campaign(engine, rows, out, progress=not args.json,
                                     workers=args.workers)
    summary = campaign.summarize_rows(done, spec, args.confidence)
    summary |= {"images": len(images), "golden_top1_accuracy": engine.golden_accuracy()}
    if figure is not None:
        summary["stratified"] = figure
    title = (f"{args.model} {TARGETS[args.target]} {args.fault} {_format(args)}: {len(done)} "
             f"faults x {len(images)} images ({device})")
    write_summary(summary, spec, out, title)
    o = summary["overall"]
    result = {"faults": len(done), "images": len(images), "outcome": spec.name,
              "device": str(device), "golden_top1_accuracy": summary["golden_top1_accuracy"],
              "classes": {c: o[c] for c in spec.classes},
              "wall_s": round(time.perf_counter() - t0, 3)}
    if figure is not None:
        result["stratified"] = figure
    if args.json:
        print_json(result)
    else:
        from dse.units import estimate

        h = o[spec.headline]
        title += "\n" + golden_line(summary["golden_top1_accuracy"], len(images))
        rest = ", ".join(f"{c} {o[c]['count']}" for c in spec.classes)
        if figure is not None:
            text = (f"{title}\n{_figure_line(figure)}\n(the per-layer / per-bit tables count "
                    "the drawn faults; the list over-samples the strata that fail, so only the "
                    f"line above is a population rate)\ncounts of fault x image pairs: {rest}\n"
                    f"files in {out}")
        else:
            text = (f"{title}\n{spec.headline} per (fault, image) pair "
                    f"{estimate(h['rate'], *h['ci'])} at {100 * args.confidence:g}% (fault as "
                    f"sampling unit)\ncounts of fault x image pairs: {rest}\nfiles in {out}")
        print("\n".join(textwrap.fill(line, 100, subsequent_indent="  ",
                                       break_on_hyphens=False) for line in text.splitlines()))
    return 0
