"""dse.resilience: fault injection into DNNs and mapping-aware resilience of accelerator dataflows.

One core every campaign kind shares -- ``fault`` (the fault description and its CSV form),
``formats`` (encode / flip / decode of stored words, the fixed-point scale rule), ``outcomes``
(outcome specs by name), ``stats`` (sample sizes, intervals with the fault as unit) -- and one
folder per campaign kind: ``inference`` (naive and fast engines), ``mapped`` (faults placed by a
mapping's buffers), with ``oracles`` holding the slow references they are checked against.

The public names load on first use: the statistics (``strata``, ``network``, ``stats``) need no
torch, and a sweep that only reads stored figures should not pay for importing it.
"""

from dse.lazy import lazy_getattr

_HOME = {
    **dict.fromkeys(("KINDS", "Fault", "What", "When", "Where"), "fault"),
    **dict.fromkeys(("NumberFormat", "fixed_scale", "number_format"), "formats"),
    **dict.fromkeys(("EngineResult", "FastEngine", "NaiveEngine", "perturbed"), "inference"),
    **dict.fromkeys(("ResilienceResult", "mapping_resilience"), "mapped"),
    **dict.fromkeys(("OutcomeSpec", "register"), "outcomes"),
}

__all__ = sorted(_HOME)

__getattr__ = lazy_getattr(__name__, _HOME)
