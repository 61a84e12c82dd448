"""Profiled workloads kept on disk by content, so a sweep of a model profiled before needs no torch.

Why: profiling is one traced forward pass, but importing torch and torchvision to run it costs
about 3 s of every sweep (and about 1 s more when the interpreter tears them down at exit), a
quarter of a whole ResNet-18 energy sweep on four designs. A shapes-only workload is a pure
function of the model's name, options, label and input shape, the installed torch and
torchvision, and dse's own sources, so those are its key: a change of any one profiles again.
Models named by an import path (``package.module:function``) are never kept, as their source is
not part of the key. Entries are JSON (no code runs on load), written atomically; an unreadable
one is profiled again and replaced.

A miss is profiled in a short-lived child interpreter (:func:`_child_main`), not in
the sweep's driver: the driver of an energy-only sweep then never holds torch, and the child
leaves as soon as its answer is written, without the ~1 s of tearing torch down that nobody waits
for. Its answer is the same workload (a test compares it with an in-process profile).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from dse.cache import cache_dir
from dse.errors import InputError
from dse.problems import Layer, NonMacOp, Workload, problem_from_dict, problem_to_dict
from dse.sweep.config import ModelSpec
from dse.sweep.hashing import code_version, stable_hash
from dse.validate import write_text

FORMAT = 1  # bump when the entry layout changes
_CHILD = "from dse.sweep.profiles import _child_main; _child_main()"


def shapes_only_workload(spec: ModelSpec) -> Workload:
    """``spec``'s workload as :func:`dse.problems.profile` gives it for an untrained model, from
    the cache when an entry with the same key exists (then torch is never imported)."""
    path = _entry_path(spec)
    if path is not None and (hit := _read(path)) is not None:
        return hit
    workload = _profile_in_child(spec) if sys.executable else profile_here(spec)
    if path is not None:
        write_text(path, json.dumps(workload_to_plain(workload)), field="profile cache")
    return workload


def profile_here(spec: ModelSpec) -> Workload:
    """Build ``spec``'s model without weights and profile it in this process."""
    from dse.problems import profile, zoo

    model = zoo.get_model(spec.name, **spec.options)
    shape = spec.input_shape or tuple(zoo.default_input(spec.name))
    return profile(model, tuple(shape), name=spec.label)


def _profile_in_child(spec: ModelSpec) -> Workload:
    """:func:`profile_here` in a fresh interpreter that imports what this one does (its
    ``sys.path``); the child's InputError comes back as one."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    doc = dict(dataclasses.asdict(spec), input_shape=spec.input_shape and list(spec.input_shape))
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(doc),
                          capture_output=True, text=True, env=env, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise RuntimeError(f"profiling {spec.label} failed: {tail[0]}")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise InputError(answer["error"]["reason"], file=answer["error"]["file"],
                         field=answer["error"]["field"])
    return workload_from_plain(answer["workload"])


def _child_main() -> None:
    """The child's side: a spec as JSON on stdin, one JSON line out (the workload or the
    InputError), then ``os._exit``: the answer is out and nothing is left to save."""
    from dse.workers import init_worker

    init_worker()  # one torch thread, as in every worker process
    doc = json.loads(sys.stdin.read())
    spec = ModelSpec(**dict(doc, input_shape=doc["input_shape"] and tuple(doc["input_shape"])))
    try:
        answer: dict[str, Any] = {"workload": workload_to_plain(profile_here(spec))}
    except InputError as exc:
        answer = {"error": {"reason": exc.reason, "file": exc.file, "field": exc.field}}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _entry_path(spec: ModelSpec) -> Path | None:
    """Where ``spec``'s entry lives; None for a model whose source the key cannot cover."""
    if ":" in spec.name and not spec.name.startswith("torchvision:"):
        return None
    key = stable_hash("profile", FORMAT, spec.name, spec.options, spec.label,
                      list(spec.input_shape) if spec.input_shape else None, code_version(),
                      _version("torch"), _version("torchvision"))
    return cache_dir() / "profiles" / f"{spec.name.replace(':', '_')}-{key}.json"


def _version(dist: str) -> str | None:
    """An installed distribution's version, read from its metadata (no import of the package)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def workload_to_plain(workload: Workload) -> dict[str, Any]:
    """The JSON form of a workload (problems in their Timeloop tree form)."""
    return {"model": workload.model, "input_shape": list(workload.input_shape),
            "layers": [{"name": la.name, "module_path": la.module_path, "op": la.op,
                        "problem": problem_to_dict(la.problem), "count": la.count,
                        "paths": list(la.paths)} for la in workload.layers],
            "non_mac": [{"name": n.name, "op": n.op, "count": n.count, "elements": n.elements}
                        for n in workload.non_mac],
            "unmapped": list(workload.unmapped), "notes": list(workload.notes)}


def workload_from_plain(doc: dict[str, Any]) -> Workload:
    """Inverse of :func:`workload_to_plain`."""
    layers = [Layer(la["name"], la["module_path"], la["op"], problem_from_dict(la["problem"]),
                    la["count"], list(la["paths"])) for la in doc["layers"]]
    return Workload(doc["model"], tuple(doc["input_shape"]), layers,
                    [NonMacOp(**n) for n in doc["non_mac"]], list(doc["unmapped"]),
                    list(doc["notes"]))


def _read(path: Path) -> Workload | None:
    try:
        return workload_from_plain(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, or left unreadable by a crash mid-write: profile again
