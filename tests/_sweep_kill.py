"""Kill a real ``dse sweep`` process (SIGKILL) once its store shows a stage has begun, so a test
can resume it and compare with an uninterrupted run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from dse.sweep.config import SweepConfig, write_config


def kill_sweep_when(config: SweepConfig, count_sql: str, what: str,
                    timeout_s: float = 240.0) -> None:
    """Run ``config`` as ``python -m dse sweep --config``; SIGKILL it as soon as ``count_sql``
    (a ``SELECT COUNT(*)`` over its store) is positive. ``what`` names the stage for the
    failure message when the sweep ends first."""
    exp = Path(config.output).parent / f"{Path(config.output).name}.yaml"
    write_config(config, exp)
    db = config.db_path

    def begun() -> bool:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute(count_sql).fetchone()[0] > 0
        except sqlite3.Error:
            return False

    proc = subprocess.Popen([sys.executable, "-m", "dse", "sweep", "--config", str(exp),
                             "--quiet", "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while not begun():
        assert proc.poll() is None, f"the sweep ended before {what} began"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
