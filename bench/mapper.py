"""Builtin mapper vs Timeloop's mapper on every reference case (../shared/reference/timeloop).

For each layer × design: our best EDP and wall time with a time limit of 1/10 of Timeloop's
mapper time on the same case, next to Timeloop's EDP (re-scored by dse's model, which matches
Timeloop on these mappings) and ``mapper_wall_s``; plus the mapspace size before and after
pruning. Writes its section of docs/benchmarks.md.

    python bench/mapper.py [--cases SUBSTRING] [--fraction 0.1] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from dse.arch import apply_ert, load_arch, read_ert
from dse.mapper import MapSpace, search
from dse.model import evaluate, read_mapping
from dse.problems import read_problem

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("DSE_SHARED", REPO.parent / "shared")) / "reference" / "timeloop"
sys.path.insert(0, str(REPO / "bench"))
from _report import write_section  # noqa: E402


def load_case(root: Path):
    arch = load_arch(root / "mapper" / "timeloop_input.yaml")
    return read_problem(root / "inputs" / "problem.yaml"), apply_ert(
        arch, read_ert(root / "mapper" / "timeloop-mapper.ERT.yaml"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="only cases whose name contains this")
    ap.add_argument("--fraction", type=float, default=0.1,
                    help="time limit as a fraction of Timeloop's mapper time (default 0.1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not REFERENCE.is_dir():
        print(f"reference runs not found at {REFERENCE}", file=sys.stderr)
        return 2
    with open(REFERENCE / "summary.csv") as fh:
        rows = {r["case"]: r for r in csv.DictReader(fh) if r["tool"] == "mapper"}
    lines = ["| case | Timeloop s | ours s | time ratio | Timeloop EDP | ours EDP | EDP ratio | "
             "util T/ours | evaluated | space raw | space pruned |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    wins, fast = 0, 0
    cases = sorted(c for c in rows if args.cases in c)
    for case in cases:
        root = REFERENCE / "cases" / case
        problem, arch = load_case(root)
        ref = evaluate(problem, arch, read_mapping(root / "mapper" / "timeloop-mapper.map.yaml",
                                                   arch, problem))
        t_ref = float(rows[case]["mapper_wall_s"])
        sizes = MapSpace(problem, arch).size_report(samples=400)
        t0 = time.monotonic()
        res = search(problem, arch, search="hybrid", time_limit=t_ref * args.fraction,
                     seed=args.seed, workers=args.workers, victory=10**9)
        wall = time.monotonic() - t0
        ratio = res.best_stats.edp / ref.edp
        wins += ratio <= 1 + 1e-9
        fast += wall <= t_ref * args.fraction * 1.05
        approx = "" if sizes["exact"] else "~"
        lines.append(
            f"| {case} | {t_ref:.1f} | {wall:.2f} | {wall / t_ref:.3f} | {ref.edp:.4g} | "
            f"{res.best_stats.edp:.4g} | {ratio:.6f} | {ref.utilization:.3f}/"
            f"{res.best_stats.utilization:.3f} | {res.evaluated} | {sizes['raw']:.2e} | "
            f"{approx}{sizes['pruned']:.2e} |")
        print(lines[-1], flush=True)
    load = os.getloadavg()[1]
    summary = (f"EDP <= Timeloop's on {wins}/{len(cases)} cases; within {args.fraction:g} of its "
               f"time on {fast}/{len(cases)}. Load average during the run: {load:.1f} on "
               f"{os.cpu_count()} cores (Timeloop's times are from its own runs).")
    body = "\n".join([
        "## Mapper: builtin vs Timeloop's random mapper",
        "",
        f"Command: `python bench/mapper.py --fraction {args.fraction:g} --workers "
        f"{args.workers} --seed {args.seed}` (2-core machine). Time limit per case = "
        f"{args.fraction:g} × Timeloop's `mapper_wall_s` (2 threads, includes ~3–4 s of "
        "Accelergy start-up); both EDPs scored by dse's model (equal to Timeloop's on its own "
        "mapping). The search uses the whole time limit (no victory stop). `space raw` = "
        "Timeloop's count (factorizations × orders of every free dim "
        "× splits × bypass); `space pruned` = capacity/fanout-valid factorizations × loop-order "
        "classes × allowed X/Y × bypass (~ = estimated from samples).",
        "", summary, "", *lines])
    write_section("mapper", body)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
