"""``dse profile`` through a real subprocess: output, files, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from dse.problems import profile, read_problem, zoo


def dse(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", "profile", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_profile_json_and_yaml_files_agree(tmp_path):
    stale = tmp_path / "digits_cnn" / "99_old.yaml"
    stale.parent.mkdir()
    stale.write_text("left from an earlier run\n")
    done = dse("--model", "digits_cnn", "--input", "2x1x8x8", "--out", str(tmp_path), "--json",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["model"] == "digits_cnn" and doc["input"] == [2, 1, 8, 8]
    assert doc["total_macs"] == sum(row["macs"] for row in doc["layers"])
    assert set(doc["layers"][0]) >= {"name", "op", "dims", "macs", "count"}
    files = sorted((tmp_path / "digits_cnn").glob("*.yaml"))
    assert [f.name for f in files] == [
        "00_features.0.yaml", "01_features.2.yaml", "02_features.5.yaml",
        "03_classifier.1.yaml", "04_classifier.3.yaml"]
    for row, file in zip(doc["layers"], files, strict=True):
        problem = read_problem(file)
        assert problem.instance == row["dims"] and problem.macs * row["count"] == row["macs"]
        assert "data-spaces" in file.read_text()


def test_profile_text_table_and_underscore_keys_for_several_models(tmp_path):
    done = dse("--model", "cifar_resnet20", "digits_cnn", "--out", str(tmp_path), "--keys",
               "underscore", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "digits_cnn" / "00_features.0.yaml").is_file()
    # ResNet-20 by hand: stem, 3 stages of 6 3×3 convs (the first of stages 2-3 strided, from
    # half the channels), two 1×1 strided shortcuts, fc.
    stage = 6 * 9 * 16 * 16 * 32 * 32
    macs = (3 * 16 * 9 * 32 * 32 + stage + (stage - stage // 12) + (stage - stage // 12)
            + 16 * 32 * 16 * 16 + 32 * 64 * 8 * 8 + 64 * 10)
    assert f"total: {macs:,} MACs" in done.stdout
    assert "BatchNorm2d" in done.stdout and "unmapped ops: none" in done.stdout
    text = next((tmp_path / "cifar_resnet20").glob("00_*.yaml")).read_text()
    assert "data_spaces" in text


@pytest.mark.parametrize(("args", "says"), [
    (["--model", "resnt18"], "did you mean resnet18"),
    (["--model", "digits_cnn", "--input", "1xAx8"], "--input: malformed shape"),
    (["--model", "digits_cnn", "--input", "1x3x8x8"], "forward pass on input 1x3x8x8 failed"),
    (["--problem", "garbage.yaml"], "garbage.yaml: not valid YAML: syntax error at line 2"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, says):
    (tmp_path / "garbage.yaml").write_text("problem: {instance: [\n")
    done = dse(*args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model", ["resnet18", "cifar_resnet20", "digits_cnn"])
def test_shipped_layer_shapes_match_a_fresh_profile(model):
    files = sorted((REPO / "layer_shapes" / model).glob("*.yaml"))
    fresh = profile(zoo.get_model(model), zoo.default_input(model)).layers
    assert [read_problem(f) for f in files] == [lay.problem for lay in fresh]


def test_unwritable_out_is_one_line_naming_the_folder(tmp_path):
    (tmp_path / "blocker").write_text("a file where the output folder should go\n")
    done = dse("--model", "digits_cnn", "--out", str(tmp_path / "blocker"), cwd=tmp_path)
    assert done.returncode == 2
    assert "--out: cannot write problem YAMLs" in done.stderr and "blocker" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert (tmp_path / "blocker").read_text().startswith("a file")


def test_model_without_mac_layers_writes_an_empty_folder(tmp_path):
    from dse.cli.profile import write_layers

    workload = profile(torch.nn.Sequential(torch.nn.ReLU()), (1, 4), name="relu")
    assert write_layers(workload, tmp_path / "relu", "hyphen") == []
    assert (tmp_path / "relu").is_dir() and not list(tmp_path.glob(".relu.tmp-*"))
