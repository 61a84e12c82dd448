"""``dse designs`` end to end: listing, showing, and one-line errors with exit 2. The main paths
run as real subprocesses; the many bad-input variants run through the same ``main`` in-process
(a subprocess costs ~2 s of imports each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dse.cli import main

DESIGNS = Path(__file__).resolve().parents[1] / "designs"


def dse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", "designs", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_designs_lists_the_shipped_designs() -> None:
    done = dse()
    assert done.returncode == 0
    for name in ("eyeriss_like", "nvdla_like", "simple_output_stationary",
                 "simple_weight_stationary"):
        assert name in done.stdout
    assert "14x12" in done.stdout


def test_show_prints_levels_fanouts_constraints_and_energies(
        capsys: pytest.CaptureFixture) -> None:
    assert main(["designs", "show", "eyeriss_like"]) == 0
    out = capsys.readouterr().out
    assert "inter_PE_column_spatial" in out and "14x1" in out and "1x12" in out
    assert "keep Inputs,Outputs; bypass Weights" in out
    assert "18.1838" in out  # shared_glb read energy, pJ per access
    assert "energies: builtin" in out


def test_show_json_round_trips_the_arch_fields(capsys: pytest.CaptureFixture) -> None:
    assert main(["designs", "show", "nvdla_like", "--json", "--design-variant", "pe_y=4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["compute"]["instances"] == 32
    glb = next(lvl for lvl in data["levels"] if lvl["name"] == "cbuf")
    assert glb["depth"] == 8192 and glb["capacity_words"] == 8192 * 8
    assert glb["energy"]["read"] > 0


def test_native_writes_a_file_timeloop_reads(tmp_path: Path) -> None:
    out = tmp_path / "eyeriss.yaml"
    assert main(["designs", "native", "eyeriss_like", "-o", str(out)]) == 0
    text = out.read_text()
    assert "ifmap_spad[1..168]" in text and "architecture_constraints" in text


def _design_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (DESIGNS / name / "design.yaml").read_text()
    assert old in text
    path = tmp_path / "bad_design.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_yaml_syntax_error_is_one_line_exit_2_in_a_subprocess(tmp_path: Path) -> None:
    path = _design_with(tmp_path, "eyeriss_like", "  - name: shared_glb", "  - name: [shared_glb")
    done = dse("show", str(path))
    assert done.returncode == 2 and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and "bad_design.yaml" in line and "syntax error at line" in line


@pytest.mark.parametrize("old, new, extra, field", [
    ("    depth: 16384\n", "", [], "shared_glb.depth"),
    ("class: smartbuffer_RF", "class: smartbuffer_QQ", [], "ifmap_spad.class"),
    ("    depth: 192\n", "    depth: -5\n", [], "weights_spad.depth"),
    ("    depth: 12\n", "    depth: 0\n", [], "ifmap_spad.depth"),
    ("    depth: 12\n", "    depth: 12\n", ["--design-variant", "depth.psum_spad=0"], "psum_spad"),
])
def test_bad_input_is_one_line_naming_file_and_field(tmp_path: Path, old: str, new: str,
                                                     extra: list[str], field: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    path = _design_with(tmp_path, "eyeriss_like", old, new)
    assert main(["designs", "show", str(path), *extra]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "bad_design.yaml" in lines[0] and field in lines[0]


def test_variant_breaking_a_constraint_is_one_line_exit_2(tmp_path: Path) -> None:
    path = _design_with(tmp_path, "nvdla_like", "factors: [C=1, R=1, S=1, P=1, Q=1, N=1, G=1]",
                        "factors: [M=8, C=1, R=1, S=1, P=1, Q=1, N=1, G=1]")
    assert main(["designs", "show", str(path), "--design-variant", "pe_y=8"]) == 0
    done = dse("show", str(path), "--design-variant", "pe_y=4")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and "bad_design.yaml" in line
    assert "inter_mac_cell_spatial.constraints" in line and "fanout" in line


def test_ert_writes_accelergy_tables_that_load_back(tmp_path: Path) -> None:
    from dse.arch import load_arch

    prefix = tmp_path / "timeloop-model"
    assert main(["designs", "ert", "nvdla_like", "-o", str(prefix)]) == 0
    assert main(["designs", "native", "nvdla_like", "-o", str(tmp_path / "arch.yaml")]) == 0
    built = load_arch("nvdla_like")
    again = load_arch(tmp_path / "arch.yaml")  # picks up the ERT/ART beside it, as Timeloop does
    assert again.energy_source == "ERT file"
    for a, b in zip([*built.levels, built.compute], [*again.levels, again.compute], strict=True):
        assert a.energy == b.energy and a.area_um2 == b.area_um2
