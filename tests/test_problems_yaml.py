"""Problem YAML in and out: lossless round trips, real Timeloop problem files, bad files."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import CASES, REFERENCE, needs_shared
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.errors import InputError
from dse.problems import (
    conv_problem,
    problem_from_dict,
    problem_to_dict,
    profile,
    read_problem,
    write_problem,
    zoo,
)

conv_params = st.fixed_dictionaries({
    d: st.integers(1, 64) for d in ("N", "C", "M", "R", "S", "P", "Q", "G")
} | {c: st.integers(1, 8) for c in ("Wstride", "Hstride", "Wdilation", "Hdilation")})


@settings(max_examples=60, deadline=None)
@given(conv_params, st.sampled_from(["hyphen", "underscore"]))
def test_yaml_problem_yaml_round_trip_is_lossless(params, keys):
    problem = conv_problem(**params)
    text = yaml.safe_dump(problem_to_dict(problem, keys=keys), sort_keys=False)
    back = problem_from_dict(yaml.safe_load(text))
    assert back == problem
    assert problem_to_dict(back, keys=keys) == problem_to_dict(problem, keys=keys)
    # The Inputs footprint follows the strides and dilations carried in the file.
    wide = (params["R"] - 1) * params["Wdilation"] + (params["P"] - 1) * params["Wstride"] + 1
    high = (params["S"] - 1) * params["Hdilation"] + (params["Q"] - 1) * params["Hstride"] + 1
    assert back.tensor_size("Inputs") == params["N"] * params["C"] * params["G"] * wide * high


def test_written_keys_follow_the_requested_timeloop_spelling(tmp_path):
    problem = conv_problem(C=3, M=4, R=3, S=3, P=5, Q=5, Hdilation=2)
    hyphen = write_problem(problem, tmp_path / "h.yaml").read_text()
    under = write_problem(problem, tmp_path / "u.yaml", keys="underscore").read_text()
    assert "data-spaces" in hyphen and "read-write" in hyphen and "data_spaces" not in hyphen
    assert "data_spaces" in under and "read_write" in under and "data-spaces" not in under
    assert read_problem(tmp_path / "h.yaml") == read_problem(tmp_path / "u.yaml") == problem


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_reference_problem_loads_and_rewrites_with_the_same_meaning(case, tmp_path):
    path = REFERENCE / "cases" / case / "inputs" / "problem.yaml"
    raw = yaml.safe_load(path.read_text())["problem"]
    problem = read_problem(path)
    assert {**problem.instance, **problem.coefficients} == raw["instance"]
    stated = re.search(r"MACs = (\d+)", path.read_text())
    if stated:
        assert problem.macs == int(stated.group(1))
    for keys in ("hyphen", "underscore"):
        again = read_problem(write_problem(problem, tmp_path / f"{keys}.yaml", keys=keys))
        assert again == problem


@needs_shared
def test_every_reference_layer_is_a_layer_of_a_profiled_zoo_model():
    # The reference layers come from ResNet-18, MobileNetV2 and DeepLabv3 (33×33 ASPP at 257 px):
    # the profiler must produce exactly those problems, W/H naming and dilation included.
    profiled = [lay.problem for name, shape in (("resnet18", (1, 3, 224, 224)),
                                                ("mobilenet_v2", (1, 3, 224, 224)),
                                                ("deeplabv3", (1, 3, 257, 257)))
                for lay in profile(zoo.get_model(name), shape).layers]
    for case in CASES:
        reference = read_problem(REFERENCE / "cases" / case / "inputs" / "problem.yaml")
        assert any(reference == p for p in profiled), case


@pytest.mark.parametrize(("text", "field"), [
    ("problem: [1, 2\n", None),
    ("problem: {instance: {C: 2}}\n", "problem"),
    ("problem: {instance: {C: 0}, shape: {dimensions: [C], data-spaces: "
     "[{name: A, projection: [[[C]]]}]}}\n", "problem.instance.C"),
    ("problem: {instance: {C: 2}, shape: {dimensions: [C], data-spaces: "
     "[{name: A, projection: [[[K]]]}]}}\n", "problem.shape.data-spaces[0]"),
])
def test_bad_problem_files_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_problem(path)
    assert err.value.file == str(path)
    assert err.value.field == field
