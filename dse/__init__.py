"""dse: design-space exploration of DNN accelerators on efficiency and resilience.

The pipeline runs one way: problems -> arch -> model / mapper -> resilience -> sweep -> report.
Each stage is a subpackage; import from them directly (``from dse.problems import profile``).
"""

__version__ = "0.1.0"
