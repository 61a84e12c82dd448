"""``dse resilience``: SDC rate and FIT of one layer's mapping on one design.

    python -m dse resilience --arch eyeriss_like --model digits_cnn --layer features.2 \
        [--mapping MAP.yaml | --map-objective edp] [--margin 0.05] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dse import validate as check
from dse.cli._common import deprecated_alias, golden_line, print_json
from dse.errors import InputError
from dse.mapper.search import NEEDS_METRIC, OBJECTIVES
from dse.units import half_width

MAP_OBJECTIVES = [name for name in OBJECTIVES if name not in NEEDS_METRIC]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resilience",
        help="SDC rate of one layer's mapping: faults placed by the mapping's buffers",
        description="Draw faults in every buffer of the design by exposure, follow each through "
        "the mapping to the outputs it corrupts, and run the rest of the network.",
    )
    p.add_argument("--arch", required=True, help="design name (designs/) or arch YAML path")
    p.add_argument("--model", default="digits_cnn", help="trained model (default: digits_cnn)")
    p.add_argument("--layer", required=True, help="layer name or module path (e.g. features.2)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mapping", type=Path, help="Timeloop map.yaml for this layer and design")
    src.add_argument("--map-objective", default="edp", choices=MAP_OBJECTIVES,
                     help="search a mapping with this objective when --mapping is not given")
    p.add_argument("--map-evals", type=check.positive_int, default=3000,
                   help="mapper evaluations (one worker, so the same seed finds the same mapping)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--margin", type=check.fraction_arg, default=0.05,
                      help="error margin per site class (Leveugle sample size; default 0.05)")
    size.add_argument("--faults-per-class", dest="n_faults", type=check.positive_int, metavar="N",
                      help="this many faults in EACH site class (level x dataspace) instead of "
                           "--margin (dse inject's --n-faults is a total over the network)")
    deprecated_alias(size, "--n-faults", "--faults-per-class", dest="n_faults",
                     type=check.positive_int)
    size.add_argument("--precision", type=check.fraction_arg,
                      help="adaptive stratified sampling (site class x bit group) until the "
                           "interval's half-width <= this x the estimate (docs/resilience.md)")
    p.add_argument("--floor", type=check.non_negative_float, default=1e-4,
                   help="with --precision: also stop when the upper bound on P(SDC | fault) is "
                        "under this (default 1e-4)")
    p.add_argument("--max-faults", type=check.positive_int, default=20000,
                   help="with --precision: at most this many faults; an unreached precision is "
                        "reported as reached so far (default 20000)")
    p.add_argument("--confidence", type=check.fraction_arg, default=0.95)
    p.add_argument("--images", type=check.positive_int, default=256, help="test images to draw faults over")
    p.add_argument("--fit-per-mbit", type=check.positive_float, default=None,
                   help="raw FIT per Mbit of storage (default 1000)")
    p.add_argument("--include-dram", action="store_true", help="also place faults in DRAM")
    p.add_argument("--format", dest="fmt", default="int",
                   help="how words are stored: 'int' (default) = signed fixed point at EACH "
                   "level's own word width from the design (e.g. 16-bit psums, 8-bit weights); "
                   "or ONE format in every buffer: fp32, fp16, bf16 or intN (N = 2..32, e.g. "
                   "int8; scale = max|x| / (2^(N-1) - 1) per dataspace)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (where the network runs)")
    p.add_argument("--stuck-pe", choices=["stuck0", "stuck1"],
                   help="also measure a permanent fault: one product-register bit of a random PE "
                   "stuck at 0 / 1 (its footprint: every output that PE computes)")
    p.add_argument("--seed", type=check.non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from dse.arch import load_arch
    from dse.devices import resolve_device
    from dse.resilience.formats import number_format
    from dse.resilience.mapped import (
        DEFAULT_FIT_PER_MBIT,
        mapping_resilience,
        stuck_pe_resilience,
    )

    torch.set_num_threads(1)
    if args.images < 1:
        raise InputError(f"must be >= 1, got {args.images}", field="--images")
    if args.n_faults is not None and args.n_faults < 1:
        raise InputError(f"must be >= 1, got {args.n_faults}", field="--faults-per-class")
    if not 0 < args.margin < 1:
        raise InputError(f"must be in (0, 1), got {args.margin}", field="--margin")
    device = resolve_device(args.device)
    if args.fmt != "int":
        try:
            number_format(args.fmt)
        except InputError as exc:
            raise InputError(f"unknown number format {args.fmt!r}; expected int (each level's "
                             "word width), fp32, fp16, bf16 or intN (N = 2..32, e.g. int8)",
                             field="--format") from exc
    arch = load_arch(args.arch)
    model, images, labels = _model_and_data(args.model, args.images, progress=not args.json)
    golden = _golden(model, images, labels)
    layer_path, problem = _layer(model, args.model, args.layer, images)
    mapping = _mapping(args, problem, arch)
    if args.precision is not None:
        return _adaptive(args, arch, problem, mapping, model, layer_path, images, labels, device,
                         golden)
    result = mapping_resilience(
        problem, arch, mapping, model, layer_path, images, labels,
        n_faults=args.n_faults, margin=args.margin, confidence=args.confidence, seed=args.seed,
        fit_per_mbit=args.fit_per_mbit if args.fit_per_mbit is not None else DEFAULT_FIT_PER_MBIT,
        include_backing=args.include_dram, fmt=args.fmt, device=device, progress=not args.json,
    )
    out = result.to_dict() | golden
    if args.stuck_pe:
        stuck = stuck_pe_resilience(
            problem, arch, mapping, model, layer_path, images, labels,
            n_faults=args.n_faults or result.per_site[0].n, kind=args.stuck_pe,
            confidence=args.confidence, seed=args.seed, fmt=args.fmt, device=device,
        )
        out["stuck_pe"] = {"kind": args.stuck_pe, "sdc1_rate": stuck.sdc1_rate,
                           "sdc1_ci": list(stuck.sdc1_ci), "mean_footprint": stuck.mean_footprint,
                           "n": stuck.n}
    if args.json:
        print_json(out)
        return 0
    fit_per_mbit = args.fit_per_mbit if args.fit_per_mbit is not None else DEFAULT_FIT_PER_MBIT
    print(resilience_text(result, out.get("stuck_pe"), title=f"{arch.name} / {args.model}:"
                          f"{layer_path}", fmt=args.fmt, confidence=args.confidence,
                          fit_per_mbit=fit_per_mbit, golden=golden))
    return 0


def _adaptive(args: argparse.Namespace, arch, problem, mapping, model, layer_path: str, images,
              labels, device, golden: dict) -> int:
    """``--precision``: the layer's adaptive stratified campaign, with per-site and per-bit
    breakdowns; an unreached precision is said so."""
    from dse.resilience.mapped.adaptive import LayerCampaign, adaptive_resilience
    from dse.resilience.mapped.campaign import DEFAULT_FIT_PER_MBIT
    from dse.resilience.strata import Plan

    campaign = LayerCampaign(problem, arch, mapping, model, layer_path, images, labels,
                             seed=args.seed, fmt=args.fmt, include_backing=args.include_dram,
                             device=device)
    result = adaptive_resilience(
        campaign, Plan(args.precision, args.floor, args.max_faults, confidence=args.confidence),
        fit_per_mbit=args.fit_per_mbit or DEFAULT_FIT_PER_MBIT)
    out = result.to_dict() | golden
    if args.json:
        print_json(out)
        return 0
    e = result.sdc
    state = ("resolved" if result.resolved else
             f"NOT resolved within --max-faults {args.max_faults}: reached "
             + (half_width(e.relative) if e.value > 0 else f"upper bound {e.hi:.2g}"))
    print(adaptive_text(result, out, title=f"{arch.name} / {args.model}:{layer_path}",
                        state=state, confidence=args.confidence, fmt=args.fmt,
                        fit_per_mbit=args.fit_per_mbit or DEFAULT_FIT_PER_MBIT, golden=golden))
    return 0


def _model_and_data(name: str, count: int, progress: bool):
    from dse.problems.trained import load_model

    return load_model(name, limit=count, progress=progress)


def _golden(model, images, labels) -> dict:
    """The fault-free top-1 accuracy on the campaign's images (the baseline of every SDC)."""
    from dse.problems.train import evaluate

    return {"images": len(images),
            "golden_top1_accuracy": evaluate(model, images, labels).accuracy}


def _layer(model, model_name: str, layer: str, images):
    """The module path and Timeloop problem of the named layer (by layer name or module path)."""
    from dse.problems import profile

    workload = profile(model, tuple(images[:1].shape), name=model_name)
    for lay in workload.layers:
        if layer in (lay.name, lay.module_path):
            return lay.module_path, lay.problem
    names = ", ".join(lay.module_path for lay in workload.layers)
    raise InputError(f"no MAC layer {layer!r} in {model_name} (identical layers are folded into "
                     f"their first occurrence; layers: {names})", field="--layer")


def _mapping(args: argparse.Namespace, problem, arch):
    if args.mapping is not None:
        from dse.model import read_mapping

        if not args.mapping.is_file():
            raise InputError("no such file", file=str(args.mapping), field="--mapping")
        return read_mapping(args.mapping, arch, problem)
    from dse.mapper import search

    if args.map_evals < 1:
        raise InputError(f"must be >= 1, got {args.map_evals}", field="--map-evals")
    return search(problem, arch, objective=args.map_objective, time_limit=None, seed=args.seed,
                  workers=1, max_evals=args.map_evals).best


def adaptive_text(result, out: dict, *, title: str, state: str, confidence: float, fmt: str,
                  fit_per_mbit: float, golden: dict) -> str:
    """``--precision``'s result: the layer's figures with definition, unit and [lo, hi], then
    per site class and per bit group (the strata's own intervals), wrapped at 100 columns."""
    import textwrap

    from dse.report.tables import text_table
    from dse.units import estimate, num

    e, fit = result.sdc, result.fit
    head = (f"{title}: {e.n} faults in {fmt} words, {num(result.exposed_mbit)} Mbit exposed; "
            f"intervals at {100 * confidence:g}%; {state}")
    lines = [*textwrap.wrap(head, 100, subsequent_indent="  "),
             golden_line(golden["golden_top1_accuracy"], golden["images"]),
             f"SDC per fault (top-1 changes | one fault in the layer's buffers): "
             f"{estimate(e.value, e.lo, e.hi)}",
             *textwrap.wrap(f"SDC FIT: {estimate(fit.value, fit.lo, fit.hi)} failures per 1e9 h "
                            f"(raw {num(fit_per_mbit)} FIT/Mbit x {num(result.exposed_mbit)} "
                            f"Mbit exposed x SDC per fault); DUE (INF/NaN) per fault "
                            f"{num(result.due.value)}", 100, subsequent_indent="  ")]
    for name, key in (("site class", "per_site"), ("bit group", "per_bit")):
        lines += ["", text_table([{name: k, "SDC per fault [CI]": estimate(v["value"], v["lo"],
                                                                          v["hi"])}
                                  for k, v in out[key].items()])]
    return "\n".join(lines)


def resilience_text(result, stuck: dict | None, *, title: str, fmt: str, confidence: float,
                    fit_per_mbit: float, golden: dict | None = None) -> str:
    """The human-readable result: every figure with its definition, unit and [lo, hi] interval
    (glossary: SDC per fault, SDC FIT, raw FIT/Mbit); numbers never rounded to zero."""
    from dse.report.tables import text_table
    from dse.units import estimate, num

    lines = [f"{title}: {result.n_faults} faults in {fmt} words, "
             f"{num(result.exposed_mbit * 1e6)} exposed bits; intervals at {100 * confidence:g}%",
             *([golden_line(golden["golden_top1_accuracy"], golden["images"])] if golden else []),
             f"SDC per fault (top-1 changes | one fault in the layer's buffers): "
             f"{estimate(result.sdc1_rate, *result.sdc1_ci)}",
             f"SDC FIT: {num(result.fit)} failures per 1e9 h (raw {num(fit_per_mbit)} FIT/Mbit x "
             f"{num(result.exposed_mbit)} Mbit exposed x SDC per fault)", ""]
    lines.append(text_table([{"level": s.level, "dataspace": s.dataspace,
                              "exposure share": s.exposure_share,
                              "SDC per fault [CI]": estimate(s.sdc1_rate, *s.sdc1_ci),
                              "outputs per fault": s.mean_footprint}
                             for s in result.per_site]))
    if stuck:
        lines += ["", f"stuck PE ({stuck['kind']}): SDC per fault "
                      f"{estimate(stuck['sdc1_rate'], *stuck['sdc1_ci'])}, "
                      f"{num(stuck['mean_footprint'])} outputs per PE"]
    return "\n".join(lines)
