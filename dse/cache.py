"""Where dse keeps what it computed once and reuses in later runs (trained weights, profiled
workloads): ``$DSE_CACHE``, else ``$XDG_CACHE_HOME/dse``, else ``~/.cache/dse``.

At the top of the package (like :mod:`dse.errors`) because both :mod:`dse.problems` (trained
weights) and :mod:`dse.sweep` (profiled workloads) keep entries there, and it imports no torch."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root (created on demand)."""
    if os.environ.get("DSE_CACHE"):
        root = Path(os.environ["DSE_CACHE"])
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "dse"
    else:
        root = Path.home() / ".cache" / "dse"
    root.mkdir(parents=True, exist_ok=True)
    return root
