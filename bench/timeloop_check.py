"""The real Timeloop against dse on every reference case, through dse's command line.

For each case of ../shared/reference/timeloop, as child processes:
1. ``dse evaluate --backend timeloop`` on the reference mapping (the model's input, reference ERT);
2. ``dse map --backend timeloop``: the real timeloop-mapper searches (the mapper's input, with the
   design's constraints); dse's model re-scores the mapping it reports;
3. ``dse map --backend timeloop-check``: dse's mapper searches; the real timeloop-model
   re-evaluates its best mapping and its Pareto set.
Every run must exit 0 with equal cycles and energy within 1e-6 relative (or the 0.01 pJ printing of
stats.txt). Writes the "timeloop" section of docs/benchmarks.md.

    python bench/timeloop_check.py [--cases SUBSTRING] [--budget 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("DSE_SHARED", REPO.parent / "shared")) / "reference" / "timeloop"
sys.path.insert(0, str(REPO / "bench"))
from _report import write_section  # noqa: E402


def dse(*args: str) -> tuple[int, dict | str]:
    proc = subprocess.run([sys.executable, "-m", "dse", *args, "--json"], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    return proc.returncode, json.loads(proc.stdout) if proc.returncode == 0 else proc.stderr


def checks_of(doc: dict) -> list[dict]:
    return [doc["check"]] if "check" in doc else doc.get("checks", [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="")
    ap.add_argument("--budget", type=int, default=300,
                    help="timeloop-mapper search-size and dse's evaluations (default 300)")
    args = ap.parse_args()
    cases = sorted(p for p in (REFERENCE / "cases").iterdir() if args.cases in p.name)
    rows, ok_all, worst = [], True, 0.0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for root in cases:
            model, mapper = root / "model", root / "mapper"
            problem = str(root / "inputs" / "problem.yaml")
            runs = {
                "evaluate, reference mapping": dse(
                    "evaluate", "--arch", str(model / "timeloop_input.yaml"), "--ert",
                    str(model / "timeloop-model.ERT.yaml"), "--problem", problem, "--mapping",
                    str(model / "mapping.yaml"), "--backend", "timeloop", "--workdir",
                    f"{tmp}/{root.name}/e"),
            }
            for backend in ("timeloop", "timeloop-check"):
                runs[f"map --backend {backend}"] = dse(
                    "map", "--arch", str(mapper / "timeloop_input.yaml"), "--ert",
                    str(mapper / "timeloop-mapper.ERT.yaml"), "--problem", problem,
                    "--backend", backend, "--budget", str(args.budget), "--victory",
                    str(args.budget), "--workers", "1", "--workdir", f"{tmp}/{root.name}/{backend}")
            cells = []
            for rc, doc in runs.values():
                if rc != 0:
                    ok_all = False
                    cells.append(f"exit {rc}: {str(doc).strip()[:80]}")
                    continue
                checks = checks_of(doc)
                agree = all(c["builtin_agrees"] for c in checks) and bool(checks)
                ok_all &= agree
                rel = max(c["energy_rel_diff"] or 0.0 for c in checks)
                worst = max(worst, rel)
                cells.append(f"exit 0, {len(checks)} mapping(s), {'equal' if agree else 'DIFFER'}"
                             f", max rel. energy diff {rel:.1e}")
            rows.append(f"| {root.name} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    summary = (f"All {len(cases)} cases x 3 runs exit 0 with cycles equal and energy within 1e-6 "
               f"of dse's model: {ok_all}; largest relative energy difference {worst:.1e}. "
               f"Total {time.perf_counter() - t0:.0f} s.")
    body = "\n".join([
        "## Real Timeloop against dse (bench/timeloop_check.py)",
        "",
        f"Command: `python bench/timeloop_check.py --budget {args.budget}` with Timeloop v3.0.3's "
        "`timeloop-model` / `timeloop-mapper` on PATH. `evaluate`: the reference mapping through "
        "`dse evaluate --backend timeloop` (model input without constraints, reference ERT); "
        "`map --backend timeloop`: the real mapper searches (search-size and victory = budget, one "
        "thread), dse's model re-scores its mapping; `map --backend timeloop-check`: dse's mapper "
        "(budget evaluations), the real model re-evaluates its best mapping and Pareto set.",
        "",
        summary,
        "",
        "| case | evaluate --backend timeloop | map --backend timeloop | "
        "map --backend timeloop-check |",
        "|---|---|---|---|",
        *rows])
    write_section("timeloop", body)
    print(summary)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
