"""The profile cache: a cached workload is the profiled one, a miss is profiled in a child
interpreter (same workload, its InputError passed on), and an energy-only sweep's driver never
imports torch, cold or warm (its results unchanged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dse.errors import InputError
from dse.problems import profile, zoo
from dse.sweep import ModelSpec, profiles
from dse.sweep.profiles import (
    _entry_path,
    profile_here,
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

    cold = sweep("first")  # profiled by a child interpreter, then stored
    assert list((tmp_path / "cache" / "profiles").glob("digits_cnn-*.json"))
    warm = sweep("second")
    assert not cold["torch"] and not warm["torch"]
    assert warm["rows"] == cold["rows"] and len(cold["rows"]) > 0


def test_a_stored_entry_is_served_without_profiling(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    spec = ModelSpec("digits_cnn")
    first = shapes_only_workload(spec)

    def no_profiling(_: ModelSpec) -> None:
        raise AssertionError("profiled although the entry exists")

    monkeypatch.setattr(profiles, "_profile_in_child", no_profiling)
    assert shapes_only_workload(spec) == first


def test_the_child_profile_equals_the_in_process_one_and_passes_input_errors_on():
    spec = ModelSpec("digits_resnet20")
    assert profiles._profile_in_child(spec) == profile_here(spec)
    with pytest.raises(InputError, match="forward pass on input 1x3x8x8 failed"):
        profiles._profile_in_child(ModelSpec("digits_cnn", input_shape=(1, 3, 8, 8)))
