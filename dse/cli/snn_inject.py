"""``dse snn-inject``: statistical fault injection into a spiking network (snntorch).

Targets: weights and biases of Conv / Linear layers, beta and threshold of every Leaky / Synaptic
layer, and their membrane potentials and spikes. Faults are permanent (every time step) unless
``--transient`` (one step: ``--step`` or a random one per fault). Writes ``faultlist.csv``,
``results.csv`` (resumable: run the same command again after a kill), ``table.csv`` /
``table.txt`` (seed 003's table per target, with intervals) and ``sdc1.png`` into ``--out``.
Class scores are output spike counts; rates are shares of (fault, image) pairs, intervals with the
fault as the sampling unit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dse.cli._common import print_json
from dse.errors import InputError
from dse.resilience.formats import word_bits
from dse.resilience.snn.network import FAULT_KINDS

TARGET_CHOICES = ("weights", "biases", "beta", "threshold", "membrane", "spikes")


def register(subparsers) -> None:
    p = subparsers.add_parser("snn-inject", help="fault injection into a spiking network",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="csnn",
                   help="csnn or fcsnn (trained on first use), or package.module:builder")
    p.add_argument("--checkpoint", help="weights for --model (a torch state dict)")
    p.add_argument("--data", help=".pt dict with 'spikes' (steps, images, ...) or 'images', and "
                                  "'labels' (default: rate-coded digits test set)")
    p.add_argument("--init-hidden", action="store_true",
                   help="zoo models: keep neuron state inside the layers (snntorch init_hidden)")
    p.add_argument("--steps", type=int, default=10, help="time steps of the rate coding")
    p.add_argument("--images", type=int, default=100, help="images per injection")
    p.add_argument("--targets", nargs="+", choices=TARGET_CHOICES, default=list(TARGET_CHOICES),
                   help="what faults hit (default: all)")
    p.add_argument("--fault", choices=FAULT_KINDS, default="bitflip",
                   help="bit flip or stuck-at 0 / 1 of one bit of the stored word")
    p.add_argument("--format", choices=("fp32", "fp16", "bf16"), default="fp32",
                   help="number format the values are stored in (the bits are that word's)")
    p.add_argument("--transient", action="store_true",
                   help="fault at one time step (--step, else a random step per fault)")
    p.add_argument("--step", type=int, help="the transient fault's time step")
    p.add_argument("--mode", choices=("pooled", "site", "bit"), default="pooled",
                   help="Leveugle's sample size over everything (as seed 003), per layer.target, "
                        "or per layer.target and bit (DATE 2023)")
    p.add_argument("--margin", type=float, default=0.01, help="Leveugle's error margin")
    p.add_argument("--confidence", type=float, default=0.99,
                   help="Leveugle's confidence, and that of every interval")
    p.add_argument("--n-faults", type=int, help="this many faults instead of Leveugle's n")
    p.add_argument("--precision", type=float,
                   help="adaptive instead of a fixed list: add faults (stratified per layer.target, "
                        "or per bit with --mode bit) until the network's SDC-1 interval half-width "
                        "is at most this fraction of the rate")
    p.add_argument("--floor", type=float, default=1e-4,
                   help="with --precision: also stop when the SDC-1 upper bound is below this")
    p.add_argument("--max-faults", type=int, default=20000, help="with --precision: at most")
    p.add_argument("--faults", help="replay this fault-list CSV instead of drawing one")
    p.add_argument("--engine", choices=("fast", "naive"), default="fast")
    p.add_argument("--workers", type=int, default=1, help="processes (one torch thread each)")
    p.add_argument("--out", default="snn_inject_out", help="campaign directory")
    p.add_argument("--seed", type=int, default=0, help="fault list draw (same seed, same list)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=run)


def _check_flags(args) -> None:
    for flag, value, low in (("--steps", args.steps, 1), ("--images", args.images, 1),
                             ("--workers", args.workers, 1)):
        if value < low:
            raise InputError(f"must be >= {low}, got {value}", field=flag)
    if args.step is not None and not 0 <= args.step < args.steps:
        raise InputError(f"step {args.step} is past the {args.steps} time steps "
                         f"(0..{args.steps - 1})", field="--step")
    if args.n_faults is not None and args.n_faults < 1:
        raise InputError(f"must be >= 1, got {args.n_faults}", field="--n-faults")
    word_bits(args.format)
    if args.precision is not None:
        from dse.resilience.strata import check_settings

        check_settings(args.precision, args.floor, args.max_faults)
        if args.faults or args.n_faults:
            raise InputError("--precision draws its own faults; drop --faults / --n-faults",
                             field="--precision")


def _load(args):
    try:
        import snntorch  # noqa: F401
    except ImportError:
        raise InputError("snntorch is not installed; pip install -e '.[snn]'",
                         field="snntorch") from None
    from dse.problems.snn_models import ZOO
    from dse.resilience.snn import data

    if args.model in ZOO and args.checkpoint is None and args.data is None:
        model, x, y = data.trained_snn(args.model, args.steps, args.init_hidden)
    else:
        model, x, y = data.user_snn(args.model, args.checkpoint, args.data, args.steps)
    return model, x[:, :args.images], y[:args.images]


def _config(args) -> dict:
    keys = ("model", "checkpoint", "data", "init_hidden", "steps", "images", "targets", "fault",
            "format", "transient", "step", "mode", "margin", "confidence", "n_faults", "faults",
            "precision", "floor", "max_faults", "seed")
    return {k: getattr(args, k) for k in keys}


def _faults(args, engine, model, out: Path) -> list:
    from dse.resilience.snn import faultlist
    from dse.resilience.snn.engines import check_chain_faults
    from dse.resilience.snn.network import TARGET_NAMES, check_fault, target_shapes

    g = engine.golden
    targets = tuple(TARGET_NAMES[t] for t in args.targets)
    every = target_shapes(model, g.neuron_shapes)
    listing, cfg = out / "faultlist.csv", out / "campaign.json"
    kw = {"kind": args.fault, "fmt": args.format}
    if listing.exists():
        if not cfg.exists() or json.loads(cfg.read_text()) != _config(args):
            raise InputError("this directory holds a different campaign; use another --out",
                             file=cfg, field="config")
        faults = faultlist.load(listing, **kw)
    elif args.faults:
        faults = faultlist.load(args.faults, **kw)
    else:
        sites = target_shapes(model, g.neuron_shapes, targets)
        if not sites:
            raise InputError(f"the model has no {', '.join(args.targets)} to inject into",
                             field="--targets")
        faults = faultlist.generate(sites, mode=args.mode, margin=args.margin,
                                    confidence=args.confidence, transient=args.transient
                                    or args.step is not None, steps=g.steps, step=args.step,
                                    n_faults=args.n_faults, seed=args.seed, **kw)
    source = args.faults if args.faults and not listing.exists() else listing
    for i, f in enumerate(faults):
        try:
            check_fault(f, every, g.steps)
        except InputError as exc:
            raise InputError(f"Injection {i}: {exc.reason}", file=source, field=exc.field) from None
    check_chain_faults(engine, faults)
    out.mkdir(parents=True, exist_ok=True)
    if not listing.exists():
        faultlist.save(faults, listing)
        cfg.write_text(json.dumps(_config(args), indent=2))
    return faults


def _model_spec(args) -> tuple[str, dict]:
    """How a worker process rebuilds the model (its weights come as a state dict)."""
    from dse.problems.snn_models import ZOO

    return args.model, ({"init_hidden": True} if args.init_hidden and args.model in ZOO else {})


def _adaptive(args, engine, model, labels, out: Path):
    from dse.resilience.snn import adaptive
    from dse.resilience.snn.network import TARGET_NAMES, target_shapes
    from dse.resilience.strata import Plan

    sites = target_shapes(model, engine.golden.neuron_shapes,
                          tuple(TARGET_NAMES[t] for t in args.targets))
    if not sites:
        raise InputError(f"the model has no {', '.join(args.targets)} to inject into",
                         field="--targets")
    cfg = out / "campaign.json"
    if cfg.exists() and json.loads(cfg.read_text()) != _config(args):
        raise InputError("this directory holds a different campaign; use another --out",
                         file=cfg, field="config")
    out.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(_config(args), indent=2))
    plan = Plan(precision=args.precision, floor=args.floor, max_faults=args.max_faults,
                confidence=args.confidence)
    return adaptive.run(engine, sites, labels, out, plan, kind=args.fault, fmt=args.format,
                        mode=args.mode, transient=args.transient or args.step is not None,
                        steps=engine.golden.steps, step=args.step, seed=args.seed,
                        workers=args.workers, progress=not args.json,
                        model_spec=_model_spec(args))


def run(args) -> int:
    torch.set_num_threads(1)
    _check_flags(args)
    t0 = time.perf_counter()
    model, x, y = _load(args)
    from dse.resilience.snn import campaign
    from dse.resilience.snn.engines import FastSnnEngine, NaiveSnnEngine
    from dse.resilience.snn.network import check_spiking
    from dse.resilience.snn.outcomes import estimate, table
    from dse.units import estimate as fmt_estimate

    check_spiking(model)
    engine = (FastSnnEngine if args.engine == "fast" else NaiveSnnEngine)(model, x)
    out = Path(args.out)
    extra = {}
    if args.precision is None:
        faults = _faults(args, engine, model, out)
        counts = campaign.run(engine, faults, y, out, workers=args.workers,
                              progress=not args.json, model_spec=_model_spec(args))
    else:
        faults, counts, est = _adaptive(args, engine, model, y, out)
        extra = {"network_sdc1": [est.value, est.lo, est.hi], "network_faults": est.n}
    n = x.shape[1]
    acc = float((engine.golden.scores.argmax(1) == y).double().mean())
    tab = table(campaign.by_site(faults, counts), n, acc, args.confidence,
                campaign.beta_facts(model, faults))
    when = (f"transient at step {args.step}" if args.step is not None else
            "transient at a random step" if args.transient else "permanent")
    title = (f"{args.model}: {args.fault} {args.format}, {when}; {len(faults)} faults x {n} "
             f"images x {x.shape[0]} steps; intervals at {args.confidence:.0%}")
    text = campaign.write_table(tab, out, title)
    per_bit = {b: estimate(c[:, 1], n, args.confidence)
               for b, c in campaign.by_bit(faults, counts).items()}
    campaign.plot(tab, per_bit, out / "sdc1.png", title, args.confidence)
    wall = round(time.perf_counter() - t0, 3)
    if extra:
        v, lo, hi = extra["network_sdc1"]
        text += (f"\nnetwork SDC_1 (population-weighted over the strata, adaptive to "
                 f"--precision {args.precision}): {fmt_estimate(v, lo, hi)}")
    if args.json:
        print_json({"title": title, "faults": len(faults), "images": n, "steps": x.shape[0],
                    "wall_s": wall, "table": tab, "out": str(out), **extra})
    else:
        print(f"{text}\nwall time {wall:.1f} s; files in {out}")
    return 0
