"""What `dse resilience` and `dse inject` print: tiny rates keep their digits, intervals are
[lo, hi], every figure is named with its unit, and lines fit 100 columns."""

from __future__ import annotations

import re

import numpy as np

from dse.cli.inject import summary_tables
from dse.cli.resilience import resilience_text
from dse.resilience.mapped.campaign import ResilienceResult, SiteResult
from dse.resilience.outcomes import TOP1


def _no_rounded_zero(text: str) -> None:
    assert not re.search(r"\b0\.0+\b(?!\d)", text), text  # 0.0000-style zeros
    assert "±" not in text


def test_resilience_text_keeps_tiny_rates_and_defines_sdc_and_fit():
    sites = [SiteResult("weights_spad", "Weights", 0.36, 3.2e-6, (1.1e-6, 7.9e-4), 32.0, 2000),
             SiteResult("shared_glb", "Inputs", 0.07, 0.0, (0.0, 3.4e-4), 45.3, 2000)]
    result = ResilienceResult(2.4e-6, (1.0e-6, 5.0e-4), 1.2e-7, sites, 0.05, 4000)
    text = resilience_text(result, {"kind": "stuck1", "sdc1_rate": 1e-5, "sdc1_ci": [0, 1e-3],
                                    "mean_footprint": 12.0},
                           title="eyeriss_like / digits_cnn:features.2", fmt="int",
                           confidence=0.95, fit_per_mbit=1000.0)
    _no_rounded_zero(text)
    assert "SDC per fault (top-1 changes | one fault in the layer's buffers): 2.40e-06 " \
           "[1.00e-06, 5.00e-04]" in text
    assert "SDC FIT: 1.20e-07 failures per 1e9 h (raw 1000 FIT/Mbit" in text
    assert "0 [0, 3.40e-04]" in text and "intervals at 95%" in text and "int words" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_inject_summary_names_pairs_not_injections_and_keeps_small_rates():
    rng = np.random.default_rng(0)
    n = 50
    rows = []
    for _ in range(300):
        k = rng.binomial(n, 0.002)
        rows.append([n, n - k, 0, k, 0, n - k, 0, 0, k])
    counts = np.array(rows)
    block = TOP1.summarize(counts, 0.99)
    summary = {"overall": block, "per_layer": {"features.0": block, "classifier.1": block},
               "per_bit": {str(b): TOP1.summarize(counts[b::32], 0.99) for b in range(32)}}
    text = summary_tables(summary, TOP1, "digits_cnn weight bitflip fp32: 300 faults x 50 images")
    _no_rounded_zero(text)
    assert "fault x image pairs" in text and "injections" not in text
    assert "critical per pair [CI]" in text and "intervals at 99%" in text
    assert max(len(line) for line in text.splitlines()) <= 100
