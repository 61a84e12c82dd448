"""The Mapping type: how a layer's loop nest is tiled over an architecture's levels.

A mapping has one :class:`LevelMapping` per storage level of the Arch, outermost (DRAM) first.
Each holds the temporal loops executed at that level (outermost first, as they would be written in
a loop nest), the spatial loops that distribute work over the fanout below that level (each on
axis X or Y), and which dataspaces the level keeps. Loops with factor 1 may be omitted; a dim
missing from a level has factor 1 there. Timeloop's ``map.yaml`` lists permutations innermost
first; the YAML reader and writer (``dse.model.mapfile``) convert, so code here never has to
think about it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Loop:
    dim: str
    factor: int
    spatial: bool = False
    axis: str | None = None  # "X" or "Y" for spatial loops


@dataclass
class LevelMapping:
    level: str
    temporal: list[Loop] = field(default_factory=list)  # outermost first
    spatial: list[Loop] = field(default_factory=list)
    keep: frozenset[str] = frozenset()

    def temporal_factor(self, dim: str) -> int:
        return math.prod(lp.factor for lp in self.temporal if lp.dim == dim)

    def spatial_factor(self, dim: str, axis: str | None = None) -> int:
        return math.prod(
            lp.factor for lp in self.spatial if lp.dim == dim and (axis is None or lp.axis == axis)
        )


@dataclass
class Mapping:
    levels: list[LevelMapping]  # aligned with Arch.levels, outermost first

    def level(self, name: str) -> LevelMapping:
        for lm in self.levels:
            if lm.level == name:
                return lm
        raise KeyError(name)

    def factor_product(self, dim: str) -> int:
        """Product of all temporal and spatial factors of ``dim`` (must equal its size)."""
        return math.prod(lm.temporal_factor(dim) * lm.spatial_factor(dim) for lm in self.levels)
