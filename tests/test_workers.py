"""Worker set-up: one torch thread, without importing torch in workers that never use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from dse.workers import init_worker
init_worker()
loaded = 'torch' in sys.modules
import torch
print(loaded, torch.get_num_threads())
"""


def _probe(preload: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(REPO)
    code = ("import torch\n" if preload else "") + PROBE
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.split()


def test_init_worker_leaves_torch_unimported_and_its_later_import_single_threaded() -> None:
    assert _probe(preload=False) == ["False", "1"]


def test_init_worker_sets_one_thread_when_torch_is_already_loaded() -> None:
    assert _probe(preload=True) == ["True", "1"]
