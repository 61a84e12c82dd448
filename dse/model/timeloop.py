"""The real Timeloop as a backend: every call of the ``timeloop-*`` binaries lives in this file.

Timeloop and Accelergy cannot be installed everywhere, so dse's builtin model is the default; when a
user has ``timeloop-model`` / ``timeloop-mapper`` on ``PATH`` these functions hand them the same
inputs (native architecture tree, problem, mapping, and dse's energy tables as ``ERT.yaml`` /
``ART.yaml`` -- the builtin tables, or Accelergy's when dse estimated them with Accelergy -- so
both backends price actions alike) and parse what they print back into dse types.

Two facts of Timeloop v3.0.3 shape the inputs (measured with the real binaries):
- its model rejects valid mappings, even its own mapper's, when the input carries architecture
  constraints ("mapping violates architecture constraints", and an assertion on a depthwise
  case), so the model's input has none; constraints go only into the mapper's input;
- it has no ``--version`` flag, so :func:`version` reports what the binary prints, if anything.

Inputs go to a work directory that is kept, so a user can re-run Timeloop on it by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from dse.arch.ert import write_tables
from dse.arch.native import write_native
from dse.arch.spec import Arch
from dse.errors import DseError
from dse.model.mapfile import parse_stats_txt, read_mapping, write_mapping
from dse.model.mapping import Mapping
from dse.model.stats import Stats
from dse.problems.problem import Problem
from dse.problems.yaml_io import write_problem

MODEL_BINARY = "timeloop-model"
MAPPER_BINARY = "timeloop-mapper"
ENERGY_RTOL = 1e-6  # a check "agrees" when cycles are equal and energies within this (relative)
PRINTED_PJ = 0.005  # stats.txt prints each energy to 0.01 pJ: half of that per printed term


@dataclass(frozen=True)
class MapperSettings:
    """The ``mapper:`` block Timeloop's random search reads (hyphenated v3.0.x keys)."""

    metric: str = "edp"
    threads: int = 2
    timeout: int = 10000
    victory_condition: int = 1000
    search_size: int = 20000
    algorithm: str = "random"

    def as_yaml(self) -> dict:
        return {"mapper": {
            "optimization-metrics": [self.metric], "live-status": False, "num-threads": self.threads,
            "timeout": self.timeout, "victory-condition": self.victory_condition,
            "search-size": self.search_size, "algorithm": self.algorithm,
        }}


@dataclass(frozen=True)
class Check:
    """The real ``timeloop-model`` and dse's model on one mapping, and whether they agree (equal
    cycles, energy within :data:`ENERGY_RTOL`). ``error`` is set when Timeloop failed."""

    energy_pJ: float | None  # timeloop-model's
    cycles: int | None
    builtin_energy_pJ: float
    builtin_cycles: int
    energy_rel: float | None  # |real - dse| / real
    agree: bool
    error: str | None = None


def available(binary: str = MODEL_BINARY) -> bool:
    """True when the named Timeloop binary is on ``PATH``."""
    return shutil.which(binary) is not None


def version(binary: str = MODEL_BINARY) -> str | None:
    """The version the binary prints for ``--version``, or None (v3.0.x prints none)."""
    path = shutil.which(binary)
    if path is None:
        return None
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                              check=False, cwd=Path(path).parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\bv?(\d+\.\d+(?:\.\d+)?)\b", proc.stdout + proc.stderr)
    return found.group(1) if found else None


def write_inputs(problem: Problem, arch: Arch, workdir: str | Path, *,
                 constraints: bool = False) -> list[Path]:
    """Write the architecture, energy tables (ERT, and ART when areas are known) and problem.
    ``constraints``: include the design's constraints (the mapper's input only), spatial
    splits written as dse reads them (C on X, M on Y for ``[M, C], split: 1``), so the real
    mapper searches the same space as dse's."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    unit = [d for d in problem.dimensions if problem.instance[d] == 1] if constraints else None
    files = [write_native(arch, workdir / "arch.yaml", constraints=constraints, unit_dims=unit),
             write_problem(problem, workdir / "problem.yaml")]
    files += write_tables(arch, workdir / "dse")
    return files


def _run(binary: str, files: list[Path], workdir: Path, prefix: str) -> Path:
    """Run one Timeloop binary on ``files`` in ``workdir``; return its ``stats.txt``."""
    if not available(binary):
        raise DseError(f"{binary} is not on PATH; use the builtin backend (the default) or see "
                       "`python -m dse doctor`")
    stats = workdir / f"{prefix}.stats.txt"
    stats.unlink(missing_ok=True)  # never parse an earlier run's output
    limit = run_timeout_s()
    try:
        proc = subprocess.run([binary, *[str(f.name) for f in files]], cwd=workdir,
                              capture_output=True, text=True, check=False, timeout=limit)
    except subprocess.TimeoutExpired:
        raise DseError(f"{binary} hung: no result after {limit:g} s (killed; set "
                       f"{TIMEOUT_ENV} to wait longer) in {workdir}") from None
    if proc.returncode != 0 or not stats.exists():
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines()
                 if "ERROR" in ln or "Assertion" in ln] or (proc.stderr or proc.stdout
                                                            ).strip().splitlines()[-1:]
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit {proc.returncode}")
        raise DseError(f"{binary} failed ({how}) in {workdir}: "
                       f"{(lines or ['no output'])[0].strip()}")
    return stats


TIMEOUT_ENV = "DSE_TIMELOOP_TIMEOUT"


def run_timeout_s() -> float:
    """Seconds one Timeloop run may take before it counts as hung (default one hour)."""
    try:
        return max(0.1, float(os.environ.get(TIMEOUT_ENV, "3600")))
    except ValueError:
        return 3600.0


def evaluate(problem: Problem, arch: Arch, mapping: Mapping, workdir: str | Path) -> Stats:
    """``timeloop-model`` on one mapping: the reference the builtin model is judged against."""
    workdir = Path(workdir)
    files = write_inputs(problem, arch, workdir)
    files.insert(2, write_mapping(mapping, workdir / "map.yaml", problem))
    return parse_stats_txt(_run(MODEL_BINARY, files, workdir, "timeloop-model"))


def search(problem: Problem, arch: Arch, workdir: str | Path,
           settings: MapperSettings = MapperSettings()) -> tuple[Mapping, Stats]:
    """``timeloop-mapper`` with the design's constraints; returns its best mapping and stats."""
    workdir = Path(workdir)
    files = write_inputs(problem, arch, workdir, constraints=True)
    mapper = workdir / "mapper.yaml"
    mapper.write_text(yaml.safe_dump(settings.as_yaml(), sort_keys=False))
    files.insert(2, mapper)
    stats = parse_stats_txt(_run(MAPPER_BINARY, files, workdir, "timeloop-mapper"))
    return read_mapping(workdir / "timeloop-mapper.map.yaml", arch, problem), stats


def agreement(real: Stats, ours: Stats) -> Check:
    """How dse's numbers for a mapping (``ours``) compare with the real model's (``real``).
    Energies agree within :data:`ENERGY_RTOL`, or within the rounding of the printed figures the
    real energy is summed from (matters only for layers of a few pJ)."""
    diff = abs(real.energy_pJ - ours.energy_pJ)
    rel = diff / max(abs(real.energy_pJ), 1e-300)
    printed = PRINTED_PJ * (len(real.levels) + 1)
    return Check(real.energy_pJ, real.cycles, ours.energy_pJ, ours.cycles, rel,
                 real.cycles == ours.cycles and (rel <= ENERGY_RTOL or diff <= printed))


def check(problem: Problem, arch: Arch, mapping: Mapping, stats: Stats,
          workdir: str | Path) -> Check:
    """Re-evaluate a mapping dse scored as ``stats`` with the real model; a failure of the binary
    is a disagreement (recorded, not raised), so one bad mapping does not stop a sweep."""
    try:
        real = evaluate(problem, arch, mapping, workdir)
    except DseError as exc:
        return Check(None, None, stats.energy_pJ, stats.cycles, None, False, str(exc))
    return agreement(real, stats)
