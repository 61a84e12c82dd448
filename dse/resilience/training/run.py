"""Golden runs and fault experiments: one step loop for both.

The golden run trains ``epochs`` epochs from scratch, keeps a checkpoint every
``checkpoint_every`` steps and at every epoch start, the loss and batch accuracy of every step, the
test accuracy on the evaluation grid (after every ``eval_every``-th step and after the last), and a
digest of the full training state after every step. Several golden seeds (other initial weights
and data orders) give the spread of fault-free curves that the outcome thresholds are relative to.

An experiment restarts from the last checkpoint before its fault, trains to the target step, arms
the fault for that one step, and trains on to its end step, evaluating only from the injection on
(the outcome reads nothing earlier; before it the run *is* the golden run). It stops early when the
loss or the gradient norm is not finite, and — exactly — when the training state's digest equals
the golden run's after the same step: from there on the run *is* the golden run (every later step
is a function of the state and the step number), so the rest of its curve is the golden curve.
Equality, once reached, holds at every later step, so the digest is compared only at offsets 0, 1,
2, 4, 8, ... after the injection (hashing the state costs a fifth of a step); a mitigation that
rolls back needs the state equal at two consecutive steps (its snapshots reach one step back).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dse.errors import InputError
from dse.resilience.training.fault import Injector, TrainFault
from dse.resilience.training.mitigation import Mitigation
from dse.resilience.training.trainer import Data, StepRecord, Trainer, TrainSetup, deterministic, finite


@dataclass
class Curve:
    """Per-step loss and batch accuracy over global steps ``start..start+len-1`` (NaN where not
    run), test accuracy at evaluation-grid steps, and the mitigation's detections."""

    start: int
    loss: np.ndarray
    acc: np.ndarray
    test_acc: dict[int, float] = field(default_factory=dict)
    detections: list[int] = field(default_factory=list)
    rollbacks: int = 0
    nonfinite: int | None = None  # the step whose loss or gradient norm was not finite
    exact_stop: int | None = None  # the step after which the state equalled the golden run's


@dataclass
class Golden:
    """A golden run (module doc) plus the other seeds' test-accuracy curves and losses."""

    setup: TrainSetup
    steps_per_epoch: int
    curve: Curve
    digests: list[bytes]
    checkpoints: dict[int, dict]  # global step -> state at the start of that step
    wall_s: float
    seed_test_acc: list[dict[int, float]] = field(default_factory=list)
    seed_loss: list[np.ndarray] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return len(self.curve.loss)

    def grid(self) -> list[int]:
        return eval_grid(self.total_steps, self.setup.eval_every)


def eval_grid(total: int, every: int) -> list[int]:
    return sorted({g for g in range(every - 1, total, every)} | {total - 1})


def end_step(golden: Golden, inject: int, steps_after: int | None) -> int:
    """Last step of an experiment: the first grid step at least ``steps_after`` past the
    injection (so that it ends on a step the golden run was evaluated at), or the run's end."""
    last = golden.total_steps - 1
    if steps_after is None:
        return last
    return next((g for g in golden.grid() if g >= inject + steps_after), last)


CHECKPOINT_EVERY = 10


def golden_run(setup: TrainSetup, data: Data, spread_seeds: int = 2,
               checkpoint_every: int = CHECKPOINT_EVERY) -> Golden:
    """The golden run of ``setup`` and ``spread_seeds`` more runs with seeds ``seed+1...``.

    A checkpoint every ``checkpoint_every`` steps bounds what an experiment re-trains before its
    injection (at most that many steps; a checkpoint costs about a quarter of a step to take and
    the model + optimizer state in memory)."""
    if checkpoint_every < 1:
        raise InputError("checkpoint interval must be >= 1 step", field="--checkpoint-every")
    t0 = time.perf_counter()
    trainer = Trainer(setup, data)
    digests: list[bytes] = []
    checkpoints: dict[int, dict] = {}
    curve = _loop(trainer, Mitigation(setup.mitigation), 0, trainer.total_steps - 1,
                  digests=digests, checkpoints=checkpoints, checkpoint_every=checkpoint_every)
    wall = time.perf_counter() - t0
    if not np.isfinite(curve.loss).all():
        raise InputError("the fault-free run diverges (non-finite loss); lower the learning rate",
                         field="learning_rate")
    golden = Golden(setup, trainer.steps_per_epoch, curve, digests, checkpoints, wall)
    for k in range(1, spread_seeds + 1):
        c = seed_curve(setup, data, k)
        golden.seed_test_acc.append(c.test_acc)
        golden.seed_loss.append(c.loss)
    return golden


def seed_curve(setup: TrainSetup, data: Data, k: int) -> Curve:
    """The fault-free curve of ``setup`` with seed ``seed + k`` (for the outcome tolerance; no
    checkpoints or digests: no experiment restarts from it)."""
    other = Trainer(setup.with_(seed=setup.seed + k), data)
    return _loop(other, Mitigation(setup.mitigation), 0, other.total_steps - 1)


@dataclass
class Experiment:
    """What one experiment produced: its curve, where it stopped and why, the values written."""

    fault: TrainFault | None
    inject: int
    end: int
    curve: Curve
    written: list[float]
    original: list[float]
    wall_s: float
    steps_run: int


def check_fault(fault: TrainFault, golden: Golden) -> int:
    """The fault's global step; InputError when it is not a step of the golden run."""
    spe = golden.steps_per_epoch
    epochs = golden.total_steps // spe
    if fault.epoch >= epochs:
        raise InputError(f"epoch {fault.epoch} is past the run's {epochs} epochs",
                         field="target_epoch")
    if fault.step >= spe:
        raise InputError(f"step {fault.step} is past the end of an epoch ({spe} steps of batch "
                         f"{golden.setup.batch_size})", field="target_step")
    if fault.pass_ == "optimizer" and fault.epoch == fault.step == 0:
        raise InputError("the optimizer has no state before step 1", field="target_step")
    return fault.epoch * spe + fault.step


def run_experiment(golden: Golden, data: Data, fault: TrainFault | None, *,
                   steps_after: int | None = None, epoch: int | None = None,
                   early_stop: bool = True, from_scratch: bool = False) -> Experiment:
    """One experiment (module doc). ``fault=None`` runs fault-free from ``epoch``'s checkpoint.

    ``early_stop=False`` trains every step to the end (no stop at INF/NaN or at the golden
    state) and ``from_scratch=True`` starts at step 0: together, the naive experiment that the
    checkpoints and early stops are measured against (``bench/train_inject.py``)."""
    t0 = time.perf_counter()
    setup = golden.setup
    inject = (epoch or 0) * golden.steps_per_epoch if fault is None else check_fault(fault, golden)
    end = end_step(golden, inject, steps_after)
    trainer = Trainer(setup, data)
    mitigation = Mitigation(setup.mitigation)
    start = 0 if from_scratch else restart_step(golden, inject, mitigation.rolls_back)
    trainer.load(golden.checkpoints[start])
    mitigation.load(golden.checkpoints[start]["mitigation"])
    injector = Injector(fault) if fault is not None else None
    curve = _loop(trainer, mitigation, start, end, injector=injector, inject=inject,
                  golden=golden if early_stop else None, stop_nonfinite=early_stop,
                  eval_from=inject)
    stops = (curve.exact_stop, curve.nonfinite) if early_stop else ()
    last = next((g for g in stops if g is not None), end)
    if curve.exact_stop is not None:
        _fill_from_golden(curve, golden, curve.exact_stop + 1, end)
    return Experiment(fault, inject, end, curve, injector.written if injector else [],
                      injector.original if injector else [], time.perf_counter() - t0,
                      last - start + 1)


def restart_step(golden: Golden, inject: int, rolls_back: bool) -> int:
    """The last checkpoint an experiment injecting at ``inject`` can start from. A rollback
    mitigation starts one step earlier: its snapshot of the step before the injection must be
    the one a run from step 0 would hold (else a rollback at the injection step would differ)."""
    limit = inject - 1 if rolls_back and inject > 0 else inject
    return max(c for c in golden.checkpoints if c <= limit)


def _fill_from_golden(curve: Curve, golden: Golden, first: int, end: int) -> None:
    lo, hi = first - curve.start, end - curve.start + 1
    curve.loss[lo:hi] = golden.curve.loss[first:end + 1]
    curve.acc[lo:hi] = golden.curve.acc[first:end + 1]
    curve.test_acc.update({g: a for g, a in golden.curve.test_acc.items() if first <= g <= end})
    curve.detections += [g for g in golden.curve.detections if first <= g <= end]


def _loop(trainer: Trainer, mitigation: Mitigation, start: int, end: int, *,
          injector: Injector | None = None, inject: int = -1, golden: Golden | None = None,
          digests: list[bytes] | None = None, checkpoints: dict[int, dict] | None = None,
          checkpoint_every: int = CHECKPOINT_EVERY, stop_nonfinite: bool = True,
          eval_from: int = 0) -> Curve:
    """Train steps ``start..end``; the one loop behind golden runs and experiments (test
    accuracy at the grid steps from ``eval_from`` on)."""
    mitigation.check_optimizer(trainer.setup.optimizer)
    n = end - start + 1
    curve = Curve(start, np.full(n, np.nan, dtype=np.float32),
                  np.full(n, np.nan, dtype=np.float32))
    grid = set(eval_grid(trainer.total_steps, trainer.setup.eval_every))
    snaps: deque = deque(maxlen=2)
    replay_until = -1  # re-executing after a rollback up to this step: no second rollback
    equal_through = inject - 1  # the last step after which the state is known to be golden
    spe = trainer.steps_per_epoch
    g = start
    with deterministic():
        while g <= end:
            if checkpoints is not None and (g % checkpoint_every == 0 or g % spe == 0):
                checkpoints[g] = {**trainer.state(), "mitigation": mitigation.state()}
            if mitigation.rolls_back:
                snaps.append((g, trainer.state(), mitigation.state()))
            rec = _step(trainer, g, injector if g == inject else None)
            if mitigation.check(g, trainer, rec):
                if mitigation.rolls_back and g > replay_until:
                    replay_until = g
                    g = _rollback(trainer, mitigation, snaps)
                    curve.rollbacks += 1
                    continue
                rec.finite = finite(rec.loss) and finite(trainer.grad_norm())  # after a skip
            curve.loss[g - start], curve.acc[g - start] = rec.loss, rec.acc
            if not rec.finite:
                curve.nonfinite = g if curve.nonfinite is None else curve.nonfinite
                if stop_nonfinite:
                    break
            trainer.opt.step()
            mitigation.observe(rec)
            if g in grid and g >= eval_from:
                curve.test_acc[g] = trainer.evaluate()
            if digests is not None:
                digests.append(trainer.digest(repr(mitigation.state()).encode()))
            elif (golden is not None and g >= inject
                  and _due(g - inject, mitigation.rolls_back)):
                if trainer.digest(repr(mitigation.state()).encode()) == golden.digests[g]:
                    if not mitigation.rolls_back or equal_through == g - 1:
                        curve.exact_stop = g
                        break
                    equal_through = g
            g += 1
    curve.detections = list(mitigation.detections)
    return curve


def _due(offset: int, pairs: bool) -> bool:
    """Whether to compare the state with the golden one ``offset`` steps after the injection:
    at 0, 1, 2, 4, 8, ... and, with ``pairs``, also one step after each of those."""
    def power(o: int) -> bool:
        return o == 0 or o & (o - 1) == 0
    return power(offset) or (pairs and offset >= 1 and power(offset - 1))


def _step(trainer: Trainer, g: int, injector: Injector | None) -> StepRecord:
    if injector is None:
        rec = trainer.forward_backward(g)
    else:
        with injector.armed(trainer.model):
            rec = trainer.forward_backward(g)
        injector.optimizer_state(trainer.model, trainer.opt)
    rec.finite = finite(rec.loss) and finite(rec.grad_norm)
    return rec


def _rollback(trainer: Trainer, mitigation: Mitigation, snaps: deque) -> int:
    """Restore the oldest kept snapshot (the start of the previous step) and return its step."""
    g, state, mstate = snaps[0]
    trainer.load(state)
    mitigation.load(mstate)
    snaps.clear()
    return g
