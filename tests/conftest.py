"""Shared fixtures: where ../shared is, and skipping when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DSE_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference" / "timeloop"
CASES = sorted(p.name for p in (REFERENCE / "cases").iterdir()) if (REFERENCE / "cases").is_dir() else []

needs_shared = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"reference Timeloop runs not found at {REFERENCE} (set DSE_SHARED)"
)


@pytest.fixture
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference Timeloop runs not found at {REFERENCE} (set DSE_SHARED)")
    return REFERENCE
