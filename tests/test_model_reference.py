"""The builtin model reproduces real Timeloop v3.0.3 runs (../shared/reference/timeloop).

Every case is checked the same way, with the case's own architecture and ERT: energy and cycles
against summary.csv (model rows), every per-level count against levels.csv, and the run's own
stats.txt, tiles and partitions included. The E-runs of WORKED_EXAMPLE.md (real timeloop-model
runs on edited mappings) pin the loop-order rules the 20 cases alone cannot tell apart.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from functools import cache

import pytest
from conftest import CASES, REFERENCE, needs_shared

from dse.arch import apply_ert, load_arch, read_ert
from dse.model import analyze, evaluate, parse_stats_txt, read_map_txt, read_mapping
from dse.model.mapfile import read_stats_fields
from dse.model.mapping import Loop
from dse.problems import read_problem


@cache
def _case(case: str, run: str = "model", spec: str = "native"):
    """(root, problem, arch, mapping, file prefix) of one run; ``spec`` picks the native
    timeloop_input.yaml of the run or the v0.4 inputs/arch.yaml (with components/)."""
    root = REFERENCE / "cases" / case
    prefix = "timeloop-model" if run == "model" else "timeloop-mapper"
    problem = read_problem(root / "inputs" / "problem.yaml")
    arch_file = (root / run / "timeloop_input.yaml" if spec == "native"
                 else root / "inputs" / "arch.yaml")
    arch = apply_ert(load_arch(arch_file), read_ert(root / run / f"{prefix}.ERT.yaml"))
    mapping_file = root / run / ("mapping.yaml" if run == "model" else f"{prefix}.map.yaml")
    return root, problem, arch, read_mapping(mapping_file, arch, problem), prefix


@cache
def _table(name: str) -> list[dict[str, str]]:
    with open(REFERENCE / name) as fh:
        return list(csv.DictReader(fh))


@needs_shared
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("spec", ["native", "v04"])
def test_energy_cycles_and_counts_equal_timeloop(case, spec):
    root, problem, arch, mapping, _ = _case(case, "model", spec)
    stats = evaluate(problem, arch, mapping)
    summary = next(r for r in _table("summary.csv") if r["case"] == case and r["tool"] == "model")
    assert stats.energy_pJ == pytest.approx(float(summary["energy_pJ"]), rel=5e-3)
    assert stats.cycles == pytest.approx(int(summary["cycles"]), rel=5e-3)
    assert stats.utilization == pytest.approx(float(summary["utilization"]), abs=5e-7)
    assert stats.macs == int(summary["macs"])
    rows = {(r["level"], r["dataspace"]): r for r in _table("levels.csv")
            if r["case"] == case and r["tool"] == "model"}
    mac = rows.pop(("mac", "(compute)"))
    assert stats.mac_instances == int(mac["instances"])
    assert stats.mac_energy_pJ == pytest.approx(float(mac["energy_pJ"]), abs=0.01)
    got = {(ls.level, ls.dataspace): ls for ls in stats.levels}
    assert set(got) == set(rows)
    for key, row in rows.items():
        ls = got[key]
        assert (ls.instances, ls.reads, ls.updates, ls.fills) == (
            int(row["instances"]), int(row["reads"]), int(row["updates"]), int(row["fills"])), key
        assert ls.energy_pJ == pytest.approx(float(row["energy_pJ"]), abs=0.01, rel=1e-9), key
    level_sum = float(mac["energy_pJ"]) + sum(float(r["energy_pJ"]) for r in rows.values())
    assert stats.energy_pJ == pytest.approx(level_sum, rel=1e-9)


@needs_shared
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("run", ["model", "mapper"])
def test_stats_txt_tiles_and_partitions_equal_the_run(case, run):
    root, problem, arch, mapping, prefix = _case(case, run)
    stats = evaluate(problem, arch, mapping)
    real = parse_stats_txt(root / run / f"{prefix}.stats.txt")
    assert (stats.cycles, stats.macs, stats.mac_instances) == (
        real.cycles, real.macs, real.mac_instances)
    assert stats.energy_pJ == pytest.approx(real.energy_pJ, rel=1e-9)
    assert sorted((s.level, s.dataspace, s.instances, s.reads, s.updates, s.fills)
                  for s in stats.levels) == sorted(
        (s.level, s.dataspace, s.instances, s.reads, s.updates, s.fills) for s in real.levels)
    nest = analyze(problem, arch, mapping)
    _, fields, _ = read_stats_fields(root / run / f"{prefix}.stats.txt")
    for level, per_ds in fields.items():
        for ds, f in per_ds.items():
            assert nest.tiles[(level, ds)] == int(f["Utilized capacity"]), (level, ds)
            assert nest.partitions[(level, ds)] == int(f["Partition size"]), (level, ds)
    printed, tiles = read_map_txt(root / run / f"{prefix}.map.txt")
    assert [(lm.level, lm.temporal, lm.spatial, lm.keep) for lm in printed.levels] == [
        (lm.level, lm.temporal, lm.spatial, lm.keep) for lm in mapping.levels]
    assert tiles == {lm.level: {ds: nest.tiles[(lm.level, ds)] for ds in lm.keep}
                     for lm in mapping.levels}


def _counts(stats, level, ds):
    ls = stats.get(level, ds)
    return ls.reads, ls.updates, ls.fills


def _set_temporal(mapping, level, loops):
    mapping.level(level).temporal = [Loop(d, f) for d, f in loops]


WS_CONV = "simple_weight_stationary__resnet18_l1_conv3x3"
EYERISS_CONV = "eyeriss_like__resnet18_l1_conv3x3"
EYERISS_ASPP = "eyeriss_like__aspp_dil12_3x3"


@needs_shared
def test_halo_reuse_when_the_window_loop_is_innermost_e1():
    """E1: DRAM C outer, Q inner: every input fetched once; outputs now spill per C step."""
    if WS_CONV not in CASES:
        pytest.skip(f"{WS_CONV} not in the reference set")
    _, problem, arch, mapping, _ = _case(WS_CONV)
    mapping = read_mapping(REFERENCE / "cases" / WS_CONV / "model" / "mapping.yaml", arch, problem)
    _set_temporal(mapping, "DRAM", [("C", 8), ("Q", 4)])
    stats = evaluate(problem, arch, mapping)
    assert _counts(stats, "DRAM", "Inputs")[0] == 215296
    assert _counts(stats, "DRAM", "Weights")[0] == 36864
    assert _counts(stats, "DRAM", "Outputs")[:2] == (1404928, 1605632)
    assert stats.fJ_per_mac / 1000 == pytest.approx(10.147, abs=5e-4)


@needs_shared
def test_irrelevant_loop_between_tile_and_window_loop_kills_halo_reuse_e5():
    """E5: an M2 loop inside Q4 at DRAM resets the remembered stride: full tiles again."""
    if WS_CONV not in CASES:
        pytest.skip(f"{WS_CONV} not in the reference set")
    _, problem, arch, _, _ = _case(WS_CONV)
    mapping = read_mapping(REFERENCE / "cases" / WS_CONV / "model" / "mapping.yaml", arch, problem)
    _set_temporal(mapping, "DRAM", [("C", 8), ("Q", 4), ("M", 2)])
    pe = mapping.level("pe_spad")
    pe.temporal = [Loop(lp.dim, 8 if lp.dim == "M" else lp.factor) for lp in pe.temporal]
    assert _counts(evaluate(problem, arch, mapping), "DRAM", "Inputs")[0] == 237568


@needs_shared
def test_dilation_one_window_steps_reuse_columns_e2():
    """E2: the aspp mapping with dilation 1: R steps bring one new column of three."""
    if EYERISS_ASPP not in CASES:
        pytest.skip(f"{EYERISS_ASPP} not in the reference set")
    _, problem, arch, mapping, _ = _case(EYERISS_ASPP)
    problem = replace(problem, coefficients={**problem.coefficients, "Wdilation": 1,
                                             "Hdilation": 1})
    stats = evaluate(problem, arch, mapping)
    assert _counts(stats, "DRAM", "Inputs")[0] == 7884800
    assert _counts(stats, "shared_glb", "Inputs")[0] == 80289792
    assert analyze(problem, arch, mapping).partitions[("ifmap_spad", "Inputs")] == 125440


@needs_shared
def test_two_iteration_extrapolation_is_reproduced_e4():
    """E4: P split over two nested loops; Timeloop's extrapolated walk counts 84 fills a sweep."""
    if EYERISS_CONV not in CASES:
        pytest.skip(f"{EYERISS_CONV} not in the reference set")
    _, problem, arch, mapping, _ = _case(EYERISS_CONV)
    mapping = read_mapping(REFERENCE / "cases" / EYERISS_CONV / "model" / "mapping.yaml", arch,
                           problem)
    plan = {"psum_spad": [("M", 16)], "weights_spad": [("R", 3)], "ifmap_spad": [],
            "inter_PE_spatial": [("P", 4)], "inter_PE_column_spatial": [("P", 14)],
            "shared_glb": [], "DRAM": [("C", 64), ("M", 4), ("Q", 56), ("S", 3)]}
    for lm in mapping.levels:
        lm.spatial = []
        _set_temporal(mapping, lm.level, plan[lm.level])
    assert _counts(evaluate(problem, arch, mapping), "ifmap_spad", "Inputs")[2] == 3612672
    # the same run with TIMELOOP_DISABLE_TEMPORAL_EXTRAPOLATION=1: 58 fills a sweep
    exact = evaluate(problem, arch, mapping, extrapolate=False)
    assert _counts(exact, "ifmap_spad", "Inputs")[2] == 2494464
