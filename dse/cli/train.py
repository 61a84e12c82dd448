"""``dse train``: train a zoo model on a dataset's train split, seeded and deterministic.

The checkpoint is cached by content (model, options, the training data itself, the recipe,
device type, torch version) under ``$DSE_CACHE`` (default ``~/.cache/dse``) in ``trained/``: the
same command again loads it at once. ``--out`` also writes a copy there. Reports the accuracy on
the dataset's test split when it has one (top-1: fraction of test images whose highest score is the
label). ``--json`` prints ``{"model", "dataset", "checkpoint", "cached", "seconds",
"test_accuracy", ...}``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from dse.cli._common import add_model_data_args, print_json
from dse.errors import InputError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a zoo model (cached by content)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_data_args(p, checkpoint=False)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle schedule")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="train on the first N training images only")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (part of the cache key: sums may differ with another count)")
    p.add_argument("--out", type=Path, metavar="CKPT", help="also write the checkpoint here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dse.cli.profile import parse_options
    from dse.problems.train import Recipe, train

    if args.out is not None and args.out.is_dir():
        raise InputError("is a directory; give a file name", file=args.out, field="--out")
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    limit=args.limit, threads=args.threads)
    result = train(args.model, args.dataset or _default_dataset(args.model), data_root=args.data,
                   size=args.size, options=parse_options(args.option), recipe=recipe,
                   device=args.device, progress=not args.json)
    checkpoint = result.checkpoint
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        shutil.copyfile(checkpoint, tmp)
        tmp.replace(args.out)
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
