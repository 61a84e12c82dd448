"""Timeloop problem YAML in and out.

Timeloop v3.0.x reads hyphenated keys (``data-spaces``, ``read-write``); 2024+ releases read
underscores. We accept both and write either, so the same file works with whichever binary a user has.
A projection term is ``[dim]`` or ``[dim, coefficient]``; a rank is a list of terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dse import validate
from dse.errors import InputError
from dse.problems.problem import DataSpace, Problem, Rank
from dse.yamlfile import read_yaml

_KEYS = {"hyphen": ("data-spaces", "read-write"), "underscore": ("data_spaces", "read_write")}


def _get(d: dict, name: str, default: Any = None) -> Any:
    """Look a key up under its hyphenated or underscored spelling."""
    for key in (name, name.replace("_", "-"), name.replace("-", "_")):
        if key in d:
            return d[key]
    return default


def _rank_from_yaml(rank: Any, where: str) -> Rank:
    if not isinstance(rank, list) or not rank:
        raise InputError(f"rank must be a non-empty list of terms, got {rank!r}", field=where)
    terms = []
    for term in rank:
        if isinstance(term, str):
            term = [term]
        if not isinstance(term, list) or not 1 <= len(term) <= 2:
            raise InputError(f"term must be [dim] or [dim, coefficient], got {term!r}", field=where)
        terms.append((str(term[0]), str(term[1]) if len(term) == 2 else None))
    return tuple(terms)


def problem_from_dict(data: Any, *, file: str | None = None) -> Problem:
    """Build a Problem from the parsed YAML tree (``{problem: {instance, shape}}`` or the inner dict)."""
    if isinstance(data, dict) and "problem" in data:
        data = data["problem"]
    if not isinstance(data, dict) or "shape" not in data or "instance" not in data:
        raise InputError("expected 'problem' with 'shape' and 'instance'", file=file, field="problem")
    shape, instance = data["shape"], data["instance"]
    if not isinstance(shape, dict) or not isinstance(instance, dict):
        raise InputError("'shape' and 'instance' must be mappings", file=file, field="problem")
    dims = _get(shape, "dimensions")
    spaces = _get(shape, "data_spaces")
    if not dims or not spaces:
        raise InputError("shape needs 'dimensions' and 'data-spaces'", file=file, field="problem.shape")
    dims = tuple(str(d) for d in dims)
    coeffs = {str(c["name"]): int(c.get("default", 1)) for c in shape.get("coefficients") or []}
    sizes: dict[str, int] = {}
    for d in dims:
        value = instance.get(d, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"size must be a positive integer, got {value!r}", file=file,
                             field=f"problem.instance.{d}")
        sizes[d] = value
    for name, value in instance.items():
        if name in dims:
            continue
        if name not in coeffs:
            raise InputError("neither a dimension nor a coefficient", file=file,
                             field=f"problem.instance.{name}")
        if not isinstance(value, int) or value < 1:
            raise InputError(f"must be a positive integer, got {value!r}", file=file,
                             field=f"problem.instance.{name}")
        coeffs[name] = value
    dataspaces = []
    for i, ds in enumerate(spaces):
        where = f"problem.shape.data-spaces[{i}]"
        if not isinstance(ds, dict) or "name" not in ds or "projection" not in ds:
            raise InputError("needs 'name' and 'projection'", file=file, field=where)
        ranks = tuple(_rank_from_yaml(r, f"{where}.projection") for r in ds["projection"])
        for rank in ranks:
            for dim, coef in rank:
                if dim not in dims:
                    raise InputError(f"unknown dimension {dim!r}", file=file, field=where)
                if coef is not None and coef not in coeffs:
                    raise InputError(f"unknown coefficient {coef!r}", file=file, field=where)
        dataspaces.append(DataSpace(str(ds["name"]), ranks, bool(_get(ds, "read_write", False))))
    return Problem(str(shape.get("name", "problem")), dims, sizes, coeffs, tuple(dataspaces))


def problem_to_dict(problem: Problem, *, keys: str = "hyphen") -> dict:
    """The ``{problem: ...}`` tree Timeloop reads; ``keys`` picks v3 hyphens or newer underscores."""
    if keys not in _KEYS:
        raise ValueError(f"keys must be 'hyphen' or 'underscore', got {keys!r}")
    spaces_key, rw_key = _KEYS[keys]
    spaces = []
    for ds in problem.dataspaces:
        entry: dict[str, Any] = {
            "name": ds.name,
            "projection": [[[d] if c is None else [d, c] for d, c in rank] for rank in ds.projection],
        }
        if ds.read_write:
            entry[rw_key] = True
        spaces.append(entry)
    instance = {d: int(problem.instance[d]) for d in problem.dimensions}
    instance.update({k: int(v) for k, v in problem.coefficients.items()})
    return {
        "problem": {
            "version": 0.4,
            "instance": instance,
            "shape": {
                "name": problem.shape_name,
                "dimensions": list(problem.dimensions),
                "coefficients": [{"name": k, "default": 1} for k in problem.coefficients],
                spaces_key: spaces,
            },
        }
    }


def read_problem(path: str | Path) -> Problem:
    """Read a Timeloop problem YAML (hyphenated or underscored keys)."""
    doc = read_yaml(path)
    with validate.parsing(path, "problem"):
        return problem_from_dict(doc, file=str(path))


def write_problem(problem: Problem, path: str | Path, *, keys: str = "hyphen",
                  comment: str | None = None) -> Path:
    """Write a problem YAML; ``comment`` becomes a leading ``#`` line (e.g. the source layer)."""
    path = Path(path)
    text = yaml.safe_dump(problem_to_dict(problem, keys=keys), sort_keys=False,
                          default_flow_style=None)
    if comment:
        text = "".join(f"# {line}\n" for line in comment.splitlines()) + text
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as err:
        raise InputError(f"cannot write ({err.strerror or err})", file=str(path)) from None
    return path
