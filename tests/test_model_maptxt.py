"""The printed loop nest (``dse map``) is Timeloop's ``map.txt``, byte for byte."""

from __future__ import annotations

import pytest
from conftest import CASES, needs_shared
from test_model_reference import _case

from dse.model import loop_nest_text, read_map_txt


@needs_shared
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("run", ["model", "mapper"])
def test_loop_nest_text_equals_timeloops_map_txt(case, run, tmp_path):
    root, problem, arch, mapping, prefix = _case(case, run)
    text = loop_nest_text(mapping, problem, arch)
    assert text == (root / run / f"{prefix}.map.txt").read_text()
    (tmp_path / "map.txt").write_text(text)
    back, _ = read_map_txt(tmp_path / "map.txt")
    assert [(lm.level, lm.temporal, lm.spatial) for lm in back.levels] == [
        (lm.level, [lp for lp in lm.temporal if lp.factor > 1],
         [lp for lp in lm.spatial if lp.factor > 1]) for lm in mapping.levels]


@needs_shared
def test_dse_map_prints_the_loop_nest_and_json_carries_the_mapping_and_area(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REFERENCE, REPO

    from dse.arch import apply_ert, load_arch, read_ert
    from dse.model import read_mapping
    from dse.problems import read_problem

    case = REFERENCE / "cases" / "simple_weight_stationary__fc_512x1000"
    arch_file, ert = case / "mapper" / "timeloop_input.yaml", case / "mapper" / "timeloop-mapper.ERT.yaml"
    args = [sys.executable, "-m", "dse", "map", "--arch", str(arch_file), "--ert", str(ert),
            "--problem", str(case / "inputs" / "problem.yaml"), "--search", "hybrid",
            "--time-limit", "3", "--workers", "1", "--victory", "200"]
    done = subprocess.run([*args, "--json", "--out", str(tmp_path)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    nest = doc["mapping"]["loop_nest"]
    assert nest == (tmp_path / "map.txt").read_text() and doc["mapping"]["directives"]
    assert doc["area_mm2"] > 0 and doc["edp_unit"] == "J x cycles"
    arch = apply_ert(load_arch(arch_file), read_ert(ert))
    written = read_mapping(tmp_path / "map.yaml", arch, read_problem(case / "inputs" / "problem.yaml"))
    printed, _ = read_map_txt(tmp_path / "map.txt")
    assert [(lm.level, [lp for lp in lm.temporal if lp.factor > 1]) for lm in written.levels] == [
        (lm.level, lm.temporal) for lm in printed.levels]
    text = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120).stdout
    assert text.startswith("\nDRAM [ ") or text.startswith("DRAM [ ")
    assert "J x cycles" in text and "mm2" in text
