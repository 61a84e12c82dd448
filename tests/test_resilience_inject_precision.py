"""`dse inject --precision`: the list grows in stratified rounds (strata = layer x bit group), the
figure is the stratified P(class | fault) with the fault as the sampling unit, a finer precision
only appends faults, and a stopping rule no campaign can meet is one line."""

from __future__ import annotations

import json

import pytest
from _fi_util import fi_cache  # noqa: F401

from dse.cli import main
from dse.resilience import campaign, precise
from dse.resilience.outcomes import TOP1

FLAGS = ["inject", "--model", "digits_cnn", "--format", "fp32", "--images", "16",
         "--confidence", "0.95", "--json"]


def _run(capsys, out, *extra) -> dict:
    assert main([*FLAGS, "--out", str(out), *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_stratified_figure_is_the_weighted_sum_of_the_strata_means(tmp_path, capsys,
                                                                       fi_cache):  # noqa: F811
    doc = _run(capsys, tmp_path, "--precision", "0.3", "--max-faults", "3000")
    fig = doc["stratified"]
    rows = campaign.load_results(tmp_path / "results.csv", TOP1)
    assert fig["faults"] == len(rows) == doc["faults"]
    # recompute from the results file: per (layer, bit group) mean fraction x share of the bits
    from dse.problems.trained import load_model
    from dse.resilience import sampling

    model, images, _ = load_model("digits_cnn", limit=16)
    shapes = sampling.tensor_shapes(model, sampling.fault_layers(model), "weight", images)
    cells = precise.cells(shapes, "fp32", "bitflip")
    assert fig["strata"] == len(cells) == 8 * len(shapes)
    total = 0.0
    for cell in cells:
        mine = [r for r in rows if cell.holds(r.fault)]
        assert len(mine) >= 4  # every stratum got its pilot
        total += cell.weight * sum(r.counts[3] / r.counts[0] for r in mine) / len(mine)
    assert fig["rate"] == pytest.approx(total)
    assert fig["ci"][0] <= fig["rate"] <= fig["ci"][1]
    half = max(fig["ci"][1] - fig["rate"], fig["rate"] - fig["ci"][0])
    assert fig["resolved"] == (half <= 0.3 * fig["rate"] or fig["ci"][1] < 1e-4)


def test_a_finer_precision_only_appends_faults(tmp_path, capsys, fi_cache):  # noqa: F811
    first = _run(capsys, tmp_path, "--precision", "0.5", "--max-faults", "2000")
    before = campaign.load_results(tmp_path / "results.csv", TOP1)
    second = _run(capsys, tmp_path, "--precision", "0.2", "--max-faults", "4000")
    after = campaign.load_results(tmp_path / "results.csv", TOP1)
    assert second["faults"] > first["faults"]
    assert after[: len(before)] == before  # same faults, same counts: nothing redone


def test_an_unreachable_precision_is_reported_as_reached_so_far(tmp_path, capsys,
                                                                fi_cache):  # noqa: F811
    assert main([*FLAGS[:-1], "--out", str(tmp_path), "--precision", "0.01",
                 "--max-faults", "200"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100  # wrapped at 100 columns
    assert "NOT resolved within --max-faults 200: reached" in " ".join(out.split())


@pytest.mark.parametrize("argv,match", [
    (["--precision", "0"], "--precision"),
    (["--precision", "0.2", "--floor", "-1"], "--floor"),
    (["--precision", "0.2", "--max-faults", "0"], "--max-faults"),
    (["--precision", "0.2", "--n-faults", "10"], "--precision"),
])
def test_bad_stopping_rules_are_one_line_exit_2(tmp_path, capsys, argv, match):
    code = main(["inject", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
