"""The v0.4 single-file loader gives the same Arch as timeloopfe's native rendering of it."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from conftest import CASES, REFERENCE, needs_shared

from dse.arch import Arch
from dse.arch import load_arch as _load_arch
from dse.arch.constraints import canonical
from dse.arch.expr import ExpressionError, evaluate
from dse.errors import InputError


def load_arch(source):
    """Structure only: these tests compare what the specs say, not energy estimates."""
    return _load_arch(source, energy="none")


def unit_dims(case_dir: Path) -> list[str]:
    """Problem dims of size 1: timeloopfe pins them into every permutation of that case."""
    instance = yaml.safe_load((case_dir / "inputs/problem.yaml").read_text())["problem"]["instance"]
    return [d for d, v in instance.items() if v == 1 and d.isalpha() and len(d) == 1]


def comparable(arch: Arch, unit: list[str]) -> dict:
    """Every field of every level, with constraints in their canonical (meaningful) form."""
    out = asdict(arch)
    out.pop("name")
    for lvl, raw in zip(arch.levels, out["levels"], strict=True):
        raw["constraints"] = canonical(lvl.constraints, unit)
    return out


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_v04_arch_yaml_equals_native_timeloop_input(case: str) -> None:
    case_dir = REFERENCE / "cases" / case
    unit = unit_dims(case_dir)
    v04 = load_arch(case_dir / "inputs/arch.yaml")
    native = load_arch(case_dir / "mapper/timeloop_input.yaml")
    assert [lvl.name for lvl in v04.levels] == [lvl.name for lvl in native.levels]
    assert comparable(v04, unit) == comparable(native, unit)


@needs_shared
def test_v04_inserts_dummy_spatial_levels_with_timeloopfe_constraints(reference_dir: Path) -> None:
    arch = load_arch(reference_dir / "cases/nvdla_like__fc_512x1000/inputs/arch.yaml")
    lane = arch.level("inter_lane_spatial")
    assert lane.dummy and lane.instances == 8 and (lane.mesh_x, lane.mesh_y) == (1, 8)
    assert lane.constraints.bypass == ("Weights", "Inputs", "Outputs")
    assert all(f == ("=", 1) for f in lane.constraints.temporal_factors.values())
    # timeloopfe pins factor-1 dims innermost: Timeloop string "QPSRMC" -> outermost-first
    assert lane.constraints.spatial_permutation == ("C", "M", "R", "S", "P", "Q", "N", "G")
    # !Parallel branches bypass what their siblings keep (the !Nothing keeps Outputs)
    assert set(arch.level("weight_reg").constraints.bypass) == {"Inputs", "Outputs"}
    sdp = arch.level("sdp")
    assert sdp.dummy and sdp.depth == 0 and sdp.technology == "7nm"
    assert arch.level("DRAM").technology is None and arch.technology == "7nm"


def _copy_case(tmp_path: Path, case: str = "eyeriss_like__resnet18_conv1") -> Path:
    src = REFERENCE / "cases" / case / "inputs"
    dst = tmp_path / "inputs"
    shutil.copytree(src, dst)
    return dst / "arch.yaml"


@needs_shared
@pytest.mark.parametrize("old, new, field", [
    ("depth: 16384", "depth: 0", "shared_glb.depth"),
    ("depth: 192", "depth: -192", "weights_spad.depth"),
    ("      depth: 16384\n", "", "shared_glb.attributes.depth"),
    ("class: smartbuffer_RF", "class: smartbuffer_XYZ", "ifmap_spad.class"),
    ("spatial: {meshX: 14}", "spatial: {meshX: 0}", "spatial.meshX"),
    ("name: shared_glb", "name: [shared_glb", "line"),
])
def test_bad_v04_input_names_file_and_field(tmp_path: Path, old: str, new: str, field: str
                                            ) -> None:
    path = _copy_case(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_arch(path)
    assert "arch.yaml" in str(err.value) and field in str(err.value)


@needs_shared
def test_v04_attribute_expressions_use_variables(tmp_path: Path) -> None:
    path = _copy_case(tmp_path)
    text = path.read_text().replace("depth: 16384", "depth: glb_kb * 1024 // 8 * 8")
    path.write_text("variables: {glb_kb: 16}\n" + text)
    assert load_arch(path).level("shared_glb").depth == 16384


def test_expression_evaluator_allows_arithmetic_only() -> None:
    scope = {"depth": 12, "width": 16}
    assert evaluate("max(1, ceil(log2(depth))) if depth >= 1 else 1", scope) == 4
    assert evaluate("width * depth / max(32, width)", scope) == 6.0
    for bad in ("__import__('os')", "depth.__class__", "[1, 2]", "lambda: 1", "open('x')"):
        with pytest.raises(ExpressionError):
            evaluate(bad, scope)


V04_MINIMAL = """
architecture:
  version: 0.4
  nodes:
  - !Container {name: system, attributes: {technology: "45nm"}}
  - !Component {name: DRAM, class: DRAM, attributes: {width: 64, datawidth: 8}}
  - !Component
    name: buf
    class: SRAM
    attributes: {depth: "buf_kb * 1024 * 8 // 64", width: 64, datawidth: 8, n_banks: 4}
  - !Container {name: PE, spatial: {meshX: 4, meshY: 2}}
  - !Component
    name: rf
    class: regfile
    spatial: {meshX: 2}
    attributes: {depth: 16, width: 8, datawidth: 8}
  - !Component {name: alu, class: my_mac, attributes: {width: 8}}
variables: {buf_kb: 32}
"""


def test_v04_compound_mac_by_position_and_leaf_fanout(tmp_path: Path) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "my_mac.yaml").write_text(
        "compound_components:\n  version: 0.4\n  classes:\n"
        "  - {name: my_mac, attributes: {width: must_specify}, subcomponents: [], actions: []}\n")
    path = tmp_path / "arch.yaml"
    path.write_text(V04_MINIMAL)
    arch = load_arch(path)
    assert [lvl.name for lvl in arch.levels] == ["DRAM", "buf", "inter_PE_spatial", "rf"]
    assert arch.level("buf").depth == 4096 and arch.level("buf").n_banks == 4
    assert arch.level("inter_PE_spatial").instances == 1
    rf = arch.level("rf")
    assert (rf.instances, rf.mesh_x, rf.mesh_y) == (16, 8, 2)
    assert arch.compute.name == "alu" and arch.compute.instances == 16
    assert arch.compute.technology == "45nm" and arch.level("DRAM").technology == "45nm"
    path.write_text(V04_MINIMAL.replace("attributes: {width: 8}", "attributes: {}"))
    with pytest.raises(InputError, match="alu.attributes.width"):
        load_arch(path)
