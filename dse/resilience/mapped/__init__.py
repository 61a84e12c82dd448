"""Mapping-aware resilience: fault sites of a mapping (``sites``), their exposure (``exposure``),
exact output deltas (``deltas``) and the campaign that turns them into an SDC rate and FIT
(``campaign``), and the adaptive stratified campaign that runs to a stated precision
(``adaptive``)."""

from dse.resilience.mapped.adaptive import AdaptiveResult, LayerCampaign, adaptive_resilience
from dse.resilience.mapped.campaign import (
    DEFAULT_FIT_PER_MBIT,
    ResilienceResult,
    SiteResult,
    mapping_resilience,
    stuck_pe_resilience,
)

__all__ = ["DEFAULT_FIT_PER_MBIT", "AdaptiveResult", "LayerCampaign", "ResilienceResult",
           "SiteResult", "adaptive_resilience", "mapping_resilience", "stuck_pe_resilience"]
