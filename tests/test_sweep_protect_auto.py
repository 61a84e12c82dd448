"""``sweep --protect auto``: the level with the largest measured SDC FIT share gets SEC-DED, per
design, and the variant is swept beside the design (re-mapped, re-scored by injection)."""

from __future__ import annotations

import argparse

import pytest

from dse.cli.sweep import add_sweep_flags, config_from_args
from dse.errors import InputError
from dse.sweep import ModelSpec, SweepConfig
from dse.sweep.config import FaultSettings, MapperSettings
from dse.sweep.protect_auto import choose_level, level_shares, run_protect_auto


def _stratum(level: str, dataspace: str, mbit: float, mean: float, n: int = 10) -> dict:
    return {"level": level, "dataspace": dataspace, "mbit": mbit, "n": n,
            "sdc": [mean * n, mean * n]}


def test_level_shares_weigh_layers_by_cycles_and_leave_the_mac_out() -> None:
    rows = [
        {"point": "d", "model": "m", "rank": 0, "cycles": 300, "count": 1,
         "strata": [_stratum("glb", "Inputs", 2.0, 0.1), _stratum("spad", "Weights", 1.0, 0.2),
                    _stratum("mac", "MAC", 5.0, 0.5)]},
        {"point": "d", "model": "m", "rank": 0, "cycles": 100, "count": 1,
         "strata": [_stratum("spad", "Outputs", 4.0, 0.25)]},
        {"point": "d", "model": "m", "rank": 1, "cycles": 1, "count": 1,  # not the min-EDP one
         "strata": [_stratum("glb", "Inputs", 100.0, 1.0)]},
        {"point": "other", "model": "m", "rank": 0, "cycles": 1, "count": 1,
         "strata": [_stratum("glb", "Inputs", 100.0, 1.0)]},
    ]
    glb, spad = 0.75 * 2.0 * 0.1, 0.75 * 1.0 * 0.2 + 0.25 * 4.0 * 0.25
    shares = level_shares(rows, "d")
    assert list(shares) == ["spad", "glb"]  # largest first
    assert shares["spad"] == pytest.approx(spad / (glb + spad))
    assert shares["glb"] == pytest.approx(glb / (glb + spad))
    assert level_shares([{**r, "strata": None} for r in rows], "d") == {}


def test_choose_level_skips_levels_that_cannot_take_secded() -> None:
    assert choose_level("eyeriss_like", {}, {"DRAM": 0.7, "shared_glb": 0.2, "psum_spad": 0.1}) \
        == "shared_glb"
    assert choose_level("eyeriss_like", {}, {"DRAM": 1.0}) is None
    assert choose_level("eyeriss_like", {}, {"shared_glb": 0.0}) is None  # nothing failed


def _args(*flags: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_sweep_flags(p)
    return p.parse_args(["--arch", "eyeriss_like", *flags])


def test_protect_auto_is_alone_and_only_for_the_sweep() -> None:
    config = config_from_args(_args("--protect", "auto"), protect_auto=True)
    assert "protect" not in config.grid
    with pytest.raises(InputError, match="alone"):
        config_from_args(_args("--protect", "auto", "--protect", "shared_glb=secded"),
                         protect_auto=True)
    with pytest.raises(InputError, match="dse sweep"):
        config_from_args(_args("--protect", "auto"))


def test_protect_auto_sweeps_the_top_level_protected_beside_the_design(tmp_path) -> None:
    config = SweepConfig(
        name="auto", designs=["nvdla_like"], models=[ModelSpec("digits_cnn")],
        mapper=MapperSettings(budget=60, time_limit=30.0),
        resilience=FaultSettings(pareto=False, top_k=0, images=4, precision=0.9,
                                 max_faults=150),
        executor="inprocess", workers=1, output=str(tmp_path))
    result = run_protect_auto(config, progress=False)
    points = {n["point"] for n in result.network}
    protected = [p for p in points if "protect=" in p]
    assert len(protected) == 1 and "nvdla_like" in points
    level = protected[0].split("protect=")[1].split("=")[0]
    shares = level_shares(result.rows_with_strata(), "nvdla_like")
    assert level == next(iter(shares))
    assert any(f"{level}=secded" in n for n in result.notes)
    # every single-bit fault in the protected level is corrected: that level shows no SDC
    for row in result.rows_with_strata():
        if row["point"] == protected[0]:
            assert all(s["sdc"][0] == 0 for s in row["strata"] if s["level"] == level)
