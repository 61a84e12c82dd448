"""The builtin Timeloop-compatible model: (problem, arch, mapping) -> Stats."""

from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.model.stats import LevelStats, Stats

__all__ = ["LevelMapping", "LevelStats", "Loop", "Mapping", "Stats"]
