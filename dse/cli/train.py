"""``dse train``: train a zoo model on a dataset's train split, seeded and deterministic.

Defaults: Adam at a constant learning rate of 3e-3, batch 64, seed 0, one torch thread (the
digits models' recipe); ``--schedule onecycle --channels-last`` train larger networks faster.
The checkpoint is cached by content (model, options, the training data itself, the recipe, device
type, torch version) under ``$DSE_CACHE`` (default ``~/.cache/dse``) in ``trained/``: the same
command again loads it at once. ``--out`` also writes a copy there. Reports the accuracy on the
dataset's test split when it has one (top-1: the fraction of test images whose highest score is
the label). ``--json`` prints ``{"model", "dataset", "checkpoint", "cached", "seconds",
"test_accuracy", ...}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dse import validate as check
from dse.cli._common import add_model_data_args, print_json
from dse.errors import InputError
from dse.problems.train import SCHEDULES


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a zoo model (cached by content)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_data_args(p, checkpoint=False)
    p.add_argument("--epochs", type=check.positive_int,
                   help="default: the model's own (digits_cnn 15, digits_resnet20 8), else 10")
    p.add_argument("--batch-size", type=check.positive_int, default=64)
    p.add_argument("--lr", type=check.positive_float, default=3e-3,
                   help="Adam's learning rate (the peak with --schedule onecycle)")
    p.add_argument("--weight-decay", type=check.non_negative_float, default=0.0)
    p.add_argument("--schedule", choices=SCHEDULES, default="constant")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last convolutions (faster on CPU; other, equally valid weights)")
    p.add_argument("--seed", type=check.non_negative_int, default=0)
    p.add_argument("--limit", type=check.positive_int,
                   help="train on the first N training images only")
    p.add_argument("--threads", type=check.positive_int, default=1,
                   help="torch threads (part of the cache key: sums may differ with another count)")
    p.add_argument("--out", type=Path, metavar="CKPT", help="also write the checkpoint here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dse.cli.profile import parse_options
    from dse.problems.train import Recipe, train

    if args.out is not None:
        check.output_file(args.out, "--out")
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    weight_decay=args.weight_decay, schedule=args.schedule,
                    channels_last=args.channels_last, seed=args.seed, limit=args.limit,
                    threads=args.threads)
    result = train(args.model, args.dataset or _default_dataset(args.model), data_root=args.data,
                   size=args.size, options=parse_options(args.option), recipe=recipe,
                   device=args.device, progress=not args.json)
    checkpoint = result.checkpoint
    if args.out is not None:
        check.write_bytes(args.out, checkpoint.read_bytes(), field="--out")
        checkpoint = args.out
    meta = result.meta
    if args.json:
        print_json({"model": args.model, "dataset": meta["dataset"], "checkpoint": str(checkpoint),
                    "cached": result.cached, "seconds": round(result.seconds, 3),
                    "train_images": meta["train_images"], "epochs": meta["recipe"]["epochs"],
                    "final_loss": meta["final_loss"], "test_accuracy": meta.get("test_accuracy"),
                    "test_images": meta.get("test_images")})
        return 0
    how = "loaded from cache" if result.cached else "trained"
    print(f"{args.model} on {meta['dataset']}: {how} in {result.seconds:.1f} s "
          f"({meta['train_images']} images x {meta['recipe']['epochs']} epochs, "
          f"last-epoch mean loss {meta['final_loss']:.4f})")
    if "test_accuracy" in meta:
        print(f"test top-1 accuracy {100 * meta['test_accuracy']:.2f} % "
              f"({meta['test_images']} test images)")
    print(f"checkpoint: {checkpoint}")
    return 0


def _default_dataset(model: str) -> str:
    from dse.problems import zoo

    name = zoo.default_dataset(model)
    if name is None:
        raise InputError(f"{model} has no default dataset; pass --dataset", field="--dataset")
    return name
