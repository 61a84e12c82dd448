"""Stratified estimates of a fault rate, with the fault as the sampling unit, and adaptive allocation.

A campaign's faults fall in strata (layer x site class x bit group) whose shares of the raw fault
rate are known exactly (exposure), while each stratum's P(SDC | fault) is measured. One fault is
one sample: it is struck on every campaign image, and its *fraction* of failing images is one
observation y in [0, 1]. (fault, image) pairs are never counted as independent samples: the images
of one fault are strongly correlated (a high-order flip fails on most, a low-order one on none).

The figure reported is a weighted sum ``theta = sum_h W_h p_h`` (``p_h`` the mean of y in stratum h).
Its interval:

- estimate ``sum_h W_h ybar_h``;
- variance ``v = sum_h W_h^2 sigma_h^2 / n_h`` with ``sigma_h^2 = max(s_h^2, q_h (1 - q_h))``,
  ``q_h = 1/2 / (n_h + 1)``: the spread of a stratum that might hold half a failing fault more than
  it showed. So a rare stratum that happened to show zero still widens the interval (and still gets
  faults), while a stratum with failures uses its own sample variance. (y lies in [0, 1], so
  ``Var(y) <= p (1 - p)``; below two faults that bound, at ``(sum y + 1/2) / (n + 1)``, is used);
- a Wilson score interval on the effective sample size ``n* = theta (1 - theta) / v`` (Korn and
  Graubard's rule for complex samples), so the interval stays inside [0, 1] and is asymmetric near 0
  as it should be; with nothing observed, ``n*`` is Kish's size ``1 / sum_h W_h^2 / n_h``;
- a stratum with no faults at all (never sampled) is *bounded*, not dropped: its term adds
  ``[0, W_h]`` to the interval (it can contribute anything from none to all its share).

Allocation (Neyman): for a fixed total, the variance of the weighted sum is smallest with
``n_h`` proportional to ``W_h sigma_h``. :func:`allocate` turns that into whole faults to add in one
round; since ``sigma_h`` comes only from results so far, a campaign run in rounds is deterministic
for a seed. The coverage of these intervals under adaptive allocation is checked by simulation with
known rates (``tests/test_resilience_strata.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dse.errors import InputError
from dse.resilience.stats import wilson


@dataclass
class Stratum:
    """Sufficient statistics of one stratum: its weight and the per-fault fractions seen so far."""

    weight: float  # share of the reported figure (exposure share, times cycle share, ...)
    n: int = 0  # faults run
    total: float = 0.0  # sum over faults of the fraction of images that failed
    total_sq: float = 0.0  # sum of squares of those fractions

    def add(self, fractions: Iterable[float]) -> None:
        for y in fractions:
            self.n += 1
            self.total += float(y)
            self.total_sq += float(y) * float(y)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def spread(self) -> float:
        """Standard deviation of one fault's fraction, never below that of half a failing fault
        more than seen (see the module doc)."""
        if self.n < 2:
            pt = (self.total + 0.5) / (self.n + 1)
            return math.sqrt(pt * (1 - pt))
        q = 0.5 / (self.n + 1)
        var = max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))
        return math.sqrt(max(var, q * (1 - q)))


@dataclass(frozen=True)
class Estimate:
    """A rate with its interval (same units as the weights times a probability)."""

    value: float
    lo: float
    hi: float
    n: int  # faults behind it

    @property
    def half_width(self) -> float:
        """The wider side of the interval (it is asymmetric near 0)."""
        return max(self.hi - self.value, self.value - self.lo)

    @property
    def relative(self) -> float:
        """Half-width over the estimate (inf at an estimate of 0)."""
        return self.half_width / self.value if self.value > 0 else math.inf

    def scaled(self, factor: float) -> Estimate:
        """The same estimate in other units (FIT = rate x raw FIT x Mbit, ...)."""
        return Estimate(self.value * factor, self.lo * factor, self.hi * factor, self.n)

    def resolved(self, precision: float, floor: float) -> bool:
        """Precise enough: half-width <= ``precision`` x estimate, or the upper bound is below
        ``floor`` (a figure that small needs no more digits)."""
        return self.hi < floor or (self.value > 0 and self.half_width <= precision * self.value)

    def apart(self, other: Estimate) -> bool:
        """The two intervals do not overlap."""
        return self.hi < other.lo or other.hi < self.lo


def combine(strata: Sequence[Stratum], z: float) -> Estimate:
    """Interval of ``sum_h W_h p_h`` at normal quantile ``z`` (weights need not sum to 1)."""
    total_w = sum(s.weight for s in strata)
    if total_w <= 0:
        return Estimate(0.0, 0.0, 0.0, sum(s.n for s in strata))
    seen = [s for s in strata if s.n > 0 and s.weight > 0]
    unseen = sum(s.weight for s in strata if s.n == 0) / total_w
    n = sum(s.n for s in strata)
    if not seen:
        return Estimate(0.0, 0.0, unseen * total_w, n)
    ws = [s.weight / total_w for s in seen]
    theta = sum(w * s.mean for w, s in zip(ws, seen, strict=True))
    var = sum(w * w * s.spread ** 2 / s.n for w, s in zip(ws, seen, strict=True))
    kish = 1.0 / sum(w * w / s.n for w, s in zip(ws, seen, strict=True))
    scale = sum(ws)  # the sampled part of the figure; the interval is taken on its mean
    p = theta / scale
    n_eff = p * (1 - p) / (var / scale ** 2) if 0 < p < 1 and var > 0 else kish
    lo, hi = wilson(p * n_eff, n_eff, z)
    return Estimate(theta * total_w, lo * scale * total_w, (hi * scale + unseen) * total_w, n)


def allocate(strata: Sequence[Stratum], budget: int, *, cap: Sequence[int] | None = None
             ) -> list[int]:
    """Faults to add to each stratum this round: ``budget`` in all (fewer only when every stratum
    is at its ``cap``), placed so the totals move toward Neyman's ``n_h ~ W_h sigma_h``.

    Deterministic: depends only on the strata's counts (ties go to the lower index)."""
    if budget < 0:
        raise InputError(f"budget must be >= 0, got {budget}", field="budget")
    caps = list(cap) if cap is not None else [math.inf] * len(strata)
    room = [max(0, c - s.n) if s.weight > 0 else 0 for s, c in zip(strata, caps, strict=True)]
    scores = [s.weight * s.spread for s in strata]
    total_score = sum(sc for sc, r in zip(scores, room, strict=True) if r > 0)
    add = [0] * len(strata)
    budget = min(budget, int(min(sum(room), 2 ** 62)))
    if budget == 0 or total_score <= 0:
        return add
    target_total = sum(s.n for s in strata) + budget
    want = [max(0.0, target_total * sc / total_score - s.n) if r > 0 else 0.0
            for s, sc, r in zip(strata, scores, room, strict=True)]
    total_want = sum(want) or 1.0
    share = [budget * w / total_want for w in want]
    for i, x in enumerate(share):
        add[i] = min(room[i], int(x))
    left = budget - sum(add)
    order = sorted(range(len(strata)), key=lambda i: (-(share[i] - int(share[i])), -scores[i], i))
    while left > 0:
        moved = False
        for i in order:
            if left == 0:
                break
            if add[i] < room[i]:
                add[i] += 1
                left -= 1
                moved = True
        if not moved:
            break
    return add


def next_round(strata: Sequence[Stratum], estimate: Estimate, precision: float,
               floor: float) -> int:
    """Faults to add next: what the current spread says the precision needs, between a tenth of
    and as many as the faults so far (so a campaign grows geometrically and a poor early spread
    estimate cannot ask for a million faults at once)."""
    n = max(1, sum(s.n for s in strata))
    if estimate.value > 0 and estimate.relative < math.inf:
        need = n * (estimate.relative / precision) ** 2 - n
    else:
        need = n * (estimate.hi / floor) - n if floor > 0 else n
    return int(min(max(need, n / 10, 1), n))


def check_settings(precision: float, floor: float, max_faults: int | None) -> None:
    """One clear line for a setting no campaign can meet."""
    if not 0 < precision < 1:
        raise InputError(f"must be in (0, 1) (a relative half-width), got {precision}",
                         field="--precision")
    if not floor >= 0:
        raise InputError(f"must be >= 0, got {floor}", field="--floor")
    if max_faults is not None and max_faults < 1:
        raise InputError(f"must be >= 1, got {max_faults}", field="--max-faults")


@dataclass(frozen=True)
class Plan:
    """How long an adaptive campaign runs."""

    precision: float = 0.2
    floor: float = 1e-4
    max_faults: int = 20000
    pilot: int = 4  # faults per stratum before any allocation
    confidence: float = 0.95

    def __post_init__(self) -> None:
        check_settings(self.precision, self.floor, self.max_faults)
        if self.pilot < 1:
            raise InputError(f"must be >= 1, got {self.pilot}", field="pilot")


def run_adaptive(strata: list[Stratum], measure, plan: Plan, z: float) -> Estimate:
    """Pilot every stratum, then add faults in Neyman rounds until the estimate is resolved or
    ``plan.max_faults`` faults have run. ``measure(additions)`` runs ``additions[h]`` new faults in
    stratum h and returns their per-fault fractions per stratum; strata already holding faults
    (a resumed campaign) keep them and only get more."""
    pilot = [max(0, min(plan.pilot, plan.max_faults) - s.n) if s.weight > 0 else 0
             for s in strata]
    room = plan.max_faults - sum(s.n for s in strata)
    if sum(pilot) > room:  # a campaign too small for a full pilot: the heaviest strata first
        order = sorted(range(len(strata)), key=lambda i: (-strata[i].weight, i))
        left = max(0, room)
        for i in order:
            pilot[i], left = min(pilot[i], left), left - min(pilot[i], left)
    _apply(strata, measure, pilot)
    est = combine(strata, z)
    while not est.resolved(plan.precision, plan.floor):
        room = plan.max_faults - sum(s.n for s in strata)
        if room <= 0:
            break
        add = allocate(strata, min(room, next_round(strata, est, plan.precision, plan.floor)))
        if not any(add):
            break
        _apply(strata, measure, add)
        est = combine(strata, z)
    return est


def _apply(strata: list[Stratum], measure, additions: list[int]) -> None:
    if not any(additions):
        return
    for s, fractions in zip(strata, measure(additions), strict=True):
        s.add(fractions)
