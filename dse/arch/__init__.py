"""Accelerator designs: the Arch type, loaders, shipped designs and energy tables."""

from dse.arch.spec import Arch, ComputeLevel, Constraints, StorageLevel

__all__ = ["Arch", "ComputeLevel", "Constraints", "StorageLevel"]
