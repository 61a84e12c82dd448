"""The outcome of a training experiment: its whole curve against the golden band.

Classes, first match wins (``K`` = ``short_term`` steps; ``tol`` below):

1. ``ImmediateInfNaN`` — the loss or gradient norm is INF/NaN at the injection step;
2. ``ShortTermInfNaN`` — INF/NaN within ``K`` steps after it;
3. ``LateInfNaN`` — INF/NaN later than that (seed 002 counts these with the degradations; kept
   apart here so no class mixes finite and non-finite runs);
4. ``Masked`` — the test accuracy never fell more than ``tol`` below the golden run's at any
   evaluation after the injection (a run whose state became bit-identical to the golden run is
   Masked by construction);
5. ``Recovered`` — it fell more than ``tol`` below, but not at the end;
6. ``LowTestAccuracy`` — it ends more than ``tol`` below, while its training loss (mean of the
   last ``loss_window`` steps) is still within the golden seeds' (their largest such mean x
   ``1 + loss_tol``): the training curve looks healthy, the model does not;
7. ``SharpDegrade`` — ends below, and the first evaluation at or after ``K`` steps past the
   injection already shows at least ``sharp_fraction`` of the final drop;
8. ``SlowDegrade`` — ends below, the drop built up later.

``tol`` is relative to the spread of fault-free training: ``max(tol_floor, spread_factor x s)``
with ``s`` the range (max - min) of the final test accuracy over the golden seeds at the
experiment's end step. Accuracies are fractions of the test set; drops are in the same unit.

Besides the class, every finite experiment gets seed 002's degradation slope: the least-squares
slope of the accuracy gap (golden minus experiment test accuracy) against the training step over
the evaluations in the last ``slope_window`` steps up to its end, in accuracy (fraction) per 100
steps: > 0 the run is still falling behind the golden run, < 0 it is catching up, about 0 the gap
is stable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from dse.errors import InputError
from dse.resilience import outcomes

OUTCOMES = ("Masked", "ImmediateInfNaN", "ShortTermInfNaN", "LateInfNaN", "SharpDegrade",
            "SlowDegrade", "LowTestAccuracy", "Recovered")
GROUPS = {"ok": ("Masked", "Recovered"),
          "degraded": ("SharpDegrade", "SlowDegrade", "LowTestAccuracy"),
          "diverged": ("ImmediateInfNaN", "ShortTermInfNaN", "LateInfNaN")}


def _classify_all(golden, experiments) -> np.ndarray:
    """Labels (experiments, 1) of ``experiments`` against ``golden`` at the default thresholds
    (the fault core's classify form; campaigns with other thresholds call :func:`classify`)."""
    spec = TrainingOutcomeSpec()
    return np.array([[OUTCOMES.index(classify(e, golden, spec).outcome)] for e in experiments],
                    dtype=np.int8)


@dataclass(frozen=True)
class TrainingOutcomeSpec:
    """Thresholds of the training outcome classes (module doc); every one is an option."""

    short_term: int = 10
    tol_floor: float = 0.02
    spread_factor: float = 2.0
    sharp_fraction: float = 0.5
    loss_window: int = 10
    loss_tol: float = 0.25
    slope_window: int = 20

    @classmethod
    def parse(cls, items: list[str] | None) -> TrainingOutcomeSpec:
        """From ``key=value`` strings (``--outcome short_term=5``)."""
        known = {f.name: f.type for f in fields(cls)}
        kw: dict = {}
        for item in items or []:
            key, _, value = item.partition("=")
            if key not in known:
                raise InputError(f"unknown outcome setting {key!r}; expected one of "
                                 f"{sorted(known)}", field="--outcome")
            try:
                kw[key] = int(value) if known[key] == "int" else float(value)
            except ValueError:
                raise InputError(f"{key} needs a number, got {value!r}", field="--outcome") from None
        return cls(**kw)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """An outcome with the numbers it was decided on (accuracies as fractions of the test set)."""

    outcome: str
    final_acc: float
    golden_acc: float
    drop: float
    max_drop: float
    tol: float
    slope: float = float("nan")  # degradation slope (module doc), accuracy per 100 steps


def classify(exp, golden, spec: TrainingOutcomeSpec) -> Verdict:
    """The outcome of experiment ``exp`` (:class:`~.run.Experiment`) against ``golden``."""
    curve, inj = exp.curve, exp.inject
    nan = float("nan")
    end = exp.end
    tol = _tolerance(golden, end, spec)
    if curve.nonfinite is not None:
        after = curve.nonfinite - inj
        name = ("ImmediateInfNaN" if after <= 0 else
                "ShortTermInfNaN" if after <= spec.short_term else "LateInfNaN")
        return Verdict(name, nan, golden.curve.test_acc.get(end, nan), nan, nan, tol)
    evals = sorted(g for g in curve.test_acc if g >= inj)
    drops = {g: golden.curve.test_acc[g] - curve.test_acc[g] for g in evals}
    final = drops[end]
    worst = max(drops.values())
    base = Verdict("Masked", curve.test_acc[end], golden.curve.test_acc[end], final, worst, tol,
                   degradation_slope(exp, golden, spec.slope_window))
    if worst <= tol:
        return base
    if final <= tol:
        return _named(base, "Recovered")
    if _loss_healthy(exp, golden, spec):
        return _named(base, "LowTestAccuracy")
    early = next((g for g in evals if g >= inj + spec.short_term), end)
    sharp = drops[early] >= spec.sharp_fraction * final
    return _named(base, "SharpDegrade" if sharp else "SlowDegrade")


def _named(v: Verdict, name: str) -> Verdict:
    return replace(v, outcome=name)


def degradation_slope(exp, golden, window: int) -> float:
    """The degradation slope of a finite experiment (module doc); NaN with fewer than two
    evaluations after the injection in the window."""
    steps = [g for g in sorted(exp.curve.test_acc)
             if max(exp.end - window, exp.inject) <= g <= exp.end]
    if len(steps) < 2 or exp.curve.nonfinite is not None:
        return float("nan")
    gap = [golden.curve.test_acc[g] - exp.curve.test_acc[g] for g in steps]
    return 100.0 * float(np.polyfit(np.array(steps, dtype=float), np.array(gap), 1)[0])


def _tolerance(golden, end: int, spec: TrainingOutcomeSpec) -> float:
    accs = [golden.curve.test_acc.get(end)] + [s.get(end) for s in golden.seed_test_acc]
    accs = [a for a in accs if a is not None]
    spread = max(accs) - min(accs) if len(accs) > 1 else 0.0
    return max(spec.tol_floor, spec.spread_factor * spread)


def _loss_healthy(exp, golden, spec: TrainingOutcomeSpec) -> bool:
    # the window never reaches before the injection: the result must not depend on where the
    # experiment restarted (a checkpoint, or step 0 for the from-scratch reference)
    first = max(exp.end - spec.loss_window + 1, exp.inject)
    mine = float(np.mean(exp.curve.loss[first - exp.curve.start:exp.end - exp.curve.start + 1]))
    w = slice(first, exp.end + 1)
    ref = max(float(np.mean(c[w])) for c in [golden.curve.loss, *golden.seed_loss])
    return mine <= ref * (1 + spec.loss_tol)


TRAIN_CURVE = outcomes.register(outcomes.OutcomeSpec(
    "train_curve", (("outcome", OUTCOMES),), _classify_all, identical=(0,),
    headline="SharpDegrade", doc=__doc__ or ""))
