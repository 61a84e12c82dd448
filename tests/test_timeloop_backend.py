"""The real-Timeloop backend: the inputs it writes re-load to the same design and layer, and it
parses what the binary leaves behind. Timeloop is not installable here, so the binary is replaced by
a script that only checks its inputs exist and leaves a real Timeloop ``stats.txt`` in place."""

from __future__ import annotations

import os
import stat

import pytest

from dse.arch import load_arch
from dse.errors import DseError
from dse.model import timeloop
from dse.model.mapfile import parse_stats_txt, read_mapping
from dse.problems import conv_problem, read_problem
from tests.conftest import REFERENCE, needs_shared

CASE = REFERENCE / "cases" / "eyeriss_like__resnet18_conv1"


def _same_design(a, b) -> None:
    assert [lvl.name for lvl in a.levels] == [lvl.name for lvl in b.levels]
    for x, y in zip(a.levels, b.levels, strict=True):
        assert (x.instances, x.mesh_x, x.mesh_y, x.depth, x.width, x.word_bits) == (
            y.instances, y.mesh_x, y.mesh_y, y.depth, y.width, y.word_bits)
        for action in ("read", "write", "update"):
            assert x.energy.get(action) == pytest.approx(y.energy.get(action), rel=1e-9)
    assert a.compute.energy["compute"] == pytest.approx(b.compute.energy["compute"], rel=1e-9)


def test_written_inputs_reload_to_the_same_design_energies_and_layer(tmp_path):
    arch = load_arch("eyeriss_like")
    problem = conv_problem(C=3, M=64, R=7, S=7, P=112, Q=112, Wstride=2, Hstride=2, Hdilation=2)
    timeloop.write_inputs(problem, arch, tmp_path)
    _same_design(load_arch(tmp_path / "arch.yaml"), arch)
    assert read_problem(tmp_path / "problem.yaml") == problem


def test_missing_binary_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not timeloop.available()
    with pytest.raises(DseError, match="not on PATH"):
        timeloop.search(conv_problem(C=4, M=4), load_arch("eyeriss_like"), tmp_path / "w")


@needs_shared
def test_model_run_hands_over_all_inputs_and_parses_timeloops_stats(tmp_path, monkeypatch):
    real = CASE / "model" / "timeloop-model.stats.txt"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "timeloop-model"
    script.write_text(
        "#!/bin/sh\nfor f in \"$@\"; do test -s \"$f\" || exit 3; done\n"
        f"cp '{real}' timeloop-model.stats.txt\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    arch = load_arch("eyeriss_like")
    problem = read_problem(CASE / "inputs" / "problem.yaml")
    mapping = read_mapping(CASE / "model" / "mapping.yaml", arch, problem)
    stats = timeloop.evaluate(problem, arch, mapping, tmp_path / "run")
    expected = parse_stats_txt(real)
    assert (stats.cycles, stats.energy_pJ) == (expected.cycles, expected.energy_pJ)
    assert read_mapping(tmp_path / "run" / "map.yaml", arch, problem) == mapping


def test_evaluate_cli_without_timeloop_on_path_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    from dse.model import write_mapping
    from dse.model.mapping import LevelMapping, Mapping
    from dse.problems import write_problem

    problem = conv_problem(C=1, M=1)
    arch = load_arch("simple_weight_stationary")
    write_problem(problem, tmp_path / "p.yaml")
    write_mapping(Mapping([LevelMapping(lvl.name) for lvl in arch.levels]), tmp_path / "m.yaml",
                  problem)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    proc = subprocess.run([sys.executable, "-m", "dse", "evaluate", "--arch",
                           "simple_weight_stationary", "--problem", str(tmp_path / "p.yaml"),
                           "--mapping", str(tmp_path / "m.yaml"), "--backend", "timeloop",
                           "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "timeloop-model is not on PATH" in proc.stderr
