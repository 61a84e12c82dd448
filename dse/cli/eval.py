"""``dse eval``: clean inference of a trained model on a dataset's test split.

Prints the top-1 accuracy (fraction of test images whose highest score is the label) and saves
the clean outputs for later campaigns: ``<out>/outputs.pt`` (``outputs``: scores, images x
classes, float32; ``labels``; ``predicted``) and ``<out>/eval.json`` (accuracy, counts, model,
checkpoint, dataset). ``--json`` prints the same record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dse import validate as check
from dse.cli._common import add_model_data_args, print_json


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="accuracy of a trained model; saves clean outputs",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_data_args(p, checkpoint=True)
    p.add_argument("--limit", type=check.positive_int, help="the first N test images only")
    p.add_argument("--batch-size", type=check.positive_int, default=256)
    p.add_argument("--out", type=Path, default=Path("eval_out"), metavar="DIR",
                   help="where outputs.pt and eval.json go (default eval_out/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from dse.cli.profile import parse_options
    from dse.devices import resolve_device
    from dse.problems.train import evaluate
    from dse.problems.trained import load_model

    resolve_device(args.device)  # a typo fails before the model loads
    check.output_dir(args.out, "--out")
    loaded = load_model(args.model, checkpoint=args.checkpoint, dataset=args.dataset,
                        data_root=args.data, limit=args.limit, size=args.size,
                        options=parse_options(args.option), progress=not args.json)
    result = evaluate(loaded.model, loaded.images, loaded.labels, device=args.device,
                      batch_size=args.batch_size, progress=not args.json)
    correct = int((result.outputs.argmax(1) == result.labels).sum())
    record = {"model": args.model, "checkpoint": args.checkpoint,
              "dataset": args.dataset or _default_dataset(args.model), "images": len(result.labels),
              "correct": correct, "accuracy": result.accuracy,
              "outputs_file": str(args.out / "outputs.pt")}
    with check.atomic_open(args.out / "outputs.pt", "wb", field="--out") as fh:
        torch.save({"outputs": result.outputs, "labels": result.labels,
                    "predicted": result.outputs.argmax(1), **record}, fh)
    check.write_text(args.out / "eval.json", json.dumps(record, indent=2) + "\n", field="--out")
    if args.json:
        print_json(record)
    else:
        print(f"{args.model}: test top-1 accuracy {100 * result.accuracy:.2f} % "
              f"({correct} of {len(result.labels)} images); clean outputs in {args.out}")
    return 0


def _default_dataset(model: str) -> str:
    from dse.problems import zoo

    return zoo.default_dataset(model) or "(the checkpoint's)"
