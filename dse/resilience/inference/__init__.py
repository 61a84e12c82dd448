"""Inference fault-injection engines: the naive reference and the fast engine (bit-identical
outcomes), both taking an outcome spec and a device; ``perturbed`` gives a faulty model for your
own evaluation loop."""

from dse.resilience.inference.fast import FastEngine
from dse.resilience.inference.naive import EngineResult, NaiveEngine
from dse.resilience.inference.perturb import perturbed

ENGINES = {"fast": FastEngine, "naive": NaiveEngine}

__all__ = ["ENGINES", "EngineResult", "FastEngine", "NaiveEngine", "perturbed"]
