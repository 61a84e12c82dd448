"""Workloads: PyTorch models profiled into Timeloop problems.

Public API: the core types, problem YAML in/out, :func:`profile` (one traced forward pass) and the
model registry :mod:`dse.problems.zoo` (``get_model``, ``default_input``, ``list_models``).
``profile`` and ``zoo`` load lazily: the model, mapper and sweep workers import the core types from
here and should not pay for importing torch.
"""

from typing import Any

from dse.problems.problem import DataSpace, Layer, NonMacOp, Problem, Workload, conv_problem
from dse.problems.yaml_io import problem_from_dict, problem_to_dict, read_problem, write_problem

__all__ = ["DataSpace", "Layer", "NonMacOp", "Problem", "Workload", "conv_problem", "profile",
    "problem_from_dict", "problem_to_dict", "read_problem", "write_problem", "zoo",
]


def __getattr__(name: str) -> Any:
    if name == "profile":
        from dse.problems.profile import profile

        # Importing the submodule bound the name to it; the public name is the function.
        globals()["profile"] = profile
        return profile
    if name == "zoo":
        import importlib

        return importlib.import_module("dse.problems.zoo")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
