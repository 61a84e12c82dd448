"""Mapping-aware resilience: fault sites of a mapping (``sites``), their exposure (``exposure``),
exact output deltas (``deltas``) and the campaign that turns them into an SDC rate and FIT
(``campaign``), and the adaptive stratified campaign that runs to a stated precision
(``adaptive``). The names load on first use (the batched estimate needs no torch)."""

from dse.lazy import lazy_getattr

_HOME = {
    **dict.fromkeys(("AdaptiveResult", "LayerCampaign", "adaptive_resilience"), "adaptive"),
    **dict.fromkeys(("DEFAULT_FIT_PER_MBIT", "ResilienceResult", "SiteResult",
                     "mapping_resilience", "stuck_pe_resilience"), "campaign"),
}

__all__ = sorted(_HOME)

__getattr__ = lazy_getattr(__name__, _HOME)
