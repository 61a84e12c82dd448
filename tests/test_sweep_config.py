"""Experiment YAML parsing, hashing and output-dir checks (no designs or models needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dse.errors import InputError
from dse.sweep.config import (
    FaultSettings,
    SweepConfig,
    check_output_dir,
    config_from_dict,
    read_config,
    write_config,
)
from dse.sweep.hashing import stable_hash


def test_yaml_round_trips_through_the_config(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "designs: [eyeriss_like, nvdla_like]\n"
        "variants: [{}, {word_bits: 16}]\n"
        "models: [digits_cnn, {name: resnet18, input: 1x3x32x32}]\n"
        "mapper: {time_limit: 0.5, budget: 200}\n"
        "resilience: {top_k: 1, faults: 50}\n"
        "seed: 3\n"
    )
    config = read_config(path)
    assert config.name == "exp"
    assert config.models[1].input_shape == (1, 3, 32, 32)
    assert config.mapper.budget == 200 and config.resilience.faults == 50
    write_config(config, tmp_path / "again.yaml")
    again = read_config(tmp_path / "again.yaml")
    assert again.to_dict() == {**config.to_dict(), "name": "exp"}


@pytest.mark.parametrize("text, field", [
    ("desings: [eyeriss_like]\n", "desings"),
    ("mapper: {time_limt: 3}\n", "mapper.time_limt"),
    ("models: [{name: resnet18, input: 1xAx3}]\n", "models[0].input"),
    ("models: [{input: 1x3x8x8}]\n", "models[0].name"),
    ("variants: [7]\n", "variants[0]"),
])
def test_bad_yaml_names_the_file_and_the_field(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_config(path)
    assert info.value.field == field
    assert info.value.file == str(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_broken_yaml_syntax_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("designs: [eyeriss_like\nseed: 1\n")
    with pytest.raises(InputError, match="line"):
        read_config(path)


def test_grid_is_crossed_with_the_explicit_variants():
    config = config_from_dict({"variants": [{}, {"word_bits": 16}],
                               "grid": {"pe_x": [8, 16], "technology": ["45nm"]}})
    got = config.variant_params()
    assert got == [
        {"pe_x": 8, "technology": "45nm"}, {"pe_x": 16, "technology": "45nm"},
        {"word_bits": 16, "pe_x": 8, "technology": "45nm"},
        {"word_bits": 16, "pe_x": 16, "technology": "45nm"},
    ]


def test_an_unwritable_output_dir_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError) as info:
        check_output_dir(blocker / "out", "exp.yaml")
    assert info.value.field == "output" and info.value.file == "exp.yaml"
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(InputError, match="not writable"):
            check_output_dir(ro)


def test_hash_changes_with_any_fault_setting_and_only_then():
    base = stable_hash(FaultSettings(), 0)
    assert stable_hash(FaultSettings(), 0) == base
    assert stable_hash(FaultSettings(margin=0.051), 0) != base
    assert stable_hash(FaultSettings(device="cuda"), 0) != base  # kernels differ by device
    assert stable_hash(FaultSettings(), 1) != base
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})


def test_default_config_is_the_shipped_both_axes_experiment():
    config = SweepConfig()
    assert config.models[0].has_weights and config.resilience.enabled


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "experiments")
                                        .glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path, tmp_path):
    from dse.sweep.config import validate

    config = read_config(path)
    config.output = str(tmp_path)
    points = validate(config)
    assert points and len(points) == len(set(points))


def test_run_sweep_reports_a_bad_dict_config_naming_the_field(tmp_path):
    from dse.sweep import run_sweep

    with pytest.raises(InputError) as info:
        run_sweep({"designs": ["eyeriss_like"], "mapper": {"budgett": 5},
                   "output": str(tmp_path)}, progress=False)
    assert info.value.field == "mapper.budgett"
    assert not (tmp_path / "sweep.sqlite").exists()


def test_unknown_device_or_cuda_without_a_gpu_names_the_device_field(tmp_path, monkeypatch):
    import torch

    from dse.sweep.config import validate

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "dev.yaml"
    path.write_text("resilience: {device: tpu}\n")
    with pytest.raises(InputError, match="unknown device") as info:
        validate(read_config(path))
    assert info.value.field == "resilience.device" and info.value.file == str(path)
    if not torch.cuda.is_available():
        path.write_text("resilience: {device: cuda}\n")
        with pytest.raises(InputError, match="cuda is not available") as info:
            validate(read_config(path))
        assert info.value.field == "resilience.device"
        # workers on a remote scheduler may have the GPU this machine lacks
        path.write_text("resilience: {device: cuda}\nscheduler: tcp://gpu-node:8786\n")
        assert validate(read_config(path))


def test_sweep_device_flag_is_checked_in_one_line(tmp_path, capsys, monkeypatch):
    from dse.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "resilience.device" in err and "unknown device" in err
    assert len(err.strip().splitlines()) == 1
