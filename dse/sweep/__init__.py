"""dse.sweep."""
