"""Design variants: rescaled structure, re-estimated energies, invalid ones rejected."""

from __future__ import annotations

import pytest

from dse.arch import load_arch, make_variant
from dse.arch.spec import Arch
from dse.errors import InputError


def test_pe_array_resize_scales_every_level_below_it() -> None:
    arch = load_arch("eyeriss_like")
    v = make_variant(arch, pe_x=7, pe_y=6)
    assert (v.compute.mesh_x, v.compute.mesh_y, v.compute.instances) == (7, 6, 42)
    assert [lvl.instances for lvl in v.levels] == [1, 1, 1, 7, 42, 42, 42]
    assert v.fanout_xy(v.level_index("inter_PE_column_spatial")) == (7, 1)
    assert v.fanout_xy(v.level_index("inter_PE_spatial")) == (1, 6)
    assert arch.compute.instances == 168  # the original is untouched
    assert v.energy_source == "builtin" and "pe_x=7" in v.name


def test_depth_change_reestimates_that_buffer_only() -> None:
    arch = load_arch("simple_weight_stationary")
    v = make_variant(arch, depths={"shared_glb": 4096}, **{"depth.pe_spad": 64})
    assert v.level("shared_glb").depth == 4096 and v.level("pe_spad").depth == 64
    assert v.level("shared_glb").energy["read"] < arch.level("shared_glb").energy["read"]
    assert v.level("pe_spad").energy["read"] < arch.level("pe_spad").energy["read"]
    assert v.level("DRAM").energy == arch.level("DRAM").energy
    assert v.compute.energy == arch.compute.energy


def test_word_bits_and_technology_change_energies() -> None:
    arch = load_arch("nvdla_like")
    v = make_variant(arch, word_bits=16, technology="45nm")
    assert v.level("cbuf").word_bits == 16 and v.level("cacc").word_bits == 64
    assert v.level("weight_reg").width == 16 and v.level("weight_reg").block_size == 1
    assert v.compute.attributes["multiplier_width"] == 16 and v.technology == "45nm"
    assert v.compute.energy["compute"] > arch.compute.energy["compute"]
    assert v.level("cbuf").energy["read"] > arch.level("cbuf").energy["read"]


def _with_pinned_spatial_factor() -> Arch:
    arch = load_arch("nvdla_like")
    arch.level("inter_mac_cell_spatial").constraints.spatial_factors["M"] = ("=", 8)
    return arch


@pytest.mark.parametrize("kwargs, field", [
    (dict(pe_x=0), "pe_x"),
    (dict(pe_y=-4), "pe_y"),
    (dict(pe_x=2.5), "pe_x"),
    (dict(depths={"shared_glb": 0}), "depths.shared_glb"),
    (dict(depths={"nope": 8}), "depths.nope"),
    (dict(depths={"DRAM": 8}), "depths.DRAM"),
    (dict(technology="fast"), "technology"),
    (dict(banks=4), "banks"),
])
def test_invalid_variants_are_rejected_with_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        make_variant(load_arch("simple_weight_stationary"), **kwargs)
    assert err.value.field == field


def test_variant_that_breaks_a_spatial_constraint_is_rejected() -> None:
    arch = _with_pinned_spatial_factor()
    assert make_variant(arch, pe_y=8).compute.instances == 64
    with pytest.raises(InputError, match="need a fanout of 8") as err:
        make_variant(arch, pe_y=4)
    assert err.value.field == "inter_mac_cell_spatial.constraints"


def test_resizing_one_axis_keeps_the_other() -> None:
    v = make_variant(load_arch("eyeriss_like"), pe_y=3)
    assert (v.compute.mesh_x, v.compute.mesh_y) == (14, 3)
    assert v.level("inter_PE_spatial").instances == 14
