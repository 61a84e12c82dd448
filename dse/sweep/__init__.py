"""Sweeps: experiment configs, the resumable SQLite store, executors, and ``run_sweep``."""

from dse.sweep.config import DesignPoint, ModelSpec, SweepConfig, read_config, validate
from dse.sweep.run import SweepResult, run_sweep
from dse.sweep.store import Store

__all__ = ["DesignPoint", "ModelSpec", "Store", "SweepConfig", "SweepResult", "read_config",
           "run_sweep", "validate"]
