"""Estimate vs measurement on a sweep's kept mappings: the estimate is the calibration layer's
P(SDC | fault) per site class times each mapping's own exposed Mbit, and agreement is reported
only where something failed."""

from __future__ import annotations

import pytest

from dse.report.estimate_check import agreement, estimate_rows


def _stratum(level, ds, mbit, n, failing):
    return {"level": level, "dataspace": ds, "bits": [0, 1], "mbit": mbit, "n": n,
            "sdc": [float(failing), float(failing)], "sdc_hits": failing}


def _row(rank, strata, rate, lo, hi):
    return {"point": "d", "model": "m", "layer_path": "l", "rank": rank, "strata": strata,
            "sdc_rate": rate, "sdc_lo": lo, "sdc_hi": hi}


def test_the_estimate_is_calibrated_rate_times_the_mappings_own_exposure():
    calib = [_stratum("glb", "Weights", 2.0, 100, 10), _stratum("reg", "Outputs", 1.0, 100, 50)]
    # another mapping: 3x the buffer's exposure, half the register's, and a class the calibration
    # never exposed (takes the calibration's layer-wide P = (2 x 0.1 + 1 x 0.5) / 3)
    other = [_stratum("glb", "Weights", 6.0, 40, 4), _stratum("reg", "Outputs", 0.5, 40, 20),
             _stratum("spad", "Inputs", 1.0, 40, 0)]
    pairs = estimate_rows([_row(0, calib, 0.2, 0.1, 0.3), _row(1, other, 0.1, 0.05, 0.2)], 1000.0)
    assert len(pairs) == 1
    wide = (2 * 0.1 + 1 * 0.5) / 3
    assert pairs[0]["estimate_FIT"] == pytest.approx(1000 * (6 * 0.1 + 0.5 * 0.5 + 1 * wide))
    assert pairs[0]["measured_FIT"] == pytest.approx(1000 * 7.5 * 0.1)
    assert pairs[0]["inside"] == (1000 * 7.5 * 0.05 <= pairs[0]["estimate_FIT"] <= 1000 * 7.5 * 0.2)


def test_agreement_needs_three_pairs_with_a_failure_and_ranks_them():
    pairs = [{"estimate_FIT": e, "measured_FIT": m, "inside": True}
             for e, m in ((0, 0), (1, 2), (2, 3), (3, 5))]
    found = agreement(pairs)
    assert found["mappings"] == 3 and found["spearman"] == pytest.approx(1.0)
    assert found["median_rel_error"] == pytest.approx(0.4)
    assert agreement(pairs[:3]) is None
