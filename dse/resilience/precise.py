"""A model-level campaign to a stated precision: strata = layer x bit group, adaptive allocation.

``dse inject --precision`` grows its fault list in rounds instead of drawing Leveugle's sizes up
front. Every (layer, bit group) of the targeted tensors is a stratum whose weight is its share of
the stored bits (elements x bits in the group); each gets a pilot, then Neyman rounds
(:mod:`dse.resilience.strata`) until the headline class's P(class | fault) has a half-width at
most ``precision`` x the estimate, or an upper bound under ``floor``, or ``max_faults`` have run.

Fault j of stratum h is drawn from its own stream ``(seed, h, j)``, and a round is written to the
fault list before it runs, so a killed campaign finishes that round on resume and then makes the
same decisions as an uninterrupted one (the list is the same, fault for fault).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse.resilience.fault import KINDS, Fault
from dse.resilience.formats import number_format
from dse.resilience.outcomes import OutcomeSpec
from dse.resilience.stats import z_value
from dse.resilience.strata import (
    Estimate,
    Plan,
    Stratum,
    bit_groups,
    combine,
    next_additions,
)


@dataclass(frozen=True)
class Cell:
    """One stratum: a layer's tensor and a run of bit positions [lo, hi)."""

    layer: str
    shape: tuple[int, ...]
    bits: tuple[int, int]
    weight: float  # share of every stored bit of the targeted tensors

    def holds(self, fault: Fault) -> bool:
        b = fault.what.bits[0] if fault.what.bits else 0
        return fault.where.layer == self.layer and self.bits[0] <= b < self.bits[1]


def cells(shapes: dict[str, tuple[int, ...]], fmt: str, kind: str) -> list[Cell]:
    """The strata of a campaign over ``shapes`` (layer -> tensor shape); kinds that do not use
    bits (zero, random words) have one stratum per layer."""
    width = number_format(fmt).width
    groups = bit_groups(width) if KINDS[kind].uses_bits else [(0, width)]
    total = sum(math.prod(s) for s in shapes.values()) * width
    return [Cell(layer, shape, g, math.prod(shape) * (g[1] - g[0]) / total)
            for layer, shape in shapes.items() for g in groups]


def draw(cell: Cell, h: int, j: int, *, seed: int, role: str, kind: str, fmt: str,
         model: str = "") -> Fault:
    """Fault j of stratum h: a uniform element of the layer's tensor and bit of the group."""
    rng = np.random.default_rng([seed, h, j])
    index = np.unravel_index(int(rng.integers(math.prod(cell.shape))), cell.shape)
    bits = [int(rng.integers(*cell.bits))] if KINDS[kind].uses_bits else []
    word = (int(rng.integers(2 ** number_format(fmt).width))
            if KINDS[kind].word_from == "draw" else None)
    return Fault.of(cell.layer, tuple(int(i) for i in index), bits, role=role, kind=kind, fmt=fmt,
                    word=word, model=model)


def strata_of(strata_cells: Sequence[Cell], faults: Sequence[Fault],
              fractions: Sequence[float | None]) -> tuple[list[Stratum], list[int]]:
    """(strata with the finished faults' fractions, listed faults per stratum). ``fractions[i]``
    is None for a listed fault that has not run yet."""
    strata = [Stratum(c.weight) for c in strata_cells]
    listed = [0] * len(strata_cells)
    by_layer: dict[str, list[int]] = {}
    for i, c in enumerate(strata_cells):
        by_layer.setdefault(c.layer, []).append(i)
    for f, y in zip(faults, fractions, strict=True):
        h = next(i for i in by_layer[f.where.layer] if strata_cells[i].holds(f))
        listed[h] += 1
        if y is not None:
            strata[h].add([y])
    return strata, listed


def next_faults(strata_cells: Sequence[Cell], strata: list[Stratum], plan: Plan, *, seed: int,
                role: str, kind: str, fmt: str, model: str = "") -> list[Fault]:
    """The next round's faults (empty when the campaign is done), from the finished counts."""
    add = next_additions(strata, plan, z_value(plan.confidence))
    if add is None:
        return []
    return [draw(strata_cells[h], h, j, seed=seed, role=role, kind=kind, fmt=fmt, model=model)
            for h, more in enumerate(add) for j in range(strata[h].n, strata[h].n + more)]


def fraction(counts: Sequence[int], spec: OutcomeSpec, cls: str | None = None) -> float:
    """One fault's observation: the share of its images in class ``cls`` (the headline)."""
    j = spec.columns.index(cls or spec.headline)
    return counts[j] / counts[0] if counts[0] else 0.0


def estimate(strata: list[Stratum], confidence: float) -> Estimate:
    return combine(strata, z_value(confidence))
