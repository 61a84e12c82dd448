"""``dse profile``: a PyTorch model -> its unique MAC layers as Timeloop problem YAMLs.

Prints a per-layer table (name, op, dims, MACs of all occurrences, count) with the totals, the
non-MAC ops (pooling, norms, activations, adds...) and any op that could not be mapped, and writes
``<out>/<model>/<index>_<layer>.yaml`` (default ``layer_shapes/``). ``--json`` prints
``{"model", "input", "total_macs", "layers": [{"name", "op", "dims", "macs", "count"}], ...}``
(a list of those for several models).
``--problem FILE`` reads one problem YAML instead (and with ``--out`` re-writes it, e.g. with
``--keys underscore`` for newer Timeloop).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from dse.cli._common import parse_shape, print_json
from dse.errors import InputError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("profile", help="profile a PyTorch model into Timeloop problems",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", nargs="+", metavar="NAME",
                     help="zoo name(s) (resnet18, torchvision:vgg16, deeplabv3_undilated...) or "
                          "package.module:function; several names profile each in turn")
    src.add_argument("--problem", type=Path, metavar="PROBLEM.yaml",
                     help="read one Timeloop problem YAML instead of profiling a model")
    p.add_argument("--input", metavar="NxCxHxW", help="input shape (default: the model's own)")
    p.add_argument("--option", action="append", default=[], metavar="K=V",
                   help="keyword option of the model builder (repeatable), e.g. dilated=false")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where the YAMLs go (default layer_shapes/ for --model; none for --problem)")
    p.add_argument("--keys", choices=("hyphen", "underscore"), default="hyphen",
                   help="YAML keys: hyphen for Timeloop v3 (default), underscore for newer")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["dilated=false", "num_classes=10"]`` -> ``{"dilated": False, "num_classes": 10}``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected K=V, got {item!r}", field="--option")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InputError(f"cannot parse value of {item!r}", field="--option") from None
    return options


def safe_name(text: str) -> str:
    """A file-name-safe spelling (dots kept: they are the module path)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "layer"


def model_dir_name(model: str, options: dict[str, Any]) -> str:
    suffix = "".join(f"_{k}-{v}" for k, v in sorted(options.items()))
    return safe_name(model.removeprefix("torchvision:") + suffix)


def layer_rows(workload: Any) -> list[dict[str, Any]]:
    """The ``layers`` of the JSON schema; ``macs`` covers all ``count`` occurrences."""
    return [{"name": lay.name, "module_path": lay.module_path, "op": lay.op,
             "dims": dict(lay.problem.instance), "coefficients": dict(lay.problem.coefficients),
             "macs": lay.macs, "count": lay.count} for lay in workload.layers]


def write_layers(workload: Any, out_dir: Path, keys: str) -> list[Path]:
    """Write every layer's YAML into a fresh folder, then swap it in place of ``out_dir``.

    Nothing is written before the profile succeeded, and a model's old folder is only replaced
    once the new one is complete (no stale files from an earlier, different profile). A folder
    that cannot be written is bad input (``--out``), not a crash.
    """
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    try:
        return _write_staged(workload, staging, out_dir, keys)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"cannot write problem YAMLs ({err.strerror or err})", file=str(out_dir),
                         field="--out") from None


def _write_staged(workload: Any, staging: Path, out_dir: Path, keys: str) -> list[Path]:
    from dse.problems import write_problem

    width = max(2, len(str(len(workload.layers) - 1)))
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)  # also for a model without MAC layers: its folder is then empty
    paths = []
    for i, lay in enumerate(workload.layers):
        file = staging / f"{i:0{width}d}_{safe_name(lay.name)}.yaml"
        comment = (f"{workload.model} {lay.name} ({lay.op}, module {lay.module_path or '<root>'}),"
                   f" input {'x'.join(map(str, workload.input_shape))}\n"
                   f"occurs {lay.count}x; MACs each = {lay.problem.macs}")
        write_problem(lay.problem, file, keys=keys, comment=comment)
        paths.append(out_dir / file.name)
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old)
    else:
        staging.rename(out_dir)
    return paths


def dims_text(problem: Any) -> str:
    """Non-unit dims (``C64 M64 R3 S3 P56 Q56``) plus non-unit strides / dilations."""
    dims = " ".join(f"{d}{problem.instance[d]}" for d in problem.dimensions
                    if problem.instance[d] != 1)
    coeffs = " ".join(f"{k}={v}" for k, v in problem.coefficients.items() if v != 1)
    return f"{dims} {coeffs}".strip() or "-"


def table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def workload_text(workload: Any) -> str:
    rows = [[str(i), lay.name, lay.op, dims_text(lay.problem), f"{lay.macs:,}", str(lay.count)]
            for i, lay in enumerate(workload.layers)]
    parts = [f"model {workload.model}, input {'x'.join(map(str, workload.input_shape))}", "",
             table(rows, ["#", "layer", "op", "dims", "MACs", "count"], {0, 4, 5}), "",
             f"total: {workload.total_macs:,} MACs in {sum(x.count for x in workload.layers)} "
             f"layer calls, {len(workload.layers)} unique layers"]
    if workload.non_mac:
        ops = [[op.op, str(op.count), f"{op.elements:,}", op.name] for op in workload.non_mac]
        parts += ["", "non-MAC ops:", table(ops, ["op", "count", "elements", "first at"], {1, 2})]
    parts += ["", "unmapped ops: " + (", ".join(workload.unmapped) or "none")]
    parts += [f"note: {n}" for n in workload.notes]
    return "\n".join(parts)


def _run_problem(args: argparse.Namespace) -> int:
    from dse.problems import read_problem, write_problem

    problem = read_problem(args.problem)
    written = None
    if args.out is not None:
        written = write_problem(problem, args.out / args.problem.name, keys=args.keys)
    if args.json:
        print_json({"problem": str(args.problem), "dims": dict(problem.instance),
                    "coefficients": dict(problem.coefficients), "macs": problem.macs,
                    "written": str(written) if written else None})
        return 0
    print(f"{args.problem}: {problem.shape_name}, {dims_text(problem)}, {problem.macs:,} MACs")
    if written:
        print(f"wrote {written}")
    return 0


def profile_one(name: str, args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    """Profile one model, write its YAMLs, print its table; return its JSON document."""
    from dse.problems import profile, zoo

    shape = parse_shape(args.input) if args.input is not None else None
    model = zoo.get_model(name, **options)
    shape = shape or tuple(zoo.default_input(name))
    workload = profile(model, shape, name=name)
    out_root = args.out if args.out is not None else Path("layer_shapes")
    out_dir = out_root / model_dir_name(name, options)
    paths = write_layers(workload, out_dir, args.keys)
    if not args.json:
        print(workload_text(workload))
        print(f"\nwrote {len(paths)} problem YAMLs to {out_dir}/\n")
    return {"model": name, "input": list(shape), "total_macs": workload.total_macs,
            "layers": layer_rows(workload),
            "non_mac": [{"op": o.op, "count": o.count, "elements": o.elements,
                         "first_at": o.name} for o in workload.non_mac],
            "unmapped": list(workload.unmapped), "out": str(out_dir),
            "files": [str(p) for p in paths]}


def run(args: argparse.Namespace) -> int:
    if args.problem is not None:
        return _run_problem(args)
    import torch

    torch.set_num_threads(1)
    options = parse_options(args.option)
    if args.input is not None:
        parse_shape(args.input)  # a malformed shape fails before any model is built
    docs = [profile_one(name, args, options) for name in args.model]
    if args.json:
        print_json(docs[0] if len(docs) == 1 else docs)
    return 0
