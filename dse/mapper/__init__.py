"""The builtin mapper: the constrained mapspace of a layer on a design, and searches over it.

Public API: :func:`search` -> :class:`MapperResult` (best mapping, its stats, the energy × delay
Pareto set, counts); :class:`MapSpace` (sampling, enumeration, membership, sizes before and after
pruning); :class:`Objective` / :func:`make_objective`.
"""

from dse.mapper.mapspace import MapSpace, Point
from dse.mapper.search import OBJECTIVES, BatchMetric, MapperResult, Objective, make_objective, search, select

__all__ = ["OBJECTIVES", "BatchMetric", "MapSpace", "MapperResult", "Objective", "Point", "make_objective",
           "search", "select"]
