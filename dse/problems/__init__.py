"""Workloads: PyTorch models profiled into Timeloop problems.

Public API: the core types, problem YAML in/out, :func:`profile` (one traced forward pass) and the
model registry :mod:`dse.problems.zoo` (``get_model``, ``default_input``, ``list_models``).
"""

from dse.problems.problem import DataSpace, Layer, NonMacOp, Problem, Workload, conv_problem
from dse.problems.profile import profile
from dse.problems.yaml_io import problem_from_dict, problem_to_dict, read_problem, write_problem

__all__ = ["DataSpace", "Layer", "NonMacOp", "Problem", "Workload", "conv_problem", "profile",
    "problem_from_dict", "problem_to_dict", "read_problem", "write_problem",
]
