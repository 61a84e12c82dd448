"""The cost-of-resilience report: the remapping curve over kept mappings, protected variants, the
cheapest way to a target SDC FIT, and the figure (hand-made rows with known strata)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dse.report.resilience_cost import (
    cheapest,
    cheapest_table,
    cost_plot,
    cost_points,
    remap_curve,
)


@dataclass
class Settings:
    fit_per_mbit: float = 1000.0
    confidence: float = 0.95
    clock_ghz: float = 1.0


def _strata(mbit: float, hits: int, n: int = 100) -> list[dict]:
    """One stratum: ``hits`` of ``n`` faults failed on every image."""
    return [{"site": 0, "level": "glb", "dataspace": "Inputs", "bits": [0, 8], "mbit": mbit,
             "n": n, "sdc": [float(hits), float(hits)], "sdc_hits": hits, "due": [0.0, 0.0],
             "due_hits": 0}]


def _row(layer: int, rank: int, energy: float, cycles: int, mbit: float, hits: int) -> dict:
    return {"point": "d", "design": "d", "model": "m", "layer_index": layer, "rank": rank,
            "row_key": f"{layer}-{rank}", "energy_pJ": energy, "cycles": cycles, "count": 1,
            "edp": energy * 1e-12 * cycles, "fit": 1000.0 * mbit * hits / 100,
            "strata": _strata(mbit, hits), "area_mm2": 1.0}


# layer 0: the min-EDP mapping fails 40/100 on 1 Mbit; +5% EDP fails 10/100; +50% fails 2/100
ROWS = [_row(0, 0, 100.0, 1000, 1.0, 40), _row(0, 1, 105.0, 1000, 1.0, 10),
        _row(0, 2, 150.0, 1000, 1.0, 2), _row(1, 0, 100.0, 1000, 1.0, 20)]
NETWORK = [{"point": "d", "design": "d", "model": "m", "edp": 200e-12 * 2000, "fit": 300.0,
            "fit_lo": 250.0, "fit_hi": 350.0, "area_mm2": 1.0},
           {"point": "d[protect=glb=secded]", "design": "d", "model": "m",
            "edp": 220e-12 * 2000, "fit": 10.0, "fit_lo": 0.0, "fit_hi": 30.0, "area_mm2": 1.3}]


def test_remap_curve_starts_at_min_edp_and_trades_edp_for_measured_fit() -> None:
    curve = remap_curve(ROWS, "d", "m", Settings())
    assert curve[0].label == "min-EDP"
    # equal cycles: network FIT = 1000 FIT/Mbit x (0.5 x 1 Mbit x P0 + 0.5 x 1 Mbit x P1)
    assert curve[0].fit == pytest.approx(1000 * (0.5 * 0.4 + 0.5 * 0.2))
    assert curve[0].edp == pytest.approx(200e-12 * 2000)
    assert [p.fit for p in curve] == sorted((p.fit for p in curve), reverse=True)
    assert curve[-1].fit == pytest.approx(1000 * (0.5 * 0.02 + 0.5 * 0.2))
    assert curve[-1].edp == pytest.approx(250e-12 * 2000)
    assert all(p.fit_lo <= p.fit <= p.fit_hi for p in curve)


def test_cheapest_way_prefers_the_lower_edp_option_that_reaches_the_target() -> None:
    groups = cost_points(ROWS, NETWORK, Settings())
    pts = groups[("d", "m")]
    assert [p.how for p in pts][-1] == "protect"
    # halving 300 FIT: remapping layer 0 at +5% EDP gives 150 but its upper bound is above 150;
    # the protected variant's upper bound (30) reaches it at +10% network EDP
    best = cheapest(pts, 150.0)
    assert best is not None
    reach = [p for p in pts if p.fit_hi <= 150.0]
    assert best.edp == min(p.edp for p in reach)
    row = cheapest_table(groups)[0]
    assert row["target SDC FIT"] == pytest.approx(150.0)
    assert row["cheapest way"] == best.label
    assert cheapest(pts, 1e-9) is None
    assert cheapest_table(groups, target=1e-9)[0]["cheapest way"] == "none measured reaches it"


def test_cost_plot_writes_one_panel_per_design(tmp_path) -> None:
    groups = cost_points(ROWS, NETWORK, Settings())
    paths = cost_plot(groups, tmp_path, confidence=0.95, fit_per_mbit=1000.0)
    assert paths and all(p.stat().st_size > 1000 for p in paths)
    assert cost_plot({}, tmp_path, confidence=0.95, fit_per_mbit=1000.0) == []


def test_a_design_without_strata_has_no_curve() -> None:
    rows = [{**r, "strata": None} for r in ROWS]
    assert remap_curve(rows, "d", "m", Settings()) == []
    assert cost_points(rows, NETWORK, Settings()) == {}
