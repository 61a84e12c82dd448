"""Hypothesis fuzzing of the YAML loaders: loads or one-line DseError, never anything else.

Bounded for CI (a few seconds per loader); ``bench/fuzz_loaders.py`` runs the long version.
"""

from __future__ import annotations

import pytest
from _fuzz import LOADERS, check_one, mutated_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_mutated_yaml_loads_or_is_one_line_input_error(loader):
    base = LOADERS[loader][0]()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        text = mutated_text(base, data)
        problem = check_one(loader, text)
        assert problem is None, f"{problem}\n--- input ---\n{text[:2000]}"

    run()
