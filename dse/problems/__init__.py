"""Workloads: PyTorch models profiled into Timeloop problems."""

from dse.problems.problem import DataSpace, Layer, NonMacOp, Problem, Workload, conv_problem

__all__ = ["DataSpace", "Layer", "NonMacOp", "Problem", "Workload", "conv_problem"]
