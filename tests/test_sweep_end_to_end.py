"""Whole sweeps on a real trained model: resume after kill -9, repeatability, executors agree.

One small experiment (the digits CNN, trained on first use, on two shipped designs, short mapper
budget, few injections) is run once in-process as the reference; every other way of running it
must give exactly the same stored rows.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import FaultSettings, MapperSettings, write_config

DESIGNS = ["simple_weight_stationary", "eyeriss_like"]


def small_config(out: Path, **overrides) -> SweepConfig:
    config = SweepConfig(
        name="t", designs=list(DESIGNS), models=[ModelSpec("digits_cnn")],
        mapper=MapperSettings(budget=100, time_limit=30.0),
        resilience=FaultSettings(pareto=False, top_k=2, faults=8, images=24),
        seed=0, executor="inprocess", output=str(out))
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True,
                          timeout=timeout)


def _count(db: Path, sql: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = run_sweep(small_config(out), progress=False)
    return result


def test_reference_sweep_scores_every_layer_on_both_axes(reference):
    layers = {(r["point"], r["layer"]) for r in reference.rows}
    assert len(layers) == len(DESIGNS) * 5  # digits_cnn: 3 convs + 2 linear layers
    assert all(r["sdc_rate"] is not None and r["sdc_lo"] <= r["sdc_rate"] <= r["sdc_hi"]
               for r in reference.rows)
    assert {r["point"] for r in reference.network} == set(DESIGNS)
    assert all(n["layers_scored"] == n["layers"] for n in reference.network)
    keys = [(r["point"], r["model"], r["layer_index"], r["rank"]) for r in reference.rows]
    assert len(keys) == len(set(keys))


def test_same_seed_twice_in_worker_processes_gives_identical_rows(reference, tmp_path):
    again = run_sweep(small_config(tmp_path, executor="process", workers=2), progress=False)
    assert again.rows == reference.rows
    assert again.network == reference.network


def test_dask_local_cluster_gives_the_same_rows_as_in_process(reference, tmp_path):
    pytest.importorskip("distributed")
    dask = run_sweep(small_config(tmp_path, executor="dask", dask_local=2), progress=False)
    assert dask.rows == reference.rows


def test_rerun_reuses_everything_and_a_fault_change_recomputes_only_resilience(reference,
                                                                             tmp_path):
    shutil.copy(reference.db_path, tmp_path / "sweep.sqlite")
    rerun = run_sweep(small_config(tmp_path), progress=False)
    assert rerun.computed == {"map": 0, "front": 0, "resilience": 0}
    assert rerun.rows == reference.rows
    changed = run_sweep(small_config(tmp_path, name="t-faults9", resilience=FaultSettings(
        pareto=False, top_k=2, faults=9, images=24)), progress=False)
    assert changed.computed["map"] == 0
    assert changed.computed["resilience"] == len(reference.rows)
    assert [r["energy_pJ"] for r in changed.rows] == [r["energy_pJ"] for r in reference.rows]


def test_kill_9_mid_sweep_then_rerun_gives_the_uninterrupted_table(reference, tmp_path):
    exp = tmp_path / "exp.yaml"
    write_config(small_config(tmp_path / "run", executor="process", workers=2), exp)
    db = tmp_path / "run" / "sweep.sqlite"
    total = _count(reference.db_path, "SELECT COUNT(*) FROM resilience")
    proc = subprocess.Popen([sys.executable, "-m", "dse", "sweep", "--config", str(exp),
                             "--quiet", "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while _count(db, "SELECT COUNT(*) FROM resilience") < 3:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert workers  # the pool is running
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    deadline = time.time() + 10  # orphaned pool workers notice the driver is gone and exit
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    stored = _count(db, "SELECT COUNT(*) FROM resilience")
    assert 3 <= stored < total  # killed in the middle

    done = _cli("sweep", "--config", str(exp), "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    assert "reused" in done.stdout
    from dse.sweep import Store

    with Store(db) as store:
        rows = store.results("t")
        assert rows == reference.rows
        assert store.network("t") == reference.network
        dup = store.query("SELECT COUNT(*) AS n FROM (SELECT row_key FROM resilience GROUP BY"
                          " row_key, model_key, layer_path, settings_key HAVING COUNT(*) > 1)")
        assert dup[0]["n"] == 0


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("flags, field", [
    (["--arch", "no_such_design"], "designs[0]"),
    (["--model", "no_such_model"], "models[0].name"),
    (["--design-variant", "word_bits=-3"], "variants[0]"),
])
def test_bad_config_is_one_line_exit_2_and_loses_nothing(reference, tmp_path, flags, field):
    shutil.copy(reference.db_path, tmp_path / "sweep.sqlite")
    before = _digest(tmp_path / "sweep.sqlite")
    proc = _cli("sweep", "--arch", *DESIGNS, "--model", "digits_cnn", *flags,
                "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and field in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _digest(tmp_path / "sweep.sqlite") == before


def test_a_corrupt_database_is_refused_and_kept(tmp_path):
    (tmp_path / "sweep.sqlite").write_bytes(b"\x00garbage" * 999)
    before = _digest(tmp_path / "sweep.sqlite")
    proc = _cli("sweep", "--arch", "simple_weight_stationary", "--model", "digits_cnn",
                "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "sweep.sqlite" in proc.stderr
    assert _digest(tmp_path / "sweep.sqlite") == before


def test_an_unwritable_output_dir_is_one_line_exit_2(tmp_path):
    (tmp_path / "blocker").write_text("a file, not a directory")
    proc = _cli("sweep", "--arch", "simple_weight_stationary", "--model", "digits_cnn",
                "--out", str(tmp_path / "blocker" / "out"), "--quiet")
    assert proc.returncode == 2 and "output" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_results_command_prints_exports_and_queries(reference, tmp_path):
    db = str(reference.db_path)
    table = _cli("results", "--db", db)
    assert table.returncode == 0 and "SDC per fault" in table.stdout
    for design in DESIGNS:
        assert design in table.stdout
    out = tmp_path / "rows.csv"
    exported = _cli("results", "--db", db, "--table", "results", "--csv", str(out))
    assert exported.returncode == 0
    with open(out, newline="") as fh:
        back = list(csv.DictReader(fh))
    assert [r["row_key"] for r in back] == [r["row_key"] for r in reference.rows]
    assert [r["mapping"] for r in back] == [r["mapping"] for r in reference.rows]
    bad = _cli("results", "--db", db, "--query", "SELECT nope FROM nowhere")
    assert bad.returncode == 2 and "--query" in bad.stderr


def test_a_model_without_weights_is_scored_on_energy_only_and_says_so(tmp_path):
    config = small_config(tmp_path, designs=["simple_output_stationary"],
                          models=[ModelSpec("resnet18", input_shape=(1, 3, 32, 32))])
    result = run_sweep(config, progress=False)
    assert any("not scored for resnet18" in n and "--checkpoint" in n for n in result.notes)
    assert result.rows and all(r["sdc_rate"] is None for r in result.rows)
    (net,) = result.network
    assert net["sdc_rate"] is None and net["layers_scored"] == 0
    assert net["energy_pJ"] == pytest.approx(sum(r["energy_pJ"] * r["count"]
                                                 for r in result.rows if r["rank"] == 0))
    assert net["macs"] == sum(r["macs"] * r["count"] for r in result.rows if r["rank"] == 0)
    # independent reference: torch's own FLOP counter (2 FLOPs per MAC in conv / linear)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dse.problems import zoo

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        zoo.get_model("resnet18").eval()(torch.zeros(1, 3, 32, 32))
    assert net["macs"] == counter.get_total_flops() // 2


def test_compare_puts_dilated_and_undilated_deeplab_side_by_side(tmp_path):
    import json

    proc = _cli("compare", "--model", "deeplabv3", "--model-variant", "dilated", "undilated",
                "--arch", "simple_output_stationary", "--input", "1x3x64x64", "--budget", "40",
                "--executor", "inprocess", "--out", str(tmp_path), "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [t["variant"] for t in out["totals"]] == ["deeplabv3[dilated]", "deeplabv3[undilated]"]
    assert all(t["energy_pJ"] > 0 and t["cycles"] > 0 for t in out["totals"])
    assert any("not scored" in n for n in out["notes"])
    assert (tmp_path / "compare_totals.png").is_file() and (tmp_path / "compare_layers.svg").is_file()
    assert (tmp_path / "compare.html").is_file()
    # unfolded: each of the 4 blocks of layer3 appears on its own line in both variants
    layers = {r["layer"]: r for r in out["layers"]["simple_output_stationary"]}
    blocks = [p for p in layers if p.startswith("backbone.layer3.") and p.endswith(".conv2")]
    assert len(blocks) == 6 and all(layers[p]["deeplabv3[undilated]"] for p in blocks)
    from dse.sweep import Store

    with Store(tmp_path / "sweep.sqlite") as store:
        net = {r["model"]: r for r in store.network()}
    # the undilated twin keeps every feature map, so every layer's MACs (only footprints change)
    assert net["deeplabv3[dilated]"]["macs"] == net["deeplabv3[undilated]"]["macs"]
