"""dse.resilience: fault injection into DNNs and mapping-aware resilience of accelerator dataflows.

One core every campaign kind shares -- ``fault`` (the fault description and its CSV form),
``formats`` (encode / flip / decode of stored words, the fixed-point scale rule), ``outcomes``
(outcome specs by name), ``stats`` (sample sizes, intervals with the fault as unit) -- and one
folder per campaign kind: ``inference`` (naive and fast engines), ``mapped`` (faults placed by a
mapping's buffers), with ``oracles`` holding the slow references they are checked against.

The public names load on first use: the statistics (``strata``, ``network``, ``stats``) need no
torch, and a sweep that only reads stored figures should not pay for importing it.
"""

from importlib import import_module
from typing import Any

_HOME = {
    **dict.fromkeys(("KINDS", "Fault", "What", "When", "Where"), "fault"),
    **dict.fromkeys(("NumberFormat", "fixed_scale", "number_format"), "formats"),
    **dict.fromkeys(("EngineResult", "FastEngine", "NaiveEngine", "perturbed"), "inference"),
    **dict.fromkeys(("ResilienceResult", "mapping_resilience"), "mapped"),
    **dict.fromkeys(("OutcomeSpec", "register"), "outcomes"),
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
