"""Workloads: PyTorch models profiled into Timeloop problems."""

from dse.problems.problem import DataSpace, Layer, NonMacOp, Problem, Workload, conv_problem
from dse.problems.yaml_io import problem_from_dict, problem_to_dict, read_problem, write_problem

__all__ = ["DataSpace", "Layer", "NonMacOp", "Problem", "Workload", "conv_problem",
    "problem_from_dict", "problem_to_dict", "read_problem", "write_problem",
]
