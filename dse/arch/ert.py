"""Accelergy energy and area reference tables (ERT, ART): read them and attach them to an Arch.

Accelergy names components by their path in the native tree (``system_top_level.DRAM[1..1]``)
and gives energy per action for one access of ``width`` bits; dse keys tables by the bare level
name and keeps the per-vector figure (Timeloop divides by words per access itself).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from dse import validate
from dse.arch._build import split_name
from dse.arch._yaml import load_yaml
from dse.arch.spec import Arch
from dse.errors import InputError


def component_key(accelergy_name: str) -> str:
    """``system_top_level.shared_glb[1..1]`` -> ``shared_glb``."""
    bare = split_name(accelergy_name, file=None, field="name")[0]
    return bare.split(".")[-1]


def read_ert(path: str | Path) -> dict[str, dict[str, float]]:
    """Read an Accelergy ERT YAML (``ERT: {tables: [...]}``, or the ``tables`` block alone) into
    ``{component: {action: pJ}}``. With several argument variants of one action the first
    (Accelergy's default arguments) is kept."""
    doc = load_yaml(path)
    root = doc.get("ERT", doc) if isinstance(doc, dict) else None
    tables = root.get("tables") if isinstance(root, dict) else None
    if not isinstance(tables, list):
        raise InputError("no 'ERT: tables:' list found", file=path, field="ERT.tables")
    out: dict[str, dict[str, float]] = {}
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or "name" not in table:
            raise InputError("table without a name", file=path, field=f"ERT.tables[{i}]")
        actions: dict[str, float] = {}
        for j, action in enumerate(table.get("actions") or []):
            try:
                actions.setdefault(str(action["name"]), float(action["energy"]))
            except (KeyError, TypeError, ValueError):
                raise InputError("action needs a name and a numeric energy", file=path,
                                 field=f"ERT.tables[{i}].actions[{j}]") from None
        out[component_key(str(table["name"]))] = actions
    return out


def apply_ert(arch: Arch, ert: dict[str, dict[str, float]], *, source: str = "ERT file") -> Arch:
    """A copy of ``arch`` whose levels carry the ERT's energies (pJ per vector access; MAC:
    ``compute``). Levels the ERT does not list keep their energies (dummy levels: zero)."""
    out = copy.deepcopy(arch)
    for lvl in out.levels:
        if lvl.name in ert:
            lvl.energy = {a: float(e) for a, e in ert[lvl.name].items()}
        elif lvl.dummy and not lvl.energy:
            lvl.energy = {"read": 0.0, "write": 0.0, "update": 0.0, "leak": 0.0}
    if out.compute.name in ert:
        out.compute.energy = {a: float(e) for a, e in ert[out.compute.name].items()}
    missing = [lvl.name for lvl in out.levels if not lvl.energy]
    if not out.compute.energy:
        missing.append(out.compute.name)
    if missing:
        raise InputError(f"ERT has no entry for {missing}", field=missing[0])
    out.energy_source = source
    return out


def read_art(path: str | Path) -> dict[str, float]:
    """Read an Accelergy ART YAML into ``{component: area in µm² per instance}``."""
    doc = load_yaml(path)
    root = doc.get("ART", doc) if isinstance(doc, dict) else None
    tables = root.get("tables") if isinstance(root, dict) else None
    if not isinstance(tables, list):
        raise InputError("no 'ART: tables:' list found", file=path, field="ART.tables")
    out: dict[str, float] = {}
    for i, table in enumerate(tables):
        try:
            out[component_key(str(table["name"]))] = float(table["area"])
        except (KeyError, TypeError, ValueError):
            raise InputError("table needs a name and a numeric area", file=path,
                             field=f"ART.tables[{i}]") from None
    return out


def apply_art(arch: Arch, art: dict[str, float]) -> Arch:
    """A copy of ``arch`` with the ART's per-instance areas on the components it lists."""
    out = copy.deepcopy(arch)
    for node in [*out.levels, out.compute]:
        if node.name in art:
            node.area_um2 = art[node.name]
    return out


def _accelergy_name(name: str, instances: int) -> str:
    return f"system_top_level.{name}[1..{instances}]"


def ert_dict(arch: Arch) -> dict:
    """The Accelergy ERT document for ``arch``'s energies (the names timeloopfe gives)."""
    tables = [{"name": _accelergy_name(node.name, node.instances),
               "actions": [{"name": a, "arguments": {}, "energy": float(e)}
                           for a, e in node.energy.items()]}
              for node in [*arch.levels, arch.compute] if node.energy]
    return {"ERT": {"version": "0.4", "tables": tables}}


def art_dict(arch: Arch) -> dict:
    """The Accelergy ART document (area per instance, µm²) for components with a known area."""
    tables = [{"name": _accelergy_name(node.name, node.instances), "area": float(node.area_um2)}
              for node in [*arch.levels, arch.compute] if node.area_um2 is not None]
    return {"ART": {"version": "0.4", "tables": tables}}


def write_tables(arch: Arch, prefix: str | Path) -> list[Path]:
    """Write ``<prefix>.ERT.yaml`` and (when areas are known) ``<prefix>.ART.yaml``, the files
    Timeloop reads from Accelergy. Each is written to a temporary name, then moved in place."""
    prefix = Path(prefix)
    out = []
    for suffix, doc in ((".ERT.yaml", ert_dict(arch)), (".ART.yaml", art_dict(arch))):
        root = next(iter(doc.values()))
        if not root["tables"]:
            continue
        path = prefix.with_name(prefix.name + suffix)
        validate.write_text(path, yaml.safe_dump(doc, sort_keys=False), field="--output")
        out.append(path)
    return out
