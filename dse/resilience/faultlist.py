"""Statistical fault lists: generate (seeded), save, load and check against a model.

The CSV has the columns of the public reliability benchmark fault lists::

    Injection, Layer, TensorIndex, Bit, n_injections, masked, non_critical, critical

``TensorIndex`` is a tuple like ``"(3, 0, 2, 1)"`` (weight coordinates, or one image's output
coordinates for activation faults); ``Bit`` is one bit position, or several joined by ``;`` for a
multi-bit fault. The four count columns are empty in a list that has not run yet. Which target,
fault kind and number format the list is for is campaign configuration, not part of the file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.resilience.faults import Fault, check_index
from dse.resilience.formats import check_bits, word_bits
from dse.resilience.stats import sample_size

COLUMNS = ("Injection", "Layer", "TensorIndex", "Bit", "n_injections", "masked", "non_critical",
           "critical")
MODES = ("network", "layer", "bit")


@dataclass(frozen=True)
class Row:
    """One fault-list row: the fault and, once run, its outcome counts over the images."""

    injection: int
    fault: Fault
    counts: tuple[int, int, int, int] | None = None  # n_injections, masked, non_critical, critical


def fault_layers(model: nn.Module) -> list[str]:
    """Layers faults go into: every Conv / Linear module, in definition order."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return [name for name, m in model.named_modules() if isinstance(m, kinds)]


def tensor_shapes(model: nn.Module, layers: Sequence[str], target: str,
                  sample: torch.Tensor | None = None) -> dict[str, tuple[int, ...]]:
    """Shape faults index per layer: the weight tensor, or one image's output (needs ``sample``
    images to run the model once)."""
    mods = dict(model.named_modules())
    if target == "weights":
        return {name: tuple(mods[name].weight.shape) for name in layers}
    shapes: dict[str, tuple[int, ...]] = {}

    def grab(name: str):
        def hook(_m, _i, out) -> None:
            shapes.setdefault(name, tuple(out.shape[1:]))
        return hook

    hooks = [mods[name].register_forward_hook(grab(name)) for name in layers]
    try:
        with torch.no_grad():
            model(sample[:2] if len(sample) > 1 else sample.repeat(2, *[1] * (sample.dim() - 1)))
    finally:
        for h in hooks:
            h.remove()
    return shapes


def plan(shapes: dict[str, tuple[int, ...]], bits: Sequence[int], margin: float,
         confidence: float, mode: str = "network") -> dict[tuple[str, int | None], int]:
    """Number of faults per stratum: (None, None) for network-wise, (layer, None) layer-wise,
    (layer, bit) bit-wise (Ruospo et al., DATE 2023), each by Leveugle's formula."""
    if mode not in MODES:
        raise InputError(f"unknown sampling mode {mode!r}; expected one of {list(MODES)}",
                         field="mode")
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    if mode == "network":
        return {(None, None): sample_size(sum(sizes.values()) * len(bits), margin, confidence)}
    if mode == "layer":
        return {(k, None): sample_size(n * len(bits), margin, confidence) for k, n in sizes.items()}
    return {(k, b): sample_size(n, margin, confidence) for k, n in sizes.items() for b in bits}


def generate(shapes: dict[str, tuple[int, ...]], *, target: str = "weights",
             kind: str = "bitflip", fmt: str = "fp32", bits: Sequence[int] | None = None,
             n_bits: int = 1, margin: float = 0.01, confidence: float = 0.99,
             mode: str = "network", n_faults: int | None = None, seed: int = 0) -> list[Fault]:
    """Draw faults without replacement from each stratum's population (element x first bit).

    ``n_faults`` overrides the sample size (network-wise). Multi-bit faults (``n_bits`` > 1)
    add distinct further bits drawn from ``bits``. Same arguments and seed, same list.
    """
    bits = list(range(word_bits(fmt))) if bits is None else list(check_bits(fmt, bits))
    if not 1 <= n_bits <= len(bits):
        raise InputError(f"n_bits must be in 1..{len(bits)}", field="n_bits")
    if not shapes:
        raise InputError("the model has no Conv or Linear layer to inject into", field="model")
    rng = np.random.default_rng(seed)
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    if n_faults is not None:
        strata = {(None, None): n_faults}
    else:
        strata = plan(shapes, bits, margin, confidence, mode)
    faults = []
    for (layer, bit), n in strata.items():
        layers = list(sizes) if layer is None else [layer]
        bit_pool = bits if bit is None else [bit]
        offsets = np.cumsum([0] + [sizes[k] * len(bit_pool) for k in layers])
        total = int(offsets[-1])
        picks = rng.choice(total, size=min(n, total), replace=False)
        for p in np.sort(picks):
            li = int(np.searchsorted(offsets, p, side="right") - 1)
            local = int(p - offsets[li])
            elem, b = divmod(local, len(bit_pool))
            name = layers[li]
            index = tuple(int(i) for i in np.unravel_index(elem, shapes[name]))
            chosen = [bit_pool[b]]
            if n_bits > 1:
                rest = [x for x in bits if x != chosen[0]]
                chosen += [int(x) for x in rng.choice(rest, size=n_bits - 1, replace=False)]
            faults.append(Fault(name, index, tuple(chosen), target, kind, fmt))
    return faults


def format_index(index: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(i) for i in index) + ")"


def row_values(row: Row) -> list:
    counts = list(row.counts) if row.counts is not None else ["", "", "", ""]
    return [row.injection, row.fault.layer, format_index(row.fault.index),
            ";".join(str(b) for b in row.fault.bits), *counts]


def save(rows: Sequence[Row], path: str | Path) -> None:
    """Write the whole list (atomically: a kill leaves the old file or the new one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(row_values(r))
    tmp.replace(path)


def numbered(faults: Sequence[Fault]) -> list[Row]:
    return [Row(i, f) for i, f in enumerate(faults)]


def _parse_index(text: str, path: Path, line: int) -> tuple[int, ...]:
    body = text.strip().strip("()[]").replace(" ", "")
    try:
        return tuple(int(p) for p in body.split(",") if p != "")
    except ValueError:
        raise InputError(f"line {line}: malformed TensorIndex {text!r}", file=path,
                         field="TensorIndex") from None


def _parse_int(text: str, path: Path, line: int, field: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"line {line}: {field} {text!r} is not an integer", file=path,
                         field=field) from None
    if value < 0:
        raise InputError(f"line {line}: {field} must be >= 0", file=path, field=field)
    return value


def load(path: str | Path, *, target: str = "weights", kind: str = "bitflip",
         fmt: str = "fp32", allow_empty: bool = False) -> list[Row]:
    """Read a fault list (with or without results). InputError naming the file, line and column
    for anything malformed; a trailing partial line (a run killed mid-write) is ignored."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read fault list ({type(exc).__name__})", file=path) from None
    complete = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
    lines = list(csv.reader(complete.splitlines()))
    if not lines:
        raise InputError("empty fault list (no header)", file=path)
    header = [h.strip() for h in lines[0]]
    if tuple(header) != COLUMNS:
        raise InputError(f"header must be {','.join(COLUMNS)}", file=path, field="header")
    rows, seen = [], set()
    for line, rec in enumerate(lines[1:], start=2):
        if not rec:
            continue
        if len(rec) != len(COLUMNS):
            raise InputError(f"line {line}: {len(rec)} fields, expected {len(COLUMNS)}",
                             file=path)
        inj = _parse_int(rec[0], path, line, "Injection")
        if inj in seen:
            raise InputError(f"line {line}: Injection {inj} repeated", file=path,
                             field="Injection")
        seen.add(inj)
        bits = tuple(_parse_int(b, path, line, "Bit") for b in rec[3].split(";"))
        try:
            fault = Fault(rec[1].strip(), _parse_index(rec[2], path, line), bits, target,
                          kind, fmt)
        except InputError as exc:
            raise InputError(f"line {line}: {exc.reason}", file=path, field=exc.field) from None
        counts = None
        if any(c.strip() for c in rec[4:]):
            counts = tuple(_parse_int(c, path, line, COLUMNS[4 + i])
                           for i, c in enumerate(rec[4:]))
            if counts[1] + counts[2] + counts[3] > counts[0]:
                raise InputError(f"line {line}: outcome counts exceed n_injections", file=path,
                                 field="n_injections")
        rows.append(Row(inj, fault, counts))
    if not rows and not allow_empty:
        raise InputError("fault list has no rows", file=path)
    return rows


def check_against(rows: Sequence[Row], shapes: dict[str, tuple[int, ...]],
                  path: str | Path | None = None) -> None:
    """InputError for the first row whose layer or index does not exist in the model."""
    for r in rows:
        if r.fault.layer not in shapes:
            raise InputError(f"Injection {r.injection}: unknown layer {r.fault.layer!r}",
                             file=path, field="Layer")
        try:
            check_index(shapes[r.fault.layer], r.fault.index, r.fault.layer)
        except InputError as exc:
            raise InputError(f"Injection {r.injection}: {exc.reason}", file=path,
                             field="TensorIndex") from None


def with_counts(row: Row, counts: tuple[int, int, int, int]) -> Row:
    return replace(row, counts=tuple(int(c) for c in counts))
