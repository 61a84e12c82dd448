"""Protection what-ifs on designs: check-bit counts, energy/area re-estimation, bad plans."""

from __future__ import annotations

import pytest

from dse.arch import load_arch, make_variant
from dse.arch.energy import storage_energy
from dse.arch.protection import SCHEMES, physical_width, protect, secded_check_bits
from dse.errors import InputError


def test_secded_check_bits_match_the_hamming_bound() -> None:
    # 2^r >= k + r + 1, plus one overall parity bit: the textbook (13,8), (22,16), (39,32), (72,64)
    assert [secded_check_bits(k) for k in (8, 16, 32, 64)] == [5, 6, 7, 8]


def test_protected_level_costs_its_physical_width_and_keeps_its_geometry() -> None:
    arch = load_arch("eyeriss_like")
    glb = arch.level("shared_glb")
    out = protect(arch, {"shared_glb": "secded"})
    new = out.level("shared_glb")
    assert (new.width, new.word_bits, new.depth) == (glb.width, glb.word_bits, glb.depth)
    assert physical_width(glb, SCHEMES["secded"]) == glb.block_size * (glb.word_bits + 5)
    wide = type(glb)(**{**glb.__dict__, "width": physical_width(glb, SCHEMES["secded"])})
    tech = glb.technology or arch.technology
    ratio = storage_energy(wide, tech)["read"] / storage_energy(glb, tech)["read"]
    assert new.energy["read"] == pytest.approx(glb.energy["read"] * ratio, rel=1e-6)
    assert new.energy["read"] > glb.energy["read"] and new.area_um2 > glb.area_um2
    assert new.attributes["protection"] == "secded"
    assert arch.level("shared_glb").attributes.get("protection") is None  # original untouched


def test_block_code_is_cheaper_than_per_word_code() -> None:
    arch = load_arch("eyeriss_like")
    word = protect(arch, {"shared_glb": "secded"}).level("shared_glb")
    block = protect(arch, {"shared_glb": "secded_block"}).level("shared_glb")
    assert block.energy["read"] < word.energy["read"] and block.area_um2 < word.area_um2


def test_tmr_triples_a_register_and_is_refused_on_an_sram() -> None:
    arch = load_arch("eyeriss_like")
    spad = arch.level("weights_spad")
    out = protect(arch, {"weights_spad": "tmr"}).level("weights_spad")
    assert out.energy["read"] == pytest.approx(3 * spad.energy["read"], rel=1e-5)
    assert out.area_um2 == pytest.approx(3 * spad.area_um2, rel=1e-5)
    with pytest.raises(InputError, match="registers"):
        protect(arch, {"shared_glb": "tmr"})


@pytest.mark.parametrize("plan, match", [
    ({"no_such_level": "secded"}, "no level"),
    ({"shared_glb": "hamming7"}, "unknown protection"),
    ({"DRAM": "secded"}, "cannot take protection"),
])
def test_bad_protection_plan_is_one_input_error_naming_the_field(plan, match) -> None:
    with pytest.raises(InputError, match=match) as err:
        protect(load_arch("eyeriss_like"), plan)
    assert err.value.field == f"protect.{next(iter(plan))}"


def test_protection_is_a_variant_dimension_with_its_own_name() -> None:
    arch = load_arch("nvdla_like")
    level = next(lv.name for lv in arch.levels if lv.component_class not in ("DRAM", "dummy_storage")
                 and lv.depth)
    out = make_variant(arch, protect=f"{level}=parity")
    assert out.name == f"nvdla_like[{level}=parity]"
    assert out.level(level).energy["read"] > arch.level(level).energy["read"]
    with pytest.raises(InputError):
        make_variant(arch, protect="oops")


def test_designs_show_lists_the_protected_level_energy_and_area(capsys) -> None:
    import json

    from dse.cli import main

    assert main(["designs", "show", "eyeriss_like", "--json"]) == 0
    plain = {lv["name"]: lv for lv in json.loads(capsys.readouterr().out)["levels"]}
    assert main(["designs", "show", "eyeriss_like", "--design-variant",
                 "protect=shared_glb=secded", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    glb = {lv["name"]: lv for lv in doc["levels"]}["shared_glb"]
    assert glb["attributes"]["protection"] == "secded"
    assert glb["energy"]["read"] > plain["shared_glb"]["energy"]["read"]
    assert glb["area_um2"] > plain["shared_glb"]["area_um2"]
    assert main(["designs", "show", "eyeriss_like", "--design-variant",
                 "protect=shared_glb=hamming"]) == 2
    assert "protect.shared_glb" in capsys.readouterr().err


def test_sweep_protect_flag_adds_protected_variants_beside_the_design() -> None:
    import argparse

    from dse.cli.sweep import add_sweep_flags, config_from_args

    p = argparse.ArgumentParser()
    add_sweep_flags(p)
    args = p.parse_args(["--arch", "eyeriss_like", "--protect", "shared_glb=secded",
                         "--protect", "weights_spad=tmr"])
    config = config_from_args(args)
    params = config.variant_params()
    assert [v["protect"] for v in params] == ["none", "shared_glb=secded", "weights_spad=tmr"]
    arch = load_arch("eyeriss_like")
    names = [make_variant(arch, **v).name for v in params]
    assert names[1:] == ["eyeriss_like[shared_glb=secded]", "eyeriss_like[weights_spad=tmr]"]
    assert make_variant(arch, protect="none").level("shared_glb").energy == \
        make_variant(arch).level("shared_glb").energy
