"""The v0.4 single-file spec (``architecture: {nodes: [...]}``), flattened the way timeloopfe does.

A v0.4 design is a hierarchy: ``!Container`` nodes set attributes (``technology``) and a spatial
fanout (``spatial: {meshX, meshY}``) for everything after them; ``!Component`` nodes are leaves;
``!Parallel`` groups leaves that sit side by side (each keeps its own dataspaces). timeloopfe
turns each container with a fanout into a zero-energy ``inter_<container>_spatial`` storage level
that bypasses everything and carries the container's spatial constraints; dse does the same so a
v0.4 design and its native rendering give the same Arch. Attribute values may be simple
arithmetic on variables (``variables:``, ``variables_globals.yaml``), evaluated safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse import validate
from dse.arch import _build
from dse.arch._yaml import TAG_KEY, load_yaml, norm_keys
from dse.arch.constraints import apply_v04, pin_unit_factors
from dse.arch.expr import resolve
from dse.arch.spec import Arch, ComputeLevel, Constraints, StorageLevel
from dse.errors import InputError

CONV_DIMS = ("C", "M", "R", "S", "N", "P", "Q", "G")
CONV_DATASPACES = ("Weights", "Inputs", "Outputs")
# Classes Accelergy's plug-ins estimate directly (the rest must be compound classes).
PRIMITIVE_CLASSES = {
    "DRAM", "SRAM", "storage", "dummy_storage", "compute", "aladdin_register", "aladdin_adder",
    "aladdin_multiplier", "aladdin_comparator", "aladdin_counter", "intadder", "intmultiplier",
    "register", "wire", "crossbar",
    # compound classes dse's builtin estimator models itself (no components/ file needed)
    "smartbuffer_SRAM", "smartbuffer_RF", "regfile", "intmac",
}
# Attributes the compound classes leave "must_specify" that come from the environment.
ENVIRONMENT = {"technology", "global_cycle_seconds"}
VARIABLE_FILES = ("variables_globals.yaml", "variables.yaml")


def is_v04(doc: Any) -> bool:
    arch = doc.get("architecture") if isinstance(doc, dict) else None
    return isinstance(arch, dict) and isinstance(arch.get("nodes"), list)


def read_components(directory: Path) -> dict[str, dict[str, Any]]:
    """Compound component classes from every ``*.yaml`` in ``directory`` (name -> class)."""
    classes: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return classes
    for path in sorted(directory.glob("*.y*ml")):
        doc = load_yaml(path) or {}
        block = doc.get("compound_components", doc) if isinstance(doc, dict) else {}
        for i, cls in enumerate(block.get("classes") or [] if isinstance(block, dict) else []):
            if not isinstance(cls, dict) or "name" not in cls:
                raise InputError("compound class without a name", file=path,
                                 field=f"compound_components.classes[{i}]")
            classes[str(cls["name"])] = {**cls, "_file": str(path)}
    return classes


def read_variables(directory: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Top-level variables: files beside the spec, then the spec's own ``variables:``."""
    scope: dict[str, Any] = {}
    blocks = []
    for name in VARIABLE_FILES:
        if (directory / name).is_file():
            vdoc = load_yaml(directory / name)
            blocks.append(vdoc.get("variables") if isinstance(vdoc, dict) else None)
    blocks.append(doc.get("variables"))
    for block in blocks:
        for key, value in (block or {}).items():
            if key != "version":
                scope[str(key)] = resolve(value, scope)
    return scope


def _components(nodes: Any):
    """Every !Component in document order (through !Parallel / !Hierarchical)."""
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and node.get(TAG_KEY) == "Component":
            yield node
        elif isinstance(node, dict):
            yield from _components(node.get("nodes"))


def load_v04(path: str | Path, name: str | None = None, *,
             dims: tuple[str, ...] = CONV_DIMS,
             dataspaces: tuple[str, ...] = CONV_DATASPACES) -> Arch:
    """Read a v0.4 ``arch.yaml`` (with ``components/`` and variables files beside it)."""
    path = Path(path)
    doc = load_yaml(path)
    if not is_v04(doc):
        raise InputError("no 'architecture: nodes:' list found", file=path, field="architecture")
    classes = read_components(path.parent / "components")
    variables = read_variables(path.parent, doc)
    flat = Flattener(file=str(path), classes=classes, variables=variables, dims=dims,
                      dataspaces=dataspaces)
    flat.run(doc["architecture"]["nodes"], "architecture.nodes")
    return _build.finish(name or path.stem, flat.levels, flat.compute, file=str(path))


@dataclass
class Flattener:
    file: str
    classes: dict[str, dict[str, Any]]
    variables: dict[str, Any]
    dims: tuple[str, ...]
    dataspaces: tuple[str, ...]
    instances: int = 1
    mesh: tuple[int, int] = (1, 1)
    inherited: dict[str, Any] = field(default_factory=dict)
    levels: list[StorageLevel] = field(default_factory=list)
    compute: ComputeLevel | None = None
    last_leaf: int | None = None  # id() of the innermost component: the MAC unless it has a depth

    def run(self, nodes: Any, where: str) -> None:
        """Flatten a whole node list (the innermost component is the compute unit)."""
        leaves = list(_components(nodes))
        self.last_leaf = id(leaves[-1]) if leaves else None
        self.walk(nodes, where)

    def walk(self, nodes: Any, where: str) -> None:
        if not isinstance(nodes, list):
            raise InputError("expected a list of nodes", file=self.file, field=where)
        for i, node in enumerate(nodes):
            f = f"{where}[{i}]"
            if not isinstance(node, dict) or TAG_KEY not in node:
                raise InputError("expected a !Container, !Component or !Parallel node",
                                 file=self.file, field=f)
            tag = node[TAG_KEY]
            if tag == "Container":
                self.container(node, f)
            elif tag == "Component":
                self.component(node, f, parallel_keep=None)
            elif tag == "Parallel":
                self.parallel(node, f)
            elif tag == "Hierarchical":
                self.walk(node.get("nodes"), f"{f}.nodes")
            elif tag != "Nothing":
                raise InputError(f"unsupported node type !{tag}", file=self.file, field=f)

    def attributes(self, node: dict[str, Any], where: str) -> dict[str, Any]:
        raw = norm_keys(node.get("attributes"))
        scope = {**self.variables, **self.inherited}
        out: dict[str, Any] = {}
        for key, value in raw.items():
            out[key] = resolve(value, {**scope, **out})
        if not isinstance(node.get("attributes", {}), (dict, type(None))):
            raise InputError("attributes must be a mapping", file=self.file,
                             field=f"{where}.attributes")
        return out

    def fanout(self, node: dict[str, Any], where: str) -> tuple[int, int]:
        spatial = norm_keys(node.get("spatial"))
        scope = {**self.variables, **self.inherited}
        mx, my = (resolve(spatial.get(k, 1), scope) for k in ("meshX", "meshY"))
        for key, value in (("meshX", mx), ("meshY", my)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"must be a positive integer, got {value!r}", file=self.file,
                                 field=f"{where}.spatial.{key}")
        return mx, my

    def container(self, node: dict[str, Any], where: str) -> None:
        name = node.get("name")
        if not isinstance(name, str):
            raise InputError("missing required attribute 'name'", file=self.file,
                             field=f"{where}.name")
        self.inherited = {**self.inherited, **self.attributes(node, where)}
        mx, my = self.fanout(node, where)
        if mx * my == 1:
            return
        dummy = StorageLevel(
            name=f"inter_{name}_spatial", component_class="dummy_storage",
            instances=self.instances, mesh_x=self.mesh[0], mesh_y=self.mesh[1], depth=1, width=1,
            word_bits=1, n_banks=_build.TIMELOOPFE_DEFAULT_BANKS, dummy=True,
            constraints=Constraints(
                temporal_factors={d: ("=", 1) for d in self.dims},
                temporal_permutation=tuple(reversed(self.dims)),
                bypass=self.dataspaces))
        spatial = (node.get("constraints") or {}).get("spatial")
        if spatial:
            apply_v04(dummy.constraints, {"spatial": spatial}, spatial_ok=True, file=self.file,
                      field=f"{where}.constraints")
        pin_unit_factors(dummy.constraints)
        self.levels.append(dummy)
        self.instances *= mx * my
        self.mesh = (self.mesh[0] * mx, self.mesh[1] * my)

    def check_class(self, cls: Any, subclass: Any, attrs: dict[str, Any], where: str) -> None:
        if not isinstance(cls, str):
            raise InputError("missing required attribute 'class'", file=self.file,
                             field=f"{where}.class")
        for name, key in ((cls, "class"), (subclass, "subclass")):
            if name is None:
                continue
            if name not in PRIMITIVE_CLASSES and name not in self.classes:
                raise InputError(f"unknown component class {name!r} (not a primitive and not in "
                                 "components/)", file=self.file, field=f"{where}.{key}")
        compound = self.classes.get(cls)
        if compound:
            for key, default in norm_keys(compound.get("attributes")).items():
                if (default == "must_specify" and key not in attrs and key not in ENVIRONMENT
                        and key not in self.variables):
                    raise InputError(f"missing required attribute {key!r} (class {cls})",
                                     file=self.file, field=f"{where}.attributes.{key}")
        if cls == "DRAM" and "width" not in attrs:
            raise InputError("missing required attribute 'width'", file=self.file,
                             field=f"{where}.attributes.width")

    def component(self, node: dict[str, Any], where: str,
                  parallel_keep: tuple[str, ...] | None) -> None:
        name = node.get("name")
        if not isinstance(name, str):
            raise InputError("missing required attribute 'name'", file=self.file,
                             field=f"{where}.name")
        where = f"architecture.{name}"
        attrs = {**self.inherited, **self.attributes(node, where)}
        cls, subclass = node.get("class"), node.get("subclass")
        self.check_class(cls, subclass, attrs, where)
        if subclass:
            attrs["subclass"] = subclass
        mx, my = self.fanout(node, where)
        self.instances *= mx * my
        self.mesh = (self.mesh[0] * mx, self.mesh[1] * my)
        if self.compute is not None:
            raise InputError("component listed after the compute level", file=self.file,
                             field=where)
        kw = dict(instances=self.instances, mesh_x=self.mesh[0], mesh_y=self.mesh[1],
                  file=self.file, field=where)
        innermost = id(node) == self.last_leaf and "depth" not in attrs
        if _build.is_compute(cls) or (innermost and cls not in _build.STORAGE_CLASSES):
            self.compute = _build.make_compute(name, cls, attrs, **kw)
            return
        level = _build.make_storage(name, cls, attrs, **kw)
        apply_v04(level.constraints, node.get("constraints"), spatial_ok=False, file=self.file,
                  field=f"{where}.constraints")
        for kind in ("keep", "bypass"):
            for name in getattr(level.constraints, kind) or ():
                validate.resolve(name, self.dataspaces, f"{where}.{kind}", file=self.file,
                                 what="dataspace")
        if parallel_keep is not None and level.constraints.keep is not None:
            others = [d for d in parallel_keep if d not in level.constraints.keep]
            have = list(level.constraints.bypass or ())
            level.constraints.bypass = tuple(have + [d for d in others if d not in have])
        pin_unit_factors(level.constraints)
        self.levels.append(level)

    def parallel(self, node: dict[str, Any], where: str) -> None:
        """Side-by-side leaves: each branch keeps its own dataspaces and bypasses the ones its
        siblings (or a ``!Nothing`` branch) keep."""
        branches = node.get("nodes") or []
        union: list[str] = []
        for branch in branches:
            keep = ((branch.get("constraints") or {}).get("dataspace") or {}).get("keep") \
                if isinstance(branch, dict) else None
            for d in keep or ():
                if d not in union:
                    union.append(str(d))
        for i, branch in enumerate(branches):
            f = f"{where}.nodes[{i}]"
            tag = branch.get(TAG_KEY) if isinstance(branch, dict) else None
            if tag == "Component":
                self.component(branch, f, parallel_keep=tuple(union))
            elif tag != "Nothing":
                raise InputError("a !Parallel branch must be a !Component or !Nothing",
                                 file=self.file, field=f)
