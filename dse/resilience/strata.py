"""Stratified estimates of a fault rate, with the fault as the sampling unit, and adaptive allocation.

A campaign's faults fall in strata (layer x site class x bit group) whose shares of the raw fault
rate are known exactly (exposure), while each stratum's P(SDC | fault) is measured. One fault is
one sample: it is struck on every campaign image, and its *fraction* of failing images is one
observation y in [0, 1]. (fault, image) pairs are never counted as independent samples: the images
of one fault are strongly correlated (a high-order flip fails on most, a low-order one on none).

The figure reported is a weighted sum ``theta = sum_h W_h p_h`` (``p_h`` the mean of y in stratum h).
Its interval joins two parts by Zou and Donner's MOVER (independent parts: the distances from
estimate to bound add in quadrature):

- the strata where some fault failed: estimate ``sum_h W_h ybar_h``, variance
  ``v = sum_h W_h^2 sigma_h^2 / n_h``, and a Wilson score interval on the effective sample size
  ``n* = theta (1 - theta) / v`` (Korn and Graubard's rule for complex samples), so the interval
  stays in [0, 1] and is asymmetric near 0 as it should be. ``sigma_h^2`` is the sample variance
  once a stratum has 5 failing faults; before, the largest variance a fraction in [0, 1] with that
  mean can have (``ybar (1 - ybar)``: every fault failing all its images or none);
- the strata where nothing failed yet: an upper bound only, the Wilson bound for zero events on
  Kish's effective size ``(sum W_h)^2 / sum_h W_h^2 / n_h`` (about 3.8 / n with proportional
  allocation). One bound for all of them, not one per stratum (that would add up to far more);
- a stratum with no faults at all (never sampled) is *bounded*, not dropped: it adds its whole
  weight ``W_h`` to the upper bound (it can contribute anything from none to all its share).

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
from dse.resilience.stats import HITS_FOR_VARIANCE, wilson

MAX_GROUPS = 8  # bit groups per word: every bit up to 8-bit words, runs of bits for wider ones


def bit_groups(bits: int, groups: int = MAX_GROUPS) -> list[tuple[int, int]]:
    """Contiguous bit ranges ``[lo, hi)`` of a word, the bit dimension of a stratum: one per bit
    up to ``groups`` bits, else ``groups`` equal runs (the high bits of a wide accumulator or an
    fp32 exponent stay apart from the low ones, which rarely fail)."""
    size = max(1, math.ceil(bits / groups))
    return [(lo, min(bits, lo + size)) for lo in range(0, bits, size)]


@dataclass
class Stratum:
    """Sufficient statistics of one stratum: its weight and the per-fault fractions seen so far."""

    weight: float  # share of the reported figure (exposure share, times cycle share, ...)
    n: int = 0  # faults run
    total: float = 0.0  # sum over faults of the fraction of images that failed
    total_sq: float = 0.0  # sum of squares of those fractions
    hits: int = 0  # faults that failed at least one image

    def add(self, fractions: Iterable[float]) -> None:
        for y in fractions:
            self.n += 1
            self.total += float(y)
            self.total_sq += float(y) * float(y)
            self.hits += int(y > 0)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Variance of one fault's fraction: the sample variance once ``HITS_FOR_VARIANCE``
        faults have failed, else the largest a fraction in [0, 1] with this mean can have
        (``m (1 - m)``, all-or-nothing faults), at a mean with half a failure more than seen
        (``m = (sum y + 1/2) / (n + 1)``: one or two lucky hits must not look precise)."""
        if self.n < 2 or self.hits < HITS_FOR_VARIANCE:
            m = (self.total + 0.5) / (self.n + 1)
            return m * (1 - m)
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


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
    n = sum(s.n for s in strata)
    if total_w <= 0:
        return Estimate(0.0, 0.0, 0.0, n)
    unseen = sum(s.weight for s in strata if s.n == 0) / total_w
    failed = [s for s in strata if s.n > 0 and s.weight > 0 and s.total > 0]
    clean = [s for s in strata if s.n > 0 and s.weight > 0 and s.total == 0]
    theta, lo, hi = _part(failed, total_w, z)
    _, _, hi_clean = _part(clean, total_w, z)
    hi = theta + math.hypot(hi - theta, hi_clean) + unseen
    return Estimate(theta * total_w, lo * total_w, hi * total_w, n)


def _part(strata: Sequence[Stratum], total_w: float, z: float) -> tuple[float, float, float]:
    """(estimate, lo, hi) of one part's share of the figure: a Wilson interval on its effective
    sample size (``theta (1 - theta) / v``; Kish's ``1 / sum w^2 / n`` when ``v`` is 0)."""
    if not strata:
        return 0.0, 0.0, 0.0
    ws = [s.weight / total_w for s in strata]
    scale = sum(ws)
    theta = sum(w * s.mean for w, s in zip(ws, strata, strict=True))
    var = sum(w * w * s.variance / s.n for w, s in zip(ws, strata, strict=True)) / scale ** 2
    p = theta / scale
    kish = scale ** 2 / sum(w * w / s.n for w, s in zip(ws, strata, strict=True))
    n_eff = p * (1 - p) / var if 0 < p < 1 and var > 0 else kish
    lo, hi = wilson(p * n_eff, n_eff, z)
    return theta, lo * scale, hi * scale


def allocate(strata: Sequence[Stratum], budget: int, *, z: float = 1.96,
             cap: Sequence[int] | None = None) -> list[int]:
    """Faults to add to each stratum this round: ``budget`` in all (fewer only when every stratum
    is at its ``cap``), placed where they shrink the interval most.

    The upper half-width has two parts in quadrature (see :func:`combine`): the strata that have
    failed and the joint bound of those that have not. The round is split between them in
    proportion to their squared contributions; among failed strata the faults move the totals
    toward Neyman's ``n_h ~ W_h sigma_h``, among clean ones toward ``n_h ~ W_h`` (which makes
    their bound, on Kish's size, smallest). Deterministic: depends only on the strata's counts
    (ties go to the lower index)."""
    if budget < 0:
        raise InputError(f"budget must be >= 0, got {budget}", field="budget")
    caps = list(cap) if cap is not None else [math.inf] * len(strata)
    room = [max(0, c - s.n) if s.weight > 0 else 0 for s, c in zip(strata, caps, strict=True)]
    budget = min(budget, int(min(sum(room), 2 ** 62)))
    add = [0] * len(strata)
    if budget == 0:
        return add
    failed = [i for i, s in enumerate(strata) if s.total > 0 and room[i] > 0]
    clean = [i for i, s in enumerate(strata) if s.total == 0 and room[i] > 0]
    total_w = sum(s.weight for s in strata)
    theta, _, hi = _part([s for s in strata if s.n > 0 and s.total > 0], total_w, z)
    _, _, hi_clean = _part([s for s in strata if s.n > 0 and s.total == 0], total_w, z)
    up_failed = (hi - theta) ** 2
    up_clean = hi_clean ** 2 + sum((s.weight / total_w) ** 2 for s in strata if s.n == 0)
    to_clean = (budget if not failed else 0 if not clean
                else round(budget * up_clean / (up_failed + up_clean or 1.0)))
    q = 0.5 / (sum(s.n for s in strata) / len(strata) + 1)
    floor = math.sqrt(q * (1 - q))  # half a failing fault more than seen, at the mean count
    _toward(strata, failed, [s.weight * max(math.sqrt(s.variance), floor) for s in strata],
            budget - to_clean, room, add)
    _toward(strata, clean, [s.weight for s in strata], to_clean, room, add)
    left = budget - sum(add)
    if left > 0:  # one side ran out of room: the other takes the rest
        _toward(strata, failed + clean, [s.weight for s in strata], left, room, add)
    return add


def _toward(strata: Sequence[Stratum], members: list[int], scores: list[float], budget: int,
            room: list[int], add: list[int]) -> None:
    """Add ``budget`` faults among ``members`` so their totals move toward shares of ``scores``
    (largest remainders first, within each stratum's room)."""
    if budget <= 0 or not members:
        return
    total_score = sum(scores[i] for i in members)
    if total_score <= 0:
        scores = [1.0] * len(strata)
        total_score = float(len(members))
    target = sum(strata[i].n + add[i] for i in members) + budget
    want = {i: max(0.0, target * scores[i] / total_score - strata[i].n - add[i]) for i in members}
    total_want = sum(want.values()) or 1.0
    share = {i: budget * w / total_want for i, w in want.items()}
    given = 0
    for i in members:
        k = min(room[i] - add[i], int(share[i]))
        add[i] += k
        given += k
    order = sorted(members, key=lambda i: (-(share[i] - int(share[i])), -scores[i], i))
    while given < budget:
        moved = False
        for i in order:
            if given == budget:
                break
            if add[i] < room[i]:
                add[i] += 1
                given += 1
                moved = True
        if not moved:
            break


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


def next_additions(strata: Sequence[Stratum], plan: Plan, z: float) -> list[int] | None:
    """Faults to add to each stratum next, or None when the campaign is done (its estimate is
    resolved, ``plan.max_faults`` have run, or no stratum has room). First the pilot (every
    stratum up to ``plan.pilot`` faults; the heaviest strata first when the cap cannot afford a
    full pilot), then Neyman rounds. A pure function of the counts so far, so a campaign run in
    rounds by different processes (or resumed after a kill) makes the same decisions."""
    room = plan.max_faults - sum(s.n for s in strata)
    pilot = [max(0, min(plan.pilot, plan.max_faults) - s.n) if s.weight > 0 else 0
             for s in strata]
    if any(pilot) and room > 0:
        if sum(pilot) > room:
            left = room
            for i in sorted(range(len(strata)), key=lambda i: (-strata[i].weight, i)):
                pilot[i], left = min(pilot[i], left), left - min(pilot[i], left)
        return pilot
    est = combine(strata, z)
    if est.resolved(plan.precision, plan.floor) or room <= 0:
        return None
    add = allocate(strata, min(room, next_round(strata, est, plan.precision, plan.floor)), z=z)
    return add if any(add) else None


def run_adaptive(strata: list[Stratum], measure, plan: Plan, z: float) -> Estimate:
    """Pilot every stratum, then add faults in Neyman rounds until the estimate is resolved or
    ``plan.max_faults`` faults have run. ``measure(additions)`` runs ``additions[h]`` new faults in
    stratum h and returns their per-fault fractions per stratum; strata already holding faults
    (a resumed campaign) keep them and only get more."""
    while (add := next_additions(strata, plan, z)) is not None:
        _apply(strata, measure, add)
    return combine(strata, z)


def _apply(strata: list[Stratum], measure, additions: list[int]) -> None:
    if not any(additions):
        return
    for s, fractions in zip(strata, measure(additions), strict=True):
        s.add(fractions)
