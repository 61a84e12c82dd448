"""Concurrent runs on one store: a claim per unit of work (a row taken in a transaction) makes a
second run skip what the first computes, and take it over when the first died (lease timeout)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import FaultSettings, MapperSettings, write_config
from dse.sweep.store import Store

DESIGNS = ["simple_weight_stationary", "eyeriss_like"]


def _config(out: Path) -> SweepConfig:
    return SweepConfig(name="c", designs=list(DESIGNS), models=[ModelSpec("digits_cnn")],
                       mapper=MapperSettings(budget=300, time_limit=30.0),
                       resilience=FaultSettings(enabled=False), seed=0, executor="inprocess",
                       output=str(out))


def _table(rows: list[dict]) -> list[tuple]:
    return [(r["point"], r["layer"], r["rank"], r["energy_pJ"], r["cycles"], r["mapping"])
            for r in rows]


def test_two_concurrent_sweeps_compute_each_unit_once_and_agree(tmp_path):
    reference = run_sweep(_config(tmp_path / "ref"), progress=False)
    units = reference.computed["map"]
    exp = tmp_path / "exp.yaml"
    write_config(_config(tmp_path / "shared"), exp)
    cmd = [sys.executable, "-m", "dse", "sweep", "--config", str(exp), "--json", "--quiet",
           "--no-report"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    docs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        docs.append(json.loads(out))
    computed = [d["computed"]["map"] for d in docs]
    assert sum(computed) == units, computed  # each unit computed once, by one of the two
    assert [d["computed"]["map"] + d["reused"]["map"] for d in docs] == [units, units]
    with Store(tmp_path / "shared" / "sweep.sqlite") as store:
        assert _table(store.results("c")) == _table(reference.rows)
        assert store.query("SELECT COUNT(*) AS n FROM claims")[0]["n"] == 0


def test_a_claim_left_by_a_dead_run_is_taken_over_after_its_lease(tmp_path, monkeypatch):
    config = _config(tmp_path / "run")
    first = run_sweep(config, progress=False)
    key = first.rows[0]["task_key"]
    db = tmp_path / "run" / "sweep.sqlite"
    with Store(db) as store:  # a run that claimed one unit, then died before storing it
        store._conn.execute("DELETE FROM mappings WHERE task_key = ?", (key,))
        store._conn.execute("DELETE FROM tasks WHERE task_key = ?", (key,))
        store._conn.commit()
        assert store.claim(key, "map", "dead-run", lease_s=2.0) == "mine"
    monkeypatch.setenv("DSE_LEASE_S", "2")
    start = time.monotonic()
    again = run_sweep(config, progress=False)
    assert again.computed["map"] == 1 and time.monotonic() - start >= 1.0
    assert _table(again.rows) == _table(first.rows)
