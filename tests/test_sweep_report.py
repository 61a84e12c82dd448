"""Report layer on hand-made result rows: Pareto fronts, network arithmetic, files written."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.report import network_points, pareto_front, write_report
from dse.report.analysis import energy_breakdown


def _rows() -> list[dict]:
    rows = []
    rng = random.Random(1)
    for point, scale in (("eyeriss_like", 1.0), ("nvdla_like", 0.6), ("simple_ws", 1.4)):
        for layer in range(3):
            for rank in range(3):
                e = scale * (100 + 30 * layer) * (1 + 0.3 * rank)
                c = int(scale * 1000 * (layer + 1) * (1 + 0.1 * rank))
                sdc = 0.05 + 0.1 * rng.random()
                rows.append(dict(
                    sweep="s", point=point, model="digits_cnn", layer_index=layer,
                    layer=f"conv{layer}", layer_path=f"features.{layer}", count=1 + layer % 2,
                    rank=rank, energy_pJ=e, cycles=c, utilization=0.4 + 0.1 * rank,
                    edp=e * 1e-12 * c, macs=5000,
                    components=json.dumps({"mac": 0.2 * e, "DRAM": 0.5 * e, "spad": 0.3 * e,
                                           "inter_PE_spatial": 0.0}),
                    sdc_rate=sdc, sdc_lo=sdc - 0.02, sdc_hi=sdc + 0.02))
    return rows


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)), min_size=1, max_size=30))
def test_pareto_front_is_exactly_the_non_dominated_points(points):
    front = set(pareto_front(points))

    def dominated(i):
        return any((q[0] <= points[i][0] and q[1] <= points[i][1]) and q != points[i]
                   for q in points)

    expected = {i for i in range(len(points)) if not dominated(i)}
    # duplicates of a front point: exactly one copy is on the front
    assert {points[i] for i in front} == {points[i] for i in expected}
    assert len(front) == len({points[i] for i in front})


def test_network_point_totals_follow_repeat_counts_and_cycle_weighting():
    rows = [r for r in _rows() if r["point"] == "eyeriss_like"]
    best, *alt = [p for p in network_points(rows)]
    chosen = [r for r in rows if r["rank"] == 0]
    assert best.energy_pJ == pytest.approx(sum(r["energy_pJ"] * r["count"] for r in chosen))
    cyc = sum(r["cycles"] * r["count"] for r in chosen)
    assert best.cycles == cyc
    assert best.sdc_rate == pytest.approx(
        sum(r["sdc_rate"] * r["cycles"] * r["count"] for r in chosen) / cyc)
    for p in alt:  # the most-resilient choice is never less resilient than min-EDP
        assert p.policy == "min-SDC" and p.sdc_rate <= best.sdc_rate


def test_energy_breakdown_sums_to_total_energy_per_mac_and_drops_dummy_levels():
    rows = _rows()
    per = energy_breakdown(rows)["nvdla_like"]
    assert "inter_PE_spatial" not in per
    chosen = [r for r in rows if r["point"] == "nvdla_like" and r["rank"] == 0]
    total = sum(r["energy_pJ"] * r["count"] for r in chosen) * 1000 / sum(
        r["macs"] * r["count"] for r in chosen)
    assert sum(per.values()) == pytest.approx(total)


def test_report_writes_png_svg_and_a_self_contained_page(tmp_path):
    rows = _rows()
    network = [dict(point=p.point, model=p.model, energy_pJ=p.energy_pJ, cycles=p.cycles,
                    edp=p.edp, utilization=0.5, gflops_1ghz=1.0, sdc_rate=p.sdc_rate,
                    sdc_lo=p.sdc_lo, sdc_hi=p.sdc_hi, layers=3, layers_scored=3)
               for p in network_points(rows) if p.policy == "min-EDP"]
    page = write_report(rows, network, tmp_path, title="test sweep", notes=["a note"])
    for stem in ("pareto", "layers", "breakdown", "efficiency"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (tmp_path / f"{stem}.svg").read_bytes()[:2000]
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 4
    assert "a note" in text and "nvdla_like" in text


def test_energy_only_rows_draw_no_pareto_plot(tmp_path):
    rows = [{**r, "sdc_rate": None, "sdc_lo": None, "sdc_hi": None} for r in _rows()]
    page = write_report(rows, [], tmp_path, title="energy only")
    assert not (tmp_path / "pareto.png").exists()
    assert page.read_text().count("data:image/png;base64,") == 3


def test_compare_totals_are_exact_network_sums_and_ratios_of_the_first_two_variants(tmp_path):
    from dse.report.compare import compare_totals, totals_table

    rows = []
    for model, layers in (("net[dilated]", [("a", 1, 10.0), ("b", 1, 30.0), ("c", 1, 30.0)]),
                          ("net[undilated]", [("a", 1, 10.0), ("b", 2, 20.0)])):
        for i, (path, count, energy) in enumerate(layers):
            rows.append(dict(point="d1", model=model, layer_index=i, layer=path,
                             layer_path=path, count=count, rank=0, energy_pJ=energy, cycles=100,
                             edp=energy * 1e-10, macs=50, sdc_rate=None, sdc_lo=None,
                             sdc_hi=None, utilization=1.0, components="{}"))
    variants = ["net[dilated]", "net[undilated]"]
    dil, undil = compare_totals(rows, variants)
    assert dil["energy_pJ"] == pytest.approx(70.0) and undil["energy_pJ"] == pytest.approx(50.0)
    assert dil["cycles"] == 300 and undil["cycles"] == 300
    table = {r["figure"]: r for r in totals_table([dil, undil], variants)}
    assert table["energy (pJ)"]["dilated/undilated"] == pytest.approx(70 / 50)
    assert table["energy (pJ)"]["dilated"] == pytest.approx(70.0)
    assert table["EDP (J x cycles)"]["dilated/undilated"] == pytest.approx(70 / 50)
