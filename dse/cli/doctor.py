"""``dse doctor``: which optional tools dse finds here, what each enables, how to get the rest.

dse runs and passes its tests with none of them; each one found switches on more:

- ``timeloop-model`` / ``timeloop-mapper`` (NVlabs Timeloop): ``--backend timeloop`` and
  ``--backend timeloop-check`` of ``evaluate``, ``map`` and ``sweep``. The version is what the
  binary prints for ``--version`` (v3.0.x prints none); a probe layer is run through the real model
  and compared with the builtin one, so "found" also means "works".
- ``accelergy`` (+ its plug-ins, and ``DSE_ACCELERGY_COMPONENTS``): energy tables from Accelergy
  instead of dse's builtin fit.
- ``snntorch``: spiking-network campaigns. ``distributed`` (Dask): ``--executor dask`` and
  ``--scheduler``. ``pyarrow``: Parquet export. A CUDA GPU: injection engines on the GPU.

``--json`` prints one document: a list of ``{name, found, version, path, detail, enables, get}``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from dse.cli._common import print_json

TIMELOOP_GET = ("build NVlabs Timeloop (github: NVlabs/timeloop, tag v3.0.3 or later) and put "
                "timeloop-model and timeloop-mapper on PATH; on this project's machines: "
                "bash ../shared/tools/timeloop/install.sh")


@dataclass
class Tool:
    """One optional tool: whether it was found and what it switches on."""

    name: str
    found: bool
    enables: str
    get: str
    version: str | None = None
    path: str | None = None
    detail: str = ""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("doctor", help="which optional tools are found and what they enable",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-probe", action="store_true",
                   help="do not run the probe layer through a found timeloop-model")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tools = [*_timeloop(probe=not args.no_probe), _accelergy(),
             _module("snntorch", "spiking-network (snntorch) models and their fault campaigns"),
             _module("distributed", "sweeps on Dask: --executor dask, --scheduler tcp://HOST:PORT",
                     pip="dask[distributed]"),
             _module("pyarrow", "Parquet export of sweep results (dse results --parquet)"),
             _gpu()]
    if args.json:
        print_json([asdict(t) for t in tools])
        return 0
    for t in tools:
        mark = "found  " if t.found else "missing"
        where = f" {t.version or ''} {t.path or ''}".rstrip()
        print(f"[{mark}] {t.name}{where}")
        if t.detail:
            print(f"          {t.detail}")
        print(f"          enables: {t.enables}")
        if not t.found:
            print(f"          get it:  {t.get}")
    return 0


def _timeloop(probe: bool) -> list[Tool]:
    from dse.model import timeloop

    out = []
    for binary, enables in ((timeloop.MODEL_BINARY, "--backend timeloop for `dse evaluate`, "
                             "--backend timeloop-check for `dse map` / `dse sweep`"),
                            (timeloop.MAPPER_BINARY, "--backend timeloop for `dse map` / "
                             "`dse sweep` (Timeloop's own search)")):
        path = shutil.which(binary)
        tool = Tool(binary, path is not None, enables, TIMELOOP_GET, path=path)
        if path:
            tool.version = timeloop.version(binary) or "(prints no version: v3.0.x)"
            if binary == timeloop.MODEL_BINARY and probe:
                tool.detail = _probe_model()
        out.append(tool)
    return out


def _probe_model() -> str:
    """Run a small layer through the real model and compare with the builtin one."""
    from dse.arch import load_arch
    from dse.errors import DseError
    from dse.mapper import search
    from dse.model import timeloop
    from dse.problems import conv_problem

    arch, problem = load_arch("simple_weight_stationary"), conv_problem(C=8, M=8, R=3, S=3, P=4, Q=4)
    best = search(problem, arch, search="random", workers=1, max_evals=20, time_limit=30)
    with tempfile.TemporaryDirectory(prefix="dse-doctor-") as tmp:
        try:
            check = timeloop.check(problem, arch, best.best, best.best_stats, tmp)
        except DseError as exc:  # pragma: no cover - a broken install
            return f"probe failed: {exc}"
    if check.error:
        return f"probe failed: {check.error}"
    verdict = "equal to" if check.agree else "DIFFERENT from"
    return (f"probe: a {problem.macs}-MAC layer runs, {verdict} the builtin model "
            f"(cycles {check.cycles} vs {check.builtin_cycles}, energy rel. diff "
            f"{check.energy_rel:.1e})")


def _accelergy() -> Tool:
    from dse.arch import accelergy_backend

    path = shutil.which("accelergy")
    has_pkg = importlib.util.find_spec("accelergy") is not None
    plugins = sorted(d.metadata["Name"] for d in importlib.metadata.distributions()
                     if (d.metadata["Name"] or "").lower().replace("_", "-").startswith(
                         "accelergy-"))
    components = os.environ.get(accelergy_backend.ENV)
    detail = (f"plug-ins: {', '.join(plugins) or 'none found'}; {accelergy_backend.ENV}="
              f"{components or '(unset)'}; used: {accelergy_backend.available()}")
    return Tool("accelergy", bool(path and has_pkg),
                "energy tables estimated by Accelergy (energy_source=accelergy) instead of "
                "dse's builtin fit", "pip install accelergy (+ its plug-ins, e.g. "
                "accelergy-cacti-plug-in) and set " + accelergy_backend.ENV + " to a folder of "
                "compound-component YAMLs", version=_dist_version("accelergy"), path=path,
                detail=detail if (path or has_pkg) else "")


def _module(name: str, enables: str, pip: str | None = None) -> Tool:
    found = importlib.util.find_spec(name) is not None
    return Tool(name, found, enables, f"pip install '{pip or name}'",
                version=_dist_version(name) if found else None)


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpu() -> Tool:
    import torch

    found = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if found else None
    return Tool("GPU (CUDA)", found, "fault-injection engines on the GPU (torch device cuda)",
                "a machine with an NVIDIA GPU and a CUDA build of torch",
                version=torch.version.cuda if found else None, detail=name or "")
