"""Statistical fault lists for spiking networks: drawn (seeded), saved and read back as CSV.

The population is every (element, bit) of every chosen target (times every step for transient
faults at a random step). ``pooled`` draws Leveugle's sample size (DATE 2009) over the whole
population, as seed 003 does; ``site`` gives each (layer, target) its own size, ``bit`` each
(layer, target, bit) (Ruospo et al., DATE 2023). Draws are without replacement.

CSV columns: the seed's ``Injection, Layer, TensorIndex, Bit`` (``Layer`` is ``layer.target``, e.g.
``conv1.weight`` or ``lif1.membrane``), then ``Step`` (empty: permanent), then the outcome counts
once run. Fault kind and number format are campaign settings, not columns.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dse.errors import InputError
from dse.resilience.formats import word_bits
from dse.resilience.snn.network import TARGETS, SnnFault
from dse.resilience.stats import sample_size

MODES = ("pooled", "site", "bit")
FAULT_COLUMNS = ("Injection", "Layer", "TensorIndex", "Bit", "Step")
Sites = dict[tuple[str, str], tuple[int, ...]]


def strata(sites: Sites, bits: int, mode: str, steps: int | None) -> list[tuple[list, list[int]]]:
    """(sites, bit positions) per stratum; ``steps`` multiplies the population (random step)."""
    if mode not in MODES:
        raise InputError(f"unknown sampling mode {mode!r}; expected one of {list(MODES)}",
                         field="--mode")
    keys, every = list(sites), list(range(bits))
    if mode == "pooled":
        return [(keys, every)]
    if mode == "site":
        return [([k], every) for k in keys]
    return [([k], [b]) for k in keys for b in every]


def population(sites: Sites, members: list, bits: list[int], steps: int | None) -> int:
    return sum(math.prod(sites[k]) for k in members) * len(bits) * (steps or 1)


def draw(sites: Sites, members: list, bits: list[int], n: int, rng: np.random.Generator, *,
         kind: str, fmt: str, transient: bool, steps: int, step: int | None) -> list[SnnFault]:
    """``n`` distinct faults of one stratum; a transient fault's step is ``step`` or drawn."""
    per_step = steps if transient and step is None else 1
    sizes = [math.prod(sites[k]) * len(bits) * per_step for k in members]
    offsets = np.cumsum([0, *sizes])
    picks = np.sort(rng.choice(int(offsets[-1]), size=min(n, int(offsets[-1])), replace=False))
    out = []
    for p in picks.tolist():
        i = int(np.searchsorted(offsets, p, side="right") - 1)
        local, (layer, target) = p - int(offsets[i]), members[i]
        local, t = divmod(local, per_step)
        elem, b = divmod(local, len(bits))
        index = tuple(int(v) for v in np.unravel_index(elem, sites[(layer, target)]))
        when = (t if step is None else step) if transient else None
        out.append(SnnFault(layer, target, index, (bits[b],), kind, fmt, when))
    return out


def generate(sites: Sites, *, kind: str = "bitflip", fmt: str = "fp32", mode: str = "pooled",
             margin: float = 0.01, confidence: float = 0.99, transient: bool = False,
             steps: int = 1, step: int | None = None, n_faults: int | None = None,
             seed: int = 0) -> list[SnnFault]:
    """The seeded fault list (same arguments, same list). ``n_faults`` replaces Leveugle's n
    (pooled)."""
    if not sites:
        raise InputError("no fault target in the model for the chosen targets", field="--targets")
    rng = np.random.default_rng(seed)
    bits = word_bits(fmt)
    random_step = steps if transient and step is None else None
    out: list[SnnFault] = []
    for members, bit_pool in strata(sites, bits, "pooled" if n_faults else mode, random_step):
        pop = population(sites, members, bit_pool, random_step)
        n = n_faults if n_faults else sample_size(pop, margin, confidence)
        out += draw(sites, members, bit_pool, n, rng, kind=kind, fmt=fmt, transient=transient,
                    steps=steps, step=step)
    return out


def fault_values(i: int, f: SnnFault) -> list:
    return [i, f.site, "(" + ", ".join(str(v) for v in f.index) + ")",
            ";".join(str(b) for b in f.bits), "" if f.step is None else f.step]


def save(faults: Sequence[SnnFault], path: str | Path) -> None:
    """Write the list atomically (a kill leaves the old file or the new one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FAULT_COLUMNS)
        w.writerows(fault_values(i, f) for i, f in enumerate(faults))
    tmp.replace(path)


def _int(text: str, path: Path, line: int, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"line {line}: {field} {text!r} is not an integer", file=path,
                         field=field) from None


def parse_row(rec: Sequence[str], path: Path, line: int, kind: str, fmt: str
              ) -> tuple[int, SnnFault]:
    """(Injection, fault) of one CSV record; InputError naming file, line and column."""
    if len(rec) < len(FAULT_COLUMNS):
        raise InputError(f"line {line}: {len(rec)} fields, expected {len(FAULT_COLUMNS)}",
                         file=path)
    layer, _, target = rec[1].strip().rpartition(".")
    if target not in TARGETS or not layer:
        raise InputError(f"line {line}: Layer {rec[1]!r} is not layer.target with target one of "
                         f"{list(TARGETS)}", file=path, field="Layer")
    body = rec[2].strip().strip("()[]").replace(" ", "")
    index = tuple(_int(v, path, line, "TensorIndex") for v in body.split(",") if v)
    bits = tuple(_int(b, path, line, "Bit") for b in rec[3].split(";"))
    step = _int(rec[4], path, line, "Step") if rec[4].strip() else None
    try:
        return _int(rec[0], path, line, "Injection"), SnnFault(layer, target, index, bits, kind,
                                                              fmt, step)
    except InputError as exc:
        raise InputError(f"line {line}: {exc.reason}", file=path, field=exc.field) from None


def load(path: str | Path, *, kind: str = "bitflip", fmt: str = "fp32") -> list[SnnFault]:
    """Read a fault list written by :func:`save` (or by hand in its columns)."""
    path = Path(path)
    try:
        lines = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read fault list ({type(exc).__name__})", file=path) from None
    if not lines or tuple(h.strip() for h in lines[0][:len(FAULT_COLUMNS)]) != FAULT_COLUMNS:
        raise InputError(f"header must start {','.join(FAULT_COLUMNS)}", file=path,
                         field="header")
    rows = [parse_row(rec, path, n, kind, fmt) for n, rec in enumerate(lines[1:], start=2) if rec]
    ids = [i for i, _ in rows]
    if ids != list(range(len(rows))):
        raise InputError("Injection must number the rows 0, 1, 2, ...", file=path,
                         field="Injection")
    if not rows:
        raise InputError("fault list has no rows", file=path)
    return [f for _, f in rows]
