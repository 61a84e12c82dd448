"""``dse map``: find the best mapping of one layer on one design.

Prints the best mapping's loop nest as Timeloop's ``map.txt`` does, then its energy, cycles and
EDP (``--json``: the model's fields, the mapping (map.yaml directives and the loop nest), area and
technology node, the search counts and the energy x delay Pareto set); with ``--out DIR`` writes
``DIR/map.yaml`` (a Timeloop mapping a real ``timeloop-model`` can check), ``DIR/map.txt`` and
``DIR/mapper.json``.

Backends: ``builtin`` (dse's mapper and model); ``timeloop`` (the real ``timeloop-mapper`` on PATH
searches with the design's constraints; dse's model re-scores its best mapping, ``check``);
``timeloop-check`` (dse's mapper searches; the real ``timeloop-model`` re-evaluates the best
mapping and the Pareto set, ``checks``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from dse import validate as check
from dse.cli._common import print_json
from dse.cli.evaluate import check_document, stats_document
from dse.errors import InputError
from dse.workers import cap_workers


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("map", help="search the best mapping of a layer on a design",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, metavar="NAME_OR_PATH",
                   help="design name (see `dse designs`) or architecture YAML")
    p.add_argument("--problem", required=True, metavar="PROBLEM.yaml", help="Timeloop problem")
    p.add_argument("--ert", metavar="ERT.yaml", help="Accelergy ERT to take energies from")
    p.add_argument("--objective", default="edp",
                   help="edp, energy, delay, or weights like 'energy=1,delay=2' (product) or "
                        "'sum:energy=1,delay=1000'")
    p.add_argument("--search", default="auto", choices=("auto", "exhaustive", "random", "hybrid"))
    p.add_argument("--time-limit", type=check.positive_float, default=30.0, metavar="S",
                   help="search time limit in seconds")
    p.add_argument("--victory", type=check.positive_int, default=1500, metavar="N",
                   help="stop after N evaluations without a better mapping (default 1500)")
    p.add_argument("--seed", type=check.non_negative_int, default=0)
    p.add_argument("--workers", type=check.positive_int, default=2, help="processes (default 2)")
    p.add_argument("--budget", type=check.positive_int, metavar="N",
                   help="at most N evaluated mappings (per worker; timeloop: its search-size)")
    p.add_argument("--backend", choices=("builtin", "timeloop", "timeloop-check"),
                   default="builtin", help="who searches and who checks (see above)")
    p.add_argument("--workdir", type=Path, default=Path("timeloop-run"),
                   help="with a timeloop backend: where its inputs and outputs are kept")
    p.add_argument("--out", type=Path, metavar="DIR", help="write map.yaml and mapper.json here")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def parse_objective(text: str) -> str | dict[str, float | str]:
    """A name from the mapper's registry (``edp`` / ``energy`` / ``delay``), or
    ``[sum:|product:]energy=a,delay=b``."""
    from dse.mapper.search import NEEDS_METRIC, OBJECTIVES

    if text in NEEDS_METRIC:
        raise InputError(f"objective {text!r} needs an SDC-FIT estimate calibrated on a model; "
                         "dse map has no model (use dse sweep or the Python API)",
                         field="--objective")
    if text in OBJECTIVES:
        return text
    kind, _, body = text.rpartition(":")
    out: dict[str, float | str] = {"kind": kind or "product"}
    if out["kind"] not in ("sum", "product"):
        raise InputError(f"unknown objective kind {kind!r} (sum or product)", field="--objective")
    for part in body.split(","):
        key, eq, value = part.partition("=")
        if key.strip() not in ("energy", "delay") or not eq:
            raise InputError(f"malformed objective term {part!r} (e.g. energy=1)",
                             field="--objective")
        try:
            out[key.strip()] = check.non_negative(float(value), f"--objective {key.strip()}")
        except ValueError:
            raise InputError(f"weight {value!r} is not a number", field="--objective") from None
    if not any(v for k, v in out.items() if k != "kind"):
        raise InputError("at least one weight must be positive", field="--objective")
    return out


def _search(args: argparse.Namespace, problem: Any, arch: Any, objective: Any, workers: int
            ) -> Any:
    """The builtin search, with a progress bar only where someone can see it (a terminal): in
    a pipe or a script the bar is noise, and tqdm's import is ~15 ms of every start-up."""
    from dse.mapper import search

    kwargs = dict(objective=objective, search=args.search, time_limit=args.time_limit,
                  seed=args.seed, victory=args.victory, workers=workers, max_evals=args.budget)
    if not sys.stderr.isatty():
        return search(problem, arch, **kwargs)
    from tqdm import tqdm

    with tqdm(desc="mapping", unit=" maps", leave=False) as bar:
        return search(problem, arch, progress=bar.update, **kwargs)


def run(args: argparse.Namespace) -> int:
    objective = parse_objective(args.objective)
    if args.out:
        for name in ("map.yaml", "map.txt", "mapper.json"):
            check.output_file(args.out / name, "--out")

    from dse.arch import apply_ert, load_arch, read_ert
    from dse.mapper import MapSpace
    from dse.mapper.search import explain_empty
    from dse.problems import read_problem

    arch = load_arch(args.arch)
    if args.ert:
        arch = apply_ert(arch, read_ert(args.ert))
    problem = read_problem(args.problem)
    explain_empty(MapSpace(problem, arch))  # before the progress bar: errors stay one line
    workers, note = cap_workers(args.workers)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.backend == "timeloop":
        return _report(args, problem, arch,
                       *_timeloop_map(args, problem, arch, objective, workers))
    result = _search(args, problem, arch, objective, workers)
    doc = stats_document(result.best_stats) | {
        "backend": args.backend, "wall_s": result.wall_s, "visited": result.visited,
        "valid": result.valid, "evaluated": result.evaluated, "search": result.search,
        "complete": result.complete,
        "pareto": [[s.energy_pJ, s.cycles] for _, s in result.pareto]}
    if args.backend == "timeloop-check":
        doc["checks"] = _real_checks(args, problem, arch, [(result.best, result.best_stats),
                                                            *result.pareto])
    return _report(args, problem, arch, result.best, result.best_stats, doc)


def _timeloop_map(args: argparse.Namespace, problem: Any, arch: Any, objective: Any,
                  workers: int) -> tuple:
    """The real mapper searches; dse's model re-scores the mapping it reports."""
    import time

    from dse.model import evaluate, timeloop

    if not isinstance(objective, str):
        raise InputError("timeloop-mapper takes edp, energy or delay", field="--objective")
    settings = timeloop.MapperSettings(
        metric=objective, threads=workers, victory_condition=args.victory,
        search_size=args.budget or timeloop.MapperSettings.search_size)
    start = time.perf_counter()
    mapping, stats = timeloop.search(problem, arch, args.workdir, settings)
    verdict = timeloop.agreement(stats, evaluate(problem, arch, mapping))
    doc = stats_document(stats) | {"backend": "timeloop", "wall_s": time.perf_counter() - start,
                                   "search": "timeloop-mapper", "check": check_document(verdict)}
    return mapping, stats, doc


def _real_checks(args: argparse.Namespace, problem: Any, arch: Any, kept: list) -> list[dict]:
    """timeloop-model on each kept mapping (best first, then the Pareto set)."""
    from dse.model import timeloop

    return [check_document(timeloop.check(problem, arch, m, s, args.workdir / f"check{i}"))
            for i, (m, s) in enumerate(kept)]


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def design_facts(arch: Any) -> dict[str, Any]:
    """Technology node and on-chip area (mm2) as the sweep's store reports them
    (``dse.sweep.store.point_facts``), read off the Arch: importing the sweep package for it
    cost a short ``dse map`` run a tenth of a second."""
    parts = [(lvl.area_um2, lvl.instances) for lvl in arch.levels if not lvl.dummy]
    parts.append((arch.compute.area_um2, arch.compute.instances))
    known = [a * n for a, n in parts if a is not None]
    return {"technology": arch.technology, "area_mm2": sum(known) * 1e-6 if known else None}


def _report(args: argparse.Namespace, problem: Any, arch: Any, best: Any, st: Any,
            doc: dict[str, Any]) -> int:
    from dse.model import loop_nest_text, write_mapping
    from dse.model.mapfile import mapping_directives
    from dse.units import energy, num

    facts = design_facts(arch)
    nest = loop_nest_text(best, problem, arch)
    doc = doc | {"edp_unit": "J x cycles", "technology": facts["technology"],
                 "area_mm2": facts["area_mm2"],
                 "mapping": {"directives": mapping_directives(best, problem), "loop_nest": nest}}
    if args.out:
        write_mapping(best, args.out / "map.yaml", problem)
        check.write_text(args.out / "map.txt", nest, field="--out")
        check.write_text(args.out / "mapper.json", json.dumps(doc, indent=2), field="--out")
    if args.json:
        print_json(doc)
    else:
        valid = f"{doc['valid']} valid mappings" if "valid" in doc else "timeloop-mapper"
        print(nest.strip("\n"))
        summary = (f"best of {valid} ({doc['search']}, {doc['wall_s']:.1f} s): "
                   f"energy {energy(st.energy_pJ)}, cycles {st.cycles}, "
                   f"utilization {num(100 * st.utilization)}%, EDP {num(st.edp)} J x cycles; "
                   f"{arch.name} at {facts['technology'] or 'unknown node'}, "
                   f"area {num(facts['area_mm2'])} mm2")
        print("\n" + "\n".join(textwrap.wrap(summary, 100, break_on_hyphens=False)))
        for verdict in [doc["check"]] if "check" in doc else doc.get("checks", []):
            agree = "agree" if verdict["builtin_agrees"] else "DISAGREE"
            print(f"  builtin vs timeloop-model: {agree} (cycles {verdict['builtin_cycles']} vs "
                  f"{verdict['cycles']}, relative energy difference "
                  f"{_num(verdict['energy_rel_diff'])})")
        if args.out:
            print(f"wrote {args.out / 'map.yaml'} and {args.out / 'map.txt'}")
    return 0
