"""Packages that name their API lazily: every public name resolves, and the torch-free parts
(statistics, the batched estimate, the sweep driver) import without torch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["dse.resilience", "dse.resilience.mapped"])
def test_every_public_name_of_a_lazy_package_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


def test_statistics_estimate_and_sweep_driver_import_without_torch():
    code = ("import sys, dse.resilience.network, dse.resilience.strata, "
            "dse.resilience.mapped.estimate, dse.sweep.run, dse.problems.zoo, dse.devices; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
