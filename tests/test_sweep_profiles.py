"""The profile cache: a cached workload is the profiled one, and a sweep of a model profiled
before runs without importing torch (its results unchanged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dse.problems import profile, zoo
from dse.sweep import ModelSpec
from dse.sweep.profiles import (
    _entry_path,
    shapes_only_workload,
    workload_from_plain,
    workload_to_plain,
)

REPO = Path(__file__).resolve().parent.parent

SWEEP = """
import json, sys
from dse.sweep import ModelSpec, SweepConfig, run_sweep
from dse.sweep.config import FaultSettings, MapperSettings
config = SweepConfig(name="p", designs=["eyeriss_like", "simple_weight_stationary"],
                     models=[ModelSpec("digits_cnn")], resilience=FaultSettings(enabled=False),
                     mapper=MapperSettings(budget=60, time_limit=600.0), workers=2,
                     output=sys.argv[1])
result = run_sweep(config, progress=False)
print(json.dumps({"torch": "torch" in sys.modules,
                  "rows": sorted([r["point"], r["layer"], r["rank"], r["energy_pJ"], r["cycles"]]
                                 for r in result.rows)}))
"""


def test_a_cached_workload_equals_a_fresh_profile_of_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    for name in ("mobilenet_v2", "deeplabv3_undilated", "digits_cnn"):
        spec = ModelSpec(name)
        fresh = profile(zoo.get_model(name), zoo.default_input(name), name=spec.label)
        assert workload_from_plain(json.loads(json.dumps(workload_to_plain(fresh)))) == fresh
        assert shapes_only_workload(spec) == fresh  # profiled, then stored
        assert _entry_path(spec).exists()
        assert shapes_only_workload(spec) == fresh  # read back


def test_an_unreadable_entry_is_profiled_again_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    spec = ModelSpec("digits_cnn", input_shape=(1, 1, 8, 8))
    path = _entry_path(spec)
    path.parent.mkdir(parents=True)
    path.write_text('{"model": "digits_cnn", "layers": [')  # a write cut short
    fresh = profile(zoo.get_model("digits_cnn"), (1, 1, 8, 8), name=spec.label)
    assert shapes_only_workload(spec) == fresh
    assert workload_from_plain(json.loads(path.read_text())) == fresh


def test_models_named_by_import_path_are_never_cached_and_options_change_the_key(tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    assert _entry_path(ModelSpec("dse.problems.models:digits_cnn")) is None
    assert _entry_path(ModelSpec("torchvision:resnet18")) is not None
    assert _entry_path(ModelSpec("deeplabv3")) != _entry_path(
        ModelSpec("deeplabv3", options={"dilated": False}))
    assert _entry_path(ModelSpec("resnet18")) != _entry_path(
        ModelSpec("resnet18", input_shape=(1, 3, 112, 112)))


def test_a_sweep_of_a_cached_model_never_imports_torch_and_gives_the_same_rows(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"DSE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1"}

    def sweep(out: str) -> dict:
        proc = subprocess.run([sys.executable, "-c", SWEEP, str(tmp_path / out)], env=env,
                              capture_output=True, text=True, timeout=300, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    cold, warm = sweep("first"), sweep("second")
    assert cold["torch"] and not warm["torch"]
    assert warm["rows"] == cold["rows"] and len(cold["rows"]) > 0
