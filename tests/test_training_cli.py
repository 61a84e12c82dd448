"""`dse train-inject`: a campaign end to end, resume after a real kill, replay of a row, and bad
input as one line with exit status 2."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dse.cli import main
from dse.resilience.training.run import golden_run
from dse.resilience.training.trainer import TrainSetup, load_data

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--epochs", "2", "--steps-after", "10", "--golden-seeds", "0", "--workers", "1"]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cmd(out: Path, n: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "dse", "train-inject", *SMALL, "--experiments", str(n),
            "--out", str(out), "--json", *extra]


@pytest.mark.parametrize("extra", [[], ["--executor", "dask", "--dask-local", "1"]],
                         ids=["in-process", "dask"])
def test_killed_campaign_resumes_without_redoing_or_losing_an_experiment(tmp_path, extra):
    out = tmp_path / "camp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cmd(out, 8, extra), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = out / "results.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 3:  # header + 2 rows
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the campaign ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = results.read_bytes()
    done_before = [r["experiment"] for r in _rows(results) if r["curve_sha"]]
    assert 2 <= len(done_before) < 8
    run = subprocess.run(_cmd(out, 8, extra), env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    after = results.read_bytes()
    cut = before[:before.rfind(b"\n") + 1]  # a half-written line may be cut, nothing else
    assert after.startswith(cut)
    rows = _rows(results)
    ids = [r["experiment"] for r in rows]
    assert sorted(ids, key=int) == [str(i) for i in range(8)]  # every one once
    doc = json.loads(run.stdout)
    assert doc["summary"]["adam/none"]["experiments"] == 8
    # the golden run made where the experiments ran (a Dask worker) is the one made here
    made = torch.load(out / "golden" / "adam-none.pt", weights_only=False)["golden"]
    here = golden_run(TrainSetup(epochs=2), load_data("digits"), 0)
    assert made.digests == here.digests and made.curve.test_acc == here.curve.test_acc


def test_campaign_json_table_files_and_replay(tmp_path, capsys):
    out = tmp_path / "c"
    code = main(["train-inject", *SMALL, "--experiments", "6", "--stratify", "pass",
                 "--extent", "1", "--checkpoint-every", "7", "--out", str(out), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    block = doc["summary"]["adam/none"]
    assert block["experiments"] == 6
    assert sum(block[o]["count"] for o in ("ok", "degraded", "diverged")) == 6
    for name in ("Masked", "ok"):
        lo, hi = block[name]["ci"]
        assert lo <= block[name]["rate"] <= hi
    strata = doc["strata"]
    assert {k.split("/")[-1] for k in strata} == {"forward", "backward", "optimizer"}
    assert all(s["experiments"] == 2 for s in strata.values())
    rows = _rows(out / "results.csv")
    assert {r["stage"] for r in rows} == {"fwrd_inject", "bkwd_inject", "optm_inject"}
    for png in ("curves.png", "outcomes.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    one = tmp_path / "row.csv"
    with open(one, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerow(rows[0])
    # replayed on a fresh golden run checkpointed every 10 steps, not 7: the same curve
    code = main(["train-inject", "--replay", str(one), "--out", str(tmp_path / "fresh"),
                 "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["identical"] and rep["replayed"][0]["outcome"] == rows[0]["outcome"]


def _row_file(tmp_path: Path, **changes) -> Path:
    from dse.resilience.training import campaign as tc
    from dse.resilience.training.fault import TrainFault
    from dse.resilience.training.trainer import TrainSetup

    f = TrainFault(0, 3, "features.0", "forward", "output", "zero", (1, 2, 3, 4))
    row = {**tc.fault_row(0, f, TrainSetup(epochs=2), 10), **changes}
    path = tmp_path / "row.csv"
    tc.write_rows(path, [row])
    return path


@pytest.mark.parametrize("argv,match", [
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'"),
    (["--pass", "sideways"], "unknown pass 'sideways'"),
    (["--layer", "features.9"], "unknown layer 'features.9'"),
    (["--fault-model", "melt"], "unknown fault model"),
    (["--steps-after", "500"], "--steps-after"),
    (["--optimizer", "sgd", "--mitigation", "adam-bound"], "first moment"),
    (["--outcome", "tol=3"], "unknown outcome setting"),
    (["--workers", "0"], "--workers"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
])
def test_bad_flags_are_one_line_exit_2(tmp_path, capsys, argv, match):
    code = main(["train-inject", *SMALL, "--experiments", "2", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("changes,extra,match", [
    ({"target_step": 99}, [], "past the end of an epoch"),
    ({"target_layer": "conv9"}, [], "unknown layer 'conv9'"),
    ({"stage": "side_inject"}, [], "unknown stage"),
    ({"optimizer": "adamm"}, [], "unknown optimizer"),
    ({}, ["--model", "digits_resnet20"], "from model 'digits_cnn'"),
])
def test_bad_replay_rows_are_one_line_exit_2(tmp_path, capsys, changes, extra, match):
    path = _row_file(tmp_path, **changes)
    code = main(["train-inject", "--replay", str(path), "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert code == 2 and match in err and str(path) in err
    assert len(err.strip().splitlines()) == 1
