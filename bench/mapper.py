"""dse's mapper vs Timeloop's mapper on every reference case, under the same constraint reading.

Timeloop's side: the stored runs in ../shared/reference/timeloop. For the ten
simple_weight_stationary / simple_output_stationary cases the stored ``mapper/`` run read the
designs' spatial constraint ``[C, M], split: 1`` as timeloopfe wrote it for v3.0.3 (``GNQPSRCM``:
only G on the array's X axis, at most 1/16 of the PEs); ``mapper_same_constraints/`` is the same
mapper with the design's intent (``CMGNQPSR``: C on X, M on Y). dse is compared against the run
that read the constraint as dse's input does: ``mapper_same_constraints/`` where it exists, else
``mapper/``; both columns are shown. dse reads the very ``timeloop_input.yaml`` and ERT of that run.

dse's side: ``python -m dse map`` as a child process, so its wall and CPU time include process
start-up (imports, reading the design, the final JSON); its allowance is ``--fraction`` of
Timeloop's wall time, and the search's time limit is that less ``--margin`` x the case's overhead
(a ``--budget 1`` run just before). Both EDPs come from dse's model (Timeloop's best mapping
re-scored on its own input and ERT; equal to its stats.txt within ~1e-10). ``--rerun-reference``
also runs the real ``timeloop-mapper`` on the same input in the same run (same machine load;
slow on WS/OS: minutes per case). Writes its section of docs/benchmarks.md.

    python bench/mapper.py [--cases SUBSTRING] [--fraction 0.1] [--workers 2] [--seed 0]
                           [--margin 1.2] [--victory 1500] [--rerun-reference]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("DSE_SHARED", REPO.parent / "shared")) / "reference" / "timeloop"
sys.path[:0] = [str(REPO), str(REPO / "bench")]
from _report import write_section  # noqa: E402

WHY = ("Why the two Timeloop columns differ on the WS/OS designs: the stored run read `[C, M], "
       "split: 1` as `GNQPSRCM` (only G may use the array's X axis, so at most 1/16 of the PEs), "
       "the same-reading run as `CMGNQPSR` (C on X, M on Y, the design's intent, which is how dse "
       "reads it). On eyeriss_like and nvdla_like there is one reading, so one run.")


def child_run(cmd: list[str], cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, float,
                                                                  float]:
    """Run a command; its wall time and CPU time (user + system of the child) in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # dse as installed: Python reads and writes its bytecode caches (this machine's environment
    # sets PYTHONDONTWRITEBYTECODE, which makes every run compile dse's modules from source,
    # ~0.1 s; the case's first run, the overhead probe, writes the caches)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False,
                          env={**env, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def overhead_s(root: Path, run: Path, args: argparse.Namespace) -> float:
    """Wall time of ``dse map`` on the case with a one-mapping budget: what a run costs besides
    its search (interpreter and imports, reading the design, ERT and layer, the mapspace, the
    final scoring and the JSON). The search's time limit is what is left of the allowance."""
    _, wall, _ = child_run(map_command(root, run, args, ["--budget", "1", "--time-limit", "5"]))
    return wall


def map_command(root: Path, run: Path, args: argparse.Namespace, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "dse", "map", "--arch", str(run / "timeloop_input.yaml"),
            "--ert", str(run / "timeloop-mapper.ERT.yaml"),
            "--problem", str(root / "inputs" / "problem.yaml"), "--search", "hybrid",
            "--victory", str(args.victory), "--workers", str(args.workers), "--seed", str(args.seed),
            "--json", *extra]


def timeloop_best_edp(root: Path, run: Path) -> tuple[float, float]:
    """Timeloop's best mapping of the run, scored by dse's model on the run's own input and ERT
    (J x cycles), and the EDP its stats.txt prints. Both EDPs of the comparison then come from
    one model: summary CSVs rebuild energy from a 2-decimal fJ/MAC line (~1e-7 off), which
    would decide ties."""
    from dse.arch import apply_ert, load_arch, read_ert
    from dse.model import evaluate
    from dse.model.mapfile import parse_stats_txt, read_mapping
    from dse.problems import read_problem

    arch = apply_ert(load_arch(run / "timeloop_input.yaml"),
                     read_ert(run / "timeloop-mapper.ERT.yaml"))
    problem = read_problem(root / "inputs" / "problem.yaml")
    stats = evaluate(problem, arch, read_mapping(run / "timeloop-mapper.map.yaml", arch, problem))
    return stats.edp, parse_stats_txt(run / "timeloop-mapper.stats.txt").edp


def reference_rows(name: str) -> dict[str, dict[str, str]]:
    path = REFERENCE / name
    if not path.is_file():
        return {}
    with open(path) as fh:
        return {r["case"]: r for r in csv.DictReader(fh) if r["tool"] == "mapper"}


def same_reading_run(root: Path) -> tuple[Path, dict]:
    """The Timeloop run whose constraint reading equals dse's: its folder and run record."""
    run = root / "mapper_same_constraints"
    if not run.is_dir():
        run = root / "mapper"
    return run, json.loads((run / "mapper_run.json").read_text())


def dse_map(root: Path, run: Path, time_limit: float, args: argparse.Namespace
            ) -> tuple[dict, float, float]:
    proc, wall, cpu = child_run(map_command(root, run, args,
                                            ["--time-limit", f"{time_limit:.3f}"]))
    if proc.returncode != 0:
        raise SystemExit(f"dse map failed on {root.name}: {proc.stderr.strip()}")
    return json.loads(proc.stdout), wall, cpu


def rerun_reference(root: Path, run: Path) -> tuple[float, float, float]:
    """The real timeloop-mapper on the stored input (with its ERT/ART), now: the EDP of its best
    mapping (scored as for the stored runs, :func:`timeloop_best_edp`), wall, CPU."""
    with tempfile.TemporaryDirectory(prefix="bench-mapper-") as tmp:
        names = ["timeloop_input.yaml", "timeloop-mapper.ERT.yaml", "timeloop-mapper.ART.yaml"]
        for n in names:
            shutil.copy(run / n, Path(tmp) / n)
        proc, wall, cpu = child_run(["timeloop-mapper", *names], cwd=Path(tmp))
        if proc.returncode != 0:
            raise SystemExit(f"timeloop-mapper failed in {run}: {proc.stderr[-300:]}")
        edp, _ = timeloop_best_edp(root, Path(tmp))
    return edp, wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="only cases whose name contains this")
    ap.add_argument("--fraction", type=float, default=0.1,
                    help="dse's time limit as a fraction of Timeloop's wall time (default 0.1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--margin", type=float, default=1.2,
                    help="search limit = allowance - MARGIN x the measured overhead (default 1.2)")
    ap.add_argument("--victory", type=int, default=1500,
                    help="dse stops after this many evaluations without a better mapping "
                         "(default 1500, dse's default; Timeloop's runs used 1000)")
    ap.add_argument("--rerun-reference", action="store_true",
                    help="also run timeloop-mapper now on each case whose stored wall time "
                         "includes Accelergy start-up (eyeriss_like, nvdla_like): same load, "
                         "mapper alone")
    args = ap.parse_args()
    if not REFERENCE.is_dir():
        print(f"reference runs not found at {REFERENCE}", file=sys.stderr)
        return 2
    stored = reference_rows("summary.csv")
    load0 = os.getloadavg()[0]
    head = ("| case | Timeloop EDP, stored reading | Timeloop EDP, same reading | dse EDP | "
            "dse / same | Timeloop s (same) | dse s incl. start-up | wall ratio | "
            "Timeloop CPU s | dse CPU s | CPU ratio |")
    lines = [head, "|" + "---|" * 11]
    rerun_lines = []
    wins = fast = fast_cpu = n_cpu = 0
    worst_model = 0.0
    cases = sorted(c for c in stored if args.cases in c)
    for case in cases:
        root = REFERENCE / "cases" / case
        run, record = same_reading_run(root)
        ref_edp, printed_edp = timeloop_best_edp(root, run)
        worst_model = max(worst_model, abs(ref_edp - printed_edp) / printed_edp)
        ref_wall, ref_cpu = float(record["wall_s"]), record.get("cpu_s")
        allowance = args.fraction * ref_wall
        limit = max(allowance - args.margin * overhead_s(root, run, args), 0.02)
        doc, wall, cpu = dse_map(root, run, limit, args)
        ratio = doc["edp"] / ref_edp
        wins += ratio <= 1
        fast += wall <= allowance
        cpu_text, cpu_ratio = "n/a", "n/a"
        if ref_cpu:
            n_cpu += 1
            fast_cpu += cpu <= args.fraction * ref_cpu
            cpu_text, cpu_ratio = f"{ref_cpu:.1f}", f"{cpu / ref_cpu:.3f}"
        same_text = f"{ref_edp:.7g}" if run.name == "mapper_same_constraints" else "(one reading)"
        lines.append(
            f"| {case} | {float(stored[case]['EDP_J_cycle']):.4g} | {same_text} | "
            f"{doc['edp']:.7g} | {ratio:.6f} | {ref_wall:.1f} | {wall:.2f} | "
            f"{wall / ref_wall:.3f} | {cpu_text} | {cpu:.2f} | {cpu_ratio} |")
        print(lines[-1], flush=True)
        if args.rerun_reference and not ref_cpu:  # stored wall includes Accelergy start-up
            edp, t_wall, t_cpu = rerun_reference(root, run)
            rerun_lines.append(f"| {case} | {edp:.7g} | {t_wall:.2f} | {t_cpu:.2f} | "
                               f"{doc['edp'] / edp:.6f} | {wall / t_wall:.3f} | "
                               f"{cpu / t_cpu:.3f} |")
            print(rerun_lines[-1], flush=True)
    load1 = os.getloadavg()[0]
    summary = (f"dse EDP <= Timeloop's (same reading, one model) on {wins}/{len(cases)} cases; "
               f"dse wall time incl. start-up <= {args.fraction:g} x Timeloop's on "
               f"{fast}/{len(cases)}; dse CPU time <= {args.fraction:g} x Timeloop's on "
               f"{fast_cpu}/{n_cpu} cases with a stored CPU time. Machine load (1-min average) "
               f"{load0:.1f} at the start, {load1:.1f} at the end, on {os.cpu_count()} cores. "
               f"Timeloop's best mappings re-scored by dse's model vs its stats.txt: largest "
               f"relative EDP difference {worst_model:.1e}.")
    body = [
        "## Mapper: dse vs Timeloop's mapper, same constraint reading",
        "",
        f"Command: `python bench/mapper.py --fraction {args.fraction:g} --workers "
        f"{args.workers} --seed {args.seed} --margin {args.margin:g} --victory {args.victory}"
        + (" --rerun-reference" if args.rerun_reference else "")
        + (f" --cases {args.cases}" if args.cases else "") + "`.",
        "",
        "Timeloop: v3.0.3's `timeloop-mapper`, random search, EDP, 2 threads, victory 1000, at "
        "most 20000 valid mappings (stored runs; their wall and CPU times were measured at load "
        "about 1). Its wall time is the stored one: on the WS/OS cases (`mapper_same_constraints/`)"
        " timeloop-mapper alone; on eyeriss_like / nvdla_like the whole reference run, which "
        "includes ~3-4 s of Accelergy start-up (no CPU time stored). dse: `python -m dse map "
        f"--search hybrid --victory {args.victory}` (each of its workers stops after that many "
        "evaluations without a better mapping, as Timeloop's threads do after 1000) on the same "
        "`timeloop_input.yaml` and ERT, as a child process; its wall and CPU times include "
        "Python start-up, imports, reading the inputs and writing the JSON. Its allowance is "
        "the fraction x Timeloop's wall; the search's "
        f"`--time-limit` is that allowance less {args.margin:g} x the case's measured overhead (a "
        "`dse map --budget 1` run of the same case just before). Both EDPs (J x cycles) come from "
        "dse's model: Timeloop's best mapping (`timeloop-mapper.map.yaml`) re-scored on its own "
        "input and ERT, which equals its stats.txt within the figure below, so ties are ties. "
        "Ratios < 1 favour dse.",
        "",
        WHY,
        "",
        summary,
        "",
        *lines,
    ]
    if rerun_lines:
        body += ["", "Timeloop's mapper re-run in this bench run on the same input and ERT/ART "
                 "(timeloop-mapper alone, no Accelergy start-up; same machine load), for the "
                 "cases whose stored wall time includes Accelergy; ratios are dse's run above "
                 "over this one:", "",
                 "| case | Timeloop EDP | Timeloop wall s | Timeloop CPU s | dse / Timeloop EDP |"
                 " wall ratio | CPU ratio |", "|---|---|---|---|---|---|---|", *rerun_lines]
    write_section("mapper", "\n".join(body))
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
