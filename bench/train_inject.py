"""Training-fault experiments: dse's runner (restart from the epoch checkpoint, stop at INF/NaN,
stop exactly when the state is the golden state again) vs re-training from scratch for each
experiment (step 0 to the injection, then every step to the end), in one process, one thread.

Both run the same sampled experiments (the default campaign's plan) on the same golden run and
must give the same outcome for every experiment (the fast path is exact); the script prints the
experiments per second of each, their ratio, and the agreement.

    python bench/train_inject.py [--experiments 30] [--model digits_cnn] [--steps-after 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from dse.resilience.training import campaign as tc  # noqa: E402
from dse.resilience.training.outcome import TrainingOutcomeSpec, classify  # noqa: E402
from dse.resilience.training.run import golden_run, run_experiment  # noqa: E402
from dse.resilience.training.trainer import TrainSetup, load_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=30)
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps-after", type=int, default=100)
    ap.add_argument("--golden-seeds", type=int, default=2)
    ap.add_argument("--section", default="train_inject", help="docs/benchmarks.md section name")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    setup = TrainSetup(model=args.model, epochs=args.epochs)
    data = load_data("digits")
    spec = TrainingOutcomeSpec()
    t0 = time.perf_counter()
    golden = golden_run(setup, data, spread_seeds=args.golden_seeds)
    t_golden = time.perf_counter() - t0
    plan = tc.Plan(args.experiments, steps_after=args.steps_after)
    faults = tc.sample(plan, tc.targets(setup, data), golden.steps_per_epoch, golden.total_steps)
    fast, naive, same, steps_fast, steps_naive = 0.0, 0.0, 0, 0, 0
    for f in faults:
        a = run_experiment(golden, data, f, steps_after=args.steps_after)
        b = run_experiment(golden, data, f, steps_after=args.steps_after, early_stop=False,
                           from_scratch=True)
        fast += a.wall_s
        naive += b.wall_s
        steps_fast += a.steps_run
        steps_naive += b.steps_run
        same += classify(a, golden, spec).outcome == classify(b, golden, spec).outcome
    n = len(faults)
    ratio = naive / (fast + t_golden)
    body = f"""### Training-fault experiments, {golden.total_steps}-step run (bench/train_inject.py)

`python bench/train_inject.py --experiments {n} --model {args.model} --epochs {args.epochs} \
--steps-after {args.steps_after} --golden-seeds {args.golden_seeds}` — one thread;
{n} experiments of the default campaign plan (uniform epoch/step/layer/pass/fault model/run
length), adam, golden run of {golden.total_steps} steps plus {args.golden_seeds} seeds
for the outcome tolerance.

| runner | steps trained | wall (s) | experiments / s |
|---|---|---|---|
| from scratch, no early stop | {steps_naive} | {naive:.1f} | {n / naive:.2f} |
| dse: checkpoint + INF/NaN stop + golden-state stop | {steps_fast} | {fast:.1f} | {n / fast:.2f} |
| dse + its golden runs ({t_golden:.1f} s, {args.golden_seeds + 1} seeds) | | {fast + t_golden:.1f} | \
{n / (fast + t_golden):.2f} |

Speed-up: **{naive / fast:.1f}x** per experiment, **{ratio:.1f}x** with dse's golden runs charged
to this campaign (the from-scratch runner needs a golden curve too; it is not charged there).
Same outcome for {same} of {n} experiments (the early stops are exact)."""
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
