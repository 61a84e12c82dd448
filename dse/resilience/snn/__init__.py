"""Fault injection into spiking networks (snntorch): targets and faults (``network``), the naive and
the exact fast engine (``engines``), fault lists (``faultlist``), seed 003's outcomes and table
(``outcomes``), resumable campaigns (``campaign``) and trained zoo models and inputs (``data``)."""

from dse.resilience.snn.engines import FastSnnEngine, NaiveSnnEngine
from dse.resilience.snn.network import TARGETS, SnnFault

__all__ = ["TARGETS", "FastSnnEngine", "NaiveSnnEngine", "SnnFault"]
