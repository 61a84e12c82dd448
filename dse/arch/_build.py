"""Turning one component's attributes into a StorageLevel / ComputeLevel, shared by all loaders.

Both spec forms end up here with the same normalised attribute dict, so both produce the same
Arch. Unknown attributes are kept in ``attributes`` (the energy estimator reads some, e.g. DRAM
``type``); timeloopfe's bookkeeping defaults are dropped so that a v0.4 spec and its native
rendering compare equal.
"""

from __future__ import annotations

import re
from typing import Any

from dse import validate
from dse.arch.spec import Arch, ComputeLevel, Constraints, StorageLevel
from dse.errors import InputError

# Components Timeloop treats as the arithmetic (everything else in the tree is storage).
COMPUTE_CLASSES = {"intmac", "fpmac", "mac", "compute", "lmac", "aladdin_multiplier"}
STORAGE_CLASSES = {"DRAM", "SRAM", "regfile", "storage", "dummy_storage", "smartbuffer_SRAM",
                   "smartbuffer_RF", "smartbuffer_metadata", "regfile_metadata", "buffer"}
NETWORK_CLASSES = {"XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast", "network"}
# Attribute values timeloopfe writes when the user said nothing; dropped when at the default.
BOOKKEEPING = {
    "has_power_gating": False, "power_gated_at": None, "cluster_size": 1,
    "reduction_supported": True, "allow_overbooking": False, "min_utilization": 0,
    "version": None, "global_cycle_seconds": None, "enabled": None,
}
CONSUMED = {
    "depth", "entries", "width", "memory_width", "block_size", "instances", "datawidth",
    "word_bits", "n_banks", "num_banks",
    "read_bandwidth", "write_bandwidth", "multiple_buffering", "technology", "meshX", "meshY",
}
TIMELOOPFE_DEFAULT_BANKS = 2  # timeloopfe writes n_banks: 2 for storage that does not set it
_RANGE = re.compile(r"^(.*?)\[(\d+)\.\.(\d+)\]$")


def split_name(raw: Any, *, file: str | None, field: str) -> tuple[str, int]:
    """``"ifmap_spad[1..168]"`` -> ``("ifmap_spad", 168)``; a plain name counts once."""
    if not isinstance(raw, str) or not raw.strip():
        raise InputError("missing or empty name", file=file, field=field)
    match = _RANGE.match(raw.strip())
    if not match:
        return raw.strip(), 1
    lo, hi = int(match.group(2)), int(match.group(3))
    if hi < lo:
        raise InputError(f"empty instance range in {raw!r}", file=file, field=field)
    return match.group(1), hi - lo + 1


def technology(value: Any) -> str | None:
    """Technology as a string like ``"32nm"``; placeholders (``SET ME``, -1) mean unknown."""
    if value is None or value == -1 or str(value).strip().lower() in ("set me", "must_specify", ""):
        return None
    text = str(value).strip()
    return f"{text}nm" if re.fullmatch(r"\d+(\.\d+)?", text) else text


def is_compute(cls: str, required_actions: Any = None) -> bool:
    return cls in COMPUTE_CLASSES or (isinstance(required_actions, list)
                                      and "compute" in required_actions)


def is_network(cls: str) -> bool:
    return cls in NETWORK_CLASSES or cls.endswith("NoC")


def _number(attrs: dict[str, Any], keys: tuple[str, ...], *, file: str | None, field: str,
            positive: bool = True, allow_zero: bool = False) -> float | None:
    for key in keys:
        if key in attrs and attrs[key] is not None:
            return validate.number(attrs[key], f"{field}.{key}", file=file,
                                   minimum=0 if positive else None,
                                   open_min=positive and not allow_zero)
    return None


def _int(value: float | None, default: int | None) -> int | None:
    return default if value is None else int(value)


def extra_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes that carry meaning beyond the typed fields (DRAM type, MAC widths, ...)."""
    return {k: v for k, v in attrs.items() if k not in CONSUMED
            and not (k in BOOKKEEPING and (BOOKKEEPING[k] is None or v == BOOKKEEPING[k]))}


def make_storage(name: str, cls: str, attrs: dict[str, Any], *, instances: int, mesh_x: int,
                 mesh_y: int, file: str | None, field: str) -> StorageLevel:
    """A StorageLevel from normalised attributes, validating sizes (zero depth only for
    ``dummy_storage``, which holds no data)."""
    dummy = cls == "dummy_storage"
    word_bits = _int(_number(attrs, ("datawidth", "word_bits"), file=file, field=field), 8)
    depth = _number(attrs, ("depth",), file=file, field=field, allow_zero=dummy)
    width = _number(attrs, ("width", "memory_width"), file=file, field=field)
    block = _number(attrs, ("block_size",), file=file, field=field)
    if width is None:
        width = word_bits * block if block is not None else word_bits
    entries = _number(attrs, ("entries",), file=file, field=field)
    if depth is None and entries is not None:  # older specs: capacity in words, not vectors
        depth = max(1, int(entries) // max(1, int(width) // word_bits))
    if cls not in ("DRAM",) and depth is None and not dummy:
        raise InputError("missing required attribute 'depth'", file=file, field=f"{field}.depth")
    banks = _number(attrs, ("n_banks", "num_banks"), file=file, field=field)
    mb = _number(attrs, ("multiple_buffering",), file=file, field=field)
    return StorageLevel(
        name=name, component_class=cls, instances=instances, mesh_x=mesh_x, mesh_y=mesh_y,
        depth=_int(depth, None), width=int(width), word_bits=word_bits,
        n_banks=_int(banks, TIMELOOPFE_DEFAULT_BANKS),
        read_bandwidth=_number(attrs, ("read_bandwidth",), file=file, field=field),
        write_bandwidth=_number(attrs, ("write_bandwidth",), file=file, field=field),
        multiple_buffering=float(mb) if mb is not None else 1.0,
        technology=technology(attrs.get("technology")),
        attributes=extra_attributes(attrs), constraints=Constraints(), dummy=dummy,
    )


def make_compute(name: str, cls: str, attrs: dict[str, Any], *, instances: int, mesh_x: int,
                 mesh_y: int, file: str | None, field: str) -> ComputeLevel:
    """The MAC level; its word width is ``datawidth`` or else the multiplier width."""
    bits = _number(attrs, ("datawidth", "word_bits", "multiplier_width"), file=file, field=field)
    return ComputeLevel(
        name=name, component_class=cls, instances=instances, mesh_x=mesh_x, mesh_y=mesh_y,
        word_bits=_int(bits, 8), technology=technology(attrs.get("technology")),
        attributes=extra_attributes(attrs),
    )


def check_mesh(instances: int, mesh_x: int | None, mesh_y: int | None, *, file: str | None,
               field: str) -> tuple[int, int]:
    """Fill in a missing mesh side the way Timeloop does (all along X by default)."""
    if mesh_x is None and mesh_y is None:
        mesh_x = instances
    if mesh_x is None:
        mesh_x = instances // mesh_y if mesh_y else instances
    if mesh_y is None:
        mesh_y = instances // mesh_x if mesh_x else 1
    if mesh_x <= 0 or mesh_y <= 0 or mesh_x * mesh_y != instances:
        raise InputError(f"mesh {mesh_x}x{mesh_y} does not match {instances} instances",
                         file=file, field=f"{field}.meshX")
    return int(mesh_x), int(mesh_y)


def arch_technology(levels: list[StorageLevel], compute: ComputeLevel) -> str | None:
    """The design's node: the MAC's, else the innermost level that names one."""
    if compute.technology:
        return compute.technology
    return next((lvl.technology for lvl in reversed(levels) if lvl.technology), None)


def finish(name: str, levels: list[StorageLevel], compute: ComputeLevel | None, *,
           file: str | None) -> Arch:
    """Check the whole hierarchy (a compute level, instance counts that nest) and build it."""
    if compute is None:
        raise InputError("no compute (MAC) component found", file=file, field="architecture")
    if not levels:
        raise InputError("no storage levels found", file=file, field="architecture")
    arch = Arch(name=name, levels=levels, compute=compute, technology=None)
    arch.technology = arch_technology(levels, compute)
    for i, lvl in enumerate(levels):
        child = levels[i + 1] if i + 1 < len(levels) else compute
        if child.instances % lvl.instances:
            raise InputError(f"{child.instances} instances of {child.name} do not divide among "
                             f"{lvl.instances} of {lvl.name}", file=file, field=child.name)
    names = [lvl.name for lvl in levels] + [compute.name]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"duplicate component name(s) {sorted(dup)}", file=file,
                         field=sorted(dup)[0])
    return arch
