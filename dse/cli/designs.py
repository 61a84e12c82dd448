"""``dse designs``: list the shipped designs, show one (levels, sizes, fanouts, constraints,
energy table), or write one in Timeloop's native form."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import asdict
from typing import Any

from dse import validate as check
from dse.cli._common import deprecated_alias, print_json
from dse.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("designs", help="list / show accelerator designs",
                              description=__doc__)
    p.add_argument("action", nargs="?", default="list",
                   choices=["list", "show", "native", "ert"],
                   help="list (default), show NAME, native NAME -o FILE (Timeloop's tree form), "
                   "or ert NAME -o PREFIX (Accelergy-format PREFIX.ERT.yaml / PREFIX.ART.yaml)")
    p.add_argument("design", nargs="?", help="design name, dse design file, v0.4 arch.yaml or "
                   "native Timeloop YAML")
    p.add_argument("--design-variant", dest="variant", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="pe_x=, pe_y=, depth.<level>=, word_bits=, technology=, "
                   "protect=<level>=none|parity|secded|secded_block|tmr (repeatable)")
    deprecated_alias(p, "--variant", "--design-variant", dest="variant", append=True)
    p.add_argument("--energy", default="auto",
                   help="auto (default), builtin, none, or an Accelergy ERT file")
    p.add_argument("--keys", default="hyphen", choices=["hyphen", "underscore"],
                   help="key spelling for 'native' (Timeloop v3.0: hyphen)")
    p.add_argument("-o", "--out", dest="output", help="output file for 'native', prefix for 'ert'")
    deprecated_alias(p, "--output", "--out", dest="output")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_variants(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected KEY=VALUE, got {item!r}", field="--design-variant")
        out[key.strip()] = _value(value.strip())
    return out


def _load(args: argparse.Namespace):
    from dse.arch import load_arch, make_variant

    if not args.design:
        raise InputError("which design? (see 'dse designs')", field="design")
    arch = load_arch(args.design, energy=args.energy)
    params = parse_variants(args.variant)
    if params:
        try:
            arch = make_variant(arch, **params)
        except InputError as exc:
            raise InputError(exc.reason, file=args.design,
                             field=f"--design-variant {exc.field}" if exc.field
                             else "--design-variant") from None
    return arch


def run(args: argparse.Namespace) -> int:
    from dse.arch import list_designs, load_arch, write_native
    from dse.arch.ert import write_tables

    if args.action == "list":
        rows = []
        for name in list_designs():
            arch = load_arch(name, energy="none")
            rows.append({"name": name, "technology": arch.technology,
                         "pe_array": [arch.compute.mesh_x, arch.compute.mesh_y],
                         "levels": [lvl.name for lvl in arch.levels if not lvl.dummy]})
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                pes = "x".join(map(str, r["pe_array"]))
                head = f"{r['name']:<28} {r['technology'] or '-':>6}  PEs {pes:<7} "
                print("\n".join(textwrap.wrap(" > ".join(r["levels"]), 100,
                                               initial_indent=head,
                                               subsequent_indent=" " * len(head),
                                               break_on_hyphens=False)))
        return 0
    if args.action in ("native", "ert"):
        if not args.output:
            raise InputError(f"'{args.action}' needs -o", field="--output")
        check.output_file(args.output if args.action == "native" else f"{args.output}.ERT.yaml",
                          "--output")
    arch = _load(args)
    if args.action in ("native", "ert"):
        if args.action == "native":
            paths = [write_native(arch, args.output, keys=args.keys)]
        else:
            paths = write_tables(arch, args.output)
        for path in paths:
            print(f"wrote {path}")
        return 0
    if args.json:
        data = asdict(arch)
        for i, lvl in enumerate(data["levels"]):
            lvl["fanout_xy"] = list(arch.fanout_xy(i))
            lvl["capacity_words"] = arch.levels[i].capacity_words
        print_json(data)
    else:
        print("\n".join(describe(arch)))
    return 0


def _constraints(lvl) -> str:
    from dse.arch.constraints import factors_text, spatial_axes

    c = lvl.constraints
    parts = []
    if c.keep is not None:
        parts.append(f"keep {','.join(c.keep)}")
    if c.bypass:
        parts.append(f"bypass {','.join(c.bypass)}")
    nonunit = {d: f for d, f in c.temporal_factors.items() if f != ("=", 1)}
    if nonunit:
        parts.append(f"T[{factors_text(nonunit)}]")
    if c.temporal_permutation and not lvl.dummy:
        parts.append("T-order " + "".join(c.temporal_permutation))
    if c.spatial_permutation or c.spatial_factors:
        x, y = spatial_axes(c)
        ones = {d for d, f in c.spatial_factors.items() if f == ("=", 1)}
        parts.append(f"S-X {''.join(d for d in x if d not in ones) or '-'} "
                     f"S-Y {''.join(d for d in y if d not in ones) or '-'}")
    return "; ".join(parts)


def _area(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def describe(arch) -> list[str]:
    """Human-readable summary: one row per level, then the energy table."""
    c = arch.compute
    lines = [f"{arch.name}: {arch.technology or '-'}, {c.instances} MACs "
             f"({c.mesh_x}x{c.mesh_y}), energies: {arch.energy_source}", "",
             f"{'level':<24}{'class':<18}{'inst':>6}{'fanout':>8}{'depth':>8}{'width':>6}"
             f"{'word':>5}{'banks':>6}"]
    for i, lvl in enumerate(arch.levels):
        fx, fy = arch.fanout_xy(i)
        depth = "-" if lvl.depth is None else str(lvl.depth)
        lines.append(f"{lvl.name:<24}{lvl.component_class:<18}{lvl.instances:>6}"
                     f"{f'{fx}x{fy}':>8}{depth:>8}{lvl.width:>6}{lvl.word_bits:>5}"
                     f"{lvl.n_banks:>6}")
    lines.append(f"{c.name:<24}{c.component_class:<18}{c.instances:>6}{'':>8}{'':>8}{'':>6}"
                 f"{c.word_bits:>5}")
    lines.append("(depth in words; width = bits per access row; word = bits per word)")
    # constraints in their own block, wrapped: a column of them made the table ~135 wide
    lines += ["", "constraints (loop orders outermost first; T = temporal, S-X / S-Y = spatial)"]
    for lvl in arch.levels:
        lines += textwrap.wrap(_constraints(lvl), 100, initial_indent=f"{lvl.name:<24}",
                               subsequent_indent=" " * 24, break_on_hyphens=False)
    lines += ["", f"{'energy (pJ/access)':<24}{'read':>12}{'write':>12}{'update':>12}"
              f"{'leak':>12}{'area um2':>14}"]
    for lvl in arch.levels:
        e = lvl.energy
        lines.append(f"{lvl.name:<24}" + "".join(f"{e.get(a, float('nan')):>12.6g}"
                                                 for a in ("read", "write", "update", "leak"))
                     + f"{_area(lvl.area_um2):>14}")
    lines.append(f"{c.name + ' (compute)':<24}{c.energy.get('compute', float('nan')):>12.6g}"
                 f"{'':>24}{c.energy.get('leak', float('nan')):>12.6g}{_area(c.area_um2):>14}")
    return lines
