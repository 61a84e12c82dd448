"""``dse doctor``: what it finds depends on PATH, checked both ways by narrowing PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from dse.model import timeloop


def _doctor(*args: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run([sys.executable, "-m", "dse", "doctor", *args], capture_output=True,
                          text=True, env=env, check=False)


def _tools(proc: subprocess.CompletedProcess) -> dict[str, dict]:
    assert proc.returncode == 0, proc.stderr
    return {t["name"]: t for t in json.loads(proc.stdout)}


def test_without_timeloop_on_path_it_says_missing_what_it_enables_and_how_to_get_it():
    tools = _tools(_doctor("--json", path=os.path.dirname(sys.executable)))
    for name in ("timeloop-model", "timeloop-mapper"):
        assert not tools[name]["found"] and tools[name]["path"] is None
        assert "--backend timeloop" in tools[name]["enables"]
        assert "install.sh" in tools[name]["get"]
    assert {"accelergy", "snntorch", "distributed", "pyarrow", "GPU (CUDA)"} <= set(tools)
    text = _doctor(path=os.path.dirname(sys.executable)).stdout
    assert "[missing] timeloop-model" in text and "get it:" in text


@pytest.mark.skipif(not timeloop.available(),
                    reason="timeloop-model not on PATH (bash ../shared/tools/timeloop/install.sh)")
def test_with_timeloop_on_path_it_finds_both_and_the_probe_matches_the_builtin_model():
    tools = _tools(_doctor("--json", path=os.environ["PATH"]))
    model, mapper = tools["timeloop-model"], tools["timeloop-mapper"]
    assert model["found"] and model["path"] == shutil.which("timeloop-model")
    assert mapper["found"] and mapper["version"]
    assert "equal to the builtin model" in model["detail"]


def test_python_packages_are_reported_as_importable_here():
    import importlib.util

    tools = _tools(_doctor("--json", "--no-probe", path=os.environ["PATH"]))
    for name in ("snntorch", "distributed", "pyarrow"):
        assert tools[name]["found"] == (importlib.util.find_spec(name) is not None)
