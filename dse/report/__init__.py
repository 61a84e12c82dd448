"""dse.report."""
