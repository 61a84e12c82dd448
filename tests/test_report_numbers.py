"""Numbers and tables people read: never rounded to zero, intervals as [lo, hi], units in
headers, right-aligned numbers, 100 columns unless --wide."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.report.tables import WIDTH, network_rows, text_table
from dse.units import energy, energy_unit, estimate, interval, num


@given(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False).filter(lambda x: x != 0))
def test_a_nonzero_number_never_prints_as_zero_and_keeps_three_significant_figures(x):
    text = num(x)
    assert float(text) != 0
    assert math.isclose(float(text), x, rel_tol=5e-3)  # 3 significant figures


@pytest.mark.parametrize("value, text", [
    (3.2e-6, "3.20e-06"), (0.015, "0.0150"), (0.00034, "3.40e-04"), (1234.5, "1234"),
    (0.9996, "1.00"), (0, "0"), (None, "-"), (12, "12"), (12_345_678, "1.23e+07")])
def test_num_formats_like_a_paper_table(value, text):
    assert num(value) == text


def test_intervals_are_brackets_never_plus_minus():
    assert interval(0.0, 0.00034) == "[0, 3.40e-04]"
    assert estimate(0.0, 0.0, 0.00034) == "0 [0, 3.40e-04]"
    assert "±" not in estimate(0.1, 0.05, 0.2)


@pytest.mark.parametrize("pj, unit", [(512.0, "pJ"), (4.3e5, "nJ"), (4.305e5 * 1e6, "mJ"),
                                      (2.0e6, "uJ"), (3e12, "J")])
def test_energy_takes_the_unit_of_its_magnitude(pj, unit):
    assert energy_unit([pj])[0] == unit
    assert energy(pj).endswith(f" {unit}") and 1 <= float(energy(pj).split()[0]) < 1000


def _network(label: str, n: int = 8) -> list[dict]:
    return [dict(point=f"{label}{i}", model="digits_cnn", energy_pJ=4.305e5 * (i + 1),
                 cycles=12345 * (i + 1), edp=4.305e5 * 1e-12 * 12345, utilization=0.42,
                 gflops_1ghz=3.3, sdc_rate=0.0, sdc_lo=0.0, sdc_hi=3.4e-4, layers=3,
                 layers_scored=3, technology="45nm", area_mm2=1.26) for i in range(n)]


def test_network_table_headers_carry_units_and_values_are_right_aligned():
    rows = network_rows(_network("eyeriss_like"))
    header = text_table(rows, wide=True).splitlines()[0]
    for col in ("energy (uJ)", "EDP (J x cycles)", "util (%)", "GOPS @1GHz", "area (mm2)",
                "SDC per fault [CI]", "node"):
        assert col in header
    lines = text_table(rows, wide=True).splitlines()
    col = lines[0].index("cycles") + len("cycles")  # right-aligned: values end under the header
    assert all(line[:col].endswith(("12345", "24690", "37035", "49380", "61725", "74070",
                                    "86415", "98760")) for line in lines[2:])
    assert "0 [0, 3.40e-04]" in lines[2]  # a zero estimate keeps its bound
    assert "SDC FIT" not in header  # no network campaign, no FIT column
    with_fit = network_rows([{**r, "fit": 2.5e-5, "fit_lo": 1e-6, "fit_hi": 7.5e-3}
                             for r in _network("eyeriss_like", 2)])
    assert with_fit[0]["SDC FIT [CI]"] == "2.50e-05 [1.00e-06, 0.00750]"


def test_long_design_point_labels_fit_100_columns_with_a_legend_and_wide_keeps_them():
    label = "eyeriss_like[depth.shared_glb=8192,pe_x=8,pe_y=8,word_bits=16,technology=45nm]"
    rows = network_rows(_network(label))
    narrow = text_table(rows)
    assert max(len(line) for line in narrow.splitlines()) <= WIDTH
    assert f"D1 = {label}0" in narrow  # the legend names every abbreviated label in full
    wide = text_table(rows, wide=True)
    assert max(len(line) for line in wide.splitlines()) > WIDTH and f"{label}7" in wide


def test_many_columns_wrap_into_blocks_that_repeat_the_key_column():
    rows = [{"layer": f"block{i}.conv", **{f"metric number {j} (pJ)": 1.5e-3 * j + i
                                            for j in range(12)}} for i in range(3)]
    text = text_table(rows)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert text.count("block2.conv") >= 2 and "metric number 11 (pJ)" in text
