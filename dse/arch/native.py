"""Timeloop's native tree spec (``architecture: {subtree, local}``), read and written.

This is what Timeloop v3.0.x itself reads (timeloopfe's output for v0.4 designs, and the older
v0.3 hand-written designs). Instances multiply down the tree (``PE[0..167]`` holding
``ifmap_spad`` gives 168 spads), ``local`` components sit outside their node's ``subtree``, and
constraints come from ``architecture_constraints`` / ``mapspace_constraints`` ``targets``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dse import validate
from dse.arch import _build
from dse.arch._yaml import load_yaml, norm_keys
from dse.arch.constraints import apply_target, native_targets
from dse.arch.spec import Arch, ComputeLevel, StorageLevel
from dse.errors import InputError

INHERITED = ("technology",)


def is_native(doc: Any) -> bool:
    arch = doc.get("architecture", doc) if isinstance(doc, dict) else None
    return isinstance(arch, dict) and ("subtree" in arch or "local" in arch)


def load_native(path: str | Path, name: str | None = None) -> Arch:
    """Read a native tree spec (hyphenated or underscored keys) into an Arch."""
    path = Path(path)
    return arch_from_native(load_yaml(path), name=name or path.stem, file=str(path))


def arch_from_native(doc: Any, *, name: str, file: str | None = None) -> Arch:
    if not is_native(doc):
        raise InputError("no 'architecture: {subtree/local}' tree found", file=file,
                         field="architecture")
    tree = doc.get("architecture", doc)
    levels: list[StorageLevel] = []
    computes: list[ComputeLevel] = []
    _walk(tree, 1, None, {}, levels, computes, file=file, field="architecture")
    if len(computes) > 1:
        raise InputError(f"more than one compute component: {[c.name for c in computes]}",
                         file=file, field="architecture")
    arch = _build.finish(name, levels, computes[0] if computes else None, file=file)
    for key in ("architecture_constraints", "mapspace_constraints", "constraints"):
        _apply_constraints(arch, doc.get(key) if isinstance(doc, dict) else None, file, key)
    mapspace = doc.get("mapspace") if isinstance(doc, dict) else None
    if isinstance(mapspace, dict):
        _apply_constraints(arch, mapspace.get("constraints") or mapspace, file, "mapspace")
    return arch


def _walk(node: dict[str, Any], count: int, mesh_x: int | None, inherited: dict[str, Any],
          levels: list[StorageLevel], computes: list[ComputeLevel], *, file: str | None,
          field: str) -> None:
    if not isinstance(node, dict):
        raise InputError("expected a mapping", file=file, field=field)
    attrs = {**inherited, **norm_keys(node.get("attributes"))}
    scope = {k: attrs[k] for k in INHERITED if k in attrs}
    mesh_x = attrs.get("meshX", mesh_x)
    for i, leaf in enumerate(node.get("local") or []):
        _leaf(leaf, count, mesh_x, scope, levels, computes, file=file, field=f"{field}.local[{i}]")
    for i, sub in enumerate(node.get("subtree") or []):
        sub_name, sub_count = _build.split_name(sub.get("name", "subtree") if isinstance(sub, dict)
                                                else None, file=file, field=f"{field}.subtree[{i}]")
        _walk(sub, count * sub_count, mesh_x, scope, levels, computes, file=file,
              field=f"{field}.{sub_name}")


def _leaf(leaf: dict[str, Any], count: int, mesh_x: int | None, inherited: dict[str, Any],
          levels: list[StorageLevel], computes: list[ComputeLevel], *, file: str | None,
          field: str) -> None:
    if not isinstance(leaf, dict):
        raise InputError("expected a component mapping", file=file, field=field)
    name, n = _build.split_name(leaf.get("name"), file=file, field=f"{field}.name")
    field = f"architecture.{name}"
    cls = leaf.get("class")
    if not isinstance(cls, str):
        raise InputError("missing required attribute 'class'", file=file, field=f"{field}.class")
    attrs = {**inherited, **norm_keys(leaf.get("attributes"))}
    if leaf.get("subclass"):
        attrs["subclass"] = leaf["subclass"]
    if leaf.get("enabled") is False or _build.is_network(cls):
        return
    if "instances" in attrs and n == 1:  # v0.2 style: the count as an attribute
        n = int(attrs["instances"]) if isinstance(attrs["instances"], int) else 0
        if n <= 0:
            raise InputError(f"must be a positive integer, got {attrs['instances']!r}",
                             file=file, field=f"{field}.instances")
    instances = count * n
    mx, my = _build.check_mesh(instances, attrs.get("meshX", mesh_x),
                               attrs.get("meshY"), file=file, field=field)
    if _build.is_compute(cls, leaf.get("required_actions")):
        computes.append(_build.make_compute(name, cls, attrs, instances=instances, mesh_x=mx,
                                            mesh_y=my, file=file, field=field))
    else:
        if computes:
            raise InputError("storage listed inside the compute level", file=file, field=field)
        levels.append(_build.make_storage(name, cls, attrs, instances=instances, mesh_x=mx,
                                          mesh_y=my, file=file, field=field))


def _targets(block: Any) -> list[Any]:
    if block is None:
        return []
    if isinstance(block, list):
        return block
    if isinstance(block, dict):
        return list(block.get("targets") or [])
    return []


def _apply_constraints(arch: Arch, block: Any, file: str | None, key: str) -> None:
    names = {lvl.name: lvl for lvl in arch.levels}
    for i, target in enumerate(_targets(block)):
        field = f"{key}.targets[{i}]"
        if not isinstance(target, dict):
            raise InputError("expected a mapping", file=file, field=field)
        level_name = _build.split_name(target.get("target"), file=file, field=f"{field}.target")[0]
        if level_name == arch.compute.name:
            continue  # Timeloop accepts (and ignores) targets on the arithmetic level
        if level_name not in names:
            raise InputError(f"constraint names unknown level {level_name!r}", file=file,
                             field=f"{field}.target")
        apply_target(names[level_name].constraints, target, file=file, field=field)


# ---------------------------------------------------------------------------------------------
# Writer


def native_dict(arch: Arch, *, keys: str = "hyphen", constraints: bool = True,
                unit_dims: Iterable[str] | None = None) -> dict[str, Any]:
    """The native tree (flat, timeloopfe-style) plus ``architecture_constraints`` (left out
    with ``constraints=False``: Timeloop v3.0.3's model rejects valid mappings against them).
    ``unit_dims``: a problem's size-1 dims; given, spatial splits are written as dse reads them
    (:func:`dse.arch.constraints.split_as_meant`), so Timeloop's mapper searches dse's space."""
    local: list[dict[str, Any]] = [_storage_node(lvl) for lvl in arch.levels]
    local.append(_compute_node(arch.compute))
    doc: dict[str, Any] = {
        "architecture": {
            "version": "0.4",
            "subtree": [{"name": "system_top_level",
                         "attributes": {"technology": "SET ME"}, "local": local}],
        },
    }
    targets = [t for lvl in arch.levels for t in native_targets(lvl.name, lvl.constraints, unit_dims)]
    if targets and constraints:
        doc["architecture_constraints"] = {"targets": targets}
    return _rekey(doc, keys)


def write_native(arch: Arch, path: str | Path, *, keys: str = "hyphen",
                 constraints: bool = True, unit_dims: Iterable[str] | None = None) -> Path:
    """Write Timeloop's native tree form (hyphenated keys for v3.0.x by default; ``keys=
    "underscore"`` for newer Timeloop). Re-reading it gives back the same Arch."""
    if keys not in ("hyphen", "underscore"):
        raise InputError(f"keys must be 'hyphen' or 'underscore', got {keys!r}", field="keys")
    path = Path(path)
    doc = native_dict(arch, keys=keys, constraints=constraints, unit_dims=unit_dims)
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    validate.write_text(path, text, field="--output")
    return path


def _storage_node(lvl: StorageLevel) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if lvl.depth is not None:
        attrs["depth"] = lvl.depth
    attrs["width"] = lvl.width
    attrs["datawidth"] = lvl.word_bits
    attrs["n_banks"] = lvl.n_banks
    for key in ("read_bandwidth", "write_bandwidth"):
        if getattr(lvl, key) is not None:
            attrs[key] = _plain(getattr(lvl, key))
    attrs["multiple_buffering"] = _plain(lvl.multiple_buffering)
    if lvl.technology or lvl.dummy:  # no node: inherit the top level's, as timeloopfe writes it
        attrs["technology"] = lvl.technology if lvl.technology else -1
    attrs["meshX"], attrs["meshY"] = lvl.mesh_x, lvl.mesh_y
    extra = dict(lvl.attributes)
    node: dict[str, Any] = {"name": f"{lvl.name}[1..{lvl.instances}]",
                            "class": lvl.component_class}
    if "subclass" in extra:
        node["subclass"] = extra.pop("subclass")
    node["attributes"] = {**extra, **attrs}
    if not lvl.dummy:
        node["required_actions"] = ["write", "read", "update", "leak"]
    return node


def _compute_node(c: ComputeLevel) -> dict[str, Any]:
    attrs = dict(c.attributes)
    if "multiplier_width" not in attrs:
        attrs["datawidth"] = c.word_bits
    if c.technology:
        attrs["technology"] = c.technology
    attrs["meshX"], attrs["meshY"] = c.mesh_x, c.mesh_y
    return {"name": f"{c.name}[1..{c.instances}]", "class": c.component_class,
            "attributes": attrs, "required_actions": ["compute"]}


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# Keys Timeloop v3.0.3 reads hyphenated (it reads read_bandwidth / n_banks with underscores).
_HYPHENATED = {"multiple_buffering", "max_temporal_loops", "block_size", "word_bits",
               "cluster_size", "min_utilization"}


def _rekey(obj: Any, keys: str) -> Any:
    """Hyphenate the keys Timeloop v3.0 spells with hyphens."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            k2 = k.replace("_", "-") if keys == "hyphen" and k in _HYPHENATED else k
            out[k2] = _rekey(v, keys)
        return out
    if isinstance(obj, list):
        return [_rekey(v, keys) for v in obj]
    return obj
