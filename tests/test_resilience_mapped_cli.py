"""``dse resilience``: JSON result for a mapping file, one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest
import torch
from test_resilience_mapped_campaign import eyeriss_mapping

from dse.arch import load_arch
from dse.cli import main
from dse.model import write_mapping
from dse.problems.problem import conv_problem
from dse.problems.trained import load_model


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["resilience", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_result_for_a_mapping_file(tmp_path, capsys):
    problem = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)
    path = tmp_path / "map.yaml"
    write_mapping(eyeriss_mapping(), path, problem)
    assert load_arch("eyeriss_like")  # the design the mapping was written for
    code, stdout, stderr = _run(capsys, "--arch", "eyeriss_like", "--model", "digits_cnn",
                                "--layer", "features.2", "--mapping", str(path),
                                "--faults-per-class", "4", "--images", "16", "--format", "bf16",
                                "--stuck-pe", "stuck1", "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    model, images, labels = load_model("digits_cnn", limit=16)
    with torch.no_grad():
        correct = int((model(images).argmax(1) == labels).sum())
    assert result["images"] == 16 and result["golden_top1_accuracy"] == correct / 16
    assert set(result) >= {"sdc1_rate", "sdc1_ci", "fit", "per_site"}
    assert {s["level"] for s in result["per_site"]} == {
        "shared_glb", "ifmap_spad", "weights_spad", "psum_spad", "mac"}
    for site in result["per_site"]:
        assert set(site) >= {"level", "dataspace", "exposure_share", "sdc1_rate",
                             "mean_footprint"}
    lo, hi = result["sdc1_ci"]
    assert lo <= result["sdc1_rate"] <= hi
    # each PE of this mapping computes 128 outputs: M8 (DRAM 2 x psum 4) x P2 (glb) x Q8 (glb)
    assert result["stuck_pe"]["n"] == 4 and result["stuck_pe"]["mean_footprint"] == 128


def test_n_faults_is_a_warned_alias_of_faults_per_class(capsys):
    """The old spelling still runs the same campaign, after one warning line naming the new."""
    common = ["--arch", "eyeriss_like", "--layer", "features.2", "--map-evals", "50",
              "--images", "8", "--format", "int8"]
    code, new, err_new = _run(capsys, *common, "--faults-per-class", "3")
    assert code == 0 and "deprecated" not in err_new
    code, old, err_old = _run(capsys, *common, "--n-faults", "3")
    assert code == 0 and old == new
    assert [line for line in err_old.splitlines() if "deprecated" in line] == [
        "dse resilience: warning: --n-faults is deprecated; use --faults-per-class"]
    assert "golden (fault-free) top-1 accuracy:" in new


def test_precision_text_defines_every_figure_within_100_columns(capsys):
    code, out, err = _run(capsys, "--arch", "eyeriss_like", "--layer", "features.2",
                          "--map-evals", "50", "--images", "8", "--precision", "0.5",
                          "--max-faults", "120")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100
    flat = " ".join(out.split())
    assert "failures per 1e9 h (raw 1000 FIT/Mbit x" in flat and "golden (fault-free)" in flat
    assert "SDC per fault (top-1 changes | one fault in the layer's buffers):" in flat
    assert "SDC per fault [CI]" in out and "±" not in out


@pytest.mark.parametrize("args, names", [
    (["--arch", "no_such_design", "--layer", "features.2"], "no_such_design"),
    (["--arch", "eyeriss_like", "--layer", "features.9"], "--layer"),
    (["--arch", "eyeriss_like", "--layer", "features.2", "--mapping", "missing.yaml"],
     "missing.yaml"),
    (["--arch", "eyeriss_like", "--layer", "features.2", "--margin", "2"], "--margin"),
    (["--arch", "eyeriss_like", "--model", "nope", "--layer", "features.2"], "nope"),
    (["--arch", "eyeriss_like", "--layer", "features.2", "--device", "tpu"], "--device"),
    (["--arch", "eyeriss_like", "--layer", "features.2", "--format", "int77"], "format"),
])
def test_bad_input_is_one_line_and_exit_2(args, names, capsys):
    code, _, stderr = _run(capsys, *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], stderr
