"""Mapping-aware resilience: fault sites of a mapping (``sites``), their exposure (``exposure``),
exact output deltas (``deltas``) and the campaign that turns them into an SDC rate and FIT
(``campaign``)."""

from dse.resilience.mapped.campaign import (
    DEFAULT_FIT_PER_MBIT,
    ResilienceResult,
    SiteResult,
    mapping_resilience,
    stuck_pe_resilience,
)

__all__ = ["DEFAULT_FIT_PER_MBIT", "ResilienceResult", "SiteResult", "mapping_resilience",
           "stuck_pe_resilience"]
