"""Cost of the resilience-aware search: EDP-only vs EDP x SDC-FIT estimate, same budget, one run.

For each (layer, design) both searches run the same hybrid search with the same seed and the same
evaluation budget (``--evals`` per worker, one worker, no time limit), one after the other in this
process. The resilience-aware one adds the batched SDC-FIT estimate
(``dse.resilience.mapped.estimate``) to every batch and keeps the EDP x SDC-FIT front. The
sensitivity profile is P(SDC | live fault) = 1 for every site class, with each mapping's live
fraction computed as in a calibrated search (the cost of the metric does not depend on the
values; the estimate is then the live exposed Mbit x raw FIT/Mbit, an upper bound).
Writes its section of docs/benchmarks.md.

    python bench/mapper_resilience.py [--evals 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from _report import write_section  # noqa: E402

from dse.arch import load_arch  # noqa: E402
from dse.mapper import search  # noqa: E402
from dse.problems.problem import conv_problem  # noqa: E402
from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric  # noqa: E402
from dse.resilience.mapped.exposure_batch import site_classes  # noqa: E402

LAYERS = {
    "resnet18_l1_conv3x3": dict(C=64, M=64, R=3, S=3, P=56, Q=56),
    "digits_cnn_features.2": dict(C=16, M=32, R=3, S=3, P=8, Q=8),
    "mbv2_pw_1x1": dict(C=96, M=24, P=28, Q=28),
}
DESIGNS = ("eyeriss_like", "nvdla_like", "simple_weight_stationary", "simple_output_stationary")


def _time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    kw = dict(search="hybrid", max_evals=args.evals, workers=1, time_limit=None, seed=0)
    for lname, dims in LAYERS.items():
        problem = conv_problem(**dims)
        for design in DESIGNS:
            arch = load_arch(design)
            every = {(c.level_name, c.dataspace): 1.0 for c in site_classes(problem, arch)}
            # live fractions of 1 on the calibration: the metric computes every mapping's own
            metric = sdc_fit_metric(problem, arch, Sensitivity(every, 1000.0, 1.0, every, every))
            t_edp, r_edp = _time(lambda p=problem, a=arch: search(p, a, "edp", **kw), args.repeats)
            t_res, r_res = _time(lambda p=problem, a=arch, m=metric: search(
                p, a, "edp", batch_metric=m, **kw), args.repeats)
            rows.append((lname, design, r_edp.evaluated, r_res.evaluated, t_edp, t_res,
                         t_res / t_edp, len(r_res.front)))
            print(f"{lname:24s} {design:26s} evals {r_edp.evaluated}/{r_res.evaluated} "
                  f"edp-only {t_edp:6.2f}s  +sdc_fit {t_res:6.2f}s  ratio {t_res / t_edp:4.2f}  "
                  f"front {len(r_res.front)}", flush=True)
    load = os.getloadavg()[0]
    ratios = sorted(r[6] for r in rows)
    body = [
        "## Resilience-aware mapping: cost of the SDC-FIT objective",
        "",
        f"`python bench/mapper_resilience.py --evals {args.evals} --repeats {args.repeats}`: the "
        "same hybrid search (seed 0, one worker, same evaluation budget, no time limit) with "
        "the EDP objective alone and with the batched SDC-FIT estimate added to every batch "
        "(the EDP x SDC-FIT front kept), run back to back in one process; best of "
        f"{args.repeats} wall times each. 1-minute load average at the end: {load:.1f} on 2 "
        "cores (the machine was shared while this ran).",
        "",
        "| layer | design | mappings evaluated (EDP / +SDC) | EDP only (s) | + SDC FIT (s) | "
        "ratio | front size |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    body += [f"| {a} | {b} | {c} / {d} | {e:.2f} | {f:.2f} | {g:.2f}x | {h} |"
             for a, b, c, d, e, f, g, h in rows]
    body += ["", f"Median ratio {ratios[len(ratios) // 2]:.2f}x, worst {ratios[-1]:.2f}x "
             "(goal: <= 3x)."]
    write_section("mapper_resilience", "\n".join(body))


if __name__ == "__main__":
    main()
