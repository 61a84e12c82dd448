"""The native tree loader against the real Timeloop inputs, the ERT reader, and the writer."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import CASES, REFERENCE, needs_shared

from dse.arch import apply_ert, read_ert, write_native
from dse.arch import load_arch as _load_arch
from dse.errors import InputError

pytestmark = needs_shared


@pytest.mark.parametrize("case", CASES)
def test_hyphen_and_underscore_native_inputs_load_to_the_same_arch(case: str) -> None:
    mapper = REFERENCE / "cases" / case / "mapper"
    hyphen = load_arch(mapper / "timeloop_input.yaml")
    underscore = load_arch(mapper / "parsed-processed-input.yaml")
    assert asdict(hyphen) == asdict(underscore)


def load_arch(source):
    """Structure only: these tests compare what the specs say, not energy estimates."""
    return _load_arch(source, energy="none")


def test_eyeriss_native_levels_instances_and_constraints(reference_dir: Path) -> None:
    case = reference_dir / "cases/eyeriss_like__resnet18_conv1"
    arch = load_arch(case / "mapper/timeloop_input.yaml")
    assert [lvl.name for lvl in arch.levels] == [
        "DRAM", "shared_glb", "inter_PE_column_spatial", "inter_PE_spatial",
        "ifmap_spad", "weights_spad", "psum_spad"]
    assert [lvl.dummy for lvl in arch.levels] == [False, False, True, True, False, False, False]
    assert [lvl.instances for lvl in arch.levels] == [1, 1, 1, 14, 168, 168, 168]
    assert arch.fanout_xy(arch.level_index("inter_PE_spatial")) == (1, 12)
    assert arch.fanout_xy(arch.level_index("inter_PE_column_spatial")) == (14, 1)
    glb = arch.level("shared_glb")
    sizes = (glb.depth, glb.width, glb.word_bits, glb.n_banks, glb.block_size)
    assert sizes == (16384, 64, 8, 32, 8)
    assert glb.read_bandwidth == 16 and glb.technology == "32nm" and arch.technology == "32nm"
    assert arch.level("DRAM").depth is None and arch.level("psum_spad").word_bits == 16
    assert glb.constraints.keep == ("Inputs", "Outputs") and glb.constraints.bypass == ("Weights",)
    pe = arch.level("inter_PE_spatial").constraints
    assert pe.spatial_split == 0 and pe.spatial_permutation[:2] == ("M", "C")  # Timeloop "…CM"
    assert pe.spatial_factors["N"] == ("=", 1)
    assert arch.compute.instances == 168 and arch.compute.word_bits == 8


@pytest.mark.parametrize("case", CASES[::5])
def test_ert_energies_land_on_levels_as_in_ert_summary(case: str) -> None:
    arch = load_arch(REFERENCE / "cases" / case / "mapper/timeloop_input.yaml")
    arch = apply_ert(arch, read_ert(REFERENCE / "cases" / case / "mapper/timeloop-mapper.ERT.yaml"))
    design = case.split("__")[0]
    rows = [r for r in csv.DictReader(open(REFERENCE / "ert_summary.csv")) if r["arch"] == design]
    assert rows
    for r in rows:
        name = r["component"].split("[")[0]
        target = arch.compute if name == arch.compute.name else arch.level(name)
        assert target.energy[r["action"]] == pytest.approx(float(r["energy_pJ"]), abs=1e-9)
    assert arch.energy_source == "ERT file"


@pytest.mark.parametrize("keys", ["hyphen", "underscore"])
@pytest.mark.parametrize("case", CASES[::5])
def test_write_native_round_trips(case: str, keys: str, tmp_path: Path) -> None:
    arch = load_arch(REFERENCE / "cases" / case / "mapper/timeloop_input.yaml")
    out = write_native(arch, tmp_path / "arch.yaml", keys=keys)
    again = load_arch(out)
    again.name = arch.name
    assert asdict(again) == asdict(arch)
    text = out.read_text()
    assert ("multiple-buffering" in text) == (keys == "hyphen")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "native.yaml"
    path.write_text(text)
    return path


GOOD = """
architecture:
  subtree:
  - name: top
    local:
    - {name: DRAM, class: DRAM, attributes: {width: 64, datawidth: 8}}
    - {name: buf, class: SRAM, attributes: {depth: 64, width: 64, datawidth: 8}}
    - {name: "mac[0..15]", class: intmac, attributes: {datawidth: 8, meshX: 4}}
"""


def test_minimal_native_tree_mesh_and_defaults(tmp_path: Path) -> None:
    arch = load_arch(_write(tmp_path, GOOD))
    assert arch.compute.instances == 16 and (arch.compute.mesh_x, arch.compute.mesh_y) == (4, 4)
    assert arch.fanout(1) == 16 and arch.level("buf").capacity_words == 512


def test_v03_nested_subtree_multiplies_instances(tmp_path: Path) -> None:
    text = """
architecture:
  subtree:
  - name: sys
    local: [{name: DRAM, class: DRAM, attributes: {width: 64, datawidth: 8}}]
    subtree:
    - name: "PE[0..11]"
      attributes: {meshX: 4}
      local:
      - {name: spad, class: regfile, attributes: {depth: 16, width: 8, datawidth: 8}}
      - {name: mac, class: intmac, attributes: {datawidth: 8}}
"""
    arch = load_arch(_write(tmp_path, text))
    spad = arch.level("spad")
    assert (spad.instances, spad.mesh_x, spad.mesh_y) == (12, 4, 3)


@pytest.mark.parametrize("bad, field", [
    (GOOD.replace("depth: 64", "depth: 0"), "buf.depth"),
    (GOOD.replace("depth: 64", "depth: -4"), "buf.depth"),
    (GOOD.replace("depth: 64, ", ""), "buf.depth"),
    (GOOD.replace("class: SRAM, ", ""), "buf.class"),
    (GOOD.replace("meshX: 4", "meshX: 5"), "mac.meshX"),
    (GOOD + "  bad: [", "line"),
])
def test_bad_native_input_names_file_and_field(tmp_path: Path, bad: str, field: str) -> None:
    with pytest.raises(InputError) as err:
        load_arch(_write(tmp_path, bad))
    assert "native.yaml" in str(err.value) and field in str(err.value)


def test_v02_style_instances_and_entries_attributes(tmp_path: Path) -> None:
    text = """
architecture:
  subtree:
  - name: sys
    local:
    - {name: DRAM, class: DRAM, attributes: {word-bits: 16, block-size: 4}}
    - name: RF
      class: regfile
      attributes: {instances: 256, meshX: 16, entries: 64, word-bits: 16, block-size: 2}
    - {name: mac, class: intmac, attributes: {instances: 256, meshX: 16, word-bits: 16}}
"""
    arch = load_arch(_write(tmp_path, text))
    rf = arch.level("RF")
    assert (rf.instances, rf.mesh_x, rf.mesh_y) == (256, 16, 16)
    assert (rf.width, rf.depth, rf.capacity_words) == (32, 32, 64)
    assert arch.level("DRAM").width == 64 and arch.compute.word_bits == 16
