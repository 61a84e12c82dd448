"""Accelerator designs: the Arch type, loaders for Timeloop's spec forms, shipped designs,
energy tables (Accelergy ERT files or the builtin estimator) and design variants."""

from dse.arch.designs import list_designs
from dse.arch.energy import estimate_energy
from dse.arch.ert import apply_ert, read_ert
from dse.arch.loader import load_arch
from dse.arch.native import write_native
from dse.arch.spec import Arch, ComputeLevel, Constraints, StorageLevel
from dse.arch.variants import make_variant

__all__ = ["Arch", "ComputeLevel", "Constraints", "StorageLevel", "apply_ert", "estimate_energy",
           "list_designs", "load_arch", "make_variant", "read_ert", "write_native"]
