"""Oracles: slow, literal references the fast paths are checked against (a loop-by-loop simulator
of the mapping, full re-inference of mapped faults). The inference engines' own oracle is
:class:`dse.resilience.inference.NaiveEngine`."""
