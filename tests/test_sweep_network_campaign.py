"""The sweep's network campaign: one stratified allocation over every layer of a design point,
run in rounds through the executor, makes the same decisions as the same campaign in one process;
a finer precision only adds faults; bad stopping rules are one line."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from _sweep_kill import kill_sweep_when

from dse.arch import load_arch
from dse.errors import InputError
from dse.problems import profile
from dse.resilience.mapped.adaptive import LayerCampaign, network_resilience
from dse.resilience.strata import Plan
from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import FaultSettings, MapperSettings
from dse.sweep.run import network_members, with_strata
from dse.sweep.store import Store
from dse.sweep.tasks import load_model_and_data, read_mapping_text

DESIGN = "simple_output_stationary"


def _config(out, **faults) -> SweepConfig:
    settings = dict(pareto=False, top_k=1, images=8, precision=0.5, floor=2e-3,
                    max_faults=3000, mapping_max_faults=50)
    settings.update(faults)
    return SweepConfig(name="net", designs=[DESIGN], models=[ModelSpec("digits_cnn")],
                       mapper=MapperSettings(budget=150, time_limit=30.0),
                       resilience=FaultSettings(**settings), seed=4, executor="inprocess",
                       output=str(out))


def _strata(db) -> dict[str, list[tuple[int, float]]]:
    with Store(db) as store:
        rows = with_strata(store.results("net"), store.resilience_details("net"))
    members = next(iter(network_members(rows).values()))
    return {r["layer_path"]: [(d["n"], d["sdc"][0]) for d in r["strata"]] for r in members}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("net")
    return run_sweep(_config(out), progress=False), out


def test_sweep_rounds_make_the_same_decisions_as_one_process(swept):
    result, _ = swept
    stored = _strata(result.db_path)
    config = result.config
    model, images, labels = load_model_and_data(config.models[0], config.resilience.images)
    arch = load_arch(DESIGN)
    workload = profile(model, (1, *images.shape[1:]))
    rows = [r for r in result.rows if r["rank"] == 0]
    cycles = sum(r["cycles"] * r["count"] for r in rows)
    members = []
    for r in rows:
        problem = next(lay.problem for lay in workload.layers if lay.module_path == r["layer_path"])
        mapping = read_mapping_text(r["mapping"], arch, problem)
        members.append((r["cycles"] * r["count"] / cycles,
                        LayerCampaign(problem, arch, mapping, model, r["layer_path"], images,
                                      labels, seed=config.seed)))
    f = config.resilience
    fig, _ = network_resilience(members, Plan(f.precision, f.floor, f.max_faults),
                                fit_per_mbit=f.fit_per_mbit)
    in_process = {c.layer_path: [(s.sdc.n, s.sdc.total) for s in c.strata] for _, c in members}
    assert in_process == pytest.approx(stored)
    net = result.network[0]
    assert net["faults"] == fig.per_fault.n > 4 * sum(len(v) for v in stored.values())
    assert (net["sdc_lo"], net["sdc_rate"], net["sdc_hi"]) == pytest.approx(
        (fig.per_fault.lo, fig.per_fault.value, fig.per_fault.hi))


def test_a_finer_precision_only_adds_faults_to_the_stored_campaign(swept, tmp_path):
    result, out = swept
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)  # the module's store stays as the first sweep left it
    before = _strata(copy / "sweep.sqlite")
    finer = run_sweep(_config(copy, precision=0.3, floor=5e-4, max_faults=4500), progress=False)
    after = _strata(finer.db_path)
    assert finer.computed["map"] == 0
    grown = [(a, b) for layer in before for a, b in zip(before[layer], after[layer], strict=True)]
    assert all(n1 >= n0 and t1 >= t0 for (n0, t0), (n1, t1) in grown)
    assert sum(n1 - n0 for (n0, _), (n1, _) in grown) > 0
    assert finer.network[0]["faults"] > result.network[0]["faults"]


@pytest.mark.parametrize("flag,value", [("--precision", "0"), ("--floor", "-1"),
                                        ("--max-faults", "0")])
def test_a_stopping_rule_no_campaign_can_meet_is_one_line(flag, value, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", "--arch", DESIGN, "--model",
                           "digits_cnn", flag, value, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and flag in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plan_refuses_a_precision_outside_zero_one():
    with pytest.raises(InputError, match="--precision"):
        Plan(precision=0.0)


def test_results_and_a_redrawn_report_show_the_sweeps_network_figures(swept, tmp_path, capsys):
    import json

    from dse.cli import main

    result, _ = swept
    assert main(["results", "--db", str(result.db_path), "--sweep", "net", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    net = result.network[0]
    for key in ("sdc_rate", "sdc_lo", "sdc_hi", "fit", "fit_lo", "fit_hi", "faults"):
        assert shown[key] == pytest.approx(net[key])
    assert main(["results", "--db", str(result.db_path), "--report", str(tmp_path)]) == 0
    from dse.report import network_rows

    shown_cells = [str(v) for v in network_rows(result.network)[0].values()]
    sdc_cell = next(c for c in shown_cells if "[" in c)  # the SDC figure with its interval
    assert sdc_cell in (tmp_path / "report.html").read_text()


def test_a_sweep_killed_during_network_rounds_resumes_to_the_same_campaign(swept, tmp_path):
    result, _ = swept
    db = tmp_path / "run" / "sweep.sqlite"
    kill_sweep_when(_config(tmp_path / "run"), "SELECT COUNT(*) FROM meta WHERE key LIKE "
                    "'network_round:%'", "its network rounds")
    resumed = run_sweep(_config(tmp_path / "run"), progress=False)
    assert resumed.computed["map"] == 0
    assert _strata(db) == _strata(result.db_path)  # every stratum: same faults, same outcomes


def test_sweep_and_a_redrawn_report_draw_the_same_pareto_figure(swept, tmp_path):
    """``dse results --report`` reads back what the sweep stored (strata included), so its
    EDP vs network SDC figure is the sweep's, pixel for pixel."""
    from dse.cli import main
    from dse.report import write_report
    from dse.report.html import sweep_settings
    from dse.sweep.hashing import code_version

    result, _ = swept  # as dse sweep's report_run writes it
    write_report(result.rows_with_strata(), result.network, tmp_path / "sweep", title="t",
                 settings=sweep_settings(result.config.to_dict(), code_version()))
    assert main(["results", "--db", str(result.db_path), "--report", str(tmp_path / "again")]) == 0
    drawn = (tmp_path / "sweep" / "pareto.png").read_bytes()
    assert drawn == (tmp_path / "again" / "pareto.png").read_bytes()


def test_sweep_prints_the_golden_accuracy_of_each_scored_model(swept):
    from dse.cli.sweep import golden_by_model

    result, _ = swept
    golden = golden_by_model(result)
    model, images, labels = load_model_and_data(ModelSpec("digits_cnn"), 8)
    hits = int((model(images).argmax(1) == labels).sum())
    assert golden == {"digits_cnn": {"accuracy": hits / 8, "images": 8}}
