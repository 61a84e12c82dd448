"""Timeloop's mapping and result files, in and out: ``*.map.yaml``, ``*.map.txt``, ``*.stats.txt``.

``map.yaml`` lists, per target level, ``temporal`` / ``spatial`` factor directives and a
``datatype`` (keep / bypass) directive. Permutations are written INNERMOST loop first; in a spatial
directive the first ``split`` dims of the permutation (from the inner end) go on X, the rest on Y.
:class:`~dse.model.mapping.Mapping` stores loops outermost first, so this module is the only place
that reverses them. ``map.txt`` is the printed loop nest (outermost first). ``stats.txt`` is parsed
into the same :class:`~dse.model.stats.Stats` that the builtin model returns, so a real Timeloop run
can be compared with ours field by field.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from dse import validate
from dse.arch.spec import Arch
from dse.errors import InputError
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.model.stats import LevelStats, Stats
from dse.problems.problem import Problem
from dse.yamlfile import read_yaml

_FACTOR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*?)\s*=?\s*(\d+)$")


# ----------------------------------------------------------------------------------- map.yaml


def parse_factors(text: Any, *, file: str, field: str) -> dict[str, int]:
    """``"C1 M4 ..."`` (or a list / dict of the same) -> ``{dim: factor}``."""
    if isinstance(text, dict):
        items = [f"{k}{v}" for k, v in text.items()]
    elif isinstance(text, str):
        items = [t for t in re.split(r"[,\s]+", text) if t]
    elif isinstance(text, list):
        items = [str(t).replace(" ", "") for t in text]
    else:
        raise InputError(f"cannot read factors {text!r}", file=file, field=field)
    out: dict[str, int] = {}
    for item in items:
        m = _FACTOR.match(item)
        if not m or int(m.group(2)) < 1:
            raise InputError(f"malformed factor {item!r} (expected e.g. C4)", file=file,
                             field=field)
        out[m.group(1)] = int(m.group(2))
    return out


def parse_permutation(text: Any, dims: tuple[str, ...], *, file: str, field: str) -> list[str]:
    """A Timeloop permutation (innermost first) as a list, innermost first, every dim once.

    Dims the permutation leaves out are appended at the outer end (they carry factor 1 in every
    mapping Timeloop writes, so their position cannot change any count).
    """
    if text is None:
        perm: list[str] = []
    elif isinstance(text, str):
        parts = [t for t in re.split(r"[,\s]+", text) if t]
        perm = list(parts[0]) if len(parts) == 1 and all(len(d) == 1 for d in dims) else parts
    elif isinstance(text, list):
        perm = [str(d) for d in text]
    else:
        raise InputError(f"cannot read permutation {text!r}", file=file, field=field)
    unknown = [d for d in perm if d not in dims]
    if unknown or len(set(perm)) != len(perm):
        raise InputError(f"permutation {text!r} has unknown or repeated dims", file=file,
                         field=field)
    return perm + [d for d in dims if d not in perm]


def read_mapping(path: str | Path, arch: Arch, problem: Problem) -> Mapping:
    """Read a Timeloop ``map.yaml`` (a list under ``mapping:``, or a bare list) for ``arch``.

    Levels the file does not mention get no loops; a level without a ``datatype`` directive keeps
    every dataspace (Timeloop's default) unless it is one of timeloopfe's dummy spatial levels.
    """
    path = Path(path)
    doc = read_yaml(path)
    entries = doc.get("mapping") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise InputError("expected a list of directives under 'mapping'", file=str(path),
                         field="mapping")
    with validate.parsing(path, "mapping"):
        return mapping_from_directives(entries, arch, problem, file=str(path))


def mapping_from_directives(entries: list[Any], arch: Arch, problem: Problem, *,
                            file: str = "<mapping>") -> Mapping:
    """Build a Mapping from already-loaded map.yaml directives (see :func:`read_mapping`)."""
    names = [lvl.name for lvl in arch.levels]
    all_ds = frozenset(ds.name for ds in problem.dataspaces)
    levels = {lvl.name: LevelMapping(lvl.name, keep=frozenset() if lvl.dummy else all_ds)
              for lvl in arch.levels}
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries):
        field = f"mapping[{i}]"
        if not isinstance(entry, dict):
            raise InputError("directive must be a mapping", file=file, field=field)
        target, kind = entry.get("target"), str(entry.get("type", "temporal"))
        if target not in levels:
            raise InputError(f"target {target!r} is not a level of {arch.name} "
                             f"({', '.join(names)})", file=file, field=f"{field}.target")
        if (target, kind) in seen:
            raise InputError(f"second {kind} directive for {target}", file=file, field=field)
        seen.add((target, kind))
        lm = levels[target]
        if kind in ("datatype", "bypass"):
            keep = set(entry.get("keep") or [])
            bypass = set(entry.get("bypass") or [])
            bad = (keep | bypass) - all_ds
            if bad:
                raise InputError(f"unknown dataspace(s) {sorted(bad)}", file=file, field=field)
            lm.keep = frozenset(keep if "keep" in entry and entry.get("keep") is not None
                                and not bypass else (all_ds - bypass) | keep)
            continue
        if kind not in ("temporal", "spatial"):
            raise InputError(f"unknown directive type {kind!r}", file=file, field=f"{field}.type")
        factors = parse_factors(entry.get("factors", ""), file=file, field=f"{field}.factors")
        bad = set(factors) - set(problem.dimensions)
        if bad:
            raise InputError(f"unknown dimension(s) {sorted(bad)}", file=file,
                             field=f"{field}.factors")
        perm = parse_permutation(entry.get("permutation"), problem.dimensions, file=file,
                                 field=f"{field}.permutation")
        if kind == "temporal":
            lm.temporal = [Loop(d, factors[d]) for d in reversed(perm) if factors.get(d, 1) > 1]
        else:
            split = int(entry.get("split", len(perm)))
            axis = {d: ("X" if k < split else "Y") for k, d in enumerate(perm)}
            lm.spatial = [Loop(d, factors[d], True, axis[d]) for d in reversed(perm)
                          if factors.get(d, 1) > 1]
    return Mapping([levels[n] for n in names])


def _factors_text(loops: list[Loop], problem: Problem) -> str:
    return " ".join(f"{d}{math.prod(lp.factor for lp in loops if lp.dim == d)}"
                    for d in problem.dimensions)


def mapping_directives(mapping: Mapping, problem: Problem) -> list[dict[str, Any]]:
    """The Timeloop map.yaml directive list for ``mapping`` (innermost level first, as Timeloop)."""
    all_ds = [ds.name for ds in problem.dataspaces]
    out: list[dict[str, Any]] = []
    for lm in reversed(mapping.levels):
        out.append({"target": lm.level, "type": "datatype",
                    "keep": [d for d in all_ds if d in lm.keep],
                    "bypass": [d for d in all_ds if d not in lm.keep]})
    for lm in reversed(mapping.levels):
        if lm.spatial:
            x = [lp.dim for lp in reversed(lm.spatial) if lp.axis == "X"]
            y = [lp.dim for lp in reversed(lm.spatial) if lp.axis != "X"]
            if len(set(x + y)) != len(x + y):
                raise ValueError(f"{lm.level}: map.yaml cannot express two spatial loops of one "
                                 "dim")
            rest = [d for d in problem.dimensions if d not in x and d not in y]
            out.append({"target": lm.level, "type": "spatial",
                        "factors": _factors_text(lm.spatial, problem),
                        "permutation": _perm_text(x + y + rest), "split": len(x)})
        inner = [lp.dim for lp in reversed(lm.temporal)]
        if len(set(inner)) != len(inner):
            raise ValueError(f"{lm.level}: map.yaml cannot express two temporal loops of one dim")
        rest = [d for d in problem.dimensions if d not in inner]
        out.append({"target": lm.level, "type": "temporal",
                    "factors": _factors_text(lm.temporal, problem),
                    "permutation": _perm_text(inner + rest)})
    return out


def _perm_text(dims: list[str]) -> str:
    return "".join(dims) if all(len(d) == 1 for d in dims) else ",".join(dims)


def write_mapping(mapping: Mapping, path: str | Path, problem: Problem) -> Path:
    """Write ``mapping`` as a Timeloop map.yaml that :func:`read_mapping` reads back equal."""
    path = Path(path)
    text = yaml.safe_dump({"mapping": mapping_directives(mapping, problem)}, sort_keys=False)
    return validate.write_text(path, text)


# ------------------------------------------------------------------------------------ map.txt

_HEADER = re.compile(r"^(\S+) \[(.*)\]\s*$")
_LOOP = re.compile(r"for (\S+) in \[(\d+):(\d+)\)(?: \(Spatial-([XY])\))?")


def loop_nest_text(mapping: Mapping, problem: Problem, arch: Arch) -> str:
    """The mapping as Timeloop prints it in ``*.map.txt``: per level (outermost first) a header
    with each kept dataspace's tile in words, then its loops, one indent deeper per loop.

    Like Timeloop, a level without temporal loops shows one unit loop (of ``G`` where the problem
    has groups); other unit loops are left out. :func:`read_map_txt` reads the text back.
    """
    from dse.model.nest import analyze

    nest = analyze(problem, arch, mapping, check=False)
    unit = Loop("G" if "G" in problem.dimensions else problem.dimensions[-1], 1)
    lines: list[str] = []
    depth = 0
    for lm in mapping.levels:
        kept = [ds.name for ds in problem.dataspaces if ds.name in nest.resident[lm.level]]
        tiles = " ".join(f"{ds}:{nest.tiles[(lm.level, ds)]} ({nest.tiles[(lm.level, ds)]})"
                         for ds in kept)
        head = f"{lm.level} [ {tiles + ' ' if tiles else ''}] "
        lines += ["", head, "-" * (len(head) - 1)]
        temporal = [lp for lp in lm.temporal if lp.factor > 1] or [unit]
        for lp in temporal + [lp for lp in lm.spatial if lp.factor > 1]:
            where = f" (Spatial-{lp.axis})" if lp.spatial else ""
            lines.append(f"|{' ' * (1 + 2 * depth)}for {lp.dim} in [0:{lp.factor}){where}")
            depth += 1
    return "\n".join(lines) + "\n\n"


def read_map_txt(path: str | Path) -> tuple[Mapping, dict[str, dict[str, int]]]:
    """Parse a printed loop nest (``*.map.txt``): the Mapping and the tile sizes of its headers.

    Levels come out in file order (outermost first); a level's keep set is the dataspaces its
    header lists. The tile dict maps level -> dataspace -> utilized capacity.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read loop nest: {exc.strerror}", file=str(path)) from None
    levels: list[LevelMapping] = []
    tiles: dict[str, dict[str, int]] = {}
    for no, line in enumerate(lines, 1):
        head = _HEADER.match(line)
        if head:
            sizes = {m.group(1): int(m.group(2))
                     for m in re.finditer(r"(\w+):(\d+)", head.group(2))}
            levels.append(LevelMapping(head.group(1), keep=frozenset(sizes)))
            tiles[head.group(1)] = sizes
            continue
        loop = _LOOP.search(line)
        if loop:
            if not levels:
                raise InputError("loop before any level header", file=str(path), field=f"line {no}")
            dim, lo, hi, axis = loop.group(1), int(loop.group(2)), int(loop.group(3)), loop.group(4)
            factor = hi - lo
            if factor <= 1:
                continue
            target = levels[-1]
            if axis:
                target.spatial.append(Loop(dim, factor, True, axis))
            else:
                target.temporal.append(Loop(dim, factor))
    if not levels:
        raise InputError("no level headers found", file=str(path))
    return Mapping(levels), tiles


# ---------------------------------------------------------------------------------- stats.txt

_KV = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


def _num(text: str) -> float:
    return float(text.split()[0])


StatsFields = dict[str, dict[str, dict[str, str]]]


def read_stats_fields(path: str | Path) -> tuple[dict[str, str], StatsFields, int]:
    """Raw fields of a ``*.stats.txt``: (MAC fields, level -> dataspace -> fields, cycles).

    Only the "Buffer and Arithmetic Levels" part and the summary's ``Cycles`` are read; values stay
    text (with units) so callers pick what they compare, e.g. "Partition size" or "Utilized
    capacity" against :func:`dse.model.analyze`.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read stats: {exc.strerror}", file=str(path)) from None
    mac: dict[str, str] = {}
    storage: dict[str, dict[str, dict[str, str]]] = {}
    cycles: int | None = None
    section, level_no, name, ds = "", -1, "", ""
    for line in lines:
        if line and not line[0].isspace():
            if line.startswith("Buffer and Arithmetic Levels"):
                section = "levels"
            elif line.startswith(("Networks", "Operational Intensity", "Summary Stats")):
                section = "summary" if line.startswith("Summary") else "other"
            elif section == "levels" and (m := re.match(r"^Level (\d+)$", line)):
                level_no = int(m.group(1))
            elif section == "levels" and (m := re.match(r"^=== (.+) ===$", line)):
                name, ds = m.group(1), ""
                if level_no > 0:
                    storage[name] = {}
            elif section == "summary" and (m := re.match(r"^Cycles: (\d+)", line)):
                cycles = int(m.group(1))
            continue
        if section != "levels" or not name:
            continue
        if level_no == 0:
            kv = _KV.match(line)
            if kv:
                mac.setdefault(kv.group(1), kv.group(2))
            continue
        m = re.match(r"^    (\w+):\s*$", line)
        if m:
            ds = m.group(1)
            storage[name][ds] = {}
            continue
        kv = _KV.match(line)
        if kv and ds:
            storage[name][ds][kv.group(1)] = kv.group(2)
    if cycles is None or "Computes (total)" not in mac:
        raise InputError("not a Timeloop stats file (no Summary Stats / Computes)", file=str(path))
    return mac, storage, cycles


def parse_stats_txt(path: str | Path) -> Stats:
    """Parse Timeloop's ``*.stats.txt`` into :class:`Stats` (counts are totals over instances).

    Energy is the sum of the printed per-level "Energy (total)" lines plus the MAC's (2-decimal pJ
    each); utilization is computes / (cycles x all MAC instances), as in ``summary.csv``.
    """
    mac, storage, cycles = read_stats_fields(path)
    levels = []
    for name, per_ds in storage.items():
        for ds, f in per_ds.items():
            n = int(_num(f["Utilized instances (max)"]))
            levels.append(LevelStats(
                name, ds, n,
                reads=int(_num(f["Scalar reads (per-instance)"])) * n,
                updates=int(_num(f["Scalar updates (per-instance)"])) * n,
                fills=int(_num(f["Scalar fills (per-instance)"])) * n,
                energy_pJ=_num(f["Energy (total)"])))
    macs = int(_num(mac["Computes (total)"]))
    mac_energy = _num(mac["Energy (total)"])
    return Stats(
        energy_pJ=mac_energy + sum(ls.energy_pJ for ls in levels),
        cycles=cycles,
        utilization=macs / (cycles * int(_num(mac["Instances"]))),
        macs=macs,
        mac_energy_pJ=mac_energy,
        levels=levels,
        mac_instances=int(_num(mac["Utilized instances"])),
    )
