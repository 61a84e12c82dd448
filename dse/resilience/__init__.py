"""dse.resilience: fault injection into DNNs (exact fast engine, statistical campaigns) and
mapping-aware resilience of accelerator dataflows."""

from dse.resilience.engine import EngineResult, FastEngine, NaiveEngine
from dse.resilience.faults import Fault
from dse.resilience.mapping_aware import ResilienceResult, mapping_resilience
from dse.resilience.outcomes import Outcome

__all__ = ["EngineResult", "FastEngine", "Fault", "NaiveEngine", "Outcome", "ResilienceResult",
           "mapping_resilience"]
