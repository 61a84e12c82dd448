"""Faults of the run itself: a Timeloop binary that crashes or hangs, a pool worker or a Dask
worker killed mid-sweep (real SIGKILL), a full disk. Each is recorded or survived; the sweep goes
on with the other work; a rerun retries what failed; nothing stored is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import MapperSettings

STAND_IN = """#!/bin/sh
# a stand-in timeloop-mapper: crashes (SIGABRT, as v3.0.3 does on some constrained layers) or hangs
mode=$(cat "{mode}")
if [ "$mode" = hang ]; then exec sleep 60; fi
kill -ABRT $$
"""


def _config(out: Path, **kw) -> SweepConfig:
    base = dict(name="f", designs=["simple_weight_stationary"], models=[ModelSpec("digits_cnn")],
                mapper=MapperSettings(budget=60, time_limit=30.0), seed=0,
                executor="inprocess", output=str(out))
    base["resilience"] = kw.pop("resilience", None) or SweepConfig().resilience
    base["resilience"].enabled = False
    return SweepConfig(**{**base, **kw})


def _stand_in(tmp_path: Path, monkeypatch, mode: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    mode_file = tmp_path / "mode"
    mode_file.write_text(mode)
    script = bindir / "timeloop-mapper"
    script.write_text(STAND_IN.format(mode=mode_file))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DSE_TIMELOOP_TIMEOUT", "1.5")
    return mode_file


def _failures(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT label, reason, attempts FROM failures ORDER BY label").fetchall()


def test_crashing_and_hanging_timeloop_are_recorded_the_sweep_goes_on_and_a_rerun_retries(
        tmp_path, monkeypatch):
    mode = _stand_in(tmp_path, monkeypatch, "crash")
    first = run_sweep(_config(tmp_path / "run", backend="timeloop"), progress=False)
    layers = 5  # digits_cnn: every layer was tried, not just the first
    assert len(first.failed) == layers and first.rows == []
    assert all("SIGABRT" in f["reason"] for f in first.failed)
    assert any("rerun retries" in n for n in first.notes)
    mode.write_text("hang")
    start = time.perf_counter()
    again = run_sweep(_config(tmp_path / "run", backend="timeloop"), progress=False)
    assert time.perf_counter() - start < 60  # each hung run killed after 1.5 s
    assert len(again.failed) == layers and all("hung" in f["reason"] for f in again.failed)
    rows = _failures(tmp_path / "run" / "sweep.sqlite")
    assert len(rows) == layers and all(r[2] == 2 and "hung" in r[1] for r in rows)


def test_the_cli_exits_1_with_one_note_when_units_failed(tmp_path, monkeypatch, capsys):
    from dse.cli import main

    _stand_in(tmp_path, monkeypatch, "crash")
    code = main(["sweep", "--arch", "simple_weight_stationary", "--model", "digits_cnn",
                 "--backend", "timeloop", "--no-resilience", "--executor", "inprocess",
                 "--quiet", "--no-report", "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert code == 1 and "5 units failed" in out and "SIGABRT" in out


def _workers_of(pid: int) -> list[int]:
    """Spawned worker processes under ``pid`` (children and grandchildren), from /proc."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if b"spawn_main" in cmd:
                kids.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_a_worker_when_work_started(db: Path, stop: threading.Event, killed: list[int]) -> None:
    """Once the first task is stored (work is in flight), SIGKILL one worker process."""
    while not stop.is_set() and not killed:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                started = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] > 0
        except sqlite3.Error:
            started = False
        workers = _workers_of(os.getpid())
        if started and workers:
            os.kill(workers[-1], signal.SIGKILL)
            killed.append(workers[-1])
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    return run_sweep(_config(out, designs=["simple_weight_stationary", "eyeriss_like"]),
                     progress=False)


def _table(result) -> list[tuple]:
    return [(r["point"], r["layer"], r["rank"], r["energy_pJ"], r["cycles"], r["mapping"])
            for r in result.rows]


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_a_worker_killed_mid_sweep_gives_the_uninterrupted_table(reference, tmp_path, executor):
    stop, killed = threading.Event(), []
    out = tmp_path / executor
    out.mkdir()
    spy = threading.Thread(target=_kill_a_worker_when_work_started,
                           args=(out / "sweep.sqlite", stop, killed))
    spy.start()
    try:
        result = run_sweep(_config(out, designs=["simple_weight_stationary", "eyeriss_like"],
                                   executor=executor, workers=2,
                                   dask_local=2 if executor == "dask" else None), progress=False)
    finally:
        stop.set()
        spy.join()
    assert killed, "no worker was killed: the test did not exercise anything"
    assert not result.failed
    assert _table(result) == _table(reference)


def test_full_disk_is_one_line_and_the_store_keeps_what_it_had(tmp_path):
    """A 1 MiB tmpfs: the sweep store cannot grow; the error is one line, the rows already
    stored stay readable (skipped where mounting is not allowed)."""
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "size=1m")
    try:
        (mnt / "filler").write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))
        from dse import validate
        from dse.errors import InputError

        with pytest.raises(InputError, match="no space left"):
            validate.write_bytes(mnt / "big.bin", b"x" * (512 * 1024))
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]  # no temporary left behind
        (mnt / "filler").unlink()
        (mnt / "filler").write_bytes(b"\0" * (1024 * 1024 - 160 * 1024))
        with pytest.raises(InputError, match="full|no space") as err:
            run_sweep(_config(mnt / "sweep"), progress=False)
        assert len(str(err.value).splitlines()) == 1
        db = mnt / "sweep" / "sweep.sqlite"
        if db.exists():  # what was stored before the disk filled is intact
            with sqlite3.connect(db) as conn:
                assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()[:120]}")


def test_read_only_output_directory_is_refused_before_any_work(tmp_path):
    """A read-only file system (a tmpfs mounted ro; chmod does not stop root)."""
    from dse.errors import InputError

    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "size=1m,ro")
    try:
        with pytest.raises(InputError, match="not writable|read-only"):
            run_sweep(_config(ro / "out"), progress=False)
        assert list(ro.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
