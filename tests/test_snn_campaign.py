"""Spiking fault lists, outcomes, resumable campaigns and the ``snn-inject`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch

from dse.cli import main
from dse.resilience.snn import campaign, faultlist
from dse.resilience.snn.engines import FastSnnEngine, NaiveSnnEngine
from dse.resilience.snn.network import target_shapes
from dse.resilience.snn.outcomes import COUNTS, classify
from dse.resilience.stats import sample_size
from tests._snn_util import small_snn


def test_outcome_buckets_give_each_boundary_to_one_bucket():
    golden = torch.tensor([[20.0, 3.0]])
    faulty = torch.tensor([[[20.0, 3.0]], [[19.0, 3.0]], [[18.0, 3.0]], [[16.0, 3.0]],
                           [[15.0, 3.0]], [[2.0, 30.0]], [[20.0, 9.0]], [[float("nan"), 0.0]]])
    counts = classify(golden, faulty, torch.tensor([0]))
    names = dict(zip(COUNTS, counts.T, strict=True))
    # d = 0 (masked; other class may differ), 5, 10, 20 (each in the bucket it closes), 25, class
    # change, masked with a changed runner-up, NaN score -> SDC_20
    assert names["fully_masked"].tolist() == [1, 0, 0, 0, 0, 0, 1, 0]
    assert names["SDC_0_5"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert names["SDC_5_10"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert names["SDC_10_20"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert names["SDC_20"].tolist() == [0, 0, 0, 0, 1, 0, 0, 1]
    assert names["SDC_1"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0]
    assert (counts[:, :6].sum(axis=1) == 1).all()


def _sites():
    model, x, _ = small_snn("csnn")
    return model, x, target_shapes(model, FastSnnEngine(model, x).golden.neuron_shapes)


def test_pooled_list_has_leveugles_size_and_is_seeded():
    _, _, sites = _sites()
    pop = sum(int(np.prod(s)) for s in sites.values()) * 32
    a = faultlist.generate(sites, margin=0.05, confidence=0.95, seed=3)
    assert len(a) == sample_size(pop, 0.05, 0.95) == len(set(a))
    assert a == faultlist.generate(sites, margin=0.05, confidence=0.95, seed=3)
    assert a != faultlist.generate(sites, margin=0.05, confidence=0.95, seed=4)
    per_site = faultlist.generate(sites, mode="site", margin=0.05, confidence=0.95)
    by = {}
    for f in per_site:
        by[(f.layer, f.target)] = by.get((f.layer, f.target), 0) + 1
    assert by == {k: sample_size(int(np.prod(s)) * 32, 0.05, 0.95) for k, s in sites.items()}
    bit = faultlist.generate({("conv2", "weight"): sites[("conv2", "weight")]}, mode="bit",
                             margin=0.1, confidence=0.9)
    assert len(bit) == 32 * sample_size(int(np.prod(sites[("conv2", "weight")])), 0.1, 0.9)


def test_transient_steps_and_csv_round_trip(tmp_path):
    _, x, sites = _sites()
    faults = faultlist.generate(sites, n_faults=200, transient=True, steps=x.shape[0], seed=1)
    steps = {f.step for f in faults}
    assert steps <= set(range(x.shape[0])) and len(steps) > 1
    faultlist.save(faults, tmp_path / "f.csv")
    head = (tmp_path / "f.csv").read_text().splitlines()[0]
    assert head == "Injection,Layer,TensorIndex,Bit,Step"
    assert faultlist.load(tmp_path / "f.csv") == faults


def test_campaign_resumes_after_a_kill_with_the_same_results(tmp_path):
    model, x, y = small_snn("csnn")
    _, _, sites = _sites()
    faults = faultlist.generate(sites, n_faults=60, seed=2)
    engine = FastSnnEngine(model, x)
    full = campaign.run(engine, faults, y, tmp_path / "a", chunk=16)
    results = tmp_path / "a" / "results.csv"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:30]) + lines[30][:9])  # killed mid-line after 29 faults
    calls = []
    real = engine.scores
    engine.scores = lambda fs: calls.append(len(fs)) or real(fs)
    again = campaign.run(engine, faults, y, tmp_path / "a", chunk=16)
    assert sum(calls) == 60 - 29
    assert np.array_equal(full, again)
    naive = campaign.run(NaiveSnnEngine(model, x), faults, y, tmp_path / "b")
    assert np.array_equal(full, naive)


def _ckpt(tmp_path):
    model, x, y = small_snn("csnn", steps=4, images=6)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.save({"spikes": x, "labels": y}, tmp_path / "d.pt")
    return ["--model", "dse.problems.snn_models:CSNN", "--checkpoint", str(tmp_path / "m.pt"),
            "--data", str(tmp_path / "d.pt"), "--steps", "4"]


def test_cli_runs_writes_the_table_and_resumes(tmp_path, capsys):
    args = [*_ckpt(tmp_path), "--n-faults", "40", "--transient", "--out", str(tmp_path / "o")]
    assert main(["snn-inject", *args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["faults"] == 40 and doc["steps"] == 4
    assert sum(r["faults"] for r in doc["table"].values()) == 40
    assert sum(r["fault_image_pairs"] for r in doc["table"].values()) == 40 * doc["images"]
    for name in ("faultlist.csv", "results.csv", "table.csv", "table.txt", "sdc1.png"):
        assert (tmp_path / "o" / name).is_file()
    first = (tmp_path / "o" / "table.csv").read_text()
    assert main(["snn-inject", *args]) == 0
    text = capsys.readouterr().out
    assert "fully_masked" in text and "fault_image_pairs" in text and "injections" not in text
    assert max(len(line) for line in text.splitlines()) <= 100  # sites wrap, not widen
    assert (tmp_path / "o" / "table.csv").read_text() == first


def _bad(tmp_path, capsys, extra, rows=None):
    args = [*_ckpt(tmp_path), "--out", str(tmp_path / "bad")]
    if rows is not None:
        path = tmp_path / "list.csv"
        path.write_text("Injection,Layer,TensorIndex,Bit,Step\n" + rows)
        args += ["--faults", str(path)]
    code = main(["snn-inject", *args, *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    return err


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert "has no weight" in _bad(tmp_path, capsys, [], "0,lif1.weight,(0),3,\n")
    assert "bit 40 is outside" in _bad(tmp_path, capsys, [], "0,conv1.weight,\"(0, 0, 0, 0)\",40,\n")
    assert "step 9 is past the 4 time steps" in _bad(tmp_path, capsys, [],
                                                      "0,lif2.spikes,\"(0, 0, 0)\",3,9\n")
    assert "--step" in _bad(tmp_path, capsys, ["--step", "4"])
    code = main(["snn-inject", "--model", "digits_cnn", "--data", str(tmp_path / "d.pt"),
                 "--steps", "4", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no spiking layer" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()  # nothing written for a refused campaign


def test_cli_without_snntorch_is_one_line_exit_2(tmp_path):
    fake = tmp_path / "fake" / "snntorch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), *sys.path])}
    res = subprocess.run([sys.executable, "-m", "dse", "snn-inject", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "dse snn-inject: error: snntorch: snntorch is not installed; pip install -e '.[snn]'"]


def test_cli_precision_adds_faults_in_rounds_and_resumes_to_the_same_result(tmp_path, capsys):
    args = ["snn-inject", *_ckpt(tmp_path), "--precision", "0.3", "--max-faults", "80",
            "--out", str(tmp_path / "p"), "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    lo, hi = doc["network_sdc1"][1:]
    assert doc["faults"] == doc["network_faults"] <= 80 and 0 <= lo <= hi <= 1
    assert len((tmp_path / "p" / "results.csv").read_text().splitlines()) == doc["faults"] + 1
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["network_sdc1"] == doc["network_sdc1"] and again["table"] == doc["table"]


def test_two_workers_give_the_same_counts_as_one(tmp_path):
    model, x, y = small_snn("fcsnn", steps=4, images=6)
    sites = target_shapes(model, FastSnnEngine(model, x).golden.neuron_shapes)
    faults = faultlist.generate(sites, n_faults=24, seed=5)
    one = campaign.run(FastSnnEngine(model, x), faults, y, tmp_path / "one", chunk=8)
    two = campaign.run(FastSnnEngine(model, x), faults, y, tmp_path / "two", chunk=8, workers=2,
                       model_spec=("fcsnn", {}))
    assert np.array_equal(one, two)
    assert sorted((tmp_path / "one" / "results.csv").read_text().splitlines()) == sorted(
        (tmp_path / "two" / "results.csv").read_text().splitlines())
