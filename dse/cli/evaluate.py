"""``dse evaluate``: run the builtin Timeloop-equivalent model (or real Timeloop) on one mapping.

Prints a Timeloop-style summary (per level and dataspace: scalar reads, updates, fills, energy;
then cycles, utilization, energy, EDP, fJ/MAC per component), or with ``--json`` one document
``{"energy_pJ", "cycles", "utilization", "macs", "edp", "levels": [...]}``. An invalid mapping
(over capacity, over fanout, wrong factor product) is one line naming the level, exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dse.cli._common import print_json
from dse.model.timeloop import ENERGY_RTOL


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate one mapping with the builtin model",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, metavar="NAME_OR_PATH",
                   help="design name, v0.4 arch.yaml (components/ beside it) or native spec")
    p.add_argument("--problem", required=True, type=Path, metavar="PROBLEM.yaml")
    p.add_argument("--mapping", required=True, type=Path, metavar="MAP.yaml",
                   help="Timeloop map.yaml (innermost-first permutations)")
    p.add_argument("--ert", type=Path, metavar="ERT.yaml",
                   help="Accelergy ERT to take the energies from (default: the design's)")
    p.add_argument("--exact-walk", action="store_true",
                   help="count tile deltas with the exact loop walk instead of Timeloop's default "
                        "two-iteration extrapolation (= TIMELOOP_DISABLE_TEMPORAL_EXTRAPOLATION=1)")
    p.add_argument("--backend", choices=("builtin", "timeloop"), default="builtin",
                   help="builtin model (default) or the real timeloop-model on PATH (then the "
                        "builtin model re-checks its numbers: see `check` in --json)")
    p.add_argument("--workdir", type=Path, default=Path("timeloop-run"),
                   help="with --backend timeloop: where its inputs and outputs are kept")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def stats_document(stats: Any) -> dict[str, Any]:
    """The result as plain JSON fields (the ``--json`` schema)."""
    return {
        "energy_pJ": stats.energy_pJ, "cycles": stats.cycles, "utilization": stats.utilization,
        "macs": stats.macs, "edp": stats.edp,
        "levels": [{"level": ls.level, "dataspace": ls.dataspace, "instances": ls.instances,
                    "reads": ls.reads, "updates": ls.updates, "fills": ls.fills,
                    "energy_pJ": ls.energy_pJ} for ls in stats.levels],
    }


def summary_text(stats: Any, arch_name: str) -> str:
    """A Timeloop-like text summary."""
    lines = [f"Design: {arch_name}", "",
             f"{'level':<26}{'dataspace':<10}{'inst':>6}{'reads':>16}{'updates':>16}"
             f"{'fills':>16}{'energy (pJ)':>18}"]
    for ls in stats.levels:
        lines.append(f"{ls.level:<26}{ls.dataspace:<10}{ls.instances:>6}{ls.reads:>16}"
                     f"{ls.updates:>16}{ls.fills:>16}{ls.energy_pJ:>18.2f}")
    lines += ["", "Summary Stats", "-------------",
              f"Utilization: {stats.utilization:.2f}",
              f"Cycles: {stats.cycles}",
              f"Energy: {stats.energy_pJ / 1e6:.2f} uJ",
              f"EDP(J*cycle): {stats.edp:.2e}", "",
              f"Computes = {stats.macs}", "fJ/Compute"]
    per = stats.component_energy()
    width = max(len(k) for k in per) + 2
    for name, pj in per.items():
        lines.append(f"    {name:<{width}}= {pj * 1000 / stats.macs:.2f}")
    lines.append(f"    {'Total':<{width}}= {stats.fJ_per_mac:.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dse.arch import apply_ert, load_arch, read_ert
    from dse.model import evaluate, read_mapping, timeloop
    from dse.problems import read_problem

    problem = read_problem(args.problem)
    arch = load_arch(args.arch)
    if args.ert:
        arch = apply_ert(arch, read_ert(args.ert))
    mapping = read_mapping(args.mapping, arch, problem)
    real = timeloop.evaluate(problem, arch, mapping, args.workdir) \
        if args.backend == "timeloop" else None
    stats = evaluate(problem, arch, mapping, extrapolate=not args.exact_walk)
    check = None
    if real is not None:
        stats, check = real, timeloop.agreement(real, stats)
    if args.json:
        print_json(stats_document(stats) | ({"check": check_document(check)} if check else {}))
    else:
        print(summary_text(stats, arch.name))
        if check:
            print(check_text(check))
    return 0


def check_document(check: Any) -> dict[str, Any]:
    """The builtin model against the real Timeloop on one mapping (JSON fields)."""
    return {"builtin_agrees": check.agree, "energy_pJ": check.energy_pJ, "cycles": check.cycles,
            "builtin_energy_pJ": check.builtin_energy_pJ,
            "builtin_cycles": check.builtin_cycles, "energy_rel_diff": check.energy_rel,
            "energy_rtol": ENERGY_RTOL, "error": check.error}


def check_text(check: Any) -> str:
    verdict = "agrees" if check.agree else "DISAGREES"
    return (f"builtin model {verdict} with timeloop-model: cycles {check.builtin_cycles} vs "
            f"{check.cycles}, relative energy difference {check.energy_rel:.2e} (tolerance "
            f"{ENERGY_RTOL:g})")
