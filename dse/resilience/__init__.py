"""dse.resilience."""
