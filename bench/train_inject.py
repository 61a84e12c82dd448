"""Training-fault experiments: dse's runner against re-training from scratch for each experiment,
on the same sampled experiments, in one process, one thread.

- dse: restart from the last checkpoint before the injection (one every ``--checkpoint-every``
  steps), stop at INF/NaN, stop exactly when the training state equals the golden state again;
- baseline: re-train from scratch for each experiment to the same horizon — step 0 to the
  injection, then every step to the experiment's end step (``--steps-after`` past it), no early
  stop; test accuracy evaluated only from the injection on, like dse (what the outcome reads).

Both run on the same golden run and must give the same outcome and the same curve from the
injection on for every experiment (the fast path is exact); the script prints the experiments per
second of each, their ratio, and the agreement. Defaults = the default campaign's plan
(``dse train-inject`` with no flags).

    python bench/train_inject.py [--experiments 30] [--epochs 40] [--steps-after 50]
    python bench/train_inject.py --mitigation-overhead   # time cost of each mitigation
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from dse.resilience.training import campaign as tc  # noqa: E402
from dse.resilience.training.outcome import TrainingOutcomeSpec, classify  # noqa: E402
from dse.resilience.training.run import CHECKPOINT_EVERY, golden_run, run_experiment  # noqa: E402
from dse.resilience.training.trainer import TrainSetup, load_data  # noqa: E402


def _same(fast, naive) -> bool:
    """Equal loss (bit for bit) and test accuracy from the injection to where dse stopped."""
    stop = fast.curve.nonfinite if fast.curve.nonfinite is not None else fast.end
    a = fast.curve.loss[fast.inject - fast.curve.start:stop - fast.curve.start + 1]
    b = naive.curve.loss[naive.inject:stop + 1]
    last = stop - 1 if fast.curve.nonfinite is not None else stop
    acc = {g: v for g, v in naive.curve.test_acc.items() if g <= last}
    return np.array_equal(a.view(np.int32), b.view(np.int32)) and fast.curve.test_acc == acc


def overhead(epochs: int, reps: int) -> None:
    """CPU time per fault-free training step under each mitigation against none, interleaved in
    this process (CPU, not wall, time and the best of ``reps`` runs each: on a shared machine
    wall time mostly measures the other jobs)."""
    from dse.resilience.training.mitigation import MITIGATIONS

    data = load_data("digits")
    best = dict.fromkeys(MITIGATIONS, float("inf"))
    for _ in range(reps):
        for m in MITIGATIONS:
            t0 = time.process_time()
            g = golden_run(TrainSetup(epochs=epochs, mitigation=m), data, 0)
            best[m] = min(best[m], (time.process_time() - t0) / g.total_steps)
    rows = "\n".join(f"| {m} | {1e3 * best[m]:.2f} | {100 * (best[m] / best['none'] - 1):+.1f} % |"
                     for m in MITIGATIONS)
    body = f"""## Training-fault mitigations: time overhead (bench/train_inject.py)

`python bench/train_inject.py --mitigation-overhead --epochs {epochs} --reps {reps}` — one
thread, load average {os.getloadavg()[0]:.1f} at the end; fault-free digits_cnn training with adam,
{epochs} epochs, each mitigation in turn, best of {reps} runs (CPU time per step of the whole
training step: forward, backward, the mitigation's check, optimizer step, the golden run's
checkpoints and state digests, evaluation every 5 steps).

| mitigation | CPU ms per step | overhead vs none |
|---|---|---|
{rows}"""
    print(body)
    write_section("train_inject_mitigations", body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=30)
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--epochs", type=int, default=tc.DEFAULT_EPOCHS)
    ap.add_argument("--steps-after", type=int, default=tc.Plan.steps_after)
    ap.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY)
    ap.add_argument("--golden-seeds", type=int, default=2)
    ap.add_argument("--campaign", type=int, default=tc.Plan.experiments,
                    help="campaign size the golden runs are spread over in the last line")
    ap.add_argument("--section", default="train_inject", help="docs/benchmarks.md section name")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--mitigation-overhead", action="store_true",
                    help="measure each mitigation's time per step instead")
    ap.add_argument("--reps", type=int, default=5, help="runs per mitigation (overhead)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.mitigation_overhead:
        overhead(args.epochs, args.reps)
        return
    setup = TrainSetup(model=args.model, epochs=args.epochs)
    data = load_data("digits")
    spec = TrainingOutcomeSpec()
    t0 = time.perf_counter()
    golden = golden_run(setup, data, args.golden_seeds, args.checkpoint_every)
    t_golden = time.perf_counter() - t0
    plan = tc.Plan(args.experiments, steps_after=args.steps_after)
    faults = tc.sample(plan, tc.targets(setup, data), golden.steps_per_epoch, golden.total_steps)
    fast = naive = 0.0
    steps_fast = steps_naive = same = exact = nonfinite = 0
    for f in faults:
        a = run_experiment(golden, data, f, steps_after=args.steps_after)
        b = run_experiment(golden, data, f, steps_after=args.steps_after, early_stop=False,
                           from_scratch=True)
        fast, naive = fast + a.wall_s, naive + b.wall_s
        steps_fast, steps_naive = steps_fast + a.steps_run, steps_naive + b.steps_run
        same += (classify(a, golden, spec).outcome == classify(b, golden, spec).outcome
                 and _same(a, b))
        exact += a.curve.exact_stop is not None
        nonfinite += a.curve.nonfinite is not None
    n, big = len(faults), args.campaign
    ratio = naive / fast
    whole = (big * naive / n) / (t_golden + big * fast / n)
    load = os.getloadavg()[0]
    body = f"""## Training-fault experiments (bench/train_inject.py)

Experiment throughput of `dse train-inject`'s runner against the baseline, **re-training from
scratch for each experiment to the same horizon**: step 0 to the injection, then every step to
the experiment's end step, no early stop, test accuracy evaluated only from the injection on
(all the outcome reads; evaluating earlier would only slow the baseline). dse restarts from the
last golden-run checkpoint before the injection, stops at INF/NaN, and stops exactly when the
model + optimizer state equals the golden run's (the rest of the curve is then the golden
curve). Same sampled experiments, same golden run, one process, one thread; both must give the
same outcome and the same curve from the injection on.

The default plan (`dse train-inject` with no flags) is a fault at a uniformly drawn step of a
{args.epochs}-epoch training, watched for {args.steps_after} steps after it. Per experiment the
baseline trains (injection step + {args.steps_after}) steps, dse at most
({args.checkpoint_every} + {args.steps_after}), so the ratio grows with the length of the
training the faults are spread over and shrinks with the horizon: about (T/2 + H) / (K/2 + H)
in steps for a T-step training, horizon H, checkpoints every K steps, before evaluation costs
(which both pay after the injection) and early stops. With the old default plan (8 epochs =
168 steps, H = 100, per-epoch checkpoints) it was 1.1x: the 100 steps after the injection
dominate there.

### Default campaign plan: {golden.total_steps}-step run, {args.steps_after} steps after \
each injection

`python bench/train_inject.py --experiments {n} --model {args.model} --epochs {args.epochs} \
--steps-after {args.steps_after} --checkpoint-every {args.checkpoint_every} --golden-seeds \
{args.golden_seeds}` — one thread, load average {load:.1f} at the end; {n} experiments sampled
with the default campaign's plan (uniform over the steps where {args.steps_after} steps fit after
the injection, layer, pass, operand, fault model bitflip / random / copy / zero, run of 1 / 16 /
64), adam, golden run of {golden.total_steps} steps ({golden.steps_per_epoch} per epoch).

| runner | steps trained | wall (s) | experiments / s |
|---|---|---|---|
| baseline: re-train from scratch to the same horizon, no early stop | {steps_naive} | \
{naive:.1f} | {n / naive:.2f} |
| dse: checkpoint every {args.checkpoint_every} steps + INF/NaN stop + golden-state stop | \
{steps_fast} | {fast:.1f} | {n / fast:.2f} |

Experiment throughput, dse / baseline, measured in this run: **{ratio:.1f}x**.
dse stopped {exact} experiments exactly on the golden state and {nonfinite} at INF/NaN.
Same outcome and the same loss / test-accuracy curve from the injection on (bit for bit) for
{same} of {n} experiments.
dse's golden runs ({t_golden:.1f} s: the golden run with its checkpoints and digests plus
{args.golden_seeds} seeds for the outcome tolerance) are paid once per campaign; spread over a
{big}-experiment campaign at this run's per-experiment times, the whole campaign is
{whole:.1f}x faster (the baseline charged no golden run at all, though it needs one to classify)."""
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
