"""``dse inject``: a statistical fault-injection campaign on a model's weights or activations.

Writes ``faultlist.csv``, ``results.csv`` (resumable: run the same command again after a kill),
``summary.json`` / ``summary.txt`` (per layer, per bit, overall) and ``sdc1.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dse import validate as check
from dse.cli._common import print_json
from dse.errors import InputError
from dse.resilience import campaign, data, faultlist
from dse.resilience.engine import FastEngine, NaiveEngine
from dse.resilience.formats import FAULT_KINDS, FORMATS, word_bits


def register(subparsers) -> None:
    p = subparsers.add_parser("inject", help="statistical fault injection into a model",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="digits_cnn",
                   help="digits_cnn, digits_resnet20 (trained on first use), resnetN, zoo name")
    p.add_argument("--checkpoint", help="weights for --model (a torch state dict)")
    p.add_argument("--dataset", choices=data.DATASETS, help="default: digits for digits models")
    p.add_argument("--data", help="dataset root directory (nothing is downloaded)")
    p.add_argument("--num-classes", type=check.positive_int, default=10)
    p.add_argument("--target", choices=("weights", "activations"), default="weights")
    p.add_argument("--fault", choices=FAULT_KINDS, default="bitflip")
    p.add_argument("--format", choices=sorted(FORMATS), default="fp32")
    p.add_argument("--per-channel", action="store_true", help="int8: one scale per channel")
    p.add_argument("--bits", default="all", help="'all' or a list like 0,7,23-30")
    p.add_argument("--n-bits", type=check.positive_int, default=1, help="bits per fault (multi-bit faults)")
    p.add_argument("--margin", type=check.fraction_arg, default=0.01)
    p.add_argument("--confidence", type=check.fraction_arg, default=0.99)
    p.add_argument("--mode", choices=faultlist.MODES, default="network",
                   help="sample size per network, per layer or per layer and bit (DATE 2023)")
    p.add_argument("--n-faults", type=check.positive_int, help="use this many faults instead of Leveugle's n")
    p.add_argument("--faults", help="replay this fault-list CSV instead of generating one")
    p.add_argument("--engine", choices=("fast", "naive"), default="fast")
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
    width = word_bits(fmt)
    bad = [b for b in out if not 0 <= b < width]
    if bad:
        raise InputError(f"bit {bad[0]} is outside the {width}-bit {fmt} word", field="--bits")
    return sorted(set(out))


def load_model(args) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Model and images from the flags: a trained default, or --checkpoint with --dataset."""
    if args.images < 1:
        raise InputError("--images must be >= 1", field="--images")
    if args.workers < 1:
        raise InputError("--workers must be >= 1", field="--workers")
    if args.checkpoint is None:
        model, x, y = data.trained_model(args.model)
        if args.dataset not in (None, "digits"):
            x, y = data.load_dataset(args.dataset, args.data, limit=args.images)
        return model, x[: args.images], y[: args.images]
    kind = args.dataset or ("digits" if args.model in data.DIGITS_MODELS else None)
    if kind is None:
        raise InputError("--checkpoint needs --dataset (and --data)", field="--dataset")
    x, y = data.load_dataset(kind, args.data, limit=args.images)
    model = data.build_model(args.model, args.num_classes, in_channels=x.shape[1])
    return data.load_checkpoint(model, args.checkpoint), x, y


def _config(args) -> dict:
    keys = ("model", "checkpoint", "target", "fault", "format", "per_channel", "bits", "n_bits",
            "margin", "confidence", "mode", "n_faults", "seed", "faults")
    return {k: getattr(args, k) for k in keys}


def fault_rows(args, model, images, out: Path) -> list[faultlist.Row]:
    """The campaign's rows: a replayed list, the list of an interrupted run in ``out``, or a new
    seeded list (saved before anything runs)."""
    kw = {"target": args.target, "kind": args.fault, "fmt": args.format}
    layers = faultlist.fault_layers(model)
    shapes = faultlist.tensor_shapes(model, layers, args.target, images)
    listing, cfg_path = out / "faultlist.csv", out / "campaign.json"
    if args.faults:
        rows = faultlist.load(args.faults, **kw)
        faultlist.check_against(rows, shapes, args.faults)
    elif listing.exists():
        old = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        if old != _config(args):
            raise InputError("this directory holds a different campaign; use another --out",
                             file=cfg_path, field="config")
        rows = faultlist.load(listing, **kw)
        faultlist.check_against(rows, shapes, listing)
        return _per_channel(rows, args)
    else:
        faults = faultlist.generate(
            shapes, bits=parse_bits(args.bits, args.format), n_bits=args.n_bits,
            margin=args.margin, confidence=args.confidence, mode=args.mode,
            n_faults=args.n_faults, seed=args.seed, **{"target": args.target,
                                                       "kind": args.fault, "fmt": args.format})
        rows = faultlist.numbered(faults)
    out.mkdir(parents=True, exist_ok=True)
    faultlist.save(rows, listing)
    check.write_text(cfg_path, json.dumps(_config(args), indent=2), field="--out")
    return _per_channel(rows, args)


def _per_channel(rows: list[faultlist.Row], args) -> list[faultlist.Row]:
    if not args.per_channel:
        return rows
    from dataclasses import replace

    return [replace(r, fault=replace(r.fault, per_channel=True)) for r in rows]


def write_summary(summary: dict, out: Path, title: str) -> None:
    check.write_text(out / "summary.json", json.dumps(summary, indent=2), field="--out")
    lines = [title, ""]
    for key in ("per_layer", "per_bit"):
        lines.append(f"{key.replace('_', ' ')}: faults injections masked non_critical critical "
                     "inf_nan sdc1_rate [ci]")
        for name, s in summary[key].items():
            lines.append(f"  {name:24s} {s['faults']:6d} {s['injections']:8d} {s['masked']:8d} "
                         f"{s['non_critical']:8d} {s['critical']:8d} {s['inf_nan']:6d} "
                         f"{s['sdc1_rate']:.4f} [{s['sdc1_ci'][0]:.4f}, {s['sdc1_ci'][1]:.4f}]")
        lines.append("")
    check.write_text(out / "summary.txt", "\n".join(lines), field="--out")
    campaign.plot_summary(summary, out / "sdc1.png", title)


def run(args) -> int:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    out = check.output_dir(args.out, "--out")
    model, images, labels = load_model(args)
    rows = fault_rows(args, model, images, out)
    engine_cls = FastEngine if args.engine == "fast" else NaiveEngine
    engine = engine_cls(model, images, labels)
    done = campaign.run_campaign(engine, rows, out, progress=True, workers=args.workers)
    summary = campaign.summarize_rows(done, campaign.read_extras(out), args.confidence)
    title = (f"{args.model} {args.target} {args.fault} {args.format}: {len(done)} faults x "
             f"{len(images)} images")
    write_summary(summary, out, title)
    o = summary["overall"]
    result = {"faults": len(done), "images": len(images), "masked": o["masked"],
              "non_critical": o["non_critical"], "critical": o["critical"],
              "sdc1_rate": o["sdc1_rate"], "sdc1_ci": o["sdc1_ci"],
              "wall_s": round(time.perf_counter() - t0, 3)}
    if args.json:
        print_json(result)
    else:
        print(f"{title}\nSDC-1 {o['sdc1_rate']:.4f} [{o['sdc1_ci'][0]:.4f}, "
              f"{o['sdc1_ci'][1]:.4f}] at {args.confidence:.0%}; masked {o['masked']}, "
              f"non-critical {o['non_critical']}, critical {o['critical']}; files in {out}")
    return 0
