"""Builtin energy estimator: an Accelergy-compatible ERT for any design, without Accelergy.

``estimate_energy(arch)`` fills every level's per-action energy (pJ per vector access of
``width`` bits, as Accelergy reports it) and the MAC's ``compute`` energy. The numbers come from
compact tables fitted to Accelergy's own output (``dse/arch/data``, rebuilt by
``dse.arch.energy_fit``); the composition below mirrors the component classes the designs use:

* ``smartbuffer_SRAM`` = CACTI SRAM (depth × width; ``n_banks`` is not passed on, as in the
  class) + two address generators of ``ceil(log2 depth)`` bits.
* ``smartbuffer_RF`` = a register file of ``max(64, depth) × max(32, width)`` whose dynamic energy
  is scaled by ``(width/w') · (depth/d')^0.78`` and leakage by the area ratio, + address generators.
* ``regfile`` = registers + one comparator per entry; ``storage``/``aladdin_register`` = a
  register; ``SRAM`` = CACTI SRAM with its banks; ``DRAM`` = per-bit energy by type.
* ``intmac`` = linear in adder and multiplier widths.

Nodes between the tabulated ones (65/45/32/7 nm) are interpolated linearly in feature size;
outside that range the nearest node is scaled in proportion to feature size.
"""

from __future__ import annotations

import bisect
import copy
import csv
import math
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

from dse.arch.spec import Arch, ComputeLevel, StorageLevel
from dse.errors import InputError

DATA = Path(__file__).resolve().parent / "data"
SRAM_CSV = DATA / "sram_energy.csv"
LINEAR_CSV = DATA / "linear_models.csv"
ACTIONS = ("read", "write", "update", "leak")
DEFAULT_DRAM = "LPDDR4"
DUMMY_TABLE = {"read": 1.0, "write": 1.0, "update": 1.0, "leak": 0.0}  # Accelergy's dummy table
RF_MIN_DEPTH, RF_MIN_WIDTH, RF_DEPTH_EXP = 64, 32, 1.56 / 2


def nbits(depth: float) -> int:
    """Address bits of a ``depth``-entry memory, as the component classes compute them."""
    return max(1, math.ceil(math.log2(depth))) if depth >= 1 else 1


@cache
def _sram_table() -> dict[tuple[str, int, str], dict[int, list[tuple[int, float]]]]:
    """(tech, banks, action) -> width -> sorted [(depth, pJ)]."""
    table: dict = defaultdict(lambda: defaultdict(list))
    with open(SRAM_CSV, newline="") as fh:
        for r in csv.DictReader(fh):
            key = (r["technology"], int(r["n_banks"]), r["action"])
            table[key][int(r["width"])].append((int(r["depth"]), float(r["energy_pJ"])))
    return {k: {w: sorted(v) for w, v in widths.items()} for k, widths in table.items()}


@cache
def _linear() -> dict[tuple[str, str], tuple[float, float, float]]:
    with open(LINEAR_CSV, newline="") as fh:
        return {(r["technology"], r["model"]): (float(r["c0"]), float(r["c1"]), float(r["c2"]))
                for r in csv.DictReader(fh)}


def _nodes() -> list[int]:
    return sorted({int(t[:-2]) for t, _ in _linear() if t.endswith("nm")})


def node_nm(technology: str | None, *, field: str) -> float:
    """``"45nm"`` -> 45.0; anything unreadable is an InputError naming the level."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*nm\s*", str(technology or ""))
    if not match:
        raise InputError(f"technology {technology!r} is not a node like '45nm'", field=field)
    value = float(match.group(1))
    if value <= 0:
        raise InputError("technology must be a positive node size", field=field)
    return value


def at_node(nm: float, per_node) -> float:
    """Evaluate ``per_node(tech_string)`` at a node, interpolating between tabulated nodes."""
    nodes = _nodes()
    if nm in nodes:
        return per_node(f"{int(nm)}nm")
    if nm < nodes[0]:
        return per_node(f"{nodes[0]}nm") * nm / nodes[0]
    if nm > nodes[-1]:
        return per_node(f"{nodes[-1]}nm") * nm / nodes[-1]
    i = bisect.bisect_left(nodes, nm)
    lo, hi = nodes[i - 1], nodes[i]
    f = (nm - lo) / (hi - lo)
    return per_node(f"{lo}nm") * (1 - f) + per_node(f"{hi}nm") * f


def interp_loglog(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise power law through ``points`` (linear in log-log; linear where a value is 0),
    extended past the ends along the end segments."""
    if len(points) == 1:
        return points[0][1]
    xs = [p[0] for p in points]
    i = min(max(bisect.bisect_left(xs, x), 1), len(points) - 1)
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    if x == x0:
        return y0
    if x == x1:
        return y1
    if y0 > 0 and y1 > 0:
        f = math.log(x / x0) / math.log(x1 / x0)
        return math.exp(math.log(y0) + f * (math.log(y1) - math.log(y0)))
    return max(0.0, y0 + (x - x0) / (x1 - x0) * (y1 - y0))


def sram(tech: str, banks: int, depth: float, width: float, action: str,
         table: dict | None = None) -> float:
    """CACTI SRAM energy per access from the table: log-log in depth within each tabulated
    width, then log-log across widths; banks between tabulated counts likewise. ``table``
    replaces the shipped one (used to measure predictions without some of its rows)."""
    table = table if table is not None else _sram_table()
    bank_counts = sorted({b for (t, b, a) in table if t == tech and a == action})
    if not bank_counts:
        raise InputError(f"no SRAM figures for {tech}", field="technology")
    if banks not in bank_counts:
        pts = [(b, sram(tech, b, depth, width, action, table)) for b in bank_counts]
        return interp_loglog(pts, banks)
    widths = table[(tech, banks, action)]
    pts = [(w, interp_loglog(widths[w], depth)) for w in sorted(widths)]
    return interp_loglog(pts, width)


def _lin(tech: str, model: str) -> tuple[float, float, float]:
    return _linear()[(tech, model)]


def adder(tech: str, bits: int) -> tuple[float, float, float]:
    """(energy per add, leakage of the pair, area of the pair) of the address generators."""
    a0, a1, _ = _lin(tech, "adder_add")
    l0, l1, _ = _lin(tech, "adder_leak_pair")
    s0, s1, _ = _lin(tech, "adder_area_pair")
    return a0 + a1 * bits, max(0.0, l0 + l1 * bits), max(0.0, s0 + s1 * bits)


def regfile(tech: str, depth: float, width: float) -> dict[str, float]:
    _, r_bit, cmp_r = _lin(tech, "regfile_read")
    _, w_bit, cmp_w = _lin(tech, "regfile_write")
    _, l_bit, l_cmp = _lin(tech, "regfile_leak")
    _, a_bit, a_cmp = _lin(tech, "regfile_area")
    write = max(0.0, width * w_bit + depth * cmp_w)
    return {"read": width * r_bit + depth * cmp_r, "write": write, "update": write,
            "leak": max(0.0, depth * (width * l_bit + l_cmp)),
            "area": max(0.0, depth * (width * a_bit + a_cmp))}


def storage_energy(lvl: StorageLevel, tech: str | None) -> dict[str, float]:
    """Per-action energy (pJ) of one storage level at node ``tech`` (e.g. ``"45nm"``), plus
    ``"area"`` (µm² per instance, Accelergy's ART figure)."""
    cls = lvl.component_class
    sub = lvl.attributes.get("subclass")
    if cls == "dummy_storage":
        return ({**DUMMY_TABLE, "area": 1.0} if tech is None
                else {a: 0.0 for a in (*ACTIONS, "area")})
    if cls == "DRAM":
        kind = str(lvl.attributes.get("type", DEFAULT_DRAM))
        if ("any", f"dram_{kind}") not in _linear():
            raise InputError(f"no DRAM energy for type {kind!r}", field=f"{lvl.name}.type")
        per_bit = _lin("any", f"dram_{kind}")[1]
        return {"read": per_bit * lvl.width, "write": per_bit * lvl.width,
                "update": per_bit * lvl.width, "leak": 0.0, "area": 0.0}
    if tech is None:
        raise InputError("no technology node to estimate energy", field=f"{lvl.name}.technology")
    nm = node_nm(tech, field=f"{lvl.name}.technology")
    depth = lvl.depth
    if depth is None or depth <= 0:
        raise InputError("needs a positive depth", field=f"{lvl.name}.depth")

    def one(t: str) -> dict[str, float]:
        if cls in ("SRAM", "smartbuffer_SRAM"):
            banks = lvl.n_banks if cls == "SRAM" else 1
            out = {a: sram(t, banks, depth, lvl.width, a)
                   for a in ("read", "write", "leak", "area")}
            if cls == "smartbuffer_SRAM":
                add, leak, area = adder(t, nbits(depth))
                out = {"read": out["read"] + add, "write": out["write"] + add,
                       "leak": out["leak"] + leak, "area": out["area"] + area}
            out["update"] = out["write"]
            return out
        if cls == "regfile":
            return regfile(t, depth, lvl.width)
        if cls == "smartbuffer_RF":
            md, mw = max(RF_MIN_DEPTH, depth), max(RF_MIN_WIDTH, lvl.width)
            base = regfile(t, md, mw)
            dyn = (lvl.width / mw) * (depth / md) ** RF_DEPTH_EXP
            scale = (lvl.width / mw) * (depth / md)
            add, leak, area = adder(t, nbits(depth))
            write = base["write"] * dyn + add
            # Accelergy applies the class's area_scale to the whole buffer and again to its
            # storage (visible in the grid), hence scale² for the registers.
            return {"read": base["read"] * dyn + add, "write": write, "update": write,
                    "leak": base["leak"] * scale + leak,
                    "area": base["area"] * scale ** 2 + area * scale}
        if cls == "storage" and sub in ("aladdin_register", "register", None):
            vals = {a: max(0.0, sum(c * x for c, x in zip(_lin(t, f"register_{a}"),
                                                          (1.0, lvl.width, 0.0), strict=True)))
                    for a in ("read", "write", "leak", "area")}
            vals["update"] = vals["write"]
            return vals
        raise InputError(f"no builtin energy model for class {cls!r}"
                         + (f" (subclass {sub!r})" if sub else ""), field=f"{lvl.name}.class")

    return {a: at_node(nm, lambda t, a=a: one(t)[a]) for a in (*ACTIONS, "area")}


def compute_energy(c: ComputeLevel, tech: str | None) -> dict[str, float]:
    if c.component_class not in ("intmac", "mac", "compute"):
        raise InputError(f"no builtin energy model for class {c.component_class!r}",
                         field=f"{c.name}.class")
    nm = node_nm(tech, field=f"{c.name}.technology")
    aw = float(c.attributes.get("adder_width", 2 * c.word_bits))
    mw = float(c.attributes.get("multiplier_width", c.word_bits))

    def one(t: str, action: str) -> float:
        c0, ca, cm = _lin(t, f"mac_{action}")
        return max(0.0, c0 + ca * aw + cm * mw)

    return {a: at_node(nm, lambda t, a=a: one(t, a)) for a in ("compute", "leak", "area")}


def builtin_energy(arch: Arch) -> Arch:
    """A copy of ``arch`` with energies from the builtin tables (energy_source="builtin")."""
    out = copy.deepcopy(arch)
    for lvl in out.levels:
        tech = lvl.technology or (None if lvl.dummy or lvl.component_class == "DRAM"
                                  else out.technology)
        energy = storage_energy(lvl, tech)
        lvl.area_um2 = round(energy.pop("area"), 6)
        lvl.energy = {a: round(v, 6) for a, v in energy.items()}
    c = out.compute
    energy = compute_energy(c, c.technology or out.technology)
    c.area_um2 = round(energy.pop("area"), 6)
    c.energy = {a: round(v, 6) for a, v in energy.items()}
    out.energy_source = "builtin"
    return out


def estimate_energy(arch: Arch, *, prefer_accelergy: bool = True) -> Arch:
    """Energies for every action of every component: Accelergy when it is installed and
    configured (energy_source="accelergy"), else the builtin tables (energy_source="builtin")."""
    if prefer_accelergy:
        from dse.arch import accelergy_backend

        if accelergy_backend.available():
            return accelergy_backend.estimate(arch)
    return builtin_energy(arch)


__all__ = ["builtin_energy", "estimate_energy", "storage_energy", "compute_energy"]
