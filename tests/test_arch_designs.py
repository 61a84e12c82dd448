"""Shipped designs equal the reference designs in every parameter, in every input form."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import CASES, REFERENCE, needs_shared
from test_arch_v04 import comparable, unit_dims

from dse.arch import list_designs, write_native
from dse.arch import load_arch as _load_arch
from dse.errors import InputError

SHIPPED = ["eyeriss_like", "nvdla_like", "simple_output_stationary", "simple_weight_stationary"]


def load_arch(source):
    """Structure only: these tests compare what the specs say, not energy estimates."""
    return _load_arch(source, energy="none")


def test_list_designs_names_the_four_shipped_designs() -> None:
    assert set(SHIPPED) <= set(list_designs())


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_shipped_design_equals_reference_arch_and_native_input(case: str) -> None:
    case_dir = REFERENCE / "cases" / case
    design = load_arch(case.split("__")[0])
    v04 = load_arch(case_dir / "inputs/arch.yaml")
    native = load_arch(case_dir / "mapper/timeloop_input.yaml")
    assert asdict(design) == asdict(v04)  # exactly, constraint spelling included
    unit = unit_dims(case_dir)
    assert comparable(design, unit) == comparable(native, unit)


@pytest.mark.parametrize("name", SHIPPED)
def test_write_native_of_a_design_reloads_to_the_same_arch(name: str, tmp_path: Path) -> None:
    arch = load_arch(name)
    again = load_arch(write_native(arch, tmp_path / f"{name}.yaml"))
    again.name = arch.name
    assert asdict(again) == asdict(arch)


def test_design_by_directory_and_file_path() -> None:
    by_name = load_arch("eyeriss_like")
    path = Path(__file__).resolve().parents[1] / "designs" / "eyeriss_like"
    assert asdict(load_arch(path)) == asdict(by_name)
    assert asdict(load_arch(path / "design.yaml")) == asdict(by_name)


def test_unknown_design_name_lists_the_shipped_ones() -> None:
    with pytest.raises(InputError, match="eyeriss_like"):
        load_arch("no_such_design")


@pytest.mark.parametrize("old, new, field", [
    ("    depth: 192\n", "    depth: 0\n", "weights_spad.depth"),
    ("    class: smartbuffer_RF\n    depth: 12", "    class: magic_RF\n    depth: 12",
     "ifmap_spad.class"),
    ("    depth: 16384\n", "", "shared_glb.depth"),
    ("    width: 64\n    word_bits: 8\n    banks: 32", "    widht: 64\n    word_bits: 8\n"
     "    banks: 32", "widht"),
    ("mesh_x: 14", "mesh_x: -14", "meshX"),
])
def test_bad_design_file_names_file_and_field(tmp_path: Path, old: str, new: str, field: str
                                              ) -> None:
    src = Path(__file__).resolve().parents[1] / "designs" / "eyeriss_like" / "design.yaml"
    text = src.read_text()
    assert old in text
    path = tmp_path / "design.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_arch(path)
    assert "design.yaml" in str(err.value) and field in str(err.value)
