"""Dataflow constraints in both spellings Timeloop accepts, to and from :class:`Constraints`.

Timeloop writes a permutation innermost loop first (``"GNCPRSQM"``: G innermost); dse stores it
outermost first (the order of :class:`dse.model.mapping.Loop` lists), so the string is reversed on
the way in and out. Timeloop pins the listed dims at the innermost positions; unlisted dims are free
and sit outside them. Factors may be written ``"N=1,C=1"``, ``"N1 C1"``, ``[N=1, C=1]``,
``{N: 1}``, with ``=``, ``<=`` or ``>=``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dse.arch._yaml import norm_keys
from dse.arch.spec import Constraints
from dse.errors import InputError

_FACTOR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*?)\s*(<=|>=|=)?\s*(-?\d+)\s*$")


def parse_factors(value: Any, *, file: str | None = None, field: str = "factors"
                  ) -> dict[str, tuple[str, int]]:
    """Parse any spelling of a factor list into ``{dim: (op, value)}`` (order kept)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, str):
        items = [t for t in re.split(r"[,\s]+", value) if t]
    elif isinstance(value, Iterable):
        items = [str(t) for t in value]
    else:
        raise InputError(f"cannot read factors {value!r}", file=file, field=field)
    out: dict[str, tuple[str, int]] = {}
    for item in items:
        match = _FACTOR.match(item)
        if not match:
            raise InputError(f"malformed factor {item!r} (expected e.g. C=4)", file=file,
                             field=field)
        dim, op, num = match.group(1), match.group(2) or "=", int(match.group(3))
        if num <= 0:
            raise InputError(f"factor {item!r} must be positive", file=file, field=field)
        out[dim] = (op, num)
    return out


def parse_permutation(value: Any, *, file: str | None = None, field: str = "permutation"
                      ) -> tuple[str, ...]:
    """Parse a Timeloop permutation (innermost first) and return it OUTERMOST first."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = [t for t in re.split(r"[,\s]+", value) if t]
        dims = list(parts[0]) if len(parts) == 1 else parts
    elif isinstance(value, Iterable):
        dims = [str(d) for d in value]
    else:
        raise InputError(f"cannot read permutation {value!r}", file=file, field=field)
    if len(set(dims)) != len(dims):
        raise InputError(f"permutation {value!r} repeats a dimension", file=file, field=field)
    return tuple(reversed(dims))


def timeloop_permutation(outer_first: Iterable[str]) -> str:
    """dse's outermost-first tuple back to Timeloop's innermost-first string (or comma list)."""
    dims = list(reversed(list(outer_first)))
    return "".join(dims) if all(len(d) == 1 for d in dims) else ",".join(dims)


def factors_text(factors: dict[str, tuple[str, int]]) -> str:
    return ",".join(f"{d}{op}{v}" for d, (op, v) in factors.items())


def _names(value: Any, file: str | None, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    raise InputError(f"expected a list of dataspace names, got {value!r}", file=file, field=field)


def apply_target(c: Constraints, target: dict[str, Any], *, file: str | None, field: str) -> None:
    """Merge one native ``targets`` entry (temporal / spatial / bypass / utilization) into ``c``."""
    t = norm_keys(target)
    kind = str(t.get("type", "")).lower()
    if kind == "temporal":
        if "factors" in t:
            c.temporal_factors = parse_factors(t["factors"], file=file, field=f"{field}.factors")
        if "permutation" in t:
            c.temporal_permutation = parse_permutation(t["permutation"], file=file,
                                                       field=f"{field}.permutation")
        if t.get("max_temporal_loops") is not None:
            c.max_temporal_loops = int(t["max_temporal_loops"])
    elif kind == "spatial":
        if "factors" in t:
            c.spatial_factors = parse_factors(t["factors"], file=file, field=f"{field}.factors")
        if "permutation" in t:
            c.spatial_permutation = parse_permutation(t["permutation"], file=file,
                                                      field=f"{field}.permutation")
        if t.get("split") is not None:
            c.spatial_split = int(t["split"])
    elif kind in ("bypass", "datatype", "dataspace"):
        if "keep" in t:
            c.keep = _names(t["keep"], file, f"{field}.keep")
        if "bypass" in t:
            c.bypass = _names(t["bypass"], file, f"{field}.bypass")
    elif kind in ("utilization", "parallelism"):
        c.min_utilization = float(t.get("min", t.get("min_utilization", 0.0)))
    else:
        raise InputError(f"unknown constraint type {kind!r}", file=file, field=f"{field}.type")


# v0.4 constraint kinds that only tune the mapper's search or sparse modelling: accepted, unused.
V04_IGNORED = {"max_overbooked_proportion", "sparse_optimizations", "version", "name"}


def apply_v04(c: Constraints, block: dict[str, Any] | None, *, spatial_ok: bool,
              file: str | None, field: str) -> None:
    """Merge a v0.4 inline ``constraints:`` block (temporal / spatial / dataspace) into ``c``."""
    for key, sub in norm_keys(block).items():
        if key in ("temporal", "spatial"):
            if key == "spatial" and not spatial_ok:
                continue
            apply_target(c, {"type": key, **norm_keys(sub)}, file=file, field=f"{field}.{key}")
        elif key == "dataspace":
            apply_target(c, {"type": "bypass", **norm_keys(sub)}, file=file, field=f"{field}.{key}")
        elif key in ("utilization", "min_utilization"):
            c.min_utilization = float(sub.get("min", 0.0) if isinstance(sub, dict) else sub)
        elif key in V04_IGNORED:
            continue
        else:
            raise InputError(f"unknown constraint kind {key!r}", file=file, field=f"{field}.{key}")


def native_targets(name: str, c: Constraints, unit_dims: Iterable[str] | None = None
                   ) -> list[dict[str, Any]]:
    """The Timeloop ``architecture_constraints.targets`` entries for one level. With
    ``unit_dims`` (the problem's size-1 dims), a spatial permutation with a ``split`` is written
    in dse's reading (see :func:`split_as_meant`)."""
    out: list[dict[str, Any]] = []
    if c.keep is not None or c.bypass is not None:
        entry: dict[str, Any] = {"target": name, "type": "bypass"}
        if c.keep is not None:
            entry["keep"] = list(c.keep)
        if c.bypass is not None:
            entry["bypass"] = list(c.bypass)
        out.append(entry)
    if c.temporal_factors or c.temporal_permutation or c.max_temporal_loops is not None:
        entry = {"target": name, "type": "temporal"}
        if c.temporal_factors:
            entry["factors"] = factors_text(c.temporal_factors)
        if c.temporal_permutation:
            entry["permutation"] = timeloop_permutation(c.temporal_permutation)
        if c.max_temporal_loops is not None:
            entry["max-temporal-loops"] = c.max_temporal_loops
        out.append(entry)
    if c.spatial_factors or c.spatial_permutation or c.spatial_split is not None:
        entry = {"target": name, "type": "spatial"}
        if c.spatial_factors:
            entry["factors"] = factors_text(c.spatial_factors)
        if c.spatial_permutation:
            perm = c.spatial_permutation
            if unit_dims is not None and c.spatial_split is not None:
                perm = split_as_meant(perm, c.spatial_factors, unit_dims)
            entry["permutation"] = timeloop_permutation(perm)
        if c.spatial_split is not None:
            entry["split"] = c.spatial_split
        out.append(entry)
    if c.min_utilization:
        out.append({"target": name, "type": "utilization", "min": c.min_utilization})
    return out


def split_as_meant(outer_first: tuple[str, ...], factors: dict[str, tuple[str, int]],
                   unit_dims: Iterable[str]) -> tuple[str, ...]:
    """A spatial permutation (outermost first) with every dim that cannot be non-unit (factor
    constrained to 1, or size 1 in the problem) moved outermost, the others kept innermost in
    their order.

    Why: Timeloop counts ``split`` from the innermost end of the string, and timeloopfe pins the
    unit dims innermost, so ``[M, C], split: 1`` becomes ``GNQPSRCM`` and only G (size 1) may
    use X. dse reads the split over the dims that can be non-unit (C on X, M on Y, as the design
    means it); this order makes Timeloop's literal reading say the same (``CMGNQPSR``). A unit
    loop has no order, so nothing else changes."""
    unit = set(unit_dims) | {d for d, (op, v) in factors.items() if op == "=" and v == 1}
    return (tuple(d for d in outer_first if d in unit)
            + tuple(d for d in outer_first if d not in unit))


def pin_unit_factors(c: Constraints) -> None:
    """timeloopfe's permutation pruning: dims constrained to factor 1 and missing from the
    permutation are pinned innermost (harmless: a loop of bound 1 has no order)."""
    for kind in ("temporal", "spatial"):
        factors = getattr(c, f"{kind}_factors")
        perm = list(getattr(c, f"{kind}_permutation"))
        for dim, (op, value) in factors.items():
            if op == "=" and value == 1 and dim not in perm:
                perm.append(dim)  # outermost-first tuple: appending = innermost
        setattr(c, f"{kind}_permutation", tuple(perm))


def spatial_axes(c: Constraints) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (X dims, Y dims) of a spatial permutation, outermost first. Timeloop's ``split``
    counts from the innermost end: the first ``split`` dims of its string go to X, the rest to Y
    (no split: all X)."""
    inner_first = list(reversed(c.spatial_permutation))
    split = len(inner_first) if c.spatial_split is None else min(c.spatial_split, len(inner_first))
    x, y = inner_first[:split], inner_first[split:]
    return tuple(reversed(x)), tuple(reversed(y))


def canonical(c: Constraints, unit_dims: Iterable[str] = ()) -> dict[str, Any]:
    """A comparable summary: permutations without dims that cannot matter (factor 1 or
    size-1 problem dims), the spatial X/Y split as dim tuples, keep/bypass as sets. Two specs of
    one design (v0.4 and timeloopfe's native output for some problem) compare equal on it."""
    unit = set(unit_dims)

    def keep_dims(p: tuple[str, ...], factors: dict[str, tuple[str, int]]) -> tuple[str, ...]:
        ones = {d for d, (op, v) in factors.items() if op in ("=", "<=") and v == 1}
        return tuple(d for d in p if d not in ones and d not in unit)

    x, y = spatial_axes(c)
    return {
        "temporal_factors": dict(c.temporal_factors),
        "temporal_permutation": keep_dims(c.temporal_permutation, c.temporal_factors),
        "spatial_factors": dict(c.spatial_factors),
        "spatial_x": keep_dims(x, c.spatial_factors),
        "spatial_y": keep_dims(y, c.spatial_factors),
        "spatial_split_given": c.spatial_split is not None,
        "keep": None if c.keep is None else frozenset(c.keep),
        "bypass": None if c.bypass is None else frozenset(c.bypass),
        "min_utilization": c.min_utilization,
        "max_temporal_loops": c.max_temporal_loops,
    }


__all__ = ["apply_target", "apply_v04", "canonical", "native_targets",
           "parse_factors", "parse_permutation", "pin_unit_factors", "spatial_axes",
           "split_as_meant",
           "timeloop_permutation"]
