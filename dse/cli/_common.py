"""Small helpers shared by the subcommands (JSON output, input parsing)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dse import validate


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (numpy scalars and paths become plain values)."""
    json.dump(obj, sys.stdout, indent=2, default=_plain)
    sys.stdout.write("\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def golden_line(accuracy: float | None, images: int) -> str:
    """The fault-free baseline, printed before any failure figure (a reader weighs an SDC rate
    against it: SDC counts changed predictions, right or wrong)."""
    if accuracy is None:
        return f"golden (fault-free) top-1 accuracy: not known (no labels for the {images} images)"
    return (f"golden (fault-free) top-1 accuracy: {100 * accuracy:.1f}% of {images} images "
            f"({round(accuracy * images)} correct)")


def parse_shape(text: str, *, field: str = "--input") -> tuple[int, ...]:
    """Parse ``1x3x224x224`` (or ``1,3,224,224``) into a shape tuple."""
    return validate.shape(text, field)


class _Deprecated(argparse.Action):
    """An old flag spelling: does what the new one does, after a one-line warning on stderr."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, append: bool = False,
                 **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.append = new, append

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new}",
              file=sys.stderr)
        if self.append:
            values = [*(getattr(namespace, self.dest) or []), values]
        setattr(namespace, self.dest, values)


def deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, *, dest: str,
                     append: bool = False, **kwargs: Any) -> None:
    """Keep accepting ``old`` (hidden from ``--help``) as a warned alias of ``new``."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, append=append,
                        help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)


def add_model_data_args(p: Any, *, checkpoint: bool) -> None:
    """The model and dataset flags ``dse train`` and ``dse eval`` share (dse.problems' loader)."""
    p.add_argument("--model", required=True,
                   help="zoo name (see dse.problems.zoo: digits_cnn, cifar_resnet20, resnet50...)")
    if checkpoint:
        p.add_argument("--checkpoint", help="weights (dse train's file or a state dict); "
                                            "default: the digits models' own training")
    p.add_argument("--dataset", help="digits, fashion_mnist, cifar10, cifar100, gtsrb, "
                                     "imagefolder or a .pt/.npz file (default: the model's)")
    p.add_argument("--data", help="dataset root directory in its own layout (nothing is "
                                  "downloaded; fashion_mnist defaults to Debian's package)")
    p.add_argument("--size", type=validate.positive_int, help="resize images to SIZE x SIZE")
    p.add_argument("--option", action="append", default=[], metavar="K=V",
                   help="keyword option of the model builder (repeatable)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--json", action="store_true", help="print one JSON document")
