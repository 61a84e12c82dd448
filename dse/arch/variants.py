"""Design variants for sweeps: rescale a design and re-estimate its energies.

``make_variant(arch, pe_x=, pe_y=, depths={level: depth}, word_bits=, technology=)`` returns a
new Arch; the original is untouched. The PE array size is the MAC mesh: the change goes to the
innermost level that fans out along that axis (the PE array), and every level below it scales
with it. ``word_bits`` rescales every level's word (wider partial sums keep their ratio), and
levels that move one word per access (registers) widen with it. ``protect={level: scheme}``
adds parity / SEC-DED / TMR to storage levels (``dse.arch.protection``: energy and area
re-estimated, logical geometry kept). Anything that cannot be built or that breaks one of the
design's constraints is rejected with the reason.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from dse import validate
from dse.arch.energy import estimate_energy, node_nm
from dse.arch.protection import protect as apply_protection
from dse.arch.spec import Arch
from dse.errors import InputError

PARAMS = ("pe_x", "pe_y", "depths", "word_bits", "technology", "protect")


def _positive_int(value: Any, field: str) -> int:
    validate.positive(value, field)
    if value != int(value):
        raise InputError(f"must be a whole number, got {value!r}", field=field)
    return int(value)


def _split_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Flat spellings a sweep file may use: ``depth.<level>`` / ``<level>.depth``."""
    depths: dict[str, Any] = {}
    for key, value in extra.items():
        if key.startswith("depth."):
            depths[key[len("depth."):]] = value
        elif key.endswith(".depth"):
            depths[key[: -len(".depth")]] = value
        else:
            raise InputError(f"unknown variant parameter (known: {', '.join(PARAMS)}, "
                             "depth.<level>)", field=key)
    return depths


def _resize_axis(arch: Arch, axis: str, size: int) -> None:
    """Set the MAC mesh along ``axis`` ('x' or 'y') to ``size``."""
    attr = f"mesh_{axis}"
    chain = [*arch.levels, arch.compute]
    fanouts = [getattr(chain[i + 1], attr) // getattr(chain[i], attr)
               for i in range(len(chain) - 1)]
    movers = [i for i, f in enumerate(fanouts) if f > 1]
    if movers:
        at = movers[-1]
    else:  # no fanout on this axis yet: put it where the other axis fans out (the PE array)
        other = [i for i in range(len(fanouts)) if chain[i + 1].instances > chain[i].instances]
        if not other:
            raise InputError("design has no spatial fanout to resize", field=f"pe_{axis}")
        at = other[-1]
    outer = math.prod(fanouts[:at])
    if size % outer:
        raise InputError(f"must be a multiple of {outer} (the fanout above the PE array)",
                         field=f"pe_{axis}")
    new = size // outer
    for node in chain[at + 1:]:
        setattr(node, attr, getattr(node, attr) // fanouts[at] * new)
    for node in chain:
        node.instances = node.mesh_x * node.mesh_y


def _check_constraints(arch: Arch) -> None:
    """Constraints that pin spatial factors must still fit the (new) fanouts."""
    for i, lvl in enumerate(arch.levels):
        pinned = math.prod(v for op, v in lvl.constraints.spatial_factors.values()
                           if op in ("=", ">="))
        fanout = arch.fanout(i)
        if pinned > fanout:
            raise InputError(f"spatial factors {lvl.constraints.spatial_factors} need a fanout "
                             f"of {pinned}, the variant has {fanout}",
                             field=f"{lvl.name}.constraints")


def _rescale_words(arch: Arch, word_bits: int) -> None:
    """Levels scale with the outermost level's word; the MAC's multiplier becomes ``word_bits``
    (its adder keeps its ratio). The design's own word width is a no-op."""
    base = arch.levels[0].word_bits
    if word_bits == base:
        return
    for lvl in arch.levels:
        if lvl.dummy:
            continue
        new = max(1, lvl.word_bits * word_bits // base)
        if lvl.block_size == 1:
            lvl.width = max(new, lvl.width * new // lvl.word_bits)
        lvl.word_bits = new
        if lvl.width < lvl.word_bits:
            raise InputError(f"a {new}-bit word does not fit the {lvl.width}-bit width",
                             field=f"{lvl.name}.width")
    c = arch.compute
    old = c.word_bits
    c.word_bits = word_bits
    if "multiplier_width" in c.attributes:
        c.attributes["multiplier_width"] = word_bits
    if "adder_width" in c.attributes:
        c.attributes["adder_width"] = max(1, int(c.attributes["adder_width"]) * word_bits // old)


def make_variant(arch: Arch, *, pe_x: int | None = None, pe_y: int | None = None,
                 depths: dict[str, int] | None = None, word_bits: int | None = None,
                 technology: str | None = None, protect: dict[str, str] | None = None,
                 **extra: Any) -> Arch:
    """A rescaled copy of ``arch`` with energies re-estimated (see the module docstring)."""
    depths = {**(depths or {}), **_split_extra(extra)}
    out = copy.deepcopy(arch)
    tags = []
    for axis, size in (("x", pe_x), ("y", pe_y)):
        if size is not None:
            _resize_axis(out, axis, _positive_int(size, f"pe_{axis}"))
            tags.append(f"pe_{axis}={size}")
    for name, depth in depths.items():
        try:
            lvl = out.level(name)
        except KeyError:
            raise InputError(f"no level {name!r} (levels: {[x.name for x in out.levels]})",
                             field=f"depths.{name}") from None
        if lvl.dummy or lvl.depth is None:
            raise InputError("this level has no depth to change", field=f"depths.{name}")
        lvl.depth = _positive_int(depth, f"depths.{name}")
        tags.append(f"{name}.depth={depth}")
    if word_bits is not None:
        _rescale_words(out, _positive_int(word_bits, "word_bits"))
        tags.append(f"word_bits={word_bits}")
    if technology is not None:
        tech = str(technology) if str(technology).endswith("nm") else f"{technology}nm"
        node_nm(tech, field="technology")
        for node in [*out.levels, out.compute]:
            if node.technology is not None:
                node.technology = tech
        out.technology = tech
        tags.append(f"technology={tech}")
    _check_constraints(out)
    plan = _protect_plan(protect)
    tags += [f"{name}={scheme}" for name, scheme in plan.items()]
    out.name = f"{arch.name}[{','.join(tags)}]" if tags else arch.name
    return apply_protection(estimate_energy(out), plan)


def _protect_plan(protect: Any) -> dict[str, str]:
    """``{level: scheme}`` from a dict or ``"level=scheme,..."`` (the CLI / grid spelling);
    ``"none"`` is the design as shipped."""
    if protect is None or protect == "none":
        return {}
    if isinstance(protect, str):
        pairs = [p.split("=", 1) for p in protect.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise InputError(f"expected level=scheme[,level=scheme], got {protect!r}", field="protect")
        protect = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(protect, dict):
        raise InputError(f"expected a mapping level -> scheme, got {protect!r}", field="protect")
    return {str(k): str(v) for k, v in protect.items()}
