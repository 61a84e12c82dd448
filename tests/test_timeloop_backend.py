"""The real-Timeloop backend: the inputs it writes re-load to the same design and layer, it parses
what the binary leaves behind, and -- where ``timeloop-model`` / ``timeloop-mapper`` are on PATH
(``bash ../shared/tools/timeloop/install.sh``) -- the real binaries agree with the builtin model on
every reference case, on the reference mapping and on dse's own best mapping."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dse.arch import apply_ert, load_arch, read_ert
from dse.arch.native import native_dict
from dse.errors import DseError
from dse.mapper import search
from dse.model import evaluate, timeloop
from dse.model.mapfile import parse_stats_txt, read_mapping
from dse.problems import conv_problem, read_problem
from tests.conftest import CASES, REFERENCE, needs_shared

CASE = REFERENCE / "cases" / "eyeriss_like__resnet18_conv1"
DATA = Path(__file__).parent / "data"


def _same_design(a, b) -> None:
    assert [lvl.name for lvl in a.levels] == [lvl.name for lvl in b.levels]
    for x, y in zip(a.levels, b.levels, strict=True):
        assert (x.instances, x.mesh_x, x.mesh_y, x.depth, x.width, x.word_bits) == (
            y.instances, y.mesh_x, y.mesh_y, y.depth, y.width, y.word_bits)
        for action in ("read", "write", "update"):
            assert x.energy.get(action) == pytest.approx(y.energy.get(action), rel=1e-9)
    assert a.compute.energy["compute"] == pytest.approx(b.compute.energy["compute"], rel=1e-9)


needs_timeloop = pytest.mark.skipif(
    not (timeloop.available() and timeloop.available(timeloop.MAPPER_BINARY)),
    reason="timeloop-model / timeloop-mapper not on PATH (bash ../shared/tools/timeloop/install.sh)")


def test_written_inputs_reload_to_the_same_design_energies_and_layer(tmp_path):
    arch = load_arch("eyeriss_like")
    problem = conv_problem(C=3, M=64, R=7, S=7, P=112, Q=112, Wstride=2, Hstride=2, Hdilation=2)
    timeloop.write_inputs(problem, arch, tmp_path, constraints=True)
    _same_design(load_arch(tmp_path / "arch.yaml"), arch)
    assert read_problem(tmp_path / "problem.yaml") == problem


def test_the_models_input_has_no_constraints_the_mappers_has():
    """v3.0.3's model rejects valid mappings against architecture constraints."""
    arch = load_arch("simple_weight_stationary")
    assert "architecture_constraints" not in native_dict(arch, constraints=False)
    assert native_dict(arch)["architecture_constraints"]["targets"]


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


def _reference_case(case: str, run: str = "model"):
    """The case as given to timeloop-model (no constraints) or timeloop-mapper (``run``)."""
    root = REFERENCE / "cases" / case
    arch = apply_ert(load_arch(root / run / "timeloop_input.yaml"),
                     read_ert(root / run / f"timeloop-{run}.ERT.yaml"))
    problem = read_problem(root / "inputs" / "problem.yaml")
    return root, arch, problem


def _assert_same(real, ours) -> None:
    assert real.cycles == ours.cycles
    assert real.energy_pJ == pytest.approx(ours.energy_pJ, rel=1e-6)


@needs_shared
@needs_timeloop
def test_real_model_equals_builtin_on_every_reference_and_dse_mapping(tmp_path):
    """All 20 cases, the reference mapper's mapping and dse's best (small budget), reference ERT:
    the real model accepts each mapping and gives dse's cycles and energy."""
    assert len(CASES) == 20
    for case in CASES:
        root, arch, problem = _reference_case(case, "mapper")  # constraints for dse's search
        ref = read_mapping(root / "model" / "mapping.yaml", arch, problem)
        ours = search(problem, arch, search="hybrid", workers=1, max_evals=150, time_limit=30,
                      seed=0)
        for name, mapping in (("ref", ref), ("dse", ours.best)):
            real = timeloop.evaluate(problem, arch, mapping, tmp_path / case / name)
            _assert_same(real, evaluate(problem, arch, mapping))


@needs_shared
def test_bandwidth_slowdown_rounds_in_doubles_as_timeloop_does(tmp_path):
    """A mapping timeloop-mapper found for nvdla_like fc_512x1000: cbuf reads 514560 words at 16
    words/cycle over 12800 compute cycles. In exact arithmetic that is 32160 cycles; Timeloop's
    doubles give ceil(12800 / (16 / (514560 / 12800))) = ceil(32160.000000000004) = 32161, and so
    must both builtin paths."""
    from dse.model.batch import evaluate_batch

    _, arch, problem = _reference_case("nvdla_like__fc_512x1000")
    mapping = read_mapping(DATA / "nvdla_like__fc_512x1000.mapper.map.yaml", arch, problem)
    assert evaluate(problem, arch, mapping).cycles == 32161
    assert evaluate_batch(problem, arch, [mapping]).cycles.tolist() == [32161]
    if timeloop.available():
        assert timeloop.evaluate(problem, arch, mapping, tmp_path).cycles == 32161


@needs_shared
@needs_timeloop
def test_real_mapper_runs_with_the_designs_constraints_and_dse_rescores_its_mapping(tmp_path):
    _, arch, problem = _reference_case("simple_weight_stationary__fc_512x1000", "mapper")
    settings = timeloop.MapperSettings(threads=1, victory_condition=20, search_size=40)
    mapping, real = timeloop.search(problem, arch, tmp_path, settings)
    _assert_same(real, evaluate(problem, arch, mapping))


@needs_shared
@needs_timeloop
def test_real_mapper_reads_the_spatial_split_as_dse_does(tmp_path):
    """``[M, C], split: 1`` means C on the array's X axis and M on Y. Timeloop's mapper is handed
    that reading (``CMGNQPSR``), not timeloopfe's ``GNQPSRCM`` (only G on X): with C=16 and M=8
    forced onto the PE array it finds the half-full array dse finds, instead of no mapping."""
    import copy

    _, arch, problem = _reference_case("simple_weight_stationary__fc_512x1000", "mapper")
    arch = copy.deepcopy(arch)
    pe = next(lvl for lvl in arch.levels if lvl.name == "inter_PE_spatial")
    pe.constraints.spatial_factors.update({"C": ("=", 16), "M": ("=", 8)})
    settings = timeloop.MapperSettings(threads=1, victory_condition=20, search_size=40)
    mapping, real = timeloop.search(problem, arch, tmp_path, settings)
    axes = {lp.dim: lp.axis for lp in mapping.level("inter_PE_spatial").spatial}
    assert axes == {"C": "X", "M": "Y"} and real.utilization == 0.5
    _assert_same(real, evaluate(problem, arch, mapping))


def _dse(*args: str, path: str | None = None):
    import subprocess
    import sys

    env = {**os.environ} if path is None else {**os.environ, "PATH": path}
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True,
                          env=env, check=False)


@needs_shared
@needs_timeloop
@pytest.mark.parametrize("case", ["nvdla_like__fc_512x1000", "simple_weight_stationary__mbv2_dw3x3",
                                  "simple_output_stationary__fc_512x1000"])
def test_evaluate_and_map_cli_with_the_timeloop_backends(tmp_path, case):
    """Three cases in CI (one had v3.0.3's model abort on constraints; the WS/OS ones take the
    split as dse reads it); all 20 run in ``bench/timeloop_check.py``."""
    import json

    root = REFERENCE / "cases" / case
    common = ["--arch", str(root / "mapper" / "timeloop_input.yaml"), "--ert",
              str(root / "mapper" / "timeloop-mapper.ERT.yaml"), "--problem",
              str(root / "inputs" / "problem.yaml"), "--json"]
    ev = _dse("evaluate", *common, "--mapping", str(root / "model" / "mapping.yaml"),
              "--backend", "timeloop", "--workdir", str(tmp_path / "e"))
    assert ev.returncode == 0, ev.stderr
    doc = json.loads(ev.stdout)
    assert doc["check"]["builtin_agrees"] and doc["cycles"] == doc["check"]["builtin_cycles"]
    for backend in ("timeloop", "timeloop-check"):
        mp = _dse("map", *common, "--backend", backend, "--budget", "40", "--victory", "20",
                  "--workers", "1", "--workdir", str(tmp_path / backend))
        assert mp.returncode == 0, mp.stderr
        doc = json.loads(mp.stdout)
        checks = [doc["check"]] if backend == "timeloop" else doc["checks"]
        assert checks and all(c["builtin_agrees"] for c in checks)


@needs_timeloop
def test_sweep_with_the_real_mapper_and_with_real_checks_end_to_end(tmp_path):
    """A small sweep (digits CNN on one design, energy side) with ``backend: timeloop`` (the real
    mapper) and ``backend: timeloop-check`` (dse's mapper, every kept mapping re-evaluated)."""
    from dse.sweep import ModelSpec, SweepConfig, run_sweep
    from dse.sweep.config import FaultSettings, MapperSettings

    def sweep(backend: str):
        return run_sweep(SweepConfig(
            name=backend, designs=["simple_output_stationary"], models=[ModelSpec("digits_cnn")],
            backend=backend, mapper=MapperSettings(budget=60, time_limit=30.0),
            resilience=FaultSettings(enabled=False), executor="inprocess",
            output=str(tmp_path / backend)), progress=False)

    real = sweep("timeloop")
    assert real.network and all(r["energy_pJ"] > 0 for r in real.rows)
    checked = sweep("timeloop-check")
    assert len(checked.timeloop_checks) == len(checked.rows) > 0
    assert all(c["agree"] and c["cycles"] == c["dse_cycles"] for c in checked.timeloop_checks)
    assert any("agree with dse's model" in n for n in checked.notes)
