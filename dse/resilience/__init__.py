"""dse.resilience: fault injection into DNNs and mapping-aware resilience of accelerator dataflows.

One core every campaign kind shares -- ``fault`` (the fault description and its CSV form),
``formats`` (encode / flip / decode of stored words, the fixed-point scale rule), ``outcomes``
(outcome specs by name), ``stats`` (sample sizes, intervals with the fault as unit) -- and one
folder per campaign kind: ``inference`` (naive and fast engines), ``mapped`` (faults placed by a
mapping's buffers), with ``oracles`` holding the slow references they are checked against.
"""

from dse.resilience.fault import KINDS, Fault, What, When, Where
from dse.resilience.formats import NumberFormat, fixed_scale, number_format
from dse.resilience.inference import EngineResult, FastEngine, NaiveEngine, perturbed
from dse.resilience.mapped import ResilienceResult, mapping_resilience
from dse.resilience.outcomes import OutcomeSpec, register

__all__ = ["KINDS", "EngineResult", "FastEngine", "Fault", "NaiveEngine", "NumberFormat",
           "OutcomeSpec", "ResilienceResult", "What", "When", "Where", "fixed_scale",
           "mapping_resilience", "number_format", "perturbed", "register"]
