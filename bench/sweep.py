"""Whole-sweep wall times: executors compared, resume cost, and the ResNet-18 energy goal.

    python -m bench.sweep            # writes the "sweep" section of docs/benchmarks.md

Measures, each in a fresh output directory (so nothing is reused unless stated):
1. energy side of ResNet-18 on all four shipped designs: in-process (1 core, the baseline),
   local process pool (2 workers) and Dask LocalCluster (2 workers); goal <= 60 s;
2. a rerun of the same sweep in the same directory (everything reused from the store);
3. the shipped default (`dse sweep --arch eyeriss_like`: both axes on the digits ResNet-20).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from bench._report import write_section
from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import MapperSettings

torch.set_num_threads(1)


def resnet18_config(out: Path, executor: str, *, dask_local: int | None = None,
                    budget: int) -> SweepConfig:
    return SweepConfig(name="bench_resnet18", designs=["all"],
                       models=[ModelSpec("resnet18", input_shape=(1, 3, 224, 224))],
                       mapper=MapperSettings(budget=budget, time_limit=5.0),
                       executor=executor, dask_local=dask_local, output=str(out))


def timed(config: SweepConfig) -> tuple[float, int, float]:
    start = time.perf_counter()
    result = run_sweep(config, progress=False)
    wall = time.perf_counter() - start
    edp = sum(r["edp"] for r in result.network)
    return wall, len(result.rows), edp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=2000, help="mapper evaluations per layer")
    parser.add_argument("--skip-default", action="store_true", help="skip the both-axes sweep")
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        walls: dict[str, float] = {}
        edps: dict[str, float] = {}
        for label, executor, dask in (("in-process (1 core)", "inprocess", None),
                                      ("process pool, 2 workers", "process", None),
                                      ("Dask LocalCluster, 2 workers", "dask", 2)):
            out = root / executor
            wall, nrows, edp = timed(resnet18_config(out, executor, dask_local=dask,
                                                     budget=args.budget))
            walls[label], edps[label] = wall, edp
            print(f"{label}: {wall:.1f} s, {nrows} rows")
        wall_rerun, _, _ = timed(resnet18_config(root / "process", "process", budget=args.budget))
        base = walls["in-process (1 core)"]
        same = len(set(edps.values())) == 1
        lines += [
            "Energy side of ResNet-18 (1x3x224x224, all unique conv/linear layers) on all four "
            f"shipped designs; mapper budget {args.budget} mappings per layer. Goal: <= 60 s.",
            "",
            "| executor | wall (s) | speedup vs in-process |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {v:.1f} | {base / v:.2f}x |" for k, v in walls.items()]
        lines += [f"| rerun, same store (all rows reused) | {wall_rerun:.1f} | "
                  f"{base / wall_rerun:.1f}x |", "",
                  f"Identical network EDPs across the three executors: {same}.", ""]
        if not args.skip_default:
            cfg = SweepConfig(designs=["eyeriss_like"], output=str(root / "default"))
            wall, nrows, _ = timed(cfg)
            lines += [f"Shipped default (`python -m dse sweep --arch eyeriss_like`: digits "
                      f"ResNet-20, both axes, process pool): {wall:.1f} s, {nrows} result rows "
                      "(model already trained and cached).", ""]
    load = os.getloadavg()[1]
    lines.append(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores;"
                 f" 5-min load average at the end {load:.1f} (other work on the machine"
                 " shrinks the speedups); command: "
                 f"`python -m bench.sweep --budget {args.budget}`.")
    write_section("sweep", "## Sweep\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
