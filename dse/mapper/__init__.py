"""dse.mapper."""
