"""The builtin Timeloop-compatible model: (problem, arch, mapping) -> Stats.

Public API: :func:`evaluate` (one mapping), :func:`analyze` (tiles, residency, loop structure),
:func:`read_mapping` / :func:`write_mapping` (Timeloop map.yaml), :func:`read_map_txt` /
:func:`loop_nest_text` (the printed loop nest),
:func:`parse_stats_txt` (a real run's stats.txt as :class:`Stats`), and the batched
:func:`evaluate_batch` / :func:`evaluate_arrays` (:class:`MappingArrays`) for the mapper.
"""

from dse.model.batch import BatchResult, MappingArrays, evaluate_arrays, evaluate_batch
from dse.model.evaluate import evaluate
from dse.model.mapfile import (
    loop_nest_text,
    parse_stats_txt,
    read_map_txt,
    read_mapping,
    write_mapping,
)
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.model.nest import NestAnalysis, NestLoop, analyze
from dse.model.stats import LevelStats, Stats

__all__ = ["BatchResult", "LevelMapping", "LevelStats", "Loop", "Mapping", "MappingArrays",
           "NestAnalysis", "NestLoop", "Stats", "analyze", "evaluate", "evaluate_arrays",
           "evaluate_batch", "loop_nest_text", "parse_stats_txt", "read_map_txt", "read_mapping",
           "write_mapping"]
