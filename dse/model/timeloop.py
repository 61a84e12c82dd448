"""The real Timeloop as a backend: every call of the ``timeloop-*`` binaries lives in this file.

Timeloop and Accelergy cannot be installed everywhere, so dse's builtin model is the default; when a
user has ``timeloop-model`` / ``timeloop-mapper`` on ``PATH`` these functions hand them the same
inputs (native architecture tree, problem, mapping, and dse's energy tables as ``ERT.yaml`` /
``ART.yaml`` so both backends price actions alike) and parse what they print back into dse types.
Inputs go to a work directory that is kept, so a user can re-run Timeloop on it by hand.
"""

from __future__ import annotations

import shutil
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


def available(binary: str = MODEL_BINARY) -> bool:
    """True when the named Timeloop binary is on ``PATH``."""
    return shutil.which(binary) is not None


def write_inputs(problem: Problem, arch: Arch, workdir: str | Path) -> list[Path]:
    """Write the architecture (with its constraints), energy tables and problem Timeloop reads."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files = [write_native(arch, workdir / "arch.yaml"), write_problem(problem, workdir / "problem.yaml")]
    files += write_tables(arch, workdir / "dse")
    return files


def _run(binary: str, files: list[Path], workdir: Path, prefix: str) -> Path:
    """Run one Timeloop binary on ``files`` in ``workdir``; return its ``stats.txt``."""
    if not available(binary):
        raise DseError(f"{binary} is not on PATH; use the builtin backend (the default)")
    proc = subprocess.run([binary, *[str(f.name) for f in files]], cwd=workdir,
                          capture_output=True, text=True, check=False)
    stats = workdir / f"{prefix}.stats.txt"
    if proc.returncode != 0 or not stats.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DseError(f"{binary} failed (exit {proc.returncode}) in {workdir}: {tail[0]}")
    return stats


def evaluate(problem: Problem, arch: Arch, mapping: Mapping, workdir: str | Path) -> Stats:
    """``timeloop-model`` on one mapping: the reference the builtin model is judged against."""
    workdir = Path(workdir)
    files = write_inputs(problem, arch, workdir)
    files.append(write_mapping(mapping, workdir / "map.yaml", problem))
    return parse_stats_txt(_run(MODEL_BINARY, files, workdir, "timeloop-model"))


def search(problem: Problem, arch: Arch, workdir: str | Path,
           settings: MapperSettings = MapperSettings()) -> tuple[Mapping, Stats]:
    """``timeloop-mapper`` with the design's constraints; returns its best mapping and stats."""
    workdir = Path(workdir)
    files = write_inputs(problem, arch, workdir)
    mapper = workdir / "mapper.yaml"
    mapper.write_text(yaml.safe_dump(settings.as_yaml(), sort_keys=False))
    files.append(mapper)
    stats = parse_stats_txt(_run(MAPPER_BINARY, files, workdir, "timeloop-mapper"))
    return read_mapping(workdir / "timeloop-mapper.map.yaml", arch, problem), stats
