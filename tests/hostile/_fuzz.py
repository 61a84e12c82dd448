"""Fuzzing the four YAML loaders (problem, mapping, design, experiment): a mutated real file
either loads or raises one-line :class:`~dse.errors.DseError`; anything else is a failure.

Shared by ``tests/hostile/test_fuzz_loaders.py`` (a few seconds per loader in CI) and
``bench/fuzz_loaders.py`` (the long run that reports how many examples it tried).
Mutations start from real files (a shipped design, a profiled layer, a mapper-found mapping, a
small experiment) because random YAML almost never gets past the first key check.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from dse.errors import DseError

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "designs" / "eyeriss_like" / "design.yaml"
PROBLEM = REPO / "layer_shapes" / "digits_cnn" / "01_features.2.yaml"
EXPERIMENT = """name: fuzz
designs: [eyeriss_like]
variants: [{pe_x: 7}]
grid: {word_bits: [8, 16]}
models: [{name: digits_cnn, input: 1x1x8x8}]
mapper: {objective: edp, search: hybrid, time_limit: 2.0, budget: 100}
resilience: {enabled: false, top_k: 1, margin: 0.1, confidence: 0.95, fit_per_mbit: 1000}
seed: 0
workers: 2
"""

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.integers(-3, 20),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -1, 0]),
    st.text(max_size=12), st.sampled_from(["Weights", "Inputs", "Outputs", "DRAM", "C", "M=0",
                                           "a" * 300, "", "x" * 3000, "1x1x8x8"]),
    st.lists(st.integers(-3, 8), max_size=3), st.dictionaries(st.text(max_size=4),
                                                              st.integers(-2, 9), max_size=2))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return data.draw(SCALARS)
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]), label="op")
        if op == "replace":
            parent[path[-1]] = data.draw(SCALARS, label="value")
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8), label="key")] = data.draw(SCALARS)
        else:
            parent.append(data.draw(SCALARS))
    return doc


def mutated_text(base: str, data: st.DataObject) -> str:
    """A structural mutation of ``base`` (or, one time in eight, a cut or spliced raw text)."""
    if data.draw(st.integers(0, 7), label="raw") == 0:
        cut = data.draw(st.integers(0, len(base)), label="cut")
        return base[:cut] + data.draw(st.text(max_size=8), label="splice")
    return yaml.safe_dump(_mutate(yaml.safe_load(base), data), sort_keys=False)


@lru_cache(maxsize=1)
def _arch_problem() -> tuple[Any, Any]:
    from dse.arch import load_arch
    from dse.problems import read_problem

    return load_arch("eyeriss_like"), read_problem(PROBLEM)


@lru_cache(maxsize=1)
def mapping_text() -> str:
    """A real mapping of the layer (the builtin mapper, a short seeded random search)."""
    from dse.mapper import search
    from dse.model.mapfile import mapping_directives

    arch, problem = _arch_problem()
    best = search(problem, arch, search="random", max_evals=40, seed=0, workers=1,
                  time_limit=20).best
    return yaml.safe_dump({"mapping": mapping_directives(best, problem)}, sort_keys=False)


def _load_problem(path: Path) -> Any:
    from dse.problems import read_problem

    return read_problem(path)


def _load_design(path: Path) -> Any:
    from dse.arch import load_arch

    return load_arch(path)


def _load_mapping(path: Path) -> Any:
    from dse.model import read_mapping

    arch, problem = _arch_problem()
    return read_mapping(path, arch, problem)


def _load_experiment(path: Path) -> Any:
    from dse.sweep.config import read_config, validate

    config = read_config(path)
    config.output = str(path.parent / "out")
    return validate(config)


LOADERS: dict[str, tuple[Callable[[], str], Callable[[Path], Any], str]] = {
    "problem": (PROBLEM.read_text, _load_problem, "problem.yaml"),
    "design": (DESIGN.read_text, _load_design, "design.yaml"),
    "mapping": (mapping_text, _load_mapping, "map.yaml"),
    "experiment": (lambda: EXPERIMENT, _load_experiment, "experiment.yaml"),
}


def check_one(loader: str, text: str) -> str | None:
    """``None`` when ``text`` loads or is refused with one line; else what went wrong."""
    _, load, name = LOADERS[loader]
    with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        try:
            load(path)
        except DseError as exc:
            if len(str(exc).splitlines()) != 1:
                return f"DseError of {len(str(exc).splitlines())} lines: {str(exc)[:200]!r}"
        except Exception as exc:  # noqa: BLE001 - the point: report anything that escapes
            return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None
