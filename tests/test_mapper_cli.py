"""``python -m dse map``: JSON fields, map.yaml output a model re-reads, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REFERENCE, REPO, needs_shared

from dse.arch import apply_ert, load_arch, read_ert, write_native
from dse.arch.spec import Constraints
from dse.model import evaluate, read_mapping
from dse.problems import read_problem

CASE = REFERENCE / "cases" / "simple_weight_stationary__fc_512x1000"


def run_map(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", "map", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


@needs_shared
def test_json_has_the_model_fields_and_the_search_counts(tmp_path: Path) -> None:
    arch_file = CASE / "mapper" / "timeloop_input.yaml"
    ert = CASE / "mapper" / "timeloop-mapper.ERT.yaml"
    problem_file = CASE / "inputs" / "problem.yaml"
    out = run_map("--arch", str(arch_file), "--ert", str(ert), "--problem", str(problem_file),
              "--search", "hybrid", "--time-limit", "3", "--workers", "1", "--seed", "0",
              "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"energy_pJ", "cycles", "utilization", "macs", "edp", "levels", "wall_s", "visited",
            "valid"} <= set(doc)
    assert doc["macs"] == 512000 and 0 < doc["valid"] <= doc["visited"]
    # the written map.yaml is a Timeloop mapping that the model scores to the same numbers,
    # and it beats the reference mapper's EDP (2.167 J*cycle on this case)
    problem = read_problem(problem_file)
    arch = apply_ert(load_arch(arch_file), read_ert(ert))
    stats = evaluate(problem, arch, read_mapping(tmp_path / "map.yaml", arch, problem))
    assert (stats.energy_pJ, stats.cycles) == (doc["energy_pJ"], doc["cycles"])
    assert doc["edp"] < 2.1673117286399997
    assert json.loads((tmp_path / "mapper.json").read_text())["edp"] == doc["edp"]


@needs_shared
def test_impossible_factor_constraint_is_one_line_naming_it_exit_2(tmp_path: Path) -> None:
    arch = load_arch(CASE / "mapper" / "timeloop_input.yaml")
    glb = arch.level("shared_glb")
    glb.constraints = Constraints(temporal_factors={"M": ("=", 7)})
    write_native(arch, tmp_path / "arch.yaml")
    out = run_map("--arch", str(tmp_path / "arch.yaml"), "--problem",
              str(CASE / "inputs" / "problem.yaml"), "--time-limit", "5")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "M=1000" in lines[0] and "shared_glb temporal M=7" in lines[0]


def test_malformed_objective_names_the_flag(tmp_path: Path) -> None:
    problem = tmp_path / "p.yaml"
    problem.write_text(yaml.safe_dump({"problem": {"shape": "cnn-layer"}}))
    out = run_map("--arch", "simple_weight_stationary", "--problem", str(problem),
              "--objective", "energy=fast")
    assert out.returncode == 2
    assert "--objective" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_map_reports_the_area_and_node_the_sweep_store_reports() -> None:
    """``dse map`` reads area and node off the Arch (no sweep import); same figures as the store."""
    from dse.arch import load_arch
    from dse.cli.map import design_facts
    from dse.sweep.hashing import to_plain
    from dse.sweep.store import point_facts

    for name in ("eyeriss_like", "nvdla_like", "simple_weight_stationary",
                 "simple_output_stationary"):
        arch = load_arch(name)
        assert design_facts(arch) == point_facts(to_plain(arch))
