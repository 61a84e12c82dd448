"""Training: a CIFAR ResNet-20 on Fashion-MNIST with ``dse.problems.train`` in a few minutes.

Trains through the real cached entry point (into a fresh temporary cache, so it really trains)
and reports the test top-1 accuracy on all 10,000 Fashion-MNIST test images and the wall time.
The same-process baseline: training throughput (images per second over the same batches) of
the default contiguous layout against channels-last, which the run uses.

Needs Debian's ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``) or
``--data DIR`` holding the idx files.

    python bench/train.py [--epochs 2] [--limit 60000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from dse.errors import InputError  # noqa: E402
from dse.problems.datasets import ImageSet, load_dataset  # noqa: E402
from dse.problems.train import Recipe, build_for, fit, train  # noqa: E402


def throughput(data: ImageSet, model_name: str, channels_last: bool, batches: int,
               threads: int) -> float:
    """Training images per second over the first ``batches`` batches of 64."""
    subset = ImageSet(data.name, "train", data.images[: 64 * batches],
                      data.labels[: 64 * batches], data.num_classes)
    torch.manual_seed(0)
    model, _ = build_for(model_name, subset)
    recipe = Recipe(epochs=1, channels_last=channels_last, threads=threads)
    fit(model, subset, recipe, torch.device("cpu"))  # warm-up: first calls pick kernels
    start = time.perf_counter()
    fit(model, subset, recipe, torch.device("cpu"))
    return len(subset.images) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cifar_resnet20")
    ap.add_argument("--data", help="folder of the Fashion-MNIST idx files")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, help="training images (default all 60,000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    try:
        data = load_dataset("fashion_mnist", args.data, split="train", limit=args.limit)
    except InputError as exc:
        print(f"skipped: {exc}")
        return 0
    plain = throughput(data, args.model, False, 8, args.threads)
    fast = throughput(data, args.model, True, 8, args.threads)
    recipe = Recipe(epochs=args.epochs, schedule="onecycle", channels_last=True,
                    threads=args.threads, limit=args.limit)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["DSE_CACHE"] = cache
        start = time.perf_counter()
        result = train(args.model, "fashion_mnist", data_root=args.data, recipe=recipe)
        wall = time.perf_counter() - start
    meta = result.meta
    line = (f"{args.model} on Fashion-MNIST: test top-1 {100 * meta['test_accuracy']:.2f} % "
            f"of {meta['test_images']} test images after {args.epochs} epochs on "
            f"{meta['train_images']} training images, {wall:.0f} s wall ({args.threads} threads)")
    print(line)
    print(f"training throughput: contiguous {plain:.0f} img/s, channels-last {fast:.0f} img/s "
          f"({fast / plain:.2f}x)")
    command = " ".join(["python", "bench/train.py", *sys.argv[1:]])
    if not args.no_write:
        write_section("train", f"""
## Training (bench/train.py)

{args.model} (random init, seed 0) trained with `dse.problems.train.train` on Fashion-MNIST
(Debian's `dataset-fashion-mnist`, 28x28 grey images, no augmentation): Adam, one-cycle
learning rate peaking at 3e-3, batch 64, channels-last, {args.threads} torch threads.

| figure | value |
|---|---:|
| test top-1 accuracy (10,000 test images) | {100 * meta['test_accuracy']:.2f} % |
| training images x epochs | {meta['train_images']} x {args.epochs} |
| wall time, training + test evaluation | {wall:.0f} s |
| training throughput, contiguous layout (baseline, same process) | {plain:.0f} images/s |
| training throughput, channels-last (used) | {fast:.0f} images/s ({fast / plain:.2f}x) |

The same with the command line: `python -m dse train --model {args.model} --dataset fashion_mnist
--epochs {args.epochs} --schedule onecycle --channels-last --threads {args.threads}`
(then `python -m dse eval --model {args.model} --checkpoint CKPT --dataset fashion_mnist`).

Command: `{command}`
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
