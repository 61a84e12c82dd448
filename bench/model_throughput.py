"""Model throughput: scalar vs batched evaluations per second on a ResNet-18 layer, every design.

    python bench/model_throughput.py [--batch 20000] [--repeat 3] [--seed 0]

Random mappings of ResNet-18 layer1's 3x3 conv (C=M=64, P=Q=56) are drawn directly in the batch
model's array form (every prime factor of every dim to a random temporal / X / Y slot, half of
them at DRAM; random loop orders; keep sets from the design's constraints, else random), which is
what a mapper submits: most draws are invalid, as in Timeloop's own mapper. Measured:

* scalar: ``dse.model.evaluate`` one mapping at a time, on valid mappings (the baseline);
* batched (arrays): ``dse.model.evaluate_arrays`` on the whole batch, valid and invalid;
* batched, valid draws only: the same on the valid subset (the worst case for the batch path:
  invalid mappings are dropped before the expensive part);
* batched (Mapping objects): ``dse.model.evaluate_batch``, conversion included.

The ratio batched / scalar is printed and written to docs/benchmarks.md (section
``model_throughput``). Best of ``--repeat`` runs, one process, one core; times are the
process's CPU time (the shared 2-core machine's other load would otherwise dominate).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from dse.arch import list_designs, load_arch  # noqa: E402
from dse.arch.spec import Arch  # noqa: E402
from dse.errors import InvalidMapping  # noqa: E402
from dse.mapper.mapspace import prime_factors  # noqa: E402
from dse.model import evaluate, evaluate_arrays, evaluate_batch  # noqa: E402
from dse.model.batch import MappingArrays, arrays_to_mapping  # noqa: E402
from dse.problems.problem import Problem, conv_problem  # noqa: E402

LAYER = conv_problem(C=64, M=64, R=3, S=3, P=56, Q=56)


def random_arrays(problem: Problem, arch: Arch, n: int, rng: np.random.Generator
                  ) -> MappingArrays:
    """n random mappings in array form (factor products always right)."""
    n_l, n_d, n_s = len(arch.levels), len(problem.dimensions), len(problem.dataspaces)
    slots = [(i, 0) for i in range(n_l)]
    slots += [(i, 1) for i in range(n_l) if arch.fanout_xy(i)[0] > 1]
    slots += [(i, 2) for i in range(n_l) if arch.fanout_xy(i)[1] > 1]
    fac = np.ones((3, n, n_l, n_d), dtype=np.int64)  # temporal, X, Y
    rows = np.arange(n)
    for d, dim in enumerate(problem.dimensions):
        for p in prime_factors(problem.instance[dim]):
            pick = np.where(rng.random(n) < 0.5, 0, rng.integers(0, len(slots), n))
            lv = np.array([slots[k][0] for k in pick])
            kind = np.array([slots[k][1] for k in pick])
            fac[kind, rows, lv, d] *= p
    order = np.argsort(rng.random((n, n_l, n_d)), axis=2)
    keep = rng.random((n, n_l, n_s)) < 0.7
    names = [ds.name for ds in problem.dataspaces]
    for i, lvl in enumerate(arch.levels):
        if i == 0:
            keep[:, i] = True
        elif lvl.dummy:
            keep[:, i] = False
        elif lvl.constraints.keep is not None:
            keep[:, i] = [d in lvl.constraints.keep for d in names]
    return MappingArrays(fac[0], fac[1], fac[2], order, keep)


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def measure(design: str, batch: int, repeat: int, seed: int) -> dict[str, float]:
    arch = load_arch(design)
    arrays = random_arrays(LAYER, arch, batch, np.random.default_rng(seed))
    result = evaluate_arrays(LAYER, arch, arrays)
    valid_idx = np.nonzero(result.valid)[0][:500]
    valid = [arrays_to_mapping(LAYER, arch, arrays, int(i)) for i in valid_idx]
    objects = [arrays_to_mapping(LAYER, arch, arrays, i) for i in range(min(batch, 5000))]

    def scalar() -> None:
        for m in valid:
            try:
                evaluate(LAYER, arch, m)
            except InvalidMapping:
                pass

    t_scalar = best_of(repeat, scalar)
    t_arrays = best_of(repeat, lambda: evaluate_arrays(LAYER, arch, arrays))
    only_valid = arrays.take(np.nonzero(result.valid)[0])
    t_valid = best_of(repeat, lambda: evaluate_arrays(LAYER, arch, only_valid))
    t_objects = best_of(repeat, lambda: evaluate_batch(LAYER, arch, objects))
    return {
        "valid_share": float(result.valid.mean()),
        "scalar": len(valid) / t_scalar,
        "arrays": batch / t_arrays,
        "valid_only": len(only_valid) / t_valid,
        "objects": len(objects) / t_objects,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    command = "python bench/model_throughput.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items())
    rows = []
    for design in list_designs():
        r = measure(design, args.batch, args.repeat, args.seed)
        ratio = r["arrays"] / r["scalar"]
        print(f"{design:<26} valid {r['valid_share']:6.1%}  scalar {r['scalar']:9.0f}/s  "
              f"batched arrays {r['arrays']:9.0f}/s ({ratio:5.1f}x)  "
              f"valid only {r['valid_only']:9.0f}/s  batched Mappings {r['objects']:9.0f}/s",
              flush=True)
        rows.append((design, r, ratio))
    table = ["| design | valid draws | scalar evals/s (baseline) | batched, arrays evals/s | "
             "ratio | batched, arrays, valid draws only | batched, Mapping objects evals/s |",
             "|---|---|---|---|---|---|---|"]
    for design, r, ratio in rows:
        table.append(f"| {design} | {r['valid_share']:.1%} | {r['scalar']:,.0f} | "
                     f"{r['arrays']:,.0f} | {ratio:.1f}x | {r['valid_only']:,.0f} | "
                     f"{r['objects']:,.0f} |")
    body = "\n".join([
        "## Model throughput (`dse.model`)", "",
        f"Command: `{command}`  ", f"Machine: {platform.machine()}, Python "
        f"{platform.python_version()}, numpy {np.__version__}, one process.", "",
        "Layer: ResNet-18 layer1 3x3 conv (C=M=64, R=S=3, P=Q=56). Batched = random draws in the "
        "array form the mapper submits (valid and invalid, mostly invalid); scalar = one "
        "`evaluate` call per valid mapping. Goal: >= 100,000 batched evaluations/s on one core; "
        "for scale, Timeloop's own mapper evaluates about 700-18,000 mappings/s on 2 threads here "
        "(reference/timeloop/README.md).", "", *table])
    write_section("model_throughput", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
