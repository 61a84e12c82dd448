"""The builtin Timeloop-compatible model: (problem, arch, mapping) -> Stats.

Public API: :func:`evaluate` (one mapping), :func:`analyze` (tiles, residency, loop structure),
:func:`read_mapping` / :func:`write_mapping` (Timeloop map.yaml), :func:`read_map_txt`,
:func:`parse_stats_txt` (a real run's stats.txt as :class:`Stats`).
"""

from dse.model.evaluate import evaluate
from dse.model.mapfile import parse_stats_txt, read_map_txt, read_mapping, write_mapping
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.model.nest import NestAnalysis, NestLoop, analyze
from dse.model.stats import LevelStats, Stats

__all__ = ["LevelMapping", "LevelStats", "Loop", "Mapping", "NestAnalysis", "NestLoop", "Stats",
           "analyze", "evaluate", "parse_stats_txt", "read_map_txt", "read_mapping",
           "write_mapping"]
