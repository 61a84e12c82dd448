"""dse's own design format (``designs/<name>/design.yaml``) and the shipped-design registry.

A dse design lists the flattened hierarchy directly, outermost first, in dse's conventions:
storage entries (``name``, ``class``, ``depth``, ``width``, ``word_bits``, ``banks``,
bandwidths, ``keep``/``bypass``, ``temporal: {factors, order}``), ``spatial:`` entries for a fanout
(become timeloopfe's ``inter_<name>_spatial`` dummy level, with ``mesh_x``/``mesh_y``, ``factors``,
``order`` and Timeloop's ``split``), and one ``compute`` entry. ``order`` lists loops OUTERMOST
first (Timeloop's permutation strings are innermost first). The file is turned into v0.4 nodes
and flattened by the same code as a v0.4 spec, so all three input forms agree by construction.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dse.arch import _build
from dse.arch._yaml import TAG_KEY
from dse.arch.spec import Arch
from dse.arch.v04 import CONV_DATASPACES, CONV_DIMS, Flattener
from dse.errors import InputError

FORMAT_KEY = "dse_design"
DESIGN_FILE = "design.yaml"
# Component classes the builtin energy estimator knows (see dse.arch.energy).
BUILTIN_CLASSES = ("DRAM", "SRAM", "smartbuffer_SRAM", "smartbuffer_RF", "regfile", "storage",
                   "dummy_storage", "intmac", "aladdin_register")
STORAGE_KEYS = {"name", "class", "subclass", "depth", "width", "word_bits", "banks",
                "read_bandwidth", "write_bandwidth", "multiple_buffering", "technology", "keep",
                "bypass", "temporal", "attributes"}
SPATIAL_KEYS = {"spatial", "mesh_x", "mesh_y", "factors", "order", "split"}
COMPUTE_KEYS = {"name", "class", "word_bits", "technology", "attributes"}


def designs_dir() -> Path:
    """Where shipped designs live: ``$DSE_DESIGNS`` or the repository's ``designs/``."""
    env = os.environ.get("DSE_DESIGNS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "designs"


def list_designs() -> list[str]:
    """Names of the shipped designs (``designs/<name>/design.yaml``), sorted."""
    root = designs_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{DESIGN_FILE}"))


def design_path(name: str) -> Path | None:
    path = designs_dir() / name / DESIGN_FILE
    return path if path.is_file() else None


def is_design(doc: Any) -> bool:
    return isinstance(doc, dict) and FORMAT_KEY in doc


def _check_keys(entry: dict[str, Any], allowed: set[str], file: str, where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise InputError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}", file=file,
                         field=f"{where}.{unknown[0]}")


def _perm(order: Any) -> list[str] | None:
    """dse ``order`` (outermost first) -> v0.4 permutation (innermost first)."""
    return None if order is None else list(reversed([str(d) for d in order]))


def _storage_node(entry: dict[str, Any], tech: Any, file: str, where: str) -> dict[str, Any]:
    _check_keys(entry, STORAGE_KEYS, file, where)
    attrs: dict[str, Any] = dict(entry.get("attributes") or {})
    for ours, theirs in (("depth", "depth"), ("width", "width"), ("word_bits", "datawidth"),
                         ("banks", "n_banks"), ("read_bandwidth", "read_bandwidth"),
                         ("write_bandwidth", "write_bandwidth"),
                         ("multiple_buffering", "multiple_buffering")):
        if ours in entry:
            attrs[theirs] = entry[ours]
    technology = entry.get("technology", tech)
    if technology is not None:
        attrs["technology"] = technology
    constraints: dict[str, Any] = {}
    dataspace = {k: entry[k] for k in ("keep", "bypass") if k in entry}
    if dataspace:
        constraints["dataspace"] = dataspace
    temporal = dict(entry.get("temporal") or {})
    _check_keys(temporal, {"factors", "order"}, file, f"{where}.temporal")
    if temporal:
        constraints["temporal"] = {"factors": temporal.get("factors"),
                                   "permutation": _perm(temporal.get("order"))}
        constraints["temporal"] = {k: v for k, v in constraints["temporal"].items()
                                   if v is not None}
    node = {TAG_KEY: "Component", "name": entry.get("name"), "class": entry.get("class"),
            "attributes": attrs, "constraints": constraints}
    if entry.get("subclass"):
        node["subclass"] = entry["subclass"]
    return node


def _spatial_node(entry: dict[str, Any], file: str, where: str) -> dict[str, Any]:
    _check_keys(entry, SPATIAL_KEYS, file, where)
    spatial = {k: v for k, v in (("factors", entry.get("factors")),
                                 ("permutation", _perm(entry.get("order"))),
                                 ("split", entry.get("split"))) if v is not None}
    return {TAG_KEY: "Container", "name": entry["spatial"],
            "spatial": {"meshX": entry.get("mesh_x", 1), "meshY": entry.get("mesh_y", 1)},
            "constraints": {"spatial": spatial} if spatial else {}}


def design_nodes(doc: dict[str, Any], file: str) -> list[dict[str, Any]]:
    """The v0.4 node list equivalent to a dse design."""
    tech = doc.get("technology")
    nodes: list[dict[str, Any]] = []
    levels = doc.get("levels")
    if not isinstance(levels, list) or not levels:
        raise InputError("missing required attribute 'levels' (a list)", file=file,
                         field="levels")
    for i, entry in enumerate(levels):
        where = f"levels[{i}]"
        if not isinstance(entry, dict):
            raise InputError("expected a mapping", file=file, field=where)
        if "spatial" in entry:
            nodes.append(_spatial_node(entry, file, where))
        else:
            nodes.append(_storage_node(entry, tech, file, f"{where}({entry.get('name')})"))
    compute = doc.get("compute")
    if not isinstance(compute, dict):
        raise InputError("missing required attribute 'compute'", file=file, field="compute")
    _check_keys(compute, COMPUTE_KEYS, file, "compute")
    attrs = dict(compute.get("attributes") or {})
    if "word_bits" in compute:
        attrs["datawidth"] = compute["word_bits"]
    if compute.get("technology", tech) is not None:
        attrs["technology"] = compute.get("technology", tech)
    nodes.append({TAG_KEY: "Component", "name": compute.get("name"),
                  "class": compute.get("class"), "attributes": attrs})
    return nodes


def arch_from_design(doc: dict[str, Any], *, file: str, name: str | None = None) -> Arch:
    if doc.get(FORMAT_KEY) != 1:
        raise InputError(f"unsupported {FORMAT_KEY} version {doc.get(FORMAT_KEY)!r} (expected 1)",
                         file=file, field=FORMAT_KEY)
    if not isinstance(doc.get("name", ""), str):
        raise InputError(f"must be a string, got {doc['name']!r}", file=file, field="name")
    flat = Flattener(file=file, classes={c: {} for c in BUILTIN_CLASSES}, variables={},
                      dims=tuple(doc.get("dims") or CONV_DIMS),
                      dataspaces=tuple(doc.get("dataspaces") or CONV_DATASPACES))
    flat.run(design_nodes(doc, file), "levels")
    return _build.finish(str(doc.get("name") or name or Path(file).parent.name), flat.levels,
                         flat.compute, file=file)
