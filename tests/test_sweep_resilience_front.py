"""A resilience-aware sweep: each layer searched again with the SDC-FIT estimate (calibrated on
its min-EDP campaign), the estimate's EDP x SDC-FIT front scored by injection, and the pick
network measured against the min-EDP network; bad objectives and formats are one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _sweep_kill import kill_sweep_when

from dse.arch import load_arch
from dse.mapper.mapspace import MapSpace
from dse.mapper.search import to_arrays
from dse.problems import profile
from dse.report.resilience_cost import cost_plot, cost_points
from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric
from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import FaultSettings, MapperSettings
from dse.sweep.tasks import load_model_and_data, read_mapping_text, spaced

DESIGN = "nvdla_like"  # int words with measurable SDC: its accumulator buffer


def _config(out, mapper=None, **faults) -> SweepConfig:
    settings = dict(pareto=False, top_k=2, images=8, precision=0.5, floor=2e-3,
                    max_faults=2000, mapping_max_faults=100, front=3)
    settings.update(faults)
    return SweepConfig(name="front", designs=[DESIGN], models=[ModelSpec("digits_cnn")],
                       mapper=mapper or MapperSettings(objective="sdc_fit", budget=300,
                                                       time_limit=30.0),
                       resilience=FaultSettings(**settings), seed=2, executor="inprocess",
                       output=str(out))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("front")
    return run_sweep(_config(out), progress=False), out


def test_every_front_mapping_is_scored_and_carries_the_estimate_the_search_used(swept):
    result, _ = swept
    assert result.fronts and result.computed["front"] == len({r["layer_path"]
                                                              for r in result.fronts})
    base = {r["layer_path"]: r for r in result.rows_with_strata() if r["rank"] == 0}
    arch = load_arch(DESIGN)
    model, images, _ = load_model_and_data(result.config.models[0], 8)
    problems = {layer.module_path: layer.problem
                for layer in profile(model, (1, *images.shape[1:])).layers}
    for r in result.fronts:
        problem = problems[r["layer_path"]]
        calib = Sensitivity.from_strata(base[r["layer_path"]]["strata"], 1000.0).with_liveness(
            problem, arch, read_mapping_text(base[r["layer_path"]]["mapping"], arch, problem))
        space = MapSpace(problem, arch)
        point = space.from_mapping(read_mapping_text(r["mapping"], arch, problem))
        estimate = sdc_fit_metric(problem, arch, calib)(to_arrays(space, [point]))[0]
        assert np.isclose(estimate, r["estimate_fit"], rtol=1e-9)
        same_as_base = r["mapping"] == base[r["layer_path"]]["mapping"]
        assert r.get("strata") or (same_as_base and not r["pick"])


def test_kept_mappings_carry_the_estimate_calibrated_on_their_min_edp_campaign(swept):
    result, _ = swept
    rows = [r for r in result.rows_with_strata() if r.get("strata")]
    assert {r["rank"] for r in rows} == {0, 1}
    for r in rows:
        measured = 1000.0 * sum(d["mbit"] for d in r["strata"]) * r["sdc_rate"]
        if r["rank"] == 0:  # the calibration mapping: the estimate is its own measured FIT
            assert r["estimate_fit"] == pytest.approx(measured, rel=1e-9, abs=1e-12)
        else:
            assert r["estimate_fit"] is not None and r["estimate_fit"] >= 0


def test_the_pick_is_the_lowest_estimate_within_the_slack_of_its_fronts_best_edp(swept):
    result, _ = swept
    by_layer: dict[str, list[dict]] = {}
    for r in result.fronts:
        by_layer.setdefault(r["layer_path"], []).append(r)
    for rows in by_layer.values():
        picks = [r for r in rows if r["pick"]]
        assert len(picks) == 1
        best = min(r["edp"] for r in rows)
        ok = [r for r in rows if r["edp"] <= 1.1 * best]
        assert picks[0]["estimate_fit"] == min(r["estimate_fit"] for r in ok)


def test_the_pick_network_is_measured_against_the_min_edp_network(swept):
    result, _ = swept
    (pick,) = result.picks
    (net,) = result.network
    assert pick["min_edp_fit"] == net["fit"] and pick["faults"] > 0
    assert pick["fit_lo"] <= pick["fit"] <= pick["fit_hi"]
    assert pick["edp_cost"] == pytest.approx(pick["edp"] / net["edp"])
    assert pick["apart"] == (pick["fit_hi"] < net["fit_lo"])


def test_the_cost_figure_shows_the_pick_beside_the_remapping_curve(swept, tmp_path):
    result, _ = swept
    groups = cost_points(result.rows_with_strata() + result.fronts, result.network,
                         result.config.resilience, result.picks)
    (points,) = groups.values()
    (pick,) = [p for p in points if p.how == "pick"]
    assert pick.fit == result.picks[0]["fit"] and pick.edp == result.picks[0]["edp"]
    assert points[0].label == "min-EDP" and points[0].fit == result.network[0]["fit"]
    paths = cost_plot(groups, tmp_path, confidence=0.95, fit_per_mbit=1000.0)
    assert paths and paths[0].stat().st_size > 0


def test_a_rerun_reuses_every_front_and_score(swept):
    result, out = swept
    again = run_sweep(_config(out), progress=False)
    assert again.computed == {"map": 0, "front": 0, "resilience": 0}
    assert [r["row_key"] for r in again.fronts] == [r["row_key"] for r in result.fronts]
    assert again.picks[0]["fit"] == result.picks[0]["fit"]


def test_an_sdc_fit_cap_no_mapping_meets_is_reported_not_raised(tmp_path):
    mapper = MapperSettings(objective="edp_sdc_fit", budget=150, time_limit=30.0,
                            sdc_fit_max=1e-12)
    result = run_sweep(_config(tmp_path, mapper, front=2, max_faults=300,
                               mapping_max_faults=30), progress=False)
    (pick,) = result.picks
    assert pick["layers_without_pick"] == pick["layers"]
    assert any("no visited mapping meets" in n for n in result.notes)


@pytest.mark.parametrize("flags, field", [
    (["--objective", "sdc_fit", "--no-resilience"], "mapper.objective"),
    (["--objective", "sdc_fit", "--faults-per-class", "10"], "mapper.objective"),
    (["--format", "int7"], "--format"),
    (["--objective", "sdc_fit", "--edp-slack", "-1"], "--edp-slack"),
])
def test_a_resilience_objective_without_what_calibrates_it_is_one_line(flags, field, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", "--arch", DESIGN, "--model",
                           "digits_cnn", "--out", str(tmp_path / "o"), *flags],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_word_format_reaches_every_campaign(tmp_path):
    result = run_sweep(_config(tmp_path, MapperSettings(budget=100, time_limit=30.0),
                               format="bf16", max_faults=300), progress=False)
    strata = [d for r in result.rows_with_strata() if r.get("strata") for d in r["strata"]]
    assert strata and max(d["bits"][1] for d in strata) == 16


@pytest.mark.parametrize("n, size, keep", [(10, 6, None), (10, 6, 3), (3, 6, 1), (100, 1, 40),
                                           (100, 2, None), (7, 6, 5), (50, 4, 49)])
def test_spaced_keeps_the_pick_and_both_ends_within_the_size(n, size, keep):
    got = spaced(n, size, keep)
    assert got == sorted(set(got)) and len(got) == min(n, size)
    assert keep is None or keep in got
    if size >= 3 or keep is None:
        assert {0, n - 1} <= set(got) or n <= size or size < 2


def test_a_sweep_killed_during_its_front_stage_resumes_to_the_same_fronts_and_picks(swept,
                                                                                    tmp_path):
    result, _ = swept
    kill_sweep_when(_config(tmp_path / "run"), "SELECT COUNT(*) FROM front_tasks",
                    "its front stage")
    resumed = run_sweep(_config(tmp_path / "run"), progress=False)
    assert resumed.computed["map"] == 0 and resumed.reused["front"] >= 1
    assert [(r["row_key"], r["pick"], r["estimate_fit"]) for r in resumed.fronts] == \
        [(r["row_key"], r["pick"], r["estimate_fit"]) for r in result.fronts]
    assert [(p["fit"], p["faults"]) for p in resumed.picks] == \
        [(p["fit"], p["faults"]) for p in result.picks]


def test_results_shows_the_stored_picks_and_fronts_as_the_sweep_computed_them(swept):
    import json

    result, _ = swept
    out = {}
    for table in ("picks", "fronts"):
        proc = subprocess.run([sys.executable, "-m", "dse", "results", "--db",
                               str(result.db_path), "--table", table, "--json"],
                              capture_output=True, text=True, check=True)
        out[table] = json.loads(proc.stdout)
    assert [(p["fit"], p["fit_lo"], p["fit_hi"], p["edp"]) for p in out["picks"]] == \
        [(p["fit"], p["fit_lo"], p["fit_hi"], p["edp"]) for p in result.picks]
    assert [(r["row_key"], r["estimate_fit"], r["fit"]) for r in out["fronts"]] == \
        [(r["row_key"], r["estimate_fit"], r["fit"]) for r in result.fronts]
